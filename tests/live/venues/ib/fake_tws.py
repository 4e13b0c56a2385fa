"""A fake TWS / IB Gateway: a real TCP server on 127.0.0.1 speaking the IB socket protocol (server version 178)
to the real ib_async client, with a matching engine that fills like the tick-mode paper broker, and a small
script API for the tests (ticks to stream, holds, drops, error codes, refused client ids, silence).

Wire format: every message is a 4-byte big-endian length and NUL-terminated text fields. The client opens with
``API\\0`` + a length-prefixed ``v157..178``; the server answers ``178`` and its connection time; the client
sends startApi (71); the server sends nextValidId (9) and managedAccounts (15). Fields of each message follow
ib_async's decoder for server version 178 (``execDetails`` has ``pendingPriceRevision``, ``openOrder`` has no
``faProfile``, ``error`` has the advanced-reject JSON).

Matching (the paper broker's tick mode, `live.brokers.paper.PaperBroker`): a transmitted market order fills at
the next trade streamed after it arrived, moved by ``slippage_ticks`` against it; a stop triggers on a trade
through it and fills at that trade -/+ the slippage; a limit fills at its price when a trade reaches it; bracket
children work once their parent has filled and only from the trade after; an OCA fill cancels the group's
others. Fills are sent before the trade that caused them (so a client has the fill when it sees the trade).

Threading: the server runs an asyncio loop on its own thread; the script methods are called from the test's
thread and run on that loop (``_call``).
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import itertools
import math
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

VERSION = 178
ACCOUNT = "DU1234567"
COMMISSION = 2.25  # per contract and side


@dataclass
class FakeContract:
    """One future the server knows (ES and MES of a month)."""

    con_id: int
    symbol: str
    month: str  # YYYYMM
    expiry: str  # YYYYMMDD
    local: str  # ESH4
    multiplier: str = "50"
    exchange: str = "CME"
    min_tick: float = 0.25


@dataclass
class FakeOrder:
    order_id: int
    client_id: int
    perm_id: int
    con_id: int
    action: str  # BUY / SELL
    qty: float
    otype: str  # MKT / STP / LMT
    lmt: float
    aux: float
    oca: str
    ref: str
    parent_id: int
    transmit: bool
    account: str
    status: str = "PreSubmitted"
    filled: float = 0.0
    avg: float = 0.0
    armed_at: int = -1  # index of the first tick it may fill on
    modified_after_parent_fill: int = 0
    filled_at: int = -1  # index of the trade that filled it
    transmit_sent: bool = False  # the transmit flag of its first placeOrder

    @property
    def side(self) -> int:
        return 1 if self.action == "BUY" else -1

    @property
    def working(self) -> bool:
        return self.status in ("PreSubmitted", "Submitted")


@dataclass
class Execution:
    exec_id: str
    order: FakeOrder
    price: float
    qty: float
    ts: int  # seconds
    cum: float


@dataclass
class Conn:
    """One client connection."""

    no: int
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    client_id: int = -1
    ready: bool = False
    subs: dict[int, str] = field(default_factory=dict)  # reqId -> AllLast / BidAsk


def _f(x: Any) -> str:
    if isinstance(x, bool):
        return "1" if x else "0"
    if isinstance(x, float):
        return "" if math.isnan(x) else (str(int(x)) if x == int(x) else repr(x))
    return str(x)


def encode(*fields: Any) -> bytes:
    body = "".join(_f(x) + "\0" for x in fields).encode()
    return struct.pack(">I", len(body)) + body


def default_contracts() -> list[FakeContract]:
    """ES and MES of the four quarterly months of 2024-2027 (con ids 100.., local symbols like ESH4)."""
    out = []
    n = 100
    for year in range(2024, 2028):
        for m, code in ((3, "H"), (6, "M"), (9, "U"), (12, "Z")):
            first = dt.date(year, m, 1)
            third_friday = first + dt.timedelta(days=(4 - first.weekday()) % 7 + 14)
            for sym, mult in (("ES", "50"), ("MES", "5")):
                out.append(FakeContract(n, sym, f"{year}{m:02d}", third_friday.strftime("%Y%m%d"),
                                        f"{sym}{code}{year % 10}", mult))
                n += 1
    return out


class FakeTWS:
    """The server. ``ticks``: ``(ts_ns, price, size, bid, ask)`` rows streamed to tick-by-tick subscribers of
    ``stream_con_id`` (bid/ask NaN: no quote update before that trade).

    Script API (from any thread): :meth:`load_ticks`, :meth:`hold_after`, :meth:`pause_after`, :meth:`resume`,
    :meth:`drop`, :meth:`send_error`, :meth:`refuse_client_ids`, :meth:`refuse_connections`, :meth:`advance`,
    :meth:`wait_for`; counters: :attr:`place_count` (new orders per orderRef), :attr:`modify_count`,
    :attr:`subscriptions`, :attr:`received`, :attr:`executions`, :attr:`sent_tick_at`, :attr:`order_at`.
    """

    def __init__(self, ticks: list[tuple] | None = None, *, slippage_ticks: int = 1, tick_size: float = 0.25,
                 accounts: tuple[str, ...] = (ACCOUNT,), stream_symbol: str = "ES", stream_month: str = "202403",
                 next_order_id: int = 1, hold_timeout_s: float = 30.0, entitled: bool = True,
                 buying_power: float = 1_000_000.0, tick_delay_s: float = 0.0):
        self.contracts = default_contracts()
        self.stream = next(c for c in self.contracts if c.symbol == stream_symbol and c.month == stream_month)
        self.ticks: list[tuple] = list(ticks or [])
        self.slip = slippage_ticks
        self.tick = tick_size
        self.accounts = accounts
        self.next_order_id = next_order_id
        self.hold_timeout_s = hold_timeout_s
        self.entitled = entitled
        self.buying_power = buying_power
        self.tick_delay_s = tick_delay_s  # pause between two streamed trades (0: as fast as the client reads)
        self.orders: dict[int, FakeOrder] = {}
        self.executions: list[Execution] = []
        self.positions: dict[int, list[float]] = {}  # con id -> [qty, avg cost per contract]
        self.place_count: collections.Counter[str] = collections.Counter()
        self.modify_count: collections.Counter[str] = collections.Counter()
        self.subscriptions: list[tuple[int, int, str]] = []  # (conn no, reqId, type), every request
        self.received: list[tuple[int, int]] = []  # (conn no, msg id)
        self.sent_tick_at: dict[int, float] = {}  # tick index -> perf_counter when its trade was sent
        self.order_at: dict[str, float] = {}  # orderRef -> perf_counter when its first placeOrder arrived
        self.errors_sent: list[int] = []
        self.market_errors: list[str] = []
        self.connections = 0
        self.index = 0  # next tick to stream
        self._holds: set[int] = set()
        self._pause_at: set[int] = set()
        self.paused = False
        self.unwatched = False  # the market moves with orders working and nobody subscribed (see run_unwatched)
        self.refused_ids: set[int] = set()
        self._refuse_until = 0.0
        self._conns: list[Conn] = []
        self._perm = itertools.count(9001)
        self._exec_no = itertools.count(1)
        self._orders_seen = 0  # new transmitted orders, for the holds
        self._wake: asyncio.Event | None = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._server: asyncio.base_events.Server | None = None
        self.port = 0
        self.last_trade = math.nan
        self._bid = self._ask = math.nan

    # ------------------------------------------------------------------ life cycle
    def start(self, port: int = 0) -> int:
        """Listen on 127.0.0.1 (``port``, 0: an ephemeral one) on a thread of its own; returns the port."""
        started = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            self._wake = asyncio.Event()
            self._server = self.loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", port))
            self.port = self._server.sockets[0].getsockname()[1]
            self.loop.create_task(self._market())
            started.set()
            self.loop.run_forever()
            self.loop.close()

        self._thread = threading.Thread(target=run, name="fake-tws", daemon=True)
        self._thread.start()
        if not started.wait(10):
            raise RuntimeError("fake TWS did not start")
        return self.port

    def stop(self) -> None:
        if self.loop is None:
            return

        async def shut() -> None:
            self._server.close()
            for c in list(self._conns):
                c.writer.transport.abort()
            for t in asyncio.all_tasks():
                if t is not asyncio.current_task():
                    t.cancel()
            await asyncio.sleep(0.01)

        try:
            self._call(shut())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(10)

    def _call(self, coro_or_fn: Any, timeout: float = 30.0) -> Any:
        if asyncio.iscoroutine(coro_or_fn):
            return asyncio.run_coroutine_threadsafe(coro_or_fn, self.loop).result(timeout)

        async def wrap() -> Any:
            return coro_or_fn()

        return asyncio.run_coroutine_threadsafe(wrap(), self.loop).result(timeout)

    # ------------------------------------------------------------------ script API
    def load_ticks(self, ticks: list[tuple]) -> None:
        """Append trades to stream."""
        self._call(lambda: (self.ticks.extend(ticks), self._wake.set()))

    def hold_after(self, indices: set[int] | list[int]) -> None:
        """After sending tick i (0-based), hold the stream until a new order arrives (or ``hold_timeout_s``)."""
        self._call(lambda: self._holds.update(indices))

    def pause_after(self, index: int) -> None:
        """Stop streaming once tick ``index`` has been sent (until :meth:`resume`)."""
        self._call(lambda: self._pause_at.add(index))

    def run_unwatched(self) -> None:
        """Let the market move while orders work and no client watches it (as the real one does: a flatten sent
        by a second connection without market data still fills). Off by default: the stream waits for its
        subscriber, so a reconnecting client misses nothing."""
        def go() -> None:
            self.unwatched = True
            self._wake.set()

        self._call(go)

    def pause(self) -> None:
        self._call(lambda: setattr(self, "paused", True))

    def resume(self) -> None:
        def go() -> None:
            self.paused = False
            self._wake.set()

        self._call(go)

    def advance(self, n: int) -> None:
        """Run ``n`` ticks through the matching engine now, connected client or not (a market that moves
        while the client is away); they are streamed to subscribers if any."""

        async def go() -> None:
            for _ in range(n):
                if self.index >= len(self.ticks):
                    return
                await self._one_tick(hold=False)

        self._call(go())

    def drop(self) -> None:
        """Close every client socket now (a dropped connection)."""
        self._call(lambda: [c.writer.transport.abort() for c in self._conns])

    def send_error(self, code: int, msg: str = "", req_id: int = -1) -> None:
        """An error/notice message with ``code`` to every ready client."""
        text = msg or {1100: "Connectivity between IB and Trader Workstation has been lost.",
                       1101: "Connectivity between IB and TWS has been restored- data lost.",
                       1102: "Connectivity between IB and TWS has been restored- data maintained.",
                       2103: "Market data farm connection is broken:usfarm",
                       2104: "Market data farm connection is OK:usfarm",
                       2105: "HMDS data farm connection is broken:ushmds",
                       2106: "HMDS data farm connection is OK:ushmds",
                       2110: "Connectivity between TWS and server is broken. It will be restored automatically."
                       }.get(code, f"error {code}")

        def go() -> None:
            for c in self._conns:
                if c.ready:
                    self._err(c, req_id, code, text)

        self._call(go)

    def refuse_client_ids(self, ids: set[int]) -> None:
        """startApi with one of these client ids gets error 326 and the socket closed."""
        self._call(lambda: self.refused_ids.update(ids))

    def refuse_connections(self, seconds: float) -> None:
        """Close every new connection at once for ``seconds`` (a Gateway restarting)."""
        self._call(lambda: setattr(self, "_refuse_until", time.monotonic() + seconds))

    def wait_for(self, cond: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
        """Poll ``cond`` (run on the server's loop) until true; AssertionError after ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._call(cond):
                return
            time.sleep(0.01)
        raise AssertionError(f"fake TWS: {what} not reached within {timeout:.0f} s")

    def position(self, con_id: int | None = None) -> float:
        return self._call(lambda: self.positions.get(con_id or self.stream.con_id, [0.0, 0.0])[0])

    def working_orders(self) -> list[FakeOrder]:
        return self._call(lambda: [o for o in self.orders.values() if o.working])

    def ready_clients(self) -> int:
        return self._call(lambda: sum(c.ready for c in self._conns))

    # ------------------------------------------------------------------ connections
    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except asyncio.CancelledError:  # the server stopping: asyncio would print the cancelled task's traceback
            writer.transport.abort()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        c = Conn(self.connections, reader, writer)
        if time.monotonic() < self._refuse_until:
            writer.transport.abort()
            return
        try:
            head = await reader.readexactly(4)
            if head != b"API\0":
                writer.close()
                return
            await self._read_msg(reader)  # "v157..178"
            now = dt.datetime.now(dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")
            writer.write(encode(VERSION, now))
            self._conns.append(c)
            while True:
                fields = await self._read_msg(reader)
                self.received.append((c.no, int(fields[0])))
                self._handle(c, fields)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError, OSError):
            pass
        finally:
            if c in self._conns:
                self._conns.remove(c)
            writer.transport.abort()

    @staticmethod
    async def _read_msg(reader: asyncio.StreamReader) -> list[str]:
        (n,) = struct.unpack(">I", await reader.readexactly(4))
        body = (await reader.readexactly(n)).decode()
        out = body.split("\0")
        return out[:-1] if out and out[-1] == "" else out

    def _send(self, c: Conn, *fields: Any) -> None:
        if not c.writer.transport.is_closing():
            c.writer.write(encode(*fields))

    def _err(self, c: Conn, req_id: int, code: int, text: str) -> None:
        self.errors_sent.append(code)
        self._send(c, 4, 2, req_id, code, text, "")

    def _owner(self, client_id: int) -> list[Conn]:
        return [c for c in self._conns if c.ready and c.client_id == client_id]

    # ------------------------------------------------------------------ requests
    def _handle(self, c: Conn, f: list[str]) -> None:
        mid = int(f[0])
        if mid == 71:  # startApi
            cid = int(f[2])
            if cid in self.refused_ids or any(o.ready and o.client_id == cid for o in self._conns):
                self._err(c, -1, 326, "Unable to connect as the client id is already in use. Retry with a unique "
                                      "client id.")
                c.writer.close()
                return
            c.client_id, c.ready = cid, True
            nxt = max([self.next_order_id] + [o.order_id + 1 for o in self.orders.values()])
            self._send(c, 9, 1, nxt)
            self._send(c, 15, 1, ",".join(self.accounts))
            self._err(c, -1, 2104, "Market data farm connection is OK:usfarm")
        elif mid == 9:
            self._contract_details(c, f)
        elif mid == 97:
            req, kind = int(f[1]), f[14]
            self.subscriptions.append((c.no, req, kind))
            if not self.entitled:
                self._err(c, req, 10089, "Requested market data requires additional subscription for API. "
                                         "See link in 'Market Data Connections' dialog for more details.")
                return
            c.subs[req] = kind
            if kind == "BidAsk" and not math.isnan(self._bid):
                self._send(c, 99, req, 3, int(time.time()), self._bid, self._ask, 10, 10, 0)
            self._wake.set()
        elif mid == 98:
            c.subs.pop(int(f[1]), None)
        elif mid == 3:
            self._place(c, f)
        elif mid == 4:
            o = self.orders.get(int(f[2]))
            if o is None or not o.working:
                self._err(c, int(f[2]), 10147, f"OrderId {f[2]} that needs to be cancelled is not found.")
            else:
                self._cancel(o, "Cancelled")
        elif mid == 58:
            for o in list(self.orders.values()):
                if o.working:
                    self._cancel(o, "Cancelled")
        elif mid in (5, 16):  # reqOpenOrders (this client's), reqAllOpenOrders
            for o in self.orders.values():
                if o.working and (mid == 16 or o.client_id == c.client_id):
                    self._open_order(c, o)
                    self._order_status(c, o)
            self._send(c, 53, 1)
        elif mid == 61:
            for con_id, (q, avg) in self.positions.items():
                k = self._con(con_id)
                self._send(c, 61, 3, self.accounts[0], k.con_id, k.symbol, "FUT", k.expiry, 0.0, "", k.multiplier,
                           k.exchange, "USD", k.local, k.symbol, q, avg)
            self._send(c, 62, 1)
        elif mid == 7:
            req = int(f[2])
            for e in self.executions:
                self._exec(c, req, e)
            self._send(c, 55, 1, req)
            for e in self.executions:
                self._commission(c, e)
        elif mid == 8:
            self._send(c, 9, 1, max([self.next_order_id] + [o.order_id + 1 for o in self.orders.values()]))
        elif mid == 49:
            self._send(c, 49, 1, int(time.time()))
        elif mid == 62:
            req = int(f[2])
            for acct in self.accounts:
                self._send(c, 63, 1, req, acct, "AccountType", "INDIVIDUAL", "")
                self._send(c, 63, 1, req, acct, "BuyingPower", f"{self.buying_power:.2f}", "USD")
            self._send(c, 64, 1, req)
        # every other request (market data type, account updates...) is ignored

    def _con(self, con_id: int) -> FakeContract:
        return next(k for k in self.contracts if k.con_id == con_id)

    def _contract_details(self, c: Conn, f: list[str]) -> None:
        req, con_id, sym, sec, month = int(f[2]), f[3], f[4], f[5], f[6]
        if sec == "CONTFUT":
            today = dt.date.today().strftime("%Y%m%d")
            hits = [min((k for k in self.contracts if k.symbol == sym and k.expiry >= today), key=lambda k: k.expiry)]
        else:
            hits = [k for k in self.contracts if (con_id not in ("", "0") and str(k.con_id) == con_id)
                    or (k.symbol == sym and month and (k.month.startswith(month) or k.expiry == month))]
        if not hits:
            self._err(c, req, 200, "No security definition has been found for the request")
            return
        for k in hits:
            self._send(c, 10, req, k.symbol, sec or "FUT", f"{k.expiry} 08:30 US/Central", 0.0, "", k.exchange,
                       "USD", k.local, k.symbol, k.symbol, k.con_id, k.min_tick, k.multiplier, "ACTIVETIM,LMT,MKT,STP",
                       k.exchange, 1, 11004968, "E-mini S&P 500", "", k.month, "", "", "", "US/Central",
                       "20240304:1700-20240305:1600", "20240305:0830-20240305:1500", "", "", 0,
                       "", k.symbol, "IND", "67,67", k.expiry, "", 1, 1, 1)
        self._send(c, 52, 1, req)

    def _place(self, c: Conn, f: list[str]) -> None:
        oid = int(f[1])
        con_id = int(f[2] or 0)
        num = lambda s: float(s) if s not in ("", None) else math.nan
        ref, transmit, parent = f[26], f[27] in ("1", "True", "true"), int(f[28] or 0)
        o = self.orders.get(oid)
        if o is not None:  # a modification
            if not o.working:
                self._err(c, oid, 104, f"Cannot modify a filled order. OrderId {oid}")
                return
            o.qty, o.lmt, o.aux = float(f[17]), num(f[19]), num(f[20])
            self.modify_count[ref] += 1
            par = self.orders.get(o.parent_id)
            if par is not None and par.status == "Filled":
                o.modified_after_parent_fill += 1
            self._open_order(c, o)
            self._order_status(c, o)
            self._wake.set()
            return
        if not con_id or not any(k.con_id == con_id for k in self.contracts):
            self._err(c, oid, 200, "No security definition has been found for the request")
            return
        o = FakeOrder(oid, c.client_id, next(self._perm), con_id, f[16], float(f[17]), f[18], num(f[19]),
                      num(f[20]), f[22], ref, parent, transmit, f[23] or self.accounts[0])
        o.transmit_sent = transmit
        self.orders[oid] = o
        self.place_count[ref] += 1
        self.order_at.setdefault(ref, time.perf_counter())
        group = [o]
        if transmit:  # this one transmits every staged order of its group (parent and children)
            root = parent or oid
            group = [x for x in self.orders.values() if x.working and (x.order_id == root or x.parent_id == root)]
            for x in group:
                x.transmit = True
                x.status = "Submitted"
                x.armed_at = self.index
            self._orders_seen += 1
        for x in group if transmit else [o]:
            for cc in self._owner(x.client_id):
                self._open_order(cc, x)
                self._order_status(cc, x)
        self._wake.set()

    def _cancel(self, o: FakeOrder, status: str) -> None:
        o.status = status
        for cc in self._owner(o.client_id):
            self._order_status(cc, o)
        for child in self.orders.values():  # a cancelled parent cancels its children
            if child.parent_id == o.order_id and child.working:
                self._cancel(child, status)

    def _open_order(self, c: Conn, o: FakeOrder) -> None:
        k = self._con(o.con_id)
        status = o.status
        fields = [5, o.order_id, k.con_id, k.symbol, "FUT", k.expiry, 0.0, "", k.multiplier, k.exchange, "USD",
                  k.local, k.symbol, o.action, o.qty, o.otype, o.lmt, o.aux, "DAY", o.oca, o.account, "", 0, o.ref,
                  o.client_id, o.perm_id, 0, 0, 0.0, "", "", "", "", ""]
        fields += [""] * 14  # modelCode .. stockRangeUpper
        fields += [0, 0, 0, 0, "", 3 if o.oca else 0, 0, 0, "", o.parent_id, 0, "", 0, "", ""]  # .. deltaNeutralAux
        fields += [0, 0, "", "", "", "", "", 0, 0, 0]  # continuousUpdate .. comboLegsDescrip, 0 legs, 0, 0 params
        fields += ["", "", ""]  # scale sizes, increment
        fields += [""]  # hedgeType
        fields += [0, "", "", 0, 0]  # optOutSmartRouting, clearing, notHeld, no delta-neutral contract
        fields += [""]  # algoStrategy
        fields += [0, 0, status] + [""] * 9 + ["", "", "", "", "", 0, 0]  # whatIf, state, margins, commission
        fields += [0]  # conditions
        fields += ["", "", "", "", "", "", "", 0, "", "", "", "", 0, 0, "", 0]  # adjusted .. usePriceMgmtAlgo
        fields += ["", "", 0, "", "", "", "", ""]  # duration, postToAts, autoCancelParent, minTradeQty .. midOffsets
        self._send(c, *fields)

    def _order_status(self, c: Conn, o: FakeOrder) -> None:
        self._send(c, 3, o.order_id, o.status, o.filled, o.qty - o.filled, o.avg, o.perm_id, o.parent_id,
                   o.avg, o.client_id, "", 0.0)

    def _exec(self, c: Conn, req: int, e: Execution) -> None:
        o, k = e.order, self._con(e.order.con_id)
        t = dt.datetime.fromtimestamp(e.ts, dt.UTC).strftime("%Y%m%d %H:%M:%S UTC")
        self._send(c, 11, req, o.order_id, k.con_id, k.symbol, "FUT", k.expiry, 0.0, "", k.multiplier, k.exchange,
                   "USD", k.local, k.symbol, e.exec_id, t, o.account, k.exchange, "BOT" if o.side > 0 else "SLD",
                   e.qty, e.price, o.perm_id, o.client_id, 0, e.cum, e.price, o.ref, "", "", "", 1, 0)

    def _commission(self, c: Conn, e: Execution) -> None:
        self._send(c, 59, 1, e.exec_id, COMMISSION * e.qty, "USD", "", "", "")

    # ------------------------------------------------------------------ the market
    def _subscribers(self, kind: str) -> list[tuple[Conn, int]]:
        return [(c, r) for c in self._conns if c.ready for r, k in c.subs.items() if k == kind]

    async def _market(self) -> None:
        while True:
            watched = self._subscribers("AllLast") or (self.unwatched and any(o.working for o in self.orders.values()))
            if self.paused or self.index >= len(self.ticks) or not watched:
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._one_tick(hold=True)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # noqa: BLE001 (the market must outlive one bad tick; the test sees the log)
                self.market_errors.append(repr(exc))

    async def _one_tick(self, hold: bool) -> None:
        i = self.index
        ts_ns, price, size, bid, ask = (tuple(self.ticks[i]) + (math.nan, math.nan))[:5]
        self.index += 1
        sec = int(ts_ns // 1_000_000_000)
        if not (math.isnan(bid) or math.isnan(ask)) and (bid, ask) != (self._bid, self._ask):
            self._bid, self._ask = bid, ask
            for c, r in self._subscribers("BidAsk"):
                self._send(c, 99, r, 3, sec, bid, ask, 10, 10, 0)
        parents = self._match(i, price, sec)
        self.last_trade = price
        for c, r in self._subscribers("AllLast"):
            self._send(c, 99, r, 1, sec, price, size, 0, "CME", "")
        self.sent_tick_at[i] = time.perf_counter()
        for c in list(self._conns):
            try:
                await c.writer.drain()
            except (ConnectionError, OSError):  # a client that just dropped: its reader task cleans up
                pass
        if not hold:
            return
        seen = self._orders_seen
        if i in self._holds:
            await self._until(lambda: self._orders_seen > seen, f"an order after tick {i}")
        for p in parents:  # the client re-prices the children from the parent's fill: wait for it
            kids = [x for x in self.orders.values() if x.parent_id == p.order_id]
            if self._owner(p.client_id):
                await self._until(lambda kids=kids: all(x.modified_after_parent_fill or not x.working for x in kids),
                                  f"children of order {p.order_id} re-priced")
        if i in self._pause_at:
            self.paused = True
        await asyncio.sleep(self.tick_delay_s)

    async def _until(self, cond: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + self.hold_timeout_s
        while not cond() and time.monotonic() < deadline:
            await asyncio.sleep(0.001)

    def _match(self, i: int, price: float, sec: int) -> list[FakeOrder]:
        """Fill what this trade fills; the parents filled (their children work from the next trade)."""
        p = round(price / self.tick)
        filled_parents = []
        live = [o for o in self.orders.values() if o.working and o.transmit and o.armed_at <= i]
        for o in live:
            par = self.orders.get(o.parent_id)
            if o.parent_id and (par is None or par.status != "Filled" or par.filled_at >= i):
                continue
            if o.otype == "MKT":
                px = p + o.side * self.slip
            elif o.otype == "STP":
                stop = round(o.aux / self.tick)
                if not ((p >= stop) if o.side > 0 else (p <= stop)):
                    continue
                px = p + o.side * self.slip
            elif o.otype == "LMT":
                lim = round(o.lmt / self.tick)
                if not ((p <= lim) if o.side > 0 else (p >= lim)):
                    continue
                px = lim
            else:
                continue
            if not o.working:  # cancelled by an OCA fill of this same trade
                continue
            self._fill(o, px * self.tick, sec, i)
            if any(x.parent_id == o.order_id and x.working for x in self.orders.values()):
                filled_parents.append(o)
        return filled_parents

    def _fill(self, o: FakeOrder, px: float, sec: int, i: int) -> None:
        o.status, o.filled, o.avg = "Filled", o.qty, px
        o.filled_at = i
        e = Execution(f"0000e215.{next(self._exec_no):08x}.01.01", o, px, o.qty, sec, o.qty)
        self.executions.append(e)
        k = self._con(o.con_id)
        pos = self.positions.setdefault(k.con_id, [0.0, 0.0])
        mult = float(k.multiplier)
        q0, q1 = pos[0], pos[0] + o.side * o.qty
        if q1 == 0:
            pos[1] = 0.0
        elif q0 == 0 or (q0 > 0) != (q1 > 0):
            pos[1] = px * mult
        elif abs(q1) > abs(q0):
            pos[1] = (pos[1] * abs(q0) + px * mult * o.qty) / abs(q1)
        pos[0] = q1
        for c in self._owner(o.client_id):
            self._exec(c, -1, e)
            self._commission(c, e)
            self._order_status(c, o)
        if o.oca:
            for x in self.orders.values():
                if x is not o and x.oca == o.oca and x.working:
                    self._cancel(x, "Cancelled")



def main(argv: list[str] | None = None) -> int:
    """Serve the synthetic trades as a paper TWS on 127.0.0.1 (for trying `navale paper --feed ib --broker ib`
    without a gateway): ``python tests/live/venues/ib/fake_tws.py --port 4002 --days 1 --delay 0.0005``."""
    import argparse
    import signal
    import sys
    from pathlib import Path

    sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parents[4])]
    from ib_runs import synthetic_rows

    from live.venues.ib.contract import front_month

    ap = argparse.ArgumentParser(description="a fake paper TWS streaming the embedded synthetic ES trades")
    ap.add_argument("--port", type=int, default=4002)
    ap.add_argument("--days", type=int, default=1, help="synthetic trading dates to stream (default 1)")
    ap.add_argument("--delay", type=float, default=0.0005, help="seconds between two trades (default 0.0005)")
    a = ap.parse_args(argv)
    server = FakeTWS(synthetic_rows(a.days), stream_month=front_month("ES", time.time_ns()), tick_delay_s=a.delay)
    port = server.start(a.port)
    print(f"fake TWS (paper account {ACCOUNT}) on 127.0.0.1:{port}: {len(server.ticks):,} synthetic trades", flush=True)
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    while not done.wait(1.0):
        pass
    server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
