"""The live bar builder gives exactly the bars `load_bars` gives for the same trades, and closes bars by the
rules of docs/feeds.md: a later trade, the clock past the end plus the grace, a contract change, late records."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file
from hypothesis import given, settings
from hypothesis import strategies as st

from live.bars import BarBuilder
from live.events import Bar, Tick
from research.data import SyntheticSpec, default_dataset, load_bars, load_ticks

SPECS = ("5min", "1min", "volume:500", "tick:200")
COLUMNS = ["open", "high", "low", "close", "volume", "num_trades", "bid_volume", "ask_volume"]
REAL_TICK_FILES = ("ticks/ES_2022-01-24_tbt.txt.gz", "ticks/ES_2023-06-29_open_tbt.txt.gz",
                   "ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst", "ticks/ESM23_sample.scid")
MIN = 60 * 10**9


def ticks_of(path) -> list[Tick]:
    t = load_ticks(path)
    n = t["num_trades"].tolist() if "num_trades" in t else [1] * len(t)
    return [Tick(a, b, c, d, "", e) for a, b, c, d, e in
            zip(t.index.as_unit("ns").asi8.tolist(), t["price"].tolist(), t["size"].tolist(), t["side"].tolist(), n)]


def build(ticks: list[Tick], spec: str, builder: BarBuilder | None = None) -> list[Bar]:
    b = builder or BarBuilder(spec)
    out = [bar for bar in map(b.add, ticks) if bar is not None]
    last = b.flush()
    return out + ([last] if last else [])


def frame_of(bars: list[Bar]) -> pd.DataFrame:
    idx = pd.DatetimeIndex(np.array([b.ts_ns for b in bars], dtype="datetime64[ns]"), name="time").tz_localize("UTC")
    return pd.DataFrame({c: [getattr(b, c) for b in bars] for c in COLUMNS}, index=idx)


def assert_same_bars(path, spec: str, ticks: list[Tick]) -> None:
    got = frame_of(build(ticks, spec))
    want = load_bars(path, bar=spec)[COLUMNS]
    pd.testing.assert_frame_equal(got, want, check_dtype=False, check_freq=False, check_exact=True)


@pytest.fixture(scope="module")
def synthetic(data_dir):
    path = default_dataset(SyntheticSpec(days=3))
    return path, ticks_of(path)


@pytest.mark.parametrize("spec", SPECS)
def test_synthetic_scid_streamed_gives_load_bars(synthetic, spec):
    path, ticks = synthetic
    assert len(ticks) > 100_000
    assert_same_bars(path, spec, ticks)


@pytest.mark.realdata
@pytest.mark.parametrize("rel", REAL_TICK_FILES)
def test_real_tick_files_streamed_give_load_bars(rel):
    path = shared_file(rel)
    ticks = ticks_of(path)
    for spec in SPECS:
        assert_same_bars(path, spec, ticks)


def test_a_size_that_does_not_divide_an_hour_uses_the_session_grid(synthetic):
    path, ticks = synthetic
    assert_same_bars(path, "7min", ticks)


def test_state_round_trip_mid_stream_continues_exactly(synthetic):
    _, ticks = synthetic
    ticks = ticks[:30_000]
    for spec in ("5min", "volume:500"):
        whole = build(ticks, spec)
        for cut in (1, 777, 12_345, 29_999):
            b = BarBuilder(spec)
            head = [bar for bar in map(b.add, ticks[:cut]) if bar is not None]
            b2 = BarBuilder(spec)
            b2.restore(json.loads(json.dumps(b.state())))
            assert head + build(ticks[cut:], spec, b2) == whole


def test_state_without_the_open_bar_resumes_from_that_bars_first_trade(synthetic):
    _, ticks = synthetic
    ticks = ticks[:20_000]
    whole = build(ticks, "1min")
    b = BarBuilder("1min")
    head, first_of_open = [], 0
    for i, t in enumerate(ticks[:5_000]):
        bar = b.add(t)
        if bar is not None:
            head.append(bar)
            first_of_open = i  # the trade that closed the bar opened the next one
    b2 = BarBuilder("1min")
    b2.restore(b.state(open_bar=False))
    assert head + build(ticks[first_of_open:], "1min", b2) == whole


def test_restore_refuses_another_bar_spec():
    with pytest.raises(ValueError, match="'5min' bars, this builder makes '1min'"):
        BarBuilder("1min").restore(BarBuilder("5min").state())


T0 = pd.Timestamp("2024-03-12 14:30", tz="UTC").value  # 09:30 CT... any RTH time of a Tuesday


def test_poll_closes_a_time_bar_after_its_end_plus_the_grace_and_late_records_are_reported():
    b = BarBuilder("1min", grace_seconds=5.0, symbol="ESM24")
    assert b.add(Tick(T0 + 10 * 10**9, 5000.0, 2, 1)) is None
    assert b.poll(T0 + MIN + 4 * 10**9) is None  # inside the grace
    bar = b.poll(T0 + MIN + 5 * 10**9)
    assert bar == Bar(T0, 5000.0, 5000.0, 5000.0, 5000.0, 2, 0, 2, 1, "ESM24")
    assert b.poll(T0 + 10 * MIN) is None
    assert b.add(Tick(T0 + MIN - 1, 4999.0, 3, -1)) is None  # belongs to the closed bar: late
    assert (b.late_records, b.late_volume) == (1, 3) and b.events[0][0] == "late_record"
    assert b.add(Tick(T0 + MIN, 4999.5, 1, -1)) is None  # the next bar is not late
    assert b.flush() == Bar(T0 + MIN, 4999.5, 4999.5, 4999.5, 4999.5, 1, 1, 0, 1, "ESM24")


def test_a_trade_of_another_contract_closes_the_bar():
    b = BarBuilder("5min")
    b.add(Tick(T0, 5000.0, 1, 1, "ESM24"))
    bar = b.add(Tick(T0 + 10**9, 5050.0, 1, 1, "ESU24"))
    assert bar is not None and bar.contract == "ESM24" and bar.volume == 1
    assert b.flush().contract == "ESU24"


def test_volume_bars_close_on_the_filling_trade_and_at_the_session_change():
    b = BarBuilder("volume:5")
    assert b.add(Tick(T0, 5000.0, 3, 1)) is None
    bar = b.add(Tick(T0 + 1, 5001.0, 2, -1))
    assert (bar.ts_ns, bar.volume, bar.high, bar.bid_volume, bar.ask_volume) == (T0, 5, 5001.0, 2, 3)
    assert b.add(Tick(T0 + 2, 5000.0, 1, 1)) is None
    nxt = pd.Timestamp("2024-03-12 22:00", tz="UTC").value  # 17:00 CDT: the next session opens
    assert b.poll(nxt - 1) is None
    assert b.poll(nxt + b.grace_ns).volume == 1  # the unfilled bar ends with its session


def test_one_trade_ending_a_session_bar_and_filling_the_next_returns_both_in_turn():
    b = BarBuilder("volume:5")
    b.add(Tick(T0, 5000.0, 1, 1))
    nxt = pd.Timestamp("2024-03-12 22:00", tz="UTC").value
    first = b.add(Tick(nxt, 5002.0, 9, 1))  # closes the old session's bar and fills a new one
    assert first.volume == 1
    second = b.poll(nxt)
    assert (second.ts_ns, second.volume) == (nxt, 9)
    assert b.flush() is None


def test_the_scalar_session_rule_matches_the_batch_one_across_dst_changes():
    from research.data.aggregate import session_bounds_ns, session_open_ns

    opens = pd.date_range("2015-01-01", "2024-12-31", freq="D", tz="America/Chicago") + pd.Timedelta(hours=17)
    t = np.concatenate([opens.asi8 + d for d in (-10**9, -1, 0, 1, 3600 * 10**9)])
    rng = np.random.default_rng(7)
    t = np.concatenate([t, rng.integers(t.min(), t.max(), 5_000)])
    bounds = np.array([session_bounds_ns(int(x)) for x in t])
    assert (bounds[:, 0] == session_open_ns(t)).all()
    assert ((bounds[:, 0] <= t) & (t < bounds[:, 1])).all()


@settings(max_examples=40, deadline=None)
@given(data=st.data(), spec=st.sampled_from(["1s", "1min", "7min", "45min", "1h", "volume:1", "volume:37", "tick:1", "tick:9"]),
       start=st.sampled_from(["2024-03-08 20:00", "2024-11-01 21:30", "2024-03-12 14:30"]))
def test_any_trade_stream_gives_the_batch_aggregations_bars(data, spec, start):
    from research.data.aggregate import parse_bar_spec, ticks_to_bars
    from research.data.ticks import make_tick_frame

    n = data.draw(st.integers(1, 300))
    gaps = data.draw(st.lists(st.sampled_from([0, 1, 10**6, 10**9, 59 * 10**9, 3600 * 10**9, 40 * 3600 * 10**9]),
                              min_size=n, max_size=n))
    ts = pd.Timestamp(start, tz="UTC").value + np.cumsum(gaps)
    size = data.draw(st.lists(st.integers(1, 60), min_size=n, max_size=n))
    side = data.draw(st.lists(st.sampled_from([-1, 0, 1]), min_size=n, max_size=n))
    price = 5000.0 + 0.25 * np.array(data.draw(st.lists(st.integers(-40, 40), min_size=n, max_size=n)))
    frame = make_tick_frame(ts, price, size, side, attrs={})
    want = ticks_to_bars(frame, parse_bar_spec(spec))
    ticks = [Tick(int(a), float(b), int(c), int(d)) for a, b, c, d in zip(ts, price, size, side)]
    got = build(ticks, spec)
    assert [b.ts_ns for b in got] == want["time_ns"].tolist()
    for c in COLUMNS:
        assert [getattr(b, c) for b in got] == want[c].tolist(), c
