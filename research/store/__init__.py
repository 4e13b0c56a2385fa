"""Everything a run leaves behind: the DuckDB run store, the trade-snapshot schema, provenance,
atomic file writes.

- :mod:`research.store.runs`: :class:`RunStore` (runs, trade snapshots, promotion decisions);
- :mod:`research.store.pending`: runs the store could not take, saved as pending bundles, and their import;
- :mod:`research.store.snapshots`: the trade snapshot record (one schema for backtest, paper, live);
- :mod:`research.store.provenance`: manifests, run ids, file hashes, git state, package versions;
- :mod:`research.store.files`: atomic writes (a reader never sees half a file).

The names below load on first use, so ``research.store.files`` costs no DuckDB.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__all__ = ["RunStore", "StoreError", "StoreLockedError", "StoreWriteError", "StoredRun", "default_store_path",
           "lock_timeout", "RunsNotStoredError", "store_runs", "store_promotion", "find_pending", "import_pending",
           "build_manifest", "make_run_id", "file_sha256", "package_versions", "atomic_write_bytes",
           "atomic_write_text"]

_EXPORTS = {
    "RunStore": "runs", "StoreError": "runs", "StoreLockedError": "runs", "StoreWriteError": "runs",
    "StoredRun": "runs", "default_store_path": "runs", "lock_timeout": "runs",
    "RunsNotStoredError": "pending", "store_runs": "pending", "store_promotion": "pending",
    "find_pending": "pending", "import_pending": "pending",
    "build_manifest": "provenance", "make_run_id": "provenance", "file_sha256": "provenance",
    "package_versions": "provenance", "atomic_write_bytes": "files", "atomic_write_text": "files",
}

if TYPE_CHECKING:
    from .files import atomic_write_bytes, atomic_write_text
    from .pending import (
        RunsNotStoredError,
        find_pending,
        import_pending,
        store_promotion,
        store_runs,
    )
    from .provenance import build_manifest, file_sha256, make_run_id, package_versions
    from .runs import (
        RunStore,
        StoredRun,
        StoreError,
        StoreLockedError,
        StoreWriteError,
        default_store_path,
        lock_timeout,
    )


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
