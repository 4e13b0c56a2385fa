"""Futures backtests of the Battle Navale signals: numba simulator, vectorbt analytics, trade snapshots.

Main entry point: :func:`run` -> :class:`BacktestResult`.
"""

from .run import BacktestResult, run
from .simulator import REASONS
from .stats import compute_stats, daily_equity

__all__ = ["run", "BacktestResult", "REASONS", "compute_stats", "daily_equity"]
