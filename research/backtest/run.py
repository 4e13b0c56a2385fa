"""`run(bars, params) -> BacktestResult`: signals, the trade simulator, trades with their snapshots."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np
import pandas as pd

from research.store.trade_records import signal_context, trade_frame
from strategy import Params, compute_signals
from strategy.market.clock import ET
from strategy.market.instruments import get_spec
from strategy.market.sessions import session_id
from strategy.signals import bar_duration_ns, resolve_tick_size, time_inputs, to_ticks
from strategy.trade_engine import engine_vector

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


def calendar_arrays(index: pd.DatetimeIndex) -> tuple[np.ndarray, np.ndarray]:
    """Per bar: its trading date's scheduled close (minutes ET; NaN: none) and whether the date has a
    cash session (no entry on holidays), from the CME calendar (`strategy.market.calendar`)."""
    from strategy.market.calendar import session_close_minutes, trading_day_ok

    keys = session_keys(index)
    days, inv = np.unique(keys, return_inverse=True)
    return (np.asarray(session_close_minutes(days), np.float64)[inv],
            np.asarray(trading_day_ok(days), np.bool_)[inv])


def contract_ends(n: int, contract: np.ndarray | None) -> np.ndarray:
    """The rules' ``last`` flags: the last bar of each contract (no position is held across a roll)
    and the last bar of the data."""
    last = np.zeros(n, bool)
    if n:
        last[-1] = True
    if contract is not None and n > 1:
        last[:-1] = contract[1:] != contract[:-1]
    return last


def sim_vector(params: Params, tick_value: float, commission: float, margin_per_contract: float = 0.0) -> np.ndarray:
    """The rules' parameter vector (``margin_per_contract``: $ the account must hold per contract
    to open a trade; 0 stops trading only when equity reaches 0; negative: no floor)."""
    return engine_vector(params, tick_value=tick_value, commission_per_side=commission,
                         margin_per_contract=margin_per_contract)


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
    con = sub["contract"].astype(str).to_numpy() if "contract" in sub.columns else None
    last = contract_ends(n, con)
    sess_end = last.copy()  # sessions for the data check: a session ends where the date or the contract changes
    if n > 1:
        sess_end[:-1] |= sess[1:] != sess[:-1]
    check_against_data(params, spec, h, l, sess_end, idx)  # a stop no session can reach, a size beyond the instrument's
    _, _, close_min, weekday = time_inputs(idx, bar_ns)  # as the signal kernel derives them
    sess_close, day_ok = calendar_arrays(idx)

    def b(col: str) -> np.ndarray:
        return ssig[col].to_numpy(np.bool_)

    cap = int(b("long_entry").sum() + b("short_entry").sum()) + 1
    ti = np.zeros((cap, S.N_T), np.int64)
    tf = np.zeros((cap, S.N_TF), np.float64)
    equity = np.empty(n)
    position = np.empty(n, np.int64)
    q = sim_vector(params, tick_value, commission, spec.margin_per_contract if margin_floor else -1.0)
    halt = np.full(2, -1, np.int64)
    nt = S.simulate(q, idx.as_unit("ns").asi8, o, h, l, c, sess, close_min, sess_close, day_ok, last, b("long_entry"),
                    b("short_entry"), b("long_candidate"), b("short_candidate"), b("bull_violation"),
                    b("bear_violation"), ti, tf, equity, position, halt)
    ti, tf = ti[:nt], tf[:nt]
    ctx = signal_context(ssig, sub, ti[:, S.T_SIG], close_min, weekday, sym)
    trades = trade_frame(ti, tf, ctx, params=params, tick=tick, bar_ns=bar_ns, symbol=sym, run_id=run_id,
                         order_flow=sig.attrs.get("order_flow_mode") == "bidask")
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
                  trading_stopped=_trading_stopped(halt, idx, equity, bar_ns)),
        _portfolio_inputs=dict(index=idx, close=c, trades_i=ti, tick_size=tick, tick_value=tick_value,
                               contracts=params.contracts, commission_per_side=commission,
                               initial_capital=params.initial_capital_usd, bar_ns=bar_ns),
    )


def _trading_stopped(halt: np.ndarray, idx: pd.DatetimeIndex, equity: np.ndarray, bar_ns: int) -> dict | None:
    """When, why (margin / drawdown) and at what equity trading stopped for good (None: it never did)."""
    j = int(halt[0])
    if j < 0:
        return None
    return {"time": (idx[j] + pd.Timedelta(bar_ns, "ns")).tz_convert(ET).isoformat(), "equity_usd": float(equity[j]),
            "reason": S.HALT_NAMES[int(halt[1])]}


