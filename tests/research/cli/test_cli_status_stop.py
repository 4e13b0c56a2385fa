"""`navale status` and `navale stop` against real processes: a trader that follows the stop protocol
(tests/live_helpers.py `trader`), a hung one, none; the journal read while it is written."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live import control
from live.journal import Journal, TraderStatus
from research.cli import main

ROOT = Path(__file__).resolve().parents[3]
HELPERS = ROOT / "tests" / "live_helpers.py"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}


@pytest.fixture
def navale(capsys):
    """Run a navale command in this process (the trader is another one): (exit status, stdout)."""
    def run(*args: str) -> tuple[int, str]:
        capsys.readouterr()
        rc = main(list(args))
        return rc, capsys.readouterr().out

    return run


@pytest.fixture
def trader(tmp_path):
    """A running trader process on tmp_path/live (ready: pid file written, heartbeating)."""
    procs = []

    def start(kind: str = "trader") -> subprocess.Popen:
        proc = subprocess.Popen([sys.executable, str(HELPERS), kind, str(tmp_path / "live")], env=ENV, cwd=ROOT,
                                stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "ready"
        return proc

    yield start
    for p in procs:
        p.kill()
        p.wait()


def test_parsers_cost_no_numerical_stack():
    code = ("import sys; from research.cli import build_parser; p = build_parser(); "
            "p.parse_args(['status', '--json']); p.parse_args(['stop', '--clear']); "
            "print(sorted(m for m in ('numpy', 'pandas', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], env=ENV, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_status_without_a_journal_is_one_line_and_exit_2(tmp_path, capsys):
    # no collector either (a collection dir in the cwd would be shown on its own)
    assert main(["status", "--state-dir", str(tmp_path / "none"), "--collect-dir", str(tmp_path / "nc")]) == 2
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "no journal at" in out and "navale paper" in out


def test_status_of_a_stopped_trader_shows_its_journal(tmp_path, capsys):
    d = tmp_path / "live"
    with Journal(control.journal_path(d)) as j:
        j.heartbeat(1_710_163_800_000_000_000, TraderStatus(
            mode="paper", symbol="ESM24", bar_ts_ns=1_710_163_800_000_000_000, position=-2, entry_price=5100.25,
            pnl_today_usd=-512.5, trades_today=3,
            kill_switches={"daily_loss_limit": "-512.50 $ <= -500 $", "feed_halt": False, "losses_in_a_row": 2,
                           "drawdown_pct": 1.25},
            feed={"kind": "replay", "records": 1234, "last_record_age_s": 0.4}, unvalidated=True, pid=1))
        j.record_risk_event("daily_loss_limit", "no new entries today", 1_710_163_800_000_000_000, "critical")
    assert main(["status", "--state-dir", str(d)]) == 0
    out = capsys.readouterr().out
    assert "daily_loss_limit: -512.50 $ <= -500 $;" in out and "feed_halt" not in out
    for text in ("stopped", "ESM24", "UNVALIDATED", "-2 @ 5100.25", "-512.50 $ in 3 trade(s)", "daily_loss_limit",
                 "replay: 1234 records", "2024-03-11 13:30:00 UTC", "losses_in_a_row 2, drawdown_pct 1.25"):
        assert text in out, text
    assert main(["status", "--state-dir", str(d), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["state"] == "stopped" and doc["position"] == -2 and doc["risk_events"][0]["kind"] == "daily_loss_limit"


def test_stop_a_running_trader_then_status_then_clear(tmp_path, trader, navale):
    d = tmp_path / "live"
    proc = trader()
    rc, out = navale("status", "--state-dir", str(d), "--json")  # read while the trader writes
    doc = json.loads(out)
    assert rc == 0 and doc["state"] == "running" and doc["trader_pid"] == proc.pid and doc["feed"]["kind"] == "synthetic"

    rc, out = navale("stop", "--state-dir", str(d), "--reason", "test stop", "--json")
    res = json.loads(out)
    assert rc == 0 and res["path"] == "trader" and res["flat"] and res["trader_pid"] == proc.pid
    assert res["detail"] == "flat (test stop)" and 0 < res["seconds_to_flat"] < 10
    assert proc.wait(10) == 0  # it stopped trading and exited
    assert control.read_halt(d)["reason"] == "test stop"

    rc, out = navale("status", "--state-dir", str(d))
    assert rc == 0 and "halted" in out and "test stop" in out and "emergency_stop" in out

    rc, out = navale("stop", "--state-dir", str(d), "--reason", "again")  # idempotent
    assert rc == 0 and "already halted" in out and "no trader runs" in out and "FLAT" in out
    assert control.read_halt(d)["reason"] == "test stop"

    rc, out = navale("stop", "--state-dir", str(d), "--clear")
    assert rc == 0 and "cleared the halt" in out and "trading may restart" in out
    assert control.read_halt(d) is None
    with Journal(control.journal_path(d), readonly=True) as j:
        kinds = [e["kind"] for e in j.risk_events()]
    assert sorted(kinds[:4]) == ["emergency_stop"] * 2 + ["stop_requested"] * 2 and kinds[4:] == ["halt_cleared"]
    rc, out = navale("stop", "--state-dir", str(d), "--clear")
    assert rc == 0 and "not halted" in out


def test_stop_a_hung_trader_acts_on_the_broker(tmp_path, trader, navale):
    d = tmp_path / "live"
    proc = trader("hung")
    start = time.monotonic()
    rc, out = navale("stop", "--state-dir", str(d), "--timeout", "0.5", "--json")
    res = json.loads(out)
    assert time.monotonic() - start >= 0.5  # it did wait for the trader first
    assert res["trader_pid"] == proc.pid and res["path"] == "broker" and "trader hung" in res["detail"]
    assert rc == 0 and res["flat"]
    assert proc.poll() is None  # left running, but halted: it may place no order
    assert control.read_halt(d) is not None


def test_stop_with_no_trader_and_no_journal(tmp_path, capsys):
    """A typo'd or unset state dir: nothing is stopped there, and the stop says so instead of "flat"."""
    d = tmp_path / "fresh"
    assert main(["stop", "--state-dir", str(d)]) == 2
    out = capsys.readouterr().out
    assert "no trader, journal or paper book" in out and "nothing was stopped" in out
    assert control.read_halt(d) is None and not d.exists()  # a stop never creates the folder


def test_stop_flattens_the_paper_book_itself(tmp_path, navale):
    pytest.importorskip("live.brokers.paper", reason="live.brokers.paper (the paper broker) is not in this tree")
    from live.brokers.paper import PaperBroker

    from live.events import Bar, Bracket, Order

    d = tmp_path / "live"
    d.mkdir()
    b = PaperBroker("ES", book_path=d / control.PAPER_BOOK)
    b.on_bar(Bar(1_710_163_800_000_000_000, 5100.0, 5101.0, 5099.0, 5100.5, 100))
    b.submit(Order("e1", "ES", 1, 1, "entry", bracket=Bracket(8, 16), decided_ns=1_710_163_860_000_000_000))
    b.on_bar(Bar(1_710_163_860_000_000_000, 5100.5, 5101.0, 5100.0, 5100.75, 100))
    assert b.positions() == {"ES": 1}
    b.close()
    Journal(control.journal_path(d)).close()
    rc, out = navale("stop", "--state-dir", str(d), "--json")
    res = json.loads(out)
    assert rc == 0 and res["path"] == "broker" and res["flat"], res
    b = PaperBroker.from_state_dir(d)
    assert b.positions() == {} and b.open_orders() == []
    b.close()


def test_stop_on_a_state_dir_that_cannot_be_written_is_one_line(tmp_path, capsys):
    (tmp_path / "file").write_text("not a folder")
    assert main(["stop", "--state-dir", str(tmp_path / "file")]) == 2
    out = capsys.readouterr().out.strip()
    assert len(out.splitlines()) == 1 and "cannot write" in out and str(tmp_path / "file") in out
