"""The DTC broker's own small SQLite file (``STATE_DIR/dtc_broker.sqlite``): what must survive a restart.

- ``ids``: our order id <-> the ClientOrderID sent (ids longer than the protocol's 31 characters get a stable
  short hash, "H" + 30 hex digits of SHA-256);
- ``orders``: every order we were asked to send (bracket legs included), its status (held, sent, working,
  filled, cancelled, rejected, expired) and the server's ServerOrderID;
- ``brackets``: the OCO pair each bracketed entry needs (waiting for the entry's fill, sent, done);
- ``fills``: every fill counted, numbered by ``seq`` (1, 2, ...), keyed by ServerOrderID + execution id so a
  fill reported twice (an ORDER_UPDATE and later a HISTORICAL_ORDER_FILL_RESPONSE, or after a restart) is
  counted once.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import threading
from pathlib import Path

from live.brokers.base import BrokerError
from live.events import Bracket, Fill, Order
from live.venues.dtc.constants import ORDER_ID_LENGTH

__all__ = ["STORE_FILE", "DTCStore", "client_order_id"]

STORE_FILE = "dtc_broker.sqlite"
_MAX_ID = ORDER_ID_LENGTH - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS ids (order_id TEXT PRIMARY KEY, client_id TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS orders (
    n INTEGER PRIMARY KEY, order_id TEXT NOT NULL UNIQUE, body TEXT NOT NULL, status TEXT NOT NULL,
    server_id TEXT NOT NULL DEFAULT '', held_wall REAL NOT NULL DEFAULT 0, note TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS brackets (
    entry_id TEXT PRIMARY KEY, stop_ticks INTEGER NOT NULL, target_ticks INTEGER NOT NULL,
    status TEXT NOT NULL, stop_price REAL, target_price REAL);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY, fill_key TEXT NOT NULL UNIQUE, fill_id TEXT NOT NULL, order_id TEXT NOT NULL,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, quantity INTEGER NOT NULL, price REAL NOT NULL,
    ts_ns INTEGER NOT NULL, role TEXT NOT NULL, slippage_ticks INTEGER NOT NULL, extra TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS fills_order ON fills (order_id);
CREATE INDEX IF NOT EXISTS orders_server ON orders (server_id);
CREATE INDEX IF NOT EXISTS orders_status ON orders (status);
"""


def client_order_id(order_id: str) -> str:
    """The ClientOrderID for ``order_id``: itself when it fits (31 ASCII characters), else a stable short hash."""
    if len(order_id) <= _MAX_ID and order_id.isascii():
        return order_id
    return "H" + hashlib.sha256(order_id.encode()).hexdigest()[:_MAX_ID - 1]


def order_to_json(o: Order) -> str:
    b = o.bracket
    return json.dumps({"order_id": o.order_id, "symbol": o.symbol, "side": o.side, "quantity": o.quantity,
                       "purpose": o.purpose, "reason": o.reason, "decided_ns": o.decided_ns, "fill_at": o.fill_at,
                       "session_day": o.session_day, "bracket": [b.stop_ticks, b.target_ticks] if b else None})


def order_from_json(s: str) -> Order:
    d = json.loads(s)
    b = d.pop("bracket")
    return Order(**d, bracket=Bracket(*b) if b else None)


class DTCStore:
    """The SQLite file (``path=None``: in memory). Thread-safe: one lock around one connection."""

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        try:
            self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path), isolation_level=None,
                                       timeout=10.0, check_same_thread=False)
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")
            self._db.executescript(_SCHEMA)
        except sqlite3.DatabaseError as e:
            raise BrokerError(f"{self.path or ':memory:'}: not a usable DTC broker store ({e})") from None

    def _x(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # ----- ids
    def client_id(self, order_id: str) -> str:
        """The ClientOrderID of ``order_id`` (recorded, so a fill of it maps back after a restart)."""
        cid = client_order_id(order_id)
        with self._lock:
            row = self._db.execute("SELECT client_id FROM ids WHERE order_id = ?", (order_id,)).fetchone()
            if row:
                return row[0]
            self._db.execute("INSERT INTO ids VALUES (?, ?)", (order_id, cid))
        return cid

    def order_of_client(self, client_id: str) -> str | None:
        row = self._x("SELECT order_id FROM ids WHERE client_id = ?", (client_id,))
        return row[0][0] if row else None

    # ----- orders
    def add_order(self, o: Order, status: str, held_wall: float = 0.0) -> bool:
        """Record a new order; False when ``order_id`` is known already (idempotent submit)."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM orders WHERE order_id = ?", (o.order_id,)).fetchone():
                return False
            self._db.execute("INSERT INTO orders (order_id, body, status, held_wall) VALUES (?, ?, ?, ?)",
                             (o.order_id, order_to_json(o), status, held_wall))
            self.client_id(o.order_id)
        return True

    def known(self, order_id: str) -> bool:
        return bool(self._x("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)))

    def set_status(self, order_id: str, status: str, note: str = "", server_id: str | None = None) -> None:
        with self._lock:
            if server_id:
                self._db.execute("UPDATE orders SET server_id = ? WHERE order_id = ?", (server_id, order_id))
            self._db.execute("UPDATE orders SET status = ?, note = ? WHERE order_id = ?", (status, note, order_id))

    def set_server_id(self, order_id: str, server_id: str) -> None:
        self._x("UPDATE orders SET server_id = ? WHERE order_id = ?", (server_id, order_id))

    def orders(self, *statuses: str) -> list[tuple[Order, str, str, float]]:
        """``(order, status, server_id, held_wall)`` in submission order (all, or those with these statuses)."""
        q = "SELECT body, status, server_id, held_wall FROM orders"
        if statuses:
            q += f" WHERE status IN ({','.join('?' * len(statuses))})"
        return [(order_from_json(r[0]), r[1], r[2], r[3]) for r in self._x(q + " ORDER BY n", statuses)]

    def order(self, order_id: str) -> tuple[Order, str, str] | None:
        r = self._x("SELECT body, status, server_id FROM orders WHERE order_id = ?", (order_id,))
        return (order_from_json(r[0][0]), r[0][1], r[0][2]) if r else None

    def order_of_server(self, server_id: str) -> str | None:
        r = self._x("SELECT order_id FROM orders WHERE server_id = ?", (server_id,))
        return r[0][0] if r else None

    # ----- brackets
    def add_bracket(self, entry_id: str, b: Bracket) -> None:
        self._x("INSERT OR IGNORE INTO brackets (entry_id, stop_ticks, target_ticks, status) VALUES (?,?,?,?)",
                (entry_id, b.stop_ticks, b.target_ticks, "waiting"))

    def brackets(self, *statuses: str) -> list[tuple[str, int, int, str, float | None, float | None]]:
        q = "SELECT entry_id, stop_ticks, target_ticks, status, stop_price, target_price FROM brackets"
        if statuses:
            q += f" WHERE status IN ({','.join('?' * len(statuses))})"
        return self._x(q, statuses)

    def set_bracket(self, entry_id: str, status: str, stop: float | None = None, target: float | None = None) -> None:
        with self._lock:
            self._db.execute("UPDATE brackets SET status = ? WHERE entry_id = ?", (status, entry_id))
            if stop is not None:
                self._db.execute("UPDATE brackets SET stop_price = ?, target_price = ? WHERE entry_id = ?",
                                 (stop, target, entry_id))

    # ----- fills
    def add_fill(self, key: str, order_id: str, symbol: str, side: int, qty: int, price: float, ts_ns: int,
                 role: str, extra: dict, slippage_ticks: int = 0) -> Fill | None:
        """Count a fill once: the new Fill (with the next seq), or None when ``key`` was counted already."""
        with self._lock:
            if self._db.execute("SELECT 1 FROM fills WHERE fill_key = ?", (key,)).fetchone():
                return None
            seq = self._db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills").fetchone()[0] + 1
            f = Fill(fill_id=f"dtc-{key}", order_id=order_id, symbol=symbol, side=side, quantity=qty, price=price,
                     ts_ns=ts_ns, role=role, slippage_ticks=slippage_ticks, seq=seq, extra=extra)
            self._db.execute("INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                             (seq, key, f.fill_id, order_id, symbol, side, qty, price, ts_ns, role, slippage_ticks,
                              json.dumps(extra, sort_keys=True)))
        return f

    def fills_since(self, seq: int) -> list[Fill]:
        rows = self._x("SELECT seq, fill_id, order_id, symbol, side, quantity, price, ts_ns, role, slippage_ticks, "
                       "extra FROM fills WHERE seq > ? ORDER BY seq", (seq,))
        return [Fill(fill_id=r[1], order_id=r[2], symbol=r[3], side=r[4], quantity=r[5], price=r[6], ts_ns=r[7],
                     role=r[8], slippage_ticks=r[9], seq=r[0], extra=json.loads(r[10])) for r in rows]

    def filled_qty(self, order_id: str) -> int:
        return int(self._x("SELECT COALESCE(SUM(quantity), 0) FROM fills WHERE order_id = ?", (order_id,))[0][0])

    def last_fill(self, order_id: str) -> Fill | None:
        r = self._x("SELECT MAX(seq) FROM fills WHERE order_id = ?", (order_id,))
        if not r or r[0][0] is None:
            return None
        return self.fills_since(r[0][0] - 1)[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()
