"""`compute_signals`: the vectorized Battle Navale signals over a bar frame (the pandas edge of
`strategy.kernels`). Every intermediate column is returned so a user can see why a signal fired.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from numba import njit

from . import kernels as K
from . import layout as L
from .market.instruments import get_spec
from .params import Params

NS_PER_MIN = 60_000_000_000

# Output column order: the list first, then the extra context columns.
COLUMNS: tuple[str, ...] = (
    "in_session", "bar_index", "delta", "ball", "vol_weight", "vol_median", "battle",
    "base_active", "base_type", "base_id", "base_lo", "base_hi", "base_width_ticks",
    "green_lo", "green_hi", "green_quality", "green_confirmed_at", "green_id",
    "red_lo", "red_hi", "red_quality", "red_confirmed_at", "red_id",
    "bull_violation", "bear_violation", "bull_intact", "bear_intact",
    "ref_side", "ref_lo", "ref_hi", "q_ref", "ref_age_bars", "bull_break", "bear_break", "tc", "bq",
    "ldu", "lud", "cds", "ldu_strength", "lud_strength", "cds_strength", "pattern",
    "bn_score", "status", "confidence",
    "long_candidate", "short_candidate", "long_entry", "short_entry",
    "atr14_ticks", "rel_volume", "ret5_ticks", "ret15_ticks",
)
BOOL_COLS = frozenset(("in_session", "base_active", "bull_violation", "bear_violation", "bull_intact", "bear_intact",
                       "bull_break", "bear_break", "ldu", "lud", "cds", "long_candidate", "short_candidate",
                       "long_entry", "short_entry"))
TIME_COLS = frozenset(("green_confirmed_at", "red_confirmed_at"))
STATUS_CATEGORIES = list(L.STATUS_LABELS)
_STATUS_DTYPE = pd.CategoricalDtype(STATUS_CATEGORIES)
_UTC_NS = pd.DatetimeTZDtype("ns", "UTC")
_F_POS = {n: j for j, n in enumerate(L.F_COLS)}
_I_POS = {n: j for j, n in enumerate(L.I_COLS)}
_B_POS = {n: j for j, n in enumerate(L.B_COLS)}
assert set(COLUMNS) == set(_F_POS) | set(_I_POS) | set(_B_POS)


def pack_params(params: Params, order_flow: bool, bar_ns: int, tick_size: float) -> np.ndarray:
    """The kernel's parameter vector for `params`, the order-flow mode, bar length (ns) and tick size."""
    p = np.zeros(L.N_PARAMS, np.float64)
    p[L.P_SESSION] = K.SESSION_CODES[params.session]
    p[L.P_FLOW] = 1.0 if order_flow else 0.0
    p[L.P_W] = params.aggression_window_bars
    p[L.P_THETA] = params.ball_threshold_bidask if order_flow else params.ball_threshold_ohlcv
    p[L.P_VW] = params.volume_median_bars
    p[L.P_WCAP] = params.volume_weight_cap
    p[L.P_STRONG] = params.strong_battle
    p[L.P_BW] = params.base_window_bars
    p[L.P_MAXW] = params.base_max_width_ticks
    p[L.P_CW] = params.consolidation_bars
    p[L.P_CFRAC] = params.consolidation_std_frac
    p[L.P_TL] = params.type_lookback_bars
    p[L.P_GMIN] = params.green_min_up
    p[L.P_RMAX] = params.red_max_up
    p[L.P_QDUR] = params.quality_duration_bars
    p[L.P_QW0:L.P_QW3 + 1] = params.quality_weights
    p[L.P_QRESPECT] = 1.0 if params.quality_respect_term == "declining_volume" else 0.0
    p[L.P_QMIN_REC] = params.min_record_quality
    p[L.P_GR] = params.golden_rule_ticks
    p[L.P_TC_S] = params.tc_strong
    p[L.P_TC_W] = params.tc_weak
    p[L.P_R8] = params.ldu_lud_range_ticks
    p[L.P_R12] = params.cds_range_ticks
    p[L.P_WB] = params.weight_battle
    p[L.P_WT] = params.weight_trend
    p[L.P_WQ] = params.weight_base
    p[L.P_THR] = params.entry_threshold
    p[L.P_ST_WIN] = params.status_winning
    p[L.P_ST_BAL] = params.status_balanced
    p[L.P_QMIN] = params.min_base_quality
    p[L.P_STRICT] = 1.0 if params.golden_rule_strict else 0.0
    p[L.P_ENT_START] = params.minutes("entry_start_et")
    p[L.P_ENT_END] = params.minutes("entry_end_et")
    p[L.P_FRI] = params.minutes("friday_cutoff_et")
    p[L.P_BLACKOUT] = 1.0 if params.cash_open_blackout else 0.0
    p[L.P_WARMUP] = params.warmup_bars
    p[L.P_BAR_NS] = bar_ns
    p[L.P_TICK] = tick_size
    return p


def resolve_order_flow(bars: pd.DataFrame, params: Params, order_flow: str | None = None) -> bool:
    """True for bid/ask (exact δ), False for the OHLCV proxy. Never mixes: 'bidask' without the columns raises."""
    choice = order_flow or params.order_flow
    has = "bid_volume" in bars.columns and "ask_volume" in bars.columns
    if choice == "auto":
        return bool(bars.attrs.get("order_flow", has)) and has
    if choice == "bidask":
        if not has:
            src = bars.attrs.get("sources") or ["<frame>"]
            raise ValueError(f"order_flow='bidask' but {src[0]} has no bid_volume/ask_volume columns; use 'ohlcv'")
        return True
    if choice == "ohlcv":
        return False
    raise ValueError(f"order_flow must be 'auto', 'bidask' or 'ohlcv', not {choice!r}")


def resolve_tick_size(bars: pd.DataFrame, tick_size: float | None = None) -> float:
    """Tick size from the argument, the frame's attrs, or the instrument table."""
    if tick_size:
        return float(tick_size)
    if bars.attrs.get("tick_size"):
        return float(bars.attrs["tick_size"])
    sym = bars.attrs.get("root") or bars.attrs.get("symbol")
    if sym:
        return get_spec(sym).tick_size
    raise ValueError("tick size unknown: pass tick_size= or load bars with research.data.load_bars")


def bar_duration_ns(bars: pd.DataFrame, bar_seconds: float | None = None) -> int:
    """Bar length in ns: argument, ``attrs['bar']`` (e.g. '5min'), else the most common spacing."""
    if bar_seconds:
        return int(round(bar_seconds * 1e9))
    spec = bars.attrs.get("bar")
    if isinstance(spec, str):
        try:
            return int(pd.Timedelta(spec).value)
        except ValueError:
            pass  # volume/tick bars: fall through to the spacing
    t = bars.index.as_unit("ns").asi8
    if len(t) < 2:
        raise ValueError("cannot infer the bar size from fewer than 2 bars: pass bar_seconds=")
    d = np.diff(t)
    vals, counts = np.unique(d[d > 0], return_counts=True)
    return int(vals[np.argmax(counts)])


def to_ticks(values: np.ndarray, tick_size: float, what: str, index: pd.Index, offset: np.ndarray | None = None,
             out: np.ndarray | None = None) -> np.ndarray:
    """Prices (minus `offset`) -> int64 ticks ``rint((price - offset) / tick)``, into `out` if given;
    raises naming the first off-grid row (by more than 1e-6 tick)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty(len(values), np.int64) if out is None else out
    off = np.zeros(1) if offset is None else np.ascontiguousarray(offset, dtype=np.float64)
    bad = _ticks_kernel(values, off, float(tick_size), out)
    if bad >= 0:
        raise ValueError(f"{what} at row {bad} ({index[bad]}) = {values[bad]!r} is not on the {tick_size} tick grid")
    return out


@njit(cache=True, inline="always")
def _tick_of(value, d, tick):
    # (ticks, on the grid) of price `value` minus offset `d`: rint((value - d) / tick), within 1e-6 tick
    q = (value - d) / tick
    r = np.rint(q)
    if abs(q - r) <= 1e-6:
        return np.int64(r), True
    return np.int64(0), False


@njit(cache=True)
def _ticks_kernel(values, off, tick, out):
    # one pass instead of numpy's five temporaries; returns the first off-grid row or -1
    has_off = off.shape[0] > 1
    for i in range(values.shape[0]):
        t, ok = _tick_of(values[i], off[i] if has_off else off[0], tick)
        if not ok:
            return i
        out[i] = t
    return -1


_PRICE_INPUTS = ("open", "high", "low", "close")


def _int64(values: np.ndarray) -> np.ndarray:
    # numpy's assignment cast (what writing the column into an int64 matrix does), without a copy for int64
    return np.ascontiguousarray(values if values.dtype == np.int64 else values.astype(np.int64))


@njit(cache=True)
def _time_problem(ts):
    # (row, 0) of the first missing time (NaT), (row, 1) of the first not after its predecessor, or (-1, 0)
    for i in range(ts.shape[0]):
        if ts[i] == L.NAT:
            return i, 0
        if i > 0 and ts[i] <= ts[i - 1]:
            return i, 1
    return -1, 0


@njit(cache=True)
def _inputs_kernel(ts, o, h, l, c, off, vol, bid, ask, flow, tick, x, bad):
    # The kernel's input matrix in one pass over the frame's columns (instead of a pass per price column
    # plus numpy's copies): times, prices to ticks exactly as `to_ticks`, volumes. `bad[j]` receives the
    # first off-grid row of open, high, low, close (-1: none). The columns are separate arguments (not a
    # tuple): they may differ in type (a read-only view of a float64 column, a converted copy of another).
    # No array goes into an inlined helper: numba would then count references per call (atomic, per bar).
    has_off = off.shape[0] > 1
    for i in range(ts.shape[0]):
        x[L.X_TS, i] = ts[i]
        d = off[i] if has_off else off[0]
        to, ok_o = _tick_of(o[i], d, tick)
        th, ok_h = _tick_of(h[i], d, tick)
        tl, ok_l = _tick_of(l[i], d, tick)
        tc, ok_c = _tick_of(c[i], d, tick)
        x[L.X_O, i] = to
        x[L.X_H, i] = th
        x[L.X_L, i] = tl
        x[L.X_C, i] = tc
        if not (ok_o and ok_h and ok_l and ok_c):
            for j, ok in enumerate((ok_o, ok_h, ok_l, ok_c)):
                if not ok and bad[j] < 0:
                    bad[j] = i
        x[L.X_V, i] = vol[i]
        x[L.X_BID, i] = bid[i] if flow else 0
        x[L.X_ASK, i] = ask[i] if flow else 0


def time_inputs(index: pd.DatetimeIndex, bar_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(ts_ns, start_min_et, close_min_et, weekday_close_et)`` exactly as the kernel derives them."""
    if not isinstance(index, pd.DatetimeIndex) or index.tz is None:
        raise ValueError("bars need a tz-aware DatetimeIndex of bar start times")
    ts = index.as_unit("ns").asi8
    n = len(ts)
    start_min, close_min, weekday = (np.zeros(n, np.int64) for _ in range(3))
    if n:
        K.et_fields(ts, K.et_offset_table(int(ts[0]), int(ts[-1]) + bar_ns), bar_ns, start_min, close_min, weekday)
    return ts, start_min, close_min, weekday


def kernel_inputs(bars: pd.DataFrame, params: Params, *, order_flow: str | None = None,
                  tick_size: float | None = None, bar_seconds: float | None = None) -> dict[str, Any]:
    """The kernel's input matrix (`layout.X_*` rows: time, prices in ticks, volumes), time-zone
    table and settings, from a canonical bar frame (prices forward-adjusted on continuous series)."""
    missing = [c for c in ("open", "high", "low", "close", "volume") if c not in bars.columns]
    if missing:
        raise ValueError(f"bars lack column(s) {missing}")
    if not isinstance(bars.index, pd.DatetimeIndex) or bars.index.tz is None:
        raise ValueError("bars need a tz-aware DatetimeIndex of bar start times")
    flow = resolve_order_flow(bars, params, order_flow)
    tick = resolve_tick_size(bars, tick_size)
    bar_ns = bar_duration_ns(bars, bar_seconds)
    n = len(bars)
    ts = bars.index.as_unit("ns").asi8
    i, kind = (int(v) for v in _time_problem(ts))
    if i >= 0 and kind == 0:
        raise ValueError(f"bar time at row {i} is missing (NaT)")
    if i >= 0:
        raise ValueError(f"bar times must increase strictly: row {i} ({bars.index[i]}) is not after row {i - 1}")
    vol_cols = ("volume", "bid_volume", "ask_volume") if flow else ("volume",)
    twice = set(bars.columns[bars.columns.duplicated()])
    dup = [c for c in (*_PRICE_INPUTS, *vol_cols, "roll_offset") if c in twice]
    if dup:
        raise ValueError(f"bars have more than one column named {dup[0]!r}")
    # columns through an attrs-less shallow view: pandas deep-copies `attrs` on every column access
    # (a continuous series carries its roll table there: ~2 ms a column)
    cols = pd.DataFrame(bars, copy=False)
    cols.attrs = {}
    # Continuous series: the kernel sees forward-adjusted prices (causal: only past roll gaps),
    # price outputs are shifted back to the traded contract's prices.
    offset = cols["roll_offset"].to_numpy(np.float64) if "roll_offset" in cols.columns else None
    prices = [np.ascontiguousarray(cols[col].to_numpy(np.float64)) for col in _PRICE_INPUTS]
    vols = [_int64(cols[col].to_numpy()) for col in vol_cols]
    x = np.empty((L.N_X, n), np.int64)
    bad = np.full(4, -1, np.int64)
    _inputs_kernel(ts, *prices, np.zeros(1) if offset is None else np.ascontiguousarray(offset), vols[0],
                   vols[1] if flow else vols[0], vols[2] if flow else vols[0], flow, float(tick), x, bad)
    for j, col in enumerate(_PRICE_INPUTS):
        if bad[j] >= 0:
            i = int(bad[j])
            raise ValueError(f"{col} at row {i} ({bars.index[i]}) = {prices[j][i]!r} is not on the {tick} tick grid")
    tz = K.et_offset_table(int(x[L.X_TS, 0]), int(x[L.X_TS, -1]) + bar_ns) if n else np.zeros(2, np.int64)
    xoff = offset if offset is not None else np.zeros(1)
    return dict(flow=flow, tick=tick, bar_ns=bar_ns, offset=offset, x=x, xoff=xoff, tz=tz)


def allocate_outputs(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Output arrays of shape (columns, n): each column contiguous, zero-copy into pandas."""
    return (np.empty((len(L.F_COLS), n), np.float64),
            np.empty((len(L.I_COLS), n), np.int64),
            np.empty((len(L.B_COLS), n), np.int8))


def outputs_to_frame(of: np.ndarray, oi: np.ndarray, ob: np.ndarray, index: pd.Index) -> pd.DataFrame:
    """Kernel outputs -> the signal frame, without copying columns (flags as bool, status categorical)."""
    cols: dict[str, Any] = {}
    for name in COLUMNS:
        if name in _F_POS:
            cols[name] = of[_F_POS[name]]
        elif name in _I_POS:
            x = oi[_I_POS[name]]
            if name in TIME_COLS:
                x = pd.arrays.DatetimeArray._simple_new(x.view("M8[ns]"), dtype=_UTC_NS)
            cols[name] = x
        else:
            x = ob[_B_POS[name]]
            if name in BOOL_COLS:
                cols[name] = x.view(np.bool_)
            elif name == "status":
                cols[name] = pd.Categorical.from_codes(x, dtype=_STATUS_DTYPE, validate=False)
            else:
                cols[name] = x
    return pd.DataFrame(cols, index=index, copy=False)


def check_outputs(out: Any, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """`out` as the kernel's output arrays for `n` bars, or ValueError naming what is wrong: three
    C-contiguous arrays shaped like `allocate_outputs(n)`'s (float64, int64, int8)."""
    want = allocate_outputs(0)
    if not (isinstance(out, (tuple, list)) and len(out) == 3):
        raise ValueError("out must be the 3 arrays of strategy.signals.allocate_outputs(len(bars))")
    for name, a, w in zip(("float", "int", "flag"), out, want):
        if not isinstance(a, np.ndarray) or a.dtype != w.dtype or a.shape != (w.shape[0], n) \
                or not a.flags.c_contiguous or not a.flags.writeable:
            got = f"{a.dtype}{a.shape}" if isinstance(a, np.ndarray) else type(a).__name__
            raise ValueError(f"out: the {name} array must be a writeable C-contiguous {w.dtype} array of shape "
                             f"{(w.shape[0], n)} (strategy.signals.allocate_outputs({n})), got {got}")
    return out[0], out[1], out[2]


def compute_signals(bars: pd.DataFrame, params: Params | None = None, *, order_flow: str | None = None,
                    tick_size: float | None = None, bar_seconds: float | None = None,
                    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> pd.DataFrame:
    """All Battle Navale columns for `bars` (canonical frame from `research.data.load_bars`).

    Aligned to `bars`; rows outside ``params.session`` have ``in_session == False`` and neutral
    values (NaN / -1 / False) and do not advance any window. ``attrs`` records the order-flow
    mode ('bidask' or 'ohlcv'), the params hash, tick size and warm-up.

    `out`: the output arrays to write into (``allocate_outputs(len(bars))``), reused across calls to
    skip allocating and first-touching ~300 bytes a bar; the returned frame's columns are views of
    them, so the next call with the same `out` overwrites the previous frame.
    """
    params = params or Params()
    x = kernel_inputs(bars, params, order_flow=order_flow, tick_size=tick_size, bar_seconds=bar_seconds)
    pv = pack_params(params, x["flow"], x["bar_ns"], x["tick"])
    si, sf, ri, rf, dq, med = K.new_state(pv)
    of, oi, ob = allocate_outputs(len(bars)) if out is None else check_outputs(out, len(bars))
    K.run(pv, si, sf, ri, rf, dq, med, x["tz"], x["x"], x["xoff"], of, oi, ob, 0, len(bars))
    frame = outputs_to_frame(of, oi, ob, bars.index)
    frame.attrs = {
        "order_flow_mode": "bidask" if x["flow"] else "ohlcv",
        "params_hash": params.hash(),
        "signal_hash": params.signal_hash(),
        "session": params.session,
        "tick_size": x["tick"],
        "bar_ns": x["bar_ns"],
        "warmup_bars": params.warmup_bars,
        "symbol": bars.attrs.get("symbol"),
        "synthetic": bool(bars.attrs.get("synthetic", False)),
    }
    return frame
