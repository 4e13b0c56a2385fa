"""``navale promote``: the promotion gate of a saved sweep (walk-forward, PBO, DSR) -> paper trading or not."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from .common import console as make_console
from .common import progress_bar


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale promote`` on the top-level subparsers."""
    p = sub.add_parser(
        "promote",
        help="promotion gate of a sweep: walk-forward OOS Sharpe, PBO, DSR -> paper trading or refused",
        description=(
            "Judge a saved sweep: walk-forward selection (choose in-sample, trade out-of-sample, stitched), "
            "Probability of Backtest Overfitting by CSCV, Deflated Sharpe Ratio of the configuration proposed. "
            "Every check must pass for the configuration that would trade next to be promoted to PAPER "
            "trading (never live). The decision is appended to the promotions table of the run store and "
            "written to promotion.json / params.toml / ready_for_paper.toml in the sweep folder. "
            "Exit code: 0 promoted, 1 refused, 2 bad input. See docs/validation.md."
        ),
        epilog=(
            "examples:\n"
            "  navale promote --run 3f9c2a7d1b0e4c55\n"
            "  navale promote --run reports/sweeps/3f9c2a7d1b0e4c55 --scheme anchored --max-pbo 0.3\n"
            "  navale promote --run RUN --thresholds promotion.toml --json    # [promotion] table\n"
        ),
        formatter_class=formatter,
    )
    p.add_argument("--run", required=True, metavar="RUN", help="sweep id under --sweeps-dir, or a sweep folder")
    p.add_argument("--sweeps-dir", default="reports/sweeps", metavar="DIR", help="where sweep ids live (default reports/sweeps)")
    p.add_argument("--thresholds", metavar="FILE", help="TOML file with a [promotion] table (flags below override it)")
    p.add_argument("--min-oos-sharpe", type=float, metavar="X", help="OOS Sharpe must be above X (default 0)")
    p.add_argument("--max-pbo", type=float, metavar="X", help="PBO must be below X (default 0.5)")
    p.add_argument("--min-dsr", type=float, metavar="X", help="DSR must be above X (default 0.95)")
    p.add_argument("--min-oos-sessions", type=int, metavar="N", help="at least N OOS sessions (default 120)")
    p.add_argument("--min-oos-trades", "--min-oos-trading-days", dest="min_oos_trades", type=int, metavar="N",
                   help="at least N OOS trades (default 30; a sweep without trade counts: OOS sessions with a trade)")
    p.add_argument("--min-is-trades", type=int, default=0, metavar="N",
                   help="a configuration needs N in-sample trades to be chosen in a window (default 0)")
    p.add_argument("--objective", choices=("sharpe", "sortino", "net_pnl", "profit_factor"), default="sharpe",
                   help="in-sample selection objective (default sharpe)")
    p.add_argument("--scheme", choices=("rolling", "anchored"), default="rolling", help="walk-forward scheme (default rolling)")
    p.add_argument("--is-periods", type=int, default=None, metavar="N",
                   help="in-sample periods (contracts/quarters; default 4, or the largest the sweep's periods allow)")
    p.add_argument("--oos-periods", type=int, default=1, metavar="N", help="out-of-sample periods per step (default 1)")
    p.add_argument("--n-splits", type=int, default=None, metavar="S",
                   help="CSCV blocks of the PBO, even, 2-20 (default 16, or the largest the sweep's sessions allow: "
                        "2 sessions per block at least)")
    p.add_argument("--store", metavar="FILE", help="run store (default $NAVALE_DATA_DIR/navale.duckdb)")
    p.add_argument("--no-store", action="store_true",
                   help="what-if: evaluate and print only; record nothing and write no file next to the sweep "
                        "(the files there always match the recorded decision)")
    p.add_argument("--json", action="store_true", help="print the decision as JSON on stdout")


STORE_FAILED = 3  # exit status: decision files written, the store could not record it (saved as pending)


def run(args: argparse.Namespace) -> int:
    """Evaluate, write, record, print; 0 promoted, 1 refused, 2 bad input, 3 not recorded (saved as pending)."""
    from research.store import StoreError

    console = make_console(stderr=args.json)  # --json: stdout holds the JSON alone
    try:
        return _promote(args, console)
    except (ValueError, KeyError, FileNotFoundError, ImportError, StoreError) as exc:
        # ValueError covers ThresholdsError and ParamsError; ImportError a missing sweep package
        _error(console, args, exc)
        return 2


def _error(console, args: argparse.Namespace, exc: BaseException) -> None:
    msg = str(exc.args[0]) if isinstance(exc, KeyError) and exc.args else str(exc)
    if getattr(args, "json", False):
        print(json.dumps({"error": msg}))
    else:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(msg)}", soft_wrap=True)


def _promote(args: argparse.Namespace, console) -> int:
    from research.store import RunsNotStoredError, default_store_path, store_promotion
    from research.validation.promotion import (
        Thresholds,
        evaluate_sweep,
        load_sweep,
        promotion_row,
        resolve_run,
        write_outputs,
    )

    _check_n_splits(args.n_splits)
    directory = resolve_run(args.run, args.sweeps_dir)
    thresholds = Thresholds.from_toml(args.thresholds) if args.thresholds else Thresholds()
    thresholds = thresholds.with_overrides(
        min_oos_sharpe=args.min_oos_sharpe, max_pbo=args.max_pbo, min_dsr=args.min_dsr,
        min_oos_sessions=args.min_oos_sessions, min_oos_trades=args.min_oos_trades,
    )
    with progress_bar(enabled=not args.json) as bar:
        task = bar.add_task(f"loading the sweep {directory.name}", total=2)
        result = load_sweep(directory)
        _check_n_splits(args.n_splits, len(result.daily_pnl))  # a bad argument, not a failed PBO check
        bar.update(task, completed=1, description="walk-forward, PBO and DSR")
        decision = evaluate_sweep(result, thresholds, objective=args.objective, scheme=args.scheme,
                                  is_periods=args.is_periods, oos_periods=args.oos_periods, n_splits=args.n_splits,
                                  min_trades=args.min_is_trades)
        bar.update(task, completed=2)
    if not args.json:
        console.print(f"sweep {directory}: {result.daily_pnl.shape[1]} configurations x "
                      f"{result.daily_pnl.shape[0]} sessions")
    if decision.sweep_id is None:
        decision.sweep_id = directory.name
    stored = store_error = None
    files = {} if args.no_store else write_outputs(decision, directory)  # files first: a failed store loses nothing
    if not args.no_store:
        try:
            stored = store_promotion(promotion_row(decision), store_path=args.store or default_store_path(),
                                     fallback_dirs=[directory])
        except RunsNotStoredError as exc:
            store_error = exc

    if args.json:
        doc = {**decision.to_dict(), "files": {k: str(v) for k, v in files.items()},
               "store": None if stored is None else str(stored)}
        if store_error is not None:
            doc["error"] = str(store_error)
        print(json.dumps(doc, indent=1))
    else:
        _print(console, decision, files, stored)
    if store_error is not None:
        if not args.json:
            _error(console, args, store_error)
        return STORE_FAILED
    return 0 if decision.passed else 1


def _check_n_splits(n_splits: int | None, sessions: int | None = None) -> None:
    """Refuse an --n-splits CSCV cannot use (odd, outside 2-20, finer than the sweep's sessions allow)."""
    if n_splits is None:
        return
    from research.validation.overfitting import check_n_splits

    try:
        check_n_splits(n_splits, sessions)
    except ValueError as exc:
        raise ValueError(f"--n-splits {n_splits}: {str(exc).partition(': ')[2]}") from None


def _fmt(value: float, name: str) -> str:
    if value is None or value != value:
        return "n/a"
    if name in ("oos_sessions", "oos_trades", "oos_trading_days"):
        return f"{value:,.0f}"
    return f"{value:+.3f}" if name == "oos_sharpe" else f"{value:.3f}"


def _print(console, decision, files: dict[str, Path], stored: Path | None) -> None:
    from rich.table import Table

    f = decision.figures
    table = Table(title=f"promotion gate: sweep {decision.sweep_id}", title_justify="left")
    for col, just in (("check", "left"), ("value", "right"), ("rule", "right"), ("result", "left")):
        table.add_column(col, justify=just)
    for c in decision.checks:
        table.add_row(c.name, _fmt(c.value, c.name), f"{c.op} {_fmt(c.threshold, c.name)}",
                      "[green]pass[/]" if c.passed else "[bold red]FAIL[/]")
    console.print(table)
    wf, pbo, dsr = f["walk_forward"], f["pbo"], f["dsr"]
    if dsr.get("error"):
        dsr_text = f"DSR not computed: {dsr['error']}"
    else:
        dsr_text = (f"proposed combo {dsr['combo']} of {dsr['n_trials']} trials: Sharpe {_num(dsr.get('sharpe'))}, "
                    f"PSR {_num(dsr.get('psr'))}, DSR {_num(dsr.get('dsr'))}")
    console.print(
        f"walk-forward: {wf['n_windows']} windows, OOS net ${wf['oos_net_pnl']:,.0f}, max drawdown "
        f"${wf['oos_max_drawdown_usd']:,.0f}, {wf['n_distinct_combos']} distinct choice(s) | "
        f"PBO over {pbo.get('n_combinations', 0):,} splits, P(OOS loss) {_num(pbo.get('prob_oos_loss'))} | "
        f"{dsr_text}"
    )
    console.print(decision.verdict)
    chosen = f["chosen"]
    fsb = f["full_sample_best"]
    best = ("none (no configuration has a defined Sharpe)" if fsb.get("combo") is None else
            f"combo {fsb['combo']} (Sharpe {_num(fsb.get('sharpe'))}, DSR {_num(fsb.get('dsr'))}; information only)")
    console.print(f"configuration that would trade next: combo {decision.combo} "
                  f"(params {decision.params_hash}); {chosen['rule']}; full-sample best: {best}")
    if decision.passed:
        console.print("[bold green]PROMOTED to paper trading[/] (paper only: never live without a further review)")
    else:
        console.print("[bold red]REFUSED[/]")
        for r in decision.reasons:
            console.print(f"  - {r}")
    for name, path in files.items():
        console.print(f"{'revoked the earlier ready_for_paper.toml ->' if name == 'revoked' else 'wrote'} {path}")
    if stored is not None:
        console.print(f"recorded promotion {decision.promotion_id} in {stored}")
    elif not files:
        console.print("what-if (--no-store): nothing recorded, no file written")


def _num(v: Any) -> str:
    return "n/a" if v is None or v != v else f"{v:.2f}"
