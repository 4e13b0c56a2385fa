"""Parsers given truncated files, garbage bytes and wrong headers raise DataError, never crash or hang."""

import gzip
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from research.data import DataError, load_bars
from research.data.scid import (
    ScidTail,
    read_scid_records,
    ticks_to_scid_records,
    write_scid,
)

# NAVALE_FUZZ_EXAMPLES=5000 for a deep run (the default keeps the suite fast)
FUZZ = settings(max_examples=int(os.environ.get("NAVALE_FUZZ_EXAMPLES", "60")), deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture])


def _valid_scid(tmp_path):
    ts = 1_709_649_000_000_000_000 + np.arange(20, dtype=np.int64) * 1_000_000_000
    rec = ticks_to_scid_records(ts, np.full(20, 5000.0), np.ones(20, np.int64), np.ones(20, np.int8))
    return write_scid(tmp_path / "base.scid", rec).read_bytes()


@FUZZ
@given(data=st.data())
def test_scid_mutations(tmp_path, data):
    good = _valid_scid(tmp_path)
    cut = data.draw(st.integers(0, len(good)))
    noise = data.draw(st.binary(max_size=80))
    pos = data.draw(st.integers(0, len(good)))
    blob = (good[:pos] + noise + good[pos:])[: max(cut, 0) + len(noise)]
    p = tmp_path / "f.scid"
    p.write_bytes(blob)
    for fn in (lambda: read_scid_records(p), lambda: load_bars(p, bar="1min"), lambda: ScidTail(p).read_new()):
        try:
            fn()
        except DataError as e:
            assert str(p) in str(e)


@FUZZ
@given(blob=st.binary(max_size=400))
def test_garbage_files(tmp_path, blob):
    p = tmp_path / "g.bin"
    p.write_bytes(blob)
    try:
        load_bars(p)
    except DataError as e:
        assert str(p) in str(e) or "<data>" in str(e)


SIERRA = "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n" + "".join(
    f"2024/3/5, 08:{m:02d}:00, 5100.00, 5101.25, 5099.75, 5101.00, 120, 40, 50, 70\n" for m in range(30, 50)
)
TBT = "Date;Time;Sequence;DepthSequence;Price;Volume;TradeType\n" + "".join(
    f"2022-01-24;13:30:00.{5000 + i};{100 + i};1;4347.75;1;{1 + i % 2}\n" for i in range(20)
)


@FUZZ
@given(data=st.data(), which=st.sampled_from(["sierra", "tbt"]), gz=st.booleans())
def test_text_mutations(tmp_path, data, which, gz):
    text = (SIERRA if which == "sierra" else TBT).encode()
    cut = data.draw(st.integers(1, len(text)))
    noise = data.draw(st.binary(max_size=30) | st.text(alphabet=",;.:-0123456789 abc\n\x00", max_size=30).map(str.encode))
    pos = data.draw(st.integers(0, cut))
    blob = text[:pos] + noise + text[pos:cut]
    if gz:
        blob = gzip.compress(blob)
        if data.draw(st.booleans()):
            blob = blob[: data.draw(st.integers(0, len(blob)))]  # truncated gzip stream
    p = tmp_path / ("ESH24.txt.gz" if gz else "ESH24.txt")
    p.write_bytes(blob)
    try:
        f = load_bars(p)
    except DataError as e:
        assert str(p) in str(e)
    else:
        assert f.index.is_monotonic_increasing and f.index.tz is not None


def test_stray_separator_in_the_first_row_is_named(tmp_path):
    """Regression (found by test_text_mutations): a first data row with one field more than the header
    made pandas shift every column into an implicit index; it is a bad row, not data."""
    text = SIERRA.encode()
    p = tmp_path / "ESH24.txt"
    p.write_bytes(text[:84] + b"," + text[84:232])
    with pytest.raises(DataError, match=r"ESH24.txt: line 2: more fields than the header.s 10"):
        load_bars(p)
