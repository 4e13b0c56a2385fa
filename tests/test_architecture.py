"""The layer rules of docs/architecture.md, checked on every import statement of the code
(deferred imports inside functions included), and by importing the method in a fresh interpreter."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("strategy", "research", "live")

# importer prefix -> module prefixes it may not import (first match wins)
FORBIDDEN: dict[str, tuple[str, ...]] = {
    "strategy": ("research", "live"),
    "research.cli": (),
    "research": ("live", "research.cli"),
}
# live/ may import the method, the data layer, and the ML model with its features (live/quality_filter.py
# scores every signal with the research model, building its features with research's own code)
LIVE_ALLOWED = ("strategy", "research.data", "research.store", "research.ml", "live")


def _module_name(path: Path, root: Path = ROOT) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _imports(path: Path, root: Path = ROOT) -> list[tuple[int, str, list[str]]]:
    """(line, absolute module, imported names) of every import statement in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    me = _module_name(path, root)
    package = me if path.name == "__init__.py" else me.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out.extend((node.lineno, a.name, []) for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            out.append((node.lineno, mod, [a.name for a in node.names]))
    return out


def _code_files(root: Path = ROOT) -> list[Path]:
    return sorted(p for pkg in PACKAGES for p in (root / pkg).rglob("*.py"))


def _within(mod: str, prefix: str) -> bool:
    return mod == prefix or mod.startswith(prefix + ".")


def layer_violations(root: Path = ROOT) -> list[str]:
    """Every import statement under `root` that breaks a layer rule, as ``file:line: what``."""
    bad = []
    for path in _code_files(root):
        me = _module_name(path, root)
        for line, mod, names in _imports(path, root):
            targets = [mod] + [f"{mod}.{n}" for n in names]
            if _within(me, "live"):
                if any(_within(mod, p) for p in PACKAGES) and not any(_within(mod, a) for a in LIVE_ALLOWED):
                    bad.append(f"{path.relative_to(root)}:{line}: live/ imports {mod}")
                continue
            rule = next((FORBIDDEN[k] for k in sorted(FORBIDDEN, key=len, reverse=True) if _within(me, k)), ())
            for t in targets:
                hit = next((f for f in rule if _within(t, f)), None)
                if hit:
                    bad.append(f"{path.relative_to(root)}:{line}: {me} imports {t} ({hit} is off limits)")
                    break
    return bad


def test_layers_import_only_what_they_may():
    bad = layer_violations()
    assert not bad, "\n".join(bad)


def test_no_private_names_across_packages():
    """``from a.b import _x`` only within the package that defines ``_x``."""
    bad = []
    for path in _code_files():
        me = _module_name(path)
        my_pkg = me if path.name == "__init__.py" else me.rpartition(".")[0]
        for line, mod, names in _imports(path):
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            if private and not _within(mod, my_pkg):
                bad.append(f"{path.relative_to(ROOT)}:{line}: {', '.join(private)} from {mod}")
    assert not bad, "\n".join(bad)


def test_rules_catch_planted_violations(tmp_path):
    """The checker itself: deferred and relative imports across the layers are reported."""
    for pkg in PACKAGES:
        (tmp_path / pkg).mkdir()
    (tmp_path / "strategy" / "planted.py").write_text(
        "def f():\n    from research.store.files import atomic_write_text\n    return atomic_write_text\n")
    (tmp_path / "research" / "planted.py").write_text("from live import broker\n")
    (tmp_path / "live" / "planted.py").write_text("from research.reports import plots\nfrom research.data import load_bars\n")
    bad = layer_violations(tmp_path)
    assert len(bad) == 3, bad
    assert any("strategy.planted imports research.store.files" in b for b in bad)
    assert any("research.planted imports live " in b for b in bad)
    assert any("live/ imports research.reports" in b for b in bad)


def test_strategy_imports_no_research_module():
    modules = sorted(_module_name(p) for p in (ROOT / "strategy").rglob("*.py") if p.name != "__init__.py")
    code = (f"import sys; import {', '.join(['strategy'] + modules)}; from strategy import Params, compute_signals, "
            "SignalEngine; print(sorted(m for m in sys.modules if m.split('.')[0] in ('research', 'live')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


def test_cli_choices_cost_no_numerical_stack():
    code = ("import sys; import strategy.modes, strategy.market.clock; "
            "print(sorted(m for m in ('numpy', 'pandas', 'numba') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"
