"""SimpleLinearModel: training, prediction, persistence, feature-schema guards, thresholds, scheduled refit
and statsmodels inference, on synthetic snapshots (tests/ml_fixtures.py) with a planted battle_with effect."""

from __future__ import annotations

import os
import re
import warnings
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from ml_fixtures import fake_bar_context, fake_snapshots

from research.ml import features as F
from research.ml.dataset import MLDataProcessor, MLDataset
from research.ml.model import (
    MODE_THRESHOLDS,
    MODEL_FILE_FORMAT,
    MODEL_FILE_VERSION,
    FeatureSchemaError,
    ModelFileError,
    SimpleLinearModel,
    _drop_aliased,
    _drop_rare_flags,
    classification_metrics,
    make_pipeline,
    threshold_for,
    verify_model_file,
)

_ORDER = ["decision_ts", "run_id", "trade_id"]


# ------------------------------------------------------------------ fixtures (built once: the dataset build is the slow part)
@pytest.fixture(scope="module")
def snaps() -> pd.DataFrame:
    return fake_snapshots(600, seed=0, signal=2.0)


@pytest.fixture(scope="module")
def ds(snaps) -> MLDataset:
    d = MLDataProcessor().from_frame(snaps, bars=fake_bar_context(snaps))
    assert len(d) >= 500 and "battle_with" in d.features
    return d


@pytest.fixture(scope="module")
def new_snaps() -> pd.DataFrame:
    """Later trades of another (paper) run: what update() receives."""
    return fake_snapshots(40, seed=5, signal=2.0, start="2021-06-01", run_id="paper-run")


@pytest.fixture(scope="module")
def new(new_snaps) -> MLDataset:
    d = MLDataProcessor().from_frame(new_snaps, bars=fake_bar_context(new_snaps, seed=7))
    assert len(d) >= 30
    return d


@pytest.fixture(scope="module")
def ds_nobar(snaps) -> MLDataset:
    return MLDataProcessor(bar_features=False).from_frame(snaps)


@pytest.fixture(scope="module")
def model(ds) -> SimpleLinearModel:
    return SimpleLinearModel().train(ds)


def _with_columns(ds: MLDataset, cols: dict[str, np.ndarray]) -> MLDataset:
    """``ds`` with extra feature columns appended (after the built ones)."""
    frame = ds.frame.copy()
    for k, v in cols.items():
        frame[k] = np.asarray(v, dtype=np.float64)
    return MLDataset(frame, (*ds.features, *cols), meta=dict(ds.meta))


# ------------------------------------------------------------------ 1. train + predict
def test_predict_forms_agree_and_are_probabilities(model, ds):
    p_ds = model.predict_signal_quality(ds)
    p_df = model.predict_signal_quality(ds.frame)
    p_x = model.predict_signal_quality(ds.X.iloc[:, ::-1])  # column order of a frame does not matter
    assert isinstance(p_ds, np.ndarray) and isinstance(p_df, np.ndarray)
    assert p_ds.shape == (len(ds),)
    assert np.all((p_ds > 0) & (p_ds < 1))
    np.testing.assert_array_equal(p_ds, p_df)
    np.testing.assert_array_equal(p_ds, p_x)
    assert p_ds.std() > 0.05  # not a constant

    for i in (0, 17, len(ds) - 1):
        row = ds.frame.iloc[i]
        p_series = model.predict_signal_quality(row)
        p_dict = model.predict_signal_quality(row.to_dict())
        p_feat_dict = model.predict_signal_quality({f: float(row[f]) for f in ds.features})
        for p in (p_series, p_dict, p_feat_dict):
            assert isinstance(p, float)
            assert 0 < p < 1
            assert p == pytest.approx(p_ds[i], abs=1e-12)


def test_planted_signal_is_learned(model):
    train = model.metadata["metrics"]["train"]
    assert train["auc"] > 0.65
    assert train["n"] == model.metadata["n_train"]
    coef = model.coefficients().set_index("feature")["coef"]
    assert coef.idxmax() == "battle_with"
    assert coef["battle_with"] > 0
    # constant columns are dropped by the pipeline and reported with a zero coefficient
    dropped = model.metadata["dropped_constant"]
    assert "ldu" in dropped
    assert (coef[dropped] == 0).all()


def test_no_class_weights_and_calibrated_in_the_large(model, ds):
    assert model.class_weight is None
    assert model.pipeline.named_steps["logit"].class_weight is None
    assert model.metadata["hyperparameters"]["class_weight"] is None
    p = model.predict_signal_quality(ds)
    base = ds.y.mean()
    assert model.metadata["base_rate"] == pytest.approx(base)
    # unweighted logit with an (unpenalised) intercept: mean fitted P = base rate
    assert abs(p.mean() - base) < 0.02
    # the contrast the module docstring warns about: balanced weights pull P toward 0.5
    balanced = SimpleLinearModel(class_weight="balanced").train(ds)
    assert balanced.pipeline.named_steps["logit"].class_weight == "balanced"
    assert balanced.predict_signal_quality(ds).mean() - base > 0.05


def test_metadata_records_the_training(model, ds):
    md = model.metadata
    assert md["features"] == list(ds.features)
    assert md["feature_schema_version"] == F.FEATURE_SCHEMA_VERSION
    assert md["training_data_hash"] == ds.rows_hash() and md["dataset_hash"] == ds.data_hash()
    assert md["n_train"] == len(ds)
    assert md["bar_features"] is True
    assert md["updates"] == []
    assert md["versions"]["scikit-learn"] and md["versions"]["numpy"]
    assert set(md["metrics"]["train"]) >= {"auc", "log_loss", "brier", "base_rate"}
    assert pd.Timestamp(md["train_from"]) == ds.t0.min() and pd.Timestamp(md["train_to"]) == ds.t0.max()


def test_make_pipeline_and_metrics():
    pipe = make_pipeline(C=0.5, class_weight=None)
    assert [name for name, _ in pipe.steps] == ["drop_constant", "scale", "logit"]
    assert pipe.named_steps["logit"].C == 0.5
    m = classification_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.6, 0.4, 0.9]), threshold=0.5)
    assert m["auc"] == pytest.approx(0.75)
    assert m["taken"] == pytest.approx(0.5)
    assert m["precision"] == pytest.approx(0.5) and m["recall"] == pytest.approx(0.5)
    one_class = classification_metrics(np.zeros(3, int), np.array([0.2, 0.3, 0.4]))
    assert np.isnan(one_class["auc"]) and np.isnan(one_class["recall"])


# ------------------------------------------------------------------ 2. save / load
def test_save_load_round_trip(model, ds, tmp_path):
    path = tmp_path / "model.joblib"
    assert model.save(path) == path
    assert sorted(os.listdir(tmp_path)) == ["model.joblib", "model.joblib.json"]  # atomic: no temp file left
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # same library versions: no warning
        loaded = SimpleLinearModel.load(path)
    np.testing.assert_array_equal(loaded.predict_signal_quality(ds), model.predict_signal_quality(ds))
    assert loaded.metadata == model.metadata
    assert loaded.features == model.features
    assert (loaded.C, loaded.class_weight, loaded.refit_min_new) == (model.C, model.class_weight, model.refit_min_new)
    pd.testing.assert_frame_equal(loaded.coefficients(), model.coefficients())

    import json

    side = json.loads((tmp_path / "model.joblib.json").read_text())
    assert side["features"] == list(ds.features)
    assert side["feature_schema_version"] == F.FEATURE_SCHEMA_VERSION
    assert side["training_data_hash"] == ds.rows_hash()
    assert side["versions"]["scikit-learn"] == model.metadata["versions"]["scikit-learn"]
    assert side["metrics"]["train"]["auc"] == pytest.approx(model.metadata["metrics"]["train"]["auc"])

    # overwriting an existing model is atomic too
    model.save(path)
    assert sorted(os.listdir(tmp_path)) == ["model.joblib", "model.joblib.json"]


def test_save_before_train_and_missing_file(tmp_path):
    with pytest.raises(RuntimeError, match="not trained"):
        SimpleLinearModel().save(tmp_path / "m.joblib")
    assert not (tmp_path / "m.joblib").exists()
    with pytest.raises(FileNotFoundError):
        SimpleLinearModel.load(tmp_path / "nope.joblib")


# ------------------------------------------------------------------ 3. feature schema guards
def test_load_refuses_other_feature_schema_version(model, tmp_path, monkeypatch):
    path = model.save(tmp_path / "m.joblib")
    saved = F.FEATURE_SCHEMA_VERSION
    monkeypatch.setattr("research.ml.features.FEATURE_SCHEMA_VERSION", saved + 41)
    with pytest.raises(FeatureSchemaError) as err:
        SimpleLinearModel.load(path)
    assert f"v{saved}" in str(err.value) and f"v{saved + 41}" in str(err.value)
    monkeypatch.undo()
    SimpleLinearModel.load(path)  # fine again under the version it was saved with

    # the same through an edited blob (a model written by an older code)
    blob = joblib.load(path)
    blob["metadata"]["feature_schema_version"] = 0
    joblib.dump(blob, path)
    _reseal(path)
    with pytest.raises(FeatureSchemaError, match=rf"v0\b.*v{saved}\b"):
        SimpleLinearModel.load(path)


def test_load_expect_features(model, ds, tmp_path):
    path = model.save(tmp_path / "m.joblib")
    assert SimpleLinearModel.load(path, expect_features=list(ds.features)).features == ds.features
    fewer = [f for f in ds.features if f != "rv12_log"]
    with pytest.raises(FeatureSchemaError, match="rv12_log"):
        SimpleLinearModel.load(path, expect_features=fewer)
    with pytest.raises(FeatureSchemaError, match="order"):
        SimpleLinearModel.load(path, expect_features=list(reversed(ds.features)))


def test_load_refuses_feature_the_code_no_longer_builds(ds, tmp_path):
    old = _with_columns(ds, {"retired_feature": np.random.default_rng(3).normal(size=len(ds))})
    path = SimpleLinearModel().train(old).save(tmp_path / "old.joblib")
    with pytest.raises(FeatureSchemaError, match="retired_feature"):
        SimpleLinearModel.load(path)


def test_predict_frame_missing_feature(model, ds):
    frame = ds.frame.drop(columns=["battle_with"])
    with pytest.raises(FeatureSchemaError, match="battle_with"):
        model.predict_signal_quality(frame)
    one = ds.frame.iloc[0].drop("tod_sin").to_dict()
    with pytest.raises(FeatureSchemaError, match="tod_sin"):
        model.predict_signal_quality(one)


def test_dataset_without_bar_features_is_refused(model, ds_nobar):
    assert len(ds_nobar.features) < len(model.features)
    assert ds_nobar.meta["bar_features"] is False
    with pytest.raises(FeatureSchemaError, match="rv12_log") as err:
        model.predict_signal_quality(ds_nobar)
    assert "delta_z_with" in str(err.value)
    with pytest.raises(FeatureSchemaError, match="rv12_log"):
        model.predict_signal_quality(ds_nobar.frame)
    with pytest.raises(FeatureSchemaError):
        model.accept(ds_nobar, mode="paper")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "abc", None])
def test_non_finite_feature_value(model, ds, bad):
    frame = ds.frame.copy()
    frame["atr_log"] = frame["atr_log"].astype(object)
    frame.loc[frame.index[7], "atr_log"] = bad
    with pytest.raises(ValueError, match=r"row 7, feature 'atr_log'") as err:
        model.predict_signal_quality(frame)
    assert not isinstance(err.value, FeatureSchemaError)
    one = {f: float(ds.frame.iloc[0][f]) for f in ds.features}
    one["q_ref"] = bad
    with pytest.raises(ValueError, match=r"row 0, feature 'q_ref'"):
        model.predict_signal_quality(one)


def _reseal(path) -> None:
    """Give an edited model file a sidecar sha256 that matches it (what an honest rewrite would write)."""
    import hashlib
    import json

    side = Path(str(path) + ".json")
    meta = json.loads(side.read_text()) if side.exists() else {"model_file": {"format": MODEL_FILE_FORMAT,
                                                                              "format_version": MODEL_FILE_VERSION}}
    meta["model_file"]["sha256"] = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    side.write_text(json.dumps(meta))


def test_load_random_file_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(np.random.default_rng(0).bytes(2000))
    with pytest.raises(ModelFileError, match=r"junk.joblib: no metadata sidecar junk.joblib.json"):
        SimpleLinearModel.load(junk)
    _reseal(junk)  # with a matching sidecar the content is still checked
    with pytest.raises(ValueError, match="not a navale model file"):
        SimpleLinearModel.load(junk)
    text = tmp_path / "notes.txt"
    text.write_text("hello, not a model\n")
    _reseal(text)
    with pytest.raises(ValueError, match="not a navale model file"):
        SimpleLinearModel.load(text)
    other = tmp_path / "other.joblib"
    joblib.dump({"something": 1}, other)  # a valid joblib file, but not ours
    _reseal(other)
    with pytest.raises(ValueError, match="not a navale model file"):
        SimpleLinearModel.load(other)
    joblib.dump([1, 2, 3], other)
    _reseal(other)
    with pytest.raises(ValueError, match="not a navale model file"):
        SimpleLinearModel.load(other)


class _Payload:
    """A pickle that creates a file when it is unpickled: what a hostile model file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_load_refuses_before_unpickling_without_sidecar_or_with_other_sha(model, tmp_path):
    marker = tmp_path / "code_ran"
    evil = tmp_path / "evil.joblib"
    joblib.dump({"model_version": 1, "payload": _Payload(marker)}, evil)
    with pytest.raises(ModelFileError, match="no metadata sidecar") as err:
        SimpleLinearModel.load(evil)
    assert "\n" not in str(err.value) and not marker.exists()

    # a genuine model's sidecar beside a swapped file: the sha256 differs, nothing is unpickled
    path = model.save(tmp_path / "m.joblib")
    Path(str(evil) + ".json").write_bytes(Path(str(path) + ".json").read_bytes())
    with pytest.raises(ModelFileError, match=r"evil.joblib: sha256 [0-9a-f]{16}\.\.\. differs from evil.joblib.json") as err:
        SimpleLinearModel.load(evil)
    assert not marker.exists()

    # one flipped byte in a genuine file is refused as well; the untouched file still loads
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / "flipped.joblib").write_bytes(bytes(data))
    Path(str(tmp_path / "flipped.joblib") + ".json").write_bytes(Path(str(path) + ".json").read_bytes())
    with pytest.raises(ModelFileError, match="differs"):
        SimpleLinearModel.load(tmp_path / "flipped.joblib")
    assert SimpleLinearModel.load(path).features == model.features

    # a sidecar that is not JSON, or has no model_file block (an older navale), is refused and named
    side = Path(str(path) + ".json")
    good = side.read_bytes()
    side.write_bytes(b"\xff\xfe binary")
    with pytest.raises(ModelFileError, match=r"m.joblib.json: not a navale model sidecar"):
        SimpleLinearModel.load(path)
    import json

    old = json.loads(good)
    old.pop("model_file")
    side.write_text(json.dumps(old))
    with pytest.raises(ModelFileError, match="no model_file block"):
        SimpleLinearModel.load(path)


def test_sidecar_describes_the_model_file(model, tmp_path):
    import hashlib
    import json

    path = model.save(tmp_path / "m.joblib")
    block = json.loads(Path(str(path) + ".json").read_text())["model_file"]
    assert block["format"] == MODEL_FILE_FORMAT and block["format_version"] == MODEL_FILE_VERSION
    assert block["sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert block["bytes"] == path.stat().st_size
    assert pd.Timestamp(block["written_at"]).tzinfo is not None
    assert block["written_by"]["python"] and "navale" in block["written_by"]
    assert verify_model_file(path)["model_file"] == block


def test_predict_rejects_other_input_types(model, ds):
    with pytest.raises(TypeError):
        model.predict_signal_quality(ds.X.to_numpy())


# ------------------------------------------------------------------ 4. thresholds
def test_threshold_for_modes_and_override():
    assert threshold_for("data_collection") == 0.55
    assert threshold_for("paper") == 0.70
    assert threshold_for("live") == 0.80
    assert threshold_for("backtest") == 0.60
    assert threshold_for() == 0.70  # paper by default
    assert MODE_THRESHOLDS == {"backtest": 0.60, "data_collection": 0.55, "paper": 0.70, "live": 0.80}
    assert threshold_for("live", 0.42) == 0.42  # an explicit threshold wins over the mode
    assert threshold_for(None, 0.0) == 0.0 and threshold_for(None, 1.0) == 1.0
    assert isinstance(threshold_for(None, 1), float)
    with pytest.raises(ValueError, match="unknown mode"):
        threshold_for("yolo")
    for bad in (-0.01, 1.01, float("nan")):
        with pytest.raises(ValueError, match="threshold"):
            threshold_for("paper", bad)


def test_accept_matches_predict(model, ds):
    p = model.predict_signal_quality(ds)
    for mode, thr in MODE_THRESHOLDS.items():
        acc = model.accept(ds, mode=mode)
        assert acc.dtype == bool
        np.testing.assert_array_equal(acc, p >= thr)
    # the modes are ordered, so the accepted sets are nested and (with this signal) all non-trivial
    n = {mode: int(model.accept(ds, mode=mode).sum()) for mode in MODE_THRESHOLDS}
    assert len(ds) > n["data_collection"] >= n["backtest"] >= n["paper"] >= n["live"] > 0
    assert n["data_collection"] > n["live"]
    np.testing.assert_array_equal(model.accept(ds, threshold=0.3), p >= 0.3)
    np.testing.assert_array_equal(model.accept(ds, mode="live", threshold=0.3), p >= 0.3)
    i_hi, i_lo = int(np.argmax(p)), int(np.argmin(p))
    hi, lo = ds.frame.iloc[i_hi].to_dict(), ds.frame.iloc[i_lo].to_dict()
    assert model.accept(hi, mode="live") is bool(p[i_hi] >= 0.80) is True
    assert model.accept(lo, mode="data_collection") is False
    assert model.accept(lo, threshold=float(p[i_lo])) is True  # >=, not >
    with pytest.raises(ValueError):
        model.accept(hi, mode="nope")


# ------------------------------------------------------------------ 5. update: the scheduled refit
def _union(ds: MLDataset, new: MLDataset) -> MLDataset:
    frame = pd.concat([ds.frame, new.frame], ignore_index=True)
    frame = frame.sort_values(_ORDER, kind="stable").reset_index(drop=True)
    return MLDataset(frame, ds.features, meta=dict(ds.meta))


def test_update_queues_then_refits_like_a_fresh_fit(ds, new, snaps, new_snaps):
    m = SimpleLinearModel(refit_min_new=20).train(ds)
    p0 = m.predict_signal_quality(ds)
    coef0 = m.coefficients()["coef"].to_numpy()
    hash0 = m.metadata["training_data_hash"]

    r = m.update(new.subset(range(12)))
    assert r == {"status": "queued", "new": 12, "pending": 12, "n_train": len(ds)}
    np.testing.assert_array_equal(m.predict_signal_quality(ds), p0)
    assert m.metadata["updates"] == [] and m.metadata["training_data_hash"] == hash0

    # already-known trades add nothing: the training rows, and the queued ones again
    assert m.update(ds)["new"] == 0
    r = m.update(new.subset(range(12)))
    assert r["status"] == "queued" and r["new"] == 0 and r["pending"] == 12
    np.testing.assert_array_equal(m.predict_signal_quality(ds), p0)

    r = m.update(new)  # 12 known + the rest new: enough for a refit
    assert r["status"] == "refit"
    assert r["new"] == len(new) - 12 and r["pending"] == 0 and r["n_train"] == len(ds) + len(new)
    assert m.metadata["n_train"] == len(ds) + len(new)
    assert not np.allclose(m.coefficients()["coef"].to_numpy(), coef0)

    # the contract: same estimator on the union of rows = the same model
    union = _union(ds, new)
    fresh = SimpleLinearModel(refit_min_new=20).train(union)
    np.testing.assert_allclose(m.coefficients()["coef"], fresh.coefficients()["coef"], rtol=0, atol=1e-8)
    np.testing.assert_allclose(m.pipeline.named_steps["logit"].intercept_,
                               fresh.pipeline.named_steps["logit"].intercept_, rtol=0, atol=1e-8)
    np.testing.assert_allclose(m.predict_signal_quality(union), fresh.predict_signal_quality(union), rtol=0, atol=1e-10)
    assert m.metadata["metrics"]["train"] == pytest.approx(fresh.metadata["metrics"]["train"])
    assert m.metadata["train_to"] == fresh.metadata["train_to"]
    # the recorded training-data identity is the one a dataset of those rows has
    assert m.metadata["training_data_hash"] == union.rows_hash() == fresh.metadata["training_data_hash"]

    # and the union built by the processor from all snapshots gives the same rows, so the same model
    both = MLDataProcessor().from_frame(pd.concat([snaps, new_snaps], ignore_index=True),
                                        bars={"fake-run": fake_bar_context(snaps),
                                              "paper-run": fake_bar_context(new_snaps, seed=7)})
    assert both.data_hash() == union.data_hash()

    ev = m.metadata["updates"]
    assert len(ev) == 1 and ev[0]["added"] == len(new) and ev[0]["n_train"] == len(ds) + len(new)
    assert pd.Timestamp(ev[0]["at"]).tzinfo is not None

    # everything is known now
    r = m.update(new)
    assert r["status"] == "queued" and r["new"] == 0 and r["pending"] == 0
    assert len(m.metadata["updates"]) == 1


def test_update_force_and_refit_min_new(ds, new):
    m = SimpleLinearModel(refit_min_new=5).train(ds)
    assert m.update(new.subset(range(4)))["status"] == "queued"
    assert m.update(new.subset(range(4, 5)))["status"] == "refit"  # exactly refit_min_new queued
    m2 = SimpleLinearModel(refit_min_new=1000).train(ds)
    r = m2.update(new.subset(range(3)), force=True)
    assert r["status"] == "refit" and r["n_train"] == len(ds) + 3
    with pytest.raises(ValueError, match="refit_min_new"):
        SimpleLinearModel(refit_min_new=0)


def test_update_refuses_other_features(model, ds_nobar, ds):
    m = SimpleLinearModel().train(ds)
    with pytest.raises(FeatureSchemaError):
        m.update(ds_nobar)
    assert m._pending is None or len(m._pending) == 0
    with pytest.raises(RuntimeError, match="not trained"):
        SimpleLinearModel().update(ds)


def test_save_load_keeps_pending_rows(ds, new, tmp_path):
    m = SimpleLinearModel(refit_min_new=20).train(ds)
    assert m.update(new.subset(range(10)))["pending"] == 10
    loaded = SimpleLinearModel.load(m.save(tmp_path / "m.joblib"))
    assert loaded.refit_min_new == 20
    assert loaded._pending is not None and len(loaded._pending) == 10
    # a queued trade sent again is still known after the round trip
    assert loaded.update(new.subset(range(10)))["new"] == 0
    r = loaded.update(new)
    assert r["status"] == "refit" and r["new"] == len(new) - 10 and r["n_train"] == len(ds) + len(new)
    assert loaded.metadata["updates"][-1]["added"] == len(new)
    # the refit model round-trips too, update history included
    again = SimpleLinearModel.load(loaded.save(tmp_path / "m2.joblib"))
    assert again.metadata["updates"] == loaded.metadata["updates"]
    np.testing.assert_array_equal(again.predict_signal_quality(new), loaded.predict_signal_quality(new))


# ------------------------------------------------------------------ 6. inference
def test_inference_table(model):
    inf = model.inference()
    assert {"coef", "std_err", "z", "p_value", "ci_low", "ci_high"} <= set(inf.columns)
    assert "const" in inf.index
    est = inf.dropna()
    assert len(est) > 20
    assert ((est["ci_low"] <= est["coef"]) & (est["coef"] <= est["ci_high"])).all()
    assert (est["std_err"] > 0).all()
    assert ((est["p_value"] >= 0) & (est["p_value"] <= 1)).all()
    assert inf.attrs["converged"] and inf.attrs["n"] == model.metadata["n_train"]
    bw = inf.loc["battle_with"]
    assert bw["coef"] > 0 and bw["p_value"] < 0.01 and bw["ci_low"] > 0
    # a wider interval at a smaller alpha
    inf99 = model.inference(alpha=0.01).loc["battle_with"]
    assert inf99["ci_low"] < bw["ci_low"] and inf99["ci_high"] > bw["ci_high"]
    # constant (dropped) features are not in the table
    assert "ldu" not in inf.index


def test_inference_reports_aliased_and_rare(ds):
    rng = np.random.default_rng(11)
    X = ds.X
    dup = 2.0 * X["battle_with"].to_numpy() - 0.5 * X["atr_log"].to_numpy() + 1.0  # exact combination
    rare = np.zeros(len(ds))
    rare[rng.choice(len(ds), 12, replace=False)] = 1.0
    enough = np.zeros(len(ds))
    enough[rng.choice(len(ds), 20, replace=False)] = 1.0
    aug = _with_columns(ds, {"battle_dup": dup, "rare_flag": rare, "flag20": enough})
    inf = SimpleLinearModel().train(aug).inference()
    assert "battle_dup" in inf.attrs["aliased"]
    assert "rare_flag" in inf.attrs["rare"]
    assert "flag20" not in inf.attrs["rare"] and "flag20" not in inf.attrs["aliased"]
    assert "battle_with" not in inf.attrs["aliased"]  # the earlier column is kept
    assert inf.loc["battle_dup"].isna().all()
    assert inf.loc["rare_flag"].isna().all()
    assert np.isfinite(inf.loc["flag20", "std_err"])
    est = inf.dropna()
    assert est["std_err"].max() < 5  # no near-singular direction left
    assert inf.attrs["converged"]
    assert inf.loc["battle_with", "p_value"] < 0.01


def test_drop_helpers():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=100), rng.normal(size=100)
    Z = np.column_stack([a, b, a + 2 * b, np.full(100, 3.0), a - 1.0, rng.normal(size=100)])
    names = ["a", "b", "ab", "const", "a_shift", "c"]
    kept, kept_names, aliased = _drop_aliased(Z, names)
    assert kept_names == ["a", "b", "c"] and aliased == ["ab", "const", "a_shift"]
    np.testing.assert_array_equal(kept, Z[:, [0, 1, 5]])

    flag19 = np.r_[np.ones(19), np.zeros(81)]
    flag20 = np.r_[np.ones(20), np.zeros(80)]
    flag81 = 1 - flag19  # the rarer value is the 0
    three = np.r_[np.ones(5), np.full(5, 2.0), np.zeros(90)]  # not a flag
    Z = np.column_stack([flag19, flag20, flag81, three, a])
    kept, kept_names, rare = _drop_rare_flags(Z, ["f19", "f20", "f81", "three", "a"])
    assert rare == ["f19", "f81"] and kept_names == ["f20", "three", "a"]
    assert kept.shape == (100, 3)


# ------------------------------------------------------------------ 7. errors
def test_train_errors(ds):
    with pytest.raises(ValueError, match="both wins and losses"):
        SimpleLinearModel().train(ds.subset(np.flatnonzero(ds.y == 0)))
    with pytest.raises(ValueError, match="both wins and losses"):
        SimpleLinearModel().train(ds.subset(np.flatnonzero(ds.y == 1)))
    few = np.r_[np.flatnonzero(ds.y == 0)[:5], np.flatnonzero(ds.y == 1)[:4]]
    with pytest.raises(ValueError, match="at least 10"):
        SimpleLinearModel().train(ds.subset(np.sort(few)))
    ten = np.r_[np.flatnonzero(ds.y == 0)[:5], np.flatnonzero(ds.y == 1)[:5]]
    assert SimpleLinearModel().train(ds.subset(np.sort(ten))).metadata["n_train"] == 10
    with pytest.raises(ValueError, match="C must be"):
        SimpleLinearModel(C=0)


def test_use_before_train(ds):
    m = SimpleLinearModel()
    assert not m.fitted and "not trained" in repr(m)
    for call in (lambda: m.predict_signal_quality(ds), lambda: m.accept(ds), lambda: m.coefficients(),
                 lambda: m.inference()):
        with pytest.raises(RuntimeError, match=re.escape("call train() or load()")):
            call()


def test_model_traces_to_its_whole_data_set_when_trained_on_a_split(ds):
    """A model fitted on the train split records the hash of the data set folder it came from (dataset.json)."""
    cut = ds.t0[len(ds) * 2 // 3]
    train, oos = ds.split_oos(cut)
    m = SimpleLinearModel().train(train)
    assert m.metadata["dataset_hash"] == ds.data_hash() != train.data_hash()
    assert m.metadata["training_data_hash"] == train.rows_hash()


def test_apply_filter_marks_only_the_training_period(ds):
    """Trades outside [train_from, train_to] are out of sample for the model, before or after that period."""
    from research.ml.workflow import apply_filter

    t = ds.t0
    early, late = ds.subset(np.flatnonzero(t < t[len(ds) // 2])), ds.subset(np.flatnonzero(t >= t[len(ds) // 2]))
    m = SimpleLinearModel().train(late)
    res = apply_filter(early, m, threshold=0.3)
    assert not res.scored["in_training"].any()
    res = apply_filter(ds, m, threshold=0.3)
    assert res.scored["in_training"].sum() == len(late)
    assert (res.scored["taken"] == (res.scored["p_win"] >= 0.3)).all()
    assert "taken outside the training period" in res.summary.index


def test_sidecar_is_strict_json(tmp_path):
    import json

    m = SimpleLinearModel().train(_dataset_for_json())
    m.metadata["metrics"]["oos"] = {"precision": float("nan"), "auc": 0.5}
    path = m.save(tmp_path / "m.joblib")
    side = json.loads((tmp_path / "m.joblib.json").read_text(), parse_constant=lambda c: pytest.fail(f"non-JSON {c}"))
    assert side["metrics"]["oos"]["precision"] is None and path.exists()


def _dataset_for_json() -> MLDataset:
    s = fake_snapshots(200, seed=11, signal=1.0)
    return MLDataProcessor().from_frame(s, bars=fake_bar_context(s))
