"""Scenarios 1 and 2 at Trader level: a whole `live.trader.Trader` session on the synthetic trades, once with the
tick-mode paper broker and once with the DTC venue (feed and broker) on the fake DTC server streaming the same trades,
gives the same trades (every column of the snapshot record but run_id/trade_id) and the same fills; also when the
server drops the connection three times during the session (the adapter reconnects and resubscribes, the trades
resume, no order is sent twice). The paper run is the `paper_session` fixture (conftest.py)."""

from __future__ import annotations

import pytest
from dtc_helpers import diagnose, venue
from dtc_trader_run import CountedFeed, comparable, run_trader
from paper_runs import assert_same_trades
from dtc_fixtures import fake_server, paper_session  # noqa: F401 (pytest fixtures)


@pytest.mark.parametrize("drops", [0, 3])
def test_a_trader_session_through_dtc_equals_the_paper_brokers(fake_server, tmp_path, data_dir, paper_session, drops):
    params, ticks, want, want_fills, holds = paper_session
    contract = ticks[0].contract
    fake = fake_server(ticks, symbol=f"{contract}-CME", slippage_ticks=params.slippage_ticks)
    fake.hold_after = holds
    fake.drop_before = {len(ticks) * (k + 1) // (drops + 1) for k in range(drops)}
    v = venue(fake, tmp_path / "dtc", heartbeat_s=5, gate=True)
    try:
        feed = CountedFeed(v.feed, len(ticks), expect=ticks, diagnose=diagnose(fake, v))
        _, got = run_trader(params, feed, v.broker, tmp_path / "dtc")
        got_fills = v.broker.fills_since(0)
        kinds = [k for k, _ in v.feed.events]
    finally:
        v.close()
    assert not fake.hold_timeouts, f"no order from the DTC run where the paper run sent one: {fake.describe()}"
    assert got.reason == "replay_end"
    assert comparable(got_fills) == comparable(want_fills)
    assert_same_trades(got.trades, want.trades, "DTC vs paper (tick mode)")
    assert fake.duplicates == 0 and v.link.reconnects == drops and fake.subscriptions == list(range(1, drops + 2))
    assert kinds == ["disconnected", "reconnected"] * drops
