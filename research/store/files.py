"""Atomic file writes: a reader never sees a half-written file, and a failed write leaves the old one.

The file gets the mode a plain ``open(path, "w")`` would give it (0666 less the user's umask), not the
0600 of the temp file it is written through.
"""

from __future__ import annotations

import errno
import os
import tempfile
import threading
from pathlib import Path

__all__ = ["WriteError", "atomic_write_bytes", "atomic_write_text", "ensure_dir", "umask_mode"]

_UMASK_LOCK = threading.Lock()


class WriteError(OSError):
    """A file or folder that could not be written: ``str()`` is one line naming the path and the cause
    (``cannot write reports/x.json: no space left on device``); ``errno`` is the OS's."""

    def __str__(self) -> str:
        cause = self.strerror or "unknown cause"
        return f"cannot write {self.filename}: {cause[:1].lower()}{cause[1:]}"


def write_error(exc: OSError, path: str | Path, *, os_path: bool = True) -> WriteError:
    """``exc`` as a :class:`WriteError` naming the path the OS named (``os_path``, when it gave one), else ``path``."""
    if isinstance(exc, WriteError):
        return exc
    where = exc.filename if os_path and exc.filename else path
    return WriteError(exc.errno or errno.EIO, exc.strerror or str(exc), str(where))


def ensure_dir(path: str | Path) -> Path:
    """Create the folder ``path`` (and its parents) if needed; :class:`WriteError` when it cannot be,
    e.g. a file of that name exists or the file system is read-only."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise WriteError(errno.ENOTDIR, "it exists and is not a folder", str(path))
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent is a file
        raise WriteError(errno.ENOTDIR, "a part of the path exists and is not a folder", str(path)) from None
    except OSError as exc:
        raise write_error(exc, path) from exc
    return path


def _current_umask() -> int:
    """The process's umask: from /proc on Linux (read-only), else set and restored under a lock."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def umask_mode(mode: int = 0o666) -> int:
    """``mode`` less the process's umask: what ``open()`` would create."""
    return mode & ~_current_umask()


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` via a temp file in the same folder, fsync, then rename over it.

    Raises :class:`WriteError` (one line: the path and the cause) when the folder cannot be created, the
    disk is full or read-only, or ``path`` is a folder; the old file, if any, is left as it was.
    """
    path = Path(path)
    if path.is_dir():
        raise WriteError(errno.EISDIR, "it is a folder; name a file inside it", str(path))
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as exc:  # named by the file asked for, not by its temp file
        raise write_error(exc, path, os_path=False) from exc
    try:
        if hasattr(os, "fchmod"):
            os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        Path(tmp).unlink(missing_ok=True)
        raise write_error(exc, path, os_path=False) from exc
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str, encoding: str = "utf-8") -> Path:
    """Text version of :func:`atomic_write_bytes`."""
    return atomic_write_bytes(path, text.encode(encoding))
