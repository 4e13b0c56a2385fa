"""The Battle Navale method: numba signal kernels and the incremental engine (no I/O).

- :class:`Params`: every parameter of ../shared/METHOD.md, mode presets, TOML, hash.
- :func:`compute_signals`: vectorized signals over a bar frame, every intermediate column.
- :class:`SignalEngine`: the same kernel, one closed bar at a time, snapshot/restore.
"""

from .engine import SignalEngine, SignalRow
from .params import MODES, Params, ParamsError
from .signals import COLUMNS, compute_signals

__all__ = ["Params", "ParamsError", "MODES", "compute_signals", "COLUMNS", "SignalEngine", "SignalRow"]
