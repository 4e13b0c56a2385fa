"""Parameter sweeps: the fused path equals `research.backtest.run` to the cent, grids, cache, results, CLI."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import es5m_files, shared_file

from research.backtest import run as backtest
from research.backtest.run import session_keys
from research.backtest.stats import daily_equity
from research.pipeline import Series, contract_segments, load_series
from research.sweep import ParamGrid, SweepResult, build_datasets, fused, run_sweep
from research.sweep import runner as sweep_runner
from strategy import Params
from strategy.params import ParamsError

CENT = 0.005


@pytest.fixture(scope="module")
def synth() -> list[Series]:
    return load_series(None)  # the embedded synthetic data set: 10 days of 1-minute bars


def sweep(series, grid, **kw) -> SweepResult:
    kw.setdefault("scheduler", "serial")
    kw.setdefault("cache_dir", False)
    kw.setdefault("progress", False)
    return run_sweep(series, grid, **kw)


def backtest_daily(res, capital: float) -> pd.Series:
    de = daily_equity(res.equity)
    d = de.diff()
    if len(de):
        d.iloc[0] = de.iloc[0] - capital
    return d


def assert_matches_backtest(result: SweepResult, frame: pd.DataFrame, combos) -> None:
    for combo in combos:
        p = result.params(combo)
        bt = backtest(frame, p)
        st = bt.stats()
        s = result.summary.loc[combo]
        assert s.trades == st.trades, (combo, p)
        assert abs(s.net_pnl_usd - st.net_pnl_usd) < CENT
        assert abs(s.commissions_usd - st.commissions_usd) < CENT
        if st.trades:
            assert s.win_rate == pytest.approx(st.win_rate, rel=1e-12)
            assert s.expectancy_r == pytest.approx(st.expectancy_r, rel=1e-9)
            assert s.profit_factor == pytest.approx(st.profit_factor, rel=1e-9)
        want = backtest_daily(bt, p.initial_capital_usd)
        got = result.daily_pnl[combo]
        assert set(want.index) <= set(got.index)
        np.testing.assert_allclose(got.reindex(want.index).to_numpy(), want.to_numpy(), atol=CENT, rtol=0)
        assert (got.drop(want.index).abs() < CENT).all()  # sessions only other combos trade in
        if len(got) == len(want):
            assert s.sharpe == pytest.approx(st.sharpe_daily, rel=1e-9, nan_ok=True)
            assert s.sortino == pytest.approx(st.sortino_daily, rel=1e-9, nan_ok=True)
        assert_trade_counts_match(result, combo, bt)


def assert_trade_counts_match(result: SweepResult, combo: int, bt) -> None:
    """`daily_trades[combo]` = the backtest's trades counted by their exit bar's session."""
    counts = result.daily_trades[combo]
    assert counts.dtype == np.int32 and counts.index.equals(result.daily_pnl.index)
    assert counts.sum() == result.summary.trades[combo] == len(bt.trades)
    exit_days = session_keys(pd.DatetimeIndex(bt.trades["exit_ts"])).astype("datetime64[D]").astype("datetime64[ns]")
    want = pd.Series(1, index=pd.DatetimeIndex(exit_days)).groupby(level=0).sum()
    got = counts[counts > 0]
    assert list(got.index) == list(want.index) and got.tolist() == want.tolist(), combo


# ------------------------------------------------------------------------------------ parity
def test_fused_equals_backtest_synthetic(synth):
    grid = ParamGrid({"entry_threshold": [0.2, 0.3], "session": ["rth", "all"], "stop_ticks": [4, 9],
                      "target_r": [1.0, 3.0], "time_stop_bars": [8, 50], "slippage_ticks": [0, 2]})
    res = sweep(synth, grid, split="none")
    assert len(res.grid) == 64 and res.meta["signal_groups"] == 4
    assert res.summary.trades.min() > 10
    rng = np.random.default_rng(1)
    assert_matches_backtest(res, synth[0].frame, sorted(rng.choice(64, 10, replace=False)))


def test_fused_equals_backtest_risk_and_cost_parameters(synth):
    grid = ParamGrid({"golden_rule_strict": [True, False], "contracts": [1, 3], "commission_per_side_usd": [0.0, 4.5],
                      "max_trades_per_day": [2, 999], "daily_loss_limit_usd": [150.0, 5000.0],
                      "flat_at_et": ["15:55", "13:00"]})
    res = sweep(synth, grid, split="none")
    assert_matches_backtest(res, synth[0].frame, [0, 9, 22, 37, 44, 63])


@pytest.mark.realdata
def test_fused_equals_backtest_real_contract():
    s = load_series([shared_file("es-5m/ESM20-CME.scid_BarData__5m.txt.gz")])  # the COVID quarter
    grid = ParamGrid({"entry_threshold": [0.15, 0.25], "session": ["rth", "all"], "stop_ticks": [5, 12],
                      "target_r": [1.5, 2.0], "time_stop_bars": [20, 50]})
    res = sweep(s, grid, split="none")
    # the RTH combinations' few signals fall on Memorial Day (2020-05-25), a holiday date: no entry
    assert res.summary.trades.sum() > 100
    assert_matches_backtest(res, s[0].frame, [0, 5, 10, 19, 26, 31])


@pytest.mark.realdata
def test_real_32_contracts_whole_and_per_contract():
    s = load_series(es5m_files())
    # a capital the margin floor never reaches: each per-contract data set starts from the capital
    # afresh, while the stitched series would stop trading in 2017 at $100,000 (docs/sweeps.md)
    grid = ParamGrid({"session": ["rth", "all"], "stop_ticks": [7, 10], "initial_capital_usd": [1_000_000.0]})
    whole = sweep(s, grid, split="none")
    assert whole.summary.trades.min() > 1000
    assert_matches_backtest(whole, s[0].frame, [0, 3])
    per = sweep(s, grid)  # split="contract": 32 data sets, signals warmed up on 10 sessions
    assert len(per.segments) == 32 and per.segments.bars.sum() == len(s[0].frame)
    assert per.daily_pnl.index.equals(whole.daily_pnl.index)
    rel = (per.summary.trades - whole.summary.trades).abs() / whole.summary.trades
    assert rel.max() < 0.01  # the documented warm-up difference (docs/sweeps.md)


# ------------------------------------------------------------------------------- grouping
def test_signals_computed_once_per_group(synth):
    grid = ParamGrid({"entry_threshold": [0.2, 0.3, 0.35], "stop_ticks": [5, 7], "target_r": [1.5, 2.0, 2.5]})
    before = fused.SIGNAL_RUNS
    res = sweep(synth, grid, split="none")
    assert fused.SIGNAL_RUNS - before == 3 == res.meta["signal_runs"] == res.meta["signal_groups"]
    assert res.grid.groupby("signal_hash").size().tolist() == [6, 6, 6]
    assert res.meta["tasks"] == 3  # default chunking: one task per group here (never cuts a group to get tasks)
    # chunks hold whole groups: 3 groups of 6 in chunks of <= 6 -> 3 tasks, still one run per group
    res6 = sweep(synth, grid, split="none", chunk_size=6)
    assert res6.meta["tasks"] == 3 and res6.meta["signal_runs"] == 3
    pd.testing.assert_frame_equal(res6.summary, res.summary)
    pd.testing.assert_frame_equal(res6.daily_pnl, res.daily_pnl)
    # a group larger than the chunk is cut (signals recomputed per piece), results unchanged
    res4 = sweep(synth, grid, split="none", chunk_size=4)
    assert res4.meta["signal_runs"] == 6
    pd.testing.assert_frame_equal(res4.summary, res.summary)


def test_daily_trades_count_every_trade(synth):
    g = ParamGrid({"entry_threshold": [0.2, 0.3], "stop_ticks": [4, 9], "max_trades_per_day": [1, 999]})
    res = sweep(synth, g, split="none")
    t = res.daily_trades
    assert t.index.equals(res.daily_pnl.index) and t.columns.equals(res.daily_pnl.columns)
    assert (t.dtypes == np.int32).all()
    np.testing.assert_array_equal(t.sum().to_numpy(), res.summary.trades.to_numpy())
    assert res.summary.trades.min() > 0 and (t.to_numpy() > 1).any()  # several trades in one session
    assert ((t > 0) | (res.daily_pnl == 0)).all().all()  # a session with P&L has a trade
    for combo in (0, 5):
        assert_trade_counts_match(res, combo, backtest(synth[0].frame, res.params(combo)))
    # a one-trade-a-day cap shows in the counts
    capped = res.grid.index[res.grid.max_trades_per_day == 1]
    assert t[capped].to_numpy().max() == 1
    # per contract: counts of the data sets are summed by date like the P&L
    per = sweep([Series("continuous", _two_contract_frame(synth[0].frame), [])], g, warmup_sessions=2)
    np.testing.assert_array_equal(per.daily_trades.sum().to_numpy(), per.summary.trades.to_numpy())


# ----------------------------------------------------------------------------------- grids
def test_grid_order_ids_and_hashes(synth):
    g = ParamGrid({"stop_ticks": [5, 7], "target_r": [1.0, 2.0, 3.0]})
    assert len(g) == 6
    assert g.combos()[:4] == [{"stop_ticks": 5, "target_r": 1.0}, {"stop_ticks": 5, "target_r": 2.0},
                              {"stop_ticks": 5, "target_r": 3.0}, {"stop_ticks": 7, "target_r": 1.0}]
    res = sweep(synth, g, split="none")
    assert list(res.grid.index) == list(range(6)) and res.grid.index.name == "combo"
    assert list(res.grid.columns) == ["stop_ticks", "target_r", "params_hash", "signal_hash"]
    assert res.params(4) == Params(stop_ticks=7, target_r=2.0)
    assert res.grid.params_hash[4] == Params(stop_ticks=7, target_r=2.0).hash()
    assert res.grid.signal_hash.nunique() == 1


def test_random_sample_reproducible():
    g = ParamGrid({"stop_ticks": list(range(3, 20)), "target_r": [1.0, 1.5, 2.0, 2.5, 3.0], "time_stop_bars": [20, 50]})
    a, b, c = g.sample(25, seed=3).combos(), g.sample(25, seed=3).combos(), g.sample(25, seed=4).combos()
    assert a == b and a != c and len(a) == 25
    full = g.combos()
    pos = [full.index(x) for x in a]
    assert pos == sorted(pos)  # ids follow grid order
    assert len(g.sample(10_000, seed=1)) == len(g) == 170


def test_grid_validation_errors(tmp_path):
    with pytest.raises(ParamsError, match="unknown parameter 'stop'"):
        ParamGrid({"stop": [5]})
    with pytest.raises(ParamsError, match="stop_ticks"):
        ParamGrid({"stop_ticks": [5, 0]}).params()
    # a value outside its range is refused when the grid is built, before any combination
    with pytest.raises(ParamsError, match="entry_start_et = '25:00'"):
        ParamGrid({"entry_start_et": ["09:35", "25:00"]})
    # a value valid alone but not with the others is refused naming its combination
    with pytest.raises(ParamsError, match=r"combination 1 .*entry_start_et"):
        ParamGrid({"entry_start_et": ["09:35", "15:50"]}).params()
    with pytest.raises(ParamsError, match="green_min_up"):
        ParamGrid({"green_min_up": [3, 9]}).params()
    with pytest.raises(ParamsError, match="empty"):
        ParamGrid({"stop_ticks": []})
    with pytest.raises(ParamsError, match="duplicated"):
        ParamGrid({"stop_ticks": [5, 5]})
    with pytest.raises(ParamsError, match="stop_ticks: cannot read 'x'"):
        ParamGrid.from_strings(["stop_ticks=5,x"])
    with pytest.raises(ParamsError, match="NAME=V1"):
        ParamGrid.from_strings(["stop_ticks"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[grid]\nstop_ticks = [5,\n")
    with pytest.raises(ParamsError, match="not valid TOML"):
        ParamGrid.from_toml(bad)
    with pytest.raises(ParamsError, match="stop_ticks = 5.5 is not an integer"):
        ParamGrid({"stop_ticks": [5.5]})


def test_grid_toml_and_strings(tmp_path):
    f = tmp_path / "g.toml"
    f.write_text("[grid]\nstop_ticks = [5, 7]\nsession = 'all'\ngolden_rule_strict = [true, false]\n"
                 "quality_weights = [[0.3, 0.2, 0.25, 0.25], [0.25, 0.25, 0.25, 0.25]]\n[sample]\nn = 3\nseed = 2\n")
    g = ParamGrid.from_toml(f)
    assert g.full_size == 8 and len(g) == 3 and g.values["session"] == ("all",)
    assert all(isinstance(p.quality_weights, tuple) for p in g.params())
    g2 = ParamGrid.from_toml(_write(tmp_path / "g2.toml", g.to_toml()))
    assert g2.combos() == g.combos()
    s = ParamGrid.from_strings(["stop_ticks=5,7", "target_r=1.5,2", "golden_rule_strict=true,false",
                                "flat_at_et=15:55,15:00"])
    assert s.values == {"stop_ticks": (5, 7), "target_r": (1.5, 2.0), "golden_rule_strict": (True, False),
                        "flat_at_et": ("15:55", "15:00")}
    from research.sweep import DEFAULT_GRID_PATH

    assert len(ParamGrid.from_toml(DEFAULT_GRID_PATH)) >= 500


def _write(path, text):
    path.write_text(text)
    return path


# ------------------------------------------------------------------------------- results
def test_result_contract_and_save_load(synth, tmp_path):
    g = ParamGrid({"entry_threshold": [0.2, 0.3], "stop_ticks": [5, 9],
                   "quality_weights": [[0.3, 0.2, 0.25, 0.25], [0.4, 0.2, 0.2, 0.2]]})
    res = sweep(synth, g, split="none")
    assert list(res.summary.columns) == ["trades", "wins", "win_rate", "net_pnl_usd", "gross_profit_usd",
                                         "gross_loss_usd", "profit_factor", "expectancy_usd", "expectancy_r",
                                         "commissions_usd", "sharpe", "sortino", "max_drawdown_usd", "sessions",
                                         "trades_per_day"]
    d = res.daily_pnl
    assert isinstance(d.index, pd.DatetimeIndex) and d.index.name == "session" and d.index.tz is None
    assert list(d.columns) == list(range(8)) and (d.dtypes == np.float64).all()
    assert np.allclose(d.sum().to_numpy(), res.summary.net_pnl_usd.to_numpy())
    assert list(res.segments.columns) == ["name", "first_session", "last_session", "bars"]
    m = res.meta
    for k in ("sweep_id", "base_params", "capital", "n_trials", "data", "created", "elapsed_s", "engine",
              "code_version"):
        assert k in m, k
    assert m["n_trials"] == 8 and m["engine"] == "serial" and m["data"][0]["sha256"]
    assert pd.Timestamp(m["created"]).tzinfo is not None
    assert res.to_frame().shape == (8, 5 + 15)
    res.save(tmp_path / "out")
    back = SweepResult.load(tmp_path / "out")
    for name in ("grid", "summary", "daily_pnl", "segments", "daily_trades"):
        pd.testing.assert_frame_equal(getattr(back, name), getattr(res, name), check_index_type=False)
    assert back.meta == res.meta
    assert back.params(7) == res.params(7) and back.params(7).quality_weights == (0.4, 0.2, 0.2, 0.2)
    bt = back.backtest(3, synth[0])
    assert len(bt.trades) == res.summary.trades[3] == back.daily_trades[3].sum()

    # the walk-forward reads the trade counts (weekly periods: the synthetic set has 10 days)
    from research.validation.walkforward import walk_forward_from_sweep

    wf = walk_forward_from_sweep(back, boundaries="W-MON", is_periods=1)
    assert "oos_trades" in wf.windows and wf.summary["oos_trades"] > 0
    # a sweep saved before trade counts existed: no daily_trades.parquet -> None, the walk-forward falls back
    (tmp_path / "out" / "daily_trades.parquet").unlink()
    old = SweepResult.load(tmp_path / "out")
    assert old.daily_trades is None
    wf_old = walk_forward_from_sweep(old, boundaries="W-MON", is_periods=1, min_trades=10**6)
    assert "oos_trades" not in wf_old.windows and "not applied" in wf_old.verdict
    pd.testing.assert_series_equal(wf_old.oos_pnl, wf.oos_pnl)
    # saving a result without counts over a folder that has them removes the stale file
    res.save(tmp_path / "again")
    SweepResult(grid=res.grid, summary=res.summary, daily_pnl=res.daily_pnl, segments=res.segments,
                meta=res.meta).save(tmp_path / "again")
    assert SweepResult.load(tmp_path / "again").daily_trades is None


# --------------------------------------------------------------------------------- cache
def test_resumable_cache(synth, tmp_path):
    g = ParamGrid({"entry_threshold": [0.2, 0.25, 0.3], "stop_ticks": [5, 7]})
    kw = dict(split="none", cache_dir=tmp_path / "c", chunk_size=2)
    first = sweep(synth, g, **kw)
    assert first.meta["tasks"] == 3 and first.meta["tasks_computed"] == 3 and first.meta["tasks_cached"] == 0
    files = sorted((tmp_path / "c" / first.meta["sweep_id"]).glob("*.npz"))
    assert len(files) == 3
    before = fused.SIGNAL_RUNS
    second = sweep(synth, g, **kw)
    assert second.meta["tasks_cached"] == 3 and second.meta["tasks_computed"] == 0 and fused.SIGNAL_RUNS == before
    pd.testing.assert_frame_equal(second.summary, first.summary)
    pd.testing.assert_frame_equal(second.daily_pnl, first.daily_pnl)
    pd.testing.assert_frame_equal(second.daily_trades, first.daily_trades)  # trade counts are cached too
    files[1].unlink()  # a partially filled cache: only the missing task runs
    files[2].write_bytes(b"torn")  # an unreadable file is recomputed, not trusted
    third = sweep(synth, g, **kw)
    assert third.meta["tasks_cached"] == 1 and third.meta["tasks_computed"] == 2
    pd.testing.assert_frame_equal(third.summary, first.summary)
    pd.testing.assert_frame_equal(third.daily_pnl, first.daily_pnl)
    pd.testing.assert_frame_equal(third.daily_trades, first.daily_trades)
    # a task file of the earlier format (no trade counts) is recomputed, not trusted
    with np.load(files[0]) as z:
        arrays = {k: z[k] for k in z.files if k != "daily_trades"}
    np.savez(files[0], **arrays)
    fourth = sweep(synth, g, **kw)
    assert fourth.meta["tasks_cached"] == 2 and fourth.meta["tasks_computed"] == 1
    pd.testing.assert_frame_equal(fourth.daily_trades, first.daily_trades)
    # another grid, base or split is another sweep key
    other = sweep(synth, g, split="none", cache_dir=tmp_path / "c", chunk_size=2, base=Params(slippage_ticks=0))
    assert other.meta["sweep_id"] != first.meta["sweep_id"] and other.meta["tasks_cached"] == 0


def test_task_format_is_part_of_the_sweep_key(synth, tmp_path, monkeypatch):
    g = ParamGrid({"stop_ticks": [5, 7]})
    kw = dict(split="none", cache_dir=tmp_path / "c")
    first = sweep(synth, g, **kw)
    monkeypatch.setattr(sweep_runner, "TASK_FORMAT", sweep_runner.TASK_FORMAT - 1)  # an older cache format
    older = sweep(synth, g, **kw)
    assert older.meta["sweep_id"] != first.meta["sweep_id"] and older.meta["tasks_cached"] == 0


# --------------------------------------------------------------------------------- splits
def _two_contract_frame(frame: pd.DataFrame) -> pd.DataFrame:
    from strategy.market.sessions import session_id

    f = frame.copy()
    sid = session_id(f.index)
    cut = np.unique(sid)[5]
    f["contract"] = pd.Categorical(np.where(sid < cut, "ESH24", "ESM24"))
    f["roll_offset"] = 0.0
    f.attrs = dict(frame.attrs)
    return f


def test_contract_split_one_dataset_per_contract(synth):
    f = _two_contract_frame(synth[0].frame)
    s = [Series("continuous", f, [])]
    segs = contract_segments(f)
    ds = build_datasets(s, split="contract", warmup_sessions=2)
    assert [d.name for d in ds] == ["ESH24", "ESM24"] and len(segs) == 2
    assert ds[0].trade_from == 0 and ds[1].trade_from > 0  # the second segment has a warm-up prefix
    assert sum(d.bars for d in ds) == len(f)
    assert [d.name for d in build_datasets(s, split="none")] == ["continuous"]
    g = ParamGrid({"stop_ticks": [5, 9], "entry_threshold": [0.2, 0.3]})
    res = sweep(s, g, warmup_sessions=2)
    assert res.segments.name.tolist() == ["ESH24", "ESM24"]
    assert res.segments.bars.tolist() == [b - a for _, a, b in segs]
    assert res.segments.last_session[0] < res.segments.first_session[1]
    # whole series: exact; per contract: signals restart from the warm-up, same days, few differences
    whole = sweep(s, g, split="none")
    assert_matches_backtest(whole, f, [0, 3])
    assert res.daily_pnl.index.equals(whole.daily_pnl.index)
    first = res.segments.last_session[0]
    pd.testing.assert_frame_equal(res.daily_pnl.loc[:first], whole.daily_pnl.loc[:first])


def test_bad_split_and_empty(synth):
    with pytest.raises(ValueError, match="split"):
        sweep(synth, {"stop_ticks": [5]}, split="year")


# ------------------------------------------------------------------------------------ CLI
def _cli_args(argv: list[str]) -> argparse.Namespace:
    from research.cli import _Formatter, sweep_cmd

    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="group")
    sweep_cmd.add_parser(sub, _Formatter)
    return p.parse_args(["sweep", *argv])


def test_cli_sweep(tmp_path, capsys):
    from research.cli import sweep_cmd

    out = tmp_path / "out"
    args = _cli_args(["--param", "stop_ticks=5,7", "--param", "entry_threshold=0.2,0.3", "--serial", "--split",
                      "none", "--out", str(out), "--cache", str(tmp_path / "cache")])
    assert sweep_cmd.run(args) == 0
    text = capsys.readouterr().out
    assert "SYNTHETIC DATA" in text and "top 4 of 4" in text and str(out) in text
    res = SweepResult.load(out)
    assert len(res.grid) == 4 and res.meta["engine"] == "serial"
    # how the data were read, for the sweep report's in-depth backtest
    load = res.meta["load"]
    assert [Path(p).name for p in load["paths"]] == [Path(d["path"]).name for d in res.meta["data"]]
    assert all(Path(p).is_absolute() for p in load["paths"]) and load["bar"] is None
    assert sweep_cmd.run(_cli_args(["--param", "stop_ticks=0", "--serial"])) == 2
    assert "stop_ticks" in capsys.readouterr().out
    assert sweep_cmd.run(_cli_args(["--param", "nope=1", "--serial"])) == 2


def test_fused_equals_backtest_at_the_margin_floor(synth):
    # 2 contracts need $24,000 of ES margin: a thin cushion above it stops trading after the first losses
    grid = ParamGrid({"initial_capital_usd": [24_100.0, 24_400.0, 100_000.0]})
    res = sweep(synth, grid, split="none")
    stopped = [backtest(synth[0].frame, res.params(c)).meta["trading_stopped"] for c in range(3)]
    assert stopped[0] is not None and stopped[2] is None
    assert res.summary.trades[0] < res.summary.trades[2]
    assert_matches_backtest(res, synth[0].frame, [0, 1, 2])
