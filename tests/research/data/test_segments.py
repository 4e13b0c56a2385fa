"""The segment format: round trip, torn tails at every cut, damage detected, clear errors."""

from __future__ import annotations

import math

import numpy as np
import pytest

from research.data import segments as S


def _segment(n_ticks: int = 5) -> bytes:
    out = [S.header_frame("ES", "2024-03-04", "synthetic", 1, None), S.json_frame(S.CONTRACT, {"contract": "ESM24"})]
    for i in range(n_ticks):
        out.append(S.tick_frame(1_000 + i, 5000.25 + i * 0.25, 1 + i, (-1, 0, 1)[i % 3], 1, 5000.0, math.nan, i + 1))
    out.append(S.bar_frame(1_000, 5000.25, 5001.0, 5000.25, 5001.0, 15, 5, 6, 5))
    out.append(S.json_frame(S.GAP, {"start_ns": 10, "end_ns": 20, "reason": "feed down"}))
    out.append(S.json_frame(S.CHECKPOINT, {"seq": n_ticks, "token": {"offset": 96}, "ts_ns": 1_004, "wall_ns": 7}))
    out.append(S.json_frame(S.SEAL, {"records": n_ticks}))
    return b"".join(out)


def test_round_trip(tmp_path):
    p = tmp_path / "2024-03-04.seg"
    p.write_bytes(_segment())
    d = S.read_segment(p)
    assert d.header["symbol"] == "ES" and d.header["format"] == S.FORMAT
    assert d.ticks["seq"].tolist() == [1, 2, 3, 4, 5]
    assert d.ticks["side"].tolist() == [-1, 0, 1, -1, 0]
    assert np.isnan(d.ticks["ask"]).all() and (d.ticks["bid"] == 5000.0).all()
    assert d.tick_contracts == ["ESM24"] * 5 and d.bar_contracts == ["ESM24"]
    assert d.bars["volume"].tolist() == [15]
    assert d.gaps == [{"start_ns": 10, "end_ns": 20, "reason": "feed down"}]
    assert d.checkpoints[0]["token"] == {"offset": 96}
    assert d.seal == {"records": 5} and d.scan.sealed and d.scan.problem is None
    assert d.scan.counts == {"header": 1, "contract": 1, "tick": 5, "bar": 1, "gap": 1, "checkpoint": 1, "seal": 1}


def test_every_cut_is_a_torn_tail_never_a_wrong_record(tmp_path):
    buf = _segment(3)
    ends = [len(S.MAGIC)] + [off + S.FRAME.size + len(pl) for off, _, pl in S.iter_frames(buf)]
    p = tmp_path / "x.seg"
    for cut in range(len(buf) + 1):
        sc = S.scan(p, buf[:cut])
        assert sc.valid_end == max(e for e in [0, *ends] if e <= cut)
        assert (sc.problem is None) == (cut in ends or cut == 0)


def test_a_flipped_byte_is_found(tmp_path):
    buf = bytearray(_segment())
    off = [o for o, k, _ in S.iter_frames(bytes(buf)) if k == S.TICK][2]
    buf[off + S.FRAME.size + 3] ^= 0x40
    p = tmp_path / "2024-03-04.seg"
    p.write_bytes(bytes(buf))
    sc = S.scan(p)
    assert sc.valid_end == off and sc.problem == "a checksum mismatch"
    with pytest.raises(S.SegmentError, match=rf"2024-03-04.seg: byte {off}: a checksum mismatch"):
        S.read_segment(p)
    assert S.read_segment(p, allow_torn=True).ticks.shape == (2,)


def test_not_a_segment(tmp_path):
    p = tmp_path / "bad.seg"
    p.write_bytes(b"PAR1" + b"\0" * 20)
    with pytest.raises(S.SegmentError, match="bad.seg: byte 0: not a navale segment"):
        S.scan(p)


def test_names():
    assert S.segment_name("2024-03-04") == "2024-03-04.seg"
    assert S.parse_segment_name("/x/2024-03-04.seg") == "2024-03-04"
    assert S.parse_segment_name("2024-03-04.seg.torn-1") is None
