"""The incremental trade rules (SignalEngine + TradeEngine, one bar at a time) equal the batch
backtest trade for trade: entries, exits, prices, reasons, P&L, MFE/MAE; and a state saved with
``to_bytes`` and loaded into a new engine continues exactly."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import es5m_files

from research.backtest import run
from research.data import default_dataset, load_bars
from strategy import Params, SignalEngine
from strategy import trade_rules as R
from strategy.bar_clock import BarClock
from strategy.market.calendar import session_close_minutes, trading_day_ok
from strategy.market.instruments import get_spec
from strategy.signals import bar_duration_ns, resolve_tick_size, time_inputs
from strategy.trade_engine import TradeEngine

COMPARE = ["side", "signal_ts", "entry_ts", "exit_ts", "entry_price", "stop_price", "target_price", "exit_price",
           "exit_reason", "pnl_usd", "pnl_usd_optimistic", "mfe_ticks", "mae_ticks", "bars_held", "slippage_ticks",
           "intrabar_ambiguous", "same_bar_exit", "gap_through_stop", "signal_bar"]


def replay(bars: pd.DataFrame, params: Params, *, reload_every: int = 0, seed: int = 0):
    """Trades and equity of `bars` through the incremental engines, optionally reloading the trade
    engine's state into a fresh engine every ~`reload_every` bars (random points)."""
    spec = get_spec(bars.attrs.get("root") or bars.attrs.get("symbol") or "ES")
    tick = resolve_tick_size(bars, None)
    bar_ns = bar_duration_ns(bars, None)
    flow = "bid_volume" in bars.columns and params.order_flow != "ohlcv"
    sig = SignalEngine(params, tick_size=tick, order_flow=flow, bar_seconds=bar_ns / 1e9)
    kw = dict(tick_value=tick * spec.point_value, commission_per_side=spec.commission_per_side,
              margin_per_contract=spec.margin_per_contract)
    eng = TradeEngine(params, **kw)
    clock = BarClock(bar_ns)
    days: dict[int, tuple[float, bool]] = {}
    rng = np.random.default_rng(seed)
    next_reload = rng.integers(1, reload_every) if reload_every else -1
    ts = bars.index.as_unit("ns").asi8
    cols = [bars[c].to_numpy() for c in ("open", "high", "low", "close", "volume")]
    bid = bars["bid_volume"].to_numpy() if flow else np.zeros(len(bars), np.int64)
    ask = bars["ask_volume"].to_numpy() if flow else np.zeros(len(bars), np.int64)
    rows, equity, last_ts, last_c = [], [], 0, 0
    for i in range(len(bars)):
        o, h, l, c, v = (x[i] for x in cols)
        s = sig.update_values(int(ts[i]), float(o), float(h), float(l), float(c), int(v), int(bid[i]), int(ask[i]),
                              copy=False)
        if not s["in_session"]:
            continue
        day, close_min, _ = clock.fields(int(ts[i]))
        if day not in days:
            days[day] = (float(session_close_minutes(np.array([day]))[0]), bool(trading_day_ok(np.array([day]))[0]))
        close_at, ok = days[day]
        t = [int(np.rint(x / tick)) for x in (o, h, l, c)]
        eq = eng.step_model(int(ts[i]), day, *t, close_min, close_at, ok, False, s["long_entry"], s["short_entry"],
                            s["long_candidate"], s["short_candidate"], s["bull_violation"], s["bear_violation"])
        equity.append(eq)
        last_ts, last_c = int(ts[i]), t[3]
        rows.append(eng.pop_trades())
        if next_reload >= 0 and eng.bar_index >= next_reload:
            blob = eng.to_bytes()
            eng = TradeEngine(params, **kw)
            eng.load_bytes(blob)
            next_reload = eng.bar_index + rng.integers(1, reload_every)
    eng.finish(last_ts, last_c)
    rows.append(eng.pop_trades())
    ti = np.concatenate([r[0] for r in rows]) if rows else np.zeros((0, R.N_T), np.int64)
    tf = np.concatenate([r[1] for r in rows]) if rows else np.zeros((0, R.N_TF))
    return ti, tf, np.array(equity), tick, bar_ns


def as_frame(ti: np.ndarray, tf: np.ndarray, tick: float, bar_ns: int, stop: int) -> pd.DataFrame:
    ph = ti[:, R.T_EXIT_PHASE]
    t = lambda k: pd.DatetimeIndex(ti[:, k].astype("datetime64[ns]"), tz="UTC")  # noqa: E731
    return pd.DataFrame({
        "side": ti[:, R.T_SIDE].astype(np.int8), "signal_ts": t(R.T_SIG_TS), "entry_ts": t(R.T_ENTRY_TS),
        "exit_ts": t(R.T_EXIT_TS) + pd.to_timedelta(np.where(ph == R.PH_OPEN, 0, bar_ns), "ns"),
        "entry_price": ti[:, R.T_ENTRY_PX] * tick, "stop_price": ti[:, R.T_STOP_PX] * tick,
        "target_price": ti[:, R.T_TARGET_PX] * tick, "exit_price": ti[:, R.T_EXIT_PX] * tick,
        "exit_reason": np.asarray(R.REASONS, object)[ti[:, R.T_REASON]] if len(ti) else np.array([], object),
        "pnl_usd": tf[:, R.TF_PNL], "pnl_usd_optimistic": tf[:, R.TF_PNL_OPT],
        "mfe_ticks": ti[:, R.T_MFE].astype(float), "mae_ticks": ti[:, R.T_MAE].astype(float),
        "bars_held": (ti[:, R.T_EXIT_IDX] - ti[:, R.T_ENTRY_IDX] + np.where(ph == R.PH_OPEN, 0, 1)).astype(np.int32),
        "slippage_ticks": (ti[:, R.T_ENTRY_SLIP] + ti[:, R.T_EXIT_SLIP]).astype(float),
        "intrabar_ambiguous": ti[:, R.T_AMBIG].astype(bool), "same_bar_exit": ti[:, R.T_SAME_BAR].astype(bool),
        "gap_through_stop": ti[:, R.T_GAP].astype(bool), "signal_bar": ti[:, R.T_SIG],
    })


def assert_same_trades(bars: pd.DataFrame, params: Params, **kw) -> int:
    res = run(bars, params)
    ti, tf, equity, tick, bar_ns = replay(bars, params, **kw)
    got = as_frame(ti, tf, tick, bar_ns, params.stop_ticks)
    want = res.trades[COMPARE].reset_index(drop=True)
    assert len(got) == len(want), (len(got), len(want))
    pd.testing.assert_frame_equal(got[COMPARE], want, check_dtype=False, check_exact=True)
    # equity at every in-session close except the last (the batch closes the last bar before deciding)
    np.testing.assert_array_equal(equity[:-1], res.equity.to_numpy()[:-1])
    return len(got)


@pytest.fixture(scope="module")
def synthetic_bars(data_dir) -> pd.DataFrame:
    return load_bars(default_dataset(), bar="5min")


@pytest.mark.parametrize("mode", ["backtest", "data_collection", "paper", "live"])
def test_incremental_equals_batch_on_synthetic(synthetic_bars, mode):
    assert assert_same_trades(synthetic_bars, Params.for_mode(mode)) > 0 or mode == "live"


def test_state_reloaded_at_random_bars_continues_exactly(synthetic_bars):
    p = Params.for_mode("data_collection")
    assert assert_same_trades(synthetic_bars, p, reload_every=7, seed=3) > 10


def test_state_refuses_other_params(synthetic_bars):
    a = TradeEngine(Params(), tick_value=12.5, commission_per_side=2.0)
    b = TradeEngine(Params(stop_ticks=9), tick_value=12.5, commission_per_side=2.0)
    with pytest.raises(ValueError, match="other parameters"):
        b.load_bytes(a.to_bytes())


def test_bar_clock_matches_the_vectorised_time_fields(synthetic_bars):
    from strategy.market.sessions import session_id

    idx = pd.date_range("2019-03-08", "2019-03-12", freq="5min", tz="UTC").append(
        pd.date_range("2019-10-31", "2019-11-05", freq="5min", tz="UTC"))  # both DST changes
    bar_ns = 300_000_000_000
    _, _, close_min, weekday = time_inputs(idx, bar_ns)
    days = session_id(idx).astype("datetime64[D]").astype(np.int64)
    clock = BarClock(bar_ns)
    got = np.array([clock.fields(int(t)) for t in idx.as_unit("ns").asi8])
    np.testing.assert_array_equal(got[:, 0], days)
    np.testing.assert_array_equal(got[:, 1], close_min)
    np.testing.assert_array_equal(got[:, 2], weekday)


@pytest.mark.realdata
def test_incremental_equals_batch_on_all_real_contracts():
    total = 0
    files = es5m_files()
    for f in files:
        total += assert_same_trades(load_bars(f), Params.for_mode("backtest"))
    for f in files[::8]:  # the account stops of paper mode, on a sample
        total += assert_same_trades(load_bars(f), Params.for_mode("paper"))
    assert total > 1000


@pytest.mark.parametrize("frac", [0.23, 0.5, 0.81])
def test_trades_do_not_depend_on_later_bars(synthetic_bars, frac):
    """Prefix invariance of the trade rules: cutting the data at any bar changes no trade closed before
    the cut (the session end comes from the calendar, not from the data's last bar of a session)."""
    p = Params.for_mode("data_collection")
    full = run(synthetic_bars, p).trades
    k = int(len(synthetic_bars) * frac)
    cut = synthetic_bars.iloc[:k]
    part = run(cut, p).trades
    end = cut.index[-1]
    a = part.loc[part["exit_ts"] < end, COMPARE].reset_index(drop=True)
    b = full.loc[full["exit_ts"] < end, COMPARE].reset_index(drop=True)
    assert len(a) > 0
    pd.testing.assert_frame_equal(a, b)
