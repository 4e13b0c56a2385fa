"""Control files (live/control.py): the state dir, HALT, the pid file and the stop signal, with real processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from live import control
from live.control import ControlError, HaltWatch

ROOT = Path(__file__).resolve().parents[2]


def test_state_dir_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv(control.LIVE_DIR_ENV, raising=False)
    assert control.state_dir() == Path("data/live")
    monkeypatch.setenv(control.LIVE_DIR_ENV, str(tmp_path / "env"))
    assert control.state_dir() == tmp_path / "env"
    assert control.state_dir(tmp_path / "arg") == tmp_path / "arg"
    assert control.journal_path(tmp_path) == tmp_path / "journal.sqlite"


def test_halt_is_atomic_idempotent_and_cleared(tmp_path):
    d = tmp_path / "live"
    assert control.read_halt(d) is None
    halt, created = control.write_halt(d, "news spike", by="tester")
    assert created and halt["reason"] == "news spike" and halt["by"] == "tester" and halt["ts_ns"] > 0
    again, created = control.write_halt(d, "second reason")
    assert not created and again == halt  # the first halt stands
    assert [p.name for p in d.iterdir()] == ["HALT"]  # no temp file left
    assert control.clear_halt(d) == halt
    assert control.read_halt(d) is None and control.clear_halt(d) is None


@pytest.mark.parametrize("content", ["", "stop now\n", "[1, 2]", "{\"by\": \"x\"}"])
def test_any_halt_file_halts(tmp_path, content):
    (tmp_path / "HALT").write_text(content)
    halt = control.read_halt(tmp_path)
    assert halt is not None and halt["reason"].startswith("HALT file")


def test_pid_file_names_the_live_trader_only(tmp_path):
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        doc = control.write_pid(tmp_path, proc.pid)
        assert control.read_pid(tmp_path)["pid"] == proc.pid and doc["start_ticks"] is not None
        assert control.trader_pid(tmp_path) == proc.pid
        with pytest.raises(ControlError, match=f"a trader \\(pid {proc.pid}\\) already runs"):
            control.write_pid(tmp_path)
        assert not control.remove_pid(tmp_path)  # not ours
    finally:
        proc.kill()
        proc.wait()
    assert control.trader_pid(tmp_path) is None  # gone: the stale file does not count
    control.write_pid(tmp_path)  # and may be replaced
    assert control.trader_pid(tmp_path) == os.getpid()
    assert control.remove_pid(tmp_path) and control.read_pid(tmp_path) is None


def test_a_reused_pid_is_not_taken_for_the_trader(tmp_path):
    doc = control.write_pid(tmp_path)
    assert control.pid_alive(os.getpid(), doc["start_ticks"])
    if doc["start_ticks"] is None:
        pytest.skip("no /proc here: process start times are unknown")
    assert not control.pid_alive(os.getpid(), doc["start_ticks"] + 1)


def test_a_zombie_is_not_alive():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    for _ in range(200):
        if not Path(f"/proc/{proc.pid}").exists() or control._zombie(proc.pid):
            break
        time.sleep(0.02)
    assert not control.pid_alive(proc.pid)
    proc.wait()


def test_halt_watch_sees_the_signal_and_the_file(tmp_path):
    watch = HaltWatch(tmp_path, every_s=3600).install()
    try:
        assert watch.check() is None
        control.write_halt(tmp_path, "by file")
        assert watch.check() is None  # the file is looked at only every every_s...
        os.kill(os.getpid(), control.STOP_SIGNAL)  # ...but the signal makes it look now
        for _ in range(100):
            if watch.signalled.is_set():
                break
            time.sleep(0.01)
        assert watch.check()["reason"] == "by file"
        control.clear_halt(tmp_path)
        assert watch.check()["reason"] == "by file"  # a halt seen stays until reset
        watch.reset()
        assert watch.check() is None
    finally:
        signal.signal(control.STOP_SIGNAL, signal.SIG_DFL)


def test_signal_trader_reaches_a_real_process(tmp_path):
    code = ("import signal, sys, time; from live import control; control.write_pid(sys.argv[1]); "
            "w = control.HaltWatch(sys.argv[1]).install(); print('ready', flush=True); "
            "[time.sleep(0.01) for _ in range(3000) if not w.signalled.is_set()]; print('got it', flush=True)")
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path)], stdout=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, cwd=ROOT)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert control.signal_trader(tmp_path) == proc.pid
        assert proc.stdout.readline().strip() == "got it"
    finally:
        proc.kill()
        proc.wait()
    assert control.signal_trader(tmp_path) is None


def test_claim_refuses_a_halted_state_dir(tmp_path):
    control.write_halt(tmp_path, "drawdown")
    with pytest.raises(ControlError, match=r"halted since .*\(drawdown\); `navale stop --clear --state-dir"):
        control.claim(tmp_path)
    assert control.read_pid(tmp_path) is None
    control.clear_halt(tmp_path)
    assert control.claim(tmp_path)["pid"] == os.getpid()
