"""Keep numba's on-disk cache honest across modules.

numba's ``cache=True`` invalidates a cached function only when the file that *defines* it changes
(its mtime and size): code it calls from other modules is compiled into the cached machine code,
so editing ``rolling.py`` would leave ``kernels.run`` (and everything built on it) running the
old helpers until the cache is deleted (numba issue #1833, a documented limitation). There is no
numba option for this, hence this module.

:func:`refresh_if_changed` keeps a hash of a module's dependencies next to numba's cache files
(``__pycache__/<module>.deps``) and, when it differs, touches the module's own file (content
unchanged) so numba recompiles it. Call it at the top of a module, before its ``@njit``
decorators (numba reads the source stamp when it decorates). This is build bookkeeping, not data
I/O: nothing here reads or writes market data.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable
from pathlib import Path

__all__ = ["refresh_if_changed"]


def _digest(paths: Iterable[Path]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:16]


def refresh_if_changed(module_file: str | Path, deps: Iterable[str | Path]) -> bool:
    """Touch ``module_file`` when the sources in ``deps`` changed since the last call; True if touched.

    A read-only install (no writable ``__pycache__``) is left alone: its files cannot have changed.
    """
    module = Path(module_file)
    try:
        digest = _digest(Path(d) for d in deps)
        stamp = module.parent / "__pycache__" / f"{module.stem}.deps"
        if stamp.exists() and stamp.read_text().strip() == digest:
            return False
        os.utime(module)  # a new mtime invalidates numba's index for this file
        stamp.parent.mkdir(exist_ok=True)
        tmp = stamp.with_name(f"{stamp.name}.{os.getpid()}.tmp")
        tmp.write_text(digest)
        os.replace(tmp, stamp)  # atomic: concurrent importers (Dask workers) never read half a stamp
        return True
    except OSError:
        return False
