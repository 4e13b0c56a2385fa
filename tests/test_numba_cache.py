"""strategy.numba_cache: a module is touched (so numba recompiles it) exactly when a dependency's source changes."""

from __future__ import annotations

import os

from strategy.numba_cache import refresh_if_changed


def test_touches_the_module_only_when_a_dependency_changes(tmp_path):
    module, dep = tmp_path / "kern.py", tmp_path / "helpers.py"
    module.write_text("x = 1\n")
    dep.write_text("def f():\n    return 1\n")
    os.utime(module, ns=(1_000_000_000, 1_000_000_000))
    assert refresh_if_changed(module, [dep])  # no stamp yet: first import after a clone
    assert module.stat().st_mtime_ns != 1_000_000_000 and module.read_text() == "x = 1\n"
    assert (tmp_path / "__pycache__" / "kern.deps").exists()

    os.utime(module, ns=(2_000_000_000, 2_000_000_000))
    assert not refresh_if_changed(module, [dep])  # unchanged: numba keeps its cache
    assert module.stat().st_mtime_ns == 2_000_000_000

    dep.write_text("def f():\n    return 2\n")  # a callee edited in another file
    assert refresh_if_changed(module, [dep])
    assert module.stat().st_mtime_ns != 2_000_000_000


def test_read_only_or_missing_files_are_left_alone(tmp_path):
    module = tmp_path / "kern.py"
    module.write_text("x = 1\n")
    assert not refresh_if_changed(module, [tmp_path / "absent.py"])
    assert not (tmp_path / "__pycache__").exists()
