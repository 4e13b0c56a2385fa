"""Backtest statistics from trades and the per-bar equity curve (daily ratios via vectorbt's returns accessor)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy.market.sessions import session_id

TRADING_DAYS = 252


def daily_equity(equity: pd.Series) -> pd.Series:
    """Account value at the last bar of each trading session (index: session date)."""
    if equity.empty:
        return equity
    sid = pd.DatetimeIndex(session_id(equity.index).astype("datetime64[ns]"))
    return equity.groupby(sid).last()


def daily_returns(daily: pd.Series, capital: float) -> pd.Series:
    """Daily P&L as a fraction of the initial capital.

    Fixed-size futures trading does not compound, and an account whose equity nears zero makes
    equity-relative returns meaningless; P&L / initial capital is the usual convention for a
    fixed number of contracts.
    """
    pnl = daily.diff()
    if len(daily):
        pnl.iloc[0] = daily.iloc[0] - capital
    return pnl / capital


def ratio_stats(rets: pd.Series) -> tuple[float, float]:
    """(Sharpe, Sortino) of daily returns, annualised with 252 trading days.

    Same definitions as vectorbt's returns accessor (Sharpe: mean / std(ddof=1); Sortino: mean /
    sqrt(mean(min(r, 0)^2))), computed here because importing vectorbt costs ~2.5 s (plotly) and
    the CLI needs only these two numbers; `tests/research/backtest/test_backtest.py` checks both against vectorbt.
    """
    r = np.asarray(rets, dtype=np.float64)
    if len(r) < 2 or not np.isfinite(r).all():
        return float("nan"), float("nan")
    ann = np.sqrt(TRADING_DAYS)
    sd = r.std(ddof=1)
    downside = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2))
    sharpe = r.mean() / sd * ann if sd > 0 else float("nan")
    sortino = r.mean() / downside * ann if downside > 0 else float("nan")
    return float(sharpe), float(sortino)


def compute_stats(trades: pd.DataFrame, equity: pd.Series, position: pd.Series, capital: float) -> pd.Series:
    """The summary a trader reads first: P&L, hit rate, payoff, risk-adjusted return, drawdown, exposure."""
    pnl = trades["pnl_usd"].to_numpy() if len(trades) else np.zeros(0)
    r = trades["r_multiple"].to_numpy() if len(trades) else np.zeros(0)
    wins = pnl > 0
    gross_win = pnl[wins].sum()
    gross_loss = -pnl[pnl < 0].sum()
    daily = daily_equity(equity)
    sharpe, sortino = ratio_stats(daily_returns(daily, capital))
    eq = np.concatenate([[capital], equity.to_numpy()])
    peak = np.maximum.accumulate(eq)
    dd = eq - peak
    dd_pct = dd / peak
    n_days = max(len(daily), 1)
    return pd.Series({
        "net_pnl_usd": float(pnl.sum()),
        "trades": int(len(pnl)),
        "win_rate": float(wins.mean()) if len(pnl) else float("nan"),
        "profit_factor": float(gross_win / gross_loss) if gross_loss > 0 else (float("inf") if gross_win > 0 else float("nan")),
        "expectancy_usd": float(pnl.mean()) if len(pnl) else float("nan"),
        "expectancy_r": float(r.mean()) if len(r) else float("nan"),
        "avg_win_r": float(r[wins].mean()) if wins.any() else float("nan"),
        "avg_loss_r": float(r[~wins].mean()) if (~wins).any() else float("nan"),
        "sharpe_daily": sharpe,
        "sortino_daily": sortino,
        "max_drawdown_usd": float(-dd.min()),
        "max_drawdown_pct": float(-dd_pct.min()),
        "exposure": float((position.to_numpy() != 0).mean()) if len(position) else 0.0,
        "trades_per_day": float(len(pnl) / n_days),
        "sessions": int(len(daily)),
        "commissions_usd": float(trades["commission_usd"].sum()) if len(trades) else 0.0,
        "final_equity_usd": float(eq[-1]),
    })
