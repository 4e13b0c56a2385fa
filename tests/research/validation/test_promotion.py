"""research.validation.promotion and `navale promote`: thresholds, gate decisions, store rows, files, exit codes."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pandas as pd
import pytest

from research.store import RunStore
from research.validation.promotion import (
    Thresholds,
    ThresholdsError,
    evaluate,
    evaluate_sweep,
    promotions,
    record_promotion,
    write_outputs,
)
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


def test_threshold_former_name_is_read(tmp_path):
    f = tmp_path / "old.toml"
    f.write_text("[promotion]\nmin_oos_trading_days = 45\n")  # written before the check counted trades
    assert Thresholds.from_toml(f).min_oos_trades == 45
    assert Thresholds().with_overrides(min_oos_trading_days=12).min_oos_trades == 12
    f.write_text("[promotion]\nmin_oos_trading_days = 45\nmin_oos_trades = 50\n")
    with pytest.raises(ThresholdsError, match="min_oos_trades only"):
        Thresholds.from_toml(f)


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
    assert paper.mode == "paper"
    assert paper.replace(mode="backtest", daily_profit_target_usd=None, max_drawdown_pct=None,
                         max_consecutive_losses=None) == res.params(5)
    assert (paper.daily_profit_target_usd, paper.max_drawdown_pct, paper.max_consecutive_losses) == (1000.0, 3.0, 5)
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


def _late_bloomer(seed: int = 0) -> pd.DataFrame:
    """20 configurations over 2016-01 .. 2021-06: combo 0 earns a steady +100/session, combo 1 loses
    150/session until 2020-Q3 and wins 400/session after; the rest are noise (sd 500)."""
    rng = np.random.default_rng(seed)
    idx = pd.bdate_range("2016-01-01", "2021-06-30", name="session")
    x = rng.normal(0.0, 500.0, (len(idx), 20))
    x[:, 0] += 100.0
    late = idx >= "2020-07-01"
    x[~late, 1] -= 150.0
    x[late, 1] += 400.0
    return pd.DataFrame(x, index=idx, columns=pd.RangeIndex(20, name="combo"))


def test_gate_checks_the_dsr_of_the_configuration_it_promotes():
    # The latest IS window (2020-Q3 .. 2021-Q2) chooses combo 1; the full-sample best is combo 0. The
    # walk-forward (mostly combo 0) and PBO look fine, and the full-sample best's DSR is ~1, so a gate
    # that checked that DSR promoted combo 1, whose own full-sample Sharpe is negative.
    from research.validation.overfitting import dsr_of_best
    from research.validation.sharpe import dsr_from_moments, sharpe_moments

    df = _late_bloomer()
    dec = evaluate(df, capital=100_000.0)
    assert dec.combo == 1 and dec.figures["full_sample_best"]["combo"] == 0
    value = {c.name: c.value for c in dec.checks}
    assert value["oos_sharpe"] > 3 and value["pbo"] < 0.05  # everything else passes
    assert [c.name for c in dec.checks if not c.passed] == ["dsr"] and not dec.passed
    full = dsr_of_best(df, 100_000.0)
    assert full["best"] == 0 and full["dsr"] > 0.99  # the full-sample best (not what the gate checks)
    assert dec.figures["dsr_full_sample_best"]["dsr"] == pytest.approx(full["dsr"])
    assert dec.figures["full_sample_best"]["dsr"] == pytest.approx(full["dsr"])
    own = dsr_from_moments(*sharpe_moments(df[1] / 100_000.0), 20, full["sr_variance"])
    assert value["dsr"] == pytest.approx(own) and own < 0.01
    assert dec.figures["dsr"]["combo"] == 1 and dec.figures["dsr"]["n_trials"] == 20
    assert any(r.startswith("DSR") and "combo 1" in r for r in dec.reasons)
    # the trial count of the whole search deflates the proposed configuration too
    more = evaluate(df, capital=100_000.0, n_trials=500)
    assert more.figures["dsr"]["n_trials"] == 500 and more.figures["dsr"]["expected_max_sharpe"] > \
        dec.figures["dsr"]["expected_max_sharpe"]


def test_trade_count_check_counts_trades_when_the_sweep_has_them():
    res = _sweep("edge", seed=2)
    base = evaluate_sweep(res, Thresholds(min_oos_trades=600))  # no daily_trades: sessions with a trade stand in
    stand_in = next(c for c in base.checks if c.name == "oos_trading_days")
    assert stand_in.value == base.figures["walk_forward"]["oos_trading_days"] < 600 and not stand_in.passed
    assert "no trade counts" in stand_in.reason and base.figures["trade_counts"].startswith("sessions")
    # two trades on every session with a P&L: the real count passes where the stand-in did not
    res.daily_trades = pd.DataFrame(np.where(res.daily_pnl.to_numpy() != 0, 2, 0).astype(np.int32),
                                    index=res.daily_pnl.index, columns=res.daily_pnl.columns)
    dec = evaluate_sweep(res, Thresholds(min_oos_trades=600))
    assert [c.name for c in dec.checks] == ["oos_sharpe", "pbo", "dsr", "oos_sessions", "oos_trades"]
    trades = next(c for c in dec.checks if c.name == "oos_trades")
    assert trades.value == 2 * stand_in.value and trades.passed and dec.passed
    assert dec.figures["walk_forward"]["oos_trades"] == trades.value
    short = evaluate_sweep(res, Thresholds(min_oos_trades=int(trades.value) + 1))
    assert not short.passed and any("out-of-sample trades" in r for r in short.reasons)
    # IS trade minimum: no combo has 10,000 trades in a year, so every window stands aside
    aside = evaluate_sweep(res, min_trades=10_000)
    assert aside.combo is None and not aside.passed and aside.figures["settings"]["min_trades"] == 10_000


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
    with pytest.raises(ValueError, match=r"4 periods with data.*is_periods = 3 \(--is-periods 3\) is the largest"):
        evaluate(df.iloc[:200], capital=100_000.0, is_periods=4)
    assert evaluate(df.iloc[:200], capital=100_000.0).figures["settings"]["is_periods"] == 3  # from the data
    with pytest.raises(ValueError, match="needs at least 2"):
        evaluate(df.iloc[:40], capital=100_000.0)


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
    # CSCV blocks: an odd, absurd or too-fine --n-splits is an argument error, never a recorded "pbo n/a FAIL"
    for splits, said in (("3", "--n-splits 3: CSCV needs an even number of blocks from 2 to 20"),
                         ("100000", "--n-splits 100000: CSCV needs an even number of blocks from 2 to 20"),
                         ("0", "--n-splits 0: CSCV needs an even number")):
        assert promote_cmd.run(_parse(["--run", "edge01", *common, "--n-splits", splits])) == 2
        out = capsys.readouterr().out
        assert said in out and out.count("\n") == 1, out
    with RunStore(store, read_only=True) as s:
        assert len(promotions(s)) == 3  # nothing recorded for the bad arguments
    # the trade-count threshold, under its name and its former one (this sweep has no trade counts)
    for flag in ("--min-oos-trades", "--min-oos-trading-days"):
        assert promote_cmd.run(_parse(["--run", "edge01", "--sweeps-dir", str(sweeps), "--no-store", "--json",
                                       flag, "100000"])) == 1
        doc = json.loads(capsys.readouterr().out)
        assert doc["thresholds"]["min_oos_trades"] == 100000
        assert [c["name"] for c in doc["checks"] if not c["passed"]] == ["oos_trading_days"]


def _two_contracts(frame: pd.DataFrame) -> pd.DataFrame:
    from strategy.market.sessions import session_id

    f = frame.copy()
    sid = session_id(f.index)
    f["contract"] = pd.Categorical(np.where(sid < np.unique(sid)[5], "ESH24", "ESM24"))
    f["roll_offset"] = 0.0
    f.attrs = dict(frame.attrs)
    return f


@needs_sweep
def test_cli_promote_refuses_and_records_a_sweep_where_nothing_traded(tmp_path, capsys):
    # entry_threshold 1.0 is never reached: no configuration trades, no Sharpe is defined. The gate
    # fails its DSR check with the reason and records the refusal (it does not exit with an error).
    from research.cli import promote_cmd
    from research.pipeline import Series, load_series
    from research.sweep import run_sweep

    frame = _two_contracts(load_series(None)[0].frame)
    res = run_sweep([Series("continuous", frame, [])], {"entry_threshold": [1.0], "stop_ticks": [5, 9]},
                    scheduler="serial", cache_dir=False, progress=False, warmup_sessions=2)
    assert res.summary["trades"].sum() == 0 and res.daily_trades.to_numpy().sum() == 0
    folder = tmp_path / "sweeps" / "flat01"
    res.save(folder)
    store = str(tmp_path / "store.duckdb")
    # two contracts: the default in-sample length is taken from the data (1), no --is-periods needed
    assert promote_cmd.run(_parse(["--run", str(folder), "--store", store, "--json"])) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["figures"]["settings"]["is_periods"] == 1
    assert "stitched OOS Sharpe n/a (no OOS trades)" in doc["verdict"] and "nan" not in doc["verdict"]
    dsr = next(c for c in doc["checks"] if c["name"] == "dsr")
    assert not dsr["passed"] and "DSR could not be computed" in dsr["reason"] and "defined sharpe" in dsr["reason"]
    assert doc["figures"]["full_sample_best"]["combo"] is None
    assert any(c["name"] == "oos_trades" and c["value"] == 0 for c in doc["checks"])  # real counts, loaded
    assert doc["combo"] is None and doc["passed"] is False
    with RunStore(store, read_only=True) as s:
        rows = promotions(s)
    assert list(rows["sweep_id"]) == [res.meta["sweep_id"]] and not rows["passed"].iloc[0]
    assert json.loads(rows["reasons"].iloc[0]) == doc["reasons"]
    # the table output prints too (no KeyError on the missing full-sample best)
    before = {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()}
    assert "promotion.json" in before
    sessions = len(res.daily_pnl)
    assert promote_cmd.run(_parse(["--run", str(folder), "--no-store", "--n-splits", "16"])) == 2
    assert f"error: --n-splits 16: {sessions} sessions are too few for 16 blocks" in capsys.readouterr().out
    assert promote_cmd.run(_parse(["--run", str(folder), "--no-store", "--is-periods", "1"])) == 1
    out = capsys.readouterr().out
    assert "REFUSED" in out and "DSR not computed" in out and "what-if" in out
    # a what-if leaves the recorded decision's files alone
    assert {p.name: p.read_bytes() for p in folder.iterdir() if p.is_file()} == before


def test_n_splits_must_fit_the_sessions_and_defaults_to_what_they_allow():
    from research.validation.overfitting import check_n_splits, default_n_splits

    res = _sweep("noise", seed=1)
    short = res.daily_pnl.iloc[:20]
    fine = evaluate(short, res.grid, capital=100_000.0, n_splits=16, is_periods=1)  # fails its check, with the fix
    pbo = next(c for c in fine.checks if c.name == "pbo")
    assert not pbo.passed and "20 sessions are too few for 16 blocks" in pbo.reason and "use at most 10" in pbo.reason
    with pytest.raises(ValueError, match="n_splits = 3: CSCV needs an even number"):
        evaluate(short, res.grid, capital=100_000.0, n_splits=3, is_periods=1)
    assert (default_n_splits(20), default_n_splits(780), default_n_splits(7), default_n_splits(2)) == (10, 16, 2, 2)
    assert check_n_splits(20, 40) == 20
    for bad in (3, 22, 1, True, 2.0):
        with pytest.raises(ValueError, match="n_splits"):
            check_n_splits(bad)
    d = evaluate(short, res.grid, capital=100_000.0, is_periods=1)  # the default adapts to 20 sessions
    assert d.figures["settings"]["n_splits"] == 10 and "error" not in d.figures["pbo"]


def test_cli_promote_writes_its_files_first_and_keeps_an_unrecorded_decision_pending(tmp_path, capsys):
    """A store that cannot be written (here: a damaged file) costs no decision: the files are written,
    the row waits as a pending bundle, exit 3 with one `error:` line, and `navale runs import` records it once."""
    from research.cli import main, promote_cmd
    from research.store.pending import PROMOTION_SUFFIX

    sweeps = tmp_path / "sweeps"
    _sweep("edge", seed=2, sweep_id="edge01").save(sweeps / "edge01")
    store = tmp_path / "data" / "store.duckdb"
    store.parent.mkdir()
    store.write_bytes(b"not a DuckDB file" * 64)
    assert promote_cmd.run(_parse(["--run", "edge01", "--sweeps-dir", str(sweeps), "--store", str(store)])) == 3
    out = capsys.readouterr().out
    errors = [line for line in out.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and str(store) in errors[0] and "navale runs import" in errors[0], out
    assert (sweeps / "edge01" / "promotion.json").exists() and (sweeps / "edge01" / "ready_for_paper.toml").exists()
    pending = list((store.parent / "pending").glob(f"*{PROMOTION_SUFFIX}"))
    assert len(pending) == 1
    store.unlink()
    for _ in range(2):  # the second import finds nothing left; a kept bundle would be skipped as already stored
        assert main(["runs", "--store", str(store), "import", str(store.parent / "pending")]) == 0
    with RunStore(store, read_only=True) as s:
        rows = promotions(s)
    assert list(rows["sweep_id"]) == ["edge01"] and list(rows["passed"]) == [True]
    assert rows["created"].dt.tz is not None
