"""environment.yml installs what requirements.lock pins (same packages, versions and markers) and navale itself."""

from __future__ import annotations

import importlib.util
import re
import tomllib
from pathlib import Path

import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

ROOT = Path(__file__).resolve().parents[1]
LOCK_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._\[\],-]*)==([^\s;\\]+)\s*(?:;\s*([^\\]+?))?\s*\\?\s*$")


def _lock() -> dict[str, tuple[str, str | None]]:
    """name -> (version, marker) for every pin of requirements.lock (a name may appear once per marker)."""
    out = {}
    for line in (ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        if m := LOCK_PIN.match(line):
            out[f"{m.group(1).lower()} ; {m.group(3)}"] = (m.group(2), m.group(3))
    return out


def _env() -> dict:
    return yaml.safe_load((ROOT / "environment.yml").read_text(encoding="utf-8"))


def _pip_section(env: dict) -> list[str]:
    (pip,) = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    return pip


def test_environment_pins_exactly_the_lock():
    pip = _pip_section(_env())
    project = [p for p in pip if p in ("-e .", ".")]
    assert project == ["-e ."], "environment.yml must install the project itself (the `navale` command)"
    pinned = {}
    for spec in pip:
        if spec in project:
            continue
        req = Requirement(spec)
        (s,) = req.specifier
        assert s.operator == "==", f"environment.yml: {spec!r} is not an exact pin"
        marker = str(req.marker).replace('"', "'") if req.marker else None
        pinned[f"{req.name.lower()} ; {marker}"] = (s.version, marker)
    lock = _lock()
    assert len(lock) > 100
    missing = sorted(set(lock) - set(pinned))
    extra = sorted(set(pinned) - set(lock))
    assert not missing and not extra, f"in the lock only: {missing[:5]}; in environment.yml only: {extra[:5]}"
    differ = {k: (pinned[k][0], lock[k][0]) for k in lock if pinned[k][0] != lock[k][0]}
    assert not differ, f"versions differ (environment.yml, lock): {differ}"
    # hash checking cannot cover the project's own folder in the same pip run: it would refuse `-e .`
    assert not any(p.startswith("--require-hashes") for p in pip)


def test_environment_python_meets_the_project():
    env = _env()
    (python,) = [d for d in env["dependencies"] if isinstance(d, str) and d.startswith("python=")]
    requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert python.split("=", 1)[1] + ".0" in SpecifierSet(requires)
    assert "pip" in env["dependencies"]


def test_environment_is_the_generators_output():
    spec = importlib.util.spec_from_file_location("environment_yml", ROOT / "tools" / "environment_yml.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    lock = (ROOT / "requirements.lock").read_text(encoding="utf-8")
    assert (ROOT / "environment.yml").read_text(encoding="utf-8") == mod.render(lock), (
        "environment.yml is out of date: run `python tools/environment_yml.py` (make lock does)")
