"""The quote rule on planted sequences: at or above the ask a buyer, at or below the bid a seller, between or
without a two-sided quote unclassified (counted apart, never guessed)."""

from __future__ import annotations

import math

from live.venues.aggressor import QuoteRule


def test_planted_sequence():
    q = QuoteRule()
    got = [q.classify(5000.0)]  # no quote yet
    q.quote(5000.00, 5000.25)
    got += [q.classify(p) for p in (5000.25, 5000.50, 5000.00, 4999.75)]
    q.quote(5000.00, 5000.50)  # a one-tick hole: a trade inside it is unclassified
    got.append(q.classify(5000.25))
    q.quote(0.0, 5000.50)  # the bid side emptied
    got.append(q.classify(5000.50))
    q.quote(5001.00, 5000.75)  # a crossed book is no quote
    got.append(q.classify(5001.0))
    assert got == [0, 1, 1, -1, -1, 0, 0, 0]
    assert q.counts() == {"buys": 2, "sells": 2, "unclassified": 4, "no_quote": 3}


def test_nan_quote_sides_are_empty():
    q = QuoteRule()
    q.quote(math.nan, 5000.25)
    assert q.classify(5000.25) == 0 and q.no_quote == 1
