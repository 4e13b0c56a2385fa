"""Which ES/MES future to trade: the quarterly contract the continuous series' roll rule makes active.

`research.data.continuous` with ``roll="days:N"`` switches to the next quarterly contract on the trading date
that is N business days (Mon-Fri, ``numpy.busday_offset(expiry, -N, roll="backward")``) before the active
contract's expiry, the 3rd Friday of its month. `front_month` applies that rule to one moment (the trading date of
``now_ns``: the date rolls at 17:00 CT), in plain Python so the import stays light. The default N is 6: the
Thursday eight calendar days before expiry, the CME's roll date, when the volume moves to the next contract
(``research.data.continuous``'s volume rule needs both contracts' volume, which a live session does not have
before it trades).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from strategy.market.instruments import ContractCode

__all__ = ["QUARTERS", "ROLL_DAYS", "front_month", "local_symbol", "roll_date", "trading_date"]

QUARTERS = (3, 6, 9, 12)
ROLL_DAYS = 6
_CT = ZoneInfo("America/Chicago")


def trading_date(now_ns: int) -> dt.date:
    """The CME trading date of the moment ``now_ns`` (UTC ns): at or after 17:00 CT it is the next day's."""
    ct = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC).astimezone(_CT)
    return (ct.replace(tzinfo=None) + dt.timedelta(hours=7)).date()


def _busday_back(day: dt.date, n: int) -> dt.date:
    """``numpy.busday_offset(day, -n, roll="backward")`` with the Mon-Fri week and no holidays."""
    while day.weekday() >= 5:  # roll backward onto a business day
        day -= dt.timedelta(days=1)
    while n > 0:
        day -= dt.timedelta(days=1)
        if day.weekday() < 5:
            n -= 1
    return day


def roll_date(symbol: str, year: int, month: int, roll_days: int = ROLL_DAYS) -> dt.date:
    """The first trading date on which the contract after ``symbol`` ``year``/``month`` is the active one."""
    return _busday_back(ContractCode(symbol, month, year).expiry, roll_days)


def front_month(symbol: str, now_ns: int, roll_days: int = ROLL_DAYS) -> str:
    """``"YYYYMM"`` of the quarterly ``symbol`` future to trade at ``now_ns`` (UTC ns) under the days rule."""
    d = trading_date(now_ns)
    year, month = d.year, next((m for m in QUARTERS if m >= d.month), 3)
    if month < d.month:
        year += 1
    while d >= roll_date(symbol, year, month, roll_days):
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return f"{year}{month:02d}"


def local_symbol(symbol: str, yyyymm: str) -> str:
    """IB's local symbol of a CME equity future, e.g. ``ESH4`` for ES 202403."""
    code = ContractCode(symbol, int(yyyymm[4:]), int(yyyymm[:4]))
    return code.name[:-2] + code.name[-1]
