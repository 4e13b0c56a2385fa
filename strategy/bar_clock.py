"""`BarClock`: one bar's time fields (trading date, close minute and weekday ET), computed exactly as
the vectorised path does (`strategy.market.sessions.session_id`, `strategy.signals.time_inputs`),
without pandas per bar: UTC-offset tables by hour, rebuilt about once a year of bars."""

from __future__ import annotations

import numpy as np
from numba import njit

from . import kernels as K
from .market.clock import CT
from .numba_cache import refresh_if_changed

__all__ = ["BarClock"]

_SPAN_NS = 400 * 86_400_000_000_000
_NS_HOUR = 3_600_000_000_000
_NS_DAY = 86_400_000_000_000
_SHIFT_NS = 7 * _NS_HOUR  # 17:00 CT becomes 00:00 of the next trading date


def _offset_table(tz: str, first_ns: int, last_ns: int) -> np.ndarray:
    import pandas as pd  # edge helper: builds a table the numba code reads

    h0 = first_ns // _NS_HOUR
    h1 = last_ns // _NS_HOUR
    hours = pd.DatetimeIndex((np.arange(h0, h1 + 1, dtype=np.int64) * _NS_HOUR).view("datetime64[ns]"), tz="UTC")
    off = hours.tz_convert(tz).tz_localize(None).as_unit("ns").asi8 - hours.as_unit("ns").asi8
    return np.concatenate([[h0], off]).astype(np.int64)


@njit(cache=True)
def _fields(ts, bar_ns, et, ct, out):
    k = ts // _NS_HOUR - ct[0] + 1
    out[0] = (ts + ct[k] + _SHIFT_NS) // _NS_DAY
    start = K.et_minute(ts, et)
    close = K.et_minute(ts + bar_ns, et)
    if close < start:
        close += 1440
    out[1] = close
    out[2] = K.et_weekday(ts + bar_ns, et)


class BarClock:
    """Trading date (days since the epoch), close minute ET and close weekday of a bar start time."""

    def __init__(self, bar_ns: int):
        self.bar_ns = int(bar_ns)
        self._lo = self._hi = 0
        self._et = self._ct = np.zeros(2, np.int64)
        self._out = np.zeros(3, np.int64)

    def fields(self, ts_ns: int) -> tuple[int, int, int]:
        """``(day, close_min, weekday)`` of the bar starting at `ts_ns` (UTC ns)."""
        if not self._lo <= ts_ns < self._hi:
            self._et = K.et_offset_table(ts_ns - _SPAN_NS, ts_ns + _SPAN_NS)
            self._ct = _offset_table(CT, ts_ns - _SPAN_NS, ts_ns + _SPAN_NS)
            self._lo, self._hi = ts_ns - _SPAN_NS // 2, ts_ns + _SPAN_NS // 2
        _fields(ts_ns, self.bar_ns, self._et, self._ct, self._out)
        return int(self._out[0]), int(self._out[1]), int(self._out[2])


refresh_if_changed(globals(), [K.__file__])
