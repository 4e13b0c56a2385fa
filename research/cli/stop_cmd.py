"""``navale stop``: the emergency stop. Halts the trader of a state dir, makes sure the book is flat, says
how and how fast; ``--clear`` lifts the halt."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from .common import console as make_console
from .common import number_arg

DEFAULT_TIMEOUT_S = 10.0
POLL_S = 0.01


def _seconds(value: str) -> float:
    return number_arg(value, 0, 3600, "seconds")


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale stop`` on the top-level subparsers."""
    p = sub.add_parser(
        "stop",
        help="emergency stop: cancel all orders, flatten, halt the trader until --clear",
        description=(
            "Write the HALT file of the state dir (new orders and trader starts are refused until "
            "`navale stop --clear`), signal the trader (SIGUSR1) and wait for it to journal that it is flat. "
            "If no trader runs, or it does not confirm within --timeout, the paper broker's book is "
            "cancelled and flattened directly. Idempotent: a second stop keeps the first halt and checks "
            "again that the book is flat. Prints the time from the command to flat."
        ),
        epilog=("examples:\n  navale stop\n  navale stop --reason 'news spike' --timeout 5\n"
                "  navale stop --state-dir /srv/navale/live --json\n  navale stop --clear\n"
                "\nexit status: 0 flat (or cleared), 1 not confirmed flat, 2 bad input.\n"),
        formatter_class=formatter,
    )
    p.add_argument("--state-dir", metavar="DIR", help="live state directory (default: $NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--reason", default="emergency stop (navale stop)", help="why; kept in the HALT file and the journal")
    p.add_argument("--timeout", type=_seconds, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                   help=f"how long to wait for the trader's confirmation before acting on the broker (default {DEFAULT_TIMEOUT_S:g})")
    p.add_argument("--clear", action="store_true", help="lift the halt: the trader may be started again")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")


def run(args: argparse.Namespace) -> int:
    from live import control

    t0 = time.perf_counter()
    t0_ns = time.time_ns()
    out = make_console(stderr=args.json)
    directory = control.state_dir(args.state_dir)
    try:
        if args.clear:
            result = _clear(directory, t0_ns)
        elif (not directory.exists() or directory.is_dir()) and not any(
                (directory / f).exists() for f in ("journal.sqlite", "paper_broker.sqlite", "trader.pid")):
            raise control.ControlError(f"no trader, journal or paper book in {directory}: nothing was stopped (give "
                                       "the trader's --state-dir, or set NAVALE_LIVE_DIR as it was)")
        else:
            result = _stop(directory, args.reason, args.timeout, t0, t0_ns)
    except control.ControlError as exc:
        from rich.markup import escape

        out.print(f"[bold red]error:[/] {escape(str(exc))}")
        return 2
    if args.json:
        print(json.dumps(result, default=str))
    else:
        from rich.markup import escape

        for line in result["lines"]:
            out.print(escape(line))
    return 0 if result.get("flat", True) else 1


# ---------------------------------------------------------------- stop


def emergency_stop(directory: str | Path, reason: str = "emergency stop", timeout: float = 10.0) -> dict[str, Any]:
    """What `navale stop` does (halt, signal the trader, wait for flat, else flatten the paper book): the
    result dict (``flat``, ``path``, ``detail``, ``lines``...). Raises ``live.control.ControlError``."""
    return _stop(Path(directory), reason, timeout, time.perf_counter(), time.time_ns())


def _stop(directory: Path, reason: str, timeout: float, t0: float, t0_ns: int) -> dict[str, Any]:
    from live import control

    lines: list[str] = []
    journal = _open_journal(directory, lines)
    after = journal.last_risk_event_id() if journal is not None else 0  # before the halt: no event is missed
    running = control.trader_pid(directory)  # before the halt too: the trader may see it and exit at once
    halt, created = control.write_halt(directory, reason)
    lines.insert(0, f"halted {directory}: {halt['reason']}" if created else
                 f"{directory} was already halted since {halt.get('time') or '?'} ({halt['reason']}); "
                 "making sure the book is flat")
    if journal is not None:
        _journal(journal, lines, "stop_requested", f"{reason} by {control.who()}", t0_ns)
    pid = control.signal_trader(directory) or running
    path, detail, flat = "broker", "", False
    if pid is not None:
        lines.append(f"signalled the trader (pid {pid}); waiting up to {timeout:g} s for it to confirm flat")
        event = _wait_for_flat(journal, directory, after, timeout)
        if event is not None and event["detail"].startswith("flat"):
            path, detail, flat = "trader", event["detail"], True
        else:
            why = "did not confirm within the timeout" if event is None else f"reported: {event['detail']}"
            lines.append(f"the trader (pid {pid}) {why}: acting on the broker")
    else:
        lines.append("no trader runs with this state dir: acting on the broker")
    if not flat:
        path, detail, flat = _flatten_broker(directory, "hung" if pid is not None else "not running")
        journal = journal or _open_journal(directory, lines)  # a trader starting may have created it since
        if journal is not None:
            _journal(journal, lines, "emergency_stop", detail, time.time_ns(), "critical" if not flat else "warning")
    seconds = time.perf_counter() - t0
    if journal is not None:
        journal.close()
    lines.append(f"{'FLAT' if flat else 'NOT FLAT'} via the {path}: {detail}")
    lines.append(f"time from the command to flat: {seconds * 1000:.0f} ms" if flat else
                 f"could not confirm flat after {seconds:.2f} s: check the broker now")
    lines.append("the halt stays until `navale stop --clear`")
    return {"state_dir": str(directory), "halted": True, "already_halted": not created, "halt": halt,
            "trader_pid": pid, "path": path, "flat": flat, "detail": detail, "seconds_to_flat": seconds if flat else None,
            "seconds": seconds, "lines": lines}


def _open_journal(directory: Path, lines: list[str]):
    """The journal, writable, when it exists (a stop never creates one); None otherwise or if it cannot be opened."""
    from live import control
    from live.journal import Journal, JournalError

    path = control.journal_path(directory)
    if not path.is_file():
        return None
    try:
        return Journal(path)
    except JournalError as exc:
        lines.append(f"warning: journal not written: {exc}")
        return None


def _journal(journal, lines: list[str], kind: str, detail: str, ts_ns: int, level: str = "critical") -> None:
    from live.journal import JournalError

    try:
        journal.record_risk_event(kind, detail, ts_ns, level)
    except JournalError as exc:  # a hung trader may hold the write lock: the stop goes on
        lines.append(f"warning: {kind} not journaled: {exc}")


def _wait_for_flat(journal, directory: Path, after: int, timeout: float) -> dict | None:
    """The trader's first ``emergency_stop`` event after risk event ``after``; None at the timeout, or
    when the trader exits without journaling one."""
    from live import control
    from live.journal import Journal, JournalError

    deadline = time.monotonic() + timeout
    reader = journal

    def look() -> dict | None:
        nonlocal reader
        if reader is None and control.journal_path(directory).is_file():  # the trader's first run: created now
            try:
                reader = Journal(control.journal_path(directory), readonly=True)
            except JournalError:
                return None
        if reader is None:
            return None
        return next((e for e in reader.risk_events(after_id=after) if e["kind"] == "emergency_stop"), None)

    while True:
        event = look()
        if event is not None or time.monotonic() >= deadline:
            return event
        if control.trader_pid(directory) is None:  # it exited: one last look
            return look()
        time.sleep(POLL_S)


def _flatten_broker(directory: Path, trader: str) -> tuple[str, str, bool]:
    """Cancel and flatten the paper book of ``directory`` directly: (path, detail, flat)."""
    from live import control
    from live.venues.wiring import flatten_at_venue

    at_venue = flatten_at_venue(directory)  # a session trading through IB / DTC: flatten there
    if at_venue is not None:
        flat, detail = at_venue
        if flat:
            _journal_flat(directory)
        return "broker", f"{detail}; trader {trader}", flat
    if not (directory / control.PAPER_BOOK).is_file():
        return "broker", f"flat (no paper book in {directory}: no position to flatten; trader {trader})", True
    try:
        from live.brokers.paper import PaperBroker
    except ImportError as exc:
        return "broker", f"the paper broker cannot be loaded ({exc}): the book was not flattened", False
    try:
        broker = PaperBroker.from_state_dir(directory)
        try:
            broker.cancel_all()
            broker.flatten("emergency_stop")
            left = {s: q for s, q in broker.positions().items() if q}
            orders = broker.open_orders()
        finally:
            broker.close()
    except Exception as exc:  # noqa: BLE001 - any broker failure is reported, never hidden
        return "broker", f"the paper broker failed to flatten: {' '.join(str(exc).split())}", False
    if left or orders:
        return "broker", f"NOT flat after flatten: positions {left}, {len(orders)} open order(s)", False
    _journal_flat(directory)
    return "broker", f"flat (navale stop cancelled and flattened the paper book; trader {trader})", True


def _journal_flat(directory: Path) -> None:
    """What `navale status` shows after a flatten the trader did not do: position 0 (positions table and a
    heartbeat copied from the last one)."""
    from live import control
    from live.journal import Journal

    path = control.journal_path(directory)
    if not path.is_file():
        return
    try:
        with Journal(path) as j:
            last = j.last_heartbeat()
            now = time.time_ns()
            st = dict(last["status"]) if last else {}
            if st.get("symbol"):
                j.record_position(str(st["symbol"]), 0, now)
            st.update(position=0, entry_price=None, pnl_open_usd=0.0, halted="emergency stop (navale stop)",
                      wall_ns=now)
            j.heartbeat(last["ts_ns"] if last else now, st)
    except Exception:  # noqa: BLE001 - the book is flat; a journal that cannot take the note is reported by status
        pass


# ---------------------------------------------------------------- clear


def _clear(directory: Path, t0_ns: int) -> dict[str, Any]:
    from live import control

    removed = control.clear_halt(directory)
    lines: list[str] = []
    if removed is None:
        lines.append(f"{directory} is not halted: nothing to clear")
    else:
        lines.append(f"cleared the halt of {directory} ({removed['reason']}, since {removed.get('time') or '?'})")
        journal = _open_journal(directory, lines)
        if journal is not None:
            _journal(journal, lines, "halt_cleared", f"by {control.who()}; was: {removed['reason']}", t0_ns, "warning")
            journal.close()
        lines.append("trading may restart (navale paper ...)")
    return {"state_dir": str(directory), "cleared": removed is not None, "halt": removed, "lines": lines}
