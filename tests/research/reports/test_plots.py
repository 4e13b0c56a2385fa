"""`research.reports.plots`: each figure holds the traces and shapes it promises (no rendering, no kernel)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from research.backtest import run as run_backtest
from research.data import SyntheticSpec, default_dataset
from research.pipeline import load_series
from research.reports import plots
from strategy import Params


@pytest.fixture(scope="module")
def bt(tmp_path_factory):
    path = default_dataset(SyntheticSpec(days=3), directory=tmp_path_factory.mktemp("synth"))
    s = load_series([path])[0]
    res = run_backtest(s.frame, Params())
    assert len(res.trades) >= 3
    return s.frame, res


def _shapes(fig, prefix: str) -> list:
    return [sh for sh in fig.layout.shapes if (sh.name or "").startswith(prefix)]


def _trace(fig, name: str):
    found = [t for t in fig.data if t.name == name]
    assert found, f"no trace {name!r} in {[t.name for t in fig.data]}"
    return found[0]


def test_no_vectorbt_import():
    code = "import sys, research.reports.plots; print('vectorbt' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


def test_to_et():
    ts = pd.Timestamp("2024-03-04 14:30", tz="UTC")
    assert plots.to_et(ts) == pd.Timestamp("2024-03-04 09:30")
    idx = plots.to_et(pd.DatetimeIndex([ts, ts + pd.Timedelta("1h")]))
    assert idx.tz is None and list(idx.hour) == [9, 10]


def test_signal_chart_bases_balls_violations_trades(bt):
    bars, res = bt
    sig, trades = res.signals, res.trades
    for w in plots.example_windows(trades, sig, n=3):
        fig = plots.signal_chart(bars, sig, trades, start=w["start"], end=w["end"], threshold=0.25, title=w["title"])
        ins = sig.loc[sig["in_session"] & (sig.index >= w["start"]) & (sig.index <= w["end"])]
        # one rectangle per distinct green / red base that is a bar's last base in the window
        n_green = ins.loc[ins["green_id"] >= 0, "green_id"].nunique()
        n_red = ins.loc[ins["red_id"] >= 0, "red_id"].nunique()
        assert len(_shapes(fig, "base-green-")) == n_green
        assert len(_shapes(fig, "base-red-")) == n_red
        for sh in _shapes(fig, "base-green-"):
            gid = int(sh.name.rsplit("-", 1)[1])
            row = ins.loc[ins["green_id"] == gid].iloc[0]
            assert (sh.y0, sh.y1) == (row["green_lo"], row["green_hi"])
        candles = _trace(fig, "bars")
        assert len(candles.x) == len(ins)
        assert len(_trace(fig, "Vikings (ball +1)").x) == int((ins["ball"] == 1).sum())
        assert len(_trace(fig, "Defenders (ball -1)").x) == int((ins["ball"] == -1).sum())
        first = plots.first_violations(sig).loc[ins.index]
        assert len(_trace(fig, "golden rule broken (red under green)").x) == int(first["bull_violation"].sum())
        # entry markers at the trade entry times and prices
        lo, hi = ins.index[0], ins.index[-1]
        inside = trades.loc[(trades["entry_ts"] >= lo) & (trades["entry_ts"] <= hi)]
        xs = list(_trace(fig, "long entry").x) + list(_trace(fig, "short entry").x)
        ys = list(_trace(fig, "long entry").y) + list(_trace(fig, "short entry").y)
        assert sorted(pd.DatetimeIndex(xs)) == sorted(plots.to_et(pd.DatetimeIndex(inside["entry_ts"])))
        assert sorted(ys) == sorted(inside["entry_price"])
        assert w["trade_id"] in set(inside["trade_id"])
        assert len([y for y in _trace(fig, "stop").y if y is not None]) >= 2
        assert _trace(fig, "bn_score") is not None and _trace(fig, "golden rule state") is not None


def test_bases_in_window_confirmation_causal(bt):
    _, res = bt
    sig = res.signals
    ins = sig.loc[sig["in_session"]]
    start, end = ins.index[200], ins.index[400]
    b = plots.bases_in_window(sig, start, end)
    assert len(b) and set(b["side"]) <= {1, -1}
    assert (b["formed"] < b["confirmed"]).all()  # the zone forms before it can be used
    assert (b["confirmed"] < b["until"]).all()
    assert (b["lo"] <= b["hi"]).all()


def test_example_windows_prefers_distinct_exit_reasons(bt):
    _, res = bt
    ex = plots.example_windows(res.trades, res.signals, n=3)
    assert len(ex) == min(3, len(res.trades))
    reasons = res.trades.set_index("trade_id").loc[[w["trade_id"] for w in ex], "exit_reason"]
    assert reasons.nunique() == min(3, res.trades["exit_reason"].nunique())
    assert plots.example_windows(res.trades.iloc[:0], res.signals) == []


def test_equity_figure_shades_drawdowns():
    idx = pd.date_range("2024-01-01 14:30", periods=200, freq="1min", tz="UTC")
    eq = pd.Series(100_000 + np.sin(np.arange(200) / 10) * 500, index=idx)
    dd = pd.DataFrame({"start": [idx[10], idx[70]], "trough": [idx[40], idx[100]], "recovery": [idx[60], pd.NaT],
                       "depth_usd": [900.0, 1000.0]})
    fig = plots.equity_figure(eq, dd, shade=5)
    shades = _shapes(fig, "drawdown-")
    assert len(shades) == 2
    assert shades[0].x0 == plots.to_et(idx[70])  # deepest first; still open -> to the end
    assert {t.name for t in fig.data} == {"equity", "underwater"}
    assert max(_trace(fig, "underwater").y) <= 0
    big = pd.Series(np.arange(50_000.0), index=pd.date_range("2020-01-01", periods=50_000, freq="5min", tz="UTC"))
    assert len(_trace(plots.equity_figure(big, max_points=1000), "equity").x) < 200  # drawn per day


def test_monthly_heatmap_diverging_and_annotated():
    t = pd.DataFrame([[100.0, -50.0] + [np.nan] * 10, [np.nan] * 11 + [25.0]], index=[2023, 2024],
                     columns=range(1, 13))
    fig = plots.monthly_heatmap(t)
    hm = fig.data[0]
    assert hm.type == "heatmap" and hm.zmid == 0 and hm.texttemplate
    assert list(hm.x) == list(plots.MONTHS) and list(hm.y) == ["2023", "2024"]
    assert hm.zmin == -100 and hm.zmax == 100


def test_distribution_figures(bt):
    _, res = bt
    tr = res.trades
    h = plots.r_histogram(tr["r_multiple"])
    assert {t.name for t in h.data} == {"winners", "losers"}
    assert sum(len(t.x) for t in h.data) == len(tr)
    sc = plots.mfe_mae_scatter(tr, stop_ticks=7, target_ticks=14)
    assert sum(len(t.x) for t in sc.data) == len(tr)
    lines = [sh for sh in sc.layout.shapes if sh.type == "line"]
    assert {ln.x0 for ln in lines if ln.x0 == ln.x1} == {7} and {ln.y0 for ln in lines if ln.y0 == ln.y1} == {14}


def test_attribution_bar_skips_total():
    t = pd.DataFrame({"pnl_usd": [10.0, -5.0, 5.0], "trades": [2, 1, 3]}, index=["a", "b", "total"])
    fig = plots.attribution_bar(t, by="hour")
    assert list(fig.data[0].x) == ["a", "b"]
    assert fig.data[0].marker.color == (plots.GREEN, plots.RED)


def test_validation_figures():
    pivot = pd.DataFrame([[0.1, 0.5], [0.3, 0.2]], index=[5, 7], columns=[10, 14])
    fig = plots.stability_heatmap(pivot, x="target_ticks", y="stop_ticks", objective="sharpe")
    best = _shapes(fig, "best-cell")
    assert len(best) == 1 and (best[0].x0, best[0].y0) == (0.5, -0.5)  # column 14, row 5
    w = pd.DataFrame({"is_sharpe": [1.0, 2.0], "oos_sharpe": [0.5, -0.1]})
    fig = plots.is_oos_bars(w, is_col="is_sharpe", oos_col="oos_sharpe")
    assert [t.name for t in fig.data] == ["in-sample", "out-of-sample"]
    fig = plots.pbo_histogram([-1.0, 0.5, 2.0, -0.2, np.inf], 0.4)
    assert len(fig.data[0].x) == 2 and len(fig.data[1].x) == 2
    assert "40.0%" in fig.layout.title.text
    eq = pd.Series([0.0, 10.0, 5.0], index=pd.date_range("2024-01-01", periods=3))
    fig = plots.oos_equity_figure(eq, boundaries=[eq.index[1]])
    assert len(_shapes(fig, "window-")) == 1
