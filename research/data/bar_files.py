"""Bar files: Sierra Chart "Export Bar Data to Text File" and generic OHLCV CSV / Parquet.

Text files may start with a UTF-8 BOM and must end with a line break (a last line without one
is refused as cut off); an empty or header-only file is an error. Readers return
``(columns, time_ns, bad_rows, lines)``: column arrays in file order, UTC bar-start
times, the rows set aside, and the source line (row for Parquet) of each kept row (only when ``on_error="quarantine"``; otherwise the first bad
row raises :class:`DataError` naming the file, line and field).
"""

from __future__ import annotations

import csv
import gzip
import io
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from strategy.market.clock import CT

from .errors import DataError

__all__ = ["read_sierra_bar_text", "read_generic_bars", "read_text_bytes", "open_maybe_gzip", "refuse_bom_before_binary",
           "SIERRA_COLUMNS", "UTF8_BOM"]

SIERRA_COLUMNS = {
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Last": "close",
    "Close": "close",
    "Volume": "volume",
    "NumberOfTrades": "num_trades",
    "# of Trades": "num_trades",
    "BidVolume": "bid_volume",
    "AskVolume": "ask_volume",
}
_INT_COLS = ("volume", "num_trades", "bid_volume", "ask_volume")

_GENERIC_ALIASES = {
    "time": ("time", "timestamp", "timestamp_utc", "datetime", "date_time", "ts_event", "ts", "date"),
    "open": ("open", "o"),
    "high": ("high", "h"),
    "low": ("low", "l"),
    "close": ("close", "last", "c"),
    "volume": ("volume", "vol", "v"),
    "num_trades": ("num_trades", "numberoftrades", "trades", "count", "trade_count"),
    "bid_volume": ("bid_volume", "bidvolume", "volume_at_bid"),
    "ask_volume": ("ask_volume", "askvolume", "volume_at_ask"),
}


UTF8_BOM = b"\xef\xbb\xbf"


_BINARY_MAGIC = {b"SCID": "Sierra .scid", b"PAR1": "Parquet", b"\x28\xb5\x2f\xfd": "zstd-compressed", b"DBN": "Databento DBN",
                 b"\x1f\x8b": "gzip-compressed", b"PK\x03\x04": "zip", b"BZh": "bzip2-compressed", b"\xfd7zXZ": "xz-compressed"}


def refuse_bom_before_binary(path: Path, head: bytes) -> None:
    """A UTF-8 BOM in front of a binary file's signature: the file was rewritten by a text tool; say so."""
    if not head.startswith(UTF8_BOM):
        return
    rest = head[len(UTF8_BOM):]
    kind = next((k for m, k in _BINARY_MAGIC.items() if rest.startswith(m)), None)
    if kind is not None:
        raise DataError(f"a {kind} file with a UTF-8 byte-order mark (EF BB BF) in front: a text tool has rewritten "
                        f"this binary file; use an unmodified copy (or remove the first 3 bytes: tail -c +4)", path=path)


def open_maybe_gzip(path: Path) -> io.BufferedIOBase:
    with open(path, "rb") as fh:
        magic = fh.read(2)
    return gzip.open(path, "rb") if magic == b"\x1f\x8b" else open(path, "rb")


def read_text_bytes(path: Path) -> bytes:
    """The whole (decompressed) text of a file, without a UTF-8 BOM; a clear DataError if unreadable."""
    try:
        with open_maybe_gzip(path) as fh:
            data = fh.read()
    except (EOFError, gzip.BadGzipFile, OSError, ValueError) as exc:
        raise DataError(f"cannot read: {exc}", path=path) from exc
    return data[len(UTF8_BOM):] if data.startswith(UTF8_BOM) else data


def _read_csv(path: Path, **kw: Any) -> tuple[pd.DataFrame, bool]:
    """A text table as read by pandas, and whether the file ends with a line break.

    An empty or header-only file is an error that says so.
    """
    data = read_text_bytes(path)
    if not data.strip():
        raise DataError("file is empty", path=path)
    if not data.rstrip(b"\r\n").count(b"\n"):
        raise DataError("file has a header line and no data rows", path=path, row=1)
    try:
        df = pd.read_csv(io.BytesIO(data), **kw)
        if "index_col" not in kw and not isinstance(df.index, pd.RangeIndex):
            # pandas takes a first data row with one field more than the header as an implicit index
            # and shifts every column by one: a stray separator, never a valid export
            raise DataError(f"more fields than the header's {len(df.columns)} (a stray separator?)",
                            path=path, row=2)
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=path) from None
    except pd.errors.ParserError as exc:
        raise DataError(f"malformed CSV: {exc}", path=path) from exc
    except (UnicodeDecodeError, ValueError, csv.Error) as exc:
        raise DataError(f"cannot read as CSV: {exc}", path=path) from exc
    if df.empty:
        raise DataError("file has a header line and no data rows", path=path, row=1)
    return df, data.endswith(b"\n")


class _Rows:
    """Collects bad rows (quarantine) or raises on the first one."""

    def __init__(self, path: Path, quarantine: bool, line_offset: int) -> None:
        self.path, self.quarantine, self.line_offset = path, quarantine, line_offset
        self.bad: dict[int, tuple[str, str]] = {}

    def flag(self, mask: np.ndarray, field: str, values: pd.Series | np.ndarray, why: str) -> None:
        idx = np.flatnonzero(mask)
        if idx.size == 0:
            return
        if not self.quarantine:
            i = int(idx[0])
            v = values.iloc[i] if isinstance(values, pd.Series) else values[i]
            v = v.item() if isinstance(v, np.generic) else v
            raise DataError(f"{why}: {v!r} ({idx.size} such rows)", path=self.path, row=i + self.line_offset, field=field)
        for i in idx:
            self.bad.setdefault(int(i), (field, why))

    def report(self, raw: pd.DataFrame) -> list[dict]:
        return [
            {"file": str(self.path), "line": i + self.line_offset, "field": f, "reason": why, "raw": ",".join(map(str, raw.iloc[i].tolist()))}
            for i, (f, why) in sorted(self.bad.items())
        ]


def _to_numbers(df: pd.DataFrame, col: str, rows: _Rows, integer: bool) -> np.ndarray:
    s = df[col]
    if integer and pd.api.types.is_integer_dtype(s.dtype):
        return s.to_numpy(np.int64)
    if not integer and pd.api.types.is_float_dtype(s.dtype):
        arr = s.to_numpy(np.float64)
        rows.flag(~np.isfinite(arr), col, s, "missing or non-finite number")
        return arr
    num = pd.to_numeric(s, errors="coerce")
    arr = num.to_numpy(np.float64, na_value=np.nan)
    rows.flag(~np.isfinite(arr), col, s, "not a number")
    if integer:
        frac = np.isfinite(arr) & (arr != np.round(arr))
        rows.flag(frac, col, s, "not an integer")
        huge = np.isfinite(arr) & (np.abs(arr) >= 2.0**53)
        rows.flag(huge, col, s, "integer out of range")
        ok = np.isfinite(arr) & ~huge
        return np.where(ok, arr, 0).astype(np.int64)
    return arr


def _localize(naive_ns: np.ndarray, tz: str, path: Path, rows: _Rows, raw_time: pd.Series) -> np.ndarray:
    """Naive local wall times -> UTC ns.

    Wall times that do not exist or are ambiguous in ``tz`` (DST changes) are bad rows: CME
    is closed at 02:00 CT on DST Sundays, so real exchange data never has them.
    """
    if tz.upper() == "UTC":
        return naive_ns
    idx = pd.DatetimeIndex(naive_ns.view("datetime64[ns]"))
    try:
        loc = idx.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    except Exception as exc:
        raise DataError(f"unknown time zone {tz!r}: {exc}", path=path, field="tz") from exc
    bad = np.asarray(loc.isna()) & ~np.asarray(idx.isna())
    rows.flag(bad, "Time", raw_time, f"wall time is ambiguous or does not exist in {tz} (DST change)")
    out = loc.asi8.copy()
    out[np.asarray(loc.isna())] = np.iinfo(np.int64).min
    return out


def read_sierra_bar_text(path: Path, *, tz: str = CT, quarantine: bool = False) -> tuple[dict, np.ndarray, list[dict], np.ndarray]:
    """Sierra Chart bar export: ``Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume``."""
    df, complete = _read_csv(path, sep=",", skipinitialspace=True, dtype={"Date": str, "Time": str}, keep_default_na=False, na_values=[""], engine="c")
    df.columns = [c.strip() for c in df.columns]
    for need in ("Date", "Time", "Open", "High", "Low", "Volume"):
        if need not in df.columns:
            raise DataError(f"not a Sierra bar export: header lacks {need!r} (has {list(df.columns)})", path=path, row=1, field=need)
    if "Last" not in df.columns and "Close" not in df.columns:
        raise DataError("not a Sierra bar export: header lacks 'Last'", path=path, row=1, field="Last")
    rows = _Rows(path, quarantine, line_offset=2)
    _flag_cut_last_line(df, complete, rows)
    stamp = df["Date"].astype(str).str.strip() + " " + df["Time"].astype(str).str.strip()
    t = pd.to_datetime(stamp, format="%Y/%m/%d %H:%M:%S", errors="coerce")
    if t.isna().any():  # some exports write fractional seconds
        t2 = pd.to_datetime(stamp[t.isna()], format="%Y/%m/%d %H:%M:%S.%f", errors="coerce")
        t = t.fillna(t2)
    rows.flag(t.isna().to_numpy(), "Date/Time", stamp, "bad date/time (expected YYYY/M/D, HH:MM:SS)")
    naive = t.to_numpy().astype("datetime64[ns]").astype(np.int64)
    cols: dict[str, np.ndarray] = {}
    for src, dst in SIERRA_COLUMNS.items():
        if src in df.columns and dst not in cols:
            cols[dst] = _to_numbers(df, src, rows, integer=dst in _INT_COLS)
    time_ns = _localize(naive, tz, path, rows, stamp)
    return _drop_bad(cols, time_ns, rows, df)


def _flag_cut_last_line(df: pd.DataFrame, complete: bool, rows: _Rows) -> None:
    """A text bar file must end with a line break: a last line without one is taken as cut off.

    A cut can shorten the last field without making it invalid (``AskVolume 274`` read as ``2``),
    so the line is refused (or quarantined) whatever its values. Real exports end every line.
    """
    if complete:
        return
    last = df.columns[-1]
    mask = np.zeros(len(df), dtype=bool)
    mask[-1] = True
    rows.flag(mask, str(last), df[last], "last line has no line break: cut off (truncated file?)")


def _drop_bad(cols: dict, time_ns: np.ndarray, rows: _Rows, raw: pd.DataFrame) -> tuple[dict, np.ndarray, list[dict], np.ndarray]:
    lines = np.arange(len(time_ns), dtype=np.int64) + rows.line_offset
    if not rows.bad:
        return cols, time_ns, [], lines
    keep = np.ones(len(time_ns), dtype=bool)
    keep[list(rows.bad)] = False
    return {k: v[keep] for k, v in cols.items()}, time_ns[keep], rows.report(raw), lines[keep]


def read_generic_bars(path: Path, *, tz: str | None = None, quarantine: bool = False) -> tuple[dict, np.ndarray, list[dict], np.ndarray]:
    """Generic OHLCV CSV or Parquet with a timestamp column (names matched case-insensitively).

    Naive timestamps need ``tz`` unless the column name says UTC (e.g. ``timestamp_utc``).
    """
    is_parquet = path.suffix.lower() in (".parquet", ".pq")
    complete = True
    if is_parquet:
        try:
            df = pd.read_parquet(path)
        except Exception as exc:
            raise DataError(f"cannot read as Parquet: {exc}", path=path) from exc
        if isinstance(df.index, pd.DatetimeIndex):
            df = df.reset_index()
        if df.empty:
            raise DataError("file has no rows", path=path)
    else:
        sep = _sniff_sep(path)
        if sep is None:
            raise DataError("not a bar file: no column separator (, ; tab |) in the first line", path=path, row=1, field="header")
        df, complete = _read_csv(path, sep=sep, engine="c")
    lower = {str(c).strip().lower(): c for c in df.columns}
    found: dict[str, Any] = {}
    for canon, names in _GENERIC_ALIASES.items():
        for n in names:
            if n in lower:
                found[canon] = lower[n]
                break
    for need in ("time", "open", "high", "low", "close"):
        if need not in found:
            raise DataError(f"no {need!r} column (accepted names: {_GENERIC_ALIASES[need]}); has {list(df.columns)}", path=path, row=1, field=need)
    line_offset = 2 if not is_parquet else 0
    rows = _Rows(path, quarantine, line_offset)
    _flag_cut_last_line(df, complete, rows)
    tcol = df[found["time"]]
    if pd.api.types.is_datetime64_any_dtype(tcol.dtype):
        t = pd.to_datetime(tcol)
    else:
        t = pd.to_datetime(tcol.astype(str), errors="coerce", format="ISO8601")
    rows.flag(np.asarray(t.isna()), str(found["time"]), tcol, "bad timestamp")
    if getattr(t.dt, "tz", None) is not None:
        time_ns = t.dt.tz_convert("UTC").dt.tz_localize(None).to_numpy().astype("datetime64[ns]").astype(np.int64)
    else:
        src_tz = tz or ("UTC" if "utc" in str(found["time"]).lower() else None)
        if src_tz is None:
            raise DataError(
                f"timestamps in column {found['time']!r} have no time zone: pass tz={CT!r} (or the right zone)",
                path=path,
                field=str(found["time"]),
            )
        naive = t.to_numpy().astype("datetime64[ns]").astype(np.int64)
        time_ns = _localize(naive, src_tz, path, rows, tcol)
    cols = {k: _to_numbers(df, v, rows, integer=k in _INT_COLS) for k, v in found.items() if k != "time"}
    if ("bid_volume" in cols) != ("ask_volume" in cols):
        cols.pop("bid_volume", None)
        cols.pop("ask_volume", None)
    if "volume" not in cols:
        raise DataError("no volume column", path=path, row=1, field="volume")
    return _drop_bad(cols, time_ns, rows, df)


def _sniff_sep(path: Path) -> str | None:
    try:
        with open_maybe_gzip(path) as fh:
            head = fh.readline(65536).removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
    except (OSError, EOFError) as exc:
        raise DataError(f"cannot read: {exc}", path=path) from exc
    if not head.strip():
        raise DataError("file is empty" if not read_text_bytes(path).strip() else "the first line (the header) is empty",
                        path=path, row=None if not read_text_bytes(path).strip() else 1)
    for sep in (",", ";", "\t", "|"):
        if sep in head:
            return sep
    return None
