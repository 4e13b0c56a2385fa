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

from live.venues.roll import ROLL_DAYS, business_days_before, front_contract
from strategy.market.instruments import MONTH_CODES, ContractCode

__all__ = ["DEFAULT_FORMAT", "ROLL_DAYS", "business_days_before", "dtc_symbol", "front_month"]

DEFAULT_FORMAT = "{root}{month}{yy}-{exchange}"
_CODE = {v: k for k, v in MONTH_CODES.items()}


def front_month(root: str, today: dt.date, roll_days: int = ROLL_DAYS) -> ContractCode:
    """The quarterly contract active on trading date ``today`` (`live.venues.roll.front_contract`)."""
    return front_contract(root, today, roll_days)


def dtc_symbol(root: str, exchange: str, today: dt.date, fmt: str | None = None, env: dict | None = None) -> str:
    """The Symbol to request for ``root`` (e.g. "ES") on ``today``: ``$NAVALE_DTC_SYMBOL``, else the template."""
    env = os.environ if env is None else env
    if env.get("NAVALE_DTC_SYMBOL"):
        return env["NAVALE_DTC_SYMBOL"]
    fmt = fmt or env.get("NAVALE_DTC_SYMBOL_FORMAT") or DEFAULT_FORMAT
    c = front_month(root, today)
    return fmt.format(root=c.root, month=_CODE[c.month], yy=f"{c.year % 100:02d}", y=c.year % 10, yyyy=c.year,
                      exchange=exchange)
