"""`DTCBroker`: the `Broker` interface over a DTC connection (Sierra Chart's DTC server, its connected broker or its
own simulation).

Orders: a market entry is a SUBMIT_NEW_SINGLE_ORDER (market); its bracket is a SUBMIT_NEW_OCO_ORDER (a stop leg and
a limit target leg) sent by the event-loop thread as soon as the entry's fill is reported, priced at the fill price
-/+ the Bracket ticks (the paper broker's rule). DTC's other forms do not fit that rule: a parent order with
attached OCO children (SUBMIT_NEW_OCO_ORDER with ParentTriggerClientOrderID) carries absolute prices fixed before
the entry fills, and ``UseOffsets``/``OffsetFromParent1/2`` (offsets from the parent's fill) is not honoured by every
server; so the bracket goes out after the fill, and the position is unprotected for the round trip between the
fill report and the OCO order (the fill -> OCO figure of ``tests/live/venues/dtc/bench_dtc.py``).

ClientOrderID is our order id (a stable short hash past 31 characters, `store.client_order_id`); a bracket leg's
is ``ENTRY:stop`` / ``ENTRY:target``. ``submit`` is idempotent on the order id (the store remembers every one).
Fills are counted once by ServerOrderID + execution id and numbered by a running ``seq`` kept in the store.

No order goes out while the link is not READY: it is held (in the store) and sent when the link is READY again;
a held *entry* older than ``hold_s`` by then is expired instead (status "expired", logged, listed in
``rejections``): the market moved on, and the trader sees it in ``open_orders()`` no more. Exits and flattens are
always sent.

Threading: public methods run on the caller's thread and hand the work to the venue's event-loop thread with a
timeout (``call``); DTC messages are handled on the loop thread.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from live.brokers.base import Broker, BrokerError, StoredFills
from live.events import Fill, Order
from live.venues.dtc import messages as M
from live.venues.dtc.client import DTCClient, DTCError
from live.venues.dtc.constants import MessageType as MT
from live.venues.dtc.constants import OrderStatus as OS
from live.venues.dtc.constants import OrderUpdateReason as OUR
from live.venues.dtc.convert import dtc_time_ns, on_grid, side_of_buysell
from live.venues.dtc.store import STORE_FILE, DTCStore
from live.venues.reconnect import LinkState

__all__ = ["TRADING_DISABLED", "DTCBroker"]

log = logging.getLogger("navale.venues.dtc")

TRADING_DISABLED = ("trading is not enabled on the DTC server: enable 'Allow Trading' in Sierra Chart's DTC server "
                    "settings (Global Settings >> Sierra Chart Server Settings)")
_WORKING = {OS.ORDER_STATUS_ORDER_SENT, OS.ORDER_STATUS_PENDING_OPEN, OS.ORDER_STATUS_PENDING_CHILD,
            OS.ORDER_STATUS_OPEN, OS.ORDER_STATUS_PENDING_CANCEL_REPLACE, OS.ORDER_STATUS_PENDING_CANCEL,
            OS.ORDER_STATUS_PARTIALLY_FILLED}
_FINAL = {OS.ORDER_STATUS_FILLED: "filled", OS.ORDER_STATUS_CANCELED: "cancelled", OS.ORDER_STATUS_REJECTED: "rejected"}
Call = Callable[[Coroutine, float], Any]


class DTCBroker(StoredFills, Broker):
    """Market orders with an OCO bracket through DTC, for one symbol (``symbol`` "ES" is what the trader calls it;
    ``dtc_symbol``/``exchange`` are what the server calls it)."""

    def __init__(self, client: DTCClient, call: Call, *, symbol: str, dtc_symbol: str, exchange: str,
                 trade_account: str = "", tick_size: float = 0.25, state_dir: str | Path | None = None,
                 hold_s: float = 15.0, timeout_s: float = 10.0):
        self.client, self._call = client, call
        self.symbol, self.dtc_symbol, self.exchange = symbol, dtc_symbol, exchange
        self.trade_account = trade_account
        self.tick_size = tick_size
        self.hold_s, self.timeout_s = hold_s, timeout_s
        self.store = DTCStore(None if state_dir is None else Path(state_dir) / STORE_FILE)
        self.rejections: list[tuple[str, str]] = []  # (order id, why): refused, expired, or a bracket not placed
        self.sent = 0
        self.fill_latency_s: list[float] = []  # entry fill report -> OCO written (loop thread), seconds
        self._pos = 0
        self._working: dict[str, dict] = {}  # order id -> its last ORDER_UPDATE, while working at the server
        self._waiters: dict[str, asyncio.Future] = {}
        self._cancelling: set[str] = set()  # working orders whose CANCEL_ORDER is on its way
        self._cancel_on_ack: set[str] = set()  # legs cancelled before the server's acknowledgement reached us
        self._waiting_legs = False
        self._cursor = 0
        self._synced = False
        client.on(MT.ORDER_UPDATE, self._on_order_update)
        client.on(MT.POSITION_UPDATE, self._on_position)
        client.hooks.append(self._sync)
        client.link.listeners.append(self._on_link)

    # ----- Broker
    @property
    def ready(self) -> bool:
        return self.client.link.ready and self._synced

    def submit(self, order: Order) -> None:
        """Send a market order (its bracket follows its fill); a known order id does nothing; held while not READY."""
        self._check(order)
        if not self.store.add_order(order, "held", time.time()):
            return
        if order.bracket is not None:
            self.store.add_bracket(order.order_id, order.bracket)
        self._run(self._send_held(), f"submit {order.order_id}")

    def cancel(self, order_id: str) -> bool:
        """Cancel a held or working market order, or the bracket of entry ``order_id`` (or of either leg's id)."""
        entry = order_id.rsplit(":", 1)[0] if order_id.endswith((":stop", ":target")) else order_id
        return bool(self._run(self._cancel({order_id, entry}), f"cancel {order_id}"))

    def cancel_all(self) -> None:
        self._run(self._cancel(None), "cancel_all")

    def flatten(self, reason: str = "flatten") -> None:
        """Cancel everything, then close the position at market (order id ``flatten-N``). With the link down the
        flatten is held: the bracket legs at the server are cancelled first when it is READY again."""
        self._run(self._cancel(None, strict=False), "flatten")
        q = self._pos
        if q:
            n = len(self.store.orders()) + 1
            self.submit(Order(order_id=f"flatten-{n}", symbol=self.symbol, side=-1 if q > 0 else 1, quantity=abs(q),
                              purpose="flatten", reason=reason))

    def positions(self) -> dict[str, int]:
        """The server's position (CURRENT_POSITIONS_REQUEST at each logon, then its POSITION_UPDATEs)."""
        return {self.symbol: self._pos} if self._pos else {}

    def open_orders(self) -> list[Order]:
        """Held and working market orders, then the bracket legs (placed, or waiting to be placed on a fill)."""
        out: list[Order] = []
        legs: list[Order] = []
        for o, status, _, _ in self.store.orders("held", "sent", "working"):
            (legs if o.order_id.endswith((":stop", ":target")) else out).append(o)
        for entry_id, _, _, status, _, _ in self.store.brackets("waiting"):
            rec = self.store.order(entry_id)
            if rec is not None and rec[1] == "filled":  # the entry filled; its OCO goes out when READY
                o = rec[0]
                legs += [Order(order_id=f"{entry_id}:{leg}", symbol=self.symbol, side=-o.side, quantity=o.quantity,
                               purpose="exit", reason=leg) for leg in ("stop", "target")]
        return out + legs

    def _stored_fills(self, seq: int) -> list[Fill]:
        return self.store.fills_since(seq)

    def close(self) -> None:
        self.store.close()

    def stats(self) -> dict[str, Any]:
        return {"position": self._pos, "working": len(self._working), "sent": self.sent,
                "rejections": list(self.rejections[-5:]), "ready": self.ready}

    # ----- helpers (caller's thread)
    def _check(self, o: Order) -> None:
        if not o.order_id:
            raise BrokerError("order has no order_id")
        if o.symbol != self.symbol:
            raise BrokerError(f"order {o.order_id}: symbol {o.symbol!r}, but this DTC broker trades {self.symbol!r}")
        if o.side not in (1, -1) or isinstance(o.side, bool):
            raise BrokerError(f"order {o.order_id}: side must be +1 or -1, not {o.side!r}")
        if not isinstance(o.quantity, int) or o.quantity <= 0:
            raise BrokerError(f"order {o.order_id}: quantity must be a positive integer, not {o.quantity!r}")
        if o.bracket is not None and (o.purpose != "entry" or o.bracket.stop_ticks <= 0
                                      or o.bracket.target_ticks <= 0):
            raise BrokerError(f"order {o.order_id}: a bracket goes on an entry, with stop and target > 0 ticks")

    def _run(self, coro: Coroutine, what: str) -> Any:
        limit = self.timeout_s + 2.0  # a margin: the loop's own timeouts, which name what did not answer, come first
        try:
            return self._call(coro, limit)
        except (DTCError, TimeoutError) as e:
            raise BrokerError(f"DTC {what}: {e or 'timed out after {:g} s'.format(limit)}") from None

    # ----- sending (loop thread)
    def _can_send(self) -> bool:
        return self.client.link.state is LinkState.READY and self.client.connected

    async def _send_held(self) -> None:
        self._flush()

    def _flush(self) -> None:
        """Send the brackets waiting for READY, then the held orders in submission order (stale entries expire)."""
        if not self._can_send():
            return
        for entry_id, *_ in self.store.brackets("waiting"):
            rec = self.store.order(entry_id)
            if rec is not None and rec[1] == "filled":
                self._place_bracket(entry_id)
        now = time.time()
        legs = [o.order_id for o, _, _, _ in self.store.orders("sent", "working")
                if o.order_id.endswith((":stop", ":target"))]
        for o, _, _, held in self.store.orders("held"):
            if o.purpose == "entry" and held and now - held > self.hold_s:
                why = f"held {now - held:.0f} s while the DTC link was down (> {self.hold_s:g} s): not sent"
                self.store.set_status(o.order_id, "expired", why)
                self.store.set_bracket(o.order_id, "expired")
                self.rejections.append((o.order_id, why))
                log.warning("DTC entry %s expired: %s", o.order_id, why)
                continue
            if o.purpose != "entry" and legs:
                # an exit replaces the bracket (the paper broker's rule): cancel the OCO legs first and send the
                # exit once both are done, so a leg filling meanwhile never makes the exit open a new position
                for leg in legs:
                    m = self._working.get(leg)
                    if m is not None:
                        self._send_cancel(leg, m)
                self._waiting_legs = True  # flushed again at the legs' next update (an ack, then the cancel)
                break  # later held orders wait behind this one
            if o.purpose != "entry" and (self._pos == 0 or (self._pos > 0) == (o.side > 0)):
                self.store.set_status(o.order_id, "cancelled", "position already flat")
                continue
            self._send_single(o)

    def _send_single(self, o: Order) -> None:
        self.client.send(M.market_order(self.dtc_symbol, self.exchange, self.trade_account,
                                        self.store.client_id(o.order_id), o.side, o.quantity, o.purpose == "entry",
                                        o.purpose))
        self.store.set_status(o.order_id, "sent")
        self.sent += 1

    def _place_bracket(self, entry_id: str) -> None:
        """The OCO stop + limit target of a filled entry, priced from its last fill."""
        rec, fill = self.store.order(entry_id), self.store.last_fill(entry_id)
        row = [b for b in self.store.brackets() if b[0] == entry_id]
        if rec is None or fill is None or not row:
            return
        o, (_, stop_ticks, target_ticks, *_) = rec[0], row[0]
        if (self._pos > 0) != (o.side > 0) or self._pos == 0:  # closed while the bracket waited: nothing to protect
            self.store.set_bracket(entry_id, "done")
            return
        qty = min(abs(self._pos), o.quantity)
        stop = on_grid(fill.price - o.side * stop_ticks * self.tick_size, self.tick_size)
        target = on_grid(fill.price + o.side * target_ticks * self.tick_size, self.tick_size)
        ids = {}
        for leg in ("stop", "target"):
            leg_order = Order(order_id=f"{entry_id}:{leg}", symbol=self.symbol, side=-o.side, quantity=qty,
                              purpose="exit", reason=leg, decided_ns=fill.ts_ns)
            self.store.add_order(leg_order, "sent")
            ids[leg] = self.store.client_id(leg_order.order_id)
        self.client.send(M.oco_bracket(self.dtc_symbol, self.exchange, self.trade_account, ids["stop"], ids["target"],
                                       -o.side, qty, stop, target))
        self.store.set_bracket(entry_id, "sent", stop, target)
        self.sent += 1

    async def _cancel(self, ids: set[str] | None, strict: bool = True) -> bool:
        """Cancel held orders, waiting brackets and working orders among ``ids`` (None: all); wait for the server.
        With the link down, working orders cannot be cancelled: DTCError before anything changes (``strict``), or
        the held orders and brackets cancelled and the rest left as it is. A confirmation that does not come within
        ``timeout_s``: DTCError naming the orders (``strict``) or a warning; a late acknowledgement still cancels."""
        held = [o.order_id for o, *_ in self.store.orders("held") if ids is None or o.order_id in ids]
        brackets = [entry_id for entry_id, *_ in self.store.brackets("waiting", "sent") if ids is None or entry_id in ids]
        if ids is not None:  # an entry's id covers its legs, whatever its bracket's status
            ids = ids | {f"{oid}:{leg}" for oid in ids for leg in ("stop", "target")}
        todo = [oid for oid in self._working if ids is None or oid in ids]
        # bracket legs sent whose acknowledgement has not reached us yet (the server may already hold them):
        # cancelled as soon as it does (`_on_order_update`), and waited for like the others
        unacked = [o.order_id for o, *_ in self.store.orders("sent") if o.order_id.endswith((":stop", ":target"))
                   and o.order_id not in self._working and (ids is None or o.order_id in ids)]
        linked = self._can_send()
        if (todo or unacked) and not linked and strict:
            raise DTCError(f"the link is {self.client.link.state.value}: cannot cancel {', '.join(todo + unacked)} now")
        for oid in held:
            self.store.set_status(oid, "cancelled", "cancelled while held")
        for entry_id in brackets:
            self.store.set_bracket(entry_id, "cancelled")
        hit = bool(held or brackets)
        if not linked:
            return hit
        loop = asyncio.get_running_loop()
        waits = []
        for oid in todo:
            waits.append(self._waiter(oid, loop))
            self._send_cancel(oid, self._working[oid])
        for oid in unacked:
            waits.append(self._waiter(oid, loop))
            self._cancel_on_ack.add(oid)
        if waits:
            # asyncio.wait, not wait_for: a timeout here must not cancel futures another call may be waiting on
            _, late = await asyncio.wait(waits, timeout=self.timeout_s)
            if late:
                left = [o for o, f in zip(todo + unacked, waits) if not f.done()]
                why = f"no cancel confirmation for {', '.join(left)} within {self.timeout_s:g} s"
                if strict:
                    raise DTCError(why)
                log.warning("DTC %s (cancelled when the server answers)", why)
        return hit or bool(todo) or bool(unacked)

    def _waiter(self, oid: str, loop: asyncio.AbstractEventLoop) -> asyncio.Future:
        """The future resolved by ``oid``'s final status: the pending one, or a new one."""
        fut = self._waiters.get(oid)
        if fut is None or fut.done():
            fut = self._waiters[oid] = loop.create_future()
        return fut

    def _send_cancel(self, oid: str, m: dict) -> None:
        """CANCEL_ORDER for working order ``oid`` (its last ORDER_UPDATE ``m``), once: a cancel already on its way is
        not sent again (a cancel reject clears the mark)."""
        if oid in self._cancelling:
            return
        self._cancelling.add(oid)
        self.client.send(M.cancel_order(m.get("ServerOrderID", ""), m.get("ClientOrderID", "")))

    # ----- server messages (loop thread)
    def _order_id_of(self, m: dict) -> str:
        cid, sid = str(m.get("ClientOrderID") or ""), str(m.get("ServerOrderID") or "")
        oid = (self.store.order_of_client(cid) if cid else None) or (self.store.order_of_server(sid) if sid else None)
        return oid or f"dtc:{sid or cid}"

    def _ours(self, m: dict) -> bool:
        sym = str(m.get("Symbol") or "")
        acct = str(m.get("TradeAccount") or "")
        same = sym == self.dtc_symbol or sym.split("-")[0] == self.dtc_symbol.split("-")[0]
        return same and (not self.trade_account or not acct or acct == self.trade_account)

    def _on_order_update(self, m: dict) -> None:
        if m.get("NoOrders") == 1:
            return
        oid = self._order_id_of(m)
        sid = str(m.get("ServerOrderID") or "")
        known = self.store.known(oid)
        if known and sid:
            self.store.set_server_id(oid, sid)
        status, reason = m.get("OrderStatus"), m.get("OrderUpdateReason")
        if reason == OUR.ORDER_CANCEL_REJECTED:  # not cancelled (or not found): a later cancel is sent again
            self._cancelling.discard(oid)
        if status in _WORKING:
            self._working[oid] = m
            if known:
                self.store.set_status(oid, "working")
            if oid in self._cancel_on_ack:  # cancelled while its acknowledgement was on the way
                self._cancel_on_ack.discard(oid)
                self._send_cancel(oid, m)
        elif status in _FINAL:
            self._cancel_on_ack.discard(oid)
            self._working.pop(oid, None)
            if known:
                self.store.set_status(oid, _FINAL[status], str(m.get("InfoText") or ""))
            self._cancelling.discard(oid)
            w = self._waiters.pop(oid, None)
            if w is not None and not w.done():
                w.set_result(status)
        if status == OS.ORDER_STATUS_REJECTED or reason == OUR.NEW_ORDER_REJECTED:
            why = str(m.get("InfoText") or "rejected, no reason given")
            self.rejections.append((oid, why))
            log.error("DTC order %s rejected: %s", oid, why)
            if oid.endswith((":stop", ":target")):
                self.store.set_bracket(oid.rsplit(":", 1)[0], "rejected")
                log.critical("DTC bracket of %s NOT placed (%s): the position is unprotected", oid, why)
        if reason in (OUR.ORDER_FILLED, OUR.ORDER_FILLED_PARTIALLY):
            qty = m.get("LastFillQuantity") or 0
            if qty > 0 and self._ours(m):
                exec_id = str(m.get("LastFillExecutionID") or "")
                key = _fill_key(sid, exec_id, m.get("LastFillDateTime"), m.get("LastFillPrice"), qty)
                self._add_fill(key, oid, side_of_buysell(m.get("BuySell")), qty, m.get("LastFillPrice"),
                               m.get("LastFillDateTime"))
        if (status in _FINAL or self._waiting_legs) and self.synced_and_ready():
            self._waiting_legs = False
            self._flush()  # an exit waiting for its bracket's cancel goes now (or cancels a leg just acknowledged)

    def _add_fill(self, key: str, oid: str, side: int, qty: float, price: Any, when: Any) -> Fill | None:
        rec = self.store.order(oid)
        if rec is None:
            role, extra = "flatten", {"external": True, "reason": "order not sent by navale"}
        else:
            o = rec[0]
            if o.purpose == "entry":
                role, extra = "entry", {}
            elif o.order_id.endswith((":stop", ":target")):
                role, extra = o.reason, {}
            else:
                role, extra = o.purpose, ({"reason": o.reason} if o.reason else {})
        px = on_grid(float(price or 0.0), self.tick_size)
        slip = 0
        if role in ("stop", "target"):
            slip, extra = self._leg_detail(oid, role, side, px)
        f = self.store.add_fill(key, oid, self.symbol, side, round(qty), px, dtc_time_ns(when), role, extra,
                                slip)
        if f is None:
            return None
        self._pos += side * f.quantity  # the server's POSITION_UPDATE that follows is the authority
        if rec is not None and rec[0].purpose == "entry" and rec[0].bracket is not None:
            if self.store.filled_qty(oid) >= rec[0].quantity:
                self.store.set_status(oid, "filled")
                t0 = time.monotonic()
                if self._can_send():
                    self._place_bracket(oid)
                    self.fill_latency_s.append(time.monotonic() - t0)
        return f

    def synced_and_ready(self) -> bool:
        return self._synced and self._can_send()

    def _leg_detail(self, oid: str, role: str, side: int, px: float) -> tuple[int, dict]:
        """A bracket fill's slippage (ticks from the leg's price, against us) and the detail the trader reads:
        a real server says neither whether the stop was gapped nor a fill price other than its own, so ``gap`` is
        False and ``optimistic_price`` the fill price (the tick-mode paper broker's values for an ungapped stop)."""
        row = [b for b in self.store.brackets() if b[0] == oid.rsplit(":", 1)[0]]
        ref = (row[0][4] if role == "stop" else row[0][5]) if row else None
        slip = 0 if ref is None else max(0, round((px - ref) * side / self.tick_size))
        return slip, {"ambiguous": False, "gap": False, "optimistic_price": px}

    def _on_position(self, m: dict) -> None:
        if m.get("NoPositions") == 1 or not self._ours(m):
            return
        self._pos = round(m.get("Quantity") or 0)

    def _on_link(self, old: LinkState, new: LinkState, reason: str) -> None:
        if new is LinkState.READY:
            self._flush()
        elif new is not LinkState.SYNCING:
            self._synced = False
            self._cancelling.clear()  # a cancel in flight may be lost with the link: sent again after the sync

    async def _sync(self, logon: dict) -> None:
        """At each logon: open orders, the day's fills (those missed while away), the position; while SYNCING."""
        self._synced = False
        if not logon.get("TradingIsSupported"):
            raise DTCError(TRADING_DISABLED)
        acct = {"TradeAccount": self.trade_account}
        self._working.clear()
        await self.client.request({"Type": MT.OPEN_ORDERS_REQUEST, "RequestAllOrders": 1, **acct},
                                  {MT.ORDER_UPDATE}, {MT.OPEN_ORDERS_REJECT})
        for oid in [o for o in self._waiters if o not in self._working]:  # a cancel the outage overtook: done
            w = self._waiters.pop(oid)
            if not w.done():
                w.set_result(None)
        fills = await self.client.request({"Type": MT.HISTORICAL_ORDER_FILLS_REQUEST, "NumberOfDays": 1, **acct},
                                          {MT.HISTORICAL_ORDER_FILL_RESPONSE}, {MT.HISTORICAL_ORDER_FILLS_REJECT})
        recovered = 0
        # orders sent but never acknowledged (the link dropped in between): their ServerOrderID is unknown, and a
        # historical fill names only that; such a fill of the same side and size is theirs
        unacked = [o for o, _, sid, _ in self.store.orders("sent") if not sid and o.order_id not in self._working]
        for h in sorted(fills, key=lambda h: float(h.get("DateTime") or 0)):
            if not self._ours(h) or not h.get("Quantity"):
                continue
            sid = str(h.get("ServerOrderID") or "")
            oid = self.store.order_of_server(sid)
            if oid is None:
                side, qty = side_of_buysell(h.get("BuySell")), round(h["Quantity"])
                match = next((o for o in unacked if o.side == side and o.quantity == qty), None)
                if match is not None:
                    unacked.remove(match)
                    self.store.set_server_id(match.order_id, sid)
                    oid = match.order_id
            oid = oid or f"dtc:{sid}"
            key = _fill_key(sid, str(h.get("UniqueExecutionID") or ""), h.get("DateTime"), h.get("Price"),
                            h.get("Quantity"))
            if self._add_fill(key, oid, side_of_buysell(h.get("BuySell")), h["Quantity"], h.get("Price"),
                              h.get("DateTime")) is not None:
                recovered += 1
                if self.store.known(oid):
                    self.store.set_status(oid, "filled")
        self._pos = 0
        await self.client.request({"Type": MT.CURRENT_POSITIONS_REQUEST, **acct}, {MT.POSITION_UPDATE},
                                  {MT.CURRENT_POSITIONS_REJECT})
        for o, status, sid, _ in self.store.orders("sent", "working"):
            if o.order_id in self._working:
                continue
            if sid:  # acknowledged before, neither working nor filled now: cancelled at the server while away
                self.store.set_status(o.order_id, "cancelled", "not among the server's open orders after a reconnect")
            elif not o.order_id.endswith((":stop", ":target")):
                # never acknowledged, not working, no fill of it: lost on the way, or refused unseen. Not sent again
                # (were it only unreported, a second one would double the position): reported instead
                why = "sent, never acknowledged, and unknown to the server after the reconnect: not sent again"
                self.store.set_status(o.order_id, "lost", why)
                self.rejections.append((o.order_id, why))
                log.error("DTC order %s %s", o.order_id, why)
            else:  # an OCO never acknowledged: its bracket goes out again from the entry's fill, unless cancelled
                self.store.set_status(o.order_id, "cancelled", "bracket leg never acknowledged")
                self._cancel_on_ack.discard(o.order_id)
                entry_id = o.order_id.rsplit(":", 1)[0]
                if not any(b[0] == entry_id for b in self.store.brackets("cancelled")):
                    self.store.set_bracket(entry_id, "waiting")
        for entry_id, *_ in self.store.brackets("sent"):
            if not any(f"{entry_id}:{leg}" in self._working for leg in ("stop", "target")):
                self.store.set_bracket(entry_id, "done")
        cancelled = {b[0] for b in self.store.brackets("cancelled")}
        for oid, m in list(self._working.items()):  # legs of a bracket cancelled before the server confirmed it
            if oid.endswith((":stop", ":target")) and oid.rsplit(":", 1)[0] in cancelled:
                self._send_cancel(oid, m)
        if recovered:
            log.warning("DTC: %d fill(s) recovered after the logon", recovered)
        self._synced = True


def _fill_key(server_id: str, exec_id: str, when: Any, price: Any, qty: Any) -> str:
    """ServerOrderID + the execution id (or, without one, the fill's time, price and quantity)."""
    if exec_id:
        return f"{server_id}|{exec_id}"
    return f"{server_id}|{dtc_time_ns(when)}|{float(price or 0):.6f}|{float(qty or 0):g}"
