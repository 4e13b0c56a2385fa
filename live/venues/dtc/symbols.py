"""The DTC symbol of a product's front month, by the roll rule of `research.data.continuous` (``roll="days:N"``):
the active quarterly contract switches N business days before its expiry (the 3rd Friday).

Sierra Chart names CME futures ``ESZ26-CME`` (two-digit year, ``-CME`` suffix: the form of the repository's
``ESM24-CME.scid`` files), which its DTC server takes as the Symbol. The form is a template
(``$NAVALE_DTC_SYMBOL_FORMAT``, default ``{root}{month}{yy}-{exchange}``; ``{y}`` is the one-digit year of the
``ESZ6`` form other DTC servers use); ``$NAVALE_DTC_SYMBOL`` names the symbol outright.
"""

from __future__ import annotations

import datetime as dt
import os

from strategy.market.instruments import MONTH_CODES, ContractCode

__all__ = ["DEFAULT_FORMAT", "ROLL_DAYS", "business_days_before", "dtc_symbol", "front_month"]

DEFAULT_FORMAT = "{root}{month}{yy}-{exchange}"
ROLL_DAYS = 6  # CME equity-index roll: the Thursday 8 calendar (6 business) days before the 3rd-Friday expiry
_CODE = {v: k for k, v in MONTH_CODES.items()}


def business_days_before(d: dt.date, n: int) -> dt.date:
    """``n`` business days (Mon-Fri) before ``d`` (numpy's busday_offset(d, -n, roll="backward"))."""
    while d.weekday() >= 5:
        d -= dt.timedelta(days=1)
    while n > 0:
        d -= dt.timedelta(days=1)
        if d.weekday() < 5:
            n -= 1
    return d


def front_month(root: str, today: dt.date, roll_days: int = ROLL_DAYS) -> ContractCode:
    """The quarterly contract active on trading date ``today``: the first one whose roll date is after it."""
    y, m = today.year, today.month
    while True:
        if m % 3 == 0:
            c = ContractCode(root, m, y)
            if today < business_days_before(c.expiry, roll_days):
                return c
        m += 1
        if m > 12:
            y, m = y + 1, 1


def dtc_symbol(root: str, exchange: str, today: dt.date, fmt: str | None = None, env: dict | None = None) -> str:
    """The Symbol to request for ``root`` (e.g. "ES") on ``today``: ``$NAVALE_DTC_SYMBOL``, else the template."""
    env = os.environ if env is None else env
    if env.get("NAVALE_DTC_SYMBOL"):
        return env["NAVALE_DTC_SYMBOL"]
    fmt = fmt or env.get("NAVALE_DTC_SYMBOL_FORMAT") or DEFAULT_FORMAT
    c = front_month(root, today)
    return fmt.format(root=c.root, month=_CODE[c.month], yy=f"{c.year % 100:02d}", y=c.year % 10, yyyy=c.year,
                      exchange=exchange)
