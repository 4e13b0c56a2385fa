"""PerformanceTracker.from_journal: a paper session's journal (running, then finished) gives the same metrics,
equity curve, drawdown periods and attribution as the session's own RunResult."""

from __future__ import annotations

import shutil
import sqlite3

import pandas as pd
import pytest
from paper_runs import synthetic_slice

from live.journal import Journal
from live.session import open_session
from research.performance import PerformanceTracker
from strategy import Params


def _same(a: PerformanceTracker, b: PerformanceTracker) -> None:
    pd.testing.assert_series_equal(a.metrics(), b.metrics())
    pd.testing.assert_series_equal(a.equity_curve(), b.equity_curve(), check_freq=False, check_index_type=False)
    pd.testing.assert_series_equal(a.daily_pnl(), b.daily_pnl())
    pd.testing.assert_frame_equal(a.drawdowns(), b.drawdowns())
    for key in ("hour", "exit_reason"):
        pd.testing.assert_frame_equal(a.attribution(key), b.attribution(key))


def _reference(res, params: Params) -> PerformanceTracker:
    return PerformanceTracker(res.trades, res.equity["equity"], res.equity["position"],
                              capital=params.initial_capital_usd)


@pytest.fixture(scope="module")
def session(tmp_path_factory, data_dir):
    d = tmp_path_factory.mktemp("perf_journal")
    path, _ = synthetic_slice(2, d, first=3)
    params = Params.for_mode("paper")
    trader = open_session(params, feed=f"replay:{path}", state_dir=d / "state", speed=None, unvalidated=True)
    try:
        part = trader.run(max_records=300)  # mid-session (the journal open by its writer): read it, then go on
        with Journal(d / "state" / "journal.sqlite", readonly=True) as j:
            running = PerformanceTracker.from_journal(j)
        done = trader.run()
    finally:
        trader.journal.close()
    return {"dir": d, "params": params, "part": part, "running": running, "done": done, "run_id": trader.run_id}


def test_a_running_session(session):
    part = session["part"]
    assert part.reason == "max_records" and len(part.equity) > 0
    assert session["running"].meta["run_id"] == session["run_id"]
    _same(session["running"], _reference(part, session["params"]))


def test_a_finished_session(session):
    with Journal(session["dir"] / "state" / "journal.sqlite", readonly=True) as j:
        pt = PerformanceTracker.from_journal(j, session["run_id"])
    done = session["done"]
    assert len(done.trades) > 0 and pt.meta["equity"].startswith("per bar")
    assert pt.capital == session["params"].initial_capital_usd
    assert len(done.equity) > len(session["part"].equity)  # a result holds the trader's whole session
    ref = _reference(done, session["params"])
    _same(pt, ref)


def test_pruned_heartbeats_fall_back_to_trades(session, tmp_path):
    copy = tmp_path / "journal.sqlite"
    with sqlite3.connect(session["dir"] / "state" / "journal.sqlite") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    with sqlite3.connect(copy) as con:
        con.execute("DELETE FROM heartbeats WHERE id = 1")
    with Journal(copy, readonly=True) as j:
        pt = PerformanceTracker.from_journal(j)
        n = len(j.trades())
    assert pt.equity is None and "pruned" in pt.meta["equity"] and len(pt.trades) == n > 0
    shutil.rmtree(tmp_path, ignore_errors=True)
