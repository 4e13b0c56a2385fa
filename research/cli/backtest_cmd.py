"""``navale backtest``: signals + futures backtest over files, summary table, outputs, run stored."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .data_cmd import SYNTHETIC_BANNER, _console
from .options import add_data_options, add_params_options


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale backtest`` on the top-level subparsers."""
    b = sub.add_parser(
        "backtest",
        help="backtest the Battle Navale signals on bar files; trades stored as snapshots",
        description=(
            "Compute the signals, simulate the trades (METHOD.md 7.6-7.7: next-open fills, 7-tick stop, 2R target, "
            "stop first inside one bar, golden-rule/opposite/time/session exits), print a summary, write trades and "
            "equity to --out and store the run (manifest + trade snapshots) in $NAVALE_DATA_DIR/navale.duckdb."
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
    b.add_argument("--run-id", help="store under this id (default: a hash of params, data, mode, session and code)")
    b.add_argument("--no-store", action="store_true", help="do not write the run to the store")
    b.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")
    b.add_argument("--ml-model", metavar="FILE", help="score every trade with this signal-quality model (navale ml "
                   "train) and report the trades it would take: P(win) >= the mode's threshold")
    b.add_argument("--ml-threshold", type=float, metavar="P", default=None,
                   help="P(win) threshold for --ml-model (default: min_signal_probability, else the mode's "
                        "0.55 data_collection / 0.70 paper / 0.80 live / 0.60 backtest)")


def run(args: argparse.Namespace) -> int:
    from research.data import DataError
    from strategy.params import ParamsError

    console = _console()
    try:
        _parse_date(args.date_from, "--from")
        _parse_date(args.date_to, "--to")
        return _backtest(args, console)
    except (DataError, ParamsError, ValueError, FileNotFoundError) as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2


def _params(args: argparse.Namespace):
    from research.pipeline import load_params

    return load_params(args.params, args.mode, args.session)


def _parse_date(value: str | None, option: str):
    from research.pipeline import parse_date

    return parse_date(value, option)


def _backtest(args: argparse.Namespace, console) -> int:
    import pandas as pd
    from rich.progress import Progress

    from research.pipeline import backtest_series, expand, load_series

    params = _params(args)
    if not args.paths:
        with console.status("generating the embedded synthetic data set (first run only)..."):
            first = expand(None)[0]
        console.print(f"using the embedded default data set: {first}")
    bar = args.bar
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading", total=None)

        def on_file(p):
            progress.update(task, description=f"loading {p.name}")

        try:
            loaded = load_series(args.paths, bar=bar, date_from=args.date_from, date_to=args.date_to,
                                 series=args.series, on_file=on_file)
        except ValueError as exc:
            console.print(f"[bold red]error:[/] {exc}")
            return 2
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
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("backtesting", total=len(loaded))
        for series in loaded:
            name = series.name
            progress.update(task, description=f"backtesting {name} ({len(series.frame):,} bars)")
            run_id = None
            if args.run_id:
                run_id = args.run_id if len(loaded) == 1 else f"{args.run_id}-{name}"
            bt = backtest_series(series, params, label=name if len(loaded) > 1 else args.series,
                                 date_from=args.date_from, date_to=args.date_to, bar=bar, run_id=run_id,
                                 store=not args.no_store)
            results.append((name, bt))
            progress.advance(task)

    summaries = []
    for name, bt in results:
        out_dir = Path(args.out) if args.out else Path("reports") / "backtest" / bt.run_id
        if args.out and len(results) > 1:
            out_dir = out_dir / name
        _write_outputs(out_dir, bt.result, params, bt.manifest, bt.summary, bt.run_id)
        summaries.append((name, bt.run_id, bt.result, bt.result.stats(), out_dir))

    _print_tables(console, summaries, params)
    if model is not None:
        frames = {s.name: s.frame for s in loaded}
        for name, bt in results:
            out_dir = next(o for n, _r, _res, _s, o in summaries if n == name)
            _ml_filter(console, model, bt, frames[name], params, args.ml_threshold, out_dir)
    if args.json:
        doc = [{"series": n, "run_id": r, "out": str(o), "stats": {k: (None if pd.isna(v) else v) for k, v in s.items()}}
               for n, r, _res, s, o in summaries]
        print(json.dumps(doc, indent=1, default=float))
    return 0


def _ml_filter(console, model, bt, bars, params, threshold, out_dir: Path) -> None:
    """Score the run's trades with the model and print what the filter would take (same trade universe)."""
    from rich.table import Table

    from research.ml.dataset import MLDataProcessor
    from research.ml.workflow import apply_filter
    from research.storage import atomic_write_text

    thr = params.signal_probability_threshold if threshold is None else threshold
    if not 0 <= thr <= 1:
        raise ValueError(f"--ml-threshold {thr}: must be in [0, 1]")
    proc = MLDataProcessor(bar_features=bool(model.metadata.get("bar_features", True)),
                           prior_day=bool(model.metadata.get("prior_day", True)))
    ds = proc.from_backtest(bt, bars)
    res = apply_filter(ds, model, threshold=thr)
    t = Table(title=f"ML filter ({model!r}): P(win) >= {thr:.2f}, same trades", title_justify="left")
    for col in ("", "trades", "net $", "target hit", "mean net R"):
        t.add_column(col, justify="left" if not col else "right")
    for name, r in res.summary.iterrows():
        t.add_row(str(name), f"{int(r.trades):,}", _fmt_money(r.net_pnl_usd),
                  f"{r.target_hit:.1%}" if r.trades else "-", f"{r.mean_r:+.3f}" if r.trades else "-")
    console.print(t)
    n_in = int(res.scored["in_training"].sum())
    if n_in:
        console.print(f"  [yellow]{n_in} of {len(res.scored)} trades fall in the model's training period (to "
                      f"{model.metadata.get('train_to')}): their figures are in-sample[/]")
    hashes = model.metadata.get("params_hashes") or []
    if hashes and params.hash() not in hashes:
        console.print(f"  [yellow]the model was trained on trades of parameters {', '.join(hashes)}; these are "
                      f"{params.hash()}: its probabilities were not validated on this trade stream[/]")
    if res.unscored:
        console.print(f"  {res.unscored} trade(s) could not be scored (indicator warm-up): the filter skips them")
    out_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out_dir / "ml_filter.csv", res.scored.to_csv(index=False))
    console.print(f"  per-trade P(win): {out_dir / 'ml_filter.csv'}")


def _write_outputs(out_dir: Path, res, params, manifest: dict, summary: dict, run_id: str) -> None:
    import io

    from research.backtest.reporting import per_group_table
    from research.storage import atomic_write_bytes, atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    res.trades.to_parquet(buf, index=False)
    atomic_write_bytes(out_dir / "trades.parquet", buf.getvalue())
    atomic_write_text(out_dir / "trades.csv", res.trades.to_csv(index=False))
    buf = io.BytesIO()
    res.equity.to_frame().assign(position=res.position).to_parquet(buf)
    atomic_write_bytes(out_dir / "equity.parquet", buf.getvalue())
    atomic_write_text(out_dir / "per_year.csv", per_group_table(res, "year").to_csv())
    if res.trades["contract"].nunique() > 1:
        atomic_write_text(out_dir / "per_contract.csv", per_group_table(res, "contract").to_csv())
    atomic_write_text(out_dir / "stats.json", json.dumps({"run_id": run_id, **summary}, indent=1))
    atomic_write_text(out_dir / "manifest.json", json.dumps({"run_id": run_id, **manifest}, indent=1, default=str))
    atomic_write_text(out_dir / "params.toml", params.to_toml())


def _fmt_money(x: float) -> str:
    return f"{x:,.0f}"


def _print_tables(console, summaries, params) -> None:
    from rich.table import Table

    from research.backtest.reporting import per_group_table

    if len(summaries) > 1:  # --series contracts: one line per independent run
        t = Table(title="independent backtests", title_justify="left")
        for col in ("series", "run", "trades", "win rate", "net $", "profit factor", "Sharpe", "max DD $"):
            t.add_column(col, justify="left" if col in ("series", "run") else "right")
        tot_n = tot_pnl = 0.0
        for name, run_id, _res, st, _o in summaries:
            tot_n += st.trades
            tot_pnl += st.net_pnl_usd
            t.add_row(name, run_id, f"{int(st.trades):,}", f"{st.win_rate:.1%}" if st.trades else "-",
                      _fmt_money(st.net_pnl_usd), f"{st.profit_factor:.2f}" if st.trades else "-",
                      f"{st.sharpe_daily:.2f}", _fmt_money(st.max_drawdown_usd))
        t.add_row("total", "", f"{int(tot_n):,}", "", _fmt_money(tot_pnl), "", "", "", style="bold")
        console.print(t)
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
                t.add_row(str(key), f"{int(r.trades):,}", f"{r.win_rate:.1%}" if r.trades else "-",
                          _fmt_money(r.net_pnl_usd), f"{r.profit_factor:.2f}" if r.trades else "-",
                          f"{r.avg_r:+.3f}" if r.trades else "-", _fmt_money(r.max_drawdown_usd), style=style)
            console.print(t)
        s = stats
        console.print(
            f"[bold]{name}[/] run {run_id}  mode={params.mode} session={params.session} "
            f"order flow={res.meta['order_flow_mode']}  contracts={params.contracts}  "
            f"commission ${res.meta['commission_per_side']:.2f}/side  slippage {params.slippage_ticks} tick\n"
            f"  net ${s.net_pnl_usd:,.0f} on {int(s.trades)} trades ({s.trades_per_day:.2f}/day), win rate {s.win_rate:.1%}, "
            f"PF {s.profit_factor:.2f}, expectancy {s.expectancy_r:+.3f} R / ${s.expectancy_usd:,.1f}, "
            f"Sharpe {s.sharpe_daily:.2f}, Sortino {s.sortino_daily:.2f}, max DD ${s.max_drawdown_usd:,.0f} "
            f"({s.max_drawdown_pct:.1%}), exposure {s.exposure:.1%}\n"
            f"  fill audit: {int(res.trades.intrabar_ambiguous.sum())} trades with stop and target in one bar, "
            f"{int(res.trades.gap_through_stop.sum())} gaps through the stop; optimistic net "
            f"${res.trades.pnl_usd_optimistic.sum():,.0f} vs ${s.net_pnl_usd:,.0f}\n"
            f"  outputs: {out_dir}"
        )
