"""What a run says about itself: 'no trades' instead of NaN, the margin floor and when it stopped
trading, and a progress bar on a terminal (none with --json)."""

from __future__ import annotations

import io
import json
import math

import pandas as pd
import pytest
from conftest import shared_file
from rich.console import Console

from research.cli import main
from research.cli.common import progress_bar


def _strict_json(text: str):
    """json.loads that refuses NaN and Infinity (not JSON)."""
    def refuse(name: str):
        raise ValueError(f"{name} in JSON")

    return json.loads(text, parse_constant=refuse)


def test_progress_bar_draws_description_count_and_eta_on_a_terminal():
    buf = io.StringIO()
    con = Console(file=buf, force_terminal=True, width=120)
    with progress_bar(console=con) as bar:
        t = bar.add_task("loading files", total=3)
        bar.advance(t)
        bar.refresh()
    out = buf.getvalue()
    assert "loading files" in out and "1/3" in out and "ETA" in out
    buf = io.StringIO()
    with progress_bar(console=Console(file=buf, force_terminal=True), enabled=False) as bar:
        bar.add_task("loading files", total=3)
        bar.refresh()
    assert buf.getvalue() == ""
    buf = io.StringIO()  # not a terminal (a log file, a pipe): not a byte either
    with progress_bar(console=Console(file=buf)) as bar:
        bar.add_task("loading files", total=3)
        bar.refresh()
    assert buf.getvalue() == ""


def test_backtest_progress_on_stderr_and_none_with_json(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")  # stderr counts as a terminal
    assert main(["backtest", "--no-store", "--out", str(tmp_path / "a")]) == 0
    cap = capsys.readouterr()
    assert "loading files" in cap.err and "backtesting" in cap.err and "ETA" in cap.err
    assert "loading files" not in cap.out
    assert main(["backtest", "--no-store", "--out", str(tmp_path / "b"), "--json"]) == 0
    cap = capsys.readouterr()
    assert "loading files" not in cap.err and "ETA" not in cap.err


def test_data_check_progress_on_stderr(capsys, monkeypatch):
    monkeypatch.setenv("TTY_COMPATIBLE", "1")
    assert main(["data", "check"]) == 0
    cap = capsys.readouterr()
    assert "checking" in cap.err and "1/1" in cap.err and "ETA" in cap.err and "ETA" not in cap.out


def test_a_run_without_trades_says_no_trades(tmp_path, capsys):
    p = tmp_path / "never.toml"
    p.write_text("entry_threshold = 1.0\n")  # the score never reaches 1: no entry
    out = tmp_path / "bt"
    assert main(["backtest", "--params", str(p), "--no-store", "--out", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    text = cap.err  # --json: the tables go to stderr, stdout holds the JSON alone
    assert "no trades in" in text and "nan" not in (cap.out + text).lower()
    doc = _strict_json(cap.out)
    st = doc[0]["stats"]
    assert st["trades"] == 0 and st["win_rate"] is None and st["profit_factor"] is None and st["sharpe_daily"] is None
    stats = _strict_json((out / "stats.json").read_text())
    assert stats["trades"] == 0 and stats["win_rate"] is None


@pytest.mark.realdata
def test_margin_floor_stops_trading_and_is_reported(tmp_path, capsys):
    f = shared_file("es-5m/ESH20-CME.scid_BarData__5m.txt.gz")
    p = tmp_path / "thin.toml"
    p.write_text("contracts = 2\ninitial_capital_usd = 25000.0\n")  # $1,000 above the $24,000 of margin
    out = tmp_path / "bt"
    assert main(["backtest", str(f), "--params", str(p), "--no-store", "--out", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    doc, text = _strict_json(cap.out), cap.err
    stop = doc[0]["trading_stopped"]
    assert doc[0]["margin_usd"] == 24_000.0 and stop is not None and stop["equity_usd"] < 24_000.0
    assert f"trading stopped {stop['time'][:10]}: equity ${stop['equity_usd']:,.0f} below margin $24,000 for 2" in text
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["margin"] == {"floor": True, "per_contract_usd": 12_000.0, "usd": 24_000.0,
                                  "trading_stopped": stop}
    trades = pd.read_parquet(out / "trades.parquet")
    assert (trades["entry_ts"] <= pd.Timestamp(stop["time"])).all()  # no entry after the stop
    eq = pd.read_parquet(out / "equity.parquet")
    after = eq.loc[eq.index > pd.Timestamp(stop["time"])]
    assert len(after) and (after["position"] == 0).all() and after["equity"].nunique() == 1
    assert math.isclose(after["equity"].iloc[0], 25_000.0 + trades["pnl_usd"].sum())


def test_performance_report_context_says_no_trades(tmp_path):
    from research.reports.performance import performance_context

    p = tmp_path / "never.toml"
    p.write_text("entry_threshold = 1.0\n")
    ctx = performance_context(None, p)
    assert ctx.result.trades.empty and any(w.startswith("No trades") for w in ctx.warnings)
    head = ctx.tracker.headline()
    assert head.loc["win_rate", "value"] == "no trades" and head.loc["trading_stopped", "value"] == "no"


@pytest.mark.realdata
def test_performance_report_context_says_when_trading_stopped(tmp_path):
    from research.reports.performance import performance_context

    p = tmp_path / "thin.toml"
    p.write_text("contracts = 2\ninitial_capital_usd = 25000.0\n")
    ctx = performance_context([shared_file("es-5m/ESH20-CME.scid_BarData__5m.txt.gz")], p)
    stop = ctx.result.meta["trading_stopped"]
    assert stop is not None
    assert any(w.startswith(f"Trading stopped {stop['time'][:10]}: equity $") and "below margin $24,000 for 2" in w
               for w in ctx.warnings)
    assert ctx.tracker.headline().loc["trading_stopped", "value"].startswith(stop["time"][:10])
