"""``navale lab``: JupyterLab on the project's notebooks folder, with this environment's Python."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from typing import Any


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale lab`` on the top-level subparsers."""
    p = sub.add_parser(
        "lab",
        help="open JupyterLab on notebooks/ (explore a session, edit the report notebooks)",
        description=(
            "Start JupyterLab in the project's notebooks/ folder with this environment's Python "
            "(`python -m jupyterlab`), so notebook kernels import this checkout of navale. The .ipynb/.py "
            "pairs stay in sync through jupytext (notebooks/jupytext.toml)."
        ),
        epilog="examples:\n  navale lab\n  navale lab --port 8890 --no-browser\n  navale lab --dry-run\n",
        formatter_class=formatter,
    )
    p.add_argument("--port", type=int, default=None, help="port (default: JupyterLab's, 8888 or the next free one)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--dry-run", action="store_true", help="print the command instead of running it")


def command(args: argparse.Namespace) -> list[str]:
    """The argv ``navale lab`` executes."""
    from research.reports.render import NOTEBOOK_DIR

    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={NOTEBOOK_DIR}"]
    if args.port is not None:
        argv.append(f"--port={args.port}")
    if args.no_browser:
        argv.append("--no-browser")
    return argv


def run(args: argparse.Namespace) -> int:
    argv = command(args)
    if args.dry_run:
        print(shlex.join(argv))
        return 0
    sys.stdout.flush()
    sys.stderr.flush()
    os.execv(argv[0], argv)  # replaces this process: Ctrl-C stops JupyterLab as usual
    return 0  # pragma: no cover
