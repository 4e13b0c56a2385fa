"""Helpers of the IB adapter's session tests and benchmark: synthetic trades as the fake TWS streams them (whole
seconds, quotes planted so the quote rule gives the generator's side back), a Trader over any feed and broker,
and the reference run on the tick-mode paper broker that tells the fake server where to wait for an order."""

from __future__ import annotations

import time
from pathlib import Path

from live import control
from live.bars import BarBuilder
from live.brokers.paper import PaperBroker
from live.config import TraderConfig
from live.events import Order, Tick
from live.feeds.base import Feed
from live.journal import Journal
from live.trader import Trader
from live.venues.ib.contract import local_symbol
from research.data.synthetic import SyntheticSpec, generate_trades
from strategy import Params

TICK = 0.25


def planted(side: int, price: float) -> tuple[float, float]:
    """A quote the quote rule classifies ``price`` against as ``side``."""
    if side > 0:
        return price - TICK, price
    if side < 0:
        return price, price + TICK
    return price - TICK, price + TICK


def synthetic_rows(days: int = 1) -> list[tuple]:
    """The generator's trades as ``(ts_ns, price, size, bid, ask)`` rows for the fake server (ts cut to the second)."""
    fr = generate_trades(SyntheticSpec(days=days))
    ts = (fr.index.asi8 // 1_000_000_000) * 1_000_000_000
    out = []
    for t, p, s, side in zip(ts.tolist(), fr["price"].tolist(), fr["size"].tolist(), fr["side"].tolist()):
        bid, ask = planted(int(side), float(p))
        out.append((int(t), float(p), int(s), bid, ask))
    return out


def as_ticks(rows: list[tuple], month: str) -> list[Tick]:
    """The `Tick` records the IB feed makes of ``rows`` (what the reference run replays)."""
    sym = local_symbol("ES", month)
    out = []
    for t, p, s, bid, ask in rows:
        side = 1 if p >= ask else (-1 if p <= bid else 0)
        out.append(Tick(ts_ns=t, price=p, size=s, side=side, contract=sym, bid=bid, ask=ask))
    return out


class ListFeed(Feed):
    """Ticks from a list; exhausted at its end."""

    def __init__(self, ticks: list[Tick]):
        self.ticks, self.i, self.symbol = ticks, 0, "ES"

    def next_record(self):
        if self.i >= len(self.ticks):
            return None
        self.i += 1
        return self.ticks[self.i - 1]

    def exhausted(self) -> bool:
        return self.i >= len(self.ticks)

    def resume_token(self):
        return {"next": self.i}


class UntilFeed(Feed):
    """A live feed seen as a replay of ``n`` records: exhausted once it has yielded them."""

    def __init__(self, feed: Feed, n: int, timeout_s: float = 120.0):
        self.feed, self.n, self.got, self.symbol = feed, n, 0, feed.symbol
        self.live = feed.live
        self.deadline = time.monotonic() + timeout_s

    @property
    def last_record_wall(self):
        return self.feed.last_record_wall

    @property
    def events(self):
        return self.feed.events

    def next_record(self):
        if self.got >= self.n:
            return None
        rec = self.feed.next_record()
        if rec is not None:
            self.got += 1
        return rec

    def exhausted(self) -> bool:
        if self.got < self.n and time.monotonic() > self.deadline:
            raise TimeoutError(f"the IB feed gave {self.got} of {self.n} records")
        return self.got >= self.n

    def resume_token(self):
        return self.feed.resume_token()


class RecordingPaper(PaperBroker):
    """The tick-mode paper broker, noting the index of the trade being processed at each order."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.n_ticks = 0
        self.order_ticks: list[int] = []

    def on_tick(self, tick: Tick) -> None:
        self.n_ticks += 1
        super().on_tick(tick)

    def submit(self, order: Order) -> None:
        self.order_ticks.append(self.n_ticks - 1)
        super().submit(order)


def make_trader(feed: Feed, broker, state_dir: Path, params: Params | None = None, run_id: str = "ibrun") -> Trader:
    """A started tick-mode Trader on ``feed`` and ``broker`` with a journal in ``state_dir``."""
    params = params or Params.for_mode("paper")
    state_dir.mkdir(parents=True, exist_ok=True)
    cfg = TraderConfig(params=params, symbol="ES", broker_mode="tick", state_dir=state_dir, unvalidated=True,
                       run_id=run_id)
    control.claim(state_dir)
    journal = Journal(control.journal_path(state_dir))
    tr = Trader(cfg, lambda resume: feed, broker, journal,
                builder=lambda b, g: BarBuilder(b, grace_seconds=g, symbol="ES"), latency_capacity=0)
    tr.start()
    return tr


def reference_run(ticks: list[Tick], state_dir: Path, params: Params | None = None):
    """The paper broker's tick-mode session on ``ticks``: (RunResult, fills, indices of the orders' trades)."""
    params = params or Params.for_mode("paper")
    broker = RecordingPaper("ES", tick_size=TICK, mode="tick", slippage_ticks=params.slippage_ticks)
    tr = make_trader(ListFeed(ticks), broker, state_dir, params, run_id="ibref")
    try:
        res = tr.run()
    finally:
        tr.journal.close()
    return res, broker.fills_since(0), broker.order_ticks
