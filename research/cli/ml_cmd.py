"""``navale ml dataset|train|validate``: the signal-quality model from trade snapshots."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from . import common
from .common import progress_bar
from .ml_common import (
    add_source_options,
    add_validation_options,
    dataset_from_args,
    exit_status,
    print_dataset,
    print_verdict,
    validate_with_progress,
    validation_config,
)

DEFAULT_ML_DIR = Path("reports") / "ml"


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
                                    "validation, for paper trading). Saves FILE and FILE.json: the metadata and the "
                                    "sha256 of FILE, checked before FILE is loaded (FILE is a pickle, i.e. code: "
                                    "share it only with its sidecar, load only files from a trusted source).")
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










def run(args: argparse.Namespace) -> int:
    from research.data import DataError
    from research.ml.features import LeakageError
    from research.ml.model import FeatureSchemaError
    from research.store import StoreError
    from research.store.snapshots import SnapshotError
    from strategy.params import ParamsError

    console = common.console()
    try:
        if args.command == "dataset":
            return exit_status(args, console, _dataset(args, console))
        if args.command == "train":
            return exit_status(args, console, _train(args, console))
        if args.command == "validate":
            return exit_status(args, console, _validate(args, console))
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

        with progress_bar() as bar:
            bar.add_task(f"choosing C by purged CV on {len(train):,} trades", total=None)
            C, table = select_C(train)
        grid = sorted(table["C"])
        if len(grid) > 1 and C in (grid[0], grid[-1]):
            console.print(f"[yellow]warning:[/] C = {C:g} is at the edge of the grid {', '.join(f'{c:g}' for c in grid)}: "
                          "the best value may lie beyond it")
        console.print(f"C = {C:g} (purged-CV log loss on the training trades: "
                      + ", ".join(f"{c:g}: {v:.4f}" for c, v in zip(table["C"], table["cv_log_loss_mean"])) + ")")
    with progress_bar() as bar:
        bar.add_task(f"training on {len(train):,} trades", total=None)
        model = SimpleLinearModel(C=C).train(train)
    m = model.metadata["metrics"]["train"]
    console.print(f"in-sample: AUC {m['auc']:.3f}, log loss {m['log_loss']:.4f}, Brier {m['brier']:.4f} "
                  f"(base rate {m['base_rate']:.1%}); in-sample figures say nothing about skill: see `navale ml validate`")
    path = Path(args.out) if args.out else _out_dir(args, ds, "model.joblib")
    model.save(path)
    console.print(f"[bold]model:[/] {path} (metadata: {path}.json)")
    return 0






def _validate(args: argparse.Namespace, console) -> int:
    config = validation_config(args)
    ds = dataset_from_args(args, console)
    print_dataset(ds, console)
    report = validate_with_progress(ds, config, console)
    print_verdict(report, console)
    out = report.save(_out_dir(args, ds, "validation", config))
    console.print(f"[bold]validation:[/] {out} (render it: navale report ml --validation {out})")
    return 0
