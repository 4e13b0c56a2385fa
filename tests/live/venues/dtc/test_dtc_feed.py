"""DTCFeed against the fake server: the aggressor from AtBidOrAsk (each trade message form), a drop with
resubscription under a new SymbolID and no duplicate or invented trade, and a silent feed."""

from __future__ import annotations

import time

import pytest
from dtc_helpers import make_ticks, take, venue, wait_for
from fake_dtc import TRADE, TRADE_COMPACT, TRADE_UNBUNDLED
from dtc_fixtures import fake_server  # noqa: F401 (pytest fixtures)

from live.feeds.base import FeedError
from live.venues.dtc.convert import aggressor


def test_aggressor_from_at_bid_or_ask():
    assert aggressor(2) == 1  # at the ask: a buyer lifted the offer
    assert aggressor(1) == -1  # at the bid: a seller hit it
    assert aggressor(0) == 0 and aggressor(None) == 0


@pytest.mark.parametrize("kind", [TRADE, TRADE_UNBUNDLED, TRADE_COMPACT])
def test_ticks_carry_the_servers_side(fake_server, tmp_path, kind):
    ticks = make_ticks(50, seed=3)
    fake = fake_server(ticks, trade_type=kind)
    v = venue(fake, tmp_path, broker=False)
    try:
        got = take(v.feed, 50)
        assert [t.side for t in got] == [t.side for t in ticks]
        assert [(t.price, t.size) for t in got] == [(t.price, t.size) for t in ticks]
        if kind == TRADE_COMPACT:  # 4-byte whole seconds
            assert [t.ts_ns for t in got] == [t.ts_ns // 10**9 * 10**9 for t in ticks]
        else:
            assert [t.ts_ns for t in got] == [t.ts_ns for t in ticks]
        assert all(t.contract == "ESZ26" for t in got)
        assert got[-1].bid == ticks[-1].bid and got[-1].ask == ticks[-1].ask
        assert v.feed.unsided == 0
    finally:
        v.close()


def test_a_trade_without_a_side_falls_back_to_the_quote_rule(fake_server, tmp_path):
    ticks = make_ticks(10)
    for t in ticks:
        t.side = 0
    fake = fake_server(ticks)
    v = venue(fake, tmp_path, broker=False)
    try:
        got = take(v.feed, 10)
        # the fake quotes bid/ask so that the trade is at the ask or at the bid
        assert all(s in (1, -1) for s in (t.side for t in got))
        assert v.feed.unsided == 10
    finally:
        v.close()


@pytest.mark.parametrize("resend", [0, 5])
def test_drop_resubscribes_and_neither_duplicates_nor_invents(fake_server, tmp_path, resend):
    ticks = make_ticks(80)
    fake = fake_server(ticks)
    fake.stop_at, fake.resend = 30, resend
    v = venue(fake, tmp_path, broker=False)
    try:
        first = take(v.feed, 30)
        wait_for(lambda: fake.paused, what="stream paused")
        seen_wall = v.feed.last_record_wall
        fake.drop()
        wait_for(lambda: any(k == "disconnected" for k, _ in v.feed.events), what="disconnected event")
        wait_for(lambda: v.link.ready and v.feed.symbol_id == 2, what="reconnected and resubscribed")
        fake.release()
        rest = take(v.feed, 50)
        got = first + rest
        assert [t.ts_ns for t in got] == [t.ts_ns for t in ticks], "a trade lost, duplicated or invented"
        assert v.feed.duplicates == resend
        kinds = [k for k, _ in v.feed.events]
        # the re-sent trades skipped are said, never silent
        assert sorted(kinds) == sorted(["disconnected", "reconnected"] + ["resent_skipped"] * bool(resend)), \
            v.feed.events
        if resend:
            assert f"{resend} trade(s)" in dict(v.feed.events)["resent_skipped"]
        assert v.feed.last_record_wall > seen_wall
        assert fake.subscriptions == [1, 2]
        assert v.link.reconnects == 1 and len(v.link.outages) == 1
    finally:
        v.close()


def test_trades_missed_during_an_outage_are_not_invented(fake_server, tmp_path):
    ticks = make_ticks(60)
    fake = fake_server(ticks)
    fake.stop_at = 20
    v = venue(fake, tmp_path, broker=False)
    try:
        take(v.feed, 20)
        wait_for(lambda: fake.paused, what="stream paused")
        fake.drop()
        wait_for(lambda: not v.link.ready, what="link down")
        fake.advance_offline(10)  # trades 20..29 happen while no client is connected
        wait_for(lambda: v.link.ready, what="link back")
        fake.release()
        rest = take(v.feed, 30)
        assert [t.ts_ns for t in rest] == [t.ts_ns for t in ticks[30:]]
        time.sleep(0.2)
        assert v.feed.next_record() is None
    finally:
        v.close()


def test_silent_feed_last_record_wall_stops_moving(fake_server, tmp_path):
    ticks = make_ticks(30)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path, broker=False, heartbeat_s=30)
    try:
        take(v.feed, 10)
        wait_for(lambda: fake.paused, what="stream paused")
        w = v.feed.last_record_wall
        time.sleep(0.5)
        assert v.feed.last_record_wall == w and v.feed.next_record() is None
        assert v.feed.live is True
        fake.release()
        take(v.feed, 20)
        assert v.feed.last_record_wall > w
    finally:
        v.close()


def test_unknown_symbol_is_rejected_with_the_servers_text(fake_server, tmp_path):
    fake = fake_server(make_ticks(5))
    v = venue(fake, tmp_path, broker=False, dtc_sym="ESZ26-XYZ")
    try:
        wait_for(lambda: v.feed.reject_text, what="market data reject")
        assert "not found" in v.feed.reject_text
        assert v.feed.events[-1][0] == "rejected"
    finally:
        v.close()


def test_depth_snapshot_and_update(fake_server, tmp_path):
    fake = fake_server([])
    v = venue(fake, tmp_path, broker=False, depth_levels=5)
    try:
        wait_for(lambda: v.feed.symbol_id == 1, what="subscribed")
        sid = v.feed.symbol_id
        fake.inject(b"".join(
            (__import__("json").dumps(m).encode() + b"\x00") for m in [
                {"Type": 122, "SymbolID": sid, "Side": 1, "Price": 5999.75, "Quantity": 10, "IsFirstMessageInBatch": 1},
                {"Type": 122, "SymbolID": sid, "Side": 2, "Price": 6000.0, "Quantity": 12, "IsLastMessageInBatch": 1},
                {"Type": 106, "SymbolID": sid, "Side": 1, "Price": 5999.5, "Quantity": 4, "UpdateType": 1},
                {"Type": 106, "SymbolID": sid, "Side": 2, "Price": 6000.0, "Quantity": 0, "UpdateType": 2}]))
        wait_for(lambda: len(v.feed.bids) == 2 and not v.feed.asks, what="depth book")
        assert v.feed.depth() == ([(5999.75, 10.0), (5999.5, 4.0)], [])
        assert any(m.get("Type") == 102 and m.get("NumLevels") == 5 for m in fake.received)
    finally:
        v.close()


def test_resume_token_of_a_restarted_trader_drops_what_the_server_resends(fake_server, tmp_path):
    ticks = make_ticks(40)
    fake = fake_server(ticks)
    fake.stop_at = 20
    v = venue(fake, tmp_path, broker=False)
    try:
        take(v.feed, 20)
        tok = v.feed.resume_token()
        assert tok["ts_ns"] == ticks[19].ts_ns
    finally:
        v.close()
    fake.resend = 8  # the new connection's subscription re-sends the last 8 trades
    v2 = venue(fake, tmp_path, broker=False, feed_resume=tok)
    try:
        fake.release()
        assert [t.ts_ns for t in take(v2.feed, 20)] == [t.ts_ns for t in ticks[20:]]
        assert v2.feed.duplicates == 8
    finally:
        v2.close()
    with pytest.raises(FeedError, match="not a DTC feed"):
        v2.feed.resume_from(17)
