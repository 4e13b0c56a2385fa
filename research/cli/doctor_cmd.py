"""``navale doctor ib|dtc``: connectivity, account, contract, market data and trading permissions, in plain words."""

from __future__ import annotations

import argparse
from typing import Any

from .common import console as make_console


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale doctor``."""
    p = sub.add_parser(
        "doctor",
        help="check a venue (ib: TWS / IB Gateway; dtc: Sierra Chart's DTC server) before trading through it",
        description=(
            "Connects to the venue with the settings `navale paper --feed/--broker ib|dtc` would use (the environment, "
            "./navale.secrets.toml, or the options below) and checks, one line each: the connection, the API "
            "handshake, the accounts (a paper account for paper trading), the ES contract the roll rule picks, the "
            "market-data entitlement and the trading permission. Each failure says what to change."
        ),
        epilog="examples:\n  navale doctor ib --port 4002\n  navale doctor dtc --host 192.168.1.20 --port 11099\n"
               "\nexit status: 0 every check passed, 1 a check failed, 2 bad settings.\n",
        formatter_class=formatter,
    )
    p.add_argument("venue", choices=("ib", "dtc"), help="ib or dtc")
    p.add_argument("--host", help="venue host")
    p.add_argument("--port", type=int, help="venue port (IB paper: 7497 TWS, 4002 Gateway; DTC: 11099)")
    p.add_argument("--client-id", type=int, help="IB API client id")
    p.add_argument("--live-config", metavar="FILE", help="check the live settings file instead (read-only checks)")


def run(args: argparse.Namespace) -> int:
    import importlib

    from live.venues.settings import SettingsError, load_settings

    out = make_console()
    try:
        settings = load_settings(args.venue, live=args.live_config is not None, live_config=args.live_config,
                                 host=args.host, port=args.port, client_id=args.client_id)
    except SettingsError as exc:
        out.print(f"[bold red]error:[/] {' '.join(str(exc).split())}", highlight=False)
        return 2
    red = settings.redacted()
    out.print(f"{args.venue} at {red['host']}:{red['port']} (settings from {red['source']})", highlight=False)
    try:
        checks = importlib.import_module(f"live.venues.{args.venue}").doctor(settings)
    except ImportError as exc:
        out.print(f"[bold red]error:[/] the {args.venue} adapter cannot be imported: {exc}", highlight=False)
        return 2
    for c in checks:
        mark = "[green]ok[/]  " if c.ok else "[bold red]FAIL[/]"
        out.print(f"{mark} {c.name}: {c.detail}", highlight=False)
    failed = [c for c in checks if not c.ok]
    out.print("all checks passed" if not failed else f"{len(failed)} of {len(checks)} checks failed",
              highlight=False)
    return 1 if failed else 0
