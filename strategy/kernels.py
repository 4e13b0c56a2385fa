"""The Battle Navale step kernel: one closed bar in, one row of every signal column out.

`run` is the only implementation of the method (METHOD.md 7.1-7.6): a loop whose body is one
bar's step. The vectorized `compute_signals` runs it over all bars; the incremental
`SignalEngine` runs it over one bar per call (the loop lives inside the function so that the
batch path pays the call overhead once, not per bar). Both give identical values by
construction, and the tests check it anyway.

The loop body calls one step function per section of the method: `aggression` and
`volume_weight` (7.1), `base_activity` and `episode_step` (7.2), `golden_rule_step` and
`trend_continuation` (7.3), `patterns_step` (7.4), `score_step` (7.5), `entry_step` (7.6), and
the writers `write_floats`/`write_ints`/`write_flags`. They are ``inline="always"`` (numba
inlines them into `run` before LLVM sees the code) and take and return scalars and small named
tuples (`Prm`, `Sums`, `Episode`, `BaseRec`, one per section's result), so the loop's state stays
in registers. Arrays are touched only by `run` itself and by helpers it calls directly, each
taking one array: the ring readers (`battle_sum`, `up_closes`, `declining_volume`,
`lagged_bars`), the `strategy.rolling` structures and the writers (see the note above
`battle_sum`).

Conventions inside the kernel:
- prices are int64 ticks (exact comparisons such as ``C >= hi + 1 tick``); the edge converts;
- volumes are int64 (exact rolling sums);
- state lives in caller-owned arrays (`State`): scalars in `si`/`sf`, rings of the last `cap`
  bars in `ri`/`rf`, monotonic deques in `dq`, the sorted volume window in `med` (layouts in
  `strategy.layout`). Nothing is allocated per bar; a snapshot is a copy of those arrays.
  Inside `run` the scalars are local named tuples (`Sums`, `Episode`, `BaseRec`) loaded before
  the loop and stored back after it: LLVM cannot keep array elements in registers (the output
  arrays might alias them).
- time enters as the bar-start UTC ns; the kernel derives the bar-start and bar-close minute of
  day and the close's weekday in America/New_York from a per-hour UTC-offset table built at the
  edge (`et_offset_table`). The session filter is applied here, on the bar-start minute, so
  batch and incremental use the same filter before computing anything.
"""

from __future__ import annotations

import math
from collections import namedtuple

import numpy as np
from numba import njit

from .layout import *  # noqa: F403  the layouts are re-exported: K.B_LE, K.N_X, K.S_T, ... keep working
from .market.clock import ET, RTH_CLOSE_MIN, RTH_OPEN_MIN
from .numba_cache import refresh_if_changed
from .rolling import (
    deque_push_max,
    deque_push_min,
    sorted_insert,
    sorted_median,
    sorted_replace,
)

NS_MIN = 60_000_000_000
NS_HOUR = 3_600_000_000_000
NS_DAY = 86_400_000_000_000

SESSION_CODES = {"all": 0, "rth": 1, "globex": 2}
ATR_BARS = 14


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


# Time arithmetic is unsigned: a bar time (UTC ns) is after 1970, so floor division and modulo equal
# the unsigned ones, and unsigned division by a constant compiles to a multiply and a shift without
# the sign corrections of Python's floor semantics (docs/performance.md). A time before 1970 or
# outside the table is refused.

@njit(cache=True, inline="always")
def _et_local(ts: int, tz: np.ndarray) -> np.uint64:
    if ts < 0:
        raise ValueError("bar time before 1970")
    k = np.int64(np.uint64(ts) // np.uint64(NS_HOUR)) - tz[0] + 1
    if k < 1 or k >= tz.shape[0]:
        raise ValueError("bar time outside the time-zone table")
    local = ts + tz[k]
    if local < 0:
        raise ValueError("bar time before 1970")
    return np.uint64(local)


@njit(cache=True, inline="always")
def et_minute(ts: int, tz: np.ndarray) -> int:
    """Minute of the day in America/New_York of UTC time `ts` (ns)."""
    return np.int64(_et_local(ts, tz) // np.uint64(NS_MIN) % np.uint64(1440))


@njit(cache=True, inline="always")
def et_weekday(ts: int, tz: np.ndarray) -> int:
    """Weekday (0 = Monday) in America/New_York of UTC time `ts` (ns)."""
    return np.int64((_et_local(ts, tz) // np.uint64(NS_DAY) + np.uint64(3)) % np.uint64(7))  # 1970-01-01: Thursday


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


# ---------------------------------------------------------------------------------------------
# The step's values, as named tuples of scalars: numba passes them by value, so after inlining
# every field is a local that LLVM keeps in a register.

# the parameter vector as typed locals (bar counts and tick distances as int, switches as bool)
Prm = namedtuple("Prm", (
    "session", "flow", "W", "theta", "VW", "wcap", "strong", "BW", "maxw", "CW", "cfrac", "TL", "gmin", "rmax",
    "qdur", "qw0", "qw1", "qw2", "qw3", "qrespect", "qmin_rec", "gr", "tc_s", "tc_w", "r8", "r12", "wb", "wt",
    "wq", "thr", "st_win", "st_bal", "qmin", "strict", "ent_start", "ent_end", "fri", "blackout", "warmup",
    "bar_ns", "tick",
))
# state: exact running sums (closes and their squares over the consolidation window, volumes and
# their squares over the base window, true range over ATR_BARS)
Sums = namedtuple("Sums", ("c", "c2", "v", "v2", "tr"))
# state: the current base episode (7.2); `cv` is the volume CV over the base window at its last active bar
Episode = namedtuple("Episode", ("active", "btype", "id", "start", "lo", "hi", "counter", "decl", "cv"))
# state: the last green or red base record (7.2), `viol` set by the golden rule (7.3)
BaseRec = namedtuple("BaseRec", ("exists", "id", "lo", "hi", "conf_t", "conf_ts", "viol", "q"))
# one bar's results of the sections
Aggression = namedtuple("Aggression", ("delta", "ball", "w", "vmed", "bo"))
Activity = namedtuple("Activity", ("active", "btype", "width", "lo", "hi"))
GoldenRule = namedtuple("GoldenRule", ("bull_v", "bear_v", "g_intact", "r_intact", "ref"))
Trend = namedtuple("Trend", ("tc", "bq", "q_ref"))
Patterns = namedtuple("Patterns", ("ldu", "lud", "cds", "ldu_s", "lud_s", "cds_s", "pat"))
Score = namedtuple("Score", ("bn", "status", "conf", "lc", "sc"))
# bars t-1, t-2, t-3 from the rings (what the patterns read)
Lags = namedtuple("Lags", ("o1", "h1", "l1", "c1", "v1", "o2", "h2", "l2", "c2", "h3", "l3", "c3"))


@njit(cache=True, inline="always")
def load_params(pv: np.ndarray) -> Prm:
    """The parameter vector (`layout.P_*`) as a `Prm` of typed scalars."""
    return Prm(
        int(pv[P_SESSION]), pv[P_FLOW] > 0.5, int(pv[P_W]), pv[P_THETA], int(pv[P_VW]), pv[P_WCAP], pv[P_STRONG],
        int(pv[P_BW]), pv[P_MAXW], int(pv[P_CW]), pv[P_CFRAC], int(pv[P_TL]), pv[P_GMIN], pv[P_RMAX],
        pv[P_QDUR], pv[P_QW0], pv[P_QW1], pv[P_QW2], pv[P_QW3], not pv[P_QRESPECT] < 0.5, pv[P_QMIN_REC],
        int(pv[P_GR]), pv[P_TC_S], pv[P_TC_W], int(pv[P_R8]), int(pv[P_R12]), pv[P_WB], pv[P_WT],
        pv[P_WQ], pv[P_THR], pv[P_ST_WIN], pv[P_ST_BAL], pv[P_QMIN], pv[P_STRICT] > 0.5, pv[P_ENT_START],
        pv[P_ENT_END], pv[P_FRI], pv[P_BLACKOUT] > 0.5, pv[P_WARMUP], int(pv[P_BAR_NS]), pv[P_TICK],
    )


@njit(cache=True, inline="always")
def load_state(si: np.ndarray, sf: np.ndarray) -> tuple:
    """The scalar state (`layout.S_*`, `layout.SF_*`) as locals:
    ``(t, med_n, prev_lc, prev_sc, Sums, Episode, green BaseRec, red BaseRec)``."""
    sums = Sums(si[S_SUMC], si[S_SUMC2], si[S_SUMV], si[S_SUMV2], si[S_SUMTR])
    ep = Episode(si[S_EP_ACTIVE], si[S_EP_TYPE], si[S_EP_ID], si[S_EP_START], si[S_EP_LO], si[S_EP_HI],
                 si[S_EP_COUNTER], si[S_EP_DECL], sf[SF_EP_CV])
    green = BaseRec(si[S_G_EXISTS], si[S_G_ID], si[S_G_LO], si[S_G_HI], si[S_G_CONF_T], si[S_G_CONF_TS],
                    si[S_G_VIOL], sf[SF_G_Q])
    red = BaseRec(si[S_R_EXISTS], si[S_R_ID], si[S_R_LO], si[S_R_HI], si[S_R_CONF_T], si[S_R_CONF_TS],
                  si[S_R_VIOL], sf[SF_R_Q])
    return si[S_T], si[S_MED_N], si[S_PREV_LC], si[S_PREV_SC], sums, ep, green, red


@njit(cache=True, inline="always")
def store_state(si: np.ndarray, sf: np.ndarray, t: int, med_n: int, prev_lc: int, prev_sc: int, sums: Sums,
                ep: Episode, green: BaseRec, red: BaseRec) -> None:
    """Write the locals of `load_state` back into the state arrays."""
    si[S_T] = t
    si[S_MED_N] = med_n
    si[S_PREV_LC] = prev_lc
    si[S_PREV_SC] = prev_sc
    si[S_SUMC] = sums.c
    si[S_SUMC2] = sums.c2
    si[S_SUMV] = sums.v
    si[S_SUMV2] = sums.v2
    si[S_SUMTR] = sums.tr
    si[S_EP_ACTIVE] = ep.active
    si[S_EP_TYPE] = ep.btype
    si[S_EP_ID] = ep.id
    si[S_EP_START] = ep.start
    si[S_EP_LO] = ep.lo
    si[S_EP_HI] = ep.hi
    si[S_EP_COUNTER] = ep.counter
    si[S_EP_DECL] = ep.decl
    sf[SF_EP_CV] = ep.cv
    si[S_G_EXISTS] = green.exists
    si[S_G_ID] = green.id
    si[S_G_LO] = green.lo
    si[S_G_HI] = green.hi
    si[S_G_CONF_T] = green.conf_t
    si[S_G_CONF_TS] = green.conf_ts
    si[S_G_VIOL] = green.viol
    sf[SF_G_Q] = green.q
    si[S_R_EXISTS] = red.exists
    si[S_R_ID] = red.id
    si[S_R_LO] = red.lo
    si[S_R_HI] = red.hi
    si[S_R_CONF_T] = red.conf_t
    si[S_R_CONF_TS] = red.conf_ts
    si[S_R_VIOL] = red.viol
    sf[SF_R_Q] = red.q


# ---------------------------------------------------------------------------------------------
# Ring readers. Bar `t` (the count of in-session bars before this one) sits at ring slot
# ``t & mask``; a slot of a bar before the first one holds a stale or zero value that the callers
# ignore. Inside the loop only these readers, the `strategy.rolling` helpers and the output
# writers take arrays, one array each, and `run` calls them directly, never from inside another
# step function: numba then prunes the reference counting of the inlined array arguments. An
# array passed to a step function that makes inlined array calls itself (or several arrays with
# branches between their uses) keeps an atomic incref/decref pair per array per bar inside the
# loop (measured: ~20 % slower batch kernel).


@njit(cache=True, inline="always")
def battle_sum(rf: np.ndarray, mask: int, t: int, W: int) -> float:
    """METHOD 7.1 battle outcome over bars ``t-W+1..t``: Σ w·δ / Σ w (0 if Σ w is 0)."""
    num = 0.0
    den = 0.0
    for j in range(W):
        kk = (t - j) & mask
        num += rf[RF_W, kk] * rf[RF_DELTA, kk]
        den += rf[RF_W, kk]
    return num / den if den > 0 else 0.0


@njit(cache=True, inline="always")
def up_closes(ri: np.ndarray, mask: int, t: int, TL: int) -> int:
    """METHOD 7.2 u_t: the number of closes above the previous close over bars ``t-TL+1..t``."""
    u = 0
    for j in range(TL):
        if ri[RI_C, (t - j) & mask] > ri[RI_C, (t - j - 1) & mask]:
            u += 1
    return u


@njit(cache=True, inline="always")
def declining_volume(ri: np.ndarray, mask: int, t: int, BW: int) -> int:
    """METHOD 7.2 declining-volume flag: 1 if the later half of the base window's volumes sums
    to at most the earlier half."""
    half = BW // 2
    early = 0
    late = 0
    for j in range(half):
        late += ri[RI_V, (t - j) & mask]
        early += ri[RI_V, (t - BW + 1 + j) & mask]
    return 1 if late <= early else 0


@njit(cache=True, inline="always")
def lagged_bars(ri: np.ndarray, mask: int, t: int) -> Lags:
    """Bars ``t-1``, ``t-2``, ``t-3`` as the patterns (METHOD 7.4) read them."""
    k1 = (t - 1) & mask
    k2 = (t - 2) & mask
    k3 = (t - 3) & mask
    return Lags(ri[RI_O, k1], ri[RI_H, k1], ri[RI_L, k1], ri[RI_C, k1], ri[RI_V, k1], ri[RI_O, k2], ri[RI_H, k2],
                ri[RI_L, k2], ri[RI_C, k2], ri[RI_H, k3], ri[RI_L, k3], ri[RI_C, k3])


# ---------------------------------------------------------------------------------------------
# Step functions: scalars and named tuples in, scalars and named tuples out.


@njit(cache=True, inline="always")
def aggression(p: Prm, o: int, h: int, l: int, c: int, bid_v: int, ask_v: int):
    """METHOD 7.1 aggression δ (bid/ask order flow, or the OHLC body ratio) and ball (+1 Viking,
    -1 Defender, 0). Returns ``(delta, ball)``."""
    if p.flow:
        tot = ask_v + bid_v
        delta = (ask_v - bid_v) / tot if tot > 0 else 0.0
    else:
        delta = (c - o) / (h - l) if h > l else 0.0
    theta = p.theta
    ball = 1 if delta >= theta else (-1 if delta <= -theta else 0)
    return delta, ball


@njit(cache=True, inline="always")
def volume_weight(p: Prm, t: int, v: int, vmed: float) -> float:
    """METHOD 7.1 volume weight min(V / median, cap), 1 if the median is 0, NaN before the
    median window is full."""
    if t >= p.VW:
        return min(v / vmed, p.wcap) if vmed > 0 else 1.0
    return np.nan


@njit(cache=True, inline="always")
def update_sums(p: Prm, t: int, sums: Sums, c: int, v: int, tr: int, c_old: int, v_old: int, tr_old: int) -> Sums:
    """The exact running sums: closes (and squares) over `CW` bars, volumes (and squares) over
    `BW` bars, true range over ATR_BARS; `*_old` is the value leaving each window."""
    sumc = sums.c + c
    sumc2 = sums.c2 + c * c
    if t >= p.CW:
        sumc -= c_old
        sumc2 -= c_old * c_old
    sumv = sums.v + v
    sumv2 = sums.v2 + v * v
    if t >= p.BW:
        sumv -= v_old
        sumv2 -= v_old * v_old
    sumtr = sums.tr + tr
    if t >= ATR_BARS:
        sumtr -= tr_old
    return Sums(sumc, sumc2, sumv, sumv2, sumtr)


@njit(cache=True, inline="always")
def base_activity(p: Prm, t: int, sums: Sums, u: int, hi_b: int, lo_b: int, hi_c: int, lo_c: int) -> Activity:
    """METHOD 7.2 activity test and type: active when the base window is at most `maxw` ticks
    wide and the closes' std is below `cfrac` × the consolidation range; green (+1) or red (-1)
    by the up-close count `u` of the last `TL` bars."""
    active = 0
    btype = 0
    width = hi_b - lo_b
    TL = p.TL
    CW = p.CW
    if t >= TL:
        if u >= p.gmin:
            btype = 1
        elif u <= p.rmax:
            btype = -1
    if t >= CW - 1 and t >= p.BW - 1 and t >= TL:
        var_n2 = CW * sums.c2 - sums.c * sums.c  # CW^2 * population variance, exact
        std_c = math.sqrt(max(var_n2, 0)) / CW
        if width <= p.maxw and std_c < p.cfrac * (hi_c - lo_c):
            active = 1
    return Activity(active, btype, width, lo_b, hi_b)


@njit(cache=True, inline="always")
def episode_quality(p: Prm, ep: Episode, t: int) -> float:
    """METHOD 7.2 quality q of the episode `ep` that ended at bar ``t - 1``: duration, width,
    volume regularity and the respect (or declining-volume) term."""
    e = t - 1
    dur = (e - ep.start) + p.BW
    ew = ep.hi - ep.lo
    maxw = p.maxw
    width_term = 1.0 - ew / maxw if maxw > 0 else 1.0
    width_term = min(max(width_term, 0.0), 1.0)
    vol_term = min(max(1.0 - ep.cv, 0.0), 1.0)
    respect = float(ep.decl) if p.qrespect else 1.0
    return (p.qw0 * min(dur / p.qdur, 1.0) + p.qw1 * width_term
            + p.qw2 * vol_term + p.qw3 * respect)


@njit(cache=True, inline="always")
def episode_step(p: Prm, t: int, ts: int, act: Activity, sums: Sums, decl: int, ep: Episode, green: BaseRec,
                 red: BaseRec):
    """METHOD 7.2 episodes and confirmation: an episode that ends at ``t - 1`` (inactive now, or
    its type changed) is confirmed at `t` and, green or red with q >= `qmin_rec`, becomes the
    last green/red base record. An active bar starts or extends the episode (zone, volume CV,
    declining-volume flag `decl`). Returns ``(Episode, green, red)``."""
    active = act.active
    btype = act.btype
    ended = ep.active == 1 and (active == 0 or btype != ep.btype)
    if ended:
        q = episode_quality(p, ep, t)
        if ep.btype != 0 and q >= p.qmin_rec:
            rec = BaseRec(1, ep.id, ep.lo, ep.hi, t, ts, 0, q)
            if ep.btype == 1:
                green = rec
            else:
                red = rec
    ep_id = ep.id
    start = ep.start
    lo = ep.lo
    hi = ep.hi
    counter = ep.counter
    ep_decl = ep.decl
    cv = ep.cv
    if active == 1:
        if ep.active == 0 or ended:
            counter += 1
            ep_id = counter
            start = t
        lo = act.lo
        hi = act.hi
        BW = p.BW
        mean_v = sums.v / BW
        if mean_v > 0:
            var_v = max(BW * sums.v2 - sums.v * sums.v, 0) / (BW * BW)
            cv = math.sqrt(var_v) / mean_v
        else:
            cv = 0.0
        ep_decl = decl
    return Episode(active, btype, ep_id, start, lo, hi, counter, ep_decl, cv), green, red


@njit(cache=True, inline="always")
def _violated(b: BaseRec) -> BaseRec:
    return BaseRec(b.exists, b.id, b.lo, b.hi, b.conf_t, b.conf_ts, 1, b.q)


@njit(cache=True, inline="always")
def golden_rule_step(p: Prm, t: int, o: int, c: int, green: BaseRec, red: BaseRec):
    """METHOD 7.3 golden rule: bull violation (a red bar closing `gr` ticks below the green base
    after its confirmation; bear mirrored), intact flags, and the reference side (+1 green, -1
    red: the more recently confirmed base; 0 none). Returns ``(GoldenRule, green, red)``."""
    gr = p.gr
    bull_v = 0
    bear_v = 0
    if green.exists == 1 and t > green.conf_t and c < o and c <= green.lo - gr:
        green = _violated(green)
        bull_v = 1
    if red.exists == 1 and t > red.conf_t and c > o and c >= red.hi + gr:
        red = _violated(red)
        bear_v = 1
    g_intact = green.exists == 1 and green.viol == 0
    r_intact = red.exists == 1 and red.viol == 0
    ref = 0
    if green.exists == 1 and (red.exists == 0 or green.conf_t > red.conf_t):
        ref = 1
    elif red.exists == 1:
        ref = -1
    return GoldenRule(bull_v, bear_v, g_intact, r_intact, ref), green, red


@njit(cache=True, inline="always")
def trend_continuation(p: Prm, bo: float, gold: GoldenRule, green: BaseRec, red: BaseRec) -> Trend:
    """METHOD 7.3 trend continuation table (tc), and (7.5) the base term bq and the reference
    quality q_ref. A NaN battle outcome counts as not strong."""
    strong = p.strong
    tc = 0.0
    bq = 0.0
    q_ref = 0.0
    if gold.ref == 1:
        q_ref = green.q
        if gold.g_intact:
            tc = p.tc_s if bo > strong else p.tc_w
            bq = q_ref
        else:
            tc = -p.tc_s
    elif gold.ref == -1:
        q_ref = red.q
        if gold.r_intact:
            tc = -p.tc_s if bo < -strong else -p.tc_w
            bq = -q_ref
        else:
            tc = p.tc_s
    return Trend(tc, bq, q_ref)


@njit(cache=True, inline="always")
def breakouts(c: int, ref: int, green: BaseRec, red: BaseRec):
    """METHOD 7.2 breakouts of the close beyond the reference base by 1 tick:
    ``(bull_break, bear_break)``."""
    if ref == 1:
        return (1 if c >= green.hi + 1 else 0), (1 if c <= green.lo - 1 else 0)
    if ref == -1:
        return (1 if c >= red.hi + 1 else 0), (1 if c <= red.lo - 1 else 0)
    return 0, 0


@njit(cache=True, inline="always")
def patterns_step(p: Prm, t: int, o: int, h: int, l: int, vmed: float, lag: Lags) -> Patterns:
    """METHOD 7.4 Sierra patterns LDU/LUD/CDS completed at bar `t` (bars ``t-3..t``), their
    strengths and the clipped pattern score."""
    ldu = 0
    lud = 0
    cds = 0
    ldu_s = 0.0
    lud_s = 0.0
    cds_s = 0.0
    if t >= 3:
        o1 = lag.o1
        h1 = lag.h1
        l1 = lag.l1
        c1 = lag.c1
        o2 = lag.o2
        h2 = lag.h2
        l2 = lag.l2
        c2 = lag.c2
        h3 = lag.h3
        l3 = lag.l3
        c3 = lag.c3
        r8 = p.r8
        r12 = p.r12
        vratio = 1.0
        if vmed > 0:
            vratio = min(lag.v1 / vmed, 1.0)
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
    return Patterns(ldu, lud, cds, ldu_s, lud_s, cds_s, pat)


@njit(cache=True, inline="always")
def score_step(p: Prm, t: int, bo: float, trend: Trend, pat: float) -> Score:
    """METHOD 7.5 composite score bn (0 during warm-up or while BO is NaN), status, confidence,
    and the long/short candidates (bn beyond ±thr)."""
    warm = t >= p.warmup and bo == bo
    if warm:
        bn = p.wb * bo + p.wt * trend.tc + p.wq * trend.bq
    else:
        bn = 0.0
    if bn >= p.st_win:
        status = ST_VIKINGS
    elif bn <= -p.st_win:
        status = ST_DEFENDERS
    elif abs(bn) <= p.st_bal:
        status = ST_BALANCED
    else:
        status = ST_CONTESTED
    conf = (trend.q_ref + abs(pat) + abs(trend.tc) + abs(bn)) / 4.0
    thr = p.thr
    lc = 1 if (warm and bn >= thr) else 0
    sc = 1 if (warm and bn <= -thr) else 0
    return Score(bn, status, conf, lc, sc)


@njit(cache=True, inline="always")
def entry_step(p: Prm, close_min: int, weekday: int, lc: int, sc: int, prev_lc: int, prev_sc: int,
               gold: GoldenRule, q_ref: float):
    """METHOD 7.6 entry gates 1-4 (gate 5 is the simulator's / broker's): a new candidate (absent
    at the previous bar), the golden-rule gate (strict: an intact base on the trade's side), the
    reference quality, the time window (bar close, ET). Returns ``(long_entry, short_entry)``."""
    le = 0
    se = 0
    if lc == 1 or sc == 1:
        time_ok = p.ent_start <= close_min <= p.ent_end
        if weekday == 4 and close_min > p.fri:
            time_ok = False
        if p.blackout and RTH_OPEN_MIN <= close_min <= RTH_OPEN_MIN + 10:
            time_ok = False
        quality_ok = q_ref >= p.qmin
        ref = gold.ref
        g_intact = gold.g_intact
        r_intact = gold.r_intact
        if lc == 1 and prev_lc == 0 and time_ok and quality_ok:
            refused = (ref == -1 and r_intact) or (ref == 1 and not g_intact)
            if p.strict:
                refused = refused or not (ref == 1 and g_intact)
            le = 0 if refused else 1
        if sc == 1 and prev_sc == 0 and time_ok and quality_ok:
            refused = (ref == 1 and g_intact) or (ref == -1 and not r_intact)
            if p.strict:
                refused = refused or not (ref == -1 and r_intact)
            se = 0 if refused else 1
    return le, se


# ---------------------------------------------------------------------------------------------
# Output rows (`layout.F_*`/`I_*`/`B_*`): one writer per output array (one array each, see above).


@njit(cache=True, inline="always")
def write_floats(of: np.ndarray, row: int, p: Prm, t: int, c: int, v: int, off: float, sums: Sums, agg: Aggression,
                 act: Activity, green: BaseRec, red: BaseRec, ref: int, trend: Trend, pats: Patterns, score: Score,
                 c5: int, c15: int) -> None:
    """The float columns of row `row`; prices as ticks × tick + the bar's roll offset, `c5`/`c15`
    the closes 5 and 15 bars back."""
    tick = p.tick
    vmed = agg.vmed
    of[F_DELTA, row] = agg.delta
    of[F_W, row] = agg.w
    of[F_VMED, row] = vmed
    of[F_BO, row] = agg.bo
    if act.active == 1:
        of[F_BLO, row] = act.lo * tick + off
        of[F_BHI, row] = act.hi * tick + off
    else:
        of[F_BLO, row] = np.nan
        of[F_BHI, row] = np.nan
    of[F_BWID, row] = act.width if t >= p.BW - 1 else np.nan
    if green.exists == 1:
        of[F_GLO, row] = green.lo * tick + off
        of[F_GHI, row] = green.hi * tick + off
        of[F_GQ, row] = green.q
    else:
        of[F_GLO, row] = np.nan
        of[F_GHI, row] = np.nan
        of[F_GQ, row] = np.nan
    if red.exists == 1:
        of[F_RLO, row] = red.lo * tick + off
        of[F_RHI, row] = red.hi * tick + off
        of[F_RQ, row] = red.q
    else:
        of[F_RLO, row] = np.nan
        of[F_RHI, row] = np.nan
        of[F_RQ, row] = np.nan
    if ref == 1:
        of[F_REFLO, row] = green.lo * tick + off
        of[F_REFHI, row] = green.hi * tick + off
    elif ref == -1:
        of[F_REFLO, row] = red.lo * tick + off
        of[F_REFHI, row] = red.hi * tick + off
    else:
        of[F_REFLO, row] = np.nan
        of[F_REFHI, row] = np.nan
    of[F_QREF, row] = trend.q_ref
    of[F_TC, row] = trend.tc
    of[F_BQ, row] = trend.bq
    of[F_LDUS, row] = pats.ldu_s
    of[F_LUDS, row] = pats.lud_s
    of[F_CDSS, row] = pats.cds_s
    of[F_PAT, row] = pats.pat
    of[F_BN, row] = score.bn
    of[F_CONF, row] = score.conf
    of[F_ATR, row] = sums.tr / ATR_BARS if t >= ATR_BARS - 1 else np.nan
    of[F_RELV, row] = v / vmed if vmed > 0 else np.nan
    of[F_RET5, row] = c - c5 if t >= 5 else np.nan
    of[F_RET15, row] = c - c15 if t >= 15 else np.nan


@njit(cache=True, inline="always")
def write_ints(oi: np.ndarray, row: int, t: int, act: Activity, ep: Episode, green: BaseRec, red: BaseRec,
               ref: int) -> None:
    """The int columns of row `row`: bar index, ids, confirmation times, reference age."""
    oi[I_BASE_ID, row] = ep.id if act.active == 1 else -1
    oi[I_GCONF, row] = green.conf_ts if green.exists == 1 else NAT
    oi[I_RCONF, row] = red.conf_ts if red.exists == 1 else NAT
    if ref == 1:
        age = t - green.conf_t
    elif ref == -1:
        age = t - red.conf_t
    else:
        age = -1
    oi[I_REFAGE, row] = age
    oi[I_GID, row] = green.id
    oi[I_RID, row] = red.id
    oi[I_BAR, row] = t


@njit(cache=True, inline="always")
def write_flags(ob: np.ndarray, row: int, agg: Aggression, act: Activity, gold: GoldenRule, bull_brk: int,
                bear_brk: int, pats: Patterns, score: Score, le: int, se: int) -> None:
    """The int8 columns (flags, sides, status) of row `row`."""
    ob[B_INS, row] = 1
    ob[B_BALL, row] = agg.ball
    ob[B_ACTIVE, row] = act.active
    ob[B_TYPE, row] = act.btype
    ob[B_BULLV, row] = gold.bull_v
    ob[B_BEARV, row] = gold.bear_v
    ob[B_BULLI, row] = 1 if gold.g_intact else 0
    ob[B_BEARI, row] = 1 if gold.r_intact else 0
    ob[B_REF, row] = gold.ref
    ob[B_BULLBRK, row] = bull_brk
    ob[B_BEARBRK, row] = bear_brk
    ob[B_LDU, row] = pats.ldu
    ob[B_LUD, row] = pats.lud
    ob[B_CDS, row] = pats.cds
    ob[B_STATUS, row] = score.status
    ob[B_LC, row] = score.lc
    ob[B_SC, row] = score.sc
    ob[B_LE, row] = le
    ob[B_SE, row] = se


@njit(cache=True, inline="always")
def write_trade_flags(ob: np.ndarray, row: int, ins: int, lc: int, sc: int, le: int, se: int, bull_v: int,
                      bear_v: int) -> None:
    """The int8 columns the trade rules read (`TRADE_FLAGS`), and only those, of row `row`."""
    ob[B_INS, row] = ins
    ob[B_LC, row] = lc
    ob[B_SC, row] = sc
    ob[B_LE, row] = le
    ob[B_SE, row] = se
    ob[B_BULLV, row] = bull_v
    ob[B_BEARV, row] = bear_v


# the output columns `run_trade` writes: what the trade simulator and the live trade engine read
TRADE_FLAGS = ("in_session", "long_candidate", "short_candidate", "long_entry", "short_entry", "bull_violation",
               "bear_violation")


def _make_run(all_columns: bool, inline: str = "never"):
    """The step loop, compiled once per output set: `all_columns` writes every column of `F_COLS`/
    `I_COLS`/`B_COLS`; otherwise only `TRADE_FLAGS` (of `ob`), and LLVM then drops the work that
    feeds nothing else (patterns, confidence, the price columns). One source, two compilations: the
    flag is a constant of the closure, so each compiled loop has no branch on it."""

    @njit(cache=True, inline=inline)
    def run(pv, si, sf, ri, rf, dq, med, tz, x, xoff, of, oi, ob, i0, i1):
        """Advance the state over bars ``i0..i1-1`` of the input matrix `x` (rows `X_*`), writing
        their rows of `of`/`oi`/`ob`. `xoff` holds each bar's roll offset (continuous series: price
        outputs are in the traded contract's prices) or a single 0 for a plain series. This loop body
        is the only implementation of the method: the vectorized path runs it over all bars, the
        incremental engine over one bar at a time."""
        if i0 < 0:
            raise ValueError("negative first row")
        cap = ri.shape[1]
        mask = (cap - 1) & 0x3FFF_FFFF  # known non-negative: ring indices need no negative-index fix-up
        p = load_params(pv)
        has_off = xoff.shape[0] > 1
        t, med_n, prev_lc, prev_sc, sums, ep, green, red = load_state(si, sf)
        for row in range(i0, i1):
            ts = x[X_TS, row]
            o = x[X_O, row]
            h = x[X_H, row]
            l = x[X_L, row]
            c = x[X_C, row]
            v = x[X_V, row]
            off = xoff[row] if has_off else xoff[0]
            start_min = et_minute(ts, tz)
            close_ts = ts + p.bar_ns
            close_min = et_minute(close_ts, tz)
            if close_min < start_min:
                close_min += 1440  # a bar closing at/after midnight keeps its order
            weekday = et_weekday(close_ts, tz)
            if not in_session(start_min, p.session):
                if all_columns:
                    _neutral_row(of, oi, ob, row)
                else:
                    write_trade_flags(ob, row, 0, 0, 0, 0, 0, 0, 0)
                continue
            k = t & mask
            ri[RI_O, k] = o
            ri[RI_H, k] = h
            ri[RI_L, k] = l
            ri[RI_C, k] = c
            ri[RI_V, k] = v

            # 7.1 aggression, ball, volume weight, battle outcome
            delta, ball = aggression(p, o, h, l, c, x[X_BID, row], x[X_ASK, row])
            if t >= p.VW:
                vmed = sorted_median(med, med_n)
                sorted_replace(med, med_n, ri[RI_V, (t - p.VW) & mask], v)
            else:
                vmed = np.nan
                med_n = sorted_insert(med, med_n, v)
            w = volume_weight(p, t, v, vmed)
            rf[RF_DELTA, k] = delta
            rf[RF_W, k] = w
            ri[RI_BALL, k] = ball
            bo = battle_sum(rf, mask, t, p.W) if t >= p.VW + p.W - 1 else np.nan
            agg = Aggression(delta, ball, w, vmed, bo)

            # rolling windows: deques, exact integer sums, true range
            hi_b = deque_push_max(dq, DQ_HI_B, cap, t, h, p.BW)
            lo_b = deque_push_min(dq, DQ_LO_B, cap, t, l, p.BW)
            hi_c = deque_push_max(dq, DQ_HI_C, cap, t, h, p.CW)
            lo_c = deque_push_min(dq, DQ_LO_C, cap, t, l, p.CW)
            if t == 0:
                tr = h - l
            else:
                cp = ri[RI_C, (t - 1) & mask]
                tr = max(h, cp) - min(l, cp)
            ri[RI_TR, k] = tr
            sums = update_sums(p, t, sums, c, v, tr, ri[RI_C, (t - p.CW) & mask], ri[RI_V, (t - p.BW) & mask],
                               ri[RI_TR, (t - ATR_BARS) & mask])

            # 7.2 bases: activity and type, episodes, confirmation, records
            act = base_activity(p, t, sums, up_closes(ri, mask, t, p.TL), hi_b, lo_b, hi_c, lo_c)
            decl = declining_volume(ri, mask, t, p.BW) if act.active == 1 else 0
            ep, green, red = episode_step(p, t, ts, act, sums, decl, ep, green, red)

            # 7.3 golden rule, trend continuation
            gold, green, red = golden_rule_step(p, t, o, c, green, red)
            trend = trend_continuation(p, bo, gold, green, red)

            # 7.4 patterns, 7.5 score and status, 7.6 entry gates
            pats = patterns_step(p, t, o, h, l, vmed, lagged_bars(ri, mask, t))
            score = score_step(p, t, bo, trend, pats.pat)
            le, se = entry_step(p, close_min, weekday, score.lc, score.sc, prev_lc, prev_sc, gold, trend.q_ref)
            prev_lc = score.lc
            prev_sc = score.sc

            bull_brk, bear_brk = breakouts(c, gold.ref, green, red)
            if all_columns:
                write_floats(of, row, p, t, c, v, off, sums, agg, act, green, red, gold.ref, trend, pats, score,
                             ri[RI_C, (t - 5) & mask], ri[RI_C, (t - 15) & mask])
                write_ints(oi, row, t, act, ep, green, red, gold.ref)
                write_flags(ob, row, agg, act, gold, bull_brk, bear_brk, pats, score, le, se)
            else:
                write_trade_flags(ob, row, 1, score.lc, score.sc, le, se, gold.bull_v, gold.bear_v)
            t += 1
        store_state(si, sf, t, med_n, prev_lc, prev_sc, sums, ep, green, red)

    return run


run = _make_run(True)
run_trade = _make_run(False)
run_inline = _make_run(True, "always")


# the rolling helpers, the layouts and the clock constants are compiled into this module's cached code:
# recompile when they change
refresh_if_changed(globals(), [__file__.replace("kernels.py", name) for name in ("rolling.py", "layout.py", "market/clock.py")])
