"""``navale alerts``: the alert history of a journal (list, acknowledge) and ``navale alerts test``, a test
notification to every configured channel."""

from __future__ import annotations

import argparse
import json
import time
from datetime import datetime, timezone
from typing import Any

from .common import console as make_console

NO_CHANNEL = 2


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale alerts`` on the top-level subparsers."""
    p = sub.add_parser(
        "alerts",
        help="the alert history (fired, delivered, acknowledged); --ack ID; `alerts test` tries every channel",
        description=(
            "List the alerts of the trader's journal (STATE_DIR/journal.sqlite, read-only while it runs): when, "
            "kind, severity, value, delivered or why not, acknowledged by whom. --ack ID acknowledges one. "
            "`navale alerts test` sends a test notification to every configured apprise URL "
            "($NAVALE_ALERT_URLS, else ./navale.secrets.toml, else ~/.config/navale/alerts.toml; docs/alerts.md) "
            "and says per channel whether it was delivered."
        ),
        epilog=("examples:\n  navale alerts\n  navale alerts --since 2026-01-05T09:30-05:00 --json\n"
                "  navale alerts --ack 12\n  navale alerts --journal data/collect/collector.sqlite\n"
                "  NAVALE_ALERT_URLS='ntfy://my-topic' navale alerts test\n"
                "\nexit status: 0 done, 1 a test notification failed, 2 bad input (no journal, unknown alert, "
                "no channel configured).\n"),
        formatter_class=formatter,
    )
    p.add_argument("action", nargs="?", choices=("list", "test", "check"), default="list",
                   help="list (default); test: send a test notification to every channel; check: evaluate the "
                        "rules on the journal now (last heartbeat, last hour's risk events, this machine) and "
                        "print what fires (with --notify: record and send it, cooldown and dedup applied)")
    p.add_argument("--state-dir", metavar="DIR", help="live state directory (default: $NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--journal", metavar="FILE", help="another journal file (e.g. the collector's collector.sqlite)")
    p.add_argument("--since", type=_since, metavar="ISO", help="only alerts fired at or after this time (with its zone, "
                   "e.g. 2026-01-05T09:30-05:00 or ...Z)")
    p.add_argument("--ack", type=int, metavar="ID", help="acknowledge alert ID (by $USER@host, now)")
    p.add_argument("--alerts-config", metavar="FILE", help="thresholds TOML for check (docs/alerts.md; default: "
                   "METHOD.md's, with the daily loss limit of --mode)")
    p.add_argument("--mode", choices=("backtest", "data_collection", "paper", "live"), default=None,
                   help="mode whose limits give the defaults for check (default: the file's, else paper)")
    p.add_argument("--notify", action="store_true", help="check: record the alerts and send them to the channels")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def _since(value: str) -> int:
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO time: {value!r} (e.g. 2026-01-05T09:30-05:00)") from None
    if t.tzinfo is None:
        raise argparse.ArgumentTypeError(f"{value!r} has no time zone: add one (e.g. -05:00 or Z)")
    return min(int(t.timestamp()) * 1_000_000_000 + t.microsecond * 1000, 2**63 - 1)  # past 2262: int64's end


def _iso(ns: int | None) -> str:
    return "" if ns is None else datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")


def run(args: argparse.Namespace) -> int:
    from rich.markup import escape

    out = make_console(stderr=args.json)
    if args.action == "test":
        return _test(args, out)
    from live import control
    from live.journal import Journal, JournalError

    path = args.journal or control.journal_path(control.state_dir(args.state_dir))
    if args.action == "check":
        return _check(args, out, path)
    try:
        if args.ack is not None:
            with Journal(path) if _exists(path) else Journal(path, readonly=True) as journal:
                row = journal.alert(args.ack)
                if row is None:
                    out.print(f"[bold red]error:[/] no alert {args.ack} in {escape(str(path))}")
                    return 2
                was = row["acked_ns"]
                row = journal.ack_alert(args.ack, control.who(), time.time_ns())
            if args.json:
                print(json.dumps(row))
            elif was is not None:
                out.print(f"alert {args.ack} was already acknowledged by {escape(row['ack_by'] or '?')} "
                          f"at {_iso(row['acked_ns'])}")
            else:
                out.print(f"acknowledged alert {args.ack} ({escape(row['kind'])}) as {escape(row['ack_by'])}")
            return 0
        with Journal(path, readonly=True) as journal:
            rows = journal.alerts(since_ns=args.since)
    except JournalError as exc:
        out.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    if args.json:
        print(json.dumps(rows))
        return 0
    if not rows:
        out.print(f"no alert in {escape(str(path))}" + (" since then" if args.since is not None else ""))
        return 0
    for r in rows:
        value = "" if r["value"] is None else f" value {r['value']:g}"
        sent = ("delivered " + _iso(r["delivered_ns"])) if r["delivered"] else f"NOT delivered ({r['delivery_error']})"
        ack = f"acked by {r['ack_by']} {_iso(r['acked_ns'])}" if r["acked_ns"] is not None else "not acked"
        rep = f" (+{r['repeats']} in cooldown)" if r["repeats"] else ""
        out.print(escape(f"#{r['id']} {_iso(r['wall_ns'])} {r['severity'].upper()} {r['kind']}{value}{rep}: "
                         f"{r['detail']} | {sent} | {ack}"))
    return 0


def _exists(path) -> bool:
    from pathlib import Path

    return Path(path).is_file()


def _test(args: argparse.Namespace, out) -> int:
    from rich.markup import escape

    from live.alerts.channels import Channel, ChannelConfigError, configured_urls

    try:
        urls, source = configured_urls()
    except ChannelConfigError as exc:
        out.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    if not urls:
        out.print("[bold red]error:[/] no alert channel configured: set NAVALE_ALERT_URLS, or write "
                  "[alerts] urls = [...] in ./navale.secrets.toml or ~/.config/navale/alerts.toml (docs/alerts.md)")
        return NO_CHANNEL
    results = []
    for url in urls:
        ch = Channel(url)
        err = ch.send("navale test notification", f"navale alerts test: this channel works ({_iso(time.time_ns())})",
                      "info")
        results.append({"channel": ch.name, "delivered": err is None, "error": err})
    if args.json:
        print(json.dumps({"source": source, "channels": results}))
    else:
        for r in results:
            out.print(escape(f"{r['channel']}: " + ("delivered" if r["delivered"] else f"FAILED: {r['error']}")))
    return 0 if all(r["delivered"] for r in results) else 1


def _check(args: argparse.Namespace, out, path) -> int:
    from dataclasses import asdict
    from pathlib import Path

    from rich.markup import escape

    from live.alerts.channels import ChannelConfigError, configured_urls
    from live.alerts.config import AlertConfig, AlertConfigError
    from live.alerts.watch import check_journal
    from live.journal import Journal, JournalError

    try:
        cfg = (AlertConfig.from_toml(args.alerts_config, mode=args.mode) if args.alerts_config
               else AlertConfig.for_mode(args.mode or "paper"))
        urls = configured_urls()[0] if args.notify else []
        with Journal(path, readonly=not args.notify) as journal:
            alerts = check_journal(journal, cfg, disk_path=Path(path).parent)
            ids: list[int | None] = [None] * len(alerts)
            if args.notify:
                from live.alerts.delivery import AlertSystem

                system = AlertSystem(journal, urls, cooldown_s=cfg.cooldown_s)
                ids = [system.submit(a) for a in alerts]
                system.close(30.0)
    except (AlertConfigError, ChannelConfigError, JournalError) as exc:
        out.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    rows = [{**asdict(a), "id": i} for a, i in zip(alerts, ids)]
    if args.json:
        print(json.dumps({"journal": str(path), "mode": cfg.mode, "alerts": rows}))
        return 0
    if not rows:
        out.print(f"no alert fires on {escape(str(path))}")
    for r in rows:
        sent = "" if not args.notify else (f" -> alert #{r['id']}" if r["id"] is not None else " (cooldown/duplicate)")
        out.print(escape(f"{r['severity'].upper()} {r['kind']}: {r['detail']}{sent}"))
    return 0
