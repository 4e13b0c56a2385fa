"""strategy.numba_cache: after a callee in another file changes, a cached numba function runs the new
code (numba alone would keep the stale machine code: its cache keys on the defining file only)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DEP = """
from numba import njit


@njit(cache=True)
def helper(x):
    return x + {value}
"""

MODULE = """
from numba import njit

from .dep import helper


@njit(cache=True)
def kernel(x):
    return helper(x) * 10
{guard}
"""

GUARD = """
from strategy.numba_cache import refresh_if_changed

refresh_if_changed(globals(), [__file__.replace("{name}.py", "dep.py")])
"""


def _package(tmp_path: Path) -> Path:
    pkg = tmp_path / "pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "guarded.py").write_text(MODULE.format(guard=GUARD.format(name="guarded")))
    (pkg / "unguarded.py").write_text(MODULE.format(guard=""))
    return pkg


def _run(tmp_path: Path, module: str) -> int:
    code = f"import sys; sys.path[:0] = [{str(tmp_path)!r}, {str(ROOT)!r}]; from pkg.{module} import kernel; print(kernel(1))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PATH": "", "HOME": str(tmp_path), "NUMBA_CACHE_DIR": ""})
    return int(out.stdout.strip())


def test_a_changed_callee_is_recompiled(tmp_path):
    pkg = _package(tmp_path)
    (pkg / "dep.py").write_text(textwrap.dedent(DEP.format(value=1)))
    assert _run(tmp_path, "guarded") == 20 and _run(tmp_path, "unguarded") == 20  # both cached at this point
    assert list((pkg / "__pycache__").glob("guarded.kernel-*.nbi"))
    (pkg / "dep.py").write_text(textwrap.dedent(DEP.format(value=2)))  # the callee edited, the caller not
    assert _run(tmp_path, "guarded") == 30  # recompiled with the new helper
    assert _run(tmp_path, "guarded") == 30  # and re-cached: the stamp is current, no flush this time
    # what the guard prevents: numba alone keeps the machine code compiled with the old helper
    assert _run(tmp_path, "unguarded") == 20


def test_unreadable_dependencies_are_left_alone(tmp_path):
    from strategy.numba_cache import refresh_if_changed

    module = tmp_path / "kern.py"
    module.write_text("x = 1\n")
    assert not refresh_if_changed({"__file__": str(module)}, [tmp_path / "absent.py"])
    assert not (tmp_path / "__pycache__").exists()
