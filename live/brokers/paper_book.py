"""The paper broker's book: position, working orders, bracket, fills and the orders it has seen, in SQLite.

The book stands in for an external broker's records, so it outlives the trader: every change is
one ``BEGIN IMMEDIATE`` transaction (a ``kill -9`` leaves the last committed state, never half a
fill), WAL mode lets other processes read it, and SQLite's lock serialises writers (the trader and
``navale stop``). Each process keeps a cached copy and reloads it when ``PRAGMA data_version`` says
another connection committed. Prices are int64 ticks.
"""

from __future__ import annotations

import json
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from live.brokers.base import BrokerError
from live.events import Bracket, Fill, Order

__all__ = ["BookConfig", "WorkingBracket", "BookState", "PaperBook", "BOOK_FILE"]

BOOK_FILE = "paper_broker.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS orders (
    n INTEGER PRIMARY KEY,               -- submission order
    order_id TEXT NOT NULL UNIQUE,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, quantity INTEGER NOT NULL,
    purpose TEXT NOT NULL, reason TEXT NOT NULL,
    stop_ticks INTEGER, target_ticks INTEGER,
    decided_ns INTEGER NOT NULL, fill_at TEXT NOT NULL, session_day INTEGER NOT NULL,
    status TEXT NOT NULL,                -- pending | filled | cancelled
    note TEXT NOT NULL DEFAULT ''        -- why it was cancelled
);
CREATE TABLE IF NOT EXISTS position (
    symbol TEXT PRIMARY KEY, qty INTEGER NOT NULL, entry_ticks INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS bracket (      -- the working OCO pair (at most one row)
    parent_id TEXT PRIMARY KEY, pos_side INTEGER NOT NULL, qty INTEGER NOT NULL,
    stop_ticks INTEGER NOT NULL, target_ticks INTEGER NOT NULL, placed_ns INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS fills (
    seq INTEGER PRIMARY KEY, fill_id TEXT NOT NULL UNIQUE, order_id TEXT NOT NULL,
    symbol TEXT NOT NULL, side INTEGER NOT NULL, quantity INTEGER NOT NULL,
    price REAL NOT NULL, ts_ns INTEGER NOT NULL, role TEXT NOT NULL,
    slippage_ticks INTEGER NOT NULL, extra TEXT NOT NULL
);
"""

_CONFIG_KEYS = ("symbol", "tick_size", "mode", "slippage_ticks")
_MARKET_KEYS = ("last_close", "last_trade", "last_bar_ns", "last_tick_ns", "ticks_at_last")


@dataclass(frozen=True)
class BookConfig:
    """What the book was opened for; stored in it so another process can reopen it alone."""

    symbol: str
    tick_size: float
    mode: str
    slippage_ticks: int


@dataclass
class WorkingBracket:
    """The OCO stop/target of the open position (tick prices); ``placed_ns``: the bar or trade that placed it."""

    parent_id: str
    pos_side: int
    qty: int
    stop: int
    target: int
    placed_ns: int


@dataclass
class BookState:
    """The cached book. Market fields (last prices and times) are written only by the process feeding data."""

    qty: int = 0  # signed contracts
    entry_ticks: int = 0
    pending: list[Order] = field(default_factory=list)  # submission order
    bracket: WorkingBracket | None = None
    seq: int = 0  # last fill number
    last_close: int | None = None
    last_trade: int | None = None
    last_bar_ns: int = -1
    last_tick_ns: int = -1
    ticks_at_last: int = 0  # trades processed at ``last_tick_ns``


class PaperBook:
    """SQLite storage of one paper account (``path=None``: in memory, same code)."""

    def __init__(self, path: str | Path | None, config: BookConfig | None, lock_timeout_s: float = 30.0):
        self.path = None if path is None else Path(path)
        self._lock = threading.RLock()
        self.feeding = False  # True once this process feeds market data: its last prices are then the newest
        if self.path is not None:
            if config is None and not self.path.exists():
                raise BrokerError(f"{self.path}: no paper broker book there")
            self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(":memory:" if self.path is None else str(self.path),
                                       isolation_level=None, timeout=lock_timeout_s, check_same_thread=False)
            self._db.execute(f"PRAGMA busy_timeout = {int(lock_timeout_s * 1000)}")
            self.lock_timeout_s = lock_timeout_s
            if self.path is not None:
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = NORMAL")  # durable across a process kill
            have = self._stored_config()
            if have is not None and config in (None, have):
                self.config = have  # no write lock needed to reopen a book
            else:
                with self.transaction():
                    for stmt in _statements():
                        self._db.execute(stmt)
                    self.config = self._config(config)
        except sqlite3.DatabaseError as e:
            self._db.close()
            raise BrokerError(f"{self.path or ':memory:'}: not a usable paper broker book ({e})") from None
        self._version = self._data_version()
        self.state = BookState()
        self.reload(market=True)

    # ----- transactions and refresh
    def _data_version(self) -> int:
        return self._db.execute("PRAGMA data_version").fetchone()[0]

    def refresh(self) -> None:
        """Reload the cache if another connection committed since we last looked (the last prices too,
        unless this process is the one feeding them)."""
        with self._lock:
            v = self._data_version()
            if v != self._version:
                self._version = v
                self.reload(market=not self.feeding)

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic change: takes the write lock, refreshes the cache, commits or rolls back (and reloads).

        Threads of one process take turns; a call made while this thread is inside a change (a signal
        handler that interrupts one) is refused: let the handler set a flag the loop acts on.
        """
        with self._lock:
            if self._db.in_transaction:
                raise BrokerError("paper broker called again while it is changing its book (from a signal "
                                  "handler?): act on the signal from the loop")
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as e:
                raise BrokerError(f"{self.path}: the paper broker book stayed locked by another process for "
                                  f"{self.lock_timeout_s:g} s ({e})") from None
            try:
                if hasattr(self, "state"):
                    self.refresh()
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                if hasattr(self, "state"):
                    self.reload(market=True)
                raise
            if self.feeding:  # the market time this change happened at: a restart skips what came before
                self.save_market()
            self._db.execute("COMMIT")

    def _stored_config(self) -> BookConfig | None:
        try:
            rows = dict(self._db.execute("SELECT key, value FROM meta").fetchall())
        except sqlite3.OperationalError as e:
            if "no such table" in str(e):
                return None
            raise
        if not all(k in rows for k in _CONFIG_KEYS):
            return None
        return BookConfig(rows["symbol"], float(rows["tick_size"]), rows["mode"], int(rows["slippage_ticks"]))

    def _config(self, want: BookConfig | None) -> BookConfig:
        have = self._stored_config()
        if have is not None:
            if want is not None and want != have:
                raise BrokerError(f"{self.path}: the book was opened for {have}, not {want}")
            return have
        if want is None:
            raise BrokerError(f"{self.path}: the paper broker book has no configuration")
        for k in _CONFIG_KEYS:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (k, str(getattr(want, k))))
        return want

    def reload(self, *, market: bool) -> None:
        """Read the book into the cache (``market``: also the last prices, at open or after a rollback)."""
        db, s = self._db, self.state
        pos = db.execute("SELECT qty, entry_ticks FROM position WHERE symbol = ?", (self.config.symbol,)).fetchone()
        s.qty, s.entry_ticks = pos if pos else (0, 0)
        s.pending = [_order(r) for r in db.execute(
            "SELECT order_id, symbol, side, quantity, purpose, reason, stop_ticks, target_ticks, decided_ns, "
            "fill_at, session_day FROM orders WHERE status = 'pending' ORDER BY n")]
        b = db.execute("SELECT parent_id, pos_side, qty, stop_ticks, target_ticks, placed_ns FROM bracket").fetchone()
        s.bracket = WorkingBracket(*b) if b else None
        s.seq = db.execute("SELECT COALESCE(MAX(seq), 0) FROM fills").fetchone()[0]
        if market:
            row = db.execute("SELECT value FROM meta WHERE key = 'market'").fetchone()
            m = json.loads(row[0]) if row else {}
            s.last_close, s.last_trade = m.get("last_close"), m.get("last_trade")
            s.last_bar_ns, s.last_tick_ns = m.get("last_bar_ns", -1), m.get("last_tick_ns", -1)
            s.ticks_at_last = m.get("ticks_at_last", 0)

    # ----- writes (inside `transaction`)
    def known(self, order_id: str) -> bool:
        return self._db.execute("SELECT 1 FROM orders WHERE order_id = ?", (order_id,)).fetchone() is not None

    def add_order(self, o: Order, status: str = "pending") -> None:
        b = o.bracket
        self._db.execute(
            "INSERT INTO orders (order_id, symbol, side, quantity, purpose, reason, stop_ticks, target_ticks, "
            "decided_ns, fill_at, session_day, status) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
            (o.order_id, o.symbol, o.side, o.quantity, o.purpose, o.reason, b.stop_ticks if b else None,
             b.target_ticks if b else None, o.decided_ns, o.fill_at, o.session_day, status))
        if status == "pending":
            self.state.pending.append(o)

    def set_status(self, o: Order, status: str, note: str = "") -> None:
        self._db.execute("UPDATE orders SET status = ?, note = ? WHERE order_id = ?", (status, note, o.order_id))
        self.state.pending = [p for p in self.state.pending if p.order_id != o.order_id]

    def set_position(self, qty: int, entry_ticks: int) -> None:
        self._db.execute("INSERT OR REPLACE INTO position VALUES (?, ?, ?)", (self.config.symbol, qty, entry_ticks))
        self.state.qty, self.state.entry_ticks = qty, entry_ticks

    def set_bracket(self, b: WorkingBracket | None) -> None:
        self._db.execute("DELETE FROM bracket")
        if b is not None:
            self._db.execute("INSERT INTO bracket VALUES (?,?,?,?,?,?)",
                             (b.parent_id, b.pos_side, b.qty, b.stop, b.target, b.placed_ns))
        self.state.bracket = b

    def add_fill(self, order_id: str, side: int, qty: int, ticks: int, ts_ns: int, role: str, slip: int,
                 extra: dict) -> Fill:
        seq = self.state.seq + 1
        f = Fill(fill_id=f"{self.config.symbol}-paper-{seq}", order_id=order_id, symbol=self.config.symbol,
                 side=side, quantity=qty, price=self.price(ticks), ts_ns=ts_ns, role=role, slippage_ticks=slip,
                 seq=seq, extra=extra)
        self._db.execute("INSERT INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                         (seq, f.fill_id, order_id, f.symbol, side, qty, f.price, ts_ns, role, slip,
                          json.dumps(extra, sort_keys=True)))
        self.state.seq = seq
        return f

    def save_market(self) -> None:
        s = self.state
        m = {k: getattr(s, k) for k in _MARKET_KEYS}
        self._db.execute("INSERT OR REPLACE INTO meta VALUES ('market', ?)", (json.dumps(m),))

    # ----- reads
    def fills_since(self, seq: int) -> list[Fill]:
        with self._lock:
            rows = self._db.execute("SELECT * FROM fills WHERE seq > ? ORDER BY seq", (seq,)).fetchall()
        return [Fill(fill_id=r[1], order_id=r[2], symbol=r[3], side=r[4], quantity=r[5], price=r[6], ts_ns=r[7],
                     role=r[8], slippage_ticks=r[9], seq=r[0], extra=json.loads(r[10]))
                for r in rows]

    def orders(self) -> list[tuple[Order, str, str]]:
        """Every order ever submitted with its status and note, in submission order."""
        with self._lock:
            rows = self._db.execute(
                "SELECT order_id, symbol, side, quantity, purpose, reason, stop_ticks, target_ticks, decided_ns, "
                "fill_at, session_day, status, note FROM orders ORDER BY n").fetchall()
        return [(_order(r[:11]), r[11], r[12]) for r in rows]

    def price(self, ticks: int) -> float:
        return ticks * self.config.tick_size

    def close(self) -> None:
        self._db.close()


def _statements() -> list[str]:
    return [s.strip() for s in _SCHEMA.split(";") if s.strip()]


def _order(r: tuple) -> Order:
    br = Bracket(int(r[6]), int(r[7])) if r[6] is not None else None
    return Order(order_id=r[0], symbol=r[1], side=int(r[2]), quantity=int(r[3]), purpose=r[4], reason=r[5],
                 bracket=br, decided_ns=int(r[8]), fill_at=r[9], session_day=int(r[10]))
