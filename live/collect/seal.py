"""Sealing a segment for good: its Parquet partitions, then its manifest.

The collector writes the SEAL frame as the last frame of a trading date's segment, fsyncs, then calls
:func:`finalize_segment`. That writes the three partitions (``ticks``, ``bars``, ``events``; atomic, the same
bytes for the same segment) and THEN ``DATE.manifest.json`` (atomic). A manifest therefore always names
partitions that are complete; a crash before it leaves a segment with a SEAL frame and no manifest, which a
second call (on restart) finishes with the same files.

Manifest (``format: navale-segment-manifest``, ``version: 1``)::

    segment, symbol, date, source, sha256, bytes,       # the .seg file
    counts {header, tick, bar, contract, event, gap, checkpoint, seal},
    first_ts_ns, last_ts_ns, first_seq, last_seq,       # of the ticks (null without ticks)
    last_bar_ts_ns,                                     # the last bar's start (null without bars)
    prev {segment, last_seq, sha256} | null,            # the segment this one continues
    partitions {ticks|bars|events: {path (relative to ROOT), sha256, rows}},
    sealed_ns                                           # from the SEAL frame (so a second call gives the same file)
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any

from research.data.collected import parquet_bytes, segment_tables
from research.data.segments import (
    FRAME,
    KIND_NAMES,
    MAGIC,
    SEAL,
    SegmentData,
    SegmentError,
    iter_frames,
    parse_segment_name,
    read_segment,
)
from research.store.files import atomic_write_bytes, atomic_write_text

from .layout import manifest_path, partition_path

__all__ = ["MANIFEST_FORMAT", "MANIFEST_VERSION", "finalize_segment", "seal_frame_payload", "make_seal_payload",
           "read_manifest", "sha256_file", "prev_link", "frame_counts", "last_frame_kind"]

MANIFEST_FORMAT = "navale-segment-manifest"
MANIFEST_VERSION = 1


def sha256_file(path: Path) -> str:
    """The SHA-256 (hex) of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def frame_counts(data: SegmentData) -> dict[str, int]:
    """Records by kind name, every kind listed (0 when absent)."""
    return {name: int(data.scan.counts.get(name, 0)) for name in KIND_NAMES.values()}


def make_seal_payload(counts: dict[str, int], first_seq: int | None, last_seq: int | None,
                      sealed_ns: int | None = None) -> dict[str, Any]:
    """The SEAL frame's JSON from running counters: the records before it by kind (header included), their
    total, the ticks' first/last ``seq`` and the wall time of sealing (``time.time_ns()`` when not given)."""
    counts = {k: int(v) for k, v in counts.items() if k != "seal"}
    return {"counts": counts, "records": sum(counts.values()), "first_seq": first_seq, "last_seq": last_seq,
            "sealed_ns": int(sealed_ns if sealed_ns is not None else time.time_ns())}


def seal_frame_payload(data: SegmentData, sealed_ns: int | None = None) -> dict[str, Any]:
    """The SEAL frame's JSON for a segment read back (an open one, whole, with no SEAL yet)."""
    if data.seal is not None:
        raise SegmentError(f"{data.scan.path}: already sealed")
    seqs = data.ticks["seq"]
    return make_seal_payload(frame_counts(data), int(seqs[0]) if len(seqs) else None,
                             int(seqs[-1]) if len(seqs) else None, sealed_ns)


def last_frame_kind(buf: bytes) -> int | None:
    """The kind of a buffer's last whole frame (None without frames)."""
    kind = None
    for _off, k, _p in iter_frames(buf, len(MAGIC)):
        kind = k
    return kind


def read_manifest(path: Path) -> dict[str, Any]:
    """A manifest's JSON; `SegmentError` (one line, naming the file) when it is not one."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise SegmentError(f"{path}: not a readable manifest ({exc})") from None
    if not isinstance(doc, dict) or doc.get("format") != MANIFEST_FORMAT:
        raise SegmentError(f"{path}: not a segment manifest (format is not {MANIFEST_FORMAT!r})")
    return doc


def prev_link(segment: Path, header: dict[str, Any]) -> dict[str, Any] | None:
    """``{segment, last_seq, sha256}`` of the segment a header's ``prev`` names: ``last_seq`` from the header,
    ``sha256`` from that segment's manifest (else the header's, else null when it is not sealed yet)."""
    prev = header.get("prev")
    if not prev:
        return None
    name = prev.get("segment") or prev.get("name")
    sha, last_seq = prev.get("sha256"), prev.get("last_seq")
    mpath = manifest_path(Path(segment).with_name(str(name))) if name else None
    if mpath is not None and mpath.exists():
        doc = read_manifest(mpath)
        sha = doc.get("sha256", sha)
        last_seq = last_seq if "last_seq" in prev else doc.get("last_seq")
    return {"segment": name, "last_seq": last_seq, "sha256": sha}


def _check_sealed(segment: Path, data: SegmentData, buf: bytes) -> None:
    sc = data.scan
    if data.seal is None:
        raise SegmentError(f"{segment}: byte {sc.valid_end}: no SEAL record (the segment is still open)")
    if last_frame_kind(buf) != SEAL:
        raise SegmentError(f"{segment}: byte {sc.valid_end}: records follow the SEAL record")
    expected = data.seal.get("counts")
    if isinstance(expected, dict):
        actual = {k: v for k, v in frame_counts(data).items() if k != "seal"}
        diff = [f"{k} {actual.get(k, 0)} != {v}" for k, v in sorted(expected.items()) if actual.get(k, 0) != int(v)]
        if diff:
            raise SegmentError(f"{segment}: the SEAL record's counts differ from the records ({', '.join(diff)})")


def finalize_segment(root: Path, segment: Path, *, source: str | None = None) -> dict[str, Any]:
    """Write a sealed segment's Parquet partitions, then its manifest; returns the manifest.

    The segment must be whole and end with a SEAL frame, else `SegmentError` (one line: file, byte offset,
    what is wrong). Idempotent: a second call writes the same bytes (the partitions are deterministic and
    ``sealed_ns`` comes from the SEAL frame). ``source`` defaults to the header's.
    """
    root, segment = Path(root), Path(segment)
    date = parse_segment_name(segment)
    if date is None:
        raise SegmentError(f"{segment}: not a segment file name (DATE.seg)")
    buf = segment.read_bytes()
    data = read_segment(segment, data=buf)  # raises on a torn or damaged tail
    if not data.header:
        raise SegmentError(f"{segment}: byte {len(MAGIC)}: no header record")
    _check_sealed(segment, data, buf)
    symbol = str(data.header.get("symbol") or segment.parent.name)
    if data.header.get("date") not in (None, date):
        raise SegmentError(f"{segment}: byte {len(MAGIC) + FRAME.size}: header date {data.header.get('date')} "
                           f"is not the file's {date}")
    partitions = {}
    for table, tab in segment_tables(data).items():
        blob = parquet_bytes(tab)
        out = partition_path(root, table, symbol, date)
        if not out.exists() or out.read_bytes() != blob:
            atomic_write_bytes(out, blob)
        partitions[table] = {"path": out.relative_to(root).as_posix(), "sha256": hashlib.sha256(blob).hexdigest(),
                             "rows": tab.num_rows}
    ticks, bars = data.ticks, data.bars
    manifest = {
        "format": MANIFEST_FORMAT,
        "version": MANIFEST_VERSION,
        "segment": segment.name,
        "symbol": symbol,
        "date": date,
        "source": source if source is not None else data.header.get("source"),
        "sha256": hashlib.sha256(buf).hexdigest(),
        "bytes": len(buf),
        "counts": frame_counts(data),
        "first_ts_ns": int(ticks["ts_ns"][0]) if len(ticks) else None,
        "last_ts_ns": int(ticks["ts_ns"][-1]) if len(ticks) else None,
        "first_seq": int(ticks["seq"][0]) if len(ticks) else None,
        "last_seq": int(ticks["seq"][-1]) if len(ticks) else None,
        "last_bar_ts_ns": int(bars["ts_ns"][-1]) if len(bars) else None,
        "prev": prev_link(segment, data.header),
        "partitions": partitions,
        "sealed_ns": int(data.seal.get("sealed_ns") or segment.stat().st_mtime_ns),
    }
    text = json.dumps(manifest, indent=1, sort_keys=True) + "\n"
    mpath = manifest_path(segment)
    if not mpath.exists() or mpath.read_text() != text:
        atomic_write_text(mpath, text)
    return manifest
