"""Trade simulator rules (METHOD 7.6-7.7), P&L, fill audit, vectorbt agreement, stats, snapshots."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from barbuilder import edge_case_bars

from research.backtest import run
from research.backtest import simulator as S
from research.backtest.run import sim_vector
from research.backtest.stats import daily_equity, daily_returns
from strategy import Params

TV = 12.5  # ES $/tick
COMM = 2.25


class Sim:
    """A flat market at 4000 (16000 ticks) with hand-placed bars and signals; one session unless told."""

    def __init__(self, n: int = 80, params: Params | None = None):
        self.p = params or Params(contracts=1, slippage_ticks=1)
        self.n = n
        base = 16000
        self.o = np.full(n, base, np.int64)
        self.h = np.full(n, base + 1, np.int64)
        self.l = np.full(n, base - 1, np.int64)
        self.c = np.full(n, base, np.int64)
        self.session = np.zeros(n, np.int64)
        self.close_min = 600 + 5 * np.arange(n)  # 10:00 ET onwards (5-minute bars)
        self.close_min = np.minimum(self.close_min, 900)  # never reaches the 15:55 flat time
        self.last = np.zeros(n, bool)
        self.last[-1] = True
        self.flags = {k: np.zeros(n, bool) for k in ("le", "se", "lc", "sc", "bv", "rv")}

    def bar(self, i, o, h, l, c):
        self.o[i], self.h[i], self.l[i], self.c[i] = o, h, l, c

    def run(self, margin: float = 0.0):
        cap = self.n + 1
        ti = np.zeros((cap, S.N_T), np.int64)
        tf = np.zeros((cap, S.N_TF))
        eq = np.zeros(self.n)
        pos = np.zeros(self.n, np.int64)
        q = sim_vector(self.p, TV, COMM, margin)
        f = self.flags
        halt = np.zeros(2, np.int64)
        ts = np.arange(self.n, dtype=np.int64) * 300_000_000_000
        close_at = np.full(self.n, 960.0)  # every date a regular session (16:00 ET close)
        day_ok = np.ones(self.n, bool)
        nt = S.simulate(q, ts, self.o, self.h, self.l, self.c, self.session, self.close_min, close_at, day_ok,
                        self.last, f["le"], f["se"], f["lc"], f["sc"], f["bv"], f["rv"], ti, tf, eq, pos, halt)
        self.eq, self.pos, self.halt = eq, pos, int(halt[0])
        return [dict(zip(("side", "sig", "entry_idx", "exit_idx", "entry_px", "exit_px", "stop_px", "target_px", "reason",
                          "mfe", "mae", "ambiguous", "same_bar", "gap", "opt_px", "phase", "entry_slip", "exit_slip"),
                         map(int, ti[k]))) | {"pnl": tf[k, S.TF_PNL], "pnl_opt": tf[k, S.TF_PNL_OPT]} for k in range(nt)]


def test_market_entry_next_open_with_slippage_then_target():
    s = Sim()
    s.flags["le"][10] = True
    s.bar(11, 16002, 16004, 16001, 16003)
    s.bar(15, 16010, 16017, 16009, 16016)  # target = 16003 + 14 = 16017 touched
    (t,) = s.run()
    assert (t["side"], t["sig"], t["entry_idx"], t["entry_px"]) == (1, 10, 11, 16003)  # O + 1 tick slippage
    assert (t["stop_px"], t["target_px"]) == (16003 - 7, 16003 + 14)
    assert (S.REASONS[t["reason"]], t["exit_idx"], t["exit_px"], t["exit_slip"]) == ("target", 15, 16017, 0)
    assert t["pnl"] == pytest.approx(14 * TV - 2 * COMM)
    assert (t["mfe"], t["ambiguous"], t["same_bar"]) == (14, 0, 0)


def test_stop_wins_when_stop_and_target_share_a_bar():
    s = Sim()
    s.flags["se"][5] = True
    s.bar(6, 16000, 16000, 16000, 16000)
    # short entry 16000 - 1 = 15999: stop 16006, target 15985; bar 8 touches both
    s.bar(8, 15999, 16010, 15980, 15990)
    (t,) = s.run()
    assert (t["side"], t["entry_px"], S.REASONS[t["reason"]], t["ambiguous"]) == (-1, 15999, "stop", 1)
    assert t["exit_px"] == 16006 + 1  # stop price + slippage against the short
    assert t["pnl"] == pytest.approx(-8 * TV - 2 * COMM)
    assert t["pnl_opt"] == pytest.approx(14 * TV - 2 * COMM)  # the optimistic alternative: target first


def test_gap_through_stop_fills_at_the_open():
    s = Sim()
    s.flags["le"][5] = True  # entry 16001, stop 15994
    s.bar(9, 15990, 15992, 15985, 15988)
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["gap"], t["exit_px"]) == ("stop", 1, 15990 - 1)
    assert t["pnl"] == pytest.approx((15989 - 16001) * TV - 2 * COMM)
    assert t["pnl_opt"] == pytest.approx((15994 - 1 - 16001) * TV - 2 * COMM)


def test_same_bar_entry_and_stop():
    s = Sim()
    s.flags["le"][5] = True
    s.bar(6, 16000, 16001, 15990, 15991)
    (t,) = s.run()
    assert (t["entry_idx"], t["exit_idx"], t["same_bar"], S.REASONS[t["reason"]]) == (6, 6, 1, "stop")


def test_golden_rule_exit_at_next_open():
    s = Sim()
    s.flags["le"][5] = True
    s.flags["bv"][12] = True
    s.bar(13, 15998, 15999, 15997, 15998)
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["exit_idx"], t["exit_px"], t["phase"]) == ("golden_rule", 13, 15997, S.PH_OPEN)
    # a red-base violation does not close a long
    s = Sim()
    s.flags["le"][5] = True
    s.flags["rv"][12] = True
    (t,) = s.run()
    assert S.REASONS[t["reason"]] != "golden_rule"


def test_golden_rule_precedes_opposite_and_reversal_at_same_open():
    s = Sim()
    s.flags["le"][5] = True
    s.flags["sc"][12] = True
    s.flags["se"][12] = True
    t1, t2 = s.run()
    assert (S.REASONS[t1["reason"]], t1["exit_idx"]) == ("opposite", 13)
    assert (t2["side"], t2["sig"], t2["entry_idx"]) == (-1, 12, 13)  # reversal: exit and entry at one open
    s = Sim()
    s.flags["le"][5] = True
    s.flags["sc"][12] = True
    s.flags["bv"][12] = True
    (t,) = s.run()
    assert S.REASONS[t["reason"]] == "golden_rule"


def test_time_stop_at_close_of_bar_50():
    s = Sim(n=120)
    s.flags["le"][5] = True
    s.c[55] = 16004
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["entry_idx"], t["exit_idx"], t["exit_px"]) == ("time", 6, 55, 16004 - 1)


def test_session_end_flat_and_no_entry_on_last_bar():
    s = Sim()
    s.flags["le"][5] = True
    s.close_min[20] = 15 * 60 + 55
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["exit_idx"], t["phase"]) == ("session_end", 20, S.PH_CLOSE)
    s = Sim()
    s.session[30:] = 1
    s.last[29] = True
    s.flags["le"][29] = True  # last bar of the session: no order for the next day
    s.flags["le"][10] = True
    (t,) = s.run()
    assert (t["sig"], S.REASONS[t["reason"]], t["exit_idx"]) == (10, "session_end", 29)


def test_daily_loss_limit_and_trade_count():
    p = Params(contracts=1, daily_loss_limit_usd=200.0)
    s = Sim(params=p)
    s.session[40:] = 1
    s.last[39] = True
    for k in (2, 10, 20, 45):
        s.flags["le"][k] = True
    for k in (3, 11, 21, 46):  # every trade stops out: -8 ticks - costs = -104.5 $
        s.bar(k + 1, 16000, 16000, 15980, 15985)
    trades = s.run()
    assert [t["sig"] for t in trades] == [2, 10, 45]  # 2 losses = -209 <= -200: day over; next day resumes
    p = Params(contracts=1, max_trades_per_day=1)
    s = Sim(params=p)
    s.flags["le"][2] = s.flags["le"][30] = True
    assert len(s.run()) == 1


def test_equity_marks_to_market_and_books_commissions():
    s = Sim(params=Params(contracts=2, slippage_ticks=0))
    s.flags["le"][5] = True
    s.c[8] = 16005
    s.bar(9, 16005, 16020, 16004, 16010)
    (t,) = s.run()
    cap = 100_000.0
    assert s.eq[5] == cap
    assert s.eq[8] == pytest.approx(cap - 2 * COMM + 5 * TV * 2)
    assert s.pos[8] == 2 and s.pos[9] == 0
    assert s.eq[-1] == pytest.approx(cap + t["pnl"])
    assert t["pnl"] == pytest.approx(14 * TV * 2 - 4 * COMM)


# ---- end to end ----------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def edge_result():
    return run(edge_case_bars(n_days=12), Params(session="all", flat_at_et="16:55", entry_end_et="16:30"))


def test_vectorbt_portfolio_agrees_to_the_cent(edge_result):
    res = edge_result
    assert len(res.trades) >= 10
    pf = res.portfolio
    vt = pf.trades.records_readable.sort_values("Entry Timestamp")
    assert len(vt) == len(res.trades)
    np.testing.assert_allclose(vt["PnL"].to_numpy(), res.trades["pnl_usd"].to_numpy(), atol=0.005)
    assert pf.total_profit() == pytest.approx(res.trades["pnl_usd"].sum(), abs=0.005)
    # account value at each bar close equals the simulator's equity
    value = pf.value()
    marks = value.iloc[np.flatnonzero((value.index.as_unit("ns").asi8 + 1) % 300_000_000_000 == 0)]
    np.testing.assert_allclose(marks.to_numpy(), res.equity.to_numpy(), atol=0.005)


def test_real_contract_vectorbt_agreement():
    from conftest import es5m_files

    from research.data import load_bars

    res = run(load_bars(es5m_files()[12]))
    pf = res.portfolio
    assert len(res.trades) > 50
    vt = pf.trades.records_readable.sort_values("Entry Timestamp")
    np.testing.assert_allclose(vt["PnL"].to_numpy(), res.trades["pnl_usd"].to_numpy(), atol=0.005)


def test_trade_table_and_snapshots(edge_result):
    tr = edge_result.trades
    for col in ("side", "signal_time", "entry_time", "entry_price", "stop_price", "target_price", "exit_time", "exit_price",
                "exit_reason", "contracts", "pnl_ticks", "pnl_usd", "r_multiple", "mfe_ticks", "mae_ticks", "bars_held"):
        assert col in tr.columns, col
    assert set(tr["exit_reason"]) <= set(S.REASONS)
    assert (tr["entry_time"] > tr["signal_ts"]).all() and (tr["exit_time"] >= tr["entry_time"]).all()
    assert (tr["entry_time"] == tr["signal_time"]).all()  # next bar's open == signal bar's close (no gaps at entries here)
    np.testing.assert_allclose(tr["r_multiple"], tr["pnl_ticks"] / 7)
    snap = edge_result.snapshots()
    assert len(snap) == len(tr) and snap["order_flow"].all()
    # the context is the signal row itself
    sig = edge_result.signals
    k = sig.index.get_indexer(tr["signal_ts"])
    np.testing.assert_allclose(snap["bn_score"], sig["bn_score"].to_numpy()[k])


def test_trades_do_not_depend_on_later_bars():
    bars = edge_case_bars(n_days=12)
    params = Params(session="all", flat_at_et="16:55", entry_end_et="16:30")
    full = run(bars, params).trades
    cut = len(bars) * 2 // 3
    part_bars = bars.iloc[:cut]
    part_bars.attrs = dict(bars.attrs)
    part = run(part_bars, params).trades
    done = full[full["exit_time"] < part_bars.index[-1]]
    cols = ["side", "signal_ts", "entry_ts", "exit_ts", "entry_price", "exit_price", "exit_reason", "pnl_usd", "bn_score"]
    pd.testing.assert_frame_equal(part[cols].iloc[: len(done)].reset_index(drop=True), done[cols].reset_index(drop=True))


def test_stats_and_vectorbt_ratios(edge_result):
    import vectorbt  # noqa: F401

    st = edge_result.stats()
    tr = edge_result.trades
    assert st["trades"] == len(tr)
    assert st["net_pnl_usd"] == pytest.approx(tr["pnl_usd"].sum())
    assert st["win_rate"] == pytest.approx((tr["pnl_usd"] > 0).mean())
    assert st["final_equity_usd"] == pytest.approx(100_000 + tr["pnl_usd"].sum())
    rets = daily_returns(daily_equity(edge_result.equity), 100_000)
    acc = rets.vbt.returns(freq="1D", year_freq="252D")
    assert st["sharpe_daily"] == pytest.approx(acc.sharpe_ratio())
    assert st["sortino_daily"] == pytest.approx(acc.sortino_ratio())
    assert st["max_drawdown_usd"] >= 0 and 0 <= st["exposure"] <= 1
    audit = edge_result.fill_audit()
    assert len(audit) == len(tr)
    assert (audit["assumption_matters"] == (audit["intrabar_ambiguous"] | audit["gap_through_stop"])).all()


def test_no_trades_is_not_an_error():
    bars = edge_case_bars(n_days=2)
    res = run(bars, Params(entry_threshold=1.0))
    assert len(res.trades) == 0
    st = res.stats()
    assert st["trades"] == 0 and st["net_pnl_usd"] == 0
    assert res.snapshots().empty


def test_signals_from_other_params_are_refused():
    from strategy import compute_signals

    bars = edge_case_bars(n_days=2)
    sig = compute_signals(bars, Params(entry_threshold=0.3))
    with pytest.raises(ValueError, match="signals were computed with signal parameters"):
        run(bars, Params(), signals=sig)
    # execution-only parameters reuse the signals
    sig = compute_signals(bars, Params())
    a = run(bars, Params(stop_ticks=9), signals=sig).trades
    b = run(bars, Params(stop_ticks=9)).trades
    pd.testing.assert_frame_equal(a, b)


# ---- excursions end at the exit fill -------------------------------------------------------------
def test_stopped_trade_mae_is_the_stop_fill_not_the_bar_low():
    s = Sim()
    s.flags["le"][5] = True  # entry 16001 (open 16000 + 1), stop 15994
    s.bar(7, 16001, 16004, 15998, 16000)  # adverse 3, favourable 3
    s.bar(9, 15999, 16000, 15900, 15910)  # crashes 101 ticks below the entry inside the stop bar
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["exit_px"]) == ("stop", 15994 - 1)
    assert t["mae"] == 16001 - 15993 == 8  # the stop fill (7 + 1 slippage), not the bar's 101
    assert t["mfe"] == 3


def test_gap_stop_mae_is_the_gap_fill():
    s = Sim()
    s.flags["le"][5] = True  # entry 16001, stop 15994
    s.bar(9, 15980, 15985, 15900, 15950)  # opens 21 below the entry
    (t,) = s.run()
    assert (t["gap"], t["exit_px"], t["mae"], t["mfe"]) == (1, 15979, 22, 0)


def test_ambiguous_bar_adds_only_its_open_to_mfe_and_target_caps_mfe():
    s = Sim()
    s.flags["se"][5] = True  # short entry 15999: stop 16006, target 15985
    s.bar(8, 15998, 16010, 15900, 15990)  # both inside: the stop wins
    (t,) = s.run()
    assert (t["ambiguous"], t["mae"], t["mfe"]) == (1, 16007 - 15999, 1)
    s = Sim()
    s.flags["le"][5] = True  # entry 16001, target 16015
    s.bar(9, 16005, 16100, 16000, 16050)  # the target fills at 16015 whatever the bar's high
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["mfe"], t["mae"]) == ("target", 14, 2)  # flat bars dip to 15999


def test_close_and_open_exits_count_their_fill_in_mae():
    s = Sim(n=120)
    s.flags["le"][5] = True  # entry 16001
    s.c[55] = 15996  # time stop at the close: fill 15995 (6 ticks adverse, slippage included)
    (t,) = s.run()
    assert (S.REASONS[t["reason"]], t["mae"]) == ("time", 6)


# ---- the margin floor ----------------------------------------------------------------------------
def _losing_sim(capital: float, contracts: int = 1) -> Sim:
    s = Sim(params=Params(contracts=contracts, slippage_ticks=1, initial_capital_usd=capital,
                          daily_loss_limit_usd=100_000.0))
    for k in (2, 10, 20, 30):
        s.flags["le"][k] = True
        s.bar(k + 1, 16000, 16000, 15980, 15985)  # each stops out: -8 ticks = -100 $ - 4.5 $ costs
    return s


def test_trading_stops_when_equity_falls_below_the_margin():
    s = _losing_sim(1_200.0)
    trades = s.run(margin=1_000.0)
    # 1200 - 104.5 = 1095.5 >= 1000: trades again; 991 < 1000 after the second: no more entries
    assert [t["sig"] for t in trades] == [2, 10]
    assert s.halt == 11  # the close of the second stop bar
    assert s.eq[s.halt] == pytest.approx(1_200.0 - 2 * 104.5)
    assert (s.pos[12:] == 0).all() and s.eq[-1] == pytest.approx(s.eq[s.halt])


def test_margin_floor_untouched_runs_are_unchanged():
    a = _losing_sim(100_000.0)
    b = _losing_sim(100_000.0)
    ta, tb = a.run(margin=0.0), b.run(margin=12_000.0)
    assert ta == tb and len(ta) == 4 and a.halt == b.halt == -1
    np.testing.assert_array_equal(a.eq, b.eq)


def test_no_margin_still_stops_at_zero_equity():
    s = _losing_sim(1_500.0, contracts=10)
    trades = s.run(margin=0.0)
    assert len(trades) == 2 and s.halt == 11  # 1500 - 2 * 1045 < 0


def test_a_dip_inside_an_open_trade_does_not_cut_it():
    s = Sim(params=Params(contracts=1, slippage_ticks=1, stop_ticks=20, initial_capital_usd=1_100.0))
    s.flags["le"][5] = True  # entry 16001 at bar 6, stop 15981, target 16041
    s.bar(7, 16000, 16001, 15989, 15990)  # marks to 1100 - 2.25 - 11 * 12.5 = 960.25 < 1000 while long
    s.bar(9, 16005, 16045, 16004, 16040)  # target
    s.flags["le"][20] = True
    t1, t2 = s.run(margin=1_000.0)
    assert s.eq[7] < 1_000.0 and S.REASONS[t1["reason"]] == "target"  # the trade ran by its rules
    assert t2["sig"] == 20 and s.halt == -1  # flat again above the margin: trading goes on


@pytest.mark.realdata
def test_real_excursions_end_at_the_exit_fill():
    """ESH20 (into the March 2020 crash): a stopped trade's MAE is its realised loss; no trade's MAE or
    MFE reaches beyond its stop or target except by its own fill (a gap through, an open exit)."""
    from conftest import shared_file

    from research.pipeline import load_series

    frame = load_series([shared_file("es-5m/ESH20-CME.scid_BarData__5m.txt.gz")])[0].frame
    p = Params(session="all", flat_at_et="16:55", entry_end_et="16:30", initial_capital_usd=1_000_000.0)
    res = run(frame, p)
    t = res.trades
    stopped = t["exit_reason"] == "stop"
    assert res.meta["trading_stopped"] is None and stopped.sum() > 30
    assert (t.loc[stopped, "mae_ticks"] == -t.loc[stopped, "pnl_ticks"]).all()
    slip = p.slippage_ticks
    assert (t["mae_ticks"] <= (-t["pnl_ticks"]).clip(lower=p.stop_ticks + slip)).all()
    assert (t["mfe_ticks"] <= t["pnl_ticks"].clip(lower=p.target_ticks - slip) + slip).all()
    assert (t["mae_ticks"] >= 0).all() and (t["mfe_ticks"] >= 0).all()


def test_negative_margin_turns_the_floor_off():
    s = _losing_sim(1_500.0, contracts=10)
    trades = s.run(margin=-1.0)  # signal outcomes: every signal trades whatever the equity
    assert len(trades) == 4 and s.halt == -1 and s.eq[-1] < 0


def test_run_without_the_margin_floor_says_so():
    from research.backtest.reporting import margin_text

    bars = edge_case_bars(n_days=4)
    p = Params(session="all", flat_at_et="16:55", entry_end_et="16:30", initial_capital_usd=24_000.0)
    on, off = run(bars, p), run(bars, p, margin_floor=False)
    assert on.meta["margin_usd"] == 24_000.0 and off.meta["margin_usd"] is None
    assert len(off.trades) >= len(on.trades) and off.meta["trading_stopped"] is None
    assert margin_text(off.meta, 2, 24_000.0).startswith("margin floor off")
