"""Plotly figures of the ML-validation report (data in, ``Figure`` out; no I/O, no display)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from research.reports.plots import BLUE, GREEN, NEUTRAL, RED, to_et
from strategy.market.clock import ET

__all__ = ["cv_folds_figure", "permutation_figure", "learning_curve_figure", "calibration_figure",
           "importance_figure", "coefficient_figure", "stability_figure", "economic_equity_figure",
           "probability_histogram"]

_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=30, t=60, b=40), hovermode="closest")


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i:i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def _layout(fig: go.Figure, title: str, height: int = 420, **kw) -> go.Figure:
    fig.update_layout(title=title, height=height, **_LAYOUT, **kw)
    return fig


def cv_folds_figure(folds: pd.DataFrame, *, oos_auc: float | None = None, train_auc: float | None = None) -> go.Figure:
    """AUC per purged CV fold (bars), with the in-sample and out-of-sample AUC as lines and chance at 0.5."""
    x = [f"fold {int(f)}<br>{str(a)[:10]}..{str(b)[:10]}" for f, a, b in
         zip(folds["fold"], folds["test_from"], folds["test_to"])]
    fig = go.Figure(go.Bar(x=x, y=folds["auc"], name="CV fold AUC", marker_color=BLUE))
    fig.add_hline(y=0.5, line_dash="dot", line_color=NEUTRAL, annotation_text="chance", annotation_position="bottom left")
    if train_auc is not None and np.isfinite(train_auc):
        fig.add_hline(y=train_auc, line_color=RED, annotation_text=f"in-sample {train_auc:.3f}", name="in-sample")
    if oos_auc is not None and np.isfinite(oos_auc):
        fig.add_hline(y=oos_auc, line_color=GREEN, annotation_text=f"out-of-sample {oos_auc:.3f}", name="oos")
    lo = np.nanmin([0.4, *folds["auc"].tolist()]) - 0.02
    hi = np.nanmax([0.7, *folds["auc"].tolist(), train_auc or 0, oos_auc or 0]) + 0.03
    return _layout(fig, "AUC by purged, embargoed fold (test blocks in time order)", yaxis=dict(range=[lo, hi], title="AUC"))


def permutation_figure(perm_scores: Sequence[float], score: float, p_value: float) -> go.Figure:
    """Histogram of the CV AUC with shuffled labels, the real CV AUC as a line."""
    fig = go.Figure(go.Histogram(x=list(perm_scores), nbinsx=30, name="shuffled labels", marker_color="#bdbdbd"))
    fig.add_vline(x=score, line_color=RED, line_width=3, annotation_text=f"real labels {score:.3f} (p = {p_value:.3f})")
    fig.add_vline(x=0.5, line_dash="dot", line_color=NEUTRAL)
    return _layout(fig, "Label-permutation test: CV AUC of the same pipeline on shuffled labels",
                   xaxis_title="CV AUC", yaxis_title="permutations", showlegend=False)


def learning_curve_figure(curve: pd.DataFrame) -> go.Figure:
    """Training and CV AUC against the number of training trades, with ±1 std bands."""
    fig = go.Figure()
    for col, name, color in (("train_auc", "training", RED), ("cv_auc", "purged CV", BLUE)):
        m, s = curve[f"{col}_mean"], curve[f"{col}_std"]
        fig.add_trace(go.Scatter(x=curve["train_size"], y=m + s, mode="lines", line=dict(width=0), showlegend=False,
                                 hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=curve["train_size"], y=m - s, mode="lines", line=dict(width=0), fill="tonexty",
                                 fillcolor=_rgba(color, 0.15), showlegend=False, hoverinfo="skip"))
        fig.add_trace(go.Scatter(x=curve["train_size"], y=m, mode="lines+markers", name=name, line_color=color))
    fig.add_hline(y=0.5, line_dash="dot", line_color=NEUTRAL)
    return _layout(fig, "Learning curve (a gap that does not close with more trades = variance, not signal)",
                   xaxis_title="training trades", yaxis_title="AUC")


def calibration_figure(cal: pd.DataFrame) -> go.Figure:
    """Observed win rate against mean predicted P(win) per bin (out of sample), the diagonal as reference."""
    lim = float(np.nanmax([cal["mean_predicted"].max(), cal["observed"].max(), 0.1])) * 1.1
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=[0, lim], y=[0, lim], mode="lines", line=dict(dash="dot", color=NEUTRAL),
                             name="perfect calibration"))
    fig.add_trace(go.Scatter(x=cal["mean_predicted"], y=cal["observed"], mode="lines+markers", name="model (OOS)",
                             marker=dict(size=np.clip(np.sqrt(cal["count"].to_numpy(float)) * 1.5, 6, 30)),
                             line_color=BLUE, text=[f"{int(n)} trades" for n in cal["count"]]))
    return _layout(fig, "Calibration out of sample (marker size: trades per bin)", xaxis_title="mean predicted P(win)",
                   yaxis_title="observed win rate", xaxis=dict(range=[0, lim]), yaxis=dict(range=[0, lim]))


def probability_histogram(pred: pd.DataFrame, thresholds: Sequence[float] = ()) -> go.Figure:
    """Distribution of OOS P(win) for winners and losers, the filter thresholds as lines."""
    fig = go.Figure()
    for y, name, color in ((1, "winners", GREEN), (0, "losers", RED)):
        fig.add_trace(go.Histogram(x=pred.loc[pred["y_win"] == y, "p_win"], name=name, marker_color=color,
                                   opacity=0.6, nbinsx=40))
    for t in thresholds:
        fig.add_vline(x=t, line_dash="dash", line_color=NEUTRAL, annotation_text=f"{t:.2f}")
    return _layout(fig, "Out-of-sample P(win): winners vs losers", barmode="overlay", xaxis_title="P(win)",
                   yaxis_title="trades")


def importance_figure(imp: pd.DataFrame, top: int = 20) -> go.Figure:
    """OOS permutation importance (AUC drop when a feature is shuffled), ±1 std."""
    d = imp.sort_values("importance_mean", ascending=True).tail(top)
    colors = [GREEN if v > 0 else RED for v in d["importance_mean"]]
    fig = go.Figure(go.Bar(x=d["importance_mean"], y=d["feature"], orientation="h", marker_color=colors,
                           error_x=dict(type="data", array=d["importance_std"])))
    fig.add_vline(x=0, line_color=NEUTRAL)
    return _layout(fig, "Permutation importance out of sample (AUC lost when the feature is shuffled)",
                   height=max(380, 22 * len(d) + 120), xaxis_title="AUC drop")


def coefficient_figure(coefs: pd.DataFrame) -> go.Figure:
    """Standardised Logit coefficients with their confidence intervals (statsmodels), intercept left out."""
    d = coefs.drop(index=[i for i in ("const",) if i in coefs.index]).dropna(subset=["coef"])
    d = d.iloc[np.argsort(d["coef"].to_numpy())]
    sig = (d["ci_low"] > 0) | (d["ci_high"] < 0)
    fig = go.Figure(go.Scatter(
        x=d["coef"], y=d.index.astype(str), mode="markers",
        marker=dict(color=[GREEN if c > 0 else RED for c in d["coef"]], size=[10 if s else 6 for s in sig]),
        error_x=dict(type="data", symmetric=False, array=d["ci_high"] - d["coef"], arrayminus=d["coef"] - d["ci_low"]),
        name="coefficient"))
    fig.add_vline(x=0, line_color=NEUTRAL)
    return _layout(fig, "Logit coefficients per standard deviation of the feature, 95% CI (large marker: CI excludes 0)",
                   height=max(380, 22 * len(d) + 120), xaxis_title="log-odds per std")


def stability_figure(stab: pd.DataFrame, top: int = 20) -> go.Figure:
    """Coefficient per CV fold: mean ± std and the share of folds agreeing on the sign."""
    d = stab.reindex(stab["coef_mean"].abs().sort_values().index).tail(top)
    fig = go.Figure(go.Bar(x=d["coef_mean"], y=d["feature"] if "feature" in d else d.index.astype(str),
                           orientation="h", error_x=dict(type="data", array=d["coef_std"]),
                           marker_color=[GREEN if a >= 0.8 else "#fdae61" if a >= 0.6 else RED
                                         for a in d["sign_agreement"]],
                           text=[f"sign {a:.0%}" for a in d["sign_agreement"]], textposition="inside",
                           insidetextanchor="middle", textfont=dict(color="white")))
    fig.add_vline(x=0, line_color=NEUTRAL)
    return _layout(fig, "Coefficient stability across folds (colour: share of folds with the same sign)",
                   height=max(380, 22 * len(d) + 120), xaxis_title="standardised coefficient")


def economic_equity_figure(equity: pd.DataFrame) -> go.Figure:
    """Cumulative OOS P&L per filter variant (the unfiltered trades in black)."""
    fig = go.Figure()
    x = to_et(pd.DatetimeIndex(equity.index).tz_localize(ET)) if pd.DatetimeIndex(equity.index).tz is None \
        else to_et(pd.DatetimeIndex(equity.index))
    for col in equity.columns:
        base = str(col).startswith("no filter")
        fig.add_trace(go.Scatter(x=x, y=equity[col], mode="lines", name=str(col),
                                 line=dict(color="black", width=3) if base else dict(width=1.5)))
    return _layout(fig, "Out of sample: cumulative net P&L with and without the filter ($)", yaxis_title="$",
                   height=460)
