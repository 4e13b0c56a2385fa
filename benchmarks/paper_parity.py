"""Parity of the whole live loop with the backtest on every real ES 5-minute contract (figures, not a test).

Each contract file is replayed through ``open_session`` (replay feed -> signals -> trade rules -> bar-mode
paper broker -> journal, state persisted every ``--checkpoint-every`` bars) and its trades compared with
``research.backtest.run(load_bars(file))`` on every snapshot column but run_id/trade_id. Prints one line
per contract (trades, mismatches, wall time) and the totals. Takes minutes.
Run: PYTHONPATH=. .venv/bin/python benchmarks/paper_parity.py [--data DIR] [--checkpoint-every N] [--mode M]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from paper_runs import mismatches, run_session  # noqa: E402

from research.backtest import run as backtest  # noqa: E402
from research.data import load_bars  # noqa: E402
from strategy import Params  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=os.environ.get("NAVALE_SHARED_DATA", str(ROOT.parent / "shared" / "data")))
    ap.add_argument("--checkpoint-every", type=int, default=50)
    ap.add_argument("--mode", default="paper", choices=("paper", "data_collection"))
    ap.add_argument("--start-at", default="", metavar="CONTRACT", help="skip the contracts sorted before this one")
    args = ap.parse_args()
    files = [f for f in sorted((Path(args.data) / "es-5m").glob("ES*.txt.gz")) if f.name >= args.start_at]
    if not files:
        print(f"no ES 5-minute files in {Path(args.data) / 'es-5m'}")
        return 1
    params = Params.for_mode(args.mode)
    total = bad = contracts_bad = 0
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="paper-parity-") as tmp:
        for f in files:
            t0 = time.perf_counter()
            want = backtest(load_bars(f), params).trades
            _, res = run_session(f"replay:{f}", Path(tmp) / f.name, params, checkpoint_every=args.checkpoint_every)
            diff = mismatches(res.trades, want)
            total += len(want)
            bad += len(diff)
            contracts_bad += bool(diff)
            name = f.name.split("-")[0]
            print(f"{name}: {res.bars:6,} bars  {len(want):4} backtest trades  {len(res.trades):4} paper trades  "
                  f"{len(diff)} mismatches  {time.perf_counter() - t0:6.1f} s", flush=True)
            for line in diff[:5]:
                print(f"    {line}")
    print(f"\n{len(files)} contracts, {total:,} trades compared, {bad} mismatches "
          f"({contracts_bad} contracts differ), mode {args.mode}, checkpoint every {args.checkpoint_every} bars, "
          f"{time.perf_counter() - t_all:.0f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
