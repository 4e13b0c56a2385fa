"""Trade snapshot schema (research.store.snapshots) and the DuckDB run store (research.store)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from research import store as store_mod
from research.store import (
    RunStore,
    StoreError,
    StoreLockedError,
    build_manifest,
    make_run_id,
    provenance,
)
from research.store import snapshots as snap
from research.store.snapshots import SnapshotError

ROOT = Path(__file__).resolve().parents[3]
T0 = pd.Timestamp("2024-03-04 14:35", tz="UTC")


def make_snapshots(n: int = 3, run_id: str = "run-a") -> pd.DataFrame:
    """A valid n-row snapshot frame (row 1 has the nullable context fields null)."""
    rows = []
    for i in range(n):
        side = 1 if i % 2 == 0 else -1
        signal = T0 + pd.Timedelta(minutes=30 * i)
        entry = 4000.0 + i
        none = i == 1
        rows.append({
            "run_id": run_id, "trade_id": f"T{i}", "symbol": "ES", "contract": None if none else "ESH24",
            "mode": "backtest", "session": "rth", "side": side,
            "signal_ts": signal, "entry_ts": signal + pd.Timedelta(minutes=5),
            "exit_ts": signal + pd.Timedelta(minutes=20, microseconds=123456),
            "delta": 0.3 * side, "ball": side, "ball_lag1": 0, "ball_lag2": side, "ball_lag3": -side, "ball_lag4": 0,
            "battle": 0.45 * side, "bn_score": 0.31 * side, "status": "contested", "confidence": 0.52,
            "tc": 0.6 * side, "ref_side": 0 if none else side, "q_ref": 0.0 if none else 0.7,
            "bull_intact": True, "bear_intact": False,
            "base_width_ticks": None if none else 8.0, "base_age_bars": None if none else 12 + i,
            "dist_base_hi_ticks": None if none else 3.0, "dist_base_lo_ticks": None if none else 11.0,
            "pattern": 0.0, "ldu": False, "lud": i == 2, "cds": False,
            "atr14_ticks": None if none else 9.5, "rel_volume": None if none else 1.3,
            "ret5_ticks": None if none else 6.0, "ret15_ticks": None if none else -4.0,
            "minutes_since_open": 5.0 + 30 * i, "weekday": 0, "vix_regime": None if none else "MID",
            "order_flow": i != 0,
            "entry_price": entry, "stop_price": entry - side * 1.75, "target_price": entry + side * 3.5,
            "slippage_ticks": 1.0, "contracts": 1, "commission_usd": 4.5,
            "exit_price": entry + side * 3.5, "exit_reason": ["target", "stop", "time"][i % 3],
            "pnl_ticks": 14.0, "pnl_usd": 170.5, "r_multiple": 2.0, "mfe_ticks": 15.0, "mae_ticks": 2.0,
            "bars_held": 3, "intrabar_ambiguous": False, "same_bar_exit": False, "gap_through_stop": False,
            "pnl_usd_optimistic": 170.5,
        })
    return pd.DataFrame(rows)


def make_manifest(tmp_path: Path, params_hash: str = "p1", **kw) -> dict:
    data = tmp_path / "bars.txt"
    if not data.exists():
        data.write_bytes(b"Date,Time,Open\n2024-01-02,09:30,4000\n")
    return build_manifest(params={"stop": 7}, params_hash=params_hash, data_files=[data],
                          mode="backtest", session="rth", **kw)


EXPECTED_ORDER = (
    "run_id trade_id symbol contract mode session side signal_ts entry_ts exit_ts "
    "delta ball ball_lag1 ball_lag2 ball_lag3 ball_lag4 battle bn_score status confidence tc ref_side q_ref "
    "bull_intact bear_intact base_width_ticks base_age_bars dist_base_hi_ticks dist_base_lo_ticks pattern ldu lud "
    "cds atr14_ticks rel_volume ret5_ticks ret15_ticks minutes_since_open weekday vix_regime order_flow "
    "entry_price stop_price target_price slippage_ticks contracts commission_usd "
    "exit_price exit_reason pnl_ticks pnl_usd r_multiple mfe_ticks mae_ticks bars_held "
    "intrabar_ambiguous same_bar_exit gap_through_stop pnl_usd_optimistic quality_p_win quality_threshold quality_taken shadow"
).split()


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path / "db" / "t.duckdb") as s:
        yield s


# ---------------------------------------------------------------- schema


def test_schema_order_types_and_metadata():
    schema = snap.arrow_schema()
    assert schema.names == list(snap.names()) == EXPECTED_ORDER
    assert [f.group for f in snap.FIELDS] == ["key"] * 10 + ["context"] * 31 + ["execution"] * 6 + ["outcome"] * 8 + [
        "audit"
    ] * 4 + ["filter"] * 4
    types = {f.name: f.type for f in schema}
    assert {n for n, t in types.items() if t == pa.int8()} == {
        "side", "ball", "ball_lag1", "ball_lag2", "ball_lag3", "ball_lag4", "ref_side", "weekday"}
    assert {n for n, t in types.items() if t == pa.int32()} == {"base_age_bars", "contracts", "bars_held"}
    assert {n for n, t in types.items() if t == pa.bool_()} == {
        "bull_intact", "bear_intact", "ldu", "lud", "cds", "order_flow", "intrabar_ambiguous", "same_bar_exit",
        "gap_through_stop", "quality_taken", "shadow"}
    assert {n for n, t in types.items() if t == pa.string()} == {
        "run_id", "trade_id", "symbol", "contract", "mode", "session", "status", "vix_regime", "exit_reason"}
    assert schema.field("signal_ts").type == pa.timestamp("ns", tz="UTC")
    assert schema.field("side").type == pa.int8()
    assert schema.field("base_age_bars").type == pa.int32() and schema.field("base_age_bars").nullable
    assert not schema.field("pnl_usd").nullable
    assert schema.field("commission_usd").metadata == {b"unit": b"USD", b"group": b"execution",
                                                       b"doc": snap.FIELDS[snap.names().index("commission_usd")].doc.encode()}
    assert schema.metadata == {b"navale_snapshot_version": b"2"}
    assert snap.names("key")[-1] == "exit_ts" and snap.names("context")[0] == "delta"
    assert snap.names("context")[-1] == "order_flow" and snap.names("audit")[0] == "intrabar_ambiguous"
    assert {f.name for f in snap.FIELDS if f.nullable} == {
        "contract", "base_width_ticks", "base_age_bars", "dist_base_hi_ticks", "dist_base_lo_ticks",
        "atr14_ticks", "rel_volume", "ret5_ticks", "ret15_ticks", "vix_regime", "quality_p_win", "quality_threshold"}
    with pytest.raises(ValueError, match="unknown dtype"):
        snap.SnapshotField("x", "float32", "", "key", "")


def test_docs_table_lists_every_field():
    table = snap.docs_table()
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert [r.split("`")[1] for r in rows] == list(snap.names())
    assert all(r.count(" | ") == 4 for r in rows)  # '|' inside docs is escaped
    assert "| `pnl_usd` | float64 | USD | outcome |" in table


def test_validate_coerces_dtypes_and_order():
    raw = make_snapshots()
    shuffled = raw[list(reversed(raw.columns))].set_axis([7, 8, 9])
    shuffled["side"] = shuffled["side"].astype(float)
    shuffled["signal_ts"] = shuffled["signal_ts"].dt.tz_convert("America/New_York").dt.as_unit("us")
    shuffled["entry_ts"] = shuffled["entry_ts"].astype(str)  # ISO strings with +00:00
    out = snap.validate(shuffled)
    assert list(out.columns) == list(snap.names())
    assert list(out.index) == [0, 1, 2]
    assert out["side"].dtype == np.int8 and out["side"].tolist() == [1, -1, 1]
    assert out["contracts"].dtype == np.int32 and out["bull_intact"].dtype == bool
    assert out["base_age_bars"].dtype == "Int32" and out["base_age_bars"].isna().tolist() == [False, True, False]
    for c in ("signal_ts", "entry_ts", "exit_ts"):
        assert out[c].dtype == "datetime64[ns, UTC]", c
    assert out["signal_ts"].tolist() == raw["signal_ts"].tolist()
    assert out["entry_ts"].tolist() == raw["entry_ts"].tolist()
    assert pd.isna(out.loc[1, "contract"]) and out.loc[0, "contract"] == "ESH24"
    assert snap.to_arrow(raw).schema == snap.arrow_schema()


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("exit_reason", "tp", r"row 2 \(trade_id 'T2'\), field 'exit_reason'.*'tp' is not one of"),
        ("side", 0, r"row 2 \(trade_id 'T2'\), field 'side'.*\+1 or -1"),
        ("pnl_usd", None, r"row 2 .*field 'pnl_usd'.*null in a non-nullable"),
        ("pnl_usd", np.inf, r"row 2 .*field 'pnl_usd'.*not finite"),
        ("contracts", "two", r"row 2 .*field 'contracts'.*cannot convert 'two' to int32"),
        ("contracts", 1.5, r"row 2 .*field 'contracts'.*cannot convert 1.5"),
        ("ball", 300, r"row 2 .*field 'ball'.*cannot convert 300 to int8"),
        ("ldu", "yes", r"row 2 .*field 'ldu'.*cannot convert 'yes' to bool"),
        ("symbol", 5, r"row 2 .*field 'symbol'.*expected a string"),
        ("exit_ts", "soon", r"row 2 .*field 'exit_ts'.*cannot convert 'soon'"),
        ("exit_ts", pd.Timestamp("2500-01-01", tz="UTC").as_unit("us"), r"row 2 .*field 'exit_ts'.*cannot convert"),
        ("exit_ts", pd.Timestamp("2024-03-04 15:00"), r"row 2 .*field 'exit_ts'.*naive timestamp"),
        ("trade_id", "T0", r"row 2 \(trade_id 'T0'\), field 'trade_id'.*duplicate"),
    ],
)
def test_validate_errors_name_row_and_field(field, value, match):
    df = make_snapshots()
    df[field] = df[field].astype(object)
    df.at[2, field] = value
    with pytest.raises(SnapshotError, match=match):
        snap.validate(df)


def test_validate_rejects_naive_timestamp_column():
    df = make_snapshots()
    df["entry_ts"] = df["entry_ts"].dt.tz_localize(None)
    with pytest.raises(SnapshotError, match=r"row 0 .*field 'entry_ts'.*naive timestamp.*tz-aware"):
        snap.validate(df)


def test_validate_missing_and_extra_columns():
    with pytest.raises(SnapshotError, match="missing column.*: mae_ticks, bars_held"):
        snap.validate(make_snapshots().drop(columns=["bars_held", "mae_ticks"]))
    df = make_snapshots().assign(zz=1, aa="x")
    with pytest.raises(SnapshotError, match="unexpected column.*zz, aa"):
        snap.validate(df)
    assert list(snap.validate(df, extra="drop").columns) == list(snap.names())


def test_validate_empty_frame():
    out = snap.validate(make_snapshots().iloc[:0])
    assert len(out) == 0 and list(out.columns) == list(snap.names())
    assert out["exit_ts"].dtype == "datetime64[ns, UTC]"


# ---------------------------------------------------------------- manifest and run id


def test_make_run_id_deterministic_and_sensitive(tmp_path):
    m1 = make_manifest(tmp_path)
    m2 = make_manifest(tmp_path)
    rid = make_run_id(m1)
    assert len(rid) == 16 and int(rid, 16) >= 0
    assert make_run_id(m2) == rid
    assert make_run_id({**m1, "created_at": "2000-01-01T00:00:00+00:00"}) == rid
    assert make_run_id({**m1, "params_hash": "p2"}) != rid
    assert make_run_id({**m1, "session": "all"}) != rid
    assert make_run_id({**m1, "extra": {"bar": "5min"}}) != rid
    assert make_run_id({**m1, "git_commit": "0" * 40}) != rid
    other = tmp_path / "other.txt"
    other.write_bytes(b"different bars")
    m3 = build_manifest(params={}, params_hash="p1", data_files=[other], mode="backtest", session="rth")
    assert make_run_id(m3) != rid


def test_build_manifest_contents(tmp_path):
    m = make_manifest(tmp_path, extra={"bar": "5min"})
    f = m["data_files"][0]
    assert f["size"] == (tmp_path / "bars.txt").stat().st_size
    import hashlib

    assert f["sha256"] == hashlib.sha256((tmp_path / "bars.txt").read_bytes()).hexdigest()
    assert m["params"] == {"stop": 7} and m["params_hash"] == "p1" and m["extra"] == {"bar": "5min"}
    assert m["snapshot_schema_version"] == snap.SCHEMA_VERSION
    assert set(m["versions"]) == {"python", "numpy", "pandas", "numba", "vectorbt", "duckdb", "pyarrow"}
    assert m["versions"]["duckdb"] is not None
    assert pd.Timestamp(m["created_at"]).tzinfo is not None
    if (ROOT / ".git").exists():
        assert m["git_commit"] is not None and len(m["git_commit"]) == 40
        assert isinstance(m["git_dirty"], bool)


def test_file_sha256_streams_large_file(tmp_path):
    import hashlib

    p = tmp_path / "big.bin"
    data = os.urandom(3 * (1 << 20) + 17)
    p.write_bytes(data)
    assert store_mod.file_sha256(p) == hashlib.sha256(data).hexdigest()


def test_build_manifest_outside_git_repo(tmp_path, monkeypatch):
    outside = tmp_path / "not-a-repo"
    outside.mkdir()
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    monkeypatch.setattr(provenance, "_REPO_DIR", outside)
    m = make_manifest(tmp_path)
    assert m["git_commit"] is None and m["git_dirty"] is None
    assert len(make_run_id(m)) == 16


def test_build_manifest_without_git_binary(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    m = make_manifest(tmp_path)
    assert m["git_commit"] is None and m["git_dirty"] is None


# ---------------------------------------------------------------- store


def test_default_store_path_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path / "dd"))
    assert store_mod.default_store_path() == tmp_path / "dd" / "navale.duckdb"
    with RunStore() as s:
        assert s.path == tmp_path / "dd" / "navale.duckdb"
    assert (tmp_path / "dd" / "navale.duckdb").exists()
    monkeypatch.delenv("NAVALE_DATA_DIR")
    assert store_mod.default_store_path() == Path("data") / "navale.duckdb"


def test_round_trip(store, tmp_path):
    df = make_snapshots(run_id="ignored").drop(columns=["run_id"])
    manifest = make_manifest(tmp_path)
    rid = store.write_run(manifest, df, summary={"sharpe": np.float64(1.25), "n": np.int64(3)})
    assert rid == make_run_id(manifest)
    got = store.snapshots(rid)
    expected = snap.validate(df.assign(run_id=rid))
    pd.testing.assert_frame_equal(got, expected)
    assert got["exit_ts"].dt.tz is not None and str(got["exit_ts"].dt.tz) == "UTC"
    assert got.loc[0, "exit_ts"] == T0 + pd.Timedelta(minutes=20, microseconds=123456)
    assert got["base_age_bars"].isna().tolist() == [False, True, False]
    assert got["vix_regime"].isna().tolist() == [False, True, False]

    runs = store.runs()
    assert runs["run_id"].tolist() == [rid] and runs.loc[0, "n_trades"] == 3
    assert str(runs["created_at"].dt.tz) == "UTC"
    assert runs.loc[0, "created_at"] == pd.Timestamp(manifest["created_at"])
    assert runs.loc[0, "git_commit"] == manifest["git_commit"] and runs.loc[0, "params_hash"] == "p1"
    assert store.manifest(rid) == {**manifest, "run_id": rid}
    assert store.summary(rid) == {"sharpe": 1.25, "n": 3}


def test_rewrite_same_run_is_idempotent(store, tmp_path):
    m = make_manifest(tmp_path)
    rid = store.write_run(m, make_snapshots(run_id=make_run_id(m)))
    assert store.write_run(make_manifest(tmp_path), make_snapshots(2, run_id=rid)) == rid
    assert store.write_run(make_manifest(tmp_path), make_snapshots(3, run_id=rid)) == rid
    assert len(store.snapshots(rid)) == 3 and len(store.snapshots()) == 3
    assert len(store.runs()) == 1 and store.runs().loc[0, "n_trades"] == 3


def test_two_runs_kept_apart(store, tmp_path):
    a = store.write_run(make_manifest(tmp_path, "p1"), make_snapshots(3).drop(columns="run_id"))
    b = store.write_run(make_manifest(tmp_path, "p2"), make_snapshots(2).drop(columns="run_id"))
    assert a != b
    assert len(store.snapshots(a)) == 3 and len(store.snapshots(b)) == 2 and len(store.snapshots()) == 5
    assert store.delete_run(a) is True and store.delete_run(a) is False
    assert store.runs()["run_id"].tolist() == [b] and len(store.snapshots()) == 2
    with pytest.raises(StoreError, match="no run"):
        store.snapshots(a)
    with pytest.raises(StoreError, match="no run"):
        store.manifest(a)


def test_run_with_no_trades(store, tmp_path):
    rid = store.write_run(make_manifest(tmp_path), make_snapshots().iloc[:0])
    got = store.snapshots(rid)
    assert len(got) == 0 and list(got.columns) == list(snap.names())
    assert store.runs().loc[0, "n_trades"] == 0


def test_failed_write_leaves_stored_run_untouched(store, tmp_path):
    m = make_manifest(tmp_path)
    rid = store.write_run(m, make_snapshots().drop(columns="run_id"), summary={"v": 1})
    before = store.snapshots(rid)
    bad = make_snapshots(run_id=rid)
    bad.loc[1, "exit_reason"] = "tp"
    with pytest.raises(SnapshotError, match="row 1 .*exit_reason"):
        store.write_run(m, bad, summary={"v": 2})
    pd.testing.assert_frame_equal(store.snapshots(rid), before)
    assert store.summary(rid) == {"v": 1}
    with pytest.raises(SnapshotError, match="differs from the run id"):
        store.write_run(m, make_snapshots(run_id="someone-else"))
    assert len(store.snapshots()) == 3


def test_failure_inside_transaction_rolls_back(store, tmp_path, monkeypatch):
    m = make_manifest(tmp_path)
    rid = store.write_run(m, make_snapshots().drop(columns="run_id"), summary={"v": 1})
    before_snaps, before_runs = store.snapshots(), store.runs()

    def boom(self, table):
        raise RuntimeError("disk full")

    monkeypatch.setattr(RunStore, "_insert_snapshots", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        store.write_run(m, make_snapshots(2).drop(columns="run_id"), summary={"v": 2})
    pd.testing.assert_frame_equal(store.snapshots(), before_snaps)
    pd.testing.assert_frame_equal(store.runs(), before_runs)
    assert store.summary(rid) == {"v": 1}
    monkeypatch.undo()
    store.write_run(m, make_snapshots(2).drop(columns="run_id"))  # the connection is usable afterwards
    assert len(store.snapshots(rid)) == 2


def test_data_survives_reopen_and_read_only(tmp_path):
    path = tmp_path / "s.duckdb"
    with RunStore(path) as s:
        rid = s.write_run(make_manifest(tmp_path), make_snapshots().drop(columns="run_id"))
    with RunStore(path, read_only=True) as s:
        assert len(s.snapshots(rid)) == 3
    with pytest.raises(StoreError, match="no store"):
        RunStore(tmp_path / "absent.duckdb", read_only=True)


def test_export_parquet_round_trip(store, tmp_path):
    rid = store.write_run(make_manifest(tmp_path), make_snapshots().drop(columns="run_id"))
    store.write_run(make_manifest(tmp_path, "p2"), make_snapshots(2).drop(columns="run_id"))
    out = store.export_parquet(tmp_path / "exp" / "snaps.parquet", run_id=rid)
    assert out == tmp_path / "exp" / "snaps.parquet"
    assert [p.name for p in out.parent.iterdir()] == ["snaps.parquet"]  # no temp file left
    table = pq.read_table(out)
    meta = dict(table.schema.metadata)
    manifests = json.loads(meta.pop(b"navale_manifests"))  # the run's manifest travels with its snapshots
    assert list(manifests) == [rid] and manifests[rid]["params_hash"] == store.manifest(rid)["params_hash"]
    assert table.schema.with_metadata(meta).equals(snap.arrow_schema(), check_metadata=True)
    assert table.schema.field("pnl_ticks").metadata[b"unit"] == b"ticks"
    pd.testing.assert_frame_equal(snap.validate(table.to_pandas()), store.snapshots(rid))
    every = pq.read_table(store.export_parquet(tmp_path / "all.parquet"))
    assert every.num_rows == 5 and len(json.loads(every.schema.metadata[b"navale_manifests"])) == 2


def test_newer_schema_version_refused(tmp_path):
    path = tmp_path / "v.duckdb"
    with RunStore(path) as s:
        s.con.execute("UPDATE meta SET value = '99' WHERE key = 'snapshot_schema_version'")
    with pytest.raises(StoreError, match="version 99, newer than this code's version 2"):
        RunStore(path)


def test_locked_by_other_process(tmp_path):
    path = tmp_path / "locked.duckdb"
    RunStore(path).close()
    code = (
        "import sys; from research.store import RunStore; s = RunStore(sys.argv[1]); "
        "print('open', flush=True); sys.stdin.read()"
    )
    holder = subprocess.Popen([sys.executable, "-c", code, str(path)], cwd=ROOT, stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "open"
        said: list[str] = []
        with pytest.raises(StoreLockedError, match=rf"in use by another process \(PID {holder.pid}\).*0.3 s"):
            RunStore(path, timeout=0.3, on_wait=said.append)
        assert said == [f"waiting for the store {path} held by PID {holder.pid} (timeout 0.3 s)..."]
        with pytest.raises(StoreLockedError):  # a reader waits too, then gives up
            RunStore(path, read_only=True, timeout=0.2, on_wait=None)
    finally:
        holder.communicate(timeout=30)  # closes its stdin: it exits
    with RunStore(path) as s:  # free again once the other process exits
        assert s.runs().empty


def _promotion_row(pid: str = "p-1", sweep: str = "s-1") -> dict:
    return {"promotion_id": pid, "sweep_id": sweep, "created": pd.Timestamp("2024-01-02", tz="UTC").to_pydatetime(),
            "passed": False, "thresholds": "{}", "figures": "{}", "params": None, "params_hash": None,
            "reasons": "[]"}


def test_promotions_are_append_only(store):
    import duckdb

    assert store.promotions().empty
    assert store.write_promotion(_promotion_row()) == "p-1"
    store.write_promotion(_promotion_row("p-2", "s-2"))
    with pytest.raises(duckdb.ConstraintException):  # the same id again: refused, nothing replaced
        store.write_promotion({**_promotion_row(), "passed": True})
    rows = store.promotions()
    assert list(rows["promotion_id"]) == ["p-1", "p-2"] and not rows["passed"].any()
    assert list(store.promotions("s-2")["promotion_id"]) == ["p-2"]
    assert str(rows["created"].dt.tz) == "UTC"
    with pytest.raises(StoreError, match="lacks reasons"):
        store.write_promotion({k: v for k, v in _promotion_row("p-3").items() if k != "reasons"})


def test_store_written_before_the_promotions_table_gains_it(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    RunStore(path).close()
    con = duckdb.connect(str(path))
    con.execute("DROP TABLE promotions")
    con.close()
    with RunStore(path, read_only=True) as ro:  # a reader sees no decisions and changes nothing
        assert ro.promotions().empty
    with RunStore(path) as rw:  # a writer adds the table with the store's schema
        rw.write_promotion(_promotion_row())
        assert list(rw.promotions()["promotion_id"]) == ["p-1"]
