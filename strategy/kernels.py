"""The Battle Navale step kernel: one closed bar in, one row of every signal column out.

`run` is the only implementation of the method (METHOD.md 7.1-7.6): a loop whose body is one
bar's step. The vectorized `compute_signals` runs it over all bars; the incremental
`SignalEngine` runs it over one bar per call (the loop lives inside the function so that the
batch path pays the call overhead once, not per bar). Both give identical values by
construction, and the tests check it anyway.

Conventions inside the kernel:
- prices are int64 ticks (exact comparisons such as ``C >= hi + 1 tick``); the edge converts;
- volumes are int64 (exact rolling sums);
- state lives in caller-owned arrays (`State`): scalars in `si`/`sf`, rings of the last `cap`
  bars in `ri`/`rf`, monotonic deques in `dq`, the sorted volume window in `med`. Nothing is
  allocated per bar; a snapshot is a copy of those arrays.
- time enters as the bar-start UTC ns; the kernel derives the bar-start and bar-close minute of
  day and the close's weekday in America/New_York from a per-hour UTC-offset table built at the
  edge (`et_offset_table`). The session filter is applied here, on the bar-start minute, so
  batch and incremental use the same filter before computing anything.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

from .market.clock import ET, RTH_CLOSE_MIN, RTH_OPEN_MIN
from .numba_cache import refresh_if_changed
from .rolling import (
    deque_push_max,
    deque_push_min,
    sorted_insert,
    sorted_median,
    sorted_replace,
)

# ---------------------------------------------------------------------------------------------
# Parameter vector layout (filled by strategy.signals.pack_params)
P_SESSION, P_FLOW, P_W, P_THETA, P_VW, P_WCAP, P_STRONG, P_BW, P_MAXW, P_CW, P_CFRAC = range(11)
P_TL, P_GMIN, P_RMAX, P_QDUR, P_QW0, P_QW1, P_QW2, P_QW3, P_QRESPECT, P_QMIN_REC = range(11, 21)
P_GR, P_TC_S, P_TC_W, P_R8, P_R12, P_WB, P_WT, P_WQ, P_THR, P_ST_WIN, P_ST_BAL = range(21, 32)
P_QMIN, P_STRICT, P_ENT_START, P_ENT_END, P_FRI, P_BLACKOUT, P_WARMUP, P_BAR_NS, P_TICK = range(32, 41)
N_PARAMS = 41

# Input matrix rows (int64): bar start time (UTC ns), prices in ticks, volumes
X_TS, X_O, X_H, X_L, X_C, X_V, X_BID, X_ASK = range(8)
N_X = 8
NS_MIN = 60_000_000_000
NS_HOUR = 3_600_000_000_000
NS_DAY = 86_400_000_000_000

SESSION_CODES = {"all": 0, "rth": 1, "globex": 2}
ATR_BARS = 14

# ---------------------------------------------------------------------------------------------
# State layout
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

NAT = np.iinfo(np.int64).min

# ---------------------------------------------------------------------------------------------
# Output layout: three arrays (float64, int64, int8) of shape (columns, bars): each column is
# contiguous, so pandas takes it without a copy; the engine uses (columns, 1).
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


def ring_capacity(pv: np.ndarray) -> int:
    """Ring size: a power of two holding every window plus one bar (deques and lags need it)."""
    need = int(max(pv[P_VW] + 1, pv[P_CW] + 1, pv[P_BW] + 1, pv[P_W] + 1, pv[P_TL] + 2, ATR_BARS + 1, 17))
    cap = 1
    while cap < need:
        cap <<= 1
    return cap


def new_state(pv: np.ndarray) -> tuple[np.ndarray, ...]:
    """Fresh state arrays ``(si, sf, ri, rf, dq, med)`` for parameter vector `pv`."""
    cap = ring_capacity(pv)
    si = np.zeros(N_SI, np.int64)
    si[S_EP_ID] = -1
    si[S_G_ID] = -1
    si[S_R_ID] = -1
    sf = np.zeros(N_SF, np.float64)
    ri = np.zeros((N_RI, cap), np.int64)
    rf = np.zeros((N_RF, cap), np.float64)
    dq = np.zeros((N_DQ, 2 + 2 * cap), np.int64)
    med = np.zeros(int(pv[P_VW]) + 1, np.int64)
    return si, sf, ri, rf, dq, med


def et_offset_table(first_ns: int, last_ns: int) -> np.ndarray:
    """UTC-offset table of America/New_York by UTC hour: ``[h0, off_0, off_1, ...]`` (offsets in ns)
    covering the hours of `first_ns`..`last_ns`. DST changes on the hour, so per-hour is exact."""
    import pandas as pd  # edge helper: builds a table the kernel reads

    h0 = first_ns // NS_HOUR
    h1 = last_ns // NS_HOUR
    hours = pd.DatetimeIndex((np.arange(h0, h1 + 1, dtype=np.int64) * NS_HOUR).view("datetime64[ns]"), tz="UTC")
    local = hours.tz_convert(ET).tz_localize(None)
    off = local.as_unit("ns").asi8 - hours.as_unit("ns").asi8
    return np.concatenate([[h0], off]).astype(np.int64)


@njit(cache=True, inline="always")
def _et_local(ts: int, tz: np.ndarray) -> int:
    k = ts // NS_HOUR - tz[0] + 1
    if k < 1 or k >= tz.shape[0]:
        raise ValueError("bar time outside the time-zone table")
    return ts + tz[k]


@njit(cache=True, inline="always")
def et_minute(ts: int, tz: np.ndarray) -> int:
    """Minute of the day in America/New_York of UTC time `ts` (ns)."""
    return (_et_local(ts, tz) // NS_MIN) % 1440


@njit(cache=True, inline="always")
def et_weekday(ts: int, tz: np.ndarray) -> int:
    """Weekday (0 = Monday) in America/New_York of UTC time `ts` (ns)."""
    return (_et_local(ts, tz) // NS_DAY + 3) % 7  # 1970-01-01 was a Thursday


@njit(cache=True)
def et_fields(ts: np.ndarray, tz: np.ndarray, bar_ns: int, start_min: np.ndarray, close_min: np.ndarray,
              weekday: np.ndarray) -> None:
    """Bar-start minute, bar-close minute and close weekday (ET) of every bar, as `run` computes them."""
    for i in range(ts.shape[0]):
        start_min[i] = et_minute(ts[i], tz)
        close_min[i] = et_minute(ts[i] + bar_ns, tz)
        if close_min[i] < start_min[i]:
            close_min[i] += 1440
        weekday[i] = et_weekday(ts[i] + bar_ns, tz)


@njit(cache=True, inline="always")
def _neutral_row(of: np.ndarray, oi: np.ndarray, ob: np.ndarray, row: int) -> None:
    for j in range(of.shape[0]):
        of[j, row] = np.nan
    for j in range(oi.shape[0]):
        oi[j, row] = -1
    oi[I_GCONF, row] = NAT
    oi[I_RCONF, row] = NAT
    for j in range(ob.shape[0]):
        ob[j, row] = 0


@njit(cache=True, inline="always")
def in_session(start_min: int, session_code: int) -> bool:
    """Session filter on the bar-start minute (ET): 0 all, 1 RTH 09:30-16:00, 2 outside RTH."""
    if session_code == 0:
        return True
    rth = RTH_OPEN_MIN <= start_min < RTH_CLOSE_MIN
    return rth if session_code == 1 else not rth


@njit(cache=True)
def run(pv, si, sf, ri, rf, dq, med, tz, x, xoff, of, oi, ob, i0, i1):
    """Advance the state over bars ``i0..i1-1`` of the input matrix `x` (rows `X_*`), writing
    their rows of `of`/`oi`/`ob`. `xoff` holds each bar's roll offset (continuous series: price
    outputs are in the traded contract's prices) or a single 0 for a plain series. This loop body is the only implementation of the method: the
    vectorized path runs it over all bars, the incremental engine over one bar at a time."""
    cap = ri.shape[1]
    mask = cap - 1
    W = int(pv[P_W])
    VW = int(pv[P_VW])
    BW = int(pv[P_BW])
    CW = int(pv[P_CW])
    TL = int(pv[P_TL])
    session_code = int(pv[P_SESSION])
    bar_ns = int(pv[P_BAR_NS])
    tick = pv[P_TICK]
    has_off = xoff.shape[0] > 1
    # parameters and state scalars in locals: LLVM cannot keep array elements in registers
    # (the output arrays might alias them); the state is stored back after the loop
    p_blackout = pv[P_BLACKOUT]
    p_cfrac = pv[P_CFRAC]
    p_ent_end = pv[P_ENT_END]
    p_ent_start = pv[P_ENT_START]
    p_flow = pv[P_FLOW]
    p_fri = pv[P_FRI]
    p_gmin = pv[P_GMIN]
    p_gr = pv[P_GR]
    p_maxw = pv[P_MAXW]
    p_qdur = pv[P_QDUR]
    p_qmin = pv[P_QMIN]
    p_qmin_rec = pv[P_QMIN_REC]
    p_qrespect = pv[P_QRESPECT]
    p_qw0 = pv[P_QW0]
    p_qw1 = pv[P_QW1]
    p_qw2 = pv[P_QW2]
    p_qw3 = pv[P_QW3]
    p_r12 = pv[P_R12]
    p_r8 = pv[P_R8]
    p_rmax = pv[P_RMAX]
    p_strict = pv[P_STRICT]
    p_strong = pv[P_STRONG]
    p_st_bal = pv[P_ST_BAL]
    p_st_win = pv[P_ST_WIN]
    p_tc_s = pv[P_TC_S]
    p_tc_w = pv[P_TC_W]
    p_theta = pv[P_THETA]
    p_thr = pv[P_THR]
    p_warmup = pv[P_WARMUP]
    p_wb = pv[P_WB]
    p_wcap = pv[P_WCAP]
    p_wq = pv[P_WQ]
    p_wt = pv[P_WT]
    s_ep_active = si[S_EP_ACTIVE]
    s_ep_counter = si[S_EP_COUNTER]
    s_ep_decl = si[S_EP_DECL]
    s_ep_hi = si[S_EP_HI]
    s_ep_id = si[S_EP_ID]
    s_ep_lo = si[S_EP_LO]
    s_ep_start = si[S_EP_START]
    s_ep_type = si[S_EP_TYPE]
    s_g_conf_t = si[S_G_CONF_T]
    s_g_conf_ts = si[S_G_CONF_TS]
    s_g_exists = si[S_G_EXISTS]
    s_g_hi = si[S_G_HI]
    s_g_id = si[S_G_ID]
    s_g_lo = si[S_G_LO]
    s_g_viol = si[S_G_VIOL]
    s_med_n = si[S_MED_N]
    s_prev_lc = si[S_PREV_LC]
    s_prev_sc = si[S_PREV_SC]
    s_r_conf_t = si[S_R_CONF_T]
    s_r_conf_ts = si[S_R_CONF_TS]
    s_r_exists = si[S_R_EXISTS]
    s_r_hi = si[S_R_HI]
    s_r_id = si[S_R_ID]
    s_r_lo = si[S_R_LO]
    s_r_viol = si[S_R_VIOL]
    s_sumc = si[S_SUMC]
    s_sumc2 = si[S_SUMC2]
    s_sumtr = si[S_SUMTR]
    s_sumv = si[S_SUMV]
    s_sumv2 = si[S_SUMV2]
    s_t = si[S_T]
    sf_ep_cv = sf[SF_EP_CV]
    sf_g_q = sf[SF_G_Q]
    sf_r_q = sf[SF_R_Q]
    for row in range(i0, i1):
        ts = x[X_TS, row]
        o = x[X_O, row]
        h = x[X_H, row]
        l = x[X_L, row]
        c = x[X_C, row]
        v = x[X_V, row]
        bid_v = x[X_BID, row]
        ask_v = x[X_ASK, row]
        off = xoff[row] if has_off else xoff[0]
        start_min = et_minute(ts, tz)
        close_ts = ts + bar_ns
        close_min = et_minute(close_ts, tz)
        if close_min < start_min:
            close_min += 1440  # a bar closing at/after midnight keeps its order
        weekday = et_weekday(close_ts, tz)
        if not in_session(start_min, session_code):
            _neutral_row(of, oi, ob, row)
            continue
        t = s_t
        k = t & mask

        ri[RI_O, k] = o
        ri[RI_H, k] = h
        ri[RI_L, k] = l
        ri[RI_C, k] = c
        ri[RI_V, k] = v

        # ---- 7.1 aggression, ball, volume weight, battle outcome -----------------------------
        if p_flow > 0.5:
            tot = ask_v + bid_v
            delta = (ask_v - bid_v) / tot if tot > 0 else 0.0
        else:
            delta = (c - o) / (h - l) if h > l else 0.0
        theta = p_theta
        ball = 1 if delta >= theta else (-1 if delta <= -theta else 0)

        n_med = s_med_n
        if t >= VW:
            vmed = sorted_median(med, n_med)
            w = min(v / vmed, p_wcap) if vmed > 0 else 1.0
            sorted_replace(med, n_med, ri[RI_V, (t - VW) & mask], v)
        else:
            vmed = np.nan
            w = np.nan
            n_med = sorted_insert(med, n_med, v)
        s_med_n = n_med

        rf[RF_DELTA, k] = delta
        rf[RF_W, k] = w
        ri[RI_BALL, k] = ball
        if t >= VW + W - 1:
            num = 0.0
            den = 0.0
            for j in range(W):
                kk = (t - j) & mask
                num += rf[RF_W, kk] * rf[RF_DELTA, kk]
                den += rf[RF_W, kk]
            bo = num / den if den > 0 else 0.0
        else:
            bo = np.nan

        # ---- rolling windows (deques, exact integer sums) -----------------------------------------
        hi_b = deque_push_max(dq, DQ_HI_B, cap, t, h, BW)
        lo_b = deque_push_min(dq, DQ_LO_B, cap, t, l, BW)
        hi_c = deque_push_max(dq, DQ_HI_C, cap, t, h, CW)
        lo_c = deque_push_min(dq, DQ_LO_C, cap, t, l, CW)
        s_sumc += c
        s_sumc2 += c * c
        if t >= CW:
            cold = ri[RI_C, (t - CW) & mask]
            s_sumc -= cold
            s_sumc2 -= cold * cold
        s_sumv += v
        s_sumv2 += v * v
        if t >= BW:
            vold = ri[RI_V, (t - BW) & mask]
            s_sumv -= vold
            s_sumv2 -= vold * vold
        if t == 0:
            tr = h - l
        else:
            cp = ri[RI_C, (t - 1) & mask]
            tr = max(h, cp) - min(l, cp)
        ri[RI_TR, k] = tr
        s_sumtr += tr
        if t >= ATR_BARS:
            s_sumtr -= ri[RI_TR, (t - ATR_BARS) & mask]

        # ---- 7.2 base activity and type ----------------------------------------------------------
        active = 0
        btype = 0
        width = hi_b - lo_b
        if t >= TL:
            u = 0
            for j in range(TL):
                if ri[RI_C, (t - j) & mask] > ri[RI_C, (t - j - 1) & mask]:
                    u += 1
            if u >= p_gmin:
                btype = 1
            elif u <= p_rmax:
                btype = -1
        if t >= CW - 1 and t >= BW - 1 and t >= TL:
            var_n2 = CW * s_sumc2 - s_sumc * s_sumc  # CW^2 * population variance, exact
            std_c = math.sqrt(max(var_n2, 0)) / CW
            if width <= p_maxw and std_c < p_cfrac * (hi_c - lo_c):
                active = 1

        # ---- episodes and confirmation at e+1 ------------------------------------------------------
        prev_active = s_ep_active
        prev_type = s_ep_type
        ended = prev_active == 1 and (active == 0 or btype != prev_type)
        if ended:
            e = t - 1
            dur = (e - s_ep_start) + BW
            ew = s_ep_hi - s_ep_lo
            width_term = 1.0 - ew / p_maxw if p_maxw > 0 else 1.0
            width_term = min(max(width_term, 0.0), 1.0)
            vol_term = min(max(1.0 - sf_ep_cv, 0.0), 1.0)
            respect = 1.0 if p_qrespect < 0.5 else float(s_ep_decl)
            q = (p_qw0 * min(dur / p_qdur, 1.0) + p_qw1 * width_term
                 + p_qw2 * vol_term + p_qw3 * respect)
            if prev_type != 0 and q >= p_qmin_rec:
                if prev_type == 1:
                    s_g_exists = 1
                    s_g_id = s_ep_id
                    s_g_lo = s_ep_lo
                    s_g_hi = s_ep_hi
                    s_g_conf_t = t
                    s_g_conf_ts = ts
                    s_g_viol = 0
                    sf_g_q = q
                else:
                    s_r_exists = 1
                    s_r_id = s_ep_id
                    s_r_lo = s_ep_lo
                    s_r_hi = s_ep_hi
                    s_r_conf_t = t
                    s_r_conf_ts = ts
                    s_r_viol = 0
                    sf_r_q = q
        if active == 1:
            if prev_active == 0 or ended:
                s_ep_counter += 1
                s_ep_id = s_ep_counter
                s_ep_start = t
            s_ep_lo = lo_b
            s_ep_hi = hi_b
            mean_v = s_sumv / BW
            if mean_v > 0:
                var_v = max(BW * s_sumv2 - s_sumv * s_sumv, 0) / (BW * BW)
                sf_ep_cv = math.sqrt(var_v) / mean_v
            else:
                sf_ep_cv = 0.0
            half = BW // 2
            early = 0
            late = 0
            for j in range(half):
                late += ri[RI_V, (t - j) & mask]
                early += ri[RI_V, (t - BW + 1 + j) & mask]
            s_ep_decl = 1 if late <= early else 0
        s_ep_active = active
        s_ep_type = btype

        # ---- 7.3 golden rule --------------------------------------------------------------------
        gr = int(p_gr)
        bull_v = 0
        bear_v = 0
        if s_g_exists == 1 and t > s_g_conf_t and c < o and c <= s_g_lo - gr:
            s_g_viol = 1
            bull_v = 1
        if s_r_exists == 1 and t > s_r_conf_t and c > o and c >= s_r_hi + gr:
            s_r_viol = 1
            bear_v = 1
        g_intact = s_g_exists == 1 and s_g_viol == 0
        r_intact = s_r_exists == 1 and s_r_viol == 0
        ref = 0
        if s_g_exists == 1 and (s_r_exists == 0 or s_g_conf_t > s_r_conf_t):
            ref = 1
        elif s_r_exists == 1:
            ref = -1
        strong = p_strong
        tc = 0.0
        bq = 0.0
        q_ref = 0.0
        if ref == 1:
            q_ref = sf_g_q
            if g_intact:
                tc = p_tc_s if bo > strong else p_tc_w
                bq = q_ref
            else:
                tc = -p_tc_s
        elif ref == -1:
            q_ref = sf_r_q
            if r_intact:
                tc = -p_tc_s if bo < -strong else -p_tc_w
                bq = -q_ref
            else:
                tc = p_tc_s

        # ---- 7.4 Sierra patterns at completion bar t ----------------------------------------------
        ldu = 0
        lud = 0
        cds = 0
        ldu_s = 0.0
        lud_s = 0.0
        cds_s = 0.0
        if t >= 3:
            k1 = (t - 1) & mask
            k2 = (t - 2) & mask
            k3 = (t - 3) & mask
            o1 = ri[RI_O, k1]
            h1 = ri[RI_H, k1]
            l1 = ri[RI_L, k1]
            c1 = ri[RI_C, k1]
            o2 = ri[RI_O, k2]
            h2 = ri[RI_H, k2]
            l2 = ri[RI_L, k2]
            c2 = ri[RI_C, k2]
            h3 = ri[RI_H, k3]
            l3 = ri[RI_L, k3]
            c3 = ri[RI_C, k3]
            r8 = int(p_r8)
            r12 = int(p_r12)
            vratio = 1.0
            if vmed > 0:
                vratio = min(ri[RI_V, k1] / vmed, 1.0)
            elif not vmed >= 0:  # NaN: the median window is not full yet
                vratio = np.nan
            if o1 < c2 and h2 > l1 + r8 and o > c1 and h > l1 + r8 and h > h2:
                ldu = 1
                ldu_s = 0.7 * min((h2 - l1) / (2.0 * r8), 1.0) + 0.3 * vratio if r8 > 0 else 0.7 + 0.3 * vratio
            if o1 > c2 and h1 > l2 + r8 and o < c1 and h1 > l + r8 and l < l2:
                lud = 1
                lud_s = 0.7 * min((h1 - l2) / (2.0 * r8), 1.0) + 0.3 * vratio if r8 > 0 else 0.7 + 0.3 * vratio
            if o < c1 and h1 > l + r12 and l < l1 and o2 < c3 and h3 > l2 + r12 and l2 < l3 and h1 < h2:
                cds = 1
                cds_s = 0.8 * min((h3 - l2) / (2.0 * r12), 1.0) if r12 > 0 else 0.8
        pat = min(max(ldu_s - lud_s - cds_s, -1.0), 1.0)

        # ---- 7.5 composite score, status, confidence -------------------------------------------
        warm = t >= p_warmup and bo == bo
        if warm:
            bn = p_wb * bo + p_wt * tc + p_wq * bq
        else:
            bn = 0.0
        if bn >= p_st_win:
            status = ST_VIKINGS
        elif bn <= -p_st_win:
            status = ST_DEFENDERS
        elif abs(bn) <= p_st_bal:
            status = ST_BALANCED
        else:
            status = ST_CONTESTED
        conf = (q_ref + abs(pat) + abs(tc) + abs(bn)) / 4.0
        thr = p_thr
        lc = 1 if (warm and bn >= thr) else 0
        sc = 1 if (warm and bn <= -thr) else 0

        # ---- 7.6 entry gates 1-4 (gate 5 is the simulator's / broker's) --------------------------
        le = 0
        se = 0
        if lc == 1 or sc == 1:
            time_ok = p_ent_start <= close_min <= p_ent_end
            if weekday == 4 and close_min > p_fri:
                time_ok = False
            if p_blackout > 0.5 and RTH_OPEN_MIN <= close_min <= RTH_OPEN_MIN + 10:
                time_ok = False
            quality_ok = q_ref >= p_qmin
            strict = p_strict > 0.5
            if lc == 1 and s_prev_lc == 0 and time_ok and quality_ok:
                refused = (ref == -1 and r_intact) or (ref == 1 and not g_intact)
                if strict:
                    refused = refused or not (ref == 1 and g_intact)
                le = 0 if refused else 1
            if sc == 1 and s_prev_sc == 0 and time_ok and quality_ok:
                refused = (ref == 1 and g_intact) or (ref == -1 and not r_intact)
                if strict:
                    refused = refused or not (ref == -1 and r_intact)
                se = 0 if refused else 1
        s_prev_lc = lc
        s_prev_sc = sc

        # ---- outputs ----------------------------------------------------------------------------------
        of[F_DELTA, row] = delta
        of[F_W, row] = w
        of[F_VMED, row] = vmed
        of[F_BO, row] = bo
        if active == 1:
            of[F_BLO, row] = lo_b * tick + off
            of[F_BHI, row] = hi_b * tick + off
            oi[I_BASE_ID, row] = s_ep_id
        else:
            of[F_BLO, row] = np.nan
            of[F_BHI, row] = np.nan
            oi[I_BASE_ID, row] = -1
        of[F_BWID, row] = width if t >= BW - 1 else np.nan
        if s_g_exists == 1:
            of[F_GLO, row] = s_g_lo * tick + off
            of[F_GHI, row] = s_g_hi * tick + off
            of[F_GQ, row] = sf_g_q
            oi[I_GCONF, row] = s_g_conf_ts
        else:
            of[F_GLO, row] = np.nan
            of[F_GHI, row] = np.nan
            of[F_GQ, row] = np.nan
            oi[I_GCONF, row] = NAT
        oi[I_GID, row] = s_g_id
        if s_r_exists == 1:
            of[F_RLO, row] = s_r_lo * tick + off
            of[F_RHI, row] = s_r_hi * tick + off
            of[F_RQ, row] = sf_r_q
            oi[I_RCONF, row] = s_r_conf_ts
        else:
            of[F_RLO, row] = np.nan
            of[F_RHI, row] = np.nan
            of[F_RQ, row] = np.nan
            oi[I_RCONF, row] = NAT
        oi[I_RID, row] = s_r_id
        bull_brk = 0
        bear_brk = 0
        if ref == 1:
            of[F_REFLO, row] = s_g_lo * tick + off
            of[F_REFHI, row] = s_g_hi * tick + off
            oi[I_REFAGE, row] = t - s_g_conf_t
        elif ref == -1:
            of[F_REFLO, row] = s_r_lo * tick + off
            of[F_REFHI, row] = s_r_hi * tick + off
            oi[I_REFAGE, row] = t - s_r_conf_t
        else:
            of[F_REFLO, row] = np.nan
            of[F_REFHI, row] = np.nan
            oi[I_REFAGE, row] = -1
        if ref == 1:
            bull_brk = 1 if c >= s_g_hi + 1 else 0
            bear_brk = 1 if c <= s_g_lo - 1 else 0
        elif ref == -1:
            bull_brk = 1 if c >= s_r_hi + 1 else 0
            bear_brk = 1 if c <= s_r_lo - 1 else 0
        of[F_QREF, row] = q_ref
        of[F_TC, row] = tc
        of[F_BQ, row] = bq
        of[F_LDUS, row] = ldu_s
        of[F_LUDS, row] = lud_s
        of[F_CDSS, row] = cds_s
        of[F_PAT, row] = pat
        of[F_BN, row] = bn
        of[F_CONF, row] = conf
        of[F_ATR, row] = s_sumtr / ATR_BARS if t >= ATR_BARS - 1 else np.nan
        of[F_RELV, row] = v / vmed if vmed > 0 else np.nan
        of[F_RET5, row] = c - ri[RI_C, (t - 5) & mask] if t >= 5 else np.nan
        of[F_RET15, row] = c - ri[RI_C, (t - 15) & mask] if t >= 15 else np.nan
        oi[I_BAR, row] = t
        ob[B_INS, row] = 1
        ob[B_BALL, row] = ball
        ob[B_ACTIVE, row] = active
        ob[B_TYPE, row] = btype
        ob[B_BULLV, row] = bull_v
        ob[B_BEARV, row] = bear_v
        ob[B_BULLI, row] = 1 if g_intact else 0
        ob[B_BEARI, row] = 1 if r_intact else 0
        ob[B_REF, row] = ref
        ob[B_BULLBRK, row] = bull_brk
        ob[B_BEARBRK, row] = bear_brk
        ob[B_LDU, row] = ldu
        ob[B_LUD, row] = lud
        ob[B_CDS, row] = cds
        ob[B_STATUS, row] = status
        ob[B_LC, row] = lc
        ob[B_SC, row] = sc
        ob[B_LE, row] = le
        ob[B_SE, row] = se
        s_t = t + 1
    # store the state back
    si[S_EP_ACTIVE] = s_ep_active
    si[S_EP_COUNTER] = s_ep_counter
    si[S_EP_DECL] = s_ep_decl
    si[S_EP_HI] = s_ep_hi
    si[S_EP_ID] = s_ep_id
    si[S_EP_LO] = s_ep_lo
    si[S_EP_START] = s_ep_start
    si[S_EP_TYPE] = s_ep_type
    si[S_G_CONF_T] = s_g_conf_t
    si[S_G_CONF_TS] = s_g_conf_ts
    si[S_G_EXISTS] = s_g_exists
    si[S_G_HI] = s_g_hi
    si[S_G_ID] = s_g_id
    si[S_G_LO] = s_g_lo
    si[S_G_VIOL] = s_g_viol
    si[S_MED_N] = s_med_n
    si[S_PREV_LC] = s_prev_lc
    si[S_PREV_SC] = s_prev_sc
    si[S_R_CONF_T] = s_r_conf_t
    si[S_R_CONF_TS] = s_r_conf_ts
    si[S_R_EXISTS] = s_r_exists
    si[S_R_HI] = s_r_hi
    si[S_R_ID] = s_r_id
    si[S_R_LO] = s_r_lo
    si[S_R_VIOL] = s_r_viol
    si[S_SUMC] = s_sumc
    si[S_SUMC2] = s_sumc2
    si[S_SUMTR] = s_sumtr
    si[S_SUMV] = s_sumv
    si[S_SUMV2] = s_sumv2
    si[S_T] = s_t
    sf[SF_EP_CV] = sf_ep_cv
    sf[SF_G_Q] = sf_g_q
    sf[SF_R_Q] = sf_r_q


# the rolling helpers and the clock constants are compiled into this module's cached code:
# recompile when they change
refresh_if_changed(globals(), [__file__.replace("kernels.py", "rolling.py"),
                               __file__.replace("kernels.py", "market/clock.py")])
