"""Parameter sweeps of the Battle Navale method: a fused numba path (signals + trade simulation +
online metrics per combination, never a bars x combinations matrix), grouped by signal hash,
split per contract, run serially or on Dask, cached per task for resumption.

Main entry points: :class:`ParamGrid`, :func:`run_sweep` -> :class:`SweepResult`. See docs/sweeps.md.
"""

from .grid import DEFAULT_GRID_PATH, ParamGrid
from .result import SUMMARY_COLUMNS, SweepResult
from .runner import build_datasets, run_sweep

__all__ = ["ParamGrid", "run_sweep", "SweepResult", "SUMMARY_COLUMNS", "build_datasets", "DEFAULT_GRID_PATH"]
