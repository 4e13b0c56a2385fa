"""Small tmpfs mounts for the tests of full and read-only disks (root only; the tests skip otherwise)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest


def mount_tmpfs(where: Path, size: str) -> None:
    """Mount a tmpfs of ``size`` (e.g. ``"4m"``) on ``where``, or skip the test saying why it cannot."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (CAP_SYS_ADMIN); CI containers usually lack it")
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)], capture_output=True,
                       text=True)
    if p.returncode:
        pytest.skip(f"cannot mount a tmpfs here ({p.stderr.strip() or p.returncode}): needs CAP_SYS_ADMIN")


def remount(where: Path, mode: str) -> None:
    """Remount the tmpfs on ``where`` ``"ro"`` or ``"rw"``."""
    subprocess.run(["mount", "-o", f"remount,{mode}", str(where)], check=True)


def umount(where: Path) -> None:
    """Unmount ``where`` (lazily: a file still open there does not keep it mounted)."""
    subprocess.run(["umount", "-l", str(where)], capture_output=True)
