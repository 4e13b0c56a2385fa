"""Value-level mutations of real text data files and the classification of what the loader makes of them.

Shared by ``tests/research/data/test_fuzz_values.py`` (a short run) and ``benchmarks/fuzz_values.py``
(the deep run that prints the counts). A case takes a slice of a real file (header + consecutive
lines), mutates it once (a number replaced in one field, two fields swapped, a field deleted, a
line deleted, duplicated or swapped with the next, the file cut inside a field), loads it, and
compares the frame with the unmutated slice's:

- ``refused``: a one-line DataError naming the file;
- ``equal``: the same frame (e.g. ``5100.00`` written ``5100.0``);
- ``rows_missing``: the original minus whole bars; ``gap_flagged`` when the check reports a gap
  there, ``edge`` when no check could (first/last bar, or between sessions);
- ``value_changed``: the same bars with other values that pass every rule (a plausible number):
  its kind names the fields changed and whether the check flags it (e.g. ``flow_below_volume``).

Anything else (a crash, an impossible row loaded, a deletion inside a session without a gap) is a
``bug``.
"""

from __future__ import annotations

import gzip
import random
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from research.data import DataError, check, load_bars
from research.data.validate import impossible_bars
from strategy.market.sessions import session_id

__all__ = ["Case", "SOURCES", "real_sources", "read_lines", "mutate", "classify", "run_cases", "summarize"]

SOURCES = {  # shared-data path -> field separator
    "es-5m/ESH20-CME.scid_BarData__5m.txt.gz": ",",
    "es-5m/ESZ18-CME.scid_BarData__5m.txt.gz": ",",
    "es-5m/ESU15-CME.scid_BarData__5m.txt.gz": ",",
    "bars/6EH4.XCME_1min_bars_20240101_20240131.csv.gz": ",",
    "ticks/ES_2022-01-24_tbt.txt.gz": ";",
}
MUTATIONS = ("replace_number", "replace_number", "replace_number", "swap_fields", "delete_field", "delete_line",
             "duplicate_line", "swap_lines", "cut_in_field")


@dataclass
class Case:
    source: str
    mutation: str
    outcome: str  # refused | equal | rows_missing | value_changed | bug
    kind: str = ""  # detail: the check that flags it, the fields changed, the error's field
    fmt: str = ""  # source format of the file (sierra_bars, csv, tbt_text)


def read_lines(path: Path) -> list[bytes]:
    """The file's (decompressed) lines, each with its line break."""
    raw = path.read_bytes()
    return (gzip.decompress(raw) if raw[:2] == b"\x1f\x8b" else raw).splitlines(keepends=True)


def real_sources(shared: Path) -> dict[Path, str]:
    """:data:`SOURCES` under the shared-data folder (path -> separator), those that exist."""
    return {shared / rel: sep for rel, sep in SOURCES.items() if (shared / rel).exists()}


_NUM = re.compile(rb"-?\d+(?:\.\d+)?")


def _new_number(old: bytes, rng: random.Random) -> bytes:
    s = old.decode()
    choice = rng.randrange(9)
    if choice == 0:  # one digit changed
        i = rng.choice([k for k, ch in enumerate(s) if ch.isdigit()])
        return (s[:i] + str(rng.randrange(10)) + s[i + 1:]).encode()
    if choice == 1:  # a digit dropped
        i = rng.choice([k for k, ch in enumerate(s) if ch.isdigit()])
        return (s[:i] + s[i + 1:] or "0").encode()
    if choice == 2:  # a digit inserted
        i = rng.randrange(len(s) + 1)
        return (s[:i] + str(rng.randrange(10)) + s[i:]).encode()
    if choice == 3:
        return s[1:].encode() if s.startswith("-") else ("-" + s).encode()
    if choice == 4:
        return b"0"
    if choice == 5:  # decimal point moved
        digits = s.replace(".", "").replace("-", "")
        i = rng.randrange(1, max(2, len(digits)))
        return (digits[:i] + "." + digits[i:]).encode()
    if choice == 6:
        return str(rng.randrange(10 ** rng.randrange(1, 8))).encode()
    if choice == 7:  # a small step, as a plausible typo would be
        v = float(s)
        return f"{v + rng.choice([-1, 1]) * rng.choice([0.25, 1, 10]):.2f}".encode() if "." in s else str(int(v) + rng.choice([-1, 1])).encode()
    return s.encode()  # unchanged value (the case must come out equal)


def _fields(line: bytes, sep: bytes) -> list[bytes]:
    return line.rstrip(b"\r\n").split(sep)


def mutate(lines: list[bytes], sep: str, rng: random.Random, kind: str) -> bytes:
    """One mutation of ``kind`` applied to the data lines (never the header)."""
    s = sep.encode()
    out = list(lines)
    i = rng.randrange(1, len(out))
    if kind in ("replace_number", "swap_fields", "delete_field"):
        f = _fields(out[i], s)
        if kind == "replace_number":
            j = rng.randrange(len(f))
            nums = list(_NUM.finditer(f[j]))
            if nums:
                m = rng.choice(nums)
                f[j] = f[j][:m.start()] + _new_number(m.group(), rng) + f[j][m.end():]
        elif kind == "swap_fields":
            a, b = rng.sample(range(len(f)), 2)
            f[a], f[b] = f[b], f[a]
        else:
            del f[rng.randrange(len(f))]
        out[i] = s.join(f) + b"\n"
    elif kind == "delete_line":
        del out[i]
    elif kind == "duplicate_line":
        out.insert(i, out[i])
    elif kind == "swap_lines" and i + 1 < len(out):
        out[i], out[i + 1] = out[i + 1], out[i]
    blob = b"".join(out)
    if kind == "cut_in_field":  # the file ends inside one of the last line's fields
        last = out[-1]
        blob = blob[: len(blob) - len(last) + rng.randrange(1, len(last) - 1)]
    return blob


def _flagged(frame: pd.DataFrame, rows: np.ndarray) -> str:
    iss = check(frame).issues
    got = sorted(set(iss.loc[iss["row"].isin(rows), "check"]))
    return "+".join(got) if got else "unflagged"


def classify(path: Path, original: pd.DataFrame, mutation: str) -> Case:
    """Load the mutated file and compare it with the original frame."""
    src = path.name
    try:
        f = load_bars(path)
    except DataError as exc:
        text = str(exc)
        ok = text.startswith(str(path)) and "\n" not in text
        return Case(src, mutation, "refused" if ok else "bug", exc.field or ("-" if ok else f"unclean message: {text[:120]}"))
    except Exception as exc:  # noqa: BLE001 - a crash is the finding
        return Case(src, mutation, "bug", f"crash {type(exc).__name__}: {exc}"[:200])
    cols = {c: f[c].to_numpy() for c in f.columns}
    if impossible_bars(cols, f.attrs.get("tick_size")):
        return Case(src, mutation, "bug", "impossible row loaded")
    if f.shape == original.shape and f.equals(original):
        return Case(src, mutation, "equal")
    if list(f.columns) == list(original.columns) and len(f) < len(original) and f.index.isin(original.index).all():
        if not f.equals(original.loc[f.index]):
            return _changed(src, mutation, f, original.loc[f.index])
        return _missing(src, mutation, f, original)
    if list(f.columns) == list(original.columns) and f.index.equals(original.index):
        return _changed(src, mutation, f, original)
    if list(f.columns) == list(original.columns) and len(f) == len(original):
        moved = np.flatnonzero(f.index != original.index)
        return Case(src, mutation, "value_changed", f"time:{_flagged(f, moved)}")
    return Case(src, mutation, "value_changed", f"shape {original.shape}->{f.shape}")


def _changed(src: str, mutation: str, f: pd.DataFrame, g: pd.DataFrame) -> Case:
    diff = f.to_numpy() != g.to_numpy()
    fields = [c for c, d in zip(f.columns, diff.any(axis=0)) if d]
    rows = np.flatnonzero(diff.any(axis=1))
    return Case(src, mutation, "value_changed", f"{'+'.join(fields)}:{_flagged(f, rows)}")


def _missing(src: str, mutation: str, f: pd.DataFrame, g: pd.DataFrame) -> Case:
    gone = np.flatnonzero(~g.index.isin(f.index))
    sid = session_id(g.index)
    inside = [k for k in gone if 0 < k < len(g) - 1 and sid[k - 1] == sid[k + 1] == sid[k]]
    if not inside:
        return Case(src, mutation, "rows_missing", "edge")
    iss = check(f).issues
    gaps = set(iss.loc[iss["check"] == "gap", "time"])
    nxt = [g.index[k + 1] for k in inside]
    return Case(src, mutation, "rows_missing", "gap_flagged") if all(t in gaps for t in nxt) else \
        Case(src, mutation, "bug", f"deleted bar {g.index[inside[0]]} not flagged as a gap")


def run_cases(sources: dict[Path, str], tmp: Path, n: int, *, seed: int = 0, slice_lines: int = 240,
              progress=None) -> list[Case]:
    """``n`` cases over ``sources`` (file -> separator; random slices of ``slice_lines`` data lines), in ``tmp``."""
    rng = random.Random(seed)
    texts = {str(p): read_lines(p) for p in sources}
    seps = {str(p): sep for p, sep in sources.items()}
    cases: list[Case] = []
    originals: dict[tuple[str, int], pd.DataFrame] = {}
    for k in range(n):
        rel = rng.choice(list(texts))
        lines = texts[rel]
        start = rng.randrange(1, max(2, len(lines) - slice_lines)) // 20 * 20 + 1  # a few slices, reused
        sl = [lines[0]] + lines[start:start + slice_lines]
        if not sl[-1].endswith(b"\n"):
            sl[-1] += b"\n"
        name = Path(rel).name.removesuffix(".gz")
        d = tmp / f"o{start}-{Path(rel).name}"
        d.mkdir(exist_ok=True)
        key = (rel, start)
        if key not in originals:
            (d / name).write_bytes(b"".join(sl))
            originals[key] = load_bars(d / name)
        kind = MUTATIONS[rng.randrange(len(MUTATIONS))]
        p = tmp / name
        p.write_bytes(mutate(sl, seps[rel], rng, kind))
        case = classify(p, originals[key], kind)
        case.fmt = str(originals[key].attrs.get("source_format"))
        cases.append(case)
        if progress is not None:
            progress(k)
    return cases


def summarize(cases: list[Case]) -> dict[str, Counter]:
    """Counts by outcome, and by kind within each outcome."""
    out: dict[str, Counter] = {"outcome": Counter(c.outcome for c in cases)}
    out["mutation"] = Counter(f"{c.mutation} -> {c.outcome}" for c in cases)
    for o in ("refused", "rows_missing", "value_changed", "bug"):
        out[o] = Counter(f"{c.fmt} {c.kind}" for c in cases if c.outcome == o)
    return out
