"""Provenance of a run: code commit, parameters, input file hashes, library versions.

The manifest (`build_manifest`) says what produced a result; the run id (`make_run_id`) is a hash
of what determines it, never the time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import importlib.metadata
import json
import platform
import subprocess
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.store import snapshots as snap

__all__ = ["file_sha256", "git_state", "package_versions", "build_manifest", "make_run_id", "json_default", "dumps_json"]

_REPO_DIR = Path(__file__).resolve().parent
_VERSIONED = ("numpy", "pandas", "numba", "vectorbt", "duckdb", "pyarrow")
_CHUNK = 1 << 20



def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            h.update(chunk)
    return h.hexdigest()


def git_state(repo: Path) -> tuple[str | None, bool | None]:
    """(HEAD commit, dirty) of the repo containing ``repo``; (None, None) if not a repo or no git."""

    def git(*args: str) -> str | None:
        try:
            res = subprocess.run(
                ["git", "--no-optional-locks", *args], cwd=repo, capture_output=True, text=True, timeout=10
            )
        except (OSError, subprocess.SubprocessError):
            return None
        return res.stdout if res.returncode == 0 else None

    head = git("rev-parse", "HEAD")
    if head is None or not head.strip():
        return None, None
    status = git("status", "--porcelain")
    return head.strip(), (None if status is None else bool(status.strip()))


def package_versions(names: Iterable[str]) -> dict[str, str | None]:
    """Installed version of each distribution (None when absent), for provenance records."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = None
    return out


def _versions() -> dict[str, str | None]:
    return {"python": platform.python_version(), **package_versions(_VERSIONED)}


def build_manifest(
    *,
    params: dict,
    params_hash: str,
    data_files: Iterable[str | Path],
    mode: str,
    session: str,
    extra: dict | None = None,
) -> dict:
    """Provenance of a run: code commit, params, input files (sha256, size), library versions, time.

    ``git_commit``/``git_dirty`` are None when this file is not in a git work tree or git is missing.
    """
    commit, dirty = git_state(_REPO_DIR)
    files = []
    for p in data_files:
        path = Path(p).resolve()
        files.append({"path": str(path), "sha256": file_sha256(path), "size": path.stat().st_size})
    return {
        "snapshot_schema_version": snap.SCHEMA_VERSION,
        "created_at": dt.datetime.now(dt.UTC).isoformat(),
        "git_commit": commit,
        "git_dirty": dirty,
        "params": params,
        "params_hash": params_hash,
        "data_files": files,
        "mode": mode,
        "session": session,
        "extra": dict(extra or {}),
        "versions": _versions(),
    }


def make_run_id(manifest: dict) -> str:
    """Deterministic 16-hex run id from params hash, data sha256s, mode, session, extra and git commit."""
    ident = {
        "params_hash": manifest["params_hash"],
        "data": sorted(f["sha256"] for f in manifest.get("data_files", [])),
        "mode": manifest["mode"],
        "session": manifest["session"],
        "extra": manifest.get("extra") or {},
        "git_commit": manifest.get("git_commit"),
    }
    blob = json.dumps(ident, sort_keys=True, default=json_default).encode()
    return hashlib.sha256(blob).hexdigest()[:16]


def json_default(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, (dt.datetime, dt.date, pd.Timestamp)):
        return obj.isoformat()
    if isinstance(obj, (Path, dt.timedelta, pd.Timedelta)):
        return str(obj)
    if isinstance(obj, (set, frozenset)):
        return sorted(obj)
    raise TypeError(f"{type(obj).__name__} {obj!r} is not JSON serializable")


def dumps_json(obj: Any) -> str:
    """Sorted-key JSON of manifests and summaries (numpy, pandas and datetime values as plain JSON)."""
    return json.dumps(obj, sort_keys=True, default=json_default)
