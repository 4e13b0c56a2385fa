"""Rebuild the simulated trades as a vectorbt Portfolio (stats, drawdowns, plots from vectorbt).

vectorbt has no futures margin model: buying one ES contract at 4000 would need $200,000 of
cash. We therefore trade a synthetic "P&L price" that moves exactly like the future in dollars
per contract, ``F + (P - A) * point_value``, where the anchor ``A`` is the entry price of the
trade being held (constant while a position is open, free to change only while flat, so it never
creates P&L) and ``F`` is a constant that keeps the price positive. Cash P&L, fees, drawdowns
and returns on ``initial_capital`` are then those of the futures account; real prices are in
`BacktestResult.trades`.

The portfolio has one row per bar close plus one row per fill (entry at an open, exit at an
open, intrabar or at a close) so that several fills inside one bar stay separate orders.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import simulator as S


def build_portfolio(index: pd.DatetimeIndex, close: np.ndarray, trades_i: np.ndarray, tick_size: float,
                    tick_value: float, contracts: int, commission_per_side: float, initial_capital: float,
                    bar_ns: int, freq: str | None = None):
    """`vbt.Portfolio.from_orders` over the bar closes and the trades' fills (`close` in ticks)."""
    import vectorbt as vbt

    n = len(index)
    nt = len(trades_i)
    t_ns = index.as_unit("ns").asi8
    # rows: bar marks (phase 4) + entries (phase 1) + exits (their phase); sorted by (bar, phase)
    mark_bar = np.arange(n)
    ent_bar = trades_i[:, S.T_ENTRY_IDX]
    ex_bar = trades_i[:, S.T_EXIT_IDX]
    ex_phase = trades_i[:, S.T_EXIT_PHASE]
    bar = np.concatenate([mark_bar, ent_bar, ex_bar])
    phase = np.concatenate([np.full(n, 4), np.full(nt, 1), ex_phase])
    order = np.lexsort((phase, bar))
    bar, phase = bar[order], phase[order]
    kind = np.concatenate([np.zeros(n, np.int8), np.ones(nt, np.int8), np.full(nt, 2, np.int8)])[order]
    tix = np.concatenate([np.full(n, -1), np.arange(nt), np.arange(nt)])[order]

    # the trade held at each bar close (-1 when flat)
    held = np.full(n, -1)
    for k in range(nt):
        a, b = ent_bar[k], ex_bar[k]
        end = b if ex_phase[k] in (S.PH_INTRABAR, S.PH_CLOSE) else b - 1  # exits before this bar's mark
        if end >= a:
            held[a:end + 1] = k
    entry_px = trades_i[:, S.T_ENTRY_PX] if nt else np.zeros(0, np.int64)
    exit_px = trades_i[:, S.T_EXIT_PX] if nt else np.zeros(0, np.int64)
    side = trades_i[:, S.T_SIDE] if nt else np.zeros(0, np.int64)
    rel = np.zeros(len(bar))  # price - anchor, in ticks
    is_mark = kind == 0
    h = held[bar[is_mark]]
    rel[is_mark] = np.where(h >= 0, close[bar[is_mark]] - entry_px[np.maximum(h, 0)], 0)
    is_exit = kind == 2
    rel[is_exit] = exit_px[tix[is_exit]] - entry_px[tix[is_exit]]
    moves = np.abs(rel).max() if len(rel) else 0.0
    f_const = (moves + 100) * tick_value  # keeps the synthetic price > 0
    price = f_const + rel * tick_value
    size = np.full(len(bar), np.nan)
    size[kind == 1] = side[tix[kind == 1]] * contracts
    size[is_exit] = -side[tix[is_exit]] * contracts
    fees = np.where(np.isnan(size), 0.0, commission_per_side * contracts)
    # unique, ordered timestamps: bar start + phase ns (marks at the bar's close)
    ts = t_ns[bar] + np.where(phase == 4, bar_ns - 1, phase)
    idx = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC")
    if f_const * contracts > initial_capital:
        raise ValueError(f"initial capital {initial_capital} is too small for the synthetic valuation ({f_const * contracts:.0f})")
    return vbt.Portfolio.from_orders(
        close=pd.Series(price, index=idx), size=size, size_type="amount", direction="both",
        fixed_fees=fees, init_cash=initial_capital, freq=freq or pd.Timedelta(bar_ns, "ns"),
    )
