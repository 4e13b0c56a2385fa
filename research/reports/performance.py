"""The performance report's context: one backtest, its tracker and provenance, and the tables the
``performance_report`` notebook shows."""

from __future__ import annotations

import html as _html
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["PerformanceContext", "performance_context", "paper_context", "PAPER_FILES", "ATTRIBUTION_FORMATS", "summary_line", "drawdown_table",
           "audit_trades", "manifest_tables", "fill_audit_summary"]



@dataclass
class PerformanceContext:
    """What the performance notebook reports on: one backtest, its tracker, provenance."""

    result: Any  # research.backtest.run.BacktestResult
    tracker: Any  # research.performance.PerformanceTracker
    manifest: dict[str, Any]
    run_id: str
    synthetic: bool
    series: str
    bars: pd.DataFrame
    params: Any  # strategy.Params
    stored: bool
    warnings: list[str] = field(default_factory=list)  # shown under the title
    store_error: str | None = None  # why the run could not be stored (it was saved as a pending bundle)


def performance_context(data: Sequence[str | Path] | str | None = None, params_file: str | Path | None = None,
                        mode: str | None = None, session: str | None = None, date_from: str | None = None,
                        date_to: str | None = None, bar: str | None = None, run_id: str | None = None, *,
                        store: bool = False, tracker_kw: Mapping[str, Any] | None = None,
                        trials_from: str | Path | None = None, allow_data_errors: bool = False,
                        symbol: str | None = None) -> PerformanceContext:
    """Load DATA (default: the embedded synthetic set), backtest it exactly as ``navale backtest``
    does (same manifest, same run id; written to the run store only with ``store=True``), and build the
    ``PerformanceTracker``. Several files that are not contracts of one product are refused:
    a performance report is about one series. ``trials_from``: a saved sweep (folder or id under
    reports/sweeps) these parameters were selected from: its trial count and Sharpe dispersion
    deflate the DSR (:func:`research.validation.overfitting.search_trials`). ``symbol``: the instrument of
    files whose names do not say (``navale report performance --symbol``)."""
    from research.performance import PerformanceTracker
    from research.pipeline import backtest_series, load_params, load_series

    paths = [data] if isinstance(data, (str, Path)) else list(data or [])
    params = load_params(params_file, mode, session)
    loaded = load_series(paths or None, bar=bar, date_from=date_from, date_to=date_to, series="continuous",
                         allow_data_errors=allow_data_errors, symbol=symbol)
    if len(loaded) != 1:
        names = ", ".join(s.name for s in loaded)
        raise ValueError(f"a performance report covers one series; DATA gave {len(loaded)} ({names}) that are not "
                         "contracts of one product: report them one at a time")
    s = loaded[0]
    bt = backtest_series(s, params, label="continuous", date_from=date_from, date_to=date_to, bar=bar,
                         run_id=run_id, store=False)
    warnings: list[str] = []
    store_error = None
    if store:  # a store that cannot take the run does not cost the report: the run waits as a pending bundle
        from research.pipeline import store_backtests
        from research.store import RunsNotStoredError

        try:
            store_backtests([bt])
        except RunsNotStoredError as exc:
            store_error = str(exc)
            warnings.append(f"run not stored: {store_error}")
    res, rid, manifest, stored = bt.result, bt.run_id, bt.manifest, bt.stored
    kw = dict(tracker_kw or {})
    if trials_from:
        from research.validation.overfitting import search_trials
        from research.validation.promotion import load_sweep, resolve_run

        sweep = load_sweep(resolve_run(str(trials_from)))
        kw["n_trials"], kw["sr_variance"] = search_trials(sweep)
        if params.hash() not in set(sweep.grid["params_hash"]):
            warnings.append(f"these parameters (hash {params.hash()}) are not one of the sweep's {len(sweep.grid)} "
                            "configurations: its trial count deflates the DSR as if they had been chosen from it")
    from research.backtest.reporting import margin_text

    if res.meta.get("trading_stopped"):
        text = margin_text(res.meta, params.contracts, params.initial_capital_usd)
        warnings.append(f"{text[0].upper()}{text[1:]}: the equity curve is flat from then on, as a real account's "
                        "would be")
    if res.trades.empty:
        warnings.append("No trades: these parameters never entered on this data. Net P&L is $0; win rate, profit "
                        "factor, expectancy and the ratios are undefined (shown as 'no trades').")
    tracker = PerformanceTracker.from_backtest(res, **kw)
    return PerformanceContext(result=res, tracker=tracker, manifest={"run_id": rid, **manifest}, run_id=rid,
                              synthetic=s.synthetic, series=s.name, bars=s.frame, params=params, stored=stored,
                              warnings=warnings, store_error=store_error)


PAPER_FILES = {"manifest": "manifest.json", "trades": "trades.parquet", "equity": "equity.parquet"}


def paper_context(paper_dir: str | Path, tracker_kw: Mapping[str, Any] | None = None) -> PerformanceContext:
    """A paper session's context, from the folder ``navale report performance --run`` exports it to
    (:data:`PAPER_FILES`: the run's store manifest, its closed trades and, when the journal still holds
    them, the equity and position of each bar). Its bars are those the session ran on
    (:func:`research.ml.dataset.load_live_bars`: the collector's bar partitions, the replayed file or the
    synthetic feed's spec), cut to the session's trading dates; the signal columns are computed on them
    with the session's parameters (the trader's own kernel), for the charts. Without the per-bar equity,
    the curve is the trades' cumulative P&L at their exits."""
    import json

    import numpy as np
    import pandas as pd

    from research.backtest.run import BacktestResult
    from research.ml.dataset import load_live_bars
    from research.performance import PerformanceTracker
    from strategy import Params
    from strategy.signals import compute_signals

    d = Path(paper_dir)
    manifest = json.loads((d / PAPER_FILES["manifest"]).read_text(encoding="utf-8"))
    run_id = str(manifest.get("run_id") or d.name)
    params = Params.from_dict(dict(manifest.get("params") or {}))
    trades = pd.read_parquet(d / PAPER_FILES["trades"])
    if "shadow" in trades.columns:  # the real book's trades (shadow trades never reached the broker)
        trades = trades.loc[~trades["shadow"].astype(bool)].reset_index(drop=True)
    trades = trades.sort_values("exit_ts", kind="stable").reset_index(drop=True)
    bar_td = pd.Timedelta(str(manifest.get("bar") or "5min"))
    for alias, col, shift in (("signal_time", "signal_ts", bar_td), ("entry_time", "entry_ts", None),
                              ("exit_time", "exit_ts", None)):
        if alias not in trades.columns and col in trades.columns:
            trades[alias] = trades[col] + shift if shift is not None else trades[col]
    warnings: list[str] = []
    eq_file = d / PAPER_FILES["equity"]
    if eq_file.exists():
        eqf = pd.read_parquet(eq_file)
        equity, position = eqf["equity"].astype(np.float64), eqf["position"].astype(np.int64)
    else:  # trades only: the account value after each exit
        idx = pd.DatetimeIndex(trades["exit_ts"]) if len(trades) else pd.DatetimeIndex([], tz="UTC")
        equity = pd.Series(params.initial_capital_usd + trades["pnl_usd"].cumsum().to_numpy(), index=idx)
        position = pd.Series(np.zeros(len(idx), np.int64), index=idx)
        warnings.append("The journal no longer holds this session's per-bar equity: the equity curve is the "
                        "account value after each trade's exit, and exposure is unknown.")
    bars = load_live_bars(manifest, run_id)
    span = equity.index if len(equity) else pd.DatetimeIndex(trades["entry_ts"]) if len(trades) else None
    if span is not None and len(span):  # the session's trading dates, a day of warm-up before
        lo, hi = span.min() - pd.Timedelta(days=1), span.max() + bar_td
        bars = bars.loc[(bars.index >= lo) & (bars.index <= hi)]
    signals = compute_signals(bars, params)
    synthetic = bool((manifest.get("extra") or {}).get("synthetic"))
    meta = {"session_bars": int(len(equity)), "order_flow_mode": signals.attrs.get("order_flow_mode", signals.attrs.get("order_flow", "-")),
            "paper": True, "synthetic": synthetic}
    symbol = str(manifest.get("symbol") or bars.attrs.get("symbol") or "ES")
    result = BacktestResult(params=params, symbol=symbol, trades=trades, equity=equity, position=position,
                            signals=signals, meta=meta)
    kw = dict(tracker_kw or {})
    kw.setdefault("capital", params.initial_capital_usd)
    kw.setdefault("stop_ticks", params.stop_ticks)
    if manifest.get("sessions"):
        kw.setdefault("sessions", manifest["sessions"])
    kw.setdefault("meta", {"run_id": run_id, "mode": params.mode, "paper": True})
    tracker = PerformanceTracker(trades, equity if eq_file.exists() else None,
                                 position if eq_file.exists() else None, **kw)
    if manifest.get("unvalidated"):
        warnings.insert(0, "UNVALIDATED parameters: this paper session traded parameters `navale promote` had not "
                           "accepted.")
    if trades.empty:
        warnings.append("No closed trade in this paper session yet.")
    kind = manifest.get("kind") or "paper"
    series = f"{symbol} {kind} session ({manifest.get('feed') or 'feed unknown'})"
    return PerformanceContext(result=result, tracker=tracker, manifest={"run_id": run_id, **manifest}, run_id=run_id,
                              synthetic=synthetic, series=series, bars=bars, params=params, stored=True,
                              warnings=warnings)


ATTRIBUTION_FORMATS = {"pnl_usd": "{:,.0f}", "trades": "{:,.0f}", "win_rate": "{:.1%}", "expectancy_usd": "{:,.1f}",
                       "expectancy_r": "{:+.3f}", "profit_factor": "{:.2f}", "share_of_pnl": "{:.1%}"}


def summary_line(ctx: PerformanceContext) -> None:
    """One paragraph under the title: series, span, mode, session, order-flow mode, run id."""
    from IPython.display import HTML, display

    from research.reports.plots import to_et

    r = ctx.result
    idx = r.equity.index
    span = f"{to_et(idx[0]):%Y-%m-%d} to {to_et(idx[-1]):%Y-%m-%d}" if len(idx) else "no in-session bars"
    files = len(ctx.manifest.get("data_files") or [])
    source = ("from the journal" if r.meta.get("paper") else f"{files} file{'s' if files != 1 else ''}")
    text = (f"Series <b>{_html.escape(ctx.series)}</b> ({source}, {span}, "
            f"{r.meta.get('session_bars', 0):,} in-session bars), mode <b>{_html.escape(ctx.params.mode)}</b>, "
            f"session <b>{_html.escape(ctx.params.session)}</b>, order flow <b>{r.meta.get('order_flow_mode')}</b>, "
            f"{ctx.params.contracts} contract(s), {len(r.trades):,} trades. Run id <code>{ctx.run_id}</code>"
            + (" (stored)." if ctx.stored else " (not stored)."))
    display(HTML(f"<p>{text}</p>"))


def drawdown_table(drawdowns: pd.DataFrame, top: int = 10) -> pd.DataFrame:
    """The deepest drawdown periods, readable: New York times, $ and % depth, durations."""
    import pandas as pd

    from research.reports.plots import to_et

    d = drawdowns.head(top)
    out = pd.DataFrame(index=d.index)
    for c in ("start", "trough", "recovery"):
        out[f"{c} (ET)"] = [("open" if pd.isna(v) else f"{to_et(v):%Y-%m-%d %H:%M}") for v in d[c]]
    out["depth $"] = [f"{v:,.0f}" for v in d["depth_usd"]]
    out["depth %"] = [f"{v:.2%}" for v in d["depth_pct"]]
    for c in ("duration", "time_to_trough", "time_to_recover"):
        out[c.replace("_", " ")] = [("-" if pd.isna(v) else str(pd.Timedelta(v)).replace(" days ", "d ")) for v in d[c]]
    out.insert(0, "#", range(1, len(out) + 1))
    return out


def audit_trades(result: Any, limit: int = 20) -> pd.DataFrame:
    """The trades whose P&L depends on an intrabar assumption (first ``limit``), New York times."""
    from research.reports.plots import to_et

    fa = result.fill_audit()
    fa = fa.loc[fa["assumption_matters"]].head(limit).copy()
    for c in ("entry_time", "exit_time"):
        fa[c] = [f"{to_et(v):%Y-%m-%d %H:%M}" for v in fa[c]]
    fa.insert(0, "trade", result.trades.loc[fa.index, "trade_id"])
    return fa.drop(columns=["assumption_matters"])


def manifest_tables(manifest: Mapping[str, Any]) -> dict[str, pd.DataFrame]:
    """The run manifest as tables: ``run`` (id, commit, mode, ...), ``params``, ``data`` (files with
    sha256), ``versions``."""
    import pandas as pd

    extra = manifest.get("extra") or {}
    days = manifest.get("sessions") or []
    run = {
        "run id": manifest.get("run_id"),
        "created (UTC)": manifest.get("created_at"),
        "git commit": manifest.get("git_commit"),
        "uncommitted changes": manifest.get("git_dirty"),
        "mode": manifest.get("mode"),
        "session": manifest.get("session"),
        "params hash": manifest.get("params_hash"),
        "snapshot schema": manifest.get("snapshot_schema_version"),
        **{f"extra: {k}": v for k, v in extra.items()},
        "trading sessions": f"{len(days):,} ({days[0]} to {days[-1]})" if days else None,
        "kernel python": sys.executable,
    }
    files = pd.DataFrame(manifest.get("data_files") or [], columns=["path", "sha256", "size"])
    params = pd.DataFrame({"value": [str(v) for v in (manifest.get("params") or {}).values()]},
                          index=pd.Index(list((manifest.get("params") or {}).keys()), name="parameter"))
    versions = pd.DataFrame({"version": list((manifest.get("versions") or {}).values())},
                            index=pd.Index(list((manifest.get("versions") or {}).keys()), name="package"))
    return {
        "run": pd.DataFrame({"value": [("-" if v is None else str(v)) for v in run.values()]},
                            index=pd.Index(list(run.keys()), name="field")),
        "params": params,
        "data": files,
        "versions": versions,
    }


def fill_audit_summary(result: Any) -> pd.DataFrame:
    """Counts of the intrabar assumptions the trades rest on and the P&L they move."""
    import pandas as pd

    fa = result.fill_audit()
    n = len(fa)
    rows = {
        "trades": (n, ""),
        "stop and target inside one bar (stop assumed first)": (int(fa["intrabar_ambiguous"].sum()), ""),
        "entry and exit in the same bar": (int(fa["same_bar_exit"].sum()), ""),
        "bar opened through the stop (filled at the open)": (int(fa["gap_through_stop"].sum()), ""),
        "trades whose P&L depends on an assumption": (int(fa["assumption_matters"].sum()), ""),
        "net P&L, pessimistic (reported)": (float(fa["pnl_usd"].sum()), "$"),
        "net P&L, every ambiguous bar in the trade's favour": (float(fa["pnl_usd_optimistic"].sum()), "$"),
    }
    return pd.DataFrame({"value": [f"{v:,.0f} $" if u == "$" else f"{v:,}" for v, u in rows.values()]},
                        index=pd.Index(list(rows.keys()), name="fill audit"))
