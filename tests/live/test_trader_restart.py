"""The crash test: a trader killed with SIGKILL at random points of a replay and restarted on the same
state dir ends with exactly the trades of an uninterrupted run (same records, same trade ids since the
run id is persisted), no order filled twice, flat at the end; a restart whose broker book disagrees with
the saved state refuses to trade (ReconcileError, `navale paper` exit 1) and journals it.

The traders are real processes: forks of the test process (everything imported once, so a restart costs
no interpreter start-up) killed with SIGKILL, and the `navale paper` command itself for the refusal.
The long version (100 kills, the whole synthetic set) is ``make soak`` (benchmarks/soak_restart.py).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paper_runs import (
    assert_same_trades,
    crash_run,
    exited,
    fork_trader,
    open_reader,
    synthetic_slice,
    wait_exit,
)

from live.brokers.paper import PaperBroker
from live.journal import Journal
from live.session import open_session
from live.trader import ReconcileError
from research.backtest import run as backtest
from research.data import SyntheticSpec, default_dataset, load_bars
from strategy import Params

ROOT = Path(__file__).resolve().parents[2]
KILLS = 22
DAYS = 3


@pytest.fixture(scope="module")
def replay(tmp_path_factory, data_dir):
    """A 3-trading-day slice of the synthetic set as a bar file, and its uninterrupted session."""
    d = tmp_path_factory.mktemp("crash")
    path, bars = synthetic_slice(DAYS, d)
    feed = f"replay:{path}"
    sd = d / "whole"
    assert wait_exit(fork_trader(feed, sd)) == 0
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        whole = j.trades()
    assert len(whole) >= 3, "the slice must hold trades for the test to mean something"
    assert_same_trades(whole, backtest(bars, Params.for_mode("paper")).trades, "uninterrupted run vs backtest")
    return feed, bars, whole


def test_kill9_at_random_points_then_restart_gives_the_uninterrupted_trades(replay, tmp_path):
    feed, bars, whole = replay
    sd = tmp_path / "state"
    rng = random.Random(int(os.environ.get("NAVALE_CRASH_SEED", "13")))
    kills, mid_run = crash_run(feed, sd, bars.index.as_unit("ns").asi8, KILLS, rng)
    assert kills >= 20
    assert wait_exit(fork_trader(feed, sd)) == 0  # the last restart runs to the end

    with Journal(sd / "journal.sqlite", readonly=True) as j:
        got = j.trades()
        fills = j.fills()
        orders = j.orders()
        events = [e["kind"] for e in j.risk_events()]
    # every process killed after a bar it reached itself had journaled its start (kills in a start-up may not)
    assert events.count("restart") + events.count("start") >= mid_run and events[-1] == "replay_end"
    assert_same_trades(got, whole, f"after {kills} kill -9 + restarts")
    run_id = got["run_id"].iloc[0]
    assert (got["run_id"] == run_id).all()
    assert got["trade_id"].tolist() == [f"{run_id}-{k:06d}" for k in range(len(whole))]

    book = PaperBroker.from_state_dir(sd)
    try:
        history = book.order_history()
        book_fills = book.fills_since(0)
        assert book.positions() == {} and book.open_orders() == []
    finally:
        book.close()
    ids = [o.order_id for o, _, _ in history]
    assert len(ids) == len(set(ids)), "an order reached the broker twice"
    filled = [f.order_id for f in book_fills]
    assert len(filled) == len(set(filled)), "an order filled twice"
    assert sorted(fills["fill_id"]) == sorted(f.fill_id for f in book_fills), "journal and broker fills differ"
    # every entry of a trade is one order, filled once
    entries = [f for f in book_fills if f.role == "entry"]
    assert len(entries) == len(whole)
    assert set(orders["order_id"]) >= {f.order_id for f in book_fills if f.role in ("entry", "exit")}


def test_kill9_on_a_trades_feed_resumes_the_bar_in_progress(tmp_path, data_dir):
    """The synthetic trades through the bar builder: a restart resumes from the record that opened the
    bar in progress (the builder's partial bar is not saved) and ends with the uninterrupted trades."""
    spec = SyntheticSpec(days=2)
    kw = {"feed_kw": {"spec": spec}}
    bars = load_bars(default_dataset(spec), bar="5min")
    assert wait_exit(fork_trader("synthetic", tmp_path / "whole", **kw)) == 0
    with Journal(tmp_path / "whole" / "journal.sqlite", readonly=True) as j:
        whole = j.trades()
    assert len(whole) >= 3
    kills, _ = crash_run("synthetic", tmp_path / "state", bars.index.as_unit("ns").asi8, 8, random.Random(7),
                         startup_kills=1, **kw)
    assert kills >= 6
    assert wait_exit(fork_trader("synthetic", tmp_path / "state", **kw)) == 0
    with Journal(tmp_path / "state" / "journal.sqlite", readonly=True) as j:
        got = j.trades()
        fills = j.fills()
    assert_same_trades(got, whole, f"trades feed after {kills} kill -9 + restarts")
    assert fills["order_id"].is_unique


def _kill_in_position(feed: str, sd: Path) -> None:
    """SIGKILL a trader while the broker's book holds a position: kill once a heartbeat shows one; if the
    position closed in the meantime, restart and try again on a later one."""
    for _ in range(8):
        pid = fork_trader(feed, sd)
        j = None
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                assert exited(pid) is None, "the replay ended without an open position to kill in"
                j = j or open_reader(sd)
                hb = j.last_heartbeat() if j is not None else None
                if hb is not None and hb["status"]["position"] != 0:
                    break
                time.sleep(0.002)
        finally:
            if j is not None:
                j.close()
        os.kill(pid, signal.SIGKILL)
        assert wait_exit(pid) == -signal.SIGKILL
        book = PaperBroker.from_state_dir(sd)
        try:
            if book.positions():
                return
        finally:
            book.close()
    raise AssertionError("no kill landed while a position was open")


def test_restart_with_a_book_flattened_from_outside_refuses_to_trade(replay, tmp_path):
    feed, _, _ = replay
    sd = tmp_path / "state"
    _kill_in_position(feed, sd)
    book = PaperBroker.from_state_dir(sd)
    book.flatten("by hand while the trader was down")
    book.close()

    with Journal(sd / "journal.sqlite", readonly=True) as j:
        before, orders_before = j.last_risk_event_id(), j.counts()["orders"]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    cmd = [sys.executable, "-m", "research.cli", "paper", "--feed", feed, "--speed", "max", "--unvalidated",
           "--state-dir", str(sd), "--quiet", "--no-store"]
    p = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=120)
    assert p.returncode == 1, p.stderr
    err = " ".join(p.stderr.split())
    assert "broker holds +0" in err and "trading stopped" in err, err
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        new = j.risk_events(after_id=before)
        assert [e["kind"] for e in new] == ["reconcile_mismatch"]
        assert j.counts()["orders"] == orders_before  # nothing sent
    # a second attempt refuses too: nothing was "fixed" by the refusal
    with pytest.raises(ReconcileError, match="broker holds"):
        open_session(Params.for_mode("paper"), feed=feed, state_dir=sd, speed=None, unvalidated=True)


def test_restart_with_a_replaced_book_refuses_to_trade(replay, tmp_path):
    """The state dir's book swapped for another session's (here: a fresh, flat one)."""
    feed, _, _ = replay
    sd = tmp_path / "state"
    _kill_in_position(feed, sd)
    for suffix in ("", "-wal", "-shm"):
        (sd / f"paper_broker.sqlite{suffix}").unlink(missing_ok=True)
    with pytest.raises(ReconcileError, match="broker holds"):
        open_session(Params.for_mode("paper"), feed=feed, state_dir=sd, speed=None, unvalidated=True)
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        assert j.risk_events(limit=1)[0]["kind"] == "reconcile_mismatch"


def test_restart_after_navale_stop_flattened_the_book_books_the_trade(replay, tmp_path):
    """`navale stop` with no trader running flattens the book itself; after --clear the restart books the
    open trade as exit 'flatten' at that fill, then trades on."""
    from live import control

    feed, _, _ = replay
    sd = tmp_path / "state"
    _kill_in_position(feed, sd)
    control.write_halt(sd, "planted stop", "test")
    book = PaperBroker.from_state_dir(sd)
    book.cancel_all()
    book.flatten("emergency_stop")
    book.close()
    control.clear_halt(sd)
    trader = open_session(Params.for_mode("paper"), feed=feed, state_dir=sd, speed=None, unvalidated=True)
    trades = trader.journal.trades(trader.run_id)
    assert trades["exit_reason"].iloc[-1] == "flatten"
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        assert "outside_flatten" in [e["kind"] for e in j.risk_events()]
    res = trader.run()
    assert res.reason == "replay_end"
    trader.journal.close()
