"""One signal code path: the incremental engine equals the vectorized signals, and nothing looks ahead."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from barbuilder import edge_case_bars
from conftest import es5m_files

from research.validation.causality import frames_equal, prefix_violations, random_cuts
from strategy import COLUMNS, Params, SignalEngine, compute_signals
from strategy.signals import (
    allocate_outputs,
    bar_duration_ns,
    outputs_to_frame,
    resolve_order_flow,
)


def replay(bars: pd.DataFrame, params: Params, order_flow: str | None = None) -> pd.DataFrame:
    """Feed `bars` one at a time through a SignalEngine; assemble its rows into the signal frame."""
    flow = resolve_order_flow(bars, params, order_flow)
    tick = bars.attrs["tick_size"]
    eng = SignalEngine(params, tick_size=tick, order_flow=flow, bar_seconds=bar_duration_ns(bars) / 1e9)
    of, oi, ob = allocate_outputs(len(bars))
    ts = bars.index.as_unit("ns").asi8
    o, h, l, c = (bars[k].to_numpy() for k in ("open", "high", "low", "close"))
    v = bars["volume"].to_numpy()
    bid = bars["bid_volume"].to_numpy() if flow else np.zeros(len(bars), np.int64)
    ask = bars["ask_volume"].to_numpy() if flow else np.zeros(len(bars), np.int64)
    off = bars["roll_offset"].to_numpy() if "roll_offset" in bars.columns else np.zeros(len(bars))
    for i in range(len(bars)):
        row = eng.update_values(int(ts[i]), o[i], h[i], l[i], c[i], int(v[i]), int(bid[i]), int(ask[i]), float(off[i]))
        of[:, i], oi[:, i], ob[:, i] = row.raw
    return outputs_to_frame(of, oi, ob, bars.index)


def assert_same(a: pd.DataFrame, b: pd.DataFrame) -> None:
    problems = frames_equal(a, b, atol=1e-9)
    assert not problems, "\n".join(problems[:10])


@pytest.mark.parametrize("session", ["rth", "all", "globex"])
@pytest.mark.parametrize("flow", [True, False])
def test_engine_equals_vectorized_on_edge_cases(session, flow):
    bars = edge_case_bars(flow=flow)
    params = Params(session=session)
    vec = compute_signals(bars, params)
    assert vec.attrs["order_flow_mode"] == ("bidask" if flow else "ohlcv")
    assert_same(replay(bars, params), vec)
    # the sequence really contains what it is meant to exercise
    ins = vec["in_session"].to_numpy()
    assert ins.any() and (session == "all") == ins.all()
    assert vec["long_candidate"].any() and vec["short_candidate"].any()
    assert vec["base_active"].any() and vec["green_confirmed_at"].notna().any() and vec["red_confirmed_at"].notna().any()


def test_engine_row_mapping_matches_frame():
    bars = edge_case_bars(n_days=4)
    params = Params(session="all")
    vec = compute_signals(bars, params)
    eng = SignalEngine(params, tick_size=0.25, order_flow=True, bar_seconds=300)
    for i, (t, bar) in enumerate(bars.iterrows()):
        row = eng.update(bar, time=t)
        if i in (30, 200, len(bars) - 1):
            d = row.to_dict()
            assert list(d) == list(COLUMNS)
            for col in COLUMNS:
                want = vec[col].iloc[i]
                got = d[col]
                if isinstance(want, float):
                    assert got == pytest.approx(want, abs=1e-9, nan_ok=True), col
                else:
                    assert (pd.isna(want) and pd.isna(got)) or got == want, col


def test_snapshot_restore_resumes_exactly():
    bars = edge_case_bars(n_days=6)
    params = Params(session="all")
    full = replay(bars, params)
    half = len(bars) // 2
    eng = SignalEngine(params, tick_size=0.25, order_flow=True, bar_seconds=300)
    for t, bar in bars.iloc[:half].iterrows():
        eng.update(bar, time=t)
    blob = eng.to_bytes()
    snap = eng.snapshot()
    for t, bar in bars.iloc[half:half + 50].iterrows():  # the original goes on: must not disturb the copies
        eng.update(bar, time=t)
    a = SignalEngine(params, tick_size=0.25, order_flow=True, bar_seconds=300)
    a.load_bytes(blob)
    b = SignalEngine(params, tick_size=0.25, order_flow=True, bar_seconds=300)
    b.restore(snap)
    for eng2 in (a, b):
        rows = [eng2.update(bar, time=t).raw for t, bar in bars.iloc[half:].iterrows()]
        of = np.array([r[0] for r in rows]).T
        oi = np.array([r[1] for r in rows]).T
        ob = np.array([r[2] for r in rows]).T
        assert_same(outputs_to_frame(of, oi, ob, bars.index[half:]), full.iloc[half:])
    assert len(blob) < 20_000  # small, fixed-size state


def test_restore_refuses_other_params_and_old_bars():
    eng = SignalEngine(Params(), tick_size=0.25, order_flow=True)
    snap = eng.snapshot()
    other = SignalEngine(Params(stop_ticks=8), tick_size=0.25, order_flow=True)
    with pytest.raises(ValueError, match="snapshot was made with"):
        other.restore(snap)
    bars = edge_case_bars(n_days=1)
    t0, b0 = next(bars.iterrows())
    eng.update(b0, time=t0)
    with pytest.raises(ValueError, match="not after the previous bar"):
        eng.update(b0, time=t0)
    with pytest.raises(ValueError, match="naive"):
        eng.update(b0, time=t0.tz_localize(None))


def test_bidask_mode_without_columns_is_refused():
    bars = edge_case_bars(n_days=1, flow=False)
    with pytest.raises(ValueError, match="no bid_volume/ask_volume"):
        compute_signals(bars, Params(order_flow="bidask"))


def test_off_grid_price_is_refused_with_row():
    bars = edge_case_bars(n_days=1)
    bars.iloc[5, bars.columns.get_loc("close")] += 0.1
    with pytest.raises(ValueError, match=r"close at row 5 .* not on the 0.25 tick grid"):
        compute_signals(bars)


def test_bad_inputs_are_reported_in_the_checks_order():
    """The one-pass input build reports what the column-by-column checks would: a time that does not
    increase first, then the first column (open, high, low, close) with an off-grid row, at its first row."""
    bars = edge_case_bars(n_days=1)
    bars.iloc[9, bars.columns.get_loc("open")] += 0.1
    bars.iloc[3, bars.columns.get_loc("low")] += 0.1
    bars.iloc[4, bars.columns.get_loc("low")] = np.nan
    with pytest.raises(ValueError, match=r"^open at row 9 .* not on the 0.25 tick grid"):
        compute_signals(bars)
    bars.iloc[9, bars.columns.get_loc("open")] -= 0.1
    with pytest.raises(ValueError, match=r"^low at row 3 .* not on the 0.25 tick grid"):
        compute_signals(bars)
    idx = bars.index.to_numpy().copy()
    idx[7] = idx[6]
    bars.index = pd.DatetimeIndex(idx, name=bars.index.name)
    with pytest.raises(ValueError, match=r"^bar times must increase strictly: row 7 "):
        compute_signals(bars)


def test_price_columns_of_mixed_dtypes_give_the_same_signals():
    bars = edge_case_bars(n_days=1)
    ref = compute_signals(bars)
    mixed = bars.assign(open=(bars["open"] * 4).astype("int64") / 4, close=bars["close"].astype("float32"),
                        high=bars["high"].astype(object))
    assert_same(compute_signals(mixed), ref)


def test_duplicate_columns_and_missing_times_are_refused_plainly():
    bars = edge_case_bars(n_days=1)
    twice = pd.concat([bars, bars[["volume"]]], axis=1)
    with pytest.raises(ValueError, match="more than one column named 'volume'"):
        compute_signals(twice)
    times = bars.index.tolist()
    times[0] = pd.NaT
    nat = bars.set_axis(pd.DatetimeIndex(times, name=bars.index.name))
    assert nat.index.tz is not None
    with pytest.raises(ValueError, match="bar time at row 0 is missing"):
        compute_signals(nat)


def test_compute_signals_leaves_the_frames_attrs_alone():
    bars = edge_case_bars(n_days=1)
    bars.attrs["rolls"] = [{"time": bars.index[3], "gap": 1.0}]
    before = {k: (list(v) if isinstance(v, list) else v) for k, v in bars.attrs.items()}
    compute_signals(bars)
    assert bars.attrs == before


@pytest.mark.parametrize("session", ["rth", "all"])
def test_prefix_invariance_edge_cases(session):
    bars = edge_case_bars()
    params = Params(session=session)
    problems = prefix_violations(lambda b: compute_signals(b, params), bars, random_cuts(len(bars), 8, seed=1))
    assert not problems, "\n".join(problems[:10])


def test_prefix_check_catches_look_ahead():
    """The helper itself must fail on a transform that peeks one bar ahead."""
    bars = edge_case_bars(n_days=2)

    def peeking(b: pd.DataFrame) -> pd.DataFrame:
        return pd.DataFrame({"next_close": b["close"].shift(-1)}, index=b.index)

    assert prefix_violations(peeking, bars, [50, 100])


# ---- the real data: 32 ES contracts ------------------------------------------------------------
@pytest.fixture(scope="module")
def es_continuous():
    from research.data import load_bars

    return load_bars(es5m_files())


@pytest.mark.realdata
def test_parity_on_all_32_contracts(es_continuous):
    bars = es_continuous
    assert bars.attrs.get("continuous") and len(bars) > 500_000
    for params in (Params(), Params(session="all")):
        vec = compute_signals(bars, params)
        assert vec.attrs["order_flow_mode"] == "bidask"
        assert vec["long_entry"].sum() > 100 and vec["short_entry"].sum() > 100
        assert_same(replay(bars, params), vec)


@pytest.mark.realdata
def test_parity_ohlcv_mode_per_contract():
    from research.data import load_bars

    for f in es5m_files()[::8]:
        bars = load_bars(f)
        params = Params(order_flow="ohlcv")
        vec = compute_signals(bars, params)
        assert vec.attrs["order_flow_mode"] == "ohlcv"
        assert_same(replay(bars, params), vec)


@pytest.mark.realdata
def test_prefix_invariance_real_data(es_continuous):
    bars = es_continuous
    params = Params()
    full = compute_signals(bars, params)
    cuts = random_cuts(len(bars), 4, seed=7, min_len=1000)
    problems = prefix_violations(lambda b: compute_signals(b, params), bars, cuts, full=full)
    assert not problems, "\n".join(problems[:10])


def test_row_without_copy_reads_the_engine_buffer():
    bars = edge_case_bars(n_days=1)
    eng = SignalEngine(Params(session="all"), tick_size=0.25, order_flow=True, bar_seconds=300)
    ts = bars.index.as_unit("ns").asi8
    rows = []
    for i in range(3):
        b = bars.iloc[i]
        rows.append(eng.update_values(int(ts[i]), b.open, b.high, b.low, b.close, int(b.volume), int(b.bid_volume),
                                      int(b.ask_volume), copy=(i == 0)))
    assert rows[0]["bar_index"] == 0  # copied: keeps its bar
    assert rows[1]["bar_index"] == 2  # not copied: shows the latest bar


def test_engine_moves_its_time_zone_table_across_years():
    """Bars years apart (each beyond the engine's +-200-day table) across DST changes: the same rows as
    the vectorized kernel, and a bar before 1970 is refused."""
    days = edge_case_bars(n_days=1, flow=True)
    parts = []
    for shift in ("0D", "190D", "420D", "1500D"):  # winter and summer time, old tables left behind
        part = days.copy()
        part.index = part.index + pd.Timedelta(shift)
        parts.append(part)
    bars = pd.concat(parts)
    bars.attrs = days.attrs
    params = Params(session="all")
    assert_same(replay(bars, params), compute_signals(bars, params))
    eng = SignalEngine(params, tick_size=0.25, order_flow=True, bar_seconds=300)
    with pytest.raises(ValueError, match="before 1970"):
        eng.update_values(-3_600_000_000_000, 5000.0, 5000.25, 4999.75, 5000.0, 10, 5, 5)


def test_restore_refuses_damaged_state_values():
    """The step reads the sorted volume window and the deques without bounds checks: a snapshot whose
    values would send it outside them is refused, and the engine keeps its own state."""
    import copy
    import pickle

    from strategy import layout as L

    bars = edge_case_bars(n_days=1)
    eng = SignalEngine(Params(session="all"), tick_size=0.25, order_flow=True, bar_seconds=300)
    for t, bar in bars.iloc[:30].iterrows():
        eng.update(bar, time=t)
    good = eng.snapshot()
    for what, damage in (("volume window", lambda a: a[0].__setitem__(L.S_MED_N, 10**8)),
                         ("volume window", lambda a: a[0].__setitem__(L.S_MED_N, -1)),
                         ("volume window", lambda a: a[0].__setitem__(L.S_T, -5)),
                         ("deque 2", lambda a: a[4].__setitem__((2, 0), 10**6)),
                         ("deque 0", lambda a: a[4].__setitem__((0, 1), -3))):
        snap = eng.snapshot()
        damage(snap["arrays"])
        other = SignalEngine(Params(session="all"), tick_size=0.25, order_flow=True, bar_seconds=300)
        other.restore(good)
        with pytest.raises(ValueError, match=f"snapshot state is damaged.*{what.split()[-1]}"):
            other.restore(snap)
        for mine, theirs in zip(other.snapshot()["arrays"], good["arrays"]):
            np.testing.assert_array_equal(mine, theirs)  # untouched by the refused restore
    with pytest.raises(TypeError, match="snapshot"):
        copy.deepcopy(eng)
    with pytest.raises(TypeError, match="to_bytes"):
        pickle.dumps(eng)
