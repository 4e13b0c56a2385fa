"""The collector's daily summary of one symbol and trading date, computed from the files alone.

API (the collector calls both at each session end; ``navale collect summary DATE`` too)::

    summary = daily_summary(root, "ES", "2024-03-05")     # dict, JSON-safe; SummaryError when no data
    paths = write_daily_summary(root, summary)            # ROOT/reports/DATE.md, DATE.html + a store row

Sources, all read-only (the collector may be running):

- the records: the segment ``ROOT/segments/SYMBOL/DATE.seg`` when it is there (an open one too: its whole
  frames, a torn tail is left out and reported as ``torn_bytes``), else the Parquet partitions of that date;
- events: the segment's EVENT records (``parquet/events`` without a segment), merged with the collector
  journal's risk events (``ROOT/collector.sqlite``) of that trading date, an event written to both counted
  once (same time, kind and detail). Kinds ``quality.<rule>`` are the quality monitor's findings
  (:mod:`live.collect.quality`), the others feed and collector events. Gaps are the GAP records (events of
  kind ``gap`` in Parquet): count and minutes;
- trades: the closed trades in the data_collection trader's journal (``ROOT/trader/journal.sqlite``) whose
  exit falls on that trading date and whose symbol is the product or one of its contracts (``ES``,
  ``ESH4``...): count, wins (net P&L > 0), net $;
- disk: the bytes of the segment, its manifest and torn-off tails, and of the date's partitions.

Times in the summary are ISO-8601 UTC strings; ``first_ts``/``last_ts`` are the first and last tick or bar
times. :func:`write_daily_summary` writes the Markdown and HTML reports atomically and replaces the
``collect_summaries`` row of ``(symbol, date)`` in the run store (:mod:`research.store.runs`).
"""

from __future__ import annotations

import html
import json
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from live.collect import layout
from live.collect.quality import QUALITY_PREFIX
from live.journal import Journal, trading_date
from research.data import segments as seg
from research.store.files import atomic_write_text

__all__ = ["SummaryError", "daily_summary", "write_daily_summary", "store_row", "to_markdown", "to_html", "summary_rows",
           "date_bounds_ns"]

_CT = ZoneInfo("America/Chicago")


class SummaryError(ValueError):
    """No data for the symbol and date, or a file that cannot be read (one line naming it)."""


def date_bounds_ns(date: str) -> tuple[int, int]:
    """UTC ns ``[start, end)`` of a CME trading date: 17:00 CT the evening before to 17:00 CT that day."""
    try:
        day = datetime.fromisoformat(date)
    except ValueError:
        raise SummaryError(f"date {date!r}: expected YYYY-MM-DD") from None
    start = (day - timedelta(days=1)).replace(hour=17, tzinfo=_CT)
    end = day.replace(hour=17, tzinfo=_CT)
    return int(start.timestamp()) * 1_000_000_000, int(end.timestamp()) * 1_000_000_000


def _iso(ts_ns: int | None) -> str | None:
    if ts_ns is None:
        return None
    dt = datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=timezone.utc) + timedelta(microseconds=(ts_ns % 1_000_000_000) // 1000)
    return dt.isoformat().replace("+00:00", "Z")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _from_segment(path: Path) -> dict[str, Any]:
    try:
        data = seg.read_segment(path, allow_torn=True)
    except (seg.SegmentError, OSError) as exc:
        raise SummaryError(f"{path}: {exc}") from None
    times = [int(data.ticks["ts_ns"].min()), int(data.ticks["ts_ns"].max())] if len(data.ticks) else []
    if len(data.bars):
        times += [int(data.bars["ts_ns"].min()), int(data.bars["ts_ns"].max())]
    contracts = sorted(set(data.tick_contracts) | set(data.bar_contracts) - {""})
    events = [(int(e.get("ts_ns", 0)), str(e.get("kind", "")), str(e.get("level", "")), str(e.get("detail", "")))
              for e in data.events]
    gaps = [(int(g["start_ns"]), int(g["end_ns"])) for g in data.gaps]
    return {"source": "segment", "sealed": data.seal is not None, "torn_bytes": data.scan.torn_bytes,
            "ticks": len(data.ticks), "bars": len(data.bars), "times": times, "contracts": contracts,
            "events": events, "gaps": gaps, "source_name": data.header.get("source")}


def _from_parquet(root: Path, symbol: str, date: str) -> dict[str, Any] | None:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    paths = {t: layout.partition_path(root, t, symbol, date) for t in layout.TABLES}
    if not any(p.exists() for p in paths.values()):
        return None
    tables = {}
    for t, p in paths.items():
        if p.exists():
            try:
                tables[t] = pq.read_table(p)
            except Exception as exc:  # pyarrow raises several types for a damaged file
                raise SummaryError(f"{p}: cannot read the partition: {' '.join(str(exc).split())}") from None
    times: list[int] = []
    contracts: set[str] = set()
    counts = {}
    for t in ("ticks", "bars"):
        tab = tables.get(t)
        counts[t] = 0 if tab is None else tab.num_rows
        if tab is not None and tab.num_rows:
            ts = tab.column("ts").cast("int64")
            times += [int(pc.min(ts).as_py()), int(pc.max(ts).as_py())]
            if "contract" in tab.column_names:
                contracts |= {c for c in tab.column("contract").to_pylist() if c}
    events, gaps = [], []
    ev = tables.get("events")
    if ev is not None:
        ts = ev.column("ts").cast("int64").to_pylist()
        end = ev.column("end_ts").cast("int64").to_pylist() if "end_ts" in ev.column_names else [None] * len(ts)
        for t, k, lvl, d, e in zip(ts, ev.column("kind").to_pylist(), ev.column("level").to_pylist(),
                                   ev.column("detail").to_pylist(), end):
            if k == "gap" and e is not None:
                gaps.append((int(t), int(e)))
            else:
                events.append((int(t), str(k), str(lvl), str(d or "")))
    return {"source": "parquet", "sealed": True, "torn_bytes": 0, "ticks": counts["ticks"], "bars": counts["bars"],
            "times": times, "contracts": sorted(contracts), "events": events, "gaps": gaps, "source_name": None}


def _journal_events(root: Path, start: int, end: int) -> list[tuple[int, str, str, str]]:
    path = layout.journal_path(root)
    if not path.exists():
        return []
    with Journal(path, readonly=True) as j:
        rows = j.risk_events(since_ns=start)
    return [(int(r["ts_ns"]), str(r["kind"]), str(r["level"]), str(r["detail"])) for r in rows if r["ts_ns"] < end]


def _trades(root: Path, symbol: str, date: str) -> tuple[int, int, float]:
    path = layout.trader_dir(root) / "journal.sqlite"
    if not path.exists():
        return 0, 0, 0.0
    with Journal(path, readonly=True) as j:
        df = j.trades()
    if df.empty:
        return 0, 0, 0.0
    sym = df["symbol"].astype(str)
    exit_ns = df["exit_ts"].astype("int64")
    keep = [(s == symbol or s.startswith(symbol)) and trading_date(int(x)) == date for s, x in zip(sym, exit_ns)]
    sel = df[keep]
    pnl = sel["pnl_usd"].astype(float)
    return int(len(sel)), int((pnl > 0).sum()), round(float(pnl.sum()), 2)


def _disk(root: Path, symbol: str, date: str) -> dict[str, int]:
    s = layout.segment_path(root, symbol, date)
    segment = _size(s) + _size(layout.manifest_path(s)) + sum(_size(p) for p in s.parent.glob(s.name + ".torn-*"))
    parquet = 0
    for t in layout.TABLES:
        folder = layout.partition_path(root, t, symbol, date).parent
        if folder.is_dir():
            parquet += sum(_size(f) for f in folder.iterdir() if f.is_file())
    return {"segment": segment, "parquet": parquet, "total": segment + parquet}


def daily_summary(root: str | Path, symbol: str, date: str) -> dict[str, Any]:
    """The summary of ``symbol`` on trading date ``date`` (``YYYY-MM-DD``) from the files under ``root``
    (see the module docstring); :class:`SummaryError` when neither a segment nor a partition holds it."""
    root = Path(root)
    start, end = date_bounds_ns(date)
    segment = layout.segment_path(root, symbol, date)
    rec = _from_segment(segment) if segment.exists() else _from_parquet(root, symbol, date)
    if rec is None:
        raise SummaryError(f"no data for {symbol} on {date} in {root} (no segment {segment.relative_to(root)}, "
                           f"no Parquet partition)")
    events = sorted(set(rec["events"]) | set(_journal_events(root, start, end)))
    quality: dict[str, int] = {}
    feed: dict[str, int] = {}
    for _, kind, _, _ in events:
        if kind.startswith(QUALITY_PREFIX):
            k = kind[len(QUALITY_PREFIX):]
            quality[k] = quality.get(k, 0) + 1
        else:
            feed[kind] = feed.get(kind, 0) + 1
    gap_ns = sum(max(e - s, 0) for s, e in rec["gaps"])
    trades, wins, net = _trades(root, symbol, date)
    times = rec["times"]
    return {
        "symbol": symbol, "date": date, "source": rec["source"], "sealed": rec["sealed"],
        "torn_bytes": rec["torn_bytes"], "feed_source": rec["source_name"], "contracts": rec["contracts"],
        "ticks": rec["ticks"], "bars": rec["bars"],
        "gaps": len(rec["gaps"]), "gap_minutes": round(gap_ns / 60e9, 3),
        "quality": dict(sorted(quality.items())), "findings": sum(quality.values()),
        "feed_events": dict(sorted(feed.items())), "events": sum(feed.values()),
        "trades": trades, "wins": wins, "net_usd": net,
        "disk_bytes": _disk(root, symbol, date),
        "first_ts": _iso(min(times)) if times else None, "last_ts": _iso(max(times)) if times else None,
        "generated_at": _iso(time.time_ns()),
    }


def store_row(summary: dict[str, Any]) -> dict[str, Any]:
    """The ``collect_summaries`` row of a summary."""
    import pandas as pd

    def ts(v):
        return None if v is None else pd.Timestamp(v).to_pydatetime()

    return {"symbol": summary["symbol"], "date": datetime.fromisoformat(summary["date"]).date(),
            "ticks": summary["ticks"], "bars": summary["bars"], "gaps": summary["gaps"],
            "gap_minutes": float(summary["gap_minutes"]), "findings": summary["findings"],
            "feed_events": summary["events"], "trades": summary["trades"], "wins": summary["wins"],
            "net_usd": float(summary["net_usd"]), "disk_bytes": summary["disk_bytes"]["total"],
            "first_ts": ts(summary["first_ts"]), "last_ts": ts(summary["last_ts"]),
            "created": ts(summary["generated_at"]), "summary": json.dumps(summary, sort_keys=True)}


def _mib(n: int) -> str:
    return f"{n / 2**20:,.2f} MiB" if n >= 2**20 else f"{n / 1024:,.1f} KiB"


def summary_rows(summary: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary's headline figures as (label, text) rows (the reports' and the CLI's table)."""
    s = summary
    d = s["disk_bytes"]
    win = f"{s['wins']} won ({s['wins'] / s['trades']:.0%})" if s["trades"] else "none"
    state = "sealed" if s["sealed"] else "open (still collecting, or not sealed yet)"
    if s["torn_bytes"]:
        state += f"; {s['torn_bytes']} torn byte(s) after the last whole record"
    return [
        ("Records from", f"{s['source']} ({state})"),
        ("Contracts", ", ".join(s["contracts"]) or "-"),
        ("First record", s["first_ts"] or "-"),
        ("Last record", s["last_ts"] or "-"),
        ("Ticks", f"{s['ticks']:,}"),
        ("Bars", f"{s['bars']:,}"),
        ("Gaps", f"{s['gaps']} ({s['gap_minutes']:g} min)"),
        ("Quality findings", f"{s['findings']}"),
        ("Feed events", f"{s['events']}"),
        ("Trades", f"{s['trades']}, {win}, net ${s['net_usd']:,.2f}" if s["trades"] else "0"),
        ("Disk", f"{_mib(d['total'])} (segment {_mib(d['segment'])}, Parquet {_mib(d['parquet'])})"),
    ]


def to_markdown(summary: dict[str, Any]) -> str:
    """The summary as a small Markdown report."""
    s = summary
    out = [f"# Collection summary: {s['symbol']} {s['date']}", "", "| | |", "|---|---|"]
    out += [f"| {k} | {v} |" for k, v in summary_rows(s)]
    for title, counts in (("Quality findings by rule", s["quality"]), ("Feed events by kind", s["feed_events"])):
        out += ["", f"## {title}", ""]
        out += ["| kind | count |", "|---|---:|", *(f"| {k} | {n} |" for k, n in counts.items())] if counts else ["none"]
    out += ["", f"Generated {s['generated_at']} by `navale collect summary {s['date']} --symbol {s['symbol']}`.", ""]
    return "\n".join(out)


_CSS = ("body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;margin:.5em 0 1.5em}"
        "td,th{border:1px solid #ccc;padding:.3em .8em;text-align:left}th{background:#f3f3f3}"
        "td.n{text-align:right}.muted{color:#777}")


def to_html(summary: dict[str, Any]) -> str:
    """The summary as a small self-contained HTML page."""
    s = summary
    e = html.escape
    title = f"Collection summary: {s['symbol']} {s['date']}"
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{e(title)}</title><style>{_CSS}</style>"
             f"</head><body><h1>{e(title)}</h1><table>"]
    parts += [f"<tr><th>{e(k)}</th><td>{e(v)}</td></tr>" for k, v in summary_rows(s)]
    parts.append("</table>")
    for head, counts in (("Quality findings by rule", s["quality"]), ("Feed events by kind", s["feed_events"])):
        parts.append(f"<h2>{e(head)}</h2>")
        if counts:
            parts.append("<table><tr><th>kind</th><th>count</th></tr>"
                         + "".join(f"<tr><td>{e(k)}</td><td class='n'>{n}</td></tr>" for k, n in counts.items())
                         + "</table>")
        else:
            parts.append("<p class='muted'>none</p>")
    parts.append(f"<p class='muted'>Generated {e(str(s['generated_at']))}.</p></body></html>\n")
    return "".join(parts)


def write_daily_summary(root: str | Path, summary: dict[str, Any], *, store_path: str | Path | None = None,
                        store: bool = True) -> dict[str, Path]:
    """Write ``ROOT/reports/SYMBOL/DATE.md`` and ``DATE.html`` (atomically) and the summary's row in the run store
    (``store_path``, default :func:`research.store.runs.default_store_path`; ``store=False``: no row).
    Returns the paths by name (``md``, ``html``, ``store``)."""
    from research.store.runs import RunStore, default_store_path

    reports = layout.reports_dir(Path(root)) / summary["symbol"]
    md = atomic_write_text(reports / f"{summary['date']}.md", to_markdown(summary))
    page = atomic_write_text(reports / f"{summary['date']}.html", to_html(summary))
    out = {"md": Path(md), "html": Path(page)}
    if store:
        path = Path(store_path) if store_path is not None else default_store_path()
        with RunStore(path) as rs:
            rs.write_collect_summary(store_row(summary))
        out["store"] = path
    return out
