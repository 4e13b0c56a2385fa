"""DTC JSON framing: each message is one JSON object followed by a NUL byte (``\\x00``)."""

from __future__ import annotations

import json
from dataclasses import dataclass

__all__ = ["MAX_FRAME", "BadFrame", "FrameDecoder", "encode"]

MAX_FRAME = 1 << 20  # a frame longer than this without a NUL is garbage (a DTC message is well under 64 KiB)


@dataclass(frozen=True, slots=True)
class BadFrame:
    """A frame that is not a JSON object with an integer ``Type``: its first bytes and why."""

    head: bytes
    why: str

    def __str__(self) -> str:
        return f"bad DTC frame ({self.why}): {self.head[:60]!r}"


def encode(msg: dict) -> bytes:
    """One message as compact JSON plus the NUL terminator."""
    return json.dumps(msg, separators=(",", ":")).encode() + b"\x00"


class FrameDecoder:
    """Feed it bytes as they arrive (any split); it returns the complete messages (dicts) and bad frames."""

    def __init__(self) -> None:
        self._buf = bytearray()

    def feed(self, data: bytes) -> list[dict | BadFrame]:
        self._buf += data
        out: list[dict | BadFrame] = []
        start = 0
        buf = self._buf
        while True:
            end = buf.find(b"\x00", start)
            if end < 0:
                break
            raw = bytes(buf[start:end])
            start = end + 1
            if raw.strip():
                out.append(_parse(raw))
        del buf[:start]
        if len(buf) > MAX_FRAME:  # no terminator in sight: drop it rather than grow without bound
            out.append(BadFrame(bytes(buf[:60]), f"no NUL terminator in {len(buf)} bytes"))
            buf.clear()
        return out


def _parse(raw: bytes) -> dict | BadFrame:
    try:
        msg = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        return BadFrame(raw[:60], f"not JSON: {e.msg if hasattr(e, 'msg') else e}")
    if not isinstance(msg, dict):
        return BadFrame(raw[:60], "not a JSON object")
    t = msg.get("Type")
    if not isinstance(t, int) or isinstance(t, bool):
        return BadFrame(raw[:60], "no integer Type field")
    return msg
