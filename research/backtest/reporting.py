"""Grouped summaries of a backtest (per year, per contract) for tables and the closing report."""

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
