"""The IB broker: the live loop's market orders and OCA brackets on an `IBConnection`.

An entry with a `Bracket` goes out as ONE bracket: the market parent (``transmit=False``), a stop child and a
limit child (``parentId`` the parent, one ``ocaGroup``; ``transmit=True`` on the last only, so IB receives all
three at once). ``IB.bracketOrder`` is not used (its parent is a limit). The paper broker places the legs at the
entry's fill price -/+ the bracket's ticks; IB needs the legs' prices before the fill, so they are placed at the
reference price (the last trade when the order is sent) and, when the parent's execution arrives, modified to
fill price -/+ the ticks (every leg still working is re-sent, even when the price is unchanged).

Ids: `Order.order_id` is IB's ``orderRef`` (legs: ``ID:stop`` / ``ID:target``). ``submit`` is idempotent: an id
already in the state dir's book, among the open orders or in the executions IB reports is not sent again (so a
restart does not duplicate). IB order ids come from ``nextValidId`` and stay above the persisted high-water mark.

An exit (a market order closing the position while a bracket works) joins the bracket's OCA group, so its fill
cancels both legs at IB in the same step (the paper broker drops the bracket when an exit fills).

Fills: every execution (live, or recovered by ``reqExecutions`` after a reconnect) becomes one `Fill` with a
running ``seq`` in the book (`IBStore`, keyed by execId: never counted twice), ``ts_ns`` the execution time,
``role`` from the order that filled (entry / exit / stop / target / flatten). A stop's ``slippage_ticks`` is how
far past its stop price it filled; a market order's, how far from the reference price.

Not READY (connecting, syncing, lost): orders are held in a queue and sent when the link is READY again, oldest
first. A held entry that has gone stale is dropped and reported (``dropped``, a warning in the log) instead: one
whose deciding bar closed more than one bar (``bar_ns``) before the market's latest trade time (or the wall clock
when there is no feed), or whose trading day is over. Held exits and flattens are always sent.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
import math
import threading
import time
from typing import Any

from live.brokers.base import Broker, BrokerError, StoredFills
from live.events import Bracket, Fill, Order
from live.venues.ib.connection import IBConnection
from live.venues.ib.store import IBStore, OrderRow

__all__ = ["IBBroker"]

log = logging.getLogger("live.venues.ib")
_DONE = ("Filled", "Cancelled", "ApiCancelled", "Inactive")
_NS = 1_000_000_000


class IBBroker(StoredFills, Broker):
    """`Broker` over an `IBConnection`; the book is ``store``. ``model_slippage_ticks``: the slippage the
    paper model assumes (a stop filled further than that past its price is flagged ``gap``)."""

    def __init__(self, conn: IBConnection, store: IBStore, *, symbol: str = "ES", tick_size: float = 0.25,
                 bar_ns: int = 300 * _NS, model_slippage_ticks: int = 1, flatten_wait_s: float = 15.0):
        self.conn = conn
        self.store = store
        self.symbol = symbol
        self.tick_size = tick_size
        self.bar_ns = bar_ns
        self.model_slip = model_slippage_ticks
        self.flatten_wait_s = flatten_wait_s
        self.held: collections.deque[Order] = collections.deque()
        self.dropped: list[tuple[str, str]] = []  # (order id, why) of held entries dropped as stale
        self.rejected: list[tuple[str, int, str]] = []  # (order ref, code, message)
        self.working: dict[int, tuple[str, str]] = {}  # IB order id -> (orderRef, status), open at IB
        self.exec_refs: set[str] = set()  # orderRefs IB reported an execution of
        self.positions_cache: dict[str, int] = {}
        self.mismatch: str | None = None  # set by reconcile when IB's position is not what the book's fills say
        self._cursor = store.last_seq()  # poll_fills: fills learnt from now on
        self._cancel_on_ready = False
        self._flat_no = itertools.count(1)
        self._lock = threading.RLock()
        conn.broker = self

    # ------------------------------------------------------------------ the Broker interface
    @property
    def ready(self) -> bool:
        return self.conn.link.ready

    def submit(self, order: Order) -> None:
        """Send ``order`` (an entry with its bracket as one OCA group); a known id does nothing; held while
        the link is not READY (see the module docstring)."""
        self._check(order)
        with self._lock:
            if self._known(order.order_id):
                return
            if not self.conn.link.ready:
                self.held.append(order)
                log.warning("IB link %s: order %s held until the link is ready", self.conn.link.state.value,
                            order.order_id)
                return
        self.conn.run(lambda: self._place(order), what=f"order {order.order_id}")

    def cancel_all(self) -> None:
        """``reqGlobalCancel`` (every working order of the account) and the held queue emptied; while the link is
        down the global cancel is sent when it is back, before anything else."""
        with self._lock:
            self.held.clear()
            if not self.conn.link.ready:
                self._cancel_on_ready = True
                return
        self.conn.run(self.conn.ib.reqGlobalCancel, what="global cancel")
        # IB reports the cancel of another client id's orders (a restarted trader's, or the trader's when `navale
        # stop` connects beside it) to that client only: the open orders are read again
        self.conn.call(self._refresh_open_orders_async(), what="open orders")

    async def _refresh_open_orders_async(self) -> None:
        trades = await asyncio.wait_for(self.conn.ib.reqAllOpenOrdersAsync(), self.conn.request_timeout_s)
        self.working = {tr.order.orderId: (tr.order.orderRef, tr.orderStatus.status) for tr in trades or []
                        if tr.orderStatus.status not in _DONE}

    def cancel(self, order_id: str) -> bool:
        """Cancel a held or working market order by id, or the bracket of entry ``order_id`` (or of a leg's id; an
        entry not filled yet is cancelled with its legs)."""
        with self._lock:
            for o in list(self.held):
                if o.order_id == order_id:
                    self.held.remove(o)
                    return True
        base = order_id.rsplit(":", 1)[0] if order_id.endswith((":stop", ":target")) else order_id
        refs = {base, f"{base}:stop", f"{base}:target"}  # an unfilled entry never goes out without its legs
        ids = [i for i, (ref, st) in dict(self.working).items() if ref in refs and st not in _DONE]
        if not ids:
            return False
        parent = [i for i in ids if self.working[i][0] == base]
        ids = parent or ids  # IB cancels a parent's children with it
        if not self.conn.link.ready:
            raise BrokerError(f"IB cancel {order_id}: the link is {self.conn.link.state.value}, not ready")

        def go() -> None:
            for i in ids:
                self.conn.ib.client.cancelOrder(i, "")

        self.conn.run(go, what=f"cancel {order_id}")
        return True

    def flatten(self, reason: str = "flatten") -> None:
        """Cancel everything, then close the position at market (orderRef ``flatten:REASON:N``); waits up to
        ``flatten_wait_s`` for IB to report the position flat (held, and sent first, while the link is down)."""
        self.cancel_all()
        pos = self.positions().get(self.symbol, 0)
        if pos == 0:
            return
        oid = f"flatten:{reason}:{time.time_ns()}:{next(self._flat_no)}"
        self.submit(Order(order_id=oid, symbol=self.symbol, side=-1 if pos > 0 else 1, quantity=abs(pos),
                          purpose="flatten", reason=reason, decided_ns=time.time_ns(), fill_at="close"))
        deadline = time.monotonic() + self.flatten_wait_s
        while self.conn.link.ready and time.monotonic() < deadline:
            if any(f.order_id == oid for f in self.store.fills_since(self._cursor_floor())):
                return
            time.sleep(0.02)

    def positions(self) -> dict[str, int]:
        """Signed contracts of the traded future (asked of IB when READY, else the last answer)."""
        if self.conn.link.ready:
            try:
                self.conn.call(self._positions_async(), what="positions")
            except BrokerError:
                pass
        return dict(self.positions_cache)

    def open_orders(self) -> list[Order]:
        """Held orders, then the orders open at IB (bracket legs as exit orders, reason "stop"/"target")."""
        out = list(self.held)
        for ib_id, (ref, st) in sorted(dict(self.working).items()):  # a copy: the loop thread updates it
            if st in _DONE:
                continue
            row = self.store.order(ref)
            if row is None:
                out.append(Order(order_id=ref or f"ib:{ib_id}", symbol=self.symbol, side=0, quantity=0,
                                 purpose="exit", reason="foreign"))
            elif row.purpose in ("stop", "target"):
                out.append(Order(order_id=ref, symbol=self.symbol, side=row.side, quantity=row.qty, purpose="exit",
                                 reason=row.purpose))
            else:
                out.append(Order(order_id=ref, symbol=self.symbol, side=row.side, quantity=row.qty,
                                 purpose=row.purpose, reason=row.reason,  # type: ignore[arg-type]
                                 bracket=Bracket(*row.bracket) if row.bracket else None, decided_ns=row.decided_ns))
        return out

    def _stored_fills(self, seq: int) -> list[Fill]:
        return self.store.fills_since(seq)

    def close(self) -> None:
        """The venue owns the connection and the book (`IBVenue.close`)."""

    # ------------------------------------------------------------------ checks
    def _check(self, o: Order) -> None:
        oid = o.order_id
        if not oid:
            raise BrokerError("order has no order_id")
        if o.symbol not in (self.symbol, self.conn.feed.contract if self.conn.feed else self.symbol):
            raise BrokerError(f"order {oid}: symbol {o.symbol!r}, but this IB broker trades {self.symbol!r}")
        if o.side not in (1, -1) or isinstance(o.side, bool):
            raise BrokerError(f"order {oid}: side must be +1 or -1, not {o.side!r}")
        if not isinstance(o.quantity, int) or o.quantity <= 0:
            raise BrokerError(f"order {oid}: quantity must be a positive integer, not {o.quantity!r}")
        if o.purpose not in ("entry", "exit", "flatten"):
            raise BrokerError(f"order {oid}: purpose must be entry, exit or flatten, not {o.purpose!r}")
        if o.bracket is not None and (o.purpose != "entry" or o.bracket.stop_ticks <= 0
                                      or o.bracket.target_ticks <= 0):
            raise BrokerError(f"order {oid}: a bracket goes on an entry, with stop and target > 0 ticks "
                              f"(got {o.bracket})")

    def _known(self, oid: str) -> bool:
        return (self.store.order(oid) is not None or oid in self.exec_refs
                or any(ref == oid for ref, _ in list(self.working.values())) or any(o.order_id == oid for o in self.held))

    def _cursor_floor(self) -> int:
        return max(0, self.store.last_seq() - 50)

    def _px(self, ticks: int) -> float:
        return round(ticks * self.tick_size, 10)

    def _ticks(self, price: float) -> int:
        return round(price / self.tick_size)

    # ------------------------------------------------------------------ placing (loop thread)
    def _place(self, order: Order) -> None:
        from ib_async import LimitOrder, MarketOrder, StopOrder

        ib, conn = self.conn.ib, self.conn
        action = "BUY" if order.side > 0 else "SELL"
        acct = self.conn.settings.account
        ref_px = conn.last_price
        b = order.bracket
        if b is not None and ref_px is None:
            raise BrokerError(f"order {order.order_id}: no trade seen yet to place the bracket's legs from")
        parent = MarketOrder(action, order.quantity, orderRef=order.order_id, tif="DAY", account=acct,
                             transmit=b is None)
        parent.orderId = conn.next_id()
        oca = self._bracket_oca() if order.purpose == "exit" else ""
        if oca:  # an exit joins the open bracket's OCA group: its fill cancels both legs at IB, atomically
            parent.ocaGroup, parent.ocaType = oca, 1
        rows = [OrderRow(order.order_id, parent.orderId, conn.client_id, order.purpose, order.side, order.quantity,
                         "MKT", None, None, order.reason, (b.stop_ticks, b.target_ticks) if b else None, ref_px,
                         order.decided_ns)]
        legs = []
        if b is not None:
            ref = self._ticks(ref_px)
            stop = self._px(ref - order.side * b.stop_ticks)
            target = self._px(ref + order.side * b.target_ticks)
            exit_action = "SELL" if order.side > 0 else "BUY"
            oca = f"oca:{order.order_id}"
            sl = StopOrder(exit_action, order.quantity, stop, orderRef=f"{order.order_id}:stop", tif="GTC",
                           account=acct, parentId=parent.orderId, ocaGroup=oca, ocaType=1, transmit=False)
            sl.orderId = conn.next_id()
            tp = LimitOrder(exit_action, order.quantity, target, orderRef=f"{order.order_id}:target", tif="GTC",
                            account=acct, parentId=parent.orderId, ocaGroup=oca, ocaType=1, transmit=True)
            tp.orderId = conn.next_id()
            legs = [sl, tp]
            rows += [OrderRow(sl.orderRef, sl.orderId, conn.client_id, "stop", -order.side, order.quantity, "STP",
                              stop, order.order_id, "stop", None, ref_px, order.decided_ns),
                     OrderRow(tp.orderRef, tp.orderId, conn.client_id, "target", -order.side, order.quantity, "LMT",
                              target, order.order_id, "target", None, ref_px, order.decided_ns)]
        self.store.add_orders(rows)  # before sending: a crash after the send still knows the id
        for o in [parent] + legs:
            self.working[o.orderId] = (o.orderRef, "PendingSubmit")
            ib.placeOrder(conn.contract, o)

    def _bracket_oca(self) -> str:
        """The OCA group of the working bracket legs ("" when none is working)."""
        for ref, st in list(self.working.values()):
            if st not in _DONE and ref.endswith((":stop", ":target")):
                return f"oca:{ref.rsplit(':', 1)[0]}"
        return ""

    def flush_held(self) -> None:
        """Link READY (loop thread): the pending global cancel, then the held orders that are still valid."""
        if self._cancel_on_ready:
            self._cancel_on_ready = False
            self.conn.ib.reqGlobalCancel()
        now = self._market_now()
        while True:
            with self._lock:
                if not self.held:
                    return
                order = self.held.popleft()
            why = self._stale(order, now)
            if why:
                self.dropped.append((order.order_id, why))
                log.warning("IB: held entry %s dropped: %s", order.order_id, why)
                continue
            try:
                if not self._known(order.order_id):
                    self._place(order)
            except BrokerError as exc:
                self.dropped.append((order.order_id, str(exc)))
                log.error("IB: held order %s not sent: %s", order.order_id, exc)

    def _market_now(self) -> int:
        f = self.conn.feed
        last = f.resume_token()["last_ts_ns"] if f is not None else 0
        return last or self.conn.clock()

    def _stale(self, o: Order, now_ns: int) -> str:
        if o.purpose != "entry":
            return ""
        if o.decided_ns and now_ns - o.decided_ns > self.bar_ns:
            return (f"its bar closed {(now_ns - o.decided_ns) / 1e9:.0f} s before the market's last trade (more "
                    f"than one bar of {self.bar_ns / 1e9:.0f} s): the signal is stale")
        if o.session_day >= 0:
            from live.venues.ib.contract import trading_date

            day = (trading_date(now_ns) - trading_date(0)).days
            if day != o.session_day:
                return f"a day order for trading date {o.session_day}, now {day}"
        return ""

    # ------------------------------------------------------------------ sync (loop thread)
    async def _positions_async(self) -> None:
        t = self.conn.request_timeout_s
        got = await asyncio.wait_for(self.conn.ib.reqPositionsAsync(), t)
        con = self.conn.contract
        q = sum(int(p.position) for p in got or [] if con is not None and p.contract.conId == con.conId)
        self.positions_cache = {self.symbol: q} if q else {}

    async def reconcile_async(self) -> None:
        """Before READY: executions since (fills made while away), open orders, positions; legs re-priced;
        ``mismatch`` set when IB's position differs from the sum of this book's fills."""
        t = self.conn.request_timeout_s
        ib = self.conn.ib
        await asyncio.wait_for(ib.reqExecutionsAsync(), t)  # each one goes through on_execution
        trades = await asyncio.wait_for(ib.reqAllOpenOrdersAsync(), t)
        self.working = {tr.order.orderId: (tr.order.orderRef, tr.orderStatus.status) for tr in trades or []
                        if tr.orderStatus.status not in _DONE}
        for tr in trades or []:  # the legs' prices as IB has them (a modification lost in a drop shows here)
            row = self.store.order(tr.order.orderRef)
            if row is not None and row.purpose in ("stop", "target"):
                px = tr.order.auxPrice if row.purpose == "stop" else tr.order.lmtPrice
                if px is not None and 0 < px < 1e300 and px != row.price:
                    self.store.set_price(row.order_ref, float(px))
        await self._positions_async()
        for row in self.store.orders():
            if row.purpose == "entry" and row.bracket:
                fill = next((f for f in self.store.fills_since(0) if f.order_id == row.order_ref), None)
                if fill is not None:
                    self._reprice(row, fill.price, force=False)
        have = self.positions_cache.get(self.symbol, 0)
        book = sum(f.side * f.quantity for f in self.store.fills_since(0) if f.symbol == self.symbol)
        self.mismatch = None if have == book else (
            f"IB holds {have:+d} {self.symbol} {self.conn.month}, this state dir's fills add up to {book:+d}")
        if self.mismatch:
            log.error("IB position mismatch: %s", self.mismatch)

    # ------------------------------------------------------------------ events (loop thread)
    def on_execution(self, contract: Any, ex: Any) -> None:
        """An execution (live or from reqExecutions): a new Fill unless its execId is known."""
        self.exec_refs.add(ex.orderRef)
        if self.store.known_exec(ex.execId):
            return
        row = self.store.order(ex.orderRef) if ex.orderRef else None
        if row is None and not ex.orderRef:
            row = self.store.by_ib_id(ex.orderId)
        side = 1 if ex.side in ("BOT", "BUY") else -1
        px = float(ex.price)
        t = ex.time
        ts = int(t.timestamp()) * _NS + t.microsecond * 1000
        extra: dict[str, Any] = {"exec_id": ex.execId, "ib_order_id": ex.orderId, "contract": contract.localSymbol}
        slip = 0
        if row is None:
            role = "exit"
            extra["foreign"] = True
        else:
            role = row.purpose
            if role in ("stop", "target"):
                stop = row.price if row.price is not None else px
                slip = max(0, self._ticks((px - stop) * side)) if role == "stop" else 0
                extra.update(ambiguous=False, gap=slip > self.model_slip, optimistic_price=px)
            else:
                if row.ref_price is not None:
                    slip = self._ticks((px - row.ref_price) * side)
                if row.reason and role != "entry":
                    extra["reason"] = row.reason
        f = self.store.add_fill(ex.execId, Fill(ex.execId, row.order_ref if row else (ex.orderRef or
                                                f"ib:{ex.orderId}"), self.symbol, side, int(ex.shares), px, ts,
                                                role, slip, 0, extra))
        if f is None:
            return
        q = self.positions_cache.get(self.symbol, 0) + side * int(ex.shares)
        self.positions_cache = {self.symbol: q} if q else {}
        if row is not None and row.purpose == "entry" and row.bracket:
            self._reprice(row, px, force=True)

    def _reprice(self, entry: OrderRow, fill_px: float, force: bool) -> None:
        """Move the working legs of ``entry`` to ``fill_px`` -/+ the bracket's ticks (re-sent even when equal if
        ``force``: a live fill)."""
        stop_t, target_t = entry.bracket
        f = self._ticks(fill_px)
        want = {"stop": self._px(f - entry.side * stop_t), "target": self._px(f + entry.side * target_t)}
        ib = self.conn.ib
        if self.conn.contract is None:  # the first connect's executions come before the contract: sync re-prices
            return
        for leg in self.store.legs(entry.order_ref):
            st = self.working.get(leg.ib_id, ("", "Filled"))[1]
            if st in _DONE or (not force and leg.price is not None and math.isclose(leg.price, want[leg.purpose])):
                continue
            trade = ib.wrapper.trades.get((leg.client_id, leg.ib_id)) if leg.client_id == self.conn.client_id \
                else None
            if trade is None:
                log.warning("IB: bracket leg %s (order %d of client id %d) cannot be re-priced by client id %d",
                            leg.order_ref, leg.ib_id, leg.client_id, self.conn.client_id)
                continue
            o = trade.order
            if leg.purpose == "stop":
                o.auxPrice = want["stop"]
            else:
                o.lmtPrice = want["target"]
            o.transmit = True
            self.store.set_price(leg.order_ref, want[leg.purpose])
            ib.placeOrder(self.conn.contract, o)

    def on_commission(self, exec_id: str, commission: float) -> None:
        self.store.set_commission(exec_id, commission)

    def on_status(self, ib_id: int, status: str) -> None:
        if ib_id in self.working:
            self.working[ib_id] = (self.working[ib_id][0], status)

    def on_open_order(self, order: Any, status: str) -> None:
        self.working[order.orderId] = (order.orderRef, status)

    def on_order_error(self, ib_id: int, code: int, msg: str) -> None:
        if ib_id in self.working and code not in (399, 2109, 10148, 10147):
            ref = self.working[ib_id][0]
            self.rejected.append((ref, code, msg))
            log.error("IB order %s (%d) error %d: %s", ref, ib_id, code, msg)
