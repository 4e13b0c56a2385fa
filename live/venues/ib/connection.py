"""One connection to TWS / IB Gateway through ib_async, owned by a background thread running its event loop.

The connection is shared by the feed and the broker (one client id). Its `Link` moves through the states of
`live.venues.reconnect`; only READY lets orders out.

Connect (and every reconnect): socket + API handshake (error 326, client id in use: the next client id, at most
``client_id_tries`` ids, then FAILED with the reason) -> SYNCING: order ids above the persisted high-water mark,
the contract qualified again, tick-by-tick subscriptions sent again with NEW request ids, the fills made while
away recovered with ``reqExecutions``, open orders and positions read (the broker's reconcile) -> READY, and the
orders held meanwhile go out.

Faults: a dropped socket or IB 1100 (IB lost its own upstream) -> LOST and the feed reports ``disconnected``;
the one reconnect loop (``Link.begin_reconnect``) retries with capped exponential back-off and jitter until it
succeeds or the venue closes. 1101 (restored, data lost): subscriptions re-sent, then reconcile; 1102 (restored,
data kept): reconcile only. 2103/2105 (a data farm broken), 2104/2106 (farm OK) and 2110 are informational
(logged, counted). A drop inside the nightly Gateway restart window (``restart_window``, ET) is expected: the same
reconnect, logged as such.

Threads: every ib_async call runs on the loop thread; callers use :meth:`IBConnection.call` (a coroutine) or
:meth:`IBConnection.run` (a plain function), each with a timeout, so a dead connection never hangs them.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
import logging
import threading
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from live.brokers.base import BrokerError
from live.venues.ib.contract import front_month
from live.venues.reconnect import Backoff, Link, LinkState
from live.venues.settings import VenueSettings

if TYPE_CHECKING:
    from live.venues.ib.broker import IBBroker
    from live.venues.ib.feed import IBFeed

__all__ = ["INFO_CODES", "NO_DATA_CODES", "ConnectError", "IBConnection", "in_restart_window"]

log = logging.getLogger("live.venues.ib")
S = LinkState
NO_DATA_CODES = (354, 10089, 10167, 10168, 10186)  # market data not subscribed / not allowed
INFO_CODES = (2103, 2104, 2105, 2106, 2107, 2108, 2110, 2158)
BROKEN_FARM = (2103, 2105)
_ET = ZoneInfo("America/New_York")


class ConnectError(RuntimeError):
    """The venue could not be reached or refused us (one line: where and why)."""


class _ClientIdInUse(Exception):
    pass


def in_restart_window(wall_ns: int, window: tuple[dt.time, dt.time]) -> bool:
    """True when ``wall_ns`` falls in the Gateway's nightly restart window (ET; it may span midnight)."""
    t = dt.datetime.fromtimestamp(wall_ns / 1e9, tz=dt.UTC).astimezone(_ET).time()
    a, b = window
    return a <= t <= b if a <= b else (t >= a or t <= b)


class IBConnection:
    """The ib_async ``IB`` object on its own loop thread, the link state machine and the reconnect loop."""

    def __init__(self, settings: VenueSettings, *, symbol: str = "ES", tick_size: float = 0.25,
                 connect_timeout_s: float = 20.0, request_timeout_s: float = 10.0, client_id_tries: int = 3,
                 backoff: Backoff | None = None, month: str | None = None,
                 restart_window: tuple[dt.time, dt.time] = (dt.time(23, 40), dt.time(0, 20)),
                 clock: Callable[[], int] = time.time_ns):
        self.settings = settings
        self.symbol = symbol
        self.tick_size = tick_size
        self.connect_timeout_s = connect_timeout_s
        self.request_timeout_s = request_timeout_s
        self.client_id_tries = max(1, client_id_tries)
        self.backoff = backoff or Backoff(base=0.5, cap=30.0)
        self.fixed_month = month
        self.restart_window = restart_window
        self.clock = clock
        self.link = Link("ib")
        self.client_id = settings.client_id
        self.feed: IBFeed | None = None
        self.broker: IBBroker | None = None
        self.contract: Any = None  # the qualified ib_async Contract
        self.month = ""
        self.ib: Any = None
        self.loop: asyncio.AbstractEventLoop | None = None
        self.server_version = 0
        self.accounts: list[str] = []
        self.errors: collections.Counter[int] = collections.Counter()
        self.farms_broken: set[str] = set()
        self.stale_ticks = 0  # records of an old subscription (request id no longer ours)
        self.req_history: list[tuple[int, str]] = []  # every tick-by-tick request (id, type), in order
        self.last_error = ""
        self.last_price: float | None = None  # the last trade (reference for a bracket's first prices)
        self._max_id = 0  # the highest request/order id this process has used
        self._saw_326 = False
        self._refused = asyncio.Event()
        self._closing = False
        self._thread: threading.Thread | None = None
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------------ thread and calls
    def start(self) -> None:
        """Start the loop thread and connect (raises ConnectError in one line when it cannot)."""
        started = threading.Event()

        def run() -> None:
            self.loop = asyncio.new_event_loop()
            asyncio.set_event_loop(self.loop)
            started.set()
            self.loop.run_forever()

        self._thread = threading.Thread(target=run, name="ib-venue", daemon=True)
        self._thread.start()
        started.wait(10)
        try:
            self.call(self._first_connect(), self.connect_timeout_s * self.client_id_tries + 5.0, "connect")
        except BaseException:
            self.close()
            raise

    def call(self, coro: Awaitable[Any], timeout: float | None = None, what: str = "request") -> Any:
        """Run ``coro`` on the loop thread and wait for it (BrokerError after ``timeout`` s)."""
        if self.loop is None or not self.loop.is_running():
            raise BrokerError(f"IB {what}: the connection's thread is not running")
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return fut.result(self.request_timeout_s if timeout is None else timeout)
        except TimeoutError:
            fut.cancel()
            raise BrokerError(f"IB {what}: no answer within {timeout or self.request_timeout_s:.0f} s") from None

    def run(self, fn: Callable[[], Any], timeout: float | None = None, what: str = "request") -> Any:
        """Run the plain function ``fn`` on the loop thread (it may call ib_async) and return its result."""

        async def wrap() -> Any:
            return fn()

        return self.call(wrap(), timeout, what)

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Start a task on the loop (from the loop thread), kept referenced until it ends."""
        t = asyncio.ensure_future(coro)
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    def close(self) -> None:
        """Cancel the subscriptions, disconnect, stop the thread (the link ends CLOSED)."""
        self._closing = True
        self.link.to(S.CLOSED, "closed")
        if self.loop is not None and self.loop.is_running():
            def stop() -> None:
                if self.ib is not None and self.ib.isConnected():
                    self.ib.disconnect()
                for t in list(self._tasks):
                    t.cancel()

            try:
                self.run(stop, 5.0, "disconnect")
            except BrokerError:
                pass
            self.loop.call_soon_threadsafe(self.loop.stop)
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(5.0)

    # ------------------------------------------------------------------ connecting
    def _make_ib(self) -> Any:
        from ib_async import IB

        ib = IB()
        ib.RaiseRequestErrors = False
        ib.errorEvent += self._on_error
        ib.disconnectedEvent += self._on_disconnected
        w = ib.wrapper
        w.tickByTickAllLast = self._on_last
        w.tickByTickBidAsk = self._on_bid_ask
        orig_exec, orig_comm, orig_status, orig_open = w.execDetails, w.commissionReport, w.orderStatus, w.openOrder

        def exec_details(req_id: int, contract: Any, execution: Any) -> None:
            orig_exec(req_id, contract, execution)
            if self.broker is not None:
                self.broker.on_execution(contract, execution)

        def commission(report: Any) -> None:
            orig_comm(report)
            if self.broker is not None:
                self.broker.on_commission(report.execId, float(report.commission))

        def order_status(order_id: int, status: str, *args: Any) -> None:
            orig_status(order_id, status, *args)
            if self.broker is not None:
                self.broker.on_status(order_id, status)

        def open_order(order_id: int, contract: Any, order: Any, state: Any) -> None:
            orig_open(order_id, contract, order, state)
            if self.broker is not None and not order.whatIf:
                self.broker.on_open_order(order, state.status)

        w.execDetails, w.commissionReport, w.orderStatus, w.openOrder = exec_details, commission, order_status, \
            open_order
        return ib

    async def _first_connect(self) -> None:
        self.ib = self._make_ib()
        await self._session()

    async def _session(self) -> None:
        """Connect with the current client id (then the next ones on 326), sync, READY."""
        from ib_async.ib import StartupFetch

        s = self.settings
        last = ""
        for k in range(self.client_id_tries):
            self.link.to(S.CONNECTING, f"client id {self.client_id}")
            self._saw_326 = False
            self._refused = asyncio.Event()
            try:
                connecting = asyncio.ensure_future(self.ib.connectAsync(
                    s.host, s.port, self.client_id, timeout=self.connect_timeout_s, account=s.account,
                    fetchFields=StartupFetch.POSITIONS | StartupFetch.ORDERS_OPEN | StartupFetch.EXECUTIONS))
                refused = asyncio.ensure_future(self._refused.wait())
                await asyncio.wait({connecting, refused}, return_when=asyncio.FIRST_COMPLETED)
                refused.cancel()
                if not connecting.done():  # 326: the server closes the socket, ib_async would wait its timeout
                    connecting.cancel()
                    self.ib.disconnect()
                    raise ConnectionError("the server closed the connection during the handshake")
                connecting.result()
            except BaseException as exc:
                if isinstance(exc, asyncio.CancelledError) and self._closing:
                    raise
                if self._saw_326:
                    last = f"client id {self.client_id} is in use by another API client"
                    log.warning("IB %s:%s: %s; trying client id %d", s.host, s.port, last, self.client_id + 1)
                    self.client_id += 1
                    continue
                why = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                self.link.to(S.LOST if self._was_ready() else S.FAILED, why)
                raise ConnectError(f"IB {s.host}:{s.port} (client id {self.client_id}): cannot connect ({why}); "
                                   "is TWS / IB Gateway running with the API enabled on that port?") from None
            break
        else:
            msg = (f"IB {s.host}:{s.port}: client ids {s.client_id}..{self.client_id - 1} are all in use "
                   f"({self.client_id_tries} tried): close the other API session or set another client id")
            self.link.to(S.FAILED, msg)
            raise ConnectError(msg)
        self.server_version = self.ib.client.serverVersion()
        self.accounts = list(self.ib.client.getAccounts())
        self.link.to(S.SYNCING, f"server version {self.server_version}")
        await self._sync(resubscribe=True)
        self.link.to(S.READY, "synced")
        if self.broker is not None:
            self.broker.flush_held()

    def _was_ready(self) -> bool:
        return any(st is S.READY for _, st, _ in self.link.history)

    async def _sync(self, resubscribe: bool) -> None:
        """Order ids above the high-water mark; contract; subscriptions with new ids; fills; reconcile."""
        mark = max(self._max_id, self.broker.store.order_id_mark() if self.broker is not None else 0)
        self.ib.client.updateReqId(mark + 1)
        await self._qualify()
        if resubscribe and self.feed is not None:
            self.subscribe()
        if self.broker is not None:
            await self.broker.reconcile_async()

    async def _qualify(self) -> None:
        from ib_async import Future

        month = self.fixed_month or front_month(self.symbol, self.clock())
        want = Future(symbol=self.symbol, lastTradeDateOrContractMonth=month, exchange=self.settings.exchange,
                      currency="USD")
        details = await asyncio.wait_for(self.ib.reqContractDetailsAsync(want), self.request_timeout_s)
        hits = [d.contract for d in details or [] if d.contract.lastTradeDateOrContractMonth.startswith(month)]
        if not hits:
            raise ConnectError(f"IB: no {self.symbol} future of {month} at {self.settings.exchange} "
                               "(the contract does not qualify)")
        self.contract, self.month = hits[0], month
        if self.feed is not None:
            self.feed.contract = self.contract.localSymbol

    def next_id(self) -> int:
        """A request/order id never used before by this state dir (loop thread; an order's id is persisted with
        the order by the broker, a subscription's by :meth:`subscribe`)."""
        rid = self.ib.client.getReqId()
        self._max_id = max(self._max_id, rid)
        return rid

    def subscribe(self) -> None:
        """(Re)send the feed's BidAsk and AllLast requests with new request ids (loop thread)."""
        f = self.feed
        old = [r for r in (f.trade_req, f.quote_req) if r is not None]
        if self.ib.isConnected():
            for r in old:
                self.ib.client.cancelTickByTickData(r)
        f.quote_req = self.next_id()
        self.ib.client.reqTickByTickData(f.quote_req, self.contract, "BidAsk", 0, False)
        f.trade_req = self.next_id()
        self.ib.client.reqTickByTickData(f.trade_req, self.contract, "AllLast", 0, False)
        self.req_history += [(f.quote_req, "BidAsk"), (f.trade_req, "AllLast")]
        if self.broker is not None:
            self.broker.store.raise_order_id_mark(f.trade_req)

    # ------------------------------------------------------------------ events (loop thread)
    def _on_last(self, req_id: int, tick_type: int, ts: int, price: float, size: float, *rest: Any) -> None:
        f = self.feed
        if f is None or req_id != f.trade_req:
            self.stale_ticks += 1
            return
        self.last_price = price
        f.on_trade(ts, price, size)

    def _on_bid_ask(self, req_id: int, ts: int, bid: float, ask: float, *rest: Any) -> None:
        f = self.feed
        if f is None or req_id != f.quote_req:
            self.stale_ticks += 1
            return
        f.on_quote(bid, ask)

    def _on_error(self, req_id: int, code: int, msg: str, contract: Any = None) -> None:
        self.errors[code] += 1
        if code == 326:
            self._saw_326 = True
            self._refused.set()
            return
        if code in INFO_CODES:
            if code in BROKEN_FARM:
                self.farms_broken.add(msg.rsplit(":", 1)[-1])
                log.warning("IB %d: %s", code, msg)
            else:
                if code in (2104, 2106):
                    self.farms_broken.discard(msg.rsplit(":", 1)[-1])
                log.info("IB %d: %s", code, msg)
            return
        if code == 1100:
            self._lost(f"IB 1100: {msg}")
            return
        if code in (1101, 1102):
            self.spawn(self._restore(data_lost=code == 1101, why=f"IB {code}: {msg}"))
            return
        if code in NO_DATA_CODES and self.feed is not None and req_id in (self.feed.trade_req, self.feed.quote_req):
            self.feed.error = (f"no market data subscription for {self.symbol} (CME real-time): subscribe in Client "
                               f"Portal (IB {code}: {msg})")
            log.error(self.feed.error)
            return
        self.last_error = f"IB {code} (request {req_id}): {msg}"
        if self.broker is not None and req_id > 0:
            self.broker.on_order_error(req_id, code, msg)
        log.warning(self.last_error)

    def _lost(self, reason: str) -> None:
        if self.link.state in (S.READY, S.SYNCING):
            if in_restart_window(self.clock(), self.restart_window):
                reason += " (inside the nightly Gateway restart window: expected)"
            log.warning("IB link lost: %s", reason)
            self.link.to(S.LOST, reason)
            if self.feed is not None:
                self.feed.on_link_lost(reason)

    def _on_disconnected(self) -> None:
        if self._closing:
            return
        if self.link.state in (S.READY, S.SYNCING, S.LOST):
            self._lost("socket dropped")
            if self.link.begin_reconnect():
                self.spawn(self._reconnect())

    async def _reconnect(self) -> None:
        """The one reconnect loop: back off, reconnect, sync, READY (until it works or the venue closes)."""
        try:
            while not self._closing:
                delay = self.backoff.next_delay()
                log.info("IB reconnect in %.2f s (attempt %d)", delay, self.backoff.attempts)
                await asyncio.sleep(delay)
                if self._closing:
                    return
                try:
                    if self.ib.isConnected():
                        self.ib.disconnect()
                    await self._session()
                    self.backoff.reset()
                    return
                except ConnectError as exc:
                    if self.link.state is S.FAILED and "in use" in str(exc):
                        log.error(str(exc))
                        return
                    log.warning("IB reconnect failed: %s", exc)
                except (TimeoutError, OSError, ConnectionError) as exc:
                    log.warning("IB reconnect failed during sync: %r", exc)
                if self.link.state in (S.CONNECTING, S.SYNCING):
                    self.link.to(S.LOST, "reconnect attempt failed")
        finally:
            self.link.end_reconnect()

    async def _restore(self, data_lost: bool, why: str) -> None:
        """1101/1102: the socket stayed up; sync again (resubscribing when data was lost), READY."""
        if not self.link.begin_reconnect():
            return
        try:
            if self.link.state is S.LOST:
                self.link.to(S.CONNECTING, why)
            if self.link.state in (S.CONNECTING, S.READY):
                self.link.to(S.SYNCING, why)
            await self._sync(resubscribe=data_lost)
            self.link.to(S.READY, why)
            if self.broker is not None:
                self.broker.flush_held()
        except Exception as exc:  # noqa: BLE001 (a failed sync: the socket loop takes over)
            log.warning("IB resync after %s failed: %r", why, exc)
            if self.link.state in (S.CONNECTING, S.SYNCING):
                self.link.to(S.LOST, f"resync failed: {exc!r}")
        finally:
            self.link.end_reconnect()
