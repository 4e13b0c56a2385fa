"""Is the best configuration of a sweep real, or the luckiest of many? Three views.

- :func:`pbo_cscv`: Probability of Backtest Overfitting by Combinatorially Symmetric
  Cross-Validation (Bailey, Borwein, López de Prado & Zhu, "The Probability of Backtest
  Overfitting", J. Computational Finance 20(4), 2017; SSRN 2326253, 2015).
- :func:`dsr_of_best`: the Deflated Sharpe Ratio of the full-sample best configuration
  (Bailey & López de Prado, "The Deflated Sharpe Ratio", J. Portfolio Management 40(5), 2014),
  from the PSR/DSR functions of :mod:`research.validation.sharpe`; :func:`dsr_of_combo` deflates any one
  configuration (e.g. the one a walk-forward proposes) with the same trials and SR variance.
- :func:`stability_map` / :func:`plateau_score`: is the optimum a plateau of good neighbours,
  or a lone spike in the parameter grid?

Inputs are plain arrays/frames (rows = sessions, oldest first; columns = configurations), so
nothing here needs the sweep package; the ``*_from_sweep`` adapters read a ``SweepResult``.
See ``docs/validation.md`` for how to read each figure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from research.validation.sharpe import (
    dsr_from_moments,
    expected_max_sharpe,
    psr_from_moments,
    sharpe_moments,
    sharpe_ratio,
)

__all__ = [
    "MAX_SPLITS",
    "DEFAULT_SPLITS",
    "check_n_splits",
    "default_n_splits",
    "BLOCK_METRICS",
    "PBOResult",
    "pbo_cscv",
    "pbo_from_sweep",
    "block_stats",
    "metric_from_stats",
    "column_metric",
    "dsr_of_best",
    "dsr_of_best_from_sweep",
    "dsr_of_combo",
    "trials_sr_variance",
    "sweep_table",
    "search_trials",
    "stability_map",
    "stability_map_from_sweep",
    "plateau_score",
    "PLATEAU_RATIO",
    "SPIKE_RATIO",
    "PLATEAU_TOLERANCE",
]

# Metrics computed from per-block sufficient statistics (any split = a sum of block stats).
# "net_pnl" ranks like "mean": CSCV halves always hold the same number of rows.
BLOCK_METRICS = ("sharpe", "mean", "net_pnl", "sortino", "profit_factor")
_CHUNK_CELLS = 250_000  # combos x columns per step (2 MB per array; block gathers are S/2 times that)
_REL_ZERO_STD = 1e-9  # a std below this x the column's largest |value| counts as zero

# plateau_score thresholds (documented in docs/validation.md)
PLATEAU_RATIO = 0.75  # neighbours' mean >= 75% of the best cell: plateau
SPIKE_RATIO = 0.50  # neighbours' mean < 50% of the best cell: spike
PLATEAU_TOLERANCE = 0.20  # "near the best" = within 20% of the best cell's value


# ---------------------------------------------------------------- block statistics


def _as_matrix(returns: pd.DataFrame | np.ndarray) -> tuple[np.ndarray, list[Any]]:
    if isinstance(returns, pd.DataFrame):
        return returns.to_numpy(dtype=np.float64, copy=False), list(returns.columns)
    arr = np.asarray(returns, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"returns must be 2-D (rows = periods, columns = configurations), got shape {arr.shape}")
    return arr, list(range(arr.shape[1]))


def block_stats(x: np.ndarray, n_blocks: int) -> dict[str, np.ndarray]:
    """Per-block sufficient statistics of a (T, N) matrix split into ``n_blocks`` equal contiguous blocks.

    T must be a multiple of ``n_blocks``. Returns ``n`` (rows per block, scalar), ``centre`` (N,
    full-sample column mean), ``s1``/``s2`` (sum and sum of squares of the *centred* values, so the
    variance does not suffer from cancellation), ``pos``/``neg`` (sum of gains / of |losses|) and
    ``down2`` (sum of squared losses), each (n_blocks, N); ``scale`` (N,) = max |value| per column.
    """
    t, n = x.shape
    if t % n_blocks:
        raise ValueError(f"{t} rows do not split into {n_blocks} equal blocks")
    centre = x.mean(axis=0)
    xb = x.reshape(n_blocks, t // n_blocks, n)
    xc = xb - centre
    loss = np.minimum(xb, 0.0)
    return {
        "n": np.float64(t // n_blocks),
        "centre": centre,
        "s1": xc.sum(axis=1),
        "s2": np.square(xc).sum(axis=1),
        "pos": np.maximum(xb, 0.0).sum(axis=1),
        "neg": -loss.sum(axis=1),
        "down2": np.square(loss).sum(axis=1),
        "scale": np.abs(x).max(axis=0) if t else np.zeros(n),
    }


def metric_from_stats(
    metric: str, n: float | np.ndarray, centre: np.ndarray, s1: np.ndarray, s2: np.ndarray,
    pos: np.ndarray, neg: np.ndarray, down2: np.ndarray, scale: np.ndarray,
) -> np.ndarray:
    """A per-period metric from summed block statistics (any leading shape, last axis = columns).

    ``sharpe`` = mean / std (ddof 1); ``mean``/``net_pnl`` = mean; ``sortino`` = mean / sqrt(mean of
    squared losses) (target 0); ``profit_factor`` = gains / |losses|. Undefined values (zero std, no
    losses) are NaN: callers rank NaN as the worst.
    """
    mean = s1 / n + centre
    if metric in ("mean", "net_pnl"):
        return mean
    with np.errstate(divide="ignore", invalid="ignore"):
        if metric == "sharpe":
            var = (s2 - s1 * s1 / n) / (n - 1)
            std = np.sqrt(np.maximum(var, 0.0))
            return np.where(std > _REL_ZERO_STD * scale, mean / std, np.nan)
        if metric == "sortino":
            dd = np.sqrt(down2 / n)
            return np.where(dd > _REL_ZERO_STD * scale, mean / dd, np.nan)
        if metric == "profit_factor":
            return np.where(neg > 0, pos / neg, np.nan)
    raise ValueError(f"unknown metric {metric!r}: use one of {BLOCK_METRICS} or a callable")


def column_metric(x: np.ndarray, metric: str) -> np.ndarray:
    """``metric`` of each column of a (T, N) matrix (one block; same definitions as CSCV)."""
    st = block_stats(x, 1)
    return metric_from_stats(metric, st["n"], st["centre"], st["s1"][0], st["s2"][0], st["pos"][0],
                             st["neg"][0], st["down2"][0], st["scale"])


# ---------------------------------------------------------------- PBO by CSCV


@dataclass
class PBOResult:
    """Outcome of :func:`pbo_cscv`; per-split arrays have one entry per IS/OOS combination."""

    pbo: float  # share of splits with logit <= 0 (IS-best at or below the OOS median)
    logits: np.ndarray  # λ = ln(ω / (1 − ω)) per split
    is_best: np.ndarray  # column label chosen in-sample, per split
    oos_rank: np.ndarray  # ω: relative OOS rank of that column in (0, 1), average rank for ties
    is_metric: np.ndarray  # IS metric of the chosen column (per period)
    oos_metric: np.ndarray  # OOS metric of the same column (NaN when undefined)
    degradation: dict[str, float]  # OOS = intercept + slope * IS (scipy.stats.linregress over the splits)
    prob_oos_loss: float  # share of splits whose chosen column has OOS metric < 0 (undefined counts as loss)
    n_splits: int  # S blocks
    n_combinations: int  # C(S, S/2)
    n_obs: int  # rows used (after dropping the oldest remainder)
    dropped_rows: int  # oldest rows dropped so that S divides the rest
    n_configs: int
    metric: str
    notes: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """JSON-friendly figures (no per-split arrays)."""
        counts = pd.Series(self.is_best).value_counts()
        top = counts.index[0] if counts.size else None
        return {
            "pbo": self.pbo,
            "logit_median": float(np.median(self.logits)) if self.logits.size else math.nan,
            "prob_oos_loss": self.prob_oos_loss,
            "degradation_slope": self.degradation.get("slope", math.nan),
            "degradation_intercept": self.degradation.get("intercept", math.nan),
            "degradation_r": self.degradation.get("r", math.nan),
            "is_metric_mean": float(np.nanmean(self.is_metric)) if np.isfinite(self.is_metric).any() else math.nan,
            "oos_metric_mean": float(np.nanmean(self.oos_metric)) if np.isfinite(self.oos_metric).any() else math.nan,
            "most_chosen": top.item() if isinstance(top, np.generic) else top,
            "most_chosen_share": float(counts.iloc[0] / counts.sum()) if counts.size else math.nan,
            "n_splits": self.n_splits,
            "n_combinations": self.n_combinations,
            "n_obs": self.n_obs,
            "dropped_rows": self.dropped_rows,
            "n_configs": self.n_configs,
            "metric": self.metric,
            "notes": list(self.notes),
        }


def _nan_worst(v: np.ndarray) -> np.ndarray:
    """Undefined metrics (NaN) rank below every defined one."""
    return np.where(np.isnan(v), -np.inf, v)


def _avg_rank_of(values: np.ndarray, chosen: np.ndarray) -> np.ndarray:
    """Average 1-based ascending rank of ``values[i, chosen[i]]`` within row i (ties share the mean rank)."""
    v = values[np.arange(values.shape[0]), chosen][:, None]
    less = (values < v).sum(axis=1)
    equal = (values == v).sum(axis=1)  # includes the chosen column itself
    return less + (equal + 1) / 2.0


DEFAULT_SPLITS = 16  # CSCV blocks: C(16, 8) = 12,870 splits
MAX_SPLITS = 20  # C(20, 10) = 184,756 splits; C(22, 11) = 705,432 would take minutes on 1,000 configurations


def check_n_splits(n_splits: int, rows: int | None = None) -> int:
    """`n_splits` when CSCV can use it: even, 2..`MAX_SPLITS`, and (given `rows`, the sessions) at least
    2 rows per block; else `ValueError` saying which values would work."""
    if isinstance(n_splits, bool) or not isinstance(n_splits, (int, np.integer)):
        raise ValueError(f"n_splits = {n_splits!r}: must be an even integer from 2 to {MAX_SPLITS}")
    if n_splits < 2 or n_splits % 2 or n_splits > MAX_SPLITS:
        raise ValueError(f"n_splits = {n_splits}: CSCV needs an even number of blocks from 2 to {MAX_SPLITS}")
    if rows is not None and rows < 2 * n_splits:
        largest = min(MAX_SPLITS, rows // 2 - (rows // 2) % 2)
        fix = f"use at most {largest}" if largest >= 2 else "PBO needs at least 4 sessions"
        raise ValueError(f"n_splits = {n_splits}: {rows} sessions are too few for {n_splits} blocks (at least 2 "
                         f"sessions per block): {fix}")
    return int(n_splits)


def default_n_splits(rows: int) -> int:
    """`DEFAULT_SPLITS`, or the largest even number of blocks `rows` sessions allow (2 at least)."""
    return max(2, min(DEFAULT_SPLITS, rows // 2 - (rows // 2) % 2))


def pbo_cscv(
    returns: pd.DataFrame | np.ndarray,
    n_splits: int = 16,
    metric: str | Callable[[np.ndarray], np.ndarray] = "sharpe",
) -> PBOResult:
    """Probability of Backtest Overfitting by CSCV (Bailey et al. 2015).

    ``returns``: (T, N) per-period returns or P&L, oldest row first, one column per configuration.
    The T rows are cut into ``n_splits`` (S, even) contiguous equal blocks; when S does not divide T
    the *oldest* ``T mod S`` rows are dropped (reported in ``dropped_rows`` and ``notes``). For each
    of the C(S, S/2) ways to pick S/2 blocks as in-sample (the rest out-of-sample), the column with
    the best IS ``metric`` is chosen, its OOS relative rank ω = rank / (N + 1) (average rank for
    ties) gives λ = ln(ω / (1 − ω)), and PBO = share of λ <= 0.

    Built-in metrics (:data:`BLOCK_METRICS`) are combined from per-block sums computed once, so a
    split costs a few (S/2, N) additions: C(16, 8) = 12,870 splits x 1,000 columns take seconds. A column
    whose metric is undefined in a half (zero variance: e.g. no trade) ranks as the worst; ties for
    the IS best go to the first column. A callable ``metric(matrix) -> per-column array`` is also
    accepted; it is evaluated split by split (slow: one call per half per split).
    """
    x, labels = _as_matrix(returns)
    check_n_splits(n_splits)
    t, n_cfg = x.shape
    if n_cfg < 2:
        raise ValueError(f"PBO needs at least 2 configurations (columns), got {n_cfg}")
    check_n_splits(n_splits, t)
    if not np.isfinite(x).all():
        raise ValueError("returns hold NaN or infinite values: fill sessions without a trade with 0")
    dropped = t % n_splits
    notes: list[str] = []
    if dropped:
        notes.append(f"dropped the oldest {dropped} rows so that {n_splits} blocks are equal")
        x = x[dropped:]
    t = x.shape[0]

    combos = np.array(list(itertools.combinations(range(n_splits), n_splits // 2)), dtype=np.intp)
    n_comb = combos.shape[0]
    member = np.zeros((n_comb, n_splits), dtype=bool)
    member[np.repeat(np.arange(n_comb), n_splits // 2), combos.ravel()] = True
    others = np.nonzero(~member)[1].reshape(n_comb, n_splits // 2)  # OOS blocks of each split

    is_val = np.empty(n_comb)
    oos_val = np.empty(n_comb)
    chosen = np.empty(n_comb, dtype=np.intp)
    rank = np.empty(n_comb)
    chunk = max(1, _CHUNK_CELLS // n_cfg)

    if callable(metric):
        name = getattr(metric, "__name__", "callable")
        blocks = np.arange(t).reshape(n_splits, -1)
        for c in range(n_comb):
            rows_is = blocks[combos[c]].ravel()
            rows_oos = blocks[others[c]].ravel()
            mi = _nan_worst(np.asarray(metric(x[rows_is]), float))
            mo = _nan_worst(np.asarray(metric(x[rows_oos]), float))
            k = int(np.argmax(mi))
            chosen[c], is_val[c], oos_val[c] = k, mi[k], mo[k]
            rank[c] = _avg_rank_of(mo[None, :], np.array([k]))[0]
    else:
        if metric not in BLOCK_METRICS:
            raise ValueError(f"unknown metric {metric!r}: use one of {BLOCK_METRICS} or a callable")
        name = metric
        st = block_stats(x, n_splits)
        half_n = st["n"] * (n_splits // 2)
        keys = ("s1", "s2", "pos", "neg", "down2")
        for lo in range(0, n_comb, chunk):
            # (chunk, N) sums over the IS / OOS blocks. Fancy indexing + sum (not a matrix product)
            # adds the blocks in the same order for every column, so identical columns (common in
            # sweeps) give bit-identical metrics and tie exactly.
            ins = {k: st[k][combos[lo:lo + chunk]].sum(axis=1) for k in keys}
            outs = {k: st[k][others[lo:lo + chunk]].sum(axis=1) for k in keys}
            mi = metric_from_stats(metric, half_n, st["centre"], scale=st["scale"], **ins)
            mo = metric_from_stats(metric, half_n, st["centre"], scale=st["scale"], **outs)
            mi, mo = _nan_worst(mi), _nan_worst(mo)
            k = np.argmax(mi, axis=1)
            rows = np.arange(k.size)
            sl = slice(lo, lo + k.size)
            chosen[sl], is_val[sl], oos_val[sl] = k, mi[rows, k], mo[rows, k]
            rank[sl] = _avg_rank_of(mo, k)

    omega = rank / (n_cfg + 1)
    logits = np.log(omega / (1.0 - omega))
    is_val[~np.isfinite(is_val)] = np.nan
    oos_val[~np.isfinite(oos_val)] = np.nan
    prob_loss = float(np.mean(~(oos_val >= 0)))  # NaN (undefined) counts as a loss
    return PBOResult(
        pbo=float(np.mean(logits <= 0)),
        logits=logits,
        is_best=np.asarray(labels, dtype=object)[chosen],
        oos_rank=omega,
        is_metric=is_val,
        oos_metric=oos_val,
        degradation=_degradation(is_val, oos_val),
        prob_oos_loss=prob_loss,
        n_splits=n_splits,
        n_combinations=n_comb,
        n_obs=t,
        dropped_rows=dropped,
        n_configs=n_cfg,
        metric=name,
        notes=notes,
    )


def _degradation(is_val: np.ndarray, oos_val: np.ndarray) -> dict[str, float]:
    """OLS of OOS on IS metric across splits (scipy.stats.linregress); NaN when IS does not vary."""
    ok = np.isfinite(is_val) & np.isfinite(oos_val)
    out = {"slope": math.nan, "intercept": math.nan, "r": math.nan, "p_value": math.nan, "n": int(ok.sum())}
    if ok.sum() >= 3 and np.ptp(is_val[ok]) > 0:
        fit = stats.linregress(is_val[ok], oos_val[ok])
        out.update(slope=float(fit.slope), intercept=float(fit.intercept), r=float(fit.rvalue),
                   p_value=float(fit.pvalue))
    return out


def pbo_from_sweep(result: Any, n_splits: int = 16, metric: str | Callable = "sharpe") -> PBOResult:
    """:func:`pbo_cscv` on a ``SweepResult``'s session P&L (the ratio metrics are scale-free: $ = returns)."""
    return pbo_cscv(result.daily_pnl, n_splits=n_splits, metric=metric)


# ---------------------------------------------------------------- DSR of the best


def trials_sr_variance(sr: np.ndarray) -> tuple[float, float, int]:
    """(variance ddof 1, mean, number undefined) of the trials' per-session Sharpe ratios ``sr``.

    A trial whose Sharpe is undefined (NaN: no trade, or constant P&L) counts as SR = 0: it is a
    trial that showed no skill, and leaving it out would understate the dispersion of the trials
    (with one defined column left, to a variance of 0: no deflation at all). Fewer than two trials
    give a variance of 0.
    """
    sr = np.asarray(sr, dtype=np.float64)
    undefined = ~np.isfinite(sr)
    sr0 = np.where(undefined, 0.0, sr)
    var = float(np.var(sr0, ddof=1)) if sr0.size > 1 else 0.0
    return var, float(sr0.mean()) if sr0.size else math.nan, int(undefined.sum())


def dsr_of_combo(
    daily_pnl: pd.DataFrame,
    capital: float,
    combo: Any,
    *,
    n_trials: int,
    sr_variance: float,
    periods_per_year: int = 252,
) -> dict[str, Any]:
    """Deflated Sharpe Ratio of one column ``combo`` of ``daily_pnl`` ($ per session), with the
    trial count ``n_trials`` and cross-trial SR variance ``sr_variance`` of the whole search (take
    them from :func:`dsr_of_best`: the configuration was selected among all of them).

    ``dsr = dsr_from_moments(*sharpe_moments(daily_pnl[combo] / capital), n_trials, sr_variance)``.
    With ``n_trials > 1`` and no SR variance (``sr_variance`` 0 or NaN) the Sharpe that the best of
    the trials would reach by luck cannot be estimated: ``dsr`` is NaN (not silently the PSR) and
    ``note`` says why. With ``n_trials == 1`` there is nothing to deflate: DSR = PSR(0).
    """
    if capital <= 0:
        raise ValueError(f"capital must be > 0, got {capital}")
    if isinstance(daily_pnl, pd.DataFrame):
        col = daily_pnl[combo].to_numpy(dtype=np.float64)
    else:
        col = np.asarray(daily_pnl, dtype=np.float64)[:, int(combo)]
    r = col / capital
    sr, n_obs, skew, kurt = sharpe_moments(r)
    trials = int(n_trials)
    note = ""
    if trials > 1 and not (math.isfinite(sr_variance) and sr_variance > 0):
        emax = dsr = math.nan
        note = (f"the per-session Sharpe ratios of the trials do not vary (variance {sr_variance:g}), so the "
                f"Sharpe that the best of {trials} trials would reach by luck cannot be estimated: DSR undefined")
    else:
        emax = expected_max_sharpe(trials, sr_variance)
        dsr = dsr_from_moments(sr, n_obs, skew, kurt, trials, sr_variance)
    if not math.isfinite(sr):
        note = note or f"the Sharpe ratio of configuration {combo} is undefined (constant P&L: no trade?)"
    return {
        "combo": combo.item() if isinstance(combo, np.generic) else combo,
        "sharpe": float(sharpe_ratio(r, periods_per_year=periods_per_year, annualize=True)),
        "sharpe_per_period": sr,
        "psr": psr_from_moments(sr, n_obs, skew, kurt, 0.0),
        "dsr": dsr,
        "expected_max_sharpe": emax,
        "n_trials": trials,
        "sr_variance": float(sr_variance),
        "n_obs": n_obs,
        "skew": skew,
        "kurtosis": kurt,
        "net_pnl": float(col.sum()),
        "note": note,
    }


def dsr_of_best(
    daily_pnl: pd.DataFrame,
    capital: float,
    metric: str = "sharpe",
    *,
    n_trials: int | None = None,
    periods_per_year: int = 252,
) -> dict[str, Any]:
    """Deflated Sharpe Ratio of the full-sample best column of ``daily_pnl`` ($ per session).

    Returns are ``daily_pnl / capital``. The best column maximises ``metric`` (any of
    :data:`BLOCK_METRICS`) over the whole sample. ``n_trials`` defaults to the number of columns
    (pass more if other sweeps were tried too); ``sr_variance`` is the variance (ddof 1) of the
    per-session Sharpe ratios of all columns, those with an undefined Sharpe (no trade, constant
    P&L) counting as SR = 0 (:func:`trials_sr_variance`). Every column counts as a trial, even one
    whose Sharpe is undefined (conservative). When the Sharpe ratios still do not vary (e.g. a
    single column but ``n_trials`` > 1), the DSR is NaN with a ``note`` rather than the PSR
    (:func:`dsr_of_combo`). Sharpe ratios given to PSR/DSR are per session (not annualised), skew
    and kurtosis (non-excess) the biased sample moments of :func:`research.validation.sharpe.sharpe_moments`,
    as its PSR/DSR require. Raises ``ValueError`` when no column has a defined ``metric`` (e.g. no
    configuration traded).
    """
    x, labels = _as_matrix(daily_pnl)
    if capital <= 0:
        raise ValueError(f"capital must be > 0, got {capital}")
    if x.shape[0] < 3:
        raise ValueError(f"DSR needs at least 3 sessions, got {x.shape[0]}")
    rets = x / capital
    sr_all = column_metric(rets, "sharpe")
    score = sr_all if metric == "sharpe" else column_metric(rets, metric)
    if not np.isfinite(score).any():
        raise ValueError(f"no column has a defined {metric} (all constant?)")
    best = int(np.nanargmax(np.where(np.isfinite(score), score, np.nan)))
    n_cols = x.shape[1]
    trials = int(n_trials) if n_trials is not None else n_cols
    if trials < n_cols:
        raise ValueError(f"n_trials = {trials} is below the {n_cols} configurations in the sweep")
    sr_var, sr_mean, n_undefined = trials_sr_variance(sr_all)
    out = dsr_of_combo(x, capital, best, n_trials=trials, sr_variance=sr_var, periods_per_year=periods_per_year)
    out.pop("combo")
    label = labels[best]
    return {
        "best": label.item() if isinstance(label, np.generic) else label,
        "metric": metric,
        **out,
        "sr_mean": sr_mean,
        "n_undefined_sharpe": n_undefined,
    }


def search_trials(result: Any) -> tuple[int, float]:
    """``(n_trials, sr_variance)`` of a sweep, as :func:`dsr_of_best_from_sweep` counts them: the
    trials (``max(meta n_trials, columns)``) and the variance of their per-session Sharpe ratios.
    Give them to ``PerformanceTracker(n_trials=, sr_variance=)`` to deflate a configuration the
    sweep selected (``navale report performance --trials-from SWEEP``)."""
    meta = getattr(result, "meta", {}) or {}
    n_cols = result.daily_pnl.shape[1]
    trials = max(int(meta.get("n_trials") or n_cols), n_cols)
    capital = float(meta.get("capital") or 100_000.0)
    sr_var, _, _ = trials_sr_variance(column_metric(result.daily_pnl.to_numpy(np.float64) / capital, "sharpe"))
    return trials, sr_var


def dsr_of_best_from_sweep(result: Any, metric: str = "sharpe") -> dict[str, Any]:
    """:func:`dsr_of_best` with the sweep's capital and ``max(meta n_trials, columns)`` trials."""
    meta = getattr(result, "meta", {}) or {}
    n_cols = result.daily_pnl.shape[1]
    trials = max(int(meta.get("n_trials") or n_cols), n_cols)
    return dsr_of_best(result.daily_pnl, float(meta.get("capital") or 100_000.0), metric, n_trials=trials)


# ---------------------------------------------------------------- stability map


def sweep_table(result: Any) -> pd.DataFrame:
    """A sweep's grid (parameters) joined with its summary (metrics), index ``combo``."""
    summary = result.summary.drop(columns=[c for c in result.summary.columns if c in result.grid.columns])
    return result.grid.join(summary, how="left")


def stability_map(
    table: pd.DataFrame, x: str, y: str, objective: str = "sharpe", agg: str | Callable = "max"
) -> pd.DataFrame:
    """Pivot of ``objective`` over parameters ``x`` (columns) and ``y`` (rows), sorted ascending.

    Other parameters are collapsed with ``agg`` ("max": the best the other parameters can do at each
    (x, y) cell; "median": the typical one). Cells never run are NaN.
    """
    for col in (x, y, objective):
        if col not in table.columns:
            raise KeyError(f"column {col!r} is not in the table (has: {', '.join(map(str, table.columns))})")
    pivot = table.pivot_table(index=y, columns=x, values=objective, aggfunc=agg, dropna=False)
    return pivot.sort_index(axis=0).sort_index(axis=1).astype(float)


def stability_map_from_sweep(result: Any, x: str, y: str, objective: str = "sharpe", agg: str = "max") -> pd.DataFrame:
    """:func:`stability_map` of :func:`sweep_table` of a ``SweepResult``."""
    return stability_map(sweep_table(result), x, y, objective, agg)


def plateau_score(
    pivot: pd.DataFrame,
    *,
    tolerance: float = PLATEAU_TOLERANCE,
    plateau_ratio: float = PLATEAU_RATIO,
    spike_ratio: float = SPIKE_RATIO,
) -> dict[str, Any]:
    """Plateau or spike? Compare the best cell of a stability map with its (up to 8) neighbours.

    ``ratio`` = mean of the defined neighbouring cells / best. Verdict: ``plateau`` when ratio >=
    ``plateau_ratio`` (0.75), ``spike`` when ratio < ``spike_ratio`` (0.50), ``shoulder`` between;
    ``no edge`` when the best cell is <= 0 (ratios of non-positive values mean nothing);
    ``undetermined`` when the best cell has no defined neighbour. ``share_near_best`` = share of
    defined cells within ``tolerance`` (20%) of the best value. ``on_edge`` warns that the optimum
    sits on the border of the grid, so the best region may lie outside the range swept.
    """
    v = pivot.to_numpy(dtype=float)
    if v.size == 0 or not np.isfinite(v).any():
        raise ValueError("the stability map has no defined cell")
    vv = np.where(np.isfinite(v), v, -np.inf)
    i, j = np.unravel_index(int(np.argmax(vv)), v.shape)
    best = float(v[i, j])
    window = v[max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].copy()
    window[i - max(i - 1, 0), j - max(j - 1, 0)] = np.nan  # the best cell itself
    neigh = window[np.isfinite(window)]
    finite = v[np.isfinite(v)]
    on_edge = (v.shape[0] > 1 and i in (0, v.shape[0] - 1)) or (v.shape[1] > 1 and j in (0, v.shape[1] - 1))
    n_mean = float(neigh.mean()) if neigh.size else math.nan
    ratio = n_mean / best if best > 0 and neigh.size else math.nan
    near = float(np.mean(finite >= best - tolerance * abs(best)))
    if best <= 0:
        verdict, text = "no edge", f"the best cell is {best:.3g} <= 0: no positive region to be stable about"
    elif not neigh.size:
        verdict, text = "undetermined", "the best cell has no defined neighbour"
    elif ratio >= plateau_ratio:
        verdict, text = "plateau", (f"neighbours keep {ratio:.0%} of the best value (>= {plateau_ratio:.0%}): "
                                    "a broad region, robust to small parameter changes")
    elif ratio < spike_ratio:
        verdict, text = "spike", (f"neighbours keep only {ratio:.0%} of the best value (< {spike_ratio:.0%}): "
                                  "an isolated peak, likely noise fitted by the search")
    else:
        verdict, text = "shoulder", (f"neighbours keep {ratio:.0%} of the best value: the optimum degrades "
                                     "noticeably one step away")
    if on_edge and verdict not in ("no edge",):
        text += "; the best cell is on the edge of the grid (the optimum may lie outside the range swept)"
    return {
        "best": best,
        "best_x": pivot.columns[j],
        "best_y": pivot.index[i],
        "neighbours_mean": n_mean,
        "neighbours_min": float(neigh.min()) if neigh.size else math.nan,
        "n_neighbours": int(neigh.size),
        "ratio": ratio,
        "share_near_best": near,
        "tolerance": tolerance,
        "on_edge": bool(on_edge),
        "verdict": verdict,
        "explanation": text,
    }
