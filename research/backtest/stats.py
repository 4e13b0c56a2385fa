"""Backtest statistics from trades and the per-bar equity curve (daily ratios via vectorbt's returns accessor)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.sessions import session_id

TRADING_DAYS = 252


def daily_equity(equity: pd.Series) -> pd.Series:
    """Account value at the last bar of each trading session (index: session date)."""
    if equity.empty:
        return equity
    sid = pd.DatetimeIndex(session_id(equity.index).astype("datetime64[ns]"))
    return equity.groupby(sid).last()


def ratio_stats(daily_returns: pd.Series) -> tuple[float, float]:
    """(Sharpe, Sortino) of daily returns, annualised with 252 trading days (vectorbt)."""
    if len(daily_returns) < 2 or not np.isfinite(daily_returns).all():
        return float("nan"), float("nan")
    import vectorbt  # noqa: F401  (registers the .vbt accessor; heavy, so imported on use)

    acc = daily_returns.vbt.returns(freq="1D", year_freq=f"{TRADING_DAYS}D")
    return float(acc.sharpe_ratio()), float(acc.sortino_ratio())


def compute_stats(trades: pd.DataFrame, equity: pd.Series, position: pd.Series, capital: float) -> pd.Series:
    """The summary a trader reads first: P&L, hit rate, payoff, risk-adjusted return, drawdown, exposure."""
    pnl = trades["pnl_usd"].to_numpy() if len(trades) else np.zeros(0)
    r = trades["r_multiple"].to_numpy() if len(trades) else np.zeros(0)
    wins = pnl > 0
    gross_win = pnl[wins].sum()
    gross_loss = -pnl[pnl < 0].sum()
    daily = daily_equity(equity)
    rets = daily.pct_change()
    if len(daily):
        rets.iloc[0] = daily.iloc[0] / capital - 1.0
    sharpe, sortino = ratio_stats(rets)
    peak = np.maximum.accumulate(np.concatenate([[capital], equity.to_numpy()])) if len(equity) else np.array([capital])
    eq = np.concatenate([[capital], equity.to_numpy()])
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
