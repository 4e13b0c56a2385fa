"""What a backup run takes from the collection directory and the run store, and the consistent copies of the
databases.

Taken: sealed segments (those with a manifest) and their manifests, the tails cut off segments at recovery
(``*.seg.torn-N``), every Parquet partition file, the daily reports, a copy of every SQLite file under the
directory (the collector's journal, the data-collection trader's journal and paper book) and a copy of the
DuckDB run store; an open segment (no manifest: the collector may still append) is taken up to its last whole
record at the time of the run (``segment-prefix``: what the collector's recovery would keep), so the day being
written is covered too, and the run after it is sealed takes the sealed file. Left out: temp files of atomic
writes, SQLite's ``-wal``/``-shm`` files (the copy has their content).

Copies: SQLite through its online backup API (``sqlite3.Connection.backup``), which reads one consistent
transaction while a writer goes on in WAL mode; DuckDB by attaching the store read-only in an in-memory
database and ``COPY FROM DATABASE`` into a fresh file, which works while other processes have the store open
read-only. A writer holds DuckDB's file lock exclusively: the copy waits for it up to the store timeout
(``NAVALE_STORE_TIMEOUT``), then the run goes on without the store and says so (:class:`StoreBusy`).
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from live.collect.layout import manifest_path

__all__ = ["Source", "Plan", "plan", "sqlite_copy", "segment_prefix_copy", "duckdb_copy", "StoreBusy", "CopyError", "file_sha256",
           "STORE_PATH", "CHUNK"]

STORE_PATH = "navale.duckdb"  # where the run store goes in a snapshot and in a restored directory
CHUNK = 1 << 20


class StoreBusy(RuntimeError):
    """The run store is held by a writer past the timeout (one line)."""


class CopyError(RuntimeError):
    """A database could not be copied (one line: the file and the cause)."""


@dataclass(frozen=True)
class Source:
    """One file to back up: ``rel`` its path in the snapshot, ``file`` where it is now."""

    rel: str
    kind: str
    storage: str  # raw | gzip | sqlite-copy | duckdb-copy
    file: Path


@dataclass
class Plan:
    sources: list[Source] = field(default_factory=list)
    open_segments: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    expected: dict[str, str] = field(default_factory=dict)  # rel path -> sha256 a segment manifest gives it


def _rel(path: Path, root: Path) -> str:
    return path.relative_to(root).as_posix()


def _hidden_or_temp(path: Path, root: Path) -> bool:
    parts = path.relative_to(root).parts
    return any(p.startswith(".") for p in parts) or ".tmp" in path.name


def plan(root: Path, store: Path | None) -> Plan:
    """The files of ``root`` (the collection dir) and the ``store`` to back up, in a stable order."""
    root = Path(root)
    out = Plan()
    seg_root = root / "segments"
    if seg_root.is_dir():
        for seg in sorted(seg_root.glob("*/*.seg")):
            manifest = manifest_path(seg)
            if manifest.is_file():
                out.sources.append(Source(_rel(seg, root), "segment", "gzip", seg))
                out.sources.append(Source(_rel(manifest, root), "segment-manifest", "raw", manifest))
                _expect(out, _rel(seg, root), manifest)
            else:
                out.sources.append(Source(_rel(seg, root), "open-segment", "segment-prefix", seg))
                out.open_segments.append(_rel(seg, root))
        for torn in sorted(seg_root.glob("*/*.seg.torn-*")):
            out.sources.append(Source(_rel(torn, root), "torn-tail", "gzip", torn))
    parquet = root / "parquet"
    if parquet.is_dir():
        for part in sorted(parquet.rglob("*.parquet")):
            if part.is_file() and not _hidden_or_temp(part, root):
                out.sources.append(Source(_rel(part, root), "partition", "raw", part))
    reports = root / "reports"
    if reports.is_dir():
        for rep in sorted(p for p in reports.rglob("*") if p.is_file()):
            if not _hidden_or_temp(rep, root):
                out.sources.append(Source(_rel(rep, root), "report", "gzip", rep))
    if root.is_dir():
        for db in sorted(root.rglob("*.sqlite")):
            if db.is_file() and not _hidden_or_temp(db, root) and db.relative_to(root).parts[0] not in (
                    "segments", "parquet", "reports"):
                out.sources.append(Source(_rel(db, root), "sqlite", "sqlite-copy", db))
    if store is not None:
        out.sources.append(Source(STORE_PATH, "store", "duckdb-copy", Path(store)))
    return out


def _expect(out: Plan, seg_rel: str, manifest: Path) -> None:
    """The hashes a sealed segment's manifest gives the segment and its partitions (``sha256``,
    ``partitions.TABLE.{path, sha256}``); a manifest that cannot be read is a warning (still backed up)."""
    try:
        doc = json.loads(manifest.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        out.warnings.append(f"{manifest}: the segment manifest cannot be read ({exc}); backed up as it is")
        return
    if not isinstance(doc, dict):
        return
    if isinstance(doc.get("sha256"), str):
        out.expected[seg_rel] = doc["sha256"]
    for part in (doc.get("partitions") or {}).values():
        if isinstance(part, dict) and isinstance(part.get("path"), str) and isinstance(part.get("sha256"), str):
            out.expected[part["path"]] = part["sha256"]


def file_sha256(path: Path) -> tuple[str, int]:
    """SHA-256 and size of a file, read in chunks."""
    h = hashlib.sha256()
    n = 0
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def segment_prefix_copy(src: Path, dst: Path) -> int:
    """Copy an open segment up to its last whole record (the collector may be appending); the bytes copied."""
    from research.data.segments import scan

    data = src.read_bytes()
    end = scan(src, data).valid_end
    dst.write_bytes(data[:end])
    return end


def sqlite_copy(src: Path, dst: Path) -> None:
    """A consistent copy of the SQLite file ``src`` at ``dst`` (a new file), through the online backup API."""
    try:
        source = sqlite3.connect(f"{Path(src).resolve().as_uri()}?mode=ro", uri=True, timeout=5)
    except sqlite3.Error as exc:
        raise CopyError(f"cannot open {src} for the backup: {_one_line(exc)}") from None
    try:
        dest = sqlite3.connect(dst)
        try:
            source.backup(dest)  # all pages in one step: one read transaction, one consistent state
        finally:
            dest.close()
    except sqlite3.Error as exc:
        raise CopyError(f"cannot copy {src}: {_one_line(exc)}") from None
    finally:
        source.close()


def duckdb_copy(src: Path, dst: Path, timeout: float, needed: Callable[[str], bool] = lambda sha: True) -> str:
    """Copy the DuckDB file ``src`` into the new file ``dst``; its source hash (of the file and any WAL,
    read while the read-only attach keeps writers out). ``needed(source_sha)`` False skips the copy (the
    store has not changed since a copy already at the target). :class:`StoreBusy` when a writer holds it
    past ``timeout`` seconds."""
    import duckdb

    con = duckdb.connect(":memory:")
    try:
        start = time.monotonic()
        while True:
            try:
                con.execute("ATTACH ? AS src (READ_ONLY)", [str(src)])
                break
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise CopyError(f"cannot open the run store {src}: {_one_line(exc)}") from None
                if time.monotonic() - start >= timeout:
                    raise StoreBusy(f"the run store {src} is held by a writer ({_one_line(exc).split('. See')[0]}) "
                                    f"past {timeout:g} s (NAVALE_STORE_TIMEOUT)") from None
                time.sleep(0.1)
            except duckdb.Error as exc:
                raise CopyError(f"cannot open the run store {src} (not a DuckDB file?): {_one_line(exc)}") from None
        h = hashlib.sha256()
        for part in (Path(src), Path(f"{src}.wal")):
            if part.is_file():
                with open(part, "rb") as fh:
                    while chunk := fh.read(CHUNK):
                        h.update(chunk)
        source_sha = h.hexdigest()
        if needed(source_sha):
            try:
                con.execute("ATTACH ? AS dst", [str(dst)])
                con.execute("COPY FROM DATABASE src TO dst")
                con.execute("DETACH dst")
            except duckdb.Error as exc:
                raise CopyError(f"cannot copy the run store {src}: {_one_line(exc)}") from None
        return source_sha
    finally:
        con.close()
