"""``navale backtest``: signals + futures backtest over files, summary table, outputs, run stored."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import (
    SYNTHETIC_BANNER,
    WRITE_FAILED,
    FileProgress,
    add_data_options,
    add_params_options,
    os_error_line,
    progress_bar,
    require_writable_dir,
    run_id_arg,
)
from .common import console as make_console


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale backtest`` on the top-level subparsers."""
    b = sub.add_parser(
        "backtest",
        help="backtest the Battle Navale signals on bar files; trades stored as snapshots",
        description=(
            "Compute the signals, simulate the trades (docs/method.md 7.6-7.7: next-open fills, 7-tick stop, 2R target, "
            "stop first inside one bar, golden-rule/opposite/time/session exits), print a summary, write trades and "
            "equity to --out and store the run (manifest + trade snapshots) in $NAVALE_DATA_DIR/navale.duckdb "
            "(several runs: one transaction). A store held by another process is waited for, up to "
            "$NAVALE_STORE_TIMEOUT seconds (default 60). When the store cannot be written, the outputs are kept, "
            "the run is saved as a pending bundle for `navale runs import`, and the exit status is 3. An output folder "
            "that cannot be written (read-only, full disk, a file of that name) is refused before the backtest or, "
            "when it fails while writing, the runs are still stored and the exit status is 4. With --json, stdout "
            "holds the JSON alone (everything else goes to stderr)."
        ),
        epilog=(
            "examples:\n"
            "  navale backtest                                   # the embedded synthetic data (1-minute bars)\n"
            "  navale backtest ../shared/data/es-5m/*.gz         # 32 contracts stitched, per-contract/per-year table\n"
            "  navale backtest ../shared/data/es-5m/*.gz --series contracts --mode paper\n"
            "  navale backtest FILE --params my.toml --from 2019-01-01 --to 2020-01-01 --out reports/bt\n"
        ),
        formatter_class=formatter,
    )
    add_data_options(b)
    add_params_options(b)
    b.add_argument("--series", choices=("continuous", "contracts"), default="continuous",
                   help="several contracts: one stitched series (default) or one backtest per contract")
    b.add_argument("--out", metavar="DIR", help="output folder (default: reports/backtest/RUN_ID)")
    b.add_argument("--run-id", type=run_id_arg,
                   help="store under this id: letters, digits, '.', '_', '-' (default: a hash of params, data, "
                        "mode, session and code)")
    b.add_argument("--no-store", action="store_true", help="do not write the run to the store")
    b.add_argument("--json", action="store_true",
                   help="print the summary as JSON on stdout; tables, messages and errors go to stderr")
    b.add_argument("--ml-model", metavar="FILE", help="score every trade with this signal-quality model (navale ml "
                   "train) and report the trades it would take: P(win) >= the mode's threshold. A model file is "
                   "executable code (a pickle): use only files from a trusted source; one without its FILE.json "
                   "sidecar, or whose sha256 differs from it, is refused before it is loaded")
    b.add_argument("--ml-threshold", type=float, metavar="P", default=None,
                   help="P(win) threshold for --ml-model (default: min_signal_probability, else the mode's "
                        "0.55 data_collection / 0.70 paper / 0.80 live / 0.60 backtest)")


STORE_FAILED = 3  # exit status: outputs written, the store could not take the run (saved as pending)


def run(args: argparse.Namespace) -> int:
    from research.data import DataError
    from research.store import StoreError
    from strategy.params import ParamsError

    console = make_console(stderr=args.json)
    try:
        _parse_date(args.date_from, "--from")
        _parse_date(args.date_to, "--to")
        return _backtest(args, console)
    except (DataError, ParamsError, ValueError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    except StoreError as exc:  # e.g. a bad NAVALE_STORE_TIMEOUT
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return STORE_FAILED


def _params(args: argparse.Namespace):
    from research.pipeline import load_params

    return load_params(args.params, args.mode, args.session)


def _parse_date(value: str | None, option: str):
    from research.pipeline import parse_date

    return parse_date(value, option)


def _backtest(args: argparse.Namespace, console) -> int:
    from research.backtest.outputs import write_outputs
    from research.pipeline import backtest_series, expand, load_series

    params = _params(args)
    require_writable_dir(args.out or Path("reports") / "backtest", "--out" if args.out else "the reports folder")
    if not args.paths:
        with console.status("generating the embedded synthetic data set (first run only)..."):
            first = expand(None)[0]
        console.print(f"using the embedded default data set: {first}")
    bar = args.bar
    n_files = len(expand(args.paths)) if args.paths else 1
    with progress_bar(enabled=not args.json) as progress:
        task = progress.add_task("loading files", total=n_files)
        on_file = FileProgress(progress, task)
        try:
            loaded = load_series(args.paths, bar=bar, date_from=args.date_from, date_to=args.date_to,
                                 series=args.series, on_file=on_file, allow_data_errors=args.allow_data_errors, symbol=args.symbol,
                                 on_check=lambda line: console.print(line, markup=False))
        except ValueError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            return 2
        progress.update(task, completed=n_files)
    synthetic = any(s.synthetic for s in loaded)
    if synthetic:
        console.print(f"[bold yellow]{SYNTHETIC_BANNER}[/]")
    if len(loaded) > 1 and args.series == "continuous":
        console.print("[yellow]files are not contracts of one product: backtesting each on its own[/]")

    model = None
    if args.ml_threshold is not None and not 0 <= args.ml_threshold <= 1:  # before the backtest too
        raise ValueError(f"--ml-threshold {args.ml_threshold}: must be in [0, 1]")
    if args.ml_threshold is not None and not args.ml_model:
        raise ValueError("--ml-threshold needs --ml-model (the model whose P(win) it thresholds)")
    if args.ml_model:  # a bad model file fails before the backtest
        from research.ml.model import SimpleLinearModel

        model = SimpleLinearModel.load(args.ml_model)
    results = []
    with progress_bar(enabled=not args.json) as progress:
        task = progress.add_task("backtesting", total=len(loaded))
        for series in loaded:
            name = series.name
            progress.update(task, description=f"backtesting {name} ({len(series.frame):,} bars)")
            run_id = None
            if args.run_id:
                run_id = args.run_id if len(loaded) == 1 else f"{args.run_id}-{name}"
            bt = backtest_series(series, params, label=name if len(loaded) > 1 else args.series,
                                 date_from=args.date_from, date_to=args.date_to, bar=bar, run_id=run_id,
                                 store=False)
            results.append((name, bt))
            progress.advance(task)

    summaries = []
    out_root = Path(args.out) if args.out else Path("reports") / "backtest"
    write_failed: OSError | None = None
    for name, bt in results:  # the output files first: a store that fails then loses nothing
        out_dir = Path(args.out) if args.out else out_root / bt.run_id
        if args.out and len(results) > 1:
            out_dir = out_dir / name
        try:
            write_outputs(out_dir, bt.result, params, bt.manifest, bt.summary, bt.run_id)
        except OSError as exc:  # e.g. the disk filled up: the runs are still stored below
            write_failed = exc
            break
        summaries.append((name, bt.run_id, bt.result, bt.result.stats(), out_dir))
    store_error = None if args.no_store else _store(results, out_root)
    if write_failed is not None:
        from rich.markup import escape

        ids = ", ".join(bt.run_id for _n, bt in results)
        kept = ("not stored (--no-store)" if args.no_store else
                f"not stored either ({store_error})" if store_error else f"stored as {ids} (navale runs show ID)")
        console.print(f"[bold red]error:[/] {escape(os_error_line(write_failed))}; the run(s) were {escape(kept)}")
        return WRITE_FAILED

    _print_tables(console, summaries, params)
    if model is not None:
        frames = {s.name: s.frame for s in loaded}
        for name, bt in results:
            out_dir = next(o for n, _r, _res, _s, o in summaries if n == name)
            _ml_filter(console, model, bt, frames[name], params, args.ml_threshold, out_dir)
    if args.json:
        doc = [{"series": n, "run_id": r, "out": str(o), "stats": json_stats(s),
                "margin_usd": res.meta.get("margin_usd"), "trading_stopped": res.meta.get("trading_stopped")}
               for n, r, res, s, o in summaries]
        print(json.dumps(doc, indent=1, default=float))
    if store_error is not None:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(store_error)}", soft_wrap=True)
        return STORE_FAILED
    return 0


def _store(results, out_root: Path) -> str | None:
    """Store every run in one transaction; the one-line error when the store could not take them
    (the runs are then saved as pending bundles, in the data folder or under ``out_root``/pending)."""
    from research.pipeline import store_backtests
    from research.store import RunsNotStoredError

    try:
        store_backtests([bt for _name, bt in results], fallback_dirs=[out_root / "pending"])
    except RunsNotStoredError as exc:
        return str(exc)
    return None


def json_stats(stats) -> dict:
    """Stats as JSON values: NaN and infinities (no trades, no loss) become null, never NaN/Infinity."""
    import math

    out = {}
    for k, v in stats.items():
        f = float(v)
        out[k] = None if not math.isfinite(f) else (int(f) if k in ("trades", "sessions") else f)
    return out


def _ml_filter(console, model, bt, bars, params, threshold, out_dir: Path) -> None:
    """Print what the model's filter would take of the run's trades (same trade universe)."""
    from rich.table import Table

    from research.ml.workflow import filter_backtest

    f = filter_backtest(model, bt, bars, params, threshold=threshold)
    t = Table(title=f"ML filter ({model!r}): P(win) >= {f.threshold:.2f}, same trades", title_justify="left")
    for col in ("", "trades", "net $", "target hit", "mean net R"):
        t.add_column(col, justify="left" if not col else "right")
    for name, r in f.summary.iterrows():
        t.add_row(str(name), f"{int(r.trades):,}", _fmt_money(r.net_pnl_usd),
                  f"{r.target_hit:.1%}" if r.trades else "-", f"{r.mean_r:+.3f}" if r.trades else "-")
    console.print(t)
    n_in = int(f.scored["in_training"].sum())
    if n_in:
        console.print(f"  [yellow]{n_in} of {len(f.scored)} trades fall in the model's training period (to "
                      f"{model.metadata.get('train_to')}): their figures are in-sample[/]")
    other = f.trained_on_other_params
    if other:
        console.print(f"  [yellow]the model was trained on trades of parameters {', '.join(other)}; these are "
                      f"{params.hash()}: its probabilities were not validated on this trade stream[/]")
    if f.unscored:
        console.print(f"  {f.unscored} trade(s) could not be scored (indicator warm-up): the filter skips them")
    console.print(f"  per-trade P(win): {f.write_scores(out_dir)}")


def _fmt_money(x: float) -> str:
    return f"{x:,.0f}"


def _print_tables(console, summaries, params) -> None:
    from rich.table import Table

    from research.backtest.reporting import (
        fmt_ratio,
        margin_text,
        per_group_table,
        summary_text,
    )

    if len(summaries) > 1:  # --series contracts: one line per independent run
        t = Table(title="independent backtests", title_justify="left")
        for col in ("series", "run", "trades", "win rate", "net $", "profit factor", "Sharpe", "max DD $"):
            t.add_column(col, justify="left" if col in ("series", "run") else "right")
        tot_n = tot_pnl = 0.0
        for name, run_id, _res, st, _o in summaries:
            tot_n += st.trades
            tot_pnl += st.net_pnl_usd
            t.add_row(name, run_id, f"{int(st.trades):,}" if st.trades else "no trades",
                      f"{st.win_rate:.1%}" if st.trades else "-", _fmt_money(st.net_pnl_usd),
                      fmt_ratio(st.profit_factor), fmt_ratio(st.sharpe_daily), _fmt_money(st.max_drawdown_usd))
        t.add_row("total", "", f"{int(tot_n):,}", "", _fmt_money(tot_pnl), "", "", "", style="bold")
        console.print(t)
        for name, _run_id, res, _st, _o in summaries:
            if res.meta.get("trading_stopped"):
                margin = margin_text(res.meta, params.contracts, params.initial_capital_usd)
                console.print(f"  [bold yellow]{name}: {margin}[/]")
        return
    for name, run_id, res, stats, out_dir in summaries:
        by = "contract" if res.trades["contract"].nunique() > 1 else None
        tables = [("contract", per_group_table(res, "contract"))] if by else []
        tables.append(("year", per_group_table(res, "year")))
        for label, tab in tables:
            t = Table(title=f"{name}: by {label}", title_justify="left")
            for col in (label, "trades", "win rate", "net $", "profit factor", "avg R", "max DD $ (closed)"):
                t.add_column(col, justify="left" if col == label else "right")
            for key, r in tab.iterrows():
                style = "bold" if key == "total" else None
                t.add_row(str(key), f"{int(r.trades):,}" if r.trades else "no trades",
                          f"{r.win_rate:.1%}" if r.trades else "-",
                          _fmt_money(r.net_pnl_usd), fmt_ratio(r.profit_factor) if r.trades else "-",
                          f"{r.avg_r:+.3f}" if r.trades else "-", _fmt_money(r.max_drawdown_usd), style=style)
            console.print(t)
        console.print(f"[bold]{name}[/] run {run_id}  mode={params.mode} session={params.session} "
                      f"order flow={res.meta['order_flow_mode']}  contracts={params.contracts}  "
                      f"commission ${res.meta['commission_per_side']:.2f}/side  slippage {params.slippage_ticks} tick")
        console.print("  " + summary_text(stats))
        margin = margin_text(res.meta, params.contracts, params.initial_capital_usd)
        console.print(f"  [bold yellow]{margin}[/]" if res.meta.get("trading_stopped") else f"  {margin}")
        if stats.trades:
            console.print(
                f"  fill audit: {int(res.trades.intrabar_ambiguous.sum())} trades with stop and target in one bar, "
                f"{int(res.trades.gap_through_stop.sum())} gaps through the stop; optimistic net "
                f"${res.trades.pnl_usd_optimistic.sum():,.0f} vs ${stats.net_pnl_usd:,.0f}")
        console.print(f"  outputs: {out_dir}")
