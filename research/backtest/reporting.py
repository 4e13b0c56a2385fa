"""Grouped summaries of a backtest (per year, per contract) for tables and the closing report, and
the sentences every command prints about a run (headline, margin floor)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy.market.clock import ET


def _max_dd(pnl: np.ndarray) -> float:
    """Max drawdown ($) of the cumulative closed-trade P&L (starting from 0)."""
    if not len(pnl):
        return 0.0
    cum = np.concatenate([[0.0], np.cumsum(pnl)])
    return float((np.maximum.accumulate(cum) - cum).max())


def per_group_table(result, by: str) -> pd.DataFrame:
    """Trades, win rate, net $, profit factor, average R and max drawdown ($, closed trades) per `by`
    (``"year"`` of the exit, ``"contract"``), with a ``total`` row."""
    tr = result.trades.sort_values("exit_ts")
    key = tr["exit_ts"].dt.tz_convert(ET).dt.year if by == "year" else tr[by]
    rows = {}
    for k, g in tr.groupby(key, sort=True):
        rows[k] = _row(g)
    rows["total"] = _row(tr)
    return pd.DataFrame.from_dict(rows, orient="index")


def _row(g: pd.DataFrame) -> dict:
    pnl = g["pnl_usd"].to_numpy()
    loss = -pnl[pnl < 0].sum()
    return {
        "trades": len(g),
        "win_rate": float((pnl > 0).mean()) if len(g) else np.nan,
        "net_pnl_usd": float(pnl.sum()),
        "profit_factor": float(pnl[pnl > 0].sum() / loss) if loss > 0 else np.nan,
        "avg_r": float(g["r_multiple"].mean()) if len(g) else np.nan,
        "max_drawdown_usd": _max_dd(pnl),
    }


def fmt_ratio(x: float) -> str:
    """A ratio with 2 decimals; '-' when undefined (NaN), 'inf' when there is no loss to divide by."""
    if x != x:
        return "-"
    return "inf" if x == float("inf") else f"{x:.2f}"


def summary_text(s: pd.Series) -> str:
    """The headline of ``BacktestResult.stats()``; says 'no trades' plainly instead of NaN rates and ratios."""
    if not s.trades:
        return (f"no trades in {int(s.sessions)} session(s): net $0; win rate, profit factor and expectancy "
                f"are undefined; final equity ${s.final_equity_usd:,.0f}")
    return (f"net ${s.net_pnl_usd:,.0f} on {int(s.trades)} trades ({s.trades_per_day:.2f}/day), win rate "
            f"{s.win_rate:.1%}, PF {fmt_ratio(s.profit_factor)}, expectancy {s.expectancy_r:+.3f} R / "
            f"${s.expectancy_usd:,.1f}, Sharpe {fmt_ratio(s.sharpe_daily)}, Sortino {fmt_ratio(s.sortino_daily)}, "
            f"max DD ${s.max_drawdown_usd:,.0f} ({s.max_drawdown_pct:.1%}), exposure {s.exposure:.1%}")


def margin_text(meta: dict, contracts: int, capital: float) -> str:
    """The margin floor a run used and, when it was hit, the day trading stopped and the equity then."""
    if meta.get("margin_floor") is False:
        return "margin floor off: signal outcomes, trades do not depend on the account's equity"
    need = float(meta.get("margin_usd") or 0.0)
    stop = meta.get("trading_stopped")
    if stop:
        return (f"trading stopped {stop['time'][:10]}: equity ${stop['equity_usd']:,.0f} below margin ${need:,.0f} "
                f"for {contracts} contract(s); no new entries after it")
    per = float(meta.get("margin_per_contract") or 0.0)
    return (f"margin ${per:,.0f}/contract (${need:,.0f} for {contracts}) on ${capital:,.0f} starting capital: "
            "never breached")
