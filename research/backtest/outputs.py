"""The files a backtest run leaves in its output folder (``navale backtest --out``)."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from research.backtest.reporting import per_group_table
from research.store.files import atomic_write_bytes, atomic_write_text, ensure_dir

__all__ = ["write_outputs"]


def write_outputs(out_dir: str | Path, res: Any, params: Any, manifest: dict, summary: dict, run_id: str) -> Path:
    """Write, each atomically: ``trades.parquet``/``.csv``, ``equity.parquet`` (with the position),
    ``per_year.csv`` (and ``per_contract.csv`` for a continuous series), ``stats.json``,
    ``manifest.json`` and ``params.toml``; return the folder. A folder or file that cannot be written
    raises ``research.store.files.WriteError`` naming it and the cause."""
    out_dir = ensure_dir(out_dir)
    buf = io.BytesIO()
    res.trades.to_parquet(buf, index=False)
    atomic_write_bytes(out_dir / "trades.parquet", buf.getvalue())
    atomic_write_text(out_dir / "trades.csv", res.trades.to_csv(index=False))
    buf = io.BytesIO()
    res.equity.to_frame().assign(position=res.position).to_parquet(buf)
    atomic_write_bytes(out_dir / "equity.parquet", buf.getvalue())
    atomic_write_text(out_dir / "per_year.csv", per_group_table(res, "year").to_csv())
    if res.trades["contract"].nunique() > 1:
        atomic_write_text(out_dir / "per_contract.csv", per_group_table(res, "contract").to_csv())
    atomic_write_text(out_dir / "stats.json", json.dumps({"run_id": run_id, **summary}, indent=1))
    atomic_write_text(out_dir / "manifest.json", json.dumps({"run_id": run_id, **manifest}, indent=1, default=str))
    atomic_write_text(out_dir / "params.toml", params.to_toml())
    return out_dir
