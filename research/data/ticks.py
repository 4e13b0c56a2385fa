"""Tick (trade) readers: Sierra-style tick-by-tick text exports and Databento DBN files.

The canonical tick frame: UTC DatetimeIndex ``time`` (trade time, in true trade order),
columns ``price`` (float64), ``size`` (int64) and ``side`` (int8: +1 buy aggressor =
traded at the ask, -1 sell aggressor = traded at the bid, 0 unknown), plus ``sequence``
when the source has one.
"""

from __future__ import annotations

import gzip
import io
import warnings
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["read_tbt_text", "read_dbn_trades", "make_tick_frame", "TBT_REQUIRED"]

TBT_REQUIRED = ("Date", "Time", "Price", "Volume", "TradeType")
TimeFraction = Literal["auto", "micros", "decimal"]


def make_tick_frame(ts_ns: np.ndarray, price, size, side, sequence=None, *, attrs: dict) -> pd.DataFrame:
    idx = pd.DatetimeIndex(np.asarray(ts_ns, dtype="datetime64[ns]"), name="time").tz_localize("UTC")
    cols = {
        "price": np.asarray(price, dtype=np.float64),
        "size": np.asarray(size, dtype=np.int64),
        "side": np.asarray(side, dtype=np.int8),
    }
    if sequence is not None:
        cols["sequence"] = np.asarray(sequence, dtype=np.int64)
    out = pd.DataFrame(cols, index=idx, copy=False)
    out.attrs.update(attrs)
    return out


def _first_bad(mask: np.ndarray) -> int:
    return int(np.flatnonzero(mask)[0])


def _parse_numeric(df: pd.DataFrame, col: str, path: Path, kind: type) -> np.ndarray:
    raw = df[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna().to_numpy()
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"not a number: {raw.iloc[i]!r}", path=path, row=i + 2, field=col)
    arr = num.to_numpy()
    if arr.dtype.kind == "f" and not np.isfinite(arr).all():  # "inf", "1e999": numbers, but not prices/sizes
        i = _first_bad(~np.isfinite(arr))
        raise DataError(f"not a finite number: {raw.iloc[i]!r}", path=path, row=i + 2, field=col)
    if kind is int:
        if arr.dtype.kind == "f" and np.any(np.abs(arr) >= 2.0**53):
            i = _first_bad(np.abs(arr) >= 2.0**53)
            raise DataError(f"integer out of range: {raw.iloc[i]!r}", path=path, row=i + 2, field=col)
        if np.any(arr != np.floor(arr)):
            i = _first_bad(arr != np.floor(arr))
            raise DataError(f"not an integer: {raw.iloc[i]!r}", path=path, row=i + 2, field=col)
        return arr.astype(np.int64)
    return arr.astype(np.float64)


def read_tbt_text(
    path: str | Path,
    *,
    tz: str = "UTC",
    time_fraction: TimeFraction = "auto",
) -> pd.DataFrame:
    """Read a semicolon-separated tick-by-tick export (Date;Time;Sequence;...;Price;Volume;TradeType;...).

    Sierra's quirk: the fraction after the seconds is an *unpadded count of microseconds*
    (``.5000`` is 5 ms). ``time_fraction="auto"`` uses that reading when it agrees with the
    ``Sequence`` order and the decimal reading otherwise; it raises when neither is consistent.
    A UTF-8 BOM is accepted. Real exports may end without a final line break, so a cut last line
    is caught by its field count: every line must have the header's fields.
    Rows are put in ``Sequence`` order (the true trade order); ``attrs['reordered_rows']``
    says how many rows that moved.
    """
    from .bar_files import read_text_bytes

    path = Path(path)
    data = read_text_bytes(path)
    try:
        df = pd.read_csv(io.BytesIO(data), sep=";", dtype=str, keep_default_na=False, on_bad_lines="error", engine="c",
                         encoding="utf-8", encoding_errors="strict")
    except (UnicodeDecodeError, EOFError, gzip.BadGzipFile, OSError) as exc:
        raise DataError(f"cannot read as a tick-by-tick text file: {exc}", path=path) from exc
    except pd.errors.ParserError as exc:
        raise DataError(f"malformed tick-by-tick text: {exc}", path=path) from exc
    except pd.errors.EmptyDataError:
        raise DataError("file is empty", path=path) from None
    missing = [c for c in TBT_REQUIRED if c not in df.columns]
    if missing:
        raise DataError(
            f"not a tick-by-tick file: header lacks {missing} (has {list(df.columns)[:8]}...)",
            path=path,
            row=1,
            field=missing[0],
        )
    if df.empty:
        raise DataError("file has a header line and no trades", path=path, row=1)
    last = data.rstrip(b"\r\n").rsplit(b"\n", 1)[-1]
    n = last.count(b";") + 1
    if n < df.shape[1]:  # real exports may end without a line break: a cut last line has fewer fields
        raise DataError(f"line has {n} of the header's {df.shape[1]} fields (cut off?)", path=path, row=len(df) + 1,
                        field=str(df.columns[n - 1]))
    price = _parse_numeric(df, "Price", path, float)
    size = _parse_numeric(df, "Volume", path, int)
    ttype = _parse_numeric(df, "TradeType", path, int)
    bad = ~np.isin(ttype, (0, 1, 2))
    if bad.any():
        i = _first_bad(bad)
        raise DataError(f"TradeType must be 0, 1 (at bid) or 2 (at ask), got {ttype[i]}", path=path, row=i + 2, field="TradeType")
    if (size <= 0).any():
        i = _first_bad(size <= 0)
        raise DataError(f"trade size must be > 0, got {size[i]}", path=path, row=i + 2, field="Volume")
    side = np.select([ttype == 2, ttype == 1], [1, -1], 0).astype(np.int8)

    parts = df["Time"].str.partition(".")
    base = pd.to_datetime(df["Date"] + " " + parts[0], format="%Y-%m-%d %H:%M:%S", errors="coerce")
    if base.isna().any():
        i = _first_bad(base.isna().to_numpy())
        raise DataError(f"bad date/time {df['Date'].iloc[i]!r} {df['Time'].iloc[i]!r}", path=path, row=i + 2, field="Time")
    frac_s = parts[2].replace("", "0")
    if not frac_s.str.fullmatch(r"\d{1,9}").all():
        i = _first_bad(~frac_s.str.fullmatch(r"\d{1,9}").to_numpy())
        raise DataError(f"bad fraction of second in {df['Time'].iloc[i]!r}", path=path, row=i + 2, field="Time")
    base_ns = base.to_numpy().astype("datetime64[ns]").astype(np.int64)
    micros_ns = base_ns + frac_s.astype(np.int64).to_numpy() * 1000
    lens = frac_s.str.len().to_numpy()
    dec_ns = base_ns + (frac_s.astype(np.int64).to_numpy() * 10 ** (9 - lens)).astype(np.int64)

    seq = _parse_numeric(df, "Sequence", path, int) if "Sequence" in df.columns else None
    order = np.argsort(seq, kind="stable") if seq is not None else np.arange(len(df))
    if seq is not None and np.any(np.diff(seq[order]) == 0):
        i = int(order[_first_bad(np.diff(seq[order]) == 0) + 1])
        raise DataError(f"duplicated Sequence {seq[i]}", path=path, row=i + 2, field="Sequence")

    def consistent(t: np.ndarray) -> bool:
        return bool(np.all(np.diff(t[order]) >= 0))

    if time_fraction == "auto":
        if consistent(micros_ns):
            time_fraction = "micros"
        elif consistent(dec_ns):
            time_fraction = "decimal"
        else:
            t = micros_ns[order]
            i = int(order[_first_bad(np.diff(t) < 0) + 1])
            raise DataError(
                "trade times go backwards in Sequence order under both readings of the fraction "
                "(microsecond count and decimal)",
                path=path,
                row=i + 2,
                field="Time",
            )
    ts = micros_ns if time_fraction == "micros" else dec_ns
    if not consistent(ts):
        i = int(order[_first_bad(np.diff(ts[order]) < 0) + 1])
        raise DataError(f"trade time goes backwards in Sequence order (time_fraction={time_fraction!r})", path=path, row=i + 2, field="Time")
    ts_utc = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize(tz).tz_convert("UTC").asi8
    moved = int(np.count_nonzero(order != np.arange(len(order))))
    return make_tick_frame(
        ts_utc[order],
        price[order],
        size[order],
        side[order],
        None if seq is None else seq[order],
        attrs={
            "sources": [str(path)],
            "source_format": "tbt_text",
            "source_tz": tz,
            "time_fraction": time_fraction,
            "reordered_rows": moved,
        },
    )


def read_dbn_trades(path: str | Path, *, symbol: str | None = None) -> pd.DataFrame:
    """Trades from a Databento DBN file (MBO, trades, MBP/TBBO schemas): records with ``action == 'T'``.

    ``side`` is Databento's aggressor side (B buy -> +1, A sell -> -1, N -> 0). When the file holds
    several instruments, pass ``symbol`` (spreads must never be mixed with outrights).
    Times are ``ts_event`` (exchange match time); rows keep file (``ts_recv``) order, and a
    DataError is raised if that order is not time order.
    """
    import databento as db

    path = Path(path)
    try:
        store = db.DBNStore.from_file(path)
        schema = str(store.schema)
        with warnings.catch_warnings():  # databento's own pandas deprecation noise
            warnings.simplefilter("ignore")
            df = store.to_df(price_type="float", pretty_ts=True, map_symbols=True)
    except Exception as exc:  # databento raises a variety of types on corrupt input
        raise DataError(f"cannot read as Databento DBN: {exc}", path=path) from exc
    if "action" not in df.columns or "side" not in df.columns:
        raise DataError(f"DBN schema {schema!r} has no trade actions/sides (need mbo, trades, mbp-1, tbbo)", path=path)
    trades = df[df["action"] == "T"]
    symbols = sorted(trades["symbol"].dropna().unique()) if "symbol" in trades else []
    if symbol is not None:
        trades = trades[trades["symbol"] == symbol]
        if trades.empty:
            raise DataError(f"no trades for symbol {symbol!r}; file has {symbols}", path=path, field="symbol")
    elif len(symbols) > 1:
        raise DataError(f"file holds trades of several instruments {symbols}: pass symbol=...", path=path, field="symbol")
    if trades.empty:
        raise DataError("no trade records (action 'T') in file", path=path, field="action")
    ts = pd.DatetimeIndex(trades["ts_event"]).tz_convert("UTC").as_unit("ns").asi8
    if np.any(np.diff(ts) < 0):
        i = _first_bad(np.diff(ts) < 0) + 1
        raise DataError("ts_event goes backwards in file order", path=path, row=i, field="ts_event", row_kind="trade")
    side = trades["side"].map({"B": 1, "A": -1, "N": 0})
    if side.isna().any():
        i = _first_bad(side.isna().to_numpy())
        raise DataError(f"unknown side {trades['side'].iloc[i]!r}", path=path, row=i, field="side", row_kind="trade")
    return make_tick_frame(
        ts,
        trades["price"].to_numpy(),
        trades["size"].to_numpy(),
        side.to_numpy(),
        trades["sequence"].to_numpy() if "sequence" in trades else None,
        attrs={
            "sources": [str(path)],
            "source_format": "dbn",
            "source_tz": "UTC",
            "symbol": symbols[0] if symbols and symbol is None else symbol,
            "dbn_schema": schema,
            "unknown_side_trades": int((side == 0).sum()),
        },
    )
