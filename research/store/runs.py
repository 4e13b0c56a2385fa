"""Embedded DuckDB store of backtest runs and their trade snapshots.

One file (``$NAVALE_DATA_DIR/navale.duckdb`` by default) holds these tables:

- ``runs``: one row per run (run id, time, params hash, git commit, mode, session,
  trade count, the manifest and the summary as JSON text);
- ``trade_snapshots``: the snapshot records (:mod:`research.store.snapshots`), key ``(run_id, trade_id)``;
- ``promotions``: the promotion gate's decisions (:mod:`research.validation.promotion`), append-only;
- ``collect_summaries``: the collector's daily summaries (:mod:`live.collect.summary`), key ``(symbol, date)``;
- ``meta``: the snapshot schema version the file was written with.

A run id is a hash of what determines the result (params, data, mode, session, extra,
code commit), never the time: running the same thing twice replaces the run instead of
adding a copy. DuckDB stores timestamps with microsecond precision.

DuckDB lets one process write a file at a time, and a writer excludes readers: opening a store
held by another process waits for it, up to ``timeout`` seconds (default ``$NAVALE_STORE_TIMEOUT``,
else 60), saying so once on stderr, then raises :class:`StoreLockedError`. Writers and readers hold
the file only for their transaction (open, read or write, close). A write that fails (full disk,
read-only folder) raises :class:`StoreWriteError` with a one-line cause and changes nothing stored.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import random
import re
import sys
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from research.store import snapshots as snap
from research.store.files import atomic_write_bytes
from research.store.provenance import (
    build_manifest,
    dumps_json,
    file_sha256,
    make_run_id,
)

__all__ = [
    "StoreError",
    "StoreLockedError",
    "StoreWriteError",
    "StoredRun",
    "default_store_path",
    "lock_timeout",
    "build_manifest",
    "make_run_id",
    "file_sha256",
    "RunStore",
]

_DUCKDB_TYPES = {
    "string": "VARCHAR",
    "int8": "TINYINT",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "float64": "DOUBLE",
    "bool": "BOOLEAN",
    "timestamp": "TIMESTAMPTZ",
}
_RUN_COLUMNS = ("run_id", "created_at", "params_hash", "git_commit", "mode", "session", "n_trades", "manifest", "summary")


class StoreError(RuntimeError):
    """The store cannot be opened or does not hold what was asked for."""


class StoreLockedError(StoreError):
    """Another process still held the store file when the lock timeout ran out."""


class StoreWriteError(StoreError):
    """The store could not be written (full disk, read-only folder, damaged file); nothing was changed."""


TIMEOUT_ENV = "NAVALE_STORE_TIMEOUT"
DEFAULT_TIMEOUT = 60.0
_LOCK_PID = re.compile(r"\(PID (\d+)\)")


def default_store_path() -> Path:
    """``$NAVALE_DATA_DIR/navale.duckdb`` (``NAVALE_DATA_DIR`` defaults to ``data``, relative to the cwd)."""
    return Path(os.environ.get("NAVALE_DATA_DIR", "data")) / "navale.duckdb"


def lock_timeout() -> float:
    """Seconds to wait for a store held by another process: ``$NAVALE_STORE_TIMEOUT``, else 60."""
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if not raw:
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = float("nan")
    if not 0 <= value <= 86_400:
        raise StoreError(f"{TIMEOUT_ENV}={raw!r}: expected seconds in [0, 86400]")
    return value


def one_line(exc: BaseException | str) -> str:
    """An error message on one line (DuckDB's messages may span several)."""
    return " ".join(str(exc).split())


def _say_on_stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class StoredRun:
    """One run as :meth:`RunStore.write_runs` takes it: manifest, snapshots, summary, run id."""

    __slots__ = ("run_id", "manifest", "snapshots", "summary")

    def __init__(self, manifest: dict, snapshots: pd.DataFrame, summary: dict | None = None,
                 run_id: str | None = None) -> None:
        self.run_id = run_id or make_run_id(manifest)
        self.manifest = manifest
        self.snapshots = snapshots
        self.summary = summary

    def __repr__(self) -> str:
        return f"StoredRun({self.run_id!r}, {len(self.snapshots)} trades)"


# ---------------------------------------------------------------- store


def _cause(exc: BaseException) -> str:
    """DuckDB's message on one line, without its error-class prefix (``IO Error: ``)."""
    return re.sub(r"^[A-Za-z ]*Error: ", "", one_line(exc))


def _snapshot_ddl() -> str:
    cols = [
        f"{f.name} {_DUCKDB_TYPES[f.dtype]}{'' if f.nullable else ' NOT NULL'}" for f in snap.FIELDS
    ]
    return f"CREATE TABLE IF NOT EXISTS trade_snapshots ({', '.join(cols)}, PRIMARY KEY (run_id, trade_id))"


def _legacy_value(column: str) -> str:
    """The SQL literal a v1 store's absent filter column reads as."""
    v = snap.FILTER_DEFAULTS[column]
    return "CAST(NULL AS DOUBLE)" if isinstance(v, float) else str(bool(v)).upper()


_DDL = (
    "CREATE TABLE IF NOT EXISTS meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)",
    """CREATE TABLE IF NOT EXISTS runs (
        run_id VARCHAR PRIMARY KEY, created_at TIMESTAMPTZ NOT NULL, params_hash VARCHAR, git_commit VARCHAR,
        mode VARCHAR, session VARCHAR, n_trades BIGINT NOT NULL, manifest VARCHAR NOT NULL, summary VARCHAR)""",
    _snapshot_ddl(),
    # promotion decisions (research.validation.promotion): appended, never replaced or deleted
    """CREATE TABLE IF NOT EXISTS promotions (
        promotion_id VARCHAR PRIMARY KEY, sweep_id VARCHAR, created TIMESTAMPTZ NOT NULL, passed BOOLEAN NOT NULL,
        thresholds VARCHAR NOT NULL, figures VARCHAR NOT NULL, params VARCHAR, params_hash VARCHAR,
        reasons VARCHAR NOT NULL)""",
    # the collector's daily summaries (live.collect.summary): one row per (symbol, trading date), replaced
    """CREATE TABLE IF NOT EXISTS collect_summaries (
        symbol VARCHAR NOT NULL, date DATE NOT NULL, ticks BIGINT NOT NULL, bars BIGINT NOT NULL,
        gaps BIGINT NOT NULL, gap_minutes DOUBLE NOT NULL, findings BIGINT NOT NULL, feed_events BIGINT NOT NULL,
        trades BIGINT NOT NULL, wins BIGINT NOT NULL, net_usd DOUBLE NOT NULL, disk_bytes BIGINT NOT NULL,
        first_ts TIMESTAMPTZ, last_ts TIMESTAMPTZ, created TIMESTAMPTZ NOT NULL, summary VARCHAR NOT NULL,
        PRIMARY KEY (symbol, date))""",
)
_TABLES = frozenset({"meta", "runs", "trade_snapshots", "promotions", "collect_summaries"})
PROMOTION_COLUMNS = ("promotion_id", "sweep_id", "created", "passed", "thresholds", "figures", "params",
                     "params_hash", "reasons")
COLLECT_SUMMARY_COLUMNS = ("symbol", "date", "ticks", "bars", "gaps", "gap_minutes", "findings", "feed_events",
                           "trades", "wins", "net_usd", "disk_bytes", "first_ts", "last_ts", "created", "summary")
_VERSION_KEY = "snapshot_schema_version"


class RunStore:
    """Runs and trade snapshots in one DuckDB file; use as a context manager.

    ``RunStore()`` opens (creating it if needed) :func:`default_store_path`. A store held by another
    process is waited for up to ``timeout`` seconds (default :func:`lock_timeout`); ``on_wait`` gets the
    one message said while waiting (default: printed on stderr).
    """

    def __init__(self, path: str | Path | None = None, read_only: bool = False, *, timeout: float | None = None,
                 on_wait: Callable[[str], None] | None = _say_on_stderr) -> None:
        self.path = Path(path) if path is not None else default_store_path()
        self.read_only = read_only
        self.timeout = lock_timeout() if timeout is None else float(timeout)
        if read_only and not self.path.exists():
            raise StoreError(f"no store at {self.path} (nothing has been written yet)")
        if not read_only:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreWriteError(f"cannot create the store folder {self.path.parent}: "
                                      f"{exc.strerror or one_line(exc)}") from None
        self._con = self._connect(on_wait)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._init_schema()
        except duckdb.Error as exc:
            self.close()
            error = StoreError if self.read_only else StoreWriteError
            raise error(f"cannot prepare store {self.path}: {_cause(exc)}") from None
        except BaseException:
            self.close()
            raise

    # -- lifecycle

    def _connect(self, on_wait: Callable[[str], None] | None) -> duckdb.DuckDBPyConnection:
        start = time.monotonic()
        said = False
        while True:
            try:
                return duckdb.connect(str(self.path), read_only=self.read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise StoreWriteError(f"cannot open store {self.path}: {_cause(exc)}") from None
                pid = _LOCK_PID.search(str(exc))
                holder = f"PID {pid.group(1)}" if pid else "another process"
                waited = time.monotonic() - start
                if waited >= self.timeout:
                    raise StoreLockedError(
                        f"store {self.path} is in use by another process ({holder}) and was not released "
                        f"within {self.timeout:g} s ({TIMEOUT_ENV} sets the timeout)"
                    ) from None
                if not said and on_wait is not None:
                    on_wait(f"waiting for the store {self.path} held by {holder} (timeout {self.timeout:g} s)...")
                said = True
                time.sleep(min(random.uniform(0.05, 0.25), max(self.timeout - waited, 0.01)))
            except duckdb.ConnectionException as exc:
                raise StoreError(
                    f"cannot open store {self.path}: already open in this process with read_only="
                    f"{not self.read_only}; close that RunStore first ({one_line(exc)})"
                ) from None
            except duckdb.Error as exc:
                raise StoreError(f"cannot open store {self.path} (not a DuckDB file?): {_cause(exc)}") from None

    def close(self) -> None:
        """Close the connection (idempotent); a failure to close (e.g. a full disk at checkpoint) is a
        :class:`StoreWriteError`."""
        con, self._con = getattr(self, "_con", None), None
        if con is not None:
            try:
                con.close()
            except duckdb.Error as exc:
                raise StoreWriteError(f"cannot close store {self.path}: {_cause(exc)}") from None

    def __enter__(self) -> RunStore:
        return self

    def __exit__(self, exc_type: object, *rest: object) -> None:
        try:
            self.close()
        except StoreWriteError:
            if exc_type is None:  # an error already on its way is the one to report
                raise

    def __repr__(self) -> str:
        return f"RunStore({str(self.path)!r}, read_only={self.read_only})"

    @property
    def con(self) -> duckdb.DuckDBPyConnection:
        """The DuckDB connection (for ad-hoc SQL)."""
        if self._con is None:
            raise StoreError(f"store {self.path} is closed")
        return self._con

    def _init_schema(self) -> None:
        tables = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if not self.read_only and not _TABLES <= tables:
            self.con.begin()
            try:
                for ddl in _DDL:
                    self.con.execute(ddl)
                self.con.execute(
                    "INSERT INTO meta VALUES (?, ?) ON CONFLICT DO NOTHING", [_VERSION_KEY, str(snap.SCHEMA_VERSION)]
                )
                self.con.commit()
            except BaseException:
                self.con.rollback()
                raise
        elif "meta" not in tables:
            raise StoreError(f"{self.path} is not a navale store (no meta table)")
        self._check_version()

    def _check_version(self) -> None:
        row = self.con.execute("SELECT value FROM meta WHERE key = ?", [_VERSION_KEY]).fetchone()
        version = int(row[0]) if row else None
        if version is None:
            raise StoreError(f"{self.path}: no snapshot schema version in the meta table")
        if version > snap.SCHEMA_VERSION:
            raise StoreError(
                f"{self.path} was written with snapshot schema version {version}, newer than this code's "
                f"version {snap.SCHEMA_VERSION}: update navale (or use another store)"
            )
        if version not in snap.READABLE_VERSIONS:
            raise StoreError(
                f"{self.path} holds snapshot schema version {version}; this code writes version "
                f"{snap.SCHEMA_VERSION} and has no migration for it"
            )
        if version < snap.SCHEMA_VERSION and not self.read_only:
            self._migrate_v1()
            version = snap.SCHEMA_VERSION
        self._legacy = version < snap.SCHEMA_VERSION  # read-only v1 store: the filter columns read as defaults
        cols = [r[0] for r in self.con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'trade_snapshots' "
            "ORDER BY ordinal_position"
        ).fetchall()]
        want = [c for c in snap.names() if not (self._legacy and c in snap.FILTER_DEFAULTS)]
        if cols != want:
            raise StoreError(f"{self.path}: trade_snapshots columns do not match snapshot schema v{version}")

    def _migrate_v1(self) -> None:
        """Snapshot schema v1 -> v2 in one transaction: the filter columns added with their defaults (no
        model, taken, not a shadow trade), nothing else changed."""
        with self._transaction():
            for f in snap.FIELDS:
                if f.name in snap.FILTER_DEFAULTS:
                    default = snap.FILTER_DEFAULTS[f.name]
                    sql_default = "NULL" if isinstance(default, float) else str(bool(default)).upper()
                    self.con.execute(f"ALTER TABLE trade_snapshots ADD COLUMN {f.name} {_DUCKDB_TYPES[f.dtype]} "
                                     f"DEFAULT {sql_default}")
                    if not f.nullable:
                        self.con.execute(f"ALTER TABLE trade_snapshots ALTER COLUMN {f.name} SET NOT NULL")
            self.con.execute("UPDATE meta SET value = ? WHERE key = ?", [str(snap.SCHEMA_VERSION), _VERSION_KEY])

    # -- writing

    def write_run(
        self,
        manifest: dict,
        snapshots: pd.DataFrame,
        summary: dict | None = None,
        run_id: str | None = None,
    ) -> str:
        """Store a run and its snapshots in one transaction, replacing any run with the same id; return the id.

        ``run_id`` defaults to :func:`make_run_id` of the manifest. A missing ``run_id`` column in
        ``snapshots`` is filled in; a present one must equal the run id. On any error nothing changes.
        """
        return self.write_runs([StoredRun(manifest, snapshots, summary, run_id)])[0]

    def write_runs(self, runs: Iterable[StoredRun]) -> list[str]:
        """Store several runs in ONE transaction (all or none), each replacing any run with its id; return
        the ids. A DuckDB failure (full disk, read-only folder) is a :class:`StoreWriteError`."""
        prepared = [self._prepare(r) for r in runs]
        con = self.con
        with self._transaction():
            for run_id, row, table in prepared:
                con.execute("DELETE FROM trade_snapshots WHERE run_id = ?", [run_id])
                con.execute("DELETE FROM runs WHERE run_id = ?", [run_id])
                con.execute(f"INSERT INTO runs ({', '.join(_RUN_COLUMNS)}) VALUES ({', '.join('?' * len(row))})",
                            row)
                self._insert_snapshots(table)
        return [run_id for run_id, _row, _table in prepared]

    @contextlib.contextmanager
    def _transaction(self, *, constraint_errors: bool = False):
        """BEGIN ... COMMIT; any error rolls back (quietly, so the real cause stays the one raised). A
        DuckDB failure becomes a one-line :class:`StoreWriteError`, except a constraint violation when
        ``constraint_errors`` (the caller's own error, e.g. a duplicated id), which is raised as is."""
        con = self.con
        try:
            con.begin()
            yield
            con.commit()
        except duckdb.ConstraintException as exc:
            self._rollback_quietly()
            if constraint_errors:
                raise
            raise StoreWriteError(f"cannot write to store {self.path}: {_cause(exc)}") from None
        except duckdb.Error as exc:
            self._rollback_quietly()
            raise StoreWriteError(f"cannot write to store {self.path}: {_cause(exc)}") from None
        except BaseException:
            self._rollback_quietly()
            raise

    def _prepare(self, run: StoredRun) -> tuple[str, list[Any], pa.Table]:
        frame = run.snapshots.copy()
        if "run_id" not in frame.columns:
            frame.insert(0, "run_id", run.run_id)
        table = snap.to_arrow(frame)
        other = set(table.column("run_id").to_pylist()) - {run.run_id}
        if other:
            raise snap.SnapshotError(f"snapshot run_id {sorted(other)[0]!r} differs from the run id {run.run_id!r}")
        shadow = table.column("shadow").to_pylist() if "shadow" in table.column_names else []
        n_real = table.num_rows - sum(1 for s in shadow if s)  # the run's trades: shadow trades are not its own
        return run.run_id, self._run_row(run.run_id, run.manifest, run.summary, n_real), table

    def _rollback_quietly(self) -> None:
        """Roll back after a failed write; the first error is the one reported (a rollback after a full
        disk may fail too, and would only hide it)."""
        try:
            self.con.rollback()
        except duckdb.Error:
            pass

    @staticmethod
    def _run_row(run_id: str, manifest: dict, summary: dict | None, n_trades: int) -> list[Any]:
        created = manifest.get("created_at")
        created_at = pd.Timestamp(created) if created else pd.Timestamp.now(tz="UTC")
        if created_at.tzinfo is None:
            raise StoreError(f"manifest created_at {created!r} has no time zone")
        return [
            run_id,
            created_at.to_pydatetime(),
            manifest.get("params_hash"),
            manifest.get("git_commit"),
            manifest.get("mode"),
            manifest.get("session"),
            n_trades,
            dumps_json({**manifest, "run_id": run_id}),
            None if summary is None else dumps_json(summary),
        ]

    def _insert_snapshots(self, table: pa.Table) -> None:
        cols = ", ".join(snap.names())
        self.con.register("_navale_snapshots", table)
        try:
            self.con.execute(f"INSERT INTO trade_snapshots ({cols}) SELECT {cols} FROM _navale_snapshots")
        finally:
            self.con.unregister("_navale_snapshots")

    def delete_run(self, run_id: str) -> bool:
        """Delete a run and its snapshots; True if it existed."""
        con = self.con
        con.begin()
        try:
            con.execute("DELETE FROM trade_snapshots WHERE run_id = ?", [run_id])
            existed = con.execute("DELETE FROM runs WHERE run_id = ? RETURNING run_id", [run_id]).fetchall()
            con.commit()
        except BaseException:
            con.rollback()
            raise
        return bool(existed)

    def write_promotion(self, row: dict[str, Any]) -> str:
        """Append one promotion decision (keys :data:`PROMOTION_COLUMNS`) in one transaction; return its
        id. Rows are never replaced: a second row with the same id is an error and changes nothing."""
        missing = [c for c in PROMOTION_COLUMNS if c not in row]
        if missing:
            raise StoreError(f"promotion record lacks {', '.join(missing)}")
        values = [row[c] for c in PROMOTION_COLUMNS]
        with self._transaction(constraint_errors=True):
            self.con.execute(f"INSERT INTO promotions ({', '.join(PROMOTION_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(values))})", values)
        return str(row["promotion_id"])

    def has_promotion(self, promotion_id: str) -> bool:
        """True if the store holds the promotion decision ``promotion_id``."""
        return self.con.execute("SELECT count(*) FROM promotions WHERE promotion_id = ?",
                                [promotion_id]).fetchone()[0] > 0

    def write_collect_summary(self, row: dict[str, Any]) -> None:
        """Store one daily summary of the collector (keys :data:`COLLECT_SUMMARY_COLUMNS`; ``summary``: the
        whole summary as JSON text), replacing the row of the same ``(symbol, date)``, in one transaction."""
        missing = [c for c in COLLECT_SUMMARY_COLUMNS if c not in row]
        if missing:
            raise StoreError(f"collect summary record lacks {', '.join(missing)}")
        values = [row[c] for c in COLLECT_SUMMARY_COLUMNS]
        with self._transaction():
            self.con.execute("DELETE FROM collect_summaries WHERE symbol = ? AND date = ?", [row["symbol"], row["date"]])
            self.con.execute(f"INSERT INTO collect_summaries ({', '.join(COLLECT_SUMMARY_COLUMNS)}) VALUES "
                             f"({', '.join('?' * len(values))})", values)

    # -- reading

    def collect_summaries(self, symbol: str | None = None) -> pd.DataFrame:
        """The collector's daily summaries (of one symbol, or all) by date; times tz-aware UTC. A read-only
        store written before the table existed has none."""
        tables = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "collect_summaries" not in tables:
            return pd.DataFrame(columns=list(COLLECT_SUMMARY_COLUMNS))
        sql, args = f"SELECT {', '.join(COLLECT_SUMMARY_COLUMNS)} FROM collect_summaries", []
        if symbol is not None:
            sql, args = sql + " WHERE symbol = ?", [symbol]
        df = self.con.execute(sql + " ORDER BY date, symbol", args).df()
        for c in ("first_ts", "last_ts", "created"):
            df[c] = pd.to_datetime(df[c], utc=True).dt.as_unit("ns")
        return df

    def promotions(self, sweep_id: str | None = None) -> pd.DataFrame:
        """Stored promotion decisions (of one sweep, or all), oldest first; ``created`` tz-aware UTC.
        A read-only store written before the table existed has none."""
        tables = {r[0] for r in self.con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
        if "promotions" not in tables:
            return pd.DataFrame(columns=list(PROMOTION_COLUMNS))
        sql = f"SELECT {', '.join(PROMOTION_COLUMNS)} FROM promotions"
        args: list[Any] = []
        if sweep_id is not None:
            sql += " WHERE sweep_id = ?"
            args.append(sweep_id)
        df = self.con.execute(sql + " ORDER BY created, promotion_id", args).df()
        df["created"] = pd.to_datetime(df["created"], utc=True).dt.as_unit("ns")
        return df

    def runs(self) -> pd.DataFrame:
        """All runs, oldest first (``created_at`` tz-aware UTC; manifest/summary as JSON text)."""
        df = self.con.execute(f"SELECT {', '.join(_RUN_COLUMNS)} FROM runs ORDER BY created_at, run_id").df()
        df["created_at"] = pd.to_datetime(df["created_at"], utc=True).dt.as_unit("ns")
        return df

    def has_run(self, run_id: str) -> bool:
        """True if the store holds ``run_id``."""
        return self.con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0] > 0

    def _require(self, run_id: str) -> None:
        if not self.has_run(run_id):
            raise StoreError(f"no run {run_id!r} in {self.path}")

    def snapshots(self, run_id: str | None = None, *, shadow: bool = False) -> pd.DataFrame:
        """Snapshots of one run (or all), ordered by run, entry time, trade id; validated schema dtypes.

        Shadow trades (signals the quality filter skipped, followed as if taken: ``shadow = true``) are left
        out unless ``shadow=True``: a run's performance is its real trades."""
        cols = [(f"{_legacy_value(c)} AS {c}" if self._legacy and c in snap.FILTER_DEFAULTS else c)
                for c in snap.names()]
        sql = f"SELECT {', '.join(cols)} FROM trade_snapshots"
        args: list[str] = []
        if run_id is not None:
            self._require(run_id)
            sql += " WHERE run_id = ?"
            args.append(run_id)
        if not shadow and not self._legacy:
            sql += (" AND" if args else " WHERE") + " NOT shadow"
        df = self.con.execute(sql + " ORDER BY run_id, entry_ts, trade_id", args).df()
        return snap.validate(df)

    def manifest(self, run_id: str) -> dict:
        """The manifest stored with ``run_id`` (with its ``run_id``)."""
        row = self.con.execute("SELECT manifest FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return json.loads(row[0])

    def summary(self, run_id: str) -> dict | None:
        """The summary stored with ``run_id`` (None if none was given)."""
        row = self.con.execute("SELECT summary FROM runs WHERE run_id = ?", [run_id]).fetchone()
        if row is None:
            raise StoreError(f"no run {run_id!r} in {self.path}")
        return None if row[0] is None else json.loads(row[0])

    def export_parquet(self, path: str | Path, run_id: str | None = None) -> Path:
        """Write the snapshots of one run (or all) to Parquet atomically, keeping the schema metadata; the runs'
        manifests travel along as JSON (``navale_manifests`` schema metadata: sessions, params, data files)."""
        table = snap.to_arrow(self.snapshots(run_id, shadow=True))  # the shadow column tells them apart
        ids = [run_id] if run_id is not None else sorted(set(table.column("run_id").to_pylist()))
        manifests = {rid: self.manifest(rid) for rid in ids}
        meta = dict(table.schema.metadata or {})
        meta[b"navale_manifests"] = dumps_json(manifests).encode()
        table = table.replace_schema_metadata(meta)
        buf = io.BytesIO()
        pq.write_table(table, buf)
        return atomic_write_bytes(path, buf.getvalue())
