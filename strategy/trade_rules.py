"""The trade rules of METHOD.md 7.6-7.7 as numba step functions over a fixed-size state.

One position at a time, decisions at bar close. Prices are int64 ticks of the traded contract.
The batch simulator (`simulate`, below) and the incremental `strategy.trade_engine.TradeEngine`
call the same functions; the bar fill model they apply is `strategy.fills`, which the bar-mode
paper broker uses too.

Per bar j, in this order:

0. ``begin_bar``: a new trading date resets the day's counters (trades, realised P&L, loss streak,
   the day's stop); a position still open from an earlier date (a data gap hid its session end) is
   set to exit at this bar's open.
1. at the open: a pending exit (golden rule / opposite signal decided at the previous close) fills at
   ``O_j`` -/+ slippage, then a pending entry fills at ``O_j`` +/- slippage (a reversal is an exit and
   an entry at the same open); an entry decided on another trading date is cancelled (a day order).
2. intrabar: the OCO bracket (`strategy.fills.bracket_on_bar`): stop before target, the stop wins
   when both are inside one bar, a bar opening through the stop fills at its open.
3. at the close (``close_exit``): session end (a bar closing at/after the date's flat time, from the
   CME calendar: ``flat_at_et`` on a regular day, the same lead before an early close; or the last
   bar of a contract / of the data) or the time stop (close of the ``time_stop``-th bar held) fill at
   ``C_j`` -/+ slippage;
4. at the close (``decide``): a golden-rule violation of the trade's side, then an opposite
   candidate, set a pending exit for the next open (METHOD 7.7 precedence). Then, if flat or exiting
   at the next open:
   - account stops (for good, ``halt``): equity below the margin of the position (``equity < margin
     per contract x contracts``, or ``<= 0`` without a margin; a negative margin turns the floor
     off), or a drawdown from the equity peak of ``max_dd`` (a fraction; 0 off);
   - the day's gates (read from today's realised trades; reset at the next trading date): the daily
     loss limit (gate 5), the daily profit target, ``loss_streak`` consecutive losing trades,
     ``max_trades`` trades today;
   - the entry window: a holiday date (no cash session) takes no entry, nor a bar at/after the flat
     time or the last bar of a contract;
   - else an entry signal becomes a pending entry for the next open.

Excursions (MFE/MAE, ticks from the entry fill) cover the prices the trade lived through and end at
its exit fill: a stopped trade's MAE is its realised loss, a target's MFE is the target; on a bar
with both stop and target, the stop is taken first, so that bar adds only its open to the MFE.

Speed: the step functions are ``inline="always"`` and `simulate` borrows its arrays
(`strategy.borrowed`), so its loop makes no call and counts no reference per bar; a non-inlined
step call passing five array structures on the stack, with an atomic reference count of each, was
96 % of the simulator's time (docs/performance.md). From Python (`TradeEngine`) each step function
is still one compiled call.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from . import exits, fills
from .borrowed import borrow
from .exits import (
    EXIT_REASONS,
    R_GOLDEN,
    R_OPPOSITE,
    R_SESSION,
    R_STOP,
    R_TARGET,
    R_TIME,
)
from .fills import bracket_on_bar, market_fill_ticks
from .numba_cache import refresh_if_changed

__all__ = ["simulate", "new_state", "begin_bar", "fill_open", "open_exit", "open_entry", "skip_entry",
           "intrabar", "close_exit_reason", "close_exit", "decide", "mark", "REASONS"]

REASONS = EXIT_REASONS  # code -> name
PH_OPEN, PH_INTRABAR, PH_CLOSE = 0, 2, 3

# parameter vector
(Q_STOP, Q_TARGET, Q_TIME, Q_SLIP, Q_CONTRACTS, Q_TICK_VALUE, Q_COMMISSION, Q_MAX_TRADES, Q_LOSS_LIMIT,
 Q_FLAT_MIN, Q_CAPITAL, Q_MARGIN, Q_PROFIT_TARGET, Q_MAX_DD, Q_LOSS_STREAK) = range(15)
N_Q = 15
REGULAR_CLOSE_MIN = 960.0  # 16:00 ET: the close `flat_at_et` is a lead before

# trade record columns (int64)
(T_SIDE, T_SIG, T_ENTRY_IDX, T_EXIT_IDX, T_ENTRY_PX, T_EXIT_PX, T_STOP_PX, T_TARGET_PX, T_REASON, T_MFE, T_MAE,
 T_AMBIG, T_SAME_BAR, T_GAP, T_OPT_EXIT_PX, T_EXIT_PHASE, T_ENTRY_SLIP, T_EXIT_SLIP, T_SIG_TS, T_ENTRY_TS,
 T_EXIT_TS) = range(21)
N_T = 21
# trade record columns (float64)
TF_PNL, TF_PNL_OPT, TF_COMMISSION = range(3)
N_TF = 3

# state (int64)
(I_SIDE, I_ENTRY_IDX, I_ENTRY_PX, I_STOP_PX, I_TARGET_PX, I_MFE, I_MAE, I_SIG_IDX, I_SIG_TS, I_ENTRY_TS,
 I_ENTRY_SLIP, I_PEND_EXIT, I_PEND_ENTRY, I_PEND_SIG, I_PEND_SIG_TS, I_PEND_DAY, I_DAY, I_DAY_TRADES,
 I_LOSS_RUN, I_DAY_STOP, I_HALT, I_HALT_BAR, I_BARS, I_NT) = range(24)
N_I = 24
# state (float64)
F_REALIZED, F_DAY_PNL, F_PEAK, F_EQUITY = range(4)
N_F = 4

# why the account stopped trading for good (I_HALT) / for the day (I_DAY_STOP)
HALT_NONE, HALT_MARGIN, HALT_DRAWDOWN = 0, 1, 2
HALT_NAMES = ("", "margin", "drawdown")
DAY_OK, DAY_LOSS_LIMIT, DAY_PROFIT_TARGET, DAY_LOSS_STREAK, DAY_MAX_TRADES = 0, 1, 2, 3, 4
DAY_STOP_NAMES = ("", "daily_loss_limit", "daily_profit_target", "loss_streak", "max_trades")
NO_DAY = -(2**62)


@njit(cache=True, inline="always")
def new_state(q):
    """A flat account holding ``q[Q_CAPITAL]``: (int64 state, float64 state)."""
    si = np.zeros(N_I, np.int64)
    sf = np.zeros(N_F, np.float64)
    reset_state(q, si, sf)
    return si, sf


@njit(cache=True, inline="always")
def reset_state(q, si, sf):
    si[:] = 0
    si[I_ENTRY_IDX] = -1
    si[I_SIG_IDX] = -1
    si[I_PEND_EXIT] = -1
    si[I_PEND_SIG] = -1
    si[I_PEND_DAY] = NO_DAY
    si[I_DAY] = NO_DAY
    si[I_HALT_BAR] = -1
    sf[:] = 0.0
    sf[F_PEAK] = q[Q_CAPITAL]
    sf[F_EQUITY] = q[Q_CAPITAL]


@njit(cache=True, inline="always")
def flat_minute(q, sess_close):
    """The flat time of a date whose scheduled close is `sess_close` (min ET): flat_at, or the same
    lead before an earlier close (NaN, a date with no close: flat from its first bar)."""
    if not sess_close == sess_close:
        return -1.0
    return min(q[Q_FLAT_MIN], sess_close - (REGULAR_CLOSE_MIN - q[Q_FLAT_MIN]))


@njit(cache=True, inline="always")
def begin_bar(q, si, sf, day):
    """Step 0: a new trading date resets the day's counters; a position left open from an earlier
    date exits at this bar's open."""
    if si[I_DAY] != day:
        si[I_DAY] = day
        sf[F_DAY_PNL] = 0.0
        si[I_DAY_TRADES] = 0
        si[I_LOSS_RUN] = 0
        si[I_DAY_STOP] = DAY_OK
        if si[I_SIDE] != 0 and si[I_PEND_EXIT] < 0:
            si[I_PEND_EXIT] = R_SESSION


@njit(cache=True, inline="always")
def _record(q, si, sf, ti, tf, nt, j, ts, exit_px, reason, ambiguous, gap, opt_px, phase, exit_slip):
    """Close the position at `exit_px`: write trade row `nt`, book the P&L; returns nt + 1."""
    side = si[I_SIDE]
    contracts = int(q[Q_CONTRACTS])
    tv = q[Q_TICK_VALUE]
    comm = q[Q_COMMISSION] * contracts
    entry_px = si[I_ENTRY_PX]
    ti[nt, T_SIDE] = side
    ti[nt, T_SIG] = si[I_SIG_IDX]
    ti[nt, T_ENTRY_IDX] = si[I_ENTRY_IDX]
    ti[nt, T_EXIT_IDX] = j
    ti[nt, T_ENTRY_PX] = entry_px
    ti[nt, T_EXIT_PX] = exit_px
    ti[nt, T_STOP_PX] = si[I_STOP_PX]
    ti[nt, T_TARGET_PX] = si[I_TARGET_PX]
    ti[nt, T_REASON] = reason
    ti[nt, T_MFE] = si[I_MFE]
    ti[nt, T_MAE] = si[I_MAE]
    ti[nt, T_AMBIG] = 1 if ambiguous else 0
    ti[nt, T_SAME_BAR] = 1 if (j == si[I_ENTRY_IDX] and phase != PH_OPEN) else 0
    ti[nt, T_GAP] = 1 if gap else 0
    ti[nt, T_OPT_EXIT_PX] = opt_px
    ti[nt, T_EXIT_PHASE] = phase
    ti[nt, T_ENTRY_SLIP] = si[I_ENTRY_SLIP]
    ti[nt, T_EXIT_SLIP] = exit_slip
    ti[nt, T_SIG_TS] = si[I_SIG_TS]
    ti[nt, T_ENTRY_TS] = si[I_ENTRY_TS]
    ti[nt, T_EXIT_TS] = ts
    tf[nt, TF_COMMISSION] = 2.0 * comm
    pnl = side * (exit_px - entry_px) * tv * contracts - 2.0 * comm
    tf[nt, TF_PNL] = pnl
    tf[nt, TF_PNL_OPT] = side * (opt_px - entry_px) * tv * contracts - 2.0 * comm
    sf[F_REALIZED] += pnl + comm  # the entry commission was booked at entry
    sf[F_DAY_PNL] += pnl
    if pnl < 0.0:
        si[I_LOSS_RUN] += 1
    else:
        si[I_LOSS_RUN] = 0
    si[I_SIDE] = 0
    si[I_NT] += 1
    return nt + 1


@njit(cache=True, inline="always")
def open_exit(q, si, sf, ti, tf, nt, j, ts, o, px):
    """Step 1a: the pending exit fills at the open at `px`; returns the trade count."""
    side = si[I_SIDE]
    entry_px = si[I_ENTRY_PX]
    si[I_MFE] = max(si[I_MFE], side * (o - entry_px))
    si[I_MAE] = max(si[I_MAE], side * (entry_px - px))  # the fill, slippage included
    slip = side * (o - px)
    nt = _record(q, si, sf, ti, tf, nt, j, ts, px, si[I_PEND_EXIT], False, False, px, PH_OPEN, slip)
    si[I_PEND_EXIT] = -1
    return nt


@njit(cache=True, inline="always")
def open_entry(q, si, sf, j, ts, o, px):
    """Step 1b: the pending entry fills at the open at `px` and its bracket is placed."""
    side = si[I_PEND_ENTRY]
    si[I_SIDE] = side
    si[I_ENTRY_IDX] = j
    si[I_ENTRY_TS] = ts
    si[I_SIG_IDX] = si[I_PEND_SIG]
    si[I_SIG_TS] = si[I_PEND_SIG_TS]
    si[I_ENTRY_PX] = px
    si[I_ENTRY_SLIP] = side * (px - o)
    si[I_STOP_PX] = px - side * int(q[Q_STOP])
    si[I_TARGET_PX] = px + side * int(q[Q_TARGET])
    si[I_MFE] = 0
    si[I_MAE] = 0
    sf[F_REALIZED] -= q[Q_COMMISSION] * int(q[Q_CONTRACTS])
    si[I_DAY_TRADES] += 1
    skip_entry(si)


@njit(cache=True, inline="always")
def skip_entry(si):
    """The pending entry is done with (filled, or cancelled as a day order of another date)."""
    si[I_PEND_ENTRY] = 0
    si[I_PEND_SIG] = -1
    si[I_PEND_DAY] = NO_DAY


@njit(cache=True, inline="always")
def fill_open(q, si, sf, ti, tf, nt, j, ts, o):
    """Step 1 with the bar fill model: market fills at the open moved by the slippage."""
    slip = int(q[Q_SLIP])
    if si[I_SIDE] != 0 and si[I_PEND_EXIT] >= 0:
        nt = open_exit(q, si, sf, ti, tf, nt, j, ts, o, market_fill_ticks(o, -si[I_SIDE], slip))
    si[I_PEND_EXIT] = -1
    if si[I_PEND_ENTRY] != 0:
        if si[I_PEND_DAY] == si[I_DAY]:
            open_entry(q, si, sf, j, ts, o, market_fill_ticks(o, si[I_PEND_ENTRY], slip))
        else:
            skip_entry(si)
    return nt


@njit(cache=True, inline="always")
def intrabar(q, si, sf, ti, tf, nt, j, ts, o, h, l, reason, px, ambiguous, gap, opt_px, exit_slip):
    """Step 2: the bar's excursions, and the bracket's fill (`reason` R_STOP / R_TARGET at `px`,
    or NO_EXIT) as `strategy.fills.bracket_on_bar` (bar model) or a broker reported it."""
    side = si[I_SIDE]
    if side == 0:
        return nt
    entry_px = si[I_ENTRY_PX]
    fav = (h - entry_px) if side > 0 else (entry_px - l)
    if reason != R_STOP:
        adv = (entry_px - l) if side > 0 else (h - entry_px)
        si[I_MAE] = max(si[I_MAE], adv)  # the whole bar: the stop was not reached
        si[I_MFE] = max(si[I_MFE], min(fav, int(q[Q_TARGET])))  # a target fill ends the trade at the target
    if reason == R_STOP:
        # up to the stop fill: the bar's favourable side only if it may precede the stop
        si[I_MFE] = max(si[I_MFE], side * (o - entry_px) if (gap or ambiguous) else fav)
        si[I_MAE] = max(si[I_MAE], side * (entry_px - px))
    if reason == R_STOP or reason == R_TARGET:
        nt = _record(q, si, sf, ti, tf, nt, j, ts, px, reason, ambiguous, gap, opt_px, PH_INTRABAR, exit_slip)
    return nt


@njit(cache=True, inline="always")
def fill_intrabar(q, si, sf, ti, tf, nt, j, ts, o, h, l):
    """Step 2 with the bar fill model."""
    side = si[I_SIDE]
    if side == 0:
        return nt
    slip = int(q[Q_SLIP])
    reason, px, amb, gap, opt = bracket_on_bar(side, si[I_STOP_PX], si[I_TARGET_PX], o, h, l, j > si[I_ENTRY_IDX],
                                               slip)
    return intrabar(q, si, sf, ti, tf, nt, j, ts, o, h, l, reason, px, amb, gap, opt, slip if reason == R_STOP else 0)


@njit(cache=True, inline="always")
def close_exit_reason(q, si, j, close_min, flat_min, last):
    """Step 3: R_SESSION / R_TIME when the position must close at this bar's close, else -1."""
    if si[I_SIDE] == 0:
        return -1
    if last or close_min >= flat_min:
        return R_SESSION
    if j - si[I_ENTRY_IDX] + 1 >= int(q[Q_TIME]):
        return R_TIME
    return -1


@njit(cache=True, inline="always")
def close_exit(q, si, sf, ti, tf, nt, j, ts, c, px, reason):
    """Step 3: the position closes at this bar's close at `px` (session end / time stop)."""
    side = si[I_SIDE]
    si[I_MAE] = max(si[I_MAE], side * (si[I_ENTRY_PX] - px))
    return _record(q, si, sf, ti, tf, nt, j, ts, px, reason, False, False, px, PH_CLOSE, side * (c - px))


@njit(cache=True, inline="always")
def mark(q, si, sf, c):
    """Account value ($) at price `c` (the open position marked to it)."""
    side = si[I_SIDE]
    opn = side * (c - si[I_ENTRY_PX]) * q[Q_TICK_VALUE] * int(q[Q_CONTRACTS]) if side != 0 else 0.0
    return q[Q_CAPITAL] + sf[F_REALIZED] + opn


@njit(cache=True, inline="always")
def decide(q, si, sf, j, ts, c, close_min, flat_min, day_ok, last, long_entry, short_entry, long_cand, short_cand,
           bull_viol, bear_viol):
    """Step 4 at bar j's close: the next-open exit, the account and day stops, the entry decision.
    Updates the state (pending exit / entry) and returns the account value at the close."""
    side = si[I_SIDE]
    if side != 0:
        if (side > 0 and bull_viol) or (side < 0 and bear_viol):
            si[I_PEND_EXIT] = R_GOLDEN
        elif (side > 0 and short_cand) or (side < 0 and long_cand):
            si[I_PEND_EXIT] = R_OPPOSITE
    eq = mark(q, si, sf, c)
    free = side == 0 or si[I_PEND_EXIT] >= 0
    if free and si[I_HALT] == HALT_NONE:
        margin_need = q[Q_MARGIN] * int(q[Q_CONTRACTS])
        if q[Q_MARGIN] >= 0.0 and (eq < margin_need or eq <= 0.0):
            si[I_HALT] = HALT_MARGIN
            si[I_HALT_BAR] = j
        elif q[Q_MAX_DD] > 0.0 and sf[F_PEAK] - eq >= q[Q_MAX_DD] * sf[F_PEAK]:
            si[I_HALT] = HALT_DRAWDOWN
            si[I_HALT_BAR] = j
    # the day's gates, from today's realised trades (a winning trade of a reversal can lift them again)
    if sf[F_DAY_PNL] <= -q[Q_LOSS_LIMIT]:
        si[I_DAY_STOP] = DAY_LOSS_LIMIT
    elif q[Q_PROFIT_TARGET] > 0.0 and sf[F_DAY_PNL] >= q[Q_PROFIT_TARGET]:
        si[I_DAY_STOP] = DAY_PROFIT_TARGET
    elif q[Q_LOSS_STREAK] > 0.0 and si[I_LOSS_RUN] >= int(q[Q_LOSS_STREAK]):
        si[I_DAY_STOP] = DAY_LOSS_STREAK
    elif si[I_DAY_TRADES] >= int(q[Q_MAX_TRADES]):
        si[I_DAY_STOP] = DAY_MAX_TRADES
    else:
        si[I_DAY_STOP] = DAY_OK
    if free and si[I_HALT] == HALT_NONE and si[I_DAY_STOP] == DAY_OK and day_ok and not last \
            and close_min < flat_min:
        want = 0
        if long_entry and side <= 0:
            want = 1
        elif short_entry and side >= 0:
            want = -1
        if want != 0:
            si[I_PEND_ENTRY] = want
            si[I_PEND_SIG] = j
            si[I_PEND_SIG_TS] = ts
            si[I_PEND_DAY] = si[I_DAY]
    if eq > sf[F_PEAK]:
        sf[F_PEAK] = eq
    sf[F_EQUITY] = eq
    si[I_BARS] = j + 1
    return eq


@njit(cache=True)
def simulate(q, ts, o, h, l, c, session, close_min, sess_close, day_ok, last, long_entry, short_entry, long_cand,
             short_cand, bull_viol, bear_viol, trades_i, trades_f, equity, position, halt):
    """Run the rules over n bars with the bar fill model; fill `trades_i`/`trades_f` rows, `equity`
    ($ at each close), `position` (signed contracts at each close) and ``halt[0]`` (the bar whose
    close stopped trading for good, -1 if none), ``halt[1]`` (its reason, HALT_*). Returns the
    number of trades.

    Per bar: `ts` bar start (UTC ns), `session` its trading date, `close_min` its close (min ET),
    `sess_close` its date's scheduled close (min ET, NaN: none), `day_ok` False on a date with no
    cash session, `last` the last bar of a contract or of the data."""
    n = o.shape[0]
    si_owned, sf_owned = new_state(q)
    # borrowed views inside the loop: no atomic reference counting per step call (strategy.borrowed);
    # the arguments are kept alive by the caller, the state arrays by their use after the loop
    si = borrow(si_owned)
    sf = borrow(sf_owned)
    q = borrow(q)
    trades_i = borrow(trades_i)
    trades_f = borrow(trades_f)
    slip = int(q[Q_SLIP])
    contracts = int(q[Q_CONTRACTS])
    nt = 0
    for j in range(n):
        begin_bar(q, si, sf, session[j])
        nt = fill_open(q, si, sf, trades_i, trades_f, nt, j, ts[j], o[j])
        nt = fill_intrabar(q, si, sf, trades_i, trades_f, nt, j, ts[j], o[j], h[j], l[j])
        fm = flat_minute(q, sess_close[j])
        r = close_exit_reason(q, si, j, close_min[j], fm, last[j])
        if r >= 0:
            nt = close_exit(q, si, sf, trades_i, trades_f, nt, j, ts[j], c[j],
                            market_fill_ticks(c[j], -si[I_SIDE], slip), r)
        equity[j] = decide(q, si, sf, j, ts[j], c[j], close_min[j], fm, day_ok[j], last[j], long_entry[j],
                           short_entry[j], long_cand[j], short_cand[j], bull_viol[j], bear_viol[j])
        position[j] = si[I_SIDE] * contracts
    halt[0] = si_owned[I_HALT_BAR]
    if halt.shape[0] > 1:
        halt[1] = si_owned[I_HALT]
    sf_owned[0] = sf[0]  # keeps sf_owned referenced until after the loop
    return nt


# the exit-reason codes and the fill model are compiled into this module's cached code
refresh_if_changed(globals(), [exits.__file__, fills.__file__, __file__.replace("trade_rules.py", "borrowed.py")])
