"""The soak's stand-in for Sierra Chart (tests/sierra_writer.py) against the real ScidFeed, on a simulated clock:
whatever the writer's faults, the feed yields exactly what reached the files, once, in order."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sierra_writer import SierraScidWriter

from live.feeds.scid import ScidFeed
from research.data import SyntheticSpec
from research.data.scid import SCID_HEADER_SIZE, SCID_RECORD_DTYPE, read_scid_records
from research.data.synthetic import generate_trades

NS = 1_000_000_000


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def sleep(self, s: float) -> None:
        pass


@pytest.fixture(scope="module")
def trades(data_dir):
    t = generate_trades(SyntheticSpec(days=1))
    rth = t.index[0] + pd.Timedelta(hours=15.5)  # 08:30 CT
    return t[(t.index >= rth) & (t.index < rth + pd.Timedelta(minutes=20))]


def drain(feed: ScidFeed, out: list) -> None:
    while (tk := feed.next_record()) is not None:
        out.append((tk.ts_ns, tk.price, tk.size, tk.side, tk.contract))


def run(tmp_path, trades, faults, *, restart_every: int = 0):
    """Drive the writer and a ScidFeed on one fake clock; ``faults`` maps a step number to a writer call."""
    clk = FakeClock()
    w = SierraScidWriter(tmp_path, trades, speed=600.0, clock=clk,
                         roll_at_ns=int(trades.index[len(trades) // 2].value))
    w.open()
    feed = ScidFeed(w.path, poll_interval=0.05, roll_check_seconds=0.1, clock=clk, sleep=clk.sleep)
    got: list = []
    events: list = []
    step = 0
    while not w.done:
        clk.t += 0.01
        step += 1
        if step in faults:
            faults[step](w)
        w.step()
        drain(feed, got)
        if restart_every and step % restart_every == 0:  # a collector restart: a new feed from the token
            events += feed.events
            feed = ScidFeed(w.path, resume=feed.resume_token(), poll_interval=0.05, roll_check_seconds=0.1,
                            clock=clk, sleep=clk.sleep)
    w.finish()
    for _ in range(50):
        clk.t += 0.2
        drain(feed, got)
    return w, events + feed.events, got


def expected(w: SierraScidWriter) -> list:
    src = w.source_ticks()
    return list(zip(src["ts_ns"].tolist(), src["price"].tolist(), src["size"].tolist(), src["side"].tolist(),
                    src["contract"].tolist()))


def test_paced_flushes_and_the_roll(tmp_path, trades):
    w, events, got = run(tmp_path, trades, {})
    assert [f.path.name for f in w.files] == ["ESM24-CME.scid", "ESU24-CME.scid"]
    assert w.written == len(trades) and w.dropped == 0
    assert got == expected(w)
    assert [k for k, _ in events].count("roll") == 1
    # the files hold the trades whole, readable by the research reader, about one flush per 5 simulated seconds
    both = np.concatenate([read_scid_records(f.path) for f in w.files])
    assert np.array_equal(both, w.records())
    span_s = (trades.index[-1] - trades.index[0]).total_seconds()
    assert span_s / 5 * 0.8 < w.flushes < span_s / 5 * 1.2 + 2


def test_faults_lose_nothing_that_reached_the_file(tmp_path, trades):
    faults = {30: lambda w: w.tear(), 60: lambda w: w.replace(), 90: lambda w: w.stall(120),
              150: lambda w: w.jump(300), 170: lambda w: w.tear(), 171: lambda w: w.replace()}
    w, events, got = run(tmp_path, trades, faults, restart_every=37)
    assert w.dropped > 0 and w.written + w.dropped == len(trades)
    assert got == expected(w)
    kinds = [k for k, _ in events]
    assert "replaced" in kinds and "roll" in kinds
    src = w.source_ticks()
    gaps = np.diff(src["ts_ns"].to_numpy())
    assert gaps.max() >= 120 * NS  # the stall's hole (and the jump's) are in the source


def test_a_torn_record_is_on_disk_between_flushes(tmp_path, trades):
    clk = FakeClock()
    w = SierraScidWriter(tmp_path, trades, speed=600.0, clock=clk)
    w.open()
    clk.t += 0.05
    w.step()
    w.tear()
    clk.t += 0.05
    w.step()
    size = w.path.stat().st_size
    assert (size - SCID_HEADER_SIZE) % SCID_RECORD_DTYPE.itemsize != 0  # a partial record at the end
    clk.t += 0.05
    w.step()
    assert np.array_equal(read_scid_records(w.path), w.records())


def test_a_backward_jump_writes_records_out_of_order(tmp_path, trades):
    clk = FakeClock()
    w = SierraScidWriter(tmp_path, trades, speed=600.0, clock=clk)
    w.open()
    for _ in range(20):
        clk.t += 0.01
        w.step()
    w.jump(-30)
    w.finish()
    t = w.records()["datetime"]
    assert (np.diff(t) < 0).sum() == 1
    assert len(w.on_disk()) == len(trades)


def test_the_feed_yields_records_that_go_back_in_time_and_says_so(tmp_path, trades):
    clk = FakeClock()
    w = SierraScidWriter(tmp_path, trades, speed=600.0, clock=clk)
    w.open()
    feed = ScidFeed(w.path, poll_interval=0.05, clock=clk, sleep=clk.sleep)
    got: list = []
    for step in range(1, 400):
        clk.t += 0.01
        if step in (50, 120):
            w.jump(-30)
        w.step()
        drain(feed, got)
    w.finish()
    for _ in range(20):
        clk.t += 0.2
        drain(feed, got)
    assert got == expected(w)
    assert [k for k, _ in feed.events].count("out_of_order") == 2
