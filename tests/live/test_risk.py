"""The risk rules through the whole live loop (bar replay -> SignalEngine -> TradeEngine -> bar-mode paper
broker -> journal) with planted bars: every limit and kill switch fires at the same trade as in the
backtest, the calendar (early closes, holidays), the weekend, the Friday rule, the feed-halt switch and
the emergency stop; and every time rule reads the bar's timestamp, not the wall clock."""

from __future__ import annotations

import pandas as pd
import pytest
from barbuilder import bar, frame, rth_times_at, zigzag
from planted_trades import (
    SCENARIOS,
    backtest,
    et_times,
    et_ts,
    make_trader,
    planted,
    scenario,
)

from strategy import Params

COMPARE = ["side", "signal_ts", "entry_ts", "exit_ts", "entry_price", "stop_price", "target_price", "exit_price",
           "exit_reason", "pnl_usd", "pnl_usd_optimistic", "mfe_ticks", "mae_ticks", "bars_held", "slippage_ticks"]


def run_live(bars, params, state_dir, entries=None, **kw):
    trader = make_trader(bars, params, state_dir, entries, **kw)
    res = trader.run()
    events = trader.journal.risk_events()
    trader.journal.close()
    return trader, res, events


def assert_same_trades(live: pd.DataFrame, batch: pd.DataFrame) -> None:
    assert len(live) == len(batch)
    if len(batch):
        pd.testing.assert_frame_equal(live[COMPARE].reset_index(drop=True), batch[COMPARE].reset_index(drop=True),
                                      check_dtype=False, check_exact=True)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_limits_in_the_live_loop_equal_the_backtest(tmp_path, name):
    params, bars, entries, want, halt, _ = scenario(name)
    trader, res, _ = run_live(bars, params, tmp_path, entries)
    assert res.reason == "replay_end"
    assert et_times(res.trades["signal_ts"]) == want
    assert_same_trades(res.trades, backtest(bars, entries, params).trades)
    assert trader.status()["kill_switches"]["halted"] == (halt or False)


# ------------------------------------------------------------------------------------ calendar
CALENDAR_DAYS = [
    ("2019-07-03", "13:00", "S S ."),            # early close 13:15: flat 13:10; close 13:05 enters, 13:10 not
    ("2019-07-04", "10:00", "S . S ."),          # Independence Day: no cash session, no entry
    ("2019-11-26", "15:45", "S . ."),            # regular day: close 15:50 enters, exits at 15:55
    ("2019-11-27", "14:00", "S" + "." * 21 + "S ."),  # held until 15:55; the 15:55 close takes no entry
    ("2019-11-28", "10:00", "S . S ."),          # Thanksgiving: no entry
    ("2019-11-29", "12:00", "S" + "." * 13 + "S ."),  # day after Thanksgiving: flat at 13:10, none after
    ("2019-12-24", "12:55", "S . . S"),          # Christmas Eve: flat at 13:10, the 13:15 close takes none
    ("2019-12-26", "10:00", "S ."),
]
CALENDAR_TRADES = [("2019-07-03 13:00", "2019-07-03 13:10"), ("2019-11-26 15:45", "2019-11-26 15:55"),
                   ("2019-11-27 14:00", "2019-11-27 15:55"), ("2019-11-29 12:00", "2019-11-29 13:10"),
                   ("2019-12-24 12:55", "2019-12-24 13:10"), ("2019-12-26 10:00", "2019-12-26 10:10")]


def test_early_closes_and_holidays_backtest_and_live_loop(tmp_path):
    params = Params.for_mode("paper")
    bars, entries = planted(*CALENDAR_DAYS)
    res = backtest(bars, entries, params)
    got = list(zip(et_times(res.trades["signal_ts"]), et_times(res.trades["exit_ts"])))
    assert got == CALENDAR_TRADES
    assert set(res.trades["exit_reason"]) == {"session_end"}
    _, live, _ = run_live(bars, params, tmp_path, entries)
    assert_same_trades(live.trades, res.trades)
    # flat at every close at/after the day's flat time, in both paths
    pos = live.equity["position"]
    close_et = (pos.index + pd.Timedelta(minutes=5)).tz_convert("America/New_York")
    flat_at = {"2019-07-03": "13:10", "2019-11-29": "13:10", "2019-12-24": "13:10"}
    late = [c.strftime("%H:%M") >= flat_at.get(c.strftime("%Y-%m-%d"), "15:55") for c in close_et]
    assert (pos[late] == 0).all() and (res.position.to_numpy()[late] == 0).all()


# ------------------------------------------------------------------------ the Friday rule (kernel)
def green_entry_bars(day: str, start: str) -> pd.DataFrame:
    """The GREEN base of tests/strategy/test_signal_rules.py: the kernel's long entry at bar 32
    (starting at `start` ET on `day`), then two bars to the end of the data."""
    bars = zigzag(30) + [bar(2), bar(3), bar(2, h=14), bar(1), bar(0)]
    return frame(bars, rth_times_at(len(bars), 32, day, start))


@pytest.mark.parametrize("day, start, taken", [
    ("2024-03-15", "14:55", True),    # Friday, close 15:00: still allowed
    ("2024-03-15", "15:00", False),   # Friday, close 15:05: no new entry after 15:00
    ("2024-03-14", "15:25", True),    # Thursday, close 15:30
])
def test_friday_cutoff_in_backtest_and_live_loop(tmp_path, day, start, taken):
    params = Params.for_mode("paper", min_base_quality=0.5)
    bars = green_entry_bars(day, start)
    from research.backtest import run

    res = run(bars, params)
    assert et_times(res.trades["signal_ts"]) == ([f"{day} {start}"] if taken else [])
    _, live, _ = run_live(bars, params, tmp_path)
    assert_same_trades(live.trades, res.trades)


# ------------------------------------------------------------------------------------ weekend
def test_weekend_replay_journals_the_resume_and_trades_nothing_on_saturday(tmp_path):
    params = Params.for_mode("paper")
    bars, entries = planted(("2019-12-05", "15:00", "SW ."), ("2019-12-06", "15:35", "S . . . ."),
                            ("2019-12-07", "10:00", "SW S."),  # a Saturday bar (bad data): no session, no entry
                            ("2019-12-09", "09:35", "SW"))
    trader, res, events = run_live(bars, params, tmp_path, entries)
    assert_same_trades(res.trades, backtest(bars, entries, params).trades)
    assert et_times(res.trades["signal_ts"]) == ["2019-12-05 15:00", "2019-12-06 15:35", "2019-12-09 09:35"]
    fri = res.trades.iloc[1]  # held into Friday's close: flat at 15:55, nothing over the weekend
    assert (fri["exit_reason"], et_times([fri["exit_ts"]])[0]) == ("session_end", "2019-12-06 15:55")
    weekend = [e for e in events if e["kind"] == "weekend"]
    assert len(weekend) == 1 and weekend[0]["ts_ns"] == et_ts("2019-12-09", "09:35").value
    assert "Sunday's open resumes trading" in weekend[0]["detail"]
    rolls = [pd.Timestamp(e["ts_ns"], tz="UTC") for e in events if e["kind"] == "day_roll"]
    assert et_times(rolls) == ["2019-12-05 15:00", "2019-12-06 15:35", "2019-12-07 10:00", "2019-12-09 09:35"]
    sat = res.equity.loc[res.equity.index.tz_convert("America/New_York").day == 7, "position"]
    assert len(sat) == 4 and (sat == 0).all()
