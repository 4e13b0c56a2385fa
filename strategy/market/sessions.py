"""CME equity-index session calendar, computed from bar timestamps (never the wall clock).

- The Globex week runs Sunday 17:00 CT to Friday close; each session opens at
  17:00 CT and belongs to the *next* calendar day's trading date, which is the
  session id (``session_id``), so code can reset per session and flatten at its end.
- RTH (cash session) is 09:30-16:00 America/New_York; DST is handled by the tz database.
- Historical hours changed; `HOURS_REGIMES` records them (found in the 2015-2022 ES data
  and matching CME notices): until 2018-08-31 Globex closed at 16:15 CT, then at 16:00 CT;
  until 2021-06-25 there was a 15:15-15:30 CT trading halt every day.

These are the regular hours only. Holidays and early closes are in `strategy.market.calendar`
(the flat time and the no-entry dates the trade rules use); the trading date of a shortened
session still comes out right from the 17:00 CT rule.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from .clock import EXCHANGE_TZ, GLOBEX_OPEN_CT_MIN, RTH_CLOSE_MIN, RTH_OPEN_MIN, RTH_TZ

__all__ = [
    "EXCHANGE_TZ",
    "RTH_TZ",
    "HoursRegime",
    "HOURS_REGIMES",
    "session_id",
    "session_frame",
    "session_mask",
    "in_scheduled_halt",
    "session_close",
    "Session",
]

Session = Literal["all", "rth", "globex"]

_OPEN = dt.time(GLOBEX_OPEN_CT_MIN // 60, GLOBEX_OPEN_CT_MIN % 60)  # Globex open, CT, previous calendar day
_RTH_OPEN = dt.time(RTH_OPEN_MIN // 60, RTH_OPEN_MIN % 60)  # ET
_RTH_CLOSE = dt.time(RTH_CLOSE_MIN // 60, RTH_CLOSE_MIN % 60)  # ET


@dataclass(frozen=True)
class HoursRegime:
    """Globex hours (CT) in force for trading dates from ``first_date`` on."""

    first_date: dt.date
    close: dt.time  # daily close, CT
    halt: tuple[dt.time, dt.time] | None  # intraday trading halt, CT


HOURS_REGIMES: tuple[HoursRegime, ...] = (
    HoursRegime(dt.date(1990, 1, 1), dt.time(16, 15), (dt.time(15, 15), dt.time(15, 30))),
    HoursRegime(dt.date(2018, 9, 4), dt.time(16, 0), (dt.time(15, 15), dt.time(15, 30))),
    HoursRegime(dt.date(2021, 6, 28), dt.time(16, 0), None),
)


def _utc_index(index: pd.DatetimeIndex) -> pd.DatetimeIndex:
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("session logic needs a tz-aware DatetimeIndex (bar start times)")
    return index


def session_id(index: pd.DatetimeIndex) -> np.ndarray:
    """Trading date of each bar as ``datetime64[D]``: bars at or after 17:00 CT belong to the next day."""
    ct = _utc_index(index).tz_convert(EXCHANGE_TZ)
    # wall-clock CT shifted by 7 h: 17:00 CT becomes 00:00 of the next day
    local = ct.tz_localize(None) + pd.Timedelta(hours=7)
    return local.values.astype("datetime64[D]")


def _minutes(t: dt.time) -> int:
    return t.hour * 60 + t.minute


def session_frame(index: pd.DatetimeIndex) -> pd.DataFrame:
    """Per-bar session columns: ``session_id`` (trading date), ``rth`` (bool), ``phase`` and ``in_halt``.

    Phases (ET, METHOD.md): asia (18:00-04:00), premarket (04:00-08:00), london (08:00-09:30),
    ny_open (09:30-12:00), lunch (12:00-14:00), afternoon (14:00-16:00), after_hours (16:00-18:00).
    """
    idx = _utc_index(index)
    et = idx.tz_convert(RTH_TZ)
    et_min = (et.hour * 60 + et.minute).to_numpy()
    rth = session_mask(idx, "rth")
    bounds = np.array([0, 4 * 60, 8 * 60, 9 * 60 + 30, 12 * 60, 14 * 60, 16 * 60, 18 * 60])
    names = np.array(["asia", "premarket", "london", "ny_open", "lunch", "afternoon", "after_hours", "asia"])
    phase = names[np.searchsorted(bounds, et_min, side="right") - 1]
    return pd.DataFrame(
        {
            "session_id": session_id(idx),
            "rth": rth,
            "phase": pd.Categorical(phase, categories=list(dict.fromkeys(names))),
            "in_halt": in_scheduled_halt(idx),
        },
        index=idx,
    )


def in_scheduled_halt(index: pd.DatetimeIndex) -> np.ndarray:
    """True where a bar starts while Globex is scheduled closed (daily halt, intraday halt, weekend)."""
    ct = _utc_index(index).tz_convert(EXCHANGE_TZ)
    m = (ct.hour * 60 + ct.minute).to_numpy()
    wd = ct.day_of_week.to_numpy()
    sid = session_id(index)
    out = np.zeros(len(index), dtype=bool)
    # weekend: Friday after close, Saturday, Sunday before 17:00
    out |= wd == 5
    out |= (wd == 6) & (m < _minutes(_OPEN))
    dates = sid.astype("datetime64[D]")
    for k, reg in enumerate(HOURS_REGIMES):
        start = np.datetime64(reg.first_date, "D")
        stop = np.datetime64(HOURS_REGIMES[k + 1].first_date, "D") if k + 1 < len(HOURS_REGIMES) else None
        sel = dates >= start
        if stop is not None:
            sel &= dates < stop
        close_gap = (m >= _minutes(reg.close)) & (m < _minutes(_OPEN))
        out |= sel & close_gap
        if reg.halt is not None:
            out |= sel & (m >= _minutes(reg.halt[0])) & (m < _minutes(reg.halt[1]))
    out |= (wd == 4) & (m >= _minutes(_OPEN))  # Friday evening: no Saturday session
    return out


def session_mask(index: pd.DatetimeIndex, session: Session) -> np.ndarray:
    """Boolean mask of bars in ``session``: ``all``, ``rth`` (09:30-16:00 ET) or ``globex`` (outside RTH)."""
    if session == "all":
        return np.ones(len(index), dtype=bool)
    et = _utc_index(index).tz_convert(RTH_TZ)
    et_min = (et.hour * 60 + et.minute).to_numpy()
    rth = (et_min >= _minutes(_RTH_OPEN)) & (et_min < _minutes(_RTH_CLOSE))
    if session == "rth":
        return rth
    if session == "globex":
        return ~rth
    raise ValueError(f"session must be 'all', 'rth' or 'globex', not {session!r}")


def session_close(index: pd.DatetimeIndex, session: Session = "all") -> pd.DatetimeIndex:
    """Scheduled end (UTC) of each bar's session: the Globex close of its trading date
    (16:15 or 16:00 CT by `HOURS_REGIMES`) or, for ``session="rth"``, 16:00 ET.

    Calendar knowledge, not data: it is known before the session starts. Regular hours
    only: holiday early closes are in `strategy.market.calendar` (``globex_close_minutes``,
    ``session_close_minutes``).
    """
    sid = session_id(index)
    days = pd.DatetimeIndex(sid.astype("datetime64[ns]"))
    if session == "rth":
        local = days + pd.Timedelta(hours=_RTH_CLOSE.hour, minutes=_RTH_CLOSE.minute)
        return local.tz_localize(RTH_TZ).tz_convert("UTC")
    firsts = np.array([np.datetime64(r.first_date, "D") for r in HOURS_REGIMES])
    k = np.searchsorted(firsts, sid.astype("datetime64[D]"), side="right") - 1
    close_min = np.array([_minutes(r.close) for r in HOURS_REGIMES])[k]
    local = days + pd.to_timedelta(close_min, unit="min")
    return local.tz_localize(EXCHANGE_TZ).tz_convert("UTC")
