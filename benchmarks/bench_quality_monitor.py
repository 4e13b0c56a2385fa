"""Quality monitor cost per record (figures printed, not asserted): `QualityMonitor.on_tick` on one synthetic
trading date's trades, `on_bar` on its 1-minute bars, and `research.data.check` on the same bars for scale.

Run: .venv/bin/python benchmarks/bench_quality_monitor.py
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd

from live.collect.quality import QualityMonitor
from research.data.quality import check
from research.data.synthetic import SyntheticSpec, generate_trades


def main() -> None:
    trades = generate_trades(SyntheticSpec(days=1))
    ts = trades.index.as_unit("ns").asi8
    px = trades["price"].to_numpy(np.float64)
    size = trades["size"].to_numpy(np.int64)
    side = trades["side"].to_numpy(np.int64)
    mon = QualityMonitor("ES", 0.25, 60)
    t_list, p_list, s_list, d_list = ts.tolist(), px.tolist(), size.tolist(), side.tolist()
    t0 = time.perf_counter()
    found = 0
    for a, b, c, d in zip(t_list, p_list, s_list, d_list):
        if mon.on_tick(a, b, c, d) is not None:
            found += 1
    dt = time.perf_counter() - t0
    print(f"on_tick: {len(t_list):,} ticks in {dt:.2f} s = {dt / len(t_list) * 1e6:.2f} µs/tick, {found} finding(s)")
    idx = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC").floor("1min")
    g = pd.DataFrame({"p": px, "v": size}, index=idx).groupby(level=0)
    bars = pd.DataFrame({"open": g["p"].first(), "high": g["p"].max(), "low": g["p"].min(), "close": g["p"].last(),
                         "volume": g["v"].sum()})
    bars["bid_volume"] = bars["volume"] // 2
    bars["ask_volume"] = bars["volume"] - bars["bid_volume"]
    bars["num_trades"] = g["p"].size()
    rows = list(zip(bars.index.asi8.tolist(), *(bars[c].tolist() for c in bars.columns)))
    mon = QualityMonitor("ES", 0.25, 60)
    t0 = time.perf_counter()
    for r in rows:
        mon.on_bar(*r)
    dt = time.perf_counter() - t0
    t1 = time.perf_counter()
    rep = check(bars, tick_size=0.25, bar_seconds=60)
    dc = time.perf_counter() - t1
    print(f"on_bar: {len(rows):,} bars in {dt * 1e3:.1f} ms = {dt / len(rows) * 1e6:.2f} µs/bar; "
          f"check on the same bars {dc * 1e3:.1f} ms; findings {mon.counts}, check's "
          f"{rep.issues['check'].value_counts().to_dict()}")


if __name__ == "__main__":
    main()
