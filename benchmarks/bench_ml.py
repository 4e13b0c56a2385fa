"""ML pipeline timings (figures, not assertions), measured once each on this machine:

- data set: 32 ES contracts 2015-2022 backtested (stitched), snapshots -> features and labels, with the bars
  reloaded from the run manifest and the as-of causality check on every feature;
- training the logistic regression on 2015-2020;
- one-trade prediction latency (what the live filter pays per signal), median and 99th percentile;
- the full validation (model selection, purged CV, permutation test, learning curve, importance, economic test).

Skipped with a reason when ../shared/data (or $NAVALE_SHARED_DATA) is absent.
Run: .venv/bin/python benchmarks/bench_ml.py [--permutations N]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAVALE_SHARED_DATA") or ROOT.parent / "shared" / "data")
ES5M = SHARED / "es-5m"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--permutations", type=int, default=200)
    args = ap.parse_args()
    files = sorted(ES5M.glob("ES*.txt.gz")) if ES5M.exists() else []
    if len(files) != 32:
        print(f"skipped: the 32 ES 5-minute contracts are not in {ES5M} (a user's clone has no ../shared/data)")
        return 0
    os.environ["NAVALE_DATA_DIR"] = tempfile.mkdtemp(prefix="navale-bench-ml-")
    sys.path.insert(0, str(ROOT))
    from research.ml import MLDataProcessor
    from research.ml.model import SimpleLinearModel
    from research.ml.validate import ModelValidator, ValidationConfig
    from research.pipeline import backtest_series, load_params, load_series

    rows = []
    t = time.perf_counter()
    s = load_series(files)[0]
    sb = backtest_series(s, load_params(), label="continuous", store=True)
    rows.append(("backtest 32 contracts (stored)", time.perf_counter() - t, f"{len(sb.result.trades):,} trades"))

    t = time.perf_counter()
    ds = MLDataProcessor().from_store(sb.run_id)
    rows.append(("data set from the store", time.perf_counter() - t,
                 f"{len(ds):,} rows x {len(ds.features)} features, bars reloaded, causality checked"))
    t = time.perf_counter()
    MLDataProcessor(check_causality=False).from_store(sb.run_id)
    rows.append(("  same without the causality check", time.perf_counter() - t, ""))

    train, oos = ds.split_oos()
    t = time.perf_counter()
    model = SimpleLinearModel().train(train)
    rows.append(("train (2015-2020), first call", time.perf_counter() - t, f"{len(train):,} trades, imports included"))
    t = time.perf_counter()
    model = SimpleLinearModel().train(train)
    rows.append(("train (2015-2020), warm", time.perf_counter() - t, ""))

    one = oos.X.iloc[0].to_dict()
    lat = []
    for _ in range(1000):
        t = time.perf_counter_ns()
        model.predict_signal_quality(one)
        lat.append(time.perf_counter_ns() - t)
    lat = np.array(lat) / 1e3
    rows.append(("predict one trade (dict)", np.median(lat) / 1e6,
                 f"median {np.median(lat):.0f} us, p99 {np.percentile(lat, 99):.0f} us over 1000 calls"))

    t = time.perf_counter()
    rep = ModelValidator(ValidationConfig(n_permutations=args.permutations, n_jobs=2)).run(ds)
    rows.append((f"validation ({args.permutations} permutations, 2 jobs)", time.perf_counter() - t,
                 f"CV AUC {rep.cv_summary.loc['auc', 'mean']:.3f}, OOS AUC {rep.oos_metrics['auc']:.3f}"))

    print(f"{'ML pipeline':<44} {'s':>8}  notes")
    for label, sec, note in rows:
        print(f"{label:<44} {sec:>8.3f}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
