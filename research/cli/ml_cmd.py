"""``navale ml dataset|train|validate``: the signal-quality model from trade snapshots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .data_cmd import SYNTHETIC_BANNER, _console
from .options import add_data_options, add_params_options

DEFAULT_ML_DIR = Path("reports") / "ml"


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


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale ml`` (dataset, train, validate)."""
    m = sub.add_parser(
        "ml",
        help="signal-quality model: data set, training, validation",
        description=(
            "Meta-labelling of the Battle Navale signals: which trades are worth taking. The data set is built from "
            "trade snapshots (entry context only, leakage-guarded), the model is a logistic regression, and the "
            "validation uses purged, embargoed time-ordered folds, an untouched out-of-sample period, a label-"
            "permutation test and an economic test with the deflated Sharpe ratio. Workflow: docs/ml.md."
        ),
        epilog=(
            "examples:\n"
            "  navale ml dataset ../shared/data/es-5m/*.gz          # backtest 2015-2022, build the data set\n"
            "  navale ml validate ../shared/data/es-5m/*.gz         # purged CV, OOS 2021-2022, permutation test\n"
            "  navale ml train ../shared/data/es-5m/*.gz --out models/signal_quality.joblib\n"
            "  navale report ml ../shared/data/es-5m/*.gz           # the ML-validation report (HTML)\n"
            "  navale backtest ../shared/data/es-5m/*.gz --ml-model models/signal_quality.joblib --mode paper\n"
        ),
        formatter_class=formatter,
    )
    msub = m.add_subparsers(dest="command", metavar="SUBCOMMAND")

    d = msub.add_parser("dataset", help="build the ML data set (features, labels, rejected rows) and save it",
                        formatter_class=formatter,
                        description="Clean the snapshots (bad rows rejected with the reason), build the features and "
                                    "labels, check every feature for look-ahead, and save dataset.parquet, "
                                    "rejected.csv and dataset.json to --out (default reports/ml/DATA_ID/dataset).")
    add_source_options(d)
    d.add_argument("--out", metavar="DIR", help="output folder")

    t = msub.add_parser("train", help="train the model and save it (metadata beside it)", formatter_class=formatter,
                        description="Fit the logistic regression on the trades decided before --oos-from (so the "
                                    "out-of-sample period stays untouched), or on all trades with --all (after "
                                    "validation, for paper trading). Saves FILE and FILE.json.")
    add_source_options(t)
    t.add_argument("--oos-from", default="2021-01-01", metavar="DATE",
                   help="train only on trades whose labels close before this date (default 2021-01-01)")
    t.add_argument("--all", action="store_true", help="train on every trade (no out-of-sample period kept)")
    t.add_argument("--C", type=float, default=None, dest="C",
                   help="inverse L2 strength (default: chosen by purged CV on the training trades)")
    t.add_argument("--out", metavar="FILE", default=None, help="model file (default reports/ml/DATA_ID/model.joblib)")

    v = msub.add_parser("validate", help="cross-validate, test out of sample, check for overfitting, economic test",
                        formatter_class=formatter,
                        description="Run the ModelValidator and save its results (validation.json, model.joblib) "
                                    "to --out (default reports/ml/DATA_ID/CONFIG_ID/validation). `navale report ml` renders them.")
    add_source_options(v)
    add_validation_options(v)
    v.add_argument("--out", metavar="DIR", help="output folder")


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


def dataset_from_args(args: argparse.Namespace, console):
    """Build (or read) the data set the options name; prints what it does."""
    from research.ml.workflow import build_dataset
    from research.pipeline import parse_date

    parse_date(args.date_from, "--from")
    parse_date(args.date_to, "--to")
    with console.status("building the ML data set...") as st:
        ds = build_dataset(paths=args.paths or None, runs=args.runs, parquet=args.parquet, dataset_dir=args.dataset,
                           params_file=args.params, mode=args.mode, session=args.session, date_from=args.date_from,
                           date_to=args.date_to, bar=args.bar, bar_features=not args.no_bar_features,
                           store=not args.no_store, status=lambda msg: st.update(msg + "..."))
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


def run(args: argparse.Namespace) -> int:
    from research.data import DataError
    from research.ml.features import LeakageError
    from research.ml.model import FeatureSchemaError
    from research.snapshots import SnapshotError
    from research.store import StoreError
    from strategy.params import ParamsError

    console = _console()
    try:
        if args.command == "dataset":
            return _dataset(args, console)
        if args.command == "train":
            return _train(args, console)
        if args.command == "validate":
            return _validate(args, console)
        console.print("[bold red]error:[/] choose: navale ml dataset | train | validate")
        return 2
    except LeakageError as exc:
        console.print(f"[bold red]leakage:[/] {exc}")
        return 2
    except (DataError, ParamsError, SnapshotError, FeatureSchemaError, StoreError, ValueError, FileNotFoundError,
            KeyError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2


def _out_dir(args: argparse.Namespace, ds, leaf: str, config: Any = None) -> Path:
    """--out, else reports/ml/DATA_ID/LEAF (a validation: reports/ml/DATA_ID/CONFIG_ID/LEAF)."""
    from research.ml.workflow import config_id, ml_id

    if args.out:
        return Path(args.out)
    base = DEFAULT_ML_DIR / ml_id(ds)
    return (base / config_id(config) if config is not None else base) / leaf


def _dataset(args: argparse.Namespace, console) -> int:
    ds = dataset_from_args(args, console)
    print_dataset(ds, console)
    out = ds.save(_out_dir(args, ds, "dataset"))
    console.print(f"[bold]data set:[/] {out} (dataset.parquet, rejected.csv, dataset.json; hash {ds.data_hash()})")
    return 0


def _train(args: argparse.Namespace, console) -> int:
    from research.ml.model import SimpleLinearModel
    from research.pipeline import parse_date

    if not args.all:
        parse_date(args.oos_from, "--oos-from")
    ds = dataset_from_args(args, console)
    print_dataset(ds, console)
    if args.all:
        train = ds
        console.print(f"training on all {len(train):,} trades (no out-of-sample period kept)")
    else:
        train, oos = ds.split_oos(args.oos_from)
        if len(train) < 10:
            raise ValueError(f"--oos-from {args.oos_from}: only {len(train)} trade(s) close before it (data set "
                             f"{ds.summary()['first']} .. {ds.summary()['last']}): choose a later date, or --all")
        console.print(f"training on {len(train):,} trades closed before {args.oos_from} (minus the embargo); "
                      f"{len(oos):,} out-of-sample trades left untouched")
    C = args.C
    if C is None:
        from research.ml.validate import select_C

        C, table = select_C(train)
        grid = sorted(table["C"])
        if len(grid) > 1 and C in (grid[0], grid[-1]):
            console.print(f"[yellow]warning:[/] C = {C:g} is at the edge of the grid {', '.join(f'{c:g}' for c in grid)}: "
                          "the best value may lie beyond it")
        console.print(f"C = {C:g} (purged-CV log loss on the training trades: "
                      + ", ".join(f"{c:g}: {v:.4f}" for c, v in zip(table["C"], table["cv_log_loss_mean"])) + ")")
    model = SimpleLinearModel(C=C).train(train)
    m = model.metadata["metrics"]["train"]
    console.print(f"in-sample: AUC {m['auc']:.3f}, log loss {m['log_loss']:.4f}, Brier {m['brier']:.4f} "
                  f"(base rate {m['base_rate']:.1%}); in-sample figures say nothing about skill: see `navale ml validate`")
    path = Path(args.out) if args.out else _out_dir(args, ds, "model.joblib")
    model.save(path)
    console.print(f"[bold]model:[/] {path} (metadata: {path}.json)")
    return 0


def validate_with_progress(ds, config, console):
    """Run the validator with a rich progress line per stage."""
    from research.ml.validate import ModelValidator

    with console.status("validating...") as st:
        return ModelValidator(config).run(ds, progress=lambda stage: st.update(f"validating: {stage}..."))


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


def _validate(args: argparse.Namespace, console) -> int:
    config = validation_config(args)
    ds = dataset_from_args(args, console)
    print_dataset(ds, console)
    report = validate_with_progress(ds, config, console)
    print_verdict(report, console)
    out = report.save(_out_dir(args, ds, "validation", config))
    console.print(f"[bold]validation:[/] {out} (render it: navale report ml --validation {out})")
    return 0
