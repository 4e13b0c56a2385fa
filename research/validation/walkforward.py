"""Walk-forward selection over a sweep: choose in-sample, trade the choice out-of-sample, stitch.

Calendar periods (by default the quarterly contracts' first sessions, or a pandas frequency such as
``"QS"``) cut the sessions. Each window picks the configuration with the best in-sample objective
over the previous ``is_periods`` periods (``rolling``) or over every period so far (``anchored``),
then records what that choice earned over the next ``oos_periods`` periods; windows step by
``oos_periods``, so the out-of-sample pieces tile the calendar without overlap and stitch into one
P&L series that no in-sample choice has seen. See ``docs/validation.md``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from research.validation.overfitting import column_metric
from research.validation.sharpe import sharpe_ratio

__all__ = ["OBJECTIVES", "SCHEMES", "WalkForwardResult", "walk_forward", "walk_forward_from_sweep",
           "sweep_boundaries", "segment_boundaries", "period_starts", "objective_values", "default_is_periods",
           "DEFAULT_IS_PERIODS"]

OBJECTIVES = ("sharpe", "sortino", "net_pnl", "profit_factor")
SCHEMES = ("rolling", "anchored")
_HASH_COLUMNS = ("signal_hash",)
DEFAULT_IS_PERIODS = 4  # in-sample periods (contracts, quarters) when the data has enough


def default_is_periods(n_periods: int, cap: int = DEFAULT_IS_PERIODS) -> int:
    """The largest ``is_periods`` up to ``cap`` that ``n_periods`` periods with data allow (``n - 1``,
    leaving one out-of-sample period); ``ValueError`` saying what is missing when none does."""
    if n_periods < 2:
        raise ValueError(f"{n_periods} period(s) with data: walk-forward needs at least 2 (in-sample, then "
                         "out-of-sample); sweep two or more contracts or a longer range, or cut finer periods "
                         "(boundaries 'MS', --boundaries MS)")
    return min(cap, n_periods - 1)


def objective_values(pnl: np.ndarray, objective: str, periods_per_year: int = 252) -> np.ndarray:
    """Objective of each column of a (sessions, configs) $ P&L block, comparable across window lengths.

    - ``sharpe``: mean / std (ddof 1) of session P&L, annualised (x sqrt(periods_per_year));
    - ``sortino``: mean / sqrt(mean of squared losing sessions), annualised;
    - ``net_pnl``: chosen by net P&L; the value is the mean P&L per session (so a 4-quarter IS and a
      1-quarter OOS compare);
    - ``profit_factor``: *daily* profit factor = sum of winning sessions / |sum of losing sessions|
      (the session P&L has no trade detail).

    Sessions without a trade count as 0. Undefined values (zero std, no losing session) are NaN and
    are never chosen.
    """
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: use one of {OBJECTIVES}")
    if pnl.shape[0] < 2:
        return np.full(pnl.shape[1], np.nan)
    metric = "mean" if objective == "net_pnl" else objective
    val = column_metric(pnl, metric)
    if objective in ("sharpe", "sortino"):
        val = val * math.sqrt(periods_per_year)
    return val


def period_starts(sessions: pd.DatetimeIndex, boundaries: Sequence[Any] | str) -> pd.DatetimeIndex:
    """Sorted unique period start dates: the given dates, or a frequency's anchors covering ``sessions``.

    A frequency (``"QS"``, ``"MS"``, ``"YS"``, ...) starts at its last anchor on or before the first
    session, so the first period is a whole calendar period.
    """
    if isinstance(boundaries, str):
        try:
            off = pd.tseries.frequencies.to_offset(boundaries)
        except ValueError as exc:
            raise ValueError(f"boundaries {boundaries!r} is not a pandas frequency ({exc})") from None
        first = off.rollback(sessions[0].normalize())
        return pd.date_range(first, sessions[-1], freq=off)
    starts = pd.DatetimeIndex(pd.to_datetime(list(boundaries))).dropna()
    if starts.tz is not None:
        starts = starts.tz_localize(None)
    if starts.empty:
        raise ValueError("boundaries is empty")
    return starts.normalize().unique().sort_values()


@dataclass
class WalkForwardResult:
    """Windows, stitched out-of-sample P&L and the figures that judge them."""

    windows: pd.DataFrame  # one row per window (see walk_forward)
    oos_pnl: pd.Series  # stitched OOS $ P&L per session
    oos_equity: pd.Series  # cumulative OOS $ P&L
    summary: dict[str, Any]
    verdict: str
    next_window: dict[str, Any]  # the choice on the latest IS window: what would trade next
    periods: pd.DataFrame  # period, start, end (first/last session), sessions
    config: dict[str, Any] = field(default_factory=dict)


def walk_forward(
    daily_pnl: pd.DataFrame,
    grid: pd.DataFrame | None = None,
    *,
    boundaries: Sequence[Any] | str = "QS",
    scheme: str = "rolling",
    is_periods: int | None = None,
    oos_periods: int = 1,
    objective: str = "sharpe",
    capital: float | None = None,
    trades: pd.DataFrame | None = None,
    min_trades: int = 0,
    periods_per_year: int = 252,
) -> WalkForwardResult:
    """Walk-forward selection on ``daily_pnl`` ($ per session; index = session dates; columns = combos).

    ``boundaries``: period start dates (e.g. each contract segment's first session) or a pandas
    frequency (default quarterly, ``"QS"``). Sessions before the first boundary are not used; periods
    without a session are skipped (so a window always spans ``is_periods`` periods that hold data).
    ``is_periods=None`` takes :func:`default_is_periods` of the periods with data (4 when there are
    5 or more). The first window's OOS is period ``is_periods`` (both schemes start with the same IS); the last
    window may hold fewer than ``oos_periods`` periods (``partial``). The objective is computed on
    the IS rows only (:func:`objective_values`); ties go to the lowest combo id. With ``trades`` (a
    frame like ``daily_pnl`` of trades closed per session, e.g. ``SweepResult.daily_trades``) a combo
    needs ``min_trades`` IS trades to be eligible, and each window reports ``oos_trades`` (summed in
    the summary). Without ``trades``, ``min_trades`` cannot apply: it is ignored and the verdict says
    so. A window where no combo is eligible stands aside (combo NA, OOS P&L 0).

    ``capital`` turns $ into returns for the stitched Sharpe (the Sharpe itself is scale-free).
    """
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: use one of {OBJECTIVES}")
    if (is_periods is not None and is_periods < 1) or oos_periods < 1:
        raise ValueError(f"is_periods and oos_periods must be >= 1 (got {is_periods}, {oos_periods})")
    if not isinstance(daily_pnl.index, pd.DatetimeIndex):
        raise ValueError("daily_pnl must be indexed by session dates (a DatetimeIndex)")
    if daily_pnl.empty:
        raise ValueError("daily_pnl is empty")
    pnl_df = daily_pnl.sort_index()
    if pnl_df.index.has_duplicates:
        raise ValueError("daily_pnl has duplicated sessions")
    x = pnl_df.to_numpy(dtype=np.float64)
    if not np.isfinite(x).all():
        raise ValueError("daily_pnl holds NaN or infinite values: sessions without a trade must be 0")
    if trades is not None:
        # the counts must describe the same sessions and configurations: filling a mismatch with 0 would
        # read as "no trades" and silently disqualify every configuration
        if not (trades.index.isin(pnl_df.index).all() and pnl_df.index.isin(trades.index).all()):
            raise ValueError("trades and daily_pnl cover different sessions")
        if set(trades.columns) != set(pnl_df.columns):
            raise ValueError("trades and daily_pnl have different configuration columns "
                             f"(e.g. {list(trades.columns[:3])} vs {list(pnl_df.columns[:3])})")
        trades = trades.reindex(index=pnl_df.index, columns=pnl_df.columns)
        tr = trades.to_numpy(dtype=np.float64)
    sessions = pnl_df.index
    combos = np.asarray(pnl_df.columns)
    cap = float(capital) if capital else 1.0

    starts = period_starts(sessions, boundaries)
    label = np.searchsorted(starts.as_unit("ns").asi8, sessions.as_unit("ns").asi8, side="right") - 1
    used = label >= 0
    kept = np.unique(label[used])  # non-empty periods, in order
    # row range [lo, hi) of each kept period (sessions are sorted, so periods are contiguous)
    lo = np.searchsorted(label, kept, side="left")
    hi = np.searchsorted(label, kept, side="right")
    n_p = kept.size
    periods = pd.DataFrame({
        "period": np.arange(n_p),
        "start": sessions[lo],
        "end": sessions[hi - 1],
        "sessions": hi - lo,
    })
    if is_periods is None:
        is_periods = default_is_periods(n_p)
    if n_p <= is_periods:
        fix = (f"is_periods = {n_p - 1} (--is-periods {n_p - 1}) is the largest that works here" if n_p >= 2 else
               "at least 2 are needed: sweep two or more contracts or a longer range, or cut finer periods")
        raise ValueError(
            f"{n_p} periods with data: walk-forward needs more than is_periods = {is_periods} "
            f"(boundaries {boundaries if isinstance(boundaries, str) else f'{len(starts)} dates'}); {fix}"
        )

    def choose(a: int, b: int) -> tuple[int | None, float]:
        """Best combo (position) over rows [a, b) and its objective; None if no combo is eligible."""
        val = objective_values(x[a:b], objective, periods_per_year)
        if trades is not None and min_trades > 0:
            val = np.where(tr[a:b].sum(axis=0) >= min_trades, val, np.nan)
        if not np.isfinite(val).any():
            return None, math.nan
        k = int(np.argmax(np.where(np.isfinite(val), val, -np.inf)))
        return k, float(val[k])

    rows: list[dict[str, Any]] = []
    oos_parts: list[np.ndarray] = []
    for w, k in enumerate(range(is_periods, n_p, oos_periods)):
        p0 = k - is_periods if scheme == "rolling" else 0
        k_end = min(k + oos_periods, n_p)
        a, b, c = lo[p0], lo[k], hi[k_end - 1]
        pos, is_obj = choose(a, b)
        row: dict[str, Any] = {
            "window": w,
            "is_start": sessions[a], "is_end": sessions[b - 1],
            "oos_start": sessions[b], "oos_end": sessions[c - 1],
            "combo": pd.NA if pos is None else combos[pos],
            "is_objective": is_obj,
            "oos_objective": math.nan,
            "is_sharpe": math.nan, "oos_sharpe": math.nan,
            "is_net_pnl": math.nan, "oos_net_pnl": 0.0,
            "is_sessions": b - a, "oos_sessions": c - b,
            "oos_trading_days": 0,
            "partial": (k_end - k) < oos_periods,
        }
        if pos is not None:
            is_col, oos_col = x[a:b, pos:pos + 1], x[b:c, pos:pos + 1]
            row.update(
                oos_objective=float(objective_values(oos_col, objective, periods_per_year)[0]),
                is_sharpe=float(objective_values(is_col, "sharpe", periods_per_year)[0]),
                oos_sharpe=float(objective_values(oos_col, "sharpe", periods_per_year)[0]),
                is_net_pnl=float(is_col.sum()), oos_net_pnl=float(oos_col.sum()),
                oos_trading_days=int(np.count_nonzero(oos_col)),
            )
            if trades is not None:
                row["oos_trades"] = float(tr[b:c, pos].sum())
            oos_parts.append(oos_col[:, 0])
        else:
            if trades is not None:
                row["oos_trades"] = 0.0
            oos_parts.append(np.zeros(c - b))
        rows.append(row)

    windows = pd.DataFrame(rows)
    windows["combo"] = windows["combo"].astype("Int64") if _int_like(combos) else windows["combo"]
    if grid is not None:
        windows = _with_params(windows, grid)
    oos_index = sessions[lo[is_periods]:hi[-1]]
    oos_pnl = pd.Series(np.concatenate(oos_parts), index=oos_index, name="oos_pnl")
    oos_equity = oos_pnl.cumsum().rename("oos_equity")

    p_next = max(n_p - is_periods, 0) if scheme == "rolling" else 0
    pos, nxt_obj = choose(lo[p_next], hi[-1])
    next_window: dict[str, Any] = {
        "is_start": sessions[lo[p_next]], "is_end": sessions[hi[-1] - 1],
        "combo": None if pos is None else _py(combos[pos]), "is_objective": nxt_obj,
    }
    if grid is not None and pos is not None and combos[pos] in grid.index:
        next_window["params"] = {k: _py(v) for k, v in grid.loc[combos[pos]].items() if k not in _HASH_COLUMNS}

    config = {"scheme": scheme, "is_periods": is_periods, "oos_periods": oos_periods, "objective": objective,
              "boundaries": boundaries if isinstance(boundaries, str) else "dates",
              "n_periods": int(n_p), "unused_sessions": int((~used).sum()), "capital": capital,
              "min_trades": min_trades, "trade_counts": trades is not None}
    summary = _summary(windows, oos_pnl, cap, objective, periods_per_year)
    return WalkForwardResult(windows, oos_pnl, oos_equity, summary, _verdict(summary, config), next_window,
                             periods, config)


def _int_like(values: np.ndarray) -> bool:
    return np.issubdtype(np.asarray(values).dtype, np.integer)


def _py(v: Any) -> Any:
    return v.item() if isinstance(v, np.generic) else v


def _with_params(windows: pd.DataFrame, grid: pd.DataFrame) -> pd.DataFrame:
    """Add the chosen combo's grid columns (all but the signal hash) to each window."""
    cols = [c for c in grid.columns if c not in _HASH_COLUMNS and c not in windows.columns]
    params = grid[cols].reindex(windows["combo"].astype(object).where(windows["combo"].notna(), None))
    params.index = windows.index
    return pd.concat([windows, params], axis=1)


def _max_drawdown(pnl: np.ndarray) -> float:
    """Largest fall of cumulative P&L from its running peak (the start, 0, counts as a peak)."""
    equity = np.concatenate([[0.0], np.cumsum(pnl)])
    return float((np.maximum.accumulate(equity) - equity).max())


def _corr(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    if ok.sum() < 3 or np.ptp(a[ok]) == 0 or np.ptp(b[ok]) == 0:
        return math.nan, math.nan
    return float(stats.spearmanr(a[ok], b[ok]).statistic), float(stats.pearsonr(a[ok], b[ok]).statistic)


def _summary(windows: pd.DataFrame, oos_pnl: pd.Series, cap: float, objective: str, ppy: int) -> dict[str, Any]:
    pnl = oos_pnl.to_numpy()
    is_obj = windows["is_objective"].to_numpy(float)
    oos_obj = windows["oos_objective"].to_numpy(float)
    mean_is = float(np.nanmean(is_obj)) if np.isfinite(is_obj).any() else math.nan
    mean_oos = float(np.nanmean(oos_obj)) if np.isfinite(oos_obj).any() else math.nan
    decay = 1.0 - mean_oos / mean_is if mean_is > 0 and np.isfinite(mean_oos) else math.nan
    spearman, pearson = _corr(is_obj, oos_obj)
    chosen = windows["combo"].dropna()
    counts = chosen.value_counts()
    is_sh = windows["is_sharpe"].to_numpy(float)
    sharpe = float(sharpe_ratio(pnl / cap, periods_per_year=ppy, annualize=True)) if np.ptp(pnl) > 0 else math.nan
    out = {
        "objective": objective,
        "n_windows": int(len(windows)),
        "oos_sessions": int(pnl.size),
        "oos_trading_days": int(np.count_nonzero(pnl)),
        "oos_sharpe": sharpe,
        "oos_net_pnl": float(pnl.sum()),
        "oos_max_drawdown_usd": _max_drawdown(pnl),
        "mean_is_sharpe": float(np.nanmean(is_sh)) if np.isfinite(is_sh).any() else math.nan,
        "mean_is_objective": mean_is,
        "mean_oos_objective": mean_oos,
        "decay": decay,
        "is_oos_spearman": spearman,
        "is_oos_pearson": pearson,
        "frac_windows_oos_positive": float(np.mean(windows["oos_net_pnl"].to_numpy(float) > 0)),
        "n_distinct_combos": int(counts.size),
        "most_chosen_combo": _py(counts.index[0]) if counts.size else None,
        "most_chosen_share": float(counts.iloc[0] / len(windows)) if counts.size else 0.0,
        "windows_standing_aside": int(windows["combo"].isna().sum()),
    }
    if "oos_trades" in windows:
        out["oos_trades"] = float(windows["oos_trades"].sum())
    return out


def _usd(v: float) -> str:
    return f"-${-v:,.0f}" if v < 0 else f"${v:,.0f}"


def _sharpe_text(v: float, why: str = "") -> str:
    """A Sharpe as +x.xx, or "n/a" (with `why`) when it is not defined."""
    if v is not None and np.isfinite(v):
        return f"{v:+.2f}"
    return f"n/a ({why})" if why else "n/a"


def _oos_sharpe_text(s: dict[str, Any]) -> str:
    """The stitched OOS Sharpe, or why it is not defined (no trades, or a constant P&L)."""
    trades = s.get("oos_trades", s["oos_trading_days"])
    if s["oos_sessions"] == 0:
        why = "no OOS sessions"
    elif not trades:
        why = "no OOS trades"
    else:
        why = "constant OOS P&L"
    return _sharpe_text(s["oos_sharpe"], why)


def _verdict(s: dict[str, Any], cfg: dict[str, Any]) -> str:
    """One honest paragraph from the summary figures."""
    n = s["n_windows"]
    head = (f"Walk-forward over {n} window{'s' if n != 1 else ''} ({cfg['scheme']}, {cfg['is_periods']} IS "
            f"period{'s' if cfg['is_periods'] != 1 else ''} -> {cfg['oos_periods']} OOS, objective "
            f"{cfg['objective']}): stitched OOS Sharpe {_oos_sharpe_text(s)} vs mean IS Sharpe "
            f"{_sharpe_text(s['mean_is_sharpe'])} of the chosen configurations; OOS net {_usd(s['oos_net_pnl'])} over "
            f"{s['oos_sessions']} sessions, max drawdown {_usd(s['oos_max_drawdown_usd'])}.")
    oos, decay = s["oos_sharpe"], s["decay"]
    if not np.isfinite(oos) or oos <= 0:
        reading = "The in-sample choice does not carry out of sample."
    elif np.isfinite(decay) and decay > 0.5:
        reading = (f"The in-sample choice carries only partly: {decay:.0%} of the in-sample {s['objective']} "
                   "is lost out of sample.")
    elif np.isfinite(decay):
        reading = f"The in-sample choice largely carries out of sample (decay {decay:.0%})."
    else:
        reading = "The OOS result is positive, but the in-sample objective was not, so decay is undefined."
    parts = [head, reading,
             f"OOS P&L was positive in {s['frac_windows_oos_positive']:.0%} of windows."]
    if n >= 3:
        if s["n_distinct_combos"] <= 1:
            parts.append("The same configuration was chosen in every window.")
        else:
            parts.append(f"{s['n_distinct_combos']} distinct configurations were chosen in {n} windows "
                         f"(the most frequent in {s['most_chosen_share']:.0%})"
                         + ("; the choice is unstable." if s["most_chosen_share"] < 0.5 else "."))
    if np.isfinite(s["is_oos_spearman"]):
        parts.append(f"Across windows, IS and OOS {s['objective']} have rank correlation "
                     f"{s['is_oos_spearman']:+.2f}.")
    if n < 4:
        parts.append(f"Only {n} windows: too few to judge with confidence.")
    if s["windows_standing_aside"]:
        parts.append(f"{s['windows_standing_aside']} window(s) had no eligible configuration and stood aside.")
    if cfg.get("min_trades") and not cfg.get("trade_counts"):
        parts.append(f"min_trades = {cfg['min_trades']} was not applied: no trade counts were given.")
    return " ".join(parts)


def walk_forward_from_sweep(result: Any, **kwargs: Any) -> WalkForwardResult:
    """:func:`walk_forward` on a ``SweepResult``: its grid, capital, contract segments' first sessions
    and trade counts (``daily_trades``, so ``min_trades`` applies; a sweep saved without them has
    ``daily_trades = None`` and ``min_trades`` is then ignored, as the verdict says).

    Quarterly periods (``"QS"``) are used when the sweep has a single segment or none. Keyword
    arguments override (e.g. ``boundaries="MS"``, ``scheme="anchored"``, ``min_trades=20``).
    """
    meta = getattr(result, "meta", {}) or {}
    kwargs.setdefault("capital", float(meta.get("capital") or 100_000.0))
    kwargs.setdefault("boundaries", sweep_boundaries(result))
    trades = getattr(result, "daily_trades", None)
    if trades is not None:
        kwargs.setdefault("trades", trades)
    return walk_forward(result.daily_pnl, result.grid, **kwargs)


def sweep_boundaries(result: Any) -> list[pd.Timestamp] | str:
    """:func:`segment_boundaries` of a ``SweepResult``'s segments."""
    return segment_boundaries(getattr(result, "segments", None))


def segment_boundaries(segments: pd.DataFrame | None) -> list[pd.Timestamp] | str:
    """Distinct first sessions of the segments (data sets: contracts) when there are at least two, else ``"QS"``.

    Segments without a session (NaT) are ignored.
    """
    if isinstance(segments, pd.DataFrame) and "first_session" in segments.columns:
        firsts = pd.DatetimeIndex(pd.to_datetime(segments["first_session"])).dropna().unique()
        if len(firsts) > 1:
            return list(firsts.sort_values())
    return "QS"
