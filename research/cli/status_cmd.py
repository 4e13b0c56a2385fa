"""``navale status``: the paper trader's state, read from its journal (read-only, while it runs), and the collector's
(``navale collect``) from its own journal."""

from __future__ import annotations

import argparse
import json
from typing import Any

from .common import console as make_console

STALE_HEARTBEAT_S = 30.0  # a running trader silent for longer is reported as not responding
NO_JOURNAL = 2


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale status`` on the top-level subparsers."""
    p = sub.add_parser(
        "status",
        help="the paper trader: running or not, position, P&L today, last bar, feed, kill switches, halt",
        description=(
            "Read the trader's journal (STATE_DIR/journal.sqlite, SQLite WAL: read-only, no lock on the "
            "trader) and its control files: running / stopped / halted, mode, symbol, last bar, position, "
            "P&L today, trades today, feed health, kill switches, the halt and the last risk events."
        ),
        epilog=("examples:\n  navale status\n  navale status --state-dir /srv/navale/live --json\n"
                "  watch -n 2 navale status\n\nexit status: 0 shown, 2 no journal in the state dir.\n"),
        formatter_class=formatter,
    )
    p.add_argument("--state-dir", metavar="DIR", help="live state directory (default: $NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--collect-dir", metavar="ROOT",
                   help="the collector's directory (default $NAVALE_COLLECT_DIR, else data/collect): shown when it has a journal")
    p.add_argument("--events", type=int, default=5, metavar="N", help="last risk events shown (default 5)")
    p.add_argument("--json", action="store_true", help="print the status as JSON on stdout")


def collect(directory, events: int = 5) -> dict[str, Any]:
    """The status of the trader of ``directory`` as one dict (what ``--json`` prints)."""
    from live import control
    from live.journal import Journal

    with Journal(control.journal_path(directory), readonly=True) as journal:
        st = journal.status(events=events)
    pid = control.trader_pid(directory)
    halt = control.read_halt(directory)
    age = st.get("heartbeat_age_s")
    if halt is not None:
        state = "halted"
    elif pid is None:
        state = "stopped"
    elif age is not None and age > STALE_HEARTBEAT_S:
        state = "not responding"
    else:
        state = "running"
    return {"state": state, "state_dir": str(directory), "trader_pid": pid, "halt": halt, **st}


def collector_status(root, events: int = 5) -> dict[str, Any] | None:
    """The collector of ``root`` (its journal's last heartbeat, running or not, the last events), or None when
    the folder has no collector journal."""
    from live import control
    from live.collect import layout
    from live.journal import Journal

    path = layout.journal_path(root)
    if not path.exists():
        return None
    with Journal(path, readonly=True) as journal:
        hb = journal.last_heartbeat()
        evs = journal.risk_events(limit=events) if events else []
    pid = control.trader_pid(root)
    age = None if hb is None else max(0.0, (__import__("time").time_ns() - hb["wall_ns"]) / 1e9)
    state = "stopped" if pid is None else ("not responding" if age is not None and age > STALE_HEARTBEAT_S else "running")
    st = hb["status"] if hb is not None else {}
    symbols = [dict(s) for s in st.get("symbols", [])]
    if state != "running":  # the last heartbeat's "running" and record ages are the dead process's, not now
        for s in symbols:
            if s.get("state") == "running":
                s["state"] = state
            s["last_record_age_s"] = None
    return {"state": state, "dir": str(root), "pid": pid, "heartbeat_age_s": age, "symbols": symbols,
            "feed": st.get("feed"), "mode": st.get("mode"), "fsync": st.get("fsync"), "trading": st.get("trading"),
            "events": evs}


def run(args: argparse.Namespace) -> int:
    from live import control
    from live.collect import layout
    from live.journal import JournalError

    out = make_console(stderr=args.json)
    directory = control.state_dir(args.state_dir)
    try:
        coll = collector_status(layout.collect_dir(getattr(args, "collect_dir", None)), max(0, args.events))
    except JournalError as exc:
        coll = {"state": "unreadable", "error": str(exc), "symbols": [], "events": []}
    try:
        doc = collect(directory, max(0, args.events))
    except JournalError as exc:
        from rich.markup import escape

        if coll is not None:  # a collector alone
            doc = None
        else:
            hint = "; start one with `navale paper`, or name the folder with --state-dir" if "no journal" in str(exc) else ""
            out.print(f"[bold red]error:[/] {escape(str(exc))}{hint}")
            return NO_JOURNAL
    if args.json:
        print(json.dumps({**(doc or {"state": None}), "collector": coll}, default=str))
        return 0
    if doc is not None:
        _show(doc, out)
    if coll is not None:
        _show_collector(coll, out)
    return 0


def _show_collector(c: dict[str, Any], out) -> None:
    from rich.markup import escape
    from rich.table import Table

    colour = {"running": "green", "stopped": "yellow"}.get(c["state"], "bold red")
    age = c.get("heartbeat_age_s")
    head = f"[{colour}]{c['state']}[/]" + (f" (pid {c['pid']})" if c.get("pid") else "") + (
        "" if age is None else f", last heartbeat {age:.1f} s ago")
    t = Table(title=f"collector in {escape(c.get('dir', '?'))}: " + head, title_justify="left")
    for col in ("symbol", "state", "last record", "age", "seq", "ticks", "bars", "gaps", "quality", "segment", "disk free"):
        t.add_column(col)
    for s in c.get("symbols") or []:
        ag = s.get("last_record_age_s")
        free = s.get("disk_free_bytes")
        t.add_row(escape(str(s.get("symbol"))), escape(str(s.get("state"))), _ts(s.get("last_record_ns")),
                  "-" if ag is None else f"{ag:.1f} s", f"{s.get('seq', 0):,}", f"{s.get('ticks', 0):,}",
                  f"{s.get('bars', 0):,}", str(s.get("gaps", 0)), str(s.get("quality_findings", 0)),
                  escape(f"{s.get('segment') or '-'} ({(s.get('segment_bytes') or 0) / 1e6:.1f} MB)"),
                  "-" if free is None else f"{free / 1e9:.1f} GB")
    out.print(t)
    extra = ", ".join(f"{k} {v}" for k, v in (("feed", c.get("feed")), ("mode", c.get("mode")), ("fsync", c.get("fsync")))
                      if v)
    if extra:
        out.print(escape(extra), highlight=False)
    if c.get("events"):
        e = Table(title="collector's last events", title_justify="left")
        for col in ("time (of the record, or wall time)", "level", "kind", "detail"):
            e.add_column(col)
        for ev in c["events"]:
            e.add_row(_ts(ev["ts_ns"]), ev["level"], escape(ev["kind"]), escape(ev["detail"]))
        out.print(e)


def _ts(ns: int | None) -> str:
    if ns is None:
        return "-"
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def _usd(x: float | None) -> str:
    return "-" if x is None else f"{x:+,.2f} $"


def _show(doc: dict[str, Any], out) -> None:
    from rich.markup import escape
    from rich.table import Table

    colour = {"running": "green", "halted": "bold red", "stopped": "yellow", "not responding": "bold red"}[doc["state"]]
    t = Table(title=f"trader in {escape(doc['state_dir'])}", title_justify="left", show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    who = f" (pid {doc['trader_pid']})" if doc["trader_pid"] else ""
    age = doc.get("heartbeat_age_s")
    t.add_row("state", f"[{colour}]{doc['state']}[/]{who}" + ("" if age is None else f", last heartbeat {age:.1f} s ago"))
    if doc.get("halt"):
        h = doc["halt"]
        t.add_row("halt", escape(f"{h['reason']} (by {h.get('by', '?')}, {h.get('time') or '?'}); "
                                 "`navale stop --clear` lifts it"))
    mode = doc.get("mode") or "-"
    if doc.get("unvalidated"):
        mode += " [bold yellow]UNVALIDATED[/] configuration"
    t.add_row("mode", mode)
    t.add_row("symbol", escape(str(doc.get("symbol") or "-")))
    t.add_row("last bar", _ts(doc.get("bar_ts_ns")) + (f" (trading date {doc['trading_date']})" if doc.get("trading_date") else ""))
    pos = doc.get("position") or 0
    where = f" @ {doc['entry_price']:g}" if pos and doc.get("entry_price") is not None else ""
    t.add_row("position", f"{pos:+d}{where}" + (f", open P&L {_usd(doc.get('pnl_open_usd'))}" if pos else ""))
    t.add_row("P&L today", f"{_usd(doc.get('pnl_today_usd'))} in {doc.get('trades_today') or 0} trade(s)")
    t.add_row("all trades", f"{doc['trades_total']} trade(s), {_usd(doc['pnl_total_usd'])}")
    feed = doc.get("feed") or {}
    if feed:
        age_f, events = feed.get("last_record_age_s"), feed.get("events")
        events = f"{events} event(s)" if isinstance(events, int) else events
        t.add_row("feed", escape(f"{feed.get('kind') or '?'}: {feed.get('records', '?')} records"
                                 + ("" if age_f is None else f", last {float(age_f):.1f} s ago")
                                 + (f", {events}" if events else "")))
    else:
        t.add_row("feed", "-")
    t.add_row("kill switches", _kill_switches(doc.get("kill_switches") or {}))
    q = doc.get("quality")
    if q:
        t.add_row("signal quality", escape(
            f"P(win) >= {q.get('threshold')}: {q.get('taken', 0)} taken, {q.get('skipped', 0)} skipped (shadow trades"
            f", P&L {_usd(q.get('shadow_pnl_usd'))}" + (f", shadow position {q['shadow_position']:+d}"
                                                       if q.get("shadow_position") else "") + ")"))
    out.print(t)
    if doc["risk_events"]:
        e = Table(title="last risk events", title_justify="left")
        for col in ("market time", "level", "kind", "detail"):
            e.add_column(col)
        for ev in doc["risk_events"]:
            e.add_row(_ts(ev["ts_ns"]), ev["level"], escape(ev["kind"]), escape(ev["detail"]))
        out.print(e)


def _kill_switches(ks: dict[str, Any]) -> str:
    """Tripped switches (True or a reason) in red, then the figures they watch (counters, percentages)."""
    from rich.markup import escape

    tripped = {k: v for k, v in ks.items() if v is True or (isinstance(v, str) and v)}
    figures = {k: v for k, v in ks.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}
    text = ("[bold red]" + escape(", ".join(k if v is True else f"{k}: {v}" for k, v in tripped.items())) + "[/]"
            if tripped else "none tripped")
    if figures:
        text += escape("; " + ", ".join(f"{k} {v:g}" for k, v in figures.items()))
    return text
