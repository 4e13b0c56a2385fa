"""The durable writer of one symbol's segments (``ROOT/segments/SYMBOL/DATE.seg``, format `research.data.segments`).

Durability policy (docs/data_collection_guide.md, "Durability"):

- records are framed into a user-space buffer; :meth:`SegmentWriter.flush` hands the buffered frames to the OS
  in ONE ``os.write`` that ends with a CHECKPOINT frame (the feed's resume token after the last record, and its
  ``seq``). The collector flushes every ``flush_seconds`` (default 0.1 s) of wall time or every ``flush_records``
  records (default 2,000), whichever comes first, and before the paper trader persists its state;
- ``fsync="interval"`` (default) fsyncs at most ``fsync_seconds`` (default 1.0 s) after a flush; ``"always"``
  after every flush; ``"never"`` leaves it to the OS. A segment is fsynced when it is sealed or created;
- so a process crash (kill -9) loses nothing: the frames handed to the OS survive it, and what was still in the
  user buffer is read again from the source from the last checkpoint's token. A power loss loses at most about
  ``fsync_seconds`` + ``flush_seconds`` of records that the OS had not written (re-read from the source when it
  still has them, e.g. a Sierra ``.scid``).

Recovery at open (:meth:`SegmentWriter.recover`): a sealed segment with no manifest is finalized again; the open
(last, unsealed) segment is cut back to its last whole CHECKPOINT: the bytes cut are moved to
``DATE.seg.torn-N`` (kept, never deleted), the file is truncated and fsynced, and the cut is reported (a journal
risk event ``torn_tail`` and an EVENT frame). Records after the last checkpoint are re-collected from the source:
nothing lost, nothing doubled.

Disk full (ENOSPC/EDQUOT on write or fsync): the file is truncated back to its last good offset (never half a
frame), the buffer is kept in memory, ``disk_full`` is journaled once, the write is retried every
``retry_seconds``; ``disk_ok`` is journaled when it succeeds. :attr:`SegmentWriter.backpressure` is True once the
buffer holds ``max_buffer_bytes``: the collector then stops reading the feed (a live source keeps the data)
rather than drop anything.

Hand-written (os.write/ftruncate/fsync) because the guarantees above are about exactly which bytes reach the file
and when; no logging or columnar library exposes that.
"""

from __future__ import annotations

import errno
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from live.collect import layout
from live.events import Bar, Tick
from research.data import segments as S

__all__ = ["SegmentWriter", "Recovery", "FSYNC_POLICIES", "DISK_FULL_ERRNOS", "trading_date_bounds"]

FSYNC_POLICIES = ("interval", "always", "never")
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)})
_CT = ZoneInfo("America/Chicago")


def trading_date_bounds(ts_ns: int) -> tuple[str, int, int]:
    """``(date, start_ns, end_ns)``: the CME trading date of ``ts_ns`` (as `live.journal.trading_date`) and the
    UTC ns span it covers (17:00 CT the evening before to 17:00 CT)."""
    ct = datetime.fromtimestamp(ts_ns / 1e9, tz=timezone.utc).astimezone(_CT)
    day = (ct.replace(tzinfo=None) + timedelta(hours=7)).date()
    at17 = datetime.min.time().replace(hour=17)
    start = datetime.combine(day - timedelta(days=1), at17, tzinfo=_CT)
    end = datetime.combine(day, at17, tzinfo=_CT)
    return day.isoformat(), int(start.timestamp()) * 10**9, int(end.timestamp()) * 10**9


@dataclass
class Recovery:
    """What :meth:`SegmentWriter.recover` found: where to resume and what was repaired."""

    seq: int = 0  # last record number in the segments (0: nothing collected yet)
    token: Any = None  # the feed's resume token after that record (None: start the feed from its beginning)
    last_ts: int | None = None  # market time of the last record
    open_segment: Path | None = None  # the unsealed segment appended to, or None
    tail_ticks: list[Tick] = field(default_factory=list)  # ticks after the open segment's last BAR (the bar in progress)
    tail_late: list[bool] = field(default_factory=list)  # per tail tick: a late record (its late_record EVENT follows it)
    last_bar: tuple[int, str] | None = None  # (ts_ns, contract) of the last BAR of the open segment
    torn: list[dict[str, Any]] = field(default_factory=list)  # {segment, torn_file, bytes, frames, problem}
    finalized: list[str] = field(default_factory=list)  # sealed segments finalized again
    segments: int = 0  # segment files of the symbol


class _Entry:
    """Bytes waiting for one segment file: its date, data, whether the file is created by them, and whether
    they end with its SEAL."""

    __slots__ = ("date", "data", "create", "sealed", "path", "counts")

    def __init__(self, date: str, path: Path, create: bool, counts: dict[str, Any] | None = None) -> None:
        self.date = date
        self.path = path
        self.data = bytearray()
        self.create = create
        self.sealed = False
        self.counts = counts or _zero_counts()


def _zero_counts() -> dict[str, Any]:
    """Frames by kind name (as `research.data.segments.scan` counts them) plus the first/last tick."""
    return {**dict.fromkeys(S.KIND_NAMES.values(), 0), "first_ts": None, "last_ts": None, "first_seq": None}


def seal_payload(counts: dict[str, Any], last_seq: int) -> dict[str, Any]:
    """The SEAL frame's JSON (``live.collect.seal.make_seal_payload``): the frames before it by kind, their total,
    the ticks' first/last seq."""
    kinds = {k: int(counts[k]) for k in S.KIND_NAMES.values() if k != "seal"}
    first = counts["first_seq"]
    last = last_seq if first is not None else None
    from live.collect.seal import make_seal_payload

    return make_seal_payload(kinds, first, last)


class SegmentWriter:
    """Appends one symbol's records to its segments under ``root`` (see the module docstring for the policy).

    Args:
        root: the collection directory.
        symbol: the product root (``ES``): the segment folder.
        source: what the records come from (the feed's text), written in headers.
        fsync: ``"interval"`` | ``"always"`` | ``"never"``; ``fsync_seconds``: the interval.
        flush_seconds / flush_records: when :meth:`maybe_flush` flushes.
        max_buffer_bytes: the buffer size at which :attr:`backpressure` turns on (disk full).
        on_event: ``(kind, level, detail, ts_ns)`` called for what the writer reports (torn tails, disk full...).
        finalize: ``finalize(root, segment_path, source=...)`` run on a sealed segment (manifest + Parquet).
        write / fsync_fn: ``os.write`` / ``os.fsync`` (injectable: tests simulate a full disk).
    """

    def __init__(self, root: str | Path, symbol: str, *, source: str = "", fsync: str = "interval",
                 fsync_seconds: float = 1.0, flush_seconds: float = 0.1, flush_records: int = 2000,
                 max_buffer_bytes: int = 256 << 20, retry_seconds: float = 2.0,
                 on_event: Callable[[str, str, str, int], None] | None = None,
                 finalize: Callable[..., Any] | None = None, write: Callable[[int, bytes], int] = os.write,
                 fsync_fn: Callable[[int], None] = os.fsync, clock: Callable[[], float] = time.monotonic) -> None:
        if fsync not in FSYNC_POLICIES:
            raise ValueError(f"fsync policy {fsync!r}: use one of {', '.join(FSYNC_POLICIES)}")
        if not fsync_seconds > 0 or not flush_seconds > 0:
            raise ValueError("fsync_seconds and flush_seconds must be > 0")
        self.root = Path(root)
        self.symbol = symbol
        self.source = source
        self.fsync_policy = fsync
        self.fsync_seconds = float(fsync_seconds)
        self.flush_seconds = float(flush_seconds)
        self.flush_records = max(1, int(flush_records))
        self.max_buffer_bytes = int(max_buffer_bytes)
        self.retry_seconds = float(retry_seconds)
        self.on_event = on_event
        self.finalize = finalize
        self._write = write
        self._fsync = fsync_fn
        self.clock = clock
        self.dir = layout.segment_dir(self.root, symbol)
        self.seq = 0
        self.token: Any = None  # feed token after the last record appended
        self.last_ts: int | None = None
        self.contract: str | None = None  # contract of the open segment's last CONTRACT frame
        self._queue: list[_Entry] = []
        self._fd: int | None = None  # the file of self._queue[0] (or of the open segment)
        self._fd_path: Path | None = None
        self._good = 0  # the file's size after the last whole write
        self._unsynced = False
        self._last_flush = clock()
        self._last_fsync = clock()
        self._since_ckpt = 0  # records appended since the last CHECKPOINT frame
        self._date_span: tuple[str, int, int] | None = None
        self._dates: set[str] = set()  # trading dates that have a segment file
        self._pre: list[bytes] = []  # frames waiting for a segment to open (events before the first record)
        self.disk_full = False
        self._retry_at = 0.0
        self.bytes_written = 0
        self.flushes = 0
        self.fsyncs = 0
        self.segments_sealed = 0

    # ------------------------------------------------------------------ state
    @property
    def open_date(self) -> str | None:
        return self._queue[-1].date if self._queue else None

    @property
    def open_path(self) -> Path | None:
        return self._queue[-1].path if self._queue else None

    @property
    def buffered_bytes(self) -> int:
        return sum(len(e.data) for e in self._queue)

    @property
    def backpressure(self) -> bool:
        """The buffer is full (the disk is): stop reading the feed until a flush succeeds."""
        return self.buffered_bytes >= self.max_buffer_bytes

    def segment_bytes(self) -> int:
        """Bytes of the open segment (on disk plus buffered)."""
        if not self._queue:
            return 0
        e = self._queue[-1]
        if self._fd_path == e.path:
            on_disk = self._good
        else:
            try:
                on_disk = e.path.stat().st_size
            except OSError:
                on_disk = 0
        return on_disk + len(e.data)

    def _report(self, kind: str, level: str, detail: str, ts_ns: int | None = None) -> None:
        ts = int(ts_ns if ts_ns is not None else (self.last_ts or time.time_ns()))
        if self.on_event is not None:
            self.on_event(kind, level, detail, ts)

    # ------------------------------------------------------------------ recovery
    def recover(self) -> Recovery:
        """Repair and read the symbol's segments: where to resume (see the module docstring)."""
        rec = Recovery()
        self.dir.mkdir(parents=True, exist_ok=True)
        segs = sorted(p for p in self.dir.iterdir() if p.is_file() and S.parse_segment_name(p))
        rec.segments = len(segs)
        self._dates = {S.parse_segment_name(p) for p in segs}
        unsealed = []
        for seg in segs:  # a segment with a manifest is sealed; the others are scanned
            if layout.manifest_path(seg).exists():
                continue
            try:
                sc = S.scan(seg)
            except S.SegmentError as exc:
                raise S.SegmentError(f"{exc}: move it aside to start collecting again") from None
            if sc.sealed:
                self._finalize(seg)
                rec.finalized.append(seg.name)
            else:
                unsealed.append(seg)
        for seg in unsealed[:-1]:
            self._report("unsealed_segment", "warning", f"{seg.name} is not sealed but is not the newest segment: "
                         "left as it is (navale data verify reports it)")
        if unsealed and unsealed[-1] == segs[-1]:
            seg = segs[-1]
            buf = self._cut_tail(seg, seg.read_bytes(), rec)
            if not buf:  # not even the magic whole (a first write cut short): the segment starts again
                seg.unlink(missing_ok=True)
                _fsync_dir(seg.parent)
                self._dates.discard(S.parse_segment_name(seg))
            if seg.exists():
                rec.open_segment = seg
                self._adopt_open(seg, buf, list(S.iter_frames(buf)), rec)
        # the resume point: the newest checkpoint (a segment cut to nothing holds none: the one before it)
        for seg in reversed(segs):
            if not seg.exists():
                continue
            last_ck = None
            for _, kind, payload in S.iter_frames(seg.read_bytes()):
                if kind == S.CHECKPOINT:
                    last_ck = payload
            if last_ck is not None:
                ck = json.loads(bytes(last_ck))
                rec.seq, rec.token, rec.last_ts = int(ck["seq"]), ck.get("token"), ck.get("ts_ns")
                break
        self.seq, self.token, self.last_ts = rec.seq, rec.token, rec.last_ts
        for t in rec.torn:
            self._report("torn_tail", "warning",
                         f"{t['segment']}: {t['bytes']:,} bytes after the last checkpoint cut ({t['frames']} whole "
                         f"frame(s), then {t['problem'] or 'no torn frame'}); kept in {t['torn_file']}; those "
                         "records are read again from the source")
            self.append_event(int(rec.last_ts or time.time_ns()), "torn_tail", "warning",
                              f"{t['bytes']} bytes cut at recovery, kept in {t['torn_file']}")
        return rec

    def _cut_tail(self, seg: Path, buf: bytes, rec: Recovery) -> bytes:
        """Truncate an open segment to its last whole CHECKPOINT (or its header); the cut bytes go to
        ``DATE.seg.torn-N``. Returns the bytes kept."""
        keep = 0
        frames = 0
        problem = None
        if len(buf) >= len(S.MAGIC) and buf[:len(S.MAGIC)] == S.MAGIC:
            sc = S.scan(seg, buf)
            problem = sc.problem
            for off, kind, payload in S.iter_frames(buf):
                end = off + S.FRAME.size + len(payload)
                if kind in (S.CHECKPOINT, S.HEADER):
                    keep, frames = end, 0
                else:
                    frames += 1
        else:
            problem = f"a partial magic ({len(buf)} bytes)"
        if keep == len(buf):
            return buf
        n = 1
        while seg.with_name(f"{seg.name}.torn-{n}").exists():
            n += 1
        torn = seg.with_name(f"{seg.name}.torn-{n}")
        from research.store.files import atomic_write_bytes

        atomic_write_bytes(torn, buf[keep:])
        fd = os.open(seg, os.O_WRONLY)
        try:
            os.ftruncate(fd, keep)
            os.fsync(fd)
        finally:
            os.close(fd)
        rec.torn.append({"segment": seg.name, "torn_file": torn.name, "bytes": len(buf) - keep, "frames": frames,
                         "problem": problem})
        if keep == 0:  # not even a header: the segment is created again by the next record
            seg.unlink()
        return buf[:keep]

    def _adopt_open(self, seg: Path, buf: bytes, frames: list, rec: Recovery) -> None:
        """Continue appending to the open segment: counts, contract, the ticks of the bar in progress."""
        if not seg.exists():
            rec.open_segment = None
            return
        date = S.parse_segment_name(seg)
        e = _Entry(date, seg, create=False)
        c = e.counts
        contract = ""
        tail: list[Tick] = []
        late: list[bool] = []
        prev = None
        for _, kind, payload in frames:
            c[S.KIND_NAMES[kind]] += 1
            if kind == S.TICK:
                ts, price, size, side, ntr, bid, ask, seq = S.TICK_STRUCT.unpack(payload)
                if c["first_ts"] is None:
                    c["first_ts"], c["first_seq"] = ts, seq
                c["last_ts"] = ts
                tail.append(Tick(ts, price, size, side, contract, ntr, bid, ask))
                late.append(False)
            elif kind == S.BAR:
                rec.last_bar = (S.BAR_STRUCT.unpack(payload)[0], contract)
                tail, late = [], []
            elif kind == S.CONTRACT:
                contract = str(json.loads(bytes(payload)).get("contract", ""))
            elif kind == S.EVENT and prev == S.TICK and late:
                # the collector writes a trade's late_record EVENT right after it: that trade is in no bar
                event = bytes(payload)
                late[-1] = b"late_record" in event and json.loads(event).get("kind") == "late_record"
            prev = kind
        rec.tail_ticks, rec.tail_late = tail, late
        self.contract = contract or None
        self._queue = [e]
        self._open_fd(seg, len(buf))

    def _finalize(self, seg: Path) -> None:
        if self.finalize is None:
            return
        try:
            self.finalize(self.root, seg, source=self.source)
        except Exception as exc:  # the segment stays sealed; the next start finalizes it again
            self._report("finalize_failed", "warning", f"{seg.name}: {' '.join(str(exc).split())} (retried at the next start)")

    # ------------------------------------------------------------------ appending
    def _entry_for(self, ts_ns: int) -> _Entry:
        """The buffer entry a record of time ``ts_ns`` goes to; a later trading date seals the open segment."""
        span = self._date_span
        if span is None or not (span[1] <= ts_ns < span[2]):
            span = self._date_span = trading_date_bounds(ts_ns)
        date = span[0]
        if self._queue and not self._queue[-1].sealed:
            cur = self._queue[-1]
            if date <= cur.date:  # same date (or a record older than the segment: kept where it arrives)
                return cur
            self._seal(cur)
        latest = max(self._dates) if self._dates else None
        if latest is not None and date <= latest:  # the newest segment is sealed: never write before or into it
            date = (datetime.fromisoformat(latest) + timedelta(days=1)).date().isoformat()
            self._pre.append(S.json_frame(S.EVENT, {"ts_ns": int(ts_ns), "kind": "sealed_date", "level": "warning",
                                                    "detail": f"a record of trading date {span[0]} after the "
                                                              f"{latest} segment was sealed: kept in the {date} one"}))
        self._dates.add(date)
        return self._new_entry(date)

    def _new_entry(self, date: str) -> _Entry:
        path = layout.segment_path(self.root, self.symbol, date)
        prev = None
        if self._queue:
            prev = {"segment": self._queue[-1].path.name, "last_seq": self.seq}
        else:
            older = sorted(p.name for p in self.dir.glob("*.seg") if S.parse_segment_name(p) and p.name < path.name)
            if older:
                prev = {"segment": older[-1], "last_seq": self.seq}
        e = _Entry(date, path, create=True)
        e.data += S.header_frame(self.symbol, date, self.source, time.time_ns(), prev)
        e.data += self._checkpoint()
        e.counts["header"] = e.counts["checkpoint"] = 1
        for f in self._pre:
            e.data += f
            e.counts["event"] += 1
        self._pre = []
        self._queue.append(e)
        self.contract = None
        return e

    def _checkpoint(self, e: _Entry | None = None) -> bytes:
        self._since_ckpt = 0
        if e is not None:
            e.counts["checkpoint"] += 1
        return S.json_frame(S.CHECKPOINT, {"seq": self.seq, "token": self.token, "ts_ns": self.last_ts,
                                           "wall_ns": time.time_ns()})

    def _seal(self, e: _Entry) -> None:
        e.data += self._checkpoint(e)
        e.data += S.json_frame(S.SEAL, seal_payload(e.counts, self.seq))
        e.counts["seal"] += 1
        e.sealed = True

    def _contract(self, e: _Entry, contract: str) -> None:
        if contract != self.contract:
            e.data += S.json_frame(S.CONTRACT, {"contract": contract})
            e.counts["contract"] += 1
            self.contract = contract

    def append_tick(self, t: Tick, token: Any) -> int:
        """Buffer one trade; ``token``: the feed's resume token after it. Returns its ``seq``."""
        e = self._entry_for(t.ts_ns)
        if t.contract != self.contract:
            self._contract(e, t.contract)
        self.seq += 1
        e.data += S.tick_frame(t.ts_ns, t.price, t.size, t.side, t.num_trades, t.bid, t.ask, self.seq)
        c = e.counts
        c["tick"] += 1
        if c["first_ts"] is None:
            c["first_ts"], c["first_seq"] = t.ts_ns, self.seq
        c["last_ts"] = t.ts_ns
        self.token = token
        self.last_ts = t.ts_ns
        self._since_ckpt += 1
        return self.seq

    def append_bar(self, b: Bar) -> None:
        """Buffer one closed bar (it goes to its own trading date's segment, before the trade that closed it)."""
        e = self._entry_for(b.ts_ns)
        if b.contract != self.contract:
            self._contract(e, b.contract)
        e.data += S.bar_frame(b.ts_ns, b.open, b.high, b.low, b.close, b.volume, b.bid_volume, b.ask_volume,
                              b.num_trades)
        e.counts["bar"] += 1

    def append_event(self, ts_ns: int, kind: str, level: str, detail: str) -> None:
        """Buffer an EVENT frame (into the open segment, or the next one to open)."""
        f = S.json_frame(S.EVENT, {"ts_ns": int(ts_ns), "kind": kind, "level": level, "detail": detail})
        if self._queue and not self._queue[-1].sealed:
            self._queue[-1].data += f
            self._queue[-1].counts["event"] += 1
        else:
            self._pre.append(f)

    def append_gap(self, start_ns: int, end_ns: int, reason: str) -> None:
        """Buffer a GAP frame: the feed gave nothing from ``start_ns`` to ``end_ns`` (nothing is invented)."""
        e = self._entry_for(end_ns)
        e.data += S.json_frame(S.GAP, {"start_ns": int(start_ns), "end_ns": int(end_ns), "reason": reason})
        e.counts["gap"] += 1

    # ------------------------------------------------------------------ writing
    def maybe_flush(self) -> bool:
        """Flush when ``flush_records`` records or ``flush_seconds`` of wall time have passed; fsync per policy.
        False while the disk is full."""
        now = self.clock()
        if self._since_ckpt >= self.flush_records or (now - self._last_flush >= self.flush_seconds and
                                                      (self._since_ckpt or any(e.data for e in self._queue))):
            return self.flush()
        if self._unsynced and self.fsync_policy == "interval" and now - self._last_fsync >= self.fsync_seconds:
            return self._sync()
        return not self.disk_full

    def flush(self, *, fsync: bool = False) -> bool:
        """Hand every buffered frame to the OS, ending with a CHECKPOINT (one write per segment); ``fsync``:
        fsync too whatever the policy. False when the disk is full (nothing lost: the buffer stays)."""
        now = self.clock()
        self._last_flush = now
        if self.disk_full and now < self._retry_at:
            return False
        if self._queue and not self._queue[-1].sealed and self._since_ckpt:
            self._queue[-1].data += self._checkpoint(self._queue[-1])
        while self._queue:
            e = self._queue[0]
            if not e.data and not e.sealed:
                break
            if not self._write_entry(e):
                return False
            if e.sealed:
                if not self._sync():
                    return False
                os.close(self._fd)
                self._fd = self._fd_path = None
                self._queue.pop(0)
                self.segments_sealed += 1
                self._finalize(e.path)
            else:  # the open segment: written up to its end
                break
        self.flushes += 1
        if fsync or self.fsync_policy == "always" or (
                self.fsync_policy == "interval" and self.clock() - self._last_fsync >= self.fsync_seconds):
            return self._sync()
        return True

    def _open_fd(self, path: Path, size: int | None = None) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
        self._fd_path = path
        self._good = os.lseek(self._fd, 0, os.SEEK_END) if size is None else size
        os.lseek(self._fd, self._good, os.SEEK_SET)

    def _write_entry(self, e: _Entry) -> bool:
        try:
            if self._fd_path != e.path:
                created = not e.path.exists()
                self._open_fd(e.path)
                if created:
                    _fsync_dir(e.path.parent)
                if e.create and self._good:  # a retry after a failed first write: start the file again
                    self._truncate(0)
                e.create = False
            view = memoryview(e.data)
            done = 0
            while done < len(view):
                n = self._write(self._fd, view[done:])
                if n <= 0:
                    raise OSError(errno.EIO, "write returned 0")
                done += n
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                self._truncate(self._good)
                self._full(exc, e.path)
                return False
            self._truncate(self._good)
            raise
        self._good += len(e.data)
        self.bytes_written += len(e.data)
        e.data = bytearray()
        self._unsynced = True
        self._ok()
        return True

    def _truncate(self, size: int) -> None:
        if self._fd is None:
            return
        try:
            os.ftruncate(self._fd, size)
            os.lseek(self._fd, size, os.SEEK_SET)
            self._good = size
        except OSError:
            pass

    def _sync(self) -> bool:
        if self._fd is None or not self._unsynced:
            self._last_fsync = self.clock()
            return not self.disk_full
        try:
            self._fsync(self._fd)
        except OSError as exc:
            if exc.errno in DISK_FULL_ERRNOS:
                self._full(exc, self._fd_path)
                return False
            raise
        self.fsyncs += 1
        self._unsynced = False
        self._last_fsync = self.clock()
        return True

    def _full(self, exc: OSError, path: Path | None) -> None:
        self._retry_at = self.clock() + self.retry_seconds
        if not self.disk_full:
            self.disk_full = True
            self._report("disk_full", "critical",
                         f"{path}: {exc.strerror or exc}: {self.buffered_bytes:,} bytes kept in memory, retried every "
                         f"{self.retry_seconds:g} s (the feed is paused beyond {self.max_buffer_bytes:,} bytes)")

    def _ok(self) -> None:
        if self.disk_full:
            self.disk_full = False
            self._report("disk_ok", "info", f"{self._fd_path}: writing again; nothing was lost")
            e = self._queue[-1] if self._queue else None
            if e is not None and not e.sealed:
                e.data += S.json_frame(S.EVENT, {"ts_ns": int(self.last_ts or time.time_ns()), "kind": "disk_full",
                                                 "level": "critical", "detail": "the disk was full; writes resumed, "
                                                 "nothing lost"})
                e.counts["event"] += 1

    def seal_open(self) -> bool:
        """Seal the open segment now (the feed has ended: no record will ever come for it) and flush: manifest,
        Parquet partitions and the daily summary follow as at a date's end. False: the disk is full."""
        if self._queue and not self._queue[-1].sealed:
            self._seal(self._queue[-1])
        return self.flush(fsync=True)

    def close(self) -> bool:
        """Flush and fsync everything (the segment stays open: the next run appends to it). False: the disk is
        full and the buffer could not be written (it is re-read from the source from the last checkpoint)."""
        self._retry_at = 0.0
        ok = self.flush(fsync=True)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = self._fd_path = None
        return ok


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
