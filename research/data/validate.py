"""Row rules every loaded bar or trade must meet: values that cannot be real market data.

:func:`impossible_bars` and :func:`impossible_trades` return one :class:`Violation` per rule
broken (the rows and the field); :func:`screen_bars` and :func:`screen_ticks`, called by the
loader, refuse them (``on_error="raise"``: a DataError naming file, line/record/trade and field)
or set them aside (``on_error="quarantine"``). The same rules are errors in :func:`research.data.check`.

Rules: a price that is not finite, zero or negative, or off the tick grid (more than
:data:`TICK_TOLERANCE` ticks away; nearer prices are float noise and are snapped); a low above
open, close or high, or a high below open or close; a negative volume, trade count or bid/ask
volume; bid + ask volume above volume.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from .errors import DataError

__all__ = ["Violation", "impossible_bars", "impossible_trades", "screen_bars", "screen_ticks", "TICK_TOLERANCE"]

TICK_TOLERANCE = 1e-3  # in ticks: the snapping tolerance of research.data.frame.snap_to_tick
PRICE_FIELDS = ("open", "high", "low", "close")
COUNT_FIELDS = ("volume", "num_trades", "bid_volume", "ask_volume")


@dataclass(frozen=True)
class Violation:
    """Rows (``mask``) whose ``field`` breaks a rule, with the reason in words."""

    field: str
    mask: np.ndarray
    reason: str


def _price_rules(name: str, p: np.ndarray, tick: float | None) -> list[Violation]:
    out = []
    with np.errstate(invalid="ignore"):
        nonfinite = ~np.isfinite(p)
        out.append(Violation(name, nonfinite, "price is not a finite number"))
        out.append(Violation(name, ~nonfinite & (p <= 0), "price is zero or negative"))
        if tick:
            q = p / tick
            out.append(Violation(name, ~nonfinite & (p > 0) & (np.abs(q - np.round(q)) > TICK_TOLERANCE),
                                 f"price is not a multiple of the tick size {tick:g}"))
    return out


def impossible_bars(cols: dict[str, np.ndarray], tick: float | None) -> list[Violation]:
    """Rule violations of bar columns (``open, high, low, close``, volumes); only rules with a hit."""
    out: list[Violation] = []
    for name in PRICE_FIELDS:
        out += _price_rules(name, np.asarray(cols[name], dtype=np.float64), tick)
    o, h, lo, c = (np.asarray(cols[k], dtype=np.float64) for k in PRICE_FIELDS)
    with np.errstate(invalid="ignore"):
        bad_low = (lo > o) | (lo > c) | (lo > h)
        bad_high = ((h < o) | (h < c)) & ~bad_low
    out.append(Violation("low", bad_low, "low above open, close or high"))
    out.append(Violation("high", bad_high, "high below open or close"))
    for name in COUNT_FIELDS:
        if cols.get(name) is not None:
            out.append(Violation(name, np.asarray(cols[name]) < 0, "negative count"))
    if cols.get("bid_volume") is not None and cols.get("ask_volume") is not None and "volume" in cols:
        flow = np.asarray(cols["bid_volume"], dtype=np.int64) + np.asarray(cols["ask_volume"], dtype=np.int64)
        out.append(Violation("bid_volume+ask_volume", flow > np.asarray(cols["volume"]), "bid + ask volume above volume"))
    return [v for v in out if v.mask.any()]


def impossible_trades(price: np.ndarray, size: np.ndarray, tick: float | None) -> list[Violation]:
    """Rule violations of trades: price (finite, > 0, on the grid) and size (> 0)."""
    out = _price_rules("price", np.asarray(price, dtype=np.float64), tick)
    out.append(Violation("size", np.asarray(size) <= 0, "trade size is zero or negative"))
    return [v for v in out if v.mask.any()]


def first_row(violations: list[Violation]) -> tuple[int, Violation]:
    """The earliest offending row over all violations, and the first violation naming it."""
    best = min(violations, key=lambda v: int(np.flatnonzero(v.mask)[0]))
    return int(np.flatnonzero(best.mask)[0]), best


_SIERRA_NAMES = {"open": "Open", "high": "High", "low": "Low", "close": "Last", "volume": "Volume",
                 "num_trades": "NumberOfTrades", "bid_volume": "BidVolume", "ask_volume": "AskVolume",
                 "bid_volume+ask_volume": "BidVolume+AskVolume"}


def _value_text(v: Violation, cols: dict, i: int) -> str:
    if v.field == "low":
        return f"low {cols['low'][i]:g} vs open {cols['open'][i]:g}, high {cols['high'][i]:g}, close {cols['close'][i]:g}"
    if v.field == "high":
        return f"high {cols['high'][i]:g} vs open {cols['open'][i]:g}, close {cols['close'][i]:g}"
    if v.field == "bid_volume+ask_volume":
        return f"{cols['bid_volume'][i]} + {cols['ask_volume'][i]} > volume {cols['volume'][i]}"
    return repr(cols[v.field][i].item())


def _screen(cols: dict, violations: list[Violation], *, path: Path, rows: np.ndarray | None, row_kind: str,
            quarantine: bool, names: dict[str, str] | None = None) -> tuple[np.ndarray, list[dict]]:
    """Keep-mask without the rows that break a rule, and their quarantine report; raises unless ``quarantine``."""
    n = len(next(iter(cols.values())))
    bad = np.zeros(n, dtype=bool)
    for v in violations:
        bad |= v.mask
    if not bad.any():
        return ~bad, []
    row_of = (lambda i: int(rows[i])) if rows is not None else (lambda i: int(i))
    field_of = (lambda f: names.get(f, f)) if names else (lambda f: f)
    if not quarantine:
        i, v = first_row(violations)
        raise DataError(f"{v.reason}: {_value_text(v, cols, i)} ({int(bad.sum())} impossible {row_kind}(s) in all; "
                        "on_error='quarantine' sets them aside)", path=path, row=row_of(i), field=field_of(v.field), row_kind=row_kind)
    report = []
    seen: set[int] = set()
    for v in violations:
        for i in np.flatnonzero(v.mask):
            if int(i) in seen:
                continue
            seen.add(int(i))
            report.append({"file": str(path), "line": row_of(i), "field": field_of(v.field), "reason": v.reason,
                           "raw": ", ".join(f"{k}={cols[k][i]}" for k in cols)})
    report.sort(key=lambda r: r["line"])
    return ~bad, report


def screen_ticks(ticks: pd.DataFrame, path: Path, tick: float | None, quarantine: bool, attrs: dict) -> pd.DataFrame:
    """Trades that break a rule raise DataError, or are quarantined into ``attrs['quarantine']`` (row = trade number)."""
    cols = {"price": ticks["price"].to_numpy(), "size": ticks["size"].to_numpy()}
    viol = impossible_trades(cols["price"], cols["size"], tick)
    if not viol:
        return ticks
    keep, report = _screen(cols, viol, path=path, rows=None, row_kind="trade", quarantine=quarantine)
    attrs["quarantine"] = attrs.get("quarantine", []) + report
    kept = ticks.loc[keep]
    kept.attrs = ticks.attrs
    return kept


def screen_bars(cols: dict, t: np.ndarray, attrs: dict, path: Path, tick: float | None, quarantine: bool) -> tuple[dict, np.ndarray]:
    """Bars that break a rule raise DataError, or are quarantined into ``attrs['quarantine']`` (named by line/record)."""
    viol = impossible_bars(cols, tick)
    if not viol:
        return cols, t
    fmt = attrs.get("source_format")
    lines = attrs.get("_lines")
    kind = "record" if fmt == "scid" else attrs.get("line_kind", "line")
    keep, report = _screen(cols, viol, path=path, rows=lines, row_kind=kind, quarantine=quarantine,
                           names=_SIERRA_NAMES if fmt == "sierra_bars" else None)
    attrs["quarantine"] = attrs["quarantine"] + report
    if lines is not None:
        attrs["_lines"] = lines[keep]
    return {k: v[keep] for k, v in cols.items()}, t[keep]
