"""The IB feed through the fake TWS: AllLast trades get their side from the BidAsk quote before them (the quote
rule), planted sequence by sequence; Ticks carry the second, the contract's local symbol and the quote."""

# the tws fixture is imported from ib_helpers, then named by each test
# ruff: noqa: F811

from __future__ import annotations

import math

from ib_helpers import (
    MONTH,
    T0,
    fast_backoff,
    settings_for,
    tws,  # noqa: F401 (the fixture)
    wait_until,
)

from live.venues.ib import open_venue
from live.venues.ib.contract import local_symbol

NAN = math.nan


def _feed_only(server, tmp_path):
    return open_venue(settings_for(server), state_dir=tmp_path, want_feed=True, want_broker=False,
                      connect_timeout_s=5, backoff=fast_backoff(), month=MONTH)


def _read(feed, n):
    got = []
    wait_until(lambda: (got.extend(iter(feed.next_record, None)) or len(got) >= n), 20, f"{n} ticks")
    return got


def test_the_quote_rule_on_planted_sequences(tws, tmp_path):
    s = 1_000_000_000
    rows = [
        (T0 * s, 5000.0, 1, NAN, NAN),  # no quote yet: unclassified (no_quote)
        ((T0 + 1) * s, 5000.25, 2, 5000.0, 5000.25),  # at the ask: +1
        ((T0 + 1) * s, 5000.5, 1, NAN, NAN),  # above the same ask: +1
        ((T0 + 2) * s, 5000.0, 3, NAN, NAN),  # at the bid: -1
        ((T0 + 3) * s, 4999.75, 1, NAN, NAN),  # below the bid: -1
        ((T0 + 4) * s, 5000.25, 1, 5000.0, 5000.5),  # a wider quote, the trade between: 0
        ((T0 + 5) * s, 5000.5, 4, 5000.25, 5000.5),  # the quote moved up: +1
        ((T0 + 6) * s, 5000.25, 1, NAN, NAN),  # at the new bid: -1
    ]
    tws.load_ticks(rows)
    v = _feed_only(tws, tmp_path)
    try:
        got = _read(v.feed, len(rows))
        assert [t.side for t in got] == [0, 1, 1, -1, -1, 0, 1, -1]
        assert [t.ts_ns for t in got] == [r[0] for r in rows]
        assert [t.size for t in got] == [1, 2, 1, 3, 1, 1, 4, 1]
        assert {t.contract for t in got} == {local_symbol("ES", MONTH)}
        assert math.isnan(got[0].bid) and (got[5].bid, got[5].ask) == (5000.0, 5000.5)
        assert v.feed.rule.counts() == {"buys": 3, "sells": 3, "unclassified": 2, "no_quote": 1}
        st = v.stats()
        assert st["unclassified"] == 2 and st["trades"]["trades"] == 8 and v.broker is None
        assert v.feed.live is True and v.feed.last_record_wall is not None
    finally:
        v.close()


def test_next_record_never_blocks_and_the_token_is_the_last_trade(tws, tmp_path):
    v = _feed_only(tws, tmp_path)
    try:
        assert v.feed.next_record() is None and v.feed.last_record_wall is None
        tws.load_ticks([(T0 * 1_000_000_000, 5000.0, 1, 5000.0, 5000.25)])
        (t,) = _read(v.feed, 1)
        assert v.feed.resume_token() == {"last_ts_ns": t.ts_ns} and not v.feed.exhausted()
    finally:
        v.close()
