"""``navale runs``: list stored backtest runs, show one, export trade snapshots to Parquet."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import console as make_console


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale runs`` on the top-level subparsers."""
    r = sub.add_parser(
        "runs",
        help="stored runs: list, show one, export trade snapshots to Parquet",
        description="The run store ($NAVALE_DATA_DIR/navale.duckdb): runs with their manifests and trade snapshots.",
        epilog=("examples:\n  navale runs\n  navale runs show c4c36989036339c8\n"
                "  navale runs export reports/snapshots.parquet            # every run\n"
                "  navale runs export reports/run.parquet --run c4c36989036339c8\n"),
        formatter_class=formatter,
    )
    rsub = r.add_subparsers(dest="command", metavar="SUBCOMMAND")
    rsub.add_parser("list", help="one line per run (the default)")
    s = rsub.add_parser("show", help="a run's summary and manifest")
    s.add_argument("run_id")
    e = rsub.add_parser("export", help="trade snapshots to Parquet (schema metadata kept), for ML")
    e.add_argument("path")
    e.add_argument("--run", dest="run_id", help="only this run (default: every run)")
    r.add_argument("--store", help="store file (default: $NAVALE_DATA_DIR/navale.duckdb)")


def run(args: argparse.Namespace) -> int:
    from rich.table import Table

    from research.store import RunStore, StoreError, default_store_path

    console = make_console()
    path = args.store or default_store_path()
    try:
        with RunStore(path, read_only=True) as store:
            if args.command in (None, "list"):
                runs = store.runs()
                table = Table(title=f"runs in {path}", title_justify="left")
                for col in ("run", "created (UTC)", "mode", "session", "params", "trades", "net $", "series"):
                    table.add_column(col, justify="right" if col in ("trades", "net $") else "left")
                for r in runs.itertuples():
                    summary = json.loads(r.summary) if r.summary else {}
                    extra = json.loads(r.manifest).get("extra") or {}
                    net = summary.get("net_pnl_usd")
                    table.add_row(r.run_id, f"{r.created_at:%Y-%m-%d %H:%M}", r.mode, r.session, r.params_hash,
                                  f"{r.n_trades:,}", "-" if net is None else f"{net:,.0f}", str(extra.get("series", "")))
                console.print(table)
                return 0
            if args.command == "show":
                console.print_json(json.dumps({"summary": store.summary(args.run_id), "manifest": store.manifest(args.run_id)},
                                              default=str))
                return 0
            if args.command == "export":
                out = store.export_parquet(args.path, args.run_id)
                n = len(store.snapshots(args.run_id))
                console.print(f"wrote {n:,} trade snapshots to {out}")
                return 0
    except StoreError as exc:
        console.print(f"[bold red]error:[/] {exc}")
        return 2
    return 2
