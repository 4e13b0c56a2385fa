"""research.promotion and `navale promote`: thresholds, gate decisions, store rows, files, exit codes."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from research.promotion import (
    Thresholds,
    ThresholdsError,
    evaluate,
    evaluate_sweep,
    promotions,
    record_promotion,
    write_outputs,
)
from research.store import RunStore
from strategy.params import Params

try:  # the sweep package's result type (save/load); the tests build it from synthetic frames
    from research.sweep.result import SweepResult
except ImportError:  # pragma: no cover - only before research.sweep exists
    SweepResult = None

needs_sweep = pytest.mark.skipif(SweepResult is None, reason="research.sweep.result is not available")


def _sweep(kind: str, n: int = 24, seed: int = 0, sweep_id: str | None = None):
    """A SweepResult with 3 years of synthetic session P&L over quarterly contract segments."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2019-03-18", periods=780, name="session")
    x = rng.normal(0.0, 500.0, (len(idx), n))
    if kind == "edge":
        x[:, 5] += 150.0  # every period, every block
    x[rng.random(x.shape) < 0.2] = 0.0  # sessions without a trade
    daily = pd.DataFrame(x, index=idx, columns=list(range(n)))
    stops = [5, 6, 7, 8, 9, 10]
    grid = pd.DataFrame({"stop_ticks": [stops[i % 6] for i in range(n)],
                         "target_r": [1.5 + 0.5 * (i // 6) for i in range(n)]},
                        index=pd.RangeIndex(n, name="combo"))
    base = Params()
    grid["params_hash"] = [base.replace(stop_ticks=int(s), target_r=float(t)).hash()
                           for s, t in zip(grid.stop_ticks, grid.target_r)]
    grid["signal_hash"] = base.signal_hash()
    firsts = pd.date_range("2019-03-18", idx[-1], freq="QS-MAR") + pd.Timedelta(days=14)
    firsts = pd.DatetimeIndex([idx[0]]).append(firsts[firsts > idx[0]])
    segments = pd.DataFrame({"name": [f"ES{i}" for i in range(len(firsts))], "first_session": firsts,
                             "last_session": list(firsts[1:] - pd.Timedelta(days=1)) + [idx[-1]], "bars": 5000})
    summary = pd.DataFrame({"trades": (x != 0).sum(0), "net_pnl_usd": x.sum(0)}, index=grid.index)
    meta = {"sweep_id": sweep_id or f"test-{kind}", "base_params": base.to_dict(), "capital": 100_000.0,
            "n_trials": n}
    return SweepResult(grid=grid, summary=summary, daily_pnl=daily, segments=segments, meta=meta)


# ---------------------------------------------------------------- thresholds


def test_threshold_defaults_and_toml(tmp_path):
    t = Thresholds()
    assert (t.min_oos_sharpe, t.max_pbo, t.min_dsr) == (0.0, 0.5, 0.95)
    f = tmp_path / "gate.toml"
    f.write_text("[promotion]\nmax_pbo = 0.3\nmin_oos_sessions = 200\n\n[other]\nx = 1\n")
    t = Thresholds.from_toml(f)
    assert t.max_pbo == 0.3 and t.min_oos_sessions == 200 and t.min_dsr == 0.95
    assert t.with_overrides(min_dsr=0.9, max_pbo=None).min_dsr == 0.9
    assert t.with_overrides(min_dsr=0.9).max_pbo == 0.3


@pytest.mark.parametrize("text, field", [
    ("[promotion]\nmax_pbo = 'low'\n", "max_pbo"),
    ("[promotion]\nmin_dsr = 1.5\n", "min_dsr"),
    ("[promotion]\nmin_oos_sessions = 10.5\n", "min_oos_sessions"),
    ("[promotion]\nmin_oos_sessions = -1\n", "min_oos_sessions"),
    ("[promotion]\nmax_pbo_ratio = 0.2\n", "max_pbo_ratio"),
    ("[promotion]\nmin_oos_sharpe = true\n", "min_oos_sharpe"),
    ("[gate]\nmax_pbo = 0.2\n", "[promotion]"),
    ("[promotion\nmax_pbo = 0.2\n", "not valid TOML"),
])
def test_threshold_file_errors_name_the_field(tmp_path, text, field):
    f = tmp_path / "bad.toml"
    f.write_text(text)
    with pytest.raises(ThresholdsError, match="bad.toml") as err:
        Thresholds.from_toml(f)
    assert field in str(err.value)


def test_threshold_override_errors():
    with pytest.raises(ThresholdsError, match="max_pbo"):
        Thresholds().with_overrides(max_pbo=2.0)
    with pytest.raises(ThresholdsError, match="no such"):
        Thresholds.from_toml("/nonexistent/gate.toml")


# ---------------------------------------------------------------- the gate


@needs_sweep
def test_gate_refuses_noise_and_stores_the_refusal(tmp_path):
    res = _sweep("noise", seed=1)
    dec = evaluate_sweep(res)
    assert not dec.passed
    failed = {c.name for c in dec.checks if not c.passed}
    assert "dsr" in failed  # the best of 24 noise columns is not convincing after deflation
    assert dec.figures["dsr"]["dsr"] < 0.95 and dec.reasons
    assert any("DSR" in r for r in dec.reasons)
    with RunStore(tmp_path / "store.duckdb") as store:
        pid = record_promotion(store, dec)
        again = evaluate_sweep(res)
        record_promotion(store, again)  # a second evaluation adds a row; nothing is replaced
        rows = promotions(store, "test-noise")
    assert list(rows["promotion_id"]) == [pid, again.promotion_id]
    assert not rows["passed"].any()
    assert json.loads(rows["reasons"].iloc[0]) == dec.reasons
    assert json.loads(rows["thresholds"].iloc[0])["max_pbo"] == 0.5
    assert json.loads(rows["figures"].iloc[0])["pbo"]["n_combinations"] == 12_870
    assert str(rows["created"].dt.tz) == "UTC"


@needs_sweep
def test_gate_passes_a_planted_edge(tmp_path):
    res = _sweep("edge", seed=2)
    dec = evaluate_sweep(res)
    assert dec.passed, dec.reasons
    assert all(c.passed for c in dec.checks) and not dec.reasons
    assert dec.combo == 5 and dec.figures["full_sample_best"]["combo"] == 5
    assert dec.figures["pbo"]["pbo"] < 0.05 and dec.figures["dsr"]["dsr"] > 0.95
    assert dec.figures["settings"]["boundaries"] == "segments"
    assert dec.params == res.params(5) and dec.params_hash == res.grid.loc[5, "params_hash"]
    files = write_outputs(dec, tmp_path)
    assert set(files) == {"promotion.json", "params.toml", "ready_for_paper.toml"}
    assert Params.from_toml(files["params.toml"]) == res.params(5)
    paper = Params.from_toml(files["ready_for_paper.toml"])
    assert paper.mode == "paper" and paper.replace(mode="backtest") == res.params(5)
    saved = json.loads(files["promotion.json"].read_text())
    assert saved["passed"] and saved["combo"] == 5 and saved["promotion_id"] == dec.promotion_id
    with RunStore(tmp_path / "store.duckdb") as store:
        record_promotion(store, dec)
        row = promotions(store).iloc[0]
    assert bool(row["passed"]) and row["params_hash"] == dec.params_hash
    assert Params.from_dict(__import__("tomllib").loads(row["params"])) == res.params(5)

    # a later refusal (stricter thresholds) revokes the ready file instead of leaving it behind
    strict = evaluate_sweep(res, Thresholds(min_oos_sharpe=50.0))
    assert not strict.passed and any("Sharpe" in r for r in strict.reasons)
    files = write_outputs(strict, tmp_path)
    assert not (tmp_path / "ready_for_paper.toml").exists()
    assert files["revoked"].exists() and files["revoked"].name.endswith(strict.promotion_id)


def test_gate_refuses_regime_fitted_columns_on_pbo():
    # each column earns +60/session in a random half of the CSCV blocks and -60 in the other half:
    # whichever column looks best in-sample is, by construction, among the worst out of sample
    rng = np.random.default_rng(4)
    n_blocks, per_block, n = 16, 48, 30
    signs = np.array([rng.permutation([1.0] * 8 + [-1.0] * 8) for _ in range(n)]).T  # (blocks, columns)
    x = np.repeat(signs, per_block, axis=0) * 60.0 + rng.normal(0, 150, (n_blocks * per_block, n))
    idx = pd.bdate_range("2019-01-01", periods=x.shape[0], name="session")
    dec = evaluate(pd.DataFrame(x, index=idx), capital=100_000.0,
                   thresholds=Thresholds(min_oos_sharpe=-100.0, min_dsr=0.0))
    pbo = next(c for c in dec.checks if c.name == "pbo")
    assert not pbo.passed and pbo.value > 0.8
    assert not dec.passed and any(r.startswith("PBO") and "overfit" in r for r in dec.reasons)
    assert dec.figures["pbo"]["degradation_slope"] < 0


def test_evaluate_plain_inputs_without_sweep_package():
    rng = np.random.default_rng(3)
    idx = pd.bdate_range("2018-01-01", periods=700, name="session")
    df = pd.DataFrame(rng.normal(0, 300, (700, 1)), index=idx)
    dec = evaluate(df, capital=100_000.0, n_splits=8)  # one configuration: PBO cannot be computed
    assert not dec.passed and dec.params is None and dec.figures["settings"]["boundaries"] == "QS"
    assert any("PBO could not be computed" in r and "at least 2" in r for r in dec.reasons)
    json.loads(dec.to_json())  # strict JSON (no NaN)
    with pytest.raises(ValueError, match="periods with data"):
        evaluate(df.iloc[:200], capital=100_000.0)


# ---------------------------------------------------------------- CLI


def _parse(argv: list[str]) -> argparse.Namespace:
    from research.cli.promote_cmd import add_parser

    parser = argparse.ArgumentParser(prog="navale")
    add_parser(parser.add_subparsers(dest="group"), argparse.RawDescriptionHelpFormatter)
    return parser.parse_args(["promote", *argv])


@needs_sweep
def test_cli_promote_exit_codes(tmp_path, capsys):
    from research.cli import promote_cmd

    sweeps = tmp_path / "sweeps"
    _sweep("edge", seed=2, sweep_id="edge01").save(sweeps / "edge01")
    _sweep("noise", seed=1, sweep_id="noise01").save(sweeps / "noise01")
    store = str(tmp_path / "store.duckdb")
    common = ["--sweeps-dir", str(sweeps), "--store", store]

    assert promote_cmd.run(_parse(["--run", "edge01", *common])) == 0
    out = capsys.readouterr().out
    assert "PROMOTED to paper trading" in out and "pbo" in out and "dsr" in out
    assert (sweeps / "edge01" / "ready_for_paper.toml").exists()

    assert promote_cmd.run(_parse(["--run", str(sweeps / "noise01"), "--store", store, "--json"])) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["passed"] is False and doc["reasons"] and doc["sweep_id"] == "noise01"
    assert not (sweeps / "noise01" / "ready_for_paper.toml").exists()
    assert (sweeps / "noise01" / "params.toml").exists()

    # flags override: an impossible DSR threshold refuses the planted edge too
    assert promote_cmd.run(_parse(["--run", "edge01", *common, "--min-dsr", "1.0"])) == 1
    capsys.readouterr()

    with RunStore(store, read_only=True) as s:
        rows = promotions(s)
    assert list(rows["sweep_id"]) == ["edge01", "noise01", "edge01"]
    assert list(rows["passed"]) == [True, False, False]

    # bad input -> 2, with the file / field named
    assert promote_cmd.run(_parse(["--run", "nope", *common])) == 2
    assert "nope" in capsys.readouterr().out
    bad = tmp_path / "gate.toml"
    bad.write_text("[promotion]\nmax_pbo = 'x'\n")
    assert promote_cmd.run(_parse(["--run", "edge01", *common, "--thresholds", str(bad)])) == 2
    err = capsys.readouterr().out
    assert "gate.toml" in err and "max_pbo" in err
    assert promote_cmd.run(_parse(["--run", "edge01", *common, "--max-pbo", "1.5"])) == 2
    assert "max_pbo" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert promote_cmd.run(_parse(["--run", str(tmp_path / "empty"), *common])) == 2
    assert "not a saved sweep" in capsys.readouterr().out
    assert promote_cmd.run(_parse(["--run", "edge01", *common, "--is-periods", "40"])) == 2
    assert "periods" in capsys.readouterr().out
