"""``navale report performance|sweep``: render a report notebook to standalone HTML (+ the executed .ipynb)."""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from .common import (
    SYNTHETIC_BANNER,
    FileProgress,
    add_data_options,
    add_params_options,
    progress_bar,
    require_writable_dir,
    run_id_arg,
)
from .common import console as make_console

DEFAULT_OUT = Path("reports")
STORE_FAILED = 3  # exit status: report written, the store could not take the run (saved as a pending bundle)


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale report`` (``performance`` and ``sweep``) on the top-level subparsers."""
    r = sub.add_parser(
        "report",
        help="HTML reports: performance of a backtest, validation of a sweep",
        description=(
            "Execute a report notebook (notebooks/*.ipynb, papermill) and export it as one standalone HTML page "
            "with the code hidden and the charts embedded (opens offline). The executed notebook is kept beside it."
        ),
        formatter_class=formatter,
    )
    rsub = r.add_subparsers(dest="command", metavar="SUBCOMMAND")
    p = rsub.add_parser(
        "performance",
        help="backtest DATA and render the performance report",
        description=(
            "Backtest DATA exactly as `navale backtest` does (same run id, run stored), then render headline metrics, "
            "equity and drawdowns, monthly returns, drawdown periods, trade distribution, attribution, fill audit, "
            "signal examples and the run manifest to REPORTS/performance/RUN_ID/performance_report.html."
        ),
        epilog=(
            "examples:\n"
            "  navale report performance                                   # the embedded synthetic data\n"
            "  navale report performance ../shared/data/es-5m/ESH20-CME.scid_BarData__5m.txt.gz\n"
            "  navale report performance ../shared/data/es-5m/*.gz --mode paper --from 2019-01-01\n"
            "  navale report performance --run paper-20240304-143000-1a2b3c     # a paper session\n"
        ),
        formatter_class=formatter,
    )
    add_data_options(p)
    add_params_options(p)
    p.add_argument("--run-id", type=run_id_arg,
                   help="store under this id: letters, digits, '.', '_', '-' (default: the hash `navale backtest` uses)")
    p.add_argument("--title", default="Battle Navale performance report", help="report title")
    p.add_argument("--examples", type=int, default=3, metavar="N", help="trades drawn in 'Signal examples' (default 3)")
    p.add_argument("--no-store", action="store_true", help="do not write the run to the store")
    p.add_argument("--run", metavar="RUN_ID", dest="paper_run", type=run_id_arg,
                   help="report this paper session (a run id of `navale runs` / `navale status`) instead of a "
                        "backtest: its trades, its per-bar equity from the journal in --state-dir when it still "
                        "holds the run, and the bars it ran on")
    p.add_argument("--state-dir", metavar="DIR",
                   help="with --run: the live state directory whose journal holds the session (default: "
                        "$NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--trials-from", metavar="SWEEP", default=None,
                   help="the sweep (folder or id under reports/sweeps) these parameters were chosen from: the DSR is "
                        "deflated by its trial count and Sharpe dispersion (default: 1 trial, DSR = PSR)")
    _common(p)

    s = rsub.add_parser(
        "sweep",
        help="render the validation report of a saved sweep",
        description=(
            "Grid summary, top configurations, parameter-stability heatmaps and plateau verdict, walk-forward "
            "(windows, IS vs OOS, stitched OOS equity, verdict), PBO (CSCV), DSR of the best and the promotion-gate "
            "preview of a sweep saved by `navale sweep`, to REPORTS/sweeps/SWEEP_ID/sweep_report.html."
        ),
        epilog=(
            "examples:\n"
            "  navale report sweep reports/sweeps/3f2a9c01d4e5b6a7\n"
            "  navale report sweep 3f2a9c01d4e5b6a7 --objective sortino --scheme anchored --is-periods 8\n"
        ),
        formatter_class=formatter,
    )
    s.add_argument("sweep", metavar="SWEEP_DIR_OR_ID", help="a saved sweep folder, or its id under REPORTS/sweeps/")
    s.add_argument("--objective", choices=("sharpe", "sortino", "net_pnl", "profit_factor"), default="sharpe",
                   help="what the walk-forward and the stability maps maximise (default sharpe)")
    s.add_argument("--scheme", choices=("rolling", "anchored"), default="rolling", help="walk-forward in-sample scheme")
    s.add_argument("--is-periods", type=int, default=None, metavar="N",
                   help="in-sample periods per window (default 4, or the largest the sweep's periods allow)")
    s.add_argument("--oos-periods", type=int, default=1, metavar="N", help="out-of-sample periods per window (default 1)")
    s.add_argument("--boundaries", default=None, metavar="FREQ",
                   help="walk-forward periods: a pandas frequency such as QS (default: the sweep's contract segments)")
    s.add_argument("--n-splits", type=int, default=16, metavar="S", help="CSCV blocks for the PBO (even, default 16)")
    s.add_argument("--title", default="Battle Navale sweep report", help="report title")
    _common(s)

    from .ml_common import add_source_options, add_validation_options

    m = rsub.add_parser(
        "ml",
        help="validate the signal-quality model and render the ML-validation report",
        description=(
            "Build the ML data set (as `navale ml dataset`), run the validation (as `navale ml validate`) unless "
            "--validation names a saved one, and render purged-CV metrics, out-of-sample metrics, the label-"
            "permutation test, train/CV/OOS gaps, learning and calibration curves, permutation importance, "
            "coefficients with confidence intervals and their stability, and the economic test (with vs without "
            "the filter, deflated Sharpe) to REPORTS/ml/DATA_ID/CONFIG_ID/ml_validation.html."
        ),
        epilog=(
            "examples:\n"
            "  navale report ml                                  # the embedded synthetic ML data set\n"
            "  navale report ml ../shared/data/es-5m/*.gz        # 2015-2020 train, 2021-2022 out of sample\n"
            "  navale report ml --validation reports/ml/DATA_ID/CONFIG_ID/validation\n"
        ),
        formatter_class=formatter,
    )
    add_source_options(m)
    add_validation_options(m)
    m.add_argument("--validation", metavar="DIR", help="render a validation saved by `navale ml validate`; its "
                   "model.joblib is executable code (a pickle): use only folders from a trusted source (a model "
                   "without its .json sidecar, or whose sha256 differs from it, is refused before it is loaded)")
    m.add_argument("--title", default="Battle Navale signal-quality model: validation", help="report title")
    _common(m)


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", metavar="DIR", default=None, help="reports folder (default: reports/)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar while the cells run")


def run(args: argparse.Namespace) -> int:
    from research.data import DataError
    from research.reports.render import ReportError
    from strategy.params import ParamsError

    console = make_console()
    if args.command in ("performance", "sweep", "ml"):  # an output folder that cannot be written: before any work
        require_writable_dir(Path(args.out) if args.out else DEFAULT_OUT, "--out" if args.out else "the reports folder")
    try:
        if args.command == "performance" and args.paper_run:
            return _paper_performance(args, console)
        if args.command == "performance":
            return _performance(args, console)
        if args.command == "sweep":
            return _sweep(args, console)
        if args.command == "ml":
            return _ml(args, console)
        console.print("[bold red]error:[/] choose a report: navale report performance | sweep | ml")
        return 2
    except (DataError, ParamsError, ValueError, FileNotFoundError, KeyError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except ReportError as exc:
        console.print(f"[bold red]report failed:[/] {exc}")
        return 1


def performance_parameters(args: argparse.Namespace) -> dict[str, Any]:
    """The notebook parameters of ``navale report performance`` (paths made absolute)."""
    return {
        "data": [str(_abs(p)) for p in (args.paths or [])],
        "params_file": str(_abs(args.params)) if args.params else None,
        "mode": args.mode,
        "session": args.session,
        "date_from": args.date_from,
        "date_to": args.date_to,
        "bar": args.bar,
        "run_id": args.run_id,
        "title": args.title,
        "examples": args.examples,
        "store": not args.no_store,
        "trials_from": args.trials_from,
        "allow_data_errors": args.allow_data_errors,
        "symbol": args.symbol,
    }


def _abs(p: str | Path) -> Path | str:
    s = str(p)
    if any(ch in s for ch in "*?["):  # a glob: keep it, anchored at the current folder
        return s if os.path.isabs(s) else str(Path.cwd() / s)
    return Path(s).expanduser().resolve()


def _performance(args: argparse.Namespace, console) -> int:
    from research.pipeline import expand, load_params, parse_date
    from research.reports.render import render_notebook, template_path
    from research.store.files import ensure_dir

    parse_date(args.date_from, "--from")
    parse_date(args.date_to, "--to")
    load_params(args.params, args.mode, args.session)  # bad parameters fail here, before a kernel starts
    if args.trials_from:  # a sweep folder, or an id under REPORTS/sweeps; a missing one fails here
        from research.validation.promotion import load_sweep, resolve_run

        sweeps = (Path(args.out) if args.out else DEFAULT_OUT) / "sweeps"
        args.trials_from = str(resolve_run(args.trials_from, sweeps).resolve())
        try:
            load_sweep(args.trials_from)
        except (OSError, KeyError) as exc:  # a folder that is not a saved sweep
            raise ValueError(f"--trials-from: {exc}") from None
    if args.paths:
        from research.pipeline import load_series

        # missing files and data errors fail here, in one line, before a kernel starts
        n_files = len(expand(args.paths))
        with progress_bar() as bar:
            task = bar.add_task("checking the data", total=n_files)
            on_file = FileProgress(bar, task, "checking")
            load_series(args.paths, bar=args.bar, date_from=args.date_from, date_to=args.date_to, on_file=on_file,
                        allow_data_errors=args.allow_data_errors, symbol=args.symbol,
                        on_check=lambda line: console.print(line, markup=False))
    else:
        with console.status("generating the embedded synthetic data set (first run only)..."):
            first = expand(None)[0]
        console.print(f"using the embedded default data set: {first}")
    base = Path(args.out) if args.out else DEFAULT_OUT
    root = ensure_dir(base / "performance")
    # the run id (a hash of the data actually kept) is known once the notebook has run: render into a
    # staging folder, then move the two files to performance/RUN_ID/
    stage = Path(tempfile.mkdtemp(prefix=".rendering-", dir=root)) if not args.run_id else root / args.run_id
    console.print("rendering the performance report (backtest, then the report cells)...")
    try:
        paths = render_notebook(template_path("performance_report"), performance_parameters(args), stage,
                                name="performance_report", progress=not args.no_progress,
                                title=args.title)
    except BaseException:
        if not args.run_id and not any(stage.iterdir()):
            stage.rmdir()
        raise
    run_id = str(paths.info.get("run_id") or args.run_id or "unknown")
    final = root / run_id
    if stage != final:
        final.mkdir(parents=True, exist_ok=True)
        html, ipynb = final / paths.html.name, final / paths.ipynb.name
        os.replace(paths.ipynb, ipynb)
        os.replace(paths.html, html)
        shutil.rmtree(stage, ignore_errors=True)
    else:
        html, ipynb = paths.html, paths.ipynb
    if paths.info.get("synthetic"):
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    store_error = paths.info.get("store_error")
    console.print(f"run {run_id}: {paths.info.get('trades', '?')} trades, {paths.info.get('figures', '?')} charts"
                  f"{'' if args.no_store or store_error else ', stored'}")
    console.print(f"executed notebook: {ipynb}")
    console.print(f"[bold]report:[/] {html}")
    if store_error:  # the report is written; the run waits as a pending bundle
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(store_error))}", soft_wrap=True)
        return STORE_FAILED
    return 0


def export_paper_run(run_id: str, out_dir: Path, state_dir: str | None = None) -> dict[str, Any]:
    """Write paper session ``run_id`` to ``out_dir`` as the performance notebook's ``paper_dir`` reads it
    (:data:`research.reports.performance.PAPER_FILES`): its run-store manifest, its closed trades (the journal's
    when the journal in ``state_dir`` holds the run: it has them all, even those not synced yet; else the
    store's) and the per-bar equity and position of the trader's heartbeats when the journal still holds them
    all. Returns what was found (``trades``, ``equity``, ``journal``). Raises ValueError naming what is missing."""
    import json

    from live import control
    from live.journal import Journal
    from research.performance import PerformanceTracker
    from research.reports.performance import PAPER_FILES
    from research.store import RunStore, default_store_path
    from research.store.files import atomic_write_bytes, atomic_write_text
    from research.store.runs import StoreError

    manifest = trades = None
    store = default_store_path()
    if store.exists():
        with RunStore(store, read_only=True) as rs:
            try:
                manifest = rs.manifest(run_id)
            except StoreError:
                manifest = None
            if manifest is not None:
                trades = rs.snapshots(run_id)
    if manifest is not None and str(manifest.get("kind") or manifest.get("mode")) not in ("paper", "data_collection",
                                                                                          "live"):
        raise ValueError(f"run {run_id} in the store {store} is not a paper session (kind "
                         f"{manifest.get('kind') or manifest.get('mode')!r}): `navale report performance` without "
                         "--run reports backtests")
    jpath = control.journal_path(control.state_dir(state_dir))
    equity = None
    found_journal = False
    if jpath.exists():
        with Journal(jpath, readonly=True) as j:
            jt = j.trades(run_id)
            if len(jt) or manifest is None:
                tracker = PerformanceTracker.from_journal(j, run_id)
                if len(jt) or tracker.equity is not None:
                    found_journal = True
                    trades = jt if len(jt) or trades is None else trades
                    if tracker.equity is not None:
                        equity = tracker.equity.to_frame("equity").assign(position=tracker.position)
    if manifest is None:
        where = f"the journal {jpath}" if found_journal else f"the run store {store} nor the journal {jpath}"
        raise ValueError(f"paper run {run_id!r} is not in the run store {store} (sessions run with --no-store are "
                         f"not): its parameters and bars are unknown" if found_journal else
                         f"no paper run {run_id!r} in {where} (see `navale runs`, or give --state-dir)")
    import io

    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / PAPER_FILES["manifest"], json.dumps({**manifest, "run_id": run_id}, default=str))
    buf = io.BytesIO()
    trades.to_parquet(buf, index=False)
    atomic_write_bytes(out_dir / PAPER_FILES["trades"], buf.getvalue())
    if equity is not None:
        buf = io.BytesIO()
        equity.to_parquet(buf)
        atomic_write_bytes(out_dir / PAPER_FILES["equity"], buf.getvalue())
    return {"trades": len(trades), "equity": equity is not None, "journal": str(jpath) if found_journal else None}


def _paper_performance(args: argparse.Namespace, console) -> int:
    from research.reports.render import render_notebook, template_path
    from research.store.files import ensure_dir

    given = [opt for opt, v in (("DATA", args.paths), ("--params", args.params), ("--mode", args.mode),
                                 ("--run-id", args.run_id), ("--trials-from", args.trials_from)) if v]
    if given:
        raise ValueError(f"--run reports a paper session with its own parameters and bars: do not also give "
                         f"{', '.join(given)}")
    run_id = args.paper_run
    root = ensure_dir((Path(args.out) if args.out else DEFAULT_OUT) / "performance")
    final = root / run_id
    with tempfile.TemporaryDirectory(prefix=".paper-", dir=root) as tmp:
        found = export_paper_run(run_id, Path(tmp), args.state_dir)
        console.print(f"paper session {run_id}: {found['trades']} trades, "
                      + ("per-bar equity from the journal" if found["equity"] else "equity from the trades only"))
        console.print("rendering the performance report of the paper session...")
        paths = render_notebook(template_path("performance_report"), {"paper_dir": tmp, "title": args.title,
                                                                      "examples": args.examples},
                                final, name="performance_report", progress=not args.no_progress, title=args.title)
    if paths.info.get("synthetic"):
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    console.print(f"executed notebook: {paths.ipynb}")
    console.print(f"[bold]report:[/] {paths.html}")
    return 0


def sweep_parameters(args: argparse.Namespace, sweep_dir: Path) -> dict[str, Any]:
    """The notebook parameters of ``navale report sweep``."""
    return {
        "sweep_dir": str(sweep_dir.resolve()),
        "objective": args.objective,
        "scheme": args.scheme,
        "is_periods": args.is_periods,
        "oos_periods": args.oos_periods,
        "boundaries": args.boundaries,
        "n_splits": args.n_splits,
        "title": args.title,
    }


def resolve_sweep(value: str, out: Path) -> Path:
    """A saved sweep folder: ``value`` itself, else ``out/sweeps/value``."""
    for cand in (Path(value), out / "sweeps" / value):
        if (cand / "meta.json").exists():
            return cand
    raise FileNotFoundError(f"{value!r} is not a saved sweep folder, nor a sweep id under {out / 'sweeps'}")


def _sweep(args: argparse.Namespace, console) -> int:
    import json

    from research.reports.render import render_notebook, template_path

    base = Path(args.out) if args.out else DEFAULT_OUT
    sweep_dir = resolve_sweep(args.sweep, base)
    meta = json.loads((sweep_dir / "meta.json").read_text(encoding="utf-8"))
    sweep_id = str(meta.get("sweep_id") or sweep_dir.name)
    out_dir = base / "sweeps" / sweep_id
    console.print(f"rendering the sweep report of {sweep_dir}...")
    paths = render_notebook(template_path("sweep_report"), sweep_parameters(args, sweep_dir), out_dir,
                            name="sweep_report", progress=not args.no_progress, title=args.title)
    if paths.info.get("synthetic"):
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    if paths.info.get("verdict"):
        console.print(f"walk-forward: {paths.info['verdict']}")
    console.print(f"executed notebook: {paths.ipynb}")
    console.print(f"[bold]report:[/] {paths.html}")
    return 0


def _ml(args: argparse.Namespace, console) -> int:
    from research.ml.validate import ValidationReport
    from research.reports.render import render_notebook, template_path

    from .ml_common import (
        dataset_from_args,
        exit_status,
        print_dataset,
        print_verdict,
        validate_with_progress,
        validation_config,
    )

    base = Path(args.out) if args.out else DEFAULT_OUT
    if args.validation:
        vdir = Path(args.validation)
        report = ValidationReport.load(vdir)  # a folder that is not a saved validation fails here
        if args.paths or args.runs or args.parquet or args.dataset:
            raise ValueError("--validation renders a saved validation: do not also name data (DATA, --run, "
                             "--parquet, --dataset)")
        if args.out:  # --out names the reports folder, as for the other reports
            out_dir = Path(args.out) / "ml" / (vdir.resolve().parent.name if vdir.name == "validation" else vdir.name)
        else:  # beside the validation it renders
            out_dir = vdir.resolve().parent if vdir.name == "validation" else vdir
    else:
        from research.ml.workflow import config_id, ml_id

        config = validation_config(args)
        ds = dataset_from_args(args, console)
        print_dataset(ds, console)
        report = validate_with_progress(ds, config, console)
        out_dir = base / "ml" / ml_id(ds) / config_id(config)
        vdir = report.save(out_dir / "validation")
        ds.save(out_dir.parent / "dataset")
    print_verdict(report, console)
    console.print("rendering the ML-validation report...")
    paths = render_notebook(template_path("ml_validation"), {"validation_dir": str(vdir.resolve()), "title": args.title},
                            out_dir, name="ml_validation", progress=not args.no_progress, title=args.title)
    if paths.info.get("synthetic"):
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    console.print(f"executed notebook: {paths.ipynb}")
    console.print(f"[bold]report:[/] {paths.html}")
    return exit_status(args, console, 0)  # 3 when the backtests of DATA wait as pending bundles
