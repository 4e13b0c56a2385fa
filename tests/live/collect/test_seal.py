"""finalize_segment: partitions then manifest, deterministic and idempotent; refuses a segment that is not sealed."""

from __future__ import annotations

import json
import math

import duckdb
import pyarrow.parquet as pq
import pytest
from segment_builder import segment_bytes, write_chain

from live.collect.layout import manifest_path, partition_path
from live.collect.seal import finalize_segment, seal_frame_payload
from research.data import segments as sg


def test_finalize_writes_partitions_matching_the_segment_and_a_manifest(tmp_path):
    paths = write_chain(tmp_path)
    m = json.loads(manifest_path(paths[1]).read_text())
    assert (m["format"], m["version"], m["segment"], m["symbol"], m["date"]) == (
        "navale-segment-manifest", 1, "2024-03-05.seg", "ES", "2024-03-05")
    assert m["counts"]["tick"] == 60 and m["counts"]["bar"] == 3 and m["counts"]["seal"] == 1
    assert (m["first_seq"], m["last_seq"]) == (61, 120)
    assert m["bytes"] == paths[1].stat().st_size
    first = json.loads(manifest_path(paths[0]).read_text())
    assert m["prev"] == {"segment": "2024-03-04.seg", "last_seq": 60, "sha256": first["sha256"]}
    assert first["prev"] is None
    data = sg.read_segment(paths[1])
    ticks = pq.ParquetFile(partition_path(tmp_path, "ticks", "ES", "2024-03-05")).read()
    assert ticks.column("seq").to_pylist() == list(range(61, 121))
    assert ticks.column("price").to_pylist() == data.ticks["price"].tolist()
    assert ticks.column("contract").to_pylist() == ["ESH4"] * 60
    assert str(ticks.schema.field("ts").type) == "timestamp[ns, tz=UTC]"
    assert math.isnan(ticks.column("bid").to_pylist()[0]) and ticks.column("bid").to_pylist()[1] == data.ticks["bid"][1]
    events = pq.ParquetFile(partition_path(tmp_path, "events", "ES", "2024-03-05")).read().to_pylist()
    assert [e["kind"] for e in events] == ["connect", "gap"]
    assert events[1]["detail"] == "feed down" and events[1]["end_ts"] is not None and events[0]["end_ts"] is None
    for table, part in m["partitions"].items():
        assert (tmp_path / part["path"]).exists() and part["rows"] == {"ticks": 60, "bars": 3, "events": 2}[table]


def test_finalize_is_deterministic_and_idempotent(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    pa_ = write_chain(a)
    write_chain(b)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files)
    before = {f: (a / f).read_bytes() for f in files}
    manifest_path(pa_[2]).unlink()  # a crash between the SEAL frame and the manifest
    partition_path(a, "bars", "ES", "2024-03-06").unlink()
    again = finalize_segment(a, pa_[2])
    finalize_segment(a, pa_[2])
    assert {f: (a / f).read_bytes() for f in files} == before
    assert again == json.loads(manifest_path(pa_[2]).read_text())


def _one(tmp_path, blob: bytes):
    p = tmp_path / "segments" / "ES" / "2024-03-04.seg"
    p.parent.mkdir(parents=True)
    p.write_bytes(blob)
    return p


@pytest.mark.parametrize("damage, message", [
    (lambda b: b, "no SEAL record"),
    (lambda b: b + b"\x01\x02", "byte"),
    (lambda b: b[:-3], "partial record"),
    (lambda b: b + sg.json_frame(sg.EVENT, {"ts_ns": 1, "kind": "x", "level": "info", "detail": ""}), "follow the SEAL"),
])
def test_finalize_refuses_a_segment_that_is_not_whole_and_sealed(tmp_path, damage, message):
    sealed = message != "no SEAL record"
    p = _one(tmp_path, damage(segment_bytes("ES", "2024-03-04", 0, 1, 10, prev=None, seal=sealed)))
    with pytest.raises(sg.SegmentError, match=message) as exc:
        finalize_segment(tmp_path, p)
    assert "\n" not in str(exc.value) and str(p) in str(exc.value)
    assert not manifest_path(p).exists() and not (tmp_path / "parquet").exists()


def test_seal_counts_that_differ_from_the_records_are_refused(tmp_path):
    blob = segment_bytes("ES", "2024-03-04", 0, 1, 10, prev=None, seal=False)
    data_counts = {"header": 1, "contract": 1, "tick": 9}
    p = _one(tmp_path, blob + sg.json_frame(sg.SEAL, {"counts": data_counts, "last_seq": 10, "sealed_ns": 1}))
    with pytest.raises(sg.SegmentError, match="tick 10 != 9"):
        finalize_segment(tmp_path, p)


def test_seal_frame_payload_of_an_open_segment(tmp_path):
    p = _one(tmp_path, segment_bytes("ES", "2024-03-04", 0, 5, 10, prev=None, seal=False))
    payload = seal_frame_payload(sg.read_segment(p), sealed_ns=7)
    assert (payload["first_seq"], payload["last_seq"], payload["sealed_ns"]) == (5, 14, 7)
    assert payload["counts"]["tick"] == 10 and "seal" not in payload["counts"]
    with p.open("ab") as fh:
        fh.write(sg.json_frame(sg.SEAL, payload))
    assert finalize_segment(tmp_path, p)["sealed_ns"] == 7


def test_duckdb_reads_the_partitions_with_their_partition_columns(tmp_path):
    write_chain(tmp_path, dates=("2024-03-04", "2024-03-05"))
    write_chain(tmp_path, symbol="MES", dates=("2024-03-04",), n_ticks=5)
    glob = (tmp_path / "parquet" / "ticks").as_posix() + "/**/*.parquet"
    rows = duckdb.sql(f"select symbol, cast(date as varchar) d, count(*) n, min(seq) lo, max(seq) hi from "
                      f"read_parquet('{glob}', hive_partitioning=true) group by all order by all").fetchall()
    assert rows == [("ES", "2024-03-04", 60, 1, 60), ("ES", "2024-03-05", 60, 61, 120), ("MES", "2024-03-04", 5, 1, 5)]
    seq = duckdb.sql(f"select seq, price from read_parquet('{glob}', hive_partitioning=true) where symbol='ES' "
                     "order by seq").fetchall()
    expected = []
    for p in sorted((tmp_path / "segments" / "ES").glob("*.seg")):
        d = sg.read_segment(p)
        expected += list(zip(d.ticks["seq"].tolist(), d.ticks["price"].tolist()))
    assert seq == expected
