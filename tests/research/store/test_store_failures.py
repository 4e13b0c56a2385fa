"""No run is lost to the store: concurrent writers, a held reader, a full disk, a read-only folder,
a damaged store file. Each failure leaves the outputs, a pending bundle that `navale runs import`
adds, the earlier runs, and one `error:` line."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
from mounts import mount_tmpfs, umount

from research.cli import main
from research.store import (
    RunsNotStoredError,
    RunStore,
    StoredRun,
    StoreError,
    StoreWriteError,
    build_manifest,
    import_pending,
    lock_timeout,
    store_runs,
)
from research.store.pending import (
    RUN_SUFFIX,
    find_pending,
    pending_dir,
    read_pending_run,
)

ROOT = Path(__file__).resolve().parents[3]
NAVALE = [sys.executable, "-c", "import sys; from research.cli import main; sys.exit(main())"]
SHORT = ["--from", "2024-03-04", "--to", "2024-03-06"]  # two sessions of the synthetic set: a quick backtest
STORE_FAILED = 3


@pytest.fixture(scope="module")
def synthetic(data_dir) -> Path:
    """The embedded synthetic data file (generated once per test session)."""
    from research.data import default_dataset

    return default_dataset()


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NAVALE_DATA_DIR": str(data)}
    env.pop("NAVALE_STORE_TIMEOUT", None)
    return {**env, **extra}


def _error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("error:")]


def _assert_one_line_error(text: str, *needles: str) -> str:
    errors = _error_lines(text)
    assert len(errors) == 1, text
    assert "Traceback" not in text and "rollback" not in text.lower()
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def _stored_trades(store: Path) -> dict[str, int]:
    with RunStore(store, read_only=True) as s:
        return {r.run_id: int(r.n_trades) for r in s.runs().itertuples()}


def _backtest(synthetic: Path, out: Path, capsys, *args: str) -> tuple[int, str]:
    """`navale backtest` in this process (the store's folder from $NAVALE_DATA_DIR); (exit code, output)."""
    rc = main(["backtest", str(synthetic), *SHORT, "--out", str(out), *args])
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


@contextlib.contextmanager
def _holder(store: Path, read_only: bool):
    """A separate process holding ``store`` open until the block ends."""
    code = ("import sys; from research.store import RunStore; "
            "s = RunStore(sys.argv[1], read_only=sys.argv[2] == 'ro'); print('open', flush=True); sys.stdin.read()")
    p = subprocess.Popen([sys.executable, "-c", code, str(store), "ro" if read_only else "rw"], cwd=ROOT,
                         env=_env(store.parent), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout.readline().strip() == "open"
        yield p
    finally:
        p.communicate(timeout=60)


# ---------------------------------------------------------------- concurrent writers, held reader


def test_four_concurrent_backtests_all_stored(tmp_path, synthetic):
    data = tmp_path / "data"
    procs = []
    for i in range(4):
        out = tmp_path / f"out{i}"
        procs.append((out, subprocess.Popen(
            [*NAVALE, "backtest", str(synthetic), "--from", "2024-03-04", "--to", f"2024-03-0{6 + i % 2}",
             "--run-id", f"w{i}", "--out", str(out)],
            cwd=tmp_path, env=_env(data), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)))
    results = [(out, *p.communicate(timeout=600)) for out, p in procs]
    for _out, _stdout, stderr in results:
        assert "Traceback" not in stderr, stderr
    assert [p.returncode for _o, p in procs] == [0, 0, 0, 0], [r[2][-500:] for r in results]
    stored = _stored_trades(data / "navale.duckdb")
    assert sorted(stored) == ["w0", "w1", "w2", "w3"]
    for i, (out, *_rest) in enumerate(results):
        assert stored[f"w{i}"] == len(pd.read_parquet(out / "trades.parquet"))
    assert not find_pending(store_path=data / "navale.duckdb")


def test_held_reader_makes_the_writer_wait_then_it_succeeds(tmp_path, synthetic):
    data = tmp_path / "data"
    store = data / "navale.duckdb"
    RunStore(store).close()
    err = tmp_path / "writer.err"
    with _holder(store, read_only=True), err.open("w") as fh:
        writer = subprocess.Popen([*NAVALE, "backtest", str(synthetic), *SHORT, "--out", str(tmp_path / "out")],
                                  cwd=tmp_path, env=_env(data), stdout=subprocess.PIPE, stderr=fh, text=True)
        deadline = time.monotonic() + 300  # a guard against a hang, not a timing assertion
        while "waiting for the store" not in err.read_text() and writer.poll() is None:
            assert time.monotonic() < deadline, "the writer neither waited nor finished"
            time.sleep(0.1)
    stdout, _ = writer.communicate(timeout=300)  # the reader has let go
    text = err.read_text()
    assert writer.returncode == 0, stdout[-800:] + text
    line = next(x for x in text.splitlines() if "waiting for the store" in x)
    assert f"waiting for the store {store} held by PID " in line and "(timeout 60 s)" in line
    assert len(_stored_trades(store)) == 1 and (tmp_path / "out" / "trades.parquet").exists()


def test_held_store_timeout_saves_a_pending_run_that_imports(tmp_path, synthetic, capsys, monkeypatch):
    data = tmp_path / "data"
    monkeypatch.setenv("NAVALE_DATA_DIR", str(data))
    monkeypatch.setenv("NAVALE_STORE_TIMEOUT", "0.5")
    store = data / "navale.duckdb"
    RunStore(store).close()
    out = tmp_path / "out"
    with _holder(store, read_only=False) as holder:
        rc, text = _backtest(synthetic, out, capsys)
        assert rc == STORE_FAILED
        line = _assert_one_line_error(text, str(store), f"PID {holder.pid}", "0.5 s", "navale runs import")
        # a reader waits too, then fails on one line
        assert main(["runs"]) == 2
        _assert_one_line_error(capsys.readouterr().out, "in use by another process")
    trades = pd.read_parquet(out / "trades.parquet")  # the outputs were written first
    bundles = find_pending()
    assert [b.parent for b in bundles] == [pending_dir()] and str(pending_dir()) in line
    assert len(read_pending_run(bundles[0]).snapshots) == len(trades)
    assert main(["runs", "import"]) == 0
    assert "imported run" in capsys.readouterr().out
    run_id = bundles[0].name.removesuffix(RUN_SUFFIX)
    assert _stored_trades(store) == {run_id: len(trades)} and not find_pending()
    with RunStore(store, read_only=True) as s:
        assert s.summary(run_id)["trades"] == len(trades)
        assert s.manifest(run_id)["sessions"]
    assert main(["runs", "import"]) == 0  # nothing left: a no-op
    assert "nothing to import" in capsys.readouterr().out


# ---------------------------------------------------------------- full disk, read-only folder


_mount_tmpfs, _umount = mount_tmpfs, umount  # tests/mounts.py, shared with the CLI output tests


def test_full_disk_keeps_earlier_runs_and_saves_the_new_one_beside_the_outputs(tmp_path, synthetic, capsys,
                                                                                monkeypatch):
    data = tmp_path / "full"
    _mount_tmpfs(data, "4m")
    try:
        monkeypatch.setenv("NAVALE_DATA_DIR", str(data))
        store = data / "navale.duckdb"
        rc, _text = _backtest(synthetic, tmp_path / "first", capsys)
        assert rc == 0
        before = _stored_trades(store)
        with contextlib.suppress(OSError), (data / "filler").open("wb") as fh:
            while True:
                fh.write(b"\0" * 65536)
        out = tmp_path / "second"
        rc = main(["backtest", str(synthetic), "--from", "2024-03-04", "--to", "2024-03-07", "--out", str(out)])
        cap = capsys.readouterr()
        assert rc == STORE_FAILED
        line = _assert_one_line_error(cap.out + cap.err, str(store), "No space left on device",
                                      f"navale runs import {out / 'pending'}")
        assert "saved in" in line
        assert _stored_trades(store) == before  # the earlier run survives
        trades = pd.read_parquet(out / "trades.parquet")
        (data / "filler").unlink()
        assert main(["runs", "import", str(out / "pending")]) == 0
        stored = _stored_trades(store)
        assert len(stored) == 2 and sorted(stored.values()) == sorted([*before.values(), len(trades)])
        assert not find_pending([out / "pending"])
    finally:
        monkeypatch.undo()
        _umount(data)


def test_read_only_folder_keeps_earlier_runs_and_saves_the_new_one_beside_the_outputs(tmp_path, synthetic,
                                                                                      capsys, monkeypatch):
    data = tmp_path / "ro"
    data.mkdir()
    root = os.geteuid() == 0
    if root:  # root ignores file modes: a read-only mount instead
        _mount_tmpfs(data, "8m")
    try:
        monkeypatch.setenv("NAVALE_DATA_DIR", str(data))
        store = data / "navale.duckdb"
        assert _backtest(synthetic, tmp_path / "first", capsys)[0] == 0
        before = _stored_trades(store)
        if root:
            subprocess.run(["mount", "-o", "remount,ro", str(data)], check=True)
        else:
            data.chmod(0o555)
            store.chmod(0o444)
        out = tmp_path / "second"
        rc = main(["backtest", str(synthetic), "--from", "2024-03-04", "--to", "2024-03-07", "--out", str(out)])
        cap = capsys.readouterr()
        assert rc == STORE_FAILED
        _assert_one_line_error(cap.out + cap.err, str(store), *(["Read-only file system"] if root else []),
                               f"navale runs import {out / 'pending'}")
        assert _stored_trades(store) == before
        assert main(["runs"]) == 0  # a reader still reads the read-only store
        capsys.readouterr()
        if root:
            subprocess.run(["mount", "-o", "remount,rw", str(data)], check=True)
        else:
            data.chmod(0o755)
            store.chmod(0o644)
        assert main(["runs", "import", str(out / "pending")]) == 0
        assert len(_stored_trades(store)) == 2
    finally:
        monkeypatch.undo()
        if root:
            _umount(data)
        else:
            data.chmod(0o755)


# ---------------------------------------------------------------- damaged store, several runs, promotions


def _run(name: str, n: int = 2) -> StoredRun:
    from test_store import make_snapshots

    manifest = build_manifest(params={"stop_ticks": 7}, params_hash="p1", data_files=[], mode="backtest",
                              session="rth", extra={"series": name})
    manifest["created_at"] = "2024-03-04T15:00:00+00:00"
    snaps = make_snapshots(n, run_id=name).drop(columns="run_id")
    return StoredRun(manifest, snaps, {"trades": float(n)}, name)


def test_several_runs_are_one_transaction_and_all_wait_as_pending(tmp_path):
    store = tmp_path / "s.duckdb"
    store.write_bytes(b"this is not a DuckDB file" * 100)
    with pytest.raises(RunsNotStoredError) as info:
        store_runs([_run("ESH20"), _run("ESM20", 3)], store_path=store)
    msg = str(info.value)
    assert "\n" not in msg and str(store) in msg and "none of the 2 runs stored (ESH20, ESM20)" in msg
    assert f"navale runs import {tmp_path / 'pending'}" in msg
    assert sorted(p.name for p in info.value.bundles) == [f"ESH20{RUN_SUFFIX}", f"ESM20{RUN_SUFFIX}"]
    store.unlink()  # the damaged file set aside: a fresh store takes both, twice without duplicates
    for _ in range(2):
        done = import_pending(info.value.bundles, store, keep=True)
        assert [(b.id, b.trades) for b in done] == [("ESH20", 2), ("ESM20", 3)]
    assert _stored_trades(store) == {"ESH20": 2, "ESM20": 3}


def test_a_failure_inside_the_transaction_stores_no_run(tmp_path, monkeypatch):
    store = tmp_path / "s.duckdb"
    store_runs([_run("earlier")], store_path=store)
    calls = []

    def insert(self, table):
        calls.append(1)
        if len(calls) == 2:
            raise OSError("disk went away")
        return original(self, table)

    original = RunStore._insert_snapshots
    monkeypatch.setattr(RunStore, "_insert_snapshots", insert)
    with RunStore(store) as s, pytest.raises(OSError):
        s.write_runs([_run("a"), _run("b")])
    assert _stored_trades(store) == {"earlier": 2}


def test_no_writable_place_for_the_bundle_says_so(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    store = blocker / "navale.duckdb"  # its folder is a file: neither store nor pending can be written
    with pytest.raises(RunsNotStoredError) as info:
        store_runs([_run("r1")], store_path=store, fallback_dirs=[blocker / "pending"])
    msg = str(info.value)
    assert "\n" not in msg and "could not be saved as pending either" in msg and not info.value.bundles


def test_lock_timeout_setting(monkeypatch):
    monkeypatch.delenv("NAVALE_STORE_TIMEOUT", raising=False)
    assert lock_timeout() == 60
    monkeypatch.setenv("NAVALE_STORE_TIMEOUT", "2.5")
    assert lock_timeout() == 2.5
    for bad in ("soon", "-1", "nan"):
        monkeypatch.setenv("NAVALE_STORE_TIMEOUT", bad)
        with pytest.raises(StoreError, match="NAVALE_STORE_TIMEOUT"):
            lock_timeout()


def test_import_refuses_what_is_not_a_bundle(tmp_path):
    bad = tmp_path / f"x{RUN_SUFFIX}"
    bad.write_bytes(b"PAR1 not really")
    with pytest.raises(StoreError, match="not a readable pending bundle"):
        import_pending([bad], tmp_path / "s.duckdb")
    assert not (tmp_path / "s.duckdb").exists()  # read and checked before the store is opened
    other = tmp_path / "s.csv"
    other.write_text("a")
    with pytest.raises(StoreError, match="not a pending bundle"):
        find_pending([other])
    with pytest.raises(StoreError, match="no such file"):
        find_pending([tmp_path / "absent"])


def test_store_write_error_is_a_store_error():
    assert issubclass(StoreWriteError, StoreError) and issubclass(RunsNotStoredError, StoreError)


def test_report_and_ml_data_set_go_on_when_the_store_cannot_take_the_run(tmp_path, synthetic, monkeypatch,
                                                                          capsys):
    from research.ml.workflow import build_dataset
    from research.reports.performance import performance_context

    data = tmp_path / "data"
    data.mkdir()
    (data / "navale.duckdb").write_bytes(b"not a DuckDB file" * 64)
    monkeypatch.setenv("NAVALE_DATA_DIR", str(data))
    ctx = performance_context(str(synthetic), date_from="2024-03-04", date_to="2024-03-08", store=True)
    assert not ctx.stored and "navale runs import" in ctx.store_error and "\n" not in ctx.store_error
    assert ctx.warnings[-1] == f"run not stored: {ctx.store_error}"
    assert read_pending_run(pending_dir() / f"{ctx.run_id}{RUN_SUFFIX}").snapshots.shape[0] == len(ctx.result.trades)
    errors: list[str] = []
    ds = build_dataset(paths=[synthetic], date_from="2024-03-04", date_to="2024-03-08", on_store_error=errors.append)
    assert len(ds) > 0 and len(errors) == 1 and "navale runs import" in errors[0]
    with pytest.raises(RunsNotStoredError):
        build_dataset(paths=[synthetic], date_from="2024-03-04", date_to="2024-03-08")
    capsys.readouterr()
    rc = main(["ml", "dataset", str(synthetic), "--from", "2024-03-04", "--to", "2024-03-08", "--out",
               str(tmp_path / "ds")])
    assert rc == STORE_FAILED and (tmp_path / "ds" / "dataset.parquet").exists()  # the data set is written
    _assert_one_line_error(capsys.readouterr().out, str(data / "navale.duckdb"), "navale runs import")
