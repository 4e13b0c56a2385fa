"""Which quarterly ES/MES future is the one to trade: the roll rule of the continuous series, for one moment.

`research.data.continuous` with ``roll="days:N"`` switches to the next quarterly contract on the trading date
N business days (Mon-Fri, ``numpy.busday_offset(expiry, -N, roll="backward")``) before the active contract's
expiry, the 3rd Friday of its month. This module applies that rule to one date, in plain Python so importing a
venue stays light. The default N is 6: the Thursday eight calendar days before expiry, the CME's roll date,
when the volume moves to the next contract (the continuous series' volume rule needs both contracts' volume,
which a live session does not have before it trades). Both venue adapters use it.
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from strategy.market.instruments import ContractCode

__all__ = ["QUARTERS", "ROLL_DAYS", "business_days_before", "front_contract", "front_month", "roll_date",
           "trading_date"]

QUARTERS = (3, 6, 9, 12)
ROLL_DAYS = 6
_CT = ZoneInfo("America/Chicago")


def trading_date(now_ns: int) -> dt.date:
    """The CME trading date of the moment ``now_ns`` (UTC ns): at or after 17:00 CT it is the next day's."""
    ct = dt.datetime.fromtimestamp(now_ns / 1e9, tz=dt.UTC).astimezone(_CT)
    return (ct.replace(tzinfo=None) + dt.timedelta(hours=7)).date()


def business_days_before(day: dt.date, n: int) -> dt.date:
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
    return business_days_before(ContractCode(symbol, month, year).expiry, roll_days)


def front_contract(symbol: str, day: dt.date, roll_days: int = ROLL_DAYS) -> ContractCode:
    """The quarterly ``symbol`` contract active on trading date ``day``."""
    year, month = day.year, next((m for m in QUARTERS if m >= day.month), 3)
    if month < day.month:
        year += 1
    while day >= roll_date(symbol, year, month, roll_days):
        year, month = (year + 1, 3) if month == 12 else (year, month + 3)
    return ContractCode(symbol, month, year)


def front_month(symbol: str, now_ns: int, roll_days: int = ROLL_DAYS) -> str:
    """``"YYYYMM"`` of the quarterly ``symbol`` future to trade at ``now_ns`` (UTC ns) under the days rule."""
    c = front_contract(symbol, trading_date(now_ns), roll_days)
    return f"{c.year}{c.month:02d}"
