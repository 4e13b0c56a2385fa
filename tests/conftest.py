"""Shared fixtures. Real-data tests read ../shared/data (or $NAVALE_SHARED_DATA) and skip when absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings

# CI runs the property tests derandomized (HYPOTHESIS_PROFILE=ci, set by .ci/run): a red build then
# means the code changed, not the dice; locally they explore new random examples on every run.
settings.register_profile("ci", derandomize=True, database=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("NAVALE_SHARED_DATA", ROOT.parent / "shared" / "data")).resolve()


def shared_file(rel: str) -> Path:
    """Path of a file under ../shared/data, or skip the test with the reason."""
    p = SHARED_DATA / rel
    if not p.exists():
        pytest.skip(f"real CME data not available ({p} is absent: a user's clone has no ../shared/data)")
    return p


def es5m_files() -> list[Path]:
    d = SHARED_DATA / "es-5m"
    files = sorted(d.glob("ES*.txt.gz")) if d.exists() else []
    if len(files) != 32:
        pytest.skip(f"the 32 ES 5-minute contracts are not available in {d}")
    return files


@pytest.fixture(autouse=True)
def _isolated_data_dir(tmp_path_factory, monkeypatch):
    """Generated data goes to a per-session temp folder, never into the work tree."""
    monkeypatch.setenv("NAVALE_DATA_DIR", str(tmp_path_factory.getbasetemp() / "navale-data"))


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """The same isolated NAVALE_DATA_DIR, set for module-scoped fixtures too (the autouse fixture is
    function-scoped and would come too late for them)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NAVALE_DATA_DIR", str(tmp_path_factory.getbasetemp() / "navale-data"))
        yield
