"""The sweep report's context: a saved sweep, the in-depth backtest of one configuration, and the
tables the ``sweep_report`` notebook shows."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from research.sweep.result import profit_factor_text

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["OBJECTIVE_COLUMN", "OVERFIT_METRIC", "SUMMARY_FORMATS", "SweepContext", "sweep_context", "InDepth",
           "IN_DEPTH_METRICS", "sweep_in_depth", "VBT_METRICS", "VBT_STATS_NOTE", "vbt_stats", "sweep_overview", "top_configurations",
           "stability_pairs", "windows_table", "checks_table", "sweep_manifest_tables"]


# walk-forward objective -> summary column (stability maps, top table) and overfitting metric (PBO, DSR)
OBJECTIVE_COLUMN = {"sharpe": "sharpe", "sortino": "sortino", "net_pnl": "net_pnl_usd", "profit_factor": "profit_factor"}
OVERFIT_METRIC = {"sharpe": "sharpe", "sortino": "sortino", "net_pnl": "mean", "profit_factor": "profit_factor"}
SUMMARY_FORMATS = {"trades": "{:,.0f}", "win_rate": "{:.1%}", "net_pnl_usd": "{:,.0f}", "profit_factor": profit_factor_text,
                   "expectancy_usd": "{:,.1f}", "expectancy_r": "{:+.3f}", "sharpe": "{:.2f}", "sortino": "{:.2f}",
                   "max_drawdown_usd": "{:,.0f}", "trades_per_day": "{:.2f}"}


@dataclass
class SweepContext:
    """A saved sweep and what the report derives from it."""

    result: Any  # research.sweep.SweepResult
    table: pd.DataFrame  # grid joined with the summary, index combo
    sweep_dir: Path
    sweep_id: str
    synthetic: bool
    varying: list[str]  # grid parameters with more than one value


def sweep_context(sweep_dir: str | Path) -> SweepContext:
    """Load a sweep saved by ``navale sweep`` (``SweepResult.save``)."""
    from research.sweep import SweepResult
    from research.validation.overfitting import sweep_table

    res = SweepResult.load(sweep_dir)
    table = sweep_table(res)
    varying = [p for p in res.param_names
               if table[p].map(lambda v: tuple(v) if isinstance(v, (list, tuple)) else v).nunique() > 1]
    return SweepContext(result=res, table=table, sweep_dir=Path(sweep_dir), synthetic=bool(res.meta.get("synthetic")),
                        sweep_id=str(res.meta.get("sweep_id") or Path(sweep_dir).name), varying=varying)


@dataclass
class InDepth:
    """One sweep configuration backtested again on the sweep's bars (:func:`sweep_in_depth`)."""

    combo: int
    result: Any  # research.backtest.BacktestResult (its .portfolio is the vectorbt Portfolio)
    tracker: Any  # research.performance.PerformanceTracker, DSR deflated by the sweep's trials
    params: pd.DataFrame  # the parameters that differ from the sweep's base


IN_DEPTH_METRICS = ["net_pnl_usd", "trades", "win_rate", "profit_factor", "expectancy_r", "sharpe", "sortino", "psr", "dsr",
                    "max_drawdown_usd", "exposure"]


def sweep_in_depth(ctx: SweepContext, combo: int) -> InDepth:
    """Backtest combination ``combo`` on the sweep's own bars (``meta["load"]`` written by
    ``navale sweep``; every file must still hash as it did), for the in-depth section. Raises
    ``ValueError`` naming what is missing or changed."""
    import pandas as pd

    from research.performance import PerformanceTracker
    from research.pipeline import load_series
    from research.store import file_sha256
    from research.validation.overfitting import search_trials

    res = ctx.result
    load = res.meta.get("load")
    if not load:
        raise ValueError("the sweep has no record of how its data were read (older sweeps, or saved outside "
                         "`navale sweep`); re-run `navale sweep` to get this section")
    # the sweep recorded each file's sha256 under the path as given (often relative): compare resolved paths
    hashes = {str(Path(d["path"]).resolve()): d["sha256"] for d in res.meta.get("data") or []}
    for path in load["paths"]:
        key = str(Path(path).resolve())
        if not Path(path).exists():
            raise ValueError(f"{path}: data file of the sweep not found")
        if key not in hashes:
            raise ValueError(f"{path}: the sweep recorded no sha256 for this file, so it cannot be checked")
        if file_sha256(path) != hashes[key]:
            raise ValueError(f"{path}: changed since the sweep (sha256 differs)")
    loaded = load_series(load["paths"], bar=load.get("bar"), date_from=load.get("date_from"),
                         date_to=load.get("date_to"), symbol=load.get("symbol"),
                         allow_data_errors=bool((load.get("data_check") or {}).get("allow_data_errors")))
    if len(loaded) != 1:
        raise ValueError(f"the sweep's data are {len(loaded)} series; the in-depth section shows one")
    bt = res.backtest(int(combo), loaded[0])
    trials, var = search_trials(res)
    tracker = PerformanceTracker.from_backtest(bt, n_trials=trials, sr_variance=var)
    base = res.base.to_dict()
    chosen = res.params(int(combo)).to_dict()
    diff = {k: (base.get(k), v) for k, v in chosen.items() if base.get(k) != v}
    params = pd.DataFrame([(k, str(b), str(v)) for k, (b, v) in diff.items()],
                          columns=["parameter", "base", "this configuration"])
    return InDepth(combo=int(combo), result=bt, tracker=tracker, params=params)


# Portfolio.stats() metrics that hold for the P&L-price portfolio (research/backtest/portfolio.py): its rows are
# bars and fills, not a regular clock, so the row-count durations (period, drawdown and trade durations) and the
# per-row ratios are left out; trade returns in % and exposure are of the synthetic P&L price, so left out too.
VBT_METRICS = ("start_value", "end_value", "total_return", "total_fees_paid", "max_dd", "total_trades",
               "total_closed_trades", "total_open_trades", "win_rate", "profit_factor", "expectancy")
VBT_STATS_NOTE = ("vectorbt Portfolio.stats() for values, fees, drawdown and trade counts; the span from the bars' "
                  "own times; trade figures in $ from the trades; Sharpe and Sortino by vectorbt's returns accessor "
                  "on the daily session returns (P&L / initial capital, 252 sessions a year), the same definition "
                  "as the headline table above")


def vbt_stats(result: Any) -> pd.DataFrame:
    """vectorbt's statistics of a backtest on one consistent clock (:data:`VBT_STATS_NOTE`), as text.

    Span: first bar start to last bar end, in calendar days and sessions. Ratios: daily session returns with
    ``freq="1D", year_freq="252D"``, so they equal the project's Sharpe/Sortino.
    """
    import pandas as pd

    from research.backtest.stats import TRADING_DAYS, daily_equity, daily_returns

    def fmt(v: Any) -> str:
        if v is None or (isinstance(v, float) and v != v):
            return "-"
        if isinstance(v, (int,)) or (isinstance(v, float) and float(v).is_integer() and abs(v) < 1e15):
            return f"{int(v):,}"
        if isinstance(v, float):
            return f"{v:,.4g}" if abs(v) < 1e4 else f"{v:,.0f}"
        return str(v)

    idx = result.equity.index
    bar = pd.Timedelta(int(result.meta.get("bar_ns") or 0), "ns")
    daily = daily_equity(result.equity)
    rows: dict[str, Any] = {}
    if len(idx):
        first, last = idx[0], idx[-1] + bar
        rows["Start (first bar)"] = f"{first:%Y-%m-%d %H:%M} UTC"
        rows["End (last bar's close)"] = f"{last:%Y-%m-%d %H:%M} UTC"
        rows["Period"] = f"{(last - first).days:,} calendar days, {len(daily):,} sessions"
    st = result.portfolio.stats(metrics=list(VBT_METRICS))
    units = {"Start Value": "Start Value [$]", "End Value": "End Value [$]", "Total Fees Paid": "Total Fees Paid [$]",
             "Expectancy": "Expectancy [$ per trade]"}
    rows.update({units.get(str(k), str(k)): v for k, v in st.items()})
    trades = result.trades
    if len(trades):
        pnl = trades["pnl_usd"]
        held = pd.to_datetime(trades["exit_time"]) - pd.to_datetime(trades["entry_time"])
        rows["Best Trade [$]"] = float(pnl.max())
        rows["Worst Trade [$]"] = float(pnl.min())
        rows["Avg Winning Trade [$]"] = float(pnl[pnl > 0].mean()) if (pnl > 0).any() else None
        rows["Avg Losing Trade [$]"] = float(pnl[pnl < 0].mean()) if (pnl < 0).any() else None
        rows["Avg Holding Time"] = str(held.mean().round("1s"))
    if len(daily) >= 2:
        acc = daily_returns(daily, result.params.initial_capital_usd).vbt.returns(freq="1D",
                                                                                   year_freq=f"{TRADING_DAYS}D")
        rows["Sharpe Ratio (daily, 252)"] = float(acc.sharpe_ratio())
        rows["Sortino Ratio (daily, 252)"] = float(acc.sortino_ratio())
    return pd.DataFrame({"value": [fmt(v) for v in rows.values()]}, index=pd.Index(list(rows), name="vectorbt"))


def sweep_overview(ctx: SweepContext) -> pd.DataFrame:
    """One table: what was swept, on what, how."""
    import pandas as pd

    r, m = ctx.result, ctx.result.meta
    days = r.daily_pnl.index
    rows = {
        "sweep id": ctx.sweep_id,
        "configurations": f"{len(r.grid):,}",
        "parameters varied": ", ".join(f"{p} ({ctx.table[p].nunique()})" for p in ctx.varying) or "-",
        "data sets": f"{len(r.segments):,} ({', '.join(map(str, r.segments['name'].head(6)))}"
                     f"{', ...' if len(r.segments) > 6 else ''})",
        "sessions": f"{len(days):,} ({days[0]:%Y-%m-%d} to {days[-1]:%Y-%m-%d})" if len(days) else "0",
        "capital": f"{float(m.get('capital') or 0):,.0f} $",
        "trials counted for the DSR": f"{int(m.get('n_trials') or len(r.grid)):,}",
        "engine": f"{m.get('engine')} ({m.get('n_workers')} workers), {float(m.get('elapsed_s') or 0):.1f} s",
        "created": str(m.get("created")),
        "code version": str(m.get("code_version")),
        "folder": str(ctx.sweep_dir),
    }
    return pd.DataFrame({"value": list(rows.values())}, index=pd.Index(list(rows.keys()), name="sweep"))


def top_configurations(ctx: SweepContext, objective: str = "sharpe", n: int = 10) -> pd.DataFrame:
    """The ``n`` best configurations by ``objective``: the varied parameters and the main metrics."""
    col = OBJECTIVE_COLUMN[objective]
    cols = [c for c in ("trades", "win_rate", "net_pnl_usd", "profit_factor", "expectancy_r", "sharpe", "sortino",
                        "max_drawdown_usd", "trades_per_day") if c in ctx.table.columns]
    out = ctx.table.sort_values(col, ascending=False, na_position="last").head(n)[list(ctx.varying) + cols].copy()
    for p in ctx.varying:  # parameter values as written in a grid file (2.0 -> "2", 0.25 -> "0.25")
        out[p] = [_param_text(v) for v in out[p]]
    return out


def _param_text(v: Any) -> str:
    """A grid value as text: numbers in their shortest form, sequences as ``a, b``."""
    if isinstance(v, (list, tuple)):
        return ", ".join(_param_text(x) for x in v)
    if isinstance(v, bool) or v is None:
        return str(v)
    if isinstance(v, numbers.Integral):
        return str(int(v))
    if isinstance(v, numbers.Real):
        return "-" if v != v else f"{float(v):g}"
    return str(v)


def stability_pairs(ctx: SweepContext, max_maps: int = 3) -> list[tuple[str, str]]:
    """Parameter pairs for the stability maps: the varied parameters two by two, in grid order."""
    v = [p for p in ctx.varying if not isinstance(ctx.table[p].iloc[0], (list, tuple))]
    if len(v) < 2:
        return []
    pairs = [(v[i + 1], v[i]) for i in range(0, len(v) - 1, 2)]  # (x = columns, y = rows)
    if len(v) % 2:
        pairs.append((v[-1], v[0]))
    return pairs[:max_maps]


def windows_table(wf: Any, params: Sequence[str] = ()) -> pd.DataFrame:
    """The walk-forward windows, readable: IS and OOS spans, the combo chosen (and its varied
    parameters), IS / OOS objective and Sharpe, OOS net $."""
    import pandas as pd

    w = wf.windows
    out = pd.DataFrame({
        "IS": [f"{a:%Y-%m-%d} .. {b:%Y-%m-%d}" for a, b in zip(w["is_start"], w["is_end"])],
        "OOS": [f"{a:%Y-%m-%d} .. {b:%Y-%m-%d}" + (" (partial)" if p else "")
                for a, b, p in zip(w["oos_start"], w["oos_end"], w["partial"])],
        "combo": w["combo"].astype(object).where(w["combo"].notna(), "stand aside"),
    }, index=pd.Index(w["window"], name="window"))
    for p in params:
        if p in w.columns:
            out[p] = w[p].to_numpy()
    for c, label in (("is_objective", "IS objective"), ("oos_objective", "OOS objective"), ("is_sharpe", "IS Sharpe"),
                     ("oos_sharpe", "OOS Sharpe")):
        out[label] = [_objective_text(v) for v in w[c]]
    out["OOS net $"] = [f"{v:,.0f}" for v in w["oos_net_pnl"]]
    return out


def _objective_text(v: float) -> str:
    """A window's objective or Sharpe: "+1.23", "-" (undefined) or "no losses" (a profit factor without a losing trade)."""
    if v is None or v != v:
        return "-"
    return "no losses" if v == float("inf") else f"{v:+.2f}"


def checks_table(decision: Any) -> pd.DataFrame:
    """The promotion gate's checks: value, rule, pass/fail and the reason of a failure."""
    import pandas as pd

    rows = []
    for c in decision.checks:
        v = c.value
        rows.append({"check": c.name, "value": "-" if v is None or v != v else f"{v:.3g}",
                     "rule": f"{c.op} {c.threshold:g}", "passed": "yes" if c.passed else "NO", "reason": c.reason})
    return pd.DataFrame(rows)


def sweep_manifest_tables(ctx: SweepContext) -> dict[str, pd.DataFrame]:
    """Base parameters, grid specification and data files (sha256) of the sweep."""
    import pandas as pd

    m = ctx.result.meta
    base = m.get("base_params") or {}
    data = m.get("data") or []
    spec = m.get("grid") or {}
    grid = spec.get("values", spec) if isinstance(spec, dict) else {}
    if isinstance(spec, dict) and spec.get("sample_n"):
        grid = {**grid, "(random sample)": f"{spec['sample_n']} combinations, seed {spec.get('seed')}"}
    return {
        "base parameters": pd.DataFrame({"value": [str(v) for v in base.values()]},
                                        index=pd.Index(list(base.keys()), name="parameter")),
        "grid": pd.DataFrame({"values": [str(v) for v in grid.values()]},
                             index=pd.Index(list(grid.keys()), name="parameter")),
        "data": pd.DataFrame(data),
    }
