"""The account and day limits of the trade rules (METHOD.md 7.6 gate 5, "Modes and risk limits") with
planted entry signals: each fires exactly at the trade that reaches it, not one trade earlier or later,
in the batch rules (`strategy.trade_rules.simulate`), the backtest (`research.backtest.run`) and the
incremental `TradeEngine`; the day's limits reset at the trading-date roll (17:00 CT)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from planted_trades import (
    LOSS_USD,
    SCENARIOS,
    WIN_USD,
    backtest,
    et_times,
    et_ts,
    planted,
    scenario,
    simulate,
)

from strategy import Params
from strategy import trade_rules as R
from strategy.bar_clock import BarClock
from strategy.market.calendar import session_close_minutes, trading_day_ok
from strategy.trade_engine import TradeEngine

NO_FLAGS = (False,) * 5


def step_all(bars: pd.DataFrame, entries: np.ndarray, params: Params, margin: float = 12_000.0):
    """Every bar through `TradeEngine.step_model`; per bar the engine's (day stop, halt, losses in a row,
    trades today) after its close, and the closed trades' signal times."""
    eng = TradeEngine(params, tick_value=12.5, commission_per_side=2.25, margin_per_contract=margin)
    clock = BarClock(300_000_000_000)
    ts = bars.index.as_unit("ns").asi8
    o, h, l, c = (np.rint(bars[k].to_numpy() / 0.25).astype(np.int64) for k in ("open", "high", "low", "close"))
    seen, signals = [], []
    for j in range(len(bars)):
        day, close_min, _ = clock.fields(int(ts[j]))
        d = np.array([day])
        eng.step_model(int(ts[j]), day, int(o[j]), int(h[j]), int(l[j]), int(c[j]), float(close_min),
                       float(session_close_minutes(d)[0]), bool(trading_day_ok(d)[0]), j == len(bars) - 1,
                       bool(entries[j]), *NO_FLAGS)
        ti, _ = eng.pop_trades()
        signals += ti[:, R.T_SIG_TS].tolist()
        seen.append((eng.day_stop, eng.halted, eng.losses_in_a_row, eng.trades_today))
    return seen, et_times(pd.DatetimeIndex(np.array(signals, "datetime64[ns]"), tz="UTC"))


def test_paper_preset_holds_the_kill_switches():
    p = Params.for_mode("paper")
    assert (p.max_consecutive_losses, p.max_drawdown_pct, p.daily_profit_target_usd, p.daily_loss_limit_usd,
            p.max_trades_per_day) == (5, 3.0, 1000.0, 600.0, 50)
    assert (LOSS_USD, WIN_USD) == (-104.5, 170.5)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_each_limit_fires_at_the_trade_that_reaches_it(name):
    params, bars, entries, want, halt, _ = scenario(name)
    trades, equity, h = simulate(bars, entries, params, margin=12_000.0)
    assert et_times(trades["signal_ts"]) == want
    assert set(trades["pnl_usd"].round(2)) <= {LOSS_USD, WIN_USD}
    assert R.HALT_NAMES[max(int(h[1]), 0)] == halt
    if halt:  # the bar whose close stopped trading is the exit bar of the last trade
        assert bars.index[int(h[0])] == trades["exit_bar_ts"].iloc[-1]
    res = backtest(bars, entries, params)
    assert et_times(res.trades["signal_ts"]) == want
    np.testing.assert_array_equal(res.trades["pnl_usd"].to_numpy(), trades["pnl_usd"].to_numpy())
    stopped = res.meta["trading_stopped"]
    assert (stopped or {}).get("reason", "") == halt
    if halt:
        t = trades["exit_bar_ts"].iloc[-1] + pd.Timedelta(minutes=5)
        assert stopped["time"] == t.tz_convert("America/New_York").isoformat()


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_trade_engine_reports_the_limit_as_the_batch_applies_it(name):
    params, bars, entries, want, halt, day_stop = scenario(name)
    seen, signals = step_all(bars, entries, params)
    assert signals == want
    dates = bars.index.tz_convert("America/New_York").strftime("%Y-%m-%d")
    first_date_end = int(np.flatnonzero(dates == want[0][:10])[-1])
    assert seen[first_date_end][0] == ("" if halt else day_stop)
    assert seen[-1][1] == halt
    # up to the signal of the first date's last trade, no gate was set (the limit did not fire early)
    last_signal = [w for w in want if w[:10] == want[0][:10]][-1]
    k = int(bars.index.get_loc(et_ts(*last_signal.split())))
    assert all(s[0] == "" and s[1] == "" for s in seen[:k + 1])


def test_margin_floor_off_takes_every_signal():
    params, bars, entries, _, _, _ = scenario("margin_floor")
    res = backtest(bars, entries, params, margin_floor=False)
    assert len(res.trades) == int(entries.sum()) and res.meta["trading_stopped"] is None


def test_loss_streak_resets_at_the_1700_ct_roll():
    # losses on Tue; a Globex bar at 16:55 ET (15:55 CT) is still Tue's date, 18:00 ET (17:00 CT) is Wed's
    bars, entries = planted(("2019-12-03", "10:00", "SL SL SL SL SL S."), ("2019-12-03", "16:55", "."),
                            ("2019-12-03", "18:00", "."), ("2019-12-04", "10:00", "SL"))
    seen, signals = step_all(bars, entries, Params.for_mode("paper"))
    k1655 = int(bars.index.get_loc(et_ts("2019-12-03", "16:55")))
    assert seen[k1655] == ("loss_streak", "", 5, 5)
    assert seen[k1655 + 1] == ("", "", 0, 0)  # the 17:00 CT bar: a new trading date
    assert signals[-1] == "2019-12-04 10:00" and len(signals) == 6


def test_saturday_bar_takes_no_entry():
    # bad data: an RTH-looking bar on a Saturday (a date with no session) never opens a trade
    bars, entries = planted(("2019-12-06", "10:00", "SW"), ("2019-12-07", "10:00", "SW S."),
                            ("2019-12-09", "10:00", "SW"))
    trades, _, _ = simulate(bars, entries, Params.for_mode("paper"))
    assert et_times(trades["signal_ts"]) == ["2019-12-06 10:00", "2019-12-09 10:00"]
