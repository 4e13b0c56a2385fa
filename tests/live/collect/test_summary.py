"""The daily summary: every figure from a collection directory built by hand (segment frames, a collector
journal, a trader journal), the same figures from the Parquet partitions, the reports, the store row and
``navale collect summary``."""

from __future__ import annotations

import json
import math

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from live_helpers import trade_row

from live.collect import layout
from live.collect.summary import (
    SummaryError,
    daily_summary,
    date_bounds_ns,
    write_daily_summary,
)
from live.journal import Journal
from research.cli import main
from research.data import segments as seg
from research.store.runs import RunStore

DATE = "2024-03-05"  # a Tuesday: the session runs 2024-03-04 17:00 CT (23:00 UTC) to 2024-03-05 16:00 CT
S = 1_000_000_000
START, END = date_bounds_ns(DATE)
T0 = START + 3600 * S  # 18:00 CT
NAN = math.nan


def ticks() -> list[tuple]:
    """(ts, price, size, side, num_trades, bid, ask, seq, contract): 6 ticks, a roll to ESM4 before the last two."""
    out = []
    for k in range(6):
        out.append((T0 + k * S, 5000.0 + 0.25 * k, 1 + k, 1 if k % 2 else -1, 1, NAN if k == 0 else 4999.75 + 0.25 * k,
                    NAN if k == 0 else 5000.25 + 0.25 * k, k + 1, "ESH4" if k < 4 else "ESM4"))
    return out


def bars() -> list[tuple]:
    return [(T0 + k * 60 * S, 5000.0, 5001.0, 4999.0, 5000.5, 10 + k, 5, 5 + k, 3, "ESH4") for k in range(3)]


GAP = (T0 + 10 * S, T0 + 10 * S + 90 * S)  # 1.5 minutes
GAP2 = (T0 + 300 * S, T0 + 300 * S + 30 * S)  # 0.5 minutes
EVENTS = [
    {"ts_ns": T0 + 2 * S, "kind": "quality.off_tick", "level": "warning", "detail": "5000.1 is not a multiple of tick 0.25"},
    {"ts_ns": T0 + 3 * S, "kind": "quality.off_tick", "level": "warning", "detail": "5000.2 is not a multiple of tick 0.25"},
    {"ts_ns": T0 + 4 * S, "kind": "quality.gap", "level": "info", "detail": "3 bar(s) missing"},
    {"ts_ns": T0 + 5 * S, "kind": "disconnect", "level": "warning", "detail": "feed lost"},
    {"ts_ns": T0 + 6 * S, "kind": "connect", "level": "info", "detail": "feed back"},
]


def build_segment(root, sealed: bool = True, torn: bytes = b"") -> None:
    path = layout.segment_path(root, "ES", DATE)
    path.parent.mkdir(parents=True, exist_ok=True)
    buf = bytearray(seg.header_frame("ES", DATE, "synthetic", T0, None))
    contract = None
    tk, br = ticks(), bars()
    for t in tk:
        if t[8] != contract:
            contract = t[8]
            buf += seg.json_frame(seg.CONTRACT, {"contract": contract})
        buf += seg.tick_frame(*t[:8])
        if t[7] == 2:
            buf += seg.json_frame(seg.GAP, {"start_ns": GAP[0], "end_ns": GAP[1], "reason": "feed down"})
            buf += seg.json_frame(seg.GAP, {"start_ns": GAP2[0], "end_ns": GAP2[1], "reason": "stale"})
        if t[7] == 3:
            buf += seg.json_frame(seg.CONTRACT, {"contract": "ESH4"})
            for b in br:
                buf += seg.bar_frame(*b[:9])
            buf += seg.json_frame(seg.CONTRACT, {"contract": contract})
            for e in EVENTS:
                buf += seg.json_frame(seg.EVENT, e)
            buf += seg.json_frame(seg.CHECKPOINT, {"seq": 3, "token": "x", "ts_ns": t[0], "wall_ns": 0})
    if sealed:
        buf += seg.json_frame(seg.SEAL, {"records": 6, "last_seq": 6})
    path.write_bytes(bytes(buf) + torn)


def build_journals(root) -> None:
    with Journal(layout.journal_path(root)) as j:
        j.record_risk_event(EVENTS[3]["kind"], EVENTS[3]["detail"], EVENTS[3]["ts_ns"], EVENTS[3]["level"])  # also in the segment
        j.record_risk_event("restart", "collector restarted after a crash", T0 + 7 * S, "warning")  # journal only
        j.record_risk_event("restart", "the day before", START - 60 * S, "warning")  # another trading date
    rows = []
    for i, (exit_ns, pnl, sym) in enumerate([(T0 + 600 * S, 120.5, "ES"), (T0 + 1200 * S, -40.25, "ES"),
                                             (T0 + 1800 * S, 50.0, "ES"), (END + 600 * S, 999.0, "ES"),
                                             (T0 + 900 * S, 777.0, "NQ")]):
        r = trade_row(i, run_id="collect-test")
        r.update(symbol=sym, contract="ESH4" if sym == "ES" else "NQH4", pnl_usd=pnl, mode="data_collection",
                 entry_ts=pd.Timestamp(exit_ns - 300 * S, tz="UTC"), signal_ts=pd.Timestamp(exit_ns - 360 * S, tz="UTC"),
                 exit_ts=pd.Timestamp(exit_ns, tz="UTC"))
        rows.append(r)
    with Journal(layout.trader_dir(root) / "journal.sqlite") as j:
        j.record_trades(rows)


def expected_counts() -> dict:
    return {"symbol": "ES", "date": DATE, "ticks": 6, "bars": 3, "gaps": 2, "gap_minutes": 2.0,
            "quality": {"gap": 1, "off_tick": 2}, "findings": 3,
            "feed_events": {"connect": 1, "disconnect": 1, "restart": 1}, "events": 3,
            "trades": 3, "wins": 2, "net_usd": 130.25, "contracts": ["ESH4", "ESM4"],
            "first_ts": pd.Timestamp(T0, tz="UTC").isoformat().replace("+00:00", "Z"),
            "last_ts": pd.Timestamp(T0 + 120 * S, tz="UTC").isoformat().replace("+00:00", "Z")}


def test_summary_from_a_segment(tmp_path):
    build_segment(tmp_path, torn=b"\x05\x00\x00")
    build_journals(tmp_path)
    s = daily_summary(tmp_path, "ES", DATE)
    assert {k: s[k] for k in expected_counts()} == expected_counts()
    assert s["source"] == "segment" and s["sealed"] and s["torn_bytes"] == 3 and s["feed_source"] == "synthetic"
    size = layout.segment_path(tmp_path, "ES", DATE).stat().st_size
    assert s["disk_bytes"] == {"segment": size, "parquet": 0, "total": size}
    json.dumps(s, allow_nan=False)  # JSON-safe


def write_partitions(root) -> int:
    """The Parquet partitions of the same records (the contract's schemas); their total size."""
    tk, br = ticks(), bars()
    utc = pa.timestamp("ns", tz="UTC")
    tables = {
        "ticks": pa.table({"ts": pa.array([t[0] for t in tk], utc), "price": [t[1] for t in tk],
                           "size": pa.array([t[2] for t in tk], pa.int64()), "side": pa.array([t[3] for t in tk], pa.int8()),
                           "num_trades": pa.array([t[4] for t in tk], pa.int64()), "bid": [t[5] for t in tk],
                           "ask": [t[6] for t in tk], "seq": pa.array([t[7] for t in tk], pa.int64()),
                           "contract": [t[8] for t in tk]}),
        "bars": pa.table({"ts": pa.array([b[0] for b in br], utc), **{c: [b[i + 1] for b in br] for i, c in
                          enumerate(("open", "high", "low", "close"))},
                          **{c: pa.array([b[i + 5] for b in br], pa.int64()) for i, c in
                             enumerate(("volume", "bid_volume", "ask_volume", "num_trades"))},
                          "contract": [b[9] for b in br]}),
        "events": pa.table({"ts": pa.array([e["ts_ns"] for e in EVENTS] + [GAP[0], GAP2[0]], utc),
                            "kind": [e["kind"] for e in EVENTS] + ["gap", "gap"],
                            "level": [e["level"] for e in EVENTS] + ["warning", "warning"],
                            "detail": [e["detail"] for e in EVENTS] + ["feed down", "stale"],
                            "end_ts": pa.array([None] * len(EVENTS) + [GAP[1], GAP2[1]], utc)}),
    }
    total = 0
    for name, table in tables.items():
        p = layout.partition_path(root, name, "ES", DATE)
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, p)
        total += p.stat().st_size
    return total


def test_summary_from_parquet_partitions_gives_the_same_figures(tmp_path):
    build_journals(tmp_path)
    size = write_partitions(tmp_path)
    s = daily_summary(tmp_path, "ES", DATE)
    assert {k: s[k] for k in expected_counts()} == expected_counts()
    assert s["source"] == "parquet" and s["disk_bytes"] == {"segment": 0, "parquet": size, "total": size}
    # with the segment beside them, the segment is read and both count on disk
    build_segment(tmp_path)
    s2 = daily_summary(tmp_path, "ES", DATE)
    assert s2["source"] == "segment" and {k: s2[k] for k in expected_counts()} == expected_counts()
    assert s2["disk_bytes"]["total"] == size + layout.segment_path(tmp_path, "ES", DATE).stat().st_size


def test_open_segment_without_journals(tmp_path):
    build_segment(tmp_path, sealed=False)
    s = daily_summary(tmp_path, "ES", DATE)
    assert not s["sealed"] and s["ticks"] == 6 and s["trades"] == 0 and s["feed_events"] == {"connect": 1, "disconnect": 1}


def test_reports_and_store_row(tmp_path):
    build_segment(tmp_path)
    build_journals(tmp_path)
    db = tmp_path / "navale.duckdb"
    s = daily_summary(tmp_path, "ES", DATE)
    paths = write_daily_summary(tmp_path, s, store_path=db)
    md = paths["md"].read_text()
    page = paths["html"].read_text()
    assert paths["md"] == tmp_path / "reports" / "ES" / f"{DATE}.md"
    assert paths["html"] == tmp_path / "reports" / "ES" / f"{DATE}.html"
    for text in ("| Ticks | 6 |", "| Bars | 3 |", "| Gaps | 2 (2 min) |", "| off_tick | 2 |", "| restart | 1 |",
                 "3, 2 won (67%), net $130.25"):
        assert text in md
    assert page.startswith("<!doctype html>") and "<td>6</td>" in page and "off_tick" in page and "$130.25" in page
    # the row, replaced (not duplicated) when the summary is written again
    write_daily_summary(tmp_path, {**s, "ticks": 7}, store_path=db)
    with RunStore(db, read_only=True) as rs:
        rows = rs.collect_summaries("ES")
    assert len(rows) == 1
    r = rows.iloc[0]
    assert (r["symbol"], str(r["date"])[:10], r["ticks"], r["bars"], r["gaps"], r["gap_minutes"], r["findings"],
            r["feed_events"], r["trades"], r["wins"], r["net_usd"]) == ("ES", DATE, 7, 3, 2, 2.0, 3, 3, 3, 2, 130.25)
    assert r["disk_bytes"] == s["disk_bytes"]["total"] and r["first_ts"] == pd.Timestamp(T0, tz="UTC")
    assert json.loads(r["summary"])["quality"] == {"gap": 1, "off_tick": 2}


def test_no_data_is_a_clear_error(tmp_path):
    with pytest.raises(SummaryError, match=r"no data for ES on 2024-03-06 in .*no segment"):
        daily_summary(tmp_path, "ES", "2024-03-06")
    with pytest.raises(SummaryError, match="expected YYYY-MM-DD"):
        daily_summary(tmp_path, "ES", "05/03/2024")


def test_cli_collect_summary(tmp_path, capsys):
    build_segment(tmp_path)
    build_journals(tmp_path)
    db = tmp_path / "s.duckdb"
    assert main(["collect", "summary", DATE, "--dir", str(tmp_path), "--store", str(db), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["ticks"] == 6 and out["net_usd"] == 130.25 and out["written"]["store"] == str(db)
    assert main(["collect", "summary", DATE, "--dir", str(tmp_path), "--no-store"]) == 0
    text = capsys.readouterr().out
    assert "Ticks" in text and "off_tick 2" in text
    assert main(["collect", "summary", "2024-03-06", "--dir", str(tmp_path), "--no-store"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: no data for ES on 2024-03-06") and "\n" not in err
