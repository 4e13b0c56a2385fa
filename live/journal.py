"""The trader's journal: orders, fills, positions, risk events, heartbeats, closed trades and the
engine state, in one SQLite file in WAL mode (``STATE_DIR/journal.sqlite``).

One process writes (the trader; ``navale stop`` adds a few rows); any number of processes read at the
same time (``navale status``, a collector, a dashboard) without a lock error: WAL readers see the last
committed transaction and never block the writer. Writers wait for each other up to ``busy_timeout``.
A trade is the snapshot record of the backtests (:mod:`research.store.snapshots`), stored validated.
docs/journal.md has the tables, the durability and the readers' rules.

Times: ``ts_ns`` is the market time (the bar's or the fill's, int64 UTC ns) the trader reasons with;
``wall_ns`` is the wall clock when the row was written (what ``navale stop`` waits on).
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from live.events import Fill, Order

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["SCHEMA_VERSION", "Journal", "JournalError", "TraderStatus", "STATUS_KEYS", "RISK_LEVELS",
           "trading_date"]

SCHEMA_VERSION = 1
APPLICATION = "navale-journal"
RISK_LEVELS = ("info", "warning", "critical")
BUSY_TIMEOUT_MS = 5_000
HEARTBEATS_KEPT = 10_000  # older heartbeats are pruned as new ones come
_CT = ZoneInfo("America/Chicago")


class JournalError(RuntimeError):
    """The journal cannot be opened or written (one line: the file and the cause)."""


@dataclass
class TraderStatus:
    """What the trader reports in every heartbeat (``Journal.heartbeat``); ``navale status`` shows it.

    Times are int64 UTC ns; money in USD; ``position`` signed contracts.
    """

    mode: str = ""  # paper | data_collection
    symbol: str = ""
    bar_ts_ns: int | None = None  # start of the last closed bar
    position: int = 0
    entry_price: float | None = None  # of the open position
    bracket: dict[str, float | None] | None = None  # the open position's stop and target prices (None: flat)
    pnl_today_usd: float = 0.0  # closed trades of the current trading date, net
    pnl_open_usd: float = 0.0  # the open position marked at the last price
    trades_today: int = 0
    kill_switches: dict[str, bool | str] = field(default_factory=dict)  # name -> tripped (False) or why (str/True)
    feed: dict[str, Any] = field(default_factory=dict)  # kind, last_record_age_s, records, events
    halted: str | None = None  # the halt reason, or None
    unvalidated: bool = False  # the configuration did not pass `navale promote`
    pid: int = 0
    wall_ns: int = 0  # wall clock of the heartbeat

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


STATUS_KEYS: tuple[str, ...] = tuple(f.name for f in fields(TraderStatus))

# Shadow trades: signals the signal-quality filter skipped, followed as if taken (live.quality_filter); the
# same records as `trades`, kept apart so that everything reading `trades` (status, P&L, equity) sees real
# trades only. Added to a journal that lacks it when opened for writing (a compatible addition).
_SHADOW_DDL = """CREATE TABLE IF NOT EXISTS shadow_trades (
        run_id TEXT NOT NULL, trade_id TEXT NOT NULL, mode TEXT NOT NULL, symbol TEXT NOT NULL,
        side INTEGER NOT NULL, entry_ts_ns INTEGER NOT NULL, exit_ts_ns INTEGER NOT NULL,
        exit_reason TEXT NOT NULL, pnl_usd REAL NOT NULL, wall_ns INTEGER NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (run_id, trade_id))"""

# Alert history (live.alerts): what fired, when, its value, whether and when it was delivered, when and by whom
# it was acknowledged; ``repeats`` counts the same kind again inside its cooldown (not notified). Added to a
# journal that lacks it when opened for writing (a compatible addition, as ``shadow_trades``).
_ALERTS_DDL = """CREATE TABLE IF NOT EXISTS alerts (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, severity TEXT NOT NULL, value REAL, threshold REAL,
        detail TEXT NOT NULL, ts_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, dedup_key TEXT,
        repeats INTEGER NOT NULL DEFAULT 0, delivered INTEGER NOT NULL DEFAULT 0, delivery_error TEXT,
        delivered_ns INTEGER, attempts INTEGER NOT NULL DEFAULT 0, acked_ns INTEGER, ack_by TEXT)"""
_ALERT_KEYS = ("id", "kind", "severity", "value", "threshold", "detail", "ts_ns", "wall_ns", "dedup_key", "repeats",
               "delivered", "delivery_error", "delivered_ns", "attempts", "acked_ns", "ack_by")

_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS orders (
        id INTEGER PRIMARY KEY, order_id TEXT NOT NULL, status TEXT NOT NULL, ts_ns INTEGER NOT NULL,
        wall_ns INTEGER NOT NULL, symbol TEXT NOT NULL, side INTEGER NOT NULL, quantity INTEGER NOT NULL,
        purpose TEXT NOT NULL, reason TEXT NOT NULL, stop_ticks INTEGER, target_ticks INTEGER,
        decided_ns INTEGER NOT NULL, fill_at TEXT NOT NULL, session_day INTEGER NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS orders_order_id ON orders (order_id)",
    """CREATE TABLE IF NOT EXISTS fills (
        fill_id TEXT PRIMARY KEY, order_id TEXT NOT NULL, symbol TEXT NOT NULL, side INTEGER NOT NULL,
        quantity INTEGER NOT NULL, price REAL NOT NULL, ts_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL,
        role TEXT NOT NULL, slippage_ticks INTEGER NOT NULL, seq INTEGER NOT NULL, extra TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS positions (
        id INTEGER PRIMARY KEY, symbol TEXT NOT NULL, qty INTEGER NOT NULL, ts_ns INTEGER NOT NULL,
        wall_ns INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS risk_events (
        id INTEGER PRIMARY KEY, kind TEXT NOT NULL, level TEXT NOT NULL, detail TEXT NOT NULL,
        ts_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS heartbeats (
        id INTEGER PRIMARY KEY, ts_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL, status TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS trades (
        run_id TEXT NOT NULL, trade_id TEXT NOT NULL, mode TEXT NOT NULL, symbol TEXT NOT NULL,
        side INTEGER NOT NULL, entry_ts_ns INTEGER NOT NULL, exit_ts_ns INTEGER NOT NULL,
        exit_reason TEXT NOT NULL, pnl_usd REAL NOT NULL, wall_ns INTEGER NOT NULL, record TEXT NOT NULL,
        PRIMARY KEY (run_id, trade_id))""",
    "CREATE INDEX IF NOT EXISTS trades_exit ON trades (exit_ts_ns)",
    _SHADOW_DDL,
    _ALERTS_DDL,
    "CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts (dedup_key)",
    """CREATE TABLE IF NOT EXISTS state (
        key TEXT PRIMARY KEY, value BLOB NOT NULL, bar_ns INTEGER NOT NULL, wall_ns INTEGER NOT NULL)""",
)
_TABLES = ("orders", "fills", "positions", "risk_events", "heartbeats", "trades", "state")


def trading_date(ts_ns: int) -> str:
    """The CME trading date (``YYYY-MM-DD``) of a UTC ns time: from 17:00 CT on, the next day's."""
    ct = datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).astimezone(_CT)
    return (ct.replace(tzinfo=None) + timedelta(hours=7)).date().isoformat()


def _date_start_ns(date: str) -> int:
    """UTC ns of 17:00 CT on the calendar day before trading date ``date`` (where that date begins)."""
    day = datetime.fromisoformat(date) - timedelta(days=1)
    return int(day.replace(hour=17, tzinfo=_CT).timestamp()) * 1_000_000_000


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


class Journal:
    """The journal file at ``path``; ``readonly=True`` for the readers (a missing file is an error then).

    Writes outside :meth:`batch` commit one by one; inside it, all at its end (or none, on an error).
    ``sync="full"`` fsyncs the WAL at every commit (survives an OS crash; costs a disk flush per commit);
    the default ``"normal"`` survives a killed process. One object may be shared by threads.
    """

    def __init__(self, path: str | Path, *, readonly: bool = False, sync: Literal["normal", "full"] = "normal",
                 busy_timeout_ms: int = BUSY_TIMEOUT_MS) -> None:
        self.path = Path(path)
        self.readonly = readonly
        if sync not in ("normal", "full"):
            raise ValueError(f"sync must be 'normal' or 'full', not {sync!r}")
        self._lock = threading.RLock()
        self._depth = 0
        self._con: sqlite3.Connection | None = None
        if readonly and not self.path.is_file():
            raise JournalError(f"no journal at {self.path} (no trader has run with this state dir)")
        if not readonly:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise JournalError(f"cannot create the folder of the journal {self.path}: "
                                   f"{exc.strerror or _one_line(exc)}") from None
        try:
            uri = f"{self.path.resolve().as_uri()}?mode={'ro' if readonly else 'rwc'}"
            if readonly and not os.access(self.path.parent, os.W_OK):
                # a read-only folder (a mounted backup, a restore drill): SQLite cannot create the WAL index
                # there, so the file is read as immutable (nobody can be writing it)
                uri += "&immutable=1"
            self._con = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False,
                                        timeout=busy_timeout_ms / 1000)
            self._con.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
            if not readonly:
                mode = self._con.execute("PRAGMA journal_mode = WAL").fetchone()[0]
                if str(mode).lower() != "wal":
                    raise JournalError(f"{self.path}: SQLite refused WAL mode (journal_mode {mode}); "
                                       "is the folder on a network file system?")
                self._con.execute(f"PRAGMA synchronous = {sync.upper()}")
            self._init_schema()
        except sqlite3.OperationalError as exc:  # locked past the timeout, no access, disk I/O
            self.close()
            raise JournalError(f"cannot open the journal {self.path}: {_one_line(exc)}") from None
        except sqlite3.DatabaseError as exc:
            self.close()
            raise JournalError(f"{self.path} is not a navale journal ({_one_line(exc)})") from None
        except BaseException:
            self.close()
            raise

    # -- lifecycle

    def _init_schema(self) -> None:
        con = self._conn
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables and not self.readonly:
            with self._write():
                for ddl in _DDL:
                    con.execute(ddl)
                con.executemany("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                                [("application", APPLICATION), ("schema_version", str(SCHEMA_VERSION)),
                                 ("created_ns", str(time.time_ns()))])
            self._has_shadow = self._has_alerts = True
            return
        if not tables:
            raise JournalError(f"{self.path} is an empty journal (a trader creating it right now? try again)")
        if "meta" not in tables:
            raise JournalError(f"{self.path} is not a navale journal (an SQLite file without its meta table)")
        meta = dict(con.execute("SELECT key, value FROM meta").fetchall())
        if meta.get("application") != APPLICATION:
            raise JournalError(f"{self.path} is not a navale journal (application {meta.get('application')!r})")
        try:
            version = int(meta.get("schema_version", ""))
        except ValueError:
            raise JournalError(f"{self.path}: unreadable journal schema version {meta.get('schema_version')!r}") from None
        if version > SCHEMA_VERSION:
            raise JournalError(f"{self.path} has journal schema version {version}, newer than this code's "
                               f"{SCHEMA_VERSION}: update navale, or use another state dir")
        if version < SCHEMA_VERSION:
            raise JournalError(f"{self.path} has journal schema version {version}; this code reads version "
                               f"{SCHEMA_VERSION} and has no migration for it")
        missing = [t for t in _TABLES if t not in tables]
        if missing:
            raise JournalError(f"{self.path}: damaged journal, table(s) missing: {', '.join(missing)}")
        self._has_shadow = "shadow_trades" in tables
        if not self._has_shadow and not self.readonly:
            with self._write():
                con.execute(_SHADOW_DDL)
            self._has_shadow = True
        self._has_alerts = "alerts" in tables
        if not self._has_alerts and not self.readonly:
            with self._write():
                con.execute(_ALERTS_DDL)
                con.execute("CREATE INDEX IF NOT EXISTS alerts_dedup ON alerts (dedup_key)")
            self._has_alerts = True

    @property
    def _conn(self) -> sqlite3.Connection:
        if self._con is None:
            raise JournalError(f"journal {self.path} is closed")
        return self._con

    def close(self) -> None:
        """Close the file (idempotent)."""
        con, self._con = self._con, None
        if con is not None:
            con.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Journal({str(self.path)!r}, readonly={self.readonly})"

    # -- transactions

    @contextlib.contextmanager
    def batch(self) -> Iterator[Journal]:
        """Group the writes inside in one transaction: all committed at the end, none on an error.
        Nested batches join the outermost one."""
        with self._write():
            yield self

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self.readonly:
            raise JournalError(f"journal {self.path} is open read-only")
        with self._lock:
            con = self._conn
            outer = self._depth == 0
            if outer:
                try:
                    con.execute("BEGIN IMMEDIATE")  # take the write lock now: no deadlock with another writer
                except sqlite3.OperationalError as exc:
                    raise JournalError(f"cannot write the journal {self.path}: {_one_line(exc)}") from None
            self._depth += 1
            try:
                yield con
            except BaseException:
                self._depth -= 1
                if outer:
                    con.execute("ROLLBACK")
                raise
            self._depth -= 1
            if outer:
                try:
                    con.execute("COMMIT")
                except sqlite3.Error as exc:
                    with contextlib.suppress(sqlite3.Error):
                        con.execute("ROLLBACK")
                    raise JournalError(f"cannot write the journal {self.path}: {_one_line(exc)}") from None

    # -- writing

    def record_order(self, order: Order, ts_ns: int, status: str) -> None:
        """One event of an order's life (``submitted``, ``accepted``, ``filled``, ``cancelled``, ``rejected``...)."""
        b = order.bracket
        with self._write() as con:
            con.execute(
                "INSERT INTO orders (order_id, status, ts_ns, wall_ns, symbol, side, quantity, purpose, reason, "
                "stop_ticks, target_ticks, decided_ns, fill_at, session_day) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                (order.order_id, status, int(ts_ns), time.time_ns(), order.symbol, int(order.side),
                 int(order.quantity), order.purpose, order.reason, None if b is None else int(b.stop_ticks),
                 None if b is None else int(b.target_ticks), int(order.decided_ns), order.fill_at,
                 int(order.session_day)))

    def record_fill(self, fill: Fill) -> bool:
        """A broker fill; True if new (a fill already journaled, by ``fill_id``, is left as it is)."""
        with self._write() as con:
            cur = con.execute(
                "INSERT OR IGNORE INTO fills VALUES (?,?,?,?,?,?,?,?,?,?,?,?)",
                (fill.fill_id, fill.order_id, fill.symbol, int(fill.side), int(fill.quantity), float(fill.price),
                 int(fill.ts_ns), time.time_ns(), fill.role, int(fill.slippage_ticks), int(fill.seq),
                 json.dumps(fill.extra, default=str)))
            return cur.rowcount == 1

    def record_position(self, symbol: str, qty: int, ts_ns: int) -> None:
        """The position held in ``symbol`` from ``ts_ns`` on (signed contracts)."""
        with self._write() as con:
            con.execute("INSERT INTO positions (symbol, qty, ts_ns, wall_ns) VALUES (?,?,?,?)",
                        (symbol, int(qty), int(ts_ns), time.time_ns()))

    def record_risk_event(self, kind: str, detail: str, ts_ns: int, level: str = "warning") -> int:
        """A kill switch, a limit, a halt, a reconciliation result...; returns the event's id."""
        if level not in RISK_LEVELS:
            raise ValueError(f"risk event level must be one of {'|'.join(RISK_LEVELS)}, not {level!r}")
        with self._write() as con:
            cur = con.execute("INSERT INTO risk_events (kind, level, detail, ts_ns, wall_ns) VALUES (?,?,?,?,?)",
                              (kind, level, detail, int(ts_ns), time.time_ns()))
            return int(cur.lastrowid)

    def heartbeat(self, ts_ns: int, status: TraderStatus | Mapping[str, Any]) -> None:
        """The trader's status now (a :class:`TraderStatus` or a dict with its keys; ``wall_ns`` filled in
        when 0 or missing). Only the last :data:`HEARTBEATS_KEPT` heartbeats are kept."""
        doc = status.to_dict() if isinstance(status, TraderStatus) else dict(status)
        wall = time.time_ns()
        if not doc.get("wall_ns"):
            doc["wall_ns"] = wall
        text = json.dumps(doc, default=_json_default, allow_nan=False)
        with self._write() as con:
            cur = con.execute("INSERT INTO heartbeats (ts_ns, wall_ns, status) VALUES (?,?,?)", (int(ts_ns), wall, text))
            if cur.lastrowid % 1000 == 0:
                con.execute("DELETE FROM heartbeats WHERE id <= ?", (cur.lastrowid - HEARTBEATS_KEPT,))

    def record_trade(self, row: Mapping[str, Any]) -> bool:
        """One closed trade as a trade-snapshot record (validated by ``research.store.snapshots.validate``;
        columns beyond the schema are dropped). True if new; a trade already journaled under the same
        ``(run_id, trade_id)`` is replaced. Raises ``SnapshotError`` naming the field of a bad record."""
        return self.record_trades([row]) == 1

    def record_trades(self, rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> int:
        """Several closed trades at once (one validation, one transaction: validating costs about the
        same for one row as for many); returns how many were new."""
        return self._insert_trades(rows, "trades")

    def record_shadow_trades(self, rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> int:
        """Closed shadow trades (``shadow`` True: skipped by the quality filter, followed as if taken) into
        the ``shadow_trades`` table, never ``trades``; returns how many were new."""
        return self._insert_trades(rows, "shadow_trades")

    def _insert_trades(self, rows: Iterable[Mapping[str, Any]] | pd.DataFrame, table: str) -> int:
        import pandas as pd

        from research.store import snapshots as snap

        frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame([dict(r) for r in rows])
        if frame.empty:
            return 0
        valid = snap.validate(frame, extra="drop")
        wall, new = time.time_ns(), 0
        with self._write() as con:
            for i, record in enumerate(_records_json(valid)):
                r = valid.iloc[i]
                key = (r["run_id"], r["trade_id"])
                new += con.execute(f"SELECT 1 FROM {table} WHERE run_id = ? AND trade_id = ?", key).fetchone() is None
                con.execute(
                    f"INSERT OR REPLACE INTO {table} VALUES (?,?,?,?,?,?,?,?,?,?,?)",
                    (*key, r["mode"], r["symbol"], int(r["side"]), int(r["entry_ts"].value), int(r["exit_ts"].value),
                     r["exit_reason"], float(r["pnl_usd"]), wall, record))
        return new

    def save_state(self, blobs: Mapping[str, bytes], bar_ns: int) -> None:
        """Replace the saved state with ``blobs`` (key -> bytes), as of the bar ``bar_ns``."""
        wall = time.time_ns()
        with self._write() as con:
            con.execute("DELETE FROM state")
            con.executemany("INSERT INTO state VALUES (?,?,?,?)",
                            [(str(k), sqlite3.Binary(bytes(v)), int(bar_ns), wall) for k, v in blobs.items()])

    def record_alert(self, kind: str, severity: str, value: float | None, threshold: float | None, detail: str,
                     ts_ns: int, dedup_key: str | None = None) -> int:
        """One alert that fired (not yet delivered); returns its id."""
        if severity not in RISK_LEVELS:
            raise ValueError(f"alert severity must be one of {'|'.join(RISK_LEVELS)}, not {severity!r}")
        with self._write() as con:
            cur = con.execute("INSERT INTO alerts (kind, severity, value, threshold, detail, ts_ns, wall_ns, dedup_key) "
                              "VALUES (?,?,?,?,?,?,?,?)",
                              (kind, severity, _real(value), _real(threshold), detail, int(ts_ns), time.time_ns(),
                               dedup_key))
            return int(cur.lastrowid)

    def count_alert_repeat(self, alert_id: int) -> None:
        """The alert ``alert_id``'s kind fired again inside its cooldown (not notified)."""
        with self._write() as con:
            con.execute("UPDATE alerts SET repeats = repeats + 1 WHERE id = ?", (int(alert_id),))

    def record_alert_delivery(self, alert_id: int, delivered: bool, error: str | None, attempts: int,
                              delivered_ns: int | None = None) -> None:
        """The outcome of notifying alert ``alert_id`` so far (``error`` None when delivered)."""
        with self._write() as con:
            con.execute("UPDATE alerts SET delivered = ?, delivery_error = ?, attempts = ?, delivered_ns = ? "
                        "WHERE id = ?", (int(bool(delivered)), error, int(attempts),
                                         None if delivered_ns is None else int(delivered_ns), int(alert_id)))

    def ack_alert(self, alert_id: int, by: str, ts_ns: int | None = None) -> dict[str, Any] | None:
        """Acknowledge alert ``alert_id`` (kept as it was when already acknowledged); the alert after it,
        or None when there is no such alert."""
        with self._write() as con:
            con.execute("UPDATE alerts SET acked_ns = ?, ack_by = ? WHERE id = ? AND acked_ns IS NULL",
                        (time.time_ns() if ts_ns is None else int(ts_ns), by, int(alert_id)))
            return self.alert(alert_id)

    def alert(self, alert_id: int) -> dict[str, Any] | None:
        """One alert of the history, or None."""
        if not self._has_alerts:
            return None
        with self._read() as con:
            row = con.execute(f"SELECT {', '.join(_ALERT_KEYS)} FROM alerts WHERE id = ?", (int(alert_id),)).fetchone()
        return None if row is None else _alert_row(row)

    def alerts(self, since_ns: int | None = None, *, kind: str | None = None, dedup_key: str | None = None,
               limit: int | None = None) -> list[dict[str, Any]]:
        """The alert history oldest first: fired at ``wall_ns >= since_ns``, of ``kind``, with ``dedup_key``,
        the last ``limit``. Empty for a journal written before the table existed (opened read-only)."""
        if not self._has_alerts:
            return []
        sql, args = f"SELECT {', '.join(_ALERT_KEYS)} FROM alerts WHERE 1=1", []
        for col, v in (("wall_ns >=", since_ns), ("kind =", kind), ("dedup_key =", dedup_key)):
            if v is not None:
                sql, args = sql + f" AND {col} ?", [*args, v]
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, int(limit)]
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        return [_alert_row(r) for r in reversed(rows)]

    # -- reading

    def load_state(self) -> tuple[dict[str, bytes], int] | None:
        """The saved state and the bar it is as of, or None if nothing was saved."""
        with self._read() as con:
            rows = con.execute("SELECT key, value, bar_ns FROM state ORDER BY key").fetchall()
        if not rows:
            return None
        return {k: bytes(v) for k, v, _ in rows}, int(rows[0][2])

    def counts(self) -> dict[str, int]:
        """Rows per table (one consistent snapshot)."""
        with self._read() as con:
            return {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in _TABLES}

    def trades(self, run_id: str | None = None) -> pd.DataFrame:
        """The closed (real) trades (of one run, or all) as validated trade-snapshot records, by entry time."""
        return self._read_trades("trades", run_id)

    def shadow_trades(self, run_id: str | None = None) -> pd.DataFrame:
        """The closed shadow trades (of one run, or all), as :meth:`trades`."""
        return self._read_trades("shadow_trades" if self._has_shadow else None, run_id)

    def _read_trades(self, table: str | None, run_id: str | None) -> pd.DataFrame:
        import pandas as pd

        from research.store import snapshots as snap

        sql, args = f"SELECT record FROM {table}", ()
        if run_id is not None:
            sql, args = sql + " WHERE run_id = ?", (run_id,)
        records = []
        if table is not None:
            with self._read() as con:
                # a record journaled before snapshot schema v2 has no filter fields: their defaults
                records = [{**snap.FILTER_DEFAULTS, **json.loads(r[0])}
                           for r in con.execute(sql + " ORDER BY entry_ts_ns, trade_id", args)]
        frame = pd.DataFrame(records, columns=list(snap.names()))
        for f in snap.FIELDS:
            if f.dtype == "timestamp":
                frame[f.name] = pd.to_datetime(frame[f.name].astype("Int64"), unit="ns", utc=True)
        return snap.validate(frame)

    def trade_pnls(self) -> list[tuple[int, float]]:
        """``(exit_ts_ns, pnl_usd)`` of every closed (real) trade by exit time, without pandas."""
        with self._read() as con:
            return [(int(t), float(p)) for t, p in
                    con.execute("SELECT exit_ts_ns, pnl_usd FROM trades ORDER BY exit_ts_ns, trade_id")]

    def orders(self) -> pd.DataFrame:
        """Every order event, oldest first."""
        return self._frame("SELECT * FROM orders ORDER BY id")

    def fills(self) -> pd.DataFrame:
        """Every fill, in the broker's order (``seq``), ``extra`` as a dict."""
        df = self._frame("SELECT * FROM fills ORDER BY seq, ts_ns, fill_id")
        df["extra"] = [json.loads(x) for x in df["extra"]]
        return df

    def positions(self) -> dict[str, int]:
        """The last journaled position per symbol."""
        with self._read() as con:
            rows = con.execute("SELECT symbol, qty FROM positions "
                               "WHERE id IN (SELECT max(id) FROM positions GROUP BY symbol)").fetchall()
        return {s: int(q) for s, q in rows}

    def risk_events(self, since_ns: int | None = None, *, after_id: int | None = None,
                    limit: int | None = None) -> list[dict[str, Any]]:
        """Risk events oldest first: with ``ts_ns >= since_ns``, ``id > after_id``, the last ``limit``."""
        sql, args = "SELECT id, kind, level, detail, ts_ns, wall_ns FROM risk_events WHERE 1=1", []
        if since_ns is not None:
            sql, args = sql + " AND ts_ns >= ?", [*args, int(since_ns)]
        if after_id is not None:
            sql, args = sql + " AND id > ?", [*args, int(after_id)]
        sql += " ORDER BY id DESC"
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, int(limit)]
        keys = ("id", "kind", "level", "detail", "ts_ns", "wall_ns")
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        return [dict(zip(keys, r)) for r in reversed(rows)]

    def last_risk_event_id(self) -> int:
        """The id of the newest risk event (0 when none)."""
        with self._read() as con:
            return int(con.execute("SELECT coalesce(max(id), 0) FROM risk_events").fetchone()[0])

    def last_heartbeat(self) -> dict[str, Any] | None:
        """The newest heartbeat: ``ts_ns``, ``wall_ns`` and its ``status`` dict."""
        with self._read() as con:
            row = con.execute("SELECT ts_ns, wall_ns, status FROM heartbeats ORDER BY id DESC LIMIT 1").fetchone()
        return None if row is None else {"ts_ns": row[0], "wall_ns": row[1], "status": json.loads(row[2])}

    def heartbeats(self, *, after_id: int = 0, limit: int | None = None) -> list[dict[str, Any]]:
        """The kept heartbeats with ``id > after_id``, oldest first (the first ``limit``): ``id``, ``ts_ns``,
        ``wall_ns`` and the ``status`` dict."""
        sql, args = "SELECT id, ts_ns, wall_ns, status FROM heartbeats WHERE id > ? ORDER BY id", [int(after_id)]
        if limit is not None:
            sql, args = sql + " LIMIT ?", [*args, int(limit)]
        with self._read() as con:
            rows = con.execute(sql, args).fetchall()
        return [{"id": r[0], "ts_ns": r[1], "wall_ns": r[2], "status": json.loads(r[3])} for r in rows]

    def status(self, *, events: int = 5) -> dict[str, Any]:
        """The trader's state as the journal knows it (one consistent snapshot): the last heartbeat's
        :class:`TraderStatus` keys (None when none was written), plus ``heartbeat_age_s``, ``positions``
        (last journaled per symbol), ``trading_date``, ``trades_today``/``pnl_today_usd`` from the journaled
        trades of the trading date of the last bar (when there is no heartbeat), ``trades_total``,
        ``pnl_total_usd``, ``last_trade`` and the last ``events`` risk events."""
        with self._read() as con:
            hb = self.last_heartbeat()
            out: dict[str, Any] = dict.fromkeys(STATUS_KEYS)
            out["kill_switches"], out["feed"] = {}, {}
            if hb is not None:
                out.update(hb["status"])
                out["bar_ts_ns"] = out.get("bar_ts_ns") if out.get("bar_ts_ns") is not None else hb["ts_ns"]
            out["heartbeat_age_s"] = None if hb is None else max(0.0, (time.time_ns() - hb["wall_ns"]) / 1e9)
            out["positions"] = self.positions()
            n, total = con.execute("SELECT count(*), coalesce(sum(pnl_usd), 0) FROM trades").fetchone()
            out["trades_total"], out["pnl_total_usd"] = int(n), float(total)
            last = con.execute("SELECT trade_id, side, entry_ts_ns, exit_ts_ns, exit_reason, pnl_usd FROM trades "
                               "ORDER BY exit_ts_ns DESC, trade_id DESC LIMIT 1").fetchone()
            out["last_trade"] = None if last is None else dict(
                zip(("trade_id", "side", "entry_ts_ns", "exit_ts_ns", "exit_reason", "pnl_usd"), last))
            ref = out["bar_ts_ns"] if out["bar_ts_ns"] is not None else (None if last is None else last[3])
            out["trading_date"] = None if ref is None else trading_date(int(ref))
            if hb is None and ref is not None:
                start = _date_start_ns(out["trading_date"])
                k, pnl = con.execute("SELECT count(*), coalesce(sum(pnl_usd), 0) FROM trades WHERE exit_ts_ns > ?",
                                     (start,)).fetchone()
                out["trades_today"], out["pnl_today_usd"] = int(k), float(pnl)
            if out["position"] is None:
                out["position"] = sum(out["positions"].values())
            out["risk_events"] = self.risk_events(limit=events)
            out["counts"] = {t: int(con.execute(f"SELECT count(*) FROM {t}").fetchone()[0]) for t in _TABLES}
            return out

    @contextlib.contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        """Several reads in one snapshot (a read transaction; in a write batch, that batch's view)."""
        with self._lock:
            con = self._conn
            if self._depth or con.in_transaction:
                yield con
                return
            con.execute("BEGIN DEFERRED")
            try:
                yield con
            finally:
                con.execute("COMMIT")

    def _frame(self, sql: str) -> pd.DataFrame:
        import pandas as pd

        with self._read() as con:
            cur = con.execute(sql)
            rows, cols = cur.fetchall(), [d[0] for d in cur.description]
        return pd.DataFrame(rows, columns=cols)


def _real(v: float | None) -> float | None:
    return None if v is None or (isinstance(v, float) and not math.isfinite(v)) else float(v)


def _alert_row(row: tuple) -> dict[str, Any]:
    out = dict(zip(_ALERT_KEYS, row))
    out["delivered"] = bool(out["delivered"])
    return out


def _json_default(v: Any) -> Any:
    if hasattr(v, "item"):  # numpy scalars
        return v.item()
    if isinstance(v, Path):
        return str(v)
    raise TypeError(f"not JSON serialisable: {type(v).__name__} {v!r}")


def _records_json(valid: pd.DataFrame) -> list[str]:
    """The validated snapshot rows as JSON: timestamps as int ns, nulls as null, floats exact (repr)."""
    import pandas as pd

    cols = {}
    for name in valid.columns:
        s = valid[name]
        if isinstance(s.dtype, pd.DatetimeTZDtype):
            ns = s.array.asi8
            cols[name] = [None if pd.isna(t) else int(v) for t, v in zip(s, ns)]
        else:
            cols[name] = [None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                          else (v.item() if hasattr(v, "item") else v) for v in s.astype(object)]
    names = list(cols)
    return [json.dumps(dict(zip(names, vals)), allow_nan=False) for vals in zip(*cols.values())]
