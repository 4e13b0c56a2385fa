"""`run(bars, params) -> BacktestResult`: signals, the trade simulator, trades with their snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from strategy import Params, compute_signals
from strategy.market.clock import ET, RTH_OPEN_MIN
from strategy.market.instruments import get_spec
from strategy.market.sessions import session_id
from strategy.signals import bar_duration_ns, resolve_tick_size, time_inputs, to_ticks

from . import simulator as S
from .sanity import check_against_data
from .stats import compute_stats


@dataclass
class BacktestResult:
    """Trades (one row per trade, snapshot fields included), equity and analytics of one backtest."""

    params: Params
    symbol: str
    trades: pd.DataFrame
    equity: pd.Series  # account value ($) at each in-session bar close
    position: pd.Series  # signed contracts held at each in-session bar close
    signals: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    _portfolio_inputs: dict[str, Any] = field(default_factory=dict, repr=False)

    @cached_property
    def portfolio(self):
        """The trades as a `vbt.Portfolio` (built on first access)."""
        from .portfolio import build_portfolio

        return build_portfolio(**self._portfolio_inputs)

    def stats(self) -> pd.Series:
        """Net P&L, trades, win rate, profit factor, expectancy, Sharpe/Sortino (daily), drawdown, exposure."""
        return compute_stats(self.trades, self.equity, self.position, self.params.initial_capital_usd)

    def fill_audit(self) -> pd.DataFrame:
        """Per trade: the intrabar assumptions its outcome rests on and the optimistic P&L next to the default."""
        cols = ["side", "entry_time", "exit_time", "exit_reason", "intrabar_ambiguous", "same_bar_exit",
                "gap_through_stop", "pnl_usd", "pnl_usd_optimistic"]
        out = self.trades[cols].copy()
        out["assumption_matters"] = out["pnl_usd"] != out["pnl_usd_optimistic"]
        return out

    def snapshots(self) -> pd.DataFrame:
        """The trades as validated trade-snapshot records (`research.store.snapshots`)."""
        from research.store.snapshots import validate

        return validate(self.trades, extra="drop")


def session_keys(index: pd.DatetimeIndex) -> np.ndarray:
    """Trading date of each bar as int64 days since the epoch (the simulator's session key)."""
    return session_id(index).astype("datetime64[D]").astype(np.int64)


def sim_vector(params: Params, tick_value: float, commission: float, margin_per_contract: float = 0.0) -> np.ndarray:
    """The simulator's parameter vector (``margin_per_contract``: $ the account must hold per contract
    to open a trade; 0 stops trading only when equity reaches 0; negative: no floor)."""
    q = np.zeros(S.N_Q)
    q[S.Q_STOP] = params.stop_ticks
    q[S.Q_TARGET] = params.target_ticks
    q[S.Q_TIME] = params.time_stop_bars
    q[S.Q_SLIP] = params.slippage_ticks
    q[S.Q_CONTRACTS] = params.contracts
    q[S.Q_TICK_VALUE] = tick_value
    q[S.Q_COMMISSION] = commission
    q[S.Q_MAX_TRADES] = params.max_trades_per_day
    q[S.Q_LOSS_LIMIT] = params.daily_loss_limit_usd
    q[S.Q_FLAT_MIN] = params.minutes("flat_at_et")
    q[S.Q_CAPITAL] = params.initial_capital_usd
    q[S.Q_MARGIN] = margin_per_contract
    return q


def run(bars: pd.DataFrame, params: Params | None = None, *, signals: pd.DataFrame | None = None,
        run_id: str = "", tick_size: float | None = None, margin_floor: bool = True) -> BacktestResult:
    """Backtest `params` on `bars` (canonical frame; a continuous frame trades its real contract prices).

    `signals` may be passed when already computed with the same params (sweeps reuse them).
    ``margin_floor=False`` keeps trading whatever the equity: the trades are then signal outcomes,
    not an account's (the ML data set labels every signal the method would take).
    """
    params = params or Params()
    sig = signals if signals is not None else compute_signals(bars, params, tick_size=tick_size)
    if len(sig) != len(bars) or not sig.index.equals(bars.index):
        raise ValueError("signals are not aligned with bars")
    if sig.attrs.get("signal_hash") != params.signal_hash():
        raise ValueError(f"signals were computed with signal parameters {sig.attrs.get('signal_hash')}, "
                         f"not {params.signal_hash()}")
    sym = str(bars.attrs.get("symbol") or bars.attrs.get("root") or "ES")
    spec = get_spec(bars.attrs.get("root") or sym)
    tick = resolve_tick_size(bars, tick_size)
    tick_value = tick * spec.point_value
    commission = spec.commission_per_side if params.commission_per_side_usd is None else params.commission_per_side_usd
    bar_ns = bar_duration_ns(bars, None)

    ins = sig["in_session"].to_numpy()
    sub = bars.loc[ins]
    ssig = sig.loc[ins]
    idx = sub.index
    n = len(sub)
    o = to_ticks(sub["open"].to_numpy(np.float64), tick, "open", idx)
    h = to_ticks(sub["high"].to_numpy(np.float64), tick, "high", idx)
    l = to_ticks(sub["low"].to_numpy(np.float64), tick, "low", idx)
    c = to_ticks(sub["close"].to_numpy(np.float64), tick, "close", idx)
    sess = session_keys(idx)
    last = np.ones(n, bool)
    if n > 1:
        brk = sess[1:] != sess[:-1]
        if "contract" in sub.columns:  # never hold a position across a roll
            con = sub["contract"].astype(str).to_numpy()
            brk |= con[1:] != con[:-1]
        last[:-1] = brk
    check_against_data(params, spec, h, l, last, idx)  # a stop no session can reach, a size beyond the instrument's
    _, _, close_min, weekday = time_inputs(idx, bar_ns)  # as the signal kernel derives them

    def b(col: str) -> np.ndarray:
        return ssig[col].to_numpy(np.bool_)

    cap = int(b("long_entry").sum() + b("short_entry").sum()) + 1
    ti = np.zeros((cap, S.N_T), np.int64)
    tf = np.zeros((cap, S.N_TF), np.float64)
    equity = np.empty(n)
    position = np.empty(n, np.int64)
    q = sim_vector(params, tick_value, commission, spec.margin_per_contract if margin_floor else -1.0)
    halt = np.full(1, -1, np.int64)
    nt = S.simulate(q, o, h, l, c, sess, close_min, last, b("long_entry"), b("short_entry"), b("long_candidate"),
                    b("short_candidate"), b("bull_violation"), b("bear_violation"), ti, tf, equity, position, halt)
    ti, tf = ti[:nt], tf[:nt]
    trades = _trade_frame(ti, tf, idx, ssig, sub, params, tick, bar_ns, close_min, weekday, sym, run_id,
                          commission, sig.attrs.get("order_flow_mode") == "bidask")
    return BacktestResult(
        params=params, symbol=sym, trades=trades,
        equity=pd.Series(equity, index=idx, name="equity"),
        position=pd.Series(position, index=idx, name="position"),
        signals=sig,
        meta=dict(tick_size=tick, tick_value=tick_value, commission_per_side=commission, bar_ns=bar_ns,
                  order_flow_mode=sig.attrs.get("order_flow_mode"), bars=len(bars), session_bars=n,
                  synthetic=bool(bars.attrs.get("synthetic", False)),
                  margin_floor=margin_floor, margin_per_contract=spec.margin_per_contract,
                  margin_usd=spec.margin_per_contract * params.contracts if margin_floor else None,
                  trading_stopped=_trading_stopped(halt[0], idx, equity, bar_ns)),
        _portfolio_inputs=dict(index=idx, close=c, trades_i=ti, tick_size=tick, tick_value=tick_value,
                               contracts=params.contracts, commission_per_side=commission,
                               initial_capital=params.initial_capital_usd, bar_ns=bar_ns),
    )


def _trading_stopped(j: int, idx: pd.DatetimeIndex, equity: np.ndarray, bar_ns: int) -> dict | None:
    """When and at what equity the margin rule stopped trading (None: it never did)."""
    if j < 0:
        return None
    return {"time": (idx[j] + pd.Timedelta(bar_ns, "ns")).tz_convert(ET).isoformat(), "equity_usd": float(equity[j])}


def _trade_frame(ti, tf, idx, ssig, sub, params, tick, bar_ns, close_min, weekday, sym, run_id, commission,
                 order_flow) -> pd.DataFrame:
    nt = len(ti)
    sig_i = ti[:, S.T_SIG]
    ent_i = ti[:, S.T_ENTRY_IDX]
    ex_i = ti[:, S.T_EXIT_IDX]
    phase = ti[:, S.T_EXIT_PHASE]
    side = ti[:, S.T_SIDE]
    bar_td = pd.Timedelta(bar_ns, "ns")
    exit_time = idx[ex_i] + pd.to_timedelta(np.where(phase == S.PH_OPEN, 0, bar_ns), "ns")
    pnl_ticks = (side * (ti[:, S.T_EXIT_PX] - ti[:, S.T_ENTRY_PX])).astype(np.float64)
    s = ssig.iloc[sig_i]
    balls = ssig["ball"].to_numpy()

    def lag(k: int) -> np.ndarray:
        j = sig_i - k
        return np.where(j >= 0, balls[np.maximum(j, 0)], 0).astype(np.int8)

    ref_lo = s["ref_lo"].to_numpy()
    ref_hi = s["ref_hi"].to_numpy()
    sig_close = sub["close"].to_numpy()[sig_i]
    age = s["ref_age_bars"].to_numpy()
    contract = sub["contract"].astype(str).to_numpy()[sig_i] if "contract" in sub.columns else np.full(nt, sym)
    trade_ids = [f"{run_id or 'bt'}-{k:06d}" for k in range(nt)]
    df = pd.DataFrame({
        "run_id": run_id,
        "trade_id": trade_ids,
        "symbol": sym,
        "contract": contract,
        "mode": params.mode,
        "session": params.session,
        "side": side.astype(np.int8),
        "signal_ts": idx[sig_i],
        "signal_time": idx[sig_i] + bar_td,  # the decision is made at the signal bar's close
        "entry_ts": idx[ent_i],
        "exit_ts": exit_time,
        "delta": s["delta"].to_numpy(),
        "ball": s["ball"].to_numpy().astype(np.int8),
        "ball_lag1": lag(1), "ball_lag2": lag(2), "ball_lag3": lag(3), "ball_lag4": lag(4),
        "battle": s["battle"].to_numpy(),
        "bn_score": s["bn_score"].to_numpy(),
        "status": s["status"].astype(str).to_numpy(),
        "confidence": s["confidence"].to_numpy(),
        "tc": s["tc"].to_numpy(),
        "ref_side": s["ref_side"].to_numpy().astype(np.int8),
        "q_ref": s["q_ref"].to_numpy(),
        "bull_intact": s["bull_intact"].to_numpy(),
        "bear_intact": s["bear_intact"].to_numpy(),
        "base_width_ticks": (ref_hi - ref_lo) / tick,
        "base_age_bars": pd.array(np.where(age >= 0, age, 0).astype(np.int32), dtype="Int32", copy=True),
        "dist_base_hi_ticks": (sig_close - ref_hi) / tick,
        "dist_base_lo_ticks": (sig_close - ref_lo) / tick,
        "pattern": s["pattern"].to_numpy(),
        "ldu": s["ldu"].to_numpy(), "lud": s["lud"].to_numpy(), "cds": s["cds"].to_numpy(),
        "atr14_ticks": s["atr14_ticks"].to_numpy(),
        "rel_volume": s["rel_volume"].to_numpy(),
        "ret5_ticks": s["ret5_ticks"].to_numpy(),
        "ret15_ticks": s["ret15_ticks"].to_numpy(),
        "minutes_since_open": (close_min[sig_i] - RTH_OPEN_MIN).astype(np.float64),
        "weekday": weekday[sig_i].astype(np.int8),
        "vix_regime": pd.array([None] * nt, dtype="string"),
        "order_flow": order_flow,
        "entry_price": ti[:, S.T_ENTRY_PX] * tick,
        "stop_price": ti[:, S.T_STOP_PX] * tick,
        "target_price": ti[:, S.T_TARGET_PX] * tick,
        "slippage_ticks": (ti[:, S.T_ENTRY_SLIP] + ti[:, S.T_EXIT_SLIP]).astype(np.float64),
        "contracts": np.full(nt, params.contracts, np.int32),
        "commission_usd": tf[:, S.TF_COMMISSION],
        "exit_price": ti[:, S.T_EXIT_PX] * tick,
        "exit_reason": np.asarray(S.REASONS, dtype=object)[ti[:, S.T_REASON]] if nt else np.array([], object),
        "pnl_ticks": pnl_ticks,
        "pnl_usd": tf[:, S.TF_PNL],
        "r_multiple": pnl_ticks / params.stop_ticks,
        "mfe_ticks": ti[:, S.T_MFE].astype(np.float64),
        "mae_ticks": ti[:, S.T_MAE].astype(np.float64),
        "bars_held": (ex_i - ent_i + np.where(phase == S.PH_OPEN, 0, 1)).astype(np.int32),
        "intrabar_ambiguous": ti[:, S.T_AMBIG].astype(bool),
        "same_bar_exit": ti[:, S.T_SAME_BAR].astype(bool),
        "gap_through_stop": ti[:, S.T_GAP].astype(bool),
        "pnl_usd_optimistic": tf[:, S.TF_PNL_OPT],
    })
    df.loc[age < 0, "base_age_bars"] = pd.NA
    df.insert(df.columns.get_loc("signal_ts"), "signal_bar", sig_i)
    # friendly aliases the issue names (same values): entry_time / exit_time
    df["entry_time"] = df["entry_ts"]
    df["exit_time"] = df["exit_ts"]
    return df
