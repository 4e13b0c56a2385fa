"""Causal bar features for the ML data set: recent realised volatility and the delta z-score.

They are not in the trade snapshot (schema v1), so they are computed here from the bars, over the same
in-session bars the signal windows run over, one contract segment at a time (a roll's price gap is not
volatility), and joined to each trade at its signal bar. Each value at bar t reads bars <= t only
(``tests/research/ml/test_ml_data.py::test_bar_context_prefix_invariant`` checks it by truncating the future). ``delta`` is the signal kernel's own
(``strategy.compute_signals``): one definition of bar aggression.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = ["RV_BARS", "DELTA_Z_BARS", "BarContext", "bar_context", "bar_context_from_signals"]

RV_BARS = 12  # one hour of 5-minute bars
DELTA_Z_BARS = 20  # as the volume median window


@dataclass(frozen=True)
class BarContext:
    """A precomputed bar context (``rv12_ticks``, ``delta_z20`` per bar start) that ``MLDataProcessor`` takes as
    it is, where a plain bar frame is always recomputed. Trusted by construction, so made on purpose only: by
    :func:`bar_context` callers that already hold the result, or by tests without bars. No pandas operation
    produces one, so a shifted or edited frame cannot pass for it by accident."""

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        missing = [c for c in ("rv12_ticks", "delta_z20") if c not in self.frame.columns]
        if missing:
            raise ValueError(f"a bar context needs columns {missing}")


def bar_context(bars: pd.DataFrame, params, *, tick_size: float | None = None) -> pd.DataFrame:
    """``rv12_ticks`` and ``delta_z20`` per in-session bar (index: bar start, UTC), NaN in warm-up."""
    from strategy import compute_signals

    sig = compute_signals(bars, params, tick_size=tick_size)
    return bar_context_from_signals(bars, sig, tick_size=tick_size)


def bar_context_from_signals(bars: pd.DataFrame, signals: pd.DataFrame, *, tick_size: float | None = None) -> pd.DataFrame:
    """As :func:`bar_context`, from already computed signals (aligned to ``bars``)."""
    from strategy.signals import resolve_tick_size

    if not signals.index.equals(bars.index):
        raise ValueError("signals are not aligned with bars")
    tick = resolve_tick_size(bars, tick_size)
    ins = signals["in_session"].to_numpy(bool)
    sub = bars.loc[ins]
    close = sub["close"].to_numpy(np.float64) / tick
    delta = signals.loc[ins, "delta"].to_numpy(np.float64)
    if "contract" in sub.columns:
        con = sub["contract"].astype(str).to_numpy()
        seg = np.concatenate([[0], np.cumsum(con[1:] != con[:-1])]) if len(con) else np.zeros(0, int)
    else:
        seg = np.zeros(len(sub), int)
    frame = pd.DataFrame({"close": close, "delta": delta, "seg": seg})
    g = frame.groupby("seg", sort=False)
    step = g["close"].diff()
    rv = step.groupby(frame["seg"]).rolling(RV_BARS, min_periods=RV_BARS).std(ddof=1).reset_index(level=0, drop=True)
    prev = g["delta"].shift(1)
    roll = prev.groupby(frame["seg"]).rolling(DELTA_Z_BARS, min_periods=DELTA_Z_BARS)
    mean = roll.mean().reset_index(level=0, drop=True)
    std = prev.groupby(frame["seg"]).rolling(DELTA_Z_BARS, min_periods=DELTA_Z_BARS).std(ddof=1) \
        .reset_index(level=0, drop=True)
    z = (frame["delta"] - mean) / std
    # a flat window (std 0) has no scale: z is 0 when delta equals the mean, else undefined -> 0 (stated rule)
    z = z.where(~((std == 0) & mean.notna()), 0.0)
    out = pd.DataFrame({"rv12_ticks": rv.sort_index().to_numpy(), "delta_z20": z.to_numpy()}, index=sub.index)
    out.index.name = "time"
    return out
