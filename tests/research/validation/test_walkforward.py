"""research.validation.walkforward: window calendar, IS choice, stitched OOS, look-ahead safety, summary/verdict."""

from __future__ import annotations

import math
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from research.validation.walkforward import (
    default_is_periods,
    objective_values,
    period_starts,
    walk_forward,
    walk_forward_from_sweep,
)


def _pnl(x: np.ndarray, start: str = "2019-01-01") -> pd.DataFrame:
    idx = pd.bdate_range(start, periods=x.shape[0], name="session")
    return pd.DataFrame(x, index=idx, columns=pd.RangeIndex(x.shape[1], name="combo"))


def _grid(n: int) -> pd.DataFrame:
    return pd.DataFrame(
        {"stop_ticks": 3 + np.arange(n) % 4, "target_ticks": 10 + np.arange(n) // 4,
         "params_hash": [f"p{i:02d}" for i in range(n)], "signal_hash": "s0"},
        index=pd.RangeIndex(n, name="combo"),
    )


def test_planted_regime_chooses_k_everywhere():
    rng = np.random.default_rng(4)
    x = rng.normal(0.0, 500.0, (1040, 12))  # 4 years of business days, quarterly periods
    x[:, 7] += 200.0
    df = _pnl(x)
    res = walk_forward(df, _grid(12), capital=100_000.0)
    w = res.windows
    assert (w["combo"] == 7).all() and res.summary["n_distinct_combos"] == 1
    assert (w["stop_ticks"] == 3 + 7 % 4).all() and (w["params_hash"] == "p07").all()
    assert "signal_hash" not in w.columns
    assert abs(res.summary["decay"]) < 0.3
    pd.testing.assert_series_equal(res.oos_pnl, df.loc[res.oos_pnl.index, 7], check_names=False)
    assert res.oos_pnl.index[0] == w["oos_start"].iloc[0] and res.oos_pnl.index[-1] == df.index[-1]
    np.testing.assert_allclose(res.oos_equity.iloc[-1], df.loc[res.oos_pnl.index, 7].sum())
    assert res.summary["oos_sharpe"] > 3 and res.summary["frac_windows_oos_positive"] == 1.0
    assert "largely carries" in res.verdict and "same configuration" in res.verdict
    assert res.next_window["combo"] == 7 and res.next_window["params"]["target_ticks"] == 11


def test_pure_noise_has_no_oos_sharpe_and_large_decay():
    rng = np.random.default_rng(12)
    res = walk_forward(_pnl(rng.normal(0.0, 500.0, (1040, 30))), capital=100_000.0)
    s = res.summary
    assert abs(s["oos_sharpe"]) < 1.0
    assert s["mean_is_sharpe"] > 1.0  # the luckiest of 30 looks good in-sample
    assert s["decay"] > 0.5
    assert "does not carry" in res.verdict or "only partly" in res.verdict


def test_rolling_and_anchored_windows_by_hand():
    # December session (before the first boundary) + 3 sessions in each of Jan..May 2021
    days = ["2020-12-30"] + [f"2021-{m:02d}-{d:02d}" for m in range(1, 6) for d in (4, 12, 20)]
    idx = pd.DatetimeIndex(days, name="session")
    # combo 0: +100/day in January, then -20/day; combo 1: +10/day throughout
    c0 = np.where(idx.month == 1, 100.0, -20.0)
    c0[0] = 0.0
    df = pd.DataFrame({0: c0, 1: np.full(len(idx), 10.0)}, index=idx)
    bounds = ["2021-01-01", "2021-02-01", "2021-03-01", "2021-04-01", "2021-05-01"]
    kw = dict(boundaries=bounds, is_periods=2, oos_periods=1, objective="net_pnl")

    rolling = walk_forward(df, scheme="rolling", **kw).windows
    assert list(rolling["is_start"].dt.strftime("%m-%d")) == ["01-04", "02-04", "03-04"]
    assert list(rolling["is_end"].dt.strftime("%m-%d")) == ["02-20", "03-20", "04-20"]
    assert list(rolling["oos_start"].dt.strftime("%m-%d")) == ["03-04", "04-04", "05-04"]
    assert list(rolling["oos_end"].dt.strftime("%m-%d")) == ["03-20", "04-20", "05-20"]
    # IS Jan-Feb: c0 = 300 - 60 = 240 > c1 = 60; IS Feb-Mar: c0 = -120 < c1 = 60
    assert list(rolling["combo"]) == [0, 1, 1]
    assert rolling["is_objective"].iloc[0] == pytest.approx(240 / 6)  # net_pnl objective: $ per session
    assert list(rolling["oos_net_pnl"]) == [-60.0, 30.0, 30.0]

    anchored_res = walk_forward(df, scheme="anchored", **kw)
    anchored = anchored_res.windows
    assert list(anchored["is_start"].dt.strftime("%m-%d")) == ["01-04"] * 3
    assert list(anchored["is_end"].dt.strftime("%m-%d")) == ["02-20", "03-20", "04-20"]
    # IS Jan-Mar: c0 = 300 - 120 = 180 > 90; IS Jan-Apr: c0 = 120 == c1 = 120 -> tie to the lowest id
    assert list(anchored["combo"]) == [0, 0, 0]
    assert anchored_res.config["unused_sessions"] == 1  # the December session is before the first period

    two = walk_forward(df, scheme="rolling", boundaries=bounds, is_periods=2, oos_periods=2, objective="net_pnl")
    w2 = two.windows
    assert list(w2["oos_start"].dt.strftime("%m-%d")) == ["03-04", "05-04"]
    assert list(w2["oos_end"].dt.strftime("%m-%d")) == ["04-20", "05-20"]
    assert list(w2["partial"]) == [False, True]
    assert list(w2["oos_sessions"]) == [6, 3]

    # a frequency string gives the same calendar (after dropping the December session)
    by_freq = walk_forward(df.iloc[1:], scheme="rolling", boundaries="MS", is_periods=2, oos_periods=1,
                           objective="net_pnl").windows
    pd.testing.assert_frame_equal(by_freq, rolling)


def test_oos_never_overlaps_is_and_tiles_the_calendar():
    rng = np.random.default_rng(1)
    df = _pnl(rng.normal(0, 100, (900, 6)))
    for scheme in ("rolling", "anchored"):
        for oos in (1, 2):
            res = walk_forward(df, scheme=scheme, is_periods=3, oos_periods=oos)
            w = res.windows
            assert (w["oos_start"] > w["is_end"]).all()
            assert (w["oos_start"].iloc[1:].to_numpy() > w["oos_end"].iloc[:-1].to_numpy()).all()
            assert res.oos_pnl.index.is_unique and res.oos_pnl.index.is_monotonic_increasing
            assert len(res.oos_pnl) == w["oos_sessions"].sum()


def test_no_look_ahead():
    rng = np.random.default_rng(21)
    x = rng.normal(0.0, 300.0, (780, 15))
    df = _pnl(x)
    base = walk_forward(df, scheme="rolling", is_periods=2)
    for w in base.windows.itertuples():
        future = df.index > w.is_end
        noisy = df.copy()
        noisy.loc[future] = rng.normal(0.0, 3000.0, (future.sum(), df.shape[1]))  # rewrite the future
        res = walk_forward(noisy, scheme="rolling", is_periods=2).windows.iloc[w.window]
        assert res["combo"] == w.combo
        assert res["is_objective"] == pytest.approx(w.is_objective)


def test_min_trades_and_standing_aside():
    rng = np.random.default_rng(2)
    x = rng.normal(0.0, 100.0, (520, 3))
    x[:, 2] += 80.0  # best, but trades rarely
    df = _pnl(x)
    trades = pd.DataFrame(1.0, index=df.index, columns=df.columns)
    trades[2] = 0.0
    res = walk_forward(df, trades=trades, min_trades=10)
    assert (res.windows["combo"] != 2).all() and "oos_trades" in res.windows
    none = walk_forward(df, trades=trades * 0, min_trades=1)
    assert none.windows["combo"].isna().all()
    assert (none.oos_pnl == 0).all() and none.summary["windows_standing_aside"] == len(none.windows)
    assert "stood aside" in none.verdict and none.next_window["combo"] is None


def test_objectives_and_errors():
    x = np.array([[1.0, -1.0], [3.0, 2.0], [-1.0, 2.0], [5.0, 1.0]])
    np.testing.assert_allclose(objective_values(x, "net_pnl"), [2.0, 1.0])
    np.testing.assert_allclose(objective_values(x, "profit_factor"), [9.0, 5.0])
    np.testing.assert_allclose(objective_values(x, "sharpe"), x.mean(0) / x.std(0, ddof=1) * math.sqrt(252))
    np.testing.assert_allclose(objective_values(x, "sortino"),
                               x.mean(0) / np.sqrt((np.minimum(x, 0) ** 2).mean(0)) * math.sqrt(252))
    df = _pnl(np.zeros((100, 2)))
    with pytest.raises(ValueError, match="periods with data"):
        walk_forward(df, is_periods=4)
    with pytest.raises(ValueError, match="scheme"):
        walk_forward(df, scheme="expanding")
    with pytest.raises(ValueError, match="objective"):
        walk_forward(df, objective="calmar")
    with pytest.raises(ValueError, match="NaN"):
        walk_forward(df.replace(0.0, np.nan), is_periods=1)
    with pytest.raises(ValueError, match="frequency"):
        period_starts(df.index, "quarterly")


def test_from_sweep_uses_segment_boundaries():
    rng = np.random.default_rng(3)
    df = _pnl(rng.normal(0, 100, (400, 4)), start="2020-03-16")
    firsts = pd.to_datetime(["2020-03-16", "2020-06-15", "2020-09-14", "2020-12-14", "2021-03-15"])
    seg = pd.DataFrame({"name": ["ESM20", "ESU20", "ESZ20", "ESH21", "ESM21"], "first_session": firsts,
                        "last_session": firsts + pd.Timedelta(days=80), "bars": 100})
    fake = SimpleNamespace(daily_pnl=df, grid=_grid(4), segments=seg, meta={"capital": 50_000.0})
    seg = pd.concat([seg, pd.DataFrame([{"name": "ESU21", "first_session": pd.NaT, "last_session": pd.NaT,
                                          "bars": 0}])], ignore_index=True)  # a data set without a session
    fake.segments = seg
    res = walk_forward_from_sweep(fake, is_periods=2)
    assert list(res.periods["start"]) == list(firsts)
    assert res.windows["oos_start"].iloc[0] == firsts[2]
    assert res.config["capital"] == 50_000.0


def test_from_sweep_applies_min_trades_with_the_sweeps_trade_counts(tmp_path):
    # combo 2 earns the most but closes one trade a month; the others trade every session
    from research.sweep.result import SweepResult
    from strategy.params import Params

    rng = np.random.default_rng(5)
    df = _pnl(rng.normal(0.0, 100.0, (520, 3)))
    counts = pd.DataFrame(np.ones(df.shape, np.int32), index=df.index, columns=df.columns)
    first_of_month = df.groupby(df.index.to_period("M")).head(1).index
    counts[2] = np.where(df.index.isin(first_of_month), 1, 0).astype(np.int32)
    df[2] = np.where(counts[2] > 0, 3000.0 + rng.normal(0, 100.0, len(df)), 0.0)
    grid = _grid(3)
    res = SweepResult(grid=grid, summary=pd.DataFrame(index=grid.index), daily_pnl=df,
                      segments=pd.DataFrame({"name": ["s"], "first_session": [df.index[0]],
                                             "last_session": [df.index[-1]], "bars": [1]}),
                      meta={"capital": 100_000.0, "base_params": Params().to_dict()}, daily_trades=counts)
    res.save(tmp_path / "sw")
    back = SweepResult.load(tmp_path / "sw")

    free = walk_forward_from_sweep(back)
    assert (free.windows["combo"] == 2).all()  # without a trade minimum the rare trader wins every window
    # 4 IS quarters hold ~12 trades of combo 2 and ~250 of the others
    strict = walk_forward_from_sweep(back, min_trades=50)
    assert (strict.windows["combo"] != 2).all() and strict.next_window["combo"] != 2
    w = strict.windows
    for row in w.itertuples():  # OOS trades are the chosen combo's counts over its OOS sessions
        assert row.oos_trades == counts.loc[row.oos_start:row.oos_end, row.combo].sum()
    assert strict.summary["oos_trades"] == w["oos_trades"].sum() == strict.summary["oos_sessions"]
    # no trade counts (a sweep saved before they existed): min_trades cannot apply, and the verdict says so
    back.daily_trades = None
    blind = walk_forward_from_sweep(back, min_trades=50)
    assert (blind.windows["combo"] == 2).all() and "not applied" in blind.verdict
    assert "oos_trades" not in blind.windows and "oos_trades" not in blind.summary


def test_trade_counts_must_match_the_pnl_labels():
    idx = pd.bdate_range("2021-01-04", periods=60)
    pnl = pd.DataFrame({0: np.ones(60), 1: -np.ones(60)}, index=idx)
    counts = pd.DataFrame({"0": np.ones(60), "1": np.ones(60)}, index=idx)  # string labels, as a bad join gives
    with pytest.raises(ValueError, match="different configuration columns"):
        walk_forward(pnl, boundaries="MS", is_periods=1, trades=counts, min_trades=1)
    with pytest.raises(ValueError, match="different sessions"):
        walk_forward(pnl, boundaries="MS", is_periods=1, trades=counts.set_axis([0, 1], axis=1).iloc[5:], min_trades=1)


def test_default_is_periods_follows_the_data():
    rng = np.random.default_rng(5)
    assert [default_is_periods(n) for n in (2, 3, 5, 40)] == [1, 2, 4, 4]
    many = walk_forward(_pnl(rng.normal(0, 100, (1040, 3))))  # 16 quarters: the usual 4
    assert many.config["is_periods"] == 4
    two = walk_forward(_pnl(rng.normal(0, 100, (100, 3))))  # Q1 + part of Q2: 1 IS period, 1 OOS
    assert two.config["is_periods"] == 1 and len(two.windows) == 1
    with pytest.raises(ValueError, match="1 period.*needs at least 2.*two or more contracts"):
        walk_forward(_pnl(rng.normal(0, 100, (40, 3))))
    with pytest.raises(ValueError, match=r"is_periods = 1 \(--is-periods 1\) is the largest that works"):
        walk_forward(_pnl(rng.normal(0, 100, (100, 3))), is_periods=4)
