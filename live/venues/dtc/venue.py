"""`DTCVenue`: one DTC connection on one background event-loop thread, shared by a `DTCFeed` and a `DTCBroker`;
and the checks of `navale doctor` for a DTC server."""

from __future__ import annotations

import asyncio
import concurrent.futures
import datetime as dt
import socket
import threading
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from live.brokers.base import BrokerError
from live.feeds.base import FeedError
from live.venues.base import DoctorCheck
from live.venues.dtc.broker import TRADING_DISABLED, DTCBroker
from live.venues.dtc.client import DTCClient, DTCError, LogonRefused
from live.venues.dtc.constants import MessageType as MT
from live.venues.dtc.feed import DTCFeed
from live.venues.dtc.symbols import dtc_symbol
from live.venues.reconnect import Backoff, Link
from live.venues.settings import VenueSettings

__all__ = ["DTCVenue", "doctor", "open_venue"]


class DTCVenue:
    """The connection (``link``, ``client``), its event-loop thread, and the ``feed`` / ``broker`` over it."""

    def __init__(self, settings: VenueSettings, *, state_dir: Path | None, want_feed: bool, want_broker: bool,
                 symbol: str = "ES", tick_size: float = 0.25, connect_timeout_s: float = 20.0,
                 dtc_sym: str | None = None, heartbeat_s: int = 5, hold_s: float = 15.0,
                 backoff: Backoff | None = None, feed_resume: Any = None, depth_levels: int = 0,
                 encoding_request: bool = False):
        self.settings = settings
        self.connect_timeout_s = connect_timeout_s
        self.dtc_symbol = dtc_sym or dtc_symbol(symbol, settings.exchange, dt.date.today())
        self.link = Link(f"dtc {settings.host}:{settings.port}")
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="navale-dtc", daemon=True)
        self.client = DTCClient(settings.host, settings.port, username=settings.username, password=settings.password,
                                trade_account=settings.account, link=self.link, heartbeat_s=heartbeat_s,
                                timeout_s=settings.timeout_s, backoff=backoff, encoding_request=encoding_request)
        self.feed = DTCFeed(self.client, self.dtc_symbol, settings.exchange, symbol=symbol, tick_size=tick_size,
                            contract=self.dtc_symbol.split("-")[0], depth_levels=depth_levels,
                            resume=feed_resume) if want_feed else None
        self.broker = DTCBroker(self.client, self.call, symbol=symbol, dtc_symbol=self.dtc_symbol,
                                exchange=settings.exchange, trade_account=settings.account, tick_size=tick_size,
                                state_dir=state_dir, hold_s=hold_s, timeout_s=settings.timeout_s
                                ) if want_broker else None
        self._closed = False
        self._thread.start()  # last: a part that failed to build leaves no thread behind

    def call(self, coro: Coroutine, timeout: float) -> Any:
        """Run ``coro`` on the loop thread and wait for it at most ``timeout`` s (TimeoutError after)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise DTCError("a blocking DTC call from the event-loop thread itself")
        fut = asyncio.run_coroutine_threadsafe(coro, self._loop)
        try:
            return fut.result(timeout)
        except concurrent.futures.TimeoutError:
            fut.cancel()
            raise TimeoutError(f"no answer within {timeout:g} s") from None

    def start(self) -> dict:
        """Connect, log on, subscribe and reconcile (within ``connect_timeout_s``); the LOGON_RESPONSE."""
        where = f"DTC {self.settings.host}:{self.settings.port}"
        err = BrokerError if self.broker is not None else FeedError
        try:
            return self.call(self.client.start(), self.connect_timeout_s)
        except LogonRefused as e:
            self.close()
            raise err(str(e)) from None
        except (OSError, TimeoutError) as e:
            self.close()
            raise err(f"{where}: cannot connect and log on ({e or type(e).__name__}): is Sierra Chart running "
                      "with its DTC server enabled on that port?") from None
        except (DTCError, BrokerError, FeedError) as e:
            self.close()
            raise err(f"{where}: {e}") from None

    def close(self) -> None:
        """Log off, stop the loop thread, close the broker's store (twice is harmless)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.call(self.client.close(), 5.0)
        except Exception:  # closing anyway
            pass
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(5.0)
        if self.feed is not None:
            self.feed.close()
        if self.broker is not None:
            self.broker.close()

    def stats(self) -> dict[str, Any]:
        """Link state, outages and counters of the connection, the feed and the broker."""
        out = {"symbol": self.dtc_symbol, "link": self.link.state.value, "reconnects": self.link.reconnects,
               "outages_s": [round(o.seconds, 3) for o in self.link.outages[-5:]], **self.client.stats()}
        if self.feed is not None:
            out["feed"] = self.feed.stats()
        if self.broker is not None:
            out["broker"] = self.broker.stats()
        return out


def open_venue(settings: VenueSettings, *, state_dir: Path, want_feed: bool, want_broker: bool,
               symbol: str = "ES", tick_size: float = 0.25, connect_timeout_s: float = 20.0) -> DTCVenue:
    """A connected DTC venue (logged on, subscribed, reconciled); BrokerError/FeedError in one line on failure."""
    v = DTCVenue(settings, state_dir=Path(state_dir), want_feed=want_feed, want_broker=want_broker, symbol=symbol,
                 tick_size=tick_size, connect_timeout_s=connect_timeout_s)
    v.start()
    return v


def doctor(settings: VenueSettings, *, symbol: str | None = None, data_timeout_s: float = 10.0,
           dtc_sym: str | None = None) -> list[DoctorCheck]:
    """The checks of `navale doctor` for a DTC server, each in plain words (nothing is traded)."""
    where = f"{settings.host}:{settings.port}"
    checks: list[DoctorCheck] = []
    try:
        with socket.create_connection((settings.host, settings.port), timeout=min(settings.timeout_s, 5.0)):
            pass
        checks.append(DoctorCheck("dtc tcp", True, f"{where} accepts connections"))
    except OSError as e:
        checks.append(DoctorCheck("dtc tcp", False, f"{where} does not accept connections ({e}): start Sierra Chart "
                                  "and enable its DTC Protocol Server (Global Settings >> Sierra Chart Server "
                                  "Settings) on that port"))
        return checks
    v = DTCVenue(settings, state_dir=None, want_feed=True, want_broker=False, symbol=symbol or settings.symbol,
                 dtc_sym=dtc_sym, connect_timeout_s=settings.timeout_s + 5)
    try:
        try:
            resp = v.start()
        except FeedError as e:
            checks.append(DoctorCheck("dtc logon", False, f"{e}"))
            return checks
        checks.append(DoctorCheck("dtc logon", True, f"logged on as {settings.username or '(no user name)'}: "
                                  f"{resp.get('ResultText') or 'no text'}"))
        checks.append(DoctorCheck("dtc encoding", True, "the server answers in JSON (set its Encoding to JSON or "
                                  "Automatic)"))
        feed = v.feed
        deadline = time.monotonic() + data_timeout_s
        while time.monotonic() < deadline and not (feed.received or feed.reject_text or feed.quotes.bid == feed.quotes.bid):
            time.sleep(0.05)
        if feed.reject_text:
            checks.append(DoctorCheck("dtc market data", False, f"{v.dtc_symbol} on {settings.exchange} rejected: "
                                      f"{feed.reject_text}"))
        elif feed.received or feed.quotes.bid == feed.quotes.bid:
            what = f"{feed.received} trade(s)" if feed.received else f"bid {feed.quotes.bid} / ask {feed.quotes.ask}"
            checks.append(DoctorCheck("dtc market data", True, f"{v.dtc_symbol}: {what}"))
        else:
            checks.append(DoctorCheck("dtc market data", False, f"{v.dtc_symbol}: no trade or quote within "
                                      f"{data_timeout_s:g} s (market closed, or the symbol is not the one Sierra "
                                      "Chart uses: set NAVALE_DTC_SYMBOL)"))
        if not resp.get("TradingIsSupported"):
            checks.append(DoctorCheck("dtc trading", False, TRADING_DISABLED))
        else:
            checks.append(DoctorCheck("dtc trading", True, "the server accepts orders (TradingIsSupported)"))
            try:
                accts = v.call(v.client.request({"Type": MT.TRADE_ACCOUNTS_REQUEST}, {MT.TRADE_ACCOUNT_RESPONSE}),
                               settings.timeout_s + 1)
                names = [str(a.get("TradeAccount")) for a in accts if a.get("TradeAccount")]
                if not names:
                    checks.append(DoctorCheck("dtc accounts", False, "the server lists no trade account"))
                elif settings.account and settings.account not in names:
                    checks.append(DoctorCheck("dtc accounts", False, f"trade account {settings.redacted()['account']} "
                                              f"is not among the server's {len(names)} account(s)"))
                else:
                    checks.append(DoctorCheck("dtc accounts", True, f"{len(names)} trade account(s)"
                                              + ("" if settings.account else ": set NAVALE_DTC_TRADE_ACCOUNT to pick one")))
            except (DTCError, TimeoutError) as e:
                checks.append(DoctorCheck("dtc accounts", False, f"TRADE_ACCOUNTS_REQUEST failed: {e}"))
    finally:
        v.close()
    return checks
