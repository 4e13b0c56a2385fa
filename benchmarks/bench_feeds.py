"""Feed and bar-builder timings on the embedded synthetic data set (figures printed, not asserted).

(a) `BarBuilder.add` latency per trade (p50/p99/max, µs, `time.perf_counter_ns`) for 5min and volume:500 bars;
(b) records/s yielded by `SyntheticFeed(speed=None)`, `ReplayFeed` of the default `.scid` and `ScidFeed`
    tailing the same file (from its start).

Run: .venv/bin/python benchmarks/bench_feeds.py
"""

from __future__ import annotations

import time

import numpy as np

from live.bars import BarBuilder
from live.feeds.replay import ReplayFeed
from live.feeds.scid import ScidFeed
from live.feeds.synthetic import SyntheticFeed
from research.data import default_dataset


def builder_latency(ticks: list, spec: str) -> str:
    b = BarBuilder(spec)
    lat = np.empty(len(ticks), np.int64)
    clock = time.perf_counter_ns
    for i, t in enumerate(ticks):
        t0 = clock()
        b.add(t)
        lat[i] = clock() - t0
    p50, p99 = np.percentile(lat, [50, 99]) / 1e3
    return f"BarBuilder.add {spec:>10}: p50 {p50:.2f} µs  p99 {p99:.2f} µs  max {lat.max() / 1e3:.0f} µs  ({len(ticks):,} trades)"


def throughput(name: str, feed) -> str:
    t0 = time.perf_counter()
    n = 0
    while feed.next_record() is not None:
        n += 1
    return f"{name:>28}: {n / (time.perf_counter() - t0):,.0f} records/s ({n:,} records)"


def main() -> None:
    path = default_dataset()
    feed = SyntheticFeed(speed=None)
    ticks = list(feed)
    for spec in ("5min", "volume:500"):
        print(builder_latency(ticks, spec))
    print(throughput("SyntheticFeed(speed=None)", SyntheticFeed(speed=None)))
    print(throughput("ReplayFeed(.scid)", ReplayFeed(path)))
    print(throughput("ScidFeed(.scid, from start)", ScidFeed(path, poll_interval=1e-4)))


if __name__ == "__main__":
    main()
