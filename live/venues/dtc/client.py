"""An asyncio DTC client in JSON encoding: logon, heartbeats both ways, dead-link detection, message dispatch,
request/response collection, and the one reconnect loop (`live.venues.reconnect.Link` + `Backoff`).

Encoding: the client speaks JSON from its first byte. Sierra Chart's DTC server accepts that directly when its
Encoding setting is JSON, and also when it is Automatic (it detects the encoding of the first message); the
ENCODING_REQUEST sequence is only needed to switch a binary connection, so it is sent only when
``encoding_request=True`` (then the ENCODING_RESPONSE must say JSON).

Everything here runs on the venue's one event-loop thread. ``hooks`` run in order after each logon while the link
is SYNCING (the feed resubscribes, the broker recovers orders, fills and positions); then the link is READY.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from live.venues.dtc import messages as M
from live.venues.dtc.constants import Encoding, LogonStatus
from live.venues.dtc.constants import MessageType as MT
from live.venues.dtc.framing import BadFrame, FrameDecoder, encode
from live.venues.reconnect import Backoff, Link, LinkState

__all__ = ["DTCClient", "DTCError", "LogonRefused"]

log = logging.getLogger("navale.venues.dtc")

Handler = Callable[[dict], None]
Hook = Callable[[dict], Awaitable[None]]


class DTCError(RuntimeError):
    """A DTC request failed: the message names the request and why."""


class LogonRefused(DTCError):
    """The server refused the logon (``fatal``: LOGON_ERROR_NO_RECONNECT, or the address changed)."""

    def __init__(self, text: str, fatal: bool, response: dict):
        super().__init__(text)
        self.fatal, self.response = fatal, response


class _Collector:
    """Gathers the messages answering one RequestID until the last one (MessageNumber == TotalNumber...)."""

    def __init__(self, done_types: set[int], reject_types: set[int]):
        self.done_types, self.reject_types = done_types, reject_types
        self.messages: list[dict] = []
        self.future: asyncio.Future = asyncio.get_running_loop().create_future()

    def add(self, m: dict) -> None:
        if self.future.done():
            return
        t = m["Type"]
        if t in self.reject_types:
            self.future.set_exception(DTCError(str(m.get("RejectText") or "rejected")))
            return
        if t not in self.done_types:
            return
        empty = any(m.get(k) == 1 for k in ("NoPositions", "NoOrders", "NoOrderFills"))
        if not empty:
            self.messages.append(m)
        total = m.get("TotalNumberMessages", m.get("TotalNumMessages", 1)) or 1
        if empty or m.get("MessageNumber", 1) >= total:
            self.future.set_result(self.messages)


class DTCClient:
    """One DTC connection (JSON), kept up by the reconnect loop until :meth:`close`."""

    def __init__(self, host: str, port: int, *, username: str = "", password: str = "", trade_account: str = "",
                 link: Link, heartbeat_s: int = 5, client_name: str = "navale", timeout_s: float = 10.0,
                 backoff: Backoff | None = None, encoding_request: bool = False):
        self.host, self.port = host, port
        self._username, self._password, self.trade_account = username, password, trade_account
        self.link = link
        self.heartbeat_s = max(1, int(heartbeat_s))
        self.client_name = client_name[:31]
        self.timeout_s = timeout_s
        self.backoff = backoff or Backoff(base=0.2, cap=10.0)
        self.encoding_request = encoding_request
        self.handlers: dict[int, list[Handler]] = {}
        self.hooks: list[Hook] = []
        self.lost_listeners: list[Callable[[str], None]] = []
        self.logon: dict = {}  # the last LOGON_RESPONSE
        self.bad_frames = 0
        self.last_bad: str = ""
        self.last_rx = time.monotonic()
        self.connects = 0
        self._writer: asyncio.StreamWriter | None = None
        self._tasks: list[asyncio.Task] = []
        self._collectors: dict[int, _Collector] = {}
        self._request_id = 0
        self._closed = False
        self._reconnect_task: asyncio.Task | None = None
        self._read_end = ""
        self._no_reconnect = False  # a LOGOFF with DoNotReconnect

    # ----- public
    def on(self, msg_type: int, handler: Handler) -> None:
        """Call ``handler(msg)`` for every message of ``msg_type`` (in arrival order, on the loop thread)."""
        self.handlers.setdefault(msg_type, []).append(handler)

    @property
    def connected(self) -> bool:
        return self._writer is not None and not self._writer.is_closing()

    def next_request_id(self) -> int:
        self._request_id += 1
        return self._request_id

    async def start(self) -> dict:
        """Connect, log on and run the hooks once; the LOGON_RESPONSE. Raises LogonRefused / DTCError / OSError."""
        self.link.to(LinkState.CONNECTING, "start")
        try:
            resp = await self._connect_and_sync()
        except LogonRefused as e:
            self._closed = True
            self.link.to(LinkState.FAILED, str(e))
            raise
        except BaseException as e:
            self._closed = True  # a first connection that fails is reported, not retried in the background
            if self._reconnect_task is not None:
                self._reconnect_task.cancel()
            await self._drop()
            if self.link.state is not LinkState.CLOSED:
                self.link.to(LinkState.FAILED, f"{type(e).__name__}: {e}")
            raise
        return resp

    def send(self, msg: dict) -> None:
        """Write one message now; DTCError when not connected."""
        w = self._writer
        if w is None or w.is_closing():
            raise DTCError(f"DTC {self.host}:{self.port}: not connected (message type {msg.get('Type')} not sent)")
        w.write(encode(msg))

    async def request(self, msg: dict, done_types: set[int], reject_types: set[int] = frozenset(),
                      timeout: float | None = None) -> list[dict]:
        """Send ``msg`` with a new RequestID and wait for all of its answers (an empty list: none)."""
        rid = self.next_request_id()
        col = _Collector(set(done_types), set(reject_types))
        self._collectors[rid] = col
        try:
            self.send({**msg, "RequestID": rid})
            return await asyncio.wait_for(col.future, timeout or self.timeout_s)
        except TimeoutError:
            raise DTCError(f"DTC request type {msg['Type']} got no complete answer within "
                           f"{timeout or self.timeout_s:g} s") from None
        finally:
            self._collectors.pop(rid, None)

    async def close(self) -> None:
        """Log off and stop reconnecting."""
        self._closed = True
        if self._reconnect_task is not None:
            self._reconnect_task.cancel()
        if self.connected:
            try:
                self.send(M.logoff("client closing"))
                await asyncio.wait_for(self._writer.drain(), 1.0)
            except Exception:  # closing anyway
                pass
        await self._drop()
        self.link.to(LinkState.CLOSED, "closed")

    def drop(self, reason: str) -> None:
        """Declare the link dead now (a bad state seen by a user of the link): it reconnects."""
        asyncio.get_running_loop().create_task(self._lost(reason))

    # ----- connection
    async def _connect_and_sync(self) -> dict:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), self.timeout_s)
        self._writer = writer
        self.last_rx = time.monotonic()
        decoder = FrameDecoder()
        logon_fut: asyncio.Future = asyncio.get_running_loop().create_future()
        enc_fut: asyncio.Future = asyncio.get_running_loop().create_future()
        self._tasks = [asyncio.create_task(self._read(reader, decoder, logon_fut, enc_fut))]
        if self.encoding_request:
            self.send(M.encoding_request())
            enc = await asyncio.wait_for(enc_fut, self.timeout_s)
            if enc is None:
                raise DTCError(f"DTC {self.host}:{self.port}: {self._read_end} before the encoding response")
            if enc.get("Encoding") != Encoding.JSON_ENCODING:
                raise DTCError(f"DTC server answered the JSON encoding request with encoding {enc.get('Encoding')}")
        self.send(M.logon_request(self._username, self._password, self.heartbeat_s, self.client_name,
                                  self.trade_account))
        try:
            resp = await asyncio.wait_for(logon_fut, self.timeout_s)
        except TimeoutError:
            raise DTCError(f"DTC {self.host}:{self.port}: no LOGON_RESPONSE within {self.timeout_s:g} s") from None
        if resp is None:
            raise DTCError(f"DTC {self.host}:{self.port}: {self._read_end} before the logon completed")
        result = resp.get("Result")
        if result != LogonStatus.LOGON_SUCCESS:
            text = str(resp.get("ResultText") or "no reason given")
            await self._drop()
            fatal = result in (LogonStatus.LOGON_ERROR_NO_RECONNECT, LogonStatus.LOGON_RECONNECT_NEW_ADDRESS)
            raise LogonRefused(f"DTC logon refused by {self.host}:{self.port} (result {result}): {text}", fatal, resp)
        self.logon = resp
        self.connects += 1
        self._tasks.append(asyncio.create_task(self._heartbeat()))
        self.link.to(LinkState.SYNCING, "logged on")
        for hook in self.hooks:
            await hook(resp)
        self.link.to(LinkState.READY, "synced")
        self.backoff.reset()
        return resp

    async def _read(self, reader: asyncio.StreamReader, decoder: FrameDecoder, logon_fut: asyncio.Future,
                    enc_fut: asyncio.Future) -> None:
        reason = "server closed the connection"
        logoff = False
        try:
            while not logoff:
                data = await reader.read(65536)
                if not data:
                    break
                self.last_rx = time.monotonic()
                for m in decoder.feed(data):
                    if isinstance(m, BadFrame):
                        self.bad_frames += 1
                        self.last_bad = str(m)
                        log.warning("DTC %s:%s: %s (skipped; link kept)", self.host, self.port, m)
                        continue
                    t = m["Type"]
                    if t == MT.LOGON_RESPONSE and not logon_fut.done():
                        logon_fut.set_result(m)
                    elif t == MT.ENCODING_RESPONSE and not enc_fut.done():
                        enc_fut.set_result(m)
                    elif t == MT.LOGOFF:
                        reason = f"server logged off: {m.get('Reason') or 'no reason given'}"
                        if m.get("DoNotReconnect"):
                            self._no_reconnect = True
                            reason += " (do not reconnect)"
                        logoff = True
                        break
                    self._dispatch(m)
        except (OSError, asyncio.IncompleteReadError) as e:
            reason = f"read failed: {e}"
        except asyncio.CancelledError:
            return
        finally:
            self._read_end = reason
            for f in (logon_fut, enc_fut):
                if not f.done():
                    f.set_result(None)  # the awaiting side raises with `_read_end`
        asyncio.get_running_loop().create_task(self._lost(reason))

    def _dispatch(self, m: dict) -> None:
        rid = m.get("RequestID")
        if rid and rid in self._collectors:
            self._collectors[rid].add(m)
        for h in self.handlers.get(m["Type"], ()):
            try:
                h(m)
            except Exception as e:  # one handler's bug never kills the reader (the message is logged)
                self.bad_frames += 1
                self.last_bad = f"handler of type {m['Type']} failed: {type(e).__name__}: {e}"
                log.warning("DTC %s:%s: message skipped, %s", self.host, self.port, self.last_bad)

    async def _heartbeat(self) -> None:
        """Send a HEARTBEAT every interval; no message at all for 2 intervals is a dead link."""
        try:
            while True:
                await asyncio.sleep(self.heartbeat_s / 2)
                if time.monotonic() - self.last_rx > 2 * self.heartbeat_s:
                    asyncio.get_running_loop().create_task(
                        self._lost(f"no message or heartbeat for {2 * self.heartbeat_s} s"))
                    return
                if self.connected:
                    self.send(M.heartbeat())
        except asyncio.CancelledError:
            return
        except DTCError:
            return

    async def _drop(self) -> None:
        me = asyncio.current_task()
        for t in self._tasks:
            if t is not me:
                t.cancel()
        self._tasks = []
        w, self._writer = self._writer, None
        if w is not None:
            w.close()
            try:
                await asyncio.wait_for(w.wait_closed(), 1.0)
            except Exception:  # the peer is gone already
                pass
        for c in self._collectors.values():
            if not c.future.done():
                c.future.set_exception(DTCError("the DTC connection dropped"))

    async def _lost(self, reason: str) -> None:
        if self._closed or self.link.state in (LinkState.CLOSED, LinkState.FAILED):
            return
        if self.link.state in (LinkState.READY, LinkState.SYNCING):
            log.warning("DTC %s:%s link lost: %s", self.host, self.port, reason)
            await self._drop()
            self.link.to(LinkState.LOST, reason)
            for fn in self.lost_listeners:
                fn(reason)
        if self._no_reconnect and self.link.state is LinkState.LOST:
            log.error("DTC %s:%s: the server asked not to reconnect: %s", self.host, self.port, reason)
            self.link.to(LinkState.FAILED, reason)
            return
        if self.link.state is LinkState.LOST and self.link.begin_reconnect():
            self._reconnect_task = asyncio.get_running_loop().create_task(self._reconnect())

    async def _reconnect(self) -> None:
        """The one reconnect loop: back off, connect, log on, resync; until READY, FAILED or closed."""
        try:
            while not self._closed:
                await asyncio.sleep(self.backoff.next_delay())
                if self._closed:
                    return
                if self.link.state is not LinkState.CONNECTING:
                    self.link.to(LinkState.CONNECTING, f"attempt {self.backoff.attempts}")
                try:
                    await self._connect_and_sync()
                    return
                except LogonRefused as e:
                    if e.fatal:
                        log.error("%s: not reconnecting", e)
                        self.link.to(LinkState.FAILED, str(e))
                        return
                    log.warning("%s (retrying)", e)
                except (TimeoutError, OSError, DTCError) as e:
                    log.warning("DTC %s:%s reconnect failed: %s", self.host, self.port, e or type(e).__name__)
                await self._drop()
                if self.link.state in (LinkState.SYNCING, LinkState.READY):
                    self.link.to(LinkState.LOST, "resync failed")
                    self.link.to(LinkState.CONNECTING, "retry")
        except asyncio.CancelledError:
            return
        finally:
            self.link.end_reconnect()

    def stats(self) -> dict[str, Any]:
        return {"connects": self.connects, "reconnects": self.link.reconnects, "bad_frames": self.bad_frames,
                "last_bad": self.last_bad, "state": self.link.state.value}
