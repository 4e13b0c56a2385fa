"""Features of a trade, from its entry context only, with a leakage guard.

Every feature is a :class:`Feature`: a name, the columns it reads (``inputs``) and a function that gets a
frame holding *only* those columns. The guard (:func:`check_inputs`) refuses any input that is not known at
the signal bar's close: snapshot fields of the ``outcome``, ``execution`` and ``audit`` groups, and any
column the snapshot schema does not define, are refused by schema (a :class:`LeakageError`). A function
that reads a column it did not declare fails too, since it never sees it.

One family is different by nature: the outcomes of the *same day's earlier trades*. They are outcomes,
but of trades that closed before this one's decision. :func:`prior_day_outcomes` computes them with an
explicit as-of rule (``exit_ts < decision_ts``). :func:`causality_violations` checks every build three ways:
registry features must be row-local (built on random subsets of the rows, they give the same values), the
prior-day rule is re-evaluated at every row by a second implementation, and on sampled cuts the features
built from only what was known at the cut (:func:`asof_view`: later trades removed, outcomes of open trades
blanked) equal those built from the whole history. What no check can see is a feature function that reads
data from outside its declared inputs (a closure over other data): the registry is reviewed code, and a
custom feature must be reviewed the same way.

Signed quantities are turned to the trade's side (``*_with`` = positive when in the trade's favour), so one
coefficient serves longs and shorts. Missing-value rule: base fields are null when there is no reference
base; they become 0 with ``has_base = 0`` saying so. Warm-up nulls (ATR, relative volume, returns, bar
features) are not imputed: the processor rejects those rows with the reason.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from research.store import snapshots as snap
from strategy.market.clock import ET

__all__ = [
    "FEATURE_SCHEMA_VERSION",
    "Feature",
    "FEATURES",
    "LeakageError",
    "ALLOWED_KEYS",
    "BAR_COLUMNS",
    "DERIVED_COLUMNS",
    "check_inputs",
    "build_features",
    "prior_day_outcomes",
    "asof_view",
    "causality_violations",
    "feature_names",
    "docs_table",
    "features_frame",
]

# Bump when a feature is added, removed, renamed or computed differently: a saved model records it and
# refuses data built under another version.
FEATURE_SCHEMA_VERSION = 1

# Key fields a feature may read: known before the decision.
ALLOWED_KEYS = frozenset({"side", "signal_ts", "symbol"})
# Causal bar features joined at the signal bar (research.ml.bars).
BAR_COLUMNS = ("rv12_ticks", "delta_z20")
# Columns the processor derives from key fields before the features (known at the decision).
DERIVED_COLUMNS = ("decision_ts",)
# Outcome columns the as-of family reads, for earlier trades only (see prior_day_outcomes).
ASOF_COLUMNS = ("run_id", "session_date", "decision_ts", "exit_ts", "y_win", "y_r")

_PHASES = ("asia", "premarket", "london", "lunch", "afternoon", "after_hours")  # ny_open is the reference
_GROUP = {f.name: f.group for f in snap.FIELDS}


class LeakageError(ValueError):
    """A feature reads something not known at the signal bar's close (an outcome, an execution field, the future)."""


@dataclass(frozen=True)
class Feature:
    """One model input: ``fn`` receives a frame with exactly ``inputs`` (one row per trade) and returns one value per row."""

    name: str
    inputs: tuple[str, ...]
    doc: str
    fn: Callable[[pd.DataFrame], np.ndarray | pd.Series]


def check_inputs(feature: Feature) -> None:
    """Refuse a feature whose inputs are not all entry-context fields (raises :class:`LeakageError`)."""
    if not feature.inputs:
        raise LeakageError(f"feature {feature.name!r} declares no inputs")
    for col in feature.inputs:
        group = _GROUP.get(col)
        if group == "context" or col in ALLOWED_KEYS or col in BAR_COLUMNS or col in DERIVED_COLUMNS:
            continue
        if group in ("outcome", "execution", "audit"):
            raise LeakageError(
                f"feature {feature.name!r} reads {col!r}, a snapshot {group} field: it is not known when the "
                f"signal is taken (only 'context' fields, {sorted(ALLOWED_KEYS)} and the bar features may be read)")
        if group == "key":
            raise LeakageError(f"feature {feature.name!r} reads key field {col!r}: not a market context value")
        raise LeakageError(
            f"feature {feature.name!r} reads {col!r}, which is not a snapshot context field: the guard cannot tell "
            f"when it is known, so it is refused (add it to the snapshot schema's context group first)")


# ---------------------------------------------------------------- the registry

def _f(name: str, inputs: Sequence[str], doc: str) -> Callable[[Callable], Feature]:
    def deco(fn: Callable[[pd.DataFrame], np.ndarray]) -> Feature:
        return Feature(name, tuple(inputs), doc, fn)
    return deco


def _num(s: pd.Series) -> np.ndarray:
    return pd.to_numeric(s, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)


def _side(d: pd.DataFrame) -> np.ndarray:
    return _num(d["side"])


def _has_base(d: pd.DataFrame) -> np.ndarray:
    return (_num(d["ref_side"]) != 0).astype(np.float64)


def _base0(d: pd.DataFrame, col: str) -> np.ndarray:
    """A base field with 0 where there is no reference base (has_base says so)."""
    x = _num(d[col])
    return np.where(_num(d["ref_side"]) != 0, np.nan_to_num(x, nan=0.0), 0.0)


def _edge_dist(d: pd.DataFrame) -> np.ndarray:
    """Ticks from the close to the base edge a golden-rule break would cross: the low for a long, the high for a short."""
    lo, hi = _base0(d, "dist_base_lo_ticks"), _base0(d, "dist_base_hi_ticks")
    return np.where(_side(d) > 0, lo, -hi)


def _slog(x: np.ndarray) -> np.ndarray:
    """sign(x) log(1 + |x|): keeps the sign and the order, tames the tail a linear model would chase."""
    return np.sign(x) * np.log1p(np.abs(x))


def _minutes_et(d: pd.DataFrame) -> np.ndarray:
    et = pd.DatetimeIndex(d["decision_ts"]).tz_convert(ET)
    return (et.hour * 60 + et.minute).to_numpy(np.float64)


def _phase(d: pd.DataFrame) -> np.ndarray:
    from strategy.market.sessions import session_frame

    # the decision instant (signal bar close) is the one the phase is read at, as research.performance does
    return np.asarray(session_frame(pd.DatetimeIndex(d["decision_ts"]))["phase"].astype(object))


def _status(d: pd.DataFrame, which: str) -> np.ndarray:
    st = d["status"].astype(object).to_numpy()
    if which == "contested":
        return (st == "contested").astype(float)
    side = _side(d)
    if which == "with":
        return (((st == "vikings_winning") & (side > 0)) | ((st == "defenders_winning") & (side < 0))).astype(float)
    if which == "against":
        return (((st == "vikings_winning") & (side < 0)) | ((st == "defenders_winning") & (side > 0))).astype(float)


_BALLS = ("ball", "ball_lag1", "ball_lag2", "ball_lag3", "ball_lag4")

_REGISTRY: list[Feature] = [
    _f("side_sign", ["side"], "+1 long, -1 short")(_side),
    _f("bn_score", ["bn_score"], "composite score, signed (+ = Vikings)")(lambda d: _num(d["bn_score"])),
    _f("bn_score_abs", ["bn_score"], "|bn_score|: strength of the signal whatever its side")(
        lambda d: np.abs(_num(d["bn_score"]))),
    _f("battle_with", ["battle", "side"], "battle outcome BO turned to the trade's side")(
        lambda d: _side(d) * _num(d["battle"])),
    _f("tc_with", ["tc", "side"], "trend continuation TC turned to the trade's side")(
        lambda d: _side(d) * _num(d["tc"])),
    _f("confidence", ["confidence"], "mean(q_ref, |P|, |TC|, |bn_score|)")(lambda d: _num(d["confidence"])),
    _f("q_ref", ["q_ref"], "quality of the reference base (0 without one)")(lambda d: np.nan_to_num(_num(d["q_ref"]))),
    _f("has_base", ["ref_side"], "1 when there is a reference base (the base fields below are 0 otherwise)")(_has_base),
    _f("base_with", ["ref_side", "side"], "+1 the reference base agrees with the side (green for a long), -1 against, 0 none")(
        lambda d: _side(d) * _num(d["ref_side"])),
    _f("base_width_ticks", ["base_width_ticks", "ref_side"], "reference base width in ticks")(
        lambda d: _base0(d, "base_width_ticks")),
    _f("base_age_log", ["base_age_bars", "ref_side"], "log(1 + bars since the base's confirmation)")(
        lambda d: np.log1p(np.maximum(_base0(d, "base_age_bars"), 0.0))),
    _f("edge_dist_slog_ticks", ["dist_base_lo_ticks", "dist_base_hi_ticks", "ref_side", "side"],
       "ticks from the close to the golden-rule edge (long: base low, short: base high), as sign x log(1 + |ticks|) "
       "(distances reach hundreds of ticks when the base is old); the far edge is this distance minus the width, "
       "so it is not a separate input")(lambda d: _slog(_edge_dist(d))),
    _f("edge_dist_slog_atr", ["dist_base_lo_ticks", "dist_base_hi_ticks", "ref_side", "side", "atr14_ticks"],
       "the same distance in ATRs, as sign x log(1 + |ATRs|)")(lambda d: _slog(_edge_dist(d) / _num(d["atr14_ticks"]))),
    _f("base_width_atr", ["base_width_ticks", "ref_side", "atr14_ticks"], "base width in ATRs")(
        lambda d: _base0(d, "base_width_ticks") / _num(d["atr14_ticks"])),
    _f("atr_log", ["atr14_ticks"], "log ATR14 in ticks (volatility level)")(lambda d: np.log(_num(d["atr14_ticks"]))),
    _f("rv12_log", ["rv12_ticks"], "log(1 + realised volatility): std of 1-bar close changes over 12 bars, ticks")(
        lambda d: np.log1p(_num(d["rv12_ticks"]))),
    _f("rel_volume_log", ["rel_volume"], "log(1 + signal-bar volume / median of the 20 bars before)")(
        lambda d: np.log1p(_num(d["rel_volume"]))),
    _f("delta_with", ["delta", "side"], "bar aggression delta of the signal bar, turned to the side")(
        lambda d: _side(d) * _num(d["delta"])),
    _f("delta_z_with", ["delta_z20", "side"], "z-score of delta against the 20 bars before, turned to the side")(
        lambda d: _side(d) * _num(d["delta_z20"])),
    _f("balls_with", [*_BALLS, "side"], "mean of the last 5 balls, turned to the side")(
        lambda d: _side(d) * sum(_num(d[b]) for b in _BALLS) / 5.0),
    _f("pattern_with", ["pattern", "side"], "Sierra pattern score P turned to the side")(
        lambda d: _side(d) * _num(d["pattern"])),
    _f("ldu", ["ldu"], "LDU pattern at the signal bar")(lambda d: d["ldu"].astype(float).to_numpy()),
    _f("lud", ["lud"], "LUD pattern at the signal bar")(lambda d: d["lud"].astype(float).to_numpy()),
    _f("cds", ["cds"], "CDS pattern at the signal bar")(lambda d: d["cds"].astype(float).to_numpy()),
    _f("trend_intact_with", ["bull_intact", "bear_intact", "side"],
       "the side's last base is intact (no golden-rule break since confirmation)")(
        lambda d: np.where(_side(d) > 0, d["bull_intact"].astype(float), d["bear_intact"].astype(float))),
    _f("trend_intact_against", ["bull_intact", "bear_intact", "side"], "the opposite side's last base is intact")(
        lambda d: np.where(_side(d) > 0, d["bear_intact"].astype(float), d["bull_intact"].astype(float))),
    _f("status_with", ["status", "side"], "status says the trade's side is winning")(lambda d: _status(d, "with")),
    _f("status_against", ["status", "side"], "status says the other side is winning")(lambda d: _status(d, "against")),
    _f("status_contested", ["status"], "status contested (balanced is the reference)")(lambda d: _status(d, "contested")),
    _f("ret5_with_atr", ["ret5_ticks", "side", "atr14_ticks"], "5-bar return in ATRs, turned to the side")(
        lambda d: _side(d) * _num(d["ret5_ticks"]) / _num(d["atr14_ticks"])),
    _f("ret15_with_atr", ["ret15_ticks", "side", "atr14_ticks"], "15-bar return in ATRs, turned to the side")(
        lambda d: _side(d) * _num(d["ret15_ticks"]) / _num(d["atr14_ticks"])),
    _f("tod_sin", ["decision_ts"], "time of day of the decision (ET), sine of the 24-h cycle")(
        lambda d: np.sin(2 * np.pi * _minutes_et(d) / 1440.0)),
    _f("tod_cos", ["decision_ts"], "time of day of the decision (ET), cosine of the 24-h cycle")(
        lambda d: np.cos(2 * np.pi * _minutes_et(d) / 1440.0)),
    *[_f(f"phase_{p}", ["decision_ts"], f"decision in the {p} phase (METHOD.md; ny_open is the reference)")(
        (lambda name: lambda d: (_phase(d) == name).astype(float))(p)) for p in _PHASES],
]

# As-of features (computed by prior_day_outcomes, not by the registry's per-row functions).
PRIOR_DAY = (
    ("day_prior_trades", "trades of the same run and session closed by the decision time"),
    ("day_prior_net_r", "sum of their net R (costs included)"),
    ("day_prior_last", "outcome of the last of them: +1 target hit, -1 not, 0 none"),
)

FEATURES: tuple[Feature, ...] = tuple(_REGISTRY)
for _feat in FEATURES:
    check_inputs(_feat)


def feature_names(features: Iterable[Feature] = FEATURES, *, prior_day: bool = True) -> tuple[str, ...]:
    """The design matrix's columns, in order."""
    names = [f.name for f in features]
    return tuple(names + ([n for n, _ in PRIOR_DAY] if prior_day else []))


# ---------------------------------------------------------------- building

def build_features(frame: pd.DataFrame, features: Iterable[Feature] = FEATURES, *, prior_day: bool = True) -> pd.DataFrame:
    """The design matrix (float64, one row per trade, aligned to ``frame``).

    ``frame`` holds the snapshot fields plus ``decision_ts``, the bar features and, for the as-of family,
    the labels ``y_win``/``y_r`` and ``session_date``. Each feature sees only its declared inputs.
    """
    features = tuple(features)
    names = [f.name for f in features]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate feature names: {sorted({n for n in names if names.count(n) > 1})}")
    out: dict[str, np.ndarray] = {}
    for feat in features:
        check_inputs(feat)
        missing = [c for c in feat.inputs if c not in frame.columns]
        if missing:
            raise KeyError(f"feature {feat.name!r} needs column(s) {missing}, absent from the frame")
        view = frame.loc[:, list(feat.inputs)]
        try:
            values = feat.fn(view)
        except KeyError as exc:
            raise LeakageError(f"feature {feat.name!r} reads column {exc} it did not declare in its inputs") from None
        values = np.asarray(values, dtype=np.float64)
        if values.shape != (len(frame),):
            raise ValueError(f"feature {feat.name!r} returned shape {values.shape}, expected ({len(frame)},)")
        out[feat.name] = values
    X = pd.DataFrame(out, index=frame.index)
    if prior_day:
        X = pd.concat([X, prior_day_outcomes(frame)], axis=1)
    return X


def prior_day_outcomes(frame: pd.DataFrame) -> pd.DataFrame:
    """Same-day history known at each decision: count, net R sum and last outcome of the other trades of the
    same run and session that exited strictly before this trade's decision (``exit_ts < decision_ts``).

    Strictly: an exit filled at the open of the bar that starts at the decision instant (golden-rule and
    opposite-signal exits) has a price nobody knew at the decision, so it does not count. Trades with an
    unknown outcome (NaN labels) do not count either. "Last" is by exit time; two exits at the same instant
    are ordered by decision time.
    """
    missing = [c for c in ASOF_COLUMNS if c not in frame.columns]
    if missing:
        raise KeyError(f"prior-day outcomes need column(s) {missing}")
    n = len(frame)
    count = np.zeros(n)
    net_r = np.zeros(n)
    last = np.zeros(n)
    key = (frame["run_id"].astype(str) + "|" + frame["session_date"].astype(str)).to_numpy()
    dec = pd.DatetimeIndex(frame["decision_ts"]).as_unit("ns").asi8
    ext = pd.DatetimeIndex(frame["exit_ts"]).as_unit("ns").asi8
    ywin = frame["y_win"].to_numpy(dtype=np.float64, na_value=np.nan)
    yr = frame["y_r"].to_numpy(dtype=np.float64, na_value=np.nan)
    for idx in pd.Series(np.arange(n)).groupby(key, sort=False).indices.values():
        known = ~np.isnan(ywin[idx]) & ~np.isnan(yr[idx])
        order = np.argsort(ext[idx], kind="stable")
        e_sorted = ext[idx][order]
        k_sorted = known[order]
        r_sorted = np.where(k_sorted, yr[idx][order], 0.0)
        w_sorted = np.where(k_sorted, np.where(ywin[idx][order] > 0, 1.0, -1.0), 0.0)
        cum_n = np.concatenate([[0], np.cumsum(k_sorted)])
        cum_r = np.concatenate([[0.0], np.cumsum(r_sorted)])
        last_known = np.maximum.accumulate(np.where(k_sorted, np.arange(len(idx)), -1))
        j = np.searchsorted(e_sorted, dec[idx], side="left")  # exits strictly before the decision
        count[idx] = cum_n[j]
        net_r[idx] = cum_r[j]
        lk = np.where(j > 0, last_known[np.maximum(j - 1, 0)], -1)
        last[idx] = np.where(lk >= 0, w_sorted[np.maximum(lk, 0)], 0.0)
        # a trade exits after its own decision (clean_snapshots enforces exit >= entry > signal bar start), so it
        # never counts itself; a degenerate row stamped otherwise is recounted without itself
        for p in np.flatnonzero(known & (ext[idx] < dec[idx])):
            m = k_sorted & (e_sorted < dec[idx[p]]) & (order != p)
            count[idx[p]] = m.sum()
            net_r[idx[p]] = r_sorted[m].sum()
            last[idx[p]] = w_sorted[np.flatnonzero(m)[-1]] if m.any() else 0.0
    return pd.DataFrame({"day_prior_trades": count, "day_prior_net_r": net_r, "day_prior_last": last},
                        index=frame.index)


def _prior_day_reference(frame: pd.DataFrame) -> pd.DataFrame:
    """The as-of rule evaluated directly at every row (a second, loop-based implementation, for the check)."""
    n = len(frame)
    out = np.zeros((n, 3))
    key = (frame["run_id"].astype(str) + "|" + frame["session_date"].astype(str)).to_numpy()
    dec = pd.DatetimeIndex(frame["decision_ts"]).as_unit("ns").asi8
    ext = pd.DatetimeIndex(frame["exit_ts"]).as_unit("ns").asi8
    ywin = frame["y_win"].to_numpy(dtype=np.float64, na_value=np.nan)
    yr = frame["y_r"].to_numpy(dtype=np.float64, na_value=np.nan)
    for idx in pd.Series(np.arange(n)).groupby(key, sort=False).indices.values():
        for i in idx:
            seen = [k for k in idx if k != i and ext[k] < dec[i] and not np.isnan(ywin[k]) and not np.isnan(yr[k])]
            if seen:
                lastk = max(seen, key=lambda k: (ext[k], list(idx).index(k)))
                out[i] = (len(seen), sum(yr[k] for k in seen), 1.0 if ywin[lastk] > 0 else -1.0)
    return pd.DataFrame(out, columns=["day_prior_trades", "day_prior_net_r", "day_prior_last"], index=frame.index)


# ---------------------------------------------------------------- causality

OUTCOME_LIKE = tuple(snap.names("outcome")) + tuple(snap.names("audit")) + ("exit_ts", "y_win", "y_r")


def asof_view(frame: pd.DataFrame, t: pd.Timestamp) -> pd.DataFrame:
    """What was known at time ``t``: trades decided by ``t``, with the outcome of those not closed before ``t`` blanked."""
    dec = pd.DatetimeIndex(frame["decision_ts"])
    part = frame.loc[dec <= t].copy()
    still_open = pd.DatetimeIndex(part["exit_ts"]) >= t  # an exit at t itself is not known at t (strict rule)
    for col in OUTCOME_LIKE:
        if col not in part.columns:
            continue
        if col == "exit_ts":  # unknown exit: far in the future (never <= a decision)
            part.loc[still_open, col] = pd.Timestamp.max.tz_localize("UTC").floor("s")
        elif pd.api.types.is_bool_dtype(part[col].dtype) or part[col].dtype == object:
            part[col] = part[col].astype(object)
            part.loc[still_open, col] = None
        else:
            part[col] = part[col].astype("float64") if not isinstance(part[col].dtype, pd.StringDtype) else part[col]
            part.loc[still_open, col] = np.nan
    return part


def causality_violations(frame: pd.DataFrame, features: Iterable[Feature] = FEATURES, *, prior_day: bool = True,
                         cuts: Sequence[int] | int = 8, seed: int = 0) -> list[str]:
    """Look-ahead checks of every feature on ``frame`` (ordered by ``decision_ts``); returns the violations.

    1. Row locality: the registry features of a row depend on that row only, so building them on random
       subsets of the rows, in reverse order, gives those rows the same values (a cross-row dependence, the
       only way a function of context fields could see a later trade, fails here).
    2. The prior-day rule, re-evaluated at every row by a second implementation (exits strictly before the
       decision, same run and session).
    3. As-of prefix invariance on ``cuts`` sampled cuts: the features of the first t trades built from only
       what was known at the t-th decision equal those built from the whole history (``research.validation.causality``).
    """
    from research.validation.causality import (
        frames_equal,
        prefix_violations,
        random_cuts,
    )

    features = tuple(features)
    out: list[str] = []
    if len(frame):
        rng = np.random.default_rng(seed)
        half = rng.random(len(frame)) < 0.5
        subsets = (("a random half of the rows", half), ("the other half", ~half),
                   ("every 7th row", np.arange(len(frame)) % 7 == 0))
        # the subsets first, the whole frame last: a feature that caches what it saw cannot serve a subset
        # from a cache filled by the whole history
        parts = [(label, frame.loc[keep]) for label, keep in subsets if keep.any()]
        built = [build_features(part.iloc[::-1], features, prior_day=False).loc[part.index] for _, part in parts]
        whole = build_features(frame, features, prior_day=False)
        for (label, part), got in zip(parts, built):
            out += [f"row locality (built on {label}, reversed): {p}"
                    for p in frames_equal(got, whole.loc[part.index], atol=0.0)]
        if prior_day:
            got = prior_day_outcomes(frame)
            ref = _prior_day_reference(frame)
            out += [f"prior-day rule at every row: {p}" for p in frames_equal(got, ref, atol=1e-9)]
    if isinstance(cuts, int):
        cuts = random_cuts(len(frame), cuts, seed=seed, min_len=1) + ([len(frame)] if len(frame) else [])

    def transform(part: pd.DataFrame) -> pd.DataFrame:
        if not len(part):
            return build_features(part, features, prior_day=prior_day)
        t = pd.DatetimeIndex(part["decision_ts"])[-1]
        known = asof_view(part, t)
        return build_features(known, features, prior_day=prior_day).reindex(part.index)

    ordered = frame.reset_index(drop=True)
    # trades decided at the same instant are one step: cut only between distinct decision times
    dec = pd.DatetimeIndex(ordered["decision_ts"])
    ok = [t for t in cuts if t >= len(ordered) or dec[t] != dec[t - 1]]
    return out + prefix_violations(transform, ordered, ok, full=build_features(ordered, features, prior_day=prior_day))


def features_frame(features: Iterable[Feature] = FEATURES, *, prior_day: bool = True) -> pd.DataFrame:
    """The features as a table: name, the columns each reads, meaning (for reports)."""
    rows = [{"feature": f.name, "reads": ", ".join(f.inputs), "meaning": f.doc} for f in features]
    if prior_day:
        rows += [{"feature": n, "reads": "earlier trades' exit_ts, y_win, y_r (as-of)", "meaning": d} for n, d in PRIOR_DAY]
    return pd.DataFrame(rows)


def docs_table(features: Iterable[Feature] = FEATURES) -> str:
    """The features as a markdown table (name, inputs, meaning)."""
    lines = ["| feature | reads | meaning |", "| --- | --- | --- |"]
    for f in features:
        lines.append(f"| `{f.name}` | {', '.join(f'`{c}`' for c in f.inputs)} | {f.doc} |")
    for name, doc in PRIOR_DAY:
        lines.append(f"| `{name}` | earlier trades' `exit_ts`, `y_win`, `y_r` (as-of) | {doc} |")
    return "\n".join(lines) + "\n"
