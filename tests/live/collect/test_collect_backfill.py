"""A re-downloaded `.scid` with backfilled trades, replaced under a running `navale collect`: the collector
journals a ``feed_backfill`` warning with the counts (and writes it to the segment), keeps every tick it had once,
and takes none of the backfilled ones into the live stream."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from live.journal import Journal
from research.data import segments as S
from research.data.scid import ticks_to_scid_records, write_scid
from research.data.synthetic import SyntheticSpec, generate_trades

ROOT = Path(__file__).resolve().parents[3]


def _ticks(root: Path) -> np.ndarray:
    segs = sorted((root / "segments").glob("*/*.seg"))
    return np.concatenate([S.read_segment(p, allow_torn=True).ticks["seq"] for p in segs]) if segs else np.array([])


def _events(root: Path) -> list[dict]:
    db = root / "collector.sqlite"
    if not db.exists():
        return []
    with Journal(db, readonly=True) as j:
        return j.risk_events()


def _wait(cond, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, proc.stderr.read().decode()
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def test_collect_journals_a_backfill_of_a_replaced_scid(tmp_path):
    t = generate_trades(SyntheticSpec(days=1)).iloc[:3000]
    full = ticks_to_scid_records(t.index.as_unit("ns").asi8, t["price"].to_numpy(), t["size"].to_numpy(),
                                 t["side"].to_numpy(), t["bid"].to_numpy(), t["ask"].to_numpy())
    src = write_scid(tmp_path / "ESM24-CME.scid", np.concatenate([full[:1000], full[1050:]]))
    root = tmp_path / "collect"
    p = subprocess.Popen([sys.executable, "-m", "research.cli", "collect", "--feed", f"scid:{src}", "--no-trade",
                          "--dir", str(root), "--quiet"], cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)},
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        _wait(lambda: len(_ticks(root)) == 2950, p, "2,950 ticks")
        tmp = write_scid(tmp_path / "download.scid", full)
        os.replace(tmp, src)
        _wait(lambda: any(e["kind"] == "feed_backfill" for e in _events(root)), p, "a feed_backfill event")
    finally:
        p.send_signal(signal.SIGKILL)
        p.wait()
    ev = next(e for e in _events(root) if e["kind"] == "feed_backfill")
    assert ev["level"] == "warning"
    assert "3,000 records" in ev["detail"] and "2,950" in ev["detail"] and "50 more" in ev["detail"]
    seq = _ticks(root)
    assert seq.tolist() == list(range(1, 2951))  # nothing yielded twice, no backfilled tick in the live stream
    segs = sorted((root / "segments").glob("*/*.seg"))
    kinds = [e["kind"] for p_ in segs for e in S.read_segment(p_, allow_torn=True).events]
    assert "feed_backfill" in kinds
