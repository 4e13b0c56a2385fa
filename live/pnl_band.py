"""`PnlBand`: the daily P&L the backtest of the same configuration predicts, stored beside a session's journal.

The band is computed at `navale paper` start (research.cli: the live package never backtests) from the daily
net P&L of the backtest of the same parameters over its trading dates, a date with no trade counted as 0:
``mean_day``, ``sd_day`` and the 5 % / 95 % empirical quantiles ``q05_day`` / ``q95_day``. The equity curve's
band after n days is ``n·mean ± z·sd·√n`` (z = 1.645: 90 %), which assumes independent days. It says what the
backtest's period saw, not what the market will do: a session on another regime can leave it without anything
being wrong. It is written as ``STATE_DIR/expected_band.json`` (atomic), read by the P&L-band alert rule and the
dashboard.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

__all__ = ["PnlBand", "BAND_FILE", "band_from_daily", "write_band", "read_band", "band_path"]

BAND_FILE = "expected_band.json"


@dataclass(frozen=True)
class PnlBand:
    """Daily net P&L ($) of the backtest: mean, standard deviation, 5 % and 95 % quantiles, over ``days``."""

    mean_day: float
    sd_day: float
    q05_day: float
    q95_day: float
    days: int
    source: str

    def cum_band(self, n_days: float, z: float = 1.645) -> tuple[float, float]:
        """The cumulative P&L band after ``n_days``: ``n·mean ± z·sd·√n``."""
        n = max(0.0, float(n_days))
        w = z * self.sd_day * math.sqrt(n)
        return n * self.mean_day - w, n * self.mean_day + w

    def outside(self, pnl_day: float) -> bool:
        """True when one day's P&L is below q05 or above q95."""
        return pnl_day < self.q05_day or pnl_day > self.q95_day

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> PnlBand:
        d = json.loads(text)
        return cls(float(d["mean_day"]), float(d["sd_day"]), float(d["q05_day"]), float(d["q95_day"]),
                   int(d["days"]), str(d["source"]))


def band_from_daily(daily_pnl: list[float], source: str) -> PnlBand | None:
    """The band of daily P&Ls (zero-trade days included); None for fewer than 5 days."""
    x = sorted(float(v) for v in daily_pnl if math.isfinite(float(v)))
    if len(x) < 5:
        return None
    n = len(x)
    mean = sum(x) / n
    sd = math.sqrt(sum((v - mean) ** 2 for v in x) / (n - 1))

    def q(p: float) -> float:  # linear interpolation between order statistics (numpy's default)
        h = (n - 1) * p
        lo = math.floor(h)
        return x[lo] + (h - lo) * (x[min(lo + 1, n - 1)] - x[lo])

    return PnlBand(mean, sd, q(0.05), q(0.95), n, source)


def band_path(state_dir: str | Path) -> Path:
    return Path(state_dir) / BAND_FILE


def write_band(state_dir: str | Path, band: PnlBand) -> Path:
    """Write ``band`` atomically to ``STATE_DIR/expected_band.json``."""
    from research.store.files import atomic_write_text

    return atomic_write_text(band_path(state_dir), band.to_json())


def read_band(journal_or_dir: Any) -> PnlBand | None:
    """The band beside a journal (a `Journal`, its path, or the state dir); None when none is stored or it
    cannot be read."""
    p = getattr(journal_or_dir, "path", journal_or_dir)
    p = Path(p)
    path = band_path(p if p.is_dir() else p.parent)
    try:
        return PnlBand.from_json(path.read_text())
    except (OSError, ValueError, KeyError, TypeError):
        return None
