"""`TradeEngine`: the trade rules (`strategy.trade_rules`) one closed bar at a time, for live use.

It runs the same numba step functions as the batch simulator over the same fixed-size state (two
small arrays), so a replay equals the backtest trade for trade. The fills come from outside: the
bar fill model (``model_fills``, as the backtest) or a broker's reports (``open_fills``,
``bracket_fill``, ``close_exit``). Prices are int64 ticks of the traded contract.

One bar, in the batch order (METHOD.md 7.6-7.7)::

    forced = eng.begin_bar(ts, day)                # a new date; -1, or R_SESSION: exit at this open
    eng.open_fills(ts, o, exit_px, entry_px)       # what filled at the open (None: nothing / cancelled)
    eng.bracket_fill(ts, o, h, l, reason, px, ...) # the stop/target fill of this bar, or NO_EXIT
    r = eng.close_exit_reason(close_min, sess_close, last)
    if r >= 0: eng.close_exit(ts, c, px, r)        # session end / time stop filled at the close
    eng.decide(ts, c, close_min, sess_close, day_ok, last, signal flags...)
    eng.pending_exit / eng.pending_entry           # what to send for the next open

Closed trades accumulate as record rows (`strategy.trade_rules.T_*` / ``TF_*``) read with
:meth:`pop_trades`.
"""

from __future__ import annotations

import numpy as np

from . import trade_rules as R
from .params import Params
from .state_codec import pack, unpack

__all__ = ["TradeEngine", "engine_vector"]

STATE_VERSION = 2


def engine_vector(params: Params, *, tick_value: float, commission_per_side: float,
                  margin_per_contract: float = 0.0) -> np.ndarray:
    """The rules' parameter vector (`strategy.trade_rules.Q_*`) for `params` on one instrument.

    ``margin_per_contract``: $ the account must hold per contract to open a trade (0: only a
    non-positive equity stops trading; negative: never)."""
    q = np.zeros(R.N_Q)
    q[R.Q_STOP] = params.stop_ticks
    q[R.Q_TARGET] = params.target_ticks
    q[R.Q_TIME] = params.time_stop_bars
    q[R.Q_SLIP] = params.slippage_ticks
    q[R.Q_CONTRACTS] = params.contracts
    q[R.Q_TICK_VALUE] = tick_value
    q[R.Q_COMMISSION] = commission_per_side
    q[R.Q_MAX_TRADES] = params.max_trades_per_day
    q[R.Q_LOSS_LIMIT] = params.daily_loss_limit_usd
    q[R.Q_FLAT_MIN] = params.minutes("flat_at_et")
    q[R.Q_CAPITAL] = params.initial_capital_usd
    q[R.Q_MARGIN] = margin_per_contract
    q[R.Q_PROFIT_TARGET] = params.daily_profit_target_usd or 0.0
    q[R.Q_MAX_DD] = (params.max_drawdown_pct or 0.0) / 100.0
    q[R.Q_LOSS_STREAK] = params.max_consecutive_losses or 0
    return q


class TradeEngine:
    """Incremental trade rules over in-session closed bars (the bars the batch simulator sees).

    Args:
        params: the method's parameters (same object as for the backtest).
        tick_value: $ per tick per contract. commission_per_side: $ per contract per side.
        margin_per_contract: see :func:`engine_vector`.
        capacity: closed trades held until :meth:`pop_trades` (a bar closes at most 2).
    """

    def __init__(self, params: Params, *, tick_value: float, commission_per_side: float,
                 margin_per_contract: float = 0.0, capacity: int = 64):
        self.params = params
        self._params_hash = params.hash()
        self.q = engine_vector(params, tick_value=tick_value, commission_per_side=commission_per_side,
                               margin_per_contract=margin_per_contract)
        self.si, self.sf = R.new_state(self.q)
        self._ti = np.zeros((capacity, R.N_T), np.int64)
        self._tf = np.zeros((capacity, R.N_TF), np.float64)
        self._nt = 0
        self._slip = int(self.q[R.Q_SLIP])

    # -- the bar protocol -------------------------------------------------------------------------
    @property
    def bar_index(self) -> int:
        """Index of the bar being processed (in-session bars since the start)."""
        return int(self.si[R.I_BARS])

    def begin_bar(self, ts_ns: int, day: int) -> int:
        """Step 0 for the bar starting at `ts_ns` of trading date `day` (days since the epoch):
        R_SESSION when a position from an earlier date must exit at this bar's open, else -1."""
        had = int(self.si[R.I_PEND_EXIT])
        R.begin_bar(self.q, self.si, self.sf, day)
        forced = int(self.si[R.I_PEND_EXIT])
        return forced if (forced >= 0 and had < 0) else -1

    def model_fills(self, ts_ns: int, o: int, h: int, l: int) -> None:
        """Steps 1-2 with the backtest's bar fill model."""
        j = self.bar_index
        self._room()
        self._nt = R.fill_open(self.q, self.si, self.sf, self._ti, self._tf, self._nt, j, ts_ns, o)
        self._nt = R.fill_intrabar(self.q, self.si, self.sf, self._ti, self._tf, self._nt, j, ts_ns, o, h, l)

    def open_fills(self, ts_ns: int, o: int, exit_px: int | None, entry_px: int | None) -> None:
        """Step 1 from a broker: the pending exit filled at `exit_px`, the pending entry at
        `entry_px` (None: not filled; a pending entry not filled is dropped, as a day order)."""
        j = self.bar_index
        self._room()
        if self.side != 0 and self.si[R.I_PEND_EXIT] >= 0 and exit_px is not None:
            self._nt = R.open_exit(self.q, self.si, self.sf, self._ti, self._tf, self._nt, j, ts_ns, o, exit_px)
        self.si[R.I_PEND_EXIT] = -1
        if self.si[R.I_PEND_ENTRY] != 0:
            if entry_px is not None and self.side == 0:
                R.open_entry(self.q, self.si, self.sf, j, ts_ns, o, entry_px)
            else:
                R.skip_entry(self.si)

    def bracket_fill(self, ts_ns: int, o: int, h: int, l: int, reason: int = -1, px: int = 0,
                     ambiguous: bool = False, gap: bool = False, optimistic_px: int | None = None,
                     slippage_ticks: int = 0) -> None:
        """Step 2 from a broker: the bar's excursions, and its stop/target fill (`reason` R_STOP /
        R_TARGET at `px`), or none (``reason=-1``)."""
        self._room()
        self._nt = R.intrabar(self.q, self.si, self.sf, self._ti, self._tf, self._nt, self.bar_index, ts_ns, o, h, l,
                              reason, px, ambiguous, gap, px if optimistic_px is None else optimistic_px,
                              slippage_ticks)

    def close_exit_reason(self, close_min: float, sess_close: float, last: bool) -> int:
        """Step 3: R_SESSION / R_TIME when the position closes at this bar's close, else -1."""
        return int(R.close_exit_reason(self.q, self.si, self.bar_index, close_min,
                                       R.flat_minute(self.q, sess_close), last))

    def close_exit(self, ts_ns: int, c: int, px: int, reason: int) -> None:
        """Step 3: the position closed at this bar's close at `px` (a broker's fill or the model's)."""
        self._room()
        self._nt = R.close_exit(self.q, self.si, self.sf, self._ti, self._tf, self._nt, self.bar_index, ts_ns, c, px,
                                reason)

    def model_close_price(self, c: int) -> int:
        """The bar model's fill of a close exit: the close moved by the slippage against the position."""
        return c - self.side * self._slip

    def decide(self, ts_ns: int, c: int, close_min: float, sess_close: float, day_ok: bool, last: bool,
               long_entry: bool, short_entry: bool, long_candidate: bool, short_candidate: bool,
               bull_violation: bool, bear_violation: bool) -> float:
        """Step 4: next-open exit, account and day stops, the entry decision; returns the account value."""
        return float(R.decide(self.q, self.si, self.sf, self.bar_index, ts_ns, c, close_min,
                              R.flat_minute(self.q, sess_close), day_ok, last, long_entry, short_entry,
                              long_candidate, short_candidate, bull_violation, bear_violation))

    def step_model(self, ts_ns: int, day: int, o: int, h: int, l: int, c: int, close_min: float, sess_close: float,
                   day_ok: bool, last: bool, *flags: bool) -> float:
        """One whole bar with the bar fill model (exactly one iteration of the batch simulator)."""
        self.begin_bar(ts_ns, day)
        self.model_fills(ts_ns, o, h, l)
        r = self.close_exit_reason(close_min, sess_close, last)
        if r >= 0:
            self.close_exit(ts_ns, c, self.model_close_price(c), r)
        return self.decide(ts_ns, c, close_min, sess_close, day_ok, last, *flags)

    def finish(self, ts_ns: int, c: int, px: int | None = None) -> None:
        """The data ended with bar `ts_ns` (already decided): an open position closes at its close
        (`px`, default the bar model's), as the batch run's last bar (reason session_end)."""
        if self.side != 0:
            self._room()
            self._nt = R.close_exit(self.q, self.si, self.sf, self._ti, self._tf, self._nt, self.bar_index - 1, ts_ns,
                                    c, self.model_close_price(c) if px is None else px, R.R_SESSION)
        self.si[R.I_PEND_EXIT] = -1
        R.skip_entry(self.si)

    def _room(self) -> None:
        if self._nt + 2 > self._ti.shape[0]:
            raise RuntimeError("TradeEngine: closed trades not collected (call pop_trades after each bar)")

    # -- reading the state ------------------------------------------------------------------------
    def pop_trades(self) -> tuple[np.ndarray, np.ndarray]:
        """Trades closed since the last call: (int64 rows ``T_*``, float64 rows ``TF_*``), copies."""
        n = self._nt
        out = self._ti[:n].copy(), self._tf[:n].copy()
        self._nt = 0
        return out

    @property
    def side(self) -> int:
        """+1 long, -1 short, 0 flat."""
        return int(self.si[R.I_SIDE])

    @property
    def contracts(self) -> int:
        return int(self.q[R.Q_CONTRACTS])

    @property
    def pending_exit(self) -> int:
        """Exit reason to send for the next open (R_GOLDEN / R_OPPOSITE / R_SESSION), or -1."""
        return int(self.si[R.I_PEND_EXIT]) if self.side != 0 else -1

    @property
    def pending_entry(self) -> int:
        """Side of the entry to send for the next open (+1 / -1), or 0."""
        return int(self.si[R.I_PEND_ENTRY])

    @property
    def pending_day(self) -> int:
        """Trading date the pending entry is valid for (a day order)."""
        return int(self.si[R.I_PEND_DAY])

    @property
    def entry_price(self) -> int:
        return int(self.si[R.I_ENTRY_PX])

    @property
    def stop_price(self) -> int:
        return int(self.si[R.I_STOP_PX])

    @property
    def target_price(self) -> int:
        return int(self.si[R.I_TARGET_PX])

    def equity(self, c: int) -> float:
        """Account value with the open position marked at `c` ticks."""
        return float(R.mark(self.q, self.si, self.sf, c))

    @property
    def day_pnl(self) -> float:
        """Today's realised net P&L ($)."""
        return float(self.sf[R.F_DAY_PNL])

    @property
    def trades_today(self) -> int:
        return int(self.si[R.I_DAY_TRADES])

    @property
    def losses_in_a_row(self) -> int:
        return int(self.si[R.I_LOSS_RUN])

    @property
    def peak_equity(self) -> float:
        return float(self.sf[R.F_PEAK])

    @property
    def halted(self) -> str:
        """Why trading stopped for good ("margin", "drawdown") or ""."""
        return R.HALT_NAMES[int(self.si[R.I_HALT])]

    @property
    def day_stop(self) -> str:
        """Which day gate blocks entries at the last close ("daily_loss_limit", ...) or ""."""
        return R.DAY_STOP_NAMES[int(self.si[R.I_DAY_STOP])]

    # -- persistence ------------------------------------------------------------------------------
    def to_bytes(self) -> bytes:
        """The whole state (params hash, rule vector, state arrays, uncollected trades), `strategy.state_codec`."""
        meta = {"version": STATE_VERSION, "params_hash": self._params_hash}
        return pack(meta, [self.q, self.si, self.sf, self._ti[:self._nt], self._tf[:self._nt]])

    def load_bytes(self, data: bytes) -> None:
        """Restore from :meth:`to_bytes`; refuses a state made with other parameters or instrument."""
        meta, (q, si, sf, ti, tf) = unpack(data, "trade engine state")
        if meta.get("version") != STATE_VERSION:
            raise ValueError(f"trade engine state version {meta.get('version')} != {STATE_VERSION}")
        if meta.get("params_hash") != self._params_hash or not np.array_equal(q, self.q):
            raise ValueError("trade engine state was made with other parameters or instrument settings")
        if si.shape != self.si.shape or sf.shape != self.sf.shape:
            raise ValueError("trade engine state arrays do not match this engine's layout")
        self.si[:] = si
        self.sf[:] = sf
        n = ti.shape[0]
        self._ti[:n] = ti
        self._tf[:n] = tf
        self._nt = n
