"""Pacing a replay at N x real time by the records' own timestamps (clock and sleep injectable for tests)."""

from __future__ import annotations

import time
from collections.abc import Callable

__all__ = ["Pacer"]


class Pacer:
    """Says when a record of time ``ts_ns`` is due: ``speed=None`` at once, else ``speed`` x real time.

    A gap that would take more than ``max_wait_seconds`` of wall time (the daily halt, a weekend) is
    shortened to that. :meth:`ready` sleeps at most ``slice_seconds``, so a feed never blocks for long.
    """

    def __init__(self, speed: float | None, *, max_wait_seconds: float = 2.0, slice_seconds: float = 0.05,
                 clock: Callable[[], float] = time.monotonic, sleep: Callable[[float], None] = time.sleep) -> None:
        if speed is not None and not (isinstance(speed, (int, float)) and speed > 0):
            raise ValueError(f"speed must be a number > 0 (N x real time) or None (as fast as possible), got {speed!r}")
        if not max_wait_seconds > 0:
            raise ValueError(f"max_wait_seconds must be > 0, got {max_wait_seconds!r}")
        self.speed = None if speed is None else float(speed)
        self.max_wait = float(max_wait_seconds)
        self.slice = float(slice_seconds)
        self.clock = clock
        self.sleep = sleep
        self._ref: tuple[float, int] | None = None  # (wall time, record time) the schedule counts from

    def ready(self, ts_ns: int) -> bool:
        """True when the record is due (sleeping up to one slice first); False: ask again."""
        if self.speed is None:
            return True
        now = self.clock()
        if self._ref is None:
            self._ref = (now, ts_ns)
            return True
        due = self._ref[0] + (ts_ns - self._ref[1]) / 1e9 / self.speed
        if due - now > self.max_wait:
            self._ref = (now + self.max_wait, ts_ns)
            due = now + self.max_wait
        wait = due - now
        if wait <= 0:
            return True
        self.sleep(min(wait, self.slice))
        return self.clock() >= due
