"""Tick-mode paper trading against the backtest on the same bars: which trades fill differently, and why.

The live loop builds bars from the trades (`live.bars.BarBuilder`, the same bars `load_bars` gives), so
the signals and the decisions at each bar close are the backtest's; only the fills differ: a market
order fills at the next trade (not the next bar's open) and a stop or target triggers on the trades in
their real order (not "stop first" on a bar holding both). Every trade whose fill differs is listed
with the reason. Runs on the synthetic data set and the real tick files of ../shared/data/ticks
(skipped when absent)::

    python benchmarks/paper_tick_mode.py [--mode data_collection]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from live.session import open_session  # noqa: E402
from research.backtest import run  # noqa: E402
from research.data import default_dataset, load_bars  # noqa: E402
from strategy import Params  # noqa: E402

SHARED = Path(os.environ.get("NAVALE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def paper(feed: str, params: Params, broker: str) -> pd.DataFrame:
    with tempfile.TemporaryDirectory() as d:
        tr = open_session(params, feed=feed, state_dir=d, broker_mode=broker, speed=None, unvalidated=True)
        res = tr.run()
        tr.journal.close()
        return res.trades


def reason(row: pd.Series) -> str:
    why = []
    if row.entry_price_bar != row.entry_price_tick:
        why.append(f"entry {row.entry_price_bar:.2f} -> {row.entry_price_tick:.2f} (next trade, not the bar's open)")
    if row.exit_reason_bar != row.exit_reason_tick:
        why.append(f"exit {row.exit_reason_bar} -> {row.exit_reason_tick} (trade order inside the bar)")
    elif row.exit_price_bar != row.exit_price_tick:
        kind = {"stop": "the stop sits at its offset from the entry fill; filled at the crossing trade",
                "target": "the target sits at its offset from the entry fill", "golden_rule": "next trade",
                "opposite": "next trade", "time": "next trade after the close", "session_end": "next trade after the close"}
        why.append(f"exit {row.exit_price_bar:.2f} -> {row.exit_price_tick:.2f} ({kind.get(row.exit_reason_tick, '')})")
    return "; ".join(why)


def compare(name: str, feed: str, bars: pd.DataFrame, params: Params) -> tuple[int, int]:
    bt = run(bars, params).trades
    bar = paper(feed, params, "bar")
    tick = paper(feed, params, "tick")
    cols = ["side", "signal_ts", "entry_ts", "exit_ts", "entry_price", "exit_price", "exit_reason", "pnl_usd"]
    same_bar = len(bar) == len(bt) and bar[cols].reset_index(drop=True).equals(bt[cols].reset_index(drop=True))
    m = bt[cols].merge(tick[cols], on=["signal_ts", "side"], how="outer", suffixes=("_bar", "_tick"), indicator=True)
    decided_same = int((m._merge == "both").sum())
    print(f"\n{name}: backtest {len(bt)} trades; paper bar mode {len(bar)} ({'identical' if same_bar else 'DIFFERENT'}); "
          f"paper tick mode {len(tick)}; same decisions (signal bar and side) {decided_same}")
    diff = m[(m._merge == "both") & ((m.entry_price_bar != m.entry_price_tick) | (m.exit_price_bar != m.exit_price_tick)
                                     | (m.exit_reason_bar != m.exit_reason_tick))]
    for _, r in diff.iterrows():
        print(f"  {r.signal_ts:%Y-%m-%d %H:%M} {'long ' if r.side > 0 else 'short'} P&L {r.pnl_usd_bar:+8.2f} -> "
              f"{r.pnl_usd_tick:+8.2f}: {reason(r)}")
    for _, r in m[m._merge != "both"].iterrows():
        where = "backtest only" if r._merge == "left_only" else "tick mode only"
        print(f"  {r.signal_ts:%Y-%m-%d %H:%M} {where}: the position was still open (or already flat) in the other "
              "mode when this signal came, after an earlier trade filled differently")
    return len(diff), decided_same


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mode", default="data_collection", choices=("paper", "data_collection"))
    args = ap.parse_args()
    params = Params.for_mode(args.mode)
    compare("synthetic (10 days)", "synthetic", load_bars(default_dataset(), bar="5min"), params)
    for f in sorted((SHARED / "ticks").glob("*")) if (SHARED / "ticks").exists() else []:
        if f.name.endswith(".md"):
            continue
        try:
            bars = load_bars(f, bar="5min")
        except Exception as exc:  # noqa: BLE001 - report and go on with the next file
            print(f"\n{f.name}: skipped ({exc})")
            continue
        try:
            compare(f.name, f"replay:{f}", bars, params.replace(session="all"))
        except ValueError as exc:  # a few hours of trades: the data cannot support the parameters
            print(f"\n{f.name}: skipped ({exc})")


if __name__ == "__main__":
    np.set_printoptions(linewidth=160)
    main()
