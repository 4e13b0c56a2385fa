"""A segment whose first write never completed (created, then the disk was full or the process was killed before
its magic and header were whole): the next start writes it again from its header, and resumes from the previous
segment's checkpoint."""

from __future__ import annotations

import pytest

from live.collect.writer import SegmentWriter
from live.events import Tick
from research.data import segments as S

T0 = 1_709_560_800_000_000_000  # 2024-03-04 14:00 UTC
DAY = 86400 * 10**9


def tick(ts: int) -> Tick:
    return Tick(ts, 5000.0, 1, 1, "ESM24", 1, 4999.75, 5000.0)


@pytest.mark.parametrize("left", [b"", b"NAV"])
def test_an_empty_or_magic_less_newest_segment_starts_again(tmp_path, left):
    w = SegmentWriter(tmp_path, "ES", source="test")
    w.recover()
    for i in range(10):
        w.append_tick(tick(T0 + i * 10**9), {"next": i + 1})
    assert w.close()
    nxt = tmp_path / "segments/ES/2024-03-05.seg"
    nxt.write_bytes(left)  # the next day's segment, cut before its header was whole
    w2 = SegmentWriter(tmp_path, "ES", source="test")
    rec = w2.recover()
    assert (rec.seq, rec.token) == (10, {"next": 10})
    w2.append_tick(tick(T0 + DAY), {"next": 11})
    assert w2.close()
    d = S.read_segment(nxt)
    assert d.header["date"] == "2024-03-05" and d.ticks["seq"].tolist() == [11]
