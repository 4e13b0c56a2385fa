"""The docs stay true on a fresh clone: no user-facing text sends the reader to ../shared/METHOD.md (a clone
does not have it), every "METHOD 7.x" reference has its section in docs/method.md, relative links resolve,
and the README's live/ row matches what live/ holds."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TEXT = (".py", ".md", ".toml", ".ipynb", ".yml", ".txt", ".cfg", ".in")
SECTION_REF = re.compile(r"METHOD(?:\.md)?,? (?:sections? )?(7\.\d)(?:\s*[-–]\s*(7\.\d))?")


def _tracked() -> list[Path]:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
        files = [ROOT / f for f in out.splitlines()]
    except (OSError, subprocess.CalledProcessError):
        files = [p for p in ROOT.rglob("*") if ".venv" not in p.parts and ".git" not in p.parts]
    return [p for p in files if p.is_file() and p.suffix in TEXT and p.name != Path(__file__).name]


def test_no_text_sends_the_user_to_shared_method_md():
    hits = [f"{p.relative_to(ROOT)}:{i}" for p in _tracked()
            for i, line in enumerate(p.read_text(encoding="utf-8", errors="replace").splitlines(), 1)
            if re.search(r"shared/METHOD", line)]
    assert not hits, f"../shared/METHOD.md is not in a user's clone; point to docs/method.md: {hits}"


def test_every_method_section_reference_exists_in_docs_method():
    method = (ROOT / "docs" / "method.md").read_text(encoding="utf-8")
    sections = set(re.findall(r"^### (7\.\d) ", method, flags=re.M))
    assert {f"7.{i}" for i in range(1, 10)} <= sections
    refs = {}
    for p in _tracked():
        for m in SECTION_REF.finditer(p.read_text(encoding="utf-8", errors="replace")):
            for sec in filter(None, m.groups()):
                refs.setdefault(sec, str(p.relative_to(ROOT)))
    assert refs, "no METHOD 7.x reference found: the pattern is wrong"
    missing = {s: f for s, f in refs.items() if s not in sections}
    assert not missing, f"sections referenced but absent from docs/method.md: {missing}"
    for heading in ("## Vocabulary", "## Modes and risk limits", "## Where the implementation deviates or chooses"):
        assert heading in method


def test_relative_links_in_readme_and_docs_resolve():
    broken = []
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", doc.read_text(encoding="utf-8")):
            if "://" in target or target.startswith("mailto:"):
                continue
            if not (doc.parent / target).exists():
                broken.append(f"{doc.relative_to(ROOT)} -> {target}")
    assert not broken, broken


def test_readme_describes_live_as_it_is():
    row = next(line for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines()
               if line.startswith("| `live/` |"))
    modules = sorted(p.name for p in (ROOT / "live").rglob("*.py"))
    if modules == ["__init__.py"]:
        assert "empty" in row, f"live/ holds only __init__.py but the README says: {row}"
