"""The paper broker: fills the live loop's orders against the market data it is fed, in a persistent book.

Two fill models (docs/brokers.md):

- ``mode="bar"``: the backtest's bar model (``strategy.fills``), so a replay compares trade for trade
  with ``navale backtest``. Per closed bar (:meth:`PaperBroker.on_bar`): pending ``next_open`` orders
  fill at its open -/+ slippage in submission order (a day order of another trading date is cancelled),
  an entry's fill places its OCO bracket, the bracket is checked on the bar (stop before target;
  no gap fill on the entry bar), and the close is remembered: a ``fill_at="close"`` order submitted
  next fills at once at that close -/+ slippage.
- ``mode="tick"``: per trade (:meth:`PaperBroker.on_tick`): a pending market order fills at the
  first trade after it was sent, moved by the slippage; a stop triggers on a trade through it and
  fills at that trade -/+ slippage; a target fills at the target when a trade reaches it.

The book (position, working orders, bracket, fills, every order id seen) lives in SQLite at
``book_path`` (``STATE_DIR/paper_broker.sqlite``), one transaction per change, so it outlives a
``kill -9`` of the trader and can be opened by another process (:meth:`PaperBroker.from_state_dir`).
"""

from __future__ import annotations

import datetime as dt
import math
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo

from live.brokers.base import Broker, BrokerError, StoredFills
from live.brokers.paper_book import BOOK_FILE, BookConfig, PaperBook, WorkingBracket
from live.events import Bar, Fill, Order, Tick
from strategy.exits import EXIT_REASONS, R_STOP, R_TARGET
from strategy.fills import bracket_on_bar, market_fill_ticks
from strategy.market.clock import EXCHANGE_TZ

__all__ = ["PaperBroker", "trading_day", "BOOK_FILE"]

PaperMode = Literal["bar", "tick"]
_CT = ZoneInfo(EXCHANGE_TZ)
_EPOCH = dt.date(1970, 1, 1)
_NS = 1_000_000_000
_MARKET_SAVE_NS = _NS  # tick mode persists the last trade at most once a second of market time when idle


def trading_day(ts_ns: int) -> int:
    """Trading date (days since the epoch) of a bar or trade starting at `ts_ns`: at or after 17:00 CT
    it is the next day's (``strategy.market.sessions.session_id`` for one timestamp)."""
    ct = dt.datetime.fromtimestamp(ts_ns // _NS, tz=dt.timezone.utc).astimezone(_CT)
    return ((ct.replace(tzinfo=None) + dt.timedelta(hours=7)).date() - _EPOCH).days


class PaperBroker(StoredFills, Broker):
    """A simulated broker for one symbol; see the module docstring for the fill models.

    Prices in and out are floats on the ``tick_size`` grid; inside they are int ticks
    (``rint(price / tick_size)``). ``book_path=None`` keeps the book in memory; ``lock_timeout_s``: how long
    a change waits for another process's write lock before a BrokerError.
    """

    def __init__(self, symbol: str, *, tick_size: float = 0.25, mode: PaperMode = "bar", slippage_ticks: int = 1,
                 book_path: str | Path | None = None, lock_timeout_s: float = 30.0):
        if mode not in ("bar", "tick"):
            raise BrokerError(f"paper broker mode must be 'bar' or 'tick', not {mode!r}")
        if not (isinstance(tick_size, (int, float)) and math.isfinite(tick_size) and tick_size > 0):
            raise BrokerError(f"paper broker tick_size must be a positive number, not {tick_size!r}")
        if not isinstance(slippage_ticks, int) or slippage_ticks < 0:
            raise BrokerError(f"paper broker slippage_ticks must be an integer >= 0, not {slippage_ticks!r}")
        if not symbol:
            raise BrokerError("paper broker needs a symbol")
        self._book = PaperBook(book_path, BookConfig(symbol, float(tick_size), mode, slippage_ticks), lock_timeout_s)
        self._init_from_book()

    @classmethod
    def from_state_dir(cls, state_dir: str | Path, *, lock_timeout_s: float = 30.0) -> PaperBroker:
        """Reopen the book in ``state_dir`` with the configuration stored in it (e.g. from ``navale stop``)."""
        self = cls.__new__(cls)
        self._book = PaperBook(Path(state_dir) / BOOK_FILE, None, lock_timeout_s)
        self._init_from_book()
        return self

    def _init_from_book(self) -> None:
        c = self._book.config
        self.symbol, self.tick_size, self.mode, self.slippage_ticks = c.symbol, c.tick_size, c.mode, c.slippage_ticks
        self._cursor = 0  # poll_fills delivers seq > cursor
        s = self._book.state
        self._skip_at_last = s.ticks_at_last  # after a reopen, trades re-sent at the last persisted time
        self._market_saved_ns = s.last_tick_ns

    @property
    def book_path(self) -> Path | None:
        return self._book.path

    @property
    def last_bar_ns(self) -> int:
        """Start time of the last bar filled against (-1: none yet); a restarted feed resumes after it."""
        return self._book.state.last_bar_ns

    @property
    def last_tick(self) -> tuple[int, int]:
        """(time of the last trade processed, how many trades at that time were), as the book has them:
        (-1, 0) before any."""
        s = self._book.state
        return s.last_tick_ns, s.ticks_at_last

    # ----- prices
    def _ticks(self, price: float, what: str) -> int:
        q = price / self.tick_size if isinstance(price, (int, float)) else math.nan
        r = round(q) if math.isfinite(q) else 0
        if not (math.isfinite(q) and abs(q - r) <= 1e-6) or price <= 0:
            raise BrokerError(f"{self.symbol} paper broker: {what} {price!r} is not a positive price on the "
                              f"{self.tick_size} tick grid")
        return int(r)

    # ----- orders
    def submit(self, order: Order) -> None:
        """Accept a market order (with its bracket); a known ``order_id`` is a no-op, even after a restart."""
        with self._book.transaction():
            if self._book.known(order.order_id):
                return
            self._check(order)
            self._book.add_order(order)
            s = self._book.state
            if order.purpose == "flatten" or (self.mode == "bar" and order.fill_at == "close"):
                ref = s.last_close if self.mode == "bar" else s.last_trade
                if ref is None:
                    raise BrokerError(f"order {order.order_id}: no market price yet to fill a {order.fill_at} order at")
                self._fill_market(order, ref, max(order.decided_ns, self._now()))

    def _check(self, o: Order) -> None:
        s = self._book.state
        oid = o.order_id
        if not oid:
            raise BrokerError("order has no order_id")
        if o.symbol != self.symbol:
            raise BrokerError(f"order {oid}: symbol {o.symbol!r}, but this paper broker trades {self.symbol!r}")
        if o.side not in (1, -1) or isinstance(o.side, bool):
            raise BrokerError(f"order {oid}: side must be +1 or -1, not {o.side!r}")
        if not isinstance(o.quantity, int) or o.quantity <= 0:
            raise BrokerError(f"order {oid}: quantity must be a positive integer, not {o.quantity!r}")
        if o.purpose not in ("entry", "exit", "flatten"):
            raise BrokerError(f"order {oid}: purpose must be entry, exit or flatten, not {o.purpose!r}")
        if o.fill_at not in ("next_open", "close"):
            raise BrokerError(f"order {oid}: fill_at must be next_open or close, not {o.fill_at!r}")
        if o.bracket is not None and (o.purpose != "entry" or o.bracket.stop_ticks <= 0
                                      or o.bracket.target_ticks <= 0):
            raise BrokerError(f"order {oid}: a bracket goes on an entry, with stop and target > 0 ticks "
                              f"(got {o.bracket})")
        pending = sum(p.side * p.quantity for p in s.pending)
        if o.purpose == "entry":
            after = s.qty + pending
            if after != 0:
                same = (after > 0) == (o.side > 0)
                raise BrokerError(f"order {oid}: entry {o.side:+d}x{o.quantity} while a position of {after:+d} is "
                                  + ("open in the same direction" if same else "open or pending (send the exit first)"))
        else:
            closable = s.qty + sum(p.side * p.quantity for p in s.pending if p.purpose != "entry")
            if closable == 0 or (closable > 0) == (o.side > 0) or o.quantity > abs(closable):
                raise BrokerError(f"order {oid}: {o.purpose} {o.side:+d}x{o.quantity} is larger than the position "
                                  f"it would close ({closable:+d} after pending exits)")

    def cancel_all(self) -> None:
        """Cancel the pending market orders and the bracket (the position stays open)."""
        with self._book.transaction():
            self._cancel_all("cancel_all")

    def cancel(self, order_id: str) -> bool:
        """Cancel the pending market order ``order_id``, or the bracket of entry ``order_id`` (or of a leg's id)."""
        with self._book.transaction():
            for o in list(self._book.state.pending):
                if o.order_id == order_id:
                    self._book.set_status(o, "cancelled", "cancel")
                    return True
            b = self._book.state.bracket
            if b is not None and order_id in (b.parent_id, f"{b.parent_id}:stop", f"{b.parent_id}:target"):
                self._book.set_bracket(None)
                return True
        return False

    def _cancel_all(self, note: str) -> None:
        for o in list(self._book.state.pending):
            self._book.set_status(o, "cancelled", note)
        if self._book.state.bracket is not None:
            self._book.set_bracket(None)

    def flatten(self, reason: str = "flatten") -> None:
        """Cancel everything and close the position at the last close (bar) or last trade (tick) -/+ slippage."""
        with self._book.transaction():
            s = self._book.state
            self._cancel_all(reason)
            if s.qty == 0:
                return
            ref = s.last_close if self.mode == "bar" else s.last_trade
            if ref is None:  # only a hand-edited book: a position implies a fill implies a price
                raise BrokerError(f"{self.symbol} paper broker: no market price to flatten at")
            side = -1 if s.qty > 0 else 1
            px = market_fill_ticks(ref, side, self.slippage_ticks)
            self._book.add_fill(f"flatten-{s.seq + 1}", side, abs(s.qty), px, self._now(), "flatten",
                                self.slippage_ticks, {"reason": reason})
            self._book.set_position(0, 0)

    # ----- queries
    def positions(self) -> dict[str, int]:
        self._book.refresh()
        q = self._book.state.qty
        return {self.symbol: q} if q else {}

    def entry_price(self) -> float | None:
        """Average fill price of the open position (None when flat)."""
        self._book.refresh()
        s = self._book.state
        return self._book.price(s.entry_ticks) if s.qty else None

    def bracket_prices(self) -> tuple[float, float] | None:
        """(stop, target) of the working bracket, or None."""
        self._book.refresh()
        b = self._book.state.bracket
        return (self._book.price(b.stop), self._book.price(b.target)) if b else None

    def open_orders(self) -> list[Order]:
        """Pending market orders, then the bracket legs as exit orders (``reason`` "stop"/"target",
        ``order_id`` the entry's id + ``":stop"``/``":target"``)."""
        self._book.refresh()
        s = self._book.state
        out = list(s.pending)
        b = s.bracket
        if b is not None:
            out += [Order(order_id=f"{b.parent_id}:{leg}", symbol=self.symbol, side=-b.pos_side, quantity=b.qty,
                          purpose="exit", reason=leg) for leg in ("stop", "target")]
        return out

    def order_history(self) -> list[tuple[Order, str, str]]:
        """Every order the book has seen: ``(order, status, note)``, status pending/filled/cancelled."""
        return self._book.orders()

    def poll_fills(self) -> list[Fill]:
        """Fills with a seq after the last one delivered by this object (all of the book's, at first); the book is
        re-read first (another process may have filled)."""
        self._book.refresh()
        if self._book.state.seq <= self._cursor:
            return []
        return super().poll_fills()

    def _stored_fills(self, seq: int) -> list[Fill]:
        return self._book.fills_since(seq)

    # ----- market data
    def on_bar(self, bar: Bar) -> None:
        """Bar mode: fill against one closed bar (a bar not after the last one seen is ignored)."""
        if self.mode != "bar":
            return
        self._book.feeding = True
        s = self._book.state
        if bar.ts_ns <= s.last_bar_ns:
            return
        o, h, l, c = (self._ticks(getattr(bar, k), f"bar {bar.ts_ns} {k}") for k in ("open", "high", "low", "close"))
        if not (l <= min(o, c) and h >= max(o, c)):
            raise BrokerError(f"{self.symbol} paper broker: bar {bar.ts_ns} has O/H/L/C {bar.open}/{bar.high}/"
                              f"{bar.low}/{bar.close} (low/high do not bound open/close)")
        with self._book.transaction():
            day = trading_day(bar.ts_ns)
            for order in list(s.pending):
                if 0 <= order.session_day != day:
                    self._book.set_status(order, "cancelled", f"day order for trading date {order.session_day}, "
                                                              f"bar on {day}")
                else:
                    self._fill_market(order, o, bar.ts_ns, placed_ns=bar.ts_ns)
            b = s.bracket
            if b is not None and s.qty != 0:
                reason, px, ambiguous, gap, opt = bracket_on_bar(b.pos_side, b.stop, b.target, o, h, l,
                                                                 b.placed_ns != bar.ts_ns, self.slippage_ticks)
                if reason == R_STOP or reason == R_TARGET:
                    self._fill_bracket(b, reason, int(px), bar.ts_ns, {
                        "ambiguous": bool(ambiguous), "gap": bool(gap),
                        "optimistic_price": self._book.price(int(opt))})
            s.last_close, s.last_bar_ns = c, bar.ts_ns

    def on_tick(self, tick: Tick) -> None:
        """Tick mode: fill against one trade (a trade older than the last one seen is ignored)."""
        if self.mode != "tick":
            return
        self._book.feeding = True
        s = self._book.state
        ts = tick.ts_ns
        if ts < s.last_tick_ns:
            return
        if ts == s.last_tick_ns and self._skip_at_last > 0:
            self._skip_at_last -= 1
            return
        self._skip_at_last = 0
        p = self._ticks(tick.price, f"trade {ts} price")
        self._book.refresh()
        if ts == s.last_tick_ns:
            s.ticks_at_last += 1
        else:
            s.last_tick_ns, s.ticks_at_last = ts, 1
        s.last_trade = p
        b = s.bracket
        if not s.pending and not (b and _triggers(b, p)):
            if ts - self._market_saved_ns >= _MARKET_SAVE_NS:
                with self._book.transaction():
                    pass  # the market state is saved with every change
                self._market_saved_ns = ts
            return
        with self._book.transaction():
            b = s.bracket  # as placed before this trade
            for order in list(s.pending):
                if 0 <= order.session_day != trading_day(ts):
                    self._book.set_status(order, "cancelled", f"day order for trading date {order.session_day}")
                else:
                    self._fill_market(order, p, ts, placed_ns=ts)
            if b is not None and s.bracket is b and s.qty != 0 and _triggers(b, p):
                if (p <= b.stop) if b.pos_side > 0 else (p >= b.stop):
                    px = market_fill_ticks(p, -b.pos_side, self.slippage_ticks)
                    self._fill_bracket(b, R_STOP, px, ts, {"ambiguous": False, "gap": p != b.stop,
                                                           "optimistic_price": self._book.price(px)})
                else:
                    self._fill_bracket(b, R_TARGET, b.target, ts, {"ambiguous": False, "gap": False,
                                                                   "optimistic_price": self._book.price(b.target)})
        self._market_saved_ns = ts

    # ----- fills (inside a transaction)
    def _now(self) -> int:
        s = self._book.state
        return max(s.last_bar_ns, s.last_tick_ns, 0)

    def _fill_market(self, order: Order, ref: int, ts_ns: int, placed_ns: int = -1) -> None:
        s, book, slip = self._book.state, self._book, self.slippage_ticks
        if order.purpose == "entry":
            if s.qty != 0:
                book.set_status(order, "cancelled", f"position {s.qty:+d} open when the entry came to fill")
                return
            px = market_fill_ticks(ref, order.side, slip)
            book.set_status(order, "filled")
            book.add_fill(order.order_id, order.side, order.quantity, px, ts_ns, "entry", slip, {})
            book.set_position(order.side * order.quantity, px)
            if order.bracket is not None:
                book.set_bracket(WorkingBracket(order.order_id, order.side, order.quantity,
                                                px - order.side * order.bracket.stop_ticks,
                                                px + order.side * order.bracket.target_ticks, placed_ns))
            return
        if s.qty == 0 or (s.qty > 0) == (order.side > 0):
            book.set_status(order, "cancelled", "position already flat")
            return
        qty = min(order.quantity, abs(s.qty))
        px = market_fill_ticks(ref, order.side, slip)
        role = "flatten" if order.purpose == "flatten" else "exit"
        book.set_status(order, "filled")
        book.add_fill(order.order_id, order.side, qty, px, ts_ns, role, slip, {"reason": order.reason} if order.reason
                      else {})
        left = s.qty + order.side * qty
        book.set_position(left, s.entry_ticks if left else 0)
        if s.bracket is not None:
            if left == 0:
                book.set_bracket(None)
            else:
                s.bracket.qty = abs(left)
                book.set_bracket(s.bracket)

    def _fill_bracket(self, b: WorkingBracket, reason: int, px: int, ts_ns: int, extra: dict) -> None:
        leg = EXIT_REASONS[reason]
        book = self._book
        book.add_fill(f"{b.parent_id}:{leg}", -b.pos_side, b.qty, px, ts_ns, leg,
                      self.slippage_ticks if reason == R_STOP else 0, extra)
        left = book.state.qty - b.pos_side * b.qty
        book.set_position(left, book.state.entry_ticks if left else 0)
        book.set_bracket(None)  # OCO: the other leg is cancelled

    def close(self) -> None:
        self._book.close()


def _triggers(b: WorkingBracket, p: int) -> bool:
    if b.pos_side > 0:
        return p <= b.stop or p >= b.target
    return p >= b.stop or p <= b.target
