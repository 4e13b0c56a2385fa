"""Alerts: rules on planted statuses and events, the thresholds file, and delivery through apprise to a real HTTP
server on 127.0.0.1 (payloads, cooldown with an injected clock, dedup, history, a blackholed endpoint that never
blocks ``submit``, retry once it answers)."""

from __future__ import annotations

import sqlite3
import time

import pytest
from alert_receiver import Receiver, wait_for

from live.alerts import Alert, AlertConfig, AlertConfigError, evaluate
from live.alerts.channels import Channel, ChannelConfigError, configured_urls
from live.alerts.delivery import AlertSystem
from live.alerts.rules import machine_alerts, rolling_sharpe, silence_alert
from live.journal import Journal

WED_1500_UTC = 1_704_898_800 * 1_000_000_000  # 2024-01-10 15:00 UTC: Globex open
SAT_1500_UTC = 1_705_158_000 * 1_000_000_000  # 2024-01-13 15:00 UTC: weekend
S = 1_000_000_000


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def journal(tmp_path):
    with Journal(tmp_path / "journal.sqlite") as j:
        yield j


def alert(kind="drawdown", severity="critical", value=12.5, key=None, ts=WED_1500_UTC):
    return Alert(kind, severity, value, 10.0, f"{kind} planted", ts, key)


# ---------------------------------------------------------------- rules


def test_rules_on_a_planted_status():
    cfg = AlertConfig.for_mode("paper")
    status = {"pnl_today_usd": -500.0, "kill_switches": {"drawdown_pct": 11.0, "losses_in_a_row": 5,
                                                          "feed_halt": "no record for 65 s"},
              "feed": {"last_record_age_s": 400.0}, "latency_ms": 750.0}
    got = {a.kind: a for a in evaluate(cfg, WED_1500_UTC, status=status)}
    assert set(got) == {"drawdown", "consecutive_losses", "daily_loss", "feed_disconnected", "latency", "feed_silent"}
    assert got["drawdown"].severity == "critical" and got["drawdown"].value == 11.0
    assert got["feed_disconnected"].severity == "critical"
    assert got["daily_loss"].threshold == -480.0  # 80 % of paper's 600 USD
    assert all(got[k].severity == "warning" for k in ("consecutive_losses", "daily_loss", "latency", "feed_silent"))
    calm = {"pnl_today_usd": -479.0, "kill_switches": {"drawdown_pct": 10.0, "losses_in_a_row": 4, "feed_halt": False},
            "feed": {"last_record_age_s": 299.0}}
    assert evaluate(cfg, WED_1500_UTC, status=calm) == []


def test_feed_silent_only_inside_the_session():
    cfg = AlertConfig()
    assert [a.kind for a in silence_alert(301.0, WED_1500_UTC, cfg)] == ["feed_silent"]
    assert silence_alert(3600.0, SAT_1500_UTC, cfg) == []
    assert silence_alert(None, WED_1500_UTC, cfg) == []


def test_machine_and_sharpe_rules():
    cfg = AlertConfig()
    got = {a.kind: a.severity for a in machine_alerts(cfg, 0, {"cpu_pct": 81, "disk_pct": 86, "memory_pct": 91})}
    assert got == {"cpu": "warning", "disk": "warning", "memory": "critical"}
    assert machine_alerts(cfg, 0, {"cpu_pct": 80, "disk_pct": 85, "memory_pct": 90, "x": None}) == []
    assert rolling_sharpe([1.0] * 5, 20) is None
    losing = [-10.0, 5.0] * 10
    assert rolling_sharpe(losing, 20) < 0.5
    assert [a.kind for a in evaluate(cfg, 0, daily_pnl=losing)] == ["rolling_sharpe"]
    assert evaluate(cfg, 0, daily_pnl=[10.0, 12.0] * 10) == []


def test_event_rules_kill_switches_mismatch_storm_and_collector(journal):
    cfg = AlertConfig(reconnect_storm_count=3, reconnect_storm_minutes=10)
    for kind in ("day_gate", "emergency_stop", "reconcile_mismatch", "day_roll"):
        journal.record_risk_event(kind, f"{kind} detail", WED_1500_UTC, level="warning")
    for _ in range(3):
        journal.record_risk_event("feed_resumed", "records again", WED_1500_UTC, level="info")
    now = time.time_ns()
    got = {a.kind: a for a in evaluate(cfg, now, events=journal.risk_events())}
    assert set(got) == {"kill_switch:day_gate", "kill_switch:emergency_stop", "position_mismatch", "reconnect_storm"}
    assert got["kill_switch:emergency_stop"].severity == "critical" and got["position_mismatch"].severity == "critical"
    assert got["kill_switch:day_gate"].dedup_key == "risk_event:1"
    # the storm is over once its events are older than the window
    later = {a.kind for a in evaluate(cfg, now + 11 * 60 * S, events=journal.risk_events())}
    assert "reconnect_storm" not in later
    collector = {"symbols": [{"symbol": "ES", "lag_s": 75.0}, {"symbol": "NQ", "lag_s": 2.0},
                             {"symbol": "MES", "lag_s": None}]}
    assert [a.kind for a in evaluate(AlertConfig(), now, collector=collector)] == ["collector_lag:ES"]


def test_a_dropped_venue_link_alerts_at_once_and_its_reconnects_count_toward_a_storm(journal):
    cfg = AlertConfig(reconnect_storm_count=4, reconnect_storm_minutes=10)
    for _ in range(2):
        journal.record_risk_event("feed_disconnected", "ib: socket dropped", WED_1500_UTC, level="critical")
        journal.record_risk_event("feed_reconnected", "ib: resubscribed", WED_1500_UTC, level="info")
    journal.record_risk_event("restart", "run r1", WED_1500_UTC, level="info")
    got = evaluate(cfg, time.time_ns(), events=journal.risk_events())
    drops = [a for a in got if a.kind == "feed_disconnected"]
    assert len(drops) == 2 and all(a.severity == "critical" and "socket dropped" in a.detail for a in drops)
    assert len({a.dedup_key for a in drops}) == 2  # each drop once
    assert "reconnect_storm" not in {a.kind for a in got}  # 3 < 4
    journal.record_risk_event("feed_reconnected", "ib: resubscribed", WED_1500_UTC, level="info")
    assert "reconnect_storm" in {a.kind for a in evaluate(cfg, time.time_ns(), events=journal.risk_events())}


def test_config_from_toml_defaults_from_the_mode_and_bad_values(tmp_path):
    assert AlertConfig.for_mode("data_collection").daily_loss_limit_usd == 1000.0
    f = tmp_path / "alerts.toml"
    f.write_text('mode = "live"\n[alerts]\ndrawdown_pct = 8\ncooldown_s = 60\nconsecutive_losses = 4\n')
    cfg = AlertConfig.from_toml(f)
    assert (cfg.mode, cfg.drawdown_pct, cfg.cooldown_s, cfg.consecutive_losses, cfg.daily_loss_limit_usd) == \
        ("live", 8.0, 60.0, 4, 600.0)
    for text, needle in (("drawdown_pct = 120", "drawdown_pct must be a percentage"),
                         ("consecutive_losses = 2.5", "consecutive_losses must be a whole number"),
                         ('cpu_pct = "high"', "cpu_pct must be a number"), ("latency = 3", "unknown key 'latency'"),
                         ('mode = "yolo"', "mode must be one of"), ("drawdown_pct = ", "not valid TOML")):
        f.write_text(text + "\n")
        with pytest.raises(AlertConfigError) as e:
            AlertConfig.from_toml(f)
        msg = str(e.value)
        assert needle in msg and str(f) in msg and "\n" not in msg


def test_urls_from_env_then_the_secrets_files(tmp_path):
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    (home / ".config" / "navale").mkdir(parents=True)
    cwd.mkdir()
    assert configured_urls({}, cwd, home) == ([], "none")
    (home / ".config" / "navale" / "alerts.toml").write_text('[alerts]\nurls = ["ntfy://topic"]\n')
    assert configured_urls({}, cwd, home)[0] == ["ntfy://topic"]
    (cwd / "navale.secrets.toml").write_text('[alerts]\nurls = ["json://localhost/a"]\n')
    assert configured_urls({}, cwd, home) == (["json://localhost/a"], str(cwd / "navale.secrets.toml"))
    env = {"NAVALE_ALERT_URLS": "json://a/x, json://b/y  ntfy://t"}
    assert configured_urls(env, cwd, home) == (["json://a/x", "json://b/y", "ntfy://t"], "$NAVALE_ALERT_URLS")
    (cwd / "navale.secrets.toml").write_text('[alerts]\nurls = "json://x"\n')
    with pytest.raises(ChannelConfigError, match="urls must be a list"):
        configured_urls({}, cwd, home)


# ---------------------------------------------------------------- delivery


def test_delivery_payloads_and_history(journal, receiver):
    with AlertSystem(journal, [receiver.url("one"), receiver.url("two")]) as system:
        aid = system.submit(alert())
        wid = system.submit(alert("cpu", "warning", 93.0))
        wait_for(lambda: system.pending() == 0)
    assert sorted(p["path"] for p in receiver.payloads) == ["/one", "/one", "/two", "/two"]
    crit = next(p for p in receiver.payloads if p["title"].endswith("drawdown"))
    assert crit["title"] == "navale CRITICAL: drawdown" and crit["type"] == "failure"
    assert "drawdown planted" in crit["message"] and "value 12.5, threshold 10" in crit["message"]
    assert f"navale alerts --ack {aid}" in crit["message"]
    assert next(p for p in receiver.payloads if p["title"].endswith("cpu"))["type"] == "warning"
    rows = {r["id"]: r for r in journal.alerts()}
    assert rows[aid]["delivered"] and rows[aid]["delivered_ns"] and rows[aid]["attempts"] == 1
    assert rows[aid]["value"] == 12.5 and rows[aid]["threshold"] == 10.0 and rows[wid]["severity"] == "warning"
    assert rows[aid]["acked_ns"] is None
    got = journal.ack_alert(aid, "tester", 123)
    assert (got["acked_ns"], got["ack_by"]) == (123, "tester")
    assert journal.ack_alert(aid, "someone else", 456)["ack_by"] == "tester"  # a second ack keeps the first
    assert journal.ack_alert(999, "x") is None


def test_cooldown_per_kind_and_dedup(journal, receiver):
    now = [1_000 * S]
    system = AlertSystem(journal, [receiver.url()], cooldown_s=300, clock=lambda: now[0])
    first = system.submit(alert())
    assert system.submit(alert(value=13.0)) is None  # same kind inside 5 min: counted, not sent
    other = system.submit(alert("cpu", "warning", 90.0))  # another kind: its own cooldown
    now[0] += 299 * S
    assert system.submit(alert()) is None
    now[0] += 1 * S
    again = system.submit(alert())  # 300 s later: notified again
    assert None not in (first, other, again)
    ev = alert("kill_switch:day_gate", "warning", None, key="risk_event:7")
    now[0] += 3600 * S
    keyed = system.submit(ev)
    now[0] += 3600 * S
    assert system.submit(ev) is None  # the same risk event never twice, even after the cooldown
    wait_for(lambda: system.pending() == 0)
    system.close()
    assert len(receiver.payloads) == 4
    rows = {r["id"]: r for r in journal.alerts()}
    assert set(rows) == {first, other, again, keyed}
    assert rows[first]["repeats"] == 2 and rows[again]["repeats"] == 0 and rows[keyed]["dedup_key"] == "risk_event:7"
    assert system.stats["cooled_down"] == 2 and system.stats["deduplicated"] == 1
    # a restarted system keeps the cooldown of the kinds that fired inside it, and the dedup keys
    restarted = AlertSystem(journal, [receiver.url()], cooldown_s=300, clock=lambda: now[0] + 10 * S)
    assert restarted.submit(ev) is None
    restarted.close()


def test_blackholed_endpoint_never_blocks_submit_and_retry_delivers(journal, receiver):
    system = AlertSystem(journal, [receiver.url()], cooldown_s=0, queue_size=16, retries=5, backoff_s=0.05)
    receiver.hold.set()
    held = system.submit(alert("first"))
    assert receiver.entered.wait(30)  # the delivery thread is now stuck inside a request that is never answered
    ids = [system.submit(alert(f"kind{i}", "warning", float(i))) for i in range(200)]
    # all 200 submits returned while the endpoint still holds the first request unanswered
    assert not receiver.release.is_set() and receiver.answered_held == 0 and receiver.payloads == []
    assert None not in ids and system.pending() == 17
    rows = {r["id"]: r for r in journal.alerts()}
    assert len(rows) == 201
    dropped = [i for i in ids if (rows[i]["delivery_error"] or "").startswith("dropped")]
    assert dropped == ids[:184]  # the oldest undelivered went first; the newest 16 are queued
    receiver.release.set()  # the endpoint answers the held request 503, then accepts everything
    wait_for(lambda: system.pending() == 0)
    assert system.close(10)
    rows = {r["id"]: r for r in journal.alerts()}
    assert rows[held]["delivered"] and rows[held]["attempts"] == 2  # failed once, delivered on the retry
    assert all(rows[i]["delivered"] for i in ids[184:])
    assert not any(rows[i]["delivered"] for i in dropped)
    assert [p["title"] for p in receiver.payloads] == ["navale CRITICAL: first"] + \
        [f"navale WARNING: kind{i}" for i in range(184, 200)]


def test_a_failing_channel_is_retried_then_recorded(journal, receiver):
    bad = "json://127.0.0.1:1/nothing?cto=2&rto=2"  # port 1: connection refused
    system = AlertSystem(journal, [bad, receiver.url()], retries=3, backoff_s=0.01)
    aid = system.submit(alert())
    wait_for(lambda: system.pending() == 0)
    system.close()
    row = journal.alert(aid)
    assert not row["delivered"] and row["attempts"] == 3 and "127.0.0.1:1" in row["delivery_error"]
    assert not row["delivery_error"].startswith("retrying")
    assert len(receiver.payloads) == 1  # the working channel got it once, not at every retry


def test_no_channel_records_the_alert_as_undelivered(journal):
    system = AlertSystem(journal, [])
    aid = system.submit(alert())
    system.close()
    assert journal.alert(aid)["delivery_error"] == "no alert channel configured"
    assert Channel("nonsense://x").send("t", "b") == "not a valid apprise URL"


def test_an_older_journal_gains_the_alerts_table(tmp_path):
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    con = sqlite3.connect(path)
    con.execute("DROP TABLE alerts")
    con.commit()
    con.close()
    with Journal(path, readonly=True) as ro:
        assert ro.alerts() == []
    with Journal(path) as j:
        aid = j.record_alert("cpu", "warning", 91.0, 80.0, "cpu planted", 1)
        assert j.alerts()[0]["id"] == aid


def test_check_journal_reads_a_collector_heartbeat_and_ages_a_trader_one(tmp_path):
    from live.alerts.watch import check_journal, daily_pnl

    idle = {"cpu_pct": 1.0, "memory_pct": 1.0, "disk_pct": 1.0}
    with Journal(tmp_path / "collector.sqlite") as j:
        j.heartbeat(1, {"kind": "collector", "symbols": [{"symbol": "ES", "lag_s": 120.0}]})
        assert [a.kind for a in check_journal(j, AlertConfig(), usage=idle)] == ["collector_lag:ES"]
    with Journal(tmp_path / "journal.sqlite") as j:
        j.heartbeat(1, {"feed": {"last_record_age_s": 10.0}, "kill_switches": {}})
        wall = j.last_heartbeat()["wall_ns"]
        # ten minutes after the heartbeat, inside the session: the record is 10 s + 600 s old
        got = check_journal(j, AlertConfig(), now_ns=wall + 600 * S, usage=idle, calendar=_Open())
        assert [(a.kind, round(a.value)) for a in got] == [("feed_silent", 610)]
        assert daily_pnl(j) == []


class _Open:
    def is_open(self, ts_ns: int) -> bool:
        return True


class _FullJournal(Journal):
    """A journal whose disk refuses the alert rows."""

    def record_alert(self, *a, **k):
        from live.journal import JournalError

        raise JournalError("cannot write the journal: database or disk is full")


def test_a_journal_refusing_the_row_neither_raises_nor_stops_the_notification(tmp_path, receiver):
    with _FullJournal(tmp_path / "journal.sqlite") as j:
        system = AlertSystem(j, [receiver.url()])
        assert system.submit(alert()) is None
        wait_for(lambda: system.pending() == 0)
        system.close()
        assert system.stats["journal_errors"] == 1 and [p["title"] for p in receiver.payloads] == \
            ["navale CRITICAL: drawdown"]
