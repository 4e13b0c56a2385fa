"""Wall time of ``navale report performance`` (figures, not assertions), measured once each:

(a) one contract: ESH20 (5-minute bars, ~17k bars);
(b) all 32 ES contracts 2015-2022 stitched into one continuous series (~155k 5-minute bars).

Each run is a subprocess of the installed ``navale`` command with a temporary ``NAVALE_DATA_DIR``
(the run store is written there, as a user's run would be) and a temporary ``--out``, so the
time includes everything a user waits for: Python start, loading, signals, backtest, storing the
run, the kernel start, every report cell, and the HTML export. The numba cache is whatever this
checkout has (warm after the first run of any command). Skipped with a reason when
../shared/data (or $NAVALE_SHARED_DATA) is absent.

Run: .venv/bin/python benchmarks/bench_report.py
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAVALE_SHARED_DATA") or ROOT.parent / "shared" / "data")
ES5M = SHARED / "es-5m"


def navale() -> list[str]:
    exe = Path(sys.executable).with_name("navale")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from research.cli import main; sys.exit(main())"]


def measure(label: str, files: list[Path]) -> tuple[str, float | None, str]:
    with tempfile.TemporaryDirectory(prefix="navale-bench-report-") as tmp:
        env = {**os.environ, "NAVALE_DATA_DIR": str(Path(tmp) / "data")}
        cmd = [*navale(), "report", "performance", *map(str, files), "--out", str(Path(tmp) / "reports"), "--no-progress"]
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
        wall = time.perf_counter() - t
        if proc.returncode != 0:
            tail = (proc.stdout + proc.stderr).strip().splitlines()[-6:]
            return label, None, "FAILED (exit %d): %s" % (proc.returncode, " | ".join(tail))
        html = sorted((Path(tmp) / "reports" / "performance").glob("*/performance_report.html"))
        size = f"{html[0].stat().st_size / 1e6:.1f} MB HTML" if html else "no HTML?"
        return label, wall, size


def main() -> int:
    contracts = sorted(ES5M.glob("ES*.txt.gz")) if ES5M.exists() else []
    esh20 = [p for p in contracts if p.name.startswith("ESH20")]
    if not esh20 or len(contracts) != 32:
        print(f"skipped: the 32 ES 5-minute contracts are not in {ES5M} (a user's clone has no ../shared/data)")
        return 0
    rows = [measure("ESH20 (one contract)", esh20), measure("32 contracts, continuous", contracts)]
    print(f"{'navale report performance':<28} {'wall s':>8}  notes")
    for label, wall, note in rows:
        print(f"{label:<28} {('-' if wall is None else f'{wall:.1f}'):>8}  {note}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
