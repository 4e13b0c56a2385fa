"""The backup operations: run, verify, restore, list, prune. Each returns a result whose ``lines`` say what
was done; the CLI (``navale backup``) prints them. Rules (docs/backups.md):

- objects are content-addressed by the SHA-256 of the file as restored, so an unchanged file is never sent
  again; an object counts as present only when a snapshot names it and its size at the target is that
  snapshot's (a leftover of a half run is sent again, over it);
- a run writes its manifest last, after checking that every object it names is at the target;
- verify and restore read every object back and check both hashes (stored and, after decompression, original);
  restore writes nothing into its directory until every object has passed;
- prune deletes snapshot manifests first, then the objects no remaining snapshot names.
"""

from __future__ import annotations

import contextlib
import dataclasses
import gzip
import hashlib
import json
import os
import shutil
import socket
import sqlite3
import tempfile
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Any

from .manifest import (
    LOCKS,
    OBJECTS,
    SNAPSHOTS,
    Entry,
    ManifestError,
    Snapshot,
    object_key,
    snapshot_id,
    snapshot_key,
)
from .snapshot import (
    CHUNK,
    STORE_PATH,
    CopyError,
    Source,
    StoreBusy,
    duckdb_copy,
    file_sha256,
    plan,
    segment_prefix_copy,
    sqlite_copy,
)
from .target import Target, TargetError

__all__ = ["BackupError", "RunResult", "VerifyResult", "RestoreResult", "PruneResult", "run", "verify", "restore",
           "list_snapshots", "load_snapshot", "prune", "GZIP_LEVEL", "STALE_LOCK_S"]

GZIP_LEVEL = 6
STALE_LOCK_S = 6 * 3600  # a lock older than this is a crashed run's and no longer holds prune back


class BackupError(RuntimeError):
    """An operation refused or impossible (one line). ``bad_input`` tells the CLI's exit status (2, else 1)."""

    def __init__(self, message: str, *, bad_input: bool = False) -> None:
        super().__init__(message)
        self.bad_input = bad_input


def _mb(n: int) -> str:
    return f"{n / 1e6:,.1f} MB"


class _HashingWriter:
    """Pass bytes on to ``out`` (the object ``key`` at ``target``) while counting and hashing them (SHA-256);
    a failed write is a :class:`TargetError` naming the object."""

    def __init__(self, out: IO[bytes], target: Target, key: str) -> None:
        self.out = out
        self.target = target
        self.key = key
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        try:
            self.out.write(data)
        except OSError as exc:
            cause = exc.strerror or str(exc) or type(exc).__name__
            raise TargetError(f"backup target {self.target.url}: cannot write {self.key}: "
                              f"{cause[:1].lower()}{cause[1:]}") from None
        return len(data)

    def flush(self) -> None:
        pass


# ---------------------------------------------------------------- snapshots at the target


def list_snapshots(target: Target) -> tuple[list[Snapshot], list[str]]:
    """The readable snapshots, oldest first, and one line per manifest that cannot be read."""
    snaps, bad = [], []
    for key in sorted(target.listing(SNAPSHOTS)):
        if not key.endswith(".json"):
            continue
        try:
            snaps.append(Snapshot.from_json(target.read_bytes(key), key))
        except ManifestError as exc:
            bad.append(str(exc))
        except FileNotFoundError:  # pruned meanwhile
            continue
    return sorted(snaps, key=lambda s: s.id), bad


def load_snapshot(target: Target, sid: str | None = None) -> Snapshot:
    """Snapshot ``sid``, or the newest readable one; :class:`BackupError` when there is none."""
    if sid is not None:
        key = snapshot_key(sid)
        try:
            return Snapshot.from_json(target.read_bytes(key), key)
        except FileNotFoundError:
            raise BackupError(f"backup target {target.url}: no snapshot {sid} (navale backup list shows them)",
                              bad_input=True) from None
        except ManifestError as exc:
            raise BackupError(f"backup target {target.url}: {exc}") from None
    snaps, bad = list_snapshots(target)
    if not snaps:
        extra = f" ({len(bad)} unreadable manifest(s): {bad[0]})" if bad else ""
        raise BackupError(f"backup target {target.url}: no snapshot to use{extra}", bad_input=not bad)
    newest = snaps[-1]
    newer_bad = [k for k in _manifest_keys(target) if k > snapshot_key(newest.id) and k not in
                 {snapshot_key(s.id) for s in snaps}]
    if newer_bad:  # never fall back to an older snapshot without being told to
        raise BackupError(f"backup target {target.url}: the newest snapshot manifest {newer_bad[-1]} cannot be read "
                          f"({bad[-1] if bad else 'unreadable'}); use an older one only on purpose: --snapshot "
                          f"{newest.id}")
    return newest


def _manifest_keys(target: Target) -> list[str]:
    return sorted(k for k in target.listing(SNAPSHOTS) if k.endswith(".json"))


def _locks(target: Target, kind: str, now: float) -> list[str]:
    live = []
    for key in target.listing(LOCKS):
        if not key.startswith(f"{LOCKS}/{kind}-"):
            continue
        try:
            started = float(json.loads(target.read_bytes(key)).get("started", 0))
        except (FileNotFoundError, ValueError, AttributeError):
            continue
        if now - started < STALE_LOCK_S:
            live.append(key)
    return live


@contextlib.contextmanager
def _lock(target: Target, kind: str, sid: str, other: str):
    now = time.time()
    held = _locks(target, other, now)
    if held:
        raise BackupError(f"backup target {target.url}: a {other} is in progress ({held[0]}); try again when it "
                          f"ends (a lock older than {STALE_LOCK_S // 3600} h is ignored)")
    key = f"{LOCKS}/{kind}-{sid}.json"
    target.write_bytes(key, json.dumps({"pid": os.getpid(), "host": socket.gethostname(), "started": now}).encode())
    try:
        yield
    finally:
        with contextlib.suppress(TargetError):
            target.remove(key)


# ---------------------------------------------------------------- run


@dataclass
class RunResult:
    snapshot: Snapshot
    sent: int = 0
    sent_bytes: int = 0
    skipped: int = 0
    skipped_bytes: int = 0
    seconds: float = 0.0
    warnings: list[str] = field(default_factory=list)  # not backed up, or changed since sealed: exit 1
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.warnings


def _send_file(target: Target, key: str, file: Path, compression: str | None) -> tuple[str, int, str, int]:
    """Upload ``file`` to ``key``: (sha256, size) of the file as read and of the object as stored."""
    src = hashlib.sha256()
    n = 0
    with target.open_write(key) as out:
        writer = _HashingWriter(out, target, key)
        sink: Any = gzip.GzipFile(filename="", fileobj=writer, mode="wb", compresslevel=GZIP_LEVEL, mtime=0) \
            if compression == "gzip" else writer
        with open(file, "rb") as fh:
            while chunk := fh.read(CHUNK):
                src.update(chunk)
                n += len(chunk)
                sink.write(chunk)
        if sink is not writer:
            sink.close()
    return src.hexdigest(), n, writer.hash.hexdigest(), writer.size


def run(root: Path, store: Path | None, target: Target, *, now: datetime | None = None,
        store_timeout: float | None = None, progress: Callable[[str], None] | None = None) -> RunResult:
    """Back up ``root`` (the collection dir) and ``store`` (the DuckDB run store; None or a missing file: not
    backed up) to ``target`` as a new snapshot stamped ``now`` (default: the current time)."""
    from research.store.runs import lock_timeout

    t0 = time.perf_counter()
    root = Path(root)
    if not root.is_dir():
        raise BackupError(f"no collection directory at {root} (--dir, or NAVALE_COLLECT_DIR)", bad_input=True)
    if target.local and Path(target.base).resolve().is_relative_to(root.resolve()):
        raise BackupError(f"backup target {target.url} is inside the collection directory {root}: choose a "
                          "folder outside it", bad_input=True)
    timeout = lock_timeout() if store_timeout is None else store_timeout
    sid = snapshot_id(now or datetime.now(timezone.utc))
    target.check(create=True)
    if target.listing(snapshot_key(sid)):
        raise BackupError(f"backup target {target.url}: snapshot {sid} exists already")
    warnings: list[str] = []
    skipped_files: list[dict[str, str]] = []
    store_path = Path(store) if store is not None else None
    if store_path is not None and not store_path.is_file():
        skipped_files.append({"path": STORE_PATH, "reason": f"no run store at {store_path}"})
        store_path = None
    work = plan(root, store_path)  # open segments are in it (up to their last whole record): none skipped

    with _lock(target, "run", sid, "prune"):
        previous, _ = list_snapshots(target)
        known: dict[str, Entry] = {}  # object key -> an entry naming it (its stored hash and size)
        last_store: Entry | None = None
        for snap in previous:
            for e in snap.entries:
                known[e.object] = e
                if e.kind == "store":
                    last_store = e
        present = target.listing(OBJECTS)

        def is_present(key: str) -> bool:
            return key in known and present.get(key) == known[key].object_size

        result = RunResult(Snapshot(sid, str(root.resolve()), str(store) if store is not None else None))
        sent_now: dict[str, Entry] = {}
        with tempfile.TemporaryDirectory(prefix="navale-backup-") as tmp:
            for src in work.sources:
                if progress is not None:
                    progress(src.rel)
                try:
                    entry = _back_up(target, src, Path(tmp), timeout, is_present, known, sent_now, last_store, result)
                except (StoreBusy, CopyError) as exc:
                    warnings.append(f"not backed up: {exc}")
                    skipped_files.append({"path": src.rel, "reason": str(exc)})
                    continue
                except FileNotFoundError as exc:  # removed since the listing (a partition rewritten...)
                    warnings.append(f"not backed up: {src.rel}: vanished during the backup ({exc.strerror})")
                    skipped_files.append({"path": src.rel, "reason": "vanished during the backup"})
                    continue
                result.snapshot.entries.append(entry)
        for e in result.snapshot.entries:
            want = work.expected.get(e.path)
            if want is not None and want != e.sha256:
                warnings.append(f"{e.path}: its sha256 differs from the one its segment manifest records (the file "
                                "changed after sealing: run navale data verify); backed up as it is now, the "
                                "earlier snapshots keep the earlier bytes")
        at_target = target.listing(OBJECTS) if result.snapshot.entries else {}
        missing = [e.object for e in result.snapshot.entries if at_target.get(e.object) != e.object_size]
        if missing:
            raise BackupError(f"backup target {target.url}: {len(missing)} object(s) gone before the manifest was "
                              f"written ({missing[0]}...): no snapshot written; run again")
        result.seconds = time.perf_counter() - t0
        result.snapshot.skipped = skipped_files
        result.snapshot.stats = {"files": len(result.snapshot.entries), "bytes": result.snapshot.size,
                                 "sent": result.sent, "sent_bytes": result.sent_bytes, "skipped": result.skipped,
                                 "skipped_bytes": result.skipped_bytes, "seconds": round(result.seconds, 3)}
        target.write_bytes(snapshot_key(sid), result.snapshot.to_json().encode())
    result.warnings = warnings = work.warnings + warnings
    snap = result.snapshot
    result.lines = [
        f"snapshot {sid} at {target.url}: {len(snap.entries)} files, {_mb(snap.size)}",
        f"sent {result.sent} object(s) ({_mb(result.sent_bytes)} stored), skipped {result.skipped} already at "
        f"the target ({_mb(result.skipped_bytes)}), in {result.seconds:.1f} s",
    ]
    if work.open_segments:
        shown = ", ".join(work.open_segments[:3]) + (" ..." if len(work.open_segments) > 3 else "")
        result.lines.append(f"{len(work.open_segments)} open segment(s) ({shown}) taken up to their last whole "
                            "record; the run after they are sealed takes the sealed files")
    if store is not None and store_path is None:
        result.lines.append(f"no run store at {store}: not backed up")
    result.lines += [f"warning: {w}" for w in warnings]
    return result


def _back_up(target: Target, src: Source, tmp: Path, timeout: float, is_present: Callable[[str], bool],
             known: dict[str, Entry], sent_now: dict[str, Entry], last_store: Entry | None,
             result: RunResult) -> Entry:
    compression = "gzip" if src.storage != "raw" else None
    file = src.file
    source_sha = None
    if src.storage == "sqlite-copy":
        file = tmp / f"copy-{len(sent_now)}-{src.file.name}"
        sqlite_copy(src.file, file)
    elif src.storage == "segment-prefix":
        file = tmp / f"open-{len(sent_now)}-{src.file.name}"
        segment_prefix_copy(src.file, file)
    elif src.storage == "duckdb-copy":
        file = tmp / "copy-store.duckdb"

        def needed(sha: str) -> bool:
            return not (last_store is not None and last_store.source_sha256 == sha and is_present(last_store.object))

        source_sha = duckdb_copy(src.file, file, timeout, needed)
        if not file.exists():  # unchanged since the last snapshot's copy
            assert last_store is not None
            result.skipped += 1
            result.skipped_bytes += last_store.object_size
            return dataclasses.replace(last_store, path=src.rel)
    for _attempt in range(3):
        sha, size = file_sha256(file)
        key = object_key(sha, compression)
        old = sent_now.get(key) or (known.get(key) if is_present(key) else None)
        if old is not None:
            if key not in sent_now:
                sent_now[key] = old  # counted once per run, like a sent one
                result.skipped += 1
                result.skipped_bytes += old.object_size
            return Entry(src.rel, src.kind, src.storage, compression, sha, size, key, old.object_sha256,
                         old.object_size, source_sha)
        got_sha, got_size, obj_sha, obj_size = _send_file(target, key, file, compression)
        if got_sha == sha:
            entry = Entry(src.rel, src.kind, src.storage, compression, sha, size, key, obj_sha, obj_size, source_sha)
            sent_now[key] = entry
            result.sent += 1
            result.sent_bytes += obj_size
            return entry
        target.remove(key)  # the file changed while it was read: hash it again
    raise CopyError(f"{src.rel} kept changing while it was read (3 tries)")


# ---------------------------------------------------------------- verify


@dataclass
class VerifyResult:
    snapshot: Snapshot
    problems: list[str] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)  # per kind: files, bytes, stored, bad
    seconds: float = 0.0
    bytes_read: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_object(target: Target, entry: Entry, sink: IO[bytes] | None = None) -> tuple[str | None, int]:
    """Read ``entry``'s object back (writing the original bytes to ``sink``): what is wrong with it
    (``object KEY is missing``...) or None, and the bytes read from the target."""
    what = f"object {entry.object}"
    stored = hashlib.sha256()
    original = hashlib.sha256()
    n_stored = n_orig = 0
    inflate = zlib.decompressobj(wbits=31) if entry.compression == "gzip" else None
    try:
        with target.open_read(entry.object) as fh:
            while chunk := fh.read(CHUNK):
                stored.update(chunk)
                n_stored += len(chunk)
                data = chunk
                if inflate is not None:
                    if inflate.eof:
                        raise zlib.error("data after the end of the gzip stream")
                    data = inflate.decompress(chunk)
                original.update(data)
                n_orig += len(data)
                if sink is not None:
                    sink.write(data)
        if inflate is not None and inflate.unused_data:
            raise zlib.error("data after the end of the gzip stream")
    except FileNotFoundError:
        return f"{what} is missing", 0
    except zlib.error as exc:
        return f"{what} is altered (not a valid gzip stream: {exc})", n_stored
    if n_stored < entry.object_size:
        return f"{what} is truncated ({n_stored:,} of {entry.object_size:,} bytes)", n_stored
    if n_stored != entry.object_size:
        return f"{what} is altered ({n_stored:,} bytes instead of {entry.object_size:,})", n_stored
    if stored.hexdigest() != entry.object_sha256:
        return f"{what} is altered (sha256 {stored.hexdigest()[:16]}... instead of {entry.object_sha256[:16]}...)", \
            n_stored
    if inflate is not None and not inflate.eof:
        return f"{what} is truncated (the gzip stream ends early)", n_stored
    if n_orig != entry.size or original.hexdigest() != entry.sha256:
        return f"{what} is altered (its content's sha256 is not the file's)", n_stored
    return None, n_stored


def verify(target: Target, sid: str | None = None, *, checked: dict[str, str | None] | None = None) -> VerifyResult:
    """Read back every object of snapshot ``sid`` (default: the newest) and compare both hashes. ``checked``
    (object key -> problem or None) carries the objects already read by an earlier call: read once each."""
    t0 = time.perf_counter()
    snap = load_snapshot(target, sid)
    result = VerifyResult(snap)
    checked = {} if checked is None else checked
    by_kind: dict[str, dict[str, Any]] = {}
    for e in snap.entries:
        if e.object not in checked:
            problem, n = _check_object(target, e)
            checked[e.object] = problem
            result.bytes_read += n
        if checked[e.object]:
            result.problems.append(f"{e.path}: {checked[e.object]}")
        row = by_kind.setdefault(e.kind, {"kind": e.kind, "files": 0, "bytes": 0, "stored": 0, "bad": 0})
        row["files"] += 1
        row["bytes"] += e.size
        row["stored"] += e.object_size
        row["bad"] += checked[e.object] is not None
    result.rows = list(by_kind.values())
    result.seconds = time.perf_counter() - t0
    return result


# ---------------------------------------------------------------- restore


@dataclass
class RestoreResult:
    snapshot: Snapshot
    into: Path
    problems: list[str] = field(default_factory=list)
    files: int = 0
    bytes: int = 0
    seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def _check_database(path: Path, entry: Entry) -> str | None:
    if entry.storage == "sqlite-copy":
        try:
            con = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True)
            try:
                verdict = con.execute("PRAGMA integrity_check").fetchone()[0]
            finally:
                con.close()
        except sqlite3.Error as exc:
            return f"{entry.path}: the restored SQLite copy does not open ({exc})"
        return None if verdict == "ok" else f"{entry.path}: SQLite integrity check: {verdict}"
    if entry.storage == "duckdb-copy":
        import duckdb

        try:
            con = duckdb.connect(str(path), read_only=True)
            try:
                con.execute("SELECT count(*) FROM information_schema.tables").fetchone()
            finally:
                con.close()
        except duckdb.Error as exc:
            return f"{entry.path}: the restored DuckDB copy does not open ({' '.join(str(exc).split())})"
    return None


def restore(target: Target, into: Path, sid: str | None = None, *, store_to: Path | None = None) -> RestoreResult:
    """Restore snapshot ``sid`` (default: the newest) into the empty (or new) directory ``into``; the run
    store goes to ``store_to`` (which must not exist), default ``into/navale.duckdb``.

    Every object is read back into a staging folder inside ``into`` and checked; the databases are opened.
    Only when all passed are the files moved into place; on any problem the staging folder (and ``into``, if
    this created it) is removed and the problems are returned: nothing is restored.
    """
    t0 = time.perf_counter()
    into = Path(into)
    if into.exists() and (not into.is_dir() or any(into.iterdir())):
        raise BackupError(f"restore refused: {into} is not an empty directory (restore into a new or empty one)",
                          bad_input=True)
    snap = load_snapshot(target, sid)
    if store_to is not None and Path(store_to).exists() and any(e.kind == "store" for e in snap.entries):
        raise BackupError(f"restore refused: the run store {store_to} exists (restore it to a new path: --store)",
                          bad_input=True)
    result = RestoreResult(snap, into)
    store_dest = Path(store_to) if store_to is not None else into / STORE_PATH
    created = not into.exists()
    into.mkdir(parents=True, exist_ok=True)
    staging = into / f".navale-restore-{snap.id}"
    try:
        for e in snap.entries:
            dest = staging / e.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            with open(dest, "wb") as out:
                problem, _ = _check_object(target, e, out)
                out.flush()
                os.fsync(out.fileno())
            if problem is not None:
                problem = f"{e.path}: {problem}"
            if problem is None:
                problem = _check_database(dest, e)
            if problem:
                result.problems.append(problem)
        if result.problems:
            return result
        for e in snap.entries:
            dest = store_dest if e.kind == "store" else into / e.path
            dest.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(staging / e.path, dest)  # a rename, unless the store goes to another file system
            result.files += 1
            result.bytes += e.size
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if result.problems and created:
            shutil.rmtree(into, ignore_errors=True)
    result.seconds = time.perf_counter() - t0
    result.lines = [f"restored snapshot {snap.id} into {into}: {result.files} files, {_mb(result.bytes)}, "
                    f"every object checked (sha256), in {result.seconds:.1f} s"]
    if any(e.kind == "store" for e in snap.entries):
        hint = f" (navale reads it with NAVALE_DATA_DIR={into})" if store_to is None else ""
        result.lines.append(f"the run store is {store_dest}{hint}")
    if snap.skipped:
        result.lines.append(f"this snapshot did not hold {len(snap.skipped)} file(s): "
                            + "; ".join(f"{s['path']} ({s['reason']})" for s in snap.skipped[:3])
                            + (" ..." if len(snap.skipped) > 3 else ""))
    return result


# ---------------------------------------------------------------- prune


@dataclass
class PruneResult:
    kept: list[str]
    deleted: list[str]
    objects_deleted: int
    bytes_freed: int
    dry_run: bool
    lines: list[str] = field(default_factory=list)


def retained(snaps: list[Snapshot], keep_daily: int, keep_weekly: int) -> set[str]:
    """Ids kept: the newest snapshot of each of the ``keep_daily`` most recent UTC days that have one, and of
    each of the ``keep_weekly`` most recent ISO weeks that have one."""
    keep: set[str] = set()
    days: set[Any] = set()
    weeks: set[Any] = set()
    for s in sorted(snaps, key=lambda s: s.id, reverse=True):
        day = s.time.date()
        week = s.time.isocalendar()[:2]
        if day not in days and len(days) < keep_daily:
            days.add(day)
            keep.add(s.id)
        if week not in weeks and len(weeks) < keep_weekly:
            weeks.add(week)
            keep.add(s.id)
    return keep


def prune(target: Target, keep_daily: int, keep_weekly: int, *, dry_run: bool = False) -> PruneResult:
    """Delete the snapshots :func:`retained` does not keep, then every object no kept snapshot names."""
    if keep_daily < 0 or keep_weekly < 0 or keep_daily + keep_weekly < 1:
        raise BackupError("prune keeps at least one snapshot: --keep-daily and --keep-weekly are >= 0 and not "
                          "both 0", bad_input=True)
    target.check(create=False)
    sid = snapshot_id(datetime.now(timezone.utc))
    with _lock(target, "prune", sid, "run") if not dry_run else contextlib.nullcontext():
        snaps, bad = list_snapshots(target)
        if bad:
            raise BackupError(f"prune refused: {len(bad)} snapshot manifest(s) cannot be read, so the objects they "
                              f"name are unknown ({bad[0]}); repair or remove them first")
        keep = retained(snaps, keep_daily, keep_weekly)
        drop = [s for s in snaps if s.id not in keep]
        referenced = set().union(*(s.objects() for s in snaps if s.id in keep)) if keep else set()
        present = target.listing(OBJECTS)
        orphans = {k: n for k, n in present.items() if k not in referenced}
        if not dry_run:
            for s in drop:
                target.remove(snapshot_key(s.id))
            for k in sorted(orphans):
                target.remove(k)
    verb = "would delete" if dry_run else "deleted"
    lines = [f"kept {len(keep)} snapshot(s) (newest of the last {keep_daily} day(s) and {keep_weekly} ISO "
             f"week(s)); {verb} {len(drop)}: " + (", ".join(s.id for s in drop) or "none"),
             f"{verb} {len(orphans)} object(s) no kept snapshot names ({_mb(sum(orphans.values()))})"]
    return PruneResult(sorted(keep), [s.id for s in drop], len(orphans), sum(orphans.values()), dry_run, lines)
