"""Data-quality checks on a bar frame: `check(frame) -> QualityReport`.

Errors (exit code 1 in ``navale data check``; commands refuse them unless ``--allow-data-errors``):
timestamps duplicated or out of order, non-finite, zero or negative prices, OHLC inconsistent,
prices off the tick grid, a price more than :data:`JUMP_FACTOR` times (or under 1/JUMP_FACTOR of)
the previous bar's close, negative volumes, bid + ask volume above volume. Warnings: bid + ask
below volume (trades of unknown side), bars inside a scheduled exchange halt (often a wrong
source time zone), gaps inside a session, stale (repeated) bars, more trades than contracts,
volume without trades, bars without volume, time bars off their size's grid, price spikes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from strategy.market.clock import CT
from strategy.market.sessions import in_scheduled_halt, session_id

from .aggregate import bar_grid_offsets

__all__ = ["QualityReport", "check", "CHECKS", "JUMP_FACTOR"]

# name -> (severity, what it means)
CHECKS: dict[str, tuple[str, str]] = {
    "duplicate_time": ("error", "timestamp equal to the previous bar's"),
    "time_out_of_order": ("error", "timestamp before the previous bar's"),
    "nonfinite_price": ("error", "price is NaN or infinite"),
    "nonpositive_price": ("error", "price is zero or negative"),
    "price_jump": ("error", "a price over 3x, or under 1/3 of, the previous bar's close"),
    "ohlc_inconsistent": ("error", "low above open/close/high, or high below open/close"),
    "off_tick": ("error", "price not on the instrument's tick grid"),
    "negative_volume": ("error", "a volume or trade count below zero"),
    "flow_exceeds_volume": ("error", "bid_volume + ask_volume > volume"),
    "flow_below_volume": ("warning", "bid_volume + ask_volume < volume (trades of unknown aggressor)"),
    "in_halt": ("warning", "bar starts while the exchange is scheduled closed (wrong time zone?)"),
    "gap": ("warning", "missing bars inside a session (no bar for longer than the bar size)"),
    "stale": ("warning", "bar identical to the previous one (prices and volumes): a repeated record?"),
    "trades_exceed_volume": ("warning", "more trades than contracts"),
    "volume_without_trades": ("warning", "volume > 0 with a trade count of 0"),
    "zero_volume": ("warning", "a bar with no volume (exports write bars only where trades happened)"),
    "off_bar_grid": ("warning", "a time bar whose start is not a multiple of the bar size (an edited time?)"),
    "spike": ("warning", "bar range over 25x the median range of its session and over 1% of price"),
}

JUMP_FACTOR = 3.0  # no futures contract moves 3x between two bars: a corrupt value
STALE_MIN_RUN = 3  # identical consecutive bars (>= this many) are reported


@dataclass
class QualityReport:
    """Findings of :func:`check`. ``issues`` has one row per finding (or per run/gap)."""

    rows: int
    start: pd.Timestamp | None
    end: pd.Timestamp | None
    issues: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def errors(self) -> int:
        return int((self.issues["severity"] == "error").sum()) if len(self.issues) else 0

    @property
    def warnings(self) -> int:
        return int((self.issues["severity"] == "warning").sum()) if len(self.issues) else 0

    @property
    def ok(self) -> bool:
        return self.errors == 0

    def summary(self) -> pd.DataFrame:
        """One row per check: severity, count, first time, description."""
        rows = []
        for name, (sev, what) in CHECKS.items():
            sel = self.issues[self.issues["check"] == name] if len(self.issues) else self.issues
            rows.append({"check": name, "severity": sev, "count": len(sel), "first": sel["time"].iloc[0] if len(sel) else None, "what": what})
        return pd.DataFrame(rows)

    def to_dict(self, max_issues: int = 1000) -> dict[str, Any]:
        """Machine-readable result (JSON-safe)."""
        iss = self.issues.head(max_issues).copy()
        if len(iss):
            iss["time"] = iss["time"].astype(str)
        return {
            "ok": self.ok,
            "rows": self.rows,
            "start": None if self.start is None else str(self.start),
            "end": None if self.end is None else str(self.end),
            "errors": self.errors,
            "warnings": self.warnings,
            "counts": {r["check"]: int(r["count"]) for r in self.summary().to_dict("records") if r["count"]},
            "meta": self.meta,
            "issues": json.loads(iss.to_json(orient="records")) if len(iss) else [],
            "issues_truncated": max(0, len(self.issues) - max_issues),
        }


def _issue(rows: list, check_name: str, idx: np.ndarray, times: pd.DatetimeIndex, field: str, values, detail=None, line_offset=None):
    sev = CHECKS[check_name][0]
    for k, i in enumerate(idx):
        rows.append(
            {
                "check": check_name,
                "severity": sev,
                "row": int(i),
                "line": int(i) + line_offset if line_offset else None,
                "time": times[i],
                "field": field,
                "value": None if values is None else _py(values[k] if len(values) == len(idx) else values[i]),
                "detail": detail[k] if detail is not None else CHECKS[check_name][1],
            }
        )


def _py(v):
    if isinstance(v, (np.generic,)):
        return v.item()
    return v


def check(frame: pd.DataFrame, *, tick_size: float | None = None, bar_seconds: float | None = None) -> QualityReport:
    """Check a bar frame (as loaded, even with strict=False) and return a :class:`QualityReport`.

    ``row`` in the issues is the position in ``frame``; ``line`` the source line when known.
    """
    n = len(frame)
    idx = frame.index
    lo = frame.attrs.get("line_offset")
    tick = tick_size or frame.attrs.get("tick_size")
    out: list[dict] = []
    if n == 0:
        return QualityReport(0, None, None, pd.DataFrame(columns=["check", "severity", "row", "line", "time", "field", "value", "detail"]))
    t = idx.as_unit("ns").asi8
    dt = np.diff(t)
    _issue(out, "duplicate_time", np.flatnonzero(dt == 0) + 1, idx, "time", None, line_offset=lo)
    _issue(out, "time_out_of_order", np.flatnonzero(dt < 0) + 1, idx, "time", None, line_offset=lo)

    o, h, l, c = (frame[k].to_numpy(np.float64) for k in ("open", "high", "low", "close"))
    for name, arr in (("open", o), ("high", h), ("low", l), ("close", c)):
        bad = np.flatnonzero(~np.isfinite(arr))
        _issue(out, "nonfinite_price", bad, idx, name, arr[bad], line_offset=lo)
    for name, arr in (("open", o), ("high", h), ("low", l), ("close", c)):
        with np.errstate(invalid="ignore"):
            bad = np.flatnonzero(arr <= 0)
        _issue(out, "nonpositive_price", bad, idx, name, arr[bad], line_offset=lo)
    if n > 1:  # one finding per bar: its price furthest from the previous close
        prev = c[:-1]
        px = np.stack([o[1:], h[1:], l[1:], c[1:]])
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where((px > 0) & (prev > 0), px / prev, 1.0)
            dev = np.abs(np.log(ratio))
        worst = np.argmax(dev, axis=0)
        bad = np.flatnonzero(dev[worst, np.arange(n - 1)] > np.log(JUMP_FACTOR))
        names = np.array(["open", "high", "low", "close"])
        for k in bad:
            f = names[worst[k]]
            _issue(out, "price_jump", np.array([k + 1]), idx, str(f), [px[worst[k], k]],
                   [f"{f} {px[worst[k], k]:g} vs previous close {prev[k]:g}"], line_offset=lo)
    with np.errstate(invalid="ignore"):
        bad_low = (l > o) | (l > c) | (l > h)
        bad_high = (h < o) | (h < c)
    i = np.flatnonzero(bad_low)
    _issue(out, "ohlc_inconsistent", i, idx, "low", l[i], [f"low {l[k]} > min(open {o[k]}, close {c[k]}, high {h[k]})" for k in i], line_offset=lo)
    i = np.flatnonzero(bad_high & ~bad_low)
    _issue(out, "ohlc_inconsistent", i, idx, "high", h[i], [f"high {h[k]} < max(open {o[k]}, close {c[k]})" for k in i], line_offset=lo)
    if tick:
        for name, arr in (("open", o), ("high", h), ("low", l), ("close", c)):
            q = arr / tick
            with np.errstate(invalid="ignore"):
                bad = np.flatnonzero(np.isfinite(q) & (np.abs(q - np.round(q)) > 1e-6))
            _issue(out, "off_tick", bad, idx, name, arr[bad], [f"{arr[k]} is not a multiple of tick {tick}" for k in bad], line_offset=lo)

    vol_cols = [k for k in ("volume", "num_trades", "bid_volume", "ask_volume") if k in frame.columns]
    for name in vol_cols:
        v = frame[name].to_numpy()
        bad = np.flatnonzero(v < 0)
        _issue(out, "negative_volume", bad, idx, name, v[bad], line_offset=lo)
    v = frame["volume"].to_numpy() if "volume" in frame else None
    if v is not None and "bid_volume" in frame and "ask_volume" in frame:
        s = frame["bid_volume"].to_numpy() + frame["ask_volume"].to_numpy()
        i = np.flatnonzero(s > v)
        _issue(out, "flow_exceeds_volume", i, idx, "bid_volume+ask_volume", s[i], [f"bid+ask {s[k]} > volume {v[k]}" for k in i], line_offset=lo)
        i = np.flatnonzero(s < v)
        _issue(out, "flow_below_volume", i, idx, "bid_volume+ask_volume", s[i], [f"bid+ask {s[k]} < volume {v[k]}" for k in i], line_offset=lo)
    if v is not None and "num_trades" in frame:
        nt = frame["num_trades"].to_numpy()
        i = np.flatnonzero(nt > v)
        _issue(out, "trades_exceed_volume", i, idx, "num_trades", nt[i], line_offset=lo)
        i = np.flatnonzero((nt == 0) & (v > 0))
        _issue(out, "volume_without_trades", i, idx, "num_trades", nt[i], line_offset=lo)
    if v is not None:
        i = np.flatnonzero(v == 0)
        _issue(out, "zero_volume", i, idx, "volume", v[i], line_offset=lo)

    halt = in_scheduled_halt(idx)
    i = np.flatnonzero(halt)
    _issue(out, "in_halt", i, idx, "time", None, [f"{idx[k].tz_convert(CT):%a %Y-%m-%d %H:%M} CT" for k in i], line_offset=lo)

    # gaps inside a session (bar size from attrs or the most common spacing)
    step = bar_seconds
    if step is None and frame.attrs.get("bar"):
        try:
            step = pd.Timedelta(frame.attrs["bar"]).total_seconds()
        except (ValueError, TypeError):
            step = None  # volume/tick bars: no regular spacing
    if step is None and n > 2 and frame.attrs.get("bar") is None:
        pos = dt[dt > 0]
        step = float(pd.Series(pos).mode().iloc[0]) / 1e9 if pos.size else None
    if step and 86400 % step == 0 and frame.attrs.get("records") != "trades":  # sizes that divide a day
        i = np.flatnonzero(bar_grid_offsets(t, int(step * 1e9)) != 0)  # the grid bars are built on (see aggregate.py)
        if i.size and i[0] == 0 and frame.attrs.get("partial_first_bar") == str(idx[0].tz_convert("UTC")):
            i = i[1:]  # resampled from a file that starts inside a bar: its first bar starts with the data
        _issue(out, "off_bar_grid", i, idx, "time", None, [f"{idx[k]:%H:%M:%S} is not on the {frame.attrs.get('bar') or f'{step:g}s'} grid" for k in i], line_offset=lo)
    gap_rows = []
    if step and n > 1:
        sid = session_id(idx)
        same = sid[1:] == sid[:-1]
        big = (dt > step * 1e9 * 1.5) & same
        # a gap that is only a scheduled halt is not missing data (one halt lookup for all gaps)
        ks = np.flatnonzero(big)
        step_ns = int(step * 1e9)
        if ks.size:
            counts = np.maximum((t[ks + 1] - t[ks] - 1) // step_ns, 0)
            owner = np.repeat(np.arange(ks.size), counts)
            first = np.repeat(np.cumsum(counts) - counts, counts)
            probe_ns = t[ks][owner] + (np.arange(owner.size) - first + 1) * step_ns
            probe = pd.DatetimeIndex(probe_ns.view("datetime64[ns]")).tz_localize("UTC")
            open_ = np.bincount(owner, weights=~in_scheduled_halt(probe), minlength=ks.size).astype(np.int64)
            gap_rows = [(int(k) + 1, int(m), int(t[k + 1] - t[k])) for k, m in zip(ks, open_) if m]
    if gap_rows:
        ii = np.array([g[0] for g in gap_rows])
        _issue(out, "gap", ii, idx, "time", [g[1] for g in gap_rows], [f"{g[1]} bar(s) missing ({pd.Timedelta(int(g[2]))} since the previous bar)" for g in gap_rows], line_offset=lo)

    # stale: runs of identical consecutive bars
    cols = [k for k in ("open", "high", "low", "close", "volume", "num_trades", "bid_volume", "ask_volume") if k in frame.columns]
    vals = frame[cols].to_numpy()
    same_prev = np.zeros(n, dtype=bool)
    same_prev[1:] = np.all(vals[1:] == vals[:-1], axis=1)
    if same_prev.any():
        # run starts / lengths
        edges = np.diff(np.concatenate(([0], same_prev.astype(np.int8), [0])))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        keep = (ends - starts + 1) >= STALE_MIN_RUN  # k repeats = k + 1 identical bars
        ss = starts[keep]
        _issue(out, "stale", ss, idx, "bar", [int(e - s + 1) for s, e in zip(starts[keep], ends[keep])], [f"{e - s + 1} identical consecutive bars" for s, e in zip(starts[keep], ends[keep])], line_offset=lo)

    # spikes: bar range far beyond its session's typical range
    rng = h - l
    if n > 20:
        sid = session_id(idx)
        med = pd.Series(rng).groupby(sid).transform("median").to_numpy()
        with np.errstate(invalid="ignore", divide="ignore"):
            spike = (rng > 25 * np.maximum(med, tick or 0)) & (rng > 0.01 * np.abs(c))
        i = np.flatnonzero(spike)
        _issue(out, "spike", i, idx, "high-low", rng[i], [f"range {rng[k]:g} vs session median {med[k]:g}" for k in i], line_offset=lo)

    issues = pd.DataFrame(out, columns=["check", "severity", "row", "line", "time", "field", "value", "detail"])
    issues = issues.sort_values(["row", "check"], kind="stable").reset_index(drop=True)
    meta = {k: frame.attrs.get(k) for k in ("symbol", "sources", "source_format", "tick_size", "bar", "order_flow", "synthetic", "session")}
    meta["sources"] = list(meta.get("sources") or [])
    meta["quarantined"] = len(frame.attrs.get("quarantine") or [])
    return QualityReport(n, idx.min(), idx.max(), issues, meta)
