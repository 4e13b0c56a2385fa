"""Synthetic trade snapshots and bar contexts for the ML tests (no shared data needed).

``fake_snapshots(n, signal=s)``: ``n`` schema-valid snapshots of one run over consecutive RTH sessions,
1-3 trades a day, each lasting 1-40 five-minute bars. The win probability is
``sigmoid(logit(base) + signal * battle_with / std)``: ``signal=0`` gives labels independent of every
feature (for the permutation test), ``signal>0`` a planted, learnable effect of the side-turned battle.
``fake_bar_context(snaps)``: the two bar features at every signal bar (random, causal by construction).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.ml.bars import BarContext
from research.store import snapshots as snap

TICK = 0.25
TICK_VALUE = 12.5


def fake_snapshots(n: int = 600, *, seed: int = 0, signal: float = 0.0, base_rate: float = 0.3,
                   run_id: str = "fake-run", start: str = "2019-01-02") -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    days = pd.bdate_range(start, periods=n)  # more than enough sessions
    rows = []
    k = 0
    for day in days:
        if k >= n:
            break
        m = int(rng.integers(1, 4))
        t = pd.Timestamp(day.date()).tz_localize("America/New_York") + pd.Timedelta(hours=9, minutes=40)
        for _ in range(m):
            if k >= n:
                break
            t = t + pd.Timedelta(minutes=5 * int(rng.integers(1, 10)))
            hold = int(rng.integers(1, 40))
            if (t + pd.Timedelta(minutes=5 * (hold + 2))).hour >= 16:
                break
            rows.append((k, t.tz_convert("UTC"), hold))
            t = t + pd.Timedelta(minutes=5 * (hold + 1))
            k += 1
    n = len(rows)
    side = rng.choice([-1, 1], size=n).astype(np.int8)
    battle = side * np.abs(rng.normal(0.05, 0.05, n)) + rng.normal(0, 0.02, n)
    z = (side * battle - np.mean(side * battle)) / np.std(side * battle)
    logit = np.log(base_rate / (1 - base_rate)) + signal * z
    win = rng.random(n) < 1 / (1 + np.exp(-logit))
    sig_ts = pd.DatetimeIndex([r[1] for r in rows])
    hold = np.array([r[2] for r in rows])
    entry_ts = sig_ts + pd.Timedelta(minutes=5)
    exit_ts = entry_ts + pd.to_timedelta(5 * hold, "min")
    entry = 4000 + np.round(rng.normal(0, 20, n) / TICK) * TICK
    stop = entry - side * 7 * TICK
    target = entry + side * 14 * TICK
    reason = np.where(win, "target", "stop")
    exit_px = np.where(win, target, stop - side * TICK)
    pnl_ticks = side * (exit_px - entry) / TICK
    commission = np.full(n, 4.0)
    pnl_usd = pnl_ticks * TICK_VALUE * 2 - commission
    ref_side = np.where(rng.random(n) < 0.9, side, 0).astype(np.int8)
    has = ref_side != 0
    width = np.where(has, rng.integers(2, 11, n).astype(float), np.nan)
    lo_d = np.where(has, rng.integers(0, 30, n).astype(float), np.nan)
    df = pd.DataFrame({
        "run_id": run_id, "trade_id": [f"{run_id}-{i:06d}" for i in range(n)], "symbol": "ES", "contract": "ESH19",
        "mode": "backtest", "session": "rth", "side": side, "signal_ts": sig_ts, "entry_ts": entry_ts, "exit_ts": exit_ts,
        "delta": np.clip(side * 0.1 + rng.normal(0, 0.2, n), -1, 1), "ball": rng.integers(-1, 2, n).astype(np.int8),
        "ball_lag1": rng.integers(-1, 2, n).astype(np.int8), "ball_lag2": rng.integers(-1, 2, n).astype(np.int8),
        "ball_lag3": rng.integers(-1, 2, n).astype(np.int8), "ball_lag4": rng.integers(-1, 2, n).astype(np.int8),
        "battle": battle, "bn_score": side * (0.25 + np.abs(rng.normal(0, 0.05, n))),
        "status": rng.choice(["contested", "balanced", "vikings_winning", "defenders_winning"], n),
        "confidence": rng.uniform(0.2, 0.6, n), "tc": side * rng.choice([0.2, 0.6], n), "ref_side": ref_side,
        "q_ref": np.where(has, rng.uniform(0.5, 0.9, n), 0.0), "bull_intact": rng.random(n) < 0.5,
        "bear_intact": rng.random(n) < 0.5, "base_width_ticks": width,
        "base_age_bars": pd.array(np.where(has, rng.integers(0, 200, n), 0), dtype="Int32"),
        "dist_base_hi_ticks": lo_d - width, "dist_base_lo_ticks": lo_d,
        "pattern": np.zeros(n), "ldu": np.zeros(n, bool), "lud": np.zeros(n, bool), "cds": np.zeros(n, bool),
        "atr14_ticks": rng.uniform(4, 20, n), "rel_volume": rng.uniform(0.3, 3, n),
        "ret5_ticks": rng.normal(0, 8, n), "ret15_ticks": rng.normal(0, 15, n),
        "minutes_since_open": 0.0, "weekday": sig_ts.tz_convert("America/New_York").day_of_week.astype(np.int8),
        "vix_regime": None, "order_flow": True,
        "entry_price": entry, "stop_price": stop, "target_price": target, "slippage_ticks": 1.0,
        "contracts": np.full(n, 2, np.int32), "commission_usd": commission,
        "exit_price": exit_px, "exit_reason": reason, "pnl_ticks": pnl_ticks, "pnl_usd": pnl_usd,
        "r_multiple": pnl_ticks / 7, "mfe_ticks": np.abs(pnl_ticks), "mae_ticks": np.full(n, 3.0),
        "bars_held": hold.astype(np.int32), "intrabar_ambiguous": False, "same_bar_exit": False,
        "gap_through_stop": False, "pnl_usd_optimistic": pnl_usd,
    })
    df.loc[~has, "base_age_bars"] = pd.NA
    et = sig_ts.tz_convert("America/New_York")
    df["minutes_since_open"] = (et.hour * 60 + et.minute + 5 - 570).astype(float)
    return snap.validate(df)


def fake_bar_context(snaps: pd.DataFrame, *, seed: int = 1) -> BarContext:
    """rv12_ticks and delta_z20 at every signal bar of ``snaps`` (``.frame``, index: signal_ts), as an explicit
    BarContext: a test-only stand-in for research.ml.bars output, with no bars behind it."""
    rng = np.random.default_rng(seed)
    idx = pd.DatetimeIndex(snaps["signal_ts"]).unique().sort_values()
    return BarContext(pd.DataFrame({"rv12_ticks": rng.uniform(1, 8, len(idx)),
                                    "delta_z20": rng.normal(0, 1, len(idx))}, index=idx))
