"""Write environment.yml from requirements.lock: conda's Python, then every locked package at its locked version
(with its environment marker) and the project itself (``-e .``), so ``conda env create`` gives a ``navale`` command.

pip cannot check hashes in the run that also installs the project from its folder, so the hashes stay in the lock
(``make`` installs from it with ``--require-hashes``); tests/test_environment.py checks that both files agree.
Run by ``make lock``; by hand: ``python tools/environment_yml.py``.
"""

from __future__ import annotations

import os
import re
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYTHON = "3.11"
HEADER = f"""\
# Conda environment for navale, generated from requirements.lock by `make lock` (tools/environment_yml.py):
# do not edit by hand. Python comes from conda; every Python package is pip-installed at the version pinned in
# requirements.lock (the same versions as `make`, which also checks their hashes), then navale itself (-e .),
# which provides the `navale` command. Create from the repository's root:
#   conda env create -f environment.yml && conda activate navale && navale --help
name: navale
channels:
  - conda-forge
dependencies:
  - python={PYTHON}
  - pip
  - pip:
"""

_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\[\],-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?\s*$")


def locked(lock_text: str) -> list[tuple[str, str, str | None]]:
    """(name, version, marker) of every requirement line of a uv/pip-compile lock."""
    out = []
    for line in lock_text.splitlines():
        m = _PIN.match(line)
        if m:
            out.append((m.group(1), m.group(2), m.group(3)))
    return out


def render(lock_text: str) -> str:
    """The environment.yml text for a lock."""
    lines = [HEADER]
    for name, version, marker in locked(lock_text):
        spec = f"{name}=={version}" + (f" ; {marker}" if marker else "")
        lines.append(f'      - "{spec}"\n')
    lines.append("      - -e .\n")
    return "".join(lines)


def main() -> int:
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    text = render(lock)
    target = ROOT / "environment.yml"
    fd, tmp = tempfile.mkstemp(dir=ROOT, prefix=".environment.yml.", suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, target)
    print(f"{target}: {len(locked(lock))} pinned packages + the project (-e .)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
