"""Scenario 1: a session replayed through the fake DTC server gives the same fills as the paper broker in tick
mode on the same trades (the same driver deciding on each; the stream never races ahead of an order)."""

from __future__ import annotations

import pytest
from dtc_driver import Driver, comparable, holds_from, paper_run
from dtc_helpers import STEP, T0, make_ticks, take, venue
from dtc_fixtures import fake_server  # noqa: F401 (pytest fixtures)


@pytest.mark.parametrize("seed", [12, 15, 18])
def test_fills_equal_the_paper_brokers(fake_server, tmp_path, seed):
    ticks = make_ticks(400, seed=seed)
    want, pdrv = paper_run(ticks)
    roles = {f.role for f in want}
    assert len(want) >= 10 and roles == {"entry", "exit", "stop", "target"}, f"every kind of fill ({roles})"
    fake = fake_server(ticks, slippage_ticks=1)
    fake.hold_after = holds_from(want, pdrv, lambda ts: (ts - T0) // STEP)
    v = venue(fake, tmp_path, heartbeat_s=5)
    try:
        d = Driver(v.broker, len(ticks))
        for i in range(len(ticks)):
            (t,) = take(v.feed, 1)
            assert t.ts_ns == ticks[i].ts_ns
            d.on_trade(i, t)
        got = v.broker.fills_since(0)
        assert [(i, o.order_id) for i, o in d.submitted] == [(i, o.order_id) for i, o in pdrv.submitted]
        assert comparable(got) == comparable(want)
        assert [f.seq for f in got] == list(range(1, len(got) + 1))
        assert fake.duplicates == 0 and not v.broker.rejections
        assert not v.broker.positions() and not v.broker.open_orders()
    finally:
        v.close()
