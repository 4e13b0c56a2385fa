"""A small but real collection directory for the backup tests and benchmark: segment files written with
research.data.segments (sealed ones with a manifest, one open), Parquet partitions, reports, the collector's
SQLite journal (live.journal.Journal) with rows, a trader journal, and a DuckDB run store with a run."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from research.data import segments as S

DAY_NS = 86_400_000_000_000
T0 = 1_709_562_600_000_000_000  # 2024-03-04 14:30 UTC


def write_segment(path: Path, date: str, n_ticks: int, first_seq: int, sealed: bool, seed: int = 0) -> int:
    """A segment of ``n_ticks`` ticks (a manifest beside it when ``sealed``); the next seq."""
    rng = np.random.default_rng(seed)
    out = [S.header_frame("ES", date, "synthetic", T0, None), S.json_frame(S.CONTRACT, {"contract": "ESM24"})]
    price = 5000.0
    for i in range(n_ticks):
        price += 0.25 * int(rng.integers(-1, 2))
        out.append(S.tick_frame(T0 + i * 1_000_000, price, int(rng.integers(1, 20)), int(rng.integers(-1, 2)), 1,
                                price - 0.25, price, first_seq + i))
        if i % 1000 == 999:
            out.append(S.json_frame(S.CHECKPOINT, {"seq": first_seq + i, "token": {"offset": i * 40},
                                                   "ts_ns": T0 + i, "wall_ns": 1}))
    out.append(S.json_frame(S.GAP, {"start_ns": T0, "end_ns": T0 + 5, "reason": "feed down"}))
    if sealed:
        out.append(S.json_frame(S.SEAL, {"records": n_ticks, "last_seq": first_seq + n_ticks - 1}))
    data = b"".join(out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    if sealed:
        manifest = {"sha256": hashlib.sha256(data).hexdigest(), "records": n_ticks, "source": "synthetic",
                    "first_ns": T0, "last_ns": T0 + n_ticks}
        path.with_name(f"{date}.manifest.json").write_text(json.dumps(manifest))
    return first_seq + n_ticks


def write_partition(root: Path, table: str, date: str, n: int, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    ts = pa.array(np.arange(n, dtype="int64") * 1_000_000 + T0, pa.timestamp("ns", tz="UTC"))
    if table == "ticks":
        cols = {"ts": ts, "price": pa.array(5000 + 0.25 * rng.integers(-20, 20, n).astype(float)),
                "size": pa.array(rng.integers(1, 20, n)), "side": pa.array(rng.integers(-1, 2, n).astype("int8")),
                "num_trades": pa.array(np.ones(n, dtype="int64")), "bid": pa.array(np.full(n, math.nan)),
                "ask": pa.array(np.full(n, math.nan)), "seq": pa.array(np.arange(1, n + 1)),
                "contract": pa.array(["ESM24"] * n)}
    else:
        cols = {"ts": ts, "kind": pa.array(["gap"] * n), "level": pa.array(["warning"] * n),
                "detail": pa.array(["feed down"] * n), "end_ts": ts}
    path = root / "parquet" / table / "symbol=ES" / f"date={date}" / "part-0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.table(cols), path)
    return path


def journal_rows(path: Path, n: int) -> None:
    from live_helpers import trade_row

    from live.journal import Journal

    with Journal(path) as j:
        for i in range(n):
            j.record_risk_event("gap", f"feed down {i}", T0 + i, "warning")
            j.heartbeat(T0 + i, {"mode": "data_collection", "symbol": "ES", "position": 0})
        j.record_trades([trade_row(i, run_id="collect-test") for i in range(n)])


def store_run(path: Path, n: int = 3) -> str:
    import pandas as pd
    from live_helpers import trade_row

    from research.store import RunStore

    rows = pd.DataFrame([trade_row(i, run_id="collect-run") for i in range(n)])
    with RunStore(path, timeout=5) as store:
        return store.write_run({"mode": "data_collection", "params_hash": "p1"}, rows, run_id="collect-run")


def build_root(root: Path, store: Path, *, days: int = 2, ticks: int = 2_000) -> dict:
    """A collection dir at ``root`` and a run store at ``store``: ``days`` sealed segments and one open."""
    seq = 1
    dates = [f"2024-03-{4 + d:02d}" for d in range(days + 1)]
    for d, date in enumerate(dates):
        sealed = d < days
        seq = write_segment(root / "segments" / "ES" / f"{date}.seg", date, ticks, seq, sealed, seed=d)
        if sealed:
            write_partition(root, "ticks", date, ticks, seed=d)
            write_partition(root, "events", date, 3, seed=d)
            rep = root / "reports" / f"{date}.md"
            rep.parent.mkdir(parents=True, exist_ok=True)
            rep.write_text(f"# {date}\nticks: {ticks}\n")
    (root / "segments" / "ES" / f"{dates[0]}.seg.torn-1").write_bytes(b"\x07\x00\x00\x00torn")
    journal_rows(root / "collector.sqlite", 5)
    journal_rows(root / "trader" / "journal.sqlite", 3)
    run_id = store_run(store)
    return {"dates": dates, "open": f"segments/ES/{dates[-1]}.seg", "run_id": run_id}
