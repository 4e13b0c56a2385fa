"""`navale collect` end to end on the synthetic feed, `navale status` showing it, and bad input in one line."""

from __future__ import annotations

import json

import pytest

from research.cli import main
from research.data import segments as S


def test_collect_synthetic_one_hour_then_status(tmp_path, capsys):
    root = tmp_path / "c"
    assert main(["collect", "--feed", "synthetic", "--hours", "1", "--dir", str(root), "--no-trade", "--json",
                 "--speed", "max"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["reason"] == "hours" and doc["segments"] == 1
    (sym,) = doc["symbols"]
    d = S.read_segment(root / "segments" / "ES" / "2024-03-04.seg")
    assert sym["ticks"] == len(d.ticks) > 500 and sym["bars"] == len(d.bars) == 12
    assert (d.ticks["ts_ns"][-1] - d.ticks["ts_ns"][0]) >= 3600 * 10**9
    assert main(["status", "--collect-dir", str(root), "--state-dir", str(tmp_path / "none"), "--json"]) == 0
    st = json.loads(capsys.readouterr().out)
    c = st["collector"]
    assert c["state"] == "stopped" and c["symbols"][0]["seq"] == len(d.ticks) and c["fsync"] == "interval"
    assert [e["kind"] for e in c["events"]][:1] == ["start"]


@pytest.mark.parametrize("argv, needle", [
    (["--feed", "bogus"], "unknown feed"),
    (["--feed", "scid:/no/such.scid"], "no such file"),
    (["--feed", "replay:"], "unknown feed"),
])
def test_bad_input_one_line_exit_2(tmp_path, capsys, argv, needle):
    assert main(["collect", "--dir", str(tmp_path / "c"), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1


def test_a_root_that_is_a_file_is_bad_input(tmp_path, capsys):
    f = tmp_path / "file"
    f.write_text("x")
    assert main(["collect", "--dir", str(f)]) == 2
    assert "not a folder" in capsys.readouterr().err


def test_a_second_collector_on_one_dir_is_refused_and_told_how_to_stop_the_first(tmp_path, capsys):
    import os
    import signal
    import subprocess
    import sys
    import time
    from pathlib import Path

    root = tmp_path / "c"
    repo = Path(__file__).resolve().parents[3]
    first = subprocess.Popen([sys.executable, "-m", "research.cli", "collect", "--feed", "synthetic", "--speed", "1",
                              "--no-trade", "--quiet", "--dir", str(root)], cwd=tmp_path,
                             env={**os.environ, "PYTHONPATH": str(repo)}, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
    try:
        for _ in range(600):  # until it holds the dir (its pid file names it)
            if (root / "trader.pid").exists() and (root / "segments").exists():
                break
            time.sleep(0.1)
        assert main(["collect", "--feed", "synthetic", "--no-trade", "--dir", str(root)]) == 2
        err = capsys.readouterr().err.strip()
        assert f"another collector (pid {first.pid}) holds {root}" in err and f"kill -TERM {first.pid}" in err
        assert len(err.splitlines()) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        assert first.wait(60) == 0, first.stderr.read()
