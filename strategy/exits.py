"""Why a trade ended (METHOD.md 7.7): the one list of exit reasons.

The position of a reason in :data:`EXIT_REASONS` is its integer code in the numba trade rules
(``R_*``); the trade snapshot stores the name.
"""

from __future__ import annotations

__all__ = ["EXIT_REASONS", "R_STOP", "R_TARGET", "R_GOLDEN", "R_OPPOSITE", "R_TIME", "R_SESSION", "R_FLATTEN"]

# "flatten": closed outside the rules (the emergency stop, a kill switch): live trading only
EXIT_REASONS: tuple[str, ...] = ("stop", "target", "golden_rule", "opposite", "time", "session_end", "flatten")
R_STOP, R_TARGET, R_GOLDEN, R_OPPOSITE, R_TIME, R_SESSION, R_FLATTEN = range(len(EXIT_REASONS))
