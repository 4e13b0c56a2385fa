"""Atomic writes: the file's mode follows the user's umask (not the temp file's 0600), old content survives."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from research.store.files import atomic_write_bytes, atomic_write_text, umask_mode

REPO = Path(__file__).resolve().parents[3]

_WRITE = """
import os, sys
os.umask(int(sys.argv[1], 8))
from research.store.files import atomic_write_text
atomic_write_text(sys.argv[2], "x")
open(sys.argv[3], "w").close()  # what a plain open() gives, for comparison
"""


@pytest.mark.parametrize("umask, mode", [("022", 0o644), ("002", 0o664), ("077", 0o600), ("027", 0o640)])
def test_mode_follows_the_umask_of_the_writing_process(tmp_path, umask, mode):
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    atomic, plain = tmp_path / "atomic.txt", tmp_path / "plain.txt"
    subprocess.run([sys.executable, "-c", _WRITE, umask, str(atomic), str(plain)], check=True, env=env, timeout=60)
    assert stat.S_IMODE(atomic.stat().st_mode) == mode == stat.S_IMODE(plain.stat().st_mode)
    assert atomic.read_text() == "x"


def test_umask_is_restored_and_overwrite_keeps_no_temp(tmp_path):
    before = os.umask(0o022)
    os.umask(before)
    assert umask_mode() == 0o666 & ~before
    assert os.umask(before) == before  # umask_mode left it as it was
    path = atomic_write_bytes(tmp_path / "f.bin", b"old")
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and os.listdir(tmp_path) == ["f.bin"]
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~before
