"""`load_bars`: one entry point that detects the file format and returns the canonical bar frame."""

from __future__ import annotations

import glob
import re
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from strategy.market.clock import CT
from strategy.market.instruments import get_spec, parse_contract, root_of
from strategy.market.sessions import Session, session_mask

from .aggregate import (
    BarSpec,
    aggregate_records,
    bar_grid_offsets,
    parse_bar_spec,
    ticks_to_bars,
)
from .bar_files import (
    UTF8_BOM,
    open_maybe_gzip,
    read_generic_bars,
    read_sierra_bar_text,
    refuse_bom_before_binary,
)
from .errors import DataError
from .frame import make_bar_frame, require_strictly_increasing
from .validate import screen_bars, screen_ticks

__all__ = ["load_bars", "load_ticks", "detect_format", "symbol_from_path", "Format"]

Format = Literal["sierra_bars", "scid", "tbt_text", "dbn", "csv", "parquet", "collected"]
OnError = Literal["raise", "quarantine"]
DEFAULT_TICK_BAR = "1min"


def detect_format(path: str | Path) -> Format:
    """Detect a file's format from its first bytes (and name for Parquet)."""
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(8)
    except OSError as exc:
        raise DataError(f"cannot open: {exc.strerror or exc}", path=path) from exc
    if not head:
        raise DataError("file is empty", path=path)
    if head[:4] == b"SCID":
        return "scid"
    refuse_bom_before_binary(path, head)
    _refuse_compressed_scid(path, head)
    if head[:4] == b"PAR1":
        return "parquet"
    if head[:4] == b"\x28\xb5\x2f\xfd" or head[:3] == b"DBN":
        return "dbn"
    if head[:2] == b"\x1f\x8b" or _is_text(head.removeprefix(UTF8_BOM)):
        try:
            with open_maybe_gzip(path) as fh:
                first = fh.readline(4096).removeprefix(UTF8_BOM).decode("utf-8", errors="replace")
        except (OSError, EOFError) as exc:
            raise DataError(f"cannot read: {exc}", path=path) from exc
        cols = [c.strip() for c in re.split(r"[;,\t]", first)]
        if "TradeType" in cols and "Price" in cols:
            return "tbt_text"
        if cols[:2] == ["Date", "Time"] and "Open" in cols:
            return "sierra_bars"
        return "csv"
    if head[:4] == b"PK\x03\x04":
        raise DataError("a zip archive: extract the data file from it first", path=path)
    raise DataError(f"unknown file format (first bytes {head!r})", path=path)


_COMPRESSION_MAGIC = {b"\x1f\x8b": "gzip", b"\x28\xb5\x2f\xfd": "zstd", b"PK\x03\x04": "zip", b"BZh": "bzip2", b"\xfd7zXZ": "xz"}


def _refuse_compressed_scid(path: Path, head: bytes) -> None:
    """A compressed ``.scid`` (by name, or gzip whose content starts with ``SCID``) gets a message saying so."""
    kind = next((k for m, k in _COMPRESSION_MAGIC.items() if head.startswith(m)), None)
    if kind is None:
        return
    named = re.search(r"\.scid\.(gz|gzip|zst|zstd|zip|bz2|xz)$", path.name.lower()) is not None
    if not named and kind == "gzip":
        try:
            with open_maybe_gzip(path) as fh:
                named = fh.read(4) == b"SCID"
        except (OSError, EOFError):
            named = False
    if named:
        raise DataError(f"a {kind}-compressed Sierra .scid file: .scid files are read uncompressed, "
                        "decompress it first", path=path)


def _is_text(head: bytes) -> bool:
    try:
        head.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return all(b >= 9 for b in head)


_SYMBOL_RE = re.compile(r"^([A-Z0-9]{1,4}[FGHJKMNQUVXZ]\d{1,2})(?=[-._]|$)")


def symbol_from_path(path: str | Path) -> str | None:
    """Contract or product from a file name, only when it names a known instrument (the instrument
    table, ``strategy.market.instruments``): ``ESH15-CME.scid_BarData...`` -> ``ESH15``,
    ``ES_2022...`` -> ``ES``; ``bom.txt`` or ``s.scid`` -> None (pass ``symbol=``)."""
    name = Path(path).name.upper()
    m = _SYMBOL_RE.match(name) or re.match(r"^([A-Z0-9]{1,4})(?=[-._])", name)
    if not m:
        return None
    try:
        get_spec(root_of(m.group(1)))
    except (KeyError, ValueError):
        return None
    return m.group(1)


def expand_paths(paths: str | Path | Iterable[str | Path]) -> list[Path]:
    """Files named by paths, folders or globs (sorted within each argument); a pattern that matches nothing is an error."""
    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[Path] = []
    for p in items:
        s = str(p)
        if any(ch in s for ch in "*?["):
            hits = sorted(glob.glob(s))
            if not hits:
                raise DataError("no file matches this pattern", path=s)
            out.extend(Path(h) for h in hits)
        else:
            path = Path(p)
            if path.is_dir():
                out.extend(sorted(q for q in path.iterdir() if q.is_file() and not q.name.startswith(".")))
            elif not path.exists():
                raise DataError("no such file", path=path)
            else:
                out.append(path)
    if not out:
        raise DataError("no input files")
    return out


def load_ticks(path: str | Path, *, tz: str | None = None, symbol: str | None = None, time_fraction: str = "auto") -> pd.DataFrame:
    """Trades of one tick source (tick-by-tick text, DBN, or a ``.scid`` of single trades) as a tick frame."""
    from .scid import read_scid_records, records_to_ticks
    from .ticks import read_dbn_trades, read_tbt_text

    path = Path(path)
    fmt = detect_format(path)
    if fmt == "tbt_text":
        t = read_tbt_text(path, tz=tz or "UTC", time_fraction=time_fraction)  # type: ignore[arg-type]
    elif fmt == "dbn":
        t = read_dbn_trades(path, symbol=symbol)
    elif fmt == "scid":
        t = records_to_ticks(read_scid_records(path), path=path)
    else:
        raise DataError(f"{fmt} files hold bars, not ticks", path=path)
    t.attrs.setdefault("symbol", None)
    t.attrs["symbol"] = symbol or t.attrs.get("symbol") or symbol_from_path(path)
    return t


def _tick_for(symbol: str | None, tick_size: float | None) -> float | None:
    """The tick size given, else the instrument table's for the symbol's product (None when unknown)."""
    if tick_size is not None or not symbol:
        return tick_size
    try:
        return get_spec(root_of(symbol)).tick_size
    except (KeyError, ValueError):
        return None


def _load_one(path: Path, *, bar: BarSpec | None, tz: str | None, quarantine: bool, symbol: str | None, time_fraction: str,
              tick_size: float | None = None, validate: bool = True) -> tuple[dict, np.ndarray, dict]:
    """One file -> (columns, time_ns, attrs) in file order (not yet checked for order).

    With ``validate``, rows that cannot be real (see :mod:`research.data.validate`) raise or are quarantined.
    """
    from .collected import collected_kind
    from .scid import (
        read_scid_records,
        records_are_trades,
        records_to_ticks,
        scid_time_to_ns,
    )

    if collected_kind(path) in ("ticks", "bars"):
        cols, t, attrs = _load_collected(path, bar=bar, quarantine=quarantine, symbol=symbol, tick_size=tick_size,
                                         validate=validate)
        if validate and attrs["records"] == "bars":
            cols, t = screen_bars(cols, t, attrs, path, _tick_for(attrs["symbol"], tick_size), quarantine)
        return cols, t, attrs
    fmt = detect_format(path)
    attrs: dict[str, Any] = {"sources": [str(path)], "source_format": fmt, "quarantine": []}
    if fmt == "sierra_bars":
        tz = tz or CT
        cols, t, bad, lines = read_sierra_bar_text(path, tz=tz, quarantine=quarantine)
        attrs.update(source_tz=tz, quarantine=bad, _lines=lines)
    elif fmt in ("csv", "parquet"):
        cols, t, bad, lines = read_generic_bars(path, tz=tz, quarantine=quarantine)
        attrs.update(source_tz=tz or "UTC", quarantine=bad, _lines=lines, line_kind="row" if fmt == "parquet" else "line")
    elif fmt == "scid":
        from .synthetic import is_synthetic_scid

        rec = read_scid_records(path)
        trades = records_are_trades(rec)
        attrs["source_tz"] = "UTC"
        attrs["synthetic"] = is_synthetic_scid(path)
        if rec.size == 0:
            raise DataError("file has a header and no records", path=path, row=0, row_kind="record")
        if trades.all():
            ticks = records_to_ticks(rec, path=path)
            if validate:
                ticks = screen_ticks(ticks, path, _tick_for(symbol or symbol_from_path(path), tick_size), quarantine, attrs)
            spec = bar or parse_bar_spec(DEFAULT_TICK_BAR)
            agg = ticks_to_bars(ticks, spec)
            t = agg.pop("time_ns")
            cols = agg
            attrs["bar"] = spec.text
            attrs["records"] = "trades"
        else:
            has_flow = bool(np.any(rec["bid_volume"]) or np.any(rec["ask_volume"]))
            o = np.where(trades, rec["close"], rec["open"]).astype(np.float64)
            h = np.where(trades, rec["close"], rec["high"]).astype(np.float64)
            lo = np.where(trades, rec["close"], rec["low"]).astype(np.float64)
            cols = {
                "open": o,
                "high": h,
                "low": lo,
                "close": rec["close"].astype(np.float64),
                "volume": rec["total_volume"].astype(np.int64),
                "num_trades": rec["num_trades"].astype(np.int64),
            }
            if has_flow:
                cols["bid_volume"] = rec["bid_volume"].astype(np.int64)
                cols["ask_volume"] = rec["ask_volume"].astype(np.int64)
            t = scid_time_to_ns(rec["datetime"])
            attrs["records"] = "bars" if not trades.any() else "mixed"
            if trades.any() and bar is None:
                raise DataError("file mixes bar and trade records: pass bar='1min' (or another size) to aggregate them", path=path)
    elif fmt in ("tbt_text", "dbn"):
        ticks = load_ticks(path, tz=tz, symbol=symbol, time_fraction=time_fraction)
        if validate:
            ticks = screen_ticks(ticks, path, _tick_for(ticks.attrs.get("symbol"), tick_size), quarantine, attrs)
        spec = bar or parse_bar_spec(DEFAULT_TICK_BAR)
        agg = ticks_to_bars(ticks, spec)
        t = agg.pop("time_ns")
        cols = agg
        attrs.update({k: v for k, v in ticks.attrs.items() if k not in ("sources", "source_format")})
        attrs["bar"] = spec.text
        attrs["records"] = "trades"
        if ticks.attrs.get("unknown_side_trades"):
            attrs["unknown_side_trades"] = ticks.attrs["unknown_side_trades"]
    else:  # pragma: no cover
        raise DataError(f"unsupported format {fmt}", path=path)
    attrs["symbol"] = symbol or attrs.get("symbol") or symbol_from_path(path)
    if validate and attrs.get("records") != "trades":
        cols, t = screen_bars(cols, t, attrs, path, _tick_for(attrs["symbol"], tick_size), quarantine)
    return cols, t, attrs


def _load_collected(path: Path, *, bar: BarSpec | None, quarantine: bool, symbol: str | None,
                    tick_size: float | None, validate: bool) -> tuple[dict, np.ndarray, dict]:
    """The collector's Parquet partitions (``ROOT/parquet/bars`` or ``ticks``, a ``symbol=``/``date=`` folder or
    one file): bars as stored, ticks aggregated like any tick source. ``symbol`` picks the product root."""
    from .collected import read_collected
    from .ticks import make_tick_frame

    kind, table, meta = read_collected(path, symbol=root_of(symbol) if symbol else None)
    attrs: dict[str, Any] = {**meta, "quarantine": [], "sources": [str(path)], "partition_files": meta["sources"]}
    if table.num_rows == 0:
        raise DataError(f"the collected {kind} partition(s) hold no rows", path=path)
    t = table.column("ts").cast("int64").to_numpy()
    if kind == "bars":
        cols = {c: table.column(c).to_numpy() for c in ("open", "high", "low", "close", "volume", "num_trades",
                                                         "bid_volume", "ask_volume")}
        attrs["records"] = "bars"
        return cols, t, attrs
    ticks = make_tick_frame(t, table.column("price").to_numpy(), table.column("size").to_numpy(),
                            table.column("side").to_numpy(), table.column("seq").to_numpy(), attrs={})
    ticks["num_trades"] = table.column("num_trades").to_numpy()
    if validate:
        ticks = screen_ticks(ticks, path, _tick_for(attrs["symbol"], tick_size), quarantine, attrs)
    spec = bar or parse_bar_spec(DEFAULT_TICK_BAR)
    agg = ticks_to_bars(ticks, spec)
    attrs.update(bar=spec.text, records="trades")
    return agg, agg.pop("time_ns"), attrs


def _resample_if_needed(cols: dict, t: np.ndarray, attrs: dict, bar: BarSpec | None, path: Path) -> tuple[dict, np.ndarray]:
    """Merge bars into ``bar``-sized ones; refuse a size the source bars cannot make (see :func:`_check_resample`)."""
    if bar is None or attrs.get("records") == "trades":
        return cols, t
    _check_resample(cols, t, attrs, bar, path)
    agg = aggregate_records(
        t, cols["open"], cols["high"], cols["low"], cols["close"], cols["volume"],
        cols.get("num_trades", np.zeros(len(t), np.int64)), cols.get("bid_volume"), cols.get("ask_volume"), bar,
    )  # fmt: skip
    if "num_trades" not in cols:
        agg.pop("num_trades")
    attrs["bar"] = bar.text
    t_out = agg.pop("time_ns")
    if len(t_out) and t_out[0] < t[0] and attrs.get("records") != "mixed":
        t_out[0] = t[0]  # a file that starts inside a bar: that bar starts with the data, not before it
        attrs["partial_first_bar"] = str(pd.Timestamp(int(t[0]), tz="UTC"))
    return agg, t_out


def _source_step(t: np.ndarray) -> int | None:
    """The source's bar size (ns): the smallest spacing when most bars have it, else the median; None if unknown."""
    d = np.diff(t)
    d = d[d > 0]
    if d.size == 0:
        return None
    step = int(np.min(d))
    return step if np.mean(d == step) > 0.5 else int(np.median(d))


def _check_resample(cols: dict, t: np.ndarray, attrs: dict, bar: BarSpec, path: Path) -> None:
    """Refuse bars the source cannot make: finer than it, not a whole multiple of it, or off its grid."""
    if len(t) == 0:
        return
    lines = attrs.get("_lines")
    kind = attrs.get("line_kind", "line") if lines is not None else ("record" if attrs.get("source_format") == "scid" else "row")
    back = np.flatnonzero(np.diff(t) <= 0)
    if back.size:
        i = int(back[0]) + 1
        raise DataError(f"bar at {pd.Timestamp(int(t[i]), tz='UTC')} is not after the one before it, so the bars cannot be "
                        f"merged into {bar.text} bars", path=path, row=int(lines[i]) if lines is not None else i,
                        field="time", row_kind=kind)
    if attrs.get("records") == "mixed":
        return  # single trades among the bars are points in time: any bar size can hold them
    step = _source_step(t)
    if step is None:
        raise DataError(f"cannot resample into {bar.text} bars: the source bar size is unknown (fewer than 2 distinct bar times)",
                        path=path, field="bar")
    src = format_duration(step)
    if bar.kind == "time":
        if bar.size < step or bar.size % step:
            whole = ", ".join(format_duration(step * k) for k in (2, 3, 6, 12) if step * k <= 24 * 3600 * 10**9) or src
            raise DataError(f"cannot resample {src} bars into {bar.text} bars: the bar size must be a whole multiple of "
                            f"the source bar ({src}), e.g. {whole}", path=path, field="bar")
        off = np.flatnonzero(bar_grid_offsets(t, step) != 0)
        if off.size:
            i = int(off[0])
            raise DataError(f"bar at {pd.Timestamp(int(t[i]), tz='UTC')} is not on the {src} grid of the other bars "
                            f"(counted from the 17:00 CT session open), so it cannot be merged into {bar.text} bars",
                            path=path, row=int(lines[i]) if lines is not None else i, field="time", row_kind=kind)
        return
    unit = "contracts" if bar.kind == "volume" else "trades"
    per_bar = np.asarray(cols["volume"] if bar.kind == "volume" else cols.get("num_trades", np.zeros(0)), dtype=np.int64)
    if per_bar.size == 0 or not per_bar.any():
        raise DataError(f"cannot make {bar.text} bars: the source bars have no {unit} counts", path=path, field="bar")
    median = int(np.median(per_bar))
    if bar.size < median:
        raise DataError(f"cannot resample {src} bars into {bar.text} bars: finer than the source, whose median bar holds "
                        f"{median:,} {unit} (use {bar.kind}:N with N >= {median:,}, or tick data)", path=path, field="bar")


def _infer_bar(t: np.ndarray) -> str | None:
    step = _source_step(t) if len(t) >= 3 else None
    return format_duration(step) if step else None


def format_duration(ns: int) -> str:
    """Nanoseconds -> the shortest offset alias with a count: '1min', '5min', '1h', '30s'."""
    for unit, size in (("h", 3600 * 10**9), ("min", 60 * 10**9), ("s", 10**9), ("ms", 10**6), ("us", 10**3)):
        if ns % size == 0:
            return f"{ns // size}{unit}"
    return f"{ns}ns"


def _order_quarantine(t: np.ndarray, path: str, lines: np.ndarray | None) -> tuple[np.ndarray, list[dict]]:
    """Keep-mask dropping rows whose time is not after every earlier kept time; report them."""
    running = np.maximum.accumulate(t)
    keep = np.ones(len(t), dtype=bool)
    keep[1:] = t[1:] > running[:-1]
    report = [
        {"file": path, "line": int(lines[i]) if lines is not None else int(i), "field": "time",
         "reason": "duplicated timestamp" if t[i] in (running[i - 1],) else "timestamp out of order", "raw": str(pd.Timestamp(t[i], tz="UTC"))}
        for i in np.flatnonzero(~keep)
    ]  # fmt: skip
    return keep, report


def _expand_keeping_collected(paths: str | Path | Sequence[str | Path]) -> list[Path]:
    """`expand_paths`, except that a collected partition tree (see `research.data.collected`) stays one input."""
    from .collected import collected_kind

    items = [paths] if isinstance(paths, (str, Path)) else list(paths)
    out: list[Path] = []
    for p in items:
        if Path(p).is_dir() and collected_kind(p) is not None:
            out.append(Path(p))
        else:
            out.extend(expand_paths(p))
    return out


def load_bars(
    path_or_paths: str | Path | Sequence[str | Path],
    *,
    bar: str | None = None,
    tz: str | None = None,
    session: Session = "all",
    symbol: str | None = None,
    tick_size: float | None = None,
    continuous: bool | None = None,
    roll: str = "volume",
    on_error: OnError = "raise",
    strict: bool = True,
    time_fraction: str = "auto",
) -> pd.DataFrame:
    """Load bars from any supported file(s) into the canonical frame (see ``research.data.frame``).

    Formats are detected from content: Sierra bar exports (gz or not), Sierra ``.scid`` (bars or
    single trades), tick-by-tick text, Databento DBN, generic CSV/Parquet OHLCV, and the collector's
    Parquet partitions (``ROOT/parquet/bars`` or ``ticks``, a ``symbol=``/``date=`` folder or one file:
    see :mod:`research.data.collected`).

    Args:
        bar: bar size for tick sources or to resample finer bars: ``"1min"``, ``"5min"``,
            ``"volume:1000"``, ``"tick:500"``. Tick sources default to ``"1min"``.
        tz: time zone of naive source times (Sierra exports: America/Chicago; tick text: UTC).
        session: ``"all"``, ``"rth"`` (09:30-16:00 ET) or ``"globex"`` (outside RTH).
        symbol: contract/product; default from the file name (or the DBN symbology).
        tick_size: default from the instrument table.
        continuous: several contracts of one product -> continuous series (default: True when
            the files hold different contracts). See :func:`research.data.continuous.build_continuous`.
        roll: roll rule for continuous series: ``"volume"`` or ``"days:N"`` (N days before expiry).
        on_error: ``"raise"`` (first bad row raises DataError naming file, line, field) or
            ``"quarantine"`` (bad, impossible, duplicated or out-of-order rows are set aside and
            listed in ``frame.attrs['quarantine']``; nothing else changes).
        strict: refuse rows that cannot be real (OHLC inconsistent, a price <= 0 or off the tick
            grid, negative counts, bid + ask volume above volume: see
            :mod:`research.data.validate`) and require strictly increasing times. ``False`` keeps
            rows exactly as stored, for :func:`research.data.check` to report.

    Example:
        >>> bars = load_bars("../shared/data/es-5m/ESH20-CME.scid_BarData__5m.txt.gz", session="rth")
    """
    if on_error not in ("raise", "quarantine"):
        raise ValueError("on_error must be 'raise' or 'quarantine'")
    spec = parse_bar_spec(bar) if bar is not None else None
    paths = _expand_keeping_collected(path_or_paths)
    quarantine = on_error == "quarantine"
    parts = []
    for p in paths:
        cols, t, attrs = _load_one(p, bar=spec, tz=tz, quarantine=quarantine, symbol=symbol, time_fraction=time_fraction,
                                   tick_size=tick_size, validate=strict)
        if quarantine and len(t):
            keep, rep = _order_quarantine(t, str(p), attrs.get("_lines"))
            if rep:
                cols = {k: v[keep] for k, v in cols.items()}
                t = t[keep]
                attrs["quarantine"] = attrs["quarantine"] + rep
                attrs["_lines"] = attrs["_lines"][keep] if attrs.get("_lines") is not None else None
        cols, t = _resample_if_needed(cols, t, attrs, spec, p)
        parts.append((p, cols, t, attrs))

    symbols = [a["symbol"] for _, _, _, a in parts]
    contracts = {s for s in symbols if s and parse_contract(s)}
    roots = {root_of(s) for s in symbols if s}
    if len(roots) > 1:
        raise DataError(f"files hold different products {sorted(roots)}; load them separately", path=str(paths[0]))
    root = roots.pop() if roots else None
    tick = tick_size
    if tick is None and root is not None:
        try:
            tick = get_spec(root).tick_size
        except KeyError:
            tick = None

    frames = []
    for p, cols, t, attrs in parts:
        attrs = dict(attrs)
        lines = attrs.pop("_lines", None)
        if attrs.get("bar") is not None and attrs.get("records") != "trades" and spec is not None:
            lines = None  # resampled: rows no longer map to source lines
        # line_offset lets checks name source lines; set only while rows map 1:1 to lines
        attrs["line_offset"] = int(lines[0]) if lines is not None and len(lines) and np.all(np.diff(lines) == 1) else None
        attrs.update(tick_size=tick, root=root, synthetic=bool(attrs.get("synthetic", False)))
        attrs.setdefault("bar", None)
        attrs["bar"] = attrs["bar"] or _infer_bar(t)
        f = make_bar_frame(t, cols, attrs=attrs)
        if strict and on_error == "raise":
            require_strictly_increasing(f, path=str(p), row_of=(lambda i, ln=lines: int(ln[i])) if lines is not None else None)
        frames.append(f)

    if continuous is None:
        continuous = len(contracts) > 1
    if continuous:
        from .continuous import build_continuous

        out = build_continuous(frames, roll=roll)
    else:
        out = _concat_same_instrument(frames, strict=strict, quarantine=quarantine)
    if session != "all":
        mask = session_mask(out.index, session)
        attrs = out.attrs
        out = out.loc[mask]
        out.attrs = attrs
    out.attrs["session"] = session
    return out


def _concat_same_instrument(frames: list[pd.DataFrame], *, strict: bool, quarantine: bool) -> pd.DataFrame:
    if len(frames) == 1:
        return frames[0]
    frames = sorted(frames, key=lambda f: f.index[0] if len(f) else pd.Timestamp.max.tz_localize("UTC"))
    flows = {bool(f.attrs.get("order_flow")) for f in frames}
    out = pd.concat(frames)
    if flows != {True}:
        out = out.drop(columns=[c for c in ("bid_volume", "ask_volume") if c in out.columns])
    attrs = dict(frames[0].attrs)
    attrs["sources"] = [s for f in frames for s in f.attrs["sources"]]
    attrs["quarantine"] = [q for f in frames for q in f.attrs.get("quarantine", [])]
    attrs["order_flow"] = flows == {True}
    attrs["synthetic"] = any(f.attrs.get("synthetic") for f in frames)
    attrs["line_offset"] = None
    if strict:
        t = out.index.as_unit("ns").asi8
        bad = np.flatnonzero(np.diff(t) <= 0)
        if bad.size and quarantine:
            keep, rep = _order_quarantine(t, "+".join(attrs["sources"]), None)
            out = out.loc[keep]
            attrs["quarantine"] += rep
        elif bad.size:
            i = int(bad[0]) + 1
            src = [f.attrs["sources"][0] for f in frames]
            raise DataError(
                f"files overlap in time at {out.index[i]} (files: {src}); load them one at a time, "
                "as a continuous series (continuous=True), or with on_error='quarantine'",
                path=src[0],
                field="time",
            )
    out.attrs = attrs
    return out
