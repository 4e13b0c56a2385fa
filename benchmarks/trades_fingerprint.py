"""Fingerprint of the 2015-2022 backtest trades: one sha256 over the trades table.

A refactoring that must not change behaviour prints the same fingerprint before and after. It
backtests the 32 ES contracts stitched (as ``navale backtest ../shared/data/es-5m/*.gz``) in each
mode's preset and hashes every column of ``BacktestResult.trades`` except the run id, plus the
per-bar equity. Without the real data it uses the embedded synthetic data set (and says so).

Run: .venv/bin/python benchmarks/trades_fingerprint.py [DATA...]
"""

from __future__ import annotations

import hashlib
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAVALE_SHARED_DATA") or ROOT.parent / "shared" / "data")


def fingerprint(frame: pd.DataFrame) -> str:
    """sha256 over the frame's columns (names, dtypes, values in order) and its index."""
    h = hashlib.sha256()
    h.update(pd.util.hash_pandas_object(frame.index.to_frame(index=False), index=False).to_numpy().tobytes())
    for col in frame.columns:
        h.update(f"{col}:{frame[col].dtype}".encode())
        h.update(pd.util.hash_pandas_object(frame[col], index=False).to_numpy().tobytes())
    return h.hexdigest()[:16]


def main(argv: list[str]) -> int:
    from research.backtest import run
    from research.pipeline import load_series
    from strategy import Params

    paths = argv or sorted(str(p) for p in (SHARED / "es-5m").glob("*.gz"))
    if not paths:
        print("no real data found: fingerprinting the embedded synthetic data set")
    t0 = time.perf_counter()
    series = load_series(paths or None)
    print(f"{len(paths) or 'synthetic'} file(s), {sum(len(s.frame) for s in series):,} bars, "
          f"loaded in {time.perf_counter() - t0:.1f} s")
    for mode in ("backtest", "data_collection", "paper", "live"):
        for s in series:
            res = run(s.frame, Params.for_mode(mode))
            trades = res.trades.drop(columns=[c for c in ("run_id",) if c in res.trades.columns])
            eq = res.equity if isinstance(res.equity, pd.Series) else pd.Series(np.asarray(res.equity))
            print(f"{mode:16s} {s.name:12s} trades {len(trades):6,d}  net {trades['pnl_usd'].sum():12,.2f}  "
                  f"trades {fingerprint(trades)}  equity {fingerprint(eq.to_frame('equity'))}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
