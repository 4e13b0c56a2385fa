"""The bar fill model of METHOD.md 7.6-7.7, shared by the batch simulator, the trade engine and the
bar-mode paper broker. Prices are int64 ticks.

- Market orders fill at a reference price (the next open, or the deciding bar's close for the
  session-end and time-stop exits) moved `slip` ticks against the order.
- The OCO bracket on one bar: the stop (``L <= stop`` for a long) before the target
  (``H >= target``); when both are inside one bar the **stop wins** (pessimistic; the optimistic
  price is returned for the audit). A bar that opens through the stop (not the entry bar) fills at
  its open (gap) minus slippage; targets are limit orders filled at the target without slippage.
"""

from __future__ import annotations

from numba import njit

from .exits import R_STOP, R_TARGET

__all__ = ["market_fill_ticks", "bracket_on_bar", "NO_EXIT"]

NO_EXIT = -1


@njit(cache=True, inline="always")
def market_fill_ticks(ref_ticks: int, order_side: int, slip: int) -> int:
    """Fill price of a market order: `ref_ticks` moved `slip` ticks against the order (+1 buy, -1 sell)."""
    return ref_ticks + order_side * slip


@njit(cache=True, inline="always")
def bracket_on_bar(pos_side: int, stop_px: int, target_px: int, o: int, h: int, l: int, can_gap: bool, slip: int):
    """Does the bracket of a `pos_side` position fill on this bar?

    Returns ``(reason, price, ambiguous, gap, optimistic_price)``: reason is ``R_STOP``, ``R_TARGET``
    or ``NO_EXIT``; ``can_gap`` is False on the entry bar (the fill was at its open, inside the stop).
    """
    hit_stop = l <= stop_px if pos_side > 0 else h >= stop_px
    hit_target = h >= target_px if pos_side > 0 else l <= target_px
    if hit_stop:
        gap = ((o < stop_px) if pos_side > 0 else (o > stop_px)) and can_gap
        px = (o if gap else stop_px) - pos_side * slip
        opt = target_px if hit_target else (stop_px - pos_side * slip)
        return R_STOP, px, hit_target, gap, opt
    if hit_target:
        return R_TARGET, target_px, False, False, target_px
    return NO_EXIT, 0, False, False, 0
