"""Parsers given truncated files, garbage bytes and wrong headers raise DataError, never crash or hang.

Value-level mutations (a number replaced, fields swapped or deleted, lines deleted, duplicated or
swapped, a file cut inside a field; see ``tests/fuzz_values.py``): every loaded frame equals the
original, or is refused in one line, or misses whole bars (flagged as a gap inside a session), or has
other values that pass every rule. The deep run with the counts is ``benchmarks/fuzz_values.py``.
"""

import gzip
import os

import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from fuzz_values import real_sources, run_cases, summarize
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


VALUE_CASES = int(os.environ.get("NAVALE_FUZZ_EXAMPLES", "40")) // 2
SIERRA_HEADER = "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"


def sample_export(path):
    """A Sierra 5-minute export like the real ones (Volume = BidVolume + AskVolume), one RTH day and more."""
    rng = np.random.default_rng(3)
    price, rows = 4200.0, []
    for t in pd.date_range("2024-03-05 08:30", periods=120, freq="5min"):
        o, c = price, price + 0.25 * int(rng.integers(-8, 9))
        h, lo = max(o, c) + 0.25 * int(rng.integers(0, 4)), min(o, c) - 0.25 * int(rng.integers(0, 4))
        bid, ask = (int(x) for x in rng.integers(100, 3000, 2))
        rows.append(f"{t:%Y/%m/%d}, {t:%H:%M:%S}, {o:.2f}, {h:.2f}, {lo:.2f}, {c:.2f}, {bid + ask}, "
                    f"{(bid + ask) // 2}, {bid}, {ask}\n")
        price = c
    path.write_text(SIERRA_HEADER + "".join(rows))
    return path


def assert_no_bug(cases):
    s = summarize(cases)
    assert not s["outcome"]["bug"], [c for c in cases if c.outcome == "bug"]
    assert s["outcome"]["refused"] > 0


def test_value_mutations_of_an_embedded_export(tmp_path):
    src = sample_export(tmp_path / "ESM24.txt")
    work = tmp_path / "w"
    work.mkdir()
    assert_no_bug(run_cases({src: ","}, work, VALUE_CASES, seed=int(os.environ.get("NAVALE_FUZZ_SEED", "0")), slice_lines=60))


def test_value_mutations_of_real_files(tmp_path):
    sources = {p: sep for p, sep in real_sources(SHARED_DATA).items() if "ESH20" in p.name or not p.name.startswith("ES")
               or "tbt" in p.name}  # one contract, the tick text, the generic CSV
    if not sources:
        pytest.skip(f"real CME data not available ({SHARED_DATA} is absent: a user's clone has no ../shared/data)")
    assert_no_bug(run_cases(sources, tmp_path, VALUE_CASES, seed=int(os.environ.get("NAVALE_FUZZ_SEED", "0")), slice_lines=80))
