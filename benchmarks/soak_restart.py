"""The long crash test (``make soak``): the whole synthetic set (10 trading dates as 5-minute bars, or
with ``--ticks`` its trades through the bar builder, ``--broker tick`` for the tick-mode paper broker)
replayed by trader processes killed with SIGKILL at ``--kills`` random points, each followed by a restart
on the same state dir; the end must equal an uninterrupted run (every snapshot column, trade ids too),
with no order filled twice and the book flat. Prints what it did; exits 1 on a difference.
Run: PYTHONPATH=. .venv/bin/python benchmarks/soak_restart.py [--kills 100] [--seed S] [--ticks] [--broker tick]
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from paper_runs import crash_run, fork_trader, mismatches, synthetic_slice, wait_exit  # noqa: E402

from live.brokers.paper import PaperBroker  # noqa: E402
from live.journal import Journal  # noqa: E402
from research.data import SyntheticSpec  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--kills", type=int, default=100)
    ap.add_argument("--days", type=int, default=10)
    ap.add_argument("--seed", type=int, default=int(time.time()))
    ap.add_argument("--ticks", action="store_true", help="the synthetic trades feed instead of its bars")
    ap.add_argument("--broker", choices=("bar", "tick"), default="bar")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="soak-restart-") as d:
        tmp = Path(d)
        path, bars = synthetic_slice(args.days, tmp)
        feed = f"replay:{path}"
        kw: dict = {"broker_mode": args.broker}
        if args.ticks:
            feed, kw["feed_kw"] = "synthetic", {"spec": SyntheticSpec(days=args.days)}
        t0 = time.perf_counter()
        assert wait_exit(fork_trader(feed, tmp / "whole", **kw), 3600) == 0
        t_whole = time.perf_counter() - t0
        with Journal(tmp / "whole" / "journal.sqlite", readonly=True) as j:
            whole = j.trades()
        sd = tmp / "crashed"
        t0 = time.perf_counter()
        kills, mid_run = crash_run(feed, sd, bars.index.as_unit("ns").asi8, args.kills, random.Random(args.seed),
                                   startup_kills=max(3, args.kills // 10), **kw)
        assert wait_exit(fork_trader(feed, sd, **kw), 3600) == 0
        t_crash = time.perf_counter() - t0
        with Journal(sd / "journal.sqlite", readonly=True) as j:
            got = j.trades()
            events = [e["kind"] for e in j.risk_events()]
        book = PaperBroker.from_state_dir(sd)
        ids = [o.order_id for o, _, _ in book.order_history()]
        filled = [f.order_id for f in book.fills_since(0)]
        flat = book.positions() == {} and book.open_orders() == []
        book.close()
        diff = mismatches(got, whole)
        same_ids = got["trade_id"].str.rsplit("-", n=1).str[-1].tolist() == \
            whole["trade_id"].str.rsplit("-", n=1).str[-1].tolist() and got["run_id"].nunique() == 1
        problems = diff + ([] if len(ids) == len(set(ids)) else ["an order reached the broker twice"]) \
            + ([] if len(filled) == len(set(filled)) else ["an order filled twice"]) \
            + ([] if flat else ["the book is not flat"]) + ([] if same_ids else ["trade ids differ"])
        print(f"seed {args.seed}, feed {feed}, broker {args.broker}: {len(bars):,} bars, {kills} kills ({mid_run} inside the replay, "
              f"{events.count('restart')} restarts journaled), {len(got)} trades vs {len(whole)} uninterrupted, "
              f"{len(ids)} orders, {len(filled)} fills; uninterrupted {t_whole:.1f} s, with kills {t_crash:.1f} s")
        print("OK: the same trades" if not problems else "DIFFERENT:\n  " + "\n  ".join(problems))
        return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
