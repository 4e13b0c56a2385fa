"""Hand-made bar sequences: the worked examples of tests/strategy/test_signal_rules.py, and
`edge_case_bars` (DST change, dojis, H = L bars, zero volume, gaps) for the parity and backtest tests.

Prices are written in *ticks relative to P0* (5000.00 on ES, tick 0.25), so a test reads
``bar(c=3, o=1)`` as "opened 1 tick, closed 3 ticks above 5000.00". Every bar carries a volume and
bid/ask traded volumes, so the same frame runs in both order-flow modes.

Bar times are 5-minute bar starts inside RTH (09:30-16:00 ET, 78 bars a day), from
Tuesday 2024-03-12 09:30 ET onward, skipping to the next weekday after 15:55.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

ET = "America/New_York"
TICK = 0.25
P0 = 5000.0
BAR_MIN = 5
BARS_PER_DAY = 78  # 09:30 .. 15:55 bar starts
FIRST_DAY = "2024-03-12"  # a Tuesday (after the 2024-03-10 DST change)


@dataclass(frozen=True)
class Bar:
    """One bar in ticks relative to P0, with volumes."""

    o: int
    h: int
    l: int
    c: int
    v: int = 100
    bid: int = 50
    ask: int = 50


def bar(c: int, o: int | None = None, h: int | None = None, l: int | None = None, v: int = 100,
        ask: int | None = None, bid: int | None = None) -> Bar:
    """A bar closing at `c` ticks. Defaults: open = close, high/low one tick beyond the body,
    volume 100 split half at the ask and half at the bid (order-flow δ = 0)."""
    o = c if o is None else o
    h = max(o, c) + 1 if h is None else h
    l = min(o, c) - 1 if l is None else l
    assert l <= min(o, c) <= max(o, c) <= h, (o, h, l, c)
    if ask is None and bid is None:
        ask = v // 2
        bid = v - ask
    elif ask is None:
        ask = v - bid
    elif bid is None:
        bid = v - ask
    return Bar(o, h, l, c, v, bid, ask)


def flow(c: int, ask: int, bid: int, **kw) -> Bar:
    """A bar closing at `c` with the given ask/bid traded volumes (volume = their sum)."""
    return bar(c, v=ask + bid, ask=ask, bid=bid, **kw)


def rth_times(n: int, day: str = FIRST_DAY, first_bar: int = 0) -> pd.DatetimeIndex:
    """`n` consecutive RTH 5-minute bar starts (UTC), starting with bar `first_bar` of `day`
    (bar 0 = 09:30 ET) and rolling over to the next weekday after the 15:55 bar."""
    out = []
    d = pd.Timestamp(day)
    j = first_bar
    while len(out) < n:
        if d.day_of_week < 5:
            while j < BARS_PER_DAY and len(out) < n:
                out.append(pd.Timestamp(f"{d.date()} 09:30", tz=ET) + pd.Timedelta(minutes=BAR_MIN * j))
                j += 1
        d += pd.Timedelta(days=1)
        j = 0
    return pd.DatetimeIndex(out).tz_convert("UTC")


def et(day: str, hhmm: str) -> pd.Timestamp:
    """A bar start time given in ET, as UTC."""
    return pd.Timestamp(f"{day} {hhmm}", tz=ET).tz_convert("UTC")


def frame(bars: list[Bar], index: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    """The canonical bar frame for `compute_signals` (prices in points, int64 volumes)."""
    if index is None:
        index = rth_times(len(bars))
    assert len(index) == len(bars)
    df = pd.DataFrame(
        {
            "open": [P0 + b.o * TICK for b in bars],
            "high": [P0 + b.h * TICK for b in bars],
            "low": [P0 + b.l * TICK for b in bars],
            "close": [P0 + b.c * TICK for b in bars],
            "volume": np.array([b.v for b in bars], np.int64),
            "bid_volume": np.array([b.bid for b in bars], np.int64),
            "ask_volume": np.array([b.ask for b in bars], np.int64),
        },
        index=index,
    )
    df.index.name = "time"
    df.attrs = {"tick_size": TICK, "symbol": "ESH24", "root": "ES", "bar": "5min", "order_flow": True}
    return df


def px(ticks: int) -> float:
    """Price of `ticks` ticks above P0."""
    return P0 + ticks * TICK


def zigzag(n: int, lo: int = 0, hi: int = 1, first: int | None = None, **kw) -> list[Bar]:
    """`n` doji bars whose closes alternate lo, hi, lo, ... (or start at `first`)."""
    a = lo if first is None else first
    b = hi if a == lo else lo
    return [bar(a if i % 2 == 0 else b, **kw) for i in range(n)]


def steps(start: int, moves: list[int], **kw) -> list[Bar]:
    """Doji bars whose closes move by `moves` from a previous close `start` (one bar per move)."""
    out = []
    c = start
    for m in moves:
        c += m
        out.append(bar(c, **kw))
    return out


def mirror(bars: list[Bar]) -> list[Bar]:
    """The bear image of `bars`: prices negated (high <-> low), ask <-> bid. Green bases become red
    ones, bull violations bear ones, and every signed score changes sign."""
    return [Bar(-b.o, -b.l, -b.h, -b.c, b.v, b.ask, b.bid) for b in bars]


def with_delta(b: Bar, delta: float) -> Bar:
    """`b` with its volume split so that (ask - bid) / volume == delta exactly."""
    ask = b.v * (1 + delta) / 2
    assert ask == int(ask), (b.v, delta)
    return Bar(b.o, b.h, b.l, b.c, b.v, b.v - int(ask), int(ask))


def rth_times_at(n: int, k: int, day: str, hhmm: str) -> pd.DatetimeIndex:
    """`n` consecutive RTH 5-minute bar starts (UTC) such that bar `k` starts at `hhmm` ET on `day`."""
    slot = (pd.Timestamp(f"{day} {hhmm}") - pd.Timestamp(f"{day} 09:30")) // pd.Timedelta(minutes=BAR_MIN)
    assert 0 <= slot < BARS_PER_DAY
    d = pd.Timestamp(day)
    back = k - slot  # bars needed before the target day's first bar
    while back > 0:
        d -= pd.Timedelta(days=1)
        if d.day_of_week < 5:
            back -= BARS_PER_DAY
    return rth_times(n, str(d.date()), first_bar=-back)

def edge_case_bars(n_days: int = 12, seed: int = 3, flow: bool = True) -> pd.DataFrame:
    """5-minute ES-like bars over the March 2024 DST change, all hours, with planted dojis, H = L
    bars, zero-volume bars, a missing hour and a missing day."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2024-03-04", periods=n_days)
    idx = []
    for d in days:  # Globex 18:00 ET previous day -> 17:00 ET
        start = pd.Timestamp(d - pd.Timedelta(days=1)).tz_localize("America/New_York") + pd.Timedelta(hours=18)
        idx.append(pd.date_range(start, periods=23 * 12, freq="5min"))
    index = pd.DatetimeIndex(np.concatenate([i.tz_convert("UTC").as_unit("ns").asi8 for i in idx])).tz_localize("UTC")
    index = index[(index < index[0] + pd.Timedelta(days=3)) | (index >= index[0] + pd.Timedelta(days=4))]  # a missing day
    index = index.delete(slice(700, 712))  # a missing hour
    n = len(index)
    steps = rng.choice([-2, -1, 0, 0, 1, 2], size=n) + (rng.random(n) < 0.02) * rng.choice([-12, 12], size=n)
    close = 20000 + np.cumsum(steps)
    open_ = np.concatenate([[close[0]], close[:-1]]) + rng.choice([-1, 0, 0, 1], size=n)
    high = np.maximum(open_, close) + rng.integers(0, 4, n)
    low = np.minimum(open_, close) - rng.integers(0, 4, n)
    doji = rng.random(n) < 0.05
    close[doji] = open_[doji]
    flat = rng.random(n) < 0.03
    high[flat] = low[flat] = close[flat] = open_[flat]
    high = np.maximum.reduce([high, open_, close])
    low = np.minimum.reduce([low, open_, close])
    vol = rng.integers(50, 5000, n)
    vol[rng.random(n) < 0.03] = 0
    ask = (vol * rng.uniform(0.2, 0.8, n)).astype(np.int64)
    bars = pd.DataFrame({"open": open_ * 0.25, "high": high * 0.25, "low": low * 0.25, "close": close * 0.25,
                         "volume": vol.astype(np.int64)}, index=index)
    if flow:
        bars["bid_volume"] = vol - ask
        bars["ask_volume"] = ask
    bars.attrs = {"tick_size": 0.25, "symbol": "ESM24", "root": "ES", "bar": "5min", "order_flow": flow}
    return bars
