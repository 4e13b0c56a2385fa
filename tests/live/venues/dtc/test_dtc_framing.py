"""DTC JSON framing: NUL-terminated messages split across reads, coalesced in one, and garbage between them; both
on the decoder and through a real socket from the fake server."""

from __future__ import annotations

import json

import pytest
from dtc_helpers import make_ticks, take, venue, wait_for
from dtc_fixtures import fake_server  # noqa: F401 (pytest fixtures)

from live.venues.dtc.framing import BadFrame, FrameDecoder, encode


def msgs(n: int) -> list[dict]:
    return [{"Type": 107, "SymbolID": 1, "Price": 6000.0 + k / 4, "Volume": 1, "DateTime": 1.7e9 + k} for k in range(n)]


def test_encode_is_json_plus_nul():
    b = encode({"Type": 3})
    assert b.endswith(b"\x00") and json.loads(b[:-1]) == {"Type": 3}


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 64, 10_000])
def test_any_split_gives_the_same_messages(chunk):
    ms = msgs(20)
    data = b"".join(encode(m) for m in ms)
    d, out = FrameDecoder(), []
    for k in range(0, len(data), chunk):
        out += d.feed(data[k:k + chunk])
    assert out == ms


def test_message_across_two_reads_and_two_in_one_read():
    a, b, c = (encode(m) for m in msgs(3))
    d = FrameDecoder()
    assert d.feed(a[:10]) == []
    assert d.feed(a[10:] + b + c[:5]) == msgs(2)
    assert d.feed(c[5:]) == msgs(3)[2:]


def test_garbage_is_one_bad_frame_and_the_next_message_still_parses():
    d = FrameDecoder()
    out = d.feed(b"this is not json\x00" + encode({"Type": 3}) + b"[1,2]\x00" + b'{"NoType": 1}\x00')
    assert isinstance(out[0], BadFrame) and "not JSON" in str(out[0]) and "\n" not in str(out[0])
    assert out[1] == {"Type": 3}
    assert isinstance(out[2], BadFrame) and "not a JSON object" in out[2].why
    assert isinstance(out[3], BadFrame) and "Type" in out[3].why


def test_empty_frames_are_skipped():
    assert FrameDecoder().feed(b"\x00\x00" + encode({"Type": 3})) == [{"Type": 3}]


@pytest.mark.parametrize("mode", ["split", "coalesce"])
def test_through_a_socket_split_and_coalesced(fake_server, tmp_path, mode):
    ticks = make_ticks(60)
    fake = fake_server(ticks)
    fake.write_mode = mode
    v = venue(fake, tmp_path, broker=False)
    try:
        got = take(v.feed, 60)
        assert [(t.ts_ns, t.price, t.size, t.side) for t in got] == [(t.ts_ns, t.price, t.size, t.side) for t in ticks]
        assert v.client.bad_frames == 0
    finally:
        v.close()


def test_a_line_of_garbage_on_the_socket_loses_nothing(fake_server, tmp_path):
    ticks = make_ticks(40)
    fake = fake_server(ticks)
    fake.stop_at = 20
    v = venue(fake, tmp_path, broker=False)
    try:
        first = take(v.feed, 20)
        wait_for(lambda: fake.paused, what="stream paused at trade 20")
        fake.inject(b"GARBAGE {not: json\n\x00")
        wait_for(lambda: v.client.bad_frames == 1, what="the bad frame counted")
        fake.release()
        rest = take(v.feed, 20)
        assert [t.ts_ns for t in first + rest] == [t.ts_ns for t in ticks]
        assert v.link.ready and v.link.reconnects == 0
        assert "bad DTC frame (not JSON" in v.client.last_bad and "\n" not in v.client.last_bad
    finally:
        v.close()


def test_a_malformed_trade_is_skipped_in_one_line_and_the_link_survives(fake_server, tmp_path):
    ticks = make_ticks(20)
    fake = fake_server(ticks)
    fake.stop_at = 10
    v = venue(fake, tmp_path, broker=False)
    try:
        take(v.feed, 10)
        wait_for(lambda: fake.paused, what="paused")
        fake.inject(encode({"Type": 107, "SymbolID": v.feed.symbol_id, "Price": "x", "Volume": 1, "DateTime": 1.8e9}))
        wait_for(lambda: v.client.bad_frames == 1, what="bad message counted")
        assert "handler of type 107 failed" in v.client.last_bad and "\n" not in v.client.last_bad
        fake.release()
        assert [t.ts_ns for t in take(v.feed, 10)] == [t.ts_ns for t in ticks[10:]]
        assert v.link.ready and v.link.reconnects == 0
    finally:
        v.close()


def test_encoding_request_sequence(fake_server, tmp_path):
    fake = fake_server(make_ticks(5))
    v = venue(fake, tmp_path, broker=False, encoding_request=True)
    try:
        assert [m["Type"] for m in fake.received[:2]] == [6, 1]  # ENCODING_REQUEST (JSON), then the logon
        assert fake.received[0]["Encoding"] == 2
        assert len(take(v.feed, 5)) == 5
    finally:
        v.close()
