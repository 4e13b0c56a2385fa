"""`navale backtest`: outputs, the run store, idempotent re-runs, the real 32 contracts."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from conftest import es5m_files

from research.cli import main
from research.store import RunStore


def test_backtest_default_synthetic(tmp_path, capsys):
    out = tmp_path / "bt"
    assert main(["backtest", "--out", str(out), "--json"]) == 0
    cap = capsys.readouterr()
    assert "SYNTHETIC DATA" in cap.err  # --json: stdout holds the JSON alone
    doc = json.loads(cap.out)
    run_id = doc[0]["run_id"]
    trades = pd.read_parquet(out / "trades.parquet")
    assert len(trades) == doc[0]["stats"]["trades"] > 5
    for name in ("trades.csv", "equity.parquet", "stats.json", "manifest.json", "params.toml", "per_year.csv"):
        assert (out / name).exists(), name
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["params_hash"] and manifest["data_files"][0]["sha256"]
    with RunStore(read_only=True) as store:
        assert run_id in set(store.runs()["run_id"])
        n = len(store.snapshots(run_id))
    assert n == len(trades)
    # same inputs -> same run id -> no duplicated rows
    assert main(["backtest", "--out", str(out)]) == 0
    with RunStore(read_only=True) as store:
        assert len(store.snapshots(run_id)) == n
        assert (store.runs()["run_id"] == run_id).sum() == 1


def test_backtest_params_file_and_mode(tmp_path, capsys):
    p = tmp_path / "p.toml"
    p.write_text('stop_ticks = 9\nmode = "paper"\n')
    assert main(["backtest", "--params", str(p), "--mode", "data_collection", "--out", str(tmp_path / "o"), "--no-store"]) == 0
    text = (tmp_path / "o" / "params.toml").read_text()
    assert 'mode = "data_collection"' in text and "stop_ticks = 9" in text and "min_base_quality = 0.4" in text
    p.write_text("stop_ticks = 0\n")
    assert main(["backtest", "--params", str(p), "--no-store", "--out", str(tmp_path / "x")]) == 2
    assert "stop_ticks" in capsys.readouterr().out


@pytest.mark.realdata
def test_backtest_all_32_contracts(tmp_path, capsys):
    files = [str(f) for f in es5m_files()]
    assert main(["backtest", *files, "--out", str(tmp_path / "bt"), "--json"]) == 0
    cap = capsys.readouterr()
    doc, text = json.loads(cap.out), cap.err
    assert len(doc) == 1 and doc[0]["series"] == "continuous"
    trades = pd.read_parquet(tmp_path / "bt" / "trades.parquet")
    assert trades["contract"].nunique() >= 9  # ESH15 .. ESU17
    # the backtest preset (2 contracts, $100,000) falls below the $24,000 ES margin in June 2017 and stops there
    assert trades["entry_ts"].min().year <= 2015 and doc[0]["trading_stopped"]["time"].startswith("2017-06-28")
    assert trades["exit_ts"].max() <= pd.Timestamp(doc[0]["trading_stopped"]["time"])
    assert "trading stopped 2017-06-28: equity $23,848 below margin $24,000 for 2 contract(s)" in text
    per_year = pd.read_csv(tmp_path / "bt" / "per_year.csv", index_col=0)
    assert per_year.loc["total", "trades"] == len(trades)
    with RunStore(read_only=True) as store:
        assert len(store.snapshots(doc[0]["run_id"])) == len(trades)


def test_runs_list_show_export(tmp_path, capsys):
    assert main(["backtest", "--out", str(tmp_path / "bt"), "--json"]) == 0
    text = capsys.readouterr().out
    run_id = json.loads(text[text.index("[\n"):])[0]["run_id"]
    assert main(["runs"]) == 0
    assert run_id in capsys.readouterr().out
    assert main(["runs", "show", run_id]) == 0
    assert '"params_hash"' in capsys.readouterr().out
    out = tmp_path / "snap.parquet"
    assert main(["runs", "export", str(out), "--run", run_id]) == 0
    import pyarrow.parquet as pq

    table = pq.read_table(out)
    assert table.schema.metadata[b"navale_snapshot_version"] == b"2"
    assert table.num_rows == len(pd.read_parquet(tmp_path / "bt" / "trades.parquet"))
    assert main(["runs", "show", "no-such-run"]) == 2


def test_backtest_date_filter_and_bad_input(tmp_path, capsys):
    out = tmp_path / "bt"
    assert main(["backtest", "--from", "2024-03-13", "--to", "2024-03-16", "--out", str(out), "--no-store"]) == 0
    trades = pd.read_parquet(out / "trades.parquet")
    days = trades["signal_ts"].dt.tz_convert("America/New_York").dt.date.astype(str)
    assert len(trades) and days.min() >= "2024-03-13" and days.max() <= "2024-03-15"
    assert main(["backtest", "--from", "2031-01-01", "--no-store", "--out", str(tmp_path / "x")]) == 2
    assert "no bars left" in capsys.readouterr().out
    bad = tmp_path / "ESH24.txt"
    bad.write_text("Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"
                   "2024/3/5, 08:30:00, 5100.00, 5101.25, 5099.75, oops, 120, 40, 50, 70\n")
    assert main(["backtest", str(bad), "--no-store", "--out", str(tmp_path / "y")]) == 2
    text = capsys.readouterr().out
    assert "ESH24.txt" in text and "line 2" in text
    assert main(["backtest", "--from", "yesterday-ish", "--no-store"]) == 2
    assert "--from 'yesterday-ish' is not a date" in capsys.readouterr().out
