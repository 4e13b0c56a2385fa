"""Snapshot schema v1 -> v2 (the filter group: quality_p_win, quality_threshold, quality_taken, shadow): a v1
store reads read-only with the defaults and is migrated in place when opened for writing; v1 records,
Parquet exports and journal rows read as v2."""

from __future__ import annotations

import json

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
from test_store import make_manifest, make_snapshots

from live.journal import Journal
from research.store import RunStore
from research.store import snapshots as snap

TYPES = {"string": "VARCHAR", "int8": "TINYINT", "int32": "INTEGER", "int64": "BIGINT", "float64": "DOUBLE",
         "bool": "BOOLEAN", "timestamp": "TIMESTAMPTZ"}
V1 = [f for f in snap.FIELDS if f.name not in snap.FILTER_DEFAULTS]


def _v1_store(tmp_path):
    """A store as snapshot schema v1 wrote it: the v1 table, meta version 1, one run of 3 trades."""
    path = tmp_path / "v1.duckdb"
    with RunStore(path) as s:
        s.write_run(make_manifest(tmp_path), make_snapshots(3), run_id="run-a")
    con = duckdb.connect(str(path))
    cols = ", ".join(f.name for f in V1)
    ddl = ", ".join(f"{f.name} {TYPES[f.dtype]}{'' if f.nullable else ' NOT NULL'}" for f in V1)
    con.execute(f"CREATE TABLE old AS SELECT {cols} FROM trade_snapshots")
    con.execute("DROP TABLE trade_snapshots")
    con.execute(f"CREATE TABLE trade_snapshots ({ddl}, PRIMARY KEY (run_id, trade_id))")
    con.execute(f"INSERT INTO trade_snapshots SELECT {cols} FROM old")
    con.execute("DROP TABLE old")
    con.execute("UPDATE meta SET value = '1' WHERE key = 'snapshot_schema_version'")
    con.close()
    return path


def test_v1_store_reads_read_only_then_migrates(tmp_path):
    path = _v1_store(tmp_path)
    with RunStore(path, read_only=True) as s:  # read-only: nothing changed, defaults read
        got = s.snapshots("run-a")
        assert len(got) == 3 and got["quality_p_win"].isna().all() and got["quality_taken"].all()
        assert not got["shadow"].any()
    con = duckdb.connect(str(path), read_only=True)
    assert con.execute("SELECT value FROM meta WHERE key = 'snapshot_schema_version'").fetchone()[0] == "1"
    con.close()
    with RunStore(path) as s:  # writable: migrated in place
        assert s.con.execute("SELECT value FROM meta WHERE key = 'snapshot_schema_version'").fetchone()[0] == "2"
        before = s.snapshots("run-a")
        pd.testing.assert_frame_equal(before, got)
        shadow = make_snapshots(2, run_id="run-b").assign(shadow=True, quality_taken=False, quality_p_win=0.4,
                                                          quality_threshold=0.55)
        s.write_run(make_manifest(tmp_path, params_hash="p2"), shadow, run_id="run-b")
        assert len(s.snapshots("run-b")) == 0  # shadow trades only on request
        both = s.snapshots("run-b", shadow=True)
        assert len(both) == 2 and both["shadow"].all() and (both["quality_p_win"] == 0.4).all()
    with RunStore(path, read_only=True) as s:
        assert len(s.snapshots("run-a")) == 3


def test_v1_export_and_records_read_as_v2(tmp_path):
    from research.ml.clean import clean_snapshots

    v1 = make_snapshots(3)  # a v1 record: no filter columns
    assert not set(snap.FILTER_DEFAULTS) & set(v1.columns)
    valid = snap.validate(v1)
    assert list(valid.columns) == list(snap.names())
    assert valid["quality_taken"].all() and not valid["shadow"].any() and valid["quality_p_win"].isna().all()
    ok, rej = clean_snapshots(v1, source="v1")
    assert len(ok) == 3 and rej.empty
    # a v1 Parquet export: schema metadata version 1, no filter columns
    table = snap.to_arrow(v1).drop_columns(list(snap.FILTER_DEFAULTS)).replace_schema_metadata(
        {"navale_snapshot_version": "1"})
    pq.write_table(table, tmp_path / "v1.parquet")
    back = snap.upgrade(pd.read_parquet(tmp_path / "v1.parquet"))
    assert set(snap.FILTER_DEFAULTS) <= set(back.columns)
    # a journal row written before v2 (its JSON record has no filter fields)
    j = Journal(tmp_path / "journal.sqlite")
    j.record_trades(make_snapshots(2, run_id="paper-x"))
    with j._write() as con:
        for (rid, tid, rec) in con.execute("SELECT run_id, trade_id, record FROM trades").fetchall():
            r = {k: v for k, v in json.loads(rec).items() if k not in snap.FILTER_DEFAULTS}
            con.execute("UPDATE trades SET record = ? WHERE run_id = ? AND trade_id = ?", (json.dumps(r), rid, tid))
    got = j.trades("paper-x")
    assert len(got) == 2 and got["quality_taken"].all() and not got["shadow"].any()
    assert np.isnan(got["quality_p_win"]).all() and len(j.shadow_trades()) == 0
    j.close()
