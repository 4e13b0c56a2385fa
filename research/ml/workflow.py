"""The ML workflow as the CLI and the notebooks run it: data set from any source, train, validate, filter.

Sources, in the order they are looked at: a saved data set folder (``navale ml dataset --out``), store runs,
Parquet exports, else bar files (backtested as ``navale backtest`` does but without the account's margin
floor: labels are signal outcomes; run stored) or, with
nothing given, the embedded synthetic ML default (60 sessions, generated on first use).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.ml.dataset import MLDataProcessor, MLDataset

__all__ = ["ML_SYNTHETIC_DAYS", "ml_default_data", "build_dataset", "ml_id", "config_id", "FilterResult",
           "apply_filter", "filter_backtest"]

ML_SYNTHETIC_DAYS = 60  # the 10-session default holds ~45 trades: too few to fit anything; 60 give ~280


def ml_default_data() -> Path:
    """The embedded synthetic ML data set (60 sessions of 1-minute bars), generated on first use."""
    from research.data.synthetic import SyntheticSpec, default_dataset

    return default_dataset(SyntheticSpec(days=ML_SYNTHETIC_DAYS))


def build_dataset(*, paths: Sequence[str | Path] | None = None, runs: Sequence[str] | None = None,
                  parquet: Sequence[str | Path] | None = None, dataset_dir: str | Path | None = None,
                  params_file: str | Path | None = None, mode: str | None = None, session: str | None = None,
                  date_from: str | None = None, date_to: str | None = None, bar: str | None = None,
                  bar_features: bool = True, store: bool = True, shadow: bool = True,
                  status: Callable[[str], None] | None = None,
                  on_store_error: Callable[[str], None] | None = None,
                  on_file: Callable[[Path], None] | None = None, allow_data_errors: bool = False,
                  on_check: Callable[[str], None] | None = None, symbol: str | None = None,
                  fallback_dirs: Sequence[str | Path] = ()) -> MLDataset:
    """An :class:`MLDataset` from the first source given (see the module docstring); ``status(msg)``
    says what it does, ``on_file(path)`` is called before each bar file is read, ``on_check(line)`` gets
    the data check's one-line summary. Backtests of DATA are stored in one transaction once all have run;
    when the store cannot take them they are saved as pending bundles and ``on_store_error`` gets the
    one-line message (without it, the error is raised); a bundle the data folder cannot take goes to the
    first of ``fallback_dirs`` that can (the command's output folder). ``symbol`` names the instrument of
    files whose names do not say. ``shadow=False`` drops shadow trades (store runs, exports)."""
    say = status or (lambda _msg: None)
    if dataset_dir:
        say(f"reading the data set {dataset_dir}")
        return MLDataset.load(dataset_dir)
    if runs:
        say(f"reading the snapshots of run(s) {', '.join(runs)}")
        return MLDataProcessor(bar_features=bar_features, shadow=shadow).from_store(list(runs))
    if parquet:
        # an export carries no bars: the two bar features are left out (a model trained so records it)
        say(f"reading {len(parquet)} Parquet export(s) (without the bar features: an export has no bars)")
        return MLDataProcessor(bar_features=False, shadow=shadow).from_parquet(list(parquet))
    from research.pipeline import backtest_series, load_params, load_series

    params = load_params(params_file, mode, session)
    files = list(paths) if paths else [ml_default_data()]
    say(f"loading {len(files)} file(s)" if paths else f"using the embedded synthetic ML data set: {files[0]}")
    series = load_series(files, bar=bar, date_from=date_from, date_to=date_to, series="continuous", on_file=on_file,
                         allow_data_errors=allow_data_errors, on_check=on_check, symbol=symbol)
    proc = MLDataProcessor(bar_features=bar_features)
    frames, manifests, bars, backtests = [], {}, {}, []
    for s in series:
        say(f"backtesting {s.name} ({len(s.frame):,} bars)")
        # the label `navale backtest` gives (one series: "continuous")
        label = s.name if len(series) > 1 else "continuous"
        # labels are signal outcomes: no account floor cuts the sample short (a blown account is not a label)
        sb = backtest_series(s, params, label=label, date_from=date_from, date_to=date_to, bar=bar, store=False,
                             margin_floor=False)
        backtests.append(sb)
        frames.append(sb.result.snapshots())
        manifests[sb.run_id] = sb.manifest
        bars[sb.run_id] = s.frame
    if store:
        _store(backtests, on_store_error, fallback_dirs)
    say("building features and labels")
    snaps = pd.concat(frames, ignore_index=True)
    return proc.from_frame(snaps, source="backtest " + ", ".join(manifests), manifests=manifests, bars=bars)


def _store(backtests: list, on_store_error: Callable[[str], None] | None,
           fallback_dirs: Sequence[str | Path] = ()) -> None:
    from research.pipeline import store_backtests
    from research.store import RunsNotStoredError

    try:
        store_backtests(backtests, fallback_dirs=fallback_dirs)
    except RunsNotStoredError as exc:
        if on_store_error is None:
            raise
        on_store_error(str(exc))


def ml_id(dataset: MLDataset) -> str:
    """The folder of a data set under ``reports/ml``: its data hash (dataset/, model.joblib, CONFIG_ID/...)."""
    return dataset.data_hash()


def config_id(config: Any) -> str:
    """12-hex id of a validation config, without what does not change the results (``n_jobs``): the sub-folder
    of ``reports/ml/DATA_ID`` holding that validation and its report, so other settings do not overwrite it."""
    import dataclasses

    values = dataclasses.asdict(config) if dataclasses.is_dataclass(config) else dict(config)
    values.pop("n_jobs", None)
    return hashlib.sha256(json.dumps(values, sort_keys=True, default=str).encode()).hexdigest()[:12]


@dataclass
class FilterResult:
    """A backtest's trades scored by a model: ``scored`` has p_win and taken per trade."""

    scored: pd.DataFrame
    threshold: float
    unscored: int  # trades the data set rejected (warm-up): the filter cannot score them, so it skips them
    summary: pd.DataFrame  # all trades vs taken: trades, net $, win rate, mean R
    trained_on_other_params: list[str] = field(default_factory=list)  # the model's params hashes, when not these

    def write_scores(self, out_dir: str | Path) -> Path:
        """Write the per-trade scores to ``OUT_DIR/ml_filter.csv`` atomically; return the path."""
        from research.store.files import atomic_write_text

        return atomic_write_text(Path(out_dir) / "ml_filter.csv", self.scored.to_csv(index=False))


def apply_filter(dataset: MLDataset, model, *, threshold: float) -> FilterResult:
    """Score every trade of ``dataset`` with ``model`` and keep P(win) >= ``threshold`` (same trade universe:
    a skipped trade does not free the position for another signal; see docs/ml.md).

    Trades decided within the model's training period (``train_from`` .. ``train_to``) are marked
    ``in_training``: the model has seen that period (if not these very trades), so their figures are not out of
    sample; the summary shows the other trades on their own.
    """
    p = model.predict_signal_quality(dataset)
    f = dataset.frame
    t0 = pd.DatetimeIndex(f["decision_ts"])
    lo, hi = model.metadata.get("train_from"), model.metadata.get("train_to")
    in_training = ((t0 >= pd.Timestamp(lo)) & (t0 <= pd.Timestamp(hi))) if lo and hi else np.zeros(len(f), bool)
    scored = pd.DataFrame({"run_id": f["run_id"], "trade_id": f["trade_id"], "decision_ts": f["decision_ts"],
                           "side": f["side"], "p_win": p, "taken": p >= threshold, "in_training": in_training,
                           "y_win": f["y_win"], "y_r": f["y_r"], "pnl_usd": f["pnl_usd"], "exit_ts": f["exit_ts"]})

    def row(d: pd.DataFrame) -> dict[str, float]:
        return {"trades": len(d), "net_pnl_usd": float(d["pnl_usd"].sum()),
                "target_hit": float(d["y_win"].mean()) if len(d) else np.nan,
                "mean_r": float(d["y_r"].mean()) if len(d) else np.nan}

    taken = scored[scored["taken"]]
    rows = {"all trades": row(scored), f"taken (P(win) >= {threshold:.2f})": row(taken)}
    if in_training.any():
        oos = scored[~scored["in_training"]]
        rows["all trades outside the training period"] = row(oos)
        rows["taken outside the training period"] = row(oos[oos["taken"]])
    return FilterResult(scored, float(threshold), int(len(dataset.rejected)), pd.DataFrame(rows).T)


def filter_backtest(model: Any, bt: Any, bars: pd.DataFrame, params: Any, *,
                    threshold: float | None = None) -> FilterResult:
    """Score the trades of a stored backtest (``research.pipeline.StoredBacktest``) on its ``bars`` with
    ``model`` and apply the filter (:func:`apply_filter`). ``threshold`` defaults to the parameters'
    ``signal_probability_threshold``; the result names the parameter hashes the model was trained on
    when these parameters are not among them."""
    thr = params.signal_probability_threshold if threshold is None else threshold
    if not 0 <= thr <= 1:
        raise ValueError(f"--ml-threshold {thr}: must be in [0, 1]")
    proc = MLDataProcessor(bar_features=bool(model.metadata.get("bar_features", True)),
                           prior_day=bool(model.metadata.get("prior_day", True)))
    res = apply_filter(proc.from_backtest(bt, bars), model, threshold=thr)
    hashes = list(model.metadata.get("params_hashes") or [])
    if hashes and params.hash() not in hashes:
        res.trained_on_other_params = hashes
    return res
