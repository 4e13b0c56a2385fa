"""`navale paper --feed ib --broker ib` as the guide documents it, against the fake TWS (the real ib_async client in
the `navale` process), then a trader killed with a position open at IB: `navale stop` flattens at IB itself (a second
connection, the next client id), as it flattens the paper book when the trader cannot."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from fake_tws import FakeTWS
from ib_helpers import MONTH, wait_until
from ib_runs import synthetic_rows

from live import control
from live.journal import Journal

ROOT = Path(__file__).resolve().parents[4]


def navale(*args: str, cwd: Path) -> list[str]:
    return [sys.executable, "-m", "research.cli", *args]


def env() -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("NAVALE_IB_", "NAVALE_DTC_"))}
    return {**e, "PYTHONPATH": str(ROOT) + os.pathsep + e.get("PYTHONPATH", "")}


def test_paper_through_the_fake_tws_then_navale_stop_flattens_at_ib_when_the_trader_is_gone(tmp_path):
    server = FakeTWS(synthetic_rows(1), stream_month=MONTH, tick_delay_s=0.0002)
    port = server.start()
    sd = tmp_path / "live"
    proc = subprocess.Popen(navale("paper", "--unvalidated", "--feed", "ib", "--broker", "ib", "--port", str(port),
                                   "--state-dir", str(sd), "--no-store", "--no-band", "--quiet", "--no-alerts",
                                   cwd=tmp_path), cwd=tmp_path, env=env(), stdout=(tmp_path / "paper.log").open("w"),
                            stderr=subprocess.STDOUT, text=True)  # a file, not a pipe nobody reads
    try:
        # an open position at IB, then the stream paused so it stays open
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and server.position() == 0 and proc.poll() is None:
            time.sleep(0.001)
        server.pause()
        held = server.position()
        assert held != 0, f"no position opened at the fake TWS (trader exit {proc.poll()}): " + \
            (tmp_path / "paper.log").read_text()[-2000:]
        wait_until(lambda: len(server.working_orders()) == 2, 30, "the bracket's two legs at IB")
        assert (sd / "venue.json").is_file() and (sd / "ib_broker.sqlite").is_file()
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        stop = subprocess.Popen(navale("stop", "--state-dir", str(sd), "--timeout", "1", cwd=tmp_path), cwd=tmp_path,
                                env={**env(), "NAVALE_IB_PORT": str(port)}, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True)
        # the legs cancelled and the flatten's market order working: the stream goes on, so it can fill
        wait_until(lambda: [o.ref.split(":")[0] for o in server.working_orders()] == ["flatten"], 120,
                   "the flatten order alone at IB")
        server.run_unwatched()  # nobody subscribes any more: the market moves for the flatten all the same
        server.resume()
        out, _ = stop.communicate(timeout=120)
        assert stop.returncode == 0, out
        assert f"flattened at ib 127.0.0.1:{port}" in out, out
        assert server.position() == 0 and server.working_orders() == []
        flat = [e for e in server.executions if e.order.ref.startswith("flatten:emergency_stop")]
        assert len(flat) == 1 and flat[0].qty == abs(held)
        with Journal(control.journal_path(sd), readonly=True) as j:
            kinds = [e["kind"] for e in j.risk_events()]
        assert "start" in kinds and "emergency_stop" in kinds
        assert control.read_halt(sd) is not None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        server.stop()


def test_navale_doctor_ib_against_the_fake_tws(capsys, monkeypatch, tmp_path):
    from research.cli import main

    monkeypatch.chdir(tmp_path)  # no navale.secrets.toml
    for k in [k for k in os.environ if k.startswith("NAVALE_IB_")]:
        monkeypatch.delenv(k)
    server = FakeTWS(synthetic_rows(1)[:2000], stream_month=MONTH)
    port = server.start()
    try:
        assert main(["doctor", "ib", "--port", str(port)]) == 0
        out = capsys.readouterr().out
        assert "managed accounts DU" in out and "paper" in out and "all checks passed" in out
        assert f"qualifies as ESZ{MONTH[3]}" in out or "qualifies as" in out
        server.entitled = False  # no CME real-time subscription: said plainly, exit 1
        assert main(["doctor", "ib", "--port", str(port)]) == 1
        out = capsys.readouterr().out
        assert "FAIL market data" in out and "subscription" in out
    finally:
        server.stop()
    assert main(["doctor", "ib", "--port", str(port)]) == 1  # nothing listening
    assert "FAIL connect" in capsys.readouterr().out
