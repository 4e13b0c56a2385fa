"""Data-layer timings, measured in one run on this machine (figures, not assertions).

Prints: load time of all 32 ES 5-minute contracts (per-file and as one continuous series),
the DBN file, the .scid sample, the tick files, the synthetic default (generation + load),
and the numba tick->bar kernel throughput vs pandas groupby on the same ticks.
Run: make bench  (or .venv/bin/python benchmarks/bench_load.py)
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared" / "data"


def timed(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def main() -> int:
    from research.data import check, load_bars
    from research.data.aggregate import parse_bar_spec, ticks_to_bars
    from research.data.synthetic import SyntheticSpec, generate_trades

    rows = []
    # warm numba caches once so the figures are warm-path times
    generate_trades(SyntheticSpec(days=1))
    if SHARED.exists():
        files = sorted((SHARED / "es-5m").glob("ES*.txt.gz"))
        sec, frames = timed(lambda: [load_bars(p) for p in files])
        rows.append(("32 ES 5m contracts, one frame each", sec, sum(map(len, frames))))
        sec, cont = timed(lambda: load_bars(files))
        rows.append(("32 ES 5m contracts -> continuous series", sec, len(cont)))
        sec, _ = timed(lambda: [check(f) for f in frames])
        rows.append(("data check of the 32 contracts", sec, sum(map(len, frames))))
        for name, bar in (("ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst", "1min"), ("ticks/ESM23_sample.scid", "1min"), ("ticks/ES_2022-01-24_tbt.txt.gz", "1min"), ("ticks/ES_2023-06-29_open_tbt.txt.gz", "1s")):
            sec, f = timed(lambda name=name, bar=bar: load_bars(SHARED / name, bar=bar))
            rows.append((f"{name} -> {bar} bars", sec, len(f)))
    else:
        print(f"(real data not found at {SHARED}: real-data figures skipped)")

    spec = SyntheticSpec()
    sec, ticks = timed(lambda: generate_trades(spec), repeat=1)
    rows.append((f"synthetic generator, {spec.days} days", sec, len(ticks)))
    from research.data.synthetic import default_dataset

    path = default_dataset(spec)
    sec, f = timed(lambda: load_bars(path, bar="1min"))
    rows.append(("synthetic .scid -> 1min bars (load + aggregate)", sec, len(f)))

    # aggregation kernel vs pandas groupby on the same ticks
    big = pd.concat([ticks] * 3)
    big.index = pd.DatetimeIndex(np.sort(big.index.asi8 + np.repeat(np.arange(3), len(ticks)) * 10**15).view("datetime64[ns]")).tz_localize("UTC")
    n = len(big)
    spec1 = parse_bar_spec("1min")
    t_nb, _ = timed(lambda: ticks_to_bars(big, spec1))

    def pandas_ref():
        key = big.index.floor("1min")
        g = big.groupby(key)
        return pd.DataFrame({"o": g["price"].first(), "h": g["price"].max(), "l": g["price"].min(), "c": g["price"].last(), "v": g["size"].sum(), "n": g["size"].count(),
                             "b": big["size"].where(big["side"] < 0, 0).groupby(key).sum(), "a": big["size"].where(big["side"] > 0, 0).groupby(key).sum()})  # fmt: skip

    t_pd, _ = timed(pandas_ref)
    print(f"{'what':58s} {'seconds':>9s} {'rows':>10s}")
    for what, sec, n_rows in rows:
        print(f"{what:58s} {sec:9.3f} {n_rows:10,d}")
    print(f"tick->1min bars, {n:,} ticks: numba {n / t_nb / 1e6:.1f} M ticks/s, pandas groupby {n / t_pd / 1e6:.1f} M ticks/s, ratio {t_pd / t_nb:.1f}x")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
