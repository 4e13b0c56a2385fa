"""The collector's journal through a really full disk (a small tmpfs; root only, skipped otherwise)."""

from __future__ import annotations

from mounts import mount_tmpfs, umount

from live.collect.held_journal import HeldJournal
from live.journal import Journal


def fill(path) -> None:
    with open(path, "wb", buffering=0) as fh:
        chunk = 1 << 16
        while chunk >= 512:
            try:
                fh.write(b"\0" * chunk)
            except OSError:
                chunk //= 4


def test_events_are_held_while_the_disk_is_full_then_written_in_order(tmp_path):
    disk = tmp_path / "disk"
    mount_tmpfs(disk, "2m")
    try:
        j = HeldJournal(Journal(disk / "collector.sqlite"))
        j.record_risk_event("start", "before", 1, level="info")
        fill(disk / "filler")
        for i in range(50):  # none raises, the journal cannot take them
            j.record_risk_event("disk_full", "x" * 2000 + str(i), 2 + i)
            j.heartbeat(2 + i, {"state": "running"})
        assert len(j.held) > 0
        (disk / "filler").unlink()
        j.record_risk_event("disk_ok", "space is back", 100, level="info")
        assert j.held == []
        kinds = [(e["kind"], e["ts_ns"]) for e in j.risk_events()]
        assert kinds[0] == ("start", 1) and kinds[-1] == ("disk_ok", 100)
        assert [t for k, t in kinds if k == "disk_full"] == list(range(2, 52))
        j.close()
    finally:
        umount(disk)
