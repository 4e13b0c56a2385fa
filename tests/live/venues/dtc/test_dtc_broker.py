"""DTCBroker against the fake server: a drop mid-trade (scenario 2), a fill during the outage (3), a restart with an
open bracket (4), a position mismatch (5); idempotent submit, orders held while the link is down, stale entries,
long order ids, cancels, fill times and the running seq across restarts."""

from __future__ import annotations

import threading

import pytest
from dtc_helpers import path_ticks, take, venue, wait_for
from dtc_fixtures import fake_server  # noqa: F401 (pytest fixtures)

from live.brokers.base import BrokerError
from live.events import Bracket, Order
from live.venues.dtc.store import client_order_id

RUN = "20261203T095538-a1b2c3"
FLAT = [6000.0] * 20


BRACKET = Bracket(4, 8)


def entry(ts: int = 1, side: int = 1, bracket: Bracket | None = BRACKET) -> Order:
    return Order(order_id=f"{RUN}:E:{1796000400000000000 + ts}", symbol="ES", side=side, quantity=1,
                 purpose="entry", bracket=bracket)


def legs(v) -> list[str]:
    return sorted(o.order_id for o in v.broker.open_orders())


def open_trade(fake, v, o: Order, at: int) -> None:
    """Take trades up to ``at`` (stream paused there), submit ``o``, let one trade fill it and the OCO go out."""
    take(v.feed, at)
    wait_for(lambda: fake.paused, what=f"stream paused at {at}")
    v.broker.submit(o)
    wait_for(lambda: fake.orders_seen >= 1, what="entry at the server")
    fake.stop_at = at + 1
    fake.release_to(at + 1)
    wait_for(lambda: len(fake.working()) == 2, what="the OCO pair working at the server")


def test_drop_mid_trade_reconnects_resubscribes_and_sends_nothing_twice(fake_server, tmp_path):
    ticks = path_ticks(FLAT + [6000.0] * 20)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path)
    try:
        o = entry()
        open_trade(fake, v, o, 10)
        take(v.feed, 1)
        before = fake.orders_seen
        fake.drop()
        wait_for(lambda: not v.broker.ready, what="broker not ready")
        v.broker.submit(o)  # the trader re-sending its entry while down: a no-op
        wait_for(lambda: v.broker.ready and v.feed.symbol_id == 2, what="reconnected and resubscribed")
        v.broker.submit(o)
        fake.release()
        assert len(take(v.feed, 29)) == 29  # trades resume
        assert fake.orders_seen == before and fake.duplicates == 0
        assert legs(v) == [f"{o.order_id}:stop", f"{o.order_id}:target"]
        assert v.broker.positions() == {"ES": 1}
        assert [f.role for f in v.broker.fills_since(0)] == ["entry"]
    finally:
        v.close()


def test_fill_during_the_outage_is_recovered_once(fake_server, tmp_path):
    # entry fills at 6000.25 (1 tick slippage); the stop at 6000.25 - 4 ticks = 5999.25 is hit at trade 14
    ticks = path_ticks(FLAT[:11] + [6000.0, 5999.75, 5999.5, 5999.0] + [5999.0] * 10)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path)
    try:
        o = entry()
        open_trade(fake, v, o, 10)
        fake.drop()
        wait_for(lambda: not v.link.ready, what="link down")
        fake.advance_offline(4)  # trades 11..14: the stop fills while the client is away
        assert fake.position == 0
        wait_for(lambda: v.broker.ready, what="reconnected")
        fills = v.broker.fills_since(0)
        assert [(f.role, f.order_id, f.price, f.seq) for f in fills] == [
            ("entry", o.order_id, 6000.25, 1), ("stop", f"{o.order_id}:stop", 5998.75, 2)]
        assert fills[1].ts_ns == ticks[14].ts_ns
        assert v.broker.positions() == {} and legs(v) == []
        fake.drop()  # the same fills reported again at the next logon: counted once
        wait_for(lambda: v.link.reconnects >= 2 and v.broker.ready, what="second reconnect")
        assert len(v.broker.fills_since(0)) == 2
    finally:
        v.close()


def test_entry_filled_during_the_outage_gets_its_bracket_after_the_reconnect(fake_server, tmp_path):
    ticks = path_ticks(FLAT + FLAT)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path)
    try:
        take(v.feed, 10)
        wait_for(lambda: fake.paused, what="paused")
        o = entry(side=-1, bracket=Bracket(4, 8))
        v.broker.submit(o)
        wait_for(lambda: fake.orders_seen == 1, what="entry at the server")
        fake.drop()
        wait_for(lambda: not v.link.ready, what="link down")
        fake.advance_offline(1)  # the entry fills at 6000 - 0.25 while away
        wait_for(lambda: v.broker.ready and len(fake.working()) == 2, what="bracket placed after the reconnect")
        stop, target = sorted(fake.working(), key=lambda x: x.kind, reverse=True)
        assert (stop.kind, stop.price * 0.25, target.kind, target.price * 0.25) == (3, 6000.75, 2, 5997.75)
        assert v.broker.positions() == {"ES": -1}
    finally:
        v.close()


def test_restart_with_an_open_bracket_reconciles_without_a_second_one(fake_server, tmp_path):
    ticks = path_ticks(FLAT + [6000.0, 5999.0, 5999.0] + FLAT)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path)
    o = entry()
    open_trade(fake, v, o, 10)
    v.close()  # the trader process ends; the server keeps the working OCO pair
    wait_for(lambda: fake.connected() == 0, what="client gone")
    seen = fake.orders_seen
    v2 = venue(fake, tmp_path)
    try:
        assert v2.broker.positions() == {"ES": 1}
        assert legs(v2) == [f"{o.order_id}:stop", f"{o.order_id}:target"]
        v2.broker.submit(o)  # re-sent after the restart: known
        assert fake.orders_seen == seen and len(fake.working()) == 2
        assert [(f.seq, f.role) for f in v2.broker.fills_since(0)] == [(1, "entry")]
        fake.release()
        wait_for(lambda: len(v2.broker.fills_since(0)) == 2, what="stop fill after the restart")
        assert [(x.seq, x.role) for x in v2.broker.fills_since(1)] == [(2, "stop")]
    finally:
        v2.close()


def test_position_mismatch_after_a_reconnect_is_the_servers(fake_server, tmp_path):
    ticks = path_ticks(FLAT + FLAT)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path)
    try:
        take(v.feed, 10)
        fake.drop()
        wait_for(lambda: not v.link.ready, what="link down")
        fake.external_fill(-1, 2)  # someone sells 2 by hand in Sierra Chart while we are away
        wait_for(lambda: v.broker.ready, what="reconnected")
        assert v.broker.positions() == {"ES": -2}
        (f,) = v.broker.fills_since(0)
        # the trader's reconcile counts only fills of its run's ids: this one shows as the mismatch it is
        assert not f.order_id.startswith(RUN) and f.order_id.startswith("dtc:") and f.extra["external"]
    finally:
        v.close()


def test_orders_are_held_while_the_link_is_down_and_sent_when_ready(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        take(v.feed, 5)
        fake.logon_result = 2  # keep the link down for a while
        fake.drop()
        wait_for(lambda: not v.link.ready, what="link down")
        o = entry(bracket=None)
        v.broker.submit(o)
        assert fake.orders_seen == 0 and [x.order_id for x in v.broker.open_orders()] == [o.order_id]
        fake.logon_result = 1
        wait_for(lambda: fake.orders_seen == 1, what="held entry sent once READY")
        assert v.link.ready
    finally:
        v.close()


def test_a_stale_held_entry_expires_instead_of_going_out(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path, hold_s=0.0)
    try:
        take(v.feed, 5)
        fake.logon_result = 2
        fake.drop()
        wait_for(lambda: not v.link.ready, what="link down")
        o = entry()
        v.broker.submit(o)
        fake.logon_result = 1
        wait_for(lambda: v.broker.ready, what="ready")
        # the held queue is gone through once READY: the stale entry is expired there, never sent
        wait_for(lambda: v.broker.rejections, what="the stale entry expired")
        assert fake.orders_seen == 0 and v.broker.open_orders() == []
        assert v.broker.rejections[-1][0] == o.order_id and "not sent" in v.broker.rejections[-1][1]
    finally:
        v.close()


def test_long_order_ids_get_a_stable_short_client_order_id(fake_server, tmp_path):
    o = entry()
    cid = client_order_id(f"{o.order_id}:target")
    assert len(o.order_id) > 31 and len(cid) == 31 and cid == client_order_id(f"{o.order_id}:target")
    assert client_order_id("R:E:1") == "R:E:1"
    fake = fake_server(path_ticks(FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        open_trade(fake, v, o, 5)
        assert {x.client_id for x in fake.working()} == {client_order_id(f"{o.order_id}:stop"), cid}
        assert all(len(x.client_id) <= 31 for x in fake.orders.values())
    finally:
        v.close()


def test_cancel_a_bracket_by_a_legs_id_and_cancel_all(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = entry()
        open_trade(fake, v, o, 5)
        assert v.broker.cancel(f"{o.order_id}:target") is True
        wait_for(lambda: fake.working() == [], what="both legs cancelled at the server")  # a cancel is a request
        # the broker learns of the cancels from the server's order updates, which may still be in flight
        wait_for(lambda: legs(v) == [], what="no open legs at the broker")
        assert v.broker.cancel("nothing-such") is False
        v.broker.cancel_all()
        v.broker.flatten("test")
        fake.release()
        wait_for(lambda: fake.position == 0, what="flattened")
        wait_for(lambda: v.broker.positions() == {}, what="flat at the broker")
        wait_for(lambda: any(f.role == "flatten" for f in v.broker.fills_since(0)), what="the flatten's fill")
        f = v.broker.fills_since(0)[-1]
        assert f.role == "flatten" and f.extra == {"reason": "test"}
    finally:
        v.close()


def test_exit_cancels_the_bracket_first(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = entry()
        open_trade(fake, v, o, 5)
        x = Order(order_id=f"{RUN}:X:9", symbol="ES", side=-1, quantity=1, purpose="exit", reason="time")
        v.broker.submit(x)
        wait_for(lambda: [w.client_id for w in fake.working()] == [client_order_id(x.order_id)],
                 what="legs cancelled, then the exit sent")
        kinds = [m["Type"] for m in fake.received if m["Type"] in (201, 203, 208)]
        assert kinds == [208, 201, 203, 203, 208]  # entry, OCO, two cancels, exit
        fake.release()
        wait_for(lambda: v.broker.positions() == {}, what="exit filled")
        assert [f.role for f in v.broker.fills_since(0)] == ["entry", "exit"]
        assert fake.position == 0
    finally:
        v.close()


def test_bad_orders_are_refused_in_one_line(fake_server, tmp_path):
    fake = fake_server([])
    v = venue(fake, tmp_path)
    try:
        with pytest.raises(BrokerError, match="symbol 'NQ'"):
            v.broker.submit(Order(order_id="a", symbol="NQ", side=1, quantity=1, purpose="entry"))
        with pytest.raises(BrokerError, match="side"):
            v.broker.submit(Order(order_id="b", symbol="ES", side=2, quantity=1, purpose="entry"))
    finally:
        v.close()


def filled_with_an_unacknowledged_oco(fake, v) -> Order:
    """An entry filled; its OCO pair held at the server, their acknowledgements kept by the fake."""
    take(v.feed, 5)
    wait_for(lambda: fake.paused, what="paused")
    o = entry()
    v.broker.submit(o)
    wait_for(lambda: fake.orders_seen == 1, what="entry at the server")
    fake.hold_acks = True
    fake.release_to(6)
    wait_for(lambda: len(fake.working()) == 2, what="the OCO pair at the server")
    wait_for(lambda: v.broker.positions() == {"ES": 1}, what="the position at the broker")
    return o


def test_cancelling_a_bracket_whose_acknowledgement_is_on_the_way_cancels_both_legs(fake_server, tmp_path):
    """The server holds the OCO pair but its acceptance has not reached the broker: a cancel then waits for it
    and cancels both legs (before, it returned at once and left them working at the server)."""
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = filled_with_an_unacknowledged_oco(fake, v)
        late_acks = threading.Timer(0.3, fake.release_acks)
        late_acks.start()
        try:
            assert v.broker.cancel(f"{o.order_id}:target") is True  # returns once both cancels are confirmed
        finally:
            late_acks.join()
        assert fake.working() == [] and legs(v) == []
        kinds = [m["Type"] for m in fake.received if m["Type"] in (201, 203, 208)]
        assert kinds == [208, 201, 203, 203]  # entry, OCO, one cancel per leg
        assert v.broker.positions() == {"ES": 1}  # the position stays: cancelling a bracket does not close it
    finally:
        v.close()


def test_a_bracket_cancelled_before_its_acknowledgement_is_not_placed_again_after_a_reconnect(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = filled_with_an_unacknowledged_oco(fake, v)
        fake.call(lambda: [fake.orders.pop(k) for k, x in list(fake.orders.items()) if x.partner])  # never taken
        fake.drop_acks()  # and never acknowledged
        v.broker.timeout_s = 1.0
        with pytest.raises(BrokerError, match=r"no cancel confirmation for .*:stop, .*:target within 1 s"):
            v.broker.cancel(o.order_id)
        seen = fake.orders_seen
        fake.drop()
        wait_for(lambda: v.link.reconnects >= 1 and v.broker.ready, what="reconnected")
        fake.release()
        take(v.feed, 5)
        assert fake.orders_seen == seen  # the cancelled bracket did not go out again
        assert legs(v) == [] and fake.working() == []
        assert v.broker.positions() == {"ES": 1}
    finally:
        v.close()


def test_a_timed_out_cancel_can_be_retried_and_each_leg_is_cancelled_once(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = filled_with_an_unacknowledged_oco(fake, v)
        v.broker.timeout_s = 0.5
        for _ in range(2):  # the retry meets the first call's pending legs: the same error, naming them
            with pytest.raises(BrokerError, match=r"no cancel confirmation for .*:stop, .*:target within 0.5 s"):
                v.broker.cancel(o.order_id)
        fake.release_acks()  # the late acknowledgements still cancel the legs
        wait_for(lambda: fake.working() == [], what="both legs cancelled at the server")
        wait_for(lambda: legs(v) == [], what="no open legs at the broker")
        assert [m["Type"] for m in fake.received if m["Type"] in (201, 203, 208)] == [208, 201, 203, 203]
        v.broker.cancel_all()  # nothing left: returns at once
    finally:
        v.close()


def test_a_restart_cancels_the_legs_of_a_bracket_cancelled_before_the_server_confirmed(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = filled_with_an_unacknowledged_oco(fake, v)
        v.broker.timeout_s = 0.5
        with pytest.raises(BrokerError, match="no cancel confirmation"):
            v.broker.cancel(o.order_id)
    finally:
        v.close()  # the trader stops; its pending cancels go with it
    fake.drop_acks()
    assert len(fake.working()) == 2  # the server still holds both legs
    v = venue(fake, tmp_path)  # restarted on the same state
    try:
        wait_for(lambda: v.broker.ready, what="ready after the restart")
        wait_for(lambda: fake.working() == [], what="the legs cancelled by the restarted broker")
        # the broker learns of the cancels from the server's order updates, which may still be in flight
        wait_for(lambda: legs(v) == [], what="no open legs at the broker")
        assert v.broker.positions() == {"ES": 1}
    finally:
        v.close()


def test_a_cancel_while_an_exit_waits_for_the_legs_sends_one_cancel_per_leg(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = filled_with_an_unacknowledged_oco(fake, v)
        x = Order(order_id=f"{RUN}:X:9", symbol="ES", side=-1, quantity=1, purpose="exit", reason="time")
        v.broker.submit(x)  # held behind the legs, which cannot be cancelled before their acknowledgement
        late_acks = threading.Timer(0.3, fake.release_acks)
        late_acks.start()
        try:
            assert v.broker.cancel(o.order_id) is True
        finally:
            late_acks.join()
        wait_for(lambda: [w.client_id for w in fake.working()] == [client_order_id(x.order_id)],
                 what="the exit sent once the legs are cancelled")
        assert [m["Type"] for m in fake.received if m["Type"] in (201, 203, 208)] == [208, 201, 203, 203, 208]
    finally:
        v.close()


def test_exit_sent_before_the_ocos_acknowledgement_waits_for_it(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        take(v.feed, 5)
        wait_for(lambda: fake.paused, what="paused")
        o = entry()
        v.broker.submit(o)
        wait_for(lambda: fake.orders_seen == 1, what="entry at the server")
        fake.hold_acks = True  # the OCO's acceptance will be late
        fake.release_to(6)
        wait_for(lambda: fake.orders_seen == 2, what="OCO at the server")
        x = Order(order_id=f"{RUN}:X:9", symbol="ES", side=-1, quantity=1, purpose="exit", reason="time")
        v.broker.submit(x)
        assert fake.orders_seen == 2  # held: the legs are not acknowledged, so not cancellable yet
        fake.release_acks()
        wait_for(lambda: [w.client_id for w in fake.working()] == [client_order_id(x.order_id)],
                 what="legs cancelled once acknowledged, then the exit sent")
    finally:
        v.close()


def test_order_whose_ack_was_lost_is_matched_to_its_fill_or_reported_never_resent(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        take(v.feed, 5)
        wait_for(lambda: fake.paused, what="paused")
        fake.hold_acks = True
        o = entry(bracket=None)
        v.broker.submit(o)
        wait_for(lambda: fake.orders_seen == 1, what="entry at the server")
        fake.drop()  # the acknowledgement never reaches us
        fake.drop_acks()
        wait_for(lambda: not v.link.ready, what="down")
        fake.advance_offline(1)  # it fills while we are away
        wait_for(lambda: v.broker.ready, what="back")
        assert [(f.order_id, f.role) for f in v.broker.fills_since(0)] == [(o.order_id, "entry")]
        assert fake.orders_seen == 1 and v.broker.positions() == {"ES": 1}
        # a second order lost the same way, but never reaching the server: reported, not sent again
        fake.stop_at = fake.i
        x = Order(order_id=f"{RUN}:X:7", symbol="ES", side=-1, quantity=1, purpose="exit", reason="time")
        fake.hold_acks = True
        v.broker.submit(x)
        wait_for(lambda: fake.orders_seen == 2, what="exit at the server")
        fake.call(lambda: fake.orders.clear())  # as if the server never took it
        fake.drop()
        fake.drop_acks()
        wait_for(lambda: v.link.reconnects >= 2 and v.broker.ready, what="back again")
        assert fake.orders_seen == 2
        assert v.broker.rejections[-1][0] == x.order_id and "not sent again" in v.broker.rejections[-1][1]
    finally:
        v.close()


def test_flatten_while_the_link_is_down_is_held_and_cancels_the_bracket_first(fake_server, tmp_path):
    fake = fake_server(path_ticks(FLAT + FLAT))
    fake.stop_at = 5
    v = venue(fake, tmp_path)
    try:
        o = entry()
        open_trade(fake, v, o, 5)
        fake.logon_result = 2
        fake.drop()
        wait_for(lambda: not v.link.ready, what="down")
        v.broker.flatten("emergency_stop")  # no error, nothing sent yet
        assert fake.orders_seen == 2
        fake.logon_result = 1
        wait_for(lambda: v.broker.ready, what="back")
        def flatten_alone() -> bool:  # one read of the server's working orders (they change between two reads)
            working = fake.working()
            return len(working) == 1 and working[0].kind == 1

        wait_for(flatten_alone, what="legs cancelled, flatten sent")
        fake.release()
        wait_for(lambda: v.broker.positions() == {}, what="flat")
        wait_for(lambda: any(f.role == "flatten" for f in v.broker.fills_since(0)), what="the flatten's fill")
        f = v.broker.fills_since(0)[-1]
        assert f.role == "flatten" and f.extra == {"reason": "emergency_stop"} and fake.position == 0
    finally:
        v.close()
