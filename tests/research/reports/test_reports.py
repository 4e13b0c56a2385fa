"""Report notebooks: rendered with papermill on small data, HTML checked for sections, charts,
hidden code, offline plotly, the synthetic banner; jupytext pairs in sync; failures explained.

Each render starts a kernel, so renders are shared by module-scoped fixtures.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import shared_file

from research.cli import report_cmd
from research.data import SyntheticSpec, default_dataset
from research.reports.render import (
    NOTEBOOK_DIR,
    ReportError,
    render_notebook,
    template_path,
)

PERFORMANCE_SECTIONS = ("Headline", "Equity and drawdowns", "Monthly returns", "Drawdown periods", "Trade distribution",
                        "Attribution", "Fill audit", "Signal examples", "Run manifest")
ATTRIBUTION_KEYS = ("hour", "weekday", "phase", "status", "base_type", "pattern", "order_flow", "exit_reason", "month",
                    "year", "contract")
FIGURE = 'class="plotly-graph-div"'


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="group")
    report_cmd.add_parser(sub, argparse.RawDescriptionHelpFormatter)
    return ap


def _anchor(title: str) -> str:
    return f'id="{title.replace(" ", "-")}"'


@pytest.fixture(scope="module")
def small_synthetic(tmp_path_factory) -> Path:
    return default_dataset(SyntheticSpec(days=3), directory=tmp_path_factory.mktemp("synth"))


@pytest.fixture(scope="module")
def perf_report(data_dir, small_synthetic, tmp_path_factory):
    """`navale report performance` on three synthetic days (through the CLI module)."""
    out = tmp_path_factory.mktemp("reports")
    args = _parser().parse_args(["report", "performance", str(small_synthetic), "--out", str(out), "--no-progress"])
    assert report_cmd.run(args) == 0
    (run_dir,) = (out / "performance").iterdir()
    return run_dir, (run_dir / "performance_report.html").read_text(encoding="utf-8")


def test_performance_sections_and_banner(perf_report):
    _, html = perf_report
    for title in PERFORMANCE_SECTIONS:
        assert _anchor(title) in html, title
    for key in ATTRIBUTION_KEYS:
        assert f'id="attribution-{key}"' in html, key
    assert _anchor("Synthetic data") in html and "SYNTHETIC DATA" in html
    assert html.index(_anchor("Synthetic data")) < html.index(_anchor("Headline"))  # on top


def test_performance_figures_offline_code_hidden(perf_report):
    run_dir, html = perf_report
    nb = nbformat.read(run_dir / "performance_report.ipynb", as_version=4)  # beside the HTML
    info = _published(nb)
    # equity, monthly, R histogram, MFE/MAE, one per attribution key, the signal examples
    assert info["figures"] >= 4 + len(ATTRIBUTION_KEYS) + 1
    assert html.count(FIGURE) == info["figures"]
    assert html.count("plotly.js v") == 1  # the library once, inline
    scripts = re.findall(r"<script[^>]*\bsrc=", html)
    assert scripts == [], scripts  # nothing fetched from a CDN
    assert "cdn.plot.ly" not in "".join(re.findall(r"<script[^>]*>", html))
    for cell in nb.cells:  # no code in the page
        if cell.cell_type == "code" and cell.source.strip():
            first = next(ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#"))
            assert first.strip() not in html, first
    assert "application/vnd.navale.report+json" not in html


def test_performance_kernel_is_this_python_and_run_is_stored(perf_report, small_synthetic, tmp_path, capsys):
    run_dir, html = perf_report
    assert sys.executable in html  # "kernel python" line of the run manifest
    run_id = run_dir.name
    from research.cli import main
    from research.store import RunStore

    with RunStore(read_only=True) as store:
        assert store.has_run(run_id)
        n = len(store.snapshots(run_id))
    # `navale backtest` on the same data computes the same run id
    assert main(["backtest", str(small_synthetic), "--out", str(tmp_path / "bt"), "--json", "--no-store"]) == 0
    text = capsys.readouterr().out
    assert json.loads(text[text.index("[\n"):])[0]["run_id"] == run_id
    assert f"{n} trades" in html


def _published(nb) -> dict:
    from research.reports.render import notebook_info

    return notebook_info(nb)


@pytest.mark.realdata
def test_performance_real_contract_has_no_banner(tmp_path):
    path = shared_file("es-5m/ESH20-CME.scid_BarData__5m.txt.gz")
    res = render_notebook(template_path("performance_report"), {"data": [str(path)], "store": False, "examples": 2},
                          tmp_path, name="performance_report", progress=False)
    html = res.html.read_text(encoding="utf-8")
    assert res.ipynb.exists() and res.ipynb.parent == res.html.parent
    assert "SYNTHETIC DATA" not in html and _anchor("Synthetic data") not in html
    for title in PERFORMANCE_SECTIONS:
        assert _anchor(title) in html, title
    assert res.info["synthetic"] is False and res.info["series"] == "ESH20"
    assert html.count(FIGURE) == res.info["figures"]
    assert 'id="attribution-contract"' in html


SWEEP_SECTIONS = ("Sweep", "Top configurations", "Parameter stability", "Walk-forward", "PBO", "Deflated Sharpe ratio",
                  "Promotion gate preview", "Proposed configuration in depth", "Sweep manifest")


@pytest.fixture(scope="module")
def sweep_report(data_dir, tmp_path_factory):
    """A 12-combination serial sweep on 12 synthetic days, saved as `navale sweep` does, then
    `navale report sweep SWEEP_ID` with weekly walk-forward periods."""
    from research.pipeline import load_series
    from research.sweep import run_sweep

    path = default_dataset(SyntheticSpec(days=12), directory=tmp_path_factory.mktemp("synth12"))
    res = run_sweep(load_series([path]), {"stop_ticks": [5, 7, 9], "target_r": [1.0, 2.0], "entry_threshold": [0.2, 0.25]},
                    scheduler="serial", cache_dir=False, progress=False)
    out = tmp_path_factory.mktemp("reports")
    res.meta["load"] = {"paths": [str(path)], "bar": None, "date_from": None, "date_to": None}  # as navale sweep does
    res.save(out / "sweeps" / res.meta["sweep_id"])
    args = _parser().parse_args(["report", "sweep", res.meta["sweep_id"], "--out", str(out), "--boundaries", "W-MON",
                                 "--is-periods", "1", "--n-splits", "4", "--no-progress"])
    assert report_cmd.run(args) == 0
    folder = out / "sweeps" / res.meta["sweep_id"]
    return folder, (folder / "sweep_report.html").read_text(encoding="utf-8")


def test_sweep_report_sections_and_figures(sweep_report):
    folder, html = sweep_report
    for title in SWEEP_SECTIONS:
        assert _anchor(title) in html, title
    assert _anchor("Synthetic data") in html
    info = _published(nbformat.read(folder / "sweep_report.ipynb", as_version=4))
    # 2 stability maps (3 varied parameters), IS vs OOS, OOS equity, PBO logits, the proposed combo's equity
    assert info["figures"] == 6 and html.count(FIGURE) == 6
    assert "vectorbt Portfolio.stats()" in html and "Total Return [%]" in html and "not analysed in depth" not in html
    assert info["verdict"].startswith("Walk-forward over 2 windows")
    assert "plateau" in html or "shoulder" in html or "spike" in html
    assert re.findall(r"<script[^>]*\bsrc=", html) == []
    assert "stability_map(" not in html  # code hidden


def test_performance_dsr_deflated_by_the_sweep_it_came_from(sweep_report, small_synthetic):
    """--trials-from SWEEP: the report's DSR uses the sweep's 12 trials and their Sharpe dispersion."""
    from research.reports.performance import performance_context
    from research.validation.overfitting import search_trials
    from research.validation.promotion import load_sweep

    folder, _ = sweep_report
    plain = performance_context([str(small_synthetic)], store=False)
    deflated = performance_context([str(small_synthetic)], store=False, trials_from=str(folder))
    trials, var = search_trials(load_sweep(folder))
    assert trials == 12 and var > 0
    assert (deflated.tracker.n_trials, deflated.tracker.sr_variance) == (trials, var)
    m0, m1 = plain.tracker.metrics(), deflated.tracker.metrics()
    assert m0["dsr"] == m0["psr"] and m1["psr"] == m0["psr"] and m1["dsr"] < m0["dsr"]
    assert deflated.tracker.headline().loc["dsr", "metric"] == "Deflated Sharpe ratio (12 trials)"
    assert deflated.warnings == []  # METHOD.md's defaults are one of the sweep's configurations
    other = performance_context([str(small_synthetic)], mode="paper", store=False, trials_from=str(folder))
    assert len(other.warnings) == 1 and "not one of the sweep's 12 configurations" in other.warnings[0]


def test_sweep_in_depth_needs_the_sweeps_own_data(sweep_report, tmp_path):
    """The in-depth backtest equals the sweep's own numbers for that combo; missing or changed data is named."""
    import shutil

    from research.reports.sweep import sweep_context, sweep_in_depth

    folder, _ = sweep_report
    ctx = sweep_context(folder)
    combo = int(ctx.result.top(1).index[0])
    deep = sweep_in_depth(ctx, combo)
    assert len(deep.result.trades) == ctx.result.summary.loc[combo, "trades"]
    assert deep.result.trades["pnl_usd"].sum() == pytest.approx(ctx.result.summary.loc[combo, "net_pnl_usd"])
    assert deep.tracker.n_trials == 12 and set(deep.params["parameter"]) <= set(ctx.varying)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy)
    ctx2 = sweep_context(copy)
    data = Path(ctx2.result.meta["load"]["paths"][0])
    # the hash is recorded under the path as typed (relative here); the check still applies
    relative = Path(os.path.relpath(data))
    ctx2.result.meta["data"] = [{"path": str(relative), "sha256": "0" * 64}]
    with pytest.raises(ValueError, match="changed since the sweep"):
        sweep_in_depth(ctx2, combo)
    ctx2.result.meta["data"] = []
    with pytest.raises(ValueError, match="recorded no sha256"):
        sweep_in_depth(ctx2, combo)
    ctx2.result.meta.pop("load")
    with pytest.raises(ValueError, match="no record of how its data were read"):
        sweep_in_depth(ctx2, combo)


def test_explore_notebook_executes(small_synthetic, tmp_path):
    res = render_notebook(template_path("explore"), {"data": [str(small_synthetic)], "date": "2024-03-05"},
                          tmp_path, name="explore", progress=False)
    html = res.html.read_text(encoding="utf-8")
    assert html.count(FIGURE) == 1
    for title in ("Chart", "Trades", "Signal columns"):
        assert _anchor(title) in html
    assert "2024-03-05" in html and "bn_score" in html
    nb = nbformat.read(res.ipynb, as_version=4)
    mimes = {k for c in nb.cells for o in c.get("outputs", []) for k in o.get("data", {})}
    assert "application/vnd.plotly.v1+json" in mimes  # JupyterLab draws it natively


def test_failing_cell_names_notebook_cell_and_partial(tmp_path):
    import jupytext

    src = tmp_path / "broken.py"
    src.write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\ny = x + 1\n\n# %%\nraise RuntimeError(f"bad {y}")\n')
    nb = jupytext.read(src)
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    tpl = tmp_path / "broken.ipynb"
    nbformat.write(nb, tpl)
    with pytest.raises(ReportError) as err:
        render_notebook(tpl, {"x": 41}, tmp_path / "out", name="broken", progress=False)
    msg = str(err.value)
    assert "broken.ipynb" in msg and "cell 3/3" in msg and "RuntimeError: bad 42" in msg
    partial = err.value.partial
    assert partial == tmp_path / "out" / "broken.failed.ipynb" and str(partial) in msg
    executed = nbformat.read(partial, as_version=4)
    assert any(o.get("output_type") == "error" for c in executed.cells for o in c.get("outputs", []))
    assert not (tmp_path / "out" / "broken.html").exists()


def test_cli_errors_before_starting_a_kernel(tmp_path, capsys):
    ap = _parser()
    bad = tmp_path / "p.toml"
    bad.write_text("stop_ticks = 0\n")
    assert report_cmd.run(ap.parse_args(["report", "performance", "--params", str(bad), "--out", str(tmp_path)])) == 2
    assert "stop_ticks" in capsys.readouterr().out
    assert report_cmd.run(ap.parse_args(["report", "performance", str(tmp_path / "nope.scid")])) == 2
    assert report_cmd.run(ap.parse_args(["report", "performance", "--to", "soon"])) == 2
    assert report_cmd.run(ap.parse_args(["report", "sweep", "no-such-sweep", "--out", str(tmp_path)])) == 2
    assert report_cmd.run(ap.parse_args(["report", "performance", "--trials-from", "no-such-sweep",
                                         "--out", str(tmp_path)])) == 2
    assert "no-such-sweep" in capsys.readouterr().out
    (tmp_path / "not-a-sweep").mkdir()
    assert report_cmd.run(ap.parse_args(["report", "performance", "--trials-from", str(tmp_path / "not-a-sweep"),
                                         "--out", str(tmp_path)])) == 2
    assert "not a saved sweep" in capsys.readouterr().out
    assert not (tmp_path / "performance").exists() or not any((tmp_path / "performance").iterdir())


def test_performance_parameters_absolute_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args = _parser().parse_args(["report", "performance", "a.scid", "dir/*.gz", "--params", "p.toml", "--mode", "paper",
                                 "--from", "2020-01-01", "--no-store"])
    p = report_cmd.performance_parameters(args)
    assert p["data"] == [str(tmp_path / "a.scid"), str(tmp_path / "dir/*.gz")]
    assert p["params_file"] == str(tmp_path / "p.toml") and p["mode"] == "paper" and p["store"] is False
    assert p["date_from"] == "2020-01-01" and p["run_id"] is None


@pytest.mark.parametrize("ipynb", sorted(NOTEBOOK_DIR.glob("*.ipynb")), ids=lambda p: p.name)
def test_notebook_pairs_in_sync_and_stripped(ipynb):
    import jupytext

    py = ipynb.with_suffix(".py")
    assert py.exists(), f"{ipynb.name} has no percent-format pair {py.name}"
    nb = nbformat.read(ipynb, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{ipynb.name} holds outputs: strip them"
    paired = jupytext.read(py)
    assert [(c.cell_type, c.source) for c in nb.cells] == [(c.cell_type, c.source) for c in paired.cells], (
        f"{ipynb.name} and {py.name} differ: run `.venv/bin/jupytext --sync {py}`")
    assert nb.metadata.get("jupytext", {}).get("formats") == "ipynb,py:percent"
    assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), "no papermill parameters cell"


def test_performance_context_stores_only_when_asked(small_synthetic, tmp_path, monkeypatch):
    """Building a report's context is read-only unless ``store=True`` (which `navale report performance` passes)."""
    from research.reports.performance import performance_context
    from research.store import RunStore

    monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path / "store"))
    ctx = performance_context([str(small_synthetic)])
    assert not ctx.stored and not (tmp_path / "store" / "navale.duckdb").exists()
    stored = performance_context([str(small_synthetic)], store=True)
    assert stored.stored and stored.run_id == ctx.run_id
    with RunStore(read_only=True) as st:
        assert st.has_run(ctx.run_id)
