"""Scenarios 4 and 5 at Trader level: a trader stopped with an open bracket and restarted on a new DTC connection
reconciles with the DTC broker, places no second bracket, and ends the session with the paper broker's trades and
fills; when the position at the server changed while it was down, the restart stops with the trader's
ReconcileError naming both positions."""

from __future__ import annotations

from itertools import pairwise

import pytest
from dtc_helpers import diagnose, venue
from dtc_trader_run import CountedFeed, comparable, run_trader, saved_resume
from paper_runs import assert_same_trades
from dtc_fixtures import fake_server, paper_session  # noqa: F401 (pytest fixtures)

from live.trader import ReconcileError


def open_trade_then_stop(fake_server, sd, paper_session):
    """Run the DTC trader to 200 trades after an entry whose trade lasts 400 more: (fake, stop index, entry
    indices, first index of each trade time)."""
    params, ticks, _, want_fills, holds = paper_session
    index = {t.ts_ns: k for k, t in reversed(list(enumerate(ticks)))}  # first index of each time
    entries = [index[f.ts_ns] for f in want_fills if f.role == "entry"]
    nxt = {index[a.ts_ns]: index[b.ts_ns] for a, b in pairwise(want_fills) if a.role == "entry"}
    e = next(k for k in entries if nxt.get(k, 10**9) > k + 400)
    stop = e + 200  # the trader stops here with the position and its OCO pair open at the server
    fake = fake_server(ticks, symbol=f"{ticks[0].contract}-CME", slippage_ticks=params.slippage_ticks)
    fake.hold_after, fake.stop_at = holds, stop
    v = venue(fake, sd, heartbeat_s=5, gate=True)
    try:
        feed = CountedFeed(v.feed, len(ticks), expect=ticks, diagnose=diagnose(fake, v))
        _, first = run_trader(params, feed, v.broker, sd, max_records=stop)
        assert not fake.hold_timeouts, f"no order from the DTC run where the paper run sent one: {fake.describe()}"
        assert first.reason == "max_records" and v.broker.positions() and len(fake.working()) == 2
    finally:
        v.close()
    return fake, stop, entries, index


def test_a_trader_restarted_with_an_open_bracket_reconciles_and_ends_the_same(fake_server, tmp_path, data_dir,
                                                                             paper_session):
    params, ticks, want, want_fills, holds = paper_session
    sd = tmp_path / "dtc"
    fake, stop, entries, index = open_trade_then_stop(fake_server, sd, paper_session)
    tok = saved_resume(sd)
    restart = index[tok["ts_ns"]] + len(tok["at_last"])  # the record the restart resumes at
    assert restart <= stop
    fake.resend = stop - restart  # the new subscription sends again what the trader saw after its last save
    seen = fake.orders_seen
    v2 = venue(fake, sd, heartbeat_s=5, feed_resume=tok, gate=True)
    try:
        fake.release()
        feed = CountedFeed(v2.feed, len(ticks) - restart, expect=ticks[restart:], diagnose=diagnose(fake, v2))
        _, got = run_trader(params, feed, v2.broker, sd)
        got_fills = v2.broker.fills_since(0)
    finally:
        v2.close()
    assert not fake.hold_timeouts, f"no order from the DTC run where the paper run sent one: {fake.describe()}"
    assert got.reason == "replay_end"
    assert comparable(got_fills) == comparable(want_fills)
    assert_same_trades(got.trades, want.trades, "DTC with a restart vs paper (tick mode)")
    # every order once, one OCO per entry (none for the open trade at the restart), the duplicates the fake counts: 0
    assert fake.duplicates == 0 and fake.orders_seen == sum(holds.values()) > seen
    assert sum(m["Type"] == 201 for _, m in fake.order_at) == len(entries)


def test_a_position_changed_while_the_trader_was_down_stops_the_restart(fake_server, tmp_path, data_dir,
                                                                       paper_session):
    params, ticks, *_ = paper_session
    sd = tmp_path / "dtc"
    fake, _, _, _ = open_trade_then_stop(fake_server, sd, paper_session)
    held = fake.position
    fake.external_fill(-held, abs(held))  # closed by hand in Sierra Chart while the trader was down
    v2 = venue(fake, sd, heartbeat_s=5, feed_resume=saved_resume(sd))
    try:
        assert v2.broker.positions() == {}
        with pytest.raises(ReconcileError, match=f"broker holds \\+0 ES, the trader's state expects {held:+d}"):
            run_trader(params, CountedFeed(v2.feed, len(ticks), diagnose=diagnose(fake, v2)), v2.broker, sd)
    finally:
        v2.close()
