"""Fixtures of the DTC adapter tests (imported by each test module: this folder has no conftest.py, whose bare name
would shadow tests/conftest.py): a fake DTC server per test; the tick-mode paper session of the Trader-level tests."""

from __future__ import annotations

import pytest
from dtc_trader_run import ListFeed, RecordingPaper, run_trader
from fake_dtc import FakeDTCServer

from live.feeds.synthetic import SyntheticFeed
from research.data import SyntheticSpec
from strategy import Params

SPEC = SyntheticSpec(days=2)  # two days of the synthetic trades (108k): enough for several trades


@pytest.fixture
def fake_server():
    """``make(**kw)`` starts a FakeDTCServer(**kw) on an ephemeral 127.0.0.1 port; all are stopped at the end."""
    made: list[FakeDTCServer] = []

    def make(*a, **kw) -> FakeDTCServer:
        s = FakeDTCServer(*a, **kw)
        s.start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()


@pytest.fixture(scope="module")
def paper_session(tmp_path_factory, data_dir):
    """The paper run once for the file: (params, trades, its RunResult, its fills, the holds for the fake)."""
    params = Params.for_mode("paper")
    ticks = list(SyntheticFeed(SPEC, speed=None))
    sd = tmp_path_factory.mktemp("paper")
    paper = RecordingPaper("ES", mode="tick", slippage_ticks=params.slippage_ticks, book_path=sd / "paper_broker.sqlite")
    _, want = run_trader(params, ListFeed(ticks), paper, sd)
    fills = paper.fills_since(0)
    assert len(want.trades) >= 3 and {f.role for f in fills} >= {"entry", "stop"}
    return params, ticks, want, fills, dict(paper.holds)
