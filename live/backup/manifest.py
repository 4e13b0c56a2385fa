"""A backup snapshot's manifest: every file backed up, how it is stored, and the hashes that prove it.

One JSON file per run at ``snapshots/<ID>.json``; ``ID`` is the run's UTC time, ``20240305T120000.123456Z``
(sortable, so the newest snapshot is the last name). Written last, after every object it names is at the
target: a half run leaves objects no snapshot names (the next run sends them again, ``prune`` removes them)
and never a snapshot.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import PurePosixPath
from typing import Any

__all__ = ["Entry", "Snapshot", "ManifestError", "FORMAT", "VERSION", "STORAGES", "KINDS", "snapshot_id",
           "id_time", "object_key", "snapshot_key", "SNAPSHOTS", "OBJECTS", "LOCKS"]

FORMAT = "navale-backup"
VERSION = 1
SNAPSHOTS = "snapshots"
OBJECTS = "objects"
LOCKS = "locks"
# how a file is stored: as it is, gzip-compressed, or a consistent copy of a database made at backup time
STORAGES = ("raw", "gzip", "sqlite-copy", "duckdb-copy", "segment-prefix")
KINDS = ("segment", "open-segment", "segment-manifest", "torn-tail", "partition", "report", "sqlite", "store")
_ID_FORMAT = "%Y%m%dT%H%M%S.%fZ"


class ManifestError(ValueError):
    """A snapshot manifest that cannot be read (one line: its key and what is wrong)."""


def snapshot_id(when: datetime) -> str:
    """The id of a snapshot taken at ``when`` (tz-aware)."""
    if when.tzinfo is None:
        raise ValueError("snapshot time must be tz-aware")
    return when.astimezone(timezone.utc).strftime(_ID_FORMAT)


def id_time(sid: str) -> datetime:
    """The UTC time of snapshot ``sid``; ValueError when it is not an id."""
    return datetime.strptime(sid, _ID_FORMAT).replace(tzinfo=timezone.utc)


def snapshot_key(sid: str) -> str:
    return f"{SNAPSHOTS}/{sid}.json"


def object_key(sha256: str, compression: str | None) -> str:
    """``objects/<first 2 hex>/<sha256 of the original bytes>`` (``.gz`` when gzip-compressed)."""
    return f"{OBJECTS}/{sha256[:2]}/{sha256}{'.gz' if compression == 'gzip' else ''}"


@dataclass
class Entry:
    """One backed-up file. ``sha256``/``size`` are of the file as restored (for a database copy: the copy);
    ``object_sha256``/``object_size`` of the object at the target; ``source_sha256`` of the live database
    file when it was copied (an unchanged database is not copied again)."""

    path: str  # relative to the collection dir; the run store is "navale.duckdb"
    kind: str
    storage: str
    compression: str | None
    sha256: str
    size: int
    object: str
    object_sha256: str
    object_size: int
    source_sha256: str | None = None

    def __post_init__(self) -> None:
        parts = PurePosixPath(self.path).parts
        if not parts or self.path.startswith("/") or any(p in ("..", ".") for p in parts) or "\\" in self.path:
            raise ValueError(f"unsafe path {self.path!r} (a restore writes only inside its directory)")
        if not self.object.startswith(f"{OBJECTS}/") or ".." in self.object:
            raise ValueError(f"object key {self.object!r} is not under {OBJECTS}/")
        if self.storage not in STORAGES:
            raise ValueError(f"unknown storage {self.storage!r}")
        if self.compression not in (None, "gzip"):
            raise ValueError(f"unknown compression {self.compression!r}")


@dataclass
class Snapshot:
    id: str
    root: str
    store: str | None
    entries: list[Entry] = field(default_factory=list)
    skipped: list[dict[str, str]] = field(default_factory=list)  # {path, reason}: what this run did not back up
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def time(self) -> datetime:
        return id_time(self.id)

    @property
    def size(self) -> int:
        return sum(e.size for e in self.entries)

    @property
    def stored_size(self) -> int:
        return sum(e.object_size for e in {e.object: e for e in self.entries}.values())

    def objects(self) -> set[str]:
        return {e.object for e in self.entries}

    def to_json(self) -> str:
        doc = {"format": FORMAT, "version": VERSION, "id": self.id, "created": self.time.isoformat(),
               "root": self.root, "store": self.store, "stats": self.stats, "skipped": self.skipped,
               "entries": [asdict(e) for e in self.entries]}
        return json.dumps(doc, indent=1, sort_keys=True) + "\n"

    @classmethod
    def from_json(cls, text: str | bytes, key: str) -> Snapshot:
        try:
            doc = json.loads(text)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ManifestError(f"{key}: not a JSON manifest ({exc})") from None
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
            raise ManifestError(f"{key}: not a navale backup manifest (format is not {FORMAT!r})")
        if doc.get("version") != VERSION:
            raise ManifestError(f"{key}: manifest version {doc.get('version')!r}, this code reads {VERSION}")
        try:
            id_time(str(doc["id"]))
            entries = [Entry(**e) for e in doc["entries"]]
            return cls(id=str(doc["id"]), root=str(doc["root"]), store=doc.get("store"), entries=entries,
                       skipped=list(doc.get("skipped") or []), stats=dict(doc.get("stats") or {}))
        except (KeyError, TypeError, ValueError) as exc:
            raise ManifestError(f"{key}: malformed manifest ({type(exc).__name__}: {exc})") from None
