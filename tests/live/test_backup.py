"""Backups to a local folder: a real collection dir (segments, partitions, SQLite journals, a DuckDB run store)
backed up, verified, restored into an empty dir byte for byte; incremental runs; corruption named and never
restored; database copies while other processes hold the files; prune on planted dates."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from backup_root import build_root, write_segment

from live.backup import ops
from live.backup.manifest import OBJECTS, snapshot_id
from live.backup.target import TargetError, open_target
from research.cli import main as cli
from research.store import RunStore

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def world(tmp_path):
    root, store = tmp_path / "collect", tmp_path / "navale.duckdb"
    info = build_root(root, store)
    return root, store, open_target(str(tmp_path / "backups")), info


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _journal_rows(path: Path) -> dict[str, list]:
    con = sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True)
    try:
        return {t: con.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in ("risk_events", "trades")}
    finally:
        con.close()


def _store_view(path: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    with RunStore(path, read_only=True, timeout=5) as s:
        return s.runs(), s.snapshots(shadow=True)  # shadow trades too: every stored row


def test_round_trip_restores_bytes_and_answers_the_same_queries(world, tmp_path, capsys):
    root, store, target, info = world
    assert cli(["backup", "run", "--dir", str(root), "--store", str(store), "--to", target.url]) == 0
    out = capsys.readouterr().out
    assert "1 open segment(s) (segments/ES/2024-03-06.seg) taken up to their last whole record" in out
    into = tmp_path / "restored"
    assert cli(["backup", "restore", "--from", target.url, "--into", str(into)]) == 0
    before, after = _files(root), _files(into)
    for rel, data in before.items():
        if rel.endswith((".seg", ".manifest.json", ".parquet", ".md")) or ".torn-" in rel:
            assert after[rel] == data, rel  # byte-identical (the open segment: it has no torn tail here)
    assert not any(k.endswith(("-wal", "-shm")) or k.startswith(".navale-restore") for k in after)
    for db in ("collector.sqlite", "trader/journal.sqlite"):
        assert _journal_rows(into / db) == _journal_rows(root / db) and _journal_rows(into / db)["trades"]
    runs0, snaps0 = _store_view(store)
    runs1, snaps1 = _store_view(into / "navale.duckdb")
    pd.testing.assert_frame_equal(runs0, runs1)
    pd.testing.assert_frame_equal(snaps0, snaps1)
    assert len(snaps1) == 3
    import duckdb  # the restored partitions read as a hive-partitioned data set

    con = duckdb.connect()
    n = con.execute(f"SELECT count(*), count(DISTINCT date) FROM read_parquet('{into}/parquet/ticks/*/*/*.parquet', "
                    "hive_partitioning=1)").fetchone()
    con.close()
    assert n == (4_000, 2)


def test_incremental_run_sends_only_what_changed(world):
    root, store, target, info = world
    first = ops.run(root, store, target)
    assert first.sent > 0 and first.skipped == 0 and first.ok
    second = ops.run(root, store, target)
    assert (second.sent, second.sent_bytes) == (0, 0) and second.skipped == first.sent
    # the open segment is sealed, a new one opens: the run sends the sealed one, its manifest and the new open one
    write_segment(root / "segments/ES/2024-03-06.seg", "2024-03-06", 2_000, 4_001, sealed=True, seed=9)
    write_segment(root / "segments/ES/2024-03-07.seg", "2024-03-07", 10, 6_001, sealed=False)
    third = ops.run(root, store, target)
    sent = {e.path for e in third.snapshot.entries if e.object not in {x.object for x in second.snapshot.entries}}
    assert sent == {"segments/ES/2024-03-06.seg", "segments/ES/2024-03-06.manifest.json", "segments/ES/2024-03-07.seg"}
    assert third.sent == 3
    assert ops.verify(target).ok


def test_corruption_is_named_and_never_restored(world, tmp_path, capsys):
    root, store, target, _ = world
    snap = ops.run(root, store, target).snapshot
    by_path = {e.path: e for e in snap.entries}
    base = Path(target.base)
    seg = base / by_path["segments/ES/2024-03-04.seg"].object
    data = bytearray(seg.read_bytes())
    data[len(data) // 2] ^= 0x01
    seg.write_bytes(bytes(data))  # altered
    part = base / by_path["parquet/ticks/symbol=ES/date=2024-03-05/part-0.parquet"].object
    part.write_bytes(part.read_bytes()[:-100])  # truncated
    (base / by_path["collector.sqlite"].object).unlink()  # missing
    assert cli(["backup", "verify", "--to", target.url]) == 1
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("bad:")]
    assert len(lines) == 3
    assert any("segments/ES/2024-03-04.seg" in line and "altered" in line for line in lines)
    assert any("date=2024-03-05/part-0.parquet" in line and "truncated" in line for line in lines)
    assert any("collector.sqlite" in line and "missing" in line for line in lines)
    into = tmp_path / "restored"
    assert cli(["backup", "restore", "--from", target.url, "--into", str(into)]) == 1
    out = capsys.readouterr().out
    assert "nothing was restored" in out and out.count("bad:") == 3
    assert not into.exists()
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli(["backup", "restore", "--from", target.url, "--into", str(empty)]) == 1
    assert list(empty.iterdir()) == []


def test_restore_refuses_a_non_empty_dir_and_bad_targets(world, tmp_path, capsys):
    root, store, target, _ = world
    ops.run(root, store, target)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    assert cli(["backup", "restore", "--from", target.url, "--into", str(busy)]) == 2
    assert "not an empty directory" in capsys.readouterr().out and (busy / "keep.txt").read_text() == "mine"
    assert cli(["backup", "run", "--dir", str(root), "--to", str(root / "bk")]) == 2
    assert "inside the collection directory" in capsys.readouterr().out
    with pytest.raises(TargetError, match="credentials in the URL are refused"):
        open_target("s3://AKIA:secret@bucket/x")
    assert cli(["backup", "verify", "--to", str(tmp_path / "nothing-here")]) == 2
    assert cli(["backup", "verify", "--to", target.url, "--snapshot", "20200101T000000.000000Z"]) == 2


def test_a_half_run_leaves_no_snapshot_and_its_leftovers_are_sent_again(world):
    root, store, target, _ = world
    first = ops.run(root, store, target)
    seg = next(e for e in first.snapshot.entries if e.kind == "segment")
    # a run killed mid-upload: an object with no manifest naming it, cut short
    write_segment(root / "segments/ES/2024-03-06.seg", "2024-03-06", 500, 4_001, sealed=True, seed=3)
    from live.backup.manifest import object_key
    from live.backup.snapshot import file_sha256

    sha, _ = file_sha256(root / "segments/ES/2024-03-06.seg")
    leftover = Path(target.base) / object_key(sha, "gzip")
    leftover.parent.mkdir(parents=True, exist_ok=True)
    leftover.write_bytes(b"\x1f\x8b half")
    assert len(ops.list_snapshots(target)[0]) == 1
    second = ops.run(root, store, target)
    assert second.sent == 2  # the leftover is not trusted: sent again, over it
    assert ops.verify(target).ok
    assert (Path(target.base) / seg.object).is_file()


def test_sqlite_copy_while_a_writer_holds_a_transaction(world, tmp_path):
    root, store, target, _ = world
    writer = sqlite3.connect(root / "collector.sqlite", isolation_level=None)
    writer.execute("BEGIN IMMEDIATE")
    writer.execute("INSERT INTO risk_events (kind, detail, level, ts_ns, wall_ns) VALUES ('x', 'uncommitted', "
                   "'info', 1, 1)")
    try:
        result = ops.run(root, None, target)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    assert result.ok
    into = tmp_path / "r"
    assert ops.restore(target, into).ok
    rows = _journal_rows(into / "collector.sqlite")["risk_events"]
    assert len(rows) == 5 and not any("uncommitted" in str(r) for r in rows)


def _hold_store(store: Path, read_only: bool) -> subprocess.Popen:
    code = ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == '1'); "
            "print('held', flush=True); time.sleep(60)")
    p = subprocess.Popen([sys.executable, "-c", code, str(store), "1" if read_only else "0"], stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "held"
    return p


def test_store_copy_beside_a_reader_and_skipped_beside_a_writer(world, tmp_path, capsys, monkeypatch):
    root, store, target, _ = world
    reader = _hold_store(store, read_only=True)
    try:
        assert ops.run(root, store, target).ok
    finally:
        reader.kill()
        reader.wait()
    monkeypatch.setenv("NAVALE_STORE_TIMEOUT", "0.3")
    writer = _hold_store(store, read_only=False)
    try:
        code = cli(["backup", "run", "--dir", str(root), "--store", str(store), "--to", target.url])
    finally:
        writer.kill()
        writer.wait()
    out = capsys.readouterr().out
    assert code == 1
    assert "warning: not backed up: the run store" in out and "held by a writer" in out
    snap = ops.load_snapshot(target)
    assert not any(e.kind == "store" for e in snap.entries)
    assert any(s["path"] == "navale.duckdb" for s in snap.skipped)
    assert {e.kind for e in snap.entries} >= {"segment", "partition", "sqlite"}  # the rest was backed up


def test_prune_keeps_the_newest_of_each_day_and_week(world):
    root, store, target, _ = world
    # planted snapshots: Mon 2024-03-04 x2, Tue 03-05, Sun 03-10 (same ISO week), Mon 03-11 x2, Fri 03-22
    stamps = ["2024-03-04T09", "2024-03-04T18", "2024-03-05T12", "2024-03-10T12", "2024-03-11T08", "2024-03-11T20",
              "2024-03-22T12"]
    ids = []
    for i, stamp in enumerate(stamps):
        when = datetime.fromisoformat(stamp + ":00:00+00:00")
        (root / "reports" / f"extra-{i}.md").write_text(f"only in snapshot {i}\n")  # an object per snapshot
        ids.append(ops.run(root, store, target, now=when).snapshot.id)
        (root / "reports" / f"extra-{i}.md").unlink()
    assert ids == [snapshot_id(datetime.fromisoformat(s + ":00:00+00:00")) for s in stamps]
    result = ops.prune(target, keep_daily=2, keep_weekly=3)
    # days: 03-22, 03-11 (its newest, 20:00); weeks: W12 (03-22), W11 (03-11 20:00), W10 (03-10)
    assert result.kept == sorted([ids[6], ids[5], ids[3]])
    assert sorted(result.deleted) == sorted([ids[0], ids[1], ids[2], ids[4]])
    assert [s.id for s in ops.list_snapshots(target)[0]] == result.kept
    left = target.listing(OBJECTS)
    needed = set().union(*(ops.load_snapshot(target, sid).objects() for sid in result.kept))
    assert set(left) == needed and result.objects_deleted == 4  # the deleted snapshots' own reports
    for sid in result.kept:
        assert ops.verify(target, sid).ok
    assert cli(["backup", "verify", "--all", "--to", target.url]) == 0
    (Path(target.base) / sorted(left)[0]).unlink()
    assert cli(["backup", "verify", "--all", "--to", target.url]) == 1
    with pytest.raises(ops.BackupError, match="at least one snapshot"):
        ops.prune(target, 0, 0)


def test_prune_refuses_during_a_run_and_with_an_unreadable_manifest(world):
    root, store, target, _ = world
    ops.run(root, store, target, now=datetime.now(timezone.utc) - timedelta(days=1))
    target.write_bytes("locks/run-x.json", f'{{"started": {time.time()}}}'.encode())
    with pytest.raises(ops.BackupError, match="a run is in progress"):
        ops.prune(target, 1, 0)
    target.remove("locks/run-x.json")
    target.write_bytes("snapshots/20240101T000000.000000Z.json", b"{not json")
    with pytest.raises(ops.BackupError, match="cannot be read"):
        ops.prune(target, 1, 0)


def test_restore_to_the_collection_dir_and_the_store_path(world, tmp_path, monkeypatch, capsys):
    """Without --into: the files go to --dir (empty) and the run store to --store (absent), as they were."""
    root, store, target, _ = world
    ops.run(root, store, target)
    new_root, new_store = tmp_path / "new" / "collect", tmp_path / "new" / "navale.duckdb"
    new_store.parent.mkdir()
    new_store.write_bytes(b"taken")
    args = ["backup", "restore", "--from", target.url, "--dir", str(new_root), "--store", str(new_store)]
    assert cli(args) == 2 and "exists" in capsys.readouterr().out and not new_root.exists()
    new_store.unlink()
    assert cli(args) == 0
    assert (new_root / "segments/ES/2024-03-04.seg").read_bytes() == (root / "segments/ES/2024-03-04.seg").read_bytes()
    assert not (new_root / "navale.duckdb").exists()
    pd.testing.assert_frame_equal(_store_view(new_store)[1], _store_view(store)[1])


def test_every_backup_subcommand_has_help(capsys):
    for sub in ("run", "verify", "restore", "list", "prune"):
        with pytest.raises(SystemExit) as e:
            cli(["backup", sub, "--help"])
        assert e.value.code == 0
        assert f"navale backup {sub}" in capsys.readouterr().out
    assert cli(["backup"]) == 2


def test_a_full_target_disk_fails_in_one_line_and_the_next_run_completes(world, tmp_path, capsys):
    from mounts import mount_tmpfs, umount

    root, store, _, _ = world
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "256k")  # the segments alone, gzipped, are ~70 kB; the store copy does not fit beside them
    try:
        filler = disk / "filler"
        filler.write_bytes(b"\0" * 200_000)
        url = str(disk / "backups")
        assert cli(["backup", "run", "--dir", str(root), "--store", str(store), "--to", url]) == 4
        err = [line for line in capsys.readouterr().out.splitlines() if line.startswith("error:")]
        assert len(err) == 1 and "no space left on device" in err[0] and "objects/" in err[0]
        target = open_target(url)
        assert target.listing("snapshots") == {} and target.listing("locks") == {}  # no half snapshot, no lock
        assert not [p for p in (disk / "backups").rglob("*.tmp-*")]
        filler.unlink()  # space freed
        assert cli(["backup", "run", "--dir", str(root), "--store", str(store), "--to", url]) == 0
        assert ops.verify(target).ok
    finally:
        umount(disk)


def test_backups_while_another_process_writes_the_journal(world, tmp_path):
    """A real writer process keeps committing heartbeats to collector.sqlite (WAL) during two runs: each copy is
    a consistent state (integrity check, a prefix of the writer's rows), and the later one holds more."""
    root, _, target, _ = world
    code = ("import sys, time; sys.path[:0] = sys.argv[2:]; from live.journal import Journal\n"
            "j = Journal(sys.argv[1]); i = 0; print('writing', flush=True)\n"
            "while i < 100000:\n"
            "    j.heartbeat(i, {'mode': 'data_collection', 'symbol': 'ES', 'position': i}); i += 1\n")
    writer = subprocess.Popen([sys.executable, "-c", code, str(root / "collector.sqlite"), str(REPO)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "writing"
        first = ops.run(root, None, target, now=datetime(2024, 3, 4, 12, tzinfo=timezone.utc))
        time.sleep(0.2)
        second = ops.run(root, None, target, now=datetime(2024, 3, 4, 13, tzinfo=timezone.utc))
    finally:
        writer.kill()
        writer.wait()
    assert first.ok and second.ok
    counts = []
    for snap in (first.snapshot, second.snapshot):
        into = tmp_path / snap.id
        assert ops.restore(target, into, snap.id).ok  # restore runs PRAGMA integrity_check on the copy
        con = sqlite3.connect(into / "collector.sqlite")
        ts = [r[0] for r in con.execute("SELECT ts_ns FROM heartbeats WHERE ts_ns < 1000000 ORDER BY id")]
        con.close()
        assert ts and ts == list(range(ts[0], ts[0] + len(ts)))  # consecutive (the journal prunes old ones)
        counts.append(ts[-1])
    assert counts[1] > counts[0]


def test_a_sealed_segment_changed_after_sealing_is_flagged(world, capsys):
    root, store, target, _ = world
    seg = root / "segments/ES/2024-03-05.seg"
    data = bytearray(seg.read_bytes())
    data[100] ^= 0x10
    seg.write_bytes(bytes(data))
    assert cli(["backup", "run", "--dir", str(root), "--store", str(store), "--to", target.url]) == 1
    warn = [line for line in capsys.readouterr().out.splitlines() if line.startswith("warning:")]
    assert len(warn) == 1 and "segments/ES/2024-03-05.seg: its sha256 differs" in warn[0]
    assert "segments/ES/2024-03-05.seg" in {e.path for e in ops.load_snapshot(target).entries}


def test_a_manifest_naming_a_path_outside_the_restore_dir_is_refused(world, tmp_path):
    root, store, target, _ = world
    sid = ops.run(root, store, target).snapshot.id
    key = f"snapshots/{sid}.json"
    text = target.read_bytes(key).decode().replace('"path": "reports/2024-03-04.md"', '"path": "../../escaped.md"')
    target.write_bytes(key, text.encode())
    with pytest.raises(ops.BackupError, match="unsafe path '../../escaped.md'"):
        ops.restore(target, tmp_path / "r", sid)
    assert not (tmp_path / "escaped.md").exists() and not (tmp_path / "r").exists()


def test_an_unreadable_newest_manifest_is_never_passed_over_silently(world, tmp_path, capsys):
    root, store, target, _ = world
    old = ops.run(root, store, target).snapshot
    write_segment(root / "segments/ES/2024-03-07.seg", "2024-03-07", 10, 9_001, sealed=False)
    new = ops.run(root, store, target).snapshot
    assert new.id > old.id
    target.write_bytes(f"snapshots/{new.id}.json", b"{")
    assert cli(["backup", "verify", "--to", target.url]) == 1
    err = capsys.readouterr()
    assert f"snapshots/{new.id}.json cannot be read" in err.out + err.err
    assert cli(["backup", "restore", "--from", target.url, "--into", str(tmp_path / "r")]) == 1
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").iterdir())
    # the older snapshot on purpose
    assert cli(["backup", "verify", "--to", target.url, "--snapshot", old.id]) == 0
