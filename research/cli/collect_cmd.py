"""``navale collect``: the data collector (``navale collect --feed ...``, no subcommand word) and its daily
summary (``navale collect summary DATE``).

The collector run is ``live.collect.run.run_collect(args) -> int`` (imported inside :func:`run`, so
``research/`` imports ``live/`` only here, lazily); its options are the ones :func:`add_run_options` adds.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import console as make_console

NO_DATA = 2


def add_run_options(p: argparse.ArgumentParser) -> None:
    """The collector's options, on ``navale collect`` itself."""
    p.add_argument("--feed", metavar="FEED", help="synthetic | replay:PATH | scid:PATH")
    p.add_argument("--symbols", default="ES", metavar="LIST", help="products collected, comma-separated (default ES)")
    p.add_argument("--hours", type=float, metavar="N", help="stop after N hours of feed time (default: run until stopped)")
    p.add_argument("--speed", type=float, metavar="X", help="replay/synthetic speed, times real time")
    p.add_argument("--dir", metavar="ROOT", help="collection directory (default: $NAVALE_COLLECT_DIR, else data/collect)")


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale collect`` (run) and ``navale collect summary`` on the top-level subparsers."""
    p = sub.add_parser(
        "collect",
        help="collect ticks, bars and trade snapshots for days; daily summaries",
        description=(
            "Collect every tick (with its aggressor side), every closed bar, the feed's events and, in "
            "data_collection mode, the paper trader's trade snapshots into durable segments under the "
            "collection directory. `navale collect summary DATE` reports one trading date."
        ),
        epilog=("examples:\n  navale collect --feed synthetic --hours 1\n"
                "  navale collect summary 2024-03-05\n  navale collect summary 2024-03-05 --symbol ES --json\n"),
        formatter_class=formatter,
    )
    add_run_options(p)
    csub = p.add_subparsers(dest="collect_command", metavar="SUBCOMMAND")
    s = csub.add_parser(
        "summary",
        help="the daily summary of one trading date: ticks, bars, gaps, findings, trades, disk",
        description=(
            "Compute one trading date's summary from the collection directory's files (segment or Parquet "
            "partitions, the collector's journal, the data_collection trader's journal), write "
            "ROOT/reports/DATE.md and DATE.html, store it in the run store's collect_summaries table, and "
            "print it. Safe while the collector runs."
        ),
        epilog="exit status: 0 written, 2 bad input or no data for that date.\n",
        formatter_class=formatter,
    )
    s.add_argument("date", metavar="DATE", help="CME trading date, YYYY-MM-DD (a session opens 17:00 CT the evening before)")
    s.add_argument("--symbol", default="ES", help="product (default ES)")
    s.add_argument("--dir", default=argparse.SUPPRESS, metavar="ROOT",
                   help="collection directory (default: $NAVALE_COLLECT_DIR, else data/collect)")
    s.add_argument("--store", metavar="FILE", help="run store (default: $NAVALE_DATA_DIR/navale.duckdb)")
    s.add_argument("--no-store", action="store_true", help="write the reports only, no store row")
    s.add_argument("--json", action="store_true", help="print the summary as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    if getattr(args, "collect_command", None) == "summary":
        return run_summary(args)
    if not getattr(args, "feed", None):
        make_console(stderr=True).print("error: navale collect needs --feed (synthetic | replay:PATH | scid:PATH), "
                                        "or a subcommand: summary")
        return 2
    try:
        from live.collect.run import run_collect
    except ModuleNotFoundError as exc:  # the stub's place: the collector loop lands in live/collect/run.py
        if exc.name != "live.collect.run":
            raise
        make_console(stderr=True).print("error: the collector (live/collect/run.py) is not part of this build")
        return 2
    return run_collect(args)


def run_summary(args: argparse.Namespace) -> int:
    from rich.markup import escape
    from rich.table import Table

    from live.collect import layout
    from live.collect.summary import (
        SummaryError,
        daily_summary,
        summary_rows,
        write_daily_summary,
    )
    from research.store.runs import StoreError

    err = make_console(stderr=True)
    root = layout.collect_dir(getattr(args, "dir", None))
    try:
        summary = daily_summary(root, args.symbol, args.date)
    except SummaryError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return NO_DATA
    try:
        paths = write_daily_summary(root, summary, store_path=args.store, store=not args.no_store)
    except StoreError as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 1
    if args.json:
        print(json.dumps({**summary, "written": {k: str(v) for k, v in paths.items()}}, indent=2))
        return 0
    out = make_console()
    table = Table(title=f"{summary['symbol']} {summary['date']}", show_header=False)
    for k, v in summary_rows(summary):
        table.add_row(escape(k), escape(v))
    out.print(table)
    for name, counts in (("quality findings", summary["quality"]), ("feed events", summary["feed_events"])):
        if counts:
            out.print(f"{name}: " + ", ".join(f"{escape(k)} {n}" for k, n in counts.items()))
    out.print("written: " + ", ".join(escape(str(p)) for p in paths.values()))
    return 0
