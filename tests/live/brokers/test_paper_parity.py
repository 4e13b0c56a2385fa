"""The bar-mode paper broker fills exactly as the backtest: the backtest's decisions (its trades' signal bars and
close-based exits) are sent to the broker bar by bar on the synthetic data set, and every fill the broker makes
(entries, its own stop/target hits, next-open and close exits) has the backtest's price, bar and reason."""

from __future__ import annotations

from collections import defaultdict

import pandas as pd
import pytest
from conftest import es5m_files

from live.brokers.paper import PaperBroker, trading_day
from live.events import Bar, Bracket, Order
from research.backtest import run
from research.data import default_dataset, load_bars
from strategy.params import Params


@pytest.fixture(scope="module")
def bars(data_dir):
    return load_bars(default_dataset())


@pytest.mark.parametrize("params", [Params(), Params(stop_ticks=4, target_r=1.5, slippage_ticks=2)],
                         ids=["default", "tight"])
def test_bar_mode_fills_equal_the_backtest(bars, params):
    trades = assert_broker_fills_like_the_backtest(bars, params)
    assert len(trades) > 20 and set(trades.exit_reason) >= {"stop", "target", "golden_rule", "opposite", "time"}


@pytest.mark.realdata
@pytest.mark.parametrize("k", [3, 19])
def test_bar_mode_fills_equal_the_backtest_on_real_contracts(k):
    """Real bars have what the synthetic set lacks: bars that hold both the stop and the target."""
    trades = assert_broker_fills_like_the_backtest(load_bars(es5m_files()[k]),
                                                   Params(stop_ticks=3, target_r=1.0, slippage_ticks=2))
    assert len(trades) > 50 and trades.intrabar_ambiguous.any()


def assert_broker_fills_like_the_backtest(bars, params) -> pd.DataFrame:
    res = run(bars, params)
    trades = res.trades
    sub = bars.loc[res.signals["in_session"].to_numpy()]
    ts = sub.index.as_unit("ns").asi8
    bar_ns = res.meta["bar_ns"]
    pos = {t: i for i, t in enumerate(ts)}

    # the decisions, by the bar at whose close they are sent (exits before entries)
    sends: dict[int, list[Order]] = defaultdict(list)
    for k, t in enumerate(trades.itertuples()):
        side, why = int(t.side), t.exit_reason
        exit_ns = pd.Timestamp(t.exit_ts).value
        if why in ("golden_rule", "opposite"):
            sends[pos[exit_ns] - 1].append(Order(f"x{k}", "ES", -side, params.contracts, "exit", reason=why))
        elif why in ("time", "session_end"):
            sends[pos[exit_ns - bar_ns]].append(Order(f"x{k}", "ES", -side, params.contracts, "exit", reason=why,
                                                      fill_at="close"))
    for k, t in enumerate(trades.itertuples()):
        j = int(t.signal_bar)
        sends[j].append(Order(f"e{k}", "ES", int(t.side), params.contracts, "entry",
                              bracket=Bracket(params.stop_ticks, params.target_ticks), session_day=trading_day(ts[j])))

    broker = PaperBroker("ES", tick_size=0.25, mode="bar", slippage_ticks=params.slippage_ticks)
    cols = [sub[c].to_numpy() for c in ("open", "high", "low", "close")]
    for j in range(len(sub)):
        broker.on_bar(Bar(int(ts[j]), float(cols[0][j]), float(cols[1][j]), float(cols[2][j]), float(cols[3][j]), 0))
        for o in sorted(sends.get(j, []), key=lambda o: o.purpose != "exit"):
            broker.submit(o)
    fills = broker.fills_since(0)
    assert broker.positions() == {}

    got = []
    open_fill = None
    for f in fills:
        if f.role == "entry":
            open_fill = f
            continue
        reason = f.extra.get("reason", f.role)
        exit_ns = f.ts_ns + (bar_ns if f.role in ("stop", "target") or reason in ("time", "session_end") else 0)
        got.append((open_fill.ts_ns, open_fill.side, open_fill.price, exit_ns, f.price, reason,
                    bool(f.extra.get("ambiguous", False)), bool(f.extra.get("gap", False))))
    want = [(pd.Timestamp(t.entry_ts).value, int(t.side), float(t.entry_price), pd.Timestamp(t.exit_ts).value,
             float(t.exit_price), t.exit_reason, bool(t.intrabar_ambiguous), bool(t.gap_through_stop))
            for t in trades.itertuples()]
    assert got == want
    return trades
