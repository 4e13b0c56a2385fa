"""What ``navale ml`` and ``navale report ml`` share: the options that name the trades and the
validation, and the console views of a data set and a validation."""

from __future__ import annotations

import argparse
from pathlib import Path

from .common import (
    SYNTHETIC_BANNER,
    FileProgress,
    add_data_options,
    add_params_options,
    progress_bar,
)

__all__ = ["add_source_options", "add_validation_options", "validation_config", "dataset_from_args",
           "print_dataset", "validate_with_progress", "print_verdict"]


def add_source_options(p: argparse.ArgumentParser) -> None:
    """Where the trades come from: a data set folder, store runs, Parquet exports, or bar files backtested."""
    add_data_options(p)
    add_params_options(p)
    p.add_argument("--dataset", metavar="DIR", help="a data set folder written by `navale ml dataset`")
    p.add_argument("--run", dest="runs", action="append", metavar="RUN_ID",
                   help="snapshots of this stored run (repeat for several runs); bars reloaded from its manifest")
    p.add_argument("--parquet", action="append", metavar="FILE",
                   help="snapshots from a Parquet export (`navale runs export`); repeatable; no bar features")
    p.add_argument("--no-bar-features", action="store_true",
                   help="leave out the two bar features (realised volatility, delta z-score)")
    p.add_argument("--no-store", action="store_true", help="do not store the backtest run of DATA")
    p.add_argument("--no-shadow", action="store_true",
                   help="drop shadow trades (signals a live quality filter skipped, followed as if taken; kept "
                        "by default: they are labelled samples like the others)")

def add_validation_options(p: argparse.ArgumentParser) -> None:
    """Options of the ModelValidator."""
    p.add_argument("--oos-from", default="2021-01-01", metavar="DATE",
                   help="out-of-sample period start: train before, test from (default 2021-01-01)")
    p.add_argument("--folds", type=int, default=5, help="purged CV folds (default 5)")
    p.add_argument("--permutations", type=int, default=200, help="label permutations (default 200)")
    p.add_argument("--C-grid", default="0.001,0.01,0.1,1", metavar="LIST", help="C values tried (default 0.001,0.01,0.1,1)")
    p.add_argument("--jobs", type=int, default=2, help="parallel jobs for the permutation test (default 2)")

def validation_config(args: argparse.Namespace):
    """A ValidationConfig from the CLI options."""
    from research.ml.validate import ValidationConfig

    try:
        grid = tuple(float(x) for x in str(args.C_grid).split(",") if x.strip())
    except ValueError:
        raise ValueError(f"--C-grid {args.C_grid!r}: a comma-separated list of numbers") from None
    if not grid or any(c <= 0 for c in grid):
        raise ValueError("--C-grid: positive numbers, at least one")
    if args.folds < 2:
        raise ValueError("--folds must be >= 2")
    from research.pipeline import parse_date

    parse_date(args.oos_from, "--oos-from")
    if args.permutations < 1:
        raise ValueError("--permutations must be >= 1")
    return ValidationConfig(n_splits=args.folds, oos_from=args.oos_from, C_grid=grid,
                            n_permutations=args.permutations, n_jobs=max(1, args.jobs))

def store_errors(args: argparse.Namespace) -> list[str]:
    """Why the backtests of DATA could not be stored (they wait as pending bundles); the command
    finishes its work and writes its outputs first, then reports them (:func:`exit_status`)."""
    return args.__dict__.setdefault("store_errors", [])


def exit_status(args: argparse.Namespace, console, status: int) -> int:
    """``status``, or 3 with one ``error:`` line per store failure recorded in :func:`store_errors`."""
    from rich.markup import escape

    for message in store_errors(args):
        console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return 3 if store_errors(args) and status == 0 else status


def pending_fallback(args: argparse.Namespace) -> Path:
    """Where runs the store cannot take are saved when the data folder cannot take them either: beside
    the command's outputs (``--out``, or the folder of a ``--out`` model file), else ``reports/ml/pending``
    (``navale report ml``: ``--out`` is its reports folder)."""
    out = getattr(args, "out", None)
    if not out:
        return Path("reports") / "ml" / "pending"
    out = Path(out)
    if getattr(args, "group", None) == "ml" and getattr(args, "command", None) == "train":
        return out.parent / "pending"  # --out names the model file
    if getattr(args, "group", None) == "report":
        return out / "ml" / "pending"
    return out / "pending"


def dataset_from_args(args: argparse.Namespace, console):
    """Build (or read) the data set the options name; prints what it does."""
    from research.ml.workflow import build_dataset
    from research.pipeline import parse_date

    parse_date(args.date_from, "--from")
    parse_date(args.date_to, "--to")
    from research.pipeline import expand

    files = len(expand(args.paths)) if args.paths and not (args.dataset or args.runs or args.parquet) else 1
    with progress_bar() as bar:
        task = bar.add_task("building the ML data set", total=files)
        on_file = FileProgress(bar, task)

        def status(msg: str) -> None:
            bar.update(task, description=msg, completed=on_file.done)

        ds = build_dataset(paths=args.paths or None, runs=args.runs, parquet=args.parquet, dataset_dir=args.dataset,
                           params_file=args.params, mode=args.mode, session=args.session, date_from=args.date_from,
                           date_to=args.date_to, bar=args.bar, bar_features=not args.no_bar_features,
                           shadow=not getattr(args, "no_shadow", False), store=not args.no_store, status=status, on_file=on_file,
                           on_store_error=store_errors(args).append, allow_data_errors=args.allow_data_errors,
                           on_check=lambda line: console.print(line, markup=False), symbol=args.symbol,
                           fallback_dirs=[pending_fallback(args)])
    if ds.meta.get("synthetic"):
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    if args.parquet and not (args.dataset or args.runs):  # said in the status line too, which does not stay
        console.print("[yellow]Parquet export(s): the two bar features (realised volatility, delta z-score) are "
                      "left out (an export has no bars)[/]")
    return ds

def print_dataset(ds, console) -> None:
    from rich.table import Table

    s = ds.summary()
    console.print(f"data set: {s['trades']:,} trades ({s['first']} .. {s['last']}), {s['features']} features, "
                  f"target hit {s['win_rate']:.1%}, mean net R {s['mean_r']:+.3f}, embargo {ds.embargo}")
    from rich.markup import escape

    for w in ds.meta.get("warnings") or []:
        console.print(f"[yellow]warning:[/] {escape(str(w))}")
    if len(ds.rejected):
        t = Table(title=f"{len(ds.rejected)} rejected rows", show_lines=False)
        t.add_column("reason")
        t.add_column("rows", justify="right")
        for reason, n in ds.rejected["reason"].value_counts().items():
            t.add_row(str(reason), str(n))
        console.print(t)

def validate_with_progress(ds, config, console):
    """Run the validator with a progress bar over its stages. scikit-learn's warnings about a metric
    undefined on one fold (one class only) are not printed: the report states those folds itself."""
    import warnings

    from sklearn.exceptions import UndefinedMetricWarning

    from research.ml.validate import STAGES, ModelValidator

    with warnings.catch_warnings(), progress_bar() as bar:
        warnings.simplefilter("ignore", UndefinedMetricWarning)
        task = bar.add_task("validating", total=len(STAGES))

        def stage(name: str) -> None:
            done = STAGES.index(name) if name in STAGES else None
            bar.update(task, description=f"validating: {name.replace('_', ' ')}", completed=done)

        report = ModelValidator(config).run(ds, progress=stage)
        bar.update(task, completed=len(STAGES))
    return report

def print_verdict(report, console) -> None:
    from rich.table import Table

    cv, oos = report.cv_summary, report.oos_metrics
    auc_p = oos.get("auc_p_value", float("nan"))
    console.print(f"purged CV AUC {cv.loc['auc', 'mean']:.3f} ± {cv.loc['auc', 'std']:.3f}; out-of-sample AUC "
                  f"{oos['auc']:.3f} (p = {auc_p:.3f}) on {oos['n']:,} trades; label-permutation p = "
                  f"{report.permutation['p_value']:.3f}")

    def f(x: float, fmt: str) -> str:
        return "-" if x is None or x != x else format(x, fmt)

    t = Table(title="out-of-sample economic test (same trades, with and without the filter)")
    for col in ("variant", "trades", "net $", "Sharpe", "max DD $", "DSR", "vs random same share: $", "Sharpe",
                "DSR"):
        t.add_column(col, justify="left" if col == "variant" else "right")
    for name, row in report.economic.iterrows():
        t.add_row(str(row.get("variant", name)), f"{int(row['trades']):,}", f(row["net_pnl_usd"], ",.0f"),
                  f(row["sharpe"], ".2f"), f(row["max_drawdown_usd"], ",.0f"), f(row["dsr"], ".3f"),
                  f(row.get("improvement_usd"), "+,.0f"), f(row.get("improvement_sharpe"), ".2f"),
                  f(row.get("improvement_dsr"), ".3f"))
    console.print(t)
    from rich.markup import escape

    for w in report.dataset.get("warnings", []):  # e.g. the OOS period fell back to the last 25% of the trades
        console.print(f"[yellow]warning:[/] {escape(str(w))}")
    style = "bold green" if report.verdict.get("adds_value") else "bold yellow"
    console.print(f"[{style}]{report.verdict['text']}[/]")
