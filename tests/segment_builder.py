"""Segments built with research.data.segments for the seal/verify tests: a chain of trading dates of one
symbol, ticks numbered by a running ``seq``, a few bars, events and a gap."""

from __future__ import annotations

import math
from pathlib import Path

from research.data import segments as sg

DAY_NS = 86_400 * 10**9
BASE_NS = 1_709_503_200 * 10**9  # 2024-03-03 22:00 UTC = 16:00 CT, an hour before the 2024-03-04 session opens


def segment_bytes(symbol: str, date: str, day: int, first_seq: int, n_ticks: int, *, prev: dict | None,
                  seal: bool = True, contract: str = "ESH4", created_ns: int = 1) -> bytes:
    """A segment's bytes: header, contract, ``n_ticks`` ticks (seq from ``first_seq``), bars, an event, a gap,
    a checkpoint and (with ``seal``) the SEAL frame."""
    t0 = BASE_NS + day * DAY_NS + 3600 * 10**9
    out = [sg.header_frame(symbol, date, "synthetic", created_ns, prev), sg.json_frame(sg.CONTRACT, {"contract": contract})]
    counts = {"header": 1, "contract": 1, "tick": 0, "bar": 0, "event": 0, "gap": 0, "checkpoint": 0}
    seq = first_seq
    for i in range(n_ticks):
        ts = t0 + i * 250_000_000
        price = 5000.0 + 0.25 * (i % 7)
        bid, ask = (price - 0.25, price) if i % 3 else (math.nan, math.nan)
        out.append(sg.tick_frame(ts, price, 1 + i % 4, 1 if i % 2 else -1, 1, bid, ask, seq))
        counts["tick"] += 1
        seq += 1
        if i % 20 == 19:
            out.append(sg.bar_frame(t0 + (i // 20) * 60 * 10**9, 5000.0, 5001.5, 4999.75, 5000.25, 40, 18, 22, 20))
            counts["bar"] += 1
    out.append(sg.json_frame(sg.EVENT, {"ts_ns": t0, "kind": "connect", "level": "info", "detail": "feed up"}))
    out.append(sg.json_frame(sg.GAP, {"start_ns": t0 + 10**9, "end_ns": t0 + 5 * 10**9, "reason": "feed down"}))
    out.append(sg.json_frame(sg.CHECKPOINT, {"seq": seq - 1, "token": f"offset:{seq}", "ts_ns": t0, "wall_ns": 2}))
    counts.update(event=1, gap=1, checkpoint=1)
    if seal:
        from live.collect.seal import make_seal_payload

        out.append(sg.json_frame(sg.SEAL, make_seal_payload(counts, first_seq if n_ticks else None,
                                                            seq - 1 if n_ticks else None, sealed_ns=3)))
    return b"".join(out)


def write_chain(root: Path, symbol: str = "ES", dates: tuple[str, ...] = ("2024-03-04", "2024-03-05", "2024-03-06"),
                n_ticks: int = 60, *, seal_last: bool = True, finalize: bool = True) -> list[Path]:
    """Segments for consecutive dates joined by ``prev`` (the last one open unless ``seal_last``), sealed and
    finalized in order; returns their paths."""
    from live.collect.layout import segment_path
    from live.collect.seal import finalize_segment

    paths = []
    prev = None
    seq = 1
    for k, date in enumerate(dates):
        sealed = seal_last or k < len(dates) - 1
        p = segment_path(root, symbol, date)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(segment_bytes(symbol, date, k, seq, n_ticks, prev=prev, seal=sealed))
        if sealed and finalize:
            finalize_segment(root, p)
        seq += n_ticks
        prev = {"segment": p.name, "last_seq": seq - 1}
        paths.append(p)
    return paths
