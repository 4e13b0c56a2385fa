"""Sweep sizing: grids counted (never built) and refused above the limit, the time/memory estimate,
grid values the data cannot support, and the default grid's size stated alike everywhere."""

from __future__ import annotations

import math
import re
import tracemalloc
from pathlib import Path

import pytest

from research.pipeline import load_series
from research.sweep import DEFAULT_GRID_PATH, ParamGrid, budget, run_sweep
from research.sweep.budget import (
    DEFAULT_MAX_COMBOS,
    SweepTooLarge,
    check_combos,
    choose_engine,
    estimate,
)
from strategy.params import ParamsError

ROOT = Path(__file__).resolve().parents[3]
HUGE = {"stop_ticks": list(range(1, 11)), "target_r": [1.0 + i / 2 for i in range(10)],
        "time_stop_bars": list(range(10, 110, 10)), "entry_threshold": [i / 20 for i in range(10)],
        "min_base_quality": [i / 10 for i in range(10)], "slippage_ticks": list(range(10)),
        "contracts": list(range(1, 11))}  # 10^7 combinations


def test_a_huge_grid_is_counted_and_refused_without_being_built():
    tracemalloc.start()
    try:
        grid = ParamGrid(HUGE)
        assert len(grid) == 10**7 and grid.signal_groups == 100
        with pytest.raises(SweepTooLarge) as e:
            check_combos(grid, source="big.toml")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000  # the 10^7 combinations (GBs as dicts) were never materialised
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith("big.toml: the grid has 10,000,000 combinations")
    assert f"limit of {DEFAULT_MAX_COMBOS:,}" in msg and "--max-combos 10000000" in msg and "--sample" in msg
    # run_sweep refuses before it looks at the data or builds a Params
    with pytest.raises(SweepTooLarge):
        run_sweep(None, grid, scheduler="serial", progress=False)


def test_the_limit_can_be_raised_and_a_sample_counts_as_its_size():
    grid = ParamGrid({"stop_ticks": [5, 7, 9], "target_r": [1.5, 2.0]})
    assert check_combos(grid, 6) == 6 and check_combos(grid, None) == 6
    with pytest.raises(SweepTooLarge, match="6 combinations .*limit of 5"):
        check_combos(grid, 5)
    assert check_combos(ParamGrid(HUGE).sample(200, 1)) == 200


def test_estimate_follows_the_cost_model():
    small = ParamGrid({"stop_ticks": [5, 7], "entry_threshold": [0.2, 0.3]})  # 4 combos, 2 signal groups
    big = ParamGrid({"stop_ticks": list(range(1, 41)), "entry_threshold": [0.2, 0.3]})  # 80 combos
    e1, e2 = estimate(small, 100_000, 300), estimate(big, 100_000, 300)
    assert (e1.combos, e1.signal_groups, e2.combos, e2.signal_groups) == (4, 2, 80, 2)
    assert e1.memory_bytes < e2.memory_bytes and e1.seconds < e2.seconds
    assert e2.memory_bytes == 80 * (300 * budget.RESULT_BYTES_PER_SESSION + budget.OBJECT_BYTES_PER_COMBO)
    assert estimate(big, 100_000, 300, load=3.0).seconds == pytest.approx(3 * e2.seconds)
    assert estimate(big, 10**7, 300, workers=2).seconds < estimate(big, 10**7, 300, workers=1, cluster=True).seconds
    # a local cluster's start-up and warm-up overlap the data sets' build: the longer of the two counts
    serial, local = estimate(big, 100_000, 300), estimate(big, 100_000, 300, workers=2, cluster=True)
    assert local.seconds > serial.seconds > budget.BUILD_NS_PER_BAR * 1e-4
    assert local.seconds >= budget.CLUSTER_START_S + budget.WORKER_WARMUP_S
    long_build = estimate(small, 10**7, 300, workers=2, cluster=True).seconds
    assert long_build == pytest.approx(budget.BUILD_NS_PER_BAR * 1e-2 + 4 * budget.PREPARE_S_PER_COMBO
                                       + 10**7 * 1e-9 * (2 * budget.SIGNAL_NS_PER_BAR + 4 * budget.SIMULATION_NS_PER_BAR) / 2)
    assert "80 combinations (2 signal group(s)) x 100,000 bars, 300 sessions" in e2.text()


def test_auto_engine_takes_a_cluster_only_where_the_model_says_it_saves_enough():
    signal_grid = ParamGrid.from_toml(DEFAULT_GRID_PATH.with_name("signal_grid.toml"))  # 972 combos, 162 groups
    default = ParamGrid.from_toml(DEFAULT_GRID_PATH)  # 576 combos, 12 groups
    bars = 557_839  # the 32 ES contracts
    assert choose_engine(signal_grid, bars, 2)[0] == "dask"
    engine, why = choose_engine(default, bars, 2)
    assert engine == "serial" and why.startswith("serial: about") and "local Dask cluster of 2 workers" in why
    assert choose_engine(signal_grid, bars, 1)[0] == "serial"  # one worker never gains
    assert choose_engine(signal_grid, 10_000, 2)[0] == "serial"  # start-up dominates a small data set
    assert choose_engine(signal_grid, bars, 2, load=2.0)[0] == "serial"  # busy cores: the workers gain nothing
    for grid, n in ((signal_grid, bars), (default, bars), (default, 10**8)):
        engine, _ = choose_engine(grid, n, 2)
        serial = estimate(grid, n, 0).seconds
        dask = estimate(grid, n, 0, workers=2, cluster=True).seconds
        assert (engine == "dask") == (dask <= (1 - budget.DASK_MIN_SAVING) * serial)


def test_grid_values_outside_the_ranges_name_file_field_and_value(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text("[grid]\nstop_ticks = [5, 99999999999999999999]\n")
    with pytest.raises(ParamsError, match=r"g.toml: parameter stop_ticks = 99999999999999999999: accepted \[1, 4000\]"):
        ParamGrid.from_toml(f)
    for bad in ({"weight_battle": [0.4, 5.0]}, {"quality_weights": [[0.3, 0.2, 0.25, 0.25], [-4, 0, 0, 1]]},
                {"target_r": [2.0, math.inf]}, {"contracts": [1, 10**9]}):
        name = next(iter(bad))
        with pytest.raises(ParamsError, match=f"^parameter {name} = .*accepted"):
            ParamGrid(bad)
    f.write_text("[grid]\nstop_ticks = [5]\n[sample]\nseed = 3\n")
    with pytest.raises(ParamsError, match=r"g.toml: \[sample\] needs an integer n"):
        ParamGrid.from_toml(f)


def test_a_stop_no_session_reaches_is_refused_by_the_backtests_rule_and_an_oversized_value_too():
    from research.backtest import run
    from strategy import Params, compute_signals
    from strategy.market.sessions import session_id

    series = load_series(None)
    frame = series[0].frame

    def widest_of(session: str) -> int:  # the bars a backtest simulates: those of Params.session
        sub = frame.loc[compute_signals(frame, Params(session=session))["in_session"].to_numpy()]
        g = sub.groupby(session_id(sub.index))
        return int(round(((g["high"].max() - g["low"].min()) / 0.25).max()))

    rth, every = widest_of("rth"), widest_of("all")
    assert rth < every  # all bars would allow a wider stop than the backtest does
    with pytest.raises(ParamsError) as backtest:
        run(frame, Params(stop_ticks=rth + 1))
    with pytest.raises(ParamsError) as sweep:
        run_sweep(series, {"stop_ticks": [7, rth + 1]}, scheduler="serial", cache_dir=False, progress=False)
    for e in (backtest, sweep):  # one rule, one range
        assert f"stop_ticks = {rth + 1}: wider than the largest session high-low range of the data ({rth} ticks, " \
            in str(e.value)
    assert "in data set ESM24, session = 'rth')" in str(sweep.value)
    # per combination's session: the same stop is fine where it trades all bars, refused where it trades RTH
    with pytest.raises(ParamsError, match=f"stop_ticks = {every}: .*\\({rth} ticks, .*session = 'rth'\\)"):
        run_sweep(series, {"stop_ticks": [7, every], "session": ["rth", "all"]}, scheduler="serial",
                  cache_dir=False, progress=False)
    from research.sweep.runner import _check_against_data, build_datasets

    datasets = build_datasets(series)
    _check_against_data(series, datasets, [Params(stop_ticks=every, session="all"), Params(stop_ticks=rth)])
    with pytest.raises(ParamsError, match="contracts = 600: above ES's limit of 500"):
        run_sweep(series, {"contracts": [1, 600]}, scheduler="serial", cache_dir=False, progress=False)


def test_a_raised_limit_is_estimated_first_and_refused_above_the_memory_without_building_the_grid():
    series = load_series(None)
    seen = []
    tracemalloc.start()
    try:
        with pytest.raises(SweepTooLarge) as e:
            run_sweep(series, HUGE, scheduler="serial", cache_dir=False, progress=False, max_combos=None,
                      on_estimate=seen.append, memory_limit=2 * 10**9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 200_000_000  # the data sets only: 10^7 Params would take GBs
    assert len(seen) == 1 and seen[0].combos == 10**7 and seen[0].memory_bytes > 2 * 10**9
    msg = str(e.value)
    assert "\n" not in msg and "combinations x" in msg and "above the 2.0 GB of memory available" in msg
    assert budget.available_memory() is None or budget.available_memory() > 0


def test_relations_between_fields_are_checked_per_group_without_building_the_grid():
    huge = ParamGrid({**HUGE, "tc_weak": [0.2, 0.9], "tc_strong": [0.5, 0.95]})  # 4 x 10^7 combinations
    with pytest.raises(ParamsError, match=r"grid values \{'tc_weak': 0.9, 'tc_strong': 0.5\} .*tc_weak = 0.9: "
                                          r"must be <= tc_strong \(0.5\)"):
        huge.validate()
    ParamGrid({**HUGE, "tc_weak": [0.2, 0.3], "tc_strong": [0.5, 0.95]}).validate()  # every pair holds
    # the grid's verdict is the one its combinations would get one by one
    small = ParamGrid({"status_balanced": [0.1, 0.3], "status_winning": [0.2, 0.4], "stop_ticks": [5, 7]})
    with pytest.raises(ParamsError):
        small.params()
    with pytest.raises(ParamsError, match="status_balanced"):
        small.validate()


def test_related_fields_name_every_relation_params_checks():
    """`ParamGrid.validate` is exact only if each relation of `Params._validate` lies within one group."""
    import ast
    import inspect
    import textwrap

    from strategy.params import RELATED_FIELDS, Params

    tree = ast.parse(textwrap.dedent(inspect.getsource(Params._validate)))
    calls = [n for n in ast.walk(tree) if isinstance(n, ast.Call) and getattr(n.func, "id", "") == "need"]
    assert len(calls) == len(RELATED_FIELDS)
    for call in calls:
        used = {n.attr for n in ast.walk(call.args[0]) if isinstance(n, ast.Attribute)
                and isinstance(n.value, ast.Name) and n.value.id == "self"}
        assert any(used <= set(g) for g in RELATED_FIELDS), used


def test_sessions_of_the_estimate_are_the_results_rows_and_workers_are_bounded():
    import os

    from research.sweep.runner import check_workers

    seen = []
    res = run_sweep(load_series(None), {"stop_ticks": [5, 7]}, scheduler="serial", cache_dir=False, progress=False,
                    on_estimate=seen.append)
    assert seen[0].sessions == len(res.daily_pnl) == int(res.summary["sessions"].iloc[0])
    assert seen[0].bars == int(res.segments["bars"].sum())
    cores = os.cpu_count() or 1
    check_workers(cores)
    check_workers(10**6, "tcp://10.0.0.5:8786")  # a remote cluster sizes itself
    for bad in (0, cores + 1, 1000):
        with pytest.raises(ValueError, match=f"--workers {bad}: a local cluster runs 1 to {cores} worker"):
            check_workers(bad)
    with pytest.raises(ValueError, match="--workers 1000"):
        run_sweep(None, {"stop_ticks": [5]}, n_workers=1000, progress=False)


def test_default_grid_size_is_stated_alike_everywhere():
    from research.cli import EPILOG
    from research.cli.sweep_cmd import MAX_COMBOS_TEXT, default_grid_size

    n = len(ParamGrid.from_toml(DEFAULT_GRID_PATH))
    assert default_grid_size() == n
    assert f"default grid ({n:,} combinations)" in EPILOG
    assert MAX_COMBOS_TEXT == f"{DEFAULT_MAX_COMBOS:,}"
    header = DEFAULT_GRID_PATH.read_text(encoding="utf-8").splitlines()[0]
    assert f"= {n} combinations" in header
    # every sentence about the default grid that gives a count gives this one
    stated = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for line in doc.read_text(encoding="utf-8").splitlines():
            if re.search(r"default(?: grid|_grid\.toml)|default, ", line):
                stated += [(doc.name, int(m.replace(",", ""))) for m in
                           re.findall(r"(\d[\d,]*) comb(?:inations|os)\b", line)]
    assert stated and all(v == n for _, v in stated), stated
    assert "~500" not in EPILOG


def test_one_progress_bar_from_the_first_phase_to_the_combinations():
    import io

    from rich.console import Console

    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=160)
    res = run_sweep(load_series(None), {"stop_ticks": [5, 7]}, scheduler="serial", cache_dir=False, progress=console)
    assert len(res.summary) == 2
    text = out.getvalue()
    phases = ["checking the values of 2 combinations", "building the data sets", "building 2 combinations",
              "compiling the kernels", "evaluating combinations x data sets"]
    assert [t for t in phases if t in text] == phases, text[-2000:]
