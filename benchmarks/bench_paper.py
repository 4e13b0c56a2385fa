"""Live-loop timings on this machine (figures, not assertions), through ``open_session`` with the state
persisted at every bar (journal and paper book in SQLite WAL files of a temp state dir):

- tick arrival -> order submitted: on a trade feed, the trade that closed a bar to the order sent for it
  (``RunResult.decision_ns``), over the whole synthetic feed (>= 100k trades);
- per-trade processing time (``RunResult.latency_ns``: feed record in -> loop ready for the next), with the
  bar-mode and the tick-mode paper broker;
- bar close -> order submitted, on a bar replay (the synthetic set as 5-minute bars): the bar record in to
  the order sent, and the per-bar processing time;
- wall time of one trading date (Globex evening + RTH, 46k trades) replayed at full speed, both broker modes.

A warm-up run first (numba caches, the calendar, SQLite) keeps start-up out of the figures.
Run: PYTHONPATH=. .venv/bin/python benchmarks/bench_paper.py [--days N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from paper_runs import run_session, synthetic_slice  # noqa: E402

from research.data import SyntheticSpec  # noqa: E402
from strategy import Params  # noqa: E402

CAPACITY = 2_000_000


def pct(ns: np.ndarray) -> str:
    if not len(ns):
        return "(no samples)"
    us = ns / 1e3
    return (f"p50 {np.percentile(us, 50):8.1f} us  p99 {np.percentile(us, 99):8.1f} us  "
            f"max {us.max():9.1f} us  mean {us.mean():8.1f} us  (n={len(us):,})")


def session(tmp: Path, name: str, feed: str, broker: str, **kw):
    t0 = time.perf_counter()
    trader, res = run_session(feed, tmp / name, Params.for_mode("paper"), broker_mode=broker,
                              latency_capacity=CAPACITY, **kw)
    return res, time.perf_counter() - t0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--days", type=int, default=10, help="trading dates of the synthetic feed (default 10: 600k trades)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-paper-") as d:
        tmp = Path(d)
        one_day = {"spec": SyntheticSpec(days=1)}
        session(tmp, "warmup-bar", "synthetic", "bar", feed_kw=one_day)
        session(tmp, "warmup-tick", "synthetic", "tick", feed_kw=one_day)
        print(f"live loop, synthetic feed of {args.days} trading dates, state persisted every bar\n")

        spec = {"spec": SyntheticSpec(days=args.days)}
        for broker in ("bar", "tick"):
            res, wall = session(tmp, f"ticks-{broker}", "synthetic", broker, feed_kw=spec)
            print(f"[{broker} broker] {res.records:,} trades, {res.bars:,} bars, {len(res.trades)} trades closed, "
                  f"{wall:.1f} s wall ({res.records / wall:,.0f} trades/s)")
            print(f"  tick arrival -> order submitted  {pct(res.decision_ns)}")
            print(f"  per-trade processing             {pct(res.latency_ns)}")
            bar_closing = res.latency_ns[res.latency_ns > np.percentile(res.latency_ns, 99.5)]
            print(f"  slowest 0.5% (bar closes)        {pct(bar_closing)}\n")

        path, bars = synthetic_slice(args.days, tmp)
        res, wall = session(tmp, "bars", f"replay:{path}", "bar")
        print(f"[bar replay] {res.bars:,} bars, {len(res.trades)} trades closed, {wall:.1f} s wall "
              f"({wall / max(res.bars, 1) * 1e3:.2f} ms a bar, journal + state + book committed per bar)")
        print(f"  bar close -> order submitted     {pct(res.decision_ns)}")
        print(f"  per-bar processing               {pct(res.latency_ns)}\n")

        for broker in ("bar", "tick"):
            res, wall = session(tmp, f"day-{broker}", "synthetic", broker, feed_kw=one_day)
            print(f"one trading date at full speed [{broker} broker]: {res.records:,} trades, {res.bars} bars, "
                  f"{wall:.2f} s wall (incl. session open {wall - res.latency_ns.sum() / 1e9:.2f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
