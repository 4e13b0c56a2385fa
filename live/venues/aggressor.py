"""The quote rule: the aggressor side of a trade printed without one (IB's tick-by-tick AllLast).

A trade at or above the best ask was a buyer lifting the offer (+1, a Viking); at or below the best bid a
seller hitting the bid (-1, a Defender); strictly between the two, or with no valid two-sided quote yet, it
is unclassified (0) and counted apart, never guessed. The quote is the last one received before the trade
(Lee and Ready's quote test without their tick-test fallback: a tick test would invent a side).
"""

from __future__ import annotations

import math

__all__ = ["QuoteRule"]


class QuoteRule:
    """Keeps the last best bid/ask and classifies trades against it; counts buys, sells and unclassified."""

    __slots__ = ("bid", "ask", "buys", "sells", "unclassified", "no_quote")

    def __init__(self) -> None:
        self.bid = math.nan
        self.ask = math.nan
        self.buys = self.sells = self.unclassified = self.no_quote = 0

    def quote(self, bid: float, ask: float) -> None:
        """A best bid/ask update (a side <= 0 or NaN means that side is empty)."""
        self.bid = bid if bid > 0 else math.nan
        self.ask = ask if ask > 0 else math.nan

    def classify(self, price: float) -> int:
        """+1 at or above the ask, -1 at or below the bid, 0 otherwise (between, or no two-sided quote)."""
        bid, ask = self.bid, self.ask
        if not (bid == bid and ask == ask) or ask < bid:  # NaN side, or a crossed book: no usable quote
            self.no_quote += 1
            self.unclassified += 1
            return 0
        if price >= ask:
            self.buys += 1
            return 1
        if price <= bid:
            self.sells += 1
            return -1
        self.unclassified += 1
        return 0

    def counts(self) -> dict[str, int]:
        return {"buys": self.buys, "sells": self.sells, "unclassified": self.unclassified, "no_quote": self.no_quote}
