"""Sweeps on a real Dask LocalCluster (2 worker processes) give exactly the serial results."""

from __future__ import annotations

import logging

import pandas as pd
import pytest

from research.pipeline import load_series
from research.sweep import ParamGrid, run_sweep

distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def synth():
    return load_series(None)


GRID = ParamGrid({"entry_threshold": [0.2, 0.3], "stop_ticks": [5, 9], "target_r": [1.5, 2.5],
                  "time_stop_bars": [10, 50]})


def _same(a, b) -> None:
    for name in ("grid", "summary", "daily_pnl", "daily_trades", "segments"):
        pd.testing.assert_frame_equal(getattr(a, name), getattr(b, name))


def test_local_cluster_equals_serial(synth, tmp_path):
    serial = run_sweep(synth, GRID, scheduler="serial", split="none", cache_dir=False, progress=False)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=logging.ERROR) as cluster:
        res = run_sweep(synth, GRID, scheduler=cluster.scheduler_address, split="none", chunk_size=4,
                        cache_dir=tmp_path / "cache", progress=False)
    assert res.meta["engine"] == "dask" and res.meta["n_workers"] == 2
    assert res.meta["tasks"] == 4 and res.meta["tasks_computed"] == 4
    _same(res, serial)
    # the tasks the cluster finished are in the cache: a serial rerun computes nothing
    again = run_sweep(synth, GRID, scheduler="serial", split="none", chunk_size=4, cache_dir=tmp_path / "cache",
                      progress=False)
    assert again.meta["tasks_cached"] == 4 and again.meta["tasks_computed"] == 0
    _same(again, serial)


def test_local_cluster_is_started_with_the_data_sets_and_closed(synth):
    import threading

    serial = run_sweep(synth, GRID, scheduler="serial", split="none", cache_dir=False, progress=False)
    res = run_sweep(synth, GRID, scheduler=None, n_workers=2, split="none", chunk_size=8, cache_dir=False,
                    progress=True)
    assert res.meta["engine"] == "dask" and res.meta["scheduler"].startswith("tcp://")
    assert res.meta["engine_choice"] == "given"
    assert "waiting for the local" in res.meta["phases_s"] and "sending the data sets" in res.meta["phases_s"]
    _same(res, serial)
    assert not [t for t in threading.enumerate() if t.name.startswith("navale-cluster")]


def test_auto_engine_runs_a_small_grid_serially(synth):
    """16 combinations on 10 days of bars: the cost model says a cluster's start-up would cost more than
    it saves, so the default engine computes in this process (same results)."""
    serial = run_sweep(synth, GRID, scheduler="serial", split="none", cache_dir=False, progress=False)
    seen = []
    res = run_sweep(synth, GRID, n_workers=2, split="none", cache_dir=False, progress=False, on_estimate=seen.append)
    assert res.meta["engine"] == "serial" and res.meta["engine_choice"].startswith("serial: about")
    assert "engine: serial" in seen[0].text()
    _same(res, serial)


def test_an_error_while_the_cluster_starts_is_raised_and_the_cluster_still_closed(synth):
    """A grid value the data refuse raises while the local cluster is still starting: the sweep's own
    error comes up (not the cluster's), and the cluster and its thread are stopped behind it."""
    import threading
    import time

    import psutil

    from strategy.params import ParamsError

    before = {p.pid for p in psutil.Process().children(recursive=True)}
    with pytest.raises(ParamsError, match="stop_ticks"):
        run_sweep(synth, {"stop_ticks": [5, 4000]}, scheduler=None, n_workers=2, split="none", cache_dir=False,
                  progress=False)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        threads = [t for t in threading.enumerate() if t.name.startswith("navale-cluster")]
        extra = [p for p in psutil.Process().children(recursive=True) if p.pid not in before and p.is_running()
                 and p.status() != psutil.STATUS_ZOMBIE and "resource_tracker" not in " ".join(p.cmdline())]
        if not threads and not extra:
            break
        time.sleep(0.2)
    assert not threads and not extra, (threads, extra)
