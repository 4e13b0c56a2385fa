"""Tick/record -> bar aggregation (numba kernels + a thin pandas edge).

Input is a time-ordered sequence of *records*: a trade is a record with
open = high = low = close = price; a finer bar is a record too, so one kernel
turns ticks into bars and small bars into bigger ones. Bars are emitted only
where records exist (no filled-in empty bars).

Bar specs (``bar=`` in :func:`research.data.load_bars`):
- a fixed pandas offset alias: ``"1s"``, ``"1min"``, ``"5min"``, ``"1h"`` ... (time bars,
  labelled by their start, aligned to multiples of the size from their session's open,
  17:00 CT, so no bar spans two sessions or starts in the daily halt; for sizes that divide
  an hour this is the same grid as ``resample(origin="epoch")``);
- ``"volume:N"``: a bar closes once it holds >= N contracts (trades are not split);
- ``"tick:N"``: a bar closes after N trades.
Volume and tick bars restart at each session (trading date), labelled by their first record.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from numba import njit

__all__ = ["BarSpec", "parse_bar_spec", "aggregate_records", "time_bucket_starts", "session_bucket_starts",
           "threshold_bucket_ids", "threshold_add", "bar_start_ns", "session_open_ns", "session_bounds_ns",
           "bar_grid_offsets"]

_HOUR_NS = 3600 * 10**9


@dataclass(frozen=True)
class BarSpec:
    kind: str  # "time" | "volume" | "tick"
    size: int  # ns for time bars, contracts or trades otherwise
    text: str

    @property
    def seconds(self) -> float | None:
        return self.size / 1e9 if self.kind == "time" else None


# largest N of 'volume:N' / 'tick:N': ES trades about 1-3 million contracts a day, so a bar of 10 million
# contracts (or trades) spans days at least; anything larger cannot be a bar of intraday research
MAX_BAR_COUNT = 10_000_000


def parse_bar_spec(bar: str) -> BarSpec:
    """Parse ``"5min"``, ``"volume:1000"`` or ``"tick:500"``; raise ValueError with the accepted forms."""
    text = str(bar).strip()
    if ":" in text:
        kind, _, n = text.partition(":")
        kind = kind.strip().lower()
        if kind in ("volume", "tick") and n.strip().isascii() and n.strip().isdigit() and 0 < int(n) <= MAX_BAR_COUNT:
            return BarSpec(kind, int(n), f"{kind}:{int(n)}")
        raise ValueError(f"bad bar spec {bar!r}: use 'volume:N' or 'tick:N' with N from 1 to {MAX_BAR_COUNT:,}, "
                         "or an offset like '5min'")
    try:
        off = pd.tseries.frequencies.to_offset(text)
        nanos = int(pd.Timedelta(off).value)
    except (ValueError, TypeError):
        raise ValueError(
            f"bad bar spec {bar!r}: use a fixed pandas offset alias ('1s', '1min', '5min', '1h'), "
            "'volume:N' or 'tick:N'"
        ) from None
    if nanos <= 0 or nanos > 24 * 3600 * 10**9:
        raise ValueError(f"bad bar spec {bar!r}: time bars must be longer than 0 and at most 1 day")
    return BarSpec("time", nanos, text)


@njit(cache=True)
def bar_start_ns(ts_ns: np.int64, origin_ns: np.int64, step_ns: np.int64) -> np.int64:
    """Start of the time bar of width ``step_ns`` holding ``ts_ns``, on the grid of multiples of the size from
    ``origin_ns`` (a session open; 0 for sizes that divide an hour). The one key rule of time bars, shared by
    the batch aggregation and the live bar builder (``live.bars``)."""
    return origin_ns + ((ts_ns - origin_ns) // step_ns) * step_ns


@njit(cache=True)
def time_bucket_starts(ts_ns: np.ndarray, step_ns: np.int64) -> np.ndarray:
    """Start (ns) of the epoch-aligned bucket of width ``step_ns`` holding each timestamp."""
    out = np.empty(ts_ns.shape[0], dtype=np.int64)
    for i in range(ts_ns.shape[0]):
        out[i] = bar_start_ns(ts_ns[i], np.int64(0), step_ns)
    return out


@njit(cache=True)
def session_bucket_starts(ts_ns: np.ndarray, opens_ns: np.ndarray, step_ns: np.int64) -> np.ndarray:
    """Start (ns) of the bucket of width ``step_ns`` holding each timestamp, aligned to its session's open."""
    out = np.empty(ts_ns.shape[0], dtype=np.int64)
    for i in range(ts_ns.shape[0]):
        out[i] = bar_start_ns(ts_ns[i], opens_ns[i], step_ns)
    return out


def session_bounds_ns(ts_ns: int) -> tuple[int, int]:
    """UTC open and next open (ns) of the session holding one timestamp: scalar twin of :func:`session_open_ns`
    (same rule: a session opens 17:00 CT the evening before its trading date), without pandas."""
    import datetime as dt
    from zoneinfo import ZoneInfo

    from strategy.market.clock import CT, GLOBEX_OPEN_CT_MIN

    tz = ZoneInfo(CT)
    local = dt.datetime.fromtimestamp(ts_ns // 10**9, tz) + dt.timedelta(minutes=24 * 60 - GLOBEX_OPEN_CT_MIN)
    day = local.date()  # the trading date (wall clock CT shifted so that 17:00 CT is midnight)
    at = dt.time(GLOBEX_OPEN_CT_MIN // 60, GLOBEX_OPEN_CT_MIN % 60)
    open_ = dt.datetime.combine(day - dt.timedelta(days=1), at, tz)
    nxt = dt.datetime.combine(day, at, tz)
    return int(open_.timestamp()) * 10**9, int(nxt.timestamp()) * 10**9


def session_open_ns(ts_ns: np.ndarray) -> np.ndarray:
    """UTC open (ns) of the trading session holding each timestamp: 17:00 CT the evening before its trading date."""
    from strategy.market.clock import CT, GLOBEX_OPEN_CT_MIN
    from strategy.market.sessions import session_id

    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    if ts_ns.size == 0:
        return ts_ns.copy()
    sid = session_id(pd.DatetimeIndex(ts_ns.view("datetime64[ns]")).tz_localize("UTC"))
    dates, inverse = np.unique(sid, return_inverse=True)
    local = pd.DatetimeIndex(dates - np.timedelta64(1, "D")) + pd.Timedelta(minutes=GLOBEX_OPEN_CT_MIN)
    opens = local.tz_localize(CT).as_unit("ns").asi8
    return opens[inverse.reshape(-1)]


def bar_grid_offsets(ts_ns: np.ndarray, step_ns: int) -> np.ndarray:
    """Position of each time inside its bar of ``step_ns`` (0 = on the grid the bars are aligned to).

    Session opens are whole UTC hours, so for sizes that divide an hour the session-open grid is
    the epoch grid and no calendar lookup is needed.
    """
    ts_ns = np.asarray(ts_ns, dtype=np.int64)
    if _HOUR_NS % step_ns == 0:
        return ts_ns % step_ns
    return (ts_ns - session_open_ns(ts_ns)) % step_ns


@njit(cache=True)
def threshold_add(acc: np.int64, weight: np.int64, threshold: np.int64) -> tuple[np.int64, bool]:
    """Add one record's weight to an open volume/tick bucket: (new sum, True when the bucket is now full
    and closes after this record, its sum back to 0). Shared by the batch aggregation and ``live.bars``."""
    acc += weight
    if acc >= threshold:
        return np.int64(0), True
    return acc, False


@njit(cache=True)
def threshold_bucket_ids(weights: np.ndarray, threshold: np.int64, reset_keys: np.ndarray) -> np.ndarray:
    """Bucket ids closing a bucket once its summed weight reaches ``threshold``; restart when reset_keys change."""
    n = weights.shape[0]
    out = np.empty(n, dtype=np.int64)
    k = 0
    acc = np.int64(0)
    for i in range(n):
        if i > 0 and reset_keys[i] != reset_keys[i - 1] and acc > 0:
            k += 1
            acc = 0
        out[i] = k
        acc, full = threshold_add(acc, weights[i], threshold)
        if full:
            k += 1
    return out


@njit(cache=True)
def _aggregate(keys, ts, o, h, l, c, vol, ntr, bidv, askv, has_flow, label_by_key):
    n = keys.shape[0]
    m = 0
    for i in range(n):
        if i == 0 or keys[i] != keys[i - 1]:
            m += 1
    t_out = np.empty(m, np.int64)
    o_out = np.empty(m, np.float64)
    h_out = np.empty(m, np.float64)
    l_out = np.empty(m, np.float64)
    c_out = np.empty(m, np.float64)
    v_out = np.zeros(m, np.int64)
    n_out = np.zeros(m, np.int64)
    b_out = np.zeros(m if has_flow else 0, np.int64)
    a_out = np.zeros(m if has_flow else 0, np.int64)
    j = -1
    for i in range(n):
        if i == 0 or keys[i] != keys[i - 1]:
            j += 1
            t_out[j] = keys[i] if label_by_key else ts[i]
            o_out[j] = o[i]
            h_out[j] = h[i]
            l_out[j] = l[i]
        else:
            if h[i] > h_out[j]:
                h_out[j] = h[i]
            if l[i] < l_out[j]:
                l_out[j] = l[i]
        c_out[j] = c[i]
        v_out[j] += vol[i]
        n_out[j] += ntr[i]
        if has_flow:
            b_out[j] += bidv[i]
            a_out[j] += askv[i]
    return t_out, o_out, h_out, l_out, c_out, v_out, n_out, b_out, a_out


def aggregate_records(
    ts_ns: np.ndarray,
    open_: np.ndarray,
    high: np.ndarray,
    low: np.ndarray,
    close: np.ndarray,
    volume: np.ndarray,
    num_trades: np.ndarray,
    bid_volume: np.ndarray | None,
    ask_volume: np.ndarray | None,
    spec: BarSpec,
) -> dict[str, np.ndarray]:
    """Aggregate time-ordered records into bars; returns a dict of column arrays incl. ``time_ns``.

    ``bid_volume``/``ask_volume`` may be None (no aggressor split): the output then has none.
    """
    ts_ns = np.ascontiguousarray(ts_ns, dtype=np.int64)
    if ts_ns.size and np.any(np.diff(ts_ns) < 0):
        raise ValueError("aggregate_records needs records in time order")
    vol = np.ascontiguousarray(volume, dtype=np.int64)
    ntr = np.ascontiguousarray(num_trades, dtype=np.int64)
    if spec.kind == "time":
        step = np.int64(spec.size)
        keys = session_bucket_starts(ts_ns, session_open_ns(ts_ns), step) if _HOUR_NS % spec.size else time_bucket_starts(ts_ns, step)
        by_key = True
    else:
        from strategy.market.sessions import session_id

        sid = session_id(pd.DatetimeIndex(ts_ns.view("datetime64[ns]")).tz_localize("UTC")).astype(np.int64)
        keys = threshold_bucket_ids(vol if spec.kind == "volume" else ntr, np.int64(spec.size), sid)
        by_key = False
    has_flow = bid_volume is not None and ask_volume is not None
    empty = np.zeros(0, np.int64)
    f64 = lambda a: np.ascontiguousarray(a, dtype=np.float64)  # noqa: E731
    t, o, h, l, c, v, n, b, a = _aggregate(
        keys,
        ts_ns,
        f64(open_),
        f64(high),
        f64(low),
        f64(close),
        vol,
        ntr,
        np.ascontiguousarray(bid_volume, dtype=np.int64) if has_flow else empty,
        np.ascontiguousarray(ask_volume, dtype=np.int64) if has_flow else empty,
        has_flow,
        by_key,
    )
    out = {"time_ns": t, "open": o, "high": h, "low": l, "close": c, "volume": v, "num_trades": n}
    if has_flow:
        out["bid_volume"] = b
        out["ask_volume"] = a
    return out


def ticks_to_bars(ticks: pd.DataFrame, spec: BarSpec) -> dict[str, np.ndarray]:
    """Aggregate a canonical tick frame (``price, size, side``; see ``ticks.py``) into bar columns."""
    p = ticks["price"].to_numpy(np.float64)
    size = ticks["size"].to_numpy(np.int64)
    side = ticks["side"].to_numpy(np.int8)
    ntr = ticks["num_trades"].to_numpy(np.int64) if "num_trades" in ticks else np.ones(len(ticks), np.int64)
    bid = np.where(side < 0, size, 0)
    ask = np.where(side > 0, size, 0)
    return aggregate_records(ticks.index.as_unit("ns").asi8, p, p, p, p, size, ntr, bid, ask, spec)
