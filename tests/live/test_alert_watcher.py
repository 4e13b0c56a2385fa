"""The alert rules run beside a real `navale paper` session (its own thread): with the only channel a blackholed
endpoint (connections accepted, never answered) the session at full speed ends with the trades of a session
without alerts, the alerts are in the history undelivered, and the process exits; with the local receiving HTTP
server the fired alerts arrive as apprise json:// payloads."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from alert_receiver import Receiver, wait_for

from live import control
from live.journal import Journal

ROOT = Path(__file__).resolve().parents[2]
TRIGGER_HAPPY = "mode = 'paper'\ndrawdown_pct = 0.001\nconsecutive_losses = 1\ncooldown_s = 0.0\n"


class Blackhole:
    """A TCP server on 127.0.0.1 that accepts every connection and never reads or answers."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.conns: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            self.conns.append(c)

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.sock.close()


def paper(state_dir: Path, *extra: str, urls: str = "", cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NAVALE_ALERT_URLS": urls, "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "research.cli", "paper", "--unvalidated", "--feed", "synthetic",
                           "--speed", "max", "--state-dir", str(state_dir), "--quiet", "--no-store", *extra],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def summary(out: str) -> str:
    return re.search(r"replay_end: .* trades, net \$[-\d,.]+", out).group(0).split(" in ")[0]


def trade_rows(sd: Path) -> list[tuple]:
    with Journal(control.journal_path(sd), readonly=True) as j:
        t = j.trades()
    return list(zip(t["entry_ts"].astype(str), t["side"], t["exit_reason"], t["pnl_usd"]))


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    work = tmp_path_factory.mktemp("no-alerts")
    r = paper(work / "live", "--no-alerts", cwd=work)
    assert r.returncode == 0, r.stderr
    return summary(r.stderr), trade_rows(work / "live")


def test_a_blackholed_endpoint_never_slows_or_changes_the_session(tmp_path, baseline):
    (tmp_path / "alerts.toml").write_text(TRIGGER_HAPPY)
    hole = Blackhole()
    try:
        r = paper(tmp_path / "live", "--alerts-config", str(tmp_path / "alerts.toml"), "--alerts-interval", "0.05",
                  urls=f"json://127.0.0.1:{hole.port}/hook?rto=30&cto=5", cwd=tmp_path)
    finally:
        hole.close()
    assert r.returncode == 0, r.stderr
    assert "alerts: every 0.05 s, 1 channel(s) from $NAVALE_ALERT_URLS" in r.stderr
    assert summary(r.stderr) == baseline[0]
    assert trade_rows(tmp_path / "live") == baseline[1]
    with Journal(control.journal_path(tmp_path / "live"), readonly=True) as j:
        alerts = j.alerts()
    assert alerts, "the trigger-happy thresholds fired nothing"
    assert {a["kind"] for a in alerts} & {"drawdown", "loss_streak", "consecutive_losses"}
    assert not any(a["delivered"] for a in alerts)  # the endpoint never answered


def test_fired_alerts_reach_a_real_http_endpoint(tmp_path):
    (tmp_path / "alerts.toml").write_text(TRIGGER_HAPPY)
    rec = Receiver()
    try:
        r = paper(tmp_path / "live", "--alerts-config", str(tmp_path / "alerts.toml"), "--alerts-interval", "0.05",
                  urls=rec.url(), cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        with Journal(control.journal_path(tmp_path / "live"), readonly=True) as j:
            alerts = j.alerts()
        delivered = [a for a in alerts if a["delivered"]]
        assert delivered, alerts[:3]
        wait_for(lambda: len(rec.payloads) >= len(delivered))
    finally:
        rec.close()
    titles = [p["title"] for p in rec.payloads]
    assert all(t.startswith("navale ") for t in titles)
    assert any(a["kind"] in t for a in delivered for t in titles)


def test_a_bad_alerts_config_is_refused_before_the_session_starts(tmp_path):
    (tmp_path / "bad.toml").write_text("drawdown_pct = 'lots'\n")
    r = paper(tmp_path / "live", "--alerts-config", str(tmp_path / "bad.toml"), cwd=tmp_path)
    assert r.returncode == 2 and "bad.toml" in r.stderr and "drawdown_pct" in r.stderr
    assert not control.journal_path(tmp_path / "live").exists()


def collect(root: Path, *extra: str, urls: str = "", cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NAVALE_ALERT_URLS": urls, "HOME": str(cwd)}
    return subprocess.run([sys.executable, "-m", "research.cli", "collect", "--feed", "synthetic", "--hours", "1",
                           "--speed", "max", "--dir", str(root), "--no-trade", "--quiet", *extra],
                          cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_collector_with_a_blackholed_endpoint_collects_the_same_records(tmp_path):
    (tmp_path / "alerts.toml").write_text("disk_pct = 0.001\ncooldown_s = 0.0\n")  # fires on any disk
    plain = collect(tmp_path / "a", "--no-alerts", cwd=tmp_path)
    hole = Blackhole()
    try:
        watched = collect(tmp_path / "b", "--alerts-config", str(tmp_path / "alerts.toml"), "--alerts-interval",
                          "0.05", urls=f"json://127.0.0.1:{hole.port}/hook?rto=30&cto=5", cwd=tmp_path)
    finally:
        hole.close()
    assert plain.returncode == 0 and watched.returncode == 0, watched.stderr
    line = re.compile(r"hours: ([\d,]+) records .*seq [\d,]+\)")
    assert line.search(watched.stderr).group(0) == line.search(plain.stderr).group(0)
    with Journal(tmp_path / "b" / "collector.sqlite", readonly=True) as j:
        alerts = j.alerts()
    assert any(a["kind"] == "disk" for a in alerts), alerts
    assert not any(a["delivered"] for a in alerts)
