"""The IB feed: tick-by-tick trades ('AllLast') and quotes ('BidAsk') of the qualified future as `Tick` records.

AllLast carries no aggressor side: `live.venues.aggressor.QuoteRule` gives it from the last BidAsk quote received
before the trade (at/above the ask +1, at/below the bid -1, otherwise 0, counted apart). IB stamps tick-by-tick
records in whole seconds: ``Tick.ts_ns`` is that second in UTC ns.

The connection's loop thread calls :meth:`IBFeed.on_trade` / :meth:`IBFeed.on_quote`; the trader's thread calls
:meth:`IBFeed.next_record`, which only pops a ``collections.deque`` (never blocks). Outages are reported in
``events`` (``("disconnected", why)`` when the link drops, ``("reconnected", how long)`` when trades flow again):
the trades of the outage are missing, never invented.
"""

from __future__ import annotations

import collections
import threading
import time
from typing import Any

from live.events import Tick
from live.feeds.base import Feed
from live.venues.aggressor import QuoteRule

__all__ = ["IBFeed"]


class IBFeed(Feed):
    """Trades of one contract from an `IBConnection` (which subscribes it and feeds it)."""

    live = True
    yields_bars = False
    order_flow = True  # sides from the quote rule: bid/ask volumes are the exact delta of classified trades

    def __init__(self, symbol: str) -> None:
        self.symbol = symbol
        self.contract = ""  # local symbol of the qualified contract, e.g. ESH4
        self.rule = QuoteRule()
        self.events: list[tuple[str, str]] = []
        self.last_record_wall: float | None = None  # time.monotonic() of the last trade received
        self.trade_req: int | None = None  # request ids of the current subscriptions
        self.quote_req: int | None = None
        self.trades = 0
        self._q: collections.deque[Tick] = collections.deque()
        self._lock = threading.Lock()
        self._down_since: float | None = None
        self._last_ts = 0
        self.error: str | None = None  # a market-data refusal (no subscription), in plain words

    # ----- the loop thread
    def on_quote(self, bid: float, ask: float) -> None:
        self.rule.quote(bid, ask)

    def on_trade(self, ts_s: int, price: float, size: float) -> None:
        side = self.rule.classify(price)
        tick = Tick(ts_ns=int(ts_s) * 1_000_000_000, price=float(price), size=int(size), side=side,
                    contract=self.contract, bid=self.rule.bid, ask=self.rule.ask)
        self.trades += 1
        self._last_ts = tick.ts_ns
        with self._lock:
            if self._down_since is not None:
                quiet = time.monotonic() - self._down_since
                why = f"trades again after {quiet:.1f} s without a link: the bars of the outage are a gap"
                self.events.append(("reconnected", why))
                self._down_since = None
            self._q.append(tick)
            self.last_record_wall = time.monotonic()

    def on_link_lost(self, reason: str) -> None:
        """The link dropped (socket, or IB's own upstream): the trades until it is back are missing."""
        with self._lock:
            if self._down_since is None:
                self._down_since = time.monotonic()
                self.events.append(("disconnected", reason))

    # ----- the trader's thread
    def next_record(self) -> Tick | None:
        """The oldest trade not yet read, or None (never blocks)."""
        try:
            return self._q.popleft()
        except IndexError:
            return None

    def resume_token(self) -> Any:
        """The time of the last trade received (a live feed cannot replay: a restart resumes with the market)."""
        return {"last_ts_ns": self._last_ts}

    def counts(self) -> dict[str, int]:
        return {"trades": self.trades, **self.rule.counts(), "queued": len(self._q)}
