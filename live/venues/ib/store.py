"""The IB adapter's small SQLite book in the state dir (``STATE_DIR/ib_broker.sqlite``): the orders it sent (our
order id = IB ``orderRef``, the IB order id, purpose, the bracket's legs), every execution as a `Fill` with a
running ``seq`` (keyed by IB's execId, so an execution seen live and again in ``reqExecutions`` counts once), and
the order-id high-water mark (an order id is never used twice, even after a restart)."""

from __future__ import annotations

import json
import sqlite3
import threading
from dataclasses import dataclass
from pathlib import Path

from live.events import Fill

__all__ = ["STORE_FILE", "IBStore", "OrderRow"]

STORE_FILE = "ib_broker.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS fills (seq INTEGER PRIMARY KEY AUTOINCREMENT, exec_id TEXT UNIQUE NOT NULL,
  order_ref TEXT NOT NULL, symbol TEXT NOT NULL, side INTEGER NOT NULL, qty INTEGER NOT NULL, price REAL NOT NULL,
  ts_ns INTEGER NOT NULL, role TEXT NOT NULL, slippage INTEGER NOT NULL, extra TEXT NOT NULL,
  commission REAL);
CREATE TABLE IF NOT EXISTS orders (order_ref TEXT PRIMARY KEY, ib_id INTEGER NOT NULL, client_id INTEGER NOT NULL,
  purpose TEXT NOT NULL, side INTEGER NOT NULL, qty INTEGER NOT NULL, kind TEXT NOT NULL, price REAL,
  parent_ref TEXT, reason TEXT NOT NULL, bracket TEXT, ref_price REAL, decided_ns INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
"""


@dataclass(frozen=True, slots=True)
class OrderRow:
    """One IB order we sent: a market entry/exit/flatten, or a bracket leg (``parent_ref`` the entry's id)."""

    order_ref: str
    ib_id: int
    client_id: int
    purpose: str  # entry / exit / flatten / stop / target
    side: int
    qty: int
    kind: str  # MKT / STP / LMT
    price: float | None = None  # the leg's stop or limit price as last sent
    parent_ref: str | None = None
    reason: str = ""
    bracket: tuple[int, int] | None = None  # an entry's (stop_ticks, target_ticks)
    ref_price: float | None = None  # the last trade when sent (the legs' first prices are relative to it)
    decided_ns: int = 0


class IBStore:
    """Thread-safe (one lock) SQLite book; every write is its own committed transaction."""

    def __init__(self, path: str | Path | None):
        self.path = None if path is None else Path(path)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(":memory:" if path is None else str(path), check_same_thread=False,
                                   isolation_level=None, timeout=10.0)
        if path is not None:  # WAL + NORMAL: a commit survives a crash of the process (not of the OS) without an fsync
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)

    # ----- order ids
    def order_id_mark(self) -> int:
        """The highest IB order id ever used from this state dir (0: none)."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key='order_id_mark'").fetchone()
        return int(row[0]) if row else 0

    def raise_order_id_mark(self, oid: int) -> None:
        with self._lock:
            self._raise_mark(oid)

    def _raise_mark(self, oid: int) -> None:
        self._db.execute("INSERT INTO meta(key, value) VALUES('order_id_mark', ?) ON CONFLICT(key) DO UPDATE "
                         "SET value = MAX(CAST(value AS INTEGER), CAST(excluded.value AS INTEGER))", (str(oid),))

    # ----- orders
    def add_orders(self, rows: list[OrderRow]) -> None:
        """Record orders about to be sent and raise the order-id mark past them, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._raise_mark(max(r.ib_id for r in rows))
                for r in rows:
                    self._db.execute("INSERT OR REPLACE INTO orders VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)",
                                     (r.order_ref, r.ib_id, r.client_id, r.purpose, r.side, r.qty, r.kind, r.price,
                                      r.parent_ref, r.reason, json.dumps(r.bracket) if r.bracket else None,
                                      r.ref_price, r.decided_ns))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def set_price(self, order_ref: str, price: float) -> None:
        with self._lock:
            self._db.execute("UPDATE orders SET price=? WHERE order_ref=?", (price, order_ref))

    def order(self, order_ref: str) -> OrderRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE order_ref=?", (order_ref,)).fetchone()
        return _order(row) if row else None

    def by_ib_id(self, ib_id: int) -> OrderRow | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM orders WHERE ib_id=? ORDER BY rowid DESC", (ib_id,)).fetchone()
        return _order(row) if row else None

    def legs(self, parent_ref: str) -> list[OrderRow]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM orders WHERE parent_ref=? ORDER BY purpose", (parent_ref,)).fetchall()
        return [_order(r) for r in rows]

    def orders(self) -> list[OrderRow]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM orders ORDER BY rowid").fetchall()
        return [_order(r) for r in rows]

    # ----- fills
    def add_fill(self, exec_id: str, f: Fill) -> Fill | None:
        """Record an execution; None when ``exec_id`` is known already (never counted twice)."""
        with self._lock:
            cur = self._db.execute("INSERT OR IGNORE INTO fills(exec_id, order_ref, symbol, side, qty, price, ts_ns, "
                                   "role, slippage, extra) VALUES (?,?,?,?,?,?,?,?,?,?)",
                                   (exec_id, f.order_id, f.symbol, f.side, f.quantity, f.price, f.ts_ns, f.role,
                                    f.slippage_ticks, json.dumps(f.extra)))
            if cur.rowcount == 0:
                return None
            seq = cur.lastrowid
        return Fill(exec_id, f.order_id, f.symbol, f.side, f.quantity, f.price, f.ts_ns, f.role, f.slippage_ticks,
                    int(seq), dict(f.extra))

    def set_commission(self, exec_id: str, commission: float) -> None:
        with self._lock:
            self._db.execute("UPDATE fills SET commission=? WHERE exec_id=?", (commission, exec_id))

    def known_exec(self, exec_id: str) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1 FROM fills WHERE exec_id=?", (exec_id,)).fetchone() is not None

    def fills_since(self, seq: int) -> list[Fill]:
        """Fills with ``seq`` above ``seq``, in seq order (the order they were learnt)."""
        with self._lock:
            rows = self._db.execute("SELECT seq, exec_id, order_ref, symbol, side, qty, price, ts_ns, role, slippage, "
                                    "extra, commission FROM fills WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        out = []
        for s, ex, ref, sym, side, qty, px, ts, role, slip, extra, comm in rows:
            e = json.loads(extra)
            if comm is not None:
                e["commission"] = comm
            out.append(Fill(ex, ref, sym, side, qty, px, ts, role, slip, s, e))
        return out

    def last_seq(self) -> int:
        with self._lock:
            row = self._db.execute("SELECT MAX(seq) FROM fills").fetchone()
        return int(row[0] or 0)

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _order(r: tuple) -> OrderRow:
    return OrderRow(r[0], int(r[1]), int(r[2]), r[3], int(r[4]), int(r[5]), r[6], r[7], r[8], r[9],
                    tuple(json.loads(r[10])) if r[10] else None, r[11], int(r[12]))
