"""The state directory and the control files the trader and the commands share.

- ``state_dir()``: ``--state-dir``, else ``$NAVALE_LIVE_DIR``, else ``data/live``;
- ``HALT``: the emergency stop, a JSON file written atomically by ``navale stop``. While it exists the
  trader places no order and refuses to start; any file of that name halts, even an empty or damaged one;
- ``trader.pid``: the running trader's pid (:func:`claim` at start refuses a halted or taken state dir) (and its process start time, so a reused pid is not taken for it);
- the stop signal: ``SIGUSR1`` to that pid, so a trader blocked waiting for data checks the halt at once.
"""

from __future__ import annotations

import getpass
import json
import os
import signal
import socket
import threading
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from research.store.files import atomic_write_text

__all__ = ["LIVE_DIR_ENV", "DEFAULT_STATE_DIR", "JOURNAL", "HALT", "PID", "PAPER_BOOK", "STOP_SIGNAL",
           "ControlError", "state_dir", "journal_path", "write_halt", "read_halt", "clear_halt", "who",
           "claim", "write_pid", "read_pid", "remove_pid", "pid_alive", "trader_pid", "signal_trader", "HaltWatch"]

LIVE_DIR_ENV = "NAVALE_LIVE_DIR"
DEFAULT_STATE_DIR = Path("data") / "live"
JOURNAL = "journal.sqlite"
HALT = "HALT"
PID = "trader.pid"
PAPER_BOOK = "paper_broker.sqlite"
STOP_SIGNAL = signal.SIGUSR1


class ControlError(RuntimeError):
    """A control file cannot be read or written, or another trader holds the state dir (one line)."""


def state_dir(arg: str | Path | None = None) -> Path:
    """The live state directory: ``arg``, else ``$NAVALE_LIVE_DIR``, else ``data/live`` (not created)."""
    if arg is not None and str(arg).strip():
        return Path(arg)
    env = os.environ.get(LIVE_DIR_ENV, "").strip()
    return Path(env) if env else DEFAULT_STATE_DIR


def journal_path(directory: str | Path) -> Path:
    """``DIR/journal.sqlite``."""
    return Path(directory) / JOURNAL


def who() -> str:
    """``user@host (pid N)``: who wrote a control file."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = str(os.getuid()) if hasattr(os, "getuid") else "?"
    return f"{user}@{socket.gethostname()} (pid {os.getpid()})"


def _now() -> tuple[int, str]:
    ns = time.time_ns()
    return ns, datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="milliseconds")


# ---------------------------------------------------------------- halt


def write_halt(directory: str | Path, reason: str, by: str | None = None) -> tuple[dict[str, Any], bool]:
    """Halt the trader of ``directory``: ``(halt, created)``. Idempotent: an existing halt is kept as it
    is (its first reason stands) and returned with ``created=False``."""
    current = read_halt(directory)
    if current is not None:
        return current, False
    ns, iso = _now()
    halt = {"reason": reason or "emergency stop", "by": by or who(), "ts_ns": ns, "time": iso}
    path = Path(directory) / HALT
    try:
        atomic_write_text(path, json.dumps(halt, indent=1) + "\n")
    except OSError as exc:
        raise ControlError(str(exc)) from None
    return halt, True


def read_halt(directory: str | Path) -> dict[str, Any] | None:
    """The halt of ``directory`` (``reason``, ``by``, ``ts_ns``, ``time``), or None when not halted.
    A HALT file that is empty or not a halt record still halts: its ``reason`` says what it holds."""
    path = Path(directory) / HALT
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, NotADirectoryError):  # no HALT, or no state dir at all (the stop says so on writing)
        return None
    except OSError as exc:
        return {"reason": f"unreadable HALT file ({exc.strerror or exc})", "by": "?", "ts_ns": 0, "time": ""}
    try:
        doc = json.loads(text)
        if not isinstance(doc, dict) or not isinstance(doc.get("reason"), str):
            raise ValueError
    except ValueError:
        first = text.strip().splitlines()[0][:200] if text.strip() else "empty"
        return {"reason": f"HALT file: {first}", "by": "?", "ts_ns": 0, "time": ""}
    return doc


def clear_halt(directory: str | Path) -> dict[str, Any] | None:
    """Remove the halt; the halt that was removed, or None if there was none."""
    current = read_halt(directory)
    try:
        (Path(directory) / HALT).unlink()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ControlError(f"cannot remove {Path(directory) / HALT}: {exc.strerror or exc}") from None
    return current


class HaltWatch:
    """What the trader's loop asks before every order: is a stop requested?

    ``install()`` (from the main thread) makes :data:`STOP_SIGNAL` set a flag; :meth:`check` returns the
    halt (dict) when the flag is set or the HALT file exists, else None. The file is looked at no more
    often than every ``every_s`` seconds (a stat), the flag on every call.
    """

    def __init__(self, directory: str | Path, every_s: float = 0.2) -> None:
        self.directory = Path(directory)
        self.every_s = every_s
        self.signalled = threading.Event()
        self._next = 0.0
        self._halt: dict[str, Any] | None = None

    def install(self) -> HaltWatch:
        signal.signal(STOP_SIGNAL, lambda *_: self.signalled.set())
        return self

    def check(self) -> dict[str, Any] | None:
        if self._halt is not None:
            return self._halt
        now = time.monotonic()
        if not self.signalled.is_set() and now < self._next:
            return None
        self._next = now + self.every_s
        halt = read_halt(self.directory)
        if halt is None and self.signalled.is_set():
            self.signalled.clear()
            halt = read_halt(self.directory)  # the signal may come before the file is visible: once more
            if halt is None:
                halt = {"reason": f"signal {STOP_SIGNAL.name} without a HALT file", "by": "?", "ts_ns": 0, "time": ""}
        self._halt = halt
        return halt

    def reset(self) -> None:
        """Forget a halt seen (after ``navale stop --clear``)."""
        self._halt = None
        self.signalled.clear()


# ---------------------------------------------------------------- pid


def _start_ticks(pid: int) -> int | None:
    """The process start time (clock ticks since boot, /proc/PID/stat field 22), None where unknown."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(raw.rsplit(")", 1)[1].split()[19])
    except (IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return False


def pid_alive(pid: int | None, start_ticks: int | None = None) -> bool:
    """True if process ``pid`` runs (a zombie does not; with ``start_ticks``, it must be that process)."""
    if not pid or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    if _zombie(pid):
        return False
    if start_ticks is not None:
        now = _start_ticks(pid)
        return now is None or now == start_ticks
    return True


def read_pid(directory: str | Path) -> dict[str, Any] | None:
    """The pid file (``pid``, ``start_ticks``, ``started_ns``, ``by``), or None if there is none or it is unreadable."""
    try:
        doc = json.loads((Path(directory) / PID).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return None
    return doc if isinstance(doc, dict) and isinstance(doc.get("pid"), int) else None


def trader_pid(directory: str | Path) -> int | None:
    """The pid of the trader running with ``directory``, or None (no pid file, or that process is gone)."""
    doc = read_pid(directory)
    if doc is None or not pid_alive(doc["pid"], doc.get("start_ticks")):
        return None
    return int(doc["pid"])


def write_pid(directory: str | Path, pid: int | None = None) -> dict[str, Any]:
    """Record ``pid`` (default: this process) as the trader of ``directory``; :class:`ControlError` if
    another live trader holds it. A pid file left by a dead process is replaced."""
    pid = os.getpid() if pid is None else int(pid)
    other = trader_pid(directory)
    if other is not None and other != pid:
        raise ControlError(f"a trader (pid {other}) already runs with the state dir {directory}: "
                           f"stop it first (navale stop --state-dir {directory})")
    ns, iso = _now()
    doc = {"pid": pid, "start_ticks": _start_ticks(pid), "started_ns": ns, "time": iso, "by": who()}
    try:
        atomic_write_text(Path(directory) / PID, json.dumps(doc) + "\n")
    except OSError as exc:
        raise ControlError(str(exc)) from None
    return doc


def claim(directory: str | Path) -> dict[str, Any]:
    """What a trader does at start: refuse a halted state dir (:class:`ControlError` saying how to lift
    the halt) or one another live trader holds, then record this process in the pid file."""
    halt = read_halt(directory)
    if halt is not None:
        raise ControlError(f"{directory} is halted since {halt.get('time') or '?'} ({halt['reason']}); "
                           f"`navale stop --clear --state-dir {directory}` lifts the halt")
    lock_dir(Path(directory))
    return write_pid(directory)


_LOCKS: dict[str, Any] = {}  # state dir -> the open lock file this process holds (released when it exits)


def lock_dir(directory: Path, *, holder: str = "trader", hint: str | None = None) -> None:
    """An exclusive lock (flock) on ``DIR/trader.lock`` for this process's lifetime: two traders (or two
    collectors: ``holder``) started at the same instant cannot both hold a dir (the pid file alone is
    check-then-write). ``hint``: how to stop the other one, for the refusal's message."""
    import fcntl

    key = str(directory.resolve())
    if key in _LOCKS:
        return
    fh = open(directory / "trader.lock", "a+")
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        other = trader_pid(directory)
        how = hint or f"navale stop --state-dir {directory}"
        if other:
            how = how.replace("PID", str(other))
        raise ControlError(f"another {holder}{f' (pid {other})' if other else ''} holds {directory}: "
                           f"stop it first ({how})") from None
    _LOCKS[key] = fh


def release(directory: str | Path) -> None:
    """Give up this process's lock on ``directory`` (a trader that ended)."""
    fh = _LOCKS.pop(str(Path(directory).resolve()), None)
    if fh is not None:
        fh.close()


def remove_pid(directory: str | Path, pid: int | None = None) -> bool:
    """Remove the pid file if it names ``pid`` (default: this process); True if removed."""
    pid = os.getpid() if pid is None else pid
    doc = read_pid(directory)
    if doc is None or doc["pid"] != pid:
        return False
    (Path(directory) / PID).unlink(missing_ok=True)
    return True


def signal_trader(directory: str | Path) -> int | None:
    """Send :data:`STOP_SIGNAL` to the running trader; its pid, or None when none runs."""
    pid = trader_pid(directory)
    if pid is None:
        return None
    try:
        os.kill(pid, STOP_SIGNAL)
    except ProcessLookupError:
        return None
    except PermissionError as exc:
        raise ControlError(f"cannot signal the trader (pid {pid}): {exc.strerror or exc}") from None
    return pid
