"""What the commands share: the console, the synthetic-data banner, and the options of the
commands that read bar data and parameters (``backtest``, ``report performance``, ``sweep``,
``ml``): one wording, one behaviour. Commands import these by name; nothing here imports pandas."""

from __future__ import annotations

import argparse

from research.pipeline import SYNTHETIC_BANNER
from strategy.modes import MODES, SESSIONS

__all__ = ["SYNTHETIC_BANNER", "console", "add_data_options", "add_params_options"]


def console():
    """A rich console without highlighting; 160 columns wide when the output is not a terminal."""
    from rich.console import Console

    c = Console(highlight=False)
    if not c.is_terminal:
        c = Console(highlight=False, width=160)
    return c


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA... plus --from/--to/--bar, as `research.pipeline.load_series` reads them."""
    p.add_argument("paths", nargs="*", metavar="DATA",
                   help="bar files, folders or globs (default: the embedded synthetic data set)")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="first trading date kept (YYYY-MM-DD, ET)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="first trading date dropped (YYYY-MM-DD, ET)")
    p.add_argument("--bar", help="bar size for tick sources or resampling (tick sources default to 1min)")


def add_params_options(p: argparse.ArgumentParser, what: str = "parameters TOML (see Params.to_toml); default: the method's defaults, docs/method.md") -> None:
    """--params/--mode/--session, as `research.pipeline.load_params` reads them."""
    p.add_argument("--params", metavar="FILE", help=what)
    p.add_argument("--mode", choices=MODES, default=None,
                   help="risk preset (docs/method.md, 'Modes'; default: the file's mode, else backtest)")
    p.add_argument("--session", choices=SESSIONS, default=None,
                   help="bars the signals run on (default rth)")
