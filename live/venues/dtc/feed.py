"""`DTCFeed`: the trades of one symbol from a DTC connection, as `Tick`s with the aggressor from AtBidOrAsk.

The event-loop thread appends ticks to a thread-safe deque; the trader's thread pops them with
:meth:`DTCFeed.next_record` (never blocks). After every logon the feed subscribes again under a new SymbolID
(messages for an old id are ignored). Across an outage ``events`` gets ``("disconnected", why)`` when the link
drops and ``("reconnected", detail)`` when trades flow again. Trades a server re-sends after a reconnect (time
not after the last one yielded, and the same price and size in the same order at that last time) are dropped
and counted; a trade that was never seen is never invented.
"""

from __future__ import annotations

import collections
import logging
import math
import threading
import time
from typing import Any

from live.events import NAN, Tick
from live.feeds.base import Feed, FeedError
from live.venues.aggressor import QuoteRule
from live.venues.dtc import messages as M
from live.venues.dtc.client import DTCClient
from live.venues.dtc.constants import AtBidOrAsk, DepthUpdateType
from live.venues.dtc.constants import MessageType as MT
from live.venues.dtc.convert import aggressor, dtc_time_ns, on_grid
from live.venues.reconnect import LinkState

__all__ = ["DTCFeed"]

log = logging.getLogger("navale.venues.dtc")

TRADE_TYPES = (MT.MARKET_DATA_UPDATE_TRADE, MT.MARKET_DATA_UPDATE_TRADE_COMPACT,
               MT.MARKET_DATA_UPDATE_TRADE_WITH_UNBUNDLED_INDICATOR)
QUOTE_TYPES = (MT.MARKET_DATA_UPDATE_BID_ASK, MT.MARKET_DATA_UPDATE_BID_ASK_COMPACT,
               MT.MARKET_DATA_UPDATE_BID_ASK_FLOAT_WITH_MILLISECONDS)


class DTCFeed(Feed):
    """Live trades of ``dtc_symbol`` on ``exchange``; ticks carry ``symbol`` (e.g. "ES") as their contract code
    ``contract`` (e.g. "ESZ26"). ``resume`` (a :meth:`resume_token`) drops trades a restarted server re-sends."""

    live = True

    def __init__(self, client: DTCClient, dtc_symbol: str, exchange: str, *, symbol: str = "ES",
                 contract: str = "", tick_size: float = 0.25, depth_levels: int = 0, resume: Any = None):
        self.client = client
        self.symbol, self.dtc_symbol, self.exchange = symbol, dtc_symbol, exchange
        self.contract = contract or dtc_symbol
        self.tick_size = tick_size
        self.depth_levels = depth_levels
        self.events: list[tuple[str, str]] = []
        self.last_record_wall = time.monotonic()
        self.symbol_id = 0
        self.quotes = QuoteRule()
        self.reject_text = ""
        self.snapshot: dict = {}
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.received = self.duplicates = self.unsided = 0
        self._q: collections.deque[Tick] = collections.deque()
        self._lock = threading.Lock()
        self._last_ts = -1
        self._at_last: list[tuple[float, int]] = []  # (price, size) of the trades yielded at _last_ts
        self._replay: list[tuple[float, int]] | None = None  # after a reconnect: trades at _last_ts to skip
        self._dups_at_replay = 0  # duplicates counted when the replay window opened
        self._await_flow = False
        self._closed = False
        if resume is not None:
            self.resume_from(resume)
        for t in TRADE_TYPES:
            client.on(t, self._on_trade)
        for t in QUOTE_TYPES:
            client.on(t, self._on_quote)
        client.on(MT.MARKET_DATA_SNAPSHOT, self._on_snapshot)
        client.on(MT.MARKET_DATA_REJECT, self._on_reject)
        client.on(MT.MARKET_DEPTH_SNAPSHOT_LEVEL, self._on_depth_snapshot)
        client.on(MT.MARKET_DEPTH_UPDATE_LEVEL, self._on_depth_update)
        client.hooks.append(self._subscribe)
        client.link.listeners.append(self._on_link)

    # ----- Feed
    def next_record(self) -> Tick | None:
        try:
            return self._q.popleft()
        except IndexError:
            return None

    def resume_token(self) -> dict:
        """The last trade yielded: its time and the (price, size) of every trade yielded at that time."""
        with self._lock:
            return {"ts_ns": self._last_ts, "at_last": [list(x) for x in self._at_last]}

    def resume_from(self, token: object) -> None:
        """Drop trades up to a :meth:`resume_token` (a restarted trader's): the ones a server re-sends at its
        subscription. A token that is not one of ours is refused (FeedError)."""
        if not (isinstance(token, dict) and isinstance(token.get("ts_ns"), int)):
            raise FeedError(f"DTC feed {self.dtc_symbol}: resume token {token!r} is not a DTC feed's")
        with self._lock:
            self._last_ts = int(token["ts_ns"])
            self._at_last = [(float(p), int(s)) for p, s in token.get("at_last", [])]
            self._replay = list(self._at_last)
            self._dups_at_replay = self.duplicates

    def pending(self) -> int:
        """Ticks received and not yet taken."""
        return len(self._q)

    def close(self) -> None:
        """The venue owns the connection: closing the feed only stops taking its trades."""
        self._closed = True
        self._q.clear()

    def stats(self) -> dict[str, Any]:
        return {"received": self.received, "duplicates": self.duplicates, "unsided": self.unsided,
                "queued": len(self._q), "symbol_id": self.symbol_id, "reject": self.reject_text,
                "quote_rule": self.quotes.counts()}

    # ----- subscription (on each logon, while the link is SYNCING)
    async def _subscribe(self, logon: dict) -> None:
        if not logon.get("MarketDataSupported", 1):
            raise FeedError(f"DTC server {self.client.host}:{self.client.port} does not serve market data "
                            "(LOGON_RESPONSE MarketDataSupported = 0)")
        self.symbol_id += 1
        self.reject_text = ""
        self.bids.clear()
        self.asks.clear()
        self.client.send(M.market_data_request(self.symbol_id, self.dtc_symbol, self.exchange))
        if self.depth_levels > 0:
            self.client.send(M.market_depth_request(self.symbol_id, self.dtc_symbol, self.exchange, self.depth_levels))

    def _on_link(self, old: LinkState, new: LinkState, reason: str) -> None:
        if new is LinkState.LOST:
            self.events.append(("disconnected", f"DTC {self.dtc_symbol}: {reason}"))
            with self._lock:
                self._replay = list(self._at_last)  # a server may re-send what we already have
                self._dups_at_replay = self.duplicates
            self._await_flow = True

    # ----- market data (event-loop thread)
    def _on_trade(self, m: dict) -> None:
        if m.get("SymbolID") != self.symbol_id or self._closed:
            return
        ts = dtc_time_ns(m.get("DateTime"))
        price, vol = m.get("Price"), m.get("Volume")
        if not ts or not isinstance(price, (int, float)) or not isinstance(vol, (int, float)) or vol <= 0:
            raise ValueError(f"trade message without a valid DateTime/Price/Volume: {m}")
        price, size = on_grid(float(price), self.tick_size), round(vol)
        self.received += 1
        with self._lock:
            if self._replay is not None:
                if ts < self._last_ts:
                    self.duplicates += 1
                    return
                if ts == self._last_ts and self._replay and self._replay[0] == (price, size):
                    self._replay.pop(0)
                    self.duplicates += 1
                    return
                self._replay = None
                skipped = self.duplicates - self._dups_at_replay
                if skipped:  # never silent: a trade the server sent again, or a new one with the same time and size
                    self.events.append(("resent_skipped", f"DTC {self.dtc_symbol}: {skipped} trade(s) at or before "
                                        "the last one received were skipped as sent again after the reconnect"))
            if ts == self._last_ts:
                self._at_last.append((price, size))
            elif ts > self._last_ts:
                self._last_ts, self._at_last = ts, [(price, size)]
        side = aggressor(m.get("AtBidOrAsk", AtBidOrAsk.BID_ASK_UNSET))
        if side == 0:  # no side from the server: the quote rule, counted apart when it cannot tell either
            self.unsided += 1
            side = self.quotes.classify(price)
        bid, ask = self.quotes.bid, self.quotes.ask
        tick = Tick(ts_ns=ts, price=price, size=size, side=side, contract=self.contract,
                    bid=NAN if math.isnan(bid) else bid, ask=NAN if math.isnan(ask) else ask)
        if self._await_flow:
            self._await_flow = False
            out = self.client.link.outages[-1] if self.client.link.outages else None
            self.events.append(("reconnected", f"DTC {self.dtc_symbol}: trades again (SymbolID {self.symbol_id}"
                                + (f", link down {out.seconds:.1f} s)" if out else ")")))
        self.last_record_wall = time.monotonic()
        self._q.append(tick)

    def _on_quote(self, m: dict) -> None:
        if m.get("SymbolID") != self.symbol_id:
            return
        bid, ask = m.get("BidPrice", 0.0), m.get("AskPrice", 0.0)
        bid = float(bid) if isinstance(bid, (int, float)) and math.isfinite(bid) else 0.0
        ask = float(ask) if isinstance(ask, (int, float)) and math.isfinite(ask) else 0.0
        # a side sent as 0 in a bid/ask update means "unchanged" in Sierra's compact updates: keep the last one
        self.quotes.quote(bid if bid > 0 else self.quotes.bid, ask if ask > 0 else self.quotes.ask)

    def _on_snapshot(self, m: dict) -> None:
        if m.get("SymbolID") != self.symbol_id:
            return
        self.snapshot = dict(m)
        bid, ask = m.get("BidPrice") or 0.0, m.get("AskPrice") or 0.0
        if bid or ask:
            self.quotes.quote(float(bid), float(ask))

    def _on_reject(self, m: dict) -> None:
        if m.get("SymbolID") != self.symbol_id:
            return
        self.reject_text = str(m.get("RejectText") or "market data request rejected")
        self.events.append(("rejected", f"DTC {self.dtc_symbol} on {self.exchange}: {self.reject_text}"))
        log.error("DTC market data for %s rejected: %s", self.dtc_symbol, self.reject_text)

    def _on_depth_snapshot(self, m: dict) -> None:
        if m.get("SymbolID") != self.symbol_id:
            return
        if m.get("IsFirstMessageInBatch"):
            self.bids.clear()
            self.asks.clear()
        if m.get("Price") is not None and m.get("Quantity"):
            book = self.bids if m.get("Side") == AtBidOrAsk.AT_BID else self.asks
            book[on_grid(float(m["Price"]), self.tick_size)] = float(m["Quantity"])

    def _on_depth_update(self, m: dict) -> None:
        if m.get("SymbolID") != self.symbol_id:
            return
        book = self.bids if m.get("Side") == AtBidOrAsk.AT_BID else self.asks
        px = on_grid(float(m.get("Price", 0.0)), self.tick_size)
        if m.get("UpdateType") == DepthUpdateType.MARKET_DEPTH_DELETE_LEVEL or not m.get("Quantity"):
            book.pop(px, None)
        else:
            book[px] = float(m["Quantity"])

    def depth(self, levels: int = 10) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The depth book: (bids best first, asks best first), each ``(price, quantity)``."""
        b = sorted(self.bids.items(), reverse=True)[:levels]
        a = sorted(self.asks.items())[:levels]
        return b, a

