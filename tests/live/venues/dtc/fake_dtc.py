"""A fake Sierra Chart DTC Protocol server for the adapter's tests: a real asyncio TCP server on 127.0.0.1 (an
ephemeral port) speaking DTC JSON with NUL terminators, on its own thread.

It serves logon (accept or reject), heartbeats, the encoding request, market data (a scripted trade stream with
bid/ask updates), and orders matched like the paper broker in tick mode (`live.brokers.paper.PaperBroker`,
written anew here so the parity test compares two implementations): a market order fills at the next trade
-/+ ``slippage_ticks``; a stop triggers on a trade through it and fills at that trade -/+ slippage; a limit fills at
its price when a trade reaches it; an OCO pair cancels the other leg. Order updates, positions, open orders,
historical fills, trade accounts and cancels are answered as the protocol says.

Fault scripting: ``drop()`` the socket, ``silent`` (send nothing, keep the socket), ``heartbeats = False``,
``logon_result``/``logon_text`` (refuse), ``trading = False``, ``advance_offline(n)`` (trades matched while no
client is there, never sent to it), ``stop_at`` (the stream waits before that trade index until ``release()``),
``drop_before`` (close the clients before trade i, every trade written before reaching them), ``hold_after`` (after
trade i, wait for n new orders, at most ``hold_timeout_s``; a hold that times out is noted in ``hold_timeouts`` and
ends the holding: a deterministic comparison never lets the stream race ahead of the client's orders), ``gate`` (a
callable: no trade is sent while it is false, e.g. until the client's broker is synced), ``resend`` (trades re-sent
on a resubscription), ``inject()`` (raw bytes: garbage), ``write_mode`` "split" (every frame in small pieces) /
"coalesce" (frames written together). The stream yields after every trade, so requests are answered while it runs.
The engine's state lives in the server object, so orders outlive a client's restart.
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from live.events import Tick

# the fake reads the protocol's numbers from its own table (the adapter's constants are what is under test)
LOGON_REQUEST, LOGON_RESPONSE, HEARTBEAT, LOGOFF, ENCODING_REQUEST, ENCODING_RESPONSE = 1, 2, 3, 5, 6, 7
MARKET_DATA_REQUEST, MARKET_DATA_REJECT, MARKET_DATA_SNAPSHOT = 101, 103, 104
TRADE, TRADE_COMPACT, TRADE_UNBUNDLED, BID_ASK = 107, 112, 137, 108
SUBMIT_SINGLE, SUBMIT_OCO, CANCEL = 208, 201, 203
OPEN_ORDERS_REQUEST, ORDER_UPDATE = 300, 301
HIST_FILLS_REQUEST, HIST_FILL_RESPONSE = 303, 304
POSITIONS_REQUEST, POSITION_UPDATE = 305, 306
ACCOUNTS_REQUEST, ACCOUNT_RESPONSE = 400, 401
ST_OPEN, ST_FILLED, ST_CANCELED, ST_REJECTED = 4, 7, 8, 9
R_OPEN_ORDERS, R_ACCEPTED, R_FILLED, R_CANCELED, R_REJECTED = 1, 2, 4, 6, 8
MARKET, LIMIT, STOP = 1, 2, 3
BUY, SELL = 1, 2


@dataclass
class FakeOrder:
    server_id: str
    client_id: str
    kind: int
    side: int  # +1 / -1
    qty: int
    price: int  # ticks (0 for a market order)
    account: str
    status: int = ST_OPEN
    partner: str = ""  # OCO partner's server id
    fill_price: int = 0


@dataclass
class FakeFill:
    server_id: str
    side: int
    qty: int
    price: int
    ts_ns: int
    exec_id: str


@dataclass
class Conn:
    writer: asyncio.StreamWriter
    heartbeat_s: float = 5.0
    symbol_id: int = 0
    logged_on: bool = False
    dropped: bool = False  # closed by drop_before: nothing more is written to it
    tasks: list = field(default_factory=list)


class FakeDTCServer:
    """The fake server; ``start()`` returns its port. Control methods are thread-safe (they run on its loop)."""

    def __init__(self, ticks: list[Tick] = (), *, symbol: str = "ESZ26-CME", tick_size: float = 0.25,
                 slippage_ticks: int = 1, accounts: tuple[str, ...] = ("Sim1",), trade_type: int = TRADE,
                 interval_s: float = 0.0):
        self.ticks = list(ticks)
        self.symbol, self.tick_size, self.slip = symbol, tick_size, slippage_ticks
        self.accounts = list(accounts)
        self.trade_type = trade_type
        self.interval_s = interval_s
        # scripting
        self.logon_result, self.logon_text = 1, "Logged on to the fake DTC server"
        self.trading = True
        self.silent = False
        self.heartbeats = True
        self.stop_at: int | None = None
        self.hold_after: dict[int, int] = {}
        self.drop_before: set[int] = set()  # drop every client just before sending these trade indices
        self.hold_timeout_s = 30.0
        self.hold_timeouts: list[tuple[int, int]] = []  # (trade index, orders still awaited) of each expired hold
        self.gate: Callable[[], bool] | None = None
        self.resend = 0
        self.write_mode = "normal"
        self.quotes = True
        self.hold_acks = False  # keep NEW_ORDER_ACCEPTED updates until release_acks() (an ack in flight)
        self._acks: list[dict] = []
        # state
        self.i = 0  # next trade index to send
        self.orders: dict[str, FakeOrder] = {}
        self.fills: list[FakeFill] = []
        self.position = 0
        self.avg = 0
        self.last_trade: int | None = None
        self.orders_seen = 0
        self.duplicates = 0
        self.logons = 0
        self.subscriptions: list[int] = []
        self.received: list[dict] = []
        self.sent_at: dict[int, float] = {}  # trade index -> time.perf_counter() when written (benchmarks)
        self.order_at: list[tuple[float, dict]] = []  # (time.perf_counter(), message) of each order received
        self.paused = False  # the stream waits at stop_at
        self.held = False  # the stream waits in a hold_after
        self._conns: list[Conn] = []
        self._n = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-dtc", daemon=True)
        self._server: asyncio.base_events.Server | None = None
        self._wake: asyncio.Event | None = None
        self._stream_task: asyncio.Task | None = None
        self.port = 0

    # ----- life
    def start(self) -> int:
        self._thread.start()
        self.port = self._run(self._start())
        return self.port

    async def _start(self) -> int:
        self._wake = asyncio.Event()
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self._stream_task = asyncio.create_task(self._stream())
        return self._server.sockets[0].getsockname()[1]

    def stop(self) -> None:
        async def _stop():
            self._stream_task.cancel()
            try:
                await self._stream_task
            except asyncio.CancelledError:
                pass
            for c in list(self._conns):
                c.writer.close()
            self._server.close()
        try:
            self._run(_stop(), 5)
        finally:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(5)

    def _run(self, coro, timeout: float = 10.0):
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout)

    def call(self, fn, *a):
        """Run ``fn(*a)`` on the server's loop and return its result."""
        async def _c():
            return fn(*a)
        return self._run(_c())

    # ----- controls
    def drop(self) -> None:
        """Close every client socket now."""
        def _d():
            for c in list(self._conns):
                c.writer.transport.abort()
        self.call(_d)

    def release(self) -> None:
        """Let the stream pass ``stop_at``."""
        def _r():
            self.stop_at = None
            self._wake.set()
        self.call(_r)

    def logoff(self, do_not_reconnect: bool) -> None:
        """Send LOGOFF to every client, then close its socket."""
        async def _l():
            await self._broadcast([{"Type": LOGOFF, "Reason": "server shutting down", "DoNotReconnect": int(do_not_reconnect)}])
            for c in list(self._conns):
                c.writer.close()
        self._run(_l())

    def drop_acks(self) -> None:
        """Forget the acceptance updates kept by ``hold_acks`` (they never reach the client)."""
        def _d():
            self.hold_acks = False
            self._acks = []
        self.call(_d)

    def release_to(self, k: int) -> None:
        """Let the stream run up to (not including) trade index ``k``, then pause again."""
        def _r():
            self.stop_at = k
            self._wake.set()
        self.call(_r)

    def release_acks(self) -> None:
        """Send the acceptance updates kept by ``hold_acks`` (and stop keeping them)."""
        async def _r():
            self.hold_acks = False
            acks, self._acks = self._acks, []
            await self._broadcast(acks)
        self._run(_r())

    def inject(self, raw: bytes) -> None:
        """Write raw bytes to every client (garbage, a half frame...)."""
        def _i():
            for c in self._conns:
                c.writer.write(raw)
        self.call(_i)

    def advance_offline(self, n: int) -> None:
        """Match the next ``n`` trades with no client told (fills while the client is away)."""
        def _a():
            for _ in range(n):
                if self.i >= len(self.ticks):
                    return
                self._match(self.ticks[self.i])
                self.i += 1
        self.call(_a)

    def external_fill(self, side: int, qty: int) -> None:
        """An order from elsewhere (a hand-placed one in Sierra Chart) filled at the last trade, no client told."""
        def _e():
            self._n += 1
            o = FakeOrder(f"S{self._n}", f"manual-{self._n}", MARKET, side, qty, 0, self.accounts[0])
            self.orders[o.server_id] = o
            self._fill(o, self.last_trade, self.ticks[max(self.i - 1, 0)].ts_ns)
        self.call(_e)

    def describe(self) -> str:
        """The stream's state in one line (for a test's failure message)."""
        return (f"fake DTC: {self.i} of {len(self.ticks)} trades sent, {self.orders_seen} orders seen, "
                f"held={self.held} paused={self.paused}, hold timeouts (trade, orders missing) {self.hold_timeouts}, "
                f"{self.logons} logons, subscriptions {self.subscriptions}, drops to come {sorted(self.drop_before)}")

    def connected(self) -> int:
        return self.call(lambda: sum(1 for c in self._conns if c.logged_on))

    def working(self) -> list[FakeOrder]:
        return self.call(lambda: [o for o in self.orders.values() if o.status == ST_OPEN])

    def wait(self, pred, timeout: float = 30.0, what: str = "condition") -> None:
        """Poll ``pred()`` (on the caller's thread) until true, or AssertionError after ``timeout``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return
            time.sleep(0.01)
        raise AssertionError(f"fake DTC: {what} not reached within {timeout} s")

    # ----- connection
    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = Conn(writer)
        self._conns.append(c)
        buf = b""
        try:
            while True:
                data = await reader.read(65536)
                if not data:
                    break
                buf += data
                while b"\x00" in buf:
                    raw, buf = buf.split(b"\x00", 1)
                    if raw.strip():
                        await self._handle(c, json.loads(raw))
        except (ConnectionError, OSError):
            pass
        finally:
            for t in c.tasks:
                t.cancel()
            if c in self._conns:
                self._conns.remove(c)
            writer.close()

    async def _send(self, c: Conn, msgs: list[dict]) -> None:
        if self.silent or c.dropped or c.writer.is_closing():
            return
        frames = [json.dumps(m).encode() + b"\x00" for m in msgs]
        if self.write_mode == "split":
            for f in frames:
                for k in range(0, len(f), 7):
                    c.writer.write(f[k:k + 7])
                    await c.writer.drain()
                    await asyncio.sleep(0)
        elif self.write_mode == "coalesce":
            c.writer.write(b"".join(frames))
        else:
            for f in frames:
                c.writer.write(f)
        try:
            await c.writer.drain()
        except (ConnectionError, OSError):
            pass

    async def _broadcast(self, msgs: list[dict]) -> None:
        for c in list(self._conns):
            if c.logged_on:
                await self._send(c, msgs)

    def _close_after_sent(self, c: Conn) -> None:
        """Drop ``c`` the way a server closing the socket does: FIN after what was written (``abort()`` would
        reset it, and the kernel would then discard trades still in its send queue: a loss this drop is not about).
        The client sees the end of the stream, closes, and ``_serve`` closes our side."""
        c.logged_on, c.dropped = False, True
        for t in c.tasks:
            t.cancel()
        if c.writer.can_write_eof() and not c.writer.is_closing():
            c.writer.write_eof()
        else:
            c.writer.transport.abort()

    async def _heartbeat(self, c: Conn) -> None:
        while True:
            await asyncio.sleep(c.heartbeat_s)
            if self.heartbeats:
                await self._send(c, [{"Type": HEARTBEAT, "NumDroppedMessages": 0, "CurrentDateTime": int(time.time())}])

    async def _handle(self, c: Conn, m: dict) -> None:
        self.received.append(m)
        t = m.get("Type")
        if t == ENCODING_REQUEST:
            await self._send(c, [{"Type": ENCODING_RESPONSE, "ProtocolVersion": 8, "Encoding": 2}])
        elif t == LOGON_REQUEST:
            ok = self.logon_result == 1
            await self._send(c, [{"Type": LOGON_RESPONSE, "ProtocolVersion": 8, "Result": self.logon_result,
                                  "ResultText": self.logon_text, "TradingIsSupported": int(self.trading),
                                  "OCOOrdersSupported": 1, "MarketDataSupported": 1, "SymbolExchangeDelimiter": "-",
                                  "ServerName": "fake"}])
            if ok:
                c.logged_on = True
                self.logons += 1
                c.heartbeat_s = float(m.get("HeartbeatIntervalInSeconds") or 5)
                c.tasks.append(asyncio.create_task(self._heartbeat(c)))
        elif t == HEARTBEAT or t == LOGOFF:
            return
        elif t == MARKET_DATA_REQUEST:
            await self._subscribe(c, m)
        elif t in (SUBMIT_SINGLE, SUBMIT_OCO):
            self.order_at.append((time.perf_counter(), m))
            self.orders_seen += 1
            ups = self._submit(m)
            if self.hold_acks:
                self._acks += ups
                ups = []
            await self._broadcast(ups)
            self._wake.set()
        elif t == CANCEL:
            await self._broadcast(self._cancel(m))
        elif t == OPEN_ORDERS_REQUEST:
            rid = m.get("RequestID", 0)
            open_ = [o for o in self.orders.values() if o.status == ST_OPEN]
            msgs = [self._update(o, R_OPEN_ORDERS) for o in open_] or [{"Type": ORDER_UPDATE, "NoOrders": 1}]
            for k, x in enumerate(msgs, 1):
                x.update(RequestID=rid, TotalNumMessages=len(msgs), MessageNumber=k)
            await self._send(c, msgs)
        elif t == HIST_FILLS_REQUEST:
            rid = m.get("RequestID", 0)
            msgs = [{"Type": HIST_FILL_RESPONSE, "Symbol": self.symbol, "Exchange": "", "ServerOrderID": f.server_id,
                     "BuySell": BUY if f.side > 0 else SELL, "Price": f.price * self.tick_size,
                     "DateTime": f.ts_ns / 1e9, "Quantity": f.qty, "UniqueExecutionID": f.exec_id,
                     "TradeAccount": self.accounts[0]} for f in self.fills] \
                or [{"Type": HIST_FILL_RESPONSE, "NoOrderFills": 1}]
            for k, x in enumerate(msgs, 1):
                x.update(RequestID=rid, TotalNumberMessages=len(msgs), MessageNumber=k)
            await self._send(c, msgs)
        elif t == POSITIONS_REQUEST:
            x = self._position_msg() if self.position else {"Type": POSITION_UPDATE, "NoPositions": 1}
            x.update(RequestID=m.get("RequestID", 0), TotalNumberMessages=1, MessageNumber=1, Unsolicited=0)
            await self._send(c, [x])
        elif t == ACCOUNTS_REQUEST:
            msgs = [{"Type": ACCOUNT_RESPONSE, "TradeAccount": a, "RequestID": m.get("RequestID", 0),
                     "TotalNumberMessages": len(self.accounts), "MessageNumber": k}
                    for k, a in enumerate(self.accounts, 1)]
            await self._send(c, msgs)

    async def _subscribe(self, c: Conn, m: dict) -> None:
        sid = m.get("SymbolID", 0)
        if m.get("Symbol") != self.symbol:
            await self._send(c, [{"Type": MARKET_DATA_REJECT, "SymbolID": sid,
                                  "RejectText": f"Symbol {m.get('Symbol')!r} not found"}])
            return
        c.symbol_id = sid
        self.subscriptions.append(sid)
        last = self.ticks[self.i - 1] if self.i else None
        snap = {"Type": MARKET_DATA_SNAPSHOT, "SymbolID": sid}
        if last is not None:
            snap.update(LastTradePrice=last.price, LastTradeVolume=last.size, LastTradeDateTime=last.ts_ns / 1e9)
        msgs = [snap]
        for k in range(max(0, self.i - self.resend), self.i):  # a server re-sending what the client had
            msgs.append(self._trade_msg(self.ticks[k], sid))
        await self._send(c, msgs)
        self._wake.set()

    # ----- stream
    def _trade_msg(self, t: Tick, sid: int) -> dict:
        at = 2 if t.side > 0 else 1 if t.side < 0 else 0
        if self.trade_type == TRADE_COMPACT:
            return {"Type": TRADE_COMPACT, "SymbolID": sid, "Price": t.price, "Volume": t.size,
                    "DateTime": t.ts_ns // 1_000_000_000, "AtBidOrAsk": at}
        if self.trade_type == TRADE_UNBUNDLED:
            return {"Type": TRADE_UNBUNDLED, "SymbolID": sid, "Price": t.price, "Volume": t.size,
                    "DateTime": t.ts_ns / 1e9, "AtBidOrAsk": at, "UnbundledTradeIndicator": 0}
        return {"Type": TRADE, "SymbolID": sid, "Price": t.price, "Volume": t.size, "DateTime": t.ts_ns / 1e9,
                "AtBidOrAsk": at}

    async def _stream(self) -> None:
        while True:
            subscribed = [c for c in self._conns if c.logged_on and c.symbol_id]
            ready = (subscribed and self.i < len(self.ticks) and not self.silent
                     and (self.stop_at is None or self.i < self.stop_at) and (self.gate is None or self.gate()))
            self.paused = bool(subscribed) and self.stop_at is not None and self.i >= self.stop_at
            if not ready:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), 0.05)
                except TimeoutError:
                    pass
                continue
            if self.i in self.drop_before:  # the client reconnects and resubscribes; the stream goes on then
                self.drop_before.discard(self.i)
                for c in list(self._conns):
                    self._close_after_sent(c)
                continue
            t = self.ticks[self.i]
            updates = self._match(t)
            k = self.i
            seen = self.orders_seen  # before the write: an order the trade prompts may arrive while it drains
            self.i += 1
            self.sent_at[k] = time.perf_counter()  # just before the write: the latency measured is not shortened
            for c in subscribed:
                msgs = list(updates)
                if self.quotes and t.bid == t.bid and t.ask == t.ask:
                    msgs.append({"Type": BID_ASK, "SymbolID": c.symbol_id, "BidPrice": t.bid, "AskPrice": t.ask,
                                 "BidQuantity": 10, "AskQuantity": 10, "DateTime": t.ts_ns // 1_000_000_000})
                msgs.append(self._trade_msg(t, c.symbol_id))
                await self._send(c, msgs)
            need = self.hold_after.get(k)
            if need and not self.hold_timeouts:  # once a hold timed out the runs differ: no more holding
                self.held = True
                want = seen + need
                end = time.monotonic() + self.hold_timeout_s
                while self.orders_seen < want and time.monotonic() < end:
                    self._wake.clear()
                    try:
                        await asyncio.wait_for(self._wake.wait(), 0.05)
                    except TimeoutError:
                        pass
                if self.orders_seen < want:
                    self.hold_timeouts.append((k, want - self.orders_seen))
                self.held = False
            # yield after every trade, as a real server serves its clients' requests while it streams (a stream
            # that never yields answers a resync only at its next hold, and the broker stays SYNCING until then)
            await asyncio.sleep(self.interval_s)

    # ----- engine
    def _ticks(self, price: float) -> int:
        return round(price / self.tick_size)

    def _submit(self, m: dict) -> list[dict]:
        acct = m.get("TradeAccount") or self.accounts[0]
        legs = []
        if m["Type"] == SUBMIT_SINGLE:
            legs.append((m.get("ClientOrderID", ""), m.get("OrderType"), m.get("BuySell"), m.get("Price1", 0.0),
                         m.get("Quantity", 0)))
        else:
            for s in ("_1", "_2"):
                legs.append((m.get("ClientOrderID" + s, ""), m.get("OrderType" + s), m.get("BuySell" + s),
                             m.get("Price1" + s, 0.0), m.get("Quantity" + s, 0)))
        out, made = [], []
        for cid, kind, bs, px, qty in legs:
            self._n += 1
            o = FakeOrder(f"S{self._n}", cid, kind, 1 if bs == BUY else -1, int(qty), self._ticks(px or 0.0), acct)
            if not self.trading:
                o.status = ST_REJECTED
                out.append(self._update(o, R_REJECTED, info="trading is not enabled on this DTC server"))
                continue
            if any(x.client_id == cid and x.status == ST_OPEN for x in self.orders.values()) or \
                    any(x.client_id == cid for x in self.orders.values()):
                self.duplicates += 1
                o.status = ST_REJECTED
                out.append(self._update(o, R_REJECTED, info=f"duplicate ClientOrderID {cid}"))
                continue
            self.orders[o.server_id] = o
            made.append(o)
            out.append(self._update(o, R_ACCEPTED))
        if len(made) == 2:
            made[0].partner, made[1].partner = made[1].server_id, made[0].server_id
        return out

    def _cancel(self, m: dict) -> list[dict]:
        for o in self.orders.values():
            if o.status == ST_OPEN and (o.server_id == m.get("ServerOrderID") or
                                        (m.get("ClientOrderID") and o.client_id == m.get("ClientOrderID"))):
                o.status = ST_CANCELED
                return [self._update(o, R_CANCELED)]
        return [{"Type": ORDER_UPDATE, "OrderUpdateReason": 9, "ServerOrderID": m.get("ServerOrderID", ""),
                 "ClientOrderID": m.get("ClientOrderID", ""), "InfoText": "order not found"}]

    def _match(self, t: Tick) -> list[dict]:
        """Fill working orders against trade ``t`` (market orders first, then stops and limits placed before)."""
        p = self._ticks(t.price)
        out: list[dict] = []
        working = [o for o in self.orders.values() if o.status == ST_OPEN]
        for o in working:
            if o.status != ST_OPEN:
                continue
            if o.kind == MARKET or o.kind == STOP and ((o.side < 0 and p <= o.price) or (o.side > 0 and p >= o.price)):
                out += self._fill(o, p + o.side * self.slip, t.ts_ns)
            elif o.kind == LIMIT and ((o.side < 0 and p >= o.price) or (o.side > 0 and p <= o.price)):
                out += self._fill(o, o.price, t.ts_ns)
        self.last_trade = p
        return out

    def _fill(self, o: FakeOrder, px: int, ts_ns: int) -> list[dict]:
        o.status, o.fill_price = ST_FILLED, px
        f = FakeFill(o.server_id, o.side, o.qty, px, ts_ns, f"X{len(self.fills) + 1}")
        self.fills.append(f)
        self.position += o.side * o.qty
        out = [self._update(o, R_FILLED, fill=f)]
        partner = self.orders.get(o.partner)
        if partner is not None and partner.status == ST_OPEN:
            partner.status = ST_CANCELED
            out.append(self._update(partner, R_CANCELED))
        x = self._position_msg()
        x["Unsolicited"] = 1
        return out + [x]

    def _position_msg(self) -> dict:
        return {"Type": POSITION_UPDATE, "Symbol": self.symbol, "Exchange": "", "Quantity": self.position,
                "AveragePrice": 0.0, "TradeAccount": self.accounts[0]}

    def _update(self, o: FakeOrder, reason: int, fill: FakeFill | None = None, info: str = "") -> dict:
        m = {"Type": ORDER_UPDATE, "Symbol": self.symbol, "Exchange": "", "ServerOrderID": o.server_id,
             "ClientOrderID": o.client_id, "OrderStatus": o.status, "OrderUpdateReason": reason,
             "OrderType": o.kind, "BuySell": BUY if o.side > 0 else SELL, "Price1": o.price * self.tick_size,
             "OrderQuantity": o.qty, "FilledQuantity": o.qty if o.status == ST_FILLED else 0,
             "RemainingQuantity": 0 if o.status != ST_OPEN else o.qty, "TradeAccount": o.account,
             "InfoText": info, "OCOLinkedOrderServerOrderID": o.partner}
        if fill is not None:
            m.update(LastFillPrice=fill.price * self.tick_size, LastFillQuantity=fill.qty,
                     LastFillDateTime=fill.ts_ns / 1e9, LastFillExecutionID=fill.exec_id,
                     AverageFillPrice=fill.price * self.tick_size)
        return m
