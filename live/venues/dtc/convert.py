"""Value conversions between DTC messages and navale records (times, sides, prices)."""

from __future__ import annotations

import math

from live.venues.dtc.constants import AtBidOrAsk, BuySell

__all__ = ["aggressor", "buysell_of_side", "dtc_time_ns", "ns_to_dtc", "on_grid", "side_of_buysell"]


def dtc_time_ns(t: object) -> int:
    """A DTC date-time (UNIX seconds, with a fraction in the *WithMilliseconds* fields) as int ns, rounded to the
    microsecond (a double of ~1.7e9 s holds microseconds exactly enough; finer digits are float noise)."""
    if not isinstance(t, (int, float)) or isinstance(t, bool) or not math.isfinite(t) or t <= 0:
        return 0
    return round(float(t) * 1_000_000) * 1000


def ns_to_dtc(ts_ns: int) -> float:
    """int ns as DTC seconds with a fraction (what a *WithMilliseconds* field carries)."""
    return ts_ns / 1e9


def side_of_buysell(bs: object) -> int:
    """DTC BuySell as +1 / -1 (0 when unset or unknown)."""
    return 1 if bs == BuySell.BUY else -1 if bs == BuySell.SELL else 0


def buysell_of_side(side: int) -> int:
    return BuySell.BUY if side > 0 else BuySell.SELL


def aggressor(at_bid_or_ask: object) -> int:
    """The trade's aggressor from AtBidOrAsk: at the ask a buyer lifted the offer (+1), at the bid a seller hit it
    (-1); unset is 0."""
    if at_bid_or_ask == AtBidOrAsk.AT_ASK:
        return 1
    if at_bid_or_ask == AtBidOrAsk.AT_BID:
        return -1
    return 0


def on_grid(price: float, tick_size: float) -> float:
    """``price`` snapped to the tick grid (DTC prices are doubles; a float one may be 4999.7500001)."""
    return round(price / tick_size) * tick_size
