"""``navale sweep``: a parameter grid over bar files with the fused sweep path (Dask or serial),
results saved as a `SweepResult` folder, the best combinations printed."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .common import SYNTHETIC_BANNER, add_data_options, add_params_options
from .common import console as make_console


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale sweep`` on the top-level subparsers."""
    s = sub.add_parser(
        "sweep",
        help="evaluate a parameter grid (signals + trades + metrics per combination) on bar files",
        description=(
            "Run every combination of a parameter grid through the fused numba path (signal kernel once per "
            "signal-parameter group, trade simulator per execution variant, metrics reduced on the fly), one data "
            "set per contract, serially or on a local Dask cluster, whichever the cost model says is faster (or --dask / "
            "--scheduler / --serial). Finished tasks are "
            "cached, so an interrupted sweep resumes. Without --grid/--param: research/sweep/default_grid.toml "
            f"({default_grid_size():,} combinations around the method's defaults, docs/method.md). Every grid value is checked "
            "against the parameter's range (docs/parameters.md); the combinations are counted, and the time and "
            f"memory estimated, before anything runs; grids above {MAX_COMBOS_TEXT} combinations are refused "
            "unless --max-combos raises the limit."
        ),
        epilog=(
            "examples:\n"
            "  navale sweep                                          # default grid, embedded synthetic data\n"
            "  navale sweep ../shared/data/es-5m/*.gz                # default grid, 32 contracts (engine chosen)\n"
            "  navale sweep FILES --param stop_ticks=5,7,9 --param target_r=1.5,2,3\n"
            "  navale sweep FILES --grid my_grid.toml --sample 200 --seed 1 --scheduler tcp://10.0.0.5:8786\n"
            "grid TOML:\n"
            "  [grid]\n"
            "  stop_ticks = [5, 7, 9]\n"
            "  entry_threshold = [0.2, 0.25, 0.3]\n"
        ),
        formatter_class=formatter,
    )
    add_data_options(s)
    add_params_options(s, "base parameters TOML (the grid's values replace them)")
    s.add_argument("--grid", metavar="FILE", help="grid TOML ([grid] name = [values...], optional [sample] n, seed)")
    s.add_argument("--param", action="append", default=[], metavar="NAME=V1,V2,...",
                   help="values of one parameter (repeatable; added to / replacing the --grid file's)")
    s.add_argument("--sample", type=int, metavar="N", help="evaluate N combinations drawn at random from the grid")
    s.add_argument("--seed", type=int, default=0, help="seed of --sample (default 0)")
    s.add_argument("--scheduler", metavar="ADDRESS",
                   help="Dask scheduler, e.g. tcp://HOST:8786 (default: serial or a local cluster, by the estimate)")
    s.add_argument("--workers", type=int, default=2,
                   help="local cluster worker processes, 1 to the machine's cores (default 2; ignored with --scheduler)")
    engine = s.add_mutually_exclusive_group()
    engine.add_argument("--serial", action="store_true", help="run in this process, without Dask")
    engine.add_argument("--dask", action="store_true",
                        help="always start a local Dask cluster of --workers (default: only when the estimate says it "
                             "saves 15 %% of the serial time)")
    s.add_argument("--chunk", type=int, metavar="N",
                   help="combinations per task (default: <= 1024, >= 8 tasks per sweep)")
    s.add_argument("--split", choices=("contract", "none"), default="contract",
                   help="one data set per contract of a continuous series (default) or whole series")
    s.add_argument("--cache", metavar="DIR", help="task cache folder (default: $NAVALE_DATA_DIR/sweep-cache)")
    s.add_argument("--no-cache", action="store_true", help="neither read nor write the task cache")
    s.add_argument("--out", metavar="DIR", help="output folder (default: reports/sweeps/SWEEP_ID)")
    s.add_argument("--top", type=int, default=10, metavar="N",
                   help="combinations shown, best Sharpe first (default 10)")
    s.add_argument("--max-combos", type=int, default=None, metavar="N",
                   help=f"refuse grids of more than N combinations (default {MAX_COMBOS_TEXT}); whatever the limit, "
                        "the time and memory are estimated before the combinations are built, and a sweep needing "
                        "more memory than the machine has available is refused")


# Kept equal to research.sweep.budget.DEFAULT_MAX_COMBOS by a test: the parser does not import numpy.
MAX_COMBOS_TEXT = "20,000"


def default_grid_size() -> int:
    """Combinations of research/sweep/default_grid.toml, counted from its value lists (pure Python:
    `navale --help` shows it without importing the sweep package)."""
    import math
    import tomllib

    path = Path(__file__).resolve().parents[1] / "sweep" / "default_grid.toml"
    values = tomllib.loads(path.read_text(encoding="utf-8"))["grid"]
    return math.prod(len(v) if isinstance(v, list) else 1 for v in values.values())


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    from research.data import DataError
    from strategy.params import ParamsError

    console = make_console()
    try:
        return _sweep(args, console)
    except OSError as exc:  # a missing input (2), an output on a read-only or full disk (4): the path and the cause
        from .common import WRITE_FAILED, os_error_line

        console.print(f"[bold red]error:[/] {escape(os_error_line(exc))}", soft_wrap=True)
        return 2 if isinstance(exc, FileNotFoundError) else WRITE_FAILED
    except (DataError, ParamsError, ValueError) as exc:
        console.print(f"[bold red]error:[/] {exc}", soft_wrap=True)  # one line, however long
        return 2


def _grid(args: argparse.Namespace):
    from research.sweep import DEFAULT_GRID_PATH, ParamGrid

    if args.grid:
        grid = ParamGrid.from_toml(args.grid)
    elif not args.param:
        grid = ParamGrid.from_toml(DEFAULT_GRID_PATH)
    else:
        grid = None
    if args.param:
        extra = ParamGrid.from_strings(args.param)
        values = {**(grid.values if grid else {}), **extra.values}
        grid = ParamGrid(values, sample_n=grid.sample_n if grid else None, seed=grid.seed if grid else None)
    if args.sample is not None:
        grid = grid.sample(args.sample, args.seed)
    return grid


def _base(args: argparse.Namespace):
    from research.pipeline import load_params

    return load_params(args.params, args.mode, args.session)


def _sweep(args: argparse.Namespace, console) -> int:
    from rich.progress import Progress

    from research.pipeline import expand, load_series, parse_date_range
    from research.sweep import run_sweep
    from research.sweep.budget import DEFAULT_MAX_COMBOS, check_combos
    from research.sweep.runner import check_workers

    parse_date_range(args.date_from, args.date_to)
    limit = DEFAULT_MAX_COMBOS if args.max_combos is None else args.max_combos
    for option, value, low in (("--max-combos", limit, 1), ("--workers", args.workers, 1), ("--chunk", args.chunk, 1),
                               ("--sample", args.sample, 1), ("--seed", args.seed, 0), ("--top", args.top, 0)):
        if value is not None and value < low:
            raise ValueError(f"{option} {value}: must be >= {low}")
    if args.scheduler and (args.serial or args.dask):
        raise ValueError("--scheduler runs on that cluster: drop --serial / --dask")
    scheduler = "serial" if args.serial else (None if args.dask else (args.scheduler or "auto"))
    check_workers(args.workers, args.scheduler)  # also with --serial: a value no local cluster could run
    grid = _grid(args)
    n = check_combos(grid, limit, source=args.grid or "")  # counted, never built: a huge grid is refused here
    base = _base(args)
    grid.validate(base)  # every value and relation, without building the combinations
    console.print(f"grid: {n:,} combinations ({grid.signal_groups:,} signal group(s)), limit {limit:,} (--max-combos)")
    if not args.paths:
        with console.status("generating the embedded synthetic data set (first run only)..."):
            first = expand(None)[0]
        console.print(f"using the embedded default data set: {first}")
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading", total=None)
        loaded = load_series(args.paths, bar=args.bar, date_from=args.date_from, date_to=args.date_to,
                             on_file=lambda p: progress.update(task, description=f"loading {p.name}"),
                             allow_data_errors=args.allow_data_errors, symbol=args.symbol,
                             on_check=lambda line: console.print(line, markup=False))
    if any(s.synthetic for s in loaded):
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    where = "serially" if args.serial else (f"on {args.scheduler}" if args.scheduler else
                                            f"on a local Dask cluster ({args.workers} workers)" if args.dask else
                                            "(engine: serial or a local Dask cluster, by the estimate)")
    console.print(f"sweeping {n:,} combinations over {', '.join(s.name for s in loaded)} "
                  f"({sum(len(s.frame) for s in loaded):,} bars, split={args.split}) {where}")
    res = run_sweep(loaded, grid, base=base, scheduler=scheduler, n_workers=args.workers, chunk_size=args.chunk,
                    split=args.split, cache_dir=False if args.no_cache else args.cache, progress=console,
                    max_combos=limit, on_estimate=lambda est: console.print(est.text()))
    out = Path(args.out) if args.out else Path("reports") / "sweeps" / res.meta["sweep_id"]
    # how the data were read, so a report can backtest a chosen combination in depth on the same bars
    res.meta["load"] = {"paths": [str(Path(p).resolve()) for s in loaded for p in s.files], "bar": args.bar,
                        "date_from": args.date_from, "date_to": args.date_to, "data_check": loaded[0].data_check,
                        "symbol": args.symbol}
    res.save(out)
    _print_top(console, res, args.top)
    m = res.meta
    console.print(
        f"{m['n_trials']} combinations x {m['datasets']} data sets ({len(res.daily_pnl)} sessions, "
        f"{m['signal_groups']} signal groups) in {m['elapsed_s']:.1f} s, engine {m['engine']}, "
        f"{m['tasks_computed']} tasks computed, {m['tasks_cached']} from the cache\n"
        f"results: {out}  (SweepResult.load(...): grid, summary, daily_pnl, segments, meta)"
    )
    return 0


def _print_top(console, res, n: int) -> None:
    import math

    from rich.table import Table

    from research.sweep.result import profit_factor_text

    top = res.top(n)
    names = res.param_names
    t = Table(title=f"top {len(top)} of {len(res.grid)} by Sharpe (daily, annualised)", title_justify="left")
    t.add_column("combo", justify="right")
    for k in names:
        t.add_column(k, justify="right")
    for col in ("trades", "win rate", "net $", "PF", "exp R", "Sharpe", "max DD $"):
        t.add_column(col, justify="right")

    def f(x: float, fmt: str) -> str:
        return "-" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)

    for combo, r in top.iterrows():
        t.add_row(str(combo), *[str(r[k]) for k in names], f"{int(r.trades):,}", f(r.win_rate, ".1%"),
                  f(r.net_pnl_usd, ",.0f"), profit_factor_text(r.profit_factor), f(r.expectancy_r, "+.3f"), f(r.sharpe, ".2f"),
                  f(r.max_drawdown_usd, ",.0f"))
    console.print(t)
