"""Row rules every loaded bar or trade must meet: values that cannot be real market data.

:func:`impossible_bars` and :func:`impossible_trades` return one :class:`Violation` per rule
broken (the rows and the field); the loader refuses them (``on_error="raise"``) or sets them
aside (``on_error="quarantine"``). The same rules are errors in :func:`research.data.check`.

Rules: a price that is not finite, zero or negative, or off the tick grid (more than
:data:`TICK_TOLERANCE` ticks away; nearer prices are float noise and are snapped); a low above
open, close or high, or a high below open or close; a negative volume, trade count or bid/ask
volume; bid + ask volume above volume.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Violation", "impossible_bars", "impossible_trades", "TICK_TOLERANCE"]

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
