"""``navale dashboard``: the live monitoring page of the paper trader and the collector, on 127.0.0.1 behind a
token (docs/dashboard.md)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

DEFAULT_PORT = 8765


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale dashboard`` on the top-level subparsers."""
    p = sub.add_parser(
        "dashboard",
        help="live monitoring page (127.0.0.1, token): position, P&L, bars, trades, alerts, emergency stop",
        description=(
            "Serve the dashboard on 127.0.0.1: mode, feed health and latency, position and open orders, P&L today "
            "and the equity curve against the backtest's expected band, the last bars with their signal columns, "
            "the last trades, alerts (with acknowledgement), kill switches, the collector's progress and daily "
            "summary, all updating live (server-sent events); an emergency-stop button (with a confirmation) "
            "that does what `navale stop` does; Prometheus metrics at /metrics. It reads the journals read-only "
            "while the trader and the collector write them. The token is $NAVALE_DASHBOARD_TOKEN, else a new "
            "one printed with the URL: send it as `Authorization: Bearer TOKEN` or open the URL once "
            "(?token= sets a cookie)."
        ),
        epilog=("examples:\n  navale dashboard\n  navale dashboard --port 9000 --state-dir /srv/navale/live "
                "--collect-dir /srv/collect\n"),
        formatter_class=formatter,
    )
    p.add_argument("--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT}; 0: any free)")
    p.add_argument("--host", default="127.0.0.1", help="loopback only: 127.0.0.1 (default), localhost or ::1")
    p.add_argument("--state-dir", metavar="DIR", help="live state directory (default: $NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--collect-dir", metavar="ROOT",
                   help="the collector's directory (default $NAVALE_COLLECT_DIR, else data/collect)")
    p.add_argument("--refresh", type=float, default=1.0, metavar="SECONDS", help="live update interval (default 1 s)")


def run(args: argparse.Namespace) -> int:
    from live import control
    from live.collect import layout
    from live.dashboard.app import create_app
    from live.dashboard.server import (
        LOOPBACK,
        TOKEN_ENV,
        dashboard_token,
        free_port,
        serve,
    )
    from live.dashboard.snapshot import Sources

    from .stop_cmd import emergency_stop

    if args.host not in LOOPBACK:
        print(f"error: --host {args.host}: the dashboard serves on 127.0.0.1 only (reach it from another machine "
              "through an SSH tunnel)", file=sys.stderr)
        return 2
    if not 0 <= args.port <= 65535 or not 0.1 <= args.refresh <= 60:
        print("error: --port must be 0..65535 and --refresh 0.1..60 seconds", file=sys.stderr)
        return 2
    token, from_env = dashboard_token()
    sources = Sources(control.state_dir(args.state_dir), layout.collect_dir(args.collect_dir))
    app = create_app(sources, token, stop=lambda d, reason: emergency_stop(d, reason), refresh_s=args.refresh)
    port = args.port or free_port(args.host)
    host = "[::1]" if args.host == "::1" else args.host
    print(f"navale dashboard: http://{host}:{port}/?token={token}", flush=True)
    print(f"  trader journal: {sources.trader_journal()}   collector journal: {sources.collector_journal()}", flush=True)
    print(f"  token from ${TOKEN_ENV}" if from_env else f"  token generated now (set ${TOKEN_ENV} to choose it); "
          "Ctrl-C stops", flush=True)
    try:
        serve(app, args.host, port)
    except OSError as exc:
        print(f"error: cannot serve on {args.host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 4
    return 0
