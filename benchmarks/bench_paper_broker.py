"""Paper broker timings on this machine (figures, not assertions): the cost of each call with the book in a
SQLite file (WAL) and in memory.

Prints p50/p99/max of: ``on_tick`` on a trade that fills nothing, ``on_tick`` that fills a market
order (one transaction), ``submit`` of an entry, ``on_bar`` (one transaction per bar), ``flatten``.
Run: .venv/bin/python benchmarks/bench_paper_broker.py
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live.brokers.paper import PaperBroker  # noqa: E402
from live.events import Bar, Bracket, Order, Tick  # noqa: E402

T0 = 1_700_000_000_000_000_000


def pct(xs: list[float]) -> str:
    a = np.asarray(xs) * 1e6
    return f"p50 {np.percentile(a, 50):7.1f} us  p99 {np.percentile(a, 99):7.1f} us  max {a.max():8.1f} us  (n={len(a)})"


def bench(book: Path | None) -> None:
    clock = time.perf_counter
    b = PaperBroker("ES", mode="tick", book_path=book)
    idle, active, sub = [], [], []
    ts = T0
    for k in range(100_000):
        ts += 1_000_000
        tick = Tick(ts, 4000.0 + 0.25 * (k % 8), 1, 1)
        if k % 1000 == 500 and not b.positions():
            t = clock()
            b.submit(Order(f"e{k}", "ES", 1, 1, "entry", bracket=Bracket(400, 400)))
            sub.append(clock() - t)
            t = clock()
            b.on_tick(tick)
            active.append(clock() - t)
            b.flatten()
            continue
        t = clock()
        b.on_tick(tick)
        idle.append(clock() - t)
    b.close()
    print(f"  on_tick, nothing to fill : {pct(idle)}")
    print(f"  on_tick that fills       : {pct(active)}")
    print(f"  submit (entry + bracket) : {pct(sub)}")
    path = None if book is None else book.with_name("bar.sqlite")
    b = PaperBroker("ES", mode="bar", book_path=path)
    bars, flats = [], []
    for k in range(5_000):
        o = 4000.0 + 0.25 * (k % 17)
        t = clock()
        b.on_bar(Bar(T0 + k * 300_000_000_000, o, o + 2, o - 2, o + 0.5, 10))
        bars.append(clock() - t)
        if k % 10 == 0:
            b.submit(Order(f"e{k}", "ES", 1, 1, "entry", bracket=Bracket(40, 40)))
        elif k % 10 == 5:
            t = clock()
            b.flatten()
            flats.append(clock() - t)
    b.close()
    print(f"  on_bar                   : {pct(bars)}")
    print(f"  flatten                  : {pct(flats)}")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as d:
        print("paper broker, book in a SQLite file (WAL, synchronous=NORMAL):")
        bench(Path(d) / "paper_broker.sqlite")
    print("paper broker, book in memory:")
    bench(None)
