"""``navale metrics``: the Prometheus text exposition (``navale_*`` metrics) of the paper trader's and the
collector's journals, read read-only while they run (see docs/metrics.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

NO_JOURNAL = 2


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale metrics`` on the top-level subparsers."""
    p = sub.add_parser(
        "metrics",
        help="print the Prometheus metrics (navale_*) of the trader's and the collector's journals",
        description=(
            "Read the trader's journal (STATE_DIR/journal.sqlite) and the collector's (ROOT/collector.sqlite), "
            "read-only, and print the navale_* metrics in the Prometheus text format: ticks and bars processed, "
            "the tick -> order latency histogram, P&L, equity, position, risk events by kind, feed up, "
            "collector lag and disk use. A journal that does not exist is skipped."
        ),
        epilog=("examples:\n  navale metrics\n  navale metrics --state-dir /srv/navale/live --collect-dir /srv/collect\n"
                "\nexit status: 0 printed, 2 neither journal exists.\n"),
        formatter_class=formatter,
    )
    p.add_argument("--state-dir", metavar="DIR", help="live state directory (default: $NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--collect-dir", metavar="ROOT",
                   help="the collector's directory (default $NAVALE_COLLECT_DIR, else data/collect)")


def run(args: argparse.Namespace) -> int:
    from live import control
    from live.collect import layout
    from live.metrics import MetricsReader, render

    reader = MetricsReader(state_dir=control.state_dir(args.state_dir),
                           collect_dir=layout.collect_dir(args.collect_dir))
    paths = reader.journal_paths()
    if not any(p.is_file() for p in paths.values()):
        print(f"error: no journal at {paths['trader']} nor {paths['collector']} (start `navale paper` or "
              "`navale collect`, or name the folders with --state-dir / --collect-dir)", file=sys.stderr)
        return NO_JOURNAL
    reader.update()
    sys.stdout.write(render(reader.metrics).decode())
    return 0
