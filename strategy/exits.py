"""Why a trade ended (METHOD.md 7.7): the one list of exit reasons.

The position of a reason in :data:`EXIT_REASONS` is its integer code in the numba trade rules
(``R_*``); the trade snapshot stores the name.
"""

from __future__ import annotations

__all__ = ["EXIT_REASONS", "R_STOP", "R_TARGET", "R_GOLDEN", "R_OPPOSITE", "R_TIME", "R_SESSION"]

EXIT_REASONS: tuple[str, ...] = ("stop", "target", "golden_rule", "opposite", "time", "session_end")
R_STOP, R_TARGET, R_GOLDEN, R_OPPOSITE, R_TIME, R_SESSION = range(len(EXIT_REASONS))
