"""A whole `live.trader.Trader` session on a given broker and feed (what `live.session.open_session` assembles for
the paper broker, with the broker and the feed given): for the Trader-level comparison of the DTC adapter with the
tick-mode paper broker."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from live.bars import BarBuilder
from live.brokers.base import Broker
from live.brokers.paper import PaperBroker
from live.config import TraderConfig
from live.events import Tick
from live.feeds.base import Feed
from live.journal import Journal
from live.trader import Trader
from strategy import Params


class ListFeed(Feed):
    """The given trades, then exhausted (no resume: the runs here are never restarted)."""

    def __init__(self, ticks: list[Tick]):
        self.ticks, self.i = ticks, 0

    def next_record(self) -> Tick | None:
        if self.i >= len(self.ticks):
            return None
        self.i += 1
        return self.ticks[self.i - 1]

    def exhausted(self) -> bool:
        return self.i >= len(self.ticks)

    def resume_token(self) -> object:
        return self.i


class StreamStalled(AssertionError):
    """The scripted stream stopped short, or a trade came that is not the next one expected."""


class CountedFeed(Feed):
    """A live feed that reports itself exhausted after ``n`` trades (the end of a scripted stream).

    It never waits forever: no trade for ``stall_s`` seconds raises StreamStalled (out of the trader's run) naming
    how many came and, given ``expect`` (the trades due, in order), the next one due; a trade other than the next
    one due (lost or sent twice) raises at once. ``diagnose()`` adds the other side's state to the message."""

    live = True

    def __init__(self, inner: Feed, n: int, *, expect: list[Tick] | None = None, stall_s: float = 60.0,
                 diagnose: Callable[[], str] | None = None):
        self.inner, self.n, self.i = inner, n, 0
        self.events = inner.events
        self.expect, self.stall_s, self.diagnose = expect, stall_s, diagnose
        self._last = time.monotonic()

    @property
    def last_record_wall(self) -> float:
        return self.inner.last_record_wall

    def next_record(self) -> Tick | None:
        r = self.inner.next_record()
        now = time.monotonic()
        if r is not None:
            if self.expect is not None and self.i < len(self.expect):
                due = self.expect[self.i]
                if (r.ts_ns, r.price, r.size) != (due.ts_ns, due.price, due.size):
                    raise StreamStalled(self._why(f"trade {self.i} is {r.ts_ns} {r.price} x {r.size}, not the one due "
                                                  f"({due.ts_ns} {due.price} x {due.size}): one lost or sent twice"))
            self.i += 1
            self._last = now
        elif self.i < self.n and now - self._last > self.stall_s:
            raise StreamStalled(self._why(f"no trade for {self.stall_s:g} s"))
        return r

    def _why(self, what: str) -> str:
        due = ""
        if self.expect is not None and self.i < len(self.expect):
            due = f"; the next due: trade {self.i} at {self.expect[self.i].ts_ns}"
        extra = f"; {self.diagnose()}" if self.diagnose is not None else ""
        return f"{what}: {self.i} of {self.n} trades came{due}{extra}"

    def exhausted(self) -> bool:
        return self.i >= self.n

    def resume_token(self) -> object:
        return self.inner.resume_token()

    def resume_from(self, token: object) -> None:
        self.inner.resume_from(token)


class RecordingPaper(PaperBroker):
    """A tick-mode paper broker that notes the trade index of each submission and of each bracketed entry's fill
    (where the fake DTC server must hold its stream for the DTC run's order, or for its OCO)."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.n = 0
        self.holds: dict[int, int] = {}
        self._seen = 0

    def on_tick(self, tick: Tick) -> None:
        super().on_tick(tick)
        for f in self.fills_since_quiet():
            if f.role == "entry":
                self.holds[self.n] = self.holds.get(self.n, 0) + 1
        self.n += 1

    def fills_since_quiet(self):
        out = self._book.fills_since(self._seen)
        if out:
            self._seen = out[-1].seq
        return out

    def submit(self, order) -> None:
        known = self._book.known(order.order_id)
        super().submit(order)
        if not known:
            self.holds[self.n - 1] = self.holds.get(self.n - 1, 0) + 1


def run_trader(params: Params, feed: Feed, broker: Broker, state_dir: Path, max_records: int | None = None):
    """Start and run a Trader on ``feed`` and ``broker`` to the feed's end (or ``max_records``): (trader, RunResult).
    A state dir with a saved session resumes it (the trader loads its state and reconciles with ``broker``)."""
    cfg = TraderConfig(params=params, symbol="ES", broker_mode="tick", bar="5min", state_dir=state_dir,
                       unvalidated=True, feed_halt_seconds=3600.0)
    state_dir.mkdir(parents=True, exist_ok=True)
    journal = Journal(state_dir / "journal.sqlite")
    opened = [feed]

    def open_feed(resume):
        f = opened.pop()
        if resume is not None and hasattr(f, "resume_from"):
            f.resume_from(resume)
        return f

    t = Trader(cfg, open_feed, broker, journal, builder=lambda b, g: BarBuilder(b, grace_seconds=g, symbol="ES"))
    t.start()
    try:
        return t, t.run(max_records=max_records)
    finally:
        journal.close()


def saved_resume(state_dir: Path) -> object:
    """The feed resume token a stopped trader saved in ``state_dir`` (where its restart resumes)."""
    import json

    blobs, _ = Journal(state_dir / "journal.sqlite", readonly=True).load_state()
    return json.loads(blobs["loop"].decode())["resume"]


def comparable(fills) -> list[tuple]:
    """Fills as (order id without the run id, side, quantity, price, time, role): two runs' ids differ by run id."""
    return [(f.order_id.split(":", 1)[1], f.side, f.quantity, f.price, f.ts_ns, f.role) for f in fills]
