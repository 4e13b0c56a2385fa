"""The paper broker on planted bars and trades: the backtest's bar fill model, the tick model, refusals, and a
book that survives SIGKILL and is shared with another process."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pandas as pd
import paper_scenario
import pytest

from live.brokers.base import BrokerError
from live.brokers.paper import BOOK_FILE, PaperBroker, trading_day
from live.events import Bar, Bracket, Order, Tick
from strategy.market.sessions import session_id

ROOT = Path(__file__).resolve().parents[3]
HERE = Path(__file__).resolve().parent
T0 = pd.Timestamp("2024-03-12 14:30", tz="UTC").value  # Tuesday 10:30 ET, inside RTH
M5 = 300_000_000_000


def bar(k: int, o: float, h: float, l: float, c: float, t0: int = T0) -> Bar:
    return Bar(t0 + k * M5, o, h, l, c, 100)


def entry(oid: str, side: int = 1, stop: int = 8, target: int = 16, **kw) -> Order:
    return Order(oid, "ES", side, 1, "entry", bracket=Bracket(stop, target), **kw)


def exit_(oid: str, side: int = -1, **kw) -> Order:
    return Order(oid, "ES", side, 1, "exit", **kw)


def long_open(broker: PaperBroker, fill_open: float = 4000.0) -> None:
    """Bar 0 closes, a long entry is sent, bar 1 opens at `fill_open` (fill `fill_open` + 1 tick)."""
    broker.on_bar(bar(0, 3999, 4001, 3998, 4000))
    broker.submit(entry("e0"))
    broker.on_bar(bar(1, fill_open, fill_open + 1, fill_open - 1, fill_open))


# ----- bar mode: the backtest's fill model
def test_next_open_entry_with_slippage_places_bracket_from_the_fill():
    b = PaperBroker("ES", slippage_ticks=2)
    b.on_bar(bar(0, 3999, 4001, 3998, 4000))
    b.submit(entry("e0", side=-1, stop=8, target=12))
    assert b.poll_fills() == [] and [o.order_id for o in b.open_orders()] == ["e0"]
    b.on_bar(bar(1, 4000, 4000.5, 3999.75, 4000))
    (f,) = b.poll_fills()
    assert (f.role, f.side, f.price, f.slippage_ticks, f.seq, f.ts_ns) == ("entry", -1, 3999.5, 2, 1, T0 + M5)
    assert b.positions() == {"ES": -1} and b.entry_price() == 3999.5
    assert b.bracket_prices() == (4001.5, 3996.5)  # short: stop above, target below the fill
    assert sorted(o.reason for o in b.open_orders()) == ["stop", "target"]
    assert all(o.side == 1 for o in b.open_orders())


def test_stop_wins_on_an_ambiguous_bar_and_the_optimistic_price_is_reported():
    b = PaperBroker("ES")
    long_open(b)  # entry 4000.25, stop 3998.25, target 4004.25
    b.poll_fills()
    b.on_bar(bar(2, 4000, 4005, 3998, 4001))
    (f,) = b.poll_fills()
    assert (f.role, f.price, f.slippage_ticks, f.order_id) == ("stop", 3998.0, 1, "e0:stop")
    assert f.extra == {"ambiguous": True, "gap": False, "optimistic_price": 4004.25}
    assert b.positions() == {} and b.open_orders() == []


def test_gap_through_the_stop_fills_at_the_open_but_not_on_the_entry_bar():
    b = PaperBroker("ES")
    b.on_bar(bar(0, 3999, 4001, 3998, 4000))
    b.submit(entry("e0"))
    b.on_bar(bar(1, 4000, 4000.5, 3998, 3999))  # entry bar reaches the stop 3998.25: stop, no gap
    assert [(f.role, f.price, f.extra.get("gap")) for f in b.poll_fills()] == [("entry", 4000.25, None),
                                                                               ("stop", 3998.0, False)]
    b.submit(entry("e1"))
    b.on_bar(bar(2, 4000, 4000.5, 3999.5, 4000))  # entry 4000.25, stop 3998.25
    b.on_bar(bar(3, 3995, 3996, 3994, 3995.5))  # opens through it
    f = b.poll_fills()[-1]
    assert (f.role, f.price, f.extra["gap"], f.extra["ambiguous"]) == ("stop", 3994.75, True, False)
    b = PaperBroker("ES", slippage_ticks=3)  # slippage beyond the stop: the entry bar's open is "through" it
    b.on_bar(bar(0, 3999, 4001, 3998, 4000))
    b.submit(entry("e0", stop=2))  # fill 4000.75, stop 4000.25
    b.on_bar(bar(1, 4000, 4000.5, 3999, 4000))
    f = b.poll_fills()[-1]
    assert (f.role, f.price, f.extra["gap"]) == ("stop", 3999.5, False)  # the stop - 3 ticks, not the open


def test_target_fills_at_the_target_without_slippage():
    b = PaperBroker("ES", slippage_ticks=3)
    long_open(b)  # entry 4000.75, target 4004.75
    b.on_bar(bar(2, 4001, 4006, 4000.5, 4005))
    f = b.poll_fills()[-1]
    assert (f.role, f.price, f.slippage_ticks, f.order_id) == ("target", 4004.75, 0, "e0:target")


def test_reversal_exits_then_enters_at_the_same_open():
    b = PaperBroker("ES")
    long_open(b)
    b.submit(exit_("x1", reason="opposite"))
    b.submit(entry("e1", side=-1))
    b.on_bar(bar(2, 4002, 4002.5, 4001.5, 4002))
    fills = b.poll_fills()
    assert [(f.role, f.side, f.price) for f in fills] == [("entry", 1, 4000.25), ("exit", -1, 4001.75),
                                                          ("entry", -1, 4001.75)]
    assert fills[1].extra == {"reason": "opposite"}
    assert b.positions() == {"ES": -1} and b.bracket_prices() == (4003.75, 3997.75)


def test_day_order_of_another_trading_date_is_cancelled_not_filled():
    b = PaperBroker("ES")
    fri = pd.Timestamp("2024-03-08 21:55", tz="UTC").value  # 15:55 CT Friday, trading date 2024-03-08
    sun = pd.Timestamp("2024-03-10 22:00", tz="UTC").value  # 17:00 CT Sunday: trading date 2024-03-11
    b.on_bar(Bar(fri, 4000, 4001, 3999, 4000, 10))
    b.submit(entry("e0", session_day=trading_day(fri)))
    b.on_bar(Bar(sun, 4000, 4001, 3999, 4000, 10))
    assert b.poll_fills() == [] and b.positions() == {} and b.open_orders() == []
    (o, status, note) = b.order_history()[0]
    assert status == "cancelled" and "trading date" in note
    b.submit(entry("e1", session_day=trading_day(sun)))
    b.on_bar(Bar(sun + M5, 4000, 4001, 3999, 4000, 10))
    assert [f.role for f in b.poll_fills()] == ["entry"]


def test_trading_day_equals_session_id():
    idx = pd.date_range("2015-01-01", "2023-01-01", freq="37min", tz="UTC")
    want = session_id(idx).astype("datetime64[D]").astype(np.int64)
    got = np.array([trading_day(int(t)) for t in idx.as_unit("ns").asi8[::7]])
    assert np.array_equal(got, want[::7])


def test_close_exit_fills_at_once_at_the_deciding_close():
    b = PaperBroker("ES")
    long_open(b)
    b.on_bar(bar(2, 4000, 4001, 3999.5, 4000.5))
    b.submit(exit_("x2", reason="session_end", fill_at="close", decided_ns=T0 + 3 * M5))
    f = b.poll_fills()[-1]
    assert (f.role, f.price, f.extra, f.ts_ns) == ("exit", 4000.25, {"reason": "session_end"}, T0 + 3 * M5)
    assert b.positions() == {} and b.open_orders() == []  # the bracket went with the position


def test_submit_is_idempotent_on_order_id():
    b = PaperBroker("ES")
    long_open(b)
    b.on_bar(bar(2, 4000, 4001, 3999.5, 4000.5))
    b.submit(exit_("x2", fill_at="close"))
    b.submit(entry("e0"))  # filled long ago: nothing happens
    b.submit(exit_("x2", fill_at="close"))  # a second close exit would be refused; a known one is a no-op
    b.on_bar(bar(3, 4000, 4001, 3999.5, 4000.5))
    assert [f.role for f in b.fills_since(0)] == ["entry", "exit"] and b.positions() == {}
    assert len(b.order_history()) == 2


def test_flatten_and_cancel_all():
    b = PaperBroker("ES", slippage_ticks=1)
    long_open(b)
    b.on_bar(bar(2, 4000, 4001, 3999.5, 4000.5))
    b.cancel_all()
    assert b.open_orders() == [] and b.positions() == {"ES": 1}
    b.submit(exit_("x3"))
    b.flatten("emergency_stop")
    f = b.poll_fills()[-1]
    assert (f.role, f.side, f.price, f.extra) == ("flatten", -1, 4000.25, {"reason": "emergency_stop"})
    assert b.positions() == {} and b.open_orders() == []
    assert b.order_history()[-1][1:] == ("cancelled", "emergency_stop")
    b.flatten()  # idempotent
    assert len(b.fills_since(0)) == 2


def test_cancel_one_order_or_the_bracket_as_its_oco_group():
    b = PaperBroker("ES", slippage_ticks=1)
    long_open(b)
    assert {o.order_id for o in b.open_orders()} == {"e0:stop", "e0:target"}
    b.submit(exit_("x2"))
    assert b.cancel("x2") is True and b.cancel("x2") is False
    assert {o.order_id for o in b.open_orders()} == {"e0:stop", "e0:target"}
    assert b.cancel("e0:target") is True  # one leg cancels both: they are one OCO group
    assert b.open_orders() == [] and b.positions() == {"ES": 1} and b.cancel("e0") is False
    b.on_bar(bar(2, 3990, 3991, 3980, 3985))  # through the old stop: nothing fills
    assert b.poll_fills()[-1].role == "entry"


@pytest.mark.parametrize("order, words", [
    (Order("a", "ES", 1, 0, "entry"), "quantity"),
    (Order("a", "ES", 2, 1, "entry"), "side"),
    (Order("a", "NQ", 1, 1, "entry"), "symbol"),
    (Order("a", "ES", -1, 1, "exit"), "larger than the position"),
    (Order("a", "ES", 1, 1, "entry", bracket=Bracket(0, 8)), "bracket"),
])
def test_refusals_are_one_line(order, words):
    b = PaperBroker("ES")
    with pytest.raises(BrokerError, match=words) as e:
        b.submit(order)
    assert "\n" not in str(e.value) and "a" in str(e.value)
    assert b.order_history() == []


def test_refuses_a_same_direction_entry_an_oversized_exit_and_off_grid_prices():
    b = PaperBroker("ES")
    long_open(b)
    with pytest.raises(BrokerError, match="same direction"):
        b.submit(entry("e9"))
    with pytest.raises(BrokerError, match="larger than the position"):
        b.submit(Order("x9", "ES", -1, 2, "exit"))
    with pytest.raises(BrokerError, match="tick grid"):
        b.on_bar(bar(2, 4000.1, 4001, 3999, 4000))
    with pytest.raises(BrokerError, match="tick grid"):
        b.on_bar(bar(2, -4000, 4001, 3999, 4000))
    with pytest.raises(BrokerError, match="bar .* close nan"):
        b.on_bar(bar(2, 4000, 4001, 3999, float("nan")))
    with pytest.raises(BrokerError, match="do not bound"):
        b.on_bar(bar(2, 4000, 4001, 4000.5, 4000.75))
    assert b.positions() == {"ES": 1} and b.last_bar_ns == T0 + M5


# ----- tick mode
def tick(k: int, price: float) -> Tick:
    return Tick(T0 + k * 1_000_000, price, 1, 1)


def test_tick_mode_market_stop_and_target_fills():
    b = PaperBroker("ES", mode="tick", slippage_ticks=1)
    b.on_tick(tick(0, 4000))
    b.submit(entry("e0", stop=4, target=8))
    b.on_bar(bar(0, 1, 1, 1, 1))  # ignored in tick mode
    b.on_tick(tick(1, 4000.5))
    assert [(f.role, f.price, f.ts_ns) for f in b.poll_fills()] == [("entry", 4000.75, tick(1, 0).ts_ns)]
    assert b.bracket_prices() == (3999.75, 4002.75)
    b.on_tick(tick(2, 4002.5))
    assert b.poll_fills() == []
    b.on_tick(tick(3, 4003.5))  # through the target: filled at the target
    f = b.poll_fills()[-1]
    assert (f.role, f.price, f.slippage_ticks) == ("target", 4002.75, 0)
    b.submit(entry("e1", side=-1, stop=4, target=8))
    b.on_tick(tick(4, 4003))  # short at 4002.75, stop 4003.75
    b.on_tick(tick(5, 4004.5))  # trades through the stop: fills at that trade + 1 tick
    f = b.poll_fills()[-1]
    assert (f.role, f.price, f.extra["gap"]) == ("stop", 4004.75, True)
    b.submit(entry("e2", stop=4, target=8))
    b.on_tick(tick(6, 4004))
    b.on_tick(tick(7, 4005))
    b.flatten()
    assert b.poll_fills()[-1].price == 4004.75  # last trade - 1 tick


def test_tick_mode_ignores_trades_older_than_the_last():
    b = PaperBroker("ES", mode="tick")
    b.on_tick(tick(5, 4000))
    b.submit(entry("e0"))
    b.on_tick(tick(4, 3000))
    assert b.poll_fills() == []
    b.on_tick(tick(5, 4001))
    assert b.poll_fills()[0].price == 4001.25


# ----- the book: persistence and other processes
def _python(code: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{HERE}")
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code), *args], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def test_book_survives_sigkill_and_refuses_the_duplicate(tmp_path):
    book = tmp_path / BOOK_FILE
    child = _python("""
        import sys, time
        from live.brokers.paper import PaperBroker
        from live.events import Bar, Bracket, Order
        from paper_scenario import T0 as T, STEP as M
        b = PaperBroker("ES", book_path=sys.argv[1], slippage_ticks=1)
        b.on_bar(Bar(T, 4000, 4001, 3999, 4000, 1))
        b.submit(Order("e0", "ES", 1, 1, "entry", bracket=Bracket(8, 16)))
        b.on_bar(Bar(T + M, 4000, 4001, 3999, 4000.5, 1))
        b.submit(Order("x1", "ES", -1, 1, "exit", reason="golden_rule"))
        print("ready", flush=True)
        time.sleep(60)
    """, str(book))
    assert child.stdout.readline().strip() == "ready", child.stderr.read()
    os.kill(child.pid, signal.SIGKILL)
    child.wait()
    b = PaperBroker("ES", book_path=book)
    assert [(f.seq, f.order_id, f.role, f.price) for f in b.fills_since(0)] == [(1, "e0", "entry", 4000.25)]
    assert b.positions() == {"ES": 1} and b.bracket_prices() == (3998.25, 4004.25)
    assert [o.order_id for o in b.open_orders()] == ["x1", "e0:stop", "e0:target"]
    b.submit(Order("x1", "ES", -1, 1, "exit", reason="golden_rule"))  # the restarted trader re-sends it
    b.on_bar(Bar(paper_scenario.T0 + M5, 1, 1, 1, 1, 1))  # same bar again: ignored
    b.on_bar(Bar(paper_scenario.T0 + 2 * M5, 4001, 4002, 4000, 4001, 1))
    assert [(f.seq, f.order_id, f.price) for f in b.poll_fills()] == [(2, "x1", 4000.75)]  # after fills_since(0)
    assert b.positions() == {}
    with pytest.raises(BrokerError, match="book was opened for"):
        PaperBroker("ES", book_path=book, mode="tick")


def _fills(b: PaperBroker) -> list[tuple]:
    return [(f.seq, f.order_id, f.role, f.side, f.price, f.ts_ns, f.extra) for f in b.fills_since(0)]


def test_random_sigkills_end_with_the_uninterrupted_book(tmp_path):
    ref = PaperBroker("ES")
    paper_scenario.run(ref)
    want = _fills(ref)
    assert len(want) > 60 and {f[2] for f in want} == {"entry", "exit", "stop", "target"}
    book = tmp_path / BOOK_FILE
    rng = random.Random(13)
    script = HERE / "paper_scenario.py"
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{HERE}")
    kills = 0
    for _ in range(3):
        child = subprocess.Popen([sys.executable, str(script), str(book)], env=env, text=True,
                                 stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        stop_after = rng.randrange(1, 60)
        for _ in range(stop_after):
            if not child.stdout.readline().startswith("bar"):
                break
        child.send_signal(signal.SIGKILL)
        child.wait()
        kills += child.returncode == -signal.SIGKILL
    b = PaperBroker("ES", book_path=book)
    paper_scenario.run(b)
    assert kills >= 2 and _fills(b) == want
    assert [h[1:] for h in b.order_history()] == [h[1:] for h in ref.order_history()]


def test_another_process_flattens_a_book_the_trader_holds_open(tmp_path):
    trader = PaperBroker("ES", book_path=tmp_path / BOOK_FILE)
    long_open(trader)
    trader.submit(exit_("x1"))
    assert len(trader.poll_fills()) == 1
    stop = _python("""
        import sys
        from live.brokers.paper import PaperBroker
        b = PaperBroker.from_state_dir(sys.argv[1])
        b.cancel_all()
        b.flatten("emergency_stop")
        b.flatten("emergency_stop")
        print(b.positions(), len(b.open_orders()))
    """, str(tmp_path))
    out, err = stop.communicate(timeout=60)
    assert stop.returncode == 0, err
    assert out.split() == ["{}", "0"]
    assert trader.positions() == {} and trader.open_orders() == []
    (f,) = trader.poll_fills()
    assert (f.seq, f.role, f.price, f.extra) == (2, "flatten", 3999.75, {"reason": "emergency_stop"})
    trader.on_bar(bar(2, 4000, 4001, 3999, 4000))  # the cancelled exit stays cancelled
    assert trader.poll_fills() == [] and trader.positions() == {}


def test_from_state_dir_without_a_book_says_so(tmp_path):
    with pytest.raises(BrokerError, match="no paper broker book"):
        PaperBroker.from_state_dir(tmp_path)


def test_concurrent_writers_take_turns_without_lock_errors(tmp_path):
    book = tmp_path / BOOK_FILE
    PaperBroker("ES", book_path=book).close()
    env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{HERE}")
    child = subprocess.Popen([sys.executable, str(HERE / "paper_scenario.py"), str(book)], env=env, text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stopper = PaperBroker.from_state_dir(tmp_path)
    flattens = 0
    while child.poll() is None:
        stopper.flatten("emergency_stop")  # the trader is writing at the same time
        flattens += 1
        time.sleep(0.005)
    out, err = child.communicate()
    assert child.returncode == 0 and out.rstrip().endswith("done"), err
    fills = stopper.fills_since(0)
    assert flattens > 0 and [f.seq for f in fills] == list(range(1, len(fills) + 1))
    assert sum(f.side * f.quantity for f in fills) == stopper.positions().get("ES", 0)
    assert len({f.order_id for f in fills if f.role != "flatten"}) == sum(f.role != "flatten" for f in fills)


def test_a_corrupt_book_and_a_reentrant_call_are_refused_in_one_line(tmp_path):
    (tmp_path / BOOK_FILE).write_bytes(b"not a database" * 100)
    with pytest.raises(BrokerError, match="not a usable paper broker book"):
        PaperBroker.from_state_dir(tmp_path)
    b = PaperBroker("ES")
    long_open(b)
    with b._book.transaction():  # what a signal handler interrupting on_bar would meet
        with pytest.raises(BrokerError, match="signal handler"):
            b.flatten()
    assert b.positions() == {"ES": 1}


def test_tick_mode_restarts_skip_the_trades_already_processed(tmp_path):
    ref = PaperBroker("ES", mode="tick")
    paper_scenario.tick_run(ref)
    want = _fills(ref)
    assert len(want) > 40 and {f[2] for f in want} >= {"entry", "exit", "stop", "target"}
    book = tmp_path / BOOK_FILE
    for stop_at in sorted(random.Random(7).sample(range(1, paper_scenario.N_TICKS), 12)) + [None]:
        b = PaperBroker("ES", mode="tick", book_path=book)  # a restart: the feed re-sends every trade
        paper_scenario.tick_run(b, stop_at)
        b.close()
    b = PaperBroker("ES", mode="tick", book_path=book)
    assert _fills(b) == want
    assert [h[1:] for h in b.order_history()] == [h[1:] for h in ref.order_history()]


def test_tick_mode_day_order_is_cancelled_on_another_trading_date():
    b = PaperBroker("ES", mode="tick")
    fri = pd.Timestamp("2024-03-08 21:59", tz="UTC").value
    b.on_tick(Tick(fri, 4000, 1, 1))
    b.submit(entry("e0", session_day=trading_day(fri)))
    b.on_tick(Tick(pd.Timestamp("2024-03-10 22:00", tz="UTC").value, 4001, 1, 1))
    assert b.poll_fills() == [] and b.order_history()[0][1] == "cancelled"


def test_a_book_locked_by_a_hung_writer_gives_a_broker_error(tmp_path):
    import sqlite3

    trader = PaperBroker("ES", book_path=tmp_path / BOOK_FILE)
    long_open(trader)
    hung = sqlite3.connect(tmp_path / BOOK_FILE, isolation_level=None)
    hung.execute("BEGIN IMMEDIATE")  # a writer stopped inside its transaction
    stopper = PaperBroker.from_state_dir(tmp_path, lock_timeout_s=0.2)
    assert stopper.positions() == {"ES": 1}  # readers are not blocked
    with pytest.raises(BrokerError, match="locked by another process for 0.2 s"):
        stopper.flatten("emergency_stop")
    hung.execute("ROLLBACK")
    stopper.flatten("emergency_stop")
    assert trader.positions() == {}
