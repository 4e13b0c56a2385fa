"""What the commands share: the console, the progress bar, the synthetic-data banner, and the
options of the commands that read bar data and parameters (``backtest``, ``report performance``,
``sweep``, ``ml``): one wording, one behaviour. Commands import these by name; nothing here
imports pandas."""

from __future__ import annotations

import argparse
import errno
import os
import re
from pathlib import Path
from typing import Any

from research.pipeline import SYNTHETIC_BANNER
from strategy.modes import MODES, SESSIONS

__all__ = ["FileProgress", "SYNTHETIC_BANNER", "WRITE_FAILED", "console", "progress_bar", "add_data_options", "add_params_options",
           "os_error_line", "run_id_arg", "date_arg", "port_arg", "require_writable_dir"]

WRITE_FAILED = 4  # exit status: a file or folder could not be written or read (the error line names it and why)

_RUN_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")


def console(stderr: bool = False):
    """A rich console without highlighting; 160 columns wide when the output is not a terminal.

    Printed text is not wrapped (``soft_wrap``): a one-line message stays one line; tables still fit the width.
    ``stderr=True`` (the commands' ``--json``) prints there, so stdout holds the JSON alone.
    """
    from rich.console import Console

    c = Console(highlight=False, soft_wrap=True, stderr=stderr)
    if not c.is_terminal:
        c = Console(highlight=False, soft_wrap=True, width=160, stderr=stderr)
    return c


_WRITE_ERRNOS = {errno.EROFS, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EISDIR, errno.EEXIST}


def os_error_line(exc: OSError) -> str:
    """One line for an OS error: the path(s) it names and the cause, without the ``[Errno N]`` prefix
    (``cannot write /mnt/ro/out: read-only file system``)."""
    from research.store.files import WriteError

    if isinstance(exc, WriteError):
        return str(exc)
    cause = exc.strerror or str(exc) or type(exc).__name__
    cause = cause[:1].lower() + cause[1:]
    if exc.filename is None:
        return cause
    where = f"{exc.filename} -> {exc.filename2}" if exc.filename2 else str(exc.filename)
    verb = "cannot write " if exc.errno in _WRITE_ERRNOS else ""
    return f"{verb}{where}: {cause}"


def require_writable_dir(path: str | Path, option: str) -> None:
    """Refuse, before any work, an output folder that cannot be made: a file of that name, or a nearest
    existing folder that is read-only or not writable (``WriteError``). A full disk shows only on writing."""
    from research.store.files import WriteError

    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WriteError(errno.ENOTDIR, f"it exists and is not a folder ({option})", str(path))
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not probe.is_dir():
        raise WriteError(errno.ENOTDIR, f"{probe} is not a folder ({option})", str(path))
    if not os.access(probe, os.W_OK | os.X_OK):
        try:
            readonly = bool(os.statvfs(probe).f_flag & os.ST_RDONLY)
        except OSError:
            readonly = False
        cause = "read-only file system" if readonly else f"permission denied on {probe}"
        raise WriteError(errno.EROFS if readonly else errno.EACCES, f"{cause} ({option})", str(path))


def run_id_arg(value: str) -> str:
    """argparse type of ``--run-id``: a name usable as one folder (letters, digits, ``.``, ``_``, ``-``)."""
    if not _RUN_ID_RE.fullmatch(value) or ".." in value:
        raise argparse.ArgumentTypeError(
            f"{value!r}: a run id is 1-80 letters, digits, '.', '_' or '-', starting with a letter or digit, "
            "without '..' (it names a folder)")
    return value


def date_arg(value: str) -> str:
    """argparse type of the date options: refuses an empty value (``--from ''`` is not "no filter");
    the layout is checked by ``research.pipeline.parse_date``."""
    if not value.strip():
        raise argparse.ArgumentTypeError("empty: give a date YYYY-MM-DD, or leave the option out")
    return value


def number_arg(value: str, lo: float, hi: float, what: str, *, lo_open: bool = False) -> float:
    """A float option in [lo, hi] (``(lo, hi]`` with `lo_open`), else ArgumentTypeError naming `what`."""
    try:
        v = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number ({what})") from None
    if not ((lo < v) if lo_open else (lo <= v)) or not v <= hi:
        raise argparse.ArgumentTypeError(f"{v:g} is out of range: {what} in {'(' if lo_open else '['}{lo:g}, {hi:g}]")
    return v


def port_arg(value: str) -> int:
    """argparse type of a TCP port: an integer in [1, 65535]."""
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (an integer in [1, 65535])") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is out of range: a port is in [1, 65535]")
    return port


def progress_bar(*, enabled: bool = True, console=None):
    """A transient rich progress bar: spinner, description, bar, done/total, elapsed time and ETA.

    It draws on stderr (stdout stays clean for ``--json`` and pipes), only when stderr is a terminal
    (or ``TTY_COMPATIBLE=1``), and disappears when done. ``enabled=False`` (e.g. ``--json``) draws
    nothing at all. Use as ``with progress_bar() as bar: t = bar.add_task("loading files", total=n)``.
    """
    from rich.console import Console

    from research.progress import make_progress

    out = console or Console(stderr=True, highlight=False)
    return make_progress(console=out, disable=not (enabled and out.is_terminal))


class FileProgress:
    """``on_file`` for `research.pipeline.load_series`: names the file being read on ``bar``'s task and
    counts the files already read (``verb`` says what is done to them)."""

    def __init__(self, bar, task, verb: str = "loading") -> None:
        self.bar, self.task, self.verb, self.done = bar, task, verb, 0

    def __call__(self, path) -> None:
        self.bar.update(self.task, description=f"{self.verb} {path.name}", completed=self.done)
        self.done += 1


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA... plus --from/--to/--bar, as `research.pipeline.load_series` reads them."""
    p.add_argument("paths", nargs="*", metavar="DATA",
                   help="bar files, folders or globs (default: the embedded synthetic data set)")
    p.add_argument("--from", dest="date_from", metavar="DATE", type=date_arg,
                   help="first trading date kept (YYYY-MM-DD, ET)")
    p.add_argument("--to", dest="date_to", metavar="DATE", type=date_arg,
                   help="first trading date dropped (YYYY-MM-DD, ET)")
    p.add_argument("--bar", help="bar size for tick sources or resampling (tick sources default to 1min)")
    p.add_argument("--symbol", help="instrument or contract of the files (ES, ESH20), when their names do not say; "
                                    "a file name names it only when it starts with a known one")
    p.add_argument("--allow-data-errors", action="store_true",
                   help="run even when the data check finds errors (impossible rows are left out; "
                        "recorded in the run's manifest)")


def add_params_options(p: argparse.ArgumentParser, what: str = "parameters TOML (see Params.to_toml); default: the method's defaults, docs/method.md") -> None:
    """--params/--mode/--session, as `research.pipeline.load_params` reads them."""
    p.add_argument("--params", metavar="FILE", help=what)
    p.add_argument("--mode", choices=MODES, default=None,
                   help="risk preset (docs/method.md, 'Modes'; default: the file's mode, else backtest)")
    p.add_argument("--session", choices=SESSIONS, default=None,
                   help="bars the signals run on (default rth)")


def speed_arg(hi: float):
    """An argparse type for ``--speed``: N x real time in (0, hi], or 'max' (inf: as fast as possible)."""
    def parse(value: str) -> float:
        if value.strip().lower() == "max":
            return float("inf")
        return number_arg(value, 0, hi, "speed: x real time, or 'max'", lo_open=True)
    return parse


def add_alert_options(p: argparse.ArgumentParser) -> None:
    """``--alerts-config``, ``--alerts-interval`` and ``--no-alerts`` (navale paper, navale collect)."""
    p.add_argument("--alerts-config", metavar="FILE",
                   help="alert thresholds TOML (docs/alerts.md; default: the mode's defaults)")
    p.add_argument("--alerts-interval", type=float, default=5.0, metavar="SECONDS",
                   help="how often the alert rules look at the journal, on their own thread (default 5 s)")
    p.add_argument("--no-alerts", action="store_true",
                   help="do not run the alert rules beside this process (`navale alerts check` still can)")


def check_alert_options(args: argparse.Namespace, mode: str) -> None:
    """Refuse a bad alerts config or channel file now (ValueError, one line)."""
    if getattr(args, "no_alerts", True):
        return
    from live.alerts.channels import configured_urls
    from live.alerts.config import AlertConfig

    if not 0.05 <= args.alerts_interval <= 3600:
        raise ValueError(f"--alerts-interval {args.alerts_interval:g}: give 0.05 to 3600 seconds")
    if args.alerts_config:
        AlertConfig.from_toml(args.alerts_config, mode=mode)
    configured_urls()


def start_alerts(args: argparse.Namespace, journal_path: Any, mode: str, console: Any) -> Any:
    """The started `live.alerts.watcher.AlertWatcher` on ``journal_path`` (None with --no-alerts)."""
    if getattr(args, "no_alerts", True):
        return None
    from live.alerts.watcher import start_watcher

    watcher, line = start_watcher(journal_path, mode, args.alerts_config, args.alerts_interval)
    console.print(line, highlight=False)
    return watcher
