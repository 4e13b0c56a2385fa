"""`navale data verify`: re-read every segment and partition of a collection directory and check them.

Checks (docs/data_collection_guide.md, "Integrity"): every frame's checksum; the header; a SEAL frame iff a
manifest, the SEAL the last frame and its counts those of the records; the manifest's sha256, bytes, counts and
first/last seq and time; each partition's sha256 and row count against the manifest and (``deep``) its rows
against the segment's; within a segment tick ``seq`` strictly +1 and bar times increasing (a repeat only at a contract roll: the key is contract + time); consecutive segments
of a symbol join (the header's ``prev`` names the previous segment, its last seq and, in the manifest, its
sha256; the next first seq is the previous last + 1; no bar time repeats). A torn tail of a sealed segment is an
error; a partial last frame of the open segment (the collector mid-write) is reported, not an error. Files cut
off at recovery (``*.seg.torn-N``) are listed as warnings.

A damaged segment (its frames stop before its end, not a write in flight) gets one root-cause line and only the
facts it implies (its bytes/sha256 against the manifest); what cannot be read whole is not judged again (no SEAL
or count checks, no partition-content comparison), and the next segment's chain check takes the damaged one's
end from its manifest, so an intact successor is not blamed.

Read-only, no lock taken, nothing repaired: it can run while the collector runs.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from research.data.collected import first_difference, segment_tables
from research.data.segments import (
    FORMAT,
    FRAME,
    MAGIC,
    SEAL,
    SegmentData,
    SegmentError,
    parse_segment_name,
    read_segment,
)

from .layout import TABLES, manifest_path
from .seal import MANIFEST_FORMAT, frame_counts, last_frame_kind, read_manifest

__all__ = ["verify", "VerifyReport", "Row", "Problem", "VerifyInputError"]


class VerifyInputError(ValueError):
    """The path given is not a collection directory, a symbol's segment folder or a segment."""


@dataclass
class Problem:
    level: str  # "error" | "warning"
    path: str
    message: str

    def line(self) -> str:
        return f"{self.level}: {self.path}: {self.message}"


@dataclass
class Row:
    path: str
    kind: str  # "segment" | "partition" | "torn"
    status: str  # "ok" | "open" | "warning" | "error"
    detail: str = ""


@dataclass
class VerifyReport:
    root: str
    rows: list[Row] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    deep: bool = True

    @property
    def errors(self) -> int:
        return sum(p.level == "error" for p in self.problems)

    @property
    def warnings(self) -> int:
        return sum(p.level == "warning" for p in self.problems)

    def to_dict(self) -> dict[str, Any]:
        return {"root": self.root, "deep": self.deep, "errors": self.errors, "warnings": self.warnings,
                "rows": [asdict(r) for r in self.rows], "problems": [asdict(p) for p in self.problems]}


@dataclass
class _Link:
    """What the next segment of a chain must agree with."""

    name: str
    last_seq: int | None  # the last tick seq so far in the chain (carried over segments without ticks)
    own_last_seq: int | None  # this segment's own last seq (what its successor's header names)
    sha256: str | None
    last_bar_ts: int | None


class _Checker:
    def __init__(self, root: Path, deep: bool):
        self.root = root
        self.report = VerifyReport(str(root), deep=deep)
        self.deep = deep
        self.referenced: set[Path] = set()

    def rel(self, p: Path) -> str:
        try:
            return p.relative_to(self.root).as_posix()
        except ValueError:
            return str(p)

    def add(self, level: str, p: Path, message: str) -> None:
        self.report.problems.append(Problem(level, self.rel(p), message))

    # --- one segment -------------------------------------------------------------------------------------
    def segment(self, seg: Path, newest: bool) -> tuple[SegmentData | None, dict | None, bool]:
        """Check one segment on its own; returns its data and manifest (None when unreadable) and whether it
        is damaged (its whole records stop before its end: ``data`` is only what precedes the damage)."""
        at = len(self.report.rows)
        mpath = manifest_path(seg)
        manifest = None
        if mpath.exists():
            try:
                manifest = read_manifest(mpath)
            except SegmentError as exc:
                self.add("error", mpath, str(exc).split(": ", 1)[-1])
        buf = seg.read_bytes()
        try:
            data = read_segment(seg, allow_torn=True, data=buf)
        except SegmentError as exc:
            self.add("error", seg, str(exc).split(": ", 1)[-1])
            self._row(seg, at, "unreadable")
            return None, manifest, True
        sc = data.scan
        sealed = data.seal is not None
        closed = sealed or mpath.exists()
        status_detail = ""
        damaged = False
        if sc.problem is not None:
            in_flight = not closed and self._in_flight(buf, sc.valid_end, sc.problem)
            if in_flight:
                status_detail = f"open, {sc.torn_bytes} bytes in flight"
            else:
                damaged = True
                status_detail = (f"damaged at byte {sc.valid_end} ({'sealed' if closed else 'open'}), "
                                 "readable before it:")
                what = "a sealed segment" if closed else "an open segment, with whole records after it"
                self.add("error", seg, f"byte {sc.valid_end}: {sc.problem} in {what} "
                                       f"({sc.torn_bytes} bytes after the last whole record)")
        if sc.valid_end > len(MAGIC):
            h = data.header
            date = parse_segment_name(seg)
            if h.get("format") != FORMAT:
                self.add("error", seg, f"byte {len(MAGIC)}: header format {h.get('format')!r} is not {FORMAT!r}")
            if h.get("date") != date:
                self.add("error", seg, f"byte {len(MAGIC) + FRAME.size}: header date {h.get('date')} is not the file's {date}")
            if h.get("symbol") != seg.parent.name:
                self.add("error", seg, f"byte {len(MAGIC) + FRAME.size}: header symbol {h.get('symbol')} is not "
                                       f"its folder's {seg.parent.name}")
        elif closed and not damaged:
            self.add("error", seg, f"byte {len(MAGIC)}: no header record")
        if damaged:
            pass  # the SEAL and the counts lie in (or after) what cannot be read: not judged on them
        elif sealed:
            if last_frame_kind(buf[:sc.valid_end]) != SEAL:
                self.add("error", seg, "records follow the SEAL record")
            exp = data.seal.get("counts")
            if isinstance(exp, dict):
                act = {k: v for k, v in frame_counts(data).items() if k != "seal"}
                diff = [f"{k} {act.get(k, 0)} records, the SEAL says {v}" for k, v in sorted(exp.items())
                        if act.get(k, 0) != int(v)]
                if diff:
                    self.add("error", seg, "SEAL counts differ: " + ", ".join(diff))
            if mpath.exists() is False:
                self.add("warning", seg, "sealed but no manifest yet (finalize_segment has not run: the collector "
                                         "finishes it at its next start)")
        elif mpath.exists():
            self.add("error", seg, f"has a manifest but no SEAL record (byte {sc.valid_end})")
        elif not newest:
            self.add("warning", seg, "not sealed, and a later segment exists (the collector seals it at its next start)")
        self._within(seg, data)
        if manifest is not None:
            self._manifest(seg, mpath, manifest, data, buf, damaged)
        ticks = data.ticks
        if not status_detail:
            status_detail = "sealed" if mpath.exists() and sealed else ("open" if not closed else "sealed, no manifest")
        counts = f"{len(ticks):,} ticks, {len(data.bars):,} bars"
        if len(ticks):
            counts += f", seq {int(ticks['seq'][0])}-{int(ticks['seq'][-1])}"
        status_detail += (" " if damaged else ", ") + counts
        self._row(seg, at, status_detail, open_=not closed)
        return data, manifest, damaged

    @staticmethod
    def _in_flight(buf: bytes, end: int, problem: str) -> bool:
        """A partial last frame (the writer mid-write), not damage followed by more records."""
        if problem.startswith(("a partial frame header", "a partial record", "a partial magic")):
            return True
        if problem == "a checksum mismatch" and end + FRAME.size <= len(buf):
            length = FRAME.unpack_from(buf, end)[0]
            return end + FRAME.size + length == len(buf)
        return False

    def _row(self, seg: Path, at: int, detail: str, open_: bool = False) -> None:
        self.report.rows.insert(at, Row(self.rel(seg), "segment", "open" if open_ else "ok", detail))

    def finish(self) -> None:
        """Each row's status: the worst level of the problems found for its file."""
        levels: dict[str, set[str]] = {}
        for p in self.report.problems:
            levels.setdefault(p.path, set()).add(p.level)
            if p.path.endswith(".manifest.json"):  # a manifest's problems show on its segment's row
                levels.setdefault(p.path[: -len(".manifest.json")] + ".seg", set()).add(p.level)
        for r in self.report.rows:
            got = levels.get(r.path, set())
            r.status = "error" if "error" in got else ("warning" if "warning" in got else r.status)

    def _within(self, seg: Path, data: SegmentData) -> None:
        seq = data.ticks["seq"]
        if len(seq) > 1:
            d = np.diff(seq)
            bad = np.flatnonzero(d != 1)
            if bad.size:
                i = int(bad[0])
                kind = "a duplicate" if d[i] == 0 else ("out of order" if d[i] < 0 else f"a hole of {int(d[i]) - 1}")
                self.add("error", seg, f"tick {i + 1}: seq {int(seq[i + 1])} after {int(seq[i])}: {kind} "
                                       f"({bad.size} such place(s))")
        bt = data.bars["ts_ns"]
        if len(bt) > 1:
            # the key of a bar is (contract, start): at a roll inside a bar the old contract's bar and the new
            # one's first bar share a start time; any other repeat, or a time going back, is an error
            c = np.asarray(data.bar_contracts, dtype=object)
            d = np.diff(bt)
            bad = np.flatnonzero((d < 0) | ((d == 0) & (c[1:] == c[:-1])))
            if bad.size:
                i = int(bad[0]) + 1
                self.add("error", seg, f"bar {i}: time {int(bt[i])} is not after the bar before it "
                                       f"({'a duplicate' if bt[i] == bt[i - 1] else 'out of order'})")

    def _manifest(self, seg: Path, mpath: Path, m: dict, data: SegmentData, buf: bytes, damaged: bool) -> None:
        """The manifest against its segment and partitions; for a ``damaged`` segment only its bytes and sha256
        (the rest would restate the damage) and the partitions against the manifest alone."""
        if m.get("format") != MANIFEST_FORMAT or m.get("segment") != seg.name:
            self.add("error", mpath, f"names segment {m.get('segment')!r}, not {seg.name}")
        sha = hashlib.sha256(buf).hexdigest()
        if m.get("bytes") != len(buf):
            self.add("error", mpath, f"bytes {m.get('bytes')}, the segment has {len(buf)}")
        if m.get("sha256") != sha:
            self.add("error", mpath, "sha256 differs from the segment's (the segment or the manifest was changed)")
        parts = m.get("partitions") or {}
        if damaged:
            for table in TABLES:
                self._partition(mpath, table, parts.get(table), None)
            return
        counts = frame_counts(data)
        diff = [f"{k} {v} (segment {counts.get(k, 0)})" for k, v in sorted((m.get("counts") or {}).items())
                if counts.get(k, 0) != v]
        if diff:
            self.add("error", mpath, "counts differ: " + ", ".join(diff))
        t = data.ticks
        facts = {"first_seq": int(t["seq"][0]) if len(t) else None, "last_seq": int(t["seq"][-1]) if len(t) else None,
                 "first_ts_ns": int(t["ts_ns"][0]) if len(t) else None,
                 "last_ts_ns": int(t["ts_ns"][-1]) if len(t) else None}
        for k, v in facts.items():
            if m.get(k) != v:
                self.add("error", mpath, f"{k} {m.get(k)}, the segment's ticks give {v}")
        tables = segment_tables(data) if self.deep else None
        for table in TABLES:
            self._partition(mpath, table, parts.get(table), tables[table] if tables else None)

    def _partition(self, mpath: Path, table: str, entry: dict | None, expected: pa.Table | None) -> None:
        if not entry:
            self.add("error", mpath, f"lists no {table} partition")
            return
        p = self.root / str(entry.get("path"))
        self.referenced.add(p)
        detail = ""
        if not p.exists():
            self.add("error", p, f"missing (listed in {mpath.name})")
        else:
            blob = p.read_bytes()
            if hashlib.sha256(blob).hexdigest() != entry.get("sha256"):
                self.add("error", p, f"sha256 differs from {mpath.name}'s (altered or truncated, {len(blob):,} bytes)")
            try:
                pf = pq.ParquetFile(pa.BufferReader(blob))
                rows = pf.metadata.num_rows
                detail = f"{rows:,} rows"
                if rows != entry.get("rows"):
                    self.add("error", p, f"{rows} rows, {mpath.name} says {entry.get('rows')}")
                if expected is not None:
                    diff = first_difference(expected, pf.read())
                    if diff:
                        self.add("error", p, f"content differs from the segment: {diff}")
                    else:
                        detail += ", rows = segment's"
            except (OSError, pa.ArrowInvalid) as exc:
                self.add("error", p, f"not a readable Parquet file ({str(exc).splitlines()[0]})")
        self.report.rows.append(Row(self.rel(p), "partition", "ok", detail))

    # --- chains -----------------------------------------------------------------------------------------
    def link_of(self, seg: Path, data: SegmentData | None, m: dict | None, carried: int | None) -> _Link:
        """What ``seg``'s successor must join: from its records when read whole (``data``), else from its
        manifest ``m`` (None: unknown)."""
        if data is not None:
            own = int(data.ticks["seq"][-1]) if len(data.ticks) else None
            bars = data.bars["ts_ns"]
            last_bar = int(bars[-1]) if len(bars) else None
        else:
            own = (m or {}).get("last_seq")
            last_bar = (m or {}).get("last_bar_ts_ns")
        return _Link(seg.name, own if own is not None else carried, own, (m or {}).get("sha256"), last_bar)

    def join(self, seg: Path, data: SegmentData, m: dict | None, prev: _Link | None, prev_exists: bool) -> None:
        """``seg`` continues ``prev`` (None: no earlier segment of the symbol is known)."""
        if not data.header:
            return
        hp = data.header.get("prev") or None
        named = (hp.get("segment") or hp.get("name")) if hp else None
        if prev is None:
            if named and not prev_exists:
                self.add("error", seg, f"the previous segment {named} (named in the header) is missing: the chain breaks")
            return
        if not named:
            self.add("error", seg, f"the header names no previous segment, but {prev.name} precedes it")
        elif named != prev.name:
            exists = (seg.parent / str(named)).exists()
            self.add("error", seg, f"the header continues {named}, " + (
                f"but the segment before it is {prev.name}" if exists else
                f"which is missing (the segment before it is {prev.name}): the chain breaks"))
            return
        elif hp.get("last_seq") is not None and hp.get("last_seq") != prev.own_last_seq:
            self.add("error", seg, f"the header says {prev.name} ends at seq {hp.get('last_seq')}, it ends at "
                                   f"{prev.own_last_seq}")
        mp = (m or {}).get("prev") or {}
        if prev.sha256 and mp.get("sha256") and mp.get("sha256") != prev.sha256:
            self.add("error", seg, f"its manifest's prev sha256 is not {prev.name}'s (the previous segment changed)")
        seq = data.ticks["seq"]
        if len(seq) and prev.last_seq is not None:
            first = int(seq[0])
            if first <= prev.last_seq:
                self.add("error", seg, f"seq {first} repeats {prev.name}'s (which ends at {prev.last_seq}): a duplicate "
                                       "across segments")
            elif first > prev.last_seq + 1:
                self.add("error", seg, f"seq {first} follows {prev.name}'s last {prev.last_seq}: a hole of "
                                       f"{first - prev.last_seq - 1}")
        bars = data.bars["ts_ns"]
        if len(bars) and prev.last_bar_ts is not None and int(bars[0]) <= prev.last_bar_ts:
            self.add("error", seg, f"bar time {int(bars[0])} repeats or precedes {prev.name}'s last bar: a duplicate "
                                   "across segments")


def _resolve(path: Path | None, root: Path | None) -> tuple[Path, list[str] | None, Path | None]:
    """(root, symbols or None for all, the one segment or None)."""
    if path is None:
        if root is None or not root.is_dir():
            raise VerifyInputError(f"{root}: no such collection directory")
        return root, None, None
    if not path.exists():
        raise VerifyInputError(f"{path}: no such file or directory")
    if path.is_file():
        if parse_segment_name(path) is None:
            raise VerifyInputError(f"{path}: not a segment (DATE.seg), a symbol's segment folder or a collection directory")
        return path.parent.parent.parent, [path.parent.name], path
    if (path / "segments").is_dir() or (path / "parquet").is_dir():
        return path, None, None
    if path.parent.name == "segments":
        return path.parent.parent, [path.name], None
    raise VerifyInputError(f"{path}: not a collection directory (no segments/ or parquet/ in it), a symbol's "
                           "segment folder or a segment")


def verify(path: Path | None = None, *, root: Path | None = None, deep: bool = True) -> VerifyReport:
    """Check the segments and partitions under ``path`` (a collection directory, ``segments/SYMBOL`` or one
    ``.seg``; default ``root``). ``deep`` compares each partition's rows with its segment's (it decodes every
    segment into tables: about the cost of the compaction again). Raises `VerifyInputError` for a bad path."""
    root_, symbols, only = _resolve(Path(path) if path is not None else None, Path(root) if root else None)
    ck = _Checker(root_, deep)
    seg_root = root_ / "segments"
    if symbols is None:
        symbols = sorted(p.name for p in seg_root.iterdir() if p.is_dir()) if seg_root.is_dir() else []
    for symbol in symbols:
        d = seg_root / symbol
        segs = sorted((p for p in d.glob("*.seg") if parse_segment_name(p)), key=lambda p: p.name)
        torn = sorted(p for p in d.glob("*.seg.torn-*") if p.is_file())
        names = {p.name for p in segs}
        scope = [only] if only is not None else segs
        prev: _Link | None = None
        carried: int | None = None
        for seg in scope:
            i = segs.index(seg)
            if prev is None and i > 0:  # one segment checked: its predecessor from its manifest only
                before = segs[i - 1]
                mp = manifest_path(before)
                pm = _quiet_manifest(mp)
                prev = ck.link_of(before, None, pm, None) if pm else None
            data, m, damaged = ck.segment(seg, newest=i == len(segs) - 1)
            if data is not None:
                hp = data.header.get("prev") if data.header else None
                named = (hp or {}).get("segment") or (hp or {}).get("name")
                ck.join(seg, data, m, prev, prev_exists=bool(named) and named in names)
            if damaged:  # its successor joins the end its manifest records; without one, it cannot be judged
                if m is None:
                    prev = None
                    continue
                data = None
            link = ck.link_of(seg, data, m, carried if prev is None else prev.last_seq)
            carried = link.last_seq
            prev = link
        for t in torn:
            if only is None or t.name.startswith(only.name + ".torn-"):
                ck.add("warning", t, f"{t.stat().st_size:,} bytes cut off at recovery (kept for inspection)")
                ck.report.rows.append(Row(ck.rel(t), "torn", "warning", f"{t.stat().st_size:,} bytes"))
    if only is None:
        _orphans(ck, root_, symbols)
    ck.finish()
    return ck.report


def _quiet_manifest(p: Path) -> dict | None:
    try:
        return read_manifest(p) if p.exists() else None
    except SegmentError:
        return None


def _orphans(ck: _Checker, root: Path, symbols: list[str]) -> None:
    """Partitions no manifest lists: a warning each (written before a manifest, or left without a segment)."""
    for table in TABLES:
        base = root / "parquet" / table
        if not base.is_dir():
            continue
        for f in sorted(base.glob("symbol=*/date=*/*.parquet")):
            if f in ck.referenced:
                continue
            symbol = f.parent.parent.name[len("symbol="):]
            if symbol not in symbols and (root / "segments" / symbol).is_dir():
                continue
            date = f.parent.name[len("date="):]
            seg = root / "segments" / symbol / f"{date}.seg"
            why = ("its segment has no manifest yet" if seg.exists() else "no segment for it: not checked")
            ck.add("warning", f, f"listed in no manifest ({why})")
            ck.report.rows.append(Row(ck.rel(f), "partition", "warning", why))


def report_json(report: VerifyReport) -> str:
    return json.dumps(report.to_dict(), indent=1)
