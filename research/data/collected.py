"""The collector's Parquet partitions: their schemas, building them from a segment, and reading them back.

``ROOT/parquet/TABLE/symbol=SYMBOL/date=YYYY-MM-DD/part-0.parquet`` for the tables ``ticks``, ``bars`` and
``events`` (docs/data_collection_guide.md, "Files and formats"). The partition columns ``symbol`` and ``date``
come from the path (hive partitioning), as DuckDB's ``read_parquet(..., hive_partitioning=true)`` and
``pyarrow.dataset`` read them. ``research.data.load_bars`` accepts such a tree (a table dir, a ``symbol=`` dir, a
``date=`` dir or one file): see :func:`collected_kind` and :func:`read_collected`.
"""

from __future__ import annotations

import io
import json
import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .errors import DataError
from .segments import SegmentData

__all__ = ["TICKS_SCHEMA", "BARS_SCHEMA", "EVENTS_SCHEMA", "SCHEMAS", "ticks_table", "bars_table", "events_table",
           "segment_tables", "parquet_bytes", "collected_kind", "read_collected", "first_difference"]

_TS = pa.timestamp("ns", tz="UTC")
TICKS_SCHEMA = pa.schema([
    ("ts", _TS), ("price", pa.float64()), ("size", pa.int64()), ("side", pa.int8()), ("num_trades", pa.int64()),
    ("bid", pa.float64()), ("ask", pa.float64()), ("seq", pa.int64()), ("contract", pa.string()),
])
BARS_SCHEMA = pa.schema([
    ("ts", _TS), ("open", pa.float64()), ("high", pa.float64()), ("low", pa.float64()), ("close", pa.float64()),
    ("volume", pa.int64()), ("bid_volume", pa.int64()), ("ask_volume", pa.int64()), ("num_trades", pa.int64()),
    ("contract", pa.string()),
])
EVENTS_SCHEMA = pa.schema([
    ("ts", _TS), ("kind", pa.string()), ("level", pa.string()), ("detail", pa.string()), ("end_ts", _TS),
])
SCHEMAS = {"ticks": TICKS_SCHEMA, "bars": BARS_SCHEMA, "events": EVENTS_SCHEMA}


def _ts(ns: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(ns, dtype=np.int64), type=pa.int64()).cast(_TS)


def ticks_table(data: SegmentData) -> pa.Table:
    """The ticks of a segment, in file order (the collector's ``seq`` order)."""
    t = data.ticks
    cols = [_ts(t["ts_ns"])] + [pa.array(t[c]) for c in ("price", "size", "side", "num_trades", "bid", "ask", "seq")]
    return pa.Table.from_arrays(cols + [pa.array(data.tick_contracts, pa.string())], schema=TICKS_SCHEMA)


def bars_table(data: SegmentData) -> pa.Table:
    """The closed bars of a segment, in file order."""
    b = data.bars
    cols = [_ts(b["ts_ns"])] + [pa.array(b[c]) for c in ("open", "high", "low", "close", "volume", "bid_volume",
                                                        "ask_volume", "num_trades")]
    return pa.Table.from_arrays(cols + [pa.array(data.bar_contracts, pa.string())], schema=BARS_SCHEMA)


def _detail(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))


def events_table(data: SegmentData) -> pa.Table:
    """Feed events, quality findings and gaps (kind ``gap``, ``end_ts`` set, detail = the reason), ordered by
    time, events before gaps at the same time, each kind in file order (a stable sort: fixed row order)."""
    rows = [(int(e.get("ts_ns", 0)), str(e.get("kind", "")), str(e.get("level", "info")), _detail(e.get("detail", "")),
             None) for e in data.events]
    rows += [(int(g.get("start_ns", 0)), "gap", "warning", _detail(g.get("reason", "")), int(g.get("end_ns", 0)))
             for g in data.gaps]
    rows.sort(key=lambda r: r[0])
    cols = list(zip(*rows)) if rows else [[], [], [], [], []]
    return pa.Table.from_arrays([
        _ts(np.array(cols[0], dtype=np.int64)), pa.array(cols[1], pa.string()), pa.array(cols[2], pa.string()),
        pa.array(cols[3], pa.string()), pa.array(list(cols[4]), pa.int64()).cast(_TS),
    ], schema=EVENTS_SCHEMA)


def segment_tables(data: SegmentData) -> dict[str, pa.Table]:
    """The three partitions' tables of a segment, by table name."""
    return {"ticks": ticks_table(data), "bars": bars_table(data), "events": events_table(data)}


def parquet_bytes(table: pa.Table) -> bytes:
    """A table as Parquet bytes, the same bytes for the same table (with one pyarrow version): one row group per
    million rows, zstd, no statistics that vary, no write time in the metadata (Parquet stores none)."""
    buf = io.BytesIO()
    pq.write_table(table, buf, compression="zstd", row_group_size=1 << 20, write_statistics=True)
    return buf.getvalue()


def first_difference(expected: pa.Table, actual: pa.Table) -> str | None:
    """None when two tables hold the same rows and columns, else a short description of the first difference."""
    if actual.schema.remove_metadata() != expected.schema.remove_metadata():
        return f"schema differs ({', '.join(actual.schema.names)})"
    if actual.num_rows != expected.num_rows:
        return f"{actual.num_rows} rows, the segment has {expected.num_rows}"
    for name in expected.schema.names:
        a, e = actual.column(name).combine_chunks(), expected.column(name).combine_chunks()
        if a.equals(e):
            continue
        a_l, e_l = a.to_pylist(), e.to_pylist()
        for i, (x, y) in enumerate(zip(a_l, e_l)):
            if x != y and not (isinstance(x, float) and isinstance(y, float) and x != x and y != y):
                return f"row {i}: {name} {x!r}, the segment has {y!r}"
    return None


_HIVE = re.compile(r"^(symbol|date)=")


def _table_of_schema(schema: pa.Schema) -> str | None:
    names = set(schema.names)
    for table, s in SCHEMAS.items():
        if set(s.names) <= names:
            return table
    return None


def _parquet_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    return sorted(p for p in path.rglob("*.parquet") if not any(part.startswith(".") for part in p.relative_to(path).parts))


def collected_kind(path: str | Path) -> str | None:
    """``"ticks"``, ``"bars"`` or ``"events"`` when ``path`` is a collected partition tree (a folder holding
    ``symbol=``/``date=`` folders of Parquet files, one of them, or one such file) with that table's schema;
    None otherwise. Read from the content: the folder layout and the first file's schema, not the name."""
    path = Path(path)
    if path.is_dir():
        hive = _HIVE.match(path.name) or any(_HIVE.match(p.name) for p in path.iterdir() if p.is_dir())
        if not hive:
            return None
        files = _parquet_files(path)
        if not files:
            return None
        path = files[0]
    elif not path.is_file() or path.suffix.lower() != ".parquet":
        return None
    try:
        return _table_of_schema(pq.read_schema(path))
    except (OSError, pa.ArrowInvalid):
        return None


def _partition_of(file: Path) -> tuple[str | None, str | None]:
    symbol = date = None
    for part in file.parts:
        if part.startswith("symbol="):
            symbol = part[len("symbol="):]
        elif part.startswith("date="):
            date = part[len("date="):]
    return symbol, date


def read_collected(path: str | Path, *, symbol: str | None = None) -> tuple[str, pa.Table, dict[str, Any]]:
    """``(table name, rows, attrs)`` of a collected partition tree: the files of one symbol concatenated in
    date order, ``symbol`` and ``date`` from the path. A tree of several symbols needs ``symbol=`` (the product
    root, as in the ``symbol=`` folders). Raises `DataError` for a file of another table or an unreadable one."""
    path = Path(path)
    kind = collected_kind(path)
    if kind is None:
        raise DataError("not a collected Parquet partition (ticks, bars or events)", path=path)
    files = _parquet_files(path)
    by_symbol: dict[str | None, list[tuple[str | None, Path]]] = {}
    for f in files:
        s, d = _partition_of(f)
        by_symbol.setdefault(s, []).append((d, f))
    root = symbol.upper() if symbol else None
    if root is not None and root in by_symbol:
        chosen = root
    elif root is None and len(by_symbol) == 1:
        chosen = next(iter(by_symbol))
    else:
        have = ", ".join(sorted(str(s) for s in by_symbol))
        raise DataError(f"collected data of several symbols ({have}): pass symbol= one of them or name its "
                        "symbol= folder" if root is None else f"no collected data for symbol {root} (have {have})",
                        path=path)
    parts = []
    for _d, f in sorted(by_symbol[chosen], key=lambda x: (x[0] or "", str(x[1]))):
        try:
            t = pq.ParquetFile(f).read()
        except (OSError, pa.ArrowInvalid) as exc:
            raise DataError(f"cannot read the Parquet file: {exc}", path=f) from exc
        if _table_of_schema(t.schema) != kind:
            raise DataError(f"not a collected {kind} file (columns {', '.join(t.schema.names)})", path=f)
        parts.append(t.select(SCHEMAS[kind].names).cast(SCHEMAS[kind]))
    table = pa.concat_tables(parts) if parts else SCHEMAS[kind].empty_table()
    attrs: dict[str, Any] = {"symbol": chosen, "sources": [str(f) for _d, f in by_symbol[chosen]],
                             "source_format": f"collected_{kind}", "source_tz": "UTC"}
    if "contract" in table.schema.names:
        contracts = [c for c in dict.fromkeys(table.column("contract").to_pylist()) if c]
        attrs["contracts"] = contracts
        attrs["contract"] = contracts[-1] if contracts else None
    return kind, table, attrs
