"""bench_collect: records/s through `navale collect` (record only / with the data_collection trader) on the
synthetic feed at max speed, and bytes per tick in the segments. Prints figures (no assertion).

    PYTHONPATH=. python benchmarks/bench_collect.py [--hours 72]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path


def run(root: Path, hours: float, trade: bool) -> dict:
    cmd = [sys.executable, "-m", "research.cli", "collect", "--feed", "synthetic", "--speed", "max", "--hours",
           str(hours), "--dir", str(root), "--json", "--quiet"] + ([] if trade else ["--no-trade"])
    t0 = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "NAVALE_DATA_DIR": str(root.parent / "data")})
    wall = time.perf_counter() - t0
    doc = json.loads(out.stdout)
    ticks = sum(s["ticks"] for s in doc["symbols"])
    seg = sum(p.stat().st_size for p in root.glob("segments/*/*.seg"))
    return {"ticks": ticks, "wall_s": wall, "collect_s": doc["wall_s"], "records_per_s": ticks / doc["wall_s"],
            "segment_bytes_per_tick": seg / max(ticks, 1), "trades": doc["trades"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, default=72.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for trade in (False, True):
            r = run(Path(d) / ("trade" if trade else "record"), a.hours, trade)
            print(f"{'with trade ' if trade else 'record only'}: {r['ticks']:,} ticks in {r['collect_s']:.1f} s "
                  f"({r['records_per_s']:,.0f} records/s; process {r['wall_s']:.1f} s), "
                  f"{r['segment_bytes_per_tick']:.1f} segment bytes/tick, {r['trades']} trades")


if __name__ == "__main__":
    main()
