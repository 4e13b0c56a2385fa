"""Resumable sweeps: each finished task's arrays in ``<cache_dir>/<sweep_key>/<task_key>.npz``.

The sweep key hashes everything that decides a task's numbers: the data sets' content, the base
parameters, the grid, the split (and warm-up) and the code version (source of the signal kernel,
the signal edge, the simulator and the fused module). A task key adds the data set and the
combinations of the task. A rerun loads finished tasks and computes only the missing ones.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from research.store.files import atomic_write_bytes

__all__ = ["TASK_ARRAYS", "code_version", "default_cache_dir", "digest", "load_task", "save_task"]

_ROOT = Path(__file__).resolve().parents[2]
CODE_FILES = (
    "strategy/kernels.py", "strategy/layout.py", "strategy/rolling.py", "strategy/signals.py", "strategy/params.py", "strategy/modes.py",
    "strategy/exits.py", "strategy/market/clock.py", "strategy/market/instruments.py",
    "strategy/trade_rules.py", "strategy/fills.py", "strategy/trade_engine.py", "strategy/market/calendar.py",
    "strategy/borrowed.py",
    "research/backtest/simulator.py", "research/backtest/run.py", "research/store/trade_records.py",
    "research/sweep/fused.py",
)
# a task's arrays (research.sweep.runner.TASK_FORMAT, part of the sweep key, changes with them)
TASK_ARRAYS = ("combo", "acc", "daily", "daily_trades", "active", "sessions", "signal_runs")


def digest(obj: Any, n: int = 16) -> str:
    """Stable hex digest of a JSON-able object."""
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:n]


def code_version() -> str:
    """Hash of the source files that compute a sweep's numbers."""
    h = hashlib.sha256()
    for rel in CODE_FILES:
        h.update(rel.encode())
        h.update((_ROOT / rel).read_bytes())
    return h.hexdigest()[:16]


def default_cache_dir() -> Path:
    """``$NAVALE_DATA_DIR/sweep-cache`` (``./data/sweep-cache`` when the variable is unset)."""
    from research.data.synthetic import default_data_dir

    return default_data_dir() / "sweep-cache"


def save_task(path: Path, result: dict[str, Any]) -> None:
    """Write one task's arrays atomically (a crash never leaves a half file that a rerun would trust)."""
    buf = io.BytesIO()
    np.savez(buf, **{k: np.asarray(result[k]) for k in TASK_ARRAYS})
    atomic_write_bytes(path, buf.getvalue())


def load_task(path: Path) -> dict[str, Any] | None:
    """A cached task's arrays, or None when absent, unreadable or incomplete (then it is recomputed)."""
    if not os.path.exists(path):
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            out = {k: z[k] for k in TASK_ARRAYS}
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    out["signal_runs"] = int(out["signal_runs"])
    return out
