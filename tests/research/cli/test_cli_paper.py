"""`navale paper`: validated configurations only (or --unvalidated, marked), live mode refused, a replay
written like `navale backtest --out`, a promotion's parameters found by id and by its ready_for_paper.toml."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from research.backtest import run
from research.cli import main
from research.data import default_dataset, load_bars
from research.store import RunStore, default_store_path
from research.validation.promotion import paper_params
from strategy import Params


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("NAVALE_LIVE_DIR", str(tmp_path / "live"))
    return tmp_path


@pytest.fixture
def bars_file(env):
    bars = load_bars(default_dataset(), bar="5min")
    days = bars.index.tz_convert("America/Chicago").normalize().unique()
    short = bars.loc[bars.index < days[4].tz_convert("UTC")]  # three trading dates
    path = env / "ESM24.csv"
    short.reset_index().to_csv(path, index=False)
    return path, load_bars(path)


def test_unvalidated_parameters_need_the_flag(env, capsys):
    assert main(["paper", "--feed", "synthetic"]) == 2
    err = capsys.readouterr().err
    assert "not accepted by `navale promote`" in err and "--unvalidated" in err


def test_live_mode_is_not_a_paper_mode(env, capsys):
    with pytest.raises(SystemExit) as e:
        main(["paper", "--mode", "live", "--unvalidated"])
    assert e.value.code == 2 and "invalid choice: 'live'" in capsys.readouterr().err


def test_live_needs_a_promotion_never_unvalidated(env, capsys, tmp_path):
    with pytest.raises(SystemExit):
        main(["live", "--unvalidated", "--live-config", str(tmp_path / "l.toml")])
    assert "unrecognized arguments: --unvalidated" in capsys.readouterr().err
    assert main(["live", "--live-config", str(tmp_path / "l.toml"), "--feed", "synthetic"]) == 2
    assert "not accepted by `navale promote`" in capsys.readouterr().err


def test_replay_out_has_the_backtest_columns_and_trades(env, bars_file, capsys):
    path, bars = bars_file
    out = env / "out"
    assert main(["paper", "--unvalidated", "--feed", f"replay:{path}", "--out", str(out), "--quiet",
                 "--no-store"]) == 0
    err = capsys.readouterr().err
    assert "UNVALIDATED" in err and "replay_end" in err
    got = pd.read_parquet(out / "trades.parquet")
    want = run(bars, Params.for_mode("paper")).trades
    assert list(got.columns) == list(want.columns)
    cols = ["side", "signal_ts", "entry_ts", "exit_ts", "entry_price", "exit_price", "exit_reason", "pnl_usd",
            "mfe_ticks", "mae_ticks"]
    pd.testing.assert_frame_equal(got[cols], want[cols].reset_index(drop=True), check_dtype=False)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["unvalidated"] is True and manifest["promotion_id"] is None
    # a second start on the ended session resumes at its end: nothing new, no duplicate
    assert main(["paper", "--unvalidated", "--feed", f"replay:{path}", "--quiet", "--no-store"]) == 0
    assert "0 trades" in capsys.readouterr().err


def test_a_promotion_is_found_by_id_and_by_its_ready_for_paper_file(env, bars_file, capsys):
    path, _ = bars_file
    tested = Params()  # what a sweep would have tested (mode backtest)
    with RunStore(default_store_path()) as store:
        store.write_promotion({
            "promotion_id": "promo-1", "sweep_id": "sw", "created": pd.Timestamp("2026-01-01", tz="UTC"),
            "passed": True, "thresholds": "{}", "figures": "{}", "params": tested.to_toml(),
            "params_hash": tested.hash(), "reasons": "[]"})
    out = env / "o1"
    assert main(["paper", "--from-promotion", "promo-1", "--feed", f"replay:{path}", "--quiet", "--out", str(out),
                 "--state-dir", str(env / "s1")]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["unvalidated"] is False and m["promotion_id"] == "promo-1" and m["mode"] == "paper"
    ready = env / "ready_for_paper.toml"
    ready.write_text(paper_params(tested).to_toml(), encoding="utf-8")
    out = env / "o2"
    assert main(["paper", "--params", str(ready), "--feed", f"replay:{path}", "--quiet", "--out", str(out),
                 "--state-dir", str(env / "s2"), "--no-store"]) == 0
    assert json.loads((out / "manifest.json").read_text())["promotion_id"] == "promo-1"
    assert main(["paper", "--from-promotion", "nope", "--feed", f"replay:{path}"]) == 2
    assert "no promotion 'nope'" in capsys.readouterr().err
