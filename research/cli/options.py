"""Command-line options shared by the commands that read bar data and parameters
(``backtest``, ``report performance``, ``sweep``): one wording, one behaviour."""

from __future__ import annotations

import argparse

MODES = ("backtest", "data_collection", "paper", "live")


def add_data_options(p: argparse.ArgumentParser) -> None:
    """DATA... plus --from/--to/--bar, as `research.pipeline.load_series` reads them."""
    p.add_argument("paths", nargs="*", metavar="DATA",
                   help="bar files, folders or globs (default: the embedded synthetic data set)")
    p.add_argument("--from", dest="date_from", metavar="DATE", help="first trading date kept (YYYY-MM-DD, ET)")
    p.add_argument("--to", dest="date_to", metavar="DATE", help="first trading date dropped (YYYY-MM-DD, ET)")
    p.add_argument("--bar", help="bar size for tick sources or resampling (tick sources default to 1min)")


def add_params_options(p: argparse.ArgumentParser, what: str = "parameters TOML (see Params.to_toml); default: METHOD.md's table") -> None:
    """--params/--mode/--session, as `research.pipeline.load_params` reads them."""
    p.add_argument("--params", metavar="FILE", help=what)
    p.add_argument("--mode", choices=MODES, default=None,
                   help="risk preset of METHOD.md (default: the file's mode, else backtest)")
    p.add_argument("--session", choices=("rth", "globex", "all"), default=None,
                   help="bars the signals run on (default rth)")
