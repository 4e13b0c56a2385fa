"""ModelValidator: purged CV, OOS isolation, permutation test, economic test, gaps, persistence, fallback split."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from ml_fixtures import fake_bar_context, fake_snapshots
from research.ml.dataset import MLDataProcessor, MLDataset
from research.ml.validate import ModelValidator, ValidationConfig, ValidationReport, select_C

OOS_FROM = "2019-10-01"  # fake data: 600 trades from 2019-01-02 to 2020-04 (~55% train, ~45% OOS)
FAST = {"oos_from": OOS_FROM, "n_permutations": 30, "n_repeats_importance": 5, "seed": 0}
TABLES = ("selection", "cv_folds", "cv_summary", "gaps", "importance", "coefficients", "stability",
          "learning_curve", "calibration", "oos_predictions", "economic", "equity")


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
    assert r.oos_metrics["auc"] > 0.6 and r.oos_metrics["log_loss"] < r.baseline["log_loss"]


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
    assert r.economic["variant"].str.startswith("top 50% (P>=").sum() == 1
    assert "dsr" in econ.columns and np.isfinite(econ.loc["P>=0.55", "dsr"])
    assert (econ.loc[econ["kind"] != "none", "n_trials"] == 3 * 5).all()
    assert "n_trials = 15" in r.economic.attrs["note"]
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
    assert econ.loc["P>=1.00", "n_trials"] == 3 * 4


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
    assert back.economic.attrs["note"] == r.economic.attrs["note"]
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
    assert ValidationConfig().n_filter_trials == 15
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
    sb = backtest_series(s, load_params(), label="continuous", store=True)
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
          f"OOS log loss {r.oos_metrics['log_loss']:.4f} vs base rate {r.baseline['log_loss']:.4f}; "
          f"permutation p {r.permutation['p_value']:.3f} (50); C {r.model.C:g}")
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        print(r.economic[["variant", "trades", "net_pnl_usd", "win_rate", "sharpe", "max_drawdown_usd", "psr", "dsr"]])
    print(r.verdict["text"])
