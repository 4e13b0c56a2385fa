"""Plotly figure builders for the reports and the lab notebooks.

Pure functions: data in, ``plotly.graph_objects.Figure`` out, no I/O and no display (the
notebooks show them with :func:`research.reports.display.show`). Times are drawn in New York time
(tz-naive, so the axis reads as the exchange's trading clock). Names that tests and readers
rely on:

- traces carry a stable ``name`` (``"bars"``, ``"Vikings (ball +1)"``, ``"long entry"``, ...);
- shapes carry a ``name``: ``base-green-<id>`` / ``base-red-<id>`` (one rectangle per base),
  ``drawdown-<k>`` (shaded drawdown periods), ``best-cell``.

This module must not import vectorbt (2.5 s of import for nothing here).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from strategy.market.clock import ET

__all__ = [
    "GREEN", "RED", "NEUTRAL", "ET",
    "to_et",
    "equity_figure",
    "monthly_heatmap",
    "r_histogram",
    "mfe_mae_scatter",
    "attribution_bar",
    "bases_in_window",
    "first_violations",
    "example_windows",
    "signal_chart",
    "stability_heatmap",
    "is_oos_bars",
    "oos_equity_figure",
    "pbo_histogram",
    "metric_bars",
]

GREEN = "#1a9850"
RED = "#d73027"
NEUTRAL = "#4d4d4d"
BLUE = "#2166ac"
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_DIVERGING = [[0.0, RED], [0.5, "#f7f7f7"], [1.0, GREEN]]
_LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=30, t=60, b=40), hovermode="closest")


def to_et(values: Any) -> Any:
    """Timestamps (tz-aware or UTC-naive; Index, Series, scalar) as tz-naive New York wall time."""
    if isinstance(values, pd.Series):
        return pd.Series(to_et(pd.DatetimeIndex(values)), index=values.index, name=values.name)
    if isinstance(values, pd.Timestamp) or np.isscalar(values) or isinstance(values, np.datetime64):
        if values is None or pd.isna(values):
            return pd.NaT
        ts = pd.Timestamp(values)
        ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts
        return ts.tz_convert(ET).tz_localize(None)
    idx = pd.DatetimeIndex(values)
    if idx.tz is None:
        idx = idx.tz_localize("UTC")
    return idx.tz_convert(ET).tz_localize(None)


def _as_time_axis(index: pd.Index) -> pd.Index:
    """A tz-aware DatetimeIndex becomes NY wall time; dates and naive indexes are kept."""
    if isinstance(index, pd.DatetimeIndex) and index.tz is not None:
        return index.tz_convert(ET).tz_localize(None)
    return index


def _base_layout(fig: go.Figure, title: str, height: int = 420, **kw: Any) -> go.Figure:
    fig.update_layout(title=dict(text=title, x=0.01), height=height, **_LAYOUT, **kw)
    return fig


# ---------------------------------------------------------------- performance


def equity_figure(
    equity: pd.Series,
    drawdowns: pd.DataFrame | None = None,
    underwater: pd.DataFrame | pd.Series | None = None,
    *,
    title: str = "Equity and drawdowns",
    shade: int = 5,
    max_points: int = 20_000,
) -> go.Figure:
    """Equity curve ($) with the ``shade`` deepest drawdown periods shaded, and an underwater subplot.

    ``drawdowns`` has ``start``, ``trough``, ``recovery`` (NaT when not recovered) and
    ``depth_usd`` (as ``PerformanceTracker.drawdowns()``); ``underwater`` a ``drawdown_usd``
    column (or a Series). Both are derived from ``equity`` when not given. Curves longer than
    ``max_points`` are drawn per day (equity: the day's last value; underwater: its deepest point).
    """
    eq = equity.copy()
    eq.index = _as_time_axis(eq.index)
    if underwater is None:
        uw = eq - eq.cummax()
    else:
        uw = underwater["drawdown_usd"] if isinstance(underwater, pd.DataFrame) else underwater
        uw = uw.copy()
        uw.index = _as_time_axis(uw.index)
    uw = -uw.abs()
    if len(eq) > max_points and isinstance(eq.index, pd.DatetimeIndex):
        eq = eq.groupby(eq.index.normalize()).last()
        uw = uw.groupby(uw.index.normalize()).min()
    fig = make_subplots(rows=2, cols=1, shared_xaxes=True, row_heights=[0.72, 0.28], vertical_spacing=0.04)
    fig.add_trace(go.Scatter(x=eq.index, y=eq.to_numpy(), name="equity", mode="lines",
                             line=dict(color=BLUE, width=1.6), hovertemplate="%{x}<br>$%{y:,.0f}<extra></extra>"),
                  row=1, col=1)
    fig.add_trace(go.Scatter(x=uw.index, y=uw.to_numpy(), name="underwater", mode="lines", fill="tozeroy",
                             line=dict(color=RED, width=1), hovertemplate="%{x}<br>$%{y:,.0f}<extra></extra>"),
                  row=2, col=1)
    if drawdowns is not None and len(drawdowns) and shade > 0:
        dd = drawdowns.copy()
        if "depth_usd" in dd.columns:
            dd = dd.reindex(dd["depth_usd"].abs().sort_values(ascending=False).index)
        end = eq.index[-1] if len(eq) else None
        for k, row in enumerate(dd.head(shade).itertuples(index=False)):
            x0 = _axis_time(row.start)
            rec = getattr(row, "recovery", pd.NaT)
            x1 = end if rec is None or pd.isna(rec) else _axis_time(rec)
            if x0 is None or pd.isna(x0) or x1 is None:
                continue
            fig.add_shape(type="rect", xref="x", yref="paper", x0=x0, x1=x1, y0=0, y1=1, layer="below",
                          line_width=0, fillcolor=RED, opacity=0.10, name=f"drawdown-{k}")
    fig.update_yaxes(title_text="account $", tickformat=",.0f", row=1, col=1)
    fig.update_yaxes(title_text="drawdown $", tickformat=",.0f", row=2, col=1)
    return _base_layout(fig, title, height=520, showlegend=False)


def _axis_time(value: Any) -> Any:
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    ts = pd.Timestamp(value)
    return to_et(ts) if ts.tzinfo is not None else ts


def monthly_heatmap(table: pd.DataFrame, *, title: str = "Monthly net P&L ($)", pct: bool = False) -> go.Figure:
    """Year × month table as a heatmap: diverging colours centred on 0, each value written in its cell."""
    t = table.copy()
    cols = list(t.columns)
    if all(isinstance(c, (int, np.integer)) and 1 <= c <= 12 for c in cols):
        t = t.reindex(columns=range(1, 13))
        labels = list(MONTHS)
    else:
        labels = [str(c) for c in cols]
    z = t.to_numpy(dtype=float)
    text_fmt = "%{z:.1%}" if pct else "%{z:,.0f}"
    lim = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=[str(i) for i in t.index], colorscale=_DIVERGING, zmid=0, zmin=-lim, zmax=lim,
        texttemplate=text_fmt, hovertemplate="%{y} %{x}: " + text_fmt + "<extra></extra>",
        colorbar=dict(tickformat=".0%" if pct else ",.0f"), name="monthly", xgap=2, ygap=2,
    ))
    fig.update_yaxes(autorange="reversed", type="category")
    return _base_layout(fig, title, height=max(260, 60 + 38 * len(t)))


def r_histogram(r: pd.Series | Sequence[float], *, bin_size: float = 0.25,
                title: str = "Trade outcomes (R multiples)") -> go.Figure:
    """Histogram of R multiples, winners green and losers red, with the mean marked."""
    r = pd.Series(r, dtype=float).dropna()
    fig = go.Figure()
    for name, part, color in (("losers", r[r <= 0], RED), ("winners", r[r > 0], GREEN)):
        fig.add_trace(go.Histogram(x=part, name=name, marker_color=color, opacity=0.85,
                                   xbins=dict(size=bin_size), hovertemplate="R %{x}: %{y} trades<extra></extra>"))
    if len(r):
        fig.add_vline(x=float(r.mean()), line_dash="dash", line_color=NEUTRAL,
                      annotation_text=f"mean {r.mean():+.2f} R", annotation_position="top")
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="R multiple (pnl ticks / stop ticks)")
    fig.update_yaxes(title_text="trades")
    return _base_layout(fig, title)


def mfe_mae_scatter(trades: pd.DataFrame, *, stop_ticks: float | None = None, target_ticks: float | None = None,
                    title: str = "Excursions: MFE vs MAE (ticks)") -> go.Figure:
    """Each trade's maximum adverse (x) and favourable (y) excursion in ticks, winners vs losers,
    with the stop (vertical) and target (horizontal) distances drawn."""
    fig = go.Figure()
    win = trades["pnl_usd"] > 0
    for name, mask, color in (("winners", win, GREEN), ("losers", ~win, RED)):
        t = trades.loc[mask]
        fig.add_trace(go.Scatter(
            x=t["mae_ticks"], y=t["mfe_ticks"], mode="markers", name=name,
            marker=dict(color=color, size=7, opacity=0.7, line=dict(width=0.5, color="white")),
            customdata=np.stack([t["r_multiple"].to_numpy(float), t["exit_reason"].astype(str).to_numpy()], axis=-1)
            if len(t) else None,
            hovertemplate="MAE %{x} / MFE %{y} ticks<br>%{customdata[0]:+.2f} R, %{customdata[1]}<extra></extra>",
        ))
    if stop_ticks:
        fig.add_vline(x=stop_ticks, line_dash="dot", line_color=RED, annotation_text=f"stop {stop_ticks:g}")
    if target_ticks:
        fig.add_hline(y=target_ticks, line_dash="dot", line_color=GREEN, annotation_text=f"target {target_ticks:g}")
    fig.update_xaxes(title_text="MAE (ticks against)", rangemode="tozero")
    fig.update_yaxes(title_text="MFE (ticks in favour)", rangemode="tozero")
    return _base_layout(fig, title, height=460)


def attribution_bar(table: pd.DataFrame, *, by: str, value: str = "pnl_usd", title: str | None = None) -> go.Figure:
    """Bars of ``value`` (net $ by default) per group of an attribution table, trades in the hover."""
    t = table.drop(index=[i for i in table.index if str(i) == "total"], errors="ignore")
    y = t[value].astype(float)
    colors = [GREEN if v > 0 else RED for v in y.fillna(0)]
    trades = t["trades"].to_numpy() if "trades" in t.columns else np.full(len(t), np.nan)
    fig = go.Figure(go.Bar(x=[str(i) for i in t.index], y=y, marker_color=colors, name=value, customdata=trades,
                           hovertemplate="%{x}: %{y:,.2f}<br>%{customdata} trades<extra></extra>"))
    fig.update_xaxes(title_text=by, type="category")
    fig.update_yaxes(title_text=value.replace("_", " "))
    return _base_layout(fig, title or f"{value.replace('_', ' ')} by {by}", height=340)


def metric_bars(values: pd.Series, *, title: str, fmt: str = ",.2f") -> go.Figure:
    """A plain labelled bar chart of one Series (signed colours)."""
    y = values.astype(float)
    fig = go.Figure(go.Bar(x=[str(i) for i in y.index], y=y, marker_color=[GREEN if v > 0 else RED for v in y.fillna(0)],
                           texttemplate="%{y:" + fmt + "}", name=str(values.name or "value")))
    fig.update_xaxes(type="category")
    return _base_layout(fig, title, height=340)


# ---------------------------------------------------------------- signals


def bases_in_window(signals: pd.DataFrame, start: Any = None, end: Any = None, *, base_window: int = 8) -> pd.DataFrame:
    """The green and red reference bases seen in ``[start, end]`` (in-session bars).

    One row per base (``side`` +1 green / -1 red, ``id``, ``lo``, ``hi``, ``quality``): every
    distinct ``green_id`` / ``red_id`` that is a bar's last base of its colour in the window.
    ``formed`` is the first bar of the base's ``base_window``-bar span (the episode's start minus
    ``base_window - 1`` bars), ``confirmed`` its confirmation bar (the first bar it can be used),
    ``until`` the end of its last bar as the last base of its colour. Times are UTC.
    """
    sig = signals.loc[signals["in_session"]] if "in_session" in signals.columns else signals
    win = _slice(sig, start, end)
    if win.empty:
        return pd.DataFrame(columns=["side", "id", "lo", "hi", "quality", "formed", "confirmed", "until"])
    bar = _bar_delta(sig)
    idx = sig.index
    base_id = sig["base_id"].to_numpy()
    rows = []
    for side, pre in ((1, "green"), (-1, "red")):
        ids = win[f"{pre}_id"].to_numpy()
        for bid in pd.unique(ids[ids >= 0]):
            first = win.index[ids == bid][0]
            r = win.loc[first]
            span = np.flatnonzero(base_id == bid)
            formed = idx[max(int(span[0]) - (base_window - 1), 0)] if len(span) else pd.Timestamp(r[f"{pre}_confirmed_at"])
            life = np.flatnonzero(sig[f"{pre}_id"].to_numpy() == bid)
            rows.append(dict(side=side, id=int(bid), lo=float(r[f"{pre}_lo"]), hi=float(r[f"{pre}_hi"]),
                             quality=float(r[f"{pre}_quality"]), formed=formed,
                             confirmed=pd.Timestamp(r[f"{pre}_confirmed_at"]), until=idx[int(life[-1])] + bar))
    return pd.DataFrame(rows)


def first_violations(signals: pd.DataFrame) -> pd.DataFrame:
    """``bull_violation`` / ``bear_violation`` kept only at the bar that breaks an intact base (the
    state change of the golden rule); later closes beyond the same broken base are dropped."""
    out = pd.DataFrame(index=signals.index)
    for col, intact, ids in (("bull_violation", "bull_intact", "green_id"), ("bear_violation", "bear_intact", "red_id")):
        ins = signals["in_session"] if "in_session" in signals.columns else pd.Series(True, index=signals.index)
        s = signals.loc[ins]
        was = s[intact].shift(1, fill_value=False).astype(bool) & (s[ids].shift(1) == s[ids])
        out[col] = False
        out.loc[s.index, col] = (s[col].astype(bool) & was).to_numpy()
    return out


def _bar_delta(frame: pd.DataFrame) -> pd.Timedelta:
    ns = frame.attrs.get("bar_ns")
    if ns:
        return pd.Timedelta(int(ns), "ns")
    d = np.diff(frame.index.asi8)
    d = d[d > 0]
    return pd.Timedelta(int(np.median(d)) if len(d) else 60_000_000_000, "ns")


def _slice(frame: pd.DataFrame, start: Any, end: Any) -> pd.DataFrame:
    idx = frame.index
    keep = np.ones(len(frame), bool)
    if start is not None:
        keep &= idx >= _utc(start)
    if end is not None:
        keep &= idx <= _utc(end)
    return frame.loc[keep]


def _utc(value: Any) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_localize(ET).tz_convert("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def example_windows(trades: pd.DataFrame, signals: pd.DataFrame, *, n: int = 3, before: int = 40,
                    after: int = 15) -> list[dict[str, Any]]:
    """Up to ``n`` trades worth drawing (different exit reasons first, a winner and a loser when
    possible) with a window of in-session bars around each: dicts ``trade_id, start, end, title``."""
    if trades.empty:
        return []
    t = trades.sort_values("entry_ts")
    chosen: list[int] = []
    order = ["target", "stop", "golden_rule", "opposite", "time", "session_end"]
    for reason in order:
        hit = t.index[t["exit_reason"].astype(str) == reason]
        if len(hit):
            chosen.append(hit[len(hit) // 2])
        if len(chosen) >= n:
            break
    for i in t.index:  # fill up with whatever is left
        if len(chosen) >= n:
            break
        if i not in chosen:
            chosen.append(i)
    sig = signals.loc[signals["in_session"]] if "in_session" in signals.columns else signals
    idx = sig.index
    out = []
    for i in chosen[:n]:
        tr = t.loc[i]
        a = int(idx.searchsorted(tr["signal_ts"]))
        b = int(idx.searchsorted(tr["exit_ts"]))
        lo, hi = max(a - before, 0), min(b + after, len(idx) - 1)
        side = "long" if tr["side"] > 0 else "short"
        title = (f"{tr['trade_id']}: {side}, exit {tr['exit_reason']}, {tr['r_multiple']:+.2f} R "
                 f"(${tr['pnl_usd']:,.0f}), entry {to_et(tr['entry_ts']):%Y-%m-%d %H:%M} ET")
        out.append(dict(trade_id=tr["trade_id"], start=idx[lo], end=idx[hi], title=title))
    return out


def signal_chart(
    bars: pd.DataFrame,
    signals: pd.DataFrame,
    trades: pd.DataFrame | None = None,
    *,
    start: Any = None,
    end: Any = None,
    base_window: int = 8,
    threshold: float | None = None,
    score: bool = True,
    title: str = "Signals",
) -> go.Figure:
    """Candlesticks of the in-session bars in ``[start, end]`` with the method drawn on them.

    - bases: one rectangle per base (:func:`bases_in_window`) from the first bar of its span to
      the end of its life as the last base of its colour (green/red), a diamond at its confirmation;
    - balls: Vikings (ball +1) and Defenders (ball -1) as circles at the close;
    - golden-rule violations: the bar that breaks an intact base (:func:`first_violations`:
      ``bull_violation``, a red close under the green base; ``bear_violation``) as crosses;
    - trades overlapping the window: entry triangles at ``entry_ts``/``entry_price``, exits at
      ``exit_ts``/``exit_price``, stop and target segments while the trade is open;
    - with ``score``: a lower panel with ``bn_score`` (± ``threshold``) and the golden-rule state
      (+1 green reference intact, -1 red reference intact, 0 none or violated).
    Bars outside ``in_session`` are not drawn. Times on the axis are New York time. The price axis
    spans the bars and the window's stops and targets (zoom out to see a base far from the price).
    """
    ins = signals["in_session"].to_numpy() if "in_session" in signals.columns else np.ones(len(signals), bool)
    b = _slice(bars.loc[ins], start, end)
    s = signals.loc[b.index]
    x = to_et(b.index)
    rows = 2 if score else 1
    fig = make_subplots(rows=rows, cols=1, shared_xaxes=True, vertical_spacing=0.03,
                        row_heights=[0.75, 0.25] if score else [1.0])
    fig.add_trace(go.Candlestick(x=x, open=b["open"], high=b["high"], low=b["low"], close=b["close"], name="bars",
                                 increasing_line_color="#3d9970", decreasing_line_color="#b2182b",
                                 increasing_fillcolor="#3d9970", decreasing_fillcolor="#b2182b", opacity=0.9),
                  row=1, col=1)
    if len(b):
        w0, w1 = b.index[0], b.index[-1] + _bar_delta(b)
        for base in bases_in_window(signals, b.index[0], b.index[-1], base_window=base_window).itertuples():
            color = GREEN if base.side > 0 else RED
            kind = "green" if base.side > 0 else "red"
            fig.add_shape(type="rect", xref="x", yref="y", x0=to_et(max(base.formed, w0)), x1=to_et(min(base.until, w1)),
                          y0=base.lo, y1=base.hi, line=dict(color=color, width=1.2), fillcolor=color, opacity=0.18,
                          layer="below", name=f"base-{kind}-{base.id}")
            if w0 <= base.confirmed <= w1:
                fig.add_trace(go.Scatter(
                    x=[to_et(base.confirmed)], y=[base.hi if base.side > 0 else base.lo], mode="markers",
                    marker=dict(symbol="diamond", size=9, color=color, line=dict(width=1, color="black")),
                    name=f"{kind} base confirmed", legendgroup=f"{kind}-base", showlegend=False,
                    hovertemplate=f"{kind} base {base.id} confirmed<br>[{base.lo:g}, {base.hi:g}] q={base.quality:.2f}"
                                  "<extra></extra>"), row=1, col=1)
        # invisible traces so the legend explains the rectangles
        for kind, color in (("green", GREEN), ("red", RED)):
            fig.add_trace(go.Scatter(x=[None], y=[None], mode="markers", name=f"{kind} base",
                                     marker=dict(symbol="square", size=12, color=color, opacity=0.4),
                                     legendgroup=f"{kind}-base"), row=1, col=1)
    ball = s["ball"].to_numpy()
    for val, name, color in ((1, "Vikings (ball +1)", GREEN), (-1, "Defenders (ball -1)", RED)):
        m = ball == val
        fig.add_trace(go.Scatter(x=x[m], y=b["close"].to_numpy()[m], mode="markers", name=name,
                                 marker=dict(symbol="circle", size=7, color=color, line=dict(width=0.5, color="white")),
                                 customdata=s["delta"].to_numpy()[m],
                                 hovertemplate=name + "<br>%{x}<br>δ=%{customdata:.2f}<extra></extra>"), row=1, col=1)
    first = first_violations(signals).loc[b.index]
    for col, name, color, ycol in (("bull_violation", "golden rule broken (red under green)", RED, "low"),
                                   ("bear_violation", "golden rule broken (green over red)", GREEN, "high")):
        m = first[col].to_numpy(bool)
        fig.add_trace(go.Scatter(x=x[m], y=b[ycol].to_numpy()[m], mode="markers", name=name,
                                 marker=dict(symbol="x", size=11, color=color, line=dict(width=1.5, color="black")),
                                 hovertemplate=name + "<br>%{x}<extra></extra>"), row=1, col=1)
    if trades is not None and len(trades) and len(b):
        _draw_trades(fig, trades, b.index[0], b.index[-1] + _bar_delta(b))
    if score:
        fig.add_trace(go.Scatter(x=x, y=s["bn_score"], name="bn_score", mode="lines", line=dict(color=BLUE, width=1.3)),
                      row=2, col=1)
        state = np.where(s["ref_side"].to_numpy() > 0, s["bull_intact"].to_numpy(float),
                         np.where(s["ref_side"].to_numpy() < 0, -s["bear_intact"].to_numpy(float), 0.0))
        fig.add_trace(go.Scatter(x=x, y=state * 0.9, name="golden rule state", mode="lines", line_shape="hv",
                                 line=dict(color="#999999", width=1, dash="dot"),
                                 hovertemplate="%{x}: %{y:+.0f} (+ green intact, - red intact)<extra></extra>"),
                      row=2, col=1)
        if threshold:
            for y in (threshold, -threshold):
                fig.add_hline(y=y, line_dash="dash", line_color="#888888", line_width=1, row=2, col=1)
        fig.update_yaxes(title_text="score", range=[-1, 1], row=2, col=1)
    if len(b):  # zoom on the bars (and the window's stops/targets): an old base far away stays off-screen
        lo, hi = float(b["low"].min()), float(b["high"].max())
        if trades is not None and len(trades):
            t = trades.loc[(trades["entry_ts"] <= b.index[-1]) & (trades["exit_ts"] >= b.index[0])]
            if len(t):
                lo = min(lo, float(t[["stop_price", "target_price"]].min().min()))
                hi = max(hi, float(t[["stop_price", "target_price"]].max().max()))
        pad = max((hi - lo) * 0.05, 1e-9)
        fig.update_yaxes(range=[lo - pad, hi + pad], row=1, col=1)
    fig.update_yaxes(title_text="price", row=1, col=1)
    breaks = _rangebreaks(x)
    if breaks:
        fig.update_xaxes(rangebreaks=breaks)
    fig.update_xaxes(rangeslider_visible=False)
    fig.update_layout(legend=dict(orientation="h", yanchor="bottom", y=1.02, x=0))
    _base_layout(fig, title, height=660 if score else 520)
    # the horizontal legend wraps to two lines above the plot: room for it under the title
    fig.update_layout(margin=dict(t=130), title=dict(y=0.98, yanchor="top"))
    return fig


def _draw_trades(fig: go.Figure, trades: pd.DataFrame, w0: pd.Timestamp, w1: pd.Timestamp) -> None:
    t = trades.loc[(trades["entry_ts"] <= w1) & (trades["exit_ts"] >= w0)]
    for side, name, symbol, color in ((1, "long entry", "triangle-up", GREEN), (-1, "short entry", "triangle-down", RED)):
        e = t.loc[t["side"] == side]
        e = e.loc[(e["entry_ts"] >= w0) & (e["entry_ts"] <= w1)]
        fig.add_trace(go.Scatter(x=to_et(e["entry_ts"]), y=e["entry_price"], mode="markers", name=name,
                                 marker=dict(symbol=symbol, size=14, color=color, line=dict(width=1, color="black")),
                                 text=e["trade_id"], hovertemplate="%{text} " + name + " %{y}<br>%{x}<extra></extra>"),
                      row=1, col=1)
    ex = t.loc[(t["exit_ts"] >= w0) & (t["exit_ts"] <= w1)]
    fig.add_trace(go.Scatter(
        x=to_et(ex["exit_ts"]), y=ex["exit_price"], mode="markers", name="exit",
        marker=dict(symbol="square", size=10, color=[GREEN if p > 0 else RED for p in ex["pnl_usd"]],
                    line=dict(width=1, color="black")),
        text=[f"{i} exit {r}: {p:+,.0f} $" for i, r, p in zip(ex["trade_id"], ex["exit_reason"], ex["pnl_usd"])],
        hovertemplate="%{text}<br>%{x} @ %{y}<extra></extra>"), row=1, col=1)
    for col, name, color in (("stop_price", "stop", RED), ("target_price", "target", GREEN)):
        xs: list[Any] = []
        ys: list[Any] = []
        for r in t.itertuples():
            xs += [to_et(max(r.entry_ts, w0)), to_et(min(r.exit_ts, w1)), None]
            ys += [getattr(r, col), getattr(r, col), None]
        fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=name, line=dict(color=color, width=1.5, dash="dash"),
                                 hoverinfo="skip"), row=1, col=1)


def _rangebreaks(x: pd.DatetimeIndex) -> list[dict[str, Any]]:
    """Hide nights and weekends when every bar is inside 09:30-16:00 (RTH); otherwise only Saturdays."""
    if not len(x):
        return []
    minutes = x.hour * 60 + x.minute
    if ((minutes >= 9 * 60 + 30) & (minutes < 16 * 60)).all():
        return [dict(bounds=["sat", "mon"]), dict(bounds=[16, 9.5], pattern="hour")]
    return [dict(bounds=["sat", "sun"])]


# ---------------------------------------------------------------- sweeps and validation


def stability_heatmap(pivot: pd.DataFrame, *, x: str, y: str, objective: str, best: tuple[Any, Any] | None = None,
                      title: str | None = None) -> go.Figure:
    """Objective over a two-parameter grid (``pivot``: index = ``y`` values, columns = ``x`` values),
    values written in the cells, the best (or given) cell outlined."""
    z = pivot.to_numpy(dtype=float)
    xs = [str(c) for c in pivot.columns]
    ys = [str(i) for i in pivot.index]
    fig = go.Figure(go.Heatmap(z=z, x=xs, y=ys, colorscale="Viridis", texttemplate="%{z:.3g}", name=objective,
                               hovertemplate=f"{x}=%{{x}}, {y}=%{{y}}: %{{z:.4g}}<extra></extra>",
                               colorbar=dict(title=dict(text=objective))))
    if best is None and np.isfinite(z).any():
        i, j = np.unravel_index(np.nanargmax(z), z.shape)
        best = (pivot.columns[j], pivot.index[i])
    if best is not None:
        try:
            j = list(pivot.columns).index(best[0])
            i = list(pivot.index).index(best[1])
        except ValueError:
            pass
        else:
            fig.add_shape(type="rect", xref="x", yref="y", x0=j - 0.5, x1=j + 0.5, y0=i - 0.5, y1=i + 0.5,
                          line=dict(color="white", width=3), name="best-cell")
    fig.update_xaxes(title_text=x, type="category")
    fig.update_yaxes(title_text=y, type="category")
    return _base_layout(fig, title or f"{objective} over {x} × {y}", height=max(320, 80 + 36 * len(ys)))


def is_oos_bars(windows: pd.DataFrame, *, is_col: str, oos_col: str, label_col: str | None = None,
                title: str = "In-sample vs out-of-sample, per window") -> go.Figure:
    """Grouped bars: the chosen configuration's in-sample and out-of-sample objective per window."""
    labels = [str(v) for v in (windows[label_col] if label_col else windows.index)]
    fig = go.Figure([
        go.Bar(x=labels, y=windows[is_col].astype(float), name="in-sample", marker_color="#9ecae1"),
        go.Bar(x=labels, y=windows[oos_col].astype(float), name="out-of-sample", marker_color=BLUE),
    ])
    fig.update_layout(barmode="group")
    fig.update_xaxes(title_text="window", type="category")
    fig.update_yaxes(title_text=is_col.replace("is_", "").replace("_", " "))
    return _base_layout(fig, title, height=360)


def oos_equity_figure(oos_equity: pd.Series, boundaries: Sequence[Any] = (),
                      title: str = "Stitched out-of-sample equity") -> go.Figure:
    """The walk-forward's out-of-sample equity with the window boundaries as vertical lines."""
    eq = oos_equity.copy()
    eq.index = _as_time_axis(eq.index)
    fig = go.Figure(go.Scatter(x=eq.index, y=eq.to_numpy(), mode="lines", name="OOS equity",
                               line=dict(color=BLUE, width=1.6)))
    for k, when in enumerate(boundaries):
        fig.add_shape(type="line", xref="x", yref="paper", x0=_axis_time(when), x1=_axis_time(when), y0=0, y1=1,
                      line=dict(color="#bbbbbb", width=1, dash="dot"), name=f"window-{k}")
    fig.update_yaxes(title_text="$", tickformat=",.0f")
    return _base_layout(fig, title, height=380)


def pbo_histogram(logits: Sequence[float], pbo: float, *, title: str | None = None) -> go.Figure:
    """Histogram of the CSCV logits λ; the mass at λ ≤ 0 (left of the line) is the PBO."""
    lam = pd.Series(np.asarray(logits, dtype=float)).replace([np.inf, -np.inf], np.nan).dropna()
    fig = go.Figure([
        go.Histogram(x=lam[lam <= 0], name="λ ≤ 0 (best IS is below the OOS median)", marker_color=RED, nbinsx=20),
        go.Histogram(x=lam[lam > 0], name="λ > 0", marker_color=GREEN, nbinsx=20),
    ])
    fig.add_vline(x=0, line_dash="dash", line_color=NEUTRAL)
    fig.update_layout(barmode="overlay")
    fig.update_xaxes(title_text="logit λ of the IS-best configuration's OOS rank")
    fig.update_yaxes(title_text="splits")
    return _base_layout(fig, title or f"Probability of backtest overfitting: PBO = {pbo:.1%}", height=360)
