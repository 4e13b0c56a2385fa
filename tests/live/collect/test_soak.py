"""The collector soak, short version (10 faults over 2 busy simulated hours, 14:00-16:00 CT, and the next
session's first 30 minutes, so that the day's segment is sealed and compacted to Parquet): `navale collect --feed
scid:PATH` as a real subprocess tailing a .scid written as Sierra Chart writes it, killed with SIGKILL and restarted, its segment torn, the
source stalled, torn, replaced and its clock stepped, ROOT's disk filled (a tmpfs; root only, else that fault is left
out and said); the collected ticks must equal the source exactly and every fault be in the journal.
The full soak (48 simulated hours, 50 faults) is `make soak` / benchmarks/soak_collect.py."""

from __future__ import annotations

import importlib.util

import pytest
from collect_soak import KINDS, SoakConfig, run_soak


def collector_available() -> None:
    if importlib.util.find_spec("live.collect.run") is None:
        pytest.skip("navale collect is not there (live/collect/run.py: the collector branch)")


@pytest.fixture(scope="module")
def soak(tmp_path_factory, data_dir):
    collector_available()
    return run_soak(SoakConfig(hours=3.5, start_hour=21.0, faults=10, speed=500.0, seed=14),
                    tmp_path_factory.mktemp("soak"))


def test_no_tick_lost_or_duplicated(soak):
    assert soak.source > 5000 and soak.dropped_at_source > 0  # RTH trades; a stall's trades never written
    assert soak.collected == soak.source
    assert (soak.lost, soak.duplicated, soak.mismatched) == (0, 0, 0), soak.summary()
    assert not [p for p in soak.problems if "differ" in p or "seq" in p or "torn" in p], soak.summary()


def test_restarts_do_not_change_a_bar(soak):
    """The bars collected through every kill, torn segment and reopened feed are the bars one uninterrupted builder
    makes from the ticks that reached the files (a stall's trades never did: no bar has them on either side)."""
    assert soak.bars > 25 and soak.bars_differ == 0, soak.summary()


def test_the_sealed_day_is_in_parquet_as_in_its_segment(soak):
    assert soak.segments[0] == "2024-03-04 (sealed)", soak.segments
    if importlib.util.find_spec("live.collect.seal") is None:
        pytest.skip("no Parquet compaction here (live/collect/seal.py: the sealing branch)")
    assert soak.parquet_dates == ["2024-03-04"] and soak.parquet_rows > 5000, soak.summary()
    assert not [p for p in soak.problems if "Parquet" in p], soak.summary()


def test_every_fault_was_injected_and_is_in_the_journal(soak):
    by = soak.faults_by_kind()
    assert sum(by.values()) == 10
    assert set(by) == set(KINDS) - set(soak.skipped_kinds), soak.skipped_kinds
    assert soak.restarts >= by.get("kill", 0) + by.get("torn_segment", 0)
    assert not soak.unplanned_exits, soak.unplanned_exits
    assert not soak.problems, soak.summary()


def test_a_backward_clock_jump_is_flagged_and_nothing_lost(tmp_path, data_dir):
    """The source's clock steps back (records out of order): recorded as they are, in file order, and flagged in
    the journal (the feed's out_of_order event), no record lost."""
    collector_available()
    res = run_soak(SoakConfig(hours=0.5, faults=1, kinds=("jump_back",), seed=3, catch_up_seconds=30), tmp_path)
    assert res.faults_by_kind() == {"jump_back": 1}
    assert (res.collected, res.lost, res.duplicated) == (res.source, 0, 0), res.summary()
    assert not res.problems, res.summary()
