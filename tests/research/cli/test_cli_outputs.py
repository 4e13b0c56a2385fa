"""What the commands do with where they write and what they print: an output that cannot be written is
one `error:` line naming the path and the cause (exit 4) and loses no stored run; --json leaves stdout
to the JSON; file names name an instrument only when they name a known one; arguments are checked."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mounts import mount_tmpfs, remount, umount

from research.cli import main
from research.data.loader import symbol_from_path
from research.store import RunStore

ROOT = Path(__file__).resolve().parents[3]
SHORT = ["--from", "2024-03-04", "--to", "2024-03-06"]  # two sessions of the synthetic set
WRITE_FAILED, STORE_FAILED = 4, 3


@pytest.fixture(scope="module")
def synthetic(data_dir) -> Path:
    from research.data import default_dataset

    return default_dataset()


def _one_error(text: str, *needles: str) -> str:
    errors = [line for line in text.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in text and "[Errno" not in text, text
    for n in needles:
        assert n in errors[0], errors[0]
    return errors[0]


def _run(capsys, *argv: str) -> tuple[int, str]:
    rc = main(list(argv))
    cap = capsys.readouterr()
    return rc, cap.out + cap.err


def _stored(store: Path) -> dict[str, int]:
    with RunStore(store, read_only=True) as s:
        return {r.run_id: int(r.n_trades) for r in s.runs().itertuples()}


@pytest.fixture
def read_only(tmp_path):
    """A read-only tmpfs holding a file and a folder."""
    ro = tmp_path / "ro"
    mount_tmpfs(ro, "1m")
    (ro / "sub").mkdir()
    (ro / "file").write_text("x")
    remount(ro, "ro")
    try:
        yield ro
    finally:
        umount(ro)


def test_read_only_outputs_are_one_line_naming_the_path(read_only, synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path / "data"))
    assert _run(capsys, "backtest", str(synthetic), *SHORT, "--out", str(tmp_path / "bt"))[0] == 0
    store = tmp_path / "data" / "navale.duckdb"
    before = _stored(store)
    cases = [
        ["backtest", str(synthetic), *SHORT, "--out", str(read_only / "out")],
        ["report", "performance", str(synthetic), *SHORT, "--out", str(read_only / "rep")],
        ["report", "sweep", "SOME_SWEEP", "--out", str(read_only / "rep")],
        ["data", "check", str(synthetic), "--json", str(read_only / "x.json")],
        ["data", "synth", "--days", "1", "--out", str(read_only / "synth")],
        ["runs", "export", str(read_only / "x.parquet")],
        ["sweep", str(synthetic), *SHORT, "--param", "stop_ticks=7", "--serial", "--out", str(read_only / "sw")],
    ]
    for argv in cases:
        rc, text = _run(capsys, *argv)
        assert rc == WRITE_FAILED, (argv, text)
        line = _one_error(text, str(read_only), "read-only file system")
        assert ".tmp" not in line, line  # the path the user named, not a temp file
    monkeypatch.chdir(read_only)  # the default reports/ folder in a read-only working folder
    rc, text = _run(capsys, "backtest", str(synthetic), *SHORT)
    assert rc == WRITE_FAILED and "reports" in _one_error(text, "read-only file system")
    assert _stored(store) == before  # no stored run lost


def test_a_file_or_folder_in_the_way_is_named(synthetic, tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    rc, text = _run(capsys, "backtest", str(synthetic), *SHORT, "--no-store", "--out", str(tmp_path / "file"))
    assert rc == WRITE_FAILED and "it exists and is not a folder" in _one_error(text, str(tmp_path / "file"))
    rc, text = _run(capsys, "backtest", str(synthetic), *SHORT, "--no-store", "--out", str(tmp_path / "file" / "x"))
    assert rc == WRITE_FAILED and "is not a folder" in _one_error(text, str(tmp_path / "file"))
    rc, text = _run(capsys, "runs", "export", str(tmp_path))
    assert rc == WRITE_FAILED and "it is a folder" in _one_error(text, str(tmp_path), "snapshots.parquet")
    rc, text = _run(capsys, "data", "check", str(synthetic), "--json", str(tmp_path))
    assert rc == WRITE_FAILED and "it is a folder" in _one_error(text, str(tmp_path))


def test_full_disk_while_writing_outputs_still_stores_the_run(synthetic, tmp_path, capsys, monkeypatch):
    full = tmp_path / "full"
    mount_tmpfs(full, "256k")
    try:
        monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path / "data"))
        with contextlib.suppress(OSError), (full / "filler").open("wb") as fh:  # the folder can be made, no file
            while True:
                fh.write(b"\0" * 4096)
                fh.flush()
        rc, text = _run(capsys, "backtest", str(synthetic), *SHORT, "--out", str(full / "out"))
        assert rc == WRITE_FAILED
        line = _one_error(text, str(full / "out"), "no space left on device", "were stored as")
        stored = _stored(tmp_path / "data" / "navale.duckdb")
        assert len(stored) == 1 and next(iter(stored)) in line  # the result is not lost
        assert not any(p.name.endswith(".tmp") for p in (full / "out").glob(".*"))  # no temp file left
        rc, text = _run(capsys, "sweep", str(synthetic), *SHORT, "--param", "stop_ticks=7", "--serial",
                        "--out", str(full / "sw"))
        assert rc == WRITE_FAILED and "no space left on device" in _one_error(text, str(full / "sw"))
        rc, text = _run(capsys, "data", "synth", "--days", "1", "--out", str(full / "synth"))
        assert rc == WRITE_FAILED and "no space left on device" in _one_error(text, str(full / "synth"))
    finally:
        umount(full)


def test_json_output_is_json_alone(synthetic, tmp_path, capsys):
    rc = main(["backtest", str(synthetic), *SHORT, "--json", "--no-store", "--out", str(tmp_path / "bt")])
    cap = capsys.readouterr()
    doc = json.loads(cap.out)
    assert rc == 0 and doc[0]["stats"]["trades"] >= 0 and "data check:" in cap.err
    rc = main(["data", "check", str(synthetic), "--json", "-"])
    cap = capsys.readouterr()
    assert rc == 0 and json.loads(cap.out)["errors"] == 0 and "navale data check" in cap.err
    rc = main(["backtest", str(tmp_path / "missing.txt"), "--json"])
    cap = capsys.readouterr()
    assert rc == 2 and cap.out == "" and cap.err.startswith("error:")


def test_symbol_comes_from_a_file_name_only_when_it_names_a_known_instrument():
    assert symbol_from_path("ESH20-CME.scid_BarData__5m.txt.gz") == "ESH20"
    assert symbol_from_path("ES_2022.csv") == "ES" and symbol_from_path("nqz23.txt") == "NQZ23"
    for name in ("bom.txt", "s.scid", "offtick2.txt", "data.csv", "ABCH20.txt"):
        assert symbol_from_path(name) is None, name


def test_unknown_instrument_says_how_to_name_it(synthetic, tmp_path, capsys):
    anon = tmp_path / "s.scid"
    shutil.copy(synthetic, anon)
    rc, text = _run(capsys, "backtest", str(anon), *SHORT, "--no-store", "--out", str(tmp_path / "a"))
    assert rc == 2 and "the instrument is unknown" in _one_error(text, str(anon), "--symbol ES")
    rc, text = _run(capsys, "backtest", str(anon), *SHORT, "--no-store", "--symbol", "ZZ", "--out", str(tmp_path / "b"))
    assert rc == 2 and "not a known instrument" in _one_error(text, "--symbol 'ZZ'", "ES")
    rc = main(["backtest", str(anon), *SHORT, "--no-store", "--symbol", "ES", "--json", "--out", str(tmp_path / "c")])
    named = json.loads(capsys.readouterr().out)
    rc0 = main(["backtest", str(synthetic), *SHORT, "--no-store", "--json", "--out", str(tmp_path / "d")])
    original = json.loads(capsys.readouterr().out)
    assert rc == rc0 == 0 and named[0]["stats"] == original[0]["stats"]  # same bars, same trades
    assert json.loads((tmp_path / "c" / "manifest.json").read_text())["extra"]["symbol"] == "ES"
    rc, text = _run(capsys, "data", "check", str(anon), "--show", "0")
    assert rc == 0 and "note: s.scid: the instrument is unknown" in text and "not checked against a tick grid" in text
    rc, text = _run(capsys, "data", "check", str(anon), "--show", "0", "--symbol", "ES")
    assert rc == 0 and "instrument is unknown" not in text


@pytest.mark.parametrize("argv, message", [
    (["backtest", "--run-id", "../../etc/x"], "a run id is 1-80 letters"),
    (["backtest", "--run-id", "a/b"], "a run id is"),
    (["report", "performance", "--run-id", ".hidden"], "a run id is"),
    (["backtest", "--from", ""], "argument --from: empty: give a date YYYY-MM-DD"),
    (["sweep", "--to", " "], "argument --to: empty"),
    (["lab", "--port", "99999"], "99999 is out of range: a port is in [1, 65535]"),
    (["lab", "--port", "0"], "out of range"),
    (["lab", "--port", "http"], "'http' is not a port number"),
])
def test_bad_arguments_are_refused_by_the_parser(argv, message, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and message in err and "Traceback" not in err


def test_ml_dataset_saves_the_pending_bundle_beside_its_outputs(read_only, synthetic, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NAVALE_DATA_DIR", str(read_only))  # neither the store nor its pending/ can be written
    out = tmp_path / "ds"
    rc, text = _run(capsys, "ml", "dataset", str(synthetic), *SHORT, "--out", str(out))
    assert rc == STORE_FAILED and (out / "dataset.parquet").exists()
    _one_error(text, f"navale runs import {out / 'pending'}")
    assert list((out / "pending").glob("*.pending.parquet"))


def test_data_errors_start_with_error(tmp_path, capsys):
    rc, text = _run(capsys, "data", "info", str(tmp_path / "missing.txt"))
    assert rc == 2 and _one_error(text, "missing.txt").startswith("error: ")


def test_python_dash_m_runs_the_cli():
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    p = subprocess.run([sys.executable, "-m", "research.cli", "--help"], capture_output=True, text=True, env=env,
                       cwd=ROOT)
    assert p.returncode == 0 and p.stdout.startswith("usage: navale")


def test_atomic_write_names_the_file_asked_for(read_only, tmp_path):
    from research.store.files import WriteError, atomic_write_text

    with pytest.raises(WriteError) as e:
        atomic_write_text(read_only / "x.json", "{}")
    assert str(e.value) == f"cannot write {read_only / 'x.json'}: read-only file system" and e.value.errno == 30
    with pytest.raises(WriteError, match="it is a folder; name a file inside it"):
        atomic_write_text(tmp_path, "{}")
    (tmp_path / "old.json").write_text("old")
    with pytest.raises(WriteError, match="old.json: it exists and is not a folder"):
        atomic_write_text(tmp_path / "old.json" / "new.json", "{}")
    assert (tmp_path / "old.json").read_text() == "old"
