"""A compact byte format for engine states: a JSON header (settings, dtypes, shapes) and the arrays'
raw bytes. About 30x faster than ``np.savez`` (a zip archive) for a few KiB of small arrays, which
matters because the live loop saves both engines at every bar close."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

__all__ = ["pack", "unpack"]

MAGIC = b"NVST1\n"


def pack(meta: dict[str, Any], arrays: list[np.ndarray]) -> bytes:
    """`meta` (JSON-able) and `arrays` as one byte string."""
    arrs = [np.ascontiguousarray(a) for a in arrays]
    head = json.dumps({"meta": meta, "arrays": [[a.dtype.str, list(a.shape)] for a in arrs]},
                      separators=(",", ":")).encode()
    return b"".join([MAGIC, len(head).to_bytes(4, "little"), head] + [a.tobytes() for a in arrs])


def unpack(data: bytes, what: str = "engine state") -> tuple[dict[str, Any], list[np.ndarray]]:
    """The `meta` and arrays of :func:`pack`; ValueError (naming `what`) for anything else."""
    data = bytes(data)
    if not data.startswith(MAGIC) or len(data) < len(MAGIC) + 4:
        raise ValueError(f"{what}: not a navale state (bad header)")
    n = int.from_bytes(data[len(MAGIC):len(MAGIC) + 4], "little")
    start = len(MAGIC) + 4
    try:
        head = json.loads(data[start:start + n].decode())
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{what}: damaged header") from None
    pos = start + n
    out = []
    for dtype, shape in head["arrays"]:
        dt = np.dtype(dtype)
        size = dt.itemsize * int(np.prod(shape, dtype=np.int64))
        if pos + size > len(data):
            raise ValueError(f"{what}: truncated")
        out.append(np.frombuffer(data, dt, count=size // dt.itemsize if dt.itemsize else 0, offset=pos)
                   .reshape(shape).copy())
        pos += size
    if pos != len(data):
        raise ValueError(f"{what}: {len(data) - pos} trailing bytes")
    return head["meta"], out
