"""What the commands share: the console, the progress bar, the synthetic-data banner, and the
options of the commands that read bar data and parameters (``backtest``, ``report performance``,
``sweep``, ``ml``): one wording, one behaviour. Commands import these by name; nothing here
imports pandas."""

from __future__ import annotations

import argparse

from research.pipeline import SYNTHETIC_BANNER
from strategy.modes import MODES, SESSIONS

__all__ = ["SYNTHETIC_BANNER", "console", "progress_bar", "add_data_options", "add_params_options"]


def console():
    """A rich console without highlighting; 160 columns wide when the output is not a terminal.

    Printed text is not wrapped (``soft_wrap``): a one-line message stays one line; tables still fit the width.
    """
    from rich.console import Console

    c = Console(highlight=False, soft_wrap=True)
    if not c.is_terminal:
        c = Console(highlight=False, soft_wrap=True, width=160)
    return c


def progress_bar(*, enabled: bool = True, console=None):
    """A transient rich progress bar: spinner, description, bar, done/total, elapsed time and ETA.

    It draws on stderr (stdout stays clean for ``--json`` and pipes), only when stderr is a terminal
    (or ``TTY_COMPATIBLE=1``), and disappears when done. ``enabled=False`` (e.g. ``--json``) draws
    nothing at all. Use as ``with progress_bar() as bar: t = bar.add_task("loading files", total=n)``.
    """
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        SpinnerColumn,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    out = console or Console(stderr=True, highlight=False)
    return Progress(SpinnerColumn(), TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                    console=out, transient=True, disable=not (enabled and out.is_terminal))


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA... plus --from/--to/--bar, as `research.pipeline.load_series` reads them."""
    p.add_argument("paths", nargs="*", metavar="DATA",
                   help="bar files, folders or globs (default: the embedded synthetic data set)")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="first trading date kept (YYYY-MM-DD, ET)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="first trading date dropped (YYYY-MM-DD, ET)")
    p.add_argument("--bar", help="bar size for tick sources or resampling (tick sources default to 1min)")
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
