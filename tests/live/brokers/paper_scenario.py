"""A deterministic paper-trading session for the crash tests: planted bars and orders that depend only on the
bar number. ``python paper_scenario.py BOOK`` runs it (resuming after the last bar the book has seen),
printing ``bar K`` after each bar, so the parent can SIGKILL it at a random point."""

from __future__ import annotations

import sys

from live.brokers.base import BrokerError
from live.brokers.paper import PaperBroker
from live.events import Bar, Bracket, Order, Tick

T0 = 1_700_000_000_000_000_000  # 2023-11-14 22:13:20 UTC
STEP = 300_000_000_000
N_BARS = 300


def bar(k: int) -> Bar:
    """A zig-zag market: 4000 +- a few points, wide enough bars for stops and targets to be hit."""
    mid = 4000.0 + 0.25 * ((k * 7) % 23 - 11)
    o = mid + 0.25 * ((k * 3) % 5 - 2)
    c = mid + 0.25 * ((k * 5) % 7 - 3)
    return Bar(T0 + k * STEP, o, max(o, c) + 0.25 * (k % 4) * 2, min(o, c) - 0.25 * (k % 3) * 2, c, 100)


def decide(broker: PaperBroker, k: int) -> None:
    """The orders sent at bar k's close (refusals are part of the scenario)."""
    orders = []
    if k % 5 == 0:
        orders.append(Order(f"e{k}", "ES", 1 if k % 10 == 0 else -1, 1, "entry", bracket=Bracket(6, 9)))
    if k % 5 == 3:
        orders.append(Order(f"x{k}", "ES", 0, 1, "exit", reason="golden_rule"))
    if k % 7 == 6:
        orders.append(Order(f"c{k}", "ES", 0, 1, "exit", reason="time", fill_at="close"))
    for o in orders:
        pos = broker.positions().get("ES", 0)
        if o.purpose == "exit":  # the side that closes whatever is open
            o = Order(o.order_id, o.symbol, -1 if pos > 0 else 1, 1, "exit", reason=o.reason, fill_at=o.fill_at)
        try:
            broker.submit(o)
        except BrokerError:
            pass


def run(broker: PaperBroker, out=None) -> None:
    """Feed every bar not yet seen; after a restart, first redo the decision of the last bar seen."""
    first = 0
    if broker.last_bar_ns >= 0:
        done = (broker.last_bar_ns - T0) // STEP
        decide(broker, done)  # submits that were committed are no-ops; a refusal is refused again
        first = done + 1
    for k in range(first, N_BARS):
        broker.on_bar(bar(k))
        decide(broker, k)
        if out is not None:
            print(f"bar {k}", file=out, flush=True)


if __name__ == "__main__":
    b = PaperBroker("ES", book_path=sys.argv[1])
    run(b, sys.stdout)
    b.close()
    print("done", flush=True)


# ----- tick mode: several trades share a timestamp, so a restart must skip the ones it already processed
N_TICKS = 3000


def tick(k: int) -> Tick:
    return Tick(T0 + (k // 3) * 1_000_000, 4000.0 + 0.25 * ((k * 7) % 29 - 14), 1, 1)


def tick_decide(broker: PaperBroker, k: int) -> None:
    if k % 40 == 0:
        orders = [Order(f"e{k}", "ES", 1 if k % 80 == 0 else -1, 1, "entry", bracket=Bracket(10, 12) if k % 120 else Bracket(40, 40))]
    elif k % 40 == 25:
        pos = broker.positions().get("ES", 0)
        orders = [Order(f"x{k}", "ES", -1 if pos > 0 else 1, 1, "exit", reason="opposite")]
    else:
        return
    for o in orders:
        try:
            broker.submit(o)
        except BrokerError:
            pass


def tick_run(broker: PaperBroker, stop_at: int | None = None) -> None:
    """Feed the trades from the first (a restarted feed re-sends them) and decide after each one the broker
    has not seen before; stop (as if killed) before trade `stop_at`."""
    seen = _ticks_seen(broker)
    if seen > 0:
        tick_decide(broker, seen - 1)  # the decision after the last trade processed may not have been sent
    for k in range(N_TICKS):
        if k == stop_at:
            return
        broker.on_tick(tick(k))
        if k >= seen:
            tick_decide(broker, k)


def _ticks_seen(broker: PaperBroker) -> int:
    """How many of the scenario's trades the book says were processed (from its last trade time and count)."""
    last, n = broker.last_tick
    if last < 0:
        return 0
    return next(k for k in range(N_TICKS) if tick(k).ts_ns == last) + n
