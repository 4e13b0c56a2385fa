"""Deep value-level fuzz of the real data files: counts of refused, equal, missing and silently changed.

    NAVALE_SHARED_DATA=../shared/data PYTHONPATH=$PWD python benchmarks/fuzz_values.py [CASES] [SEED]

Each case mutates one value-level thing in a slice of a real file (see ``tests/fuzz_values.py``) and
classifies what ``load_bars`` made of it. Prints the counts the issue's closing note gives: cases,
clean errors, frames equal to the original, whole bars missing (and whether the check flags the gap),
silent value changes by kind (the fields changed and the check that flags them, or ``unflagged``),
and bugs (crashes, impossible rows loaded, unflagged gaps), which must be zero. Exit code 1 on a bug.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from fuzz_values import real_sources, run_cases, summarize  # noqa: E402
from rich.progress import (  # noqa: E402
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)


def main() -> int:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 20_000
    seed = int(sys.argv[2]) if len(sys.argv) > 2 else 12
    shared = Path(os.environ.get("NAVALE_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not (shared / "es-5m").exists():
        print(f"real data not found in {shared}: set NAVALE_SHARED_DATA")
        return 2
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d, Progress(TextColumn("fuzz"), BarColumn(), MofNCompleteColumn(),
                                                      TimeRemainingColumn()) as bar:
        task = bar.add_task("fuzz", total=n)
        cases = run_cases(real_sources(shared), Path(d), n, seed=seed, progress=lambda _k: bar.advance(task))
    s = summarize(cases)
    print(f"{n:,} cases in {time.perf_counter() - t0:.0f}s (seed {seed})")
    for name, counts in s.items():
        print(f"\n{name}: {sum(counts.values()):,}")
        for k, v in counts.most_common():
            print(f"  {v:>7,}  {k}")
    for c in cases:
        if c.outcome == "bug":
            print("BUG", c)
    return 1 if s["outcome"]["bug"] else 0


if __name__ == "__main__":
    sys.exit(main())
