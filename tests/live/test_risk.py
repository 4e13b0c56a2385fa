"""The risk rules through the whole live loop (bar replay -> SignalEngine -> TradeEngine -> bar-mode paper
broker -> journal) with planted bars: every limit and kill switch fires at the same trade as in the
backtest, the calendar (early closes, holidays), the weekend, the Friday rule, the feed-halt switch and
the emergency stop; and every time rule reads the bar's timestamp, not the wall clock."""

from __future__ import annotations

import os
import signal
import time

import numpy as np
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

from live import control
from live.brokers.base import BrokerError
from live.feeds.replay import ArrayFeed, BarColumns
from live.trader import HaltedError
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


# the boundary variants (a win resetting the streak, a limit 1 cent away) are the rules' own, tested in
# tests/strategy/test_trade_rules.py; here each limit once (a closed trade costs the journal ~0.1 s)
LIVE_SCENARIOS = [n for n in SCENARIOS if n not in ("loss_streak_reset_by_win", "daily_loss_limit_not_reached")]


@pytest.mark.parametrize("name", LIVE_SCENARIOS)
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


# ---------------------------------------------------------------------------------- wall clock
def wall_clock_at(monkeypatch, when: str) -> None:
    """Make the wall clock (time.time / time.time_ns) read `when` (ET) plus the real time elapsed."""
    t0, base = time.time_ns(), pd.Timestamp(when, tz="America/New_York").value
    monkeypatch.setattr(time, "time_ns", lambda real=time.time_ns: base + real() - t0)
    monkeypatch.setattr(time, "time", lambda real=time.time: base / 1e9 + real() - t0 / 1e9)


class QuietFeed(ArrayFeed):
    """A live bar feed that goes silent for `quiet_s` seconds (wall time) after `quiet_after` records."""

    live = True

    def __init__(self, bars: pd.DataFrame, quiet_after: int, quiet_s: float) -> None:
        super().__init__(BarColumns(bars), yields_bars=True, symbol=str(bars.attrs["symbol"]))
        self.quiet_after, self.quiet_s = quiet_after, quiet_s
        self.until: float | None = None

    def next_record(self):
        if self.position == self.quiet_after:
            if self.until is None:
                self.until = time.monotonic() + self.quiet_s
            if time.monotonic() < self.until:
                return None
        return super().next_record()


FEED_DAY = ("2019-12-04", "10:00", "SW . S W . SW")  # the 2nd signal is the last bar before the silence


@pytest.mark.parametrize("wall, halts", [("2019-12-04 10:30", True),    # Globex open: a feed halt
                                         ("2019-12-07 10:30", False)])  # Saturday: a quiet feed is normal
def test_feed_halt_cancels_the_entry_and_resumes_with_the_records(tmp_path, monkeypatch, wall, halts):
    params = Params.for_mode("paper")
    bars, entries = planted(FEED_DAY)
    k = int(bars.index.get_loc(et_ts("2019-12-04", "10:15")))  # the 2nd signal bar
    wall_clock_at(monkeypatch, wall)
    feed = QuietFeed(bars, quiet_after=k + 1, quiet_s=0.3)
    trader, res, events = run_live(bars, params, tmp_path, entries, feed=feed, feed_halt_seconds=0.1)
    kinds = [e["kind"] for e in events if e["kind"].startswith("feed_")]
    want = ["2019-12-04 10:00", "2019-12-04 10:15", "2019-12-04 10:30"]
    if halts:
        assert kinds == ["feed_halt", "feed_resumed"]
        assert "while Globex is open" in next(e for e in events if e["kind"] == "feed_halt")["detail"]
        # the entry decided at the last close before the silence was cancelled; the next one after it trades
        assert et_times(res.trades["signal_ts"]) == [want[0], want[2]]
        cancelled = [o for o, status, _ in trader.broker.order_history() if o.purpose == "entry" and
                     status == "cancelled"]
        assert len(cancelled) == 1 and cancelled[0].decided_ns == et_ts("2019-12-04", "10:20").value
    else:
        assert kinds == []
        assert et_times(res.trades["signal_ts"]) == want
        assert_same_trades(res.trades, backtest(bars, entries, params).trades)
    assert not trader.status()["kill_switches"]["feed_halt"]


def test_trades_do_not_depend_on_the_wall_clock(tmp_path, monkeypatch):
    params = Params.for_mode("paper")
    bars, entries = planted(("2019-12-04", "10:00", "SL SW"), ("2019-12-06", "15:35", "S . . . ."),
                            ("2019-12-09", "09:35", "SW"))
    runs = []
    for k, wall in enumerate(["2019-12-04 11:00", "2026-06-13 03:00"]):  # a Wednesday in RTH, a Saturday night
        wall_clock_at(monkeypatch, wall)
        runs.append(run_live(bars, params, tmp_path / str(k), entries)[1].trades)
    assert len(runs[0]) == 4
    assert_same_trades(runs[0], runs[1])
    assert_same_trades(runs[0], backtest(bars, entries, params).trades)


# ------------------------------------------------------------------------------ emergency stop
@pytest.fixture
def stop_signal_restored():
    old = signal.getsignal(control.STOP_SIGNAL)
    yield
    signal.signal(control.STOP_SIGNAL, old)


def test_halt_file_mid_replay_flattens_and_blocks_restarts_until_cleared(tmp_path, stop_signal_restored):
    params = Params.for_mode("paper")
    bars, entries = planted(("2019-12-04", "10:00", "S" + "." * 10 + "SW"))
    halt_at = et_ts("2019-12-04", "10:20").value
    trader = make_trader(bars, params, tmp_path, entries)
    trader.install_signal_handler()

    def stop_at(status: dict) -> None:  # `navale stop`: the HALT file, then the signal
        if status["bar_ts_ns"] == halt_at:
            assert status["position"] == 1
            control.write_halt(tmp_path, "planted stop", "test")
            os.kill(os.getpid(), control.STOP_SIGNAL)

    trader.on_status = stop_at
    res = trader.run()
    assert res.reason == "halted"
    t = res.trades
    assert len(t) == 1 and t["exit_reason"].iloc[0] == "flatten" and et_times(t["signal_ts"]) == ["2019-12-04 10:00"]
    assert t["exit_price"].iloc[0] == 5000.0 - 0.25  # flattened at the last close, 1 tick of slippage
    assert trader.broker.positions().get("ESH24", 0) == 0 and not trader.broker.open_orders()
    events = trader.journal.risk_events()
    stop = [e for e in events if e["kind"] == "emergency_stop"]
    assert len(stop) == 1 and stop[0]["detail"].startswith("flat (planted stop")
    assert len(trader.journal.trades()) == 1
    trader.journal.close()

    again = make_trader(bars, params, tmp_path, entries)
    with pytest.raises(HaltedError, match="navale stop --clear"):
        again.start()
    with pytest.raises(control.ControlError, match="halted"):
        control.claim(tmp_path)
    assert control.clear_halt(tmp_path)["reason"] == "planted stop"
    again = make_trader(bars, params, tmp_path, entries)
    res = again.run()  # resumes after the halted bar: the later signal trades
    assert res.reason == "replay_end" and res.restarts == 1
    assert et_times(res.trades["signal_ts"]) == ["2019-12-04 10:55"]
    assert len(again.journal.trades()) == 2
    again.journal.close()


def test_the_emergency_stop_flattens_even_when_the_cancel_fails(tmp_path, stop_signal_restored, monkeypatch):
    """A venue that cannot confirm a cancel (a DTC link down with orders at the server) raises from cancel_all:
    the stop still flattens, and says what failed."""
    params = Params.for_mode("paper")
    bars, entries = planted(("2019-12-04", "10:00", "S" + "." * 10 + "SW"))
    halt_at = et_ts("2019-12-04", "10:20").value
    trader = make_trader(bars, params, tmp_path, entries)
    trader.install_signal_handler()

    def cancel_fails() -> None:
        raise BrokerError("DTC cancel_all: the link is down: cannot cancel 1:stop, 1:target now")

    monkeypatch.setattr(trader.broker, "cancel_all", cancel_fails)

    def stop_at(status: dict) -> None:
        if status["bar_ts_ns"] == halt_at:
            control.write_halt(tmp_path, "planted stop", "test")
            os.kill(os.getpid(), control.STOP_SIGNAL)

    trader.on_status = stop_at
    res = trader.run()
    assert res.reason == "halted"
    assert len(res.trades) == 1 and res.trades["exit_reason"].iloc[0] == "flatten"
    assert trader.broker.positions().get("ESH24", 0) == 0
    kinds = [(e["kind"], e["detail"]) for e in trader.journal.risk_events()]
    assert any(k == "cancel_failed" and "the link is down" in d for k, d in kinds)
    assert any(k == "emergency_stop" for k, _ in kinds)
    trader.journal.close()


def test_globex_bars_roll_the_date_at_1700_ct_and_resume_on_sunday_evening(tmp_path):
    # session "all": the loop sees the Globex bars, so the roll (17:00 CT = 18:00 ET) and Sunday's open are bars
    params = Params.for_mode("paper", session="all", max_consecutive_losses=2)
    bars, entries = planted(("2019-12-05", "10:00", "SL SL S."), ("2019-12-05", "16:55", "."),
                            ("2019-12-05", "18:00", "."), ("2019-12-06", "10:00", "SL"), ("2019-12-06", "16:55", "."),
                            ("2019-12-08", "18:00", "."), ("2019-12-09", "10:00", "SW"))
    seen: dict[int, dict] = {}
    trader = make_trader(bars, params, tmp_path, entries)
    trader.on_status = lambda st: seen.__setitem__(st["bar_ts_ns"], st["kill_switches"])
    res = trader.run()
    events = trader.journal.risk_events()
    trader.journal.close()
    assert_same_trades(res.trades, backtest(bars, entries, params).trades)
    assert et_times(res.trades["signal_ts"]) == signal_times_of(bars, entries)[:2] + ["2019-12-06 10:00",
                                                                                    "2019-12-09 10:00"]
    thu_1655, thu_1800 = (et_ts("2019-12-05", t).value for t in ("16:55", "18:00"))
    assert (seen[thu_1655]["daily_gate"], seen[thu_1655]["losses_in_a_row"]) == ("loss_streak", 2)
    assert (seen[thu_1800]["daily_gate"], seen[thu_1800]["losses_in_a_row"]) == (False, 0)
    rolls = [e["ts_ns"] for e in events if e["kind"] == "day_roll"]
    assert thu_1800 in rolls and et_ts("2019-12-05", "16:55").value not in rolls
    weekend = [e["ts_ns"] for e in events if e["kind"] == "weekend"]
    assert weekend == [et_ts("2019-12-08", "18:00").value]  # Sunday 17:00 CT opens Monday's date


def signal_times_of(bars: pd.DataFrame, entries) -> list[str]:
    return et_times(bars.index[entries])


def test_drawdown_stop_survives_a_restart(tmp_path):
    params, bars, entries, want, _, _ = scenario("max_drawdown")
    halted_bar = int(bars.index.get_loc(et_ts(*want[-1].split()))) + 1  # the 4th loss: trading stops at its close
    first = make_trader(bars, params, tmp_path, entries)
    res1 = first.run(max_records=halted_bar + 2)
    assert res1.reason == "max_records" and first.status()["kill_switches"]["halted"] == "drawdown"
    first.journal.close()
    del first
    again = make_trader(bars, params, tmp_path, entries)
    res2 = again.run()
    assert res2.restarts == 1 and len(res2.trades) == 0  # the later signals (same date and next) stay refused
    assert again.status()["kill_switches"]["halted"] == "drawdown"
    assert et_times(again.journal.trades()["signal_ts"]) == want
    again.journal.close()


def test_a_silent_scid_file_is_a_feed_halt_until_sierra_writes_again(tmp_path, monkeypatch):
    import threading

    from live.bars import BarBuilder
    from live.brokers.paper import PaperBroker
    from live.config import TraderConfig
    from live.feeds.scid import ScidFeed
    from live.journal import Journal
    from live.trader import Trader
    from research.data.scid import ticks_to_scid_records, write_scid

    i = np.arange(3000)  # a trade every 0.2 s from 10:00 ET, 5000.00-5000.75
    price = 5000.0 + 0.25 * (i % 4)
    rec = ticks_to_scid_records(et_ts("2024-03-06", "10:00").value + i * 200_000_000, price, np.ones(3000),
                                np.where(i % 2 == 0, 1, -1), price - 0.25, price)
    path = write_scid(tmp_path / "ESH24.scid", rec[:2000])
    wall_clock_at(monkeypatch, "2024-03-06 10:30")  # a Wednesday: Globex open
    feed = ScidFeed(path, symbol="ESH24", poll_interval=0.02)
    assert feed.live
    sd = tmp_path / "state"
    sd.mkdir()
    cfg = TraderConfig(params=Params.for_mode("paper"), symbol="ESH24", state_dir=sd, unvalidated=True,
                       feed_halt_seconds=0.2, run_id="scid-halt")
    trader = Trader(cfg, lambda resume: feed, PaperBroker("ESH24", book_path=sd / "paper_broker.sqlite"),
                    Journal(control.journal_path(sd)), builder=lambda b, g: BarBuilder(b, grace_seconds=g, symbol="ESH24"))
    trader.start()
    seen: list[str] = []

    def operator() -> None:  # waits for the halt, has Sierra write again, waits for the resume, then stops
        reader = Journal(control.journal_path(sd), readonly=True)
        try:
            for want in ("feed_halt", "feed_resumed"):
                end = time.monotonic() + 20
                while want not in [e["kind"] for e in reader.risk_events()] and time.monotonic() < end:
                    time.sleep(0.02)
                seen.append(want if want in [e["kind"] for e in reader.risk_events()] else f"no {want}")
                if want == "feed_halt":
                    write_scid(path, rec[2000:], append=True)
        finally:
            reader.close()
            control.write_halt(sd, "test done", "test")

    th = threading.Thread(target=operator)
    th.start()
    res = trader.run()
    th.join()
    trader.journal.close()
    assert res.reason == "halted" and seen == ["feed_halt", "feed_resumed"]
    assert res.records == 3000


def test_feed_halt_during_a_reversal_cancels_the_entry_not_the_exit(tmp_path, monkeypatch):
    # long at 10:05; at the 10:10 close an opposite signal: exit the long and enter short at the next open;
    # then the feed goes silent. The halt refuses the short entry, but the long still exits at 10:15
    from planted_trades import SHORT_REVERSAL, PlantedSignals

    params = Params.for_mode("paper")
    bars, entries = planted(("2019-12-04", "10:00", "S . . . L . ."))
    rev = et_ts("2019-12-04", "10:10").value
    wall_clock_at(monkeypatch, "2019-12-04 10:30")
    k = int(bars.index.get_loc(pd.Timestamp(rev, tz="UTC")))
    trader = make_trader(bars, params, tmp_path, feed=QuietFeed(bars, quiet_after=k + 1, quiet_s=0.3),
                         feed_halt_seconds=0.1)
    trader.sig = PlantedSignals(trader.sig, set(bars.index.as_unit("ns").asi8[entries].tolist()),
                                {rev: SHORT_REVERSAL})
    res = trader.run()
    kinds = [e["kind"] for e in trader.journal.risk_events() if e["kind"].startswith("feed_")]
    trader.journal.close()
    assert kinds == ["feed_halt", "feed_resumed"]
    t = res.trades
    assert len(t) == 1 and t["side"].iloc[0] == 1  # no short was opened
    assert (t["exit_reason"].iloc[0], et_times(t["exit_ts"])[0]) == ("opposite", "2019-12-04 10:15")
    assert trader.broker.positions().get("ESH24", 0) == 0
