"""Worked examples of the Battle Navale rules (METHOD.md 7.1-7.6, session filter).

Each test feeds a small hand-made bar sequence to `compute_signals` and compares the output with
values computed BY HAND in the comments (never with values obtained from the kernel). Prices are
written in ticks above P0 = 5000.00 (tests/barbuilder.py); ``px(k)`` is the price of tick k.
Bars are 5-minute RTH bars from Tuesday 2024-03-12 09:30 ET unless a test sets the times.

Notation in comments: ``c``/``o``/``h``/``l`` close/open/high/low in ticks, ``δ`` bar aggression,
``w`` volume weight, ``BO`` battle outcome, ``u`` up-closes among the last 4 close-to-close moves.

Most base tests share one scenario, GREEN (built by `green_base`):

    bars 0..29   zigzag dojis, closes 0,1,0,1,...,1, high = c+1, low = c-1, volume 100
    bar 30       doji close 2  (h 3, l 1)
    bar 31       doji close 3  (h 4, l 2)
    bar 32       doji close 2 with high 14 (the "wide bar")

  Activity (width over 8 bars <= 10 ticks AND pstd(15 closes) < 0.3 * (15-bar high - low)):
  - zigzag, t >= 14: width = 2 - (-1) = 3; the 15 closes are eight of one value and seven of the
    other: pstd = sqrt(8*7)/15 = 0.499 < 0.3*3 = 0.9 -> active; u = 2 -> neutral.
    (t = 13: the 15-bar window is not full -> inactive.)
  - t = 30: bars 23..30 high max 3, low min -1 -> width 4. Closes 16..30 = seven 0, seven 1, one 2:
    mean 9/15 = 0.6, E[c^2] = 11/15, var = 0.37333, pstd = 0.611 < 0.3*(3+1) = 1.2 -> active.
    u: +1 (1->2), +1 (0->1), -1 (1->0), +1 (0->1) = 3 -> green.
  - t = 31: width = 4 - (-1) = 5. Closes 17..31 = seven 1, six 0, 2, 3: mean 0.8, E[c^2] = 20/15,
    var = 0.69333, pstd = 0.833 < 0.3*5 = 1.5 -> active; u = 3 (+,+,+,-) -> green.
  - t = 32: high 14 -> width = 14 - (-1) = 15 > 10 -> inactive. The green episode {30, 31} ends:
    e = 31, confirmed at e+1 = 32, zone [lo8, hi8] at e = [-1, 4] ticks = [4999.75, 5001.00].
  - quality q = 0.3*min(D/10, 1) + 0.2*s(width) + 0.25*clip(1 - CV, 0, 1) + 0.25 with
    D = (31 - 30) + 8 = 9, width 5 -> s = 1 - 5/10 = 0.5, volumes 24..31 all 100 -> CV = 0:
    q = 0.27 + 0.10 + 0.25 + 0.25 = 0.87.
  - with all δ = 0 from bar 28 on, BO = 0 and at bar 32 bn = 0.35*0.2 + 0.25*0.87 = 0.2875
    (>= 0.25: long candidate; at 31 there is no base and bn = 0.4*0 = 0).

`mirror` (barbuilder) negates prices and swaps ask/bid: GREEN mirrored is a red base at
[-4, 1] ticks with the same quality, and every signed score changes sign. The side-parametrized
tests run each example on both images.
"""

from __future__ import annotations

import math

import pandas as pd
import pytest
from barbuilder import (
    Bar,
    bar,
    flow,
    frame,
    mirror,
    px,
    rth_times_at,
    with_delta,
    zigzag,
)

from strategy.params import Params
from strategy.signals import compute_signals

NAN = math.nan
SIDES = [pytest.param(1, id="bull"), pytest.param(-1, id="bear")]


def run(bars: list[Bar], params: Params | None = None, *, mode: str = "bidask",
        index: pd.DatetimeIndex | None = None) -> pd.DataFrame:
    return compute_signals(frame(bars, index), params or Params(), order_flow=mode)


def approx(x):
    return pytest.approx(x, abs=1e-12, nan_ok=True)


def col(s: pd.DataFrame, name: str, rows=None) -> list:
    """Plain Python values of a column (optionally rows[a:b] by position)."""
    x = s[name] if rows is None else s[name].iloc[rows]
    return x.tolist()


def green_base(prefix: int = 30) -> list[Bar]:
    """The GREEN scenario without its wide bar: zigzag 0/1 (`prefix` even, last close 1), then
    green steps at closes 2 and 3. Append the bar that ends the episode."""
    assert prefix % 2 == 0
    return zigzag(prefix) + [bar(2), bar(3)]


WIDE = bar(2, h=14)  # ends the episode by width (15 ticks over 8 bars); a doji, neither red nor green


def deltas(bars: list[Bar], ds: dict[int, float]) -> list[Bar]:
    """`bars` with δ set on the given bar indices (other bars keep δ = 0)."""
    return [with_delta(b, ds[i]) if i in ds else b for i, b in enumerate(bars)]


class Side:
    """Column names and expected prices for one side of a mirrored example."""

    def __init__(self, side: int):
        self.s = side
        self.base, self.other = ("green", "red") if side > 0 else ("red", "green")
        self.viol, self.intact = ("bull_violation", "bull_intact") if side > 0 else ("bear_violation", "bear_intact")
        self.cand, self.entry = ("long_candidate", "long_entry") if side > 0 else ("short_candidate", "short_entry")
        self.ocand, self.oentry = ("short_candidate", "short_entry") if side > 0 else ("long_candidate", "long_entry")
        self.win = "vikings_winning" if side > 0 else "defenders_winning"

    def bars(self, bars: list[Bar]) -> list[Bar]:
        return bars if self.s > 0 else mirror(bars)

    def zone(self, lo: int, hi: int) -> tuple[float, float]:
        """The base zone [lo, hi] (ticks, bull image) as prices on this side."""
        return (px(lo), px(hi)) if self.s > 0 else (px(-hi), px(-lo))


# =============================================================================================
# 7.1 Balls
# =============================================================================================

def test_ball_thresholds_order_flow_mode():
    # δ = (A - B) / (A + B), θ = 0.2 (defaults). The candles all say the opposite (OHLCV δ = -1
    # or +1) to show that the order-flow mode reads only ask/bid volume.
    assert Params().ball_threshold_bidask == 0.2
    down = dict(o=0, h=0, l=-4)  # close -4: OHLCV δ = -4/4 = -1
    bars = [
        flow(-4, 60, 40, **down),    # (60-40)/100  = 0.20 -> +1 (δ >= θ, boundary included)
        flow(-4, 119, 81, **down),   # 38/200       = 0.19 ->  0
        flow(4, 40, 60, o=0, h=4, l=0),   # -0.20 -> -1 (δ <= -θ)
        flow(4, 81, 119, o=0, h=4, l=0),  # -0.19 ->  0
        flow(0, 0, 0),               # A + B = 0    -> δ = 0, ball 0
        flow(-4, 100, 0, **down),    # +1.0 -> +1
        flow(4, 0, 100, o=0, h=4, l=0),   # -1.0 -> -1
    ]
    s = run(bars, mode="bidask")
    assert s.attrs["order_flow_mode"] == "bidask"
    assert col(s, "delta") == approx([0.2, 0.19, -0.2, -0.19, 0.0, 1.0, -1.0])
    assert col(s, "ball") == [1, 0, -1, 0, 0, 1, -1]
    # "auto" picks bid/ask when the frame has the columns and attrs say order_flow
    assert col(run(bars, mode="auto"), "ball") == [1, 0, -1, 0, 0, 1, -1]


def test_ball_thresholds_ohlcv_mode():
    # δ = (C - O) / (H - L), θ = 0.6. The ask/bid volumes say the opposite (all at the bid or ask)
    # and must be ignored in this mode.
    assert Params().ball_threshold_ohlcv == 0.6
    bars = [
        bar(3, o=0, h=4, l=-1, ask=0),      # 3/5   = 0.60 -> +1 (boundary included)
        bar(11, o=0, h=20, l=0, ask=0),     # 11/20 = 0.55 ->  0
        bar(0, o=3, h=4, l=-1, bid=0),      # -3/5  = -0.60 -> -1
        bar(-11, o=0, h=0, l=-20, bid=0),   # -0.55 ->  0
        bar(0, o=0, h=0, l=0, ask=0),       # H = L -> δ = 0
        bar(4, o=0, h=4, l=0, ask=0),       # 4/4   = 1 -> +1
    ]
    s = run(bars, mode="ohlcv")
    assert s.attrs["order_flow_mode"] == "ohlcv"
    assert col(s, "delta") == approx([0.6, 0.55, -0.6, -0.55, 0.0, 1.0])
    assert col(s, "ball") == [1, 0, -1, 0, 0, 1]
    # the same frame in order-flow mode: A = 0 -> δ = -1; B = 0 -> δ = +1
    assert col(run(bars, mode="bidask"), "ball") == [-1, -1, 1, 1, -1, -1]
    # no bid/ask columns: "auto" falls back to OHLCV, "bidask" refuses (never mixes silently)
    df = frame(bars).drop(columns=["bid_volume", "ask_volume"])
    assert compute_signals(df, Params()).attrs["order_flow_mode"] == "ohlcv"
    with pytest.raises(ValueError, match="bid_volume"):
        compute_signals(df, Params(), order_flow="bidask")


# =============================================================================================
# 7.1 Volume weight and battle outcome
# =============================================================================================

def test_volume_weight_and_battle_outcome():
    # bars 0..19: volume 100, δ = 0. Then (ask, bid):
    #   t   V    δ                 med(V[t-20..t-1])                          w
    #   20  150  (90-60)/150 = 0.2  20 x 100 -> 100                             1.5
    #   21  300  (300-0)/300 = 1    19 x 100, 150 -> 100                        min(3, 2) = 2 (cap)
    #   22  50   (10-40)/50 = -0.6  18 x 100, 150, 300 -> 100                   0.5
    #   23  100  0                  17 x 100, 150, 300, 50 -> 100               1.0
    #   24  200  (50-150)/200=-0.5  50, 17 x 100 (V4..19, V23), 150, 300 -> 100 2.0
    # BO_24 = (1.5*0.2 + 2*1 + 0.5*(-0.6) + 1*0 + 2*(-0.5)) / (1.5 + 2 + 0.5 + 1 + 2)
    #       = (0.3 + 2 - 0.3 + 0 - 1) / 7 = 1/7
    bars = [flow(0, 50, 50)] * 20 + [flow(0, 90, 60), flow(0, 300, 0), flow(0, 10, 40), flow(0, 50, 50),
                                     flow(0, 50, 150)]
    s = run(bars)
    assert col(s, "vol_weight") == approx([NAN] * 20 + [1.5, 2.0, 0.5, 1.0, 2.0])
    assert col(s, "vol_median") == approx([NAN] * 20 + [100.0] * 5)
    assert col(s, "delta", slice(20, 25)) == approx([0.2, 1.0, -0.6, 0.0, -0.5])
    # the battle needs the weights of t-4..t, each with a full 20-bar median: first at t = 24
    assert Params().warmup_bars == 24
    assert col(s, "battle") == approx([NAN] * 24 + [1 / 7])


def test_volume_weight_median_edge_cases():
    # even window: V0..9 = 100, V10..19 = 200 -> median = (100 + 200)/2 = 150; V20 = 225 -> w = 1.5
    s = run([flow(0, 50, 50)] * 10 + [flow(0, 100, 100)] * 10 + [flow(0, 125, 100)])
    assert s["vol_median"].iloc[20] == approx(150.0)
    assert s["vol_weight"].iloc[20] == approx(1.5)
    # median 0 -> w = 1 (V0..19 = 0, V20 = 500; at 21 the window is 19 zeros and 500: median 0)
    s = run([flow(0, 0, 0)] * 20 + [flow(0, 300, 200), flow(0, 300, 200)])
    assert col(s, "vol_median", slice(20, 22)) == approx([0.0, 0.0])
    assert col(s, "vol_weight", slice(20, 22)) == approx([1.0, 1.0])
    # zero denominator: V0..19 = 100, then five up bars (OHLCV δ = +1) with volume 0. Each w = 0/100
    # (medians stay 100: at t = 24 the window V4..23 is sixteen 100s and four 0s) -> Σw = 0 -> BO = 0.
    up = bar(4, o=0, h=4, l=0, v=0)
    s = run([bar(0)] * 20 + [up] * 5, mode="ohlcv")
    assert col(s, "delta", slice(20, 25)) == approx([1.0] * 5)
    assert col(s, "vol_weight", slice(20, 25)) == approx([0.0] * 5)
    assert s["battle"].iloc[24] == 0.0


# =============================================================================================
# 7.2 Bases: activity, type, episodes, confirmation at e+1, quality
# =============================================================================================

def test_base_activity_width_and_consolidation():
    # (a) zigzag 0/1 with 1-tick wicks: active from t = 14 (15-bar window full), neutral (u = 2)
    s = run(zigzag(20))
    assert col(s, "base_active") == [False] * 14 + [True] * 6
    assert col(s, "base_type", slice(14, 20)) == [0] * 6
    assert col(s, "base_width_ticks") == approx([NAN] * 7 + [3.0] * 13)  # width from t = 7 (8 bars)
    # (b) zero-range bars closing 0/4 alternately: width 4 <= 10 but the closes sit at the range
    # edges: pstd = 4*sqrt(8*7)/15 = 1.996 (t even: 8 zeros, 7 fours) or 2.0 >= 0.3*4 = 1.2 -> never active
    flat = [bar(c, h=c, l=c) for c in [0, 4] * 10]
    s = run(flat)
    assert not s["base_active"].any()
    assert col(s, "base_width_ticks", slice(7, 20)) == approx([4.0] * 13)
    # (c) width boundary on GREEN's first green bar (t = 30, low min of bars 23..30 = -1):
    #     high 9 -> width 10 <= 10 -> active (std 0.611 < 0.3*10); high 10 -> width 11 -> inactive
    s = run(zigzag(30) + [bar(2, h=9)])
    assert s["base_width_ticks"].iloc[30] == 10.0
    assert bool(s["base_active"].iloc[30]) is True
    s = run(zigzag(30) + [bar(2, h=10)])
    assert s["base_width_ticks"].iloc[30] == 11.0
    assert bool(s["base_active"].iloc[30]) is False


@pytest.mark.parametrize("side", SIDES)
def test_base_confirmation_at_e_plus_1_and_quality(side):
    sd = Side(side)
    # GREEN with volumes 100/300 alternating over bars 24..31, so that the quality's volume term is
    # not trivial: V over e-7..e = bars 24..31 = 100,300,100,300,100,300,100,300 -> mean 200,
    # pstd 100, CV 0.5 -> 0.25*(1 - 0.5) = 0.125. (The window one bar earlier, 23..30, would give
    # CV = sqrt(9375)/175 = 0.553; the sample std would give 0.535: both change q.)
    # q = 0.3*min(9/10, 1) + 0.2*(1 - 5/10) + 0.125 + 0.25 = 0.27 + 0.10 + 0.125 + 0.25 = 0.745
    vols = [100] * 24 + [100, 300] * 4
    bars = [Bar(b.o, b.h, b.l, b.c, v, v // 2, v - v // 2) for b, v in zip(green_base(), vols)] + [WIDE]
    s = run(sd.bars(bars))
    e = 31
    # activity, type, episode ids: neutral episode 1 (bars 14..29), green episode 2 (30..31)
    assert col(s, "base_active") == [False] * 14 + [True] * 18 + [False]
    assert col(s, "base_type", slice(14, 32)) == [0] * 16 + [side] * 2
    assert col(s, "base_id") == [-1] * 14 + [1] * 16 + [2] * 2 + [-1]
    assert col(s, "base_lo", slice(e, e + 1)) + col(s, "base_hi", slice(e, e + 1)) == list(sd.zone(-1, 4))
    assert s["base_width_ticks"].iloc[e] == 5.0
    # not visible at e (nor before): no base of either colour yet
    for t in range(e + 1):
        assert math.isnan(s[f"{sd.base}_lo"].iloc[t]) and s[f"{sd.base}_confirmed_at"].iloc[t] is pd.NaT
        assert s[f"{sd.base}_id"].iloc[t] == -1 and s["ref_side"].iloc[t] == 0
    # confirmed at e+1 = 32: zone = [lo8, hi8] at e, timestamp of bar e+1
    r = s.iloc[e + 1]
    assert r[f"{sd.base}_confirmed_at"] == s.index[e + 1]
    assert (r[f"{sd.base}_lo"], r[f"{sd.base}_hi"]) == sd.zone(-1, 4)
    assert r[f"{sd.base}_id"] == 2
    assert r[f"{sd.base}_quality"] == approx(0.745)
    assert r["ref_side"] == side and r["ref_age_bars"] == 0 and r["q_ref"] == approx(0.745)
    assert (r["ref_lo"], r["ref_hi"]) == sd.zone(-1, 4)
    # the neutral episode (id 1, ended at 30 by the type change) never becomes a base
    assert (s[f"{sd.other}_id"] == -1).all()


def test_base_ended_by_type_change_and_duration_saturation():
    # zigzag(30), then closes 2,3,4,3,4,5 (bars 30..35, green: every 4 moves hold 3 ups), then 4, 3, 4, 3.
    # bar 36: moves -1 (5->4), +1, +1, -1 -> u = 2 -> neutral while still active (bars 29..36:
    # high max 6, low min 0 -> width 6; closes 22..36: pstd 1.692 < 0.3*(6 - (-1)) = 2.1): the green
    # episode ends by the type change: e = 35, confirmed at 36, and a neutral episode (id 3) starts.
    #   zone at e = 35: bars 28..35 closes 0,1,2,3,4,3,4,5 -> lo8 = -1, hi8 = 6, width 7
    #   D = (35 - 30) + 8 = 13 -> min(1.3, 1) = 1 (saturated) -> 0.30
    #   q = 0.30 + 0.2*(1 - 7/10) + 0.25*1 + 0.25 = 0.30 + 0.06 + 0.25 + 0.25 = 0.86
    closes = [2, 3, 4, 3, 4, 5, 4, 3, 4, 3]
    s = run(zigzag(30) + [bar(c) for c in closes])
    assert col(s, "base_active", slice(30, 40)) == [True] * 10
    assert col(s, "base_type", slice(30, 40)) == [1] * 6 + [0, 0, 0, -1]
    assert col(s, "base_id", slice(28, 40)) == [1, 1] + [2] * 6 + [3] * 3 + [4]
    assert s["green_confirmed_at"].iloc[35] is pd.NaT
    assert col(s, "green_confirmed_at", slice(36, 40)) == [s.index[36]] * 4
    assert col(s, "green_lo", slice(36, 40)) == [px(-1)] * 4
    assert col(s, "green_hi", slice(36, 40)) == [px(6)] * 4
    assert s["green_quality"].iloc[36] == approx(0.86)
    # the base zone of the running (neutral) episode moves on; the confirmed green zone does not
    assert (s["base_lo"].iloc[36], s["base_hi"].iloc[36]) == (px(0), px(6))


def test_min_record_quality_filter():
    # A one-bar green episode with the lowest possible quality: bar 30 = close 2 with high 9
    # (width over 23..30 = 9 - (-1) = 10, active: pstd 0.611 < 0.3*10) and volume 1700; bar 31
    # (close 1: moves -1, +1, +1, -1 -> u = 2, neutral) ends it: e = 30, D = 0 + 8 = 8.
    #   volumes 23..30 = seven 100 + 1700: mean 300, E[V^2] = (70000 + 2890000)/8 = 370000,
    #   var = 280000, CV = 529.15/300 = 1.76 -> clip(1 - 1.76, 0, 1) = 0
    #   q = 0.3*0.8 + 0.2*(1 - 10/10) + 0.25*0 + 0.25 = 0.24 + 0 + 0 + 0.25 = 0.49 < 0.5
    bars = zigzag(30) + [bar(2, h=9, v=1700), bar(1)]
    s = run(bars)
    assert col(s, "base_type", slice(30, 32)) == [1, 0] and bool(s["base_active"].iloc[30])
    assert col(s, "green_id") == [-1] * 32  # never recorded with the default min 0.5
    assert s["green_lo"].isna().all() and s["ref_side"].iloc[31] == 0
    s = run(bars, Params(min_record_quality=0.45))
    assert s["green_id"].iloc[31] == 2 and s["green_quality"].iloc[31] == approx(0.49)
    assert (s["green_lo"].iloc[31], s["green_hi"].iloc[31]) == (px(-1), px(9))
    # and GREEN (q = 0.87) is filtered by a record minimum above its quality
    s = run(green_base() + [WIDE], Params(min_record_quality=0.9))
    assert (s["green_id"] == -1).all()


# =============================================================================================
# 7.3 Golden rule
# =============================================================================================

@pytest.mark.parametrize("side", SIDES)
def test_golden_rule_violation_and_reset(side):
    sd = Side(side)
    # GREEN base G = [-1, 4], confirmed at bar 32. Violation: red bar (C < O) closing <= G.lo - 1 tick
    # = -2, at t > 32. Bars (o -> c):
    bars = green_base() + [
        bar(-4, o=3, h=14, l=-5),  # 32  ends the episode (width 19). Red, closes at -4 <= -2, but t = confirm
        bar(-1, o=0),              # 33  red, closes AT G.lo (-1 > -2): no violation
        bar(-3, o=-4),             # 34  green bar (C > O) closing 2 ticks below G.lo: no violation
        bar(-3),                   # 35  doji (C = O) below: not red, no violation
        bar(-2, o=-1),             # 36  red, C = G.lo - 1 tick: VIOLATION
        bar(5, o=-2),              # 37  green bar back above the base: no violation, still violated
        bar(-5, o=0),              # 38  red below again: violation flag again
    ]
    # then a new green base G2 one level up: zigzag 4/5 (39..52), closes 6, 7 (53, 54: green), and a
    # wide bar (55) -> G2 = [3, 8] confirmed at 55 (same hand computation as GREEN, shifted by 4 ticks:
    # once bars 32..38 have left the 8-bar window at t = 46, widths are 3; at 53 and 54 the
    # 15-bar windows (39..53, 40..54) are the zigzag plus the steps: pstd 0.611 / 0.833 as in GREEN).
    bars += zigzag(14, lo=4, hi=5) + [bar(6), bar(7), bar(6, h=18)]
    s = run(sd.bars(bars))
    assert s[f"{sd.base}_confirmed_at"].iloc[32] == s.index[32]
    assert (s[f"{sd.base}_lo"].iloc[32], s[f"{sd.base}_hi"].iloc[32]) == sd.zone(-1, 4)
    assert col(s, sd.viol, slice(32, 39)) == [False, False, False, False, True, False, True]
    assert col(s, sd.intact, slice(32, 39)) == [True, True, True, True, False, False, False]
    # 7.2 breakouts against the reference zone [-1, 4]: up if C >= 4 + 1 (bar 37, close 5), down if
    # C <= -1 - 1 (32: -4, 34/35: -3, 36: -2, 38: -5); bar 33 closes at -1: neither
    up, down = ("bull_break", "bear_break") if side > 0 else ("bear_break", "bull_break")
    assert col(s, up, slice(32, 39)) == [False, False, False, False, False, True, False]
    assert col(s, down, slice(32, 39)) == [True, False, True, True, True, False, True]
    # stays violated until a NEW base of the same colour confirms (bar 55), which resets it
    assert col(s, sd.intact, slice(39, 55)) == [False] * 16
    assert not s[sd.viol].iloc[39:].any()
    assert col(s, sd.intact, slice(55, 56)) == [True]
    assert s[f"{sd.base}_id"].iloc[55] != s[f"{sd.base}_id"].iloc[54]
    assert (s[f"{sd.base}_lo"].iloc[55], s[f"{sd.base}_hi"].iloc[55]) == sd.zone(3, 8)
    assert s[f"{sd.base}_confirmed_at"].iloc[55] == s.index[55]
    # no base of the other colour ever, so the opposite state is never intact
    assert not s[Side(-side).intact].any() and not s[Side(-side).viol].any()
    # before any base: not intact
    assert not s[sd.intact].iloc[:32].any()


@pytest.mark.parametrize("side", SIDES)
def test_golden_rule_tolerance_is_one_full_tick(side):
    # 0.5-tick tolerance => a close must be at least 1 tick beyond. On the 0.25 grid a close of
    # G.lo - 0.5 tick cannot occur; the two closest closes are G.lo (no) and G.lo - 1 tick (yes).
    sd = Side(side)
    for close, violated in ((-1, False), (-2, True)):
        s = run(sd.bars(green_base() + [WIDE, bar(close, o=0)]))
        assert bool(s[sd.viol].iloc[33]) is violated
        assert bool(s[sd.intact].iloc[33]) is (not violated)


# =============================================================================================
# 7.3 Reference base and trend continuation; 7.5 composite score and status
# =============================================================================================

def test_reference_base_is_the_more_recently_confirmed():
    # G1 = GREEN (conf. 32, [-1, 4]); then zigzag 1/0 (33..46), closes -1, -2 (47, 48: red,
    # u = 1: moves -,-,+,- then -,-,-,+), wide bar with low -13 (49) -> R = [-3, 2] confirmed at 49;
    # then zigzag 4/5 (50..63), closes 6, 7 (64, 65: green), wide bar (66) -> G2 = [3, 8] at 66.
    bars = (green_base() + [WIDE] + zigzag(14, first=1) + [bar(-1), bar(-2), bar(-1, l=-13)]
            + zigzag(14, lo=4, hi=5) + [bar(6), bar(7), bar(6, h=18)])
    s = run(bars)
    ref = col(s, "ref_side")
    assert ref == [0] * 32 + [1] * 17 + [-1] * 17 + [1]
    assert col(s, "red_confirmed_at", slice(49, 50)) == [s.index[49]]
    assert (s["red_lo"].iloc[49], s["red_hi"].iloc[49]) == (px(-3), px(2))
    # the reference zone follows the reference; the older base keeps its own state (G1 still intact)
    assert (s["ref_lo"].iloc[49], s["ref_hi"].iloc[49]) == (px(-3), px(2))
    assert bool(s["bull_intact"].iloc[49]) and bool(s["bear_intact"].iloc[49])
    assert (s["ref_lo"].iloc[66], s["ref_hi"].iloc[66]) == (px(3), px(8))
    assert col(s, "ref_age_bars", slice(47, 51)) == [15, 16, 0, 1]
    # TC / BQ follow the reference: δ = 0 everywhere -> BO = 0 -> +0.2 / +q, -0.2 / -q
    assert col(s, "tc", slice(48, 50)) == approx([0.2, -0.2])
    assert col(s, "bq", slice(48, 50)) == approx([0.87, -0.87])
    assert col(s, "tc", slice(65, 67)) == approx([-0.2, 0.2])


@pytest.mark.parametrize("side", SIDES)
def test_trend_continuation_table_and_bn_score(side):
    sd = Side(side)
    s_ = side
    # GREEN with δ (all weights 1: every volume is 100): bars 28..33 δ = 0.4, 34..38 δ = 1, 39 δ = 0.
    # Tail prices: 33..37 zigzag dojis 1,0,1,0,1; 38 red bar -1 -> -2 (violation); 39 doji 0.
    bars = green_base() + [WIDE] + zigzag(5, first=1) + [bar(-2, o=-1), bar(0)]
    ds = {i: 0.4 for i in range(28, 34)} | {i: 1.0 for i in range(34, 39)}
    s = run(sd.bars(deltas(bars, ds)))
    #  t   δ(t-4..t)            BO            ref/state       TC     BQ     bn = .4BO + .35TC + .25BQ    status
    #  31  0,.4,.4,.4,.4        1.6/5 = .32   none            0      0      .128                         balanced
    #  32  .4 x5                .4 (not >.4)  green intact    +.2    .87    .16+.07+.2175 = .4475        contested
    #  33  .4 x5                .4            green intact    +.2    .87    .4475                        contested
    #  34  .4 x4, 1             2.6/5 = .52   green intact    +.6    .87    .208+.21+.2175 = .6355       contested
    #  35  .4 x3, 1 x2          3.2/5 = .64   green intact    +.6    .87    .256+.21+.2175 = .6835       contested
    #  36  .4 x2, 1 x3          3.8/5 = .76   green intact    +.6    .87    .304+.21+.2175 = .7315       vikings
    #  37  .4, 1 x4             4.4/5 = .88   green intact    +.6    .87    .352+.21+.2175 = .7795       vikings
    #  38  1 x5                 1.0           green VIOLATED  -.6    0      .40-.21 = .19                balanced
    #  39  1 x4, 0              .8            green violated  -.6    0      .32-.21 = .11                balanced
    rows = slice(31, 40)
    assert col(s, "battle", rows) == approx([s_ * x for x in [0.32, 0.4, 0.4, 0.52, 0.64, 0.76, 0.88, 1.0, 0.8]])
    assert col(s, "ref_side", rows) == [0] + [s_] * 8
    assert col(s, "tc", rows) == approx([s_ * x for x in [0, 0.2, 0.2, 0.6, 0.6, 0.6, 0.6, -0.6, -0.6]])
    assert col(s, "bq", rows) == approx([s_ * x for x in [0, 0.87, 0.87, 0.87, 0.87, 0.87, 0.87, 0, 0]])
    assert col(s, "q_ref", rows) == approx([0.0] + [0.87] * 8)  # q of the reference, violated or not
    bn = [0.128, 0.4475, 0.4475, 0.6355, 0.6835, 0.7315, 0.7795, 0.19, 0.11]
    assert col(s, "bn_score", rows) == approx([s_ * x for x in bn])
    assert col(s, "status", rows) == ["balanced"] + ["contested"] * 4 + [sd.win] * 2 + ["balanced"] * 2
    # candidates at |bn| >= 0.25; the entry fires on the first candidate bar only
    assert col(s, sd.cand, rows) == [False] + [True] * 6 + [False] * 2
    assert col(s, sd.entry, rows) == [False, True] + [False] * 7
    assert not s[sd.ocand].any() and not s[sd.oentry].any()
    # confidence = mean(q_ref, |P|, |TC|, |bn|), P = 0 here: at 37 (.87 + 0 + .6 + .7795)/4
    assert s["confidence"].iloc[37] == approx((0.87 + 0.6 + 0.7795) / 4)


def test_status_thresholds_exact():
    # With weight_battle = 1 (and no base: TC = BQ = 0) bn = BO exactly, so the thresholds can be hit
    # on the nose. Volume 200 everywhere (w = 1); δ = (A - B)/200 in steps of 0.25 (exact binary).
    # After 24 bars of δ = 0, five-bar δ blocks give BO = sum/5:
    #   [1, 1, 1, .5, 0]    -> 3.5/5  = 0.7  -> vikings_winning (>= 0.7)
    #   [1, 1, 1, .25, 0]   -> 3.25/5 = 0.65 -> contested
    #   [.5, .5, .5, 0, 0]  -> 1.5/5  = 0.3  -> balanced (|bn| <= 0.3)
    #   and the mirrored blocks for the defenders.
    p = Params(weight_battle=1.0)
    blocks = [[1, 1, 1, 0.5, 0], [1, 1, 1, 0.25, 0], [0.5, 0.5, 0.5, 0, 0],
              [-1, -1, -1, -0.5, 0], [-1, -1, -1, -0.25, 0], [-0.5, -0.5, -0.5, 0, 0]]
    expect_bn = [0.7, 0.65, 0.3, -0.7, -0.65, -0.3]
    expect_status = ["vikings_winning", "contested", "balanced", "defenders_winning", "contested", "balanced"]
    for blk, bn, st in zip(blocks, expect_bn, expect_status):
        bars = [bar(0, v=200)] * 24 + [with_delta(bar(0, v=200), d) for d in blk]
        s = run(bars, p)
        assert s["bn_score"].iloc[28] == approx(bn)
        assert s["status"].iloc[28] == st, (blk, s["bn_score"].iloc[28])


def test_candidate_threshold_and_warmup():
    # Default weights, no base: bn = 0.4*BO. Volume 400 (w = 1), δ = 0.625 = (325-75)/400 on five bars:
    # BO = 0.625, bn = 0.4*0.625 = 0.25 exactly -> candidate (>= thr); δ = 0.5 -> bn = 0.2 -> none.
    for d, cand in ((0.625, True), (0.5, False)):
        for sign in (1, -1):
            bars = [bar(0, v=400)] * 24 + [with_delta(bar(0, v=400), sign * d)] * 5
            s = run(bars)
            assert s["bn_score"].iloc[28] == approx(sign * 0.4 * d)
            assert bool(s["long_candidate"].iloc[28]) is (cand and sign > 0)
            assert bool(s["short_candidate"].iloc[28]) is (cand and sign < 0)
            assert not s["long_entry"].any() and not s["short_entry"].any()  # no base: q_ref = 0 < 0.5

    # Warm-up: GREEN with a 20-bar prefix (base confirmed at 22, same hand computation) and δ = 1 on
    # EVERY bar. BO is NaN until t = 24 (see test_volume_weight_and_battle_outcome), so before 24:
    # bn = 0, balanced, no candidate, no entry, although the base is there (tc = +0.2, bq = 0.87).
    # At 24: BO = 1 -> TC = +0.6 -> bn = 0.4 + 0.21 + 0.25*0.87 = 0.8275 -> vikings_winning.
    bars = [with_delta(b, 1.0) for b in green_base(20) + [WIDE] + zigzag(3, first=1)]
    s = run(bars)
    assert s["green_confirmed_at"].iloc[22] == s.index[22]
    assert col(s, "bq", slice(22, 24)) == approx([0.87, 0.87])
    assert col(s, "bn_score") == approx([0.0] * 24 + [0.8275, 0.8275])
    assert col(s, "status", slice(20, 26)) == ["balanced"] * 4 + ["vikings_winning"] * 2
    assert col(s, "long_candidate") == [False] * 24 + [True, True]
    assert col(s, "long_entry") == [False] * 24 + [True, False]

    # The warm-up is Params.warmup_bars = max(VW + W - 1, CW, TL + 1, 16) (params.py docstring), not
    # merely "BO is defined": with a 10-bar volume median BO exists from t = 10 + 5 - 1 = 14, but the
    # warm-up is max(14, 15, 5, 16) = 16, so bn stays 0 at 14 and 15.
    p = Params(volume_median_bars=10)
    assert p.warmup_bars == 15  # max(10 + 5 - 1, consolidation 15, type lookback 4 + 1)
    s = run(bars, p)
    assert col(s, "battle", slice(13, 17)) == approx([NAN, 1.0, 1.0, 1.0])
    # t >= 15: the base confirms only at 22, so TC = BQ = 0 and bn = 0.4*BO = 0.4
    assert col(s, "bn_score", slice(13, 17)) == approx([0.0, 0.0, 0.4, 0.4])
    assert col(s, "long_candidate", slice(13, 17)) == [False, False, True, True]


# =============================================================================================
# 7.4 Sierra patterns
# =============================================================================================

PRE = zigzag(24)  # 24 bars of volume 100: Vmed = 100 at every pattern bar


def test_pattern_ldu():
    # t = 26. Bars (o, h, l, c): t-2 = (9, 12, 8, 10), t-1 = (8, 9, 0, 2) volume 50, t = (3, 14, 3, 13).
    #   O[t-1] = 8 < C[t-2] = 10; H[t-2] = 12 > L[t-1] + 8 = 8; O[t] = 3 > C[t-1] = 2;
    #   H[t] = 14 > L[t-1] + 8 = 8; H[t] = 14 > H[t-2] = 12  -> LDU
    #   strength = 0.7*min((12 - 0)/16, 1) + 0.3*min(50/100, 1) = 0.525 + 0.15 = 0.675
    #   (Vmed = median of V[6..25] = nineteen 100s and one 50 = 100). P = +0.675.
    bars = PRE + [bar(10, o=9, h=12, l=8), bar(2, o=8, h=9, l=0, v=50), bar(13, o=3, h=14, l=3), bar(13)]
    s = run(bars)
    assert col(s, "ldu", slice(24, 28)) == [False, False, True, False]  # not one bar earlier, nor later
    assert not s["lud"].any() and not s["cds"].any()
    assert col(s, "ldu_strength", slice(24, 28)) == approx([0, 0, 0.675, 0])
    assert col(s, "pattern", slice(24, 28)) == approx([0, 0, 0.675, 0])
    # boundaries: H[t] = H[t-2] (not >) -> no LDU; H[t-2] = L[t-1] + 8 (not >) -> no LDU
    s = run(PRE + [bar(10, o=9, h=12, l=8), bar(2, o=8, h=9, l=0, v=50), bar(12, o=3, h=12, l=3)])
    assert not s["ldu"].any()
    s = run(PRE + [bar(8, o=8, h=8, l=7), bar(2, o=7, h=8, l=0, v=50), bar(13, o=3, h=14, l=3)])
    assert not s["ldu"].any()
    # caps: H[t-2] - L[t-1] = 20 >= 16 -> 1; V[t-1] = 250 >= Vmed -> 1: strength 0.7 + 0.3 = 1.0
    s = run(PRE + [bar(18, o=17, h=20, l=16), bar(2, o=16, h=17, l=0, v=250), bar(21, o=3, h=22, l=3)])
    assert bool(s["ldu"].iloc[26]) and s["ldu_strength"].iloc[26] == approx(1.0)
    assert s["pattern"].iloc[26] == approx(1.0)


def test_pattern_lud():
    # t = 26. t-2 = (1, 2, -1, 0), t-1 = (1, 10, 1, 9) volume 300, t = (8, 8, -2, -1).
    #   O[t-1] = 1 > C[t-2] = 0; H[t-1] = 10 > L[t-2] + 8 = 7; O[t] = 8 < C[t-1] = 9;
    #   H[t-1] = 10 > L[t] + 8 = 6; L[t] = -2 < L[t-2] = -1  -> LUD
    #   strength = 0.7*min((10 - (-1))/16, 1) + 0.3*min(300/100, 1) = 0.48125 + 0.3 = 0.78125; P = -0.78125
    bars = PRE + [bar(0, o=1, h=2, l=-1), bar(9, o=1, h=10, l=1, v=300), bar(-1, o=8, h=8, l=-2), bar(-1)]
    s = run(bars)
    assert col(s, "lud", slice(24, 28)) == [False, False, True, False]
    assert not s["ldu"].any() and not s["cds"].any()
    assert col(s, "lud_strength", slice(24, 28)) == approx([0, 0, 0.78125, 0])
    assert col(s, "pattern", slice(24, 28)) == approx([0, 0, -0.78125, 0])
    # boundary: L[t] = L[t-2] (not <) -> no LUD
    s = run(PRE + [bar(0, o=1, h=2, l=-1), bar(9, o=1, h=10, l=1, v=300), bar(-1, o=8, h=8, l=-1)])
    assert not s["lud"].any()


def test_pattern_cds():
    # t = 27. t-3 = (30, 32, 28, 30), t-2 = (29, 29, 16, 18), t-1 = (17, 28, 17, 27), t = (26, 26, 14, 15).
    #   O[t] = 26 < C[t-1] = 27; H[t-1] = 28 > L[t] + 12 = 26; L[t] = 14 < L[t-1] = 17;
    #   O[t-2] = 29 < C[t-3] = 30; H[t-3] = 32 > L[t-2] + 12 = 28; L[t-2] = 16 < L[t-3] = 28;
    #   H[t-1] = 28 < H[t-2] = 29  -> CDS
    #   strength = 0.8*min((32 - 16)/24, 1) = 0.8*2/3 = 0.5333...; P = -0.5333...
    #   (LUD is false: O[t-1] = 17 is not > C[t-2] = 18. LDU false: O[t] = 26 is not > C[t-1] = 27.)
    bars = PRE + [bar(30, o=30, h=32, l=28), bar(18, o=29, h=29, l=16), bar(27, o=17, h=28, l=17),
                  bar(15, o=26, h=26, l=14), bar(15)]
    s = run(bars)
    assert col(s, "cds", slice(24, 29)) == [False, False, False, True, False]
    assert not s["ldu"].any() and not s["lud"].any()
    assert col(s, "cds_strength", slice(24, 29)) == approx([0, 0, 0, 0.8 * 2 / 3, 0])
    assert col(s, "pattern", slice(24, 29)) == approx([0, 0, 0, -0.8 * 2 / 3, 0])
    # boundary: H[t-1] = H[t-2] (not <) -> no CDS
    s = run(PRE + [bar(30, o=30, h=32, l=28), bar(18, o=29, h=29, l=16), bar(27, o=17, h=29, l=17),
                   bar(15, o=26, h=26, l=14)])
    assert not s["cds"].any()


def test_pattern_score_clip():
    # LUD and CDS complete on the same bar (t = 27): t-3 = (30, 32, 28, 30), t-2 = (29, 29, 16, 18),
    # t-1 = (19, 28, 18, 27), t = (26, 26, 10, 11).
    #   LUD: 19 > 18; 28 > 16 + 8; 26 < 27; 28 > 10 + 8; 10 < 16 -> strength 0.7*min(12/16, 1) + 0.3*1 = 0.825
    #   CDS: 26 < 27; 28 > 10 + 12; 10 < 18; 29 < 30; 32 > 16 + 12; 16 < 28; 28 < 29 -> 0.8*16/24 = 0.5333
    #   P = clip(0 - 0.825 - 0.5333, -1, 1) = -1
    bars = PRE + [bar(30, o=30, h=32, l=28), bar(18, o=29, h=29, l=16), bar(27, o=19, h=28, l=18),
                  bar(11, o=26, h=26, l=10)]
    s = run(bars)
    assert col(s, "lud", slice(24, 28)) == [False, False, False, True]
    assert col(s, "cds", slice(24, 28)) == [False, False, False, True]
    assert s["lud_strength"].iloc[27] == approx(0.825)
    assert s["cds_strength"].iloc[27] == approx(0.8 * 2 / 3)
    assert s["pattern"].iloc[27] == -1.0
    # patterns are not part of bn_score (no base, δ = 0 -> BO = 0 -> bn = 0)
    assert s["bn_score"].iloc[27] == 0.0


# =============================================================================================
# 7.6 Entries
# =============================================================================================

def test_entries_are_edge_triggered():
    # GREEN, δ: bar 34 = -1, bar 35 = +1, else 0. Tail dojis 1, 0, 1, 0 (33..36; no violation).
    #   32: BO 0           bn = .07 + .2175 = .2875   candidate (absent at 31: bn = 0) -> ENTRY
    #   33: BO 0           bn = .2875                 candidate, present at 32      -> no entry
    #   34: BO -1/5 = -.2  bn = -.08 + .2875 = .2075  no candidate
    #   35: BO (-1+1)/5 = 0  bn = .2875               candidate again (edge)        -> ENTRY
    #   36: BO 0           bn = .2875                 candidate                     -> no entry
    bars = deltas(green_base() + [WIDE] + zigzag(4, first=1), {34: -1.0, 35: 1.0})
    s = run(bars)
    rows = slice(31, 37)
    assert col(s, "bn_score", rows) == approx([0, 0.2875, 0.2875, 0.2075, 0.2875, 0.2875])
    assert col(s, "long_candidate", rows) == [False, True, True, False, True, True]
    assert col(s, "long_entry", rows) == [False, True, False, False, True, False]
    assert not s["short_entry"].any()


def _gate_runs(bars, thr=None):
    extra = {} if thr is None else {"entry_threshold": thr}
    return run(bars, Params.for_mode("backtest", **extra)), run(bars, Params.for_mode("data_collection", **extra))


@pytest.mark.parametrize("side", SIDES)
def test_entry_golden_rule_gate(side):
    # backtest/paper/live: golden_rule_strict (a long needs an intact green reference);
    # data_collection: non-strict (a long is refused only against an intact red or a violated green
    # reference). Shown on the bull image; the bear image mirrors it (run by the parametrization).
    sd = Side(side)
    assert Params.for_mode("backtest").golden_rule_strict and not Params.for_mode("data_collection").golden_rule_strict

    # (i) intact green reference, long candidate at 32 (bn .2875): entry in both modes.
    # (ii) violated green reference, short candidate: bar 33 red -1 -> -2 (violation), δ 0 -> BO 0,
    #      bn = -.21 (none); 34, 35: δ = -1 -> BO -.2, -.4 -> bn = -.08-.21 = -.29, -.37 (short
    #      candidate edge at 34): strict refuses (no intact red reference), non-strict takes it.
    bars = deltas(green_base() + [WIDE, bar(-2, o=-1), bar(0), bar(1)], {34: -1.0, 35: -1.0})
    strict, loose = _gate_runs(sd.bars(bars))
    for s in (strict, loose):
        assert col(s, "bn_score", slice(32, 36)) == approx([side * x for x in [0.2875, -0.21, -0.29, -0.37]])
        assert col(s, sd.ocand, slice(32, 36)) == [False, False, True, True]
        assert col(s, sd.entry) == [False] * 32 + [True] + [False] * 3
    assert not strict[sd.oentry].any()
    assert col(loose, sd.oentry) == [False] * 34 + [True, False]

    # (iii) intact green reference, short candidate (thr 0.1 makes it reachable): δ = -1 on 33..37,
    #       dojis 1,0,1,0,1: bn = .2875 - .4*{.2,.4,.6,.8,1} = .2075, .1275, .0475, -.0325, -.1125
    #       -> short candidate at 37: refused in both modes (never against an intact green base).
    bars = deltas(green_base() + [WIDE] + zigzag(5, first=1), {i: -1.0 for i in range(33, 38)})
    for s in _gate_runs(sd.bars(bars), thr=0.1):
        assert col(s, "bn_score", slice(33, 38)) == approx([side * x for x in [0.2075, 0.1275, 0.0475, -0.0325,
                                                                               -0.1125]])
        assert col(s, sd.ocand, slice(32, 38)) == [False] * 5 + [True]
        assert not s[sd.oentry].any()
        assert col(s, sd.entry) == [False] * 32 + [True] + [False] * 5  # long at 32 (bn .2875 >= .1)

    # (iv) violated green reference, long candidate (thr 0.1): bar 33 violation with δ = +1, then
    #      δ = +1 on 34..37: BO = .2,.4,.6,.8,1 and TC = -.6, BQ = 0 -> bn = .4BO - .21 =
    #      -.13, -.05, .03, .11, .19. Short candidate at 33 (<= -.1): strict no, non-strict yes.
    #      Long candidate at 36 (edge): refused in BOTH modes (violated green reference).
    bars = deltas(green_base() + [WIDE, bar(-2, o=-1)] + zigzag(4), {i: 1.0 for i in range(33, 38)})
    strict, loose = _gate_runs(sd.bars(bars), thr=0.1)
    for s in (strict, loose):
        assert col(s, "bn_score", slice(33, 38)) == approx([side * x for x in [-0.13, -0.05, 0.03, 0.11, 0.19]])
        assert col(s, sd.cand, slice(33, 38)) == [False, False, False, True, True]
        assert col(s, sd.entry, slice(33, 38)) == [False] * 5
    assert not strict[sd.oentry].any()
    assert col(loose, sd.oentry, slice(32, 38)) == [False, True, False, False, False, False]


def test_entry_min_base_quality():
    # The GREEN variant with q = 0.745 (test_base_confirmation_at_e_plus_1_and_quality), δ = 0:
    # bn(32) = .07 + .25*.745 = .25625 >= .25 -> long candidate. q_ref = .745: paper (min .60) enters,
    # live (min .75) does not. Bar 32 closes at 12:15 ET, inside both time windows.
    vols = [100] * 24 + [100, 300] * 4
    bars = [Bar(b.o, b.h, b.l, b.c, v, v // 2, v - v // 2) for b, v in zip(green_base(), vols)] + [WIDE]
    paper = run(bars, Params.for_mode("paper"))
    live = run(bars, Params.for_mode("live"))
    for s in (paper, live):
        assert s["q_ref"].iloc[32] == approx(0.745)
        assert s["bn_score"].iloc[32] == approx(0.25625)
        assert bool(s["long_candidate"].iloc[32])
    assert col(paper, "long_entry") == [False] * 32 + [True]
    assert not live["long_entry"].any()
    assert not run(bars, Params(min_base_quality=0.75))["long_entry"].any()
    assert run(bars, Params(min_base_quality=0.74))["long_entry"].iloc[32]


@pytest.mark.parametrize(
    "day, start, params, expected",
    [
        # bar 32 starts at `start` ET; the window tests its CLOSE (start + 5 min)
        ("2024-03-12", "09:30", Params(), True),                            # close 09:35 = first allowed
        ("2024-03-12", "09:30", Params(cash_open_blackout=True), False),    # close in 09:30-09:40
        ("2024-03-12", "09:35", Params(cash_open_blackout=True), False),    # close 09:40 still blacked out
        ("2024-03-12", "09:40", Params(cash_open_blackout=True), True),     # close 09:45
        ("2024-03-12", "09:30", Params.for_mode("live"), False),            # live starts 09:40
        ("2024-03-12", "09:35", Params.for_mode("live"), True),             # close 09:40
        ("2024-03-12", "15:40", Params(), True),                            # close 15:45 = last allowed
        ("2024-03-12", "15:45", Params(), False),                           # close 15:50
        ("2024-03-12", "15:45", Params.for_mode("paper"), False),
        ("2024-03-12", "15:45", Params.for_mode("data_collection"), True),  # collection until 15:55
        ("2024-03-12", "15:50", Params.for_mode("data_collection"), True),  # close 15:55
        ("2024-03-12", "15:55", Params.for_mode("data_collection"), False), # close 16:00
        ("2024-03-15", "14:55", Params(), True),                            # Friday, close 15:00
        ("2024-03-15", "15:00", Params(), False),                           # Friday, close 15:05
        ("2024-03-14", "15:00", Params(), True),                            # Thursday, close 15:05
    ],
    ids=["tue-0930-backtest", "tue-0930-blackout", "tue-0935-blackout", "tue-0940-blackout", "tue-0930-live",
         "tue-0935-live", "tue-1540-backtest", "tue-1545-backtest", "tue-1545-paper", "tue-1545-collect",
         "tue-1550-collect", "tue-1555-collect", "fri-1455", "fri-1500", "thu-1500"],
)
def test_entry_time_window(day, start, params, expected):
    # GREEN (δ = 0): long candidate edge at bar 32 whatever the clock; only the entry depends on it.
    bars = green_base() + [WIDE, bar(1), bar(0)]
    s = run(bars, params, index=rth_times_at(len(bars), 32, day, start))
    assert s.index[32] == pd.Timestamp(f"{day} {start}", tz="America/New_York")
    assert col(s, "long_candidate", slice(31, 35)) == [False, True, True, True]
    assert col(s, "long_entry") == [False] * 32 + [expected, False, False]


# =============================================================================================
# Session filter
# =============================================================================================

def test_session_filter_globex_bars_are_skipped():
    # The TC example (GREEN + δ tail) laid out over two days: bar 32 (the long entry) at 15:40 ET on
    # day 1 (close 15:45, inside the window), bar 35 at 15:55 and bar 36 at 09:30 on day 2; then wild
    # Globex bars are inserted (after the close, overnight, before the open). With session="rth" they
    # are out of session and change no in-session value.
    bars = green_base() + [WIDE] + zigzag(5, first=1) + [bar(-2, o=-1), bar(0)]
    bars = deltas(bars, {i: 0.4 for i in range(28, 34)} | {i: 1.0 for i in range(34, 39)})
    rth_ix = rth_times_at(len(bars), 32, "2024-03-12", "15:40")
    base = compute_signals(frame(bars, rth_ix), Params())

    glx_times = (["2024-03-12 16:00", "2024-03-12 16:30", "2024-03-12 18:00", "2024-03-12 23:55",
                  "2024-03-13 04:00", "2024-03-13 08:00", "2024-03-13 09:25"])
    glx_ix = pd.DatetimeIndex([pd.Timestamp(t, tz="America/New_York") for t in glx_times]).tz_convert("UTC")
    wild = [bar(80, o=-40, h=90, l=-50, v=5000, ask=5000, bid=0)] * len(glx_ix)
    mixed = pd.concat([frame(bars, rth_ix), frame(wild, glx_ix)]).sort_index()
    mixed.attrs = frame(bars, rth_ix).attrs
    s = compute_signals(mixed, Params())

    out = s.loc[glx_ix]
    assert not out["in_session"].any()
    assert (out["bar_index"] == -1).all() and out["battle"].isna().all() and out["delta"].isna().all()
    assert out["green_confirmed_at"].isna().all() and not out["long_entry"].any()
    ins = s.loc[rth_ix]
    assert ins["in_session"].all()
    assert col(ins, "bar_index") == list(range(len(bars)))
    pd.testing.assert_frame_equal(ins, base)
    # and the hand values of the TC example survive the overnight gap (between bars 35 and 36)
    assert col(ins, "bn_score", slice(32, 40)) == approx([0.4475, 0.4475, 0.6355, 0.6835, 0.7315, 0.7795,
                                                          0.19, 0.11])
    assert col(ins, "long_entry", slice(31, 35)) == [False, True, False, False]
    # with session="all" the same Globex bars are in session (so the filter is what skipped them)
    assert compute_signals(mixed, Params(session="all"))["in_session"].all()


def test_session_boundaries():
    # in_session reads the bar START in ET: 09:25 out, 09:30 in, 15:55 in, 16:00 out.
    ix = pd.DatetimeIndex([pd.Timestamp(f"2024-03-12 {t}", tz="America/New_York")
                           for t in ("09:25", "09:30", "15:55", "16:00")]).tz_convert("UTC")
    s = run([bar(0)] * 4, index=ix)
    assert col(s, "in_session") == [False, True, True, False]
    assert col(s, "bar_index") == [-1, 0, 1, -1]
