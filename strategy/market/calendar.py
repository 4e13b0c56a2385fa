"""The CME equity-index holiday and early-close calendar: session ends known before the session.

Two library calendars of ``pandas_market_calendars`` (imported on first use, never at import):

- ``"CME Globex Equity"``: the Globex session of each trading date: exchange holidays (no
  session), early closes at 12:15 CT (day after Thanksgiving, Christmas Eve, July 3 before
  Independence Day), the holiday trading dates whose Globex session halts at 12:00 CT (MLK,
  Presidents, Memorial, Juneteenth, Independence, Labor, Thanksgiving) and Good Friday sessions
  that end at 08:15 CT;
- ``"NYSE"``: whether the cash market trades that day, i.e. whether the date has a regular
  trading hours (RTH) session at all.

Regular Globex hours follow :data:`strategy.market.sessions.HOURS_REGIMES` (16:15 CT close and the
15:15-15:30 CT halt in the early years); :data:`CLOSE_OVERRIDES` adds the national days of mourning
on which CME equity trading halted at 08:30 CT (the library has them for the NYSE only).

Days are trading dates as int64 days since the epoch (``session_id(index)`` as ``datetime64[D]``):
a session opens 17:00 CT the evening before its date. Minutes are minutes after midnight ET.
Dates outside :data:`COVERAGE` raise ``ValueError``.
"""

from __future__ import annotations

import bisect
import datetime as dt
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pandas as pd

from .clock import EXCHANGE_TZ, GLOBEX_OPEN_CT_MIN, RTH_CLOSE_MIN, RTH_OPEN_MIN, RTH_TZ
from .sessions import HOURS_REGIMES, session_id

__all__ = [
    "COVERAGE",
    "CLOSE_OVERRIDES",
    "CME_CALENDAR",
    "CASH_CALENDAR",
    "session_close_minutes",
    "globex_close_minutes",
    "trading_day_ok",
    "flat_minutes",
    "calendar_inputs",
    "day_keys",
    "SessionCalendar",
]

CME_CALENDAR = "CME Globex Equity"  # pandas_market_calendars name of the ES session calendar
CASH_CALENDAR = "NYSE"  # the cash market: a date it does not trade has no RTH session

# Trading dates the calendar answers for: from the first full year of today's ES hours and
# holiday rules in the library to a horizon past which rule-projected holidays are not trusted.
COVERAGE = (dt.date(2013, 1, 1), dt.date(2030, 12, 31))

# Globex close (CT) on dates the library does not know as shortened for CME equity products.
CLOSE_OVERRIDES: dict[dt.date, dt.time] = {
    dt.date(2018, 12, 5): dt.time(8, 30),  # national day of mourning, President G. H. W. Bush
    dt.date(2025, 1, 9): dt.time(8, 30),  # national day of mourning, President Carter
}

NS_PER_MIN = 60 * 1_000_000_000
_EPOCH = np.datetime64(0, "D")


@dataclass(frozen=True)
class _Table:
    """Per-date arrays over COVERAGE, indexed by ``day - first`` (day = int days since the epoch)."""

    first: int
    open_ns: np.ndarray  # Globex open, UTC ns; -1 when the date has no session
    close_ns: np.ndarray  # Globex close, UTC ns; -1 when no session
    halt_start_ns: np.ndarray  # intraday halt, UTC ns; -1 when none
    halt_end_ns: np.ndarray
    globex_close_min: np.ndarray  # float64 minutes ET of the Globex close; NaN when no session
    rth_close_min: np.ndarray  # float64 minutes ET of the RTH end; NaN when no RTH session
    ok: np.ndarray  # bool: the date has a regular cash session (entries allowed)
    weekend_start_ns: np.ndarray  # sorted: each Friday's regular Globex close, UTC ns
    weekend_end_ns: np.ndarray  # the Sunday 17:00 CT after it

    @property
    def last(self) -> int:
        return self.first + len(self.ok) - 1


def _day(d: dt.date) -> int:
    return int((np.datetime64(d, "D") - _EPOCH).astype(np.int64))


def _date_str(day: int) -> str:
    return str(_EPOCH + np.timedelta64(int(day), "D"))


def _coverage_error(day: int) -> ValueError:
    return ValueError(f"trading date {_date_str(day)} is outside the session calendar's coverage "
                      f"{COVERAGE[0]}..{COVERAGE[1]} ({CME_CALENDAR!r}, pandas_market_calendars)")


def _minutes(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def _regime(day: dt.date):
    k = bisect.bisect_right([r.first_date for r in HOURS_REGIMES], day) - 1
    return HOURS_REGIMES[k]


def _local_ns(dates: pd.DatetimeIndex, minutes: np.ndarray, tz: str) -> np.ndarray:
    """UTC ns of wall-clock ``minutes`` after midnight of each date in ``tz``."""
    local = dates + pd.to_timedelta(minutes, unit="min")
    return local.tz_localize(tz).tz_convert("UTC").as_unit("ns").asi8


def _et_minutes(ns: np.ndarray, dates: pd.DatetimeIndex) -> np.ndarray:
    """Minutes after midnight ET of each date at UTC ``ns`` (may exceed 1440 or go negative)."""
    midnight = dates.tz_localize(RTH_TZ).as_unit("ns").asi8
    return (ns - midnight) / NS_PER_MIN


def _cash_holidays(cal, dates: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """The cash calendar's holidays within ``dates`` (its rules evaluated over that range only:
    ``valid_days`` would evaluate them over 1970-2200 first)."""
    regular = cal.regular_holidays.holidays(dates[0], dates[-1])
    adhoc = pd.DatetimeIndex(cal.adhoc_holidays).tz_localize(None).normalize()
    return regular.union(adhoc[(adhoc >= dates[0]) & (adhoc <= dates[-1])])


@lru_cache(maxsize=1)
def _table() -> _Table:
    import pandas_market_calendars as mcal

    start, end = COVERAGE
    dates = pd.date_range(start, end, freq="D")
    n = len(dates)
    cme = mcal.get_calendar(CME_CALENDAR).schedule(start.isoformat(), end.isoformat())
    cash_holidays = _cash_holidays(mcal.get_calendar(CASH_CALENDAR), dates)
    pos = dates.get_indexer(cme.index.normalize())
    if (pos < 0).any():
        raise ValueError(f"{CME_CALENDAR!r} schedule has dates outside {start}..{end}")
    has = np.zeros(n, bool)
    has[pos] = True
    lib_close = cme["market_close"].dt.tz_convert(EXCHANGE_TZ)
    lib_close_min = (lib_close.dt.hour * 60 + lib_close.dt.minute).to_numpy()

    close_ct = np.full(n, -1, np.int64)  # minutes after midnight CT of the date
    halt_a = np.full(n, -1, np.int64)
    halt_b = np.full(n, -1, np.int64)
    for i, lib_min in zip(pos, lib_close_min):
        day = dates[i].date()
        reg = _regime(day)
        regular = lib_min == 16 * 60
        close_ct[i] = _minutes(reg.close) if regular else lib_min
        if day in CLOSE_OVERRIDES:
            close_ct[i] = _minutes(CLOSE_OVERRIDES[day])
        if reg.halt is not None and close_ct[i] > _minutes(reg.halt[0]):
            halt_a[i], halt_b[i] = _minutes(reg.halt[0]), _minutes(reg.halt[1])

    open_ns = np.full(n, -1, np.int64)
    close_ns = np.full(n, -1, np.int64)
    hs = np.full(n, -1, np.int64)
    he = np.full(n, -1, np.int64)
    open_ns[has] = _local_ns(dates[has], np.full(has.sum(), GLOBEX_OPEN_CT_MIN - 24 * 60), EXCHANGE_TZ)
    close_ns[has] = _local_ns(dates[has], close_ct[has], EXCHANGE_TZ)
    hh = halt_a >= 0
    hs[hh] = _local_ns(dates[hh], halt_a[hh], EXCHANGE_TZ)
    he[hh] = _local_ns(dates[hh], halt_b[hh], EXCHANGE_TZ)

    globex_close = np.full(n, np.nan)
    globex_close[has] = _et_minutes(close_ns[has], dates[has])
    cash_open = (dates.day_of_week < 5) & ~dates.isin(cash_holidays)
    ok = has & cash_open & (globex_close > RTH_OPEN_MIN)  # and Globex trades into the cash session
    rth_close = np.where(ok, np.minimum(globex_close, float(RTH_CLOSE_MIN)), np.nan)

    fridays = dates[dates.day_of_week == 4]
    reg_close = np.array([_minutes(_regime(d.date()).close) for d in fridays])
    w_start = _local_ns(fridays, reg_close, EXCHANGE_TZ)
    w_end = _local_ns(fridays + pd.Timedelta(days=2), np.full(len(fridays), GLOBEX_OPEN_CT_MIN), EXCHANGE_TZ)
    return _Table(_day(start), open_ns, close_ns, hs, he, globex_close, rth_close, ok, w_start, w_end)


def _rows(days: np.ndarray) -> np.ndarray:
    """Table rows of ``days`` (int days since the epoch); ValueError on a date outside COVERAGE."""
    t = _table()
    d = np.asarray(days)
    if d.dtype.kind == "M":
        d = d.astype("datetime64[D]").astype(np.int64)
    d = d.astype(np.int64, copy=False)
    bad = (d < t.first) | (d > t.last)
    if bad.any():
        raise _coverage_error(int(d[np.argmax(bad)]))
    return d - t.first


def day_keys(index: pd.DatetimeIndex) -> np.ndarray:
    """Trading date of each bar (bar start times, tz-aware) as int64 days since the epoch."""
    return session_id(index).astype("datetime64[D]").astype(np.int64)


def session_close_minutes(days: np.ndarray) -> np.ndarray:
    """Scheduled end of the RTH session of each trading date, float64 minutes after midnight ET:
    960 (16:00) on a regular day, 795 (13:15, the 12:15 CT Globex close) on an early close;
    NaN on a date with no RTH session (exchange holiday, holiday trading date, Good Friday)."""
    return _table().rth_close_min[_rows(days)]


def globex_close_minutes(days: np.ndarray) -> np.ndarray:
    """Scheduled Globex close of each trading date, float64 minutes after midnight ET (1020 or,
    before 2018-09-04, 1035 on a regular day; 780 on a holiday trading date); NaN when closed."""
    return _table().globex_close_min[_rows(days)]


def trading_day_ok(days: np.ndarray) -> np.ndarray:
    """False on dates with no regular cash session: exchange holidays, the holiday trading dates
    whose Globex session halts at 12:00 CT, Good Friday, days of mourning. No entry on them."""
    return _table().ok[_rows(days)]


def _flat(close: np.ndarray, flat_at_min: float, regular_close_min: float) -> np.ndarray:
    lead = regular_close_min - flat_at_min
    out = np.minimum(close - lead, flat_at_min)
    early = close < regular_close_min
    out[early] = np.minimum(out[early], close[early])  # never after the market closes
    out[np.isnan(close)] = 0.0
    return out


def flat_minutes(days: np.ndarray, flat_at_min: float, regular_close_min: float = 960.0) -> np.ndarray:
    """Flat time of each trading date, float64 minutes after midnight ET: ``flat_at_min`` on a
    regular day; on a shortened day the same lead before its close as ``flat_at_min`` has before
    ``regular_close_min`` (15:55 -> 13:10 on a 13:15 early close), never later than ``flat_at_min``.

    The close is the RTH end or, on a date without RTH, the Globex close (12:55 on a holiday
    trading date with the default lead); a date with no session at all gets 0.0 (flat at once:
    only bad data puts a bar there)."""
    t = _table()
    r = _rows(days)
    close = np.where(t.ok[r], t.rth_close_min[r], t.globex_close_min[r])
    return _flat(close, float(flat_at_min), float(regular_close_min))


@lru_cache(maxsize=8)
def _flat_table(flat_at_min: float, regular_close_min: float) -> np.ndarray:
    t = _table()
    close = np.where(t.ok, t.rth_close_min, t.globex_close_min)
    out = _flat(close, flat_at_min, regular_close_min)
    out.setflags(write=False)
    return out


def calendar_inputs(index: pd.DatetimeIndex, flat_at_min: float,
                    regular_close_min: float = 960.0) -> tuple[np.ndarray, np.ndarray]:
    """Per bar (bar start times, tz-aware): ``(flat minute of its trading date, trading_day_ok of
    its date)``, float64 and bool arrays, looked up in per-date tables built once per ``flat_at``."""
    r = _rows(day_keys(index))
    return _flat_table(float(flat_at_min), float(regular_close_min))[r], _table().ok[r]


class SessionCalendar:
    """The calendar one bar or tick at a time, for the live loop; every answer reads the given
    timestamp (UTC ns), never the wall clock.

    ``day`` caches its answer per date (no allocation after a date's first call); the ``is_*``
    and ``next_open_ns`` look-ups bisect per-date tables built on first use.
    """

    def __init__(self, flat_at_min: float = 955.0, regular_close_min: float = 960.0) -> None:
        self.flat_at_min = float(flat_at_min)
        self.regular_close_min = float(regular_close_min)
        t = _table()
        self._t = t
        has = t.open_ns >= 0
        self._open = t.open_ns[has].tolist()  # sorted: one session per trading date
        self._close = t.close_ns[has].tolist()
        self._halt_a = t.halt_start_ns[has].tolist()
        self._halt_b = t.halt_end_ns[has].tolist()
        self._wk_start = t.weekend_start_ns.tolist()
        self._wk_end = t.weekend_end_ns.tolist()
        self._flat = _flat_table(self.flat_at_min, self.regular_close_min)
        self._days: dict[int, tuple[float, bool]] = {}

    def day(self, day_key: int) -> tuple[float, bool]:
        """``(flat minute ET, entries allowed)`` of a trading date (int days since the epoch)."""
        got = self._days.get(day_key)
        if got is None:
            r = day_key - self._t.first
            if r < 0 or r >= len(self._t.ok):
                raise _coverage_error(day_key)
            got = (float(self._flat[r]), bool(self._t.ok[r]))
            self._days[day_key] = got
        return got

    def _check(self, ts_ns: int) -> None:
        if ts_ns < self._open[0] or ts_ns >= self._close[-1]:
            raise ValueError(f"time {pd.Timestamp(ts_ns, tz='UTC')} is outside the session calendar's "
                             f"coverage {COVERAGE[0]}..{COVERAGE[1]}")

    def _session_at(self, ts_ns: int) -> int:
        """Position of the last session opened at or before ``ts_ns`` (-1 before the first)."""
        return bisect.bisect_right(self._open, ts_ns) - 1

    def is_open(self, ts_ns: int) -> bool:
        """Globex trading at ``ts_ns``: inside its date's session, outside its intraday halt."""
        self._check(ts_ns)
        k = self._session_at(ts_ns)
        if k < 0 or ts_ns >= self._close[k]:
            return False
        return not (self._halt_a[k] <= ts_ns < self._halt_b[k])

    def next_open_ns(self, ts_ns: int) -> int:
        """When trading resumes: ``ts_ns`` itself when open, the end of the halt inside one, else the
        next session's open (e.g. Sunday 17:00 CT after a weekend)."""
        self._check(ts_ns)
        k = self._session_at(ts_ns)
        if k >= 0 and ts_ns < self._close[k]:
            if self._halt_a[k] <= ts_ns < self._halt_b[k]:
                return self._halt_b[k]
            return ts_ns
        if k + 1 >= len(self._open):
            raise ValueError(f"no session after {pd.Timestamp(ts_ns, tz='UTC')} within the calendar's coverage "
                             f"{COVERAGE[0]}..{COVERAGE[1]}")
        return self._open[k + 1]

    def is_weekend(self, ts_ns: int) -> bool:
        """From a Friday's regular Globex close (16:00 CT; 16:15 before 2018-09-04) to Sunday 17:00 CT."""
        self._check(ts_ns)
        k = bisect.bisect_right(self._wk_start, ts_ns) - 1
        return k >= 0 and ts_ns < self._wk_end[k]

    def session_close_ns(self, day_key: int) -> int:
        """Scheduled Globex close of a trading date, UTC ns (-1 when the date has no session)."""
        r = day_key - self._t.first
        if r < 0 or r >= len(self._t.ok):
            raise _coverage_error(day_key)
        return int(self._t.close_ns[r])
