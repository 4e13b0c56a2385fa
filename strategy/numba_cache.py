"""Keep numba's on-disk cache honest across modules.

numba's ``cache=True`` keys a cached function on the source of the file that *defines* it (its
contents since numba 0.68, its mtime before): code it calls from other modules is compiled into
the cached machine code, so editing ``rolling.py`` would leave ``kernels.run`` (and everything
built on it) running the old helpers until the cache is deleted (numba issue #1833, a documented
limitation; no numba option covers it), and the batch and streaming paths could then disagree.

:func:`refresh_if_changed` keeps a hash of a module's dependencies next to its source
(``__pycache__/<module>.deps``) and, when it differs, empties the cache index of every cached
dispatcher of that module (numba's own ``Cache.flush``), so their first call compiles afresh and
re-caches. Call it at the *end* of the module, after its ``@njit`` functions are defined and
before any is called. This is build bookkeeping, not data I/O: nothing here touches market data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

__all__ = ["refresh_if_changed"]


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def _cached_dispatchers(namespace: Mapping[str, Any]) -> list[Any]:
    from numba.core.dispatcher import Dispatcher

    return [obj for obj in namespace.values()
            if isinstance(obj, Dispatcher) and callable(getattr(getattr(obj, "_cache", None), "flush", None))]


def refresh_if_changed(namespace: Mapping[str, Any], deps: Iterable[str | Path]) -> bool:
    """Flush the numba cache of the module whose globals are ``namespace`` when the sources in
    ``deps`` changed since the last call; True if it flushed.

    A read-only install (no writable ``__pycache__``) is left alone: its files cannot have changed.
    """
    module = Path(namespace["__file__"])
    try:
        digest = _digest(Path(d) for d in deps)
        stamp = module.parent / "__pycache__" / f"{module.stem}.deps"
        if stamp.exists() and stamp.read_text().strip() == digest:
            return False
        for dispatcher in _cached_dispatchers(namespace):
            dispatcher._cache.flush()  # an empty index: the next call compiles and caches again
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # atomic: concurrent importers (Dask workers) never read half a stamp
        return True
    except OSError:
        return False
