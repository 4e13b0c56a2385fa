import json
import subprocess
import sys

import pytest
from conftest import es5m_files, shared_file

from research.cli import main


def test_help_lists_commands_with_examples(capsys):
    assert main([]) == 0
    out = capsys.readouterr().out
    assert "data" in out and "examples:" in out
    for cmd in (["data", "check", "--help"], ["data", "info", "--help"], ["data", "synth", "--help"], ["data", "--help"]):
        with pytest.raises(SystemExit) as e:
            main(cmd)
        assert e.value.code == 0
        assert "navale data" in capsys.readouterr().out


def test_help_does_not_import_heavy_libraries():
    code = "import sys; from research.cli import build_parser; build_parser(); print(sorted(m for m in ('pandas','numba','vectorbt','numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_check_default_is_synthetic(capsys, tmp_path):
    rc = main(["data", "check", "--json", str(tmp_path / "r.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "SYNTHETIC DATA" in out
    doc = json.loads((tmp_path / "r.json").read_text())
    assert doc["synthetic"] is True and doc["errors"] == 0 and doc["files"][0]["rows"] > 1000


def test_check_exit_code_on_errors(tmp_path, capsys):
    p = tmp_path / "ESH24.txt"
    p.write_text(
        "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"
        "2024/3/5, 08:30:00, 5100.00, 5101.25, 5099.75, 5101.00, 120, 40, 50, 70\n"
        "2024/3/5, 08:35:00, 5101.00, 5100.00, 5100.50, 5100.75, 80, 30, 45, 35\n"
    )
    assert main(["data", "check", str(p), "--json", "-"]) == 1
    out = capsys.readouterr().out
    assert "ohlc_inconsistent" in out
    bad = tmp_path / "bad.scid"
    bad.write_bytes(b"SCID" + b"\0" * 10)
    assert main(["data", "check", str(bad)]) == 1
    assert "unreadable" in capsys.readouterr().out


def test_check_all_32_contracts(capsys, tmp_path):
    files = es5m_files()
    rc = main(["data", "check", *map(str, files), "--json", str(tmp_path / "r.json"), "--show", "0"])
    doc = json.loads((tmp_path / "r.json").read_text())
    assert rc == 0 and len(doc["files"]) == 32 and doc["errors"] == 0
    assert doc["synthetic"] is False


def test_info(capsys):
    p = shared_file("ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst")
    assert main(["data", "info", str(p), "--bar", "5min"]) == 0
    out = capsys.readouterr().out
    assert "dbn" in out and "ESH4" in out and "bid/ask volume" in out


def test_synth(tmp_path, capsys):
    assert main(["data", "synth", "--days", "1", "--out", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.synthetic.*.scid"))) == 1
