"""Parity of the whole live loop with the backtest: feed -> bar builder -> signals -> trade rules -> bar-mode
paper broker -> journal gives the backtest's trades on the same bars, every column of the snapshot
record but run_id/trade_id (both sides through ``research.store.snapshots.validate``). On the synthetic
feed (trades through the bar builder) in modes paper and data_collection, and on replays of real
5-minute contracts, one by one and stitched as a continuous series. All 32 contracts:
benchmarks/paper_parity.py.
"""

from __future__ import annotations

import pytest
from conftest import shared_file
from paper_runs import assert_same_trades, run_session, slice_bar_file

from live.journal import Journal
from research.backtest import run as backtest
from research.data import SyntheticSpec, default_dataset, load_bars
from research.pipeline import load_series
from strategy import Params

SPEC = SyntheticSpec(days=2)
# three-week slices of real contracts (written to temp bar files, so the replays stay short), each with trades
SLICES = [("ESZ15", "2015-10-05", "2015-10-24"), ("ESM17", "2017-04-03", "2017-04-22"),
          ("ESU19", "2019-07-01", "2019-07-20")]
ROLL = (("ESU19", "ESZ19"), "2019-09-09", "2019-10-05")  # around the September 2019 roll


def _journal_trades(sd, run_id):
    with Journal(sd / "journal.sqlite", readonly=True) as j:
        return j.trades(run_id)


@pytest.mark.parametrize("mode", ["paper", "data_collection"])
def test_synthetic_feed_equals_the_backtest(tmp_path, data_dir, mode):
    params = Params.for_mode(mode)
    want = backtest(load_bars(default_dataset(SPEC), bar="5min"), params).trades
    assert len(want) >= 3
    trader, res = run_session("synthetic", tmp_path, params, feed_kw={"spec": SPEC})
    assert res.reason == "replay_end" and res.bars > 500
    assert_same_trades(res.trades, want, f"RunResult.trades ({mode})")
    got = _journal_trades(tmp_path, trader.run_id)
    assert_same_trades(got, want, f"journal trades ({mode})")
    assert set(got["mode"]) == {mode}


@pytest.mark.realdata
@pytest.mark.parametrize("contract,start,end", SLICES)
def test_replay_of_a_real_contract_equals_the_backtest(tmp_path, contract, start, end):
    path = slice_bar_file(shared_file(f"es-5m/{contract}-CME.scid_BarData__5m.txt.gz"), tmp_path / "bars", start, end)
    params = Params.for_mode("paper")
    want = backtest(load_bars(path), params).trades
    assert len(want) >= 10
    trader, res = run_session(f"replay:{path}", tmp_path / "state", params, checkpoint_every=50)
    assert res.reason == "replay_end"
    assert_same_trades(res.trades, want, contract)
    assert_same_trades(_journal_trades(tmp_path / "state", trader.run_id), want, f"{contract} (journal)")


@pytest.mark.realdata
def test_replay_of_a_stitched_series_equals_the_backtest(tmp_path):
    """Two contracts as one continuous series: roll offsets and the last bar of the old contract."""
    contracts, start, end = ROLL
    folder = tmp_path / "contracts"  # a folder replays its files as one series, as load_bars reads them
    paths = [slice_bar_file(shared_file(f"es-5m/{c}-CME.scid_BarData__5m.txt.gz"), folder, start, end)
             for c in contracts]
    (series,) = load_series(paths)
    assert (series.frame["roll_offset"] != 0).any()
    params = Params.for_mode("paper")
    want = backtest(series.frame, params).trades
    assert set(want["contract"]) == set(contracts)
    trader, res = run_session(f"replay:{folder}", tmp_path / "state", params, checkpoint_every=50)
    assert res.reason == "replay_end"
    assert_same_trades(res.trades, want, "+".join(contracts))
    assert_same_trades(_journal_trades(tmp_path / "state", trader.run_id), want, "+".join(contracts) + " (journal)")
