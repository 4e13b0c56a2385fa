"""`IBVenue`: one IB connection with its feed and/or broker, what `open_venue` returns; and `doctor`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from live.brokers.base import BrokerError
from live.feeds.base import FeedError
from live.venues.base import DoctorCheck
from live.venues.ib.broker import IBBroker
from live.venues.ib.connection import NO_DATA_CODES, ConnectError, IBConnection
from live.venues.ib.feed import IBFeed
from live.venues.ib.store import STORE_FILE, IBStore
from live.venues.settings import VenueSettings

__all__ = ["IBVenue", "doctor", "open_venue"]


class IBVenue:
    """The connection (``link``), its ``feed`` and ``broker`` (either may be None)."""

    def __init__(self, conn: IBConnection, feed: IBFeed | None, broker: IBBroker | None, store: IBStore | None):
        self.conn = conn
        self.link = conn.link
        self.feed = feed
        self.broker = broker
        self.store = store

    def stats(self) -> dict[str, Any]:
        """Reconnects, outages, unclassified trades, request ids in use, errors seen, held/dropped orders."""
        c = self.conn
        f = self.feed
        return {
            "state": c.link.state.value, "client_id": c.client_id, "server_version": c.server_version,
            "contract": getattr(c.contract, "localSymbol", ""), "reconnects": c.link.reconnects,
            "outages": [{"lost_ns": o.lost_ns, "ready_ns": o.ready_ns, "seconds": o.seconds, "reason": o.reason}
                        for o in c.link.outages],
            "unclassified": f.rule.unclassified if f else 0, "trades": f.counts() if f else {},
            "request_ids": [r for r in ((f.quote_req, f.trade_req) if f else ()) if r is not None],
            "errors": dict(c.errors), "farms_broken": sorted(c.farms_broken), "stale_ticks": c.stale_ticks,
            "held": len(self.broker.held) if self.broker else 0,
            "dropped": list(self.broker.dropped) if self.broker else [],
        }

    def close(self) -> None:
        self.conn.close()
        if self.store is not None:
            self.store.close()


def open_venue(settings: VenueSettings, *, state_dir: Path, want_feed: bool, want_broker: bool, symbol: str = "ES",
               tick_size: float = 0.25, connect_timeout_s: float = 20.0, **conn_kw: Any) -> IBVenue:
    """Connect, qualify the front-month ``symbol`` future, subscribe (feed), recover fills and reconcile (broker).

    A position at IB that this state dir's fills do not add up to raises BrokerError (trading must not start on
    a book it does not know). ``conn_kw`` go to `IBConnection` (back-off, client id tries, a fixed month).
    Failures raise FeedError (feed only) or BrokerError, in one line."""
    Err = BrokerError if want_broker else FeedError
    conn = IBConnection(settings, symbol=symbol, tick_size=tick_size, connect_timeout_s=connect_timeout_s, **conn_kw)
    feed = IBFeed(symbol) if want_feed else None
    conn.feed = feed
    store = None
    broker = None
    if want_broker:
        Path(state_dir).mkdir(parents=True, exist_ok=True)
        store = IBStore(Path(state_dir) / STORE_FILE)
        broker = IBBroker(conn, store, symbol=symbol, tick_size=tick_size)
    try:
        conn.start()
    except (ConnectError, BrokerError, OSError) as exc:
        if store is not None:
            store.close()
        raise Err(str(exc)) from None
    venue = IBVenue(conn, feed, broker, store)
    if broker is not None and broker.mismatch:
        venue.close()
        raise BrokerError(f"{broker.mismatch}: trading stopped; flatten at IB or use the state dir that traded it")
    return venue


def doctor(settings: VenueSettings, *, symbol: str | None = None, timeout_s: float = 10.0,
           **conn_kw: Any) -> list[DoctorCheck]:
    """Connect and check, in plain words: server version, accounts (paper starts with D), the contract, market
    data entitlement (a tick-by-tick request answered by data or refused), trading permission (account summary)."""
    sym = symbol or settings.symbol or "ES"
    out: list[DoctorCheck] = []
    conn = IBConnection(settings, symbol=sym, connect_timeout_s=timeout_s, request_timeout_s=timeout_s,
                        client_id_tries=1, **conn_kw)
    where = f"{settings.host}:{settings.port} client id {settings.client_id}"
    try:
        conn.start()
    except (ConnectError, BrokerError, OSError) as exc:
        return [DoctorCheck("connect", False, f"{exc}")]
    try:
        out.append(DoctorCheck("connect", True, f"connected to {where}"))
        out.append(DoctorCheck("server version", conn.server_version >= 157,
                               f"TWS/Gateway server version {conn.server_version}"))
        accts = conn.accounts
        paper = all(a.startswith("D") for a in accts)
        ok = bool(accts) and (paper or settings.live)
        out.append(DoctorCheck("accounts", ok, (f"managed accounts {', '.join(a[:2] + '…' for a in accts)}: "
                                                + ("paper" if paper else "LIVE")) if accts else "no managed account"))
        out.append(DoctorCheck("contract", conn.contract is not None,
                               f"{sym} {conn.month} qualifies as {conn.contract.localSymbol} (con id "
                               f"{conn.contract.conId})"))
        out.append(_market_data(conn, sym, timeout_s))
        out.append(_trading(conn, timeout_s))
    finally:
        conn.close()
    return out


def _market_data(conn: IBConnection, sym: str, timeout_s: float) -> DoctorCheck:
    feed = IBFeed(sym)
    feed.contract = conn.contract.localSymbol
    conn.feed = feed
    conn.run(conn.subscribe, what="market data request")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if feed.error:
            return DoctorCheck("market data", False, feed.error)
        if feed.trades or feed.rule.bid == feed.rule.bid:
            return DoctorCheck("market data", True, f"tick-by-tick data for {sym} arrives")
        time.sleep(0.05)
    codes = [c for c in NO_DATA_CODES if conn.errors.get(c)]
    return DoctorCheck("market data", not codes, "no tick within "
                       f"{timeout_s:.0f} s (the market may be closed; no refusal from IB)")


def _trading(conn: IBConnection, timeout_s: float) -> DoctorCheck:
    async def summary() -> list:
        return await asyncio.wait_for(conn.ib.accountSummaryAsync(), timeout_s)

    try:
        vals = conn.call(summary(), timeout_s + 2, "account summary")
    except BrokerError as exc:
        return DoctorCheck("trading", False, f"no account summary: {exc}")
    bp = [float(v.value) for v in vals if v.tag == "BuyingPower" and v.value]
    if not bp:
        return DoctorCheck("trading", False, "the account summary has no buying power: trading permission unknown")
    return DoctorCheck("trading", bp[0] > 0, f"buying power {bp[0]:,.0f} USD" if bp[0] > 0 else
                       "buying power 0: the account cannot trade futures (check the trading permissions)")
