"""The trading modes of the method and their risk presets (METHOD.md "Modes and risk limits",
"Time filters"), plus the names of the other enumerated parameters.

Pure Python (no numpy): the command line reads these to build its choices without importing the
numerical stack.
"""

from __future__ import annotations

from typing import Any, Literal

__all__ = ["Mode", "MODES", "MODE_PRESETS", "SIGNAL_PROBABILITY_BY_MODE", "ORDER_FLOW_MODES", "SESSIONS"]

Mode = Literal["backtest", "data_collection", "paper", "live"]
MODES: tuple[str, ...] = ("backtest", "data_collection", "paper", "live")
ORDER_FLOW_MODES: tuple[str, ...] = ("auto", "bidask", "ohlcv")
SESSIONS: tuple[str, ...] = ("rth", "globex", "all")

# `backtest` uses the "class default" column; it has no row in the time-filter table, so it uses
# paper's windows. The account stops (profit target, drawdown, loss streak) are off in `backtest` (a
# research run measures the rules, not one account's path) and in `data_collection` ("only the
# daily loss limit halts"); paper and live take the stricter of the mode's max drawdown and the 3 %
# kill switch, and the 5-losses-in-a-row kill switch (METHOD.md "Modes and risk limits").
MODE_PRESETS: dict[str, dict[str, Any]] = {
    "backtest": dict(contracts=2, max_trades_per_day=999, daily_loss_limit_usd=500.0, min_base_quality=0.50,
                     golden_rule_strict=True, entry_start_et="09:35", entry_end_et="15:45",
                     daily_profit_target_usd=None, max_drawdown_pct=None, max_consecutive_losses=None),
    "data_collection": dict(contracts=1, max_trades_per_day=999, daily_loss_limit_usd=1000.0, min_base_quality=0.40,
                            golden_rule_strict=False, entry_start_et="09:31", entry_end_et="15:55",
                            daily_profit_target_usd=None, max_drawdown_pct=None, max_consecutive_losses=None),
    "paper": dict(contracts=1, max_trades_per_day=50, daily_loss_limit_usd=600.0, min_base_quality=0.60,
                  golden_rule_strict=True, entry_start_et="09:35", entry_end_et="15:45",
                  daily_profit_target_usd=1000.0, max_drawdown_pct=3.0, max_consecutive_losses=5),
    "live": dict(contracts=1, max_trades_per_day=30, daily_loss_limit_usd=600.0, min_base_quality=0.75,
                 golden_rule_strict=True, entry_start_et="09:40", entry_end_et="15:30",
                 daily_profit_target_usd=800.0, max_drawdown_pct=3.0, max_consecutive_losses=5),
}

# METHOD.md "min signal probability": the ML filter takes a trade when P(win) >= this (backtest: the class default).
SIGNAL_PROBABILITY_BY_MODE: dict[str, float] = {"backtest": 0.60, "data_collection": 0.55, "paper": 0.70, "live": 0.80}
