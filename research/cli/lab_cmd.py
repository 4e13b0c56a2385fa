"""``navale lab``: JupyterLab on the project's notebooks folder, with this environment's Python.

The server listens on 127.0.0.1 unless ``--ip`` says otherwise, on a port chosen before it starts (so the URL
printed beforehand is the real one), with a fresh token passed through the environment (``JUPYTER_TOKEN``,
not visible in ``ps``). As root (a container) JupyterLab exits unless told ``--allow-root``: ``navale lab``
adds it and says so.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import socket
import sys
from dataclasses import dataclass, field
from typing import Any

from .common import port_arg

LOCALHOST = "127.0.0.1"
FIRST_PORT = 8888


def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale lab`` on the top-level subparsers."""
    p = sub.add_parser(
        "lab",
        help="open JupyterLab on notebooks/ (explore a session, edit the report notebooks)",
        description=(
            "Start JupyterLab in the project's notebooks/ folder with this environment's Python "
            "(`python -m jupyterlab`), so notebook kernels import this checkout of navale. The .ipynb/.py "
            "pairs stay in sync through jupytext (notebooks/jupytext.toml). The server listens on "
            f"{LOCALHOST} only and needs a fresh token; the URL with the token is printed before it starts. "
            "As root (e.g. in a container) it is started with --allow-root, and says so."
        ),
        epilog=("examples:\n  navale lab\n  navale lab --port 8890 --no-browser\n  navale lab --dry-run\n"
                "  navale lab --ip 0.0.0.0 --no-browser   # inside a container whose port is published\n"),
        formatter_class=formatter,
    )
    p.add_argument("--port", type=port_arg, default=None,
                   help=f"port, 1-65535 (default: the first free one from {FIRST_PORT})")
    p.add_argument("--ip", default=LOCALHOST,
                   help=f"address to listen on (default {LOCALHOST}: this machine only; 0.0.0.0 exposes the "
                        "server, token-protected, to every network the machine is on)")
    p.add_argument("--no-browser", action="store_true", help="do not open a browser")
    p.add_argument("--dry-run", action="store_true", help="print the command and the URL instead of running it")


@dataclass(frozen=True)
class LabLaunch:
    """What ``navale lab`` runs: the argv, the environment additions, the URL and the notes to print."""

    argv: list[str]
    env: dict[str, str]
    url: str
    notes: list[str] = field(default_factory=list)


def free_port(ip: str = LOCALHOST, first: int = FIRST_PORT, tries: int = 50) -> int:
    """The first port from ``first`` that ``ip`` can bind now."""
    for port in range(first, first + tries):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((ip, port))
            except OSError:
                continue
            return port
    raise OSError(f"no free port on {ip} in {first}..{first + tries - 1}: choose one with --port")


def launch(args: argparse.Namespace, *, euid: int | None = None, token: str | None = None) -> LabLaunch:
    """The JupyterLab launch for ``args`` (``euid``: the effective user id, default this process's)."""
    from research.reports.render import NOTEBOOK_DIR

    if euid is None:
        euid = os.geteuid() if hasattr(os, "geteuid") else 1
    token = token or secrets.token_hex(24)
    port = args.port if args.port is not None else free_port(args.ip)
    argv = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={NOTEBOOK_DIR}",
            f"--ServerApp.ip={args.ip}", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"]
    notes: list[str] = []
    if args.no_browser:
        argv.append("--no-browser")
    if euid == 0:
        argv.append("--allow-root")
        notes.append("running as root (as in a container): started with --allow-root, which JupyterLab needs to "
                     "start at all; run `navale lab` as an ordinary user to avoid it")
    if args.ip != LOCALHOST:
        notes.append(f"listening on {args.ip}: anyone who can reach port {port} and has the token can run code here")
    host = LOCALHOST if args.ip in (LOCALHOST, "0.0.0.0") else args.ip
    url = f"http://{host}:{port}/lab?token={token}"
    return LabLaunch(argv=argv, env={"JUPYTER_TOKEN": token}, url=url, notes=notes)


def command(args: argparse.Namespace) -> list[str]:
    """The argv ``navale lab`` executes."""
    return launch(args).argv


def run(args: argparse.Namespace) -> int:
    try:
        lab = launch(args)
    except OSError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for note in lab.notes:
        print(f"note: {note}")
    if args.dry_run:
        print(" ".join(f"{k}={v}" for k, v in lab.env.items()), shlex.join(lab.argv))
        print(f"URL: {lab.url}")
        return 0
    print(f"JupyterLab on {lab.url}  (Ctrl-C stops it)")
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(lab.argv[0], lab.argv, {**os.environ, **lab.env})  # replaces this process: Ctrl-C stops JupyterLab
    return 0  # pragma: no cover
