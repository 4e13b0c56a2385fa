"""Backup throughput, measured in one run on this machine (figures, not assertions).

Generates a collection dir of about ``--mb`` MB (default 300): one sealed ES segment per trading day of
``--ticks-per-day`` realistic ticks (a random-walk price, Poisson times, aggressor sides; written with
research.data.segments frames), its Parquet tick partition, reports, the collector's journal and a run store.
Then times, on a local-folder target: the first run, an incremental run with nothing new, an incremental run
after one more day is sealed, verify, and restore into an empty dir. ``--s3`` repeats run/verify/restore on a
local S3 server (moto in server mode on 127.0.0.1; slow by nature, an in-memory Python server) with ``--s3-mb``.

Run: .venv/bin/python benchmarks/bench_backup.py [--mb 300] [--s3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import zlib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import numpy as np  # noqa: E402
import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
from backup_root import journal_rows, store_run  # noqa: E402

from live.backup import ops  # noqa: E402
from live.backup.target import open_target  # noqa: E402
from research.data import segments as S  # noqa: E402

DAY_NS = 86_400_000_000_000
T0 = 1_709_589_600_000_000_000  # 2024-03-04 22:00 UTC


def day_ticks(day: int, n: int, first_seq: int) -> np.ndarray:
    rng = np.random.default_rng(day)
    t = np.empty(n, S.TICK_DTYPE)
    t["ts_ns"] = T0 + day * DAY_NS + np.cumsum(rng.exponential(80e6, n)).astype("int64")  # ~80 ms apart
    t["price"] = 5000 + 0.25 * np.cumsum(rng.choice([-1, 0, 0, 0, 1], n))
    t["size"] = rng.geometric(0.4, n)
    t["side"] = rng.choice([-1, 1], n)
    t["num_trades"] = 1
    t["bid"] = t["price"] - 0.25 * (t["side"] > 0)
    t["ask"] = t["bid"] + 0.25
    t["seq"] = np.arange(first_seq, first_seq + n)
    return t


def write_day(root: Path, day: int, n: int, first_seq: int) -> int:
    """One sealed segment (+ manifest) and its tick partition; the next seq."""
    import hashlib
    import json

    date = f"2024-03-{5 + day:02d}"
    ticks = day_ticks(day, n, first_seq)
    raw = ticks.tobytes()
    size = S.TICK_DTYPE.itemsize
    head = S.FRAME.size
    kind = bytes((S.TICK,))
    frames = bytearray((head + size) * n)
    for i in range(n):  # the framing is per record (a length and a CRC-32 each), as the collector writes it
        payload = raw[i * size:(i + 1) * size]
        off = i * (head + size)
        S.FRAME.pack_into(frames, off, size, zlib.crc32(payload, zlib.crc32(kind)), S.TICK)
        frames[off + head:off + head + size] = payload
    data = (S.header_frame("ES", date, "bench", T0, None) + S.json_frame(S.CONTRACT, {"contract": "ESM24"})
            + bytes(frames) + S.json_frame(S.SEAL, {"records": n, "last_seq": first_seq + n - 1}))
    seg = root / "segments" / "ES" / f"{date}.seg"
    seg.parent.mkdir(parents=True, exist_ok=True)
    seg.write_bytes(data)
    (seg.parent / f"{date}.manifest.json").write_text(json.dumps({"sha256": hashlib.sha256(data).hexdigest(),
                                                                   "records": n}))
    part = root / "parquet" / "ticks" / "symbol=ES" / f"date={date}" / "part-0.parquet"
    part.parent.mkdir(parents=True, exist_ok=True)
    cols = {name: ticks[name] for name in S.TICK_DTYPE.names if name != "ts_ns"}
    table = pa.table({"ts": pa.array(ticks["ts_ns"], pa.timestamp("ns", tz="UTC")), **cols,
                      "contract": pa.array(["ESM24"] * n)})
    pq.write_table(table, part)
    rep = root / "reports" / f"{date}.md"
    rep.parent.mkdir(parents=True, exist_ok=True)
    rep.write_text(f"# {date}\nticks {n}\n")
    return first_seq + n


def du(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def timed(label: str, fn, mb: float) -> object:
    t = time.perf_counter()
    out = fn()
    s = time.perf_counter() - t
    print(f"  {label:<34} {s:7.2f} s   {mb / s if s else 0:8.1f} MB/s")
    return out


def bench(base: Path, url: str, days: int, ticks: int, label: str) -> None:
    root, store = base / "collect", base / "navale.duckdb"
    seq = 1
    for d in range(days):
        seq = write_day(root, d, ticks, seq)
    journal_rows(root / "collector.sqlite", 200)
    store_run(store, 200)
    mb = du(root) / 1e6 + store.stat().st_size / 1e6
    seg_mb = sum(p.stat().st_size for p in root.glob("segments/*/*.seg")) / 1e6
    print(f"{label}: {days} days x {ticks:,} ticks: {mb:,.1f} MB ({seg_mb:,.1f} MB segments, "
          f"{seg_mb / days:,.1f} MB per day)")
    target = open_target(url)
    first = timed("first run", lambda: ops.run(root, store, target), mb)
    print(f"    sent {first.sent} objects, {first.sent_bytes / 1e6:,.1f} MB stored "
          f"(segments gzip: {sum(e.object_size for e in first.snapshot.entries if e.kind == 'segment') / 1e6 / days:,.1f}"
          f" MB per day)")
    again = timed("incremental run, nothing new", lambda: ops.run(root, store, target), mb)
    print(f"    sent {again.sent}, skipped {again.skipped}")
    write_day(root, days, ticks, seq)
    mb2 = du(root) / 1e6 + store.stat().st_size / 1e6
    third = timed("incremental run, one day more", lambda: ops.run(root, store, target), mb2)
    print(f"    sent {third.sent} objects ({third.sent_bytes / 1e6:,.1f} MB), skipped {third.skipped}")
    res = timed("verify (read back, both hashes)", lambda: ops.verify(target), mb2)
    assert res.ok, res.problems
    into = base / "restored"
    rr = timed("restore into an empty dir", lambda: ops.restore(target, into), mb2)
    assert rr.ok, rr.problems


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=300, help="about this many MB of collected data (local target)")
    ap.add_argument("--ticks-per-day", type=int, default=600_000, help="ticks per segment (ES: ~0.3-1.5 M a day)")
    ap.add_argument("--s3", action="store_true", help="also on a local S3 server (moto, 127.0.0.1)")
    ap.add_argument("--s3-mb", type=float, default=60)
    args = ap.parse_args()
    per_day_mb = args.ticks_per_day * (S.FRAME.size + S.TICK_DTYPE.itemsize) * 1.45 / 1e6  # segment + partition
    print(f"gzip level {ops.GZIP_LEVEL}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory(prefix="bench-backup-") as tmp:
        base = Path(tmp)
        bench(base / "local", str(base / "local-backups"), max(1, round(args.mb / per_day_mb)),
              args.ticks_per_day, "local folder")
        shutil.rmtree(base / "local")
        if args.s3:
            import logging

            import boto3
            from moto.server import ThreadedMotoServer

            logging.getLogger("werkzeug").setLevel(logging.ERROR)
            server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
            server.start()
            host, port = server.get_host_and_port()
            endpoint = f"http://{host}:{port}"
            os.environ.update(AWS_ACCESS_KEY_ID="bench", AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1",
                              NAVALE_BACKUP_ENDPOINT_URL=endpoint)
            boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="bench")
            try:
                bench(base / "s3", "s3://bench/navale", max(1, round(args.s3_mb / per_day_mb)), args.ticks_per_day,
                      "local S3 server (moto)")
            finally:
                server.stop()


if __name__ == "__main__":
    main()
