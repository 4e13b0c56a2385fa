"""The batch trade simulator: `strategy.trade_rules.simulate` (the trade rules live beside the signal
kernel, METHOD.md 7.6-7.7, so the live trade engine runs the same code). This module keeps the
names the research half reads (record columns, reasons, phases, the parameter vector layout).

Why hand-written rather than vectorbt's `from_signals`: it has no "stop wins when stop and target
share a bar" rule on OHLC, no next-open exits triggered by a close-based rule, no per-day trade/loss
limits and no intrabar-assumption audit. The rules produce the orders; vectorbt then rebuilds the
portfolio from them (`research.backtest.portfolio`) and a test checks both agree to the cent.
"""

from __future__ import annotations

from strategy.trade_rules import (  # noqa: F401
    HALT_NAMES,
    N_Q,
    N_T,
    N_TF,
    PH_CLOSE,
    PH_INTRABAR,
    PH_OPEN,
    Q_CAPITAL,
    Q_COMMISSION,
    Q_CONTRACTS,
    Q_FLAT_MIN,
    Q_LOSS_LIMIT,
    Q_LOSS_STREAK,
    Q_MARGIN,
    Q_MAX_DD,
    Q_MAX_TRADES,
    Q_PROFIT_TARGET,
    Q_SLIP,
    Q_STOP,
    Q_TARGET,
    Q_TICK_VALUE,
    Q_TIME,
    REASONS,
    T_AMBIG,
    T_ENTRY_IDX,
    T_ENTRY_PX,
    T_ENTRY_SLIP,
    T_ENTRY_TS,
    T_EXIT_IDX,
    T_EXIT_PHASE,
    T_EXIT_PX,
    T_EXIT_SLIP,
    T_EXIT_TS,
    T_GAP,
    T_MAE,
    T_MFE,
    T_OPT_EXIT_PX,
    T_REASON,
    T_SAME_BAR,
    T_SIDE,
    T_SIG,
    T_SIG_TS,
    T_STOP_PX,
    T_TARGET_PX,
    TF_COMMISSION,
    TF_PNL,
    TF_PNL_OPT,
    simulate,
)
