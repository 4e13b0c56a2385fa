"""`navale ml dataset|train|validate`, `navale report ml` and `navale backtest --ml-model` end to end.

One small synthetic data set (30 sessions, ~130 trades) is built once per module; the data set, the
validation (10 permutations, 3 folds) and the model are shared by module-scoped fixtures. Every command
runs through ``research.cli.main`` with ``--out`` under a temp folder; the store is conftest's isolated
NAVALE_DATA_DIR.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
from pathlib import Path

import nbformat
import pandas as pd
import pytest
from conftest import es5m_files

from research.cli import main
from research.data import SyntheticSpec, default_dataset
from research.ml.dataset import MLDataset
from research.ml.features import BAR_COLUMNS, FEATURES
from research.ml.validate import ValidationReport

OOS_DATE = "2024-03-29"  # inside the synthetic span (2024-03-04 .. 2024-04-12)
FAST = ["--permutations", "10", "--folds", "3"]
ML_SECTIONS = ("Verdict", "Data set", "Model selection", "Cross-validation", "Out of sample", "Overfitting checks",
               "Feature importance", "Economic test")
FIGURE = 'class="plotly-graph-div"'
BAR_FEATURES = {f.name for f in FEATURES if set(f.inputs) & set(BAR_COLUMNS)}  # rv12_log, delta_z_with


def run(argv: list[str]) -> tuple[int, str]:
    """``navale ARGV``: exit code and stdout, whitespace collapsed (rich wraps long lines at 160 columns)."""
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        rc = main([str(a) for a in argv])
    return rc, " ".join(buf.getvalue().split())


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> Path:
    return default_dataset(SyntheticSpec(days=30), directory=tmp_path_factory.mktemp("synth30"))


@pytest.fixture(scope="module")
def dataset(data_dir, synth, tmp_path_factory) -> tuple[Path, str]:
    """`navale ml dataset FILE --out DIR` (backtest stored): the folder and stdout."""
    out = tmp_path_factory.mktemp("ml") / "dataset"
    rc, text = run(["ml", "dataset", synth, "--out", out])
    assert rc == 0, text
    return out, text


@pytest.fixture(scope="module")
def validation(dataset, tmp_path_factory) -> tuple[Path, str]:
    """`navale ml validate --dataset DIR` (10 permutations, 3 folds): the folder and stdout."""
    out = tmp_path_factory.mktemp("ml") / "validation"
    rc, text = run(["ml", "validate", "--dataset", dataset[0], *FAST, "--out", out])
    assert rc == 0, text
    return out, text


@pytest.fixture(scope="module")
def model_file(dataset, tmp_path_factory) -> Path:
    """`navale ml train --oos-from OOS_DATE` on the data set built with the bar features."""
    path = tmp_path_factory.mktemp("models") / "m.joblib"
    rc, text = run(["ml", "train", "--dataset", dataset[0], "--oos-from", OOS_DATE, "--out", path])
    assert rc == 0, text
    return path


@pytest.fixture(scope="module")
def ml_report(validation) -> tuple[Path, str, str]:
    """`navale report ml --validation VDIR`: the HTML file, its text and stdout."""
    vdir = validation[0]
    rc, text = run(["report", "ml", "--validation", vdir, "--no-progress"])
    assert rc == 0, text
    html = vdir.parent / "ml_validation.html"
    return html, html.read_text(encoding="utf-8"), text


# ---------------------------------------------------------------------- 1. dataset
def test_dataset_writes_files_and_reloads(dataset):
    out, text = dataset
    for name in ("dataset.parquet", "rejected.csv", "dataset.json"):
        assert (out / name).exists(), name
    ds = MLDataset.load(out)
    info = json.loads((out / "dataset.json").read_text())
    assert ds.data_hash() == info["data_hash"] and info["data_hash"] in text
    assert len(ds) > 100 and ds.meta["synthetic"] is True and "SYNTHETIC DATA" in text
    assert BAR_FEATURES <= set(ds.features)  # bars at hand: the bar features are in
    assert f"data set: {len(ds):,} trades" in text


def test_dataset_backtests_as_navale_backtest_without_the_margin_floor(dataset, synth, tmp_path):
    """`navale ml dataset FILE` backtests FILE as `navale backtest FILE` does, but with the account's
    margin floor off (labels are signal outcomes): the same trades where the floor is never reached,
    under a run id of its own (the manifest says margin_floor = false)."""
    rc, text = run(["backtest", synth, "--out", tmp_path / "bt", "--no-store"])
    assert rc == 0, text
    run_id = json.loads((tmp_path / "bt" / "stats.json").read_text())["run_id"]
    ds = MLDataset.load(dataset[0])
    (ml_run,) = ds.frame["run_id"].unique().tolist()
    assert ml_run != run_id
    assert len(ds) + len(ds.rejected) == len(pd.read_parquet(tmp_path / "bt" / "trades.parquet"))


# ---------------------------------------------------------------------- 2. train
def test_train_before_oos_date(dataset, model_file):
    ds = MLDataset.load(dataset[0])
    meta = json.loads(Path(str(model_file) + ".json").read_text())
    assert model_file.exists()
    assert pd.Timestamp(meta["train_to"]) < pd.Timestamp(OOS_DATE, tz="UTC")
    assert 10 <= meta["n_train"] < len(ds)
    assert meta["hyperparameters"]["C"] in (0.001, 0.01, 0.1, 1.0)  # chosen by purged CV from the default grid
    assert meta["training_data_hash"] != ds.data_hash()  # a subset
    assert meta["bar_features"] is True and BAR_FEATURES <= set(meta["features"])


def test_train_all_and_C(dataset, tmp_path):
    ds = MLDataset.load(dataset[0])
    path = tmp_path / "all.joblib"
    rc, text = run(["ml", "train", "--dataset", dataset[0], "--all", "--C", "0.5", "--out", path])
    assert rc == 0, text
    meta = json.loads((tmp_path / "all.joblib.json").read_text())
    assert meta["n_train"] == len(ds) and meta["training_data_hash"] == ds.rows_hash()
    assert meta["dataset_hash"] == ds.data_hash()
    assert pd.Timestamp(meta["train_to"]) == ds.t0.max()
    assert meta["hyperparameters"]["C"] == 0.5
    assert "training on all" in text and str(path) in text


def test_train_errors(dataset, tmp_path):
    # the default --oos-from (2021-01-01) precedes the synthetic data: nothing to train on, said plainly
    rc, text = run(["ml", "train", "--dataset", dataset[0], "--out", tmp_path / "m.joblib"])
    assert rc == 2 and "--oos-from 2021-01-01: only 0 trade(s)" in text and "--all" in text
    rc, text = run(["ml", "train", "--dataset", dataset[0], "--oos-from", "soonish", "--out", tmp_path / "m.joblib"])
    assert rc == 2 and "--oos-from 'soonish' is not a date" in text
    rc, text = run(["ml", "train", "--dataset", dataset[0], "--all", "--C", "-1", "--out", tmp_path / "m.joblib"])
    assert rc == 2 and "C must be > 0" in text
    assert not (tmp_path / "m.joblib").exists()


# ---------------------------------------------------------------------- 3. validate
def test_validate_saves_report_and_prints_verdict(validation, dataset):
    vdir, text = validation
    rep = ValidationReport.load(vdir)
    assert rep.model is not None and (vdir / "model.joblib").exists()
    for name in ("selection", "cv_folds", "cv_summary", "gaps", "importance", "coefficients", "stability",
                 "learning_curve", "calibration", "oos_predictions", "economic", "equity"):
        assert len(getattr(rep, name)), name
    assert len(rep.cv_folds) == 3 and rep.permutation["n_permutations"] == 10
    assert rep.config["n_splits"] == 3 and rep.config["n_permutations"] == 10
    assert rep.dataset["data_hash"] == MLDataset.load(dataset[0]).data_hash()
    assert rep.dataset["synthetic"] is True
    assert " ".join(rep.verdict["text"].split()) in text
    assert "purged CV AUC" in text and "out-of-sample economic test" in text and str(vdir) in text
    # 2021-01-01 precedes the synthetic data: the OOS period falls back to the last 25%, and the user is told
    assert rep.dataset["oos_rule"].startswith("fallback")
    assert "warning: oos_from 2021-01-01 leaves 0 train" in text


def test_validate_option_errors(dataset, tmp_path):
    ds = dataset[0]
    cases = [
        (["--C-grid", "abc"], "--C-grid 'abc': a comma-separated list of numbers"),
        (["--C-grid", "0,1"], "--C-grid: positive numbers"),
        (["--folds", "1"], "--folds must be >= 2"),
        (["--permutations", "0"], "--permutations must be >= 1"),
        (["--oos-from", "later"], "--oos-from 'later' is not a date"),
    ]
    for extra, msg in cases:
        rc, text = run(["ml", "validate", "--dataset", ds, *extra, "--out", tmp_path / "v"])
        assert rc == 2 and f"error: {msg}" in text, (extra, text)
    assert not (tmp_path / "v").exists()


# ---------------------------------------------------------------------- 4. report ml --validation
def test_report_from_saved_validation(ml_report, validation):
    html_path, html, text = ml_report
    vdir = validation[0]
    assert html_path.parent == vdir.parent  # next to the validation folder
    for title in ML_SECTIONS:
        assert re.search(rf'<h2 id="{re.escape(title.replace(" ", "-"))}[^"]*"', html), title
    assert 'id="Synthetic-data"' in html and "SYNTHETIC DATA" in html and "SYNTHETIC DATA" in text
    assert html.index('id="Synthetic-data"') < html.index('id="Verdict"')
    nb = nbformat.read(html_path.with_suffix(".ipynb"), as_version=4)  # the executed notebook, kept beside it
    from research.reports.render import notebook_info

    info = notebook_info(nb)
    assert info["synthetic"] is True and info["figures"] >= 9
    assert html.count(FIGURE) == info["figures"]
    assert re.findall(r"<script[^>]*\bsrc=", html) == []  # offline
    for cell in nb.cells:  # no code in the page
        if cell.cell_type == "code" and cell.source.strip():
            first = next(ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith("#"))
            assert first.strip() not in html, first
    rep = ValidationReport.load(vdir)
    assert rep.verdict["text"].split(":")[0] in html
    # the data set facts the report reads exist in the saved validation: spans, source, labelling rules
    for key in ("train_from", "train_to", "oos_to", "oos_rule", "source", "data_hash"):
        assert f">{key}<" in html, key
    assert rep.dataset["span_train"][0] in html and "y_win = 1 when exit_reason" in html
    assert f"report: {html_path}" in text


def test_report_ml_missing_validation(tmp_path):
    (tmp_path / "empty").mkdir()
    rc, text = run(["report", "ml", "--validation", tmp_path / "empty", "--no-progress"])
    assert rc == 2 and "no validation.json" in text
    assert not (tmp_path / "empty" / "ml_validation.html").exists()


# ---------------------------------------------------------------------- 5. report ml FILE
def test_report_ml_full_path(data_dir, synth, dataset, tmp_path):
    from research.ml.workflow import ml_id

    out = tmp_path / "reports"
    rc, text = run(["report", "ml", synth, *FAST, "--out", out, "--no-progress"])
    assert rc == 0, text
    (data_folder,) = (out / "ml").iterdir()
    ds = MLDataset.load(data_folder / "dataset")
    from research.cli import build_parser
    from research.cli.ml_cmd import validation_config
    from research.ml.workflow import config_id

    args = build_parser().parse_args(["report", "ml", str(synth), *map(str, FAST), "--jobs", "1"])
    folder = data_folder / config_id(validation_config(args))  # n_jobs does not change the results nor the folder
    assert data_folder.name == ml_id(ds) and folder.is_dir()
    assert ds.data_hash() == MLDataset.load(dataset[0]).data_hash()  # same file, same run, same data set
    rep = ValidationReport.load(folder / "validation")
    assert rep.dataset["data_hash"] == ds.data_hash()
    html = (folder / "ml_validation.html").read_text(encoding="utf-8")
    assert (folder / "ml_validation.ipynb").exists()
    assert 'id="Verdict"' in html and 'id="Economic-test"' in html and html.count(FIGURE) >= 9
    assert " ".join(rep.verdict["text"].split()) in text


# ---------------------------------------------------------------------- 6. backtest --ml-model
def test_backtest_ml_filter(synth, model_file, tmp_path):
    out = tmp_path / "bt"
    rc, text = run(["backtest", synth, "--ml-model", model_file, "--ml-threshold", "0.2", "--out", out, "--no-store"])
    assert rc == 0, text
    assert "ML filter" in text and "P(win) >= 0.20, same trades" in text and "all trades" in text
    scored = pd.read_csv(out / "ml_filter.csv")
    trades = pd.read_csv(out / "trades.csv")
    assert {"p_win", "taken", "trade_id", "pnl_usd"} <= set(scored.columns)
    assert scored["p_win"].between(0, 1).all()
    assert (scored["taken"] == (scored["p_win"] >= 0.2)).all()
    assert 0 < scored["taken"].sum() < len(scored) <= len(trades)
    assert set(scored["trade_id"]) <= set(trades["trade_id"])
    # the bar features were rebuilt from the bars: the model (trained with them) scored every trade
    assert len(scored) == len(trades)
    taken = scored[scored["taken"]]
    assert f"taken (P(win) >= 0.20) │ {len(taken):,} │ {taken['pnl_usd'].sum():,.0f}" in text


def test_backtest_ml_filter_paper_mode_threshold(synth, model_file, tmp_path):
    out = tmp_path / "bt"
    rc, text = run(["backtest", synth, "--ml-model", model_file, "--mode", "paper", "--out", out, "--no-store"])
    assert rc == 0, text
    assert "P(win) >= 0.70, same trades" in text
    scored = pd.read_csv(out / "ml_filter.csv")
    assert (scored["taken"] == (scored["p_win"] >= 0.70)).all()


def test_backtest_ml_errors(synth, model_file, tmp_path):
    import joblib

    rc, text = run(["backtest", synth, "--ml-model", tmp_path / "nope.joblib", "--no-store", "--out", tmp_path / "a"])
    assert rc == 2 and "no such model file" in text
    junk = tmp_path / "junk.joblib"
    junk.write_text("not a model\n")
    rc, text = run(["backtest", synth, "--ml-model", junk, "--no-store", "--out", tmp_path / "a"])
    assert rc == 2 and "junk.joblib: no metadata sidecar junk.joblib.json" in text
    joblib.dump([1, 2, 3], tmp_path / "list.joblib")  # a pickle beside a genuine model's sidecar
    (tmp_path / "list.joblib.json").write_bytes(Path(str(model_file) + ".json").read_bytes())
    rc, text = run(["backtest", synth, "--ml-model", tmp_path / "list.joblib", "--no-store", "--out", tmp_path / "a"])
    assert rc == 2 and "list.joblib: sha256" in text and "differs" in text
    rc, text = run(["backtest", synth, "--ml-model", model_file, "--ml-threshold", "1.5", "--no-store",
                    "--out", tmp_path / "a"])
    assert rc == 2 and "--ml-threshold 1.5: must be in [0, 1]" in text
    assert not (tmp_path / "a").exists()  # every one failed before the backtest


# ---------------------------------------------------------------------- 7. other sources and errors
def test_source_errors(dataset, tmp_path):
    rc, text = run(["ml", "dataset", "--run", "no-such-run", "--out", tmp_path / "d"])
    assert rc == 2 and "no-such-run" in text
    (tmp_path / "empty").mkdir()
    rc, text = run(["ml", "validate", "--dataset", tmp_path / "empty", *FAST, "--out", tmp_path / "v"])
    assert rc == 2 and "no dataset.json" in text
    rc, text = run(["ml", "dataset", "--parquet", tmp_path / "nope.parquet", "--out", tmp_path / "d"])
    assert rc == 2 and "nope.parquet: no such file" in text
    rc, text = run(["ml"])
    assert rc == 2 and "navale ml dataset | train | validate" in text
    assert not (tmp_path / "d").exists() and not (tmp_path / "v").exists()


def test_dataset_from_store_run(dataset, tmp_path):
    """--run RUN_ID: the stored snapshots, bars reloaded from the manifest: the same data set."""
    ds = MLDataset.load(dataset[0])
    (run_id,) = ds.frame["run_id"].unique()
    rc, text = run(["ml", "dataset", "--run", run_id, "--out", tmp_path / "d"])
    assert rc == 0, text
    again = MLDataset.load(tmp_path / "d")
    assert again.features == ds.features and len(again) == len(ds)
    pd.testing.assert_frame_equal(again.X, ds.X)


def test_parquet_export_without_bar_features(dataset, synth, tmp_path):
    ds = MLDataset.load(dataset[0])
    (run_id,) = ds.frame["run_id"].unique()
    export = tmp_path / "snap.parquet"
    rc, text = run(["runs", "export", export, "--run", run_id])
    assert rc == 0 and export.exists(), text
    rc, text = run(["ml", "dataset", "--parquet", export, "--out", tmp_path / "d"])
    assert rc == 0, text
    assert "bar features" in text and "left out" in text
    pq = MLDataset.load(tmp_path / "d")
    assert pq.meta["bar_features"] is False and not BAR_FEATURES & set(pq.features)
    assert set(pq.features) == set(ds.features) - BAR_FEATURES and len(pq) == len(ds)
    # a model trained without the bar features is applied without them by `navale backtest --ml-model`
    model = tmp_path / "nobar.joblib"
    rc, text = run(["ml", "train", "--parquet", export, "--oos-from", OOS_DATE, "--C", "0.1", "--out", model])
    assert rc == 0, text
    assert json.loads(Path(str(model) + ".json").read_text())["bar_features"] is False
    rc, text = run(["backtest", synth, "--ml-model", model, "--ml-threshold", "0.2", "--out", tmp_path / "bt",
                    "--no-store"])
    assert rc == 0, text
    scored = pd.read_csv(tmp_path / "bt" / "ml_filter.csv")
    assert len(scored) == len(pq) and (scored["taken"] == (scored["p_win"] >= 0.2)).all()


# ---------------------------------------------------------------------- 8. the real 32 contracts
@pytest.mark.realdata
def test_ml_validate_real_es5m(tmp_path):
    files = es5m_files()
    out = tmp_path / "validation"
    rc, text = run(["ml", "validate", *files, "--permutations", "20", "--out", out])
    assert rc == 0, text
    rep = ValidationReport.load(out)
    info = rep.dataset
    assert info["n_oos"] > 200 and info["n_train"] > 1000
    assert pd.Timestamp(info["oos_from"]) == pd.Timestamp("2021-01-01", tz="UTC")
    assert info["oos_rule"].startswith("configured") and info["synthetic"] is False
    assert "SYNTHETIC DATA" not in text and rep.permutation["n_permutations"] == 20
    assert " ".join(rep.verdict["text"].split()) in text
