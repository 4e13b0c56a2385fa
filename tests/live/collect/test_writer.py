"""The segment writer: frames round trip, torn tail cut and kept, disk full held in memory, rotation at the
trading date with a SEAL and a chained header."""

from __future__ import annotations

import errno
import os

from live.collect.writer import SegmentWriter, trading_date_bounds
from live.events import NAN, Bar, Tick
from live.journal import trading_date
from research.data import segments as S

T0 = 1_709_560_800_000_000_000  # 2024-03-04 14:00 UTC (trading date 2024-03-04)
HOUR = 3600 * 10**9


def ticks(n: int, start: int = T0, step: int = 10**9) -> list[Tick]:
    return [Tick(start + i * step, 5000.0 + (i % 7) * 0.25, 1 + i % 3, (-1, 0, 1)[i % 3], "ESM24", 1,
                 4999.75 if i % 2 else NAN, 5000.25) for i in range(n)]


def write(root, recs, **kw) -> SegmentWriter:
    w = SegmentWriter(root, "ES", source="test", **kw)
    w.recover()
    for i, t in enumerate(recs):
        w.append_tick(t, {"next": i + 1})
        w.maybe_flush()
    return w


def test_round_trip_seq_checkpoint_and_quotes(tmp_path):
    recs = ticks(500)
    w = write(tmp_path, recs, flush_records=64)
    w.append_bar(Bar(T0, 1, 2, 0.5, 1.5, 10, 4, 6, 3, "ESM24"))
    assert w.close()
    seg = tmp_path / "segments/ES/2024-03-04.seg"
    d = S.read_segment(seg)
    assert d.header["symbol"] == "ES" and d.header["date"] == "2024-03-04" and d.header["prev"] is None
    assert d.ticks["seq"].tolist() == list(range(1, 501))
    assert d.ticks["ts_ns"].tolist() == [t.ts_ns for t in recs]
    assert d.ticks["price"].tolist() == [t.price for t in recs]
    assert d.ticks["side"].tolist() == [t.side for t in recs]
    assert [x != x for x in d.ticks["bid"][:2]] == [True, False]  # NaN where the feed has no quote
    assert set(d.tick_contracts) == {"ESM24"} and len(d.bars) == 1
    assert d.checkpoints[-1]["seq"] == 500 and d.checkpoints[-1]["token"] == {"next": 500}
    assert d.seal is None  # still open: the next run appends
    w2 = SegmentWriter(tmp_path, "ES", source="test")
    rec = w2.recover()
    assert (rec.seq, rec.token, rec.open_segment) == (500, {"next": 500}, seg) and not rec.torn


def test_torn_tail_cut_to_the_last_checkpoint_kept_and_reported(tmp_path):
    w = write(tmp_path, ticks(100), flush_records=40)
    w.close()
    seg = tmp_path / "segments/ES/2024-03-04.seg"
    whole = seg.read_bytes()
    ck = S.read_segment(seg).checkpoints
    # records after the last checkpoint plus half a frame, as a crash mid-write leaves them
    extra = b"".join(S.tick_frame(T0 + 10**12 + i, 1.0, 1, 1, 1, NAN, NAN, 101 + i) for i in range(3))
    seg.write_bytes(whole + extra + S.tick_frame(T0 + 10**13, 1.0, 1, 1, 1, NAN, NAN, 104)[:11])
    events = []
    w2 = SegmentWriter(tmp_path, "ES", source="test", on_event=lambda *a: events.append(a))
    rec = w2.recover()
    assert rec.seq == ck[-1]["seq"] == 100 and rec.token == {"next": 100}
    assert seg.read_bytes() == whole  # truncated to the last whole checkpoint
    torn = seg.with_name("2024-03-04.seg.torn-1")
    assert torn.read_bytes() == extra + S.tick_frame(T0 + 10**13, 1.0, 1, 1, 1, NAN, NAN, 104)[:11]
    assert rec.torn[0]["frames"] == 3 and "partial" in rec.torn[0]["problem"]
    assert events[0][0] == "torn_tail" and "torn-1" in events[0][2]
    w2.close()
    assert [e["kind"] for e in S.read_segment(seg).events] == ["torn_tail"]  # the EVENT frame too


def test_disk_full_keeps_the_buffer_never_half_a_frame_and_resumes(tmp_path):
    full = {"on": False, "calls": 0}

    def write_fn(fd, data):
        if full["on"]:
            full["calls"] += 1
            n = os.write(fd, bytes(data[:7]))  # a partial write, then the disk is full
            assert n == 7
            raise OSError(errno.ENOSPC, "No space left on device")
        return os.write(fd, data)

    events = []
    clock = [0.0]
    w = SegmentWriter(tmp_path, "ES", source="test", write=write_fn, retry_seconds=1.0, max_buffer_bytes=4000,
                      on_event=lambda *a: events.append(a[0]), clock=lambda: clock[0])
    w.recover()
    recs = ticks(300)
    for t in recs[:100]:
        w.append_tick(t, None)
    assert w.flush()
    full["on"] = True
    for t in recs[100:200]:
        w.append_tick(t, None)
    assert not w.flush() and w.disk_full and events == ["disk_full"]
    seg = tmp_path / "segments/ES/2024-03-04.seg"
    assert S.scan(seg).problem is None  # truncated back: no half frame on disk
    assert w.backpressure  # 100 ticks > 4000 bytes buffered: the collector pauses the feed
    clock[0] += 0.5
    assert not w.flush() and full["calls"] == 1  # not retried before retry_seconds
    full["on"] = False
    clock[0] += 1.0
    for t in recs[200:]:
        w.append_tick(t, None)
    assert w.flush() and not w.disk_full and events == ["disk_full", "disk_ok"]
    w.close()
    d = S.read_segment(seg)
    assert d.ticks["seq"].tolist() == list(range(1, 301))
    assert d.ticks["ts_ns"].tolist() == [t.ts_ns for t in recs]
    assert "disk_full" in [e["kind"] for e in d.events]


def test_rotation_at_the_trading_date_seals_and_chains(tmp_path):
    # 15:30 CT on 2024-03-04, then past 17:00 CT: trading date 2024-03-05
    a = ticks(5, start=T0 + 7 * HOUR + 30 * 60 * 10**9)
    b = ticks(5, start=T0 + 9 * HOUR + 10**9)
    assert trading_date(a[0].ts_ns) == "2024-03-04" and trading_date(b[0].ts_ns) == "2024-03-05"
    sealed = []
    w = SegmentWriter(tmp_path, "ES", source="test", finalize=lambda root, seg, source: sealed.append(seg.name))
    w.recover()
    for t in a + b:
        w.append_tick(t, {"n": t.ts_ns})
    w.close()
    d1 = S.read_segment(tmp_path / "segments/ES/2024-03-04.seg")
    d2 = S.read_segment(tmp_path / "segments/ES/2024-03-05.seg")
    assert sealed == ["2024-03-04.seg"] and d1.seal is not None and d2.seal is None
    assert d1.seal["last_seq"] == 5 and d1.seal["first_seq"] == 1
    assert d1.seal["counts"] == {k: v for k, v in d1.scan.counts.items() if k != "seal"} | {
        k: 0 for k in ("bar", "event", "gap") if k not in d1.scan.counts}
    assert d2.header["prev"] == {"segment": "2024-03-04.seg", "last_seq": 5}
    assert d2.ticks["seq"].tolist() == [6, 7, 8, 9, 10] and d2.tick_contracts == ["ESM24"] * 5
    assert d2.checkpoints[0]["token"] == {"n": a[-1].ts_ns}  # the new segment starts at the old one's end
    for ts in (a[0].ts_ns, b[0].ts_ns):
        date, lo, hi = trading_date_bounds(ts)
        assert date == trading_date(ts) and lo <= ts < hi and trading_date(hi) != date and trading_date(hi - 10**6) == date
