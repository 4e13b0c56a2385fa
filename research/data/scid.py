"""Sierra Chart intraday data files (``.scid``): vectorized reader, resumable tail reader, writer.

Layout (Sierra Chart, "Intraday Data File Format"): a 56-byte header
(``SCID``, uint32 HeaderSize = 56, uint32 RecordSize = 40, uint16 Version, uint16 unused,
uint32 UTCStartIndex, 36 reserved bytes), then 40-byte little-endian records:
int64 DateTime (microseconds since 1899-12-30 UTC), float32 Open, High, Low, Close,
uint32 NumTrades, TotalVolume, BidVolume, AskVolume.

A record is a *single trade* when Open is 0 or one of the unbundled-trade sentinels
(about -1.999e37); then High = ask, Low = bid and Close = the trade price, and the
aggressor is the side whose volume is non-zero (AskVolume = buy aggressor). Other
records are bars.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from research.store.files import atomic_write_bytes

from .errors import DataError

__all__ = [
    "SCID_HEADER_SIZE",
    "SCID_RECORD_DTYPE",
    "read_scid_records",
    "records_are_trades",
    "records_to_ticks",
    "ScidTail",
    "write_scid",
    "ticks_to_scid_records",
    "bars_to_scid_records",
    "scid_time_to_ns",
    "ns_to_scid_time",
]

SCID_MAGIC = b"SCID"
SCID_HEADER_SIZE = 56
SCID_RECORD_DTYPE = np.dtype(
    [
        ("datetime", "<i8"),
        ("open", "<f4"),
        ("high", "<f4"),
        ("low", "<f4"),
        ("close", "<f4"),
        ("num_trades", "<u4"),
        ("total_volume", "<u4"),
        ("bid_volume", "<u4"),
        ("ask_volume", "<u4"),
    ]
)
assert SCID_RECORD_DTYPE.itemsize == 40
_HEADER_DTYPE = np.dtype(
    [("magic", "S4"), ("header_size", "<u4"), ("record_size", "<u4"), ("version", "<u2"), ("unused", "<u2"), ("utc_start_index", "<u4"), ("reserved", "S36")]
)
assert _HEADER_DTYPE.itemsize == SCID_HEADER_SIZE
# microseconds from 1899-12-30 to 1970-01-01 (25569 days)
_EPOCH_SHIFT_US = 25569 * 86400 * 1_000_000
# plausible DateTime range: 1980-01-01 .. 2100-01-01 (guards against garbage records)
_MIN_US = _EPOCH_SHIFT_US + 315532800 * 1_000_000
_MAX_US = _EPOCH_SHIFT_US + 4102444800 * 1_000_000
SENTINEL_THRESHOLD = -1e37  # FIRST/LAST_SUB_TRADE_OF_UNBUNDLED_TRADE are about -1.999e37


def scid_time_to_ns(dt_us: np.ndarray) -> np.ndarray:
    """Sierra DateTime (µs since 1899-12-30 UTC) -> Unix ns."""
    return (dt_us.astype(np.int64) - _EPOCH_SHIFT_US) * 1000


def ns_to_scid_time(ns: np.ndarray) -> np.ndarray:
    """Unix ns -> Sierra DateTime (µs since 1899-12-30 UTC); sub-µs parts are truncated."""
    return np.asarray(ns, dtype=np.int64) // 1000 + _EPOCH_SHIFT_US


def _check_header(buf: bytes, path: Path) -> None:
    if len(buf) < SCID_HEADER_SIZE:
        raise DataError(f"truncated header: {len(buf)} bytes, need {SCID_HEADER_SIZE}", path=path, field="header", row=0, row_kind="byte")
    h = np.frombuffer(buf[:SCID_HEADER_SIZE], dtype=_HEADER_DTYPE)[0]
    if h["magic"] != SCID_MAGIC:
        raise DataError(f"not a Sierra .scid file: magic {bytes(h['magic'])!r}, expected b'SCID'", path=path, field="header.magic", row=0, row_kind="byte")
    if h["header_size"] != SCID_HEADER_SIZE:
        raise DataError(f"unsupported header size {h['header_size']} (expected {SCID_HEADER_SIZE})", path=path, field="header.HeaderSize", row=4, row_kind="byte")
    if h["record_size"] != SCID_RECORD_DTYPE.itemsize:
        raise DataError(
            f"unsupported record size {h['record_size']} (expected 40: the int64-microsecond format of Sierra >= 2020)",
            path=path,
            field="header.RecordSize",
            row=8,
            row_kind="byte",
        )


def _validate_records(rec: np.ndarray, path: Path, first_index: int = 0, *, ordered: bool = True) -> None:
    if rec.size == 0:
        return
    t = rec["datetime"]
    bad = (t < _MIN_US) | (t > _MAX_US)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError(f"DateTime {int(t[i])} is outside 1980..2100 (corrupt record?)", path=path, row=first_index + i, field="DateTime", row_kind="record")
    back = np.diff(t) < 0 if ordered else np.zeros(0, bool)
    if back.any():
        i = int(np.flatnonzero(back)[0]) + 1
        raise DataError("DateTime goes backwards", path=path, row=first_index + i, field="DateTime", row_kind="record")
    for f in ("high", "low", "close"):
        v = rec[f]
        nf = ~np.isfinite(v)
        if nf.any():
            i = int(np.flatnonzero(nf)[0])
            raise DataError(f"non-finite price {v[i]}", path=path, row=first_index + i, field=f.capitalize(), row_kind="record")
    o = rec["open"]
    nf = ~np.isfinite(o)
    if nf.any():
        i = int(np.flatnonzero(nf)[0])
        raise DataError(f"non-finite price {o[i]}", path=path, row=first_index + i, field="Open", row_kind="record")


def read_scid_records(path: str | Path, *, allow_partial: bool = False) -> np.ndarray:
    """All records of a ``.scid`` file as a structured array (memory-mapped, no per-record Python loop).

    A trailing partial record (a file being written) raises DataError unless ``allow_partial``.
    """
    path = Path(path)
    size = path.stat().st_size
    with open(path, "rb") as fh:
        _check_header(fh.read(SCID_HEADER_SIZE), path)
    body = size - SCID_HEADER_SIZE
    n, rest = divmod(body, SCID_RECORD_DTYPE.itemsize)
    if rest and not allow_partial:
        raise DataError(
            f"file ends inside record {n}: {rest} stray bytes after {n} whole records (truncated or still being written)",
            path=path,
            row=n,
            field="record",
            row_kind="record",
        )
    if n == 0:
        return np.zeros(0, dtype=SCID_RECORD_DTYPE)
    rec = np.array(np.memmap(path, dtype=SCID_RECORD_DTYPE, mode="r", offset=SCID_HEADER_SIZE, shape=(n,)))
    _validate_records(rec, path)
    return rec


def records_are_trades(rec: np.ndarray) -> np.ndarray:
    """Boolean mask of single-trade records (Open == 0 or an unbundled-trade sentinel)."""
    o = rec["open"]
    return (o == 0.0) | (o < SENTINEL_THRESHOLD)


def records_to_ticks(rec: np.ndarray, *, path: str | Path | None = None) -> pd.DataFrame:
    """Single-trade records -> canonical tick frame (price = Close, side from Bid/AskVolume)."""
    from .ticks import make_tick_frame

    if not records_are_trades(rec).all():
        i = int(np.flatnonzero(~records_are_trades(rec))[0])
        raise DataError("expected single-trade records, found a bar record", path=path, row=i, field="Open", row_kind="record")
    ask = rec["ask_volume"].astype(np.int64)
    bid = rec["bid_volume"].astype(np.int64)
    side = np.where(ask > 0, 1, np.where(bid > 0, -1, 0)).astype(np.int8)
    both = (ask > 0) & (bid > 0)
    if both.any():
        i = int(np.flatnonzero(both)[0])
        raise DataError("single-trade record has both bid and ask volume", path=path, row=i, field="BidVolume", row_kind="record")
    ticks = make_tick_frame(
        scid_time_to_ns(rec["datetime"]),
        rec["close"].astype(np.float64),
        rec["total_volume"].astype(np.int64),
        side,
        attrs={"sources": [str(path)] if path else [], "source_format": "scid", "source_tz": "UTC"},
    )
    ticks["num_trades"] = np.maximum(rec["num_trades"].astype(np.int64), 1)
    ticks["ask"] = rec["high"].astype(np.float64)
    ticks["bid"] = rec["low"].astype(np.float64)
    return ticks


class ScidTail:
    """Incremental reader of a growing ``.scid`` file that can resume from a byte offset.

    ``read_new()`` returns the whole records appended since the last call and advances
    ``offset`` (always on a record boundary); a partial record at the end is left for the
    next call. Persist ``offset`` to resume after a restart: ``ScidTail(path, offset=saved)``.
    """

    def __init__(self, path: str | Path, offset: int | None = None) -> None:
        self.path = Path(path)
        if offset is not None and (offset < SCID_HEADER_SIZE or (offset - SCID_HEADER_SIZE) % SCID_RECORD_DTYPE.itemsize):
            raise ValueError(f"offset {offset} is not on a record boundary of {self.path}")
        self.offset = offset
        self._last_time: int | None = None

    @property
    def records_read(self) -> int:
        return 0 if self.offset is None else (self.offset - SCID_HEADER_SIZE) // SCID_RECORD_DTYPE.itemsize

    def read_new(self, max_records: int | None = None, *, ordered: bool = True) -> np.ndarray:
        """New whole records since the last call (possibly none). ``ordered=False`` returns records whose
        DateTime goes back too (a live source whose clock stepped back; the caller reports them) instead of
        raising."""
        with open(self.path, "rb") as fh:
            if self.offset is None:
                head = fh.read(SCID_HEADER_SIZE)
                if len(head) < SCID_HEADER_SIZE:
                    return np.zeros(0, dtype=SCID_RECORD_DTYPE)  # header not written yet
                _check_header(head, self.path)
                self.offset = SCID_HEADER_SIZE
            size = os.fstat(fh.fileno()).st_size
            if size < self.offset:
                raise DataError(
                    f"file shrank to {size} bytes, below the resume offset {self.offset} (replaced or truncated?)",
                    path=self.path,
                    row=self.offset,
                    field="offset",
                    row_kind="byte",
                )
            n = (size - self.offset) // SCID_RECORD_DTYPE.itemsize
            if max_records is not None:
                n = min(n, max_records)
            if n == 0:
                return np.zeros(0, dtype=SCID_RECORD_DTYPE)
            fh.seek(self.offset)
            buf = fh.read(n * SCID_RECORD_DTYPE.itemsize)
        rec = np.frombuffer(buf, dtype=SCID_RECORD_DTYPE).copy()
        _validate_records(rec, self.path, first_index=self.records_read, ordered=ordered)
        if ordered and self._last_time is not None and rec["datetime"][0] < self._last_time:
            raise DataError("DateTime goes backwards", path=self.path, row=self.records_read, field="DateTime", row_kind="record")
        self._last_time = int(rec["datetime"][-1])
        self.offset += n * SCID_RECORD_DTYPE.itemsize
        return rec


def _header_bytes(reserved: bytes = b"") -> bytes:
    if len(reserved) > 36:
        raise ValueError("at most 36 reserved header bytes")
    h = np.zeros(1, dtype=_HEADER_DTYPE)
    h["reserved"] = reserved
    h["magic"] = SCID_MAGIC
    h["header_size"] = SCID_HEADER_SIZE
    h["record_size"] = SCID_RECORD_DTYPE.itemsize
    h["version"] = 1
    return h.tobytes()


def write_scid(path: str | Path, records: np.ndarray, *, append: bool = False, header_reserved: bytes = b"") -> Path:
    """Write records to a ``.scid`` file.

    A new file is written atomically (temp file + rename). ``append=True`` adds records to an
    existing file in place (how Sierra grows a live file; readers see whole records or a
    partial tail that :class:`ScidTail` leaves for later); its records must not go back in time.
    ``header_reserved`` fills the header's 36 reserved bytes (ignored by Sierra Chart).
    """
    path = Path(path)
    records = np.asarray(records, dtype=SCID_RECORD_DTYPE)
    _validate_records(records, path)
    if append and path.exists():
        with open(path, "rb") as fh:
            _check_header(fh.read(SCID_HEADER_SIZE), path)
            size = os.fstat(fh.fileno()).st_size
            if (size - SCID_HEADER_SIZE) % SCID_RECORD_DTYPE.itemsize:
                raise DataError("cannot append: file ends inside a record", path=path, field="record")
            if size > SCID_HEADER_SIZE and records.size:
                fh.seek(size - SCID_RECORD_DTYPE.itemsize)
                last = np.frombuffer(fh.read(SCID_RECORD_DTYPE.itemsize), dtype=SCID_RECORD_DTYPE)[0]
                if records["datetime"][0] < last["datetime"]:
                    raise DataError("appended records start before the file's last record", path=path, field="DateTime")
        with open(path, "ab") as fh:
            fh.write(records.tobytes())
            fh.flush()
            os.fsync(fh.fileno())
        return path
    atomic_write_bytes(path, _header_bytes(header_reserved) + records.tobytes())
    return path


def ticks_to_scid_records(
    ts_ns: np.ndarray, price: np.ndarray, size: np.ndarray, side: np.ndarray, bid: np.ndarray | None = None, ask: np.ndarray | None = None
) -> np.ndarray:
    """Single-trade records from trade arrays (Open = 0; High/Low = ask/bid, defaulting to the price)."""
    n = len(ts_ns)
    rec = np.zeros(n, dtype=SCID_RECORD_DTYPE)
    rec["datetime"] = ns_to_scid_time(ts_ns)
    rec["close"] = price
    rec["high"] = price if ask is None else ask
    rec["low"] = price if bid is None else bid
    rec["num_trades"] = 1
    rec["total_volume"] = size
    rec["ask_volume"] = np.where(np.asarray(side) > 0, size, 0)
    rec["bid_volume"] = np.where(np.asarray(side) < 0, size, 0)
    return rec


def bars_to_scid_records(frame: pd.DataFrame) -> np.ndarray:
    """Bar records from a canonical bar frame (bid/ask volume written as 0 when absent)."""
    rec = np.zeros(len(frame), dtype=SCID_RECORD_DTYPE)
    rec["datetime"] = ns_to_scid_time(frame.index.as_unit("ns").asi8)
    for c in ("open", "high", "low", "close"):
        rec[c] = frame[c].to_numpy()
    rec["num_trades"] = frame["num_trades"].to_numpy() if "num_trades" in frame else 0
    rec["total_volume"] = frame["volume"].to_numpy()
    if "bid_volume" in frame:
        rec["bid_volume"] = frame["bid_volume"].to_numpy()
        rec["ask_volume"] = frame["ask_volume"].to_numpy()
    return rec
