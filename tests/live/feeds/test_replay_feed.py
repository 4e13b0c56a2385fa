"""ReplayFeed and SyntheticFeed: the records of the research data layer, resumable by token without a
duplicate or a loss, paced by record time (counted through an injected clock, never timed)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import shared_file

from live.events import Bar, Tick
from live.feeds import FeedError, open_feed
from live.feeds.pacing import Pacer
from live.feeds.replay import ReplayFeed
from live.feeds.synthetic import SyntheticFeed
from research.data import (
    DataError,
    SyntheticSpec,
    default_dataset,
    load_bars,
    load_ticks,
)

SMALL = SyntheticSpec(days=1)


def drain(feed) -> list:
    return list(feed)


def resume_round_trip(make, k: int) -> None:
    """Read k records, reopen with the token: the rest equals an uninterrupted read."""
    whole = drain(make(None))
    first = make(None)
    head = [first.next_record() for _ in range(k)]
    token = json.loads(json.dumps(first.resume_token()))
    rest = drain(make(token))
    assert head + rest == whole and len(whole) > k


@pytest.fixture(scope="module")
def scid_path(data_dir):
    return default_dataset(SMALL)


def test_scid_replay_yields_the_loaders_trades(scid_path):
    feed = ReplayFeed(scid_path)
    ticks = load_ticks(scid_path)
    got = drain(feed)
    assert not feed.yields_bars and feed.symbol == "ESM24" and feed.exhausted()
    assert [t.ts_ns for t in got] == ticks.index.as_unit("ns").asi8.tolist()
    assert [t.side for t in got] == ticks["side"].tolist() and {t.contract for t in got} == {"ESM24"}


@pytest.mark.parametrize("k", [1, 5_000])
def test_scid_replay_resume_round_trip(scid_path, k):
    resume_round_trip(lambda tok: ReplayFeed(scid_path, resume=tok), k)


def test_resume_token_of_another_file_is_refused(scid_path):
    with pytest.raises(FeedError, match="the file changed"):
        ReplayFeed(scid_path, resume={"next": 3, "records": 12})


@pytest.mark.realdata
@pytest.mark.parametrize("rel, trades", [("ticks/ES_2022-01-24_tbt.txt.gz", 2026),
                                         ("ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst", 2973)])
def test_real_tick_text_and_dbn_replay_with_resume(rel, trades):
    path = shared_file(rel)
    feed = ReplayFeed(path)
    assert len(feed) == trades and not feed.yields_bars and feed.symbol
    whole = drain(feed)
    again = ReplayFeed(path, resume={"next": 1000, "records": len(whole)})
    assert drain(again) == whole[1000:]


@pytest.mark.realdata
def test_bar_files_replay_as_bars_and_a_stitched_series_marks_each_contracts_last_bar():
    files = [shared_file(f"es-5m/{c}-CME.scid_BarData__5m.txt.gz") for c in ("ESH20", "ESM20")]
    frame = load_bars(files)
    feed = ReplayFeed(files)
    assert feed.yields_bars
    bars = drain(feed)
    assert len(bars) == len(frame) and all(isinstance(b, Bar) for b in bars)
    assert [b.ts_ns for b in bars] == frame.index.as_unit("ns").asi8.tolist()
    assert [b.close for b in bars] == frame["close"].tolist()
    last = [i for i, b in enumerate(bars) if b.last_of_contract]
    assert len(last) == 1 and bars[last[0]].contract == "ESH20" and bars[last[0] + 1].contract == "ESM20"
    resume_round_trip(lambda tok: ReplayFeed.from_frame(frame, resume=tok), 9_000)


def test_from_frame_replays_a_bar_frame(scid_path):
    frame = load_bars(scid_path, bar="5min")
    bars = drain(ReplayFeed.from_frame(frame))
    assert [(b.ts_ns, b.open, b.volume, b.bid_volume, b.contract) for b in bars] == list(zip(
        frame.index.as_unit("ns").asi8.tolist(), frame["open"], frame["volume"], frame["bid_volume"], ["ESM24"] * len(frame)))


def test_bad_input_gives_the_readers_one_line_error(tmp_path):
    bad = tmp_path / "ES_bad_tbt.txt"
    bad.write_text("Date;Time;Sequence;Price;Volume;TradeType\n2022-01-24;13:30:00.5000;1;4400.25;x;1\n")
    with pytest.raises(DataError, match=r"ES_bad_tbt.txt: line 2: field 'Volume'") as exc:
        ReplayFeed(bad)
    assert "\n" not in str(exc.value)


def test_synthetic_feed_is_the_generators_trades_deterministically_and_resumes():
    a = drain(SyntheticFeed(SMALL, speed=None))
    assert a == drain(SyntheticFeed(SMALL, speed=None)) and all(isinstance(t, Tick) for t in a[:10])
    assert len(a) > 10_000 and a[0].contract == "ESM24"
    resume_round_trip(lambda tok: SyntheticFeed(SMALL, speed=None, resume=tok), 4_321)
    with pytest.raises(FeedError, match="generator spec"):
        SyntheticFeed(SyntheticSpec(days=2), speed=None, resume=SyntheticFeed(SMALL, speed=None).resume_token())


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.sleeps.append(s)
        self.now += s


def test_speed_paces_by_record_time_and_shortens_long_gaps():
    fc = FakeClock()
    p = Pacer(10.0, max_wait_seconds=2.0, clock=fc.clock, sleep=fc.sleep)
    s = 10**9
    waited = []
    for ts in (0, 5 * s, 6 * s, 3600 * s, 3601 * s):  # 0.5 s, 0.1 s, a 1-hour gap, 0.1 s at 10x
        t0 = fc.now
        while not p.ready(ts):
            pass
        waited.append(round(fc.now - t0, 6))
    assert waited == [0.0, 0.5, 0.1, 2.0, 0.1]
    assert max(fc.sleeps) <= p.slice


def test_a_paced_feed_returns_none_until_the_record_is_due():
    fc = FakeClock()
    feed = SyntheticFeed(SMALL, speed=1.0, clock=fc.clock, sleep=fc.sleep)
    first = feed.next_record()
    assert first is not None
    nones = 0
    while (second := feed.next_record()) is None:
        nones += 1
    gap = (second.ts_ns - first.ts_ns) / 1e9
    assert fc.now - 100.0 == pytest.approx(min(gap, 2.0)) and nones >= 1


@pytest.mark.parametrize("text, msg", [("bogus", "unknown feed 'bogus'"), ("replay:", "no path after 'replay:'"),
                                       ("synthetic:x", "unknown feed"), ("scid", "unknown feed")])
def test_open_feed_refuses_bad_text_in_one_line(text, msg):
    with pytest.raises(FeedError, match=msg) as exc:
        open_feed(text)
    assert "\n" not in str(exc.value)


def test_open_feed_builds_each_kind(scid_path):
    assert isinstance(open_feed("synthetic", spec=SMALL, speed=None), SyntheticFeed)
    assert isinstance(open_feed(f"replay:{scid_path}"), ReplayFeed)
    from live.feeds.scid import ScidFeed

    feed = open_feed(f"scid:{scid_path}", poll_interval=0.01)
    assert isinstance(feed, ScidFeed) and isinstance(feed.next_record(), Tick)
    with pytest.raises(DataError, match="no such file"):
        open_feed("replay:/nonexistent/file.scid")
    assert np.isfinite(feed.last_record_wall)
