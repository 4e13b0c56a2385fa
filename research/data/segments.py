"""The collector's segment files: append-only, one per symbol and CME trading date, every record framed.

Layout: the 8-byte magic ``NAVSEG1\\n``, then frames ``<u4 payload_len><u4 crc32><u1 kind>`` + payload, little
endian, where the CRC-32 covers the kind byte and the payload. A frame is whole or it is not there: a reader
stops at the first frame whose header or payload is short (a torn tail, from a crash mid-write) or whose CRC
differs (a torn or damaged write), and says where (:func:`scan`).

Kinds (``KIND_NAMES``):

- ``HEADER``: JSON ``{format, version, symbol, date, source, created_ns, prev}`` (``prev``: the previous
  segment's name and last ``seq``, or null), the first frame of every segment;
- ``TICK``: a fixed struct (``TICK_STRUCT``): ts_ns, price, size, side, num_trades, bid, ask, seq;
- ``BAR``: a fixed struct (``BAR_STRUCT``): ts_ns, open, high, low, close, volume, bid_volume, ask_volume,
  num_trades;
- ``CONTRACT``: JSON ``{contract}``: the contract code of the records that follow;
- ``EVENT``: JSON ``{ts_ns, kind, level, detail}`` (feed events, quality findings, restarts);
- ``GAP``: JSON ``{start_ns, end_ns, reason}``: the feed gave nothing over that span (nothing is invented);
- ``CHECKPOINT``: JSON ``{seq, token, ts_ns, wall_ns}``: the feed's resume token after record ``seq``;
- ``SEAL``: JSON ``{records, last_seq, ...}``: the last frame of a sealed segment.

``seq`` is the collector's running record number per symbol (1, 2, ... across segments): the key of "no
duplicate, no hole". The format is written by hand (``struct`` + ``zlib.crc32``): it is a record log, which
no columnar library provides with per-record checksums and torn-tail detection; the sealed segments are
compacted to Parquet for everything else.
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "MAGIC", "FORMAT", "VERSION", "HEADER", "TICK", "BAR", "CONTRACT", "EVENT", "GAP", "CHECKPOINT", "SEAL",
    "KIND_NAMES", "JSON_KINDS", "FRAME", "TICK_STRUCT", "BAR_STRUCT", "TICK_DTYPE", "BAR_DTYPE", "SegmentError",
    "frame", "tick_frame", "bar_frame", "json_frame", "header_frame", "iter_frames", "scan", "ScanResult",
    "read_segment", "SegmentData", "segment_name", "parse_segment_name",
]

MAGIC = b"NAVSEG1\n"
FORMAT = "navale-segment"
VERSION = 1

HEADER, TICK, BAR, CONTRACT, EVENT, GAP, CHECKPOINT, SEAL = range(8)
KIND_NAMES = {HEADER: "header", TICK: "tick", BAR: "bar", CONTRACT: "contract", EVENT: "event", GAP: "gap",
              CHECKPOINT: "checkpoint", SEAL: "seal"}
JSON_KINDS = frozenset({HEADER, CONTRACT, EVENT, GAP, CHECKPOINT, SEAL})

FRAME = struct.Struct("<IIB")  # payload length, crc32(kind + payload), kind
TICK_STRUCT = struct.Struct("<qdqbqddq")  # ts_ns, price, size, side, num_trades, bid, ask, seq
BAR_STRUCT = struct.Struct("<qddddqqqq")  # ts_ns, open, high, low, close, volume, bid_volume, ask_volume, num_trades
TICK_DTYPE = np.dtype([("ts_ns", "<i8"), ("price", "<f8"), ("size", "<i8"), ("side", "i1"), ("num_trades", "<i8"),
                       ("bid", "<f8"), ("ask", "<f8"), ("seq", "<i8")])
BAR_DTYPE = np.dtype([("ts_ns", "<i8"), ("open", "<f8"), ("high", "<f8"), ("low", "<f8"), ("close", "<f8"),
                      ("volume", "<i8"), ("bid_volume", "<i8"), ("ask_volume", "<i8"), ("num_trades", "<i8")])
MAX_PAYLOAD = 1 << 24  # 16 MiB: a longer length field is damage, not a record


class SegmentError(ValueError):
    """A segment file cannot be read as one (the message names the file, the byte offset and what is wrong)."""


def frame(kind: int, payload: bytes) -> bytes:
    """One framed record."""
    crc = zlib.crc32(payload, zlib.crc32(bytes((kind,))))
    return FRAME.pack(len(payload), crc, kind) + payload


def tick_frame(ts_ns: int, price: float, size: int, side: int, num_trades: int, bid: float, ask: float,
               seq: int) -> bytes:
    """A TICK frame (bid/ask NaN where the feed has none)."""
    return frame(TICK, TICK_STRUCT.pack(ts_ns, price, size, side, num_trades, bid, ask, seq))


def bar_frame(ts_ns: int, o: float, h: float, lo: float, c: float, volume: int, bid_volume: int, ask_volume: int,
              num_trades: int) -> bytes:
    """A BAR frame (the bar's start time, as ``load_bars`` labels bars)."""
    return frame(BAR, BAR_STRUCT.pack(ts_ns, o, h, lo, c, volume, bid_volume, ask_volume, num_trades))


def json_frame(kind: int, obj: dict[str, Any]) -> bytes:
    """A frame of one of the JSON kinds."""
    if kind not in JSON_KINDS:
        raise ValueError(f"kind {kind} is not a JSON kind")
    return frame(kind, json.dumps(obj, separators=(",", ":"), sort_keys=True).encode())


def header_frame(symbol: str, date: str, source: str, created_ns: int, prev: dict[str, Any] | None) -> bytes:
    """The magic and the HEADER frame that open a segment."""
    return MAGIC + json_frame(HEADER, {"format": FORMAT, "version": VERSION, "symbol": symbol, "date": date,
                                       "source": source, "created_ns": int(created_ns), "prev": prev})


def segment_name(date: str) -> str:
    """The file name of a trading date's segment (``2024-03-04.seg``)."""
    return f"{date}.seg"


def parse_segment_name(path: str | Path) -> str | None:
    """The trading date of a segment file name, or None when it is not one."""
    name = Path(path).name
    if not name.endswith(".seg") or len(name) != 14:
        return None
    return name[:10]


def iter_frames(buf: bytes | memoryview, start: int = len(MAGIC)) -> Iterator[tuple[int, int, memoryview]]:
    """``(offset, kind, payload)`` of every whole, checksummed frame from ``start``; stops at the first bad one
    (use :func:`scan` to learn why)."""
    mv = memoryview(buf)
    n = len(mv)
    off = start
    hs = FRAME.size
    while off + hs <= n:
        length, crc, kind = FRAME.unpack_from(mv, off)
        end = off + hs + length
        if length > MAX_PAYLOAD or end > n or kind not in KIND_NAMES:
            return
        payload = mv[off + hs:end]
        if zlib.crc32(payload, zlib.crc32(bytes((kind,)))) != crc:
            return
        yield off, kind, payload
        off = end


@dataclass(frozen=True)
class ScanResult:
    """What :func:`scan` found: the frames' end, the file's size and, past the end, why reading stopped."""

    path: str
    size: int
    valid_end: int  # byte offset after the last whole frame (== size when the file is whole)
    counts: dict[str, int]
    problem: str | None  # None, or why the bytes from valid_end on are not a frame

    @property
    def torn_bytes(self) -> int:
        return self.size - self.valid_end

    @property
    def sealed(self) -> bool:
        return self.counts.get("seal", 0) > 0


def _problem(mv: memoryview, off: int) -> str:
    n = len(mv)
    if off + FRAME.size > n:
        return f"a partial frame header ({n - off} of {FRAME.size} bytes)"
    length, _, kind = FRAME.unpack_from(mv, off)
    if kind not in KIND_NAMES:
        return f"an unknown record kind {kind}"
    if length > MAX_PAYLOAD:
        return f"a record length of {length:,} bytes (damaged)"
    if off + FRAME.size + length > n:
        return f"a partial record ({n - off - FRAME.size} of {length} payload bytes)"
    return "a checksum mismatch"


def scan(path: str | Path, data: bytes | None = None) -> ScanResult:
    """Check every frame of a segment file; a file that does not start with the magic raises `SegmentError`."""
    path = Path(path)
    buf = path.read_bytes() if data is None else data
    if len(buf) < len(MAGIC):
        if MAGIC.startswith(buf):
            return ScanResult(str(path), len(buf), 0, {}, f"a partial magic ({len(buf)} bytes)" if buf else None)
        raise SegmentError(f"{path}: byte 0: not a navale segment (bad magic)")
    if buf[:len(MAGIC)] != MAGIC:
        raise SegmentError(f"{path}: byte 0: not a navale segment (bad magic)")
    counts: dict[str, int] = {}
    end = len(MAGIC)
    for off, kind, payload in iter_frames(buf):
        name = KIND_NAMES[kind]
        counts[name] = counts.get(name, 0) + 1
        end = off + FRAME.size + len(payload)
    mv = memoryview(buf)
    return ScanResult(str(path), len(buf), end, counts, None if end == len(buf) else _problem(mv, end))


@dataclass
class SegmentData:
    """A segment decoded: the header, ticks and bars as structured arrays (with each record's contract), the JSON
    records by kind in file order, and the scan result."""

    header: dict[str, Any]
    ticks: np.ndarray  # TICK_DTYPE
    tick_contracts: list[str]
    bars: np.ndarray  # BAR_DTYPE
    bar_contracts: list[str]
    events: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    checkpoints: list[dict[str, Any]]
    seal: dict[str, Any] | None
    scan: ScanResult


def read_segment(path: str | Path, *, allow_torn: bool = False, data: bytes | None = None) -> SegmentData:
    """Decode a whole segment (``data``: its bytes, already read). A torn or damaged tail raises `SegmentError`
    naming the offset, unless ``allow_torn`` (then the whole frames before it are returned and ``scan.problem``
    says what follows)."""
    path = Path(path)
    buf = path.read_bytes() if data is None else data
    sc = scan(path, buf)
    if sc.problem is not None and not allow_torn:
        raise SegmentError(f"{path}: byte {sc.valid_end}: {sc.problem} ({sc.torn_bytes} bytes after the last whole record)")
    ticks = np.empty(sc.counts.get("tick", 0), TICK_DTYPE)
    bars = np.empty(sc.counts.get("bar", 0), BAR_DTYPE)
    tick_c: list[str] = []
    bar_c: list[str] = []
    header: dict[str, Any] = {}
    events: list[dict] = []
    gaps: list[dict] = []
    cks: list[dict] = []
    seal = None
    contract = ""
    it = ib = 0
    for off, kind, payload in iter_frames(buf):
        if kind == TICK:
            ticks[it] = TICK_STRUCT.unpack(payload)
            tick_c.append(contract)
            it += 1
        elif kind == BAR:
            bars[ib] = BAR_STRUCT.unpack(payload)
            bar_c.append(contract)
            ib += 1
        else:
            try:
                obj = json.loads(bytes(payload))
            except ValueError:
                raise SegmentError(f"{path}: byte {off}: a {KIND_NAMES[kind]} record that is not JSON") from None
            if kind == HEADER:
                if off != len(MAGIC):
                    raise SegmentError(f"{path}: byte {off}: a second header record")
                header = obj
            elif kind == CONTRACT:
                contract = str(obj.get("contract", ""))
            elif kind == EVENT:
                events.append(obj)
            elif kind == GAP:
                gaps.append(obj)
            elif kind == CHECKPOINT:
                cks.append(obj)
            elif kind == SEAL:
                seal = obj
    if sc.valid_end > len(MAGIC) and not header:
        raise SegmentError(f"{path}: byte {len(MAGIC)}: the first record is not the header")
    return SegmentData(header, ticks, tick_c, bars, bar_c, events, gaps, cks, seal, sc)
