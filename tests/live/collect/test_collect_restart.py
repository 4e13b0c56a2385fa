"""Restart exactness: a real `navale collect` process killed with SIGKILL at several points, restarted; the
collected ticks equal the source's exactly (no duplicate, no hole), the bars do not change, and the paper
trader of data_collection mode resumes without a duplicate trade; its trades reach the run store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from research.data import segments as S
from research.data.synthetic import generate_trades

ROOT = Path(__file__).resolve().parents[3]


def collect(root: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "research.cli", "collect", "--feed", "synthetic", "--dir", str(root),
                             "--quiet", *extra], cwd=root.parent, env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def collected(root: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    segs = sorted((root / "segments" / "ES").glob("*.seg"))
    data = [S.read_segment(p, allow_torn=True) for p in segs]
    return (np.concatenate([d.ticks["ts_ns"] for d in data]), np.concatenate([d.ticks["seq"] for d in data]),
            np.concatenate([d.bars for d in data]))


def wait_for_records(root: Path, proc: subprocess.Popen, at_least: int, timeout: float = 60.0) -> None:
    seg = root / "segments" / "ES" / "2024-03-04.seg"
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout:
        assert proc.poll() is None, proc.stderr.read().decode()
        if seg.exists() and seg.stat().st_size > at_least:
            return
        time.sleep(0.02)
    raise AssertionError("the collector wrote nothing")


def test_kill9_restarts_collect_every_tick_once_and_the_same_bars(tmp_path):
    root = tmp_path / "collect"
    src = generate_trades()
    sizes = (20_000, 400_000, 900_000)
    for size in sizes:
        p = collect(root, "--no-trade", "--speed", "40000", "--hours", "40")
        wait_for_records(root, p, size)
        p.send_signal(signal.SIGKILL)
        p.wait()
    p = collect(root, "--no-trade", "--speed", "max", "--hours", "8")
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    ts, seq, bars = collected(root)
    assert len(ts) > 20_000
    assert seq.tolist() == list(range(1, len(seq) + 1))  # no duplicate, no hole
    assert (ts == src.index.asi8[:len(ts)]).all()  # exactly the source's trades, in order
    # the same bars as one uninterrupted run over the same trades
    fresh = tmp_path / "fresh"
    p = collect(fresh, "--no-trade", "--speed", "max", "--hours", "40")
    p.communicate(timeout=120)
    _, _, bars1 = collected(fresh)
    n = len(bars)
    assert n > 100 and (bars1[:n - 1] == bars[:n - 1]).all()
    from live.journal import Journal

    with Journal(root / "collector.sqlite", readonly=True) as j:
        kinds = [e["kind"] for e in j.risk_events()]
    assert kinds.count("restart") == len(sizes) and kinds.count("start") == 1


def test_kill9_with_the_paper_trader_no_duplicate_trade_and_trades_in_the_store(tmp_path):
    root = tmp_path / "collect"
    env = {"NAVALE_DATA_DIR": str(tmp_path / "data")}
    p = collect(root, "--speed", "max", "--hours", "20", env=env)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    p = collect(root, "--speed", "30000", "--hours", "40", env=env)
    time.sleep(3.0)  # mid-run: the trader has state saved at a bar close, the segments are ahead of it
    p.send_signal(signal.SIGKILL)
    p.wait()
    p = collect(root, "--speed", "max", "--hours", "30", env=env)
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err.decode()
    ts, seq, _ = collected(root)
    assert seq.tolist() == list(range(1, len(seq) + 1))
    from live.journal import Journal

    with Journal(root / "trader" / "journal.sqlite", readonly=True) as j:
        trades = j.trades()
    assert len(trades) >= 3 and trades["trade_id"].is_unique
    assert trades["entry_ts"].is_monotonic_increasing
    from research.store import RunStore

    with RunStore(tmp_path / "data" / "navale.duckdb", read_only=True) as rs:
        snaps = rs.snapshots()
    assert len(snaps) == len(trades)
