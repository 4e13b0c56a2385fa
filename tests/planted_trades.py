"""Planted trades: bar frames whose entry signals the test sets (not the signal kernel), run through the
batch trade rules (`strategy.trade_rules.simulate`, `research.backtest.run`) and through the live loop
(`live.trader.Trader` over a bar replay, the bar-mode paper broker and a journal in a temp folder).

A day is written as a pattern of 5-minute bars from a start time (ET), prices in ticks from P0 (ES):

- ``S`` a flat bar (o = c = 0, range 1 tick) with a long entry signal at its close;
- ``L`` a bar reaching 20 ticks down: a long entered at its open is stopped (-8 ticks with slippage);
- ``W`` a bar reaching 20 ticks up: a long entered at its open reaches its target (+14 ticks);
- ``.`` a flat bar, no signal.

With ES and 1 contract a loss is -104.50 $ and a win +170.50 $ (commission 2 x 2.25 $).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from barbuilder import ET, bar, frame

from strategy import Params, compute_signals
from strategy import trade_rules as R

FLAGS = ("long_entry", "short_entry", "long_candidate", "short_candidate", "bull_violation", "bear_violation")
BAR_NS = 300_000_000_000
LOSS_USD = -(8 * 12.5 + 4.5)
WIN_USD = 14 * 12.5 - 4.5
WARMUP_BARS = 30
PATTERN_BARS = {"S": bar(0), ".": bar(0), "L": bar(0, l=-20), "W": bar(0, h=20)}


def et_ts(day: str, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz=ET).tz_convert("UTC")


def planted(*days: tuple[str, str, str], warmup: bool = True) -> tuple[pd.DataFrame, np.ndarray]:
    """``(bar frame, long-entry flags)`` of ``(day, start HH:MM ET, pattern)`` blocks, in time order.

    ``warmup``: first WARMUP_BARS bars without signal from 09:30 on the weekday before the first block,
    so that the signal context of the planted trades (battle, scores) is past the kernel's warm-up."""
    bars, times, entries = [], [], []
    if warmup:
        prev = (pd.Timestamp(days[0][0]) - pd.offsets.BDay(1)).strftime("%Y-%m-%d")
        days = ((prev, "09:30", "." * (WARMUP_BARS - 1) + "L"),) + tuple(days)  # L: a range the stop can reach
    for day, start, pattern in days:
        t0 = et_ts(day, start)
        for k, ch in enumerate(pattern.replace(" ", "")):
            bars.append(PATTERN_BARS[ch])
            times.append(t0 + pd.Timedelta(minutes=5 * k))
            entries.append(ch == "S")
    idx = pd.DatetimeIndex(times)
    assert idx.is_monotonic_increasing and idx.is_unique
    return frame(bars, idx), np.array(entries, bool)


def et_times(ts: pd.Series | pd.DatetimeIndex) -> list[str]:
    """Times as "YYYY-MM-DD HH:MM" ET (to compare with the plan)."""
    return [t.tz_convert(ET).strftime("%Y-%m-%d %H:%M") for t in pd.DatetimeIndex(ts)]


# --------------------------------------------------------------------------------------- batch
def planted_signals(bars: pd.DataFrame, entries: np.ndarray, params: Params) -> pd.DataFrame:
    """The kernel's signal frame of `bars` with every flag replaced: long entries where planted, else none."""
    sig = compute_signals(bars, params)
    for f in FLAGS:
        sig[f] = False
    sig["long_entry"] = entries
    return sig


def backtest(bars: pd.DataFrame, entries: np.ndarray, params: Params, **kw):
    """`research.backtest.run` on `bars` with the planted entries."""
    from research.backtest import run

    return run(bars, params, signals=planted_signals(bars, entries, params), **kw)


# ---------------------------------------------------------------------------------- live loop
class PlantedRow:
    """A signal row whose six trade flags come from the plan (`on`: the flags set); every other field is
    the kernel's."""

    def __init__(self, row: Any, on: frozenset[str]) -> None:
        self._row = row
        self._on = on

    def __getitem__(self, name: str) -> Any:
        if name in FLAGS:
            return name in self._on
        return self._row[name]


NONE = frozenset()
LONG = frozenset({"long_entry"})
SHORT_REVERSAL = frozenset({"short_entry", "short_candidate"})  # a long exits (opposite) and a short enters


class PlantedSignals:
    """The real `SignalEngine` (state, persistence, context fields) with planted flags by bar time:
    long entries at `entry_times`, `more` maps other bar times to the flags set there."""

    def __init__(self, engine: Any, entry_times: set[int], more: dict[int, frozenset[str]] | None = None) -> None:
        self.engine = engine
        self.flags = {t: LONG for t in entry_times} | dict(more or {})

    def update_values(self, ts_ns: int, *args: Any, **kw: Any) -> PlantedRow:
        return PlantedRow(self.engine.update_values(ts_ns, *args, **kw), self.flags.get(ts_ns, NONE))

    def to_bytes(self) -> bytes:
        return self.engine.to_bytes()

    def load_bytes(self, data: bytes) -> None:
        self.engine.load_bytes(data)


def make_trader(bars: pd.DataFrame, params: Params, state_dir: Path, entries: np.ndarray | None = None, *,
                feed: Any = None, run_id: str = "risk-test", **cfg: Any):
    """A `Trader` over a replay of `bars` (resumed from a saved state) or `feed`, with the bar-mode paper
    broker and a journal in `state_dir`; with `entries`, its signals are planted. Not started."""
    from live import control
    from live.brokers.paper import PaperBroker
    from live.config import TraderConfig
    from live.feeds.replay import ReplayFeed
    from live.journal import Journal
    from live.trader import Trader

    state_dir.mkdir(parents=True, exist_ok=True)
    sym = str(bars.attrs["symbol"])
    conf = TraderConfig(params=params, symbol=sym, tick_size=0.25, point_value=50.0, commission_per_side=2.25,
                        margin_per_contract=12_000.0, broker_mode="bar", state_dir=state_dir, run_id=run_id,
                        unvalidated=True, **cfg)
    broker = PaperBroker(sym, tick_size=0.25, mode="bar", slippage_ticks=params.slippage_ticks,
                         book_path=state_dir / "paper_broker.sqlite")
    journal = Journal(control.journal_path(state_dir))

    def open_feed(resume: Any):
        return feed if feed is not None else ReplayFeed.from_frame(bars, resume=resume)

    trader = Trader(conf, open_feed, broker, journal, bar_ns=BAR_NS)
    if entries is not None:
        trader.sig = PlantedSignals(trader.sig, set(bars.index.as_unit("ns").asi8[entries].tolist()))
    return trader


def simulate(bars: pd.DataFrame, entries: np.ndarray, params: Params, *, margin: float = -1.0,
             day_ok: np.ndarray | None = None):
    """`strategy.trade_rules.simulate` on `bars` with the planted entries; ``margin`` per contract
    (negative: no margin floor). Returns ``(trades frame, equity, halt [bar, reason])``."""
    from research.backtest.run import calendar_arrays, contract_ends, session_keys
    from strategy.signals import time_inputs, to_ticks
    from strategy.trade_engine import engine_vector

    idx = bars.index
    n = len(bars)
    q = engine_vector(params, tick_value=12.5, commission_per_side=2.25, margin_per_contract=margin)
    o, h, l, c = (to_ticks(bars[k].to_numpy(np.float64), 0.25, k, idx) for k in ("open", "high", "low", "close"))
    _, _, close_min, _ = time_inputs(idx, BAR_NS)
    sess_close, ok = calendar_arrays(idx)
    no = np.zeros(n, bool)
    ti = np.zeros((n + 1, R.N_T), np.int64)
    tf = np.zeros((n + 1, R.N_TF))
    equity = np.zeros(n)
    position = np.zeros(n, np.int64)
    halt = np.full(2, -1, np.int64)
    nt = R.simulate(q, idx.as_unit("ns").asi8, o, h, l, c, session_keys(idx), close_min, sess_close,
                    ok if day_ok is None else day_ok, contract_ends(n, None), entries, no, no, no, no, no, ti, tf,
                    equity, position, halt)
    ti, tf = ti[:nt], tf[:nt]
    trades = pd.DataFrame({
        "signal_ts": pd.DatetimeIndex(ti[:, R.T_SIG_TS].astype("datetime64[ns]"), tz="UTC"),
        "entry_ts": pd.DatetimeIndex(ti[:, R.T_ENTRY_TS].astype("datetime64[ns]"), tz="UTC"),
        "exit_bar_ts": pd.DatetimeIndex(ti[:, R.T_EXIT_TS].astype("datetime64[ns]"), tz="UTC"),
        "exit_reason": [R.REASONS[k] for k in ti[:, R.T_REASON]],
        "pnl_usd": tf[:, R.TF_PNL],
    })
    return trades, equity, halt


# ------------------------------------------------------------------------------ the limit scenarios
# name -> (paper-mode overrides, day blocks, signal times (ET) of the trades taken, halt reason, day stop
# at the end of the first date). Days: Tue 2019-12-03 and Wed 2019-12-04, signals from 10:00 ET.
D1, D2 = "2019-12-03", "2019-12-04"


def signal_times(day: str, start: str, pattern: str, take: int) -> list[str]:
    """ET times of the first `take` signal bars of a pattern."""
    t0 = et_ts(day, start)
    got = [t0 + pd.Timedelta(minutes=5 * k) for k, ch in enumerate(pattern.replace(" ", "")) if ch == "S"]
    return et_times(got[:take])


SCENARIOS: dict[str, tuple[dict, list[tuple[str, str, str]], list[str], str, str]] = {
    # 5 losses in a row (paper's max_consecutive_losses) end the date's entries; the next date trades
    "loss_streak": ({}, [(D1, "10:00", "SL SL SL SL SL S. S."), (D2, "10:00", "SL")],
                    signal_times(D1, "10:00", "SL SL SL SL SL", 5) + signal_times(D2, "10:00", "S", 1), "",
                    "loss_streak"),
    # a win resets the streak: 4 losses, a win, 5 losses -> 10 trades, the 11th signal is refused
    "loss_streak_reset_by_win": (dict(daily_loss_limit_usd=5000.0),
                                 [(D1, "10:00", "SL SL SL SL SW SL SL SL SL SL S.")],
                                 signal_times(D1, "10:00", "SL SL SL SL SW SL SL SL SL SL", 10), "", "loss_streak"),
    # 3 % of 12 500 $ = 375 $: 3 losses (313.50 $) trade on, the 4th (418 $) stops trading for good
    "max_drawdown": (dict(initial_capital_usd=12_500.0), [(D1, "10:00", "SL SL SL SL S. S."), (D2, "10:00", "SL")],
                     signal_times(D1, "10:00", "SL SL SL SL", 4), "drawdown", ""),
    # the margin floor (12 000 $ a contract): 12 300 $ - 3 losses = 11 986.50 $ < 12 000 $
    "margin_floor": (dict(initial_capital_usd=12_300.0, max_drawdown_pct=None),
                     [(D1, "10:00", "SL SL SL S."), (D2, "10:00", "SL")],
                     signal_times(D1, "10:00", "SL SL SL", 3), "margin", ""),
    # the daily loss limit is reached (<=) at 2 losses = -209 $
    "daily_loss_limit": (dict(daily_loss_limit_usd=209.0), [(D1, "10:00", "SL SL S. S."), (D2, "10:00", "SL")],
                         signal_times(D1, "10:00", "SL SL", 2) + signal_times(D2, "10:00", "S", 1), "",
                         "daily_loss_limit"),
    # ... and not before: a limit 1 cent higher lets the 3rd trade go
    "daily_loss_limit_not_reached": (dict(daily_loss_limit_usd=209.01), [(D1, "10:00", "SL SL SL S.")],
                                     signal_times(D1, "10:00", "SL SL SL", 3), "", "daily_loss_limit"),
    # paper's daily profit target (1 000 $): 5 wins (852.50 $) trade on, the 6th (1 023 $) ends the date
    "daily_profit_target": ({}, [(D1, "10:00", "SW SW SW SW SW SW S. S."), (D2, "10:00", "SW")],
                            signal_times(D1, "10:00", "SW SW SW SW SW SW", 6) + signal_times(D2, "10:00", "S", 1),
                            "", "daily_profit_target"),
    # max trades per day
    "max_trades": (dict(max_trades_per_day=3), [(D1, "10:00", "SW SL SW S. S."), (D2, "10:00", "SW")],
                   signal_times(D1, "10:00", "SW SL SW", 3) + signal_times(D2, "10:00", "S", 1), "", "max_trades"),
}


def scenario(name: str) -> tuple[Params, pd.DataFrame, np.ndarray, list[str], str, str]:
    over, blocks, want, halt, day_stop = SCENARIOS[name]
    bars, entries = planted(*blocks)
    return Params.for_mode("paper", **over), bars, entries, want, halt, day_stop
