"""The equity curve as a small inline SVG (server-rendered: the page needs no charting script)."""

from __future__ import annotations

import math
from typing import Any

__all__ = ["equity_svg"]

W, H, PAD = 600, 180, 6
DAY_NS = 86_400 * 10**9


def equity_svg(points: list[tuple[int, float]] | list[list[Any]], band: dict[str, Any] | None = None,
               z: float = 1.645) -> str:
    """``points``: (bar time ns, equity $), oldest first. ``band`` (mean_day, sd_day): the expected band around
    the first equity, ``n·mean ± z·sd·√n`` after n days, drawn shaded."""
    pts = [(int(t), float(v)) for t, v in points]
    if not pts:
        return ""
    t0, e0 = pts[0]
    t1 = max(pts[-1][0], t0 + 1)
    lo_hi = []
    if band and isinstance(band.get("mean_day"), (int, float)) and isinstance(band.get("sd_day"), (int, float)):
        for t, _ in pts:
            n = (t - t0) / DAY_NS
            m, w = e0 + n * band["mean_day"], z * band["sd_day"] * math.sqrt(n)
            lo_hi.append((m - w, m + w))
    ys = [v for _, v in pts] + [y for pair in lo_hi for y in pair]
    y0, y1 = min(ys), max(ys)
    if y1 - y0 < 1e-9:
        y0, y1 = y0 - 1.0, y1 + 1.0

    def x(t: int) -> float:
        return PAD + (W - 2 * PAD) * (t - t0) / (t1 - t0)

    def y(v: float) -> float:
        return H - PAD - (H - 2 * PAD) * (v - y0) / (y1 - y0)

    parts = [f'<svg viewBox="0 0 {W} {H}" role="img" aria-label="equity curve" data-field="equity-svg" '
             f'data-last="{pts[-1][1]:.2f}">']
    if lo_hi:
        upper = " ".join(f"{x(t):.1f},{y(hi):.1f}" for (t, _), (_, hi) in zip(pts, lo_hi))
        lower = " ".join(f"{x(t):.1f},{y(lo):.1f}" for (t, _), (lo, _) in reversed(list(zip(pts, lo_hi))))
        parts.append(f'<polygon points="{upper} {lower}" fill="#1e3a8a" fill-opacity="0.45" stroke="none"/>')
    parts.append(f'<line x1="{PAD}" x2="{W - PAD}" y1="{y(e0):.1f}" y2="{y(e0):.1f}" stroke="#4b5563" '
                 'stroke-dasharray="3 3"/>')
    line = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in pts)
    parts.append(f'<polyline points="{line}" fill="none" stroke="#34d399" stroke-width="1.6"/>')
    parts.append(f'<text x="{W - PAD}" y="14" fill="#9ca3af" font-size="11" text-anchor="end">'
                 f'{pts[-1][1]:,.2f} $ (min {min(v for _, v in pts):,.0f}, max {max(v for _, v in pts):,.0f})</text>')
    parts.append("</svg>")
    return "".join(parts)
