"""The collector's full soak (``make soak``): 48 simulated hours of synthetic ES trades written into .scid files as
Sierra Chart writes them (paced flushes, a contract roll in the middle), tailed by ``navale collect --feed scid:PATH``
as a real subprocess, with 50 faults injected at seeded random points (SIGKILL + restart, a torn segment tail, source
stalls, torn .scid records, the .scid replaced, source clock jumps, ROOT's disk full on a tmpfs when run as root).
The collected ticks must equal the source exactly and every fault be visible in the journal (tests/collect_soak.py).
Prints simulated hours, faults by kind, records, lost, duplicated and the wall time; exits 1 on any problem.

Run: PYTHONPATH=. .venv/bin/python benchmarks/soak_collect.py [--hours 48] [--faults 50] [--speed 500] [--seed S]
     [--collector stand-in] (the harness's own small stand-in collector, to tell a harness fault from a collector's)
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from collect_soak import STAND_IN, SoakConfig, run_soak  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--hours", type=float, default=48.0, help="simulated hours (default 48)")
    ap.add_argument("--faults", type=int, default=50)
    ap.add_argument("--speed", type=float, default=500.0, help="simulated seconds per wall second (default 500)")
    ap.add_argument("--seed", type=int, default=int(time.time()) % 100_000)
    ap.add_argument("--start-hour", type=float, default=0.0,
                    help="hours after the first session's open (17:00 CT) where the run starts (default 0)")
    ap.add_argument("--collector", choices=("navale", "stand-in"), default="navale")
    ap.add_argument("--trade", action="store_true", help="run the data_collection paper trader too (default: --no-trade)")
    ap.add_argument("--keep", metavar="DIR", help="run in DIR and keep it (default: a temp folder, removed)")
    ap.add_argument("--quiet", action="store_true", help="no line per fault")
    args = ap.parse_args()
    cfg = SoakConfig(hours=args.hours, faults=args.faults, speed=args.speed, seed=args.seed, start_hour=args.start_hour,
                     collector=STAND_IN if args.collector == "stand-in" else None,
                     collector_args=() if args.trade else ("--no-trade",), log=not args.quiet,
                     catch_up_seconds=max(90.0, args.hours * 3600 / args.speed / 4), keep_root=bool(args.keep))
    print(f"soak: {args.hours:g} simulated hours at {args.speed:g}x (~{args.hours * 3600 / args.speed:.0f} s of writing), "
          f"{args.faults} faults, seed {args.seed}, collector {args.collector}", flush=True)
    if args.keep:
        res = run_soak(cfg, Path(args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="soak-collect-") as d:
            res = run_soak(cfg, Path(d))
    print(res.summary())
    return 1 if res.problems else 0


if __name__ == "__main__":
    sys.exit(main())
