"""``navale collect``: record every tick, closed bar and feed event into durable segments (see
docs/data_collection_guide.md); ``navale collect summary DATE``: the daily summary."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import add_alert_options, number_arg, speed_arg
from .common import console as make_console

NO_DATA = 2

FEED_HELP = ("synthetic (the embedded generator, accelerated), replay:PATH (a recorded .scid, tick text or DBN file, "
             "as fast as possible), scid:PATH (tail a .scid file Sierra Chart is writing), ib (Interactive Brokers "
             "tick-by-tick, TWS / IB Gateway), dtc (Sierra Chart's DTC server)")



def _hours(value: str) -> float:
    return number_arg(value, 0, 1e6, "hours of market time", lo_open=True)


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale collect`` (the run, and its ``summary`` subcommand)."""
    p = sub.add_parser(
        "collect",
        help="record every tick, bar and feed event into durable segments (and paper trade in data_collection mode)",
        description=(
            "A long-running collector: every trade (time, price, size, aggressor side, bid/ask where the feed has "
            "them), every closed bar (the live loop's bar builder), feed events, gaps and quality findings go into "
            "append-only, checksummed segments under --dir (default $NAVALE_COLLECT_DIR, else data/collect), one "
            "per symbol and CME trading date; a sealed segment is compacted to Parquet (symbol=/date= partitions). "
            "A restart resumes exactly where the segments end (no duplicate, no hole). In data_collection mode "
            "(the default) the paper trader runs on the same records and its trade snapshots go to the run store. "
            "`navale status` shows it while it runs; SIGTERM/Ctrl-C flush, fsync and exit 0."
        ),
        epilog=(
            "examples:\n"
            "  navale collect --feed synthetic --hours 1\n"
            "  navale collect --feed scid:/sierra/Data/ESM26-CME.scid --dir /srv/navale/collect\n"
            "  navale collect --feed replay:../shared/data/ticks/ESM23_sample.scid --no-trade\n"
            "  navale collect --feed ib --port 4002 --no-trade             # IB Gateway (paper login)\n"
            "  navale collect summary 2024-03-04\n"
            "\nexit status: 0 done, 1 stopped with records not written (disk full), 2 bad input.\n"
        ),
        formatter_class=formatter,
    )
    p.add_argument("--feed", default="synthetic", help=FEED_HELP)
    p.add_argument("--host", help="ib / dtc feed: the venue host (default: $NAVALE_IB_HOST / $NAVALE_DTC_HOST, "
                   "./navale.secrets.toml, 127.0.0.1)")
    p.add_argument("--port", type=int, help="ib / dtc feed: the port (IB paper 7497 / 4002; DTC 11099)")
    p.add_argument("--client-id", type=int, help="ib feed: the API client id (default 17)")
    p.add_argument("--symbols", metavar="ES[,MES]", help="product roots (several: the synthetic feed, one seed each)")
    p.add_argument("--hours", type=_hours, metavar="N", help="stop after N hours of market time from this run's first record")
    p.add_argument("--speed", type=speed_arg(1e9), metavar="N|max",
                   help="synthetic and replay feeds: N x real time or 'max' (default 3600 for synthetic, max for replays)")
    p.add_argument("--dir", metavar="ROOT", help="collection directory (default $NAVALE_COLLECT_DIR, else data/collect)")
    p.add_argument("--synthetic-days", type=lambda v: int(number_arg(v, 1, 65, "trading dates")), metavar="N",
                   help="synthetic feed: trading dates generated from 2024-03-04 (default 10, at most 65)")
    p.add_argument("--synthetic-seed", type=lambda v: int(number_arg(v, 0, 2**31 - 1, "seed")), metavar="S",
                   help="synthetic feed: the generator's seed (another seed, another market)")
    p.add_argument("--bar", default="5min", help="bar size built from the trades (default 5min, as the live loop)")
    p.add_argument("--mode", choices=("data_collection", "paper"), default="data_collection",
                   help="risk preset of the paper trader run on the same records (default data_collection)")
    p.add_argument("--no-trade", action="store_true", help="only record: no paper trading")
    p.add_argument("--no-store", action="store_true", help="do not copy the closed trades into the run store")
    p.add_argument("--fsync", choices=("interval", "always", "never"), default="interval",
                   help="fsync policy of the segments (default interval: at most --fsync-seconds lost on power loss)")
    p.add_argument("--fsync-seconds", type=lambda v: number_arg(v, 0, 3600, "fsync interval, seconds", lo_open=True),
                   default=1.0, metavar="S", help="the interval of --fsync interval (default 1.0)")
    p.add_argument("--ml-model", metavar="FILE", help="signal-quality model: every snapshot records its P(win)")
    p.add_argument("--ml-threshold", type=lambda v: number_arg(v, 0, 1, "probability"), metavar="P",
                   help="the model's threshold (default: the mode's)")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    add_alert_options(p)
    p.add_argument("--json", action="store_true", help="print the final summary as JSON on stdout")
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
    from live.collect.run import run_collect

    return run_collect(args, make_console(stderr=True))


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
    from live.journal import JournalError
    from research.store.runs import StoreError

    err = make_console(stderr=True)
    root = layout.collect_dir(getattr(args, "dir", None))
    if root.exists() and not root.is_dir():
        err.print(f"[bold red]error:[/] collection dir {escape(str(root))} is not a folder")
        return NO_DATA
    try:
        summary = daily_summary(root, args.symbol, args.date)
    except (SummaryError, JournalError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        return NO_DATA
    try:
        paths = write_daily_summary(root, summary, store_path=args.store, store=not args.no_store)
    except (StoreError, OSError) as exc:
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
