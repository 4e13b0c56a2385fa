"""A trader process replaying four dates of the synthetic set (Thursday to Tuesday, a weekend between) while
other processes read its journal: a reader polling ``Journal(readonly=True).status()`` and ``.trades()``
and ``navale status --json`` see no lock error and a view that only moves forward; the journal shows the
unattended run across days: a ``day_roll`` per new trading date, a ``weekend`` event after the weekend,
and the daily counters restarting at 0 on each new date.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from paper_runs import exited, fork_trader, synthetic_slice, trading_dates, wait_exit

from live.journal import Journal, trading_date
from research.backtest import run as backtest
from strategy import Params

ROOT = Path(__file__).resolve().parents[2]


def _poll(sd: Path, trader: int, out: Path) -> None:
    """A reader process: poll status() and trades() until the trader ends (and once after); what it saw
    goes to ``out`` (polls, errors, a view that went back)."""
    seen: dict = {"polls": 0, "errors": [], "bars": [], "trades": []}
    prev = {"bar": -1, "trades": -1, "orders": -1, "heartbeats": -1}
    j = None
    final = False
    while True:
        try:
            if j is None:
                if not (sd / "journal.sqlite").exists():
                    time.sleep(0.005)
                    continue
                j = Journal(sd / "journal.sqlite", readonly=True)
            st = j.status()
            tr = j.trades() if seen["polls"] % 10 == 0 or final else None
            now = {"bar": st["bar_ts_ns"] or -1, "trades": st["trades_total"], "orders": st["counts"]["orders"],
                   "heartbeats": st["counts"]["heartbeats"]}
            for k, v in now.items():
                if v < prev[k]:
                    seen["errors"].append(f"{k} went back from {prev[k]} to {v}")
            if tr is not None and len(tr) < now["trades"]:
                seen["errors"].append(f"trades() {len(tr)} < status trades_total {now['trades']}")
            prev = now
            seen["polls"] += 1
            seen["bars"].append(now["bar"])
            seen["trades"].append(now["trades"])
        except Exception as exc:  # noqa: BLE001 - every error is the finding
            if "no journal" not in str(exc) and "empty journal" not in str(exc):
                seen["errors"].append(f"{type(exc).__name__}: {exc}")
        if final:
            break
        try:
            os.kill(trader, 0)
            alive = not Path(f"/proc/{trader}/stat").read_text().split(")")[-1].split()[0] == "Z"
        except (ProcessLookupError, FileNotFoundError):
            alive = False
        final = not alive
        time.sleep(0.002)
    out.write_text(json.dumps(seen))


@pytest.fixture(scope="module")
def session(tmp_path_factory, data_dir):
    d = tmp_path_factory.mktemp("unattended")
    path, bars = synthetic_slice(4, d, first=3)  # 2024-03-07, 03-08, 03-11, 03-12
    sd = d / "state"
    trader = fork_trader(f"replay:{path}", sd)
    out = d / "reader.json"
    reader = os.fork()
    if reader == 0:
        try:
            _poll(sd, trader, out)
        finally:
            os._exit(0)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    status = []
    while exited(trader) is None and len(status) < 2:  # each command is a whole interpreter start
        p = subprocess.run([sys.executable, "-m", "research.cli", "status", "--json", "--state-dir", str(sd)],
                           capture_output=True, text=True, env=env, cwd=ROOT, timeout=60)
        status.append((p.returncode, p.stdout, p.stderr))
    code = wait_exit(trader)
    assert wait_exit(reader) == 0
    return {"code": code, "bars": bars, "sd": sd, "reader": json.loads(out.read_text()), "status": status}


def test_readers_see_no_lock_error_and_a_view_that_only_moves_forward(session):
    assert session["code"] == 0
    seen = session["reader"]
    assert seen["errors"] == []
    assert seen["polls"] > 20
    assert len(set(seen["bars"])) > 10, "the reader saw the replay progress, not just its end"
    with Journal(session["sd"] / "journal.sqlite", readonly=True) as j:
        assert seen["trades"][-1] == len(j.trades())
    assert session["status"], "the trader ended before `navale status` could run"
    for code, out, err in session["status"]:
        assert code == 0 and "locked" not in err, err
        st = json.loads(out)
        assert {"position", "bar_ts_ns", "kill_switches"} <= set(st)


def _heartbeats(sd: Path) -> list[dict]:
    con = sqlite3.connect(f"file:{sd / 'journal.sqlite'}?mode=ro", uri=True)
    try:
        return [json.loads(r[0]) for r in con.execute("SELECT status FROM heartbeats ORDER BY id")]
    finally:
        con.close()


def test_a_multi_day_replay_rolls_the_trading_date_and_the_weekend(session):
    sd, bars = session["sd"], session["bars"]
    dates = sorted(set(trading_dates(bars)))
    assert len(dates) == 4
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        events = j.risk_events()
        trades = j.trades()
    rolls = [e for e in events if e["kind"] == "day_roll"]
    assert [trading_date(e["ts_ns"]) for e in rolls] == [str(d) for d in dates[1:]]
    weekend = [e for e in events if e["kind"] == "weekend"]
    assert len(weekend) == 1 and trading_date(weekend[0]["ts_ns"]) == "2024-03-11"  # the Monday after
    assert len(trades) == len(backtest(bars, Params.for_mode("paper")).trades)

    per_day: dict[str, list[int]] = {}
    for st in _heartbeats(sd):
        if st.get("bar_ts_ns") is not None:
            per_day.setdefault(trading_date(st["bar_ts_ns"]), []).append(st["trades_today"])
    traded = {trading_date(int(t.value)) for t in trades["exit_ts"]}
    assert len(traded) >= 2
    for day, counts in per_day.items():
        assert counts[0] == 0, f"{day}: trades_today starts at {counts[0]}"
        assert counts == sorted(counts)
    assert any(max(c) > 0 for c in per_day.values())
