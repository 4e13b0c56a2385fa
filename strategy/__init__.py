"""The Battle Navale method: numba signal kernels, the incremental engine and the market
vocabulary (no I/O beyond reading and writing a parameter file; nothing from research/ or live/).

- :class:`Params`: every parameter of the method, mode presets, TOML, hash.
- :func:`compute_signals`: vectorized signals over a bar frame, every intermediate column.
- :class:`SignalEngine`: the same kernel, one closed bar at a time, snapshot/restore.
- :mod:`strategy.modes`, :mod:`strategy.exits`, :mod:`strategy.market`: modes and presets, exit
  reasons, instruments, the session calendar and clocks.

The names above load on first use, so ``import strategy.modes`` (the command line's choices)
costs no numpy or numba.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["Params", "ParamsError", "MODES", "compute_signals", "COLUMNS", "SignalEngine", "SignalRow"]

_EXPORTS = {
    "Params": "strategy.params", "ParamsError": "strategy.params", "MODES": "strategy.modes",
    "compute_signals": "strategy.signals", "COLUMNS": "strategy.signals",
    "SignalEngine": "strategy.engine", "SignalRow": "strategy.engine",
}

if TYPE_CHECKING:
    from .engine import SignalEngine, SignalRow
    from .modes import MODES
    from .params import Params, ParamsError
    from .signals import COLUMNS, compute_signals


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'strategy' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
