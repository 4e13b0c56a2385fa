"""The DTC link: logon refused (at start and on a reconnect), heartbeats both ways and the dead-link timeout, a
silent server, trading disabled, nothing listening; errors in one line."""

from __future__ import annotations

import socket

import pytest
from dtc_helpers import make_ticks, settings_for, take, venue, wait_for
from dtc_fixtures import fake_server  # noqa: F401 (pytest fixtures)

from live.brokers.base import BrokerError
from live.feeds.base import FeedError
from live.venues.dtc import open_venue
from live.venues.reconnect import LinkState


def test_logon_carries_version_credentials_heartbeat_and_name(fake_server, tmp_path):
    fake = fake_server(make_ticks(5))
    v = venue(fake, tmp_path, heartbeat_s=2)
    try:
        logon = next(m for m in fake.received if m["Type"] == 1)
        assert logon["ProtocolVersion"] == 8 and logon["Username"] == "trader" and logon["Password"] == "pw"
        assert logon["HeartbeatIntervalInSeconds"] == 2 and logon["ClientName"] == "navale"
        assert v.link.state is LinkState.READY
    finally:
        v.close()


@pytest.mark.parametrize("result,text", [(2, "Invalid username or password"), (3, "Account disabled")])
def test_logon_rejected_at_start_is_one_line(fake_server, tmp_path, result, text):
    fake = fake_server([])
    fake.logon_result, fake.logon_text = result, text
    with pytest.raises(BrokerError) as e:
        venue(fake, tmp_path)
    msg = str(e.value)
    assert text in msg and f"result {result}" in msg and "\n" not in msg and "pw" not in msg


def test_logon_rejected_for_a_feed_only_venue_is_a_feed_error(fake_server, tmp_path):
    fake = fake_server([])
    fake.logon_result, fake.logon_text = 2, "no market data permission"
    with pytest.raises(FeedError, match="no market data permission"):
        venue(fake, tmp_path, broker=False)


def test_nothing_listening_is_one_line_and_does_not_hang(tmp_path):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(BrokerError) as e:
        open_venue(settings_for(port), state_dir=tmp_path, want_feed=True, want_broker=True, connect_timeout_s=10)
    assert "cannot connect" in str(e.value) and "\n" not in str(e.value)


def test_trading_disabled_says_what_to_enable(fake_server, tmp_path):
    fake = fake_server([])
    fake.trading = False
    with pytest.raises(BrokerError, match="Allow Trading"):
        venue(fake, tmp_path)


def test_open_venue_entry_point(fake_server, tmp_path, monkeypatch):
    fake = fake_server(make_ticks(20))
    monkeypatch.setenv("NAVALE_DTC_SYMBOL", fake.symbol)
    v = open_venue(settings_for(fake.port), state_dir=tmp_path, want_feed=True, want_broker=True)
    try:
        assert v.link.ready and v.broker.ready and v.feed is not None
        assert len(take(v.feed, 20)) == 20
        st = v.stats()
        assert st["link"] == "ready" and st["symbol"] == fake.symbol and "password" not in str(st)
    finally:
        v.close()
    assert v.link.state is LinkState.CLOSED


def test_client_sends_heartbeats(fake_server, tmp_path):
    fake = fake_server([])
    v = venue(fake, tmp_path, heartbeat_s=1)
    try:
        wait_for(lambda: sum(m["Type"] == 3 for m in fake.received) >= 2, what="two client heartbeats")
    finally:
        v.close()


def test_heartbeat_timeout_is_a_dead_link_then_reconnects(fake_server, tmp_path):
    fake = fake_server(make_ticks(10))
    fake.stop_at = 5
    v = venue(fake, tmp_path, heartbeat_s=1)
    try:
        take(v.feed, 5)
        fake.heartbeats = False  # the stream is paused too: nothing arrives
        wait_for(lambda: v.link.outages or v.link.state is not LinkState.READY, what="dead link declared")
        assert any("no message or heartbeat" in r for _, _, r in v.link.history)
        fake.heartbeats = True
        wait_for(lambda: v.link.ready and v.link.reconnects >= 1, what="reconnected")
        fake.release()
        assert [t.ts_ns for t in take(v.feed, 5)] == [t.ts_ns for t in make_ticks(10)[5:]]
    finally:
        v.close()


def test_silent_server_then_back(fake_server, tmp_path):
    fake = fake_server([])
    v = venue(fake, tmp_path, heartbeat_s=1)
    try:
        fake.silent = True  # no heartbeat, no logon response: the socket stays open
        wait_for(lambda: not v.link.ready, what="link declared dead")
        fake.silent = False
        wait_for(lambda: v.link.ready, what="link back")
        assert v.link.reconnects >= 1
    finally:
        v.close()


def test_logon_refused_on_reconnect_retries_then_fatal_stops(fake_server, tmp_path):
    fake = fake_server([])
    v = venue(fake, tmp_path, heartbeat_s=1)
    try:
        fake.logon_result, fake.logon_text = 2, "server busy"
        n = fake.logons
        fake.drop()
        wait_for(lambda: sum(m["Type"] == 1 for m in fake.received) >= 3, what="logon retried")
        assert not v.link.ready and fake.logons == n
        fake.logon_result, fake.logon_text = 3, "password changed"
        wait_for(lambda: v.link.state is LinkState.FAILED, what="FAILED after a no-reconnect refusal")
        assert "password changed" in v.link.history[-1][2]
    finally:
        v.close()


@pytest.mark.parametrize("final", [False, True])
def test_server_logoff_reconnects_unless_told_not_to(fake_server, tmp_path, final):
    fake = fake_server([])
    v = venue(fake, tmp_path)
    try:
        fake.logoff(do_not_reconnect=final)
        if final:
            wait_for(lambda: v.link.state is LinkState.FAILED, what="FAILED after LOGOFF DoNotReconnect")
            assert "server shutting down" in v.link.history[-1][2]
        else:
            wait_for(lambda: v.link.reconnects == 1 and v.link.ready, what="reconnected after a LOGOFF")
    finally:
        v.close()
