"""The journal (live/journal.py): real SQLite files, real writer and reader processes, a real kill -9."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from live_helpers import BAR, T0, trade_row

from live import journal as J
from live.events import Bracket, Fill, Order
from live.journal import Journal, JournalError, TraderStatus, trading_date
from research.store import snapshots as snap

ROOT = Path(__file__).resolve().parents[2]
HELPERS = ROOT / "tests" / "live_helpers.py"
ENV = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'tests'}"}


def helper(*args: str, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, str(HELPERS), *args], env=ENV, cwd=ROOT, text=True, **kw)


@pytest.fixture
def jpath(tmp_path) -> Path:
    return tmp_path / "live" / "journal.sqlite"


def test_wal_mode_schema_and_one_transaction_per_batch(jpath):
    with Journal(jpath) as j:
        assert j._conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        with j.batch():
            j.record_order(Order("o1", "ES", 1, 1, "entry", bracket=Bracket(8, 16), decided_ns=T0), T0, "submitted")
            with j.batch():  # nested: joins the outer one
                j.record_position("ES", 1, T0)
            with Journal(jpath, readonly=True) as r:  # another connection sees nothing before the commit
                assert r.counts()["orders"] == 0
        with pytest.raises(RuntimeError, match="planted"):
            with j.batch():
                j.record_position("ES", 0, T0 + BAR)
                raise RuntimeError("planted")
        counts = j.counts()
    assert counts["orders"] == 1 and counts["positions"] == 1  # the failed batch left nothing
    with Journal(jpath, readonly=True) as r:
        o = r.orders().iloc[0]
        assert (o.order_id, o.status, o.stop_ticks, o.target_ticks, o.ts_ns) == ("o1", "submitted", 8, 16, T0)
        assert r.positions() == {"ES": 1}
        with pytest.raises(JournalError, match="read-only"):
            r.record_position("ES", 0, T0)


def test_fills_are_recorded_once_and_kept_in_broker_order(jpath):
    with Journal(jpath) as j:
        f2 = Fill("f2", "o1", "ES", -1, 1, 4001.5, T0 + BAR, "target", seq=2, extra={"ambiguous": True})
        f1 = Fill("f1", "o1", "ES", 1, 1, 4000.25, T0, "entry", slippage_ticks=1, seq=1)
        assert j.record_fill(f2) and j.record_fill(f1)
        assert not j.record_fill(f1)  # a restart re-applying a fill: no duplicate
        fills = j.fills()
    assert fills["fill_id"].tolist() == ["f1", "f2"]
    assert fills["price"].tolist() == [4000.25, 4001.5] and fills["extra"].tolist() == [{}, {"ambiguous": True}]


def test_trades_round_trip_as_the_snapshot_record(jpath):
    rows = [trade_row(i, nulls=i % 2 == 1) for i in range(6)]
    with Journal(jpath) as j:
        with j.batch():
            assert all(j.record_trade(r) for r in rows)
        assert not j.record_trade(rows[0])  # the same trade again replaces, not duplicates
        back = j.trades()
    expected = snap.validate(pd.DataFrame(rows))
    pd.testing.assert_frame_equal(back, expected)
    assert back["base_age_bars"].isna().tolist() == [False, True] * 3
    with Journal(jpath, readonly=True) as r:
        assert len(r.trades("paper-test")) == 6 and r.trades("other").empty


def test_a_bad_trade_is_refused_naming_the_field(jpath):
    row = trade_row(0) | {"exit_reason": "lucky"}
    with Journal(jpath) as j:
        with pytest.raises(snap.SnapshotError, match="exit_reason"):
            j.record_trade(row)
        assert j.counts()["trades"] == 0


def test_state_is_replaced_as_a_whole(jpath):
    with Journal(jpath) as j:
        assert j.load_state() is None
        j.save_state({"signal": b"\x00\x01" * 100, "trade": b"t1"}, T0)
        with j.batch():
            j.save_state({"signal": b"\x02", "broker_seq": b"7"}, T0 + BAR)
        assert j.load_state() == ({"broker_seq": b"7", "signal": b"\x02"}, T0 + BAR)


def test_status_from_heartbeat_and_from_trades(jpath):
    with Journal(jpath) as j:
        for i in range(3):
            j.record_trade(trade_row(i))
        j.record_risk_event("daily_loss_limit", "loss -510 $ >= 500 $", T0 + 40 * BAR, "critical")
        st = j.status()  # no heartbeat: today's figures from the journaled trades of the last trade's date
        assert st["mode"] is None and st["trades_total"] == 3 and st["trades_today"] == 3
        assert st["pnl_today_usd"] == pytest.approx(sum(trade_row(i)["pnl_usd"] for i in range(3)))
        assert st["trading_date"] == "2024-03-11" and st["last_trade"]["trade_id"] == "T00002"
        assert [e["kind"] for e in st["risk_events"]] == ["daily_loss_limit"]
        j.heartbeat(T0 + 50 * BAR, TraderStatus(mode="paper", symbol="ES", bar_ts_ns=T0 + 50 * BAR, position=-1,
                                               entry_price=4000.5, pnl_today_usd=99.0, trades_today=7,
                                               kill_switches={"weekend": False, "drawdown": "3.1 % >= 3 %"},
                                               feed={"kind": "replay", "records": np.int64(10)}, unvalidated=True,
                                               pnl_open_usd=np.float64(1.5), pid=42))
        j.record_position("ES", -1, T0 + 50 * BAR)
    with Journal(jpath, readonly=True) as r:
        st = r.status()
    assert set(J.STATUS_KEYS) <= set(st)
    assert (st["position"], st["trades_today"], st["pnl_today_usd"], st["pid"]) == (-1, 7, 99.0, 42)
    assert st["kill_switches"]["drawdown"] == "3.1 % >= 3 %" and st["unvalidated"] is True
    assert st["feed"]["records"] == 10 and st["pnl_open_usd"] == 1.5
    assert st["positions"] == {"ES": -1} and st["wall_ns"] > 0 and 0 <= st["heartbeat_age_s"] < 60


def test_risk_events_filters(jpath):
    with Journal(jpath) as j:
        ids = [j.record_risk_event(k, "d", T0 + i * BAR) for i, k in enumerate(("a", "b", "c"))]
        assert j.last_risk_event_id() == ids[-1]
        assert [e["kind"] for e in j.risk_events(since_ns=T0 + BAR)] == ["b", "c"]
        assert [e["kind"] for e in j.risk_events(after_id=ids[0], limit=1)] == ["c"]
        with pytest.raises(ValueError, match="level"):
            j.record_risk_event("x", "d", T0, level="panic")


def test_old_heartbeats_are_pruned(jpath, monkeypatch):
    monkeypatch.setattr(J, "HEARTBEATS_KEPT", 300)
    with Journal(jpath) as j:
        with j.batch():
            for k in range(2000):
                j.heartbeat(T0 + k * BAR, {"bar_ts_ns": T0 + k * BAR})
        assert j.counts()["heartbeats"] == 300
        assert j.last_heartbeat()["ts_ns"] == T0 + 1999 * BAR


def test_trading_date_rolls_at_17_ct():
    thu_1659_ct = pd.Timestamp("2024-03-14 16:59", tz="America/Chicago").value
    assert trading_date(thu_1659_ct) == "2024-03-14"
    assert trading_date(thu_1659_ct + 60 * 10**9) == "2024-03-15"


def test_bad_files_are_one_line_errors(tmp_path):
    with pytest.raises(JournalError, match=r"^no journal at .*nothing\.sqlite"):
        Journal(tmp_path / "nothing.sqlite", readonly=True)
    text = tmp_path / "notes.sqlite"
    text.write_text("hello, not a database\n" * 100)
    other = tmp_path / "other.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.commit()
    newer = tmp_path / "newer.sqlite"
    Journal(newer).close()
    with sqlite3.connect(newer) as con:
        con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    empty = tmp_path / "empty.sqlite"
    sqlite3.connect(empty).close()
    empty.write_bytes(b"")
    for path, what in ((text, "not a navale journal"), (other, "not a navale journal"),
                       (newer, "schema version 99, newer than this code's 1")):
        for ro in (False, True):
            with pytest.raises(JournalError) as e:
                Journal(path, readonly=ro)
            assert what in str(e.value) and str(path) in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(JournalError, match="empty journal"):  # a reader racing the trader's first start
        Journal(empty, readonly=True)
    Journal(empty).close()  # the writer makes it a journal
    assert Journal(empty, readonly=True).counts()["orders"] == 0


def test_a_reader_process_polls_while_a_writer_process_writes(tmp_path):
    """~2,000 bar-close batches written by one process while another polls status() and trades():
    no lock error, never half a batch, never a step back, and the final counts equal."""
    path, n = tmp_path / "journal.sqlite", 2000
    Journal(path).close()
    done, out = tmp_path / "writer.done", tmp_path / "reader.json"
    reader = helper("read", str(path), str(done), str(out))
    for _ in range(600):
        if Path(str(out) + ".ready").exists():
            break
        time.sleep(0.05)
    writer = helper("write", str(path), str(n), stdout=subprocess.DEVNULL)
    assert writer.wait(120) == 0
    done.write_text("done")
    assert reader.wait(120) == 0
    seen = json.loads(out.read_text())
    assert seen["errors"] == []
    assert seen["polls"] >= 5 and seen["intermediate"] >= 2, seen  # it did read while the writer wrote
    final = {"orders": n, "fills": n, "positions": n, "heartbeats": n, "state": 2, "trades": n // 100,
             "risk_events": n // 100}
    assert seen["last"] == final
    with Journal(path, readonly=True) as r:  # a reader after the writer has gone (no -wal/-shm left)
        assert r.counts() == final and r.load_state()[1] == T0 + (n - 1) * BAR


def test_kill_9_in_the_middle_loses_no_committed_batch(tmp_path):
    path = tmp_path / "journal.sqlite"
    writer = helper("write", str(path), "0", "--forever", stdout=subprocess.PIPE)
    last = -1
    for line in writer.stdout:
        last = int(line.split()[1])
        if last >= 300:
            break
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait(30)
    assert writer.returncode == -signal.SIGKILL
    for readonly in (True, False):  # a reader can open the file the dead writer left, and so can a new writer
        with Journal(path, readonly=readonly) as j:
            c, state = j.counts(), j.load_state()
            assert c["orders"] >= last + 1  # every batch it had reported committed
            assert c["orders"] == c["fills"] == c["positions"] == c["heartbeats"]  # and no half batch
            assert state[1] == T0 + (c["orders"] - 1) * BAR
            assert state[0]["signal"] == (c["orders"] - 1).to_bytes(8, "little") * 64
            assert len(j.trades()) == c["trades"] == (c["orders"] + 99) // 100


def test_a_journal_on_a_read_only_mount_reads(tmp_path):
    """A restore drill or a mounted backup: the folder cannot take SQLite's WAL index, the readers still read."""
    mnt = tmp_path / "ro"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mnt)], capture_output=True).returncode:
        pytest.skip("mounting a tmpfs is not permitted here (needs root)")
    try:
        with J.Journal(mnt / "journal.sqlite") as j:
            j.record_risk_event("start", "hello", 1, level="info")
        assert subprocess.run(["mount", "-o", "remount,ro", str(mnt)], capture_output=True).returncode == 0
        with J.Journal(mnt / "journal.sqlite", readonly=True) as j:
            assert [e["detail"] for e in j.risk_events()] == ["hello"]
    finally:
        subprocess.run(["umount", str(mnt)], capture_output=True)
