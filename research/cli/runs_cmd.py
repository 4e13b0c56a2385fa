"""``navale runs``: list stored backtest runs, show one, export trade snapshots to Parquet, import the
pending runs a command could not store."""

from __future__ import annotations

import argparse
import errno
import json
from typing import Any

from .common import console as make_console


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale runs`` on the top-level subparsers."""
    r = sub.add_parser(
        "runs",
        help="stored runs: list, show one, export trade snapshots to Parquet, import pending runs",
        description=(
            "The run store ($NAVALE_DATA_DIR/navale.duckdb): runs with their manifests and trade snapshots. A store "
            "held by another process is waited for up to $NAVALE_STORE_TIMEOUT seconds (default 60). A run the store "
            "could not take (lock timeout, full disk, read-only folder) was saved as a pending bundle "
            "($NAVALE_DATA_DIR/pending/RUN_ID.pending.parquet, or beside the outputs): `navale runs import` adds it."
        ),
        epilog=("examples:\n  navale runs\n  navale runs show c4c36989036339c8\n"
                "  navale runs export reports/snapshots.parquet            # every run\n"
                "  navale runs export reports/run.parquet --run c4c36989036339c8\n"
                "  navale runs import                                      # every bundle in $NAVALE_DATA_DIR/pending\n"
                "  navale runs import reports/backtest/pending\n"),
        formatter_class=formatter,
    )
    rsub = r.add_subparsers(dest="command", metavar="SUBCOMMAND")
    rsub.add_parser("list", help="one line per run (the default)")
    s = rsub.add_parser("show", help="a run's summary and manifest")
    s.add_argument("run_id")
    e = rsub.add_parser("export", help="trade snapshots to Parquet (schema metadata kept), for ML")
    e.add_argument("path")
    e.add_argument("--run", dest="run_id", help="only this run (default: every run)")
    i = rsub.add_parser("import", help="add pending runs (saved when the store could not be written) to the store")
    i.add_argument("bundles", nargs="*", metavar="PATH",
                   help="pending files or folders (default: every bundle in $NAVALE_DATA_DIR/pending)")
    i.add_argument("--keep", action="store_true", help="keep the bundle files once stored (default: remove them)")
    r.add_argument("--store", help="store file (default: $NAVALE_DATA_DIR/navale.duckdb)")


def run(args: argparse.Namespace) -> int:
    from research.store import StoreError

    console = make_console()
    try:
        if args.command == "import":
            return _import(args, console)
        return _read(args, console)
    except StoreError as exc:
        from rich.markup import escape

        console.print(f"[bold red]error:[/] {escape(str(exc))}", soft_wrap=True)
        return 2


def _read(args: argparse.Namespace, console) -> int:
    """list / show / export: the store is held (read-only) only while it is read, not while printing."""
    from rich.table import Table

    from research.store import RunStore, default_store_path

    path = args.store or default_store_path()
    if args.command in (None, "list"):
        with RunStore(path, read_only=True) as store:
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
        with RunStore(path, read_only=True) as store:
            doc = {"summary": store.summary(args.run_id), "manifest": store.manifest(args.run_id)}
        console.print_json(json.dumps(doc, default=str))
        return 0
    if args.command == "export":
        from pathlib import Path

        from research.store.files import WriteError

        if Path(args.path).is_dir():
            raise WriteError(errno.EISDIR, "it is a folder; name a file such as "
                             f"{Path(args.path) / 'snapshots.parquet'}", args.path)
        from .common import require_writable_dir

        require_writable_dir(Path(args.path).parent, "the export's folder")
        with RunStore(path, read_only=True) as store:
            out = store.export_parquet(args.path, args.run_id)
            n = len(store.snapshots(args.run_id, shadow=True))
        console.print(f"wrote {n:,} trade snapshots to {out}")
        return 0
    return 2


def _import(args: argparse.Namespace, console) -> int:
    from research.store import default_store_path, find_pending, import_pending
    from research.store.pending import pending_dir

    path = args.store or default_store_path()
    bundles = find_pending(args.bundles, path)
    if not bundles:
        where = ", ".join(args.bundles) if args.bundles else str(pending_dir(path))
        console.print(f"no pending runs in {where}: nothing to import")
        return 0
    done = import_pending(bundles, path, keep=args.keep)
    for b in done:
        what = f"run {b.id} ({b.trades:,} trades)" if b.kind == "run" else f"promotion {b.id}"
        again = " (already stored: unchanged)" if b.already_stored and b.kind == "promotion" else (
            " (replaced the stored run with this id)" if b.already_stored else "")
        console.print(f"imported {what} from {b.path}{again}", soft_wrap=True)
    console.print(f"{len(done)} pending bundle(s) imported into {path}"
                  f"{'' if args.keep else '; the bundle files were removed'}")
    return 0
