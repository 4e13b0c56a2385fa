"""A deterministic stand-in for the trader at Broker/Feed level: it sees each trade, then decides from the broker's
position and open orders alone (entries with an OCO bracket every 37 trades when flat, alternating sides; a market
exit 25 trades after the entry when still in the trade). The same driver runs on a PaperBroker(mode="tick") fed the
trades directly and on a DTCBroker fed by the DTC feed, so the two runs' fills can be compared one to one."""

from __future__ import annotations

from collections import Counter

from live.brokers.base import Broker
from live.events import Bracket, Order, Tick

RUN = "R1"
BRACKET = Bracket(stop_ticks=5, target_ticks=6)


class Driver:
    """Decides after each trade; ``submitted``: (trade index, order) in order."""

    def __init__(self, broker: Broker, n: int, symbol: str = "ES"):
        self.broker, self.n, self.symbol = broker, n, symbol
        self.submitted: list[tuple[int, Order]] = []
        self.entry_i = -1
        self.k = 0

    def on_trade(self, i: int, t: Tick) -> None:
        pos = self.broker.positions().get(self.symbol, 0)
        if pos == 0 and i % 37 == 5 and i < self.n - 30 and not self.broker.open_orders():
            self.k += 1
            self._send(i, Order(order_id=f"{RUN}:E:{t.ts_ns}", symbol=self.symbol, side=1 if self.k % 2 else -1,
                                quantity=1, purpose="entry", bracket=BRACKET, decided_ns=t.ts_ns))
            self.entry_i = i
        elif pos != 0 and i == self.entry_i + 25:
            self._send(i, Order(order_id=f"{RUN}:X:{t.ts_ns}", symbol=self.symbol, side=-1 if pos > 0 else 1,
                                quantity=abs(pos), purpose="exit", reason="time", decided_ns=t.ts_ns))

    def _send(self, i: int, o: Order) -> None:
        self.submitted.append((i, o))
        self.broker.submit(o)


def paper_run(ticks: list[Tick], slippage_ticks: int = 1):
    """(fills, driver) of the driver on a tick-mode paper broker fed ``ticks``."""
    from live.brokers.paper import PaperBroker

    b = PaperBroker("ES", mode="tick", slippage_ticks=slippage_ticks)
    d = Driver(b, len(ticks))
    for i, t in enumerate(ticks):
        b.on_tick(t)
        d.on_trade(i, t)
    return b.fills_since(0), d


def holds_from(paper_fills, driver: Driver, index_of) -> dict[int, int]:
    """The fake server's ``hold_after``: after each trade the driver sent an order on, wait for it; after each
    bracketed entry's fill, wait for the OCO the DTC broker sends from it."""
    h: Counter = Counter(i for i, _ in driver.submitted)
    for f in paper_fills:
        if f.role == "entry":
            h[index_of(f.ts_ns)] += 1
    return dict(h)


def comparable(fills) -> list[tuple]:
    return [(f.order_id, f.side, f.quantity, f.price, f.ts_ns, f.role) for f in fills]
