"""live/metrics.py: the navale_* Prometheus metrics read from real journals (hand-written ones, and a whole
paper session on a synthetic replay), parsed back from the text exposition."""

from __future__ import annotations

import collections
import math

import pytest
from paper_runs import run_session, synthetic_slice
from prometheus_client.parser import text_string_to_metric_families

from live.collect import layout
from live.journal import Journal
from live.metrics import LATENCY_BUCKETS, Metrics, MetricsReader, render
from research.cli import main

T0 = 1_710_163_800_000_000_000


def samples(data: bytes | str) -> dict[tuple, float]:
    """(sample name, sorted label items) -> value."""
    text = data.decode() if isinstance(data, bytes) else data
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def status(pid: int, records: int, bars: int, decisions: int, last_ns: int, **kw) -> dict:
    return {"mode": "paper", "symbol": "ESM24", "pid": pid, "position": kw.get("position", 0),
            "pnl_today_usd": kw.get("pnl", 0.0), "pnl_open_usd": 12.5, "equity_usd": 100_000.0 + kw.get("pnl", 0.0),
            "trades_today": 2, "bars": bars, "feed": {"kind": "ReplayFeed", "records": records},
            "kill_switches": {"feed_halt": kw.get("feed_halt", False)},
            "latency": {"decisions": decisions, "last_decision_ns": last_ns}}


def collector_status(pid: int, ticks: int, bars: int, lag: float | None, state: str = "running") -> dict:
    return {"kind": "collector", "pid": pid, "symbols": [
        {"symbol": "ESM24", "state": state, "ticks": ticks, "bars": bars, "lag_s": lag,
         "disk_used_bytes": 4096, "disk_free_bytes": 10**9}]}


def test_trader_and_collector_journals(tmp_path):
    sd, root = tmp_path / "live", tmp_path / "collect"
    tj, cj = Journal(sd / "journal.sqlite"), Journal(layout.journal_path(root))
    tj.heartbeat(T0, status(100, 50, 5, 1, 300_000))  # 0.3 ms
    tj.heartbeat(T0, status(100, 60, 6, 1, 300_000))  # no new order: no new sample
    tj.heartbeat(T0, status(100, 80, 8, 3, 2_000_000, position=-1, pnl=-37.5))  # 2 ms
    tj.record_risk_event("daily_gate", "loss limit", T0, level="warning")
    tj.record_risk_event("daily_gate", "loss limit", T0, level="warning")
    tj.record_risk_event("emergency_stop", "flat", T0, level="critical")
    cj.heartbeat(T0, collector_status(200, 1000, 10, 0.75))
    cj.record_risk_event("gap", "no record for 3 min", T0, level="warning")

    reader = MetricsReader(state_dir=sd, collect_dir=root)
    assert reader.update() == ["trader", "collector"]
    s = samples(render(reader.metrics))
    tr, co = (("source", "trader"), ("symbol", "ESM24")), (("source", "collector"), ("symbol", "ESM24"))
    assert s[("navale_ticks_total", tr)] == 80 and s[("navale_bars_total", tr)] == 8
    assert s[("navale_ticks_total", co)] == 1000 and s[("navale_bars_total", co)] == 10
    sym = (("symbol", "ESM24"),)
    assert s[("navale_position_contracts", sym)] == -1
    assert s[("navale_pnl_today_usd", sym)] == -37.5 and s[("navale_equity_usd", sym)] == 100_000.0 - 37.5
    assert s[("navale_pnl_open_usd", sym)] == 12.5 and s[("navale_trades_today", sym)] == 2
    assert s[("navale_feed_up", tr)] == 1 and s[("navale_feed_up", co)] == 1
    assert s[("navale_collector_lag_seconds", sym)] == 0.75
    assert s[("navale_disk_used_bytes", sym)] == 4096 and s[("navale_disk_free_bytes", sym)] == 10**9
    alerts = {(dict(k[1])["source"], dict(k[1])["kind"], dict(k[1])["level"]): v
              for k, v in s.items() if k[0] == "navale_alerts_total"}
    assert alerts == {("trader", "daily_gate", "warning"): 2, ("trader", "emergency_stop", "critical"): 1,
                      ("collector", "gap", "warning"): 1}
    # two heartbeats with new orders: 0.3 ms and 2 ms
    assert s[("navale_tick_to_order_latency_seconds_count", ())] == 2
    assert s[("navale_tick_to_order_latency_seconds_sum", ())] == pytest.approx(0.0023)
    assert s[("navale_tick_to_order_latency_seconds_bucket", (("le", "0.0005"),))] == 1
    assert s[("navale_tick_to_order_latency_seconds_bucket", (("le", "0.0025"),))] == 2
    assert {float(k[1][0][1]) for k in s if k[0] == "navale_tick_to_order_latency_seconds_bucket"} \
        == {*LATENCY_BUCKETS, math.inf}

    # read again: nothing new, nothing counted twice; then a restarted trader (new pid) counts from zero
    reader.update()
    assert samples(render(reader.metrics))[("navale_ticks_total", tr)] == 80
    tj.heartbeat(T0, status(101, 7, 1, 1, 50_000_000))
    tj.record_risk_event("daily_gate", "loss limit", T0, level="warning")
    cj.heartbeat(T0, collector_status(200, 1500, 15, None, state="stalled"))
    reader.update()
    s = samples(render(reader.metrics))
    assert s[("navale_ticks_total", tr)] == 87 and s[("navale_bars_total", tr)] == 9
    assert s[("navale_ticks_total", co)] == 1500
    assert s[("navale_alerts_total", (("kind", "daily_gate"), ("level", "warning"), ("source", "trader")))] == 3
    assert s[("navale_tick_to_order_latency_seconds_count", ())] == 3
    assert math.isnan(s[("navale_collector_lag_seconds", sym)]) and s[("navale_feed_up", co)] == 0

    # the feed halted, then a heartbeat too old: the feed is down
    tj.heartbeat(T0, status(101, 8, 1, 1, 50_000_000, feed_halt=True))
    reader.update()
    assert samples(render(reader.metrics))[("navale_feed_up", tr)] == 0
    tj.heartbeat(T0, status(101, 9, 1, 1, 50_000_000))
    reader.update()
    assert samples(render(reader.metrics))[("navale_feed_up", tr)] == 1
    reader.update(now_ns=tj.last_heartbeat()["wall_ns"] + 31 * 10**9)
    s = samples(render(reader.metrics))
    assert s[("navale_feed_up", tr)] == 0 and s[("navale_heartbeat_age_seconds", (("source", "trader"),))] >= 31
    tj.close()
    cj.close()


def test_missing_journals_are_skipped_and_registries_are_separate(tmp_path):
    reader = MetricsReader(state_dir=tmp_path / "none", collect_dir=tmp_path / "none2")
    assert reader.update() == []
    s = samples(render(reader.metrics))
    assert s[("navale_tick_to_order_latency_seconds_count", ())] == 0
    other = Metrics()
    other.observe_latencies_ns([1_000_000])
    assert samples(render(other))[("navale_tick_to_order_latency_seconds_count", ())] == 1
    assert samples(render(reader.metrics.registry))[("navale_tick_to_order_latency_seconds_count", ())] == 0


@pytest.fixture(scope="module")
def paper(tmp_path_factory, data_dir):
    d = tmp_path_factory.mktemp("metrics")
    path, _ = synthetic_slice(1, d, first=3)
    trader, res = run_session(f"replay:{path}", d / "state", latency_capacity=100_000)
    return d / "state", res


def test_a_paper_session(paper):
    sd, res = paper
    reader = MetricsReader(state_dir=sd)
    reader.update()
    s = samples(render(reader.metrics))
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        st, beats, events, orders = j.status(), j.heartbeats(), j.risk_events(), j.orders()
    sym = st["symbol"]
    tr = (("source", "trader"), ("symbol", sym))
    assert res.records > 0 and s[("navale_ticks_total", tr)] == res.records
    assert res.bars > 0 and s[("navale_bars_total", tr)] == res.bars
    assert s[("navale_position_contracts", (("symbol", sym),))] == st["position"]
    assert s[("navale_pnl_today_usd", (("symbol", sym),))] == pytest.approx(st["pnl_today_usd"])
    assert s[("navale_equity_usd", (("symbol", sym),))] == pytest.approx(beats[-1]["status"]["equity_usd"])
    want = collections.Counter((e["kind"], e["level"]) for e in events)
    got = {(dict(k[1])["kind"], dict(k[1])["level"]): v for k, v in s.items() if k[0] == "navale_alerts_total"}
    assert got == dict(want) and want
    # every submitted order is a journaled decision; one sample per bar close that sent orders
    submitted = int((orders["status"] == "submitted").sum())
    assert submitted > 0 and beats[-1]["status"]["latency"]["decisions"] == submitted == len(res.decision_ns)
    counts = [b["status"]["latency"]["decisions"] for b in beats]
    closes = sum(1 for a, b in zip([0, *counts], counts) if b > a)
    assert s[("navale_tick_to_order_latency_seconds_count", ())] == closes > 0
    reader.observe_run(res)
    s = samples(render(reader.metrics))
    assert s[("navale_tick_to_order_latency_seconds_count", ())] == closes + submitted
    assert s[("navale_tick_to_order_latency_seconds_sum", ())] > 0


def test_cli(paper, tmp_path, capsys):
    sd, res = paper
    assert main(["metrics", "--state-dir", str(sd), "--collect-dir", str(tmp_path)]) == 0
    s = samples(capsys.readouterr().out)
    assert any(k[0] == "navale_ticks_total" and v == res.records for k, v in s.items())
    assert main(["metrics", "--state-dir", str(tmp_path / "a"), "--collect-dir", str(tmp_path / "b")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no journal at ") and err.count("\n") == 1


def test_the_grafana_dashboard_uses_the_metrics_that_exist():
    import json
    import re
    from pathlib import Path

    doc = json.loads((Path(__file__).resolve().parents[2] / "docs" / "grafana_dashboard.json").read_text())
    used = {n for p in doc["panels"] for t in p["targets"] for n in re.findall(r"navale_\w+", t["expr"])}
    for name in ("navale_pnl_today_usd", "navale_position_contracts", "navale_feed_up", "navale_alerts_total",
                 "navale_collector_lag_seconds", "navale_tick_to_order_latency_seconds_bucket"):
        assert name in used
    declared = {fam.name + suffix for fam in Metrics().registry.collect()
                for suffix in ("", "_total", "_bucket", "_count", "_sum")}
    assert used <= declared, used - declared
