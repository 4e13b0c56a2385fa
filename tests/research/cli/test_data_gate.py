"""The commands check what they load: refuse on data errors in one line, --allow-data-errors runs and is
recorded, the warnings are summarised in one line."""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from research.cli import main
from research.data import DataError, load_bars
from research.data.gate import DataGate
from research.pipeline import load_series

ROOT = Path(__file__).resolve().parents[3]
HEADER = "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"


def sierra_days(path: Path, days: int = 3, jump_at: int | None = None, bad_ohlc_at: int | None = None) -> Path:
    """RTH 5-minute bars of a random walk on the ES tick grid (Central time, as Sierra exports)."""
    rng = np.random.default_rng(7)
    lines, price, k = [], 4000.0, 0
    for d in pd.bdate_range("2024-03-04", periods=days):
        for t in pd.date_range(d + pd.Timedelta("08:30:00"), periods=78, freq="5min"):
            o = price
            c = o + 0.25 * int(rng.integers(-6, 7))
            h, lo = max(o, c) + 0.25 * int(rng.integers(0, 3)), min(o, c) - 0.25 * int(rng.integers(0, 3))
            if k == jump_at:
                o, h, lo, c = o * 4, h * 4, lo * 4, c * 4
            if k == bad_ohlc_at:
                h = lo - 1.0
            ask = int(rng.integers(20, 200))
            bid = int(rng.integers(20, 200))
            lines.append(f"{t:%Y/%m/%d}, {t:%H:%M:%S}, {o:.2f}, {h:.2f}, {lo:.2f}, {c:.2f}, {ask + bid}, {(ask + bid) // 3}, {bid}, {ask}\n")
            price = c if k != jump_at else price
            k += 1
    path.write_text(HEADER + "".join(lines))
    return path


def test_gate_counts_quarantined_rows_and_check_errors(tmp_path):
    p = sierra_days(tmp_path / "ESM24.txt", jump_at=100, bad_ohlc_at=50)
    with pytest.raises(DataError) as exc:
        load_series([p])
    text = str(exc.value)
    assert "\n" not in text and text.startswith("data check: 1 file, 233 bars, 3 errors (price_jump 2, bad_row 1)")
    assert f"first: {p}: line 52: field 'Low': low above open, close or high" in text and "--allow-data-errors" in text
    lines: list[str] = []
    s = load_series([p], allow_data_errors=True, on_check=lines.append)[0]
    assert len(s.frame) == 233 and s.data_check["allow_data_errors"] is True and s.data_check["errors"] == 3
    assert lines == [s for s in lines if "\n" not in s] and "used anyway (--allow-data-errors)" in lines[0]


def test_clean_file_passes_and_the_summary_is_one_line(tmp_path):
    lines: list[str] = []
    s = load_series([sierra_days(tmp_path / "ESM24.txt")], on_check=lines.append)[0]
    assert lines == ["data check: 1 file, 234 bars, 0 errors, 0 warnings"] and s.data_check["errors"] == 0


def test_backtest_refuses_then_runs_with_the_override_recorded(tmp_path, capsys):
    p = sierra_days(tmp_path / "ESM24.txt", jump_at=100)
    out = tmp_path / "bt"
    assert main(["backtest", str(p), "--out", str(out), "--no-store"]) == 2
    text = capsys.readouterr().out
    err = [ln for ln in text.splitlines() if ln.startswith("error:")]
    assert len(err) == 1 and "data check: 1 file, 234 bars, 2 errors (price_jump 2)" in err[0], text
    assert not out.exists()
    assert main(["backtest", str(p), "--out", str(out), "--no-store", "--allow-data-errors"]) == 0
    text = capsys.readouterr().out
    assert "data check: 1 file, 234 bars, 2 errors (price_jump 2), 0 warnings: used anyway (--allow-data-errors)" in text
    check = json.loads((out / "manifest.json").read_text())["extra"]["data_check"]
    assert check["allow_data_errors"] is True and check["error_counts"] == {"price_jump": 2}


def test_backtest_subprocess_exit_code_and_one_line_error(tmp_path):
    p = sierra_days(tmp_path / "ESM24.txt", bad_ohlc_at=10)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NAVALE_DATA_DIR": str(tmp_path / "store"), "COLUMNS": "80"}
    r = subprocess.run([sys.executable, "-c", "import sys; from research.cli import main; sys.exit(main())",
                        "backtest", str(p), "--no-store", "--out", str(tmp_path / "bt")],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 2, r.stdout + r.stderr
    err = [ln for ln in r.stdout.splitlines() if "error" in ln]
    assert len(err) == 1 and err[0].startswith("error: data check: 1 file, 233 bars, 1 error (bad_row 1)"), r.stdout
    assert f"{p}: line 12: field 'Low'" in err[0] and "Traceback" not in r.stderr


def test_synthetic_data_set_passes_with_zero_errors():
    from research.data import default_dataset

    g = DataGate()
    p = default_dataset()
    g.add(p, load_bars(p, on_error="quarantine"))
    assert g.finish().n_errors == 0


def test_data_check_table_wraps_long_messages(tmp_path, capsys):
    p = tmp_path / "ESH24.scid.gz"
    p.write_bytes(gzip.compress(b"SCID" + bytes(60)))
    assert main(["data", "check", str(p)]) == 1
    out = capsys.readouterr().out
    cells = " ".join(ln.split("│")[-2].strip() for ln in out.splitlines() if ln.count("│") > 2)
    assert "…" not in out and "gzip-compressed Sierra .scid file: .scid files are read uncompressed, decompress it first" in cells
