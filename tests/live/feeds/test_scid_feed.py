"""ScidFeed against a real writer process: records split across writes, a truncation, a replacement, a restart
from the resume token and a contract roll to the next file, with every record yielded exactly once."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from live.events import Tick
from live.feeds import FeedError
from live.feeds.scid import ScidFeed, next_contract_path
from research.data.scid import (
    SCID_HEADER_SIZE,
    bars_to_scid_records,
    scid_time_to_ns,
    ticks_to_scid_records,
    write_scid,
)
from research.data.synthetic import SyntheticSpec, generate_trades

WRITER = Path(__file__).with_name("scid_writer.py")
REC = 40


def records(n: int, *, offset_s: float = 0.0) -> np.ndarray:
    t = generate_trades(SyntheticSpec(days=1)).iloc[:n]
    rec = ticks_to_scid_records(t.index.as_unit("ns").asi8 + int(offset_s * 1e9), t["price"].to_numpy(), t["size"].to_numpy(),
                                t["side"].to_numpy(), t["bid"].to_numpy(), t["ask"].to_numpy())
    for a, b in ((10, 20), (500, 503)):  # several trades in one microsecond
        if n > b:
            rec["datetime"][a:b] = rec["datetime"][a]
    return rec


def expected(rec: np.ndarray, contract: str) -> list[Tick]:
    side = np.where(rec["ask_volume"] > 0, 1, np.where(rec["bid_volume"] > 0, -1, 0))
    return [Tick(int(t), float(p), int(s), int(d), contract, 1, float(b), float(a)) for t, p, s, d, b, a in
            zip(scid_time_to_ns(rec["datetime"]), rec["close"], rec["total_volume"], side, rec["low"], rec["high"])]


def source_file(tmp_path: Path, name: str, rec: np.ndarray) -> Path:
    return write_scid(tmp_path / "src" / name, rec)


def run(*args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(WRITER), *map(str, args)])


def read_until(feed: ScidFeed, got: list, n: int, proc: subprocess.Popen | None = None, timeout: float = 30.0) -> None:
    end = time.monotonic() + timeout
    while (len(got) < n or (proc is not None and proc.poll() is None)) and time.monotonic() < end:
        r = feed.next_record()
        if r is not None:
            got.append(r)
    if proc is not None:
        assert proc.wait(timeout=10) == 0
    assert len(got) == n, f"got {len(got)} of {n} records; events {feed.events}"


def test_tail_a_live_writer_through_truncation_replacement_restart_and_roll(tmp_path):
    old = records(3000)
    src = source_file(tmp_path, "ESM24-CME.scid", old)
    live = tmp_path / "ESM24-CME.scid"
    live.write_bytes(b"")
    head = SCID_HEADER_SIZE
    feed = ScidFeed(live, poll_interval=0.02, roll_check_seconds=0.02)
    got: list[Tick] = []

    read_until(feed, got, 1000, run("append", src, live, 0, head + 1000 * REC))  # split mid-record
    read_until(feed, got, 1000, run("truncate", live, head + 400 * REC, 0.3))  # shrinks below the offset
    read_until(feed, got, 1600, run("append", src, live, head + 400 * REC, head + 1600 * REC))
    assert "truncated" in [k for k, _ in feed.events]

    read_until(feed, got, 1700, run("replace", src, live, head + 1700 * REC))  # a new inode
    assert "replaced" in [k for k, _ in feed.events]

    token = json.loads(json.dumps(feed.resume_token()))  # the trader is killed and restarted here
    feed = ScidFeed(live, resume=token, poll_interval=0.02, roll_check_seconds=0.02)
    read_until(feed, got, 2200, run("append", src, live, head + 1700 * REC, head + 2200 * REC))

    # the next contract's file: a history that overlaps the old file, then trades after its last one
    history = old[1500:2200].copy()
    nxt = np.concatenate([history, old[2200:3000]])
    src2 = source_file(tmp_path, "ESU24-CME.scid", nxt)
    new = next_contract_path(live)
    assert new == tmp_path / "ESU24-CME.scid"
    new.write_bytes(b"")
    read_until(feed, got, 3000, run("append", src2, new, 0, head + len(nxt) * REC))
    assert "roll" in [k for k, _ in feed.events] and feed.path == new and feed.symbol == "ESU24"

    want = expected(old[:2200], "ESM24") + expected(old[2200:3000], "ESU24")
    assert got == want
    assert feed.next_record() is None


def test_resume_round_trip_on_a_file_being_read(tmp_path):
    rec = records(2000)
    path = write_scid(tmp_path / "ESM24-CME.scid", rec)
    whole = list(_drain(ScidFeed(path, poll_interval=0.001)))
    for k in (1, 15, 501, 1999):
        a = ScidFeed(path, poll_interval=0.001)
        head = [a.next_record() for _ in range(k)]
        b = ScidFeed(path, poll_interval=0.001, resume=json.loads(json.dumps(a.resume_token())))
        assert head + list(_drain(b)) == whole, k
    assert len(whole) == 2000


def test_a_file_rewritten_in_place_before_a_restart_is_reread_without_duplicates(tmp_path):
    rec = records(600)
    path = write_scid(tmp_path / "ESM24-CME.scid", rec[:300])
    a = ScidFeed(path, poll_interval=0.001)
    head = list(_drain(a))
    token = a.resume_token()
    redone = np.concatenate([rec[:250], rec[260:]])  # a re-download that differs: the last record read moved
    with open(path, "wb") as fh:  # rewritten in place (same inode), with more records
        fh.write(write_scid(tmp_path / "x.scid", redone).read_bytes())
    b = ScidFeed(path, poll_interval=0.001, resume=token)
    assert head + list(_drain(b)) == expected(rec, "ESM24")
    assert [k for k, _ in b.events] == ["rewritten", "history_changed"]
    assert "holds 290 records up to the last one yielded" in b.events[1][1] and "held 300" in b.events[1][1]
    assert "10 fewer" in b.events[1][1]


def test_a_partial_trailing_record_waits_for_its_end(tmp_path):
    rec = records(3)
    path = write_scid(tmp_path / "ESM24-CME.scid", rec)
    data = path.read_bytes()
    path.write_bytes(data[:-15])
    feed = ScidFeed(path, poll_interval=0.001)
    assert len(list(_drain(feed))) == 2
    with open(path, "ab") as fh:
        fh.write(data[-15:])
    assert list(_drain(feed)) == expected(rec[2:], "ESM24")


def test_bar_records_are_refused_in_one_line(tmp_path):
    import pandas as pd

    idx = pd.DatetimeIndex([pd.Timestamp("2024-03-12 14:30", tz="UTC")], name="time")
    frame = pd.DataFrame({"open": [5000.0], "high": [5001.0], "low": [4999.0], "close": [5000.5], "volume": [10],
                          "num_trades": [3]}, index=idx)
    path = write_scid(tmp_path / "ESM24-CME.scid", bars_to_scid_records(frame))
    with pytest.raises(FeedError, match="is a bar, not a single trade") as exc:
        ScidFeed(path, poll_interval=0.001).next_record()
    assert "\n" not in str(exc.value)


def test_next_contract_names():
    assert next_contract_path("d/ESZ24-CME.scid") == Path("d/ESH25-CME.scid")
    assert next_contract_path("ESU4.scid") == Path("ESZ4.scid")
    assert next_contract_path("notacontract.scid") is None


def _drain(feed: ScidFeed):
    while (r := feed.next_record()) is not None:
        yield r


def test_bad_resume_tokens_are_refused_in_one_line(tmp_path):
    path = write_scid(tmp_path / "ESM24-CME.scid", records(5))
    good = ScidFeed(path).resume_token()
    with pytest.raises(FeedError, match="bad resume token"):
        ScidFeed(path, resume={"offset": 96})
    with pytest.raises(FeedError, match="bad resume offset"):
        ScidFeed(path, resume={**good, "offset": SCID_HEADER_SIZE + 7, "prev_dt": None})


REOPENED = ("replaced", "truncated", "rewritten")


def _replace(path: Path, rec: np.ndarray) -> None:
    tmp = write_scid(path.with_name(path.name + ".new"), rec)
    os.replace(tmp, path)  # a re-download written whole, then renamed over the file


def _gapped(n: int) -> tuple[np.ndarray, np.ndarray]:
    full = records(n)
    return full, np.concatenate([full[:1000], full[1050:3000]])  # records 1000-1049 missing


def test_a_replacement_with_backfilled_records_is_reported_with_counts_and_not_yielded(tmp_path):
    full, gapped = _gapped(3100)
    path = write_scid(tmp_path / "ESM24-CME.scid", gapped)
    feed = ScidFeed(path, poll_interval=0.001)
    head = list(_drain(feed))
    assert len(head) == 2950
    _replace(path, full[:3000])
    assert list(_drain(feed)) == []  # older than what was yielded: reported, not yielded
    kinds = [k for k, _ in feed.events]
    assert kinds == ["replaced", "backfill"], feed.events
    detail = feed.events[1][1]
    assert "holds 3,000 records" in detail and "held 2,950" in detail and "50 more" in detail
    assert "navale collect --feed replay:" in detail and " UTC" in detail
    with open(path, "ab") as fh:  # trading goes on: the records after the skip point come through once
        fh.write(full[3000:].tobytes())
    assert head + list(_drain(feed)) == expected(np.concatenate([gapped, full[3000:]]), "ESM24")


def test_the_record_count_survives_a_restart_and_an_old_token_still_resumes(tmp_path):
    full, gapped = _gapped(3100)
    path = write_scid(tmp_path / "ESM24-CME.scid", gapped)
    a = ScidFeed(path, poll_interval=0.001)
    head = list(_drain(a))
    before = json.loads(json.dumps(a.resume_token()))

    # replaced while the collector is down: the count comes from the token's offset (an old token too)
    _replace(path, full[:3000])
    old_token = {k: v for k, v in before.items() if k != "skip_check"}
    for token in (before, old_token):
        b = ScidFeed(path, poll_interval=0.001, resume=token)
        assert list(_drain(b)) == [] and [k for k, _ in b.events][1:] == ["backfill"], b.events
        assert b.events[0][0] in REOPENED

    # replaced by a re-download still under way (it does not reach the skip point), restarted mid-skip
    _replace(path, full[:2000])
    c = ScidFeed(path, poll_interval=0.001, resume=before)
    assert list(_drain(c)) == [] and len(c.events) == 1 and c.events[0][0] in REOPENED  # inodes get reused
    mid = json.loads(json.dumps(c.resume_token()))
    assert mid["skip"] and mid["skip_check"]["expected"] == 2950 and mid["skip_check"]["dropped"] == 2000
    with open(path, "ab") as fh:
        fh.write(full[2000:].tobytes())
    d = ScidFeed(path, poll_interval=0.001, resume=mid)
    assert head + list(_drain(d)) == expected(np.concatenate([gapped, full[3000:]]), "ESM24")
    assert [k for k, _ in d.events] == ["resumed", "backfill"] and "50 more" in d.events[1][1]
    e = ScidFeed(path, poll_interval=0.001, resume={k: v for k, v in mid.items() if k != "skip_check"})
    assert len(list(_drain(e))) == 100 and [k for k, _ in e.events] == ["resumed"]  # no count: no check


def test_a_replacement_with_fewer_records_is_reported_as_history_changed(tmp_path):
    full, gapped = _gapped(3100)
    path = write_scid(tmp_path / "ESM24-CME.scid", full[:3000])
    feed = ScidFeed(path, poll_interval=0.001)
    list(_drain(feed))
    _replace(path, gapped)
    assert list(_drain(feed)) == []
    assert [k for k, _ in feed.events] == ["replaced", "history_changed"]
    assert "held 3,000" in feed.events[1][1] and "50 fewer" in feed.events[1][1]
