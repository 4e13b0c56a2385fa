"""The commands refuse absurd parameters, grids, files and dates with one `error:` line (exit 2)."""

from __future__ import annotations

import pytest

from research.cli import main


def one_error(capsys, argv) -> str:
    rc = main(argv)
    out = capsys.readouterr().out.strip()
    assert rc == 2, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), out
    return lines[0]


@pytest.mark.parametrize("argv, expected", [
    (["--from", "01/03/2020"], "--from '01/03/2020' is not a date in the form YYYY-MM-DD"),
    (["--from", "2024-03-13T10:00"], "a time is not accepted"),
    (["--from", "2024-03-14", "--to", "2024-03-13"], "is reversed"),
    (["--from", "2024-03-14", "--to", "2024-03-14"], "is an empty range"),
])
def test_sweep_dates(capsys, argv, expected):
    assert expected in one_error(capsys, ["sweep", *argv, "--serial", "--no-cache"])


def test_sweep_refuses_a_huge_grid_at_once_and_max_combos_raises_the_limit(tmp_path, capsys):
    big = tmp_path / "big.toml"
    big.write_text("[grid]\n" + "\n".join(f"{k} = {v}" for k, v in {
        "stop_ticks": list(range(1, 11)), "target_r": [1.0 + i / 2 for i in range(10)],
        "time_stop_bars": list(range(10, 110, 10)), "entry_threshold": [i / 20 for i in range(10)],
        "min_base_quality": [i / 10 for i in range(10)], "slippage_ticks": list(range(10)),
        "contracts": list(range(1, 11))}.items()) + "\n")
    line = one_error(capsys, ["sweep", "--grid", str(big), "--serial"])
    assert f"{big}: the grid has 10,000,000 combinations" in line and "limit of 20,000" in line
    assert "--max-combos 10000000" in line
    grid = ["--param", "stop_ticks=5,7", "--param", "target_r=1.5,2", "--serial", "--no-cache"]
    assert "4 combinations" in one_error(capsys, ["sweep", *grid, "--max-combos", "3"])
    assert main(["sweep", *grid, "--max-combos", "4", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "grid: 4 combinations (1 signal group(s)), limit 4 (--max-combos)" in out
    assert "4 combinations (1 signal group(s)) x 13,786 bars, 10 sessions: about" in out


def test_a_raised_limit_is_estimated_then_refused_above_the_memory_available(capsys):
    values = {"stop_ticks": range(1, 11), "target_r": [1.0 + i / 2 for i in range(10)],
              "time_stop_bars": range(10, 110, 10), "entry_threshold": [i / 20 for i in range(10)],
              "min_base_quality": [i / 10 for i in range(10)], "slippage_ticks": range(10),
              "contracts": range(1, 11), "max_trades_per_day": range(1, 11)}  # 10^8 combinations
    argv = [a for k, v in values.items() for a in ("--param", f"{k}={','.join(map(str, v))}")]
    assert main(["sweep", *argv, "--max-combos", str(10**8), "--serial", "--no-cache"]) == 2
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.strip()]
    estimate = next(i for i, ln in enumerate(lines) if ln.startswith("100,000,000 combinations (100 signal group(s))"))
    assert " GB (estimate" in lines[estimate] and estimate == len(lines) - 2
    assert lines[-1].startswith("error: the sweep needs about ") and "of memory available on this machine" in lines[-1]


@pytest.mark.parametrize("param, expected", [
    ("stop_ticks=5,99999999999999999999", "parameter stop_ticks = 99999999999999999999: accepted [1, 4000] (ticks)"),
    ("weight_battle=0.4,5.0", "parameter weight_battle = 5.0: accepted [0, 1]"),
    ("target_r=2,inf", "parameter target_r = inf: accepted (0, 50]"),
    ("contracts=1,1000000000", "parameter contracts = 1000000000: accepted [1, 1000]"),
])
def test_sweep_grid_values_outside_the_ranges(capsys, param, expected):
    assert expected in one_error(capsys, ["sweep", "--param", param, "--serial", "--no-cache"])


def test_binary_params_and_grid_files_name_the_file(tmp_path, capsys):
    blob = tmp_path / "weights.toml"
    blob.write_bytes(b"\x80\x04\x95\x1a\x00\x00\x00\x00\x00\x00\x00}\x94\xff")
    line = one_error(capsys, ["sweep", "--grid", str(blob), "--serial"])
    assert f"{blob}: not a UTF-8 text file" in line
    line = one_error(capsys, ["sweep", "--params", str(blob), "--serial"])
    assert f"{blob}: not a UTF-8 text file" in line
    line = one_error(capsys, ["backtest", "--params", str(blob), "--no-store"])
    assert f"{blob}: not a UTF-8 text file" in line


def test_backtest_refuses_absurd_parameters_and_dates(tmp_path, capsys):
    p = tmp_path / "p.toml"
    p.write_text("stop_ticks = 99999999999999999999\n")
    assert "p.toml: parameter stop_ticks = 99999999999999999999: accepted [1, 4000]" in one_error(
        capsys, ["backtest", "--params", str(p), "--no-store"])
    assert "is not a date in the form YYYY-MM-DD" in one_error(capsys, ["backtest", "--from", "01/03/2020",
                                                                          "--no-store"])


@pytest.mark.parametrize("argv, expected", [
    (["--max-combos", "0"], "--max-combos 0: must be >= 1"),
    (["--workers", "0"], "--workers 0: must be >= 1"),
    (["--workers", "1000"], "--workers 1000: a local cluster runs 1 to "),
    (["--chunk", "-1"], "--chunk -1: must be >= 1"),
    (["--sample", "0"], "--sample 0: must be >= 1"),
])
def test_sweep_options_are_bounded(capsys, argv, expected):
    assert expected in one_error(capsys, ["sweep", *argv, "--serial", "--no-cache"])


def one_error_anywhere(capsys, argv) -> str:
    """The single `error:` line of a refused command, on stdout or stderr."""
    rc = main(argv)
    cap = capsys.readouterr()
    lines = [ln for ln in (cap.out + cap.err).splitlines() if ln.strip()]
    errors = [ln for ln in lines if ln.startswith("error: ")]
    assert rc == 2 and len(errors) == 1, cap
    return errors[0]


@pytest.mark.parametrize("bar", ["abc", "0s", "tick:0", "volume:-5", "tick:99999999999999999999",
                                 "volume:100000000000", "tick:²"])
def test_a_bad_bar_is_one_line_in_every_data_command(tmp_path, capsys, bar):
    from research.data.synthetic import SyntheticSpec, write_synthetic_scid

    path = write_synthetic_scid(tmp_path / "ESM24.scid", SyntheticSpec(days=1))
    for argv in (["data", "info", str(path)], ["data", "check", str(path)], ["backtest", str(path), "--no-store"]):
        assert "bad bar spec" in one_error_anywhere(capsys, [*argv, "--bar", bar])


def test_contracts_of_two_products_are_not_stitched(tmp_path, capsys):
    from barbuilder import edge_case_bars

    files = []
    for name, scale in (("ESH24", 1.0), ("NQH24", 3.0)):
        bars = edge_case_bars(n_days=2)
        for c in ("open", "high", "low", "close"):
            bars[c] = bars[c] * scale
        p = tmp_path / f"{name}.csv"
        bars.rename_axis("timestamp_utc").to_csv(p)
        files.append(str(p))
    line = one_error_anywhere(capsys, ["backtest", *files, "--no-store", "--out", str(tmp_path / "o")])
    assert "different products (ES, NQ)" in line and "--series contracts" in line


def test_a_bad_store_timeout_fails_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NAVALE_STORE_TIMEOUT", "abc")
    line = one_error_anywhere(capsys, ["backtest", "--out", str(tmp_path / "o")])
    assert "NAVALE_STORE_TIMEOUT='abc'" in line
    assert not (tmp_path / "o").exists()


def test_sweep_engine_options_exclude_each_other(capsys):
    with pytest.raises(SystemExit) as e:  # argparse: mutually exclusive
        main(["sweep", "--serial", "--dask"])
    assert e.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err
    for flag in ("--serial", "--dask"):
        line = one_error(capsys, ["sweep", "--scheduler", "tcp://127.0.0.1:1", flag, "--no-cache"])
        assert "--scheduler runs on that cluster: drop --serial / --dask" in line


def test_sweep_default_engine_is_chosen_and_said(tmp_path, capsys):
    grid = ["--param", "stop_ticks=5,7", "--no-cache", "--out", str(tmp_path / "out")]
    assert main(["sweep", *grid]) == 0
    out = capsys.readouterr().out
    assert "(engine: serial or a local Dask cluster, by the estimate)" in out
    assert "engine: serial: about" in out and "engine serial," in out  # 2 combinations: no cluster
