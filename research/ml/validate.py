"""``ModelValidator``: does the signal-quality model add out-of-sample value?

One run of :meth:`ModelValidator.run` on an :class:`~research.ml.dataset.MLDataset`:

1. split: train = trades whose label closed before ``oos_from`` minus the embargo, OOS = trades decided on or
   after it (:meth:`MLDataset.split_oos`). When that leaves too few trades on a side (e.g. synthetic data not
   reaching 2021) the last 25% of trades by decision time are the OOS period instead, with a warning;
2. model selection on the TRAIN period only: purged k-fold CV (:class:`~research.ml.splits.PurgedKFold`, with
   the data set's embargo) for every ``C`` of the grid; the lowest mean CV log loss wins (ties: the smaller C;
   a C at the edge of a grid of several values is warned about);
3. the chosen pipeline per CV fold (metrics, purged counts, coefficient stability), then the final model
   refit on every train row; the OOS rows are predicted once, never seen before. The OOS AUC gets a one-sided
   Mann-Whitney p-value and a bootstrap 95% interval; the OOS log loss is compared with two constants: the
   train base rate and the model's own mean OOS prediction (the constant with the model's level and no
   ranking: a drifting base rate cannot make the model look skilful against it);
4. label-permutation test (``permutation_test_score``, purged CV, ROC AUC) on the train period; it can only
   pass with >= 99 permutations (fewer make p < 0.05 too coarse or reachable by construction);
5. OOS permutation importance, statsmodels inference with Holm-adjusted p-values, a purged learning curve,
   the OOS calibration curve, train / CV / OOS gaps against stated thresholds;
6. the economic test (:func:`economic_test`): the same OOS trades with and without the filter (P(win)
   thresholds of METHOD.md, plus thresholds at train-prediction quantiles), daily P&L over the OOS session
   calendar, Sharpe / PSR via :class:`~research.performance.PerformanceTracker`. Every variant is computed for
   every C of the grid (a pipeline per C fitted on the train rows); the DSRs are deflated over all those
   variants. Besides each filtered strategy's own Sharpe, the *improvement* of each variant is tested: its
   daily P&L minus what a random filter taking the same share of the trades would make (share x unfiltered
   daily P&L), with its own Sharpe and DSR; a filter adds something only if its selection beats chance
   significantly (trading less is not skill: it "improves" a losing strategy at random too);
7. the verdict: a stated rule of named checks, and a paragraph with the figures. The final model carries the
   CV summary and the OOS metrics in ``model.metadata["metrics"]``.

Nothing of the OOS period enters any choice: C, the scaler, the quantile thresholds (from the final model's
predictions on the train rows) all come from the train rows.
"""

from __future__ import annotations

import dataclasses
import json
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.ml.dataset import MLDataset
from research.ml.model import SimpleLinearModel, classification_metrics, make_pipeline
from research.ml.splits import PurgedKFold, time_split

__all__ = ["STAGES", "AUC_BOOTSTRAP", "DSR_MIN", "FALLBACK_OOS_SHARE", "FOLD_METRICS", "MIN_PERMUTATIONS", "OOS_AUC_MIN",
           "P_VALUE_MAX", "VALIDATION_VERSION", "ModelValidator", "ValidationConfig", "ValidationReport",
           "auc_significance", "best_filter", "economic_test", "filter_checks", "select_C"]

VALIDATION_VERSION = 2  # 2: improvement test, per-C economic trials, beats_constant, AUC p-value and interval
FALLBACK_OOS_SHARE = 0.25  # OOS = the last quarter of the trades when oos_from leaves too few on a side
MIN_TRAIN_PREFERRED = 50  # fewer train trades at oos_from -> the fallback split
MIN_TRAIN = 30  # fewer even after the fallback -> refused
P_VALUE_MAX = 0.05  # verdict: label-permutation p-value and OOS AUC p-value below this
MIN_PERMUTATIONS = 99  # verdict: fewer permutations cannot pass the permutation check (p >= 1/(n+1) too coarse)
OOS_AUC_MIN = 0.55  # verdict: OOS AUC at least this
AUC_BOOTSTRAP = 1000  # resamples of the OOS AUC's bootstrap 95% interval (seeded with config.seed)
DSR_MIN = 0.95  # verdict: deflated Sharpe ratios of the best filter (its own, its improvement) above this
FOLD_METRICS = ("auc", "log_loss", "brier", "accuracy", "precision", "recall", "taken")
_TABLES = ("selection", "cv_folds", "cv_summary", "gaps", "importance", "coefficients", "stability",
           "learning_curve", "calibration", "oos_predictions", "economic", "equity", "economic_trials")
_DICTS = ("train_metrics", "oos_metrics", "baseline", "permutation")
NAN = float("nan")


# ---------------------------------------------------------------------- config
@dataclass(frozen=True)
class ValidationConfig:
    """Every setting of a validation (recorded in the report)."""

    n_splits: int = 5
    oos_from: str = "2021-01-01"  # train on trades decided before, test (never touched in selection) on/after
    C_grid: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)  # selection by purged-CV log loss on the TRAIN period only
    thresholds: tuple[float, ...] = (0.55, 0.70, 0.80)  # METHOD.md mode thresholds on P(win)
    quantile_keep: tuple[float, ...] = (0.5, 0.3)  # extra variants: thresholds keeping the top 50% / 30% (train preds)
    report_threshold: float = 0.55  # threshold for accuracy/precision/recall in the CV/OOS tables
    n_permutations: int = 200
    n_repeats_importance: int = 20
    gap_auc: float = 0.05  # train-CV AUC gap above -> "overfits"; CV-OOS gap above -> "does not generalise"
    gap_log_loss: float = 0.02
    min_oos_trades: int = 30
    capital: float = 100_000.0
    seed: int = 0
    n_jobs: int = 1

    def __post_init__(self) -> None:
        for name in ("C_grid", "thresholds", "quantile_keep"):  # lists (from JSON) become tuples
            object.__setattr__(self, name, tuple(float(v) for v in getattr(self, name)))
        if self.n_splits < 2:
            raise ValueError(f"n_splits must be >= 2, not {self.n_splits}")
        if not self.C_grid or any(not c > 0 for c in self.C_grid):
            raise ValueError(f"C_grid: positive values, at least one (got {self.C_grid})")
        if any(not 0 <= t <= 1 for t in (*self.thresholds, self.report_threshold)):
            raise ValueError("thresholds and report_threshold are probabilities in [0, 1]")
        if any(not 0 < q < 1 for q in self.quantile_keep):
            raise ValueError(f"quantile_keep: shares in (0, 1), not {self.quantile_keep}")
        if self.n_permutations < 1 or self.n_repeats_importance < 1:
            raise ValueError("n_permutations and n_repeats_importance must be >= 1")
        if self.capital <= 0:
            raise ValueError(f"capital must be > 0, not {self.capital}")
        pd.Timestamp(self.oos_from)  # a bad date fails here, not deep in the run

    @property
    def n_filter_trials(self) -> int:
        """Filter variants tried, for the DSR: every C of the grid x every threshold and quantile variant (each is
        computed: a pipeline per C fitted on the train rows, its OOS predictions filtered)."""
        return len(self.C_grid) * (len(self.thresholds) + len(self.quantile_keep))

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}


# ---------------------------------------------------------------------- report
@dataclass
class ValidationReport:
    """Everything one validation found (see the module docstring); ``save``/``load`` round-trip it."""

    config: dict
    dataset: dict
    selection: pd.DataFrame
    cv_folds: pd.DataFrame
    cv_summary: pd.DataFrame
    train_metrics: dict
    oos_metrics: dict
    baseline: dict
    gaps: pd.DataFrame
    permutation: dict
    importance: pd.DataFrame
    coefficients: pd.DataFrame
    stability: pd.DataFrame
    learning_curve: pd.DataFrame
    calibration: pd.DataFrame
    oos_predictions: pd.DataFrame
    economic: pd.DataFrame
    equity: pd.DataFrame
    verdict: dict
    economic_trials: pd.DataFrame = field(default_factory=pd.DataFrame)  # every C x variant the DSRs deflate over
    model: Any = field(default=None, repr=False)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe: scalars and dicts as they are (NaN -> null), tables as lists of records, with a
        ``schema`` entry (index, column dtypes, attrs per table) for :meth:`load`."""
        out: dict[str, Any] = {"validation_version": VALIDATION_VERSION}
        schema: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            if f.name == "model":
                continue
            value = getattr(self, f.name)
            if isinstance(value, pd.DataFrame):
                out[f.name], schema[f.name] = _table_to_records(value)
            else:
                out[f.name] = _jsonable(value)
        out["schema"] = schema
        out["model_file"] = "model.joblib" if self.model is not None else None
        return out

    def save(self, folder: str | Path) -> Path:
        """Write ``validation.json`` and (when a model is attached) ``model.joblib`` atomically; returns the folder."""
        from research.store.files import atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / "validation.json", json.dumps(self.to_dict(), indent=1, allow_nan=False))
        if self.model is not None:
            self.model.save(folder / "model.joblib")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> ValidationReport:
        """Read a folder written by :meth:`save`: tables back as DataFrames, the model when present."""
        folder = Path(folder)
        path = folder / "validation.json"
        if not path.exists():
            raise FileNotFoundError(f"{folder}: no validation.json (not a folder written by `navale ml validate`)")
        d = json.loads(path.read_text())
        if d.get("validation_version") != VALIDATION_VERSION:
            raise ValueError(f"{path}: validation version {d.get('validation_version')}, this code reads "
                             f"{VALIDATION_VERSION}")
        schema = d.get("schema", {})
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.name == "model":
                continue
            if f.name in _TABLES:
                kw[f.name] = _records_to_table(d.get(f.name) or [], schema.get(f.name, {}))
            elif f.name in _DICTS:
                kw[f.name] = _nan_back(d.get(f.name) or {})
            else:
                kw[f.name] = d.get(f.name) or {}
        model = None
        mpath = folder / "model.joblib"
        if mpath.exists():
            from research.ml.model import FeatureSchemaError

            try:
                model = SimpleLinearModel.load(mpath)
            except FeatureSchemaError as exc:  # the tables still render; the model needs a retrain
                warnings.warn(f"{mpath}: model not loaded ({exc})", stacklevel=2)
        return cls(**kw, model=model)

    def summary(self) -> str:
        """The verdict paragraph."""
        return str(self.verdict.get("text", ""))


# ---------------------------------------------------------------------- selection
def select_C(train: MLDataset, config: ValidationConfig | None = None, **overrides) -> tuple[float, pd.DataFrame]:
    """(chosen C, selection table) by purged-CV log loss on ``train`` (all of it is used: pass train rows only)."""
    cfg = _config(config, overrides)
    C, table, _ = _select(_sorted(train), cfg)
    return C, table


def _select(train: MLDataset, cfg: ValidationConfig) -> tuple[float, pd.DataFrame, dict[float, tuple]]:
    X, y = _xy(train)
    per_c: dict[float, tuple] = {}
    rows = []
    for C in cfg.C_grid:
        folds, coefs = _cross_validate(train, X, y, C, cfg)
        per_c[C] = (folds, coefs)
        rows.append({"C": C, "cv_log_loss_mean": folds["log_loss"].mean(), "cv_log_loss_std": folds["log_loss"].std(),
                     "cv_auc_mean": folds["auc"].mean(), "cv_auc_std": folds["auc"].std(),
                     "cv_brier_mean": folds["brier"].mean()})
    table = pd.DataFrame(rows)
    ll = table["cv_log_loss_mean"].to_numpy()
    if not np.isfinite(ll).any():
        raise ValueError("purged CV gave no finite log loss for any C")
    best = min((v, c) for v, c in zip(np.where(np.isfinite(ll), ll, np.inf), table["C"]))[1]  # ties: smaller C
    table["chosen"] = table["C"] == best
    table.attrs["rule"] = "lowest mean purged-CV log loss on the train period; ties go to the smaller C"
    return float(best), table, per_c


def _cross_validate(ds: MLDataset, X: np.ndarray, y: np.ndarray, C: float,
                    cfg: ValidationConfig) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-fold metrics of ``make_pipeline(C)`` under the purged CV, and the standardised coefs per fold."""
    n = len(y)
    t0 = ds.t0
    rows, coefs = [], []
    for k, (tr, te) in enumerate(_splitter(ds, cfg).split(X)):
        if len(np.unique(y[tr])) < 2:
            raise ValueError(f"CV fold {k}: its {len(tr)} training trades hold one label class only")
        pipe = make_pipeline(C).fit(X[tr], y[tr])
        p = pipe.predict_proba(X[te])[:, 1]
        m = classification_metrics(y[te], p, cfg.report_threshold)
        rows.append({"fold": k, "n_train": len(tr), "n_test": len(te), "n_purged": n - len(te) - len(tr),
                     "test_from": t0[te[0]], "test_to": t0[te[-1]], "base_rate": m["base_rate"],
                     **{key: m[key] for key in FOLD_METRICS}})
        coefs.append(_std_coef(pipe, X.shape[1]))
    return pd.DataFrame(rows), np.asarray(coefs)


# ---------------------------------------------------------------------- the validator
# what `ModelValidator.run` reports to its progress callback, in order
STAGES = ("split", "selection", "cv", "final", "permutation", "importance", "coefficients", "learning_curve",
          "calibration", "economic", "verdict")


class ModelValidator:
    """Purged CV, OOS test, permutation test, importance, overfitting gaps and the economic test of
    :class:`~research.ml.model.SimpleLinearModel` (see the module docstring)."""

    def __init__(self, config: ValidationConfig | None = None, **overrides) -> None:
        self.config = _config(config, overrides)

    def run(self, dataset: MLDataset, *, progress: Callable[[str], None] | None = None) -> ValidationReport:
        """Validate; ``progress(stage)`` is called as each of `STAGES` starts."""
        cfg = self.config
        say = progress or (lambda _stage: None)
        dataset = _sorted(dataset)
        warn: list[str] = list(dataset.meta.get("warnings") or [])  # the data set's own (e.g. duplicate runs)

        say("split")
        train, oos, oos_start, oos_rule = _split(dataset, cfg, warn)
        X, y = _xy(train)
        Xo, yo = _xy(oos)

        say("selection")
        C, selection, per_c = _select(train, cfg)
        grid = sorted(cfg.C_grid)
        if len(grid) > 1 and C in (grid[0], grid[-1]):
            warn.append(f"C chosen at the edge of the grid: extend --C-grid (C = {C:g}, the "
                        f"{'smallest' if C == grid[0] else 'largest'} of {', '.join(f'{c:g}' for c in grid)}): the "
                        "best value may lie beyond it")

        say("cv")
        cv_folds, fold_coefs = per_c[C]
        cv_summary = _summary(cv_folds)

        say("final")
        model = SimpleLinearModel(C=C).train(train)
        p_train = np.asarray(model.predict_signal_quality(train), dtype=float)
        p_oos = np.asarray(model.predict_signal_quality(oos), dtype=float)
        train_metrics = classification_metrics(y, p_train, cfg.report_threshold)
        oos_metrics = classification_metrics(yo, p_oos, cfg.report_threshold)
        oos_metrics.update(auc_significance(yo, p_oos, seed=cfg.seed))
        baseline = _baseline(y, yo, p_oos, oos_metrics)
        gaps = _gaps(train_metrics, cv_summary, oos_metrics, cfg)

        say("permutation")
        permutation = _permutation(train, X, y, C, cfg)
        if cfg.n_permutations < MIN_PERMUTATIONS:
            n = cfg.n_permutations
            warn.append(f"{n} permutation{'s' if n > 1 else ''}: the smallest p-value they can give is 1/{n + 1} = "
                        f"{1 / (n + 1):.3f}: a test at p < {P_VALUE_MAX} on so few draws is too coarse to rely on (20 "
                        "permutations give p = 0.048 whenever the real score beats them all), so the permutation "
                        f"check fails by rule below {MIN_PERMUTATIONS}: use --permutations {MIN_PERMUTATIONS} or more")

        say("importance")
        importance = _importance(model, Xo, yo, train.features, cfg)

        say("coefficients")
        coefficients = _coefficients(model, warn)
        stability = _stability(fold_coefs, train.features, model)

        say("learning_curve")
        learning = _learning_curve(train, X, y, C, cfg)

        say("calibration")
        calibration = _calibration(yo, p_oos)
        of = oos.frame
        oos_predictions = pd.DataFrame({
            "run_id": of["run_id"].to_numpy(), "trade_id": of["trade_id"].to_numpy(),
            "decision_ts": of["decision_ts"].to_numpy(), "side": of["side"].to_numpy(), "p_win": p_oos,
            "y_win": yo, "y_r": oos.r, "pnl_usd": of["pnl_usd"].to_numpy(np.float64)})
        oos_predictions["decision_ts"] = pd.DatetimeIndex(of["decision_ts"])

        say("economic")
        calendar, calendar_note = _oos_calendar(dataset, oos, oos_start, warn)
        p_oos_by_c, p_train_by_c = {C: p_oos}, {C: p_train}
        for c in cfg.C_grid:  # every C of the grid is a filter the selection could have given: all are trials
            if c != C:
                pipe = make_pipeline(c).fit(X, y)
                p_oos_by_c[c], p_train_by_c[c] = pipe.predict_proba(Xo)[:, 1], pipe.predict_proba(X)[:, 1]
        economic, equity, trials = economic_test(oos.frame, p_oos_by_c, p_train_by_c, calendar, cfg, chosen_C=C)
        economic.attrs["calendar"] = calendar_note

        say("verdict")
        info = _dataset_info(dataset, train, oos, oos_start, oos_rule, cfg, warn, calendar_note)
        verdict = _verdict(cfg, cv_summary, oos_metrics, baseline, permutation, economic, p_oos, gaps)
        # the returned (and saved) model carries what the validation measured, not only its train fit
        model.metadata["metrics"] = {
            **model.metadata.get("metrics", {}),
            "cv": {m: {"mean": float(cv_summary.loc[m, "mean"]), "std": float(cv_summary.loc[m, "std"])}
                   for m in cv_summary.index},
            "oos": dict(oos_metrics),
        }
        return ValidationReport(
            config=cfg.to_dict(), dataset=info, selection=selection, cv_folds=cv_folds, cv_summary=cv_summary,
            train_metrics=train_metrics, oos_metrics=oos_metrics, baseline=baseline, gaps=gaps,
            permutation=permutation, importance=importance, coefficients=coefficients, stability=stability,
            learning_curve=learning, calibration=calibration, oos_predictions=oos_predictions, economic=economic,
            equity=equity, verdict=verdict, economic_trials=trials, model=model)


# ---------------------------------------------------------------------- steps
def _config(config: ValidationConfig | None, overrides: Mapping[str, Any]) -> ValidationConfig:
    cfg = config if config is not None else ValidationConfig()
    if isinstance(cfg, Mapping):
        cfg = ValidationConfig(**cfg)
    return dataclasses.replace(cfg, **overrides) if overrides else cfg


def _sorted(ds: MLDataset) -> MLDataset:
    t0 = ds.t0.as_unit("ns").asi8
    if len(t0) > 1 and np.any(np.diff(t0) < 0):
        return ds.subset(np.argsort(t0, kind="stable"))
    return ds


def _xy(ds: MLDataset) -> tuple[np.ndarray, np.ndarray]:
    return ds.X.to_numpy(np.float64), ds.y


def _splitter(ds: MLDataset, cfg: ValidationConfig) -> PurgedKFold:
    return PurgedKFold(cfg.n_splits, t0=ds.t0, t1=ds.t1, embargo=ds.embargo, min_train=10)


def _std_coef(pipe, n_features: int) -> np.ndarray:
    """Standardised logistic coefficients in the feature order, 0 for columns dropped as constant."""
    kept = pipe.named_steps["drop_constant"].get_support()
    coef = np.zeros(n_features)
    coef[kept] = pipe.named_steps["logit"].coef_[0]
    return coef


def _split(ds: MLDataset, cfg: ValidationConfig, warn: list[str]) -> tuple[MLDataset, MLDataset, pd.Timestamp, str]:
    n = len(ds)
    start = pd.Timestamp(cfg.oos_from)
    start = start.tz_localize("UTC") if start.tzinfo is None else start.tz_convert("UTC")
    train, oos = ds.split_oos(start)
    rule = f"configured: OOS = trades decided on/after {cfg.oos_from}"
    if len(oos) < cfg.min_oos_trades or len(train) < MIN_TRAIN_PREFERRED:
        if n < 4:
            raise ValueError(f"{n} trades: too few to validate anything")
        cut = math.floor((1 - FALLBACK_OOS_SHARE) * n)
        start = ds.t0[cut]
        tr, te = time_split(ds.t0, ds.t1, start, embargo=ds.embargo)
        warn.append(f"oos_from {cfg.oos_from} leaves {len(train)} train and {len(oos)} OOS trades (need "
                    f">= {MIN_TRAIN_PREFERRED} and >= {cfg.min_oos_trades}): the last {FALLBACK_OOS_SHARE:.0%} of "
                    f"the trades by decision time are the OOS period instead, from {start}")
        train, oos = ds.subset(tr), ds.subset(te)
        rule = f"fallback: OOS = the last {FALLBACK_OOS_SHARE:.0%} of the trades by decision time, from {start}"
    if len(train) < MIN_TRAIN:
        raise ValueError(f"only {len(train)} train trades (need >= {MIN_TRAIN}) with OOS from {start}: "
                         f"too few trades to validate a model ({n} in all)")
    for name, part in (("train", train), ("out-of-sample", oos)):
        if len(np.unique(part.y)) < 2:
            raise ValueError(f"the {name} period ({len(part)} trades from {part.t0.min()} to {part.t0.max()}) holds "
                             f"one label class only: AUC and log loss are undefined; use more data or another oos_from")
    if len(train) < cfg.n_splits * 2:
        raise ValueError(f"{len(train)} train trades cannot make {cfg.n_splits} CV folds")
    return train, oos, start, rule


def _summary(folds: pd.DataFrame) -> pd.DataFrame:
    cols = list(FOLD_METRICS)
    out = pd.DataFrame({"mean": folds[cols].mean(), "std": folds[cols].std(),
                        "min": folds[cols].min(), "max": folds[cols].max()})
    out.index.name = "metric"
    return out


def _baseline(y: np.ndarray, yo: np.ndarray, p_oos: np.ndarray, oos: dict) -> dict[str, Any]:
    """Two constant predictors on the OOS trades: P(win) = the train base rate, and P(win) = the model's own mean
    OOS prediction. The second has the model's level and no ranking at all: when the base rate drifts out of
    sample and the model's predictions drift with it, the model beats the train base rate without ranking a
    single trade better; against its own mean it has to rank. The check compares with the second."""
    base = float(np.mean(y))
    mean_pred = float(np.mean(p_oos))
    tr = classification_metrics(yo, np.full(len(yo), base), 0.5)
    mm = classification_metrics(yo, np.full(len(yo), mean_pred), 0.5)
    return {"predictors": "constant P(win) = the train base rate; constant P(win) = the model's mean OOS prediction",
            "base_rate_train": base, "base_rate_oos": float(np.mean(yo)), "model_mean_oos": mean_pred,
            "log_loss_train_rate": tr["log_loss"], "brier_train_rate": tr["brier"],
            "log_loss_model_mean": mm["log_loss"], "brier_model_mean": mm["brier"], "auc": 0.5,
            "model_log_loss": oos["log_loss"], "model_brier": oos["brier"],
            "log_loss_skill_vs_model_mean": 1 - oos["log_loss"] / mm["log_loss"] if mm["log_loss"] > 0 else NAN,
            "brier_skill_vs_model_mean": 1 - oos["brier"] / mm["brier"] if mm["brier"] > 0 else NAN,
            "log_loss_skill_vs_train_rate": 1 - oos["log_loss"] / tr["log_loss"] if tr["log_loss"] > 0 else NAN,
            "brier_skill_vs_train_rate": 1 - oos["brier"] / tr["brier"] if tr["brier"] > 0 else NAN}


def auc_significance(y: np.ndarray, p: np.ndarray, *, n_boot: int = AUC_BOOTSTRAP, seed: int = 0) -> dict[str, float]:
    """Is the AUC of ``p`` for the labels ``y`` above chance? ``auc_p_value``: one-sided Mann-Whitney U test of
    P(win) of the winners against the losers (``alternative="greater"``; U / (n_win * n_loss) is the AUC);
    ``auc_ci_low`` / ``auc_ci_high``: percentile 95% interval of the AUC over ``n_boot`` bootstrap resamples of
    the trades (seeded; resamples holding one class only are skipped). NaN when a class is missing."""
    from scipy.stats import mannwhitneyu, rankdata

    y = np.asarray(y, dtype=int)
    p = np.asarray(p, dtype=float)
    out = {"auc_p_value": NAN, "auc_ci_low": NAN, "auc_ci_high": NAN}
    if len(np.unique(y)) < 2:
        return out
    out["auc_p_value"] = float(mannwhitneyu(p[y == 1], p[y == 0], alternative="greater").pvalue)
    rng = np.random.default_rng(seed)
    n = len(y)
    aucs = []
    for lo in range(0, n_boot, 200):  # vectorised by blocks: rank AUC of each resample
        idx = rng.integers(0, n, size=(min(200, n_boot - lo), n))
        yb, pb = y[idx], p[idx]
        n1 = yb.sum(axis=1)
        n0 = n - n1
        ranks = rankdata(pb, axis=1)
        u = (ranks * yb).sum(axis=1) - n1 * (n1 + 1) / 2
        ok = (n1 > 0) & (n0 > 0)
        aucs.append(u[ok] / (n1[ok] * n0[ok]))
    a = np.concatenate(aucs)
    if len(a):
        out["auc_ci_low"], out["auc_ci_high"] = (float(v) for v in np.percentile(a, [2.5, 97.5]))
    return out


def _gaps(train: dict, cv: pd.DataFrame, oos: dict, cfg: ValidationConfig) -> pd.DataFrame:
    """Train / CV / OOS per metric; gaps signed so that positive = worse away from the training data."""
    rows = []
    for metric, higher_better, thr in (("auc", True, cfg.gap_auc), ("log_loss", False, cfg.gap_log_loss),
                                       ("brier", False, NAN)):
        tr, cvm, oo = train[metric], float(cv.loc[metric, "mean"]), oos[metric]
        sign = 1.0 if higher_better else -1.0
        g1, g2 = sign * (tr - cvm), sign * (cvm - oo)
        if not math.isfinite(thr):
            flag = "not rated (no stated threshold)"
        else:
            words = []
            if g1 > thr:
                words.append(f"overfits (train-CV gap {g1:.3f} > {thr:g})")
            if g2 > thr:
                words.append(f"does not generalise (CV-OOS gap {g2:.3f} > {thr:g})")
            flag = "; ".join(words) or "ok"
        rows.append({"metric": metric, "train": tr, "cv": cvm, "oos": oo, "train_cv_gap": g1, "cv_oos_gap": g2,
                     "threshold": thr, "flag": flag, "better": "higher" if higher_better else "lower"})
    out = pd.DataFrame(rows)  # one row per metric, named in the "metric" column
    out.attrs["rule"] = ("gaps are signed so that positive means worse: AUC train - CV and CV - OOS; log loss and "
                         "Brier CV - train and OOS - CV. A train-CV gap above the threshold flags 'overfits', a "
                         "CV-OOS gap above it 'does not generalise'")
    return out


def _permutation(train: MLDataset, X: np.ndarray, y: np.ndarray, C: float, cfg: ValidationConfig) -> dict[str, Any]:
    from sklearn.model_selection import permutation_test_score

    try:
        score, perm, p = permutation_test_score(make_pipeline(C), X, y, cv=_splitter(train, cfg),
                                                n_permutations=cfg.n_permutations, scoring="roc_auc",
                                                random_state=cfg.seed, n_jobs=cfg.n_jobs)
    except ValueError as exc:
        if "class" not in str(exc):
            raise
        # a shuffle left a CV training part without a win (or a loss): too few of one class to test
        raise ValueError(f"the label-permutation test needs both outcomes in every CV training part, but the "
                         f"{len(y)} train trades hold only {int(y.sum())} target hits: use more data (more "
                         f"contracts or a longer period)") from None
    perm = np.asarray(perm, dtype=float)
    return {"score": float(score), "perm_scores": perm.tolist(), "perm_mean": float(np.mean(perm)),
            "perm_std": float(np.std(perm, ddof=1)) if len(perm) > 1 else NAN, "p_value": float(p),
            "n_permutations": int(cfg.n_permutations), "scoring": "roc_auc", "C": C,
            "rule": "labels of the train period shuffled, the same purged CV rerun; p = (1 + #perm >= score) / "
                    "(1 + n_permutations)"}


def _importance(model: SimpleLinearModel, Xo: np.ndarray, yo: np.ndarray, features, cfg: ValidationConfig) -> pd.DataFrame:
    from sklearn.inspection import permutation_importance

    r = permutation_importance(model.pipeline, Xo, yo, scoring="roc_auc", n_repeats=cfg.n_repeats_importance,
                               random_state=cfg.seed, n_jobs=cfg.n_jobs)
    out = pd.DataFrame({"feature": list(features), "importance_mean": r.importances_mean,
                        "importance_std": r.importances_std})
    out = out.sort_values(["importance_mean", "feature"], ascending=[False, True], kind="stable").reset_index(drop=True)
    out["rank"] = np.arange(1, len(out) + 1)
    return out


def _coefficients(model: SimpleLinearModel, warn: list[str]) -> pd.DataFrame:
    """statsmodels inference + Holm-adjusted p-values (features only, not the intercept) + sklearn's
    (penalised) standardised coefficient; indexed by feature ("const" first), as ``model.inference()``."""
    from statsmodels.stats.multitest import multipletests

    names = ["const", *model.features]
    try:
        inf = model.inference()
        attrs = dict(inf.attrs)
    except (ValueError, ArithmeticError, np.linalg.LinAlgError) as exc:  # singular design, separation: sklearn's stand
        warn.append(f"statsmodels inference failed ({type(exc).__name__}: {exc}); coefficients without errors")
        inf = pd.DataFrame(columns=["coef", "std_err", "z", "p_value", "ci_low", "ci_high"], dtype=float)
        attrs = {"error": str(exc)}
    out = inf.reindex(names).astype(float)
    out.index.name = "feature"
    p = out["p_value"].to_numpy()
    test = np.isfinite(p) & (out.index != "const")
    holm = np.full(len(out), NAN)
    if test.any():
        holm[test] = multipletests(p[test], method="holm")[1]
    out["p_holm"] = holm
    sk = model.coefficients().set_index("feature")
    out["sklearn_coef"] = sk["coef"].reindex(out.index).to_numpy()
    out.loc["const", "sklearn_coef"] = float(model.pipeline.named_steps["logit"].intercept_[0])
    out["kept"] = [True if f == "const" else bool(sk.loc[f, "kept"]) for f in out.index]
    notes = {"statsmodels": "unpenalised Logit on the standardised design; rare flags and aliased columns left out "
                            "(NaN)", "p_holm": "Holm step-down over the features' p-values (intercept excluded)",
             "sklearn_coef": f"L2-penalised coefficient of the fitted pipeline (C = {model.C:g}); 0 for constants"}
    out.attrs.update({**_jsonable(attrs), "notes": notes})
    return out


def _stability(coefs: np.ndarray, features, model: SimpleLinearModel) -> pd.DataFrame:
    """Per feature over the CV folds: mean/std of the standardised coefficient, majority-sign agreement, top-5 share."""
    n_folds, n_feat = coefs.shape
    signs = np.sign(coefs)
    pos, neg, zero = (signs > 0).sum(0), (signs < 0).sum(0), (signs == 0).sum(0)
    agree = np.maximum(np.maximum(pos, neg), zero) / n_folds
    top = np.zeros(n_feat)
    k = min(5, n_feat)
    for row in np.abs(coefs):
        top[np.argsort(-row, kind="stable")[:k]] += 1
    final = model.coefficients()["coef"].to_numpy()
    out = pd.DataFrame({"feature": list(features), "coef_mean": coefs.mean(0),
                        "coef_std": coefs.std(0, ddof=1) if n_folds > 1 else np.full(n_feat, NAN),
                        "sign_agreement": agree, "top5_share": top / n_folds, "coef_final": final})
    out = out.reindex(out["coef_mean"].abs().sort_values(ascending=False, kind="stable").index).reset_index(drop=True)
    out.attrs["n_folds"] = int(n_folds)
    return out


def _learning_curve(train: MLDataset, X: np.ndarray, y: np.ndarray, C: float, cfg: ValidationConfig) -> pd.DataFrame:
    from sklearn.model_selection import learning_curve

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a small prefix with one class only scores NaN, said by the NaN
        sizes, tr, te = learning_curve(make_pipeline(C), X, y, cv=_splitter(train, cfg),
                                       train_sizes=np.linspace(0.2, 1.0, 5), scoring="roc_auc", shuffle=False,
                                       n_jobs=cfg.n_jobs, error_score=np.nan)
    return pd.DataFrame({"train_size": sizes.astype(int), "train_auc_mean": _nanstat(tr, np.nanmean),
                         "train_auc_std": _nanstat(tr, np.nanstd), "cv_auc_mean": _nanstat(te, np.nanmean),
                         "cv_auc_std": _nanstat(te, np.nanstd)})


def _nanstat(a: np.ndarray, fn) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)
        return fn(a, axis=1)


def _calibration(yo: np.ndarray, p: np.ndarray) -> pd.DataFrame:
    """OOS reliability table: sklearn's quantile calibration curve with the count per (non-empty) bin."""
    from sklearn.calibration import calibration_curve

    n_bins = int(min(10, max(2, len(p) // 25)))
    observed, predicted = calibration_curve(yo, p, n_bins=n_bins, strategy="quantile")
    bins = np.percentile(p, np.linspace(0, 100, n_bins + 1))  # the same bins sklearn uses
    counts = np.bincount(np.searchsorted(bins[1:-1], p), minlength=n_bins)
    counts = counts[counts > 0]
    return pd.DataFrame({"mean_predicted": predicted, "observed": observed, "count": counts.astype(int)})


def _oos_calendar(ds: MLDataset, oos: MLDataset, start: pd.Timestamp,
                  warn: list[str]) -> tuple[pd.DatetimeIndex, str]:
    """OOS trading dates: the source runs' sessions from the OOS start's session on, else weekdays to the
    last OOS exit session."""
    from strategy.market.sessions import session_id

    first = pd.Timestamp(session_id(pd.DatetimeIndex([start]))[0])
    exits = pd.DatetimeIndex(session_id(pd.DatetimeIndex(oos.t1) - pd.Timedelta(1, "ns")).astype("datetime64[ns]"))
    last = max(exits.max(), first) if len(exits) else first
    sessions = ds.sessions
    if sessions:
        cal = pd.DatetimeIndex(pd.to_datetime(list(sessions))).normalize().unique().sort_values()
        cal = cal[cal >= first]
        if len(cal):
            return cal, (f"daily P&L over the source runs' {len(cal)} sessions from {cal[0]:%Y-%m-%d} to "
                         f"{cal[-1]:%Y-%m-%d} (flat days count as 0)")
    cal = pd.bdate_range(first, last)
    note = (f"daily P&L over the {len(cal)} weekdays from {first:%Y-%m-%d} to {last:%Y-%m-%d}: the data set has no "
            "session list, so exchange holidays count as flat days")
    warn.append(note)
    return cal, note


def _variant_stats(trades: pd.DataFrame, calendar: pd.DatetimeIndex, cfg: ValidationConfig) -> tuple[dict, pd.Series]:
    from research.performance import PerformanceTracker
    from research.validation.sharpe import sharpe_moments

    pt = PerformanceTracker(trades, sessions=calendar, capital=cfg.capital)
    m = pt.metrics()
    daily = pt.daily_pnl()
    sr, n_obs, skew, kurt = sharpe_moments(daily.to_numpy() / cfg.capital)
    return {"trades": int(m["trades"]), "net_pnl_usd": float(m["net_pnl_usd"]), "win_rate": float(m["win_rate"]),
            "expectancy_usd": float(m["expectancy_usd"]), "sharpe": float(m["sharpe"]), "sharpe_daily": sr,
            "max_drawdown_usd": float(m["max_drawdown_usd"]), "psr": float(m["psr"]),
            "_moments": (sr, n_obs, skew, kurt)}, daily


def _improvement_stats(daily: pd.Series, base: pd.Series, share: float, cfg: ValidationConfig) -> dict:
    """Selection skill of a filter: its daily P&L minus ``share`` x the unfiltered daily P&L, i.e. minus what a
    random filter taking the same share of the trades would expect to make. Against the unfiltered P&L itself,
    any filter of a losing strategy "improves" it by trading less (a random one too); against the same-share
    random filter only a filter that picks better trades does. Total, annualised and per-session Sharpe,
    PSR(0); undefined (NaN) when the filter takes nothing or everything."""
    from research.backtest.stats import TRADING_DAYS
    from research.validation.sharpe import psr_from_moments, sharpe_moments

    idx = base.index.union(daily.index)
    diff = daily.reindex(idx, fill_value=0.0) - share * base.reindex(idx, fill_value=0.0)
    sr, n_obs, skew, kurt = sharpe_moments(diff.to_numpy() / cfg.capital)
    return {"improvement_usd": float(diff.sum()), "improvement_sharpe": sr * math.sqrt(TRADING_DAYS),
            "improvement_sharpe_daily": sr, "improvement_psr": psr_from_moments(sr, n_obs, skew, kurt),
            "_imp_moments": (sr, n_obs, skew, kurt)}


def _trials_variance(sr: np.ndarray) -> float:
    """Variance (ddof 1) of the defined per-session Sharpe ratios of the trials; NaN with fewer than two."""
    sr = np.asarray(sr, dtype=np.float64)
    sr = sr[np.isfinite(sr)]
    return float(np.var(sr, ddof=1)) if len(sr) > 1 else NAN


def _as_trials(p: np.ndarray | Mapping[float, np.ndarray], chosen_C: float | None) -> list[tuple[float, np.ndarray]]:
    if isinstance(p, Mapping):
        return [(float(c), np.asarray(v, dtype=float)) for c, v in p.items()]
    return [(NAN if chosen_C is None else float(chosen_C), np.asarray(p, dtype=float))]


def economic_test(trades: pd.DataFrame, p_oos: np.ndarray | Mapping[float, np.ndarray],
                  p_train: np.ndarray | Mapping[float, np.ndarray], calendar: pd.DatetimeIndex,
                  config: ValidationConfig | None = None, *,
                  chosen_C: float | None = None) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """The OOS trades with and without the filter: (table of the chosen C's variants, cumulative daily P&L per
    variant, table of every variant tried).

    ``trades``: the OOS trades (``pnl_usd``, ``exit_ts``, ...; one row per trade, in the order of ``p_oos``);
    ``p_oos``: P(win) of each trade, or ``{C: P(win)}`` for every C of the grid (then ``chosen_C`` names the
    selected one; an array alone is one model, C = ``chosen_C`` or NaN); ``p_train``: the same models'
    predictions on their train rows (the quantile variants' cut-offs); ``calendar``: the OOS sessions.

    Per variant (P(win) >= each threshold of the config; P(win) >= the train predictions' quantile keeping the
    top ``quantile_keep`` share): the filtered strategy's own figures (trades, net $, Sharpe, PSR, DSR), and its
    improvement over a random filter taking the same share of the trades (filtered minus share x unfiltered
    daily P&L), its Sharpe, PSR(0) and DSR. Both
    DSRs are deflated over every variant of every C (``n_trials``, empty ones included); the variances are those
    of the per-session Sharpe ratios of the non-empty variants whose ratio is defined (an empty filter is not a
    strategy: counting it as Sharpe 0 would measure emptiness rather than dispersion).
    """
    from research.validation.sharpe import dsr_from_moments, expected_max_sharpe

    cfg = _config(config, {})
    sets, trains = _as_trials(p_oos, chosen_C), dict(_as_trials(p_train, chosen_C))
    if len(sets) != len(trains) or (len(sets) > 1 and chosen_C is None):
        raise ValueError("p_oos and p_train: the same C values, and chosen_C when several are given")
    chosen = sets[0][0] if chosen_C is None else float(chosen_C)
    if not any(c == chosen or (math.isnan(c) and math.isnan(chosen)) for c, _ in sets):
        raise ValueError(f"chosen_C {chosen_C} is not among the C values given ({[c for c, _ in sets]})")
    cols = [c for c in ("run_id", "trade_id", "side", "signal_ts", "entry_ts", "exit_ts", "pnl_usd",
                        "commission_usd", "r_multiple", "contracts") if c in trades.columns]
    trades = trades.loc[:, cols].reset_index(drop=True)
    for c, p in sets:
        if len(p) != len(trades):
            raise ValueError(f"C = {c:g}: {len(p)} predictions for {len(trades)} trades")

    base, base_daily = _variant_stats(trades, calendar, cfg)
    base.update({"C": NAN, "variant": "no filter", "kind": "none", "threshold": NAN, "share_taken": 1.0})
    base.update({k: NAN for k in ("improvement_usd", "improvement_sharpe", "improvement_sharpe_daily",
                                  "improvement_psr")})
    base["improvement_usd"] = 0.0
    base["_imp_moments"] = (NAN, 0, NAN, NAN)
    rows, dailies = [], {}
    for c, p in sets:
        variants = [(f"P>={t:.2f}", "threshold", float(t)) for t in cfg.thresholds]
        for keep in cfg.quantile_keep:
            thr = float(np.quantile(trains[c], 1 - keep))
            variants.append((f"train top {keep:.0%} cut (P>={thr:.2f})", "quantile", thr))
        is_chosen = c == chosen or (math.isnan(c) and math.isnan(chosen))
        for name, kind, thr in variants:
            take = p >= thr
            stats, daily = _variant_stats(trades.loc[take].reset_index(drop=True), calendar, cfg)
            stats.update(_improvement_stats(daily, base_daily, float(take.mean()) if len(take) else 0.0, cfg))
            rows.append({"C": c, "chosen": is_chosen, "variant": name, "kind": kind, "threshold": thr,
                         "share_taken": float(take.mean()) if len(take) else NAN, **stats})
            if is_chosen:
                dailies[name] = daily
    n_trials = len(rows)
    n_empty = sum(r["trades"] == 0 for r in rows)
    live = [r for r in rows if r["trades"] > 0]
    sr_var = _trials_variance([r["sharpe_daily"] for r in live])
    imp_var = _trials_variance([r["improvement_sharpe_daily"] for r in live])

    def dsr(moments: tuple, var: float) -> float:
        if n_trials == 1:
            return dsr_from_moments(*moments, 1, 0.0)  # nothing selected: PSR(0)
        return dsr_from_moments(*moments, n_trials, var) if var > 0 else NAN

    for r in rows:
        r["dsr"] = dsr(r.pop("_moments"), sr_var)
        r["improvement_dsr"] = dsr(r.pop("_imp_moments"), imp_var)
        r["n_trials"] = n_trials
    base.pop("_moments"), base.pop("_imp_moments")
    base.update({"dsr": base["psr"], "improvement_dsr": NAN, "n_trials": 1, "chosen": True})

    def emax(var: float) -> float:
        return expected_max_sharpe(n_trials, var) if n_trials == 1 or var > 0 else NAN

    n_c = len(sets)
    attrs = {
        "n_trials": n_trials, "n_empty": n_empty, "n_C": n_c, "chosen_C": chosen,
        "sr_variance": sr_var, "improvement_sr_variance": imp_var,
        "expected_max_sharpe_daily": emax(sr_var), "expected_max_improvement_sharpe_daily": emax(imp_var),
        "note": (f"DSRs deflated over n_trials = {n_trials} filter variants, every one computed: {n_c} C value(s) "
                 f"x ({len(cfg.thresholds)} P(win) thresholds + {len(cfg.quantile_keep)} train-quantile cuts), "
                 f"{n_empty} of them empty (no trade taken: counted as trials, conservatively). The variances of "
                 f"the per-session Sharpe ratios ({_g(sr_var)} for the filtered strategies, {_g(imp_var)} for the "
                 f"improvements) are taken over the {len(live)} non-empty variants of all C values (an empty one "
                 "says nothing about dispersion). improvement = filtered daily P&L minus share taken x unfiltered "
                 "daily P&L over the same sessions (what the filter's selection adds to a random filter taking the "
                 "same share of the trades); 'no filter' is not a selected variant: its DSR is "
                 "its PSR (1 trial). The table shows the chosen C's variants; economic_trials lists all "
                 f"{n_trials}."),
    }
    order = ["C", "variant", "kind", "threshold", "trades", "share_taken", "net_pnl_usd", "win_rate",
             "expectancy_usd", "sharpe", "sharpe_daily", "max_drawdown_usd", "psr", "dsr", "improvement_usd",
             "improvement_sharpe", "improvement_sharpe_daily", "improvement_psr", "improvement_dsr", "n_trials"]
    table = pd.DataFrame([base, *(r for r in rows if r["chosen"])]).loc[:, order].reset_index(drop=True)
    trials = pd.DataFrame(rows, columns=["chosen", *order]).loc[:, ["C", "chosen", *order[1:]]]
    for t in (table, trials):
        t["trades"] = t["trades"].astype(np.int64)
        t["n_trials"] = t["n_trials"].astype(np.int64)
        t["C"] = t["C"].astype(np.float64)
        t.attrs.update(attrs)
    trials["chosen"] = trials["chosen"].astype(bool)
    equity = pd.DataFrame({"no filter": base_daily, **dailies}).fillna(0.0).sort_index().cumsum()
    equity.index = pd.DatetimeIndex(equity.index.to_numpy(), name="session")  # no freq: plain dates
    return table, equity, trials


def best_filter(economic: pd.DataFrame, min_trades: int) -> pd.Series | None:
    """The filter variant the verdict rates: the highest improvement Sharpe among the variants taking
    >= ``min_trades`` trades, else among those taking any; None when every variant is empty."""
    filt = economic[(economic["kind"] != "none") & (economic["trades"] > 0)]
    enough = filt[filt["trades"] >= min_trades]
    pool = enough if len(enough) else filt
    if not len(pool):
        return None
    key = pool["improvement_sharpe"].astype(float).fillna(-np.inf)
    return pool.loc[key.idxmax()]


def filter_checks(economic: pd.DataFrame, min_trades: int) -> tuple[dict[str, bool], pd.Series | None]:
    """The economic checks of the verdict on an :func:`economic_test` table, and the best variant."""
    best = best_filter(economic, min_trades)

    def above(key: str) -> bool:
        return bool(best is not None and np.nan_to_num(float(best[key]), nan=0.0) > DSR_MIN)

    return {"filter_improvement_significant": above("improvement_dsr"), "filter_dsr_ok": above("dsr"),
            "filter_enough_trades": bool(best is not None and best["trades"] >= min_trades)}, best


def _g(x: float) -> str:
    return f"{x:.3g}" if isinstance(x, (int, float)) and math.isfinite(x) else "undefined"


def _dataset_info(ds: MLDataset, train: MLDataset, oos: MLDataset, start: pd.Timestamp, rule: str,
                  cfg: ValidationConfig, warn: list[str], calendar_note: str) -> dict[str, Any]:
    def span(d: MLDataset) -> list[str | None]:
        return [str(d.t0.min()), str(d.t0.max())] if len(d) else [None, None]

    meta = ds.meta
    return {
        "n_all": len(ds), "n_train": len(train), "n_oos": len(oos),
        "n_dropped": len(ds) - len(train) - len(oos),
        "dropped_rule": "train trades whose label ends after the OOS start minus the embargo are dropped",
        "base_rate_all": float(ds.y.mean()), "base_rate_train": float(train.y.mean()),
        "base_rate_oos": float(oos.y.mean()),
        "span_all": span(ds), "span_train": span(train), "span_oos": span(oos),
        "embargo": str(ds.embargo), "oos_from": str(start), "oos_from_requested": cfg.oos_from, "oos_rule": rule,
        "n_features": len(ds.features), "features": list(ds.features), "data_hash": ds.data_hash(),
        "sources": {"source": meta.get("source"), "runs": sorted(ds.frame["run_id"].astype(str).unique().tolist()),
                    "params_hashes": meta.get("params_hashes", [])},
        "synthetic": bool(meta.get("synthetic", False)), "calendar": calendar_note, "warnings": list(warn),
        "horizon_bars": meta.get("horizon_bars"), "rules": meta.get("rules"),
        "rejected_by_reason": {str(k): int(v) for k, v in ds.rejected["reason"].value_counts().items()}
        if len(ds.rejected) and "reason" in ds.rejected.columns else {},
    }


def _verdict(cfg: ValidationConfig, cv: pd.DataFrame, oos: dict, base: dict, perm: dict, econ: pd.DataFrame,
             p_oos: np.ndarray, gaps: pd.DataFrame) -> dict[str, Any]:
    unf = econ[econ["kind"] == "none"].iloc[0]
    fchecks, best = filter_checks(econ, cfg.min_oos_trades)
    n_trials = int(econ.attrs.get("n_trials", cfg.n_filter_trials))
    n_perm = int(perm["n_permutations"])
    auc_p = np.nan_to_num(oos.get("auc_p_value", NAN), nan=1.0)
    checks = {
        "permutation_significant": bool(perm["p_value"] < P_VALUE_MAX and n_perm >= MIN_PERMUTATIONS),
        "oos_auc_ok": bool(np.nan_to_num(oos["auc"], nan=0.0) >= OOS_AUC_MIN and auc_p < P_VALUE_MAX),
        "beats_constant": bool(oos["log_loss"] < base["log_loss_model_mean"]),
        **fchecks,
    }
    rules = {
        "permutation_significant": (f"label-permutation p-value (train period, purged CV, ROC AUC) < {P_VALUE_MAX}, "
                                    f"with >= {MIN_PERMUTATIONS} permutations (fewer: the check fails)"),
        "oos_auc_ok": (f"OOS AUC >= {OOS_AUC_MIN} and its one-sided Mann-Whitney p-value (P(win) of winners > of "
                       f"losers) < {P_VALUE_MAX}"),
        "beats_constant": ("OOS log loss < that of a constant P(win) equal to the model's mean OOS prediction (same "
                           "level, no ranking; the constant train base rate is reported too)"),
        "filter_improvement_significant": (
            f"the best filter variant (highest improvement Sharpe among the chosen C's variants taking >= "
            f"{cfg.min_oos_trades} OOS trades, else among those taking any) picks better trades than a random filter "
            f"taking the same share: the DSR of its daily P&L minus share x the unfiltered daily P&L, deflated over "
            f"the {n_trials} variants tried, > {DSR_MIN}"),
        "filter_dsr_ok": (f"the same variant's own deflated Sharpe ratio (the filtered strategy against zero, over "
                          f"{n_trials} variants) > {DSR_MIN}"),
        "filter_enough_trades": f"it takes >= {cfg.min_oos_trades} OOS trades",
    }
    failed_words = {
        "permutation_significant": ("the permutation test does not reject chance" if n_perm >= MIN_PERMUTATIONS else
                                    f"the permutation test is not rated ({n_perm} permutations, fewer than "
                                    f"{MIN_PERMUTATIONS})"),
        "oos_auc_ok": f"the OOS ranking is not shown better than chance (AUC below {OOS_AUC_MIN} or p not below "
                      f"{P_VALUE_MAX})",
        "beats_constant": "no better log loss than a constant at the model's mean prediction",
        "filter_improvement_significant": "no filter picks trades significantly better than a random filter of "
                                          "the same share",
        "filter_dsr_ok": f"the best filter's own DSR is not above {DSR_MIN}",
        "filter_enough_trades": f"the best filter takes fewer than {cfg.min_oos_trades} trades",
    }
    adds = all(checks.values())
    n_oos = len(p_oos)
    taken = int((p_oos >= cfg.report_threshold).sum())
    text = (f"The model {'adds' if adds else 'does not add'} out-of-sample value: OOS AUC {_f(oos['auc'], 3)} "
            f"(95% bootstrap interval {_f(oos.get('auc_ci_low'), 3)} to {_f(oos.get('auc_ci_high'), 3)}, one-sided "
            f"p = {_f(oos.get('auc_p_value'), 3)}; purged CV {_f(cv.loc['auc', 'mean'], 3)} ± "
            f"{_f(cv.loc['auc', 'std'], 3)}); OOS log loss {_f(oos['log_loss'], 4)} vs "
            f"{_f(base['log_loss_model_mean'], 4)} for a constant at the model's mean OOS prediction "
            f"({base['model_mean_oos']:.1%}) and {_f(base['log_loss_train_rate'], 4)} for the train base rate "
            f"({base['base_rate_train']:.1%} wins in training, {base['base_rate_oos']:.1%} out of sample); "
            f"label-permutation p = {_f(perm['p_value'], 3)} ({n_perm} permutations); "
            f"at P≥{cfg.report_threshold:.2f} it takes {taken} of {n_oos} trades")
    if best is not None:
        text += (f"; the best filter, {best['variant']}, takes {int(best['trades'])} of {int(unf['trades'])} trades: "
                 f"against a random filter taking the same share it changes the net by "
                 f"{_usd(best['improvement_usd'], signed=True)} "
                 f"with an improvement Sharpe of {_f(best['improvement_sharpe'], 2)}, DSR "
                 f"{_f(best['improvement_dsr'], 2)} over {n_trials} variants tried; its own Sharpe is "
                 f"{_f(best['sharpe'], 2)} (DSR {_f(best['dsr'], 2)}) vs {_f(unf['sharpe'], 2)} unfiltered (net "
                 f"{_usd(best['net_pnl_usd'])} vs {_usd(unf['net_pnl_usd'])})")
    else:
        text += (f"; no filter variant of the chosen C takes any trade (unfiltered Sharpe {_f(unf['sharpe'], 2)}, "
                 f"net {_usd(unf['net_pnl_usd'])})")
    failed = [failed_words[k] for k, ok in checks.items() if not ok]
    text += (". Failed: " + "; ".join(failed) + "." if failed else ". Every check passes.")
    flagged = [f"{row['metric']}: {row['flag']}" for _, row in gaps.iterrows() if row["flag"] not in ("ok",) and
               not str(row["flag"]).startswith("not rated")]
    if flagged:
        text += " Gaps: " + "; ".join(flagged) + "."
    return {"adds_value": adds, "text": text, "checks": checks, "rules": rules,
            "rule": "adds_value = all checks: " + " AND ".join(rules.values()),
            "best_variant": None if best is None else str(best["variant"]),
            "dsr_note": econ.attrs.get("note", "")}


def _usd(x: float, signed: bool = False) -> str:
    if not math.isfinite(x):
        return "n/a"
    return f"-${-x:,.0f}" if x < 0 else f"{'+' if signed else ''}${x:,.0f}"


def _f(x: Any, digits: int) -> str:
    try:
        v = float(x)
    except (TypeError, ValueError):
        return "n/a"
    return f"{v:.{digits}f}" if math.isfinite(v) else "n/a"


# ---------------------------------------------------------------------- JSON
def _jsonable(x: Any) -> Any:
    """Plain JSON values: numpy scalars -> Python, NaN/inf -> None, timestamps -> ISO text, tuples -> lists."""
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple, set)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return [_jsonable(v) for v in x.tolist()]
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        return float(x) if math.isfinite(x) else None
    if x is None or x is pd.NaT or (isinstance(x, type(pd.NA)) and x is pd.NA):
        return None
    if isinstance(x, (pd.Timestamp, pd.Timedelta)):
        return x.isoformat() if isinstance(x, pd.Timestamp) else str(x)
    if isinstance(x, str):
        return x
    return str(x)


def _table_to_records(df: pd.DataFrame) -> tuple[list[dict], dict]:
    index = None
    if not isinstance(df.index, pd.RangeIndex):
        index = df.index.name or "index"
        df = df.reset_index(names=index)
    dtypes = {str(c): str(t) for c, t in df.dtypes.items()}
    records = [{str(c): _jsonable(v) for c, v in zip(df.columns, row)} for row in df.itertuples(index=False, name=None)]
    return records, {"index": index, "columns": [str(c) for c in df.columns], "dtypes": dtypes,
                     "attrs": _jsonable(dict(df.attrs))}


def _records_to_table(records: list[dict], schema: dict) -> pd.DataFrame:
    cols = schema.get("columns") or (list(records[0]) if records else [])
    df = pd.DataFrame.from_records(records, columns=cols) if records else pd.DataFrame(columns=cols)
    for c, t in (schema.get("dtypes") or {}).items():
        if c not in df.columns:
            continue
        if t.startswith("datetime64"):
            s = pd.to_datetime(df[c], utc=True, format="ISO8601")
            tz = t[t.find(",") + 1:-1].strip() if "," in t else None
            s = s.dt.tz_convert(tz) if tz else s.dt.tz_localize(None)
            df[c] = s.astype(t)  # the stored unit (ns) back
        elif t == "bool":
            df[c] = df[c].astype(bool)
        elif t.startswith("int") and df[c].notna().all():
            df[c] = df[c].astype(t)
        elif t.startswith(("float", "int")):
            df[c] = pd.to_numeric(df[c], errors="coerce").astype(np.float64)
    index = schema.get("index")
    if index is not None and index in df.columns:
        df = df.set_index(index)
        index_dtype = (schema.get("dtypes") or {}).get(index) or ""
        if index_dtype.startswith("datetime64"):
            df.index = pd.DatetimeIndex(df.index).astype(index_dtype)
        if index == "index":
            df.index.name = None
    df.attrs.update(schema.get("attrs") or {})
    return df


def _nan_back(d: dict) -> dict:
    """None -> NaN for the flat metric dicts (JSON has no NaN)."""
    return {k: (NAN if v is None else v) for k, v in d.items()}
