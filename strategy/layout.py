"""Array layouts of the step kernel (`strategy.kernels.run`): the names of every slot it reads or writes.

The kernel works on plain NumPy arrays; each constant below is the index of one slot (row) of one
array, and ``N_*`` is that array's size. Numba freezes these module-level integers into the compiled
code, so they cost nothing at run time.

Parameters ``pv`` (float64, ``N_PARAMS``), filled by `strategy.signals.pack_params`: ``P_*``.
    Session and mode: ``P_SESSION`` (`kernels.SESSION_CODES`), ``P_FLOW`` (1 = bid/ask order flow,
    0 = OHLCV proxy). 7.1: ``P_W`` battle window, ``P_THETA`` ball threshold, ``P_VW`` volume-median
    window, ``P_WCAP`` weight cap, ``P_STRONG`` strong-battle level. 7.2: ``P_BW`` base window,
    ``P_MAXW`` max width (ticks), ``P_CW``/``P_CFRAC`` consolidation window and std fraction,
    ``P_TL``/``P_GMIN``/``P_RMAX`` type look-back and green/red up-bar counts, ``P_QDUR`` and
    ``P_QW0..P_QW3`` quality duration and weights, ``P_QRESPECT`` (1 = declining-volume term),
    ``P_QMIN_REC`` minimum quality of a recorded base. 7.3: ``P_GR`` golden-rule ticks,
    ``P_TC_S``/``P_TC_W`` strong/weak trend continuation. 7.4: ``P_R8``/``P_R12`` pattern ranges
    (ticks). 7.5: ``P_WB``/``P_WT``/``P_WQ`` score weights, ``P_THR`` candidate threshold,
    ``P_ST_WIN``/``P_ST_BAL`` status levels, ``P_WARMUP`` warm-up bars. 7.6: ``P_QMIN`` minimum
    reference quality, ``P_STRICT`` strict golden-rule gate, ``P_ENT_START``/``P_ENT_END`` entry
    window and ``P_FRI`` Friday cut-off (ET minutes of the bar close), ``P_BLACKOUT`` cash-open
    blackout. Bar geometry: ``P_BAR_NS`` bar duration (ns), ``P_TICK`` tick size.

Input matrix ``x`` (int64, ``(N_X, bars)``): ``X_*`` rows, bar-start UTC ns, OHLC in ticks, volume,
    bid and ask volume.

State (caller-owned, `kernels.new_state`; a snapshot is a copy of these arrays):
    ``si`` (int64, ``N_SI``), ``S_*``: the bar counter ``S_T`` (in-session bars seen); exact running
    sums of the closes/volumes (and their squares) and of the true range; the size of the sorted
    volume window ``S_MED_N``; the current base episode ``S_EP_*`` (active, type, id, first bar,
    zone, id counter, declining-volume flag); the last green and red base records ``S_G_*`` /
    ``S_R_*`` (exists, id, zone, confirmation bar and time, violated since confirmation); the
    previous bar's long/short candidate flags ``S_PREV_LC``/``S_PREV_SC``.
    ``sf`` (float64, ``N_SF``), ``SF_*``: the episode's volume CV and the green/red base qualities.
    ``ri`` (int64, ``(N_RI, cap)``), ``RI_*``: rings of the last `cap` bars (OHLCV, ball, true range),
    indexed by ``t & (cap - 1)``. ``rf`` (float64, ``(N_RF, cap)``), ``RF_*``: rings of δ and the
    volume weight. ``dq`` (int64, ``(N_DQ, 2 + 2 cap)``), ``DQ_*``: the four monotonic deques (base
    window high/low, consolidation window high/low; `strategy.rolling`). ``med``: the sorted volume
    window (not indexed by name).

Outputs ``of`` (float64), ``oi`` (int64), ``ob`` (int8), each of shape ``(columns, bars)``: rows
    ``F_*``/``I_*``/``B_*`` are the columns named by ``F_COLS``/``I_COLS``/``B_COLS`` (same order).
    ``PRICE_COLS`` are the float columns written in the traded contract's prices. ``NAT`` marks a
    missing time in ``oi``. ``B_STATUS`` holds ``ST_*``, the positions of ``STATUS_LABELS``.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------------------------------------
# Parameter vector
P_SESSION, P_FLOW, P_W, P_THETA, P_VW, P_WCAP, P_STRONG, P_BW, P_MAXW, P_CW, P_CFRAC = range(11)
P_TL, P_GMIN, P_RMAX, P_QDUR, P_QW0, P_QW1, P_QW2, P_QW3, P_QRESPECT, P_QMIN_REC = range(11, 21)
P_GR, P_TC_S, P_TC_W, P_R8, P_R12, P_WB, P_WT, P_WQ, P_THR, P_ST_WIN, P_ST_BAL = range(21, 32)
P_QMIN, P_STRICT, P_ENT_START, P_ENT_END, P_FRI, P_BLACKOUT, P_WARMUP, P_BAR_NS, P_TICK = range(32, 41)
N_PARAMS = 41

# ---------------------------------------------------------------------------------------------
# Input matrix rows (int64): bar start time (UTC ns), prices in ticks, volumes
X_TS, X_O, X_H, X_L, X_C, X_V, X_BID, X_ASK = range(8)
N_X = 8

# ---------------------------------------------------------------------------------------------
# State
S_T, S_SUMC, S_SUMC2, S_SUMV, S_SUMV2, S_SUMTR, S_MED_N = range(7)
S_EP_ACTIVE, S_EP_TYPE, S_EP_ID, S_EP_START, S_EP_LO, S_EP_HI, S_EP_COUNTER, S_EP_DECL = range(7, 15)
S_G_EXISTS, S_G_ID, S_G_LO, S_G_HI, S_G_CONF_T, S_G_CONF_TS, S_G_VIOL = range(15, 22)
S_R_EXISTS, S_R_ID, S_R_LO, S_R_HI, S_R_CONF_T, S_R_CONF_TS, S_R_VIOL = range(22, 29)
S_PREV_LC, S_PREV_SC = range(29, 31)
N_SI = 31
SF_EP_CV, SF_G_Q, SF_R_Q = range(3)
N_SF = 3
RI_O, RI_H, RI_L, RI_C, RI_V, RI_BALL, RI_TR = range(7)
N_RI = 7
RF_DELTA, RF_W = range(2)
N_RF = 2
DQ_HI_B, DQ_LO_B, DQ_HI_C, DQ_LO_C = range(4)
N_DQ = 4

# ---------------------------------------------------------------------------------------------
# Outputs: three arrays (float64, int64, int8) of shape (columns, bars): each column is
# contiguous, so pandas takes it without a copy; the engine uses (columns, 1).
NAT = np.iinfo(np.int64).min
F_COLS = (
    "delta", "vol_weight", "vol_median", "battle", "base_lo", "base_hi", "base_width_ticks",
    "green_lo", "green_hi", "green_quality", "red_lo", "red_hi", "red_quality", "ref_lo", "ref_hi", "q_ref",
    "tc", "bq", "ldu_strength", "lud_strength", "cds_strength", "pattern", "bn_score", "confidence",
    "atr14_ticks", "rel_volume", "ret5_ticks", "ret15_ticks",
)
I_COLS = ("bar_index", "base_id", "green_id", "green_confirmed_at", "red_id", "red_confirmed_at", "ref_age_bars")
B_COLS = (
    "in_session", "ball", "base_active", "base_type", "bull_violation", "bear_violation", "bull_intact",
    "bear_intact", "ref_side", "bull_break", "bear_break", "ldu", "lud", "cds", "status",
    "long_candidate", "short_candidate", "long_entry", "short_entry",
)
# float columns that are prices: written as ticks × tick + the bar's roll offset (the traded contract's prices)
PRICE_COLS = ("base_lo", "base_hi", "green_lo", "green_hi", "red_lo", "red_hi", "ref_lo", "ref_hi")
(F_DELTA, F_W, F_VMED, F_BO, F_BLO, F_BHI, F_BWID, F_GLO, F_GHI, F_GQ, F_RLO, F_RHI, F_RQ, F_REFLO, F_REFHI,
 F_QREF, F_TC, F_BQ, F_LDUS, F_LUDS, F_CDSS, F_PAT, F_BN, F_CONF, F_ATR, F_RELV, F_RET5, F_RET15) = range(len(F_COLS))
I_BAR, I_BASE_ID, I_GID, I_GCONF, I_RID, I_RCONF, I_REFAGE = range(len(I_COLS))
(B_INS, B_BALL, B_ACTIVE, B_TYPE, B_BULLV, B_BEARV, B_BULLI, B_BEARI, B_REF, B_BULLBRK, B_BEARBRK,
 B_LDU, B_LUD, B_CDS, B_STATUS, B_LC, B_SC, B_LE, B_SE) = range(len(B_COLS))
# status codes are the positions of these labels (a pandas categorical takes them as they are)
STATUS_LABELS = ("defenders_winning", "contested", "balanced", "vikings_winning")
ST_DEFENDERS, ST_CONTESTED, ST_BALANCED, ST_VIKINGS = range(4)

__all__ = [name for name in dir() if name.isupper()]  # every layout constant, for `from .layout import *`
