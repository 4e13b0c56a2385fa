"""Closed trades of the trade rules -> the trade-snapshot frame (METHOD.md 7.8), for backtests and
paper trading alike.

The rules give each trade as a record row (`strategy.trade_rules.T_*` int64, ``TF_*`` float64);
the entry context comes from the signal bar only (its signal columns, the four balls before it, its
close, contract, close minute and weekday). A backtest gathers the context with one vectorised
lookup (:func:`signal_context`); the live loop captures the same fields when it decides
(:func:`context_row`). Both then call :func:`trade_frame`, so a paper trade and a backtest trade
are the same record.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from strategy import trade_rules as R
from strategy.market.clock import RTH_OPEN_MIN
from strategy.params import Params

__all__ = ["CONTEXT_SIGNAL_COLUMNS", "CONTEXT_COLUMNS", "signal_context", "context_row", "trade_frame"]

# signal columns copied from the signal bar
CONTEXT_SIGNAL_COLUMNS = ("delta", "ball", "battle", "bn_score", "status", "confidence", "tc", "ref_side", "q_ref",
                          "bull_intact", "bear_intact", "ref_lo", "ref_hi", "ref_age_bars", "pattern", "ldu", "lud",
                          "cds", "atr14_ticks", "rel_volume", "ret5_ticks", "ret15_ticks")
CONTEXT_COLUMNS = CONTEXT_SIGNAL_COLUMNS + ("ball_lag1", "ball_lag2", "ball_lag3", "ball_lag4", "sig_close",
                                            "contract", "close_min", "weekday")


def signal_context(ssig: pd.DataFrame, sub: pd.DataFrame, sig_i: np.ndarray, close_min: np.ndarray,
                   weekday: np.ndarray, symbol: str) -> pd.DataFrame:
    """Context of each trade from the in-session signal frame `ssig` / bars `sub` at rows `sig_i`."""
    s = ssig.iloc[sig_i]
    balls = ssig["ball"].to_numpy()

    def lag(k: int) -> np.ndarray:
        j = sig_i - k
        return np.where(j >= 0, balls[np.maximum(j, 0)], 0).astype(np.int8)

    ctx = {c: s[c].to_numpy() for c in CONTEXT_SIGNAL_COLUMNS}
    ctx["status"] = s["status"].astype(str).to_numpy()
    for k in range(1, 5):
        ctx[f"ball_lag{k}"] = lag(k)
    ctx["sig_close"] = sub["close"].to_numpy()[sig_i]
    ctx["contract"] = (sub["contract"].astype(str).to_numpy()[sig_i] if "contract" in sub.columns
                       else np.full(len(sig_i), symbol, dtype=object))
    ctx["close_min"] = close_min[sig_i]
    ctx["weekday"] = weekday[sig_i]
    return pd.DataFrame(ctx)


def context_row(signal: Any, last_balls: tuple[int, int, int, int], close: float, contract: str, close_min: int,
                weekday: int) -> dict[str, Any]:
    """One trade's context at its signal bar's close, for the live loop: `signal` reads like a
    mapping (`strategy.engine.SignalRow`), `last_balls` are the balls of the 1st..4th bars before it
    (0 where there is none)."""
    row = {c: signal[c] for c in CONTEXT_SIGNAL_COLUMNS}
    row["ref_age_bars"] = int(row["ref_age_bars"])
    row["status"] = str(row["status"])
    for k in range(4):
        row[f"ball_lag{k + 1}"] = int(last_balls[k])
    row.update(sig_close=float(close), contract=str(contract), close_min=int(close_min), weekday=int(weekday))
    return row


def trade_frame(ti: np.ndarray, tf: np.ndarray, ctx: pd.DataFrame, *, params: Params, tick: float, bar_ns: int,
                symbol: str, run_id: str, order_flow: bool, first_trade: int = 0) -> pd.DataFrame:
    """The trade-snapshot frame of record rows `ti`/`tf` with their contexts `ctx` (one row each).

    ``first_trade``: number of the first row in its run (trade ids ``RUN-000000``, ...)."""
    nt = len(ti)
    sig_i = ti[:, R.T_SIG]
    ent_i = ti[:, R.T_ENTRY_IDX]
    ex_i = ti[:, R.T_EXIT_IDX]
    phase = ti[:, R.T_EXIT_PHASE]
    side = ti[:, R.T_SIDE]
    bar_td = pd.Timedelta(bar_ns, "ns")

    def times(col: int) -> pd.DatetimeIndex:
        return pd.DatetimeIndex(ti[:, col].astype("datetime64[ns]"), tz="UTC")

    signal_ts = times(R.T_SIG_TS)
    exit_time = times(R.T_EXIT_TS) + pd.to_timedelta(np.where(phase == R.PH_OPEN, 0, bar_ns), "ns")
    pnl_ticks = (side * (ti[:, R.T_EXIT_PX] - ti[:, R.T_ENTRY_PX])).astype(np.float64)
    ref_lo = ctx["ref_lo"].to_numpy(np.float64)
    ref_hi = ctx["ref_hi"].to_numpy(np.float64)
    sig_close = ctx["sig_close"].to_numpy(np.float64)
    age = ctx["ref_age_bars"].to_numpy(np.int64)
    trade_ids = [f"{run_id or 'bt'}-{k:06d}" for k in range(first_trade, first_trade + nt)]

    def col(name: str, dtype: Any = None) -> np.ndarray:
        return ctx[name].to_numpy(dtype) if dtype is not None else ctx[name].to_numpy()

    df = pd.DataFrame({
        "run_id": run_id,
        "trade_id": trade_ids,
        "symbol": symbol,
        "contract": col("contract").astype(str).astype(object),
        "mode": params.mode,
        "session": params.session,
        "side": side.astype(np.int8),
        "signal_ts": signal_ts,
        "signal_time": signal_ts + bar_td,  # the decision is made at the signal bar's close
        "entry_ts": times(R.T_ENTRY_TS),
        "exit_ts": exit_time,
        "delta": col("delta", np.float64),
        "ball": col("ball").astype(np.int8),
        "ball_lag1": col("ball_lag1").astype(np.int8), "ball_lag2": col("ball_lag2").astype(np.int8),
        "ball_lag3": col("ball_lag3").astype(np.int8), "ball_lag4": col("ball_lag4").astype(np.int8),
        "battle": col("battle", np.float64),
        "bn_score": col("bn_score", np.float64),
        "status": col("status").astype(str).astype(object),
        "confidence": col("confidence", np.float64),
        "tc": col("tc", np.float64),
        "ref_side": col("ref_side").astype(np.int8),
        "q_ref": col("q_ref", np.float64),
        "bull_intact": col("bull_intact").astype(bool),
        "bear_intact": col("bear_intact").astype(bool),
        "base_width_ticks": (ref_hi - ref_lo) / tick,
        "base_age_bars": pd.array(np.where(age >= 0, age, 0).astype(np.int32), dtype="Int32", copy=True),
        "dist_base_hi_ticks": (sig_close - ref_hi) / tick,
        "dist_base_lo_ticks": (sig_close - ref_lo) / tick,
        "pattern": col("pattern"),
        "ldu": col("ldu").astype(bool), "lud": col("lud").astype(bool), "cds": col("cds").astype(bool),
        "atr14_ticks": col("atr14_ticks", np.float64),
        "rel_volume": col("rel_volume", np.float64),
        "ret5_ticks": col("ret5_ticks", np.float64),
        "ret15_ticks": col("ret15_ticks", np.float64),
        "minutes_since_open": (col("close_min", np.int64) - RTH_OPEN_MIN).astype(np.float64),
        "weekday": col("weekday").astype(np.int8),
        "vix_regime": pd.array([None] * nt, dtype="string"),
        "order_flow": order_flow,
        "entry_price": ti[:, R.T_ENTRY_PX] * tick,
        "stop_price": ti[:, R.T_STOP_PX] * tick,
        "target_price": ti[:, R.T_TARGET_PX] * tick,
        "slippage_ticks": (ti[:, R.T_ENTRY_SLIP] + ti[:, R.T_EXIT_SLIP]).astype(np.float64),
        "contracts": np.full(nt, params.contracts, np.int32),
        "commission_usd": tf[:, R.TF_COMMISSION],
        "exit_price": ti[:, R.T_EXIT_PX] * tick,
        "exit_reason": np.asarray(R.REASONS, dtype=object)[ti[:, R.T_REASON]] if nt else np.array([], object),
        "pnl_ticks": pnl_ticks,
        "pnl_usd": tf[:, R.TF_PNL],
        "r_multiple": pnl_ticks / params.stop_ticks,
        "mfe_ticks": ti[:, R.T_MFE].astype(np.float64),
        "mae_ticks": ti[:, R.T_MAE].astype(np.float64),
        "bars_held": (ex_i - ent_i + np.where(phase == R.PH_OPEN, 0, 1)).astype(np.int32),
        "intrabar_ambiguous": ti[:, R.T_AMBIG].astype(bool),
        "same_bar_exit": ti[:, R.T_SAME_BAR].astype(bool),
        "gap_through_stop": ti[:, R.T_GAP].astype(bool),
        "pnl_usd_optimistic": tf[:, R.TF_PNL_OPT],
        # no filter: the live loop overwrites these four for a run with a signal-quality model
        "quality_p_win": np.full(nt, np.nan),
        "quality_threshold": np.full(nt, np.nan),
        "quality_taken": np.ones(nt, bool),
        "shadow": np.zeros(nt, bool),
    })
    df.loc[age < 0, "base_age_bars"] = pd.NA
    df.insert(df.columns.get_loc("signal_ts"), "signal_bar", sig_i)
    # friendly aliases (same values): entry_time / exit_time
    df["entry_time"] = df["entry_ts"]
    df["exit_time"] = df["exit_ts"]
    return df
