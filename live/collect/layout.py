"""Where the collector's files live under its directory (see docs/data_collection_guide.md, "Files")."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["collect_dir", "segment_dir", "segment_path", "manifest_path", "partition_path", "journal_path",
           "trader_dir", "reports_dir", "TABLES", "DEFAULT_DIR", "ENV_VAR"]

DEFAULT_DIR = Path("data/collect")
ENV_VAR = "NAVALE_COLLECT_DIR"
TABLES = ("ticks", "bars", "events")  # the Parquet tables, one partition per symbol and trading date


def collect_dir(arg: str | Path | None = None) -> Path:
    """The collection directory: ``arg``, else ``$NAVALE_COLLECT_DIR``, else ``data/collect``."""
    if arg:
        return Path(arg)
    env = os.environ.get(ENV_VAR)
    return Path(env) if env else DEFAULT_DIR


def segment_dir(root: Path, symbol: str) -> Path:
    return Path(root) / "segments" / symbol


def segment_path(root: Path, symbol: str, date: str) -> Path:
    """``ROOT/segments/SYMBOL/DATE.seg``."""
    return segment_dir(root, symbol) / f"{date}.seg"


def manifest_path(segment: Path) -> Path:
    """``DATE.manifest.json`` beside ``DATE.seg``: its presence means the segment is sealed."""
    segment = Path(segment)
    return segment.with_name(segment.name[: -len(".seg")] + ".manifest.json")


def partition_path(root: Path, table: str, symbol: str, date: str) -> Path:
    """``ROOT/parquet/TABLE/symbol=SYMBOL/date=DATE/part-0.parquet``."""
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}: one of {', '.join(TABLES)}")
    return Path(root) / "parquet" / table / f"symbol={symbol}" / f"date={date}" / "part-0.parquet"


def journal_path(root: Path) -> Path:
    return Path(root) / "collector.sqlite"


def trader_dir(root: Path) -> Path:
    return Path(root) / "trader"


def reports_dir(root: Path) -> Path:
    return Path(root) / "reports"
