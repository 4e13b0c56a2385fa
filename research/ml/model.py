"""``SimpleLinearModel``: P(win) of a Battle Navale signal from its entry context.

A scikit-learn ``Pipeline``: drop constant columns -> ``StandardScaler`` -> ``LogisticRegression`` (L2, ``C``).
The scaler is part of the pipeline, so cross-validation fits it on training folds only.

Class weights: none (``class_weight=None``). The output is used as an absolute threshold (P(win) >= 0.55 /
0.70 / 0.80 by mode), so it must stay a calibrated probability; ``"balanced"`` weights would pull every
probability toward 0.5 and make the thresholds mean something else. The validator reports the calibration.

Incremental learning (``update``): a scheduled full refit, not ``SGDClassifier.partial_fit``. With a few
thousand trades a refit takes milliseconds and gives exactly the model validation measured (same estimator,
same data = same coefficients), whereas an SGD trajectory depends on arrival order and a learning-rate
schedule that the validation never saw. New snapshots are queued and the model is refit on all rows once
``refit_min_new`` have arrived.

``save`` writes the model with joblib (a pickle) and a JSON sidecar ``<file>.json``: the metadata plus a
``model_file`` block (format, format version, creation info, sha256 and size of the model file). A pickle runs
code when it is loaded, so ``load`` reads the sidecar first and refuses, before unpickling, a file without one or
whose sha256 differs from the sidecar's: only files written by ``save`` (``navale ml train``/``validate``) load.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.ml import features as F
from research.ml.dataset import LABEL_COLUMNS, MLDataset
from strategy.modes import SIGNAL_PROBABILITY_BY_MODE

__all__ = ["SimpleLinearModel", "FeatureSchemaError", "ModelFileError", "MODE_THRESHOLDS", "threshold_for",
           "make_pipeline", "classification_metrics", "MODEL_VERSION", "MODEL_FILE_FORMAT", "MODEL_FILE_VERSION",
           "TRUST_NOTE", "sidecar_path", "verify_model_file"]

MODEL_VERSION = 1
MODEL_FILE_FORMAT = "navale-signal-quality-model"
MODEL_FILE_VERSION = 1  # of the sidecar's model_file block
TRUST_NOTE = ("a model file is executable code (a pickle): load only files from a trusted source; navale refuses "
              "one without its FILE.json sidecar or whose sha256 differs from it")
# METHOD.md "min signal probability" per mode (backtest = the class default column); one table, in strategy.params.
MODE_THRESHOLDS = SIGNAL_PROBABILITY_BY_MODE
_KEYS = ("run_id", "trade_id", "decision_ts", "exit_ts")
_VERSIONED = ("scikit-learn", "statsmodels", "numpy", "pandas", "joblib")


class FeatureSchemaError(ValueError):
    """Features given to (or expected by) a model do not match the model's feature schema."""


class ModelFileError(ValueError):
    """A model file that must not be unpickled: no sidecar, an unreadable one, or a sha256 that differs."""


def sidecar_path(path: str | Path) -> Path:
    """``<model file>.json``: the metadata sidecar written beside every model file."""
    return Path(str(path) + ".json")


def verify_model_file(path: str | Path) -> dict[str, Any]:
    """The sidecar of model file ``path`` once its format and the file's sha256 check out (the file is not
    unpickled); raises :class:`ModelFileError` naming the file otherwise."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such model file")
    side = sidecar_path(path)
    if not side.is_file():
        raise ModelFileError(f"{path}: no metadata sidecar {side.name}: not loaded (a model file is a pickle, which "
                             "runs code when loaded; navale loads only files written by `navale ml train`/`validate`)")
    try:
        meta = json.loads(side.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{side}: not a navale model sidecar (not UTF-8 JSON: {exc}): model not loaded") from None
    block = meta.get("model_file") if isinstance(meta, dict) else None
    if not isinstance(block, dict) or block.get("format") != MODEL_FILE_FORMAT:
        raise ModelFileError(f"{side}: no model_file block of format {MODEL_FILE_FORMAT!r} (written by an older "
                             "navale, or not by navale): model not loaded; retrain it (navale ml train)")
    if block.get("format_version") != MODEL_FILE_VERSION:
        raise ModelFileError(f"{side}: model_file format version {block.get('format_version')!r}, this code reads "
                             f"{MODEL_FILE_VERSION}: model not loaded; retrain it (navale ml train)")
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            h.update(chunk)
    if h.hexdigest() != block.get("sha256"):
        raise ModelFileError(f"{path}: sha256 {h.hexdigest()[:16]}... differs from {side.name}'s "
                             f"{str(block.get('sha256'))[:16]}...: the file changed after it was written; not loaded")
    return meta


def _model_file_block(data: bytes) -> dict[str, Any]:
    """The sidecar's description of the model file bytes ``data``: format, creation info, sha256, size."""
    import platform

    from research.store import package_versions
    from research.store.provenance import git_state

    commit, dirty = git_state(Path(__file__).resolve().parent)
    return {
        "format": MODEL_FILE_FORMAT,
        "format_version": MODEL_FILE_VERSION,
        "sha256": hashlib.sha256(data).hexdigest(),
        "bytes": len(data),
        "written_at": dt.datetime.now(dt.UTC).isoformat(),
        "written_by": {"navale": package_versions(["navale"]).get("navale"), "git_commit": commit, "git_dirty": dirty,
                       "python": platform.python_version(), "host": platform.node()},
        "loader": "joblib (pickle): load only files from a trusted source",
    }


def threshold_for(mode: str | None = None, threshold: float | None = None) -> float:
    """The P(win) threshold: ``threshold`` when given, else the mode's (METHOD.md), else paper's."""
    if threshold is not None:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"threshold must be in [0, 1], not {threshold}")
        return float(threshold)
    mode = mode or "paper"
    if mode not in MODE_THRESHOLDS:
        raise ValueError(f"unknown mode {mode!r}; one of {sorted(MODE_THRESHOLDS)}")
    return MODE_THRESHOLDS[mode]


def make_pipeline(C: float = 1.0, class_weight: str | dict | None = None, max_iter: int = 5000):
    """The unfitted pipeline: constant columns dropped, standardised, L2 logistic regression."""
    from sklearn.feature_selection import VarianceThreshold
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    return Pipeline([
        ("drop_constant", VarianceThreshold(threshold=1e-12)),
        ("scale", StandardScaler()),
        ("logit", LogisticRegression(C=C, class_weight=class_weight, max_iter=max_iter)),
    ])


def classification_metrics(y: np.ndarray, p: np.ndarray, threshold: float = 0.5) -> dict[str, float]:
    """AUC, log loss, Brier score, and accuracy/precision/recall/share taken at ``threshold``; NaN when undefined."""
    from sklearn.metrics import (
        accuracy_score,
        brier_score_loss,
        log_loss,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    y = np.asarray(y, dtype=int)
    p = np.clip(np.asarray(p, dtype=float), 1e-12, 1 - 1e-12)
    take = p >= threshold
    both = len(np.unique(y)) == 2
    return {
        "n": int(len(y)),
        "base_rate": float(y.mean()) if len(y) else float("nan"),
        "auc": float(roc_auc_score(y, p)) if both else float("nan"),
        "log_loss": float(log_loss(y, p, labels=[0, 1])) if len(y) else float("nan"),
        "brier": float(brier_score_loss(y, p)) if len(y) else float("nan"),
        "accuracy": float(accuracy_score(y, take)) if len(y) else float("nan"),
        "precision": float(precision_score(y, take, zero_division=np.nan)) if take.any() else float("nan"),
        "recall": float(recall_score(y, take, zero_division=np.nan)) if y.any() else float("nan"),
        "taken": float(take.mean()) if len(y) else float("nan"),
    }


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None, recursively (the sidecar is strict JSON)."""
    if isinstance(obj, dict):
        return {k: _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, (float, np.floating)) and not np.isfinite(obj):
        return None
    return obj


def _versions() -> dict[str, str | None]:
    from research.store import package_versions

    return package_versions(_VERSIONED)


def _drop_rare_flags(Z: np.ndarray, names: list[str], min_count: int = 20) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop two-valued columns whose rarer value occurs fewer than ``min_count`` times: the unpenalised Logit
    cannot estimate them (quasi-separation sends the coefficient to infinity and inflates the others' errors)."""
    keep, rare = [], []
    for j, name in enumerate(names):
        vals, counts = np.unique(Z[:, j], return_counts=True)
        if len(vals) == 2 and counts.min() < min_count:
            rare.append(name)
        else:
            keep.append(j)
    return Z[:, keep], [names[j] for j in keep], rare


def _drop_aliased(Z: np.ndarray, names: list[str], tol: float = 1e-6) -> tuple[np.ndarray, list[str], list[str]]:
    """Drop columns that are (numerically) linear combinations of the others and of the intercept, keeping the
    earlier ones: several method outputs are exact combinations by construction (``confidence`` is a mean of
    ``q_ref``, ``|P|``, ``|TC|`` and ``|bn_score|``), which leaves the unpenalised Logit without a unique solution."""
    keep: list[int] = []
    basis = np.ones((len(Z), 1)) / np.sqrt(max(len(Z), 1))
    for j in range(Z.shape[1]):
        v = Z[:, j] - basis @ (basis.T @ Z[:, j])
        norm = np.linalg.norm(v)
        if norm > tol * max(np.linalg.norm(Z[:, j]), 1.0):
            keep.append(j)
            basis = np.column_stack([basis, v / norm])
    aliased = [n for j, n in enumerate(names) if j not in keep]
    return Z[:, keep], [names[j] for j in keep], aliased


class SimpleLinearModel:
    """Logistic regression of the win label on the entry-context features (see the module docstring)."""

    def __init__(self, *, C: float = 1.0, class_weight: str | dict | None = None, refit_min_new: int = 20) -> None:
        if C <= 0:
            raise ValueError(f"C must be > 0, not {C}")
        if refit_min_new < 1:
            raise ValueError(f"refit_min_new must be >= 1, not {refit_min_new}")
        self.C = float(C)
        self.class_weight = class_weight
        self.refit_min_new = int(refit_min_new)
        self.pipeline = None
        self.features: tuple[str, ...] = ()
        self.metadata: dict[str, Any] = {}
        self._rows: pd.DataFrame | None = None  # keys + features + labels the model is fitted on
        self._pending: pd.DataFrame | None = None  # new rows waiting for the next refit

    # -------------------------------------------------------------- fitting
    def new_pipeline(self):
        """An unfitted pipeline with this model's hyperparameters (for cross-validation)."""
        return make_pipeline(self.C, self.class_weight)

    def train(self, dataset: MLDataset) -> SimpleLinearModel:
        """Fit on every row of ``dataset`` and record the metadata (features, schema, data hash, versions, metrics)."""
        if len(dataset) < 10 or len(np.unique(dataset.y)) < 2:
            raise ValueError(f"cannot train on {len(dataset)} trades with {len(np.unique(dataset.y))} label value(s): "
                             "need at least 10 trades and both wins and losses")
        self.features = tuple(dataset.features)
        self._rows = dataset.frame.loc[:, [*_KEYS, *self.features, *LABEL_COLUMNS]].reset_index(drop=True)
        self._pending = None
        self._fit()
        d = dataset.meta
        self.metadata = {
            "model_version": MODEL_VERSION,
            "created_at": dt.datetime.now(dt.UTC).isoformat(),
            "estimator": "drop constant -> StandardScaler -> LogisticRegression (L2)",
            "hyperparameters": {"C": self.C, "class_weight": self.class_weight, "refit_min_new": self.refit_min_new},
            "class_weight_rule": "none: P(win) is compared with absolute thresholds, so it must stay calibrated",
            "update_rule": f"scheduled full refit once {self.refit_min_new} new trades have arrived",
            "features": list(self.features),
            "feature_schema_version": F.FEATURE_SCHEMA_VERSION,
            "snapshot_schema_version": d.get("snapshot_schema_version"),
            "bar_features": bool(d.get("bar_features", True)),
            "prior_day": bool(d.get("prior_day", True)),
            "training_data_hash": dataset.rows_hash(),  # keys, features, labels the model is fitted on
            # the data set it came from (dataset.json's hash), also when trained on a split of it
            "dataset_hash": d.get("parent_data_hash") or dataset.data_hash(),
            "params_hashes": d.get("params_hashes", []),
            "source": d.get("source"),
            "versions": _versions(),
            "updates": [],
        }
        self._describe_fit()
        return self

    def _fit(self) -> None:
        rows = self._rows
        pipe = self.new_pipeline()
        with warnings.catch_warnings():
            warnings.simplefilter("error", category=UserWarning)  # a failed convergence is an error here
            try:
                pipe.fit(rows.loc[:, list(self.features)].to_numpy(np.float64), rows["y_win"].to_numpy(int))
            except Exception as exc:  # ConvergenceWarning is a UserWarning
                if "converge" not in str(exc).lower():
                    raise
                raise RuntimeError(f"logistic regression did not converge on {len(rows)} trades: {exc}") from None
        self.pipeline = pipe

    def _describe_fit(self) -> None:
        rows = self._rows
        p = self.pipeline.predict_proba(rows.loc[:, list(self.features)].to_numpy(np.float64))[:, 1]
        t0 = pd.DatetimeIndex(rows["decision_ts"])
        kept = self.pipeline.named_steps["drop_constant"].get_support()
        self.metadata.update({
            "n_train": int(len(rows)),
            "train_from": str(t0.min()),
            "train_to": str(t0.max()),
            "base_rate": float(rows["y_win"].mean()),
            "dropped_constant": [f for f, k in zip(self.features, kept) if not k],
            "metrics": {**self.metadata.get("metrics", {}), "train": classification_metrics(rows["y_win"].to_numpy(), p)},
        })

    @property
    def fitted(self) -> bool:
        return self.pipeline is not None

    def _require_fitted(self) -> None:
        if not self.fitted:
            raise RuntimeError("the model is not trained: call train() or load()")

    # -------------------------------------------------------------- prediction
    def _design(self, features) -> tuple[np.ndarray, bool]:
        """Feature matrix in the model's column order; ``single`` when one trade was given as a mapping."""
        single = False
        if isinstance(features, MLDataset):
            if tuple(features.features) != self.features:
                missing = [f for f in self.features if f not in features.features]
                extra = [f for f in features.features if f not in self.features]
                raise FeatureSchemaError(f"dataset features differ from the model's: missing {missing}, extra {extra}")
            frame = features.frame
        elif isinstance(features, Mapping):  # one trade (the live path): no DataFrame on the way
            missing = [f for f in self.features if f not in features]
            if missing:
                raise FeatureSchemaError(f"missing feature(s) {missing}: the model (feature schema "
                                         f"v{self.metadata.get('feature_schema_version')}) needs {list(self.features)}")
            row = np.empty((1, len(self.features)))
            for j, f in enumerate(self.features):
                v = features[f]
                try:
                    row[0, j] = float(v)
                except (TypeError, ValueError):
                    row[0, j] = np.nan
                if not np.isfinite(row[0, j]):
                    raise ValueError(f"row 0, feature {f!r}: {v!r} is not a finite number")
            return row, True
        elif isinstance(features, pd.Series):
            frame = features.to_frame().T
            single = True
        elif isinstance(features, pd.DataFrame):
            frame = features
        else:
            raise TypeError(f"features must be a DataFrame, a mapping, a Series or an MLDataset, not {type(features).__name__}")
        missing = [f for f in self.features if f not in frame.columns]
        if missing:
            raise FeatureSchemaError(f"missing feature(s) {missing}: the model (feature schema "
                                     f"v{self.metadata.get('feature_schema_version')}) needs {list(self.features)}")
        X = frame.loc[:, list(self.features)].apply(pd.to_numeric, errors="coerce").to_numpy(np.float64)
        bad = ~np.isfinite(X)
        if bad.any():
            i, j = map(int, np.argwhere(bad)[0])
            raise ValueError(f"row {i}, feature {self.features[j]!r}: {frame.iloc[i][self.features[j]]!r} is not a finite number")
        return X, single

    def predict_signal_quality(self, features) -> float | np.ndarray:
        """P(win) per trade (an array), or a float when one trade is given as a mapping or Series."""
        self._require_fitted()
        X, single = self._design(features)
        p = self.pipeline.predict_proba(X)[:, 1]
        return float(p[0]) if single else p

    def accept(self, features, *, mode: str | None = None, threshold: float | None = None) -> bool | np.ndarray:
        """Take the trade(s)? P(win) >= the threshold (explicit, else the mode's: 0.55 / 0.70 / 0.80)."""
        thr = threshold_for(mode, threshold)
        p = self.predict_signal_quality(features)
        return bool(p >= thr) if isinstance(p, float) else p >= thr

    # -------------------------------------------------------------- incremental learning
    def update(self, new: MLDataset, *, force: bool = False) -> dict[str, Any]:
        """Queue new trades (paper/live snapshots) and refit on all rows once ``refit_min_new`` are queued (or
        ``force``). Trades already known (same run and trade id) are ignored. Returns what happened."""
        self._require_fitted()
        if tuple(new.features) != self.features:
            raise FeatureSchemaError(f"new trades have features {list(new.features)}, the model {list(self.features)}")
        rows = new.frame.loc[:, [*_KEYS, *self.features, *LABEL_COLUMNS]]
        known = pd.concat([self._rows, self._pending]) if self._pending is not None else self._rows
        seen = set(zip(known["run_id"], known["trade_id"]))
        fresh = rows[[k not in seen for k in zip(rows["run_id"], rows["trade_id"])]]
        fresh = fresh.drop_duplicates(subset=["run_id", "trade_id"])
        self._pending = pd.concat([self._pending, fresh], ignore_index=True) if self._pending is not None else fresh.reset_index(drop=True)
        n_pending = len(self._pending)
        if n_pending == 0 or (n_pending < self.refit_min_new and not force):
            return {"status": "queued", "new": int(len(fresh)), "pending": int(n_pending), "n_train": int(len(self._rows))}
        rows_all = pd.concat([self._rows, self._pending], ignore_index=True)
        rows_all = rows_all.sort_values(["decision_ts", "run_id", "trade_id"], kind="stable").reset_index(drop=True)
        if len(np.unique(rows_all["y_win"])) < 2:
            return {"status": "queued", "new": int(len(fresh)), "pending": int(n_pending), "n_train": int(len(self._rows))}
        self._rows, self._pending = rows_all, None
        # validation figures (cv, oos, ...) described the model before this refit: keep them under the event
        before = {k: v for k, v in self.metadata.get("metrics", {}).items() if k != "train"}
        self.metadata["metrics"] = {}
        self._fit()
        self._describe_fit()
        # the same identity train() records (MLDataset.rows_hash: keys, features, labels and the feature list)
        self.metadata["training_data_hash"] = MLDataset(rows_all, self.features).rows_hash()
        event = {"at": dt.datetime.now(dt.UTC).isoformat(), "added": int(n_pending), "n_train": int(len(rows_all)),
                 "metrics_before": before}
        self.metadata.setdefault("updates", []).append(event)
        return {"status": "refit", "new": int(len(fresh)), "pending": 0, "n_train": int(len(rows_all))}

    # -------------------------------------------------------------- inference
    def coefficients(self) -> pd.DataFrame:
        """The fitted (standardised) logistic coefficients per feature; dropped constant features are 0."""
        self._require_fitted()
        kept = self.pipeline.named_steps["drop_constant"].get_support()
        coef = np.zeros(len(self.features))
        coef[kept] = self.pipeline.named_steps["logit"].coef_[0]
        return pd.DataFrame({"feature": self.features, "coef": coef, "kept": kept})

    def inference(self, alpha: float = 0.05) -> pd.DataFrame:
        """statsmodels ``Logit`` on the same standardised design (unpenalised): coefficient, standard error, z,
        p-value and ``1 - alpha`` confidence interval per kept feature, plus the intercept."""
        import statsmodels.api as sm

        self._require_fitted()
        rows = self._rows
        X = rows.loc[:, list(self.features)].to_numpy(np.float64)
        keep = self.pipeline.named_steps["drop_constant"].get_support()
        Z = self.pipeline.named_steps["scale"].transform(X[:, keep])
        names = [f for f, k in zip(self.features, keep) if k]
        Z, names, rare = _drop_rare_flags(Z, names)
        Z, names, aliased = _drop_aliased(Z, names)
        design = sm.add_constant(pd.DataFrame(Z, columns=names), has_constant="add")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.Logit(rows["y_win"].to_numpy(int), design).fit(disp=0, maxiter=200, method="newton")
        ci = res.conf_int(alpha)
        out = pd.DataFrame({
            "coef": res.params, "std_err": res.bse, "z": res.tvalues, "p_value": res.pvalues,
            "ci_low": ci[0], "ci_high": ci[1],
        })
        for name in rare + aliased:  # not estimable: too rare a flag, or an exact combination of kept features
            out.loc[name] = np.nan
        out.index.name = "feature"
        out.attrs.update({"aliased": aliased, "rare": rare, "converged": bool(res.mle_retvals.get("converged", False)), "n": int(res.nobs),
                          "pseudo_r2": float(res.prsquared), "llr_p_value": float(res.llr_pvalue)})
        return out

    # -------------------------------------------------------------- persistence
    def save(self, path: str | Path) -> Path:
        """Write the model (joblib) atomically, then ``<path>.json``: the metadata in plain text and the
        ``model_file`` block (format, creation info, sha256 of the model file) that :meth:`load` checks."""
        import joblib

        from research.store.files import atomic_write_bytes, atomic_write_text

        self._require_fitted()
        path = Path(path)
        buf = io.BytesIO()
        joblib.dump({"model_version": MODEL_VERSION, "pipeline": self.pipeline, "features": self.features,
                     "metadata": self.metadata, "rows": self._rows, "pending": self._pending,
                     "hyper": {"C": self.C, "class_weight": self.class_weight, "refit_min_new": self.refit_min_new}}, buf)
        data = buf.getvalue()
        atomic_write_bytes(path, data)
        side = {**_json_safe(self.metadata), "model_file": _model_file_block(data)}
        atomic_write_text(sidecar_path(path), json.dumps(side, indent=1, default=str, allow_nan=False))
        return path

    @classmethod
    def load(cls, path: str | Path, *, expect_features: tuple[str, ...] | list[str] | None = None) -> SimpleLinearModel:
        """Read a model written by :meth:`save`. Raises :class:`ModelFileError`, before unpickling, when the
        sidecar is missing or the file's sha256 differs from it (:func:`verify_model_file`), and
        :class:`FeatureSchemaError` when its feature schema version or feature list does not match this code
        (or ``expect_features``)."""
        import joblib

        path = Path(path)
        verify_model_file(path)
        try:
            blob = joblib.load(path)
        except Exception as exc:
            raise ValueError(f"{path}: not a navale model file ({exc})") from None
        if not isinstance(blob, dict) or blob.get("model_version") != MODEL_VERSION:
            raise ValueError(f"{path}: not a navale model file of version {MODEL_VERSION}")
        meta = blob["metadata"]
        features = tuple(blob["features"])
        version = meta.get("feature_schema_version")
        if version != F.FEATURE_SCHEMA_VERSION:
            raise FeatureSchemaError(f"{path}: the model was trained on feature schema v{version}; this code builds "
                                     f"v{F.FEATURE_SCHEMA_VERSION}: retrain it (navale ml train)")
        known = set(F.feature_names(F.FEATURES, prior_day=True))
        unknown = [f for f in features if f not in known]
        if unknown:
            raise FeatureSchemaError(f"{path}: the model uses feature(s) {unknown} that this code does not build")
        if expect_features is not None and tuple(expect_features) != features:
            missing = [f for f in features if f not in expect_features]
            extra = [f for f in expect_features if f not in features]
            raise FeatureSchemaError(f"{path}: feature schema mismatch: the model needs {missing or 'nothing more'}, "
                                     f"the data has extra {extra or 'nothing'} (or a different order)")
        now = _versions()
        saved = meta.get("versions", {})
        if saved.get("scikit-learn") and saved.get("scikit-learn") != now.get("scikit-learn"):
            warnings.warn(f"{path}: saved with scikit-learn {saved['scikit-learn']}, running {now['scikit-learn']}",
                          stacklevel=2)
        model = cls(**blob["hyper"])
        model.pipeline = blob["pipeline"]
        model.features = features
        model.metadata = meta
        model._rows = blob["rows"]
        model._pending = blob["pending"]
        return model

    def __repr__(self) -> str:
        state = f"{len(self._rows)} trades, {len(self.features)} features" if self.fitted else "not trained"
        return f"SimpleLinearModel(C={self.C}, class_weight={self.class_weight!r}; {state})"
