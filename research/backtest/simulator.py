"""Numba trade simulator for METHOD.md 7.6-7.7 (one position at a time, decisions at bar close).

Why hand-written: vectorbt's `from_signals` has no "stop wins when stop and target share a bar"
rule on OHLC, no next-open exits triggered by a close-based rule, no per-day trade/loss limits
and no intrabar-assumption audit. The simulator produces the orders; vectorbt then rebuilds the
portfolio from them (`research.backtest.portfolio`) and a test checks both agree to the cent.

Prices are int64 ticks of the traded contract. Per bar j, in this order:
1. at the open: a pending exit (golden rule / opposite signal decided at the previous close)
   fills at ``O_j`` -/+ slippage, then a pending entry fills at ``O_j`` +/- slippage (a reversal
   is an exit and an entry at the same open); an entry whose signal bar is in another session
   is cancelled;
2. intrabar: stop (``L <= stop`` long) before target (``H >= target``): when both are inside
   one bar the **stop wins** (pessimistic; the audit records the optimistic alternative). A
   bar that opens through the stop fills at its open (gap) minus slippage; targets are limit
   orders filled at the target price without slippage;
3. at the close: session end (bar closing at/after ``flat_at``, or the session's last bar) or
   the time stop (close of the ``time_stop``-th bar held) fill at ``C_j`` -/+ slippage; else a
   golden-rule violation of the trade's side, then an opposite candidate, set a pending exit
   for the next open (METHOD 7.7 precedence; a close fill comes first because it is earlier);
4. at the close, if flat or exiting at the next open: when the account value no longer covers the
   margin of the position (``equity < margin per contract x contracts``, or ``<= 0`` without a
   margin) trading stops for good: no new entry from this close on, the bar index is written to
   ``halt[0]`` (an open trade has already exited, or exits at the next open, by its rules); a
   negative margin turns the floor off (signal-outcome studies: ML labels). Else an
   entry signal passes gate 5 (trades today < max, today's realised net P&L > -daily loss limit)
   and becomes a pending entry.

Excursions (MFE/MAE, ticks from the entry fill) cover the prices the trade lived through and end
at its exit fill: a stopped trade's MAE is its realised loss (the stop, or the gap open, plus
slippage), never the rest of the bar beyond the stop; a target's MFE is the target. On a bar with
both stop and target, the stop is taken first, so that bar adds only its open to the MFE.
"""

from __future__ import annotations

from numba import njit

from strategy import exits
from strategy.exits import (
    EXIT_REASONS,
    R_GOLDEN,
    R_OPPOSITE,
    R_SESSION,
    R_STOP,
    R_TARGET,
    R_TIME,
)
from strategy.numba_cache import refresh_if_changed

REASONS = EXIT_REASONS  # code -> name
PH_OPEN, PH_INTRABAR, PH_CLOSE = 0, 2, 3

# sim parameter vector
Q_STOP, Q_TARGET, Q_TIME, Q_SLIP, Q_CONTRACTS, Q_TICK_VALUE, Q_COMMISSION, Q_MAX_TRADES, Q_LOSS_LIMIT, \
    Q_FLAT_MIN, Q_CAPITAL, Q_MARGIN = range(12)
N_Q = 12

# trade record columns (int64)
(T_SIDE, T_SIG, T_ENTRY_IDX, T_EXIT_IDX, T_ENTRY_PX, T_EXIT_PX, T_STOP_PX, T_TARGET_PX, T_REASON, T_MFE, T_MAE,
 T_AMBIG, T_SAME_BAR, T_GAP, T_OPT_EXIT_PX, T_EXIT_PHASE, T_ENTRY_SLIP, T_EXIT_SLIP) = range(18)
N_T = 18
# trade record columns (float64)
TF_PNL, TF_PNL_OPT, TF_COMMISSION = range(3)
N_TF = 3


@njit(cache=True)
def simulate(q, o, h, l, c, session, close_min, last_of_session, long_entry, short_entry, long_cand,
             short_cand, bull_viol, bear_viol, trades_i, trades_f, equity, position, halt):
    """Run the rules over n bars; fill `trades_i`/`trades_f` rows, `equity` ($ at each close),
    `position` (signed contracts at each close) and ``halt[0]`` (the bar whose close stopped trading
    for want of margin, -1 if none). Returns the number of trades."""
    n = o.shape[0]
    stop_t = int(q[Q_STOP])
    target_t = int(q[Q_TARGET])
    time_stop = int(q[Q_TIME])
    slip = int(q[Q_SLIP])
    contracts = int(q[Q_CONTRACTS])
    tv = q[Q_TICK_VALUE]
    comm = q[Q_COMMISSION] * contracts  # per side, whole position
    max_trades = int(q[Q_MAX_TRADES])
    loss_limit = q[Q_LOSS_LIMIT]
    flat_min = q[Q_FLAT_MIN]
    margin_need = q[Q_MARGIN] * contracts
    floor = q[Q_MARGIN] >= 0.0
    halt[0] = -1
    halted = False

    nt = 0
    side = 0
    entry_idx = -1
    entry_px = 0
    stop_px = 0
    target_px = 0
    mfe = 0
    mae = 0
    sig_idx = -1
    pend_exit = -1  # reason of an exit at the next open
    pend_entry = 0  # side of an entry at the next open
    pend_sig = -1
    realized = 0.0  # net $ since the start
    day = -1
    day_pnl = 0.0
    day_trades = 0

    for j in range(n):
        if session[j] != day:
            day = session[j]
            day_pnl = 0.0
            day_trades = 0
        # 1. open: pending exit, then pending entry
        if side != 0 and pend_exit >= 0:
            px = o[j] - side * slip
            mfe = max(mfe, side * (o[j] - entry_px))
            mae = max(mae, side * (entry_px - px))  # the fill, slippage included
            nt = _close_trade(trades_i, trades_f, nt, side, sig_idx, entry_idx, j, entry_px, px, stop_px, target_px,
                              pend_exit, mfe, mae, 0, 0, px, PH_OPEN, slip, slip, tv, contracts, comm)
            pnl = trades_f[nt - 1, TF_PNL]
            realized += pnl + comm  # entry commission was booked at entry
            day_pnl += pnl
            side = 0
        pend_exit = -1
        if pend_entry != 0:
            if session[pend_sig] == session[j]:
                side = pend_entry
                entry_idx = j
                sig_idx = pend_sig
                entry_px = o[j] + side * slip
                stop_px = entry_px - side * stop_t
                target_px = entry_px + side * target_t
                mfe = 0
                mae = 0
                realized -= comm
                day_trades += 1
            pend_entry = 0
            pend_sig = -1
        # 2. intrabar stop / target
        if side != 0:
            fav = (h[j] - entry_px) if side > 0 else (entry_px - l[j])
            adv = (entry_px - l[j]) if side > 0 else (h[j] - entry_px)
            hit_stop = l[j] <= stop_px if side > 0 else h[j] >= stop_px
            hit_target = h[j] >= target_px if side > 0 else l[j] <= target_px
            if not hit_stop:
                mae = max(mae, adv)  # the whole bar: the stop was not reached
                mfe = max(mfe, min(fav, target_t))  # a target fill ends the trade at the target
            if hit_stop or hit_target:
                gap = False
                if hit_stop:
                    gap = (o[j] < stop_px) if side > 0 else (o[j] > stop_px)
                    gap = gap and j > entry_idx
                    base = o[j] if gap else stop_px
                    px = base - side * slip
                    # up to the stop fill: the bar's favourable side only if it may precede the stop
                    mfe = max(mfe, side * (o[j] - entry_px) if (gap or hit_target) else fav)
                    mae = max(mae, side * (entry_px - px))
                    reason = R_STOP
                    opt_px = target_px if hit_target else (stop_px - side * slip)
                    exit_slip = slip
                else:
                    px = target_px
                    reason = R_TARGET
                    opt_px = target_px
                    exit_slip = 0
                nt = _close_trade(trades_i, trades_f, nt, side, sig_idx, entry_idx, j, entry_px, px, stop_px,
                                  target_px, reason, mfe, mae, 1 if (hit_stop and hit_target) else 0,
                                  1 if gap else 0, opt_px, PH_INTRABAR, slip, exit_slip, tv, contracts, comm)
                pnl = trades_f[nt - 1, TF_PNL]
                realized += pnl + comm
                day_pnl += pnl
                side = 0
        # 3. close: session end / time stop fill now; golden rule / opposite at the next open
        if side != 0:
            reason = -1
            if last_of_session[j] or close_min[j] >= flat_min:
                reason = R_SESSION
            elif j - entry_idx + 1 >= time_stop:
                reason = R_TIME
            if reason >= 0:
                px = c[j] - side * slip
                mae = max(mae, side * (entry_px - px))
                nt = _close_trade(trades_i, trades_f, nt, side, sig_idx, entry_idx, j, entry_px, px, stop_px,
                                  target_px, reason, mfe, mae, 0, 0, px, PH_CLOSE, slip, slip, tv, contracts, comm)
                pnl = trades_f[nt - 1, TF_PNL]
                realized += pnl + comm
                day_pnl += pnl
                side = 0
            elif (side > 0 and bull_viol[j]) or (side < 0 and bear_viol[j]):
                pend_exit = R_GOLDEN
            elif (side > 0 and short_cand[j]) or (side < 0 and long_cand[j]):
                pend_exit = R_OPPOSITE
        # 4. close: new entry decision (flat, or flat at the next open)
        if (side == 0 or pend_exit >= 0) and not halted:
            eq_now = q[Q_CAPITAL] + realized + (side * (c[j] - entry_px) * tv * contracts if side != 0 else 0.0)
            if floor and (eq_now < margin_need or eq_now <= 0.0):
                halted = True
                halt[0] = j
        if (side == 0 or pend_exit >= 0) and not halted and not last_of_session[j] and close_min[j] < flat_min:
            want = 0
            if long_entry[j] and side <= 0:
                want = 1
            elif short_entry[j] and side >= 0:
                want = -1
            if want != 0 and day_trades < max_trades and day_pnl > -loss_limit:
                pend_entry = want
                pend_sig = j
        # mark to market at the close
        equity[j] = q[Q_CAPITAL] + realized + (side * (c[j] - entry_px) * tv * contracts if side != 0 else 0.0)
        position[j] = side * contracts
    return nt


@njit(cache=True)
def _close_trade(ti, tf, nt, side, sig, entry_idx, exit_idx, entry_px, exit_px, stop_px, target_px, reason,
                 mfe, mae, ambiguous, gap, opt_px, phase, entry_slip, exit_slip, tv, contracts, comm):
    ti[nt, T_SIDE] = side
    ti[nt, T_SIG] = sig
    ti[nt, T_ENTRY_IDX] = entry_idx
    ti[nt, T_EXIT_IDX] = exit_idx
    ti[nt, T_ENTRY_PX] = entry_px
    ti[nt, T_EXIT_PX] = exit_px
    ti[nt, T_STOP_PX] = stop_px
    ti[nt, T_TARGET_PX] = target_px
    ti[nt, T_REASON] = reason
    ti[nt, T_MFE] = mfe
    ti[nt, T_MAE] = mae
    ti[nt, T_AMBIG] = ambiguous
    ti[nt, T_SAME_BAR] = 1 if (exit_idx == entry_idx and phase != PH_OPEN) else 0
    ti[nt, T_GAP] = gap
    ti[nt, T_OPT_EXIT_PX] = opt_px
    ti[nt, T_EXIT_PHASE] = phase
    ti[nt, T_ENTRY_SLIP] = entry_slip
    ti[nt, T_EXIT_SLIP] = exit_slip
    tf[nt, TF_COMMISSION] = 2.0 * comm
    tf[nt, TF_PNL] = side * (exit_px - entry_px) * tv * contracts - 2.0 * comm
    tf[nt, TF_PNL_OPT] = side * (opt_px - entry_px) * tv * contracts - 2.0 * comm
    return nt + 1


# the exit-reason codes are compiled into this module's cached code: recompile when they change
refresh_if_changed(globals(), [exits.__file__])
