"""The expected P&L band: its statistics, its file, the pnl_band and bars_out_of_order alerts, and the band a
`navale paper` session stores (the backtest of the same parameters: mean x days = that backtest's net)."""

from __future__ import annotations

import json
import math

import pytest

from live.alerts.config import AlertConfig
from live.alerts.rules import band_alert, evaluate
from live.pnl_band import PnlBand, band_from_daily, read_band, write_band


def test_band_statistics_and_the_cumulative_band():
    b = band_from_daily([0.0, 100.0, -50.0, 200.0, 0.0, 50.0], "planted")
    assert b.days == 6 and b.mean_day == pytest.approx(50.0)
    assert b.sd_day == pytest.approx(math.sqrt(sum((x - 50) ** 2 for x in [0, 100, -50, 200, 0, 50]) / 5))
    assert b.q05_day == pytest.approx(-37.5) and b.q95_day == pytest.approx(175.0)
    lo, hi = b.cum_band(4)
    assert (lo + hi) / 2 == pytest.approx(200.0) and hi - lo == pytest.approx(2 * 1.645 * b.sd_day * 2)
    assert band_from_daily([1.0, 2.0], "short") is None


def test_the_band_file_round_trips_and_a_bad_one_is_no_band(tmp_path):
    b = PnlBand(10.0, 5.0, -1.0, 20.0, 30, "x")
    write_band(tmp_path, b)
    assert read_band(tmp_path) == b and read_band(tmp_path / "journal.sqlite") == b
    (tmp_path / "expected_band.json").write_text("{not json")
    assert read_band(tmp_path) is None


def test_pnl_outside_the_band_alerts_and_inside_does_not():
    b = PnlBand(10.0, 5.0, -100.0, 200.0, 30, "x")
    assert band_alert({"pnl_today_usd": 50.0}, b, 1) == []
    low = band_alert({"pnl_today_usd": -150.0}, b, 1)
    assert [a.kind for a in low] == ["pnl_band"] and low[0].threshold == -100.0 and "below" in low[0].detail
    assert "above" in band_alert({"pnl_today_usd": 250.0}, b, 1)[0].detail
    assert band_alert({"pnl_today_usd": -150.0}, None, 1) == []


def test_records_out_of_order_alert_once_per_event():
    events = [{"id": 7, "kind": "late_record", "detail": "1 trade after its bar closed", "ts_ns": 5, "wall_ns": 5},
              {"id": 8, "kind": "feed_out_of_order", "detail": "DateTime went back", "ts_ns": 6, "wall_ns": 6}]
    got = [a for a in evaluate(AlertConfig(), 10, events=events) if a.kind == "bars_out_of_order"]
    assert [a.dedup_key for a in got] == ["risk_event:7", "risk_event:8"]


def test_a_paper_session_stores_the_band_of_the_same_parameters_backtest():
    from research.cli.paper_band import session_band
    from strategy import Params

    b = session_band(Params.for_mode("paper"), "synthetic")
    assert b.days == 10 and "synthetic" in b.source
    assert b.mean_day * b.days == pytest.approx(905.50)  # the synthetic session's net (trade for trade)
    assert json.loads(b.to_json())["days"] == 10
