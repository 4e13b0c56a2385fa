"""PerformanceTracker (research.performance): hand-computed metrics, drawdowns, attribution, backtest and
store agreement, empyrical / vectorbt cross-checks, degenerate cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from barbuilder import edge_case_bars

from research.backtest import run
from research.backtest.stats import daily_equity
from research.performance import ATTRIBUTION_KEYS, METRIC_LABELS, PerformanceTracker
from strategy import Params

ET = "America/New_York"
CAP = 10_000.0


def _t(day: str, hhmm: str) -> pd.Timestamp:
    return pd.Timestamp(f"{day} {hhmm}", tz=ET).tz_convert("UTC")


# 6 trades over 3 sessions (Tue 5, Wed 6, Thu 7 March 2024); times ET: (day, signal close, exit, pnl, r, ...)
SPEC = [
    ("2024-03-05", "09:40", "10:10", 170.5, 2.0, 1, "target", "contested", 1, 6.0, (True, False, False), True),
    ("2024-03-05", "10:55", "11:15", -92.0, -1.0, -1, "stop", "balanced", -1, 12.0, (False, True, False), True),
    ("2024-03-06", "12:30", "13:00", 100.0, 1.0, 1, "opposite", "contested", 0, None, (False, False, False), False),
    ("2024-03-06", "14:30", "14:50", 50.0, 0.5, -1, "time", "vikings_winning", -1, 20.0, (False, True, True), True),
    ("2024-03-07", "03:00", "03:10", -30.0, -0.3, 1, "golden_rule", "balanced", 1, 3.0, (False, False, False), True),
    ("2024-03-07", "15:10", "15:40", -150.0, -1.5, -1, "stop", "contested", 1, 8.0, (True, False, False), False),
]


def hand_trades() -> pd.DataFrame:
    rows = []
    for k, (day, sig, ex, pnl, r, side, reason, status, ref, width, (ldu, lud, cds), flow) in enumerate(SPEC):
        close = _t(day, sig)
        exit_ = _t(day, ex)
        rows.append({
            "trade_id": f"T{k}", "contract": "ESH24" if k < 4 else "ESM24", "session": "all", "side": side,
            "signal_ts": close - pd.Timedelta(minutes=5), "entry_ts": close, "exit_ts": exit_,
            "status": status, "ref_side": ref, "base_width_ticks": width, "ldu": ldu, "lud": lud, "cds": cds,
            "order_flow": flow, "commission_usd": 4.5, "exit_reason": reason, "pnl_usd": pnl, "r_multiple": r,
            "bars_held": int((exit_ - close) / pd.Timedelta(minutes=5)),
        })
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def hand() -> PerformanceTracker:
    return PerformanceTracker(hand_trades(), capital=CAP)


@pytest.fixture(scope="module")
def edge_result():
    return run(edge_case_bars(n_days=12), Params(session="all", flat_at_et="16:55", entry_end_et="16:30"))


# ---- hand-computed metrics -----------------------------------------------------------------------
def test_trade_metrics_by_hand(hand):
    m = hand.metrics()
    assert list(m.index) == list(METRIC_LABELS)
    assert m["trades"] == 6
    assert m["net_pnl_usd"] == pytest.approx(48.5)
    assert m["commissions_usd"] == pytest.approx(27.0)
    assert m["gross_pnl_usd"] == pytest.approx(75.5)
    assert m["win_rate"] == pytest.approx(0.5)
    assert m["profit_factor"] == pytest.approx(320.5 / 272.0)
    assert m["expectancy_usd"] == pytest.approx(48.5 / 6)
    assert m["expectancy_r"] == pytest.approx(0.7 / 6)
    assert m["avg_win_usd"] == pytest.approx(320.5 / 3) and m["avg_loss_usd"] == pytest.approx(-272.0 / 3)
    assert m["avg_win_r"] == pytest.approx(3.5 / 3) and m["avg_loss_r"] == pytest.approx(-2.8 / 3)
    assert (m["largest_win_usd"], m["largest_loss_usd"]) == (170.5, -150.0)
    assert (m["max_consecutive_wins"], m["max_consecutive_losses"]) == (2, 2)  # W L W W L L
    assert m["avg_holding_minutes"] == pytest.approx(140 / 6)
    assert m["avg_bars_held"] == pytest.approx(28 / 6)
    # no position series: time in market / (3 sessions x 23 h of the "all" session)
    assert m["exposure"] == pytest.approx(140 / (3 * 1380))
    assert m["sessions"] == 3 and m["trades_per_day"] == pytest.approx(2.0)
    assert m["final_equity_usd"] == pytest.approx(CAP + 48.5)
    assert m["first_session"] == pd.Timestamp("2024-03-05") and m["last_session"] == pd.Timestamp("2024-03-07")


def test_daily_series_and_ratios_by_hand(hand):
    pnl = hand.daily_pnl()
    assert pnl.index.name == "session" and isinstance(pnl.index, pd.DatetimeIndex)
    assert pnl.to_dict() == {pd.Timestamp("2024-03-05"): 78.5, pd.Timestamp("2024-03-06"): 150.0,
                             pd.Timestamp("2024-03-07"): -180.0}
    r = np.array([78.5, 150.0, -180.0]) / CAP
    np.testing.assert_allclose(hand.daily_returns().to_numpy(), r)
    m = hand.metrics()
    assert m["sharpe"] == pytest.approx(r.mean() / r.std(ddof=1) * math.sqrt(252))
    assert m["sortino"] == pytest.approx(r.mean() * 252 / (math.sqrt(np.mean(np.minimum(r, 0) ** 2)) * math.sqrt(252)))
    assert m["annual_return"] == pytest.approx(r.mean() * 252)
    assert m["annual_volatility"] == pytest.approx(r.std(ddof=1) * math.sqrt(252))
    # session-close equity 10078.5, 10228.5, 10048.5: worst $ drawdown 180 -> 1.8 % of the capital
    assert m["calmar"] == pytest.approx(r.mean() * 252 / (180 / CAP))
    # trade-exit equity: 10170.5 10078.5 10178.5 10228.5 10198.5 10048.5
    assert m["max_drawdown_usd"] == pytest.approx(180.0)
    assert m["max_drawdown_pct"] == pytest.approx(180 / 10228.5)
    np.testing.assert_allclose(hand.equity_curve().to_numpy(),
                               [10170.5, 10078.5, 10178.5, 10228.5, 10198.5, 10048.5])
    assert m["psr"] == m["dsr"]  # one trial
    mt = hand.monthly_returns()
    assert list(mt.columns) == list(range(1, 13)) and list(mt.index) == [2024]
    assert mt.loc[2024, 3] == pytest.approx(48.5) and mt.loc[2024].isna().sum() == 11
    assert hand.monthly_returns(pct=True).loc[2024, 3] == pytest.approx(48.5 / CAP)


def test_headline_formats_every_metric(hand):
    h = hand.headline()
    assert list(h.columns) == ["metric", "value"] and list(h.index) == list(METRIC_LABELS)
    assert h.loc["net_pnl_usd", "value"] == "$48.50"
    assert h.loc["largest_loss_usd", "value"] == "-$150.00"
    assert h.loc["win_rate", "value"] == "50.00%"
    assert h.loc["trades", "value"] == "6"
    assert h.loc["first_session", "value"] == "2024-03-05"
    assert h["value"].map(lambda v: isinstance(v, str) and v != "").all()


# ---- drawdowns -----------------------------------------------------------------------------------
def _dd_curve() -> pd.Series:
    idx = pd.date_range("2024-03-04 14:30", periods=8, freq="1h", tz="UTC")
    return pd.Series([100, 110, 105, 95, 112, 112, 108, 111.0], index=idx)


def test_drawdown_table_on_hand_made_curve():
    eq = _dd_curve()
    t = eq.index
    pt = PerformanceTracker(pd.DataFrame(), equity=eq, capital=100.0)
    dd = pt.drawdowns()
    assert len(dd) == 2
    first, second = dd.iloc[0], dd.iloc[1]  # deepest first
    assert (first["start"], first["trough"], first["recovery"]) == (t[1], t[3], t[4])
    assert first["depth_usd"] == 15 and first["depth_pct"] == pytest.approx(15 / 110) and first["recovered"]
    assert (first["duration"], first["time_to_trough"], first["time_to_recover"]) == (
        pd.Timedelta(hours=3), pd.Timedelta(hours=2), pd.Timedelta(hours=1))
    # the second starts at the last of two equal peaks and is still open at the end
    assert (second["start"], second["trough"]) == (t[5], t[6]) and pd.isna(second["recovery"])
    assert second["depth_usd"] == 4 and not second["recovered"] and pd.isna(second["time_to_recover"])
    assert second["duration"] == t[7] - t[5]
    assert str(dd["start"].dt.tz) == "UTC"
    assert len(pt.drawdowns(top=1)) == 1
    uw = pt.underwater()
    np.testing.assert_allclose(uw["drawdown_usd"], [0, 0, -5, -15, 0, 0, -4, -1])
    assert (uw["drawdown_pct"] <= 0).all()


def test_drawdowns_agree_with_vectorbt_and_empyrical():
    import empyrical
    import vectorbt  # noqa: F401

    eq = _dd_curve()
    dd = PerformanceTracker(pd.DataFrame(), equity=eq, capital=100.0).drawdowns().sort_values("start")
    rec = eq.vbt.drawdowns.records_readable
    assert list(rec["Peak Timestamp"]) == list(dd["start"])
    assert list(rec["Valley Timestamp"]) == list(dd["trough"])
    assert rec["Status"].eq("Recovered").tolist() == dd["recovered"].tolist()
    assert rec.loc[rec["Status"] == "Recovered", "End Timestamp"].tolist() == dd["recovery"].dropna().tolist()
    assert dd["depth_pct"].max() == pytest.approx(-eq.vbt.drawdowns.max_drawdown())
    r = eq.pct_change().fillna(eq.iloc[0] / 100 - 1)
    assert dd["depth_pct"].max() == pytest.approx(-empyrical.max_drawdown(r))


def test_drawdown_starting_below_capital_dates_from_first_point():
    idx = pd.date_range("2024-03-04 14:30", periods=3, freq="1h", tz="UTC")
    pt = PerformanceTracker(pd.DataFrame(), equity=pd.Series([98.0, 97.0, 101.0], index=idx), capital=100.0)
    (row,) = pt.drawdowns().itertuples()
    assert (row.start, row.trough, row.recovery, row.depth_usd, row.peak_usd) == (idx[0], idx[1], idx[2], 3.0, 100.0)


@pytest.mark.parametrize("field, value", [("pnl_usd", float("nan")), ("exit_ts", pd.NaT)])
def test_bad_trade_rows_are_named(field, value):
    t = hand_trades()
    t[field] = t[field].astype(object)
    t.loc[3, field] = value
    with pytest.raises(ValueError, match=rf"trade row 3 \(trade_id 'T3'\): {field}"):
        PerformanceTracker(t, capital=CAP)


def test_drawdown_never_recovered_is_the_only_one():
    """A losing run with one open drawdown (ESH20-like): time_to_recover is NaT, still a timedelta column."""
    idx = pd.date_range("2024-03-04 14:30", periods=4, freq="1h", tz="UTC")
    pt = PerformanceTracker(pd.DataFrame(), equity=pd.Series([101.0, 99.0, 97.0, 98.0], index=idx), capital=100.0)
    dd = pt.drawdowns()
    assert len(dd) == 1 and not dd.loc[0, "recovered"] and pd.isna(dd.loc[0, "time_to_recover"])
    assert pd.api.types.is_timedelta64_dtype(dd["time_to_recover"])
    assert dd.loc[0, "duration"] == idx[-1] - idx[0] and dd.loc[0, "depth_usd"] == 4.0


# ---- attribution ---------------------------------------------------------------------------------
def test_attribution_keys_by_hand(hand):
    hour = hand.attribution("hour")
    assert list(hour.index) == [3, 9, 10, 12, 14, 15]
    assert hour.loc[15, "pnl_usd"] == -150.0 and hour.loc[3, "trades"] == 1
    assert list(hand.attribution("weekday").index) == ["Tuesday", "Wednesday", "Thursday"]
    phase = hand.attribution("phase")
    # METHOD.md's phases (strategy.market.sessions.session_frame) of the decision time: 03:00 asia, 09:40 and
    # 10:55 ny_open, 12:30 lunch, 14:30 and 15:10 afternoon
    assert list(phase.index) == ["asia", "ny_open", "lunch", "afternoon"]
    assert phase["trades"].to_dict() == {"asia": 1, "ny_open": 2, "lunch": 1, "afternoon": 2}
    assert phase.loc["afternoon", "pnl_usd"] == -100.0 and phase.loc["ny_open", "pnl_usd"] == 78.5
    assert list(hand.attribution("base_type").index) == ["green", "red", "none"]
    width = hand.attribution("base_width")
    assert width["trades"].to_dict() == {"<=4": 1, "4-8": 2, "8-16": 1, ">16": 1, "none": 1}
    pat = hand.attribution("pattern")
    assert pat["trades"].to_dict() == {"none": 2, "LDU": 2, "LUD": 1, "LUD+CDS": 1}
    flow = hand.attribution("order_flow")
    assert flow["trades"].to_dict() == {"bid_ask": 4, "ohlcv_proxy": 2}
    assert list(hand.attribution("exit_reason").index) == ["stop", "target", "golden_rule", "opposite", "time"]
    assert list(hand.attribution("status").index) == ["vikings_winning", "contested", "balanced"]
    side = hand.attribution("side")
    assert side.loc["long", "pnl_usd"] == pytest.approx(240.5) and side.loc["short", "win_rate"] == pytest.approx(1 / 3)
    assert side.loc["long", "profit_factor"] == pytest.approx(270.5 / 30)
    assert hand.attribution("contract").loc["ESM24", "expectancy_r"] == pytest.approx(-0.9)
    assert hand.attribution("month").index.tolist() == ["2024-03"]
    assert hand.attribution("year").index.tolist() == [2024]


def test_attribution_sums_to_the_total(hand, edge_result):
    for pt in (hand, PerformanceTracker.from_backtest(edge_result)):
        m = pt.metrics()
        tables = pt.attribution_all()
        assert set(tables) == set(ATTRIBUTION_KEYS)
        for key, tab in tables.items():
            assert tab["pnl_usd"].sum() == pytest.approx(m["net_pnl_usd"]), key
            assert tab["trades"].sum() == m["trades"], key
            assert tab["share_of_pnl"].sum() == pytest.approx(1.0), key
            assert tab.index.name == key
            assert list(tab.columns) == ["pnl_usd", "trades", "win_rate", "expectancy_usd", "expectancy_r",
                                         "profit_factor", "share_of_pnl"]


def test_missing_columns_are_skipped_or_named():
    tr = hand_trades()[["pnl_usd", "exit_ts"]]
    pt = PerformanceTracker(tr, capital=CAP)
    assert set(pt.attribution_all()) == {"month", "year"}
    with pytest.raises(KeyError, match="status"):
        pt.attribution("status")
    with pytest.raises(KeyError, match="signal_ts"):
        pt.attribution("hour")
    with pytest.raises(ValueError, match="unknown attribution key"):
        pt.attribution("moon_phase")
    m = pt.metrics()
    assert m["net_pnl_usd"] == pytest.approx(48.5) and math.isnan(m["commissions_usd"])
    assert math.isnan(m["expectancy_r"]) and math.isnan(m["exposure"])
    with pytest.raises(ValueError, match="pnl_usd"):
        PerformanceTracker(hand_trades().drop(columns="pnl_usd"))


def test_hour_without_signal_time_uses_the_bar_duration(hand):
    tr = hand_trades()
    a = PerformanceTracker(tr).attribution("hour")
    b = PerformanceTracker(tr.assign(signal_time=tr["signal_ts"] + pd.Timedelta(minutes=5))).attribution("hour")
    c = PerformanceTracker(tr, meta={"bar_ns": 300_000_000_000}).attribution("hour")
    pd.testing.assert_frame_equal(a, b)
    pd.testing.assert_frame_equal(a, c)


# ---- a real backtest -----------------------------------------------------------------------------
def test_from_backtest_equals_backtest_stats(edge_result):
    st = edge_result.stats()
    m = PerformanceTracker.from_backtest(edge_result).metrics()
    for ours, theirs in [("net_pnl_usd", "net_pnl_usd"), ("trades", "trades"), ("win_rate", "win_rate"),
                         ("profit_factor", "profit_factor"), ("expectancy_usd", "expectancy_usd"),
                         ("expectancy_r", "expectancy_r"), ("sharpe", "sharpe_daily"), ("sortino", "sortino_daily"),
                         ("max_drawdown_usd", "max_drawdown_usd"), ("max_drawdown_pct", "max_drawdown_pct"),
                         ("exposure", "exposure"), ("sessions", "sessions"), ("trades_per_day", "trades_per_day"),
                         ("commissions_usd", "commissions_usd"), ("final_equity_usd", "final_equity_usd")]:
        assert float(m[ours]) == pytest.approx(float(st[theirs]), rel=1e-12), ours


def test_ratios_cross_check_empyrical_and_vectorbt(edge_result):
    import empyrical
    import vectorbt  # noqa: F401

    rf = 0.05
    pt = PerformanceTracker.from_backtest(edge_result, risk_free=rf)
    m = pt.metrics()
    r = pt.daily_returns()
    acc = r.vbt.returns(freq="1D", year_freq="252D")
    assert m["sharpe"] == pytest.approx(empyrical.sharpe_ratio(r, risk_free=rf / 252))
    assert m["sharpe"] == pytest.approx(acc.sharpe_ratio(risk_free=rf / 252))
    assert m["sortino"] == pytest.approx(empyrical.sortino_ratio(r, required_return=rf / 252))
    assert m["sortino"] == pytest.approx(acc.sortino_ratio(required_return=rf / 252))
    assert m["annual_volatility"] == pytest.approx(acc.annualized_volatility())
    # the daily returns are daily P&L / capital, as research.backtest.stats computes them
    cap = edge_result.params.initial_capital_usd
    daily = daily_equity(edge_result.equity)
    np.testing.assert_allclose(r.to_numpy(), np.diff(np.concatenate([[cap], daily.to_numpy()])) / cap)

    # Calmar: both libraries divide a compounded annual growth rate by the max drawdown of compounded
    # returns. Fed the equity-relative daily returns (E_t / E_t-1 - 1), their drawdown is exactly the
    # drawdown of our session-close equity as a fraction of its peak; our Calmar keeps the
    # non-compounded convention (mean daily P&L/capital x 252 over the $ drawdown / capital), so only
    # the denominators are compared.
    eq = np.concatenate([[cap], daily.to_numpy()])
    rel = pd.Series(eq[1:] / eq[:-1] - 1, index=r.index)
    peak = np.maximum.accumulate(eq)
    dd_pct = ((peak - eq) / peak).max()
    assert -empyrical.max_drawdown(rel) == pytest.approx(dd_pct)
    # vectorbt's returns accessor takes its first peak after the first return (an opening loss is not
    # a drawdown there), so its drawdowns accessor on the value series, capital first, is compared
    assert -pd.Series(eq).vbt.drawdowns.max_drawdown() == pytest.approx(dd_pct)
    assert empyrical.calmar_ratio(rel) == pytest.approx(empyrical.annual_return(rel) / dd_pct)
    assert m["calmar"] == pytest.approx(m["annual_return"] / ((peak - eq).max() / cap))
    # with P&L small against the capital the two conventions nearly agree on the drawdown
    assert (peak - eq).max() / cap == pytest.approx(dd_pct, rel=0.05)


def test_backtest_drawdowns_match_vectorbt(edge_result):
    import vectorbt  # noqa: F401

    pt = PerformanceTracker.from_backtest(edge_result)
    dd = pt.drawdowns()
    cap = edge_result.params.initial_capital_usd
    eq = edge_result.equity
    seeded = pd.concat([pd.Series([cap], index=[eq.index[0] - pd.Timedelta(minutes=5)]), eq])
    assert dd["depth_pct"].iloc[0] == pytest.approx(-seeded.vbt.drawdowns.max_drawdown())
    assert dd["depth_usd"].iloc[0] == pytest.approx(pt.metrics()["max_drawdown_usd"])
    assert len(dd) == len(seeded.vbt.drawdowns.records)


def test_store_round_trip_gives_the_same_trade_metrics(edge_result, tmp_path):
    from research.store import RunStore, build_manifest

    res = edge_result
    data = tmp_path / "bars.txt"
    data.write_text("synthetic\n")
    manifest = build_manifest(params=res.params.to_dict(), params_hash=res.params.hash(), data_files=[data],
                              mode=res.params.mode, session=res.params.session)
    bt = PerformanceTracker.from_backtest(res)
    with RunStore(tmp_path / "s.duckdb") as store:
        summary = {"net_pnl_usd": float(res.stats()["net_pnl_usd"])}
        store.write_run(manifest, res.snapshots().drop(columns="run_id"), summary=summary, run_id="r1")
        st = PerformanceTracker.from_store("r1", store=store)
    assert st.capital == res.params.initial_capital_usd and st.stop_ticks == res.params.stop_ticks
    mb, ms = bt.metrics(), st.metrics()
    for key in ("net_pnl_usd", "gross_pnl_usd", "commissions_usd", "trades", "win_rate", "profit_factor",
                "expectancy_usd", "expectancy_r", "avg_win_usd", "avg_loss_usd", "avg_win_r", "avg_loss_r",
                "largest_win_usd", "largest_loss_usd", "max_consecutive_wins", "max_consecutive_losses",
                "avg_holding_minutes", "avg_bars_held", "final_equity_usd"):
        assert ms[key] == pytest.approx(mb[key], rel=1e-12), key
    # daily P&L by exit session over weekdays (this manifest has no session list): the backtest's
    # mark-to-market P&L on the sessions both have, 0 on the others (a weekday without bars, flat sessions)
    sp, bp = st.daily_pnl(), bt.daily_pnl()
    pd.testing.assert_series_equal(sp, PerformanceTracker(res.trades).daily_pnl())
    common = sp.index.intersection(bp.index)
    pd.testing.assert_series_equal(bp.loc[common], sp.loc[common], check_exact=False)
    assert (sp.drop(common) == 0).all() and (bp.drop(common) == 0).all() and len(common) >= len(bp) - 1
    # same attribution, the signal close coming from signal_ts + the inferred bar duration
    assert "signal_time" not in st.trades.columns
    for key, tab in st.attribution_all().items():
        pd.testing.assert_frame_equal(tab, bt.attribution(key), check_exact=False, obj=key)


def test_stored_run_gives_the_backtest_ratios(tmp_path):
    """A run stored by research.pipeline.backtest_series carries its session calendar, so a tracker built from
    the snapshots alone counts flat sessions like the backtest: same Sharpe, PSR, sessions, trades/day."""
    from research.pipeline import Series, backtest_series

    data = tmp_path / "bars.txt"
    data.write_text("x\n")
    params = Params(session="all", flat_at_et="16:55", entry_end_et="16:30", entry_threshold=0.4)  # 6 trades, 11 days
    bt = backtest_series(Series("edge", edge_case_bars(n_days=12), [data]), params, label="edge")
    mb = PerformanceTracker.from_backtest(bt.result).metrics()
    st = PerformanceTracker.from_store(bt.run_id)
    ms = st.metrics()
    traded = PerformanceTracker(bt.result.trades).daily_pnl().ne(0).sum()
    assert mb["trades"] > 5 and ms["sessions"] == mb["sessions"] > traded  # flat sessions are counted
    for key in ("sharpe", "sortino", "calmar", "psr", "dsr", "annual_return", "annual_volatility", "trades_per_day",
                "net_pnl_usd", "final_equity_usd"):
        assert ms[key] == pytest.approx(mb[key], rel=1e-9), key
    assert (ms["first_session"], ms["last_session"]) == (mb["first_session"], mb["last_session"])
    pd.testing.assert_series_equal(st.daily_pnl(), PerformanceTracker.from_backtest(bt.result).daily_pnl(),
                                   check_exact=False)


def test_headline_says_what_the_dsr_was_deflated_for(hand):
    assert "1 trial: equals the PSR" in hand.headline().loc["dsr", "metric"]
    many = PerformanceTracker(hand_trades(), capital=CAP, n_trials=50, sr_variance=0.01)
    assert many.headline().loc["dsr", "metric"] == "Deflated Sharpe ratio (50 trials)"
    assert many.metrics()["dsr"] < many.metrics()["psr"]
    # trials whose Sharpe ratios do not vary give nothing to deflate by: undefined, not the PSR in disguise
    tied = PerformanceTracker(hand_trades(), capital=CAP, n_trials=50, sr_variance=0.0)
    assert math.isnan(tied.metrics()["dsr"]) and tied.headline().loc["dsr", "value"] == "n/a"


def test_without_a_calendar_weekdays_count_as_sessions():
    t = hand_trades()  # exits Tue 5, Wed 6, Thu 7 March 2024
    t.loc[5, "exit_ts"] = _t("2024-03-11", "10:00")  # the next Monday: Fri 8 is a flat weekday, the weekend is not
    pt = PerformanceTracker(t, capital=CAP)
    d = pt.daily_pnl()
    assert [x.day for x in d.index] == [5, 6, 7, 8, 11] and d.loc["2024-03-08"] == 0.0
    assert "weekdays" in pt.meta["calendar"]
    listed = PerformanceTracker(t, capital=CAP, sessions=["2024-03-05", "2024-03-06", "2024-03-07", "2024-03-11"])
    assert [x.day for x in listed.daily_pnl().index] == [5, 6, 7, 11]
    # tz-aware dates keep their calendar date; an exit outside the calendar is added and reported
    aware = PerformanceTracker(t, capital=CAP, sessions=pd.DatetimeIndex(["2024-03-05", "2024-03-06", "2024-03-07"],
                                                                          tz=ET))
    assert [x.day for x in aware.daily_pnl().index] == [5, 6, 7, 11]
    assert aware.meta["calendar_mismatch"] == ["2024-03-11"]


def test_from_store_reads_a_store_path(edge_result, tmp_path):
    from research.store import RunStore, build_manifest

    data = tmp_path / "bars.txt"
    data.write_text("x\n")
    manifest = build_manifest(params={"initial_capital_usd": 50_000.0}, params_hash="p", data_files=[data],
                              mode="backtest", session="all")
    path = tmp_path / "t.duckdb"
    with RunStore(path) as store:
        store.write_run(manifest, edge_result.snapshots().drop(columns="run_id").iloc[:5], run_id="r2")
    pt = PerformanceTracker.from_store("r2", store=path)
    assert pt.capital == 50_000.0 and pt.metrics()["trades"] == 5
    assert PerformanceTracker.from_store("r2", store=path, capital=1e6).capital == 1e6


# ---- DSR parameters ------------------------------------------------------------------------------
def test_dsr_uses_trials_and_variance(edge_result):
    one = PerformanceTracker.from_backtest(edge_result).metrics()
    assert one["dsr"] == one["psr"]
    many = PerformanceTracker.from_backtest(edge_result, n_trials=50, sr_variance=0.01).metrics()
    assert many["dsr"] < one["psr"] and many["psr"] == one["psr"]
    assert math.isnan(PerformanceTracker.from_backtest(edge_result, n_trials=50).metrics()["dsr"])


# ---- degenerate cases ----------------------------------------------------------------------------
def _has_every_metric(m: pd.Series) -> None:
    assert list(m.index) == list(METRIC_LABELS)


def test_zero_trades():
    res = run(edge_case_bars(n_days=2), Params(entry_threshold=1.0))
    pt = PerformanceTracker.from_backtest(res)
    m = pt.metrics()
    _has_every_metric(m)
    assert m["trades"] == 0 and m["net_pnl_usd"] == 0 and m["exposure"] == 0
    assert math.isnan(m["win_rate"]) and math.isnan(m["profit_factor"]) and math.isnan(m["sharpe"])
    assert m["max_drawdown_usd"] == 0 and pt.drawdowns().empty and m["sessions"] >= 1
    assert all(t.empty for t in pt.attribution_all().values())
    head = pt.headline()
    assert (head.loc[["win_rate", "profit_factor", "sharpe", "expectancy_usd"], "value"] == "no trades").all()
    assert head.loc["trades", "value"] == "0" and head.loc["max_drawdown_usd", "value"] == "$0.00"
    assert head.loc["margin_usd", "value"] == "$24,000.00" and head.loc["trading_stopped", "value"] == "no"
    empty = PerformanceTracker(res.snapshots())
    me = empty.metrics()
    assert me["trades"] == 0 and me["sessions"] == 0 and math.isnan(me["trades_per_day"])
    assert empty.daily_pnl().empty and empty.equity_curve().empty and empty.drawdowns().empty
    assert empty.monthly_returns().empty and empty.underwater().empty
    assert set(empty.attribution_all()) == set(ATTRIBUTION_KEYS)
    empty.headline()


def test_one_trade_no_losses_one_day():
    tr = hand_trades().iloc[[0]]
    m = PerformanceTracker(tr, capital=CAP).metrics()
    _has_every_metric(m)
    assert m["trades"] == 1 and m["profit_factor"] == math.inf and m["win_rate"] == 1.0
    assert math.isnan(m["avg_loss_usd"]) and math.isnan(m["largest_loss_usd"])
    assert math.isnan(m["sharpe"]) and math.isnan(m["sortino"]) and math.isnan(m["psr"]) and math.isnan(m["calmar"])
    assert m["max_drawdown_usd"] == 0 and m["max_consecutive_wins"] == 1
    wins = hand_trades().iloc[[0, 2, 3]]
    pw = PerformanceTracker(wins, capital=CAP)
    mw = pw.metrics()
    assert mw["profit_factor"] == math.inf and mw["sortino"] == math.inf and math.isnan(mw["calmar"])
    assert pw.drawdowns().empty and (pw.attribution("side")["profit_factor"] == math.inf).all()
    same_day = hand_trades().iloc[:2]
    md = PerformanceTracker(same_day, capital=CAP).metrics()
    assert md["sessions"] == 1 and math.isnan(md["sharpe"]) and md["trades_per_day"] == 2
    assert PerformanceTracker(same_day, capital=CAP).headline().loc["sharpe", "value"] == "n/a"
