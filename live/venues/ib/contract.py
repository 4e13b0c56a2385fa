"""The IB side of the contract: the front month by the roll rule (`live.venues.roll`, shared with the DTC adapter)
and IB's local symbol of a CME equity future. `ContFuture` is never used."""

from __future__ import annotations

from live.venues.roll import QUARTERS, ROLL_DAYS, front_month, roll_date, trading_date
from strategy.market.instruments import ContractCode

__all__ = ["QUARTERS", "ROLL_DAYS", "front_month", "local_symbol", "roll_date", "trading_date"]


def local_symbol(symbol: str, yyyymm: str) -> str:
    """IB's local symbol of a CME equity future, e.g. ``ESH4`` for ES 202403."""
    code = ContractCode(symbol, int(yyyymm[4:]), int(yyyymm[:4]))
    return code.name[:-2] + code.name[-1]
