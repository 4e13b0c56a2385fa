"""The IB broker against the fake TWS: one OCA bracket (market parent, stop and limit children, transmit on the last
only), legs re-priced from the fill, idempotent submit, cancel / cancel_all (reqGlobalCancel) / flatten, positions,
open orders, fill roles and a seq that survives a restart without counting an execution twice; and doctor."""

# the tws fixture is imported from ib_helpers, then named by each test
# ruff: noqa: F811

from __future__ import annotations

import pytest
from fake_tws import FakeTWS
from ib_helpers import (
    MONTH,
    fast_backoff,
    settings_for,
    ticks,
    tws,  # noqa: F401 (the fixture)
    wait_until,
)

from live.brokers.base import BrokerError
from live.events import Bracket, Order
from live.venues.ib import doctor, open_venue


def _venue(server, tmp_path):
    return open_venue(settings_for(server), state_dir=tmp_path / "ib", want_feed=True, want_broker=True,
                      connect_timeout_s=5, backoff=fast_backoff(), month=MONTH)


def _read(feed, n):
    got = []
    wait_until(lambda: (got.extend(iter(feed.next_record, None)) or len(got) >= n), 20, f"{n} ticks")
    return got


def test_an_entry_is_one_oca_bracket_repriced_from_its_fill(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5, 5001.0, 5001.0]))
    tws.pause_after(2)
    v = _venue(tws, tmp_path)
    try:
        _read(v.feed, 3)
        v.broker.submit(Order("R:E:1", "ES", -1, 1, "entry", bracket=Bracket(4, 8)))
        v.broker.submit(Order("R:E:1", "ES", -1, 1, "entry", bracket=Bracket(4, 8)))  # again: nothing sent
        wait_until(lambda: len(tws.orders) == 3, 10, "bracket at the server")
        parent, stop, target = sorted(tws.orders.values(), key=lambda o: o.order_id)
        assert (parent.otype, parent.action, parent.transmit_sent, parent.parent_id) == ("MKT", "SELL", False, 0)
        assert (stop.otype, stop.action, stop.aux, stop.transmit_sent) == ("STP", "BUY", 5001.5, False)
        assert (target.otype, target.lmt, target.transmit_sent) == ("LMT", 4998.5, True)  # from the last trade
        assert stop.parent_id == target.parent_id == parent.order_id and stop.oca == target.oca != ""
        assert dict(tws.place_count) == {"R:E:1": 1, "R:E:1:stop": 1, "R:E:1:target": 1}
        tws.resume()
        wait_until(lambda: v.broker.fills_since(0), 10, "entry fill")
        (f,) = v.broker.fills_since(0)
        assert (f.role, f.side, f.price, f.seq, f.order_id) == ("entry", -1, 5000.75, 1, "R:E:1")  # 5001 - 1 tick
        wait_until(lambda: stop.aux == 5001.75 and target.lmt == 4998.75, 10, "legs re-priced")
        assert v.broker.positions() == {"ES": -1}
        wait_until(lambda: v.broker.fills_since(0)[0].extra.get("commission") == 2.25, 10, "commission")
        # the exit joins the OCA group: its fill cancels both legs
        v.broker.submit(Order("R:X:2", "ES", 1, 1, "exit", reason="stop_time"))
        tws.load_ticks(ticks([5001.0], t0=1_709_562_700))
        wait_until(lambda: len(v.broker.fills_since(0)) == 2, 10, "exit fill")
        x = v.broker.fills_since(1)[0]
        assert (x.role, x.price, x.extra["reason"]) == ("exit", 5001.25, "stop_time")
        wait_until(lambda: not tws.working_orders(), 10, "legs cancelled")
        assert v.broker.positions() == {} and v.broker.open_orders() == []
    finally:
        v.close()


def test_cancel_cancel_all_and_flatten(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5]))
    tws.pause_after(2)
    v = _venue(tws, tmp_path)
    try:
        _read(v.feed, 3)
        b = v.broker
        b.submit(Order("R:E:1", "ES", 1, 1, "entry", bracket=Bracket(4, 8)))
        wait_until(lambda: len(tws.working_orders()) == 3, 10, "bracket working")
        assert b.cancel("R:E:1:target") is True  # a leg's id: the bracket and its entry
        wait_until(lambda: not tws.working_orders() and not b.open_orders(), 10, "cancelled")
        assert b.cancel("R:E:1") is False and b.cancel("nothing") is False
        b.submit(Order("R:E:2", "ES", 1, 1, "entry", bracket=Bracket(4, 8)))
        wait_until(lambda: len(tws.working_orders()) == 3, 10, "bracket working")
        b.cancel_all()
        wait_until(lambda: not tws.working_orders(), 10, "global cancel")
        assert (tws.connections and any(m == 58 for _, m in tws.received))
        b.submit(Order("R:E:3", "ES", 1, 2, "entry", bracket=Bracket(4, 8)))
        tws.load_ticks(ticks([5000.5, 5000.75, 5000.75], t0=1_709_562_700))
        tws.pause_after(3)
        tws.resume()
        wait_until(lambda: b.positions() == {"ES": 2}, 10, "long 2")
        tws.hold_after({4})  # the flatten's market order fills on the trade after it (tick 5)
        tws.resume()
        b.flatten("emergency_stop")
        fl = [f for f in b.fills_since(0) if f.role == "flatten"]
        assert len(fl) == 1 and fl[0].side == -1 and fl[0].quantity == 2 and fl[0].order_id.startswith("flatten:")
        assert b.positions() == {} and not tws.working_orders()
        with pytest.raises(BrokerError, match="quantity must be a positive integer"):
            b.submit(Order("R:E:4", "ES", 1, 0, "entry"))
        with pytest.raises(BrokerError, match="trades 'ES'"):
            b.submit(Order("R:E:5", "NQ", 1, 1, "entry"))
    finally:
        v.close()


def test_fill_seq_survives_a_restart_and_an_execution_counts_once(tws, tmp_path):
    tws.load_ticks(ticks([5000.0, 5000.25, 5000.5, 5000.5]))
    tws.pause_after(1)
    v = _venue(tws, tmp_path)
    try:
        _read(v.feed, 2)
        v.broker.submit(Order("R:E:1", "ES", 1, 1, "entry"))
        tws.resume()
        wait_until(lambda: len(v.broker.fills_since(0)) == 1, 10, "fill")
        v.broker.submit(Order("R:X:1", "ES", -1, 1, "exit"))
        tws.load_ticks(ticks([5000.25], t0=1_709_562_700))
        wait_until(lambda: len(v.broker.fills_since(0)) == 2, 10, "exit fill")
    finally:
        v.close()
    v2 = _venue(tws, tmp_path)  # the executions come again (connect + reqExecutions): known execIds
    try:
        fills = v2.broker.fills_since(0)
        assert [(f.seq, f.role) for f in fills] == [(1, "entry"), (2, "exit")]
        assert v2.broker.fills_since(1)[0].order_id == "R:X:1"
        assert v2.broker.poll_fills() == []  # a new broker object delivers only new fills
    finally:
        v2.close()


def test_doctor_in_plain_words(tmp_path):
    server = FakeTWS(ticks([5000.0]), stream_month=MONTH)
    server.start()
    try:
        checks = {c.name: c for c in doctor(settings_for(server), month=MONTH)}
        assert all(c.ok for c in checks.values()), checks
        assert "paper" in checks["accounts"].detail and "178" in checks["server version"].detail
        assert "qualifies as ES" in checks["contract"].detail
    finally:
        server.stop()
    server = FakeTWS(stream_month=MONTH, entitled=False, buying_power=0.0)
    server.start()
    try:
        checks = {c.name: c for c in doctor(settings_for(server), month=MONTH)}
        assert not checks["market data"].ok
        assert "no market data subscription for ES (CME real-time): subscribe in Client Portal" in \
            checks["market data"].detail
        assert not checks["trading"].ok and "buying power 0" in checks["trading"].detail
        port = server.port
    finally:
        server.stop()
    (c,) = doctor(settings_for(type("S", (), {"port": port})()), timeout_s=2)
    assert c.name == "connect" and not c.ok and "cannot connect" in c.detail
