"""``navale alerts``: list, --since, --json, --ack, and ``navale alerts test`` against a local HTTP server."""

from __future__ import annotations

import json

import pytest
from alert_receiver import Receiver

from live.journal import Journal
from research.cli import main


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "live"
    with Journal(d / "journal.sqlite") as j:
        a = j.record_alert("drawdown", "critical", 12.5, 10.0, "drawdown 12.50 % > 10 %", 1)
        b = j.record_alert("cpu", "warning", 91.0, 80.0, "cpu use 91.0 % > 80 %", 2)
        j.record_alert_delivery(a, True, None, 1, 5)
        j.record_alert_delivery(b, False, "json://127.0.0.1:1/x: refused", 5)
    return d


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def test_list_and_json(state, capsys):
    assert main(["alerts", "--state-dir", str(state)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[0].startswith("#1 ") and "CRITICAL drawdown value 12.5" in out[0]
    assert "delivered" in out[0] and "not acked" in out[0] and "NOT delivered (json://127.0.0.1:1/x: refused)" in out[1]
    assert main(["alerts", "--state-dir", str(state), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["kind"] for r in rows] == ["drawdown", "cpu"] and rows[0]["delivered"] is True
    assert main(["alerts", "--state-dir", str(state), "--json", "--since", "2200-01-01T00:00Z"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_ack(state, capsys):
    assert main(["alerts", "--state-dir", str(state), "--ack", "2"]) == 0
    assert "acknowledged alert 2 (cpu) as " in capsys.readouterr().out
    assert main(["alerts", "--state-dir", str(state), "--ack", "2"]) == 0
    assert "already acknowledged" in capsys.readouterr().out
    with Journal(state / "journal.sqlite", readonly=True) as j:
        row = j.alert(2)
    assert row["acked_ns"] is not None and "@" in row["ack_by"]
    assert main(["alerts", "--state-dir", str(state), "--ack", "9"]) == 2
    err = capsys.readouterr().out.strip()
    assert err.startswith("error: no alert 9 in ") and "\n" not in err


def test_bad_input(tmp_path, capsys):
    assert main(["alerts", "--state-dir", str(tmp_path / "none")]) == 2
    assert "no journal at" in capsys.readouterr().out
    with pytest.raises(SystemExit) as e:
        main(["alerts", "--since", "2026-01-05T09:30"])
    assert e.value.code == 2 and "has no time zone" in capsys.readouterr().err


def test_alerts_test_per_channel(receiver, monkeypatch, tmp_path, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("NAVALE_ALERT_URLS", raising=False)
    assert main(["alerts", "test"]) == 2
    assert "no alert channel configured" in capsys.readouterr().out
    monkeypatch.setenv("NAVALE_ALERT_URLS", receiver.url("ok"))
    assert main(["alerts", "test"]) == 0
    assert capsys.readouterr().out.strip().endswith(": delivered")
    assert receiver.payloads[0]["title"] == "navale test notification" and receiver.payloads[0]["type"] == "info"
    monkeypatch.setenv("NAVALE_ALERT_URLS", f"{receiver.url('ok')} json://127.0.0.1:1/down?cto=2&rto=2")
    assert main(["alerts", "test", "--json"]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["source"] == "$NAVALE_ALERT_URLS"
    assert [c["delivered"] for c in doc["channels"]] == [True, False] and doc["channels"][1]["error"]


def test_check_evaluates_the_journal_and_notifies(tmp_path, receiver, monkeypatch, capsys):
    d = tmp_path / "live"
    with Journal(d / "journal.sqlite") as j:
        j.heartbeat(1, {"mode": "paper", "pnl_today_usd": -550.0,
                        "kill_switches": {"drawdown_pct": 1.0, "losses_in_a_row": 2, "feed_halt": False},
                        "feed": {"last_record_age_s": 1.0}})
        j.record_risk_event("account_stop", "drawdown 3 %: trading stopped", 1, level="critical")
    cfg = tmp_path / "alerts.toml"
    cfg.write_text("cpu_pct = 100\nmemory_pct = 100\ndisk_pct = 100\nno_record_minutes = 100000\n")
    base = ["alerts", "check", "--state-dir", str(d), "--alerts-config", str(cfg)]
    assert main([*base, "--json"]) == 0
    kinds = [a["kind"] for a in json.loads(capsys.readouterr().out)["alerts"]]
    assert kinds == ["daily_loss", "kill_switch:account_stop"]
    monkeypatch.setenv("NAVALE_ALERT_URLS", receiver.url("hook"))
    assert main([*base, "--notify"]) == 0
    assert capsys.readouterr().out.count("-> alert #") == 2
    assert sorted(p["title"] for p in receiver.payloads) == ["navale CRITICAL: kill_switch:account_stop",
                                                             "navale WARNING: daily_loss"]
    assert main([*base, "--notify"]) == 0  # again at once: cooldown and dedup, nothing sent
    assert capsys.readouterr().out.count("(cooldown/duplicate)") == 2 and len(receiver.payloads) == 2
    cfg.write_text("cpu_pct = 0\n")
    assert main(base) == 2
    assert "cpu_pct must be a percentage" in capsys.readouterr().out
