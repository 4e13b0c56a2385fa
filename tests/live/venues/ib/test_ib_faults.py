"""The scripted faults through the fake TWS: socket drops, fills while away, restarts, position mismatches, client
id in use, a silent feed, IB 1100/1101/1102, the nightly restart window; and the link's states through them."""

# the tws fixture is imported from ib_helpers, then named by each test
# ruff: noqa: F811

from __future__ import annotations

import datetime as dt
import math

import pytest
from ib_helpers import (
    MONTH,
    T0,
    fast_backoff,
    settings_for,
    ticks,
    tws,  # noqa: F401 (the fixture)
    wait_until,
)

from live.brokers.base import BrokerError
from live.events import Bracket, Order
from live.venues.ib import open_venue
from live.venues.ib.connection import in_restart_window
from live.venues.reconnect import LinkState as S

ENTRY = Order("R:E:100", "ES", 1, 1, "entry", bracket=Bracket(4, 8), decided_ns=0)


def _venue(server, tmp_path, name="ib", **kw):
    return open_venue(settings_for(server, kw.pop("client_id", 17)), state_dir=tmp_path / name, want_feed=True,
                      want_broker=True, connect_timeout_s=5, backoff=fast_backoff(), month=MONTH, **kw)


def _drain(feed, n, timeout=30.0):
    got = []
    wait_until(lambda: (got.extend(r for r in iter(feed.next_record, None)) or len(got) >= n), timeout,
               f"{n} ticks")
    return got


def _states(link):
    return [st for _, st, _ in link.history]


def _filled_entry(server, v, k=3):
    """Stream k ticks, send ENTRY, let the next trade fill it (the legs re-priced), pause again."""
    _drain(v.feed, k)
    v.broker.submit(ENTRY)
    server.pause_after(k)
    server.resume()
    wait_until(lambda: any(f.role == "entry" for f in v.broker.fills_since(0)), 10, "entry fill")


def test_socket_drop_mid_trade_reconnects_resubscribes_and_never_duplicates(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5] + [5000.75] * 6))
    tws.pause_after(2)
    v = _venue(tws, tmp_path)
    try:
        _filled_entry(tws, v)
        first_ids = set(v.stats()["request_ids"])
        tws.drop()
        wait_until(lambda: v.link.reconnects == 1 and v.link.ready, 20, "reconnect")
        assert _states(v.link)[-4:] == [S.LOST, S.CONNECTING, S.SYNCING, S.READY]
        new_ids = set(v.stats()["request_ids"])
        assert new_ids and not (new_ids & first_ids)  # new request ids
        assert {r for _, r, _ in tws.subscriptions[-2:]} == new_ids
        v.broker.submit(ENTRY)  # the trader re-sends the order of a re-processed bar
        tws.resume()
        try:
            got = _drain(v.feed, 5)  # ticks resume
        except AssertionError:
            raise AssertionError(f"server at {tws.index}, paused {tws.paused}, orders {tws.working_orders()}, "
                                 f"errors {tws.market_errors}, stats {v.stats()}, queued {v.feed._q}") from None
        assert got[-1].price == 5000.75
        assert tws.place_count["R:E:100"] == 1 and tws.place_count["R:E:100:stop"] == 1
        assert [k for k, _ in v.feed.events] == ["disconnected", "reconnected"]
        assert v.broker.positions() == {"ES": 1}
        assert {o.order_id for o in v.broker.open_orders()} == {"R:E:100:stop", "R:E:100:target"}
    finally:
        v.close()


def test_a_fill_during_the_outage_is_recovered_with_reqexecutions(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5, 5000.75, 5000.5, 4999.0, 4998.0]))
    tws.pause_after(2)
    v = _venue(tws, tmp_path)
    try:
        _filled_entry(tws, v)  # long at 5001.0 (5000.75 + 1 tick), stop 5000.0, target 5003.0
        assert v.broker.fills_since(0)[0].price == 5001.0
        tws.refuse_connections(1.0)
        tws.drop()
        wait_until(lambda: v.link.state is not S.READY, 10, "link lost")
        tws.advance(3)  # 5000.5, 4999.0 (through the stop: filled at 4998.75), 4998.0, with the client away
        assert tws.position() == 0
        wait_until(lambda: v.link.ready and v.link.reconnects == 1, 20, "reconnect")
        fills = v.broker.fills_since(0)
        assert [(f.role, f.price) for f in fills] == [("entry", 5001.0), ("stop", 4998.75)]
        assert [f.seq for f in fills] == [1, 2]
        assert fills[1].slippage_ticks == 5 and fills[1].extra["gap"] is True
        assert v.broker.positions() == {}
        assert v.broker.open_orders() == []  # the OCA target was cancelled with the stop's fill
        assert [k for k, _ in v.feed.events] == ["disconnected"]  # no trade since: the gap is still open
    finally:
        v.close()


def test_restart_with_an_open_bracket_reconciles_and_sends_nothing_new(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5, 5000.75, 5000.75]))
    tws.pause_after(2)
    v = _venue(tws, tmp_path)
    try:
        _filled_entry(tws, v)
        seq = v.broker.fills_since(0)[-1].seq
        used = max(o.order_id for o in tws.orders.values())
    finally:
        v.close()
    wait_until(lambda: tws.ready_clients() == 0, 10, "client gone")
    v2 = _venue(tws, tmp_path)
    try:
        assert v2.broker.positions() == {"ES": 1}
        assert {o.order_id for o in v2.broker.open_orders()} == {"R:E:100:stop", "R:E:100:target"}
        assert v2.broker.fills_since(seq) == [] and len(v2.broker.fills_since(0)) == 1  # the entry: once
        v2.broker.submit(ENTRY)
        assert tws.place_count["R:E:100"] == 1  # no new bracket
        v2.broker.submit(Order("R:X:200", "ES", -1, 1, "exit", reason="stop_time"))
        wait_until(lambda: "R:X:200" in tws.place_count, 10, "exit sent")
        assert min(o.order_id for o in tws.orders.values() if o.ref == "R:X:200") > used
    finally:
        v2.close()


def test_order_ids_stay_above_the_persisted_high_water_mark(tmp_path):
    from fake_tws import FakeTWS

    marks = []
    for _ in range(2):  # a fresh server each time: it says nextValidId 1 again
        server = FakeTWS(ticks([5000.0, 5000.25]), stream_month=MONTH)
        server.start()
        try:
            v = _venue(server, tmp_path)
            try:
                _drain(v.feed, 2)
                v.broker.submit(Order(f"R:E:{len(marks)}", "ES", 1, 1, "entry", bracket=Bracket(4, 8)))
                wait_until(lambda s=server: len(s.orders) == 3, 10, "bracket at the server")
                marks.append(sorted(server.orders))
            finally:
                v.close()
        finally:
            server.stop()
    assert min(marks[1]) > max(marks[0])


def test_a_position_the_book_does_not_know_stops_trading(tws, tmp_path):
    tws.positions[tws.stream.con_id] = [2.0, 250_000.0]  # held before this state dir traded anything
    with pytest.raises(BrokerError, match=r"IB holds \+2 ES .* fills add up to \+0: trading stopped"):
        _venue(tws, tmp_path)


def test_the_trader_reconcile_stops_on_a_position_its_state_does_not_have(tws, tmp_path):
    from ib_runs import ListFeed, make_trader

    from live.trader import ReconcileError

    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5, 5000.75, 5000.75]))
    tws.pause_after(2)
    v = _venue(tws, tmp_path)
    try:
        _filled_entry(tws, v)
        with pytest.raises(ReconcileError, match=r"broker holds \+1 ES, the trader's state expects \+0"):
            make_trader(ListFeed([]), v.broker, tmp_path / "fresh-trader")
    finally:
        v.close()


def test_client_id_in_use_takes_the_next_one_then_fails_clearly(tws, tmp_path):
    tws.refuse_client_ids({17})
    v = _venue(tws, tmp_path)
    try:
        assert v.stats()["client_id"] == 18 and v.link.ready
    finally:
        v.close()
    tws.refuse_client_ids({18, 19})
    with pytest.raises(BrokerError, match=r"client ids 17\.\.19 are all in use \(3 tried\)"):
        _venue(tws, tmp_path, "ib2")


def test_a_silent_feed_keeps_its_last_record_time(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5]))
    v = _venue(tws, tmp_path)
    try:
        _drain(v.feed, 3)
        last = v.feed.last_record_wall
        wait_until(lambda: v.broker.positions() == {} and tws.index == 3, 10, "stream done")
        for _ in range(20):  # connected and ready, no trade: the live loop's feed-halt switch reads this
            assert v.feed.next_record() is None
            assert v.feed.last_record_wall == last
            wait_until(lambda: True)
        assert v.feed.live is True and v.link.ready
    finally:
        v.close()


def test_1100_then_1101_resubscribes_and_1102_keeps_the_subscriptions(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25]))
    v = _venue(tws, tmp_path)
    try:
        _drain(v.feed, 2)
        ids0 = v.stats()["request_ids"]
        tws.send_error(1100)
        wait_until(lambda: v.link.state is S.LOST, 10, "1100 -> lost")
        stale = (T0 - 600) * 10**9  # its bar closed 10 minutes before the last trade: stale when the link is back
        v.broker.submit(Order("R:E:9", "ES", 1, 1, "entry", decided_ns=stale))  # held while LOST
        v.broker.submit(Order("R:E:10", "ES", 1, 1, "entry", decided_ns=T0 * 10**9))  # fresh: sent when READY
        assert [o.order_id for o in v.broker.open_orders()] == ["R:E:9", "R:E:10"]
        assert "R:E:9" not in tws.place_count and "R:E:10" not in tws.place_count
        tws.send_error(1101)
        wait_until(lambda: v.link.ready, 10, "1101 -> ready")
        ids1 = v.stats()["request_ids"]
        assert set(ids1).isdisjoint(ids0) and len(tws.subscriptions) == 4
        assert _states(v.link)[-4:] == [S.LOST, S.CONNECTING, S.SYNCING, S.READY]
        assert [d[0] for d in v.stats()["dropped"]] == ["R:E:9"]  # dropped and reported
        wait_until(lambda: "R:E:10" in tws.place_count, 10, "held entry sent")
        assert "R:E:9" not in tws.place_count
        tws.send_error(1102)
        wait_until(lambda: len(v.link.history) > 8 and v.link.ready, 10, "1102 -> ready")
        assert v.stats()["request_ids"] == ids1 and len(tws.subscriptions) == 4
        tws.load_ticks(ticks([5001.0], t0=1_709_562_700))
        assert _drain(v.feed, 1)[0].price == 5001.0
        assert [k for k, _ in v.feed.events] == ["disconnected", "reconnected"]
    finally:
        v.close()


def test_farm_notices_are_informational(tws, tmp_path):
    v = _venue(tws, tmp_path)
    try:
        for code in (2103, 2105, 2110):
            tws.send_error(code)
        wait_until(lambda: v.stats()["errors"].get(2110), 10, "notices")
        assert v.link.ready and v.stats()["farms_broken"] == ["usfarm", "ushmds"]
        tws.send_error(2104)
        wait_until(lambda: v.stats()["farms_broken"] == ["ushmds"], 10, "farm ok")
    finally:
        v.close()


def test_a_drop_in_the_nightly_restart_window_is_expected(tws, tmp_path):
    night = dt.datetime(2026, 12, 3, 23, 50, tzinfo=dt.timezone(dt.timedelta(hours=-5)))
    ns = int(night.timestamp() * 1e9)
    assert in_restart_window(ns, (dt.time(23, 40), dt.time(0, 20)))
    assert not in_restart_window(ns - 3600 * 10**9, (dt.time(23, 40), dt.time(0, 20)))
    v = _venue(tws, tmp_path, clock=lambda: ns)
    try:
        tws.drop()
        wait_until(lambda: v.link.ready and v.link.reconnects == 1, 20, "reconnect")
        assert "nightly Gateway restart window" in v.link.outages[0].reason
        assert math.isfinite(v.link.outages[0].seconds)
    finally:
        v.close()


def test_link_states_of_a_first_connect_and_of_a_refusal_for_good(tws, tmp_path):
    from ib_helpers import fast_backoff as fb

    from live.venues.ib.connection import ConnectError, IBConnection

    v = _venue(tws, tmp_path)
    try:
        assert _states(v.link) == [S.CONNECTING, S.SYNCING, S.READY]
    finally:
        v.close()
    assert v.link.state is S.CLOSED
    tws.refuse_client_ids({17, 18})
    conn = IBConnection(settings_for(tws), connect_timeout_s=5, client_id_tries=2, backoff=fb(), month=MONTH)
    with pytest.raises(ConnectError, match="in use"):
        conn.start()
    assert _states(conn.link) == [S.CONNECTING, S.FAILED, S.CLOSED]  # the next client id: still CONNECTING
    assert "client ids 17..18 are all in use" in [r for _, st, r in conn.link.history if st is S.FAILED][0]
