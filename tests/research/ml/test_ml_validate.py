"""ModelValidator: purged CV, OOS isolation, permutation test, economic test, gaps, persistence, fallback split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from ml_fixtures import fake_bar_context, fake_snapshots

from research.ml.dataset import MLDataProcessor, MLDataset
from research.ml.validate import (
    ModelValidator,
    ValidationConfig,
    ValidationReport,
    auc_significance,
    economic_test,
    filter_checks,
    select_C,
)

OOS_FROM = "2019-10-01"  # fake data: 600 trades from 2019-01-02 to 2020-04 (~55% train, ~45% OOS)
FAST = {"oos_from": OOS_FROM, "n_permutations": 30, "n_repeats_importance": 5, "seed": 0}
TABLES = ("selection", "cv_folds", "cv_summary", "gaps", "importance", "coefficients", "stability",
          "learning_curve", "calibration", "oos_predictions", "economic", "equity", "economic_trials")


def _dataset(signal: float, seed: int = 0, n: int = 600, start: str = "2019-01-02") -> MLDataset:
    snaps = fake_snapshots(n, seed=seed, signal=signal, start=start)
    return MLDataProcessor().from_frame(snaps, bars=fake_bar_context(snaps))


@pytest.fixture(scope="module")
def noise_ds() -> MLDataset:
    return _dataset(0.0)


@pytest.fixture(scope="module")
def signal_ds() -> MLDataset:
    return _dataset(1.5)


@pytest.fixture(scope="module")
def noise_report(noise_ds) -> ValidationReport:
    return ModelValidator(**FAST).run(noise_ds)


@pytest.fixture(scope="module")
def signal_report(signal_ds) -> ValidationReport:
    return ModelValidator(**FAST).run(signal_ds)


# ---------------------------------------------------------------------- skill or not
def test_random_labels_are_not_significant(noise_report):
    perm = noise_report.permutation
    assert perm["p_value"] > 0.05
    assert abs(perm["perm_mean"] - 0.5) < 0.05
    assert len(perm["perm_scores"]) == perm["n_permutations"] == 30
    assert noise_report.verdict["adds_value"] is False
    assert noise_report.verdict["checks"]["permutation_significant"] is False
    assert "does not add" in noise_report.verdict["text"]
    # no ranking: the OOS AUC is not significant and its interval straddles 0.5
    m = noise_report.oos_metrics
    assert m["auc_p_value"] > 0.05 and m["auc_ci_low"] < 0.5 < m["auc_ci_high"]
    assert noise_report.verdict["checks"]["oos_auc_ok"] is False


def test_planted_signal_is_found(signal_report):
    r = signal_report
    assert r.cv_summary.loc["auc", "mean"] > 0.6
    assert r.permutation["p_value"] < 0.05
    assert r.importance.iloc[0]["feature"] == "battle_with"
    assert r.importance.iloc[0]["rank"] == 1
    coefs = r.coefficients.drop("const")
    assert coefs["sklearn_coef"].abs().idxmax() == "battle_with"
    assert coefs.loc["battle_with", "p_holm"] < 0.05
    assert r.stability.iloc[0]["feature"] == "battle_with"
    assert r.stability.set_index("feature").loc["battle_with", "sign_agreement"] == 1.0
    assert r.oos_metrics["auc"] > 0.6 and r.oos_metrics["log_loss"] < r.baseline["log_loss_model_mean"]
    assert r.oos_metrics["auc_p_value"] < 1e-6 and r.oos_metrics["auc_ci_low"] > 0.6
    assert r.verdict["checks"]["oos_auc_ok"] and r.verdict["checks"]["beats_constant"]
    assert r.verdict["checks"]["filter_improvement_significant"]  # the planted ranking does skip losers


def test_report_tables_are_complete(signal_report):
    r = signal_report
    for name in TABLES:
        assert len(getattr(r, name)), name
    assert r.selection["chosen"].sum() == 1
    assert set(r.selection.columns) >= {"C", "cv_log_loss_mean", "cv_log_loss_std", "cv_auc_mean", "cv_auc_std", "chosen"}
    folds = r.cv_folds
    assert list(folds["fold"]) == list(range(5))
    n_train = r.dataset["n_train"]
    assert (folds["n_train"] + folds["n_test"] + folds["n_purged"] == n_train).all()
    assert folds["n_test"].sum() == n_train
    assert set(r.cv_summary.columns) == {"mean", "std", "min", "max"}
    assert list(r.gaps["metric"]) == ["auc", "log_loss", "brier"]
    assert r.coefficients.index.name == "feature" and r.coefficients.index[0] == "const"
    assert r.calibration["count"].sum() == r.dataset["n_oos"]
    assert list(r.oos_predictions.columns) == ["run_id", "trade_id", "decision_ts", "side", "p_win", "y_win", "y_r",
                                               "pnl_usd"]
    assert r.learning_curve["train_size"].is_monotonic_increasing
    assert r.model is not None and r.model.C == r.selection.loc[r.selection["chosen"], "C"].item()
    assert set(r.verdict["checks"]) == set(r.verdict["rules"])
    assert all(isinstance(v, bool) for v in r.verdict["checks"].values())


def test_progress_stages(signal_ds):
    stages: list[str] = []
    ModelValidator(**{**FAST, "n_permutations": 3, "n_repeats_importance": 1}).run(signal_ds, progress=stages.append)
    assert stages[0] == "split" and stages[-1] == "verdict"
    assert {"selection", "cv", "permutation", "importance", "economic"} <= set(stages)


# ---------------------------------------------------------------------- OOS isolation
def test_oos_rows_never_fitted(signal_ds, monkeypatch):
    """Every fit of the run (selection, CV, permutation test, learning curve, final model) sees train rows only."""
    from sklearn.pipeline import Pipeline

    _, oos = signal_ds.split_oos(OOS_FROM)
    oos_rows = {row.tobytes() for row in oos.X.to_numpy(np.float64)}
    seen = {"fits": 0, "oos_rows": 0}
    fit = Pipeline.fit

    def spy(self, X, y=None, **kw):
        X = np.asarray(X, dtype=np.float64)
        seen["fits"] += 1
        seen["oos_rows"] += sum(row.tobytes() in oos_rows for row in X)
        return fit(self, X, y, **kw)

    monkeypatch.setattr(Pipeline, "fit", spy)
    ModelValidator(**{**FAST, "n_permutations": 5, "n_repeats_importance": 2}).run(signal_ds)
    assert seen["fits"] > 15 + 5 * 5  # 3 C x 5 folds, permutations, learning curve, final
    assert seen["oos_rows"] == 0


def test_flipped_oos_labels_change_nothing_in_selection(signal_ds, signal_report):
    frame = signal_ds.frame.copy()
    oos = pd.DatetimeIndex(frame["decision_ts"]) >= pd.Timestamp(OOS_FROM, tz="UTC")
    frame.loc[oos, "y_win"] = 1 - frame.loc[oos, "y_win"]
    flipped = MLDataset(frame, signal_ds.features, meta=dict(signal_ds.meta))
    r = ModelValidator(**FAST).run(flipped)
    pd.testing.assert_frame_equal(r.selection, signal_report.selection)
    pd.testing.assert_frame_equal(r.cv_folds, signal_report.cv_folds)
    pd.testing.assert_frame_equal(r.stability, signal_report.stability)
    assert r.permutation == signal_report.permutation
    assert r.train_metrics == signal_report.train_metrics
    # the quantile thresholds come from train predictions: same variants
    assert list(r.economic["variant"]) == list(signal_report.economic["variant"])
    # ... while the OOS figures do see the flip
    assert r.oos_metrics["auc"] == pytest.approx(1 - signal_report.oos_metrics["auc"])


def test_select_C_uses_the_train_rows_it_is_given(signal_ds, signal_report):
    train, _ = signal_ds.split_oos(OOS_FROM)
    C, table = select_C(train, ValidationConfig(**FAST))
    assert C == signal_report.model.C
    pd.testing.assert_frame_equal(table, signal_report.selection)


# ---------------------------------------------------------------------- economic test
def test_economic_table(signal_ds, signal_report):
    r = signal_report
    econ = r.economic.set_index("variant")
    _, oos = signal_ds.split_oos(OOS_FROM)
    raw = econ.loc["no filter"]
    assert raw["trades"] == len(oos) == r.dataset["n_oos"]
    assert raw["net_pnl_usd"] == pytest.approx(oos.frame["pnl_usd"].sum())
    assert raw["net_pnl_usd"] == pytest.approx(r.oos_predictions["pnl_usd"].sum())
    assert r.equity["no filter"].iloc[-1] == pytest.approx(raw["net_pnl_usd"])
    filt = r.economic[r.economic["kind"] != "none"].sort_values("threshold")
    assert filt["trades"].is_monotonic_decreasing  # non-increasing with the threshold
    for _, row in filt.iterrows():
        assert row["trades"] == int((r.oos_predictions["p_win"] >= row["threshold"]).sum())
    assert list(r.economic["variant"][:4]) == ["no filter", "P>=0.55", "P>=0.70", "P>=0.80"]
    assert r.economic["variant"].str.startswith("train top 50% cut (P>=").sum() == 1
    assert r.economic["variant"].str.startswith("train top 30% cut (P>=").sum() == 1
    assert "dsr" in econ.columns and np.isfinite(econ.loc["P>=0.55", "dsr"])
    n = len(r.config["C_grid"]) * 5
    assert (econ.loc[econ["kind"] != "none", "n_trials"] == n).all()
    assert f"n_trials = {n}" in r.economic.attrs["note"]
    # the chosen C on every filter row; 'no filter' does not depend on the model
    assert math.isnan(raw["C"]) and (econ.loc[econ["kind"] != "none", "C"] == r.model.C).all()
    # improvement = filtered P&L minus what a random filter taking the same share would expect
    pred = r.oos_predictions
    for name, row in econ[econ["kind"] != "none"].iterrows():
        share = (pred["p_win"] >= row["threshold"]).mean()
        assert row["share_taken"] == pytest.approx(share)
        assert row["improvement_usd"] == pytest.approx(row["net_pnl_usd"] - share * raw["net_pnl_usd"])
    assert math.isnan(raw["improvement_sharpe"]) and raw["improvement_usd"] == 0
    assert "weekdays" in r.economic.attrs["calendar"]  # fake data: no session list
    assert any("weekdays" in w for w in r.dataset["warnings"])
    # the equity spans the OOS calendar, one column per variant
    assert list(r.equity.columns) == list(r.economic["variant"])
    assert r.equity.index.min() <= pd.Timestamp(OOS_FROM) + pd.Timedelta(days=3)


def test_zero_trade_variant(signal_ds):
    r = ModelValidator(**{**FAST, "thresholds": (0.55, 0.9999), "n_permutations": 3}).run(signal_ds)
    econ = r.economic.set_index("variant")
    row = econ.loc["P>=1.00"]
    assert row["trades"] == 0 and row["net_pnl_usd"] == 0.0 and math.isnan(row["sharpe"])
    assert (r.equity["P>=1.00"] == 0).all()
    assert econ.loc["P>=1.00", "n_trials"] == len(r.config["C_grid"]) * 4  # empty variants count as trials (conservative) ...
    trials = r.economic_trials
    empty = trials["trades"] == 0
    assert empty.sum() >= 3 and r.economic.attrs["n_empty"] == empty.sum()
    assert f"{empty.sum()} of them empty" in r.economic.attrs["note"]
    # ... but the variances come from the non-empty variants of every C, not from zeros standing for empty ones
    assert r.economic.attrs["sr_variance"] == pytest.approx(np.var(trials.loc[~empty, "sharpe_daily"], ddof=1))
    assert r.economic.attrs["improvement_sr_variance"] == pytest.approx(
        np.var(trials.loc[~empty, "improvement_sharpe_daily"], ddof=1))


def test_every_C_of_the_grid_is_a_computed_trial(signal_ds, signal_report):
    """The DSR's trial count is backed by trials: each C of the grid fitted on the train rows, its variants
    evaluated; the chosen C's rows are the economic table's."""
    from research.ml.model import make_pipeline

    r = signal_report
    trials = r.economic_trials
    n = len(r.config["C_grid"]) * 5
    assert len(trials) == r.economic.attrs["n_trials"] == n == ValidationConfig(**r.config).n_filter_trials
    assert sorted(trials["C"].unique()) == sorted(r.config["C_grid"])
    assert (trials.groupby("C").size() == 5).all()
    train, oos = signal_ds.split_oos(OOS_FROM)
    for C, rows in trials.groupby("C"):
        pipe = make_pipeline(C).fit(train.X.to_numpy(np.float64), train.y)
        p = pipe.predict_proba(oos.X.to_numpy(np.float64))[:, 1]
        p_train = pipe.predict_proba(train.X.to_numpy(np.float64))[:, 1]
        for _, row in rows.iterrows():
            assert row["trades"] == int((p >= row["threshold"]).sum()), (C, row["variant"])
            if row["kind"] == "quantile":
                keep = float(row["variant"].split("top ")[1].split("%")[0]) / 100
                assert row["threshold"] == pytest.approx(np.quantile(p_train, 1 - keep))
    chosen = trials[trials["chosen"]].reset_index(drop=True)
    assert (chosen["C"] == r.model.C).all()
    econ = r.economic[r.economic["kind"] != "none"].reset_index(drop=True)
    pd.testing.assert_frame_equal(chosen.drop(columns="chosen"), econ, check_exact=False, rtol=1e-12)
    assert np.isfinite(econ["dsr"]).all() and np.isfinite(econ["improvement_dsr"]).all()


# ---------------------------------------------------------------------- the improvement test (model-free)
def _calendar(trades: pd.DataFrame) -> pd.DatetimeIndex:
    d = trades["exit_ts"].dt.tz_convert("America/New_York").dt.tz_localize(None).dt.normalize()
    return pd.bdate_range(d.min(), d.max())


def test_noise_filter_on_a_profitable_base_is_no_improvement():
    """Random labels, positive expectancy (base rate 0.5: +$346 vs -$204 a trade), filters of pure noise that skip
    10-30% of the trades. Their own Sharpe beats the unfiltered one and their own DSR passes by luck often (what
    the old checks asked); the improvement over taking every trade is significant in fewer than 10% of draws."""
    cfg = ValidationConfig(thresholds=(), quantile_keep=(0.9, 0.8, 0.7))
    old_style = new = 0
    n_seeds = 40
    for seed in range(n_seeds):
        trades = fake_snapshots(300, seed=seed, base_rate=0.5)
        assert trades["pnl_usd"].mean() > 0
        rng = np.random.default_rng(1000 + seed)
        p_oos = {C: rng.random(len(trades)) for C in (0.01, 0.1, 1.0)}
        p_train = {C: rng.random(500) for C in (0.01, 0.1, 1.0)}
        econ, _, trials = economic_test(trades, p_oos, p_train, _calendar(trades), cfg, chosen_C=0.01)
        assert len(trials) == 9 and econ.attrs["n_trials"] == 9
        checks, best = filter_checks(econ, 30)
        new += checks["filter_improvement_significant"]
        assert not all(checks.values())
        unf = econ.iloc[0]
        filt = econ[econ["kind"] != "none"]
        by_sharpe = filt.loc[filt["sharpe"].idxmax()]
        old_style += bool(by_sharpe["sharpe"] > unf["sharpe"] and by_sharpe["dsr"] > 0.95)
    assert new / n_seeds < 0.10
    assert old_style / n_seeds > 0.2  # the old pair of checks: passed by noise


def test_planted_filter_that_skips_losers_passes():
    trades = fake_snapshots(300, seed=3, base_rate=0.35)
    win = (trades["pnl_usd"] > 0).to_numpy()
    rng = np.random.default_rng(0)
    p_oos = np.clip(0.35 + 0.4 * win + rng.normal(0, 0.1, len(trades)), 0, 1)
    p_train = np.clip(0.35 + 0.4 * (rng.random(800) < 0.35) + rng.normal(0, 0.1, 800), 0, 1)
    econ, equity, trials = economic_test(trades, p_oos, p_train, _calendar(trades), ValidationConfig())
    assert len(trials) == 5 and trials["C"].isna().all()  # one model, no C given
    checks, best = filter_checks(econ, 30)
    assert checks == {"filter_improvement_significant": True, "filter_dsr_ok": True, "filter_enough_trades": True}
    taken = p_oos >= best["threshold"]
    share = taken.mean()
    # the improvement is over a random filter taking the same share: filtered minus share x unfiltered P&L
    expected = trades.loc[taken, "pnl_usd"].sum() - share * trades["pnl_usd"].sum()
    assert expected > 0 and best["improvement_usd"] == pytest.approx(expected)
    from research.validation.sharpe import sharpe_moments

    diff = equity[best["variant"]].diff().fillna(equity[best["variant"]]) - \
        share * equity["no filter"].diff().fillna(equity["no filter"])
    assert best["improvement_sharpe_daily"] == pytest.approx(sharpe_moments(diff.to_numpy() / 100_000.0)[0])
    assert best["improvement_sharpe"] == pytest.approx(best["improvement_sharpe_daily"] * math.sqrt(252))
    # the same filter, inverted (skips the winners): no improvement
    econ_bad, _, _ = economic_test(trades, 1 - p_oos, 1 - p_train, _calendar(trades), ValidationConfig())
    assert filter_checks(econ_bad, 30)[0]["filter_improvement_significant"] is False


@pytest.fixture(scope="module")
def profitable_noise_report() -> ValidationReport:
    snaps = fake_snapshots(600, seed=1, signal=0.0, base_rate=0.5)
    ds = MLDataProcessor().from_frame(snaps, bars=fake_bar_context(snaps))
    return ModelValidator(**{**FAST, "n_permutations": 5, "n_repeats_importance": 1}).run(ds)


def test_model_on_random_labels_with_a_profitable_base(profitable_noise_report):
    r = profitable_noise_report
    unf = r.economic.iloc[0]
    assert unf["variant"] == "no filter" and unf["net_pnl_usd"] > 0 and unf["psr"] > 0.95
    assert r.verdict["checks"]["filter_improvement_significant"] is False
    assert r.verdict["adds_value"] is False
    assert "no filter picks trades significantly better than a random filter of the same share" in r.verdict["text"]
    best = r.economic.set_index("variant").loc[r.verdict["best_variant"]]
    assert best["improvement_dsr"] < 0.95  # noise picks no better than chance (its sign is luck)
    assert "improvement Sharpe of" in r.verdict["text"]


# ---------------------------------------------------------------------- log loss and AUC checks
def test_beats_constant_is_not_fooled_by_a_drifting_base_rate():
    """The real-data case: base rate 18% in training, 30% out of sample, predictions drifting to ~0.27 with no
    ranking. Beats the constant train base rate, not a constant at its own mean."""
    from research.ml.model import classification_metrics
    from research.ml.validate import _baseline

    rng = np.random.default_rng(0)
    y_train = (rng.random(2000) < 0.18).astype(int)
    yo = (rng.random(1000) < 0.30).astype(int)
    p = np.clip(0.27 + rng.normal(0, 0.08, 1000), 0.01, 0.99)  # independent of yo (holds for 194 of 200 seeds)
    m = classification_metrics(yo, p)
    base = _baseline(y_train, yo, p, m)
    assert base["model_mean_oos"] == pytest.approx(p.mean())
    assert m["log_loss"] < base["log_loss_train_rate"]  # the old check passed
    assert m["log_loss"] > base["log_loss_model_mean"]  # the new one does not
    assert base["log_loss_skill_vs_model_mean"] < 0 < base["log_loss_skill_vs_train_rate"]


def test_beats_constant_check_uses_the_model_mean(noise_report, signal_report):
    for r in (noise_report, signal_report):
        b = r.baseline
        assert b["model_mean_oos"] == pytest.approx(r.oos_predictions["p_win"].mean())
        assert r.verdict["checks"]["beats_constant"] == (r.oos_metrics["log_loss"] < b["log_loss_model_mean"])
        assert {"log_loss_train_rate", "log_loss_model_mean"} <= set(b)
        assert "beats_base_rate" not in r.verdict["checks"]


def test_auc_significance():
    from scipy.stats import mannwhitneyu
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = (rng.random(300) < 0.3).astype(int)
    p = rng.random(300) + 0.3 * y
    out = auc_significance(y, p, seed=0)
    auc = roc_auc_score(y, p)
    u = mannwhitneyu(p[y == 1], p[y == 0], alternative="greater")
    assert u.statistic / ((y == 1).sum() * (y == 0).sum()) == pytest.approx(auc)
    assert out["auc_p_value"] == pytest.approx(u.pvalue) and out["auc_p_value"] < 0.01
    assert out["auc_ci_low"] < auc < out["auc_ci_high"] and 0.5 < out["auc_ci_low"]
    assert auc_significance(y, p, seed=0) == out  # seeded
    # the rank-based AUC of a bootstrap resample equals sklearn's on the same resample
    idx = np.random.default_rng(7).integers(0, 300, size=(1, 300))[0]
    one = auc_significance(y, p, n_boot=1, seed=7)
    assert one["auc_ci_low"] == pytest.approx(roc_auc_score(y[idx], p[idx])) == one["auc_ci_high"]
    ties = np.round(p, 1)  # ties count one half, as in sklearn
    one = auc_significance(y, ties, n_boot=1, seed=7)
    assert one["auc_ci_low"] == pytest.approx(roc_auc_score(y[idx], ties[idx]))
    noise = auc_significance(y, rng.random(300), seed=0)
    assert noise["auc_p_value"] > 0.05 and noise["auc_ci_low"] < 0.5 < noise["auc_ci_high"]
    assert math.isnan(auc_significance(np.zeros(10, int), p[:10])["auc_p_value"])


def test_oos_auc_ok_needs_a_significant_auc(signal_report):
    from research.ml.validate import _verdict

    r = signal_report
    args = (ValidationConfig(**r.config), r.cv_summary, r.oos_metrics, r.baseline, r.permutation, r.economic,
            r.oos_predictions["p_win"].to_numpy(), r.gaps)
    assert _verdict(*args)["checks"]["oos_auc_ok"] is True
    weak = {**r.oos_metrics, "auc_p_value": 0.2}  # AUC >= 0.55 but not distinguishable from chance
    assert _verdict(args[0], args[1], weak, *args[3:])["checks"]["oos_auc_ok"] is False


# ---------------------------------------------------------------------- permutation rule
def test_permutation_check_needs_99_permutations():
    signal_ds = _dataset(1.5, n=300)  # the rule is about the count, not the data: a smaller set keeps 99 refits cheap
    few = ModelValidator(**{**FAST, "n_permutations": 20, "n_repeats_importance": 1}).run(signal_ds)
    assert few.permutation["p_value"] == pytest.approx(1 / 21)  # < 0.05: passed by construction before
    assert few.verdict["checks"]["permutation_significant"] is False
    assert any(w.startswith("20 permutations") and "99 or more" in w for w in few.dataset["warnings"])
    assert "not rated (20 permutations" in few.verdict["text"]
    enough = ModelValidator(**{**FAST, "n_permutations": 99, "n_repeats_importance": 1}).run(signal_ds)
    assert enough.permutation["p_value"] == pytest.approx(0.01)
    assert enough.verdict["checks"]["permutation_significant"] is True
    assert not any("permutations" in w for w in enough.dataset["warnings"])


# ---------------------------------------------------------------------- model metadata, C at the edge
def test_model_carries_cv_and_oos_metrics(signal_report, tmp_path):
    r = signal_report
    metrics = r.model.metadata["metrics"]
    assert set(metrics) == {"train", "cv", "oos"}
    assert metrics["cv"]["auc"] == {"mean": pytest.approx(r.cv_summary.loc["auc", "mean"]),
                                    "std": pytest.approx(r.cv_summary.loc["auc", "std"])}
    assert set(metrics["cv"]) == set(r.cv_summary.index)
    assert metrics["oos"] == r.oos_metrics
    from research.ml.model import SimpleLinearModel

    back = SimpleLinearModel.load(r.model.save(tmp_path / "m.joblib"))
    assert back.metadata["metrics"]["oos"]["auc"] == r.oos_metrics["auc"]
    assert back.metadata["metrics"]["cv"]["log_loss"]["mean"] == pytest.approx(r.cv_summary.loc["log_loss", "mean"])


def test_C_at_the_edge_of_the_grid_warns(signal_ds, signal_report):
    assert signal_report.model.C == 0.1  # inside (0.01, 0.1, 1): no warning
    assert not any("edge of the grid" in w for w in signal_report.dataset["warnings"])
    r = ModelValidator(**{**FAST, "C_grid": (0.001, 0.01, 0.1), "n_permutations": 1,
                          "n_repeats_importance": 1}).run(signal_ds)
    assert r.model.C == 0.1
    (w,) = [w for w in r.dataset["warnings"] if "edge of the grid" in w]
    assert w.startswith("C chosen at the edge of the grid: extend --C-grid") and "largest" in w


# ---------------------------------------------------------------------- gaps
def test_gap_flags(signal_ds, signal_report):
    tiny = ModelValidator(**{**FAST, "gap_auc": 1e-9, "gap_log_loss": 1e-9, "n_permutations": 3}).run(signal_ds)
    flags = tiny.gaps.set_index("metric")["flag"]
    assert "overfits" in flags["auc"] and "overfits" in flags["log_loss"]  # in-sample always beats CV here
    assert tiny.gaps.set_index("metric").loc["auc", "threshold"] == 1e-9
    assert "Gaps:" in tiny.verdict["text"]
    loose = ModelValidator(**{**FAST, "gap_auc": 1.0, "gap_log_loss": 1.0, "n_permutations": 3}).run(signal_ds)
    assert list(loose.gaps.set_index("metric").loc[["auc", "log_loss"], "flag"]) == ["ok", "ok"]
    g = signal_report.gaps.set_index("metric")
    assert g.loc["auc", "train_cv_gap"] == pytest.approx(g.loc["auc", "train"] - g.loc["auc", "cv"])
    assert g.loc["log_loss", "cv_oos_gap"] == pytest.approx(g.loc["log_loss", "oos"] - g.loc["log_loss", "cv"])


# ---------------------------------------------------------------------- persistence
def test_save_load_round_trip(signal_ds, signal_report, tmp_path):
    r = signal_report
    folder = r.save(tmp_path / "validation")
    assert (folder / "validation.json").exists() and (folder / "model.joblib").exists()
    back = ValidationReport.load(folder)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(back, name), getattr(r, name), check_exact=False, rtol=1e-12,
                                      obj=name)
    assert back.config == r.config and back.dataset == r.dataset
    assert back.verdict == r.verdict
    assert back.permutation == r.permutation
    for name in ("train_metrics", "oos_metrics", "baseline"):
        a, b = getattr(r, name), getattr(back, name)
        assert a.keys() == b.keys()
        for k in a:
            assert a[k] == b[k] or (isinstance(a[k], float) and math.isnan(a[k]) and math.isnan(b[k])), (name, k)
    assert back.economic.attrs == r.economic.attrs
    assert back.economic_trials.attrs == r.economic_trials.attrs
    assert {"C", "improvement_usd", "improvement_sharpe", "improvement_psr", "improvement_dsr"} <= set(back.economic)
    assert back.economic_trials["chosen"].dtype == bool and len(back.economic_trials) == len(r.config["C_grid"]) * 5
    assert set(back.verdict["checks"]) == {"permutation_significant", "oos_auc_ok", "beats_constant",
                                           "filter_improvement_significant", "filter_dsr_ok", "filter_enough_trades"}
    assert back.model.metadata["metrics"]["oos"] == r.model.metadata["metrics"]["oos"]
    assert back.model.metadata["metrics"]["cv"] == r.model.metadata["metrics"]["cv"]
    _, oos = signal_ds.split_oos(OOS_FROM)
    np.testing.assert_array_equal(back.model.predict_signal_quality(oos), r.model.predict_signal_quality(oos))
    assert ValidationConfig(**back.config) == ValidationConfig(**r.config)


def test_load_refuses_other_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="validation.json"):
        ValidationReport.load(tmp_path)


# ---------------------------------------------------------------------- split rules
def test_fallback_split_when_oos_from_is_not_reached(signal_ds):
    r = ModelValidator(**{**FAST, "oos_from": "2021-01-01", "n_permutations": 3}).run(signal_ds)
    d = r.dataset
    assert d["oos_from_requested"] == "2021-01-01" and d["oos_from"] != "2021-01-01"
    assert d["oos_rule"].startswith("fallback")
    assert any("last 25%" in w for w in d["warnings"])
    assert d["n_oos"] == pytest.approx(0.25 * d["n_all"], abs=2)
    assert pd.Timestamp(d["span_train"][1]) < pd.Timestamp(d["oos_from"]) <= pd.Timestamp(d["span_oos"][0])
    assert d["n_train"] + d["n_oos"] <= d["n_all"]


def test_refuses_too_few_trades_or_one_class(signal_ds):
    tiny = _dataset(1.5, n=30)
    with pytest.raises(ValueError, match="too few"):
        ModelValidator(**FAST).run(tiny)
    frame = signal_ds.frame.copy()
    frame["y_win"] = 0
    with pytest.raises(ValueError, match="one label class"):
        ModelValidator(**FAST).run(MLDataset(frame, signal_ds.features, meta=dict(signal_ds.meta)))


def test_config_overrides_and_checks():
    v = ModelValidator(ValidationConfig(n_splits=4), n_permutations=7)
    assert v.config.n_splits == 4 and v.config.n_permutations == 7
    assert ValidationConfig(C_grid=[0.5, 2]).C_grid == (0.5, 2.0)
    assert ValidationConfig().n_filter_trials == 4 * 5 == len(ValidationConfig().C_grid) * 5
    with pytest.raises(ValueError):
        ValidationConfig(C_grid=(0.0,))
    with pytest.raises(ValueError):
        ValidationConfig(quantile_keep=(1.5,))


# ---------------------------------------------------------------------- real data
@pytest.mark.realdata
def test_real_es_validation():
    from conftest import es5m_files

    from research.pipeline import backtest_series, load_params, load_series

    s = load_series(es5m_files())[0]
    sb = backtest_series(s, load_params(), label="continuous", store=True, margin_floor=False)  # as the ML data set builds it
    ds = MLDataProcessor().from_store(sb.run_id)
    r = ModelValidator(n_permutations=50, n_jobs=2).run(ds)
    d = r.dataset
    assert d["oos_rule"].startswith("configured") and not any("last 25%" in w for w in d["warnings"])
    assert d["span_train"][0].startswith(("2014-12", "2015")) and d["span_train"][1].startswith("2020")
    assert d["span_oos"][0].startswith("2021") and d["span_oos"][1].startswith("2022")
    assert d["n_oos"] > 200 and d["n_train"] > 2000
    for name in TABLES:
        assert len(getattr(r, name)), name
    assert len(r.importance) == len(ds.features) == 42
    assert "sessions" in r.economic.attrs["calendar"]
    assert r.verdict["text"].startswith("The model ")
    econ = r.economic.set_index("variant")
    assert econ.loc["no filter", "trades"] == d["n_oos"]
    cv = r.cv_summary
    print(f"\nCV AUC {cv.loc['auc', 'mean']:.3f} ± {cv.loc['auc', 'std']:.3f}; OOS AUC {r.oos_metrics['auc']:.3f}; "
          f"OOS log loss {r.oos_metrics['log_loss']:.4f} vs base rate {r.baseline['log_loss_train_rate']:.4f}, "
          f"model mean {r.baseline['log_loss_model_mean']:.4f}; "
          f"permutation p {r.permutation['p_value']:.3f} (50); C {r.model.C:g}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(r.economic[["variant", "trades", "net_pnl_usd", "win_rate", "sharpe", "max_drawdown_usd", "psr", "dsr",
                          "improvement_sharpe", "improvement_dsr"]])
    print(r.verdict["text"])


def test_too_few_wins_for_the_permutation_test_is_said_plainly():
    """Few target hits: a label shuffle leaves a CV training part with one class; the error says why in
    the project's words, not scikit-learn's."""
    snaps = fake_snapshots(80, seed=2, base_rate=0.08, start="2019-01-02")
    ds = MLDataProcessor().from_frame(snaps, bars=fake_bar_context(snaps))
    with pytest.raises(ValueError) as err:
        ModelValidator(**{**FAST, "oos_from": "2019-03-01", "n_permutations": 50, "n_repeats_importance": 2}).run(ds)
    msg = str(err.value)
    assert "solver" not in msg and "np.int64" not in msg, msg
    assert "needs both outcomes in every CV training part" in msg and "2 target hits" in msg, msg
