"""StoreSync (live/store_sync.py): paper trades in the DuckDB run store, read back as a backtest's are,
and a store held by another process never blocks the trader."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from live.store_sync import StoreSync
from research.performance import PerformanceTracker
from research.store import RunStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def paper_trades(data_dir):
    """The trades of a real backtest on the embedded synthetic data set, relabelled as a paper session."""
    from research.backtest import run
    from research.pipeline import load_params, load_series

    params = load_params()
    series = load_series([])[0]
    res = run(series.frame, params, run_id="paper-session-1")
    trades = res.trades.copy()
    trades["mode"] = "paper"
    assert len(trades) >= 10
    manifest = {"mode": "paper", "session": params.session, "unvalidated": True, "params": params.to_dict(),
                "params_hash": params.hash(), "created_at": "2024-03-15T21:00:00+00:00"}
    return trades, manifest, res


def test_pushed_trades_read_back_as_the_backtest_trades(tmp_path, paper_trades):
    trades, manifest, res = paper_trades
    store = tmp_path / "navale.duckdb"
    sync = StoreSync(store, "paper-session-1", manifest)
    rows = trades.to_dict("records")
    for i in range(0, len(rows), 7):  # as the trader would: a few closed trades at a time
        assert sync.push(rows[i:i + 7]) == len(rows[i:i + 7])
    sync.push(rows[:1])  # the same trade again replaces its copy
    assert sync.close(30) and sync.stored == len(rows) and sync.last_error is None
    tracker = PerformanceTracker.from_store("paper-session-1", store)
    expected = res.snapshots().assign(mode="paper")
    pd.testing.assert_frame_equal(tracker.trades[expected.columns].reset_index(drop=True),
                                  expected.reset_index(drop=True), check_dtype=False)
    with RunStore(store, read_only=True) as st:
        stored = st.snapshots("paper-session-1")
        m = st.manifest("paper-session-1")
        runs = st.runs()
    pd.testing.assert_frame_equal(stored.reset_index(drop=True), expected.reset_index(drop=True))
    assert m["mode"] == "paper" and m["unvalidated"] is True and runs["n_trades"].tolist() == [len(rows)]


def test_a_bad_row_is_refused_on_push(tmp_path, paper_trades):
    trades, manifest, _ = paper_trades
    with StoreSync(tmp_path / "s.duckdb", "r1", manifest) as sync:
        bad = trades.iloc[:2].assign(side=[1, 3])
        with pytest.raises(ValueError, match="side"):
            sync.push(bad)
        assert not sync.pending


class HeldStore:
    """Another process holding the run store read-write (a plain DuckDB connection) until :meth:`release`."""

    def __init__(self, store: Path, tmp: Path) -> None:
        RunStore(store).close()
        self.held, self.go = tmp / "held", tmp / "release"
        self.proc = subprocess.Popen(
            [sys.executable, "-c",
             "import sys, time, duckdb; from pathlib import Path\n"
             "con = duckdb.connect(sys.argv[1])\n"
             "Path(sys.argv[2]).write_text('held')\n"
             "while not Path(sys.argv[3]).exists(): time.sleep(0.02)\n",
             str(store), str(self.held), str(self.go)],
            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
        while not self.held.exists():
            assert self.proc.poll() is None, "the holder process died"
            time.sleep(0.02)

    def holding(self) -> bool:
        return self.proc.poll() is None and not self.go.exists()

    def release(self) -> None:
        self.go.write_text("go")
        self.proc.wait(30)


def test_a_held_store_does_not_block_push(tmp_path, paper_trades):
    trades, manifest, _ = paper_trades
    store = tmp_path / "navale.duckdb"
    holder = HeldStore(store, tmp_path)
    try:
        sync = StoreSync(store, "paper-held", manifest, retry_s=0.1, lock_wait_s=0.05)
        assert sync.push(trades.iloc[:5]) == 5  # returns while the other process holds the store
        assert holder.holding()
        for _ in range(100):  # the thread tries, meets the lock, keeps the trades for later
            if sync.last_error:
                break
            time.sleep(0.05)
        assert sync.pending and "in use by another process" in sync.last_error
        sync.push(trades.iloc[5:8])
        assert holder.holding()
    finally:
        holder.release()
    assert sync.close(30) and sync.stored == 8  # retried once the store was free
    with RunStore(store, read_only=True) as st:
        assert len(st.snapshots("paper-held")) == 8


def test_a_store_that_cannot_be_written_leaves_a_pending_bundle(tmp_path, paper_trades):
    trades, manifest, _ = paper_trades
    store = tmp_path / "navale.duckdb"
    store.write_bytes(b"not a duckdb file" * 100)
    sync = StoreSync(store, "paper-pending", manifest, retry_s=0.05, lock_wait_s=0.05)
    sync.push(trades.iloc[:3])
    assert not sync.close(0.3)  # every write failed: the trades are kept, then saved as a bundle
    bundle = store.parent / "pending" / "paper-pending.pending.parquet"
    assert bundle.exists() and str(bundle) in sync.last_error and "cannot open store" in sync.last_error
    from research.store import import_pending

    store.unlink()
    import_pending([bundle], store)
    with RunStore(store, read_only=True) as st:
        assert len(st.snapshots("paper-pending")) == 3
