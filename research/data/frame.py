"""The canonical bar frame every loader returns, and the helpers that build it.

Index: tz-aware (UTC) DatetimeIndex of bar *start* times named ``time``.
Columns: ``open, high, low, close`` (float64, on the tick grid), ``volume``, ``num_trades``
and, only when the source has the aggressor split, ``bid_volume`` (sell aggressors) and
``ask_volume`` (buy aggressors) (int64). ``frame.attrs`` carries the metadata listed in
:data:`ATTR_KEYS`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = [
    "PRICE_COLUMNS",
    "VOLUME_COLUMNS",
    "FLOW_COLUMNS",
    "ATTR_KEYS",
    "make_bar_frame",
    "snap_to_tick",
    "has_order_flow",
]

PRICE_COLUMNS = ("open", "high", "low", "close")
VOLUME_COLUMNS = ("volume", "num_trades")
FLOW_COLUMNS = ("bid_volume", "ask_volume")
ATTR_KEYS = (
    "symbol",  # contract or product as found in the source (e.g. ESH15, ES)
    "root",  # product root (ES)
    "tick_size",
    "order_flow",  # True when bid_volume/ask_volume are real aggressor volumes
    "sources",  # list of source file paths
    "source_format",
    "source_tz",
    "bar",  # bar spec, e.g. "5min", "volume:1000", or None when unknown
    "synthetic",  # True for generator output
)


def snap_to_tick(prices: np.ndarray, tick: float, tol: float = 1e-3) -> np.ndarray:
    """Round prices within ``tol`` ticks of the grid onto it (float noise, e.g. float32 sources).

    Prices further off the grid are left unchanged so the data check reports them.
    """
    q = prices / tick
    r = np.round(q)
    near = np.abs(q - r) <= tol
    out = prices.copy()
    out[near] = r[near] * tick
    return out


def has_order_flow(frame: pd.DataFrame) -> bool:
    """True when the frame carries real bid/ask (aggressor) volume."""
    return bool(frame.attrs.get("order_flow")) and all(c in frame.columns for c in FLOW_COLUMNS)


def make_bar_frame(
    time_ns: np.ndarray,
    columns: dict[str, np.ndarray],
    *,
    attrs: dict[str, Any],
) -> pd.DataFrame:
    """Assemble a canonical bar frame from UTC nanosecond start times and column arrays.

    Missing ``num_trades`` stays absent only if the source lacks it; flow columns are kept
    only when both are given. Prices are snapped to the tick grid (see :func:`snap_to_tick`).
    """
    idx = pd.DatetimeIndex(np.asarray(time_ns, dtype="datetime64[ns]"), name="time").tz_localize("UTC")
    tick = attrs.get("tick_size")
    data: dict[str, np.ndarray] = {}
    for c in PRICE_COLUMNS:
        p = np.asarray(columns[c], dtype=np.float64)
        data[c] = snap_to_tick(p, tick) if tick else p
    for c in VOLUME_COLUMNS:
        if c in columns:
            data[c] = np.asarray(columns[c], dtype=np.int64)
    flow = all(c in columns and columns[c] is not None for c in FLOW_COLUMNS)
    if flow:
        for c in FLOW_COLUMNS:
            data[c] = np.asarray(columns[c], dtype=np.int64)
    frame = pd.DataFrame(data, index=idx, copy=False)
    frame.attrs.update({k: None for k in ATTR_KEYS})
    frame.attrs.update(attrs)
    frame.attrs["order_flow"] = flow
    return frame


def require_strictly_increasing(frame: pd.DataFrame, *, path: str | None, row_of=None) -> None:
    """Raise DataError at the first timestamp that is not after its predecessor."""
    t = frame.index.as_unit("ns").asi8
    if len(t) < 2:
        return
    bad = np.flatnonzero(np.diff(t) <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        kind = "duplicated" if t[i] == t[i - 1] else "out of order"
        row = row_of(i) if row_of else i
        raise DataError(
            f"timestamp {frame.index[i]} is {kind} (previous row {frame.index[i - 1]}); "
            f"{bad.size} such rows in all. Run `navale data check` for the full list, "
            "or load with on_error='quarantine' to set them aside.",
            path=path,
            row=row,
            field="time",
        )
