"""Runs the store could not take, kept as pending bundles until ``navale runs import`` adds them.

A command that cannot write the run store (held past the lock timeout, full disk, read-only
folder, damaged file) loses nothing: :func:`store_runs` saves every run it was given as one
self-contained file, ``RUN_ID.pending.parquet`` (the trade snapshots, with the manifest, summary,
store path and cause as JSON in the ``navale_pending`` schema metadata), written atomically in
``$NAVALE_DATA_DIR/pending/`` or, when that cannot be written either, in a folder beside the
outputs. A promotion decision the store could not take is saved as
``PROMOTION_ID.pending-promotion.json``. :func:`import_pending` adds bundles to a store and removes
them; importing one twice changes nothing (a run replaces the run with its id, a promotion already
stored is skipped).
"""

from __future__ import annotations

import datetime as dt
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq

from research.store import snapshots as snap
from research.store.files import atomic_write_bytes, atomic_write_text
from research.store.provenance import dumps_json
from research.store.runs import (
    PROMOTION_COLUMNS,
    RunStore,
    StoredRun,
    StoreError,
    default_store_path,
    one_line,
)

__all__ = ["RUN_SUFFIX", "PROMOTION_SUFFIX", "RunsNotStoredError", "ImportedBundle", "pending_dir",
           "store_runs", "store_promotion", "save_pending_run", "save_pending_promotion", "read_pending_run",
           "find_pending", "import_pending"]

RUN_SUFFIX = ".pending.parquet"
PROMOTION_SUFFIX = ".pending-promotion.json"
_RUN_FORMAT = "navale-pending-run/1"
_PROMOTION_FORMAT = "navale-pending-promotion/1"
_META_KEY = b"navale_pending"


class RunsNotStoredError(StoreError):
    """The store could not take the runs; ``bundles`` lists the pending files saved instead (empty when
    even those could not be written)."""

    def __init__(self, message: str, bundles: Sequence[Path] = ()) -> None:
        super().__init__(message)
        self.bundles = list(bundles)


@dataclass(frozen=True)
class ImportedBundle:
    """One bundle added to the store by :func:`import_pending`."""

    path: Path
    kind: str  # "run" or "promotion"
    id: str
    trades: int | None
    already_stored: bool = False


def pending_dir(store_path: str | Path | None = None) -> Path:
    """``pending/`` beside the store file (``$NAVALE_DATA_DIR/pending`` for the default store)."""
    return Path(store_path if store_path is not None else default_store_path()).parent / "pending"


def _now() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- saving


def save_pending_run(run: StoredRun, directory: str | Path, *, store: str | Path, reason: str) -> Path:
    """Write ``run`` as ``DIRECTORY/RUN_ID.pending.parquet`` atomically; return the path."""
    frame = run.snapshots.copy()
    if "run_id" not in frame.columns:
        frame.insert(0, "run_id", run.run_id)
    table = snap.to_arrow(frame)
    doc = {"format": _RUN_FORMAT, "run_id": run.run_id, "manifest": run.manifest, "summary": run.summary,
           "store": str(store), "reason": reason, "saved_at": _now()}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), _META_KEY: dumps_json(doc).encode()})
    buf = io.BytesIO()
    pq.write_table(table, buf)
    return atomic_write_bytes(Path(directory) / f"{run.run_id}{RUN_SUFFIX}", buf.getvalue())


def save_pending_promotion(row: dict[str, Any], directory: str | Path, *, store: str | Path, reason: str) -> Path:
    """Write a promotion row (:data:`PROMOTION_COLUMNS`) as ``PROMOTION_ID.pending-promotion.json``."""
    created = row["created"]
    doc = {"format": _PROMOTION_FORMAT, "row": {**row, "created": created.isoformat()}, "store": str(store),
           "reason": reason, "saved_at": _now()}
    return atomic_write_text(Path(directory) / f"{row['promotion_id']}{PROMOTION_SUFFIX}", dumps_json(doc) + "\n")


def _save_all(items: Sequence[Any], save, directories: Sequence[Path], store: Path,
              reason: str) -> tuple[Path | None, list[Path], str]:
    """Save every item in the first directory that takes them all; (directory, files, last failure)."""
    failure = ""
    for d in dict.fromkeys(Path(x) for x in directories):
        written: list[Path] = []
        try:
            for item in items:
                written.append(save(item, d, store=store, reason=reason))
            return d, written, ""
        except OSError as exc:
            for w in written:
                w.unlink(missing_ok=True)
            failure = f"{d}: {exc.strerror or one_line(exc)}"
    return None, [], failure


def _import_hint(directory: Path, store: Path) -> str:
    default = directory == pending_dir(store) and store == default_store_path()
    return "`navale runs import`" if default else f"`navale runs import {directory}`"


def store_runs(runs: Sequence[StoredRun], *, store_path: str | Path | None = None,
               fallback_dirs: Sequence[str | Path] = (), timeout: float | None = None) -> list[str]:
    """Write ``runs`` to the store in one transaction (all or none); return their ids.

    When the store cannot take them, every run is saved as a pending bundle (in :func:`pending_dir`,
    else the first of ``fallback_dirs`` that can be written) and :class:`RunsNotStoredError` is raised
    with a one-line message: the cause, the bundles' folder, and the command that adds them later.
    """
    store = Path(store_path) if store_path is not None else default_store_path()
    try:
        with RunStore(store, timeout=timeout) as st:
            return st.write_runs(runs)
    except StoreError as exc:
        cause = one_line(exc)
    names = ", ".join(r.run_id for r in runs[:4]) + (f" and {len(runs) - 4} more" if len(runs) > 4 else "")
    what = (f"run {names} not stored" if len(runs) == 1 else f"none of the {len(runs)} runs stored ({names})")
    directory, files, failure = _save_all(runs, save_pending_run, [pending_dir(store), *map(Path, fallback_dirs)],
                                          store, cause)
    if directory is None:
        raise RunsNotStoredError(f"{cause}; {what}, and it could not be saved as pending either ({failure}): "
                                 "only the output files hold the trades")
    return_hint = _import_hint(directory, store)
    raise RunsNotStoredError(f"{cause}; {what}: saved in {directory} ({len(files)} pending file(s)), add "
                             f"{'it' if len(files) == 1 else 'them'} later with {return_hint}", files)


def store_promotion(row: dict[str, Any], *, store_path: str | Path | None = None,
                    fallback_dirs: Sequence[str | Path] = (), timeout: float | None = None) -> Path:
    """Append a promotion row to the store; return the store path. When the store cannot take it, save
    it as a pending bundle and raise :class:`RunsNotStoredError` (one line, as :func:`store_runs`)."""
    store = Path(store_path) if store_path is not None else default_store_path()
    try:
        with RunStore(store, timeout=timeout) as st:
            st.write_promotion(row)
            return st.path
    except StoreError as exc:
        cause = one_line(exc)
    directory, files, failure = _save_all([row], save_pending_promotion,
                                          [pending_dir(store), *map(Path, fallback_dirs)], store, cause)
    what = f"promotion {row['promotion_id']} not recorded"
    if directory is None:
        raise RunsNotStoredError(f"{cause}; {what}, and it could not be saved as pending either ({failure})")
    raise RunsNotStoredError(f"{cause}; {what}: saved as {files[0]}, add it later with "
                             f"{_import_hint(directory, store)}", files)


# ---------------------------------------------------------------- reading and importing


def read_pending_run(path: str | Path) -> StoredRun:
    """The run saved in a ``.pending.parquet`` bundle (snapshots validated against the schema)."""
    path = Path(path)
    try:
        table = pq.read_table(path)
    except (OSError, ValueError) as exc:
        raise StoreError(f"{path}: not a readable pending bundle ({one_line(exc)})") from None
    raw = (table.schema.metadata or {}).get(_META_KEY)
    doc = _load_doc(path, raw, _RUN_FORMAT)
    snaps = snap.validate(table.to_pandas())
    ids = set(snaps["run_id"])
    if ids - {doc["run_id"]}:
        raise StoreError(f"{path}: snapshots of run {sorted(ids - {doc['run_id']})[0]!r} in the bundle of "
                         f"run {doc['run_id']!r}")
    return StoredRun(doc["manifest"], snaps, doc.get("summary"), doc["run_id"])


def _read_pending_promotion(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{path}: {exc.strerror or one_line(exc)}") from None
    doc = _load_doc(path, raw, _PROMOTION_FORMAT)
    row = dict(doc["row"])
    missing = [c for c in PROMOTION_COLUMNS if c not in row]
    if missing:
        raise StoreError(f"{path}: the promotion record lacks {', '.join(missing)}")
    row["created"] = dt.datetime.fromisoformat(row["created"])
    return row


def _load_doc(path: Path, raw: bytes | None, fmt: str) -> dict[str, Any]:
    if raw is None:
        raise StoreError(f"{path}: not a pending bundle (no {_META_KEY.decode()} metadata)")
    try:
        doc = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise StoreError(f"{path}: damaged pending bundle ({one_line(exc)})") from None
    if not isinstance(doc, dict) or doc.get("format") != fmt:
        raise StoreError(f"{path}: unknown pending-bundle format {doc.get('format') if isinstance(doc, dict) else doc!r}"
                         f" (this code reads {fmt})")
    return doc


def find_pending(paths: Sequence[str | Path] | None = None, store_path: str | Path | None = None) -> list[Path]:
    """Bundle files named by ``paths`` (files or folders); default: every bundle in :func:`pending_dir`."""
    if not paths:
        d = pending_dir(store_path)
        return _bundles_in(d) if d.is_dir() else []
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found.extend(_bundles_in(p))
        elif p.is_file() and p.name.endswith((RUN_SUFFIX, PROMOTION_SUFFIX)):
            found.append(p)
        elif p.exists():
            raise StoreError(f"{p}: not a pending bundle (*{RUN_SUFFIX} or *{PROMOTION_SUFFIX})")
        else:
            raise StoreError(f"{p}: no such file or folder")
    return list(dict.fromkeys(found))


def _bundles_in(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir()
                  if p.is_file() and not p.name.startswith(".") and p.name.endswith((RUN_SUFFIX, PROMOTION_SUFFIX)))


def import_pending(bundles: Sequence[Path], store_path: str | Path | None = None, *, keep: bool = False,
                   timeout: float | None = None) -> list[ImportedBundle]:
    """Add ``bundles`` to the store, each in its own transaction, removing each file once stored (unless
    ``keep``). Idempotent: a run replaces the run with its id, a promotion already stored is skipped.
    Every bundle is read and checked before the store is opened, so a damaged one stores nothing."""
    loaded: list[tuple[Path, StoredRun | dict[str, Any]]] = []
    for path in bundles:
        path = Path(path)
        loaded.append((path, read_pending_run(path) if path.name.endswith(RUN_SUFFIX) else
                       _read_pending_promotion(path)))
    done: list[ImportedBundle] = []
    if not loaded:
        return done
    with RunStore(store_path, timeout=timeout) as st:
        for path, item in loaded:
            if isinstance(item, StoredRun):
                already = st.has_run(item.run_id)
                st.write_runs([item])
                done.append(ImportedBundle(path, "run", item.run_id, len(item.snapshots), already))
            else:
                already = st.has_promotion(str(item["promotion_id"]))
                if not already:
                    st.write_promotion(item)
                done.append(ImportedBundle(path, "promotion", str(item["promotion_id"]), None, already))
            if not keep:
                path.unlink(missing_ok=True)
    return done
