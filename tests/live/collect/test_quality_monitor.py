"""The collector's quality monitor against the batch rules (research.data.quality.check): the same findings at
the same rows on bars with planted faults, findings that never change when later bars come, and the tick rules."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from live.collect.quality import QUALITY_PREFIX, Finding, QualityMonitor
from research.data.quality import check

TICK = 0.25
STEP_NS = 60 * 1_000_000_000
MON_OPEN = pd.Timestamp("2024-03-04 17:00", tz="America/Chicago").tz_convert("UTC").value  # Tuesday's session


def clean_bars(n: int = 300, seed: int = 7) -> pd.DataFrame:
    """1-minute bars on the tick grid from a session's open: a random walk, flows adding up to the volume."""
    rng = np.random.default_rng(seed)
    close = 5000 + np.cumsum(rng.integers(-4, 5, n)) * TICK
    open_ = np.concatenate(([5000.0], close[:-1]))
    high = np.maximum(open_, close) + rng.integers(0, 4, n) * TICK
    low = np.minimum(open_, close) - rng.integers(0, 4, n) * TICK
    volume = rng.integers(50, 400, n)
    bid = rng.integers(0, 50, n)
    bid = np.minimum(bid + volume // 2, volume)
    ts = pd.DatetimeIndex(MON_OPEN + np.arange(n, dtype=np.int64) * STEP_NS).tz_localize("UTC")
    return pd.DataFrame({"open": open_, "high": high, "low": low, "close": close, "volume": volume,
                         "bid_volume": bid, "ask_volume": volume - bid,
                         "num_trades": np.maximum(volume // 3, 1)}, index=ts)


def faulty_bars() -> pd.DataFrame:
    """Clean bars with an out-of-order bar, an off-tick price, a spike, a stale run, a gap and a price jump."""
    df = clean_bars()
    idx = df.index.to_numpy().copy()
    idx[40] = idx[38]  # out of order (before bar 39); bar 41 then comes 3 minutes after it: a gap of 2 bars
    df.index = pd.DatetimeIndex(idx)
    df.iloc[60, df.columns.get_loc("close")] += 0.1  # off tick (close)
    c = df["close"].iloc[100]
    df.iloc[100, df.columns.get_loc("high")] = c + 120.0  # spike: range ~ 480 ticks, > 1% of price
    for k in (150, 151, 152, 153):  # stale: 4 identical bars (3 repeats)
        df.iloc[k, :] = df.iloc[149].to_numpy()
    keep = np.ones(len(df), bool)
    keep[200:207] = False  # a 7-bar gap
    df.iloc[250, df.columns.get_loc("low")] = df["low"].iloc[250] / 4  # price jump (and a spike on its range)
    df.iloc[270, df.columns.get_loc("bid_volume")] = df["volume"].iloc[270] + 5  # flow above volume
    df.iloc[270, df.columns.get_loc("ask_volume")] = 0
    return df[keep]


def monitor_findings(df: pd.DataFrame, mon: QualityMonitor | None = None) -> list[Finding]:
    mon = mon or QualityMonitor("ES", TICK, 60)
    out: list[Finding] = []
    for ts, r in zip(df.index.asi8, df.itertuples(index=False)):
        f = mon.on_bar(int(ts), r.open, r.high, r.low, r.close, int(r.volume), int(r.bid_volume),
                       int(r.ask_volume), int(r.num_trades))
        if f is not None:
            out.extend(f.all())
    return out


def keys(findings) -> list[tuple[int, str, str]]:
    return sorted((f.row, f.kind, f.field) for f in findings)


def check_keys(df: pd.DataFrame) -> list[tuple[int, str, str]]:
    issues = check(df, tick_size=TICK, bar_seconds=60).issues
    return sorted((int(r.row), r.check, r.field) for r in issues.itertuples())


def test_monitor_equals_check_on_planted_faults():
    df = faulty_bars()
    got, want = keys(monitor_findings(df)), check_keys(df)
    kinds = {k for _, k, _ in want}
    # every planted fault is there (so the comparison below is not between two empty lists)
    assert {"time_out_of_order", "off_tick", "spike", "stale", "gap", "price_jump", "flow_exceeds_volume"} <= kinds
    assert got == want


def test_monitor_equals_check_on_clean_bars():
    df = clean_bars()
    assert keys(monitor_findings(df)) == check_keys(df) == []


def test_findings_do_not_change_when_later_bars_come():
    df = faulty_bars()
    full = monitor_findings(df)
    for cut in (39, 41, 101, 152, 153, 200, 260):
        part = monitor_findings(df.iloc[:cut])
        assert part == [f for f in full if f.row < cut and (f.kind != "stale" or f.row + 1 < cut)]
        # and equal to the batch rules on the prefix, rule by rule (the prefix is what check sees then)
        assert keys(part) == check_keys(df.iloc[:cut])


def test_gap_across_the_daily_close_is_not_missing_data():
    # the last bar of Tuesday's session (15:59 CT) and the first of Wednesday's (17:00 CT): no gap
    close = pd.Timestamp("2024-03-05 15:59", tz="America/Chicago").tz_convert("UTC").value
    reopen = pd.Timestamp("2024-03-05 17:00", tz="America/Chicago").tz_convert("UTC").value
    mon = QualityMonitor("ES", TICK, 60)
    assert mon.on_bar(close, 5000, 5001, 4999, 5000, 10, 5, 5, 3) is None
    assert mon.on_bar(reopen, 5000, 5001, 4999, 5000, 11, 5, 6, 3) is None
    # inside a session, 10 minutes without a bar is a gap of 9 bars
    f = mon.on_bar(reopen + 10 * STEP_NS, 5000, 5001, 4999, 5000.25, 11, 5, 6, 3)
    assert f is not None and f.kind == "gap" and f.detail.startswith("9 bar(s) missing")


def test_one_record_several_findings_all_reported():
    mon = QualityMonitor("ES", TICK, 60)
    mon.on_bar(MON_OPEN, 5000, 5001, 4999, 5000, 10, 5, 5, 3)
    f = mon.on_bar(MON_OPEN + STEP_NS, 5000.1, 4999, 5001, 5000, -1, 5, 5, 3)
    kinds = [x.kind for x in f.all()]
    assert kinds[0] == f.kind and kinds.count("off_tick") == 1  # the open only
    assert {"ohlc_inconsistent", "off_tick", "negative_volume", "flow_exceeds_volume"} <= set(kinds)
    assert mon.counts["off_tick"] == kinds.count("off_tick")
    ev = f.to_event()
    assert ev["kind"] == QUALITY_PREFIX + f.kind and ev["level"] in ("info", "warning") and ev["ts_ns"] == f.ts_ns
    assert "\n" not in ev["detail"]


def test_tick_rules():
    mon = QualityMonitor("ES", TICK, 60, stale_seconds=30, tick_gap_seconds=120)
    s = 1_000_000_000
    t0 = MON_OPEN + 3600 * s
    assert mon.on_tick(t0, 5000.0, 1, 1) is None
    assert mon.on_tick(t0, 5000.25, 2, -1) is None  # equal times are normal for ticks
    assert mon.on_tick(t0 + s, 5000.5, 1, 0) is None
    assert mon.on_tick(t0, 5000.5, 1, 1).kind == "tick_out_of_order"
    assert mon.on_tick(t0 + 2 * s, 5000.1, 1, 1).kind == "tick_off_tick"
    assert mon.on_tick(t0 + 3 * s, 5000.0, -1, 1).kind == "tick_bad_size"
    assert mon.on_tick(t0 + 3 * s, 5000.0, 1, 2).kind == "tick_bad_size"
    assert mon.on_tick(t0 + 4 * s, math.nan, 1, 1).kind == "tick_bad_price"
    assert mon.on_tick(t0 + 5 * s, 5075.0, 1, 1).kind == "tick_spike"  # 75 points > 1% and > 25 ticks
    assert mon.on_tick(t0 + 6 * s, 5075.0 * 4, 1, 1).kind == "tick_jump"
    assert mon.on_tick(t0 + 7 * s, 5075.0, 1, 1).kind == "tick_jump"  # back: a 1/4 of the previous tick
    assert mon.on_tick(t0 + 8 * s, 5074.0, 1, 1) is None  # 4 ticks: a normal move
    f = mon.on_tick(t0 + 8 * s + 200 * s, 5074.0, 1, 1)
    assert f.kind == "tick_gap" and "0:03:20" in f.detail
    # stale: once per quiet period, only while the market is open
    last = t0 + 208 * s
    assert mon.on_idle(last + 10 * s) is None
    f = mon.on_idle(last + 31 * s)
    assert f is not None and f.kind == "stale_feed" and f.level == "info"
    assert mon.on_idle(last + 60 * s) is None
    assert mon.on_tick(last + 61 * s, 5074.0, 1, 1) is None
    assert mon.on_idle(last + 100 * s).kind == "stale_feed"
    assert mon.status()["by_kind"]["stale_feed"] == 2
    # the daily close: quiet, not stale
    closed = pd.Timestamp("2024-03-05 16:30", tz="America/Chicago").tz_convert("UTC").value
    mon2 = QualityMonitor("ES", TICK, 60, stale_seconds=30)
    mon2.on_tick(closed - 31 * 60 * s, 5000.0, 1, 1)
    assert mon2.on_idle(closed) is None


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_equivalence_on_random_faults(seed):
    """Random single-field damage (off-tick, NaN, negative volume, shuffled times, dropped bars)."""
    rng = np.random.default_rng(seed)
    df = clean_bars(200, seed)
    idx = df.index.asi8.copy()
    for k in rng.choice(np.arange(1, 200), 6, replace=False):
        what = rng.integers(0, 5)
        col = ["open", "high", "low", "close"][rng.integers(0, 4)]
        if what == 0:
            df.iloc[k, df.columns.get_loc(col)] += 0.05
        elif what == 1:
            df.iloc[k, df.columns.get_loc(col)] = np.nan
        elif what == 2:
            df.iloc[k, df.columns.get_loc("num_trades")] = -1
        elif what == 3:
            idx[k] = idx[k - 1]
        else:
            idx[k] = idx[k] + 5 * STEP_NS
    df.index = pd.DatetimeIndex(idx).tz_localize("UTC")
    df = df[rng.random(len(df)) > 0.03]
    assert keys(monitor_findings(df)) == check_keys(df)
