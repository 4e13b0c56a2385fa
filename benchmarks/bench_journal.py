"""Journal and emergency-stop timings, measured in one run on this machine (figures, not assertions).

Prints: one bar-close batch (order, fill, position, heartbeat, 4 kB state) p50/p99/max with
synchronous=NORMAL and FULL; record_trade / record_trades (the snapshot validation); a reader's
status(); and `navale stop` against a running trader (tests/live_helpers.py `trader`): command to flat.
Run: .venv/bin/python benchmarks/bench_journal.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from live_helpers import T0, trade_row  # noqa: E402

from live.events import Bracket, Fill, Order  # noqa: E402
from live.journal import Journal, TraderStatus  # noqa: E402

N = 2000


def pct(xs: list[float], q: float) -> float:
    return sorted(xs)[min(len(xs) - 1, int(q * len(xs)))] * 1e3


def batches(sync: str, d: Path) -> None:
    j = Journal(d / f"{sync}.sqlite", sync=sync)
    ts = []
    for k in range(N):
        t = time.perf_counter()
        with j.batch():
            j.record_order(Order(f"o{k}", "ES", 1, 1, "entry", bracket=Bracket(8, 16)), T0, "submitted")
            j.record_fill(Fill(f"f{k}", f"o{k}", "ES", 1, 1, 4000.0, T0, "entry", seq=k + 1))
            j.record_position("ES", 1, T0)
            j.heartbeat(T0, TraderStatus(mode="paper", symbol="ES", bar_ts_ns=T0))
            j.save_state({"signal": b"x" * 4000, "trade": b"y" * 200}, T0)
        ts.append(time.perf_counter() - t)
    print(f"bar-close batch, synchronous={sync.upper()}: p50 {pct(ts, .5):.2f} ms, p99 {pct(ts, .99):.2f} ms, "
          f"max {max(ts) * 1e3:.2f} ms over {N}")
    j.close()


def trades(d: Path) -> None:
    j = Journal(d / "trades.sqlite")
    rows = [trade_row(i) for i in range(40)]
    t = time.perf_counter()
    for r in rows[:10]:
        j.record_trade(r)
    one = (time.perf_counter() - t) / 10
    t = time.perf_counter()
    j.record_trades(rows[10:])
    many = time.perf_counter() - t
    r = Journal(d / "trades.sqlite", readonly=True)
    t = time.perf_counter()
    for _ in range(50):
        r.status()
    st = (time.perf_counter() - t) / 50
    print(f"record_trade: {one * 1e3:.1f} ms per trade; record_trades(30): {many * 1e3:.1f} ms; status(): {st * 1e3:.2f} ms")


def stop(d: Path, runs: int = 5) -> None:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}
    secs = []
    for i in range(runs):
        sd = d / f"stop{i}"
        trader = subprocess.Popen([sys.executable, str(ROOT / "tests" / "live_helpers.py"), "trader", str(sd)],
                                  env=env, stdout=subprocess.PIPE, text=True)
        trader.stdout.readline()
        out = subprocess.run([sys.executable, "-m", "research.cli", "stop", "--state-dir", str(sd), "--json"],
                             env=env, cwd=ROOT, capture_output=True, text=True).stdout
        trader.wait(30)
        res = json.loads(out)
        secs.append(res["seconds_to_flat"])
    print(f"navale stop -> flat via the trader: median {sorted(secs)[runs // 2] * 1e3:.0f} ms, "
          f"max {max(secs) * 1e3:.0f} ms over {runs} (from the command's start; excludes interpreter start-up)")


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        batches("normal", d)
        batches("full", d)
        trades(d)
        stop(d)
