"""A session through the fake TWS gives the tick-mode paper broker's fills and trades on the same trades: the real
Trader (bar builder, signals, trade rules) on the IB feed and broker against the Trader on the paper broker."""

from __future__ import annotations

from fake_tws import FakeTWS
from ib_helpers import MONTH, fast_backoff, settings_for
from ib_runs import UntilFeed, as_ticks, make_trader, reference_run, synthetic_rows
from paper_runs import mismatches

from live.venues.ib import open_venue


def _key(f):
    return (f.order_id.split(":", 1)[1], f.side, f.quantity, f.price, f.ts_ns, f.role)


def test_session_through_the_fake_tws_equals_the_tick_mode_paper_broker(tmp_path):
    rows = synthetic_rows(days=2)
    ticks = as_ticks(rows, MONTH)
    want, want_fills, holds = reference_run(ticks, tmp_path / "paper")
    assert len(want.trades) >= 2 and len(want_fills) >= 4
    server = FakeTWS(rows, stream_month=MONTH)
    server.start()
    try:
        server.hold_after(holds)
        venue = open_venue(settings_for(server), state_dir=tmp_path / "ib", want_feed=True, want_broker=True,
                           connect_timeout_s=10, backoff=fast_backoff())
        try:
            tr = make_trader(UntilFeed(venue.feed, len(rows)), venue.broker, tmp_path / "ib")
            try:
                got = tr.run()
            finally:
                tr.journal.close()
            got_fills = venue.broker.fills_since(0)
            stats = venue.stats()
        finally:
            venue.close()
    finally:
        server.stop()
    assert got.reason == "replay_end"
    assert [_key(f) for f in got_fills] == [_key(f) for f in want_fills]
    assert [f.slippage_ticks for f in got_fills if f.role == "stop"] == \
        [f.slippage_ticks for f in want_fills if f.role == "stop"]
    assert mismatches(got.trades, want.trades) == []
    # one placeOrder per order id: nothing sent twice
    assert max(server.place_count.values()) == 1
    assert stats["unclassified"] == sum(1 for t in ticks if t.side == 0)
