"""`navale lab`: the arguments and environment handed to JupyterLab (no server is started)."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

from research.cli import lab_cmd
from research.reports.render import NOTEBOOK_DIR

REPO = Path(__file__).resolve().parents[3]


def _args(*argv: str) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="group")
    lab_cmd.add_parser(sub, argparse.RawDescriptionHelpFormatter)
    return ap.parse_args(["lab", *argv])


def test_localhost_port_and_token_as_an_ordinary_user():
    lab = lab_cmd.launch(_args("--port", "8899", "--no-browser"), euid=1000, token="abc123")
    assert lab.argv[:3] == [sys.executable, "-m", "jupyterlab"]
    assert f"--ServerApp.root_dir={NOTEBOOK_DIR}" in lab.argv
    assert "--ServerApp.ip=127.0.0.1" in lab.argv and "--ServerApp.port=8899" in lab.argv
    assert "--ServerApp.port_retries=0" in lab.argv  # the printed URL is the port it listens on
    assert "--no-browser" in lab.argv and "--allow-root" not in lab.argv
    assert not any("abc123" in a for a in lab.argv)  # the token goes through the environment, not `ps`
    assert lab.env == {"JUPYTER_TOKEN": "abc123"}
    assert lab.url == "http://127.0.0.1:8899/lab?token=abc123"
    assert lab.notes == []


def test_root_gets_allow_root_and_says_so():
    lab = lab_cmd.launch(_args("--port", "8899"), euid=0, token="t")
    assert "--allow-root" in lab.argv and "--ServerApp.ip=127.0.0.1" in lab.argv
    (note,) = lab.notes
    assert "root" in note and "--allow-root" in note and "\n" not in note


def test_default_port_is_free_and_fresh_tokens_differ():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        assert lab_cmd.free_port(first=taken, tries=5) != taken
    a, b = lab_cmd.launch(_args(), euid=1000), lab_cmd.launch(_args(), euid=1000)
    assert a.env["JUPYTER_TOKEN"] != b.env["JUPYTER_TOKEN"] and len(a.env["JUPYTER_TOKEN"]) >= 32
    port = int(next(x for x in a.argv if x.startswith("--ServerApp.port=")).split("=")[1])
    assert f":{port}/lab?token={a.env['JUPYTER_TOKEN']}" in a.url


def test_other_ip_is_named_in_a_note():
    lab = lab_cmd.launch(_args("--ip", "0.0.0.0", "--port", "8899"), euid=1000, token="t")
    assert "--ServerApp.ip=0.0.0.0" in lab.argv and lab.url.startswith("http://127.0.0.1:8899/")
    assert any("0.0.0.0" in n and "token" in n for n in lab.notes)


def test_dry_run_prints_command_and_url_through_the_cli():
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    res = subprocess.run([sys.executable, "-c", "import sys; from research.cli import main; sys.exit(main())",
                          "lab", "--dry-run", "--port", "8899"],
                         capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    assert res.returncode == 0, res.stderr
    assert "jupyterlab" in res.stdout and "--ServerApp.ip=127.0.0.1" in res.stdout
    assert "URL: http://127.0.0.1:8899/lab?token=" in res.stdout
    if os.geteuid() == 0:
        assert "note: running as root" in res.stdout and "--allow-root" in res.stdout
