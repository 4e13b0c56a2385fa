"""Prometheus metrics (``navale_*``) of the paper trader and the collector, read from their journals.

Nothing here runs in the trading loop: a :class:`MetricsReader` opens the trader's journal
(``STATE_DIR/journal.sqlite``) and the collector's (``ROOT/collector.sqlite``) read-only (SQLite WAL: the
writers are never blocked), reads the last heartbeat, the new heartbeats and the new risk events since its
previous read, and sets the metrics of its own :class:`Metrics` registry (not prometheus_client's global
one). :func:`render` gives the text exposition a Prometheus server scrapes. docs/metrics.md lists the
metrics and how to scrape them.

Counters stay monotonic across restarts of the process they count: a heartbeat from a new pid (or a
count that went down) starts that process's count from zero again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

__all__ = ["LATENCY_BUCKETS", "STALE_HEARTBEAT_S", "Metrics", "MetricsReader", "render"]

# tick -> order latency buckets, seconds: 100 us to 1 s
LATENCY_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0)
STALE_HEARTBEAT_S = 30.0  # a process silent for longer has its feed reported down (as `navale status` does)


class Metrics:
    """The ``navale_*`` metrics in their own registry (``self.registry``)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry if registry is not None else CollectorRegistry()
        src = ["source", "symbol"]
        self.ticks = Counter("navale_ticks", "Records processed (ticks; the bars of a bar feed)", src, registry=r)
        self.bars = Counter("navale_bars", "Bars closed", src, registry=r)
        self.latency = Histogram("navale_tick_to_order_latency_seconds",
                                 "From the arrival of the record that closed a bar to the order sent", registry=r,
                                 buckets=LATENCY_BUCKETS)
        self.pnl_today = Gauge("navale_pnl_today_usd", "Closed trades of the trading date, net (USD)", ["symbol"],
                               registry=r)
        self.pnl_open = Gauge("navale_pnl_open_usd", "The open position marked at the last price (USD)", ["symbol"],
                              registry=r)
        self.equity = Gauge("navale_equity_usd", "Account equity (USD)", ["symbol"], registry=r)
        self.position = Gauge("navale_position_contracts", "Signed position (contracts)", ["symbol"], registry=r)
        self.trades_today = Gauge("navale_trades_today", "Trades of the trading date", ["symbol"], registry=r)
        self.alerts = Counter("navale_alerts", "Risk events journaled, by kind and level",
                              ["source", "kind", "level"], registry=r)
        self.feed_up = Gauge("navale_feed_up", "1 when the feed delivers (fresh heartbeat, no feed halt), else 0",
                             src, registry=r)
        self.heartbeat_age = Gauge("navale_heartbeat_age_seconds", "Wall time since the last heartbeat",
                                   ["source"], registry=r)
        self.collector_lag = Gauge("navale_collector_lag_seconds",
                                   "Wall clock minus the last record's time (live feeds; NaN for a replay)",
                                   ["symbol"], registry=r)
        self.disk_used = Gauge("navale_disk_used_bytes", "Bytes of the symbol's segments", ["symbol"], registry=r)
        self.disk_free = Gauge("navale_disk_free_bytes", "Free bytes on the collection disk", ["symbol"], registry=r)

    def observe_latencies_ns(self, values_ns: Iterable[int]) -> None:
        """Add latencies (ns) to the histogram, e.g. a session's ``RunResult.decision_ns``."""
        for v in values_ns:
            self.latency.observe(int(v) / 1e9)


def render(registry: CollectorRegistry | Metrics) -> bytes:
    """The Prometheus text exposition of ``registry``."""
    return generate_latest(registry.registry if isinstance(registry, Metrics) else registry)


def _num(v: Any) -> float:
    return float("nan") if v is None else float(v)


class MetricsReader:
    """Sets ``metrics`` from the journals of a trader's state dir and/or a collector's directory.

    Call :meth:`update` before each render (a missing journal, or one being created, is skipped).
    The latency histogram gets one sample per trader heartbeat after which orders were sent (the bar
    close's last order); :meth:`observe_run` adds every order of an in-process session instead.
    """

    def __init__(self, metrics: Metrics | None = None, *, state_dir: str | Path | None = None,
                 collect_dir: str | Path | None = None) -> None:
        self.metrics = metrics if metrics is not None else Metrics()
        self.state_dir = None if state_dir is None else Path(state_dir)
        self.collect_dir = None if collect_dir is None else Path(collect_dir)
        self._seen: dict[tuple, tuple[int, int]] = {}  # counter key -> (pid, last value)
        self._hb_id: dict[str, int] = {}
        self._event_id: dict[str, int] = {}

    def journal_paths(self) -> dict[str, Path]:
        """``trader`` / ``collector`` -> the journal file read (whether it exists or not)."""
        from live import control
        from live.collect import layout

        out = {}
        if self.state_dir is not None:
            out["trader"] = control.journal_path(self.state_dir)
        if self.collect_dir is not None:
            out["collector"] = layout.journal_path(self.collect_dir)
        return out

    def update(self, now_ns: int | None = None) -> list[str]:
        """Read the journals now (``now_ns``: the wall clock heartbeat ages are measured at); returns the
        sources read."""
        from live.journal import Journal, JournalError

        now = time.time_ns() if now_ns is None else int(now_ns)
        read = []
        for source, path in self.journal_paths().items():
            if not path.is_file():
                continue
            try:
                with Journal(path, readonly=True) as j:
                    hb = j.last_heartbeat()
                    events = j.risk_events(after_id=self._event_id.get(source, 0))
                    beats = j.heartbeats(after_id=self._hb_id.get(source, 0)) if source == "trader" else []
            except JournalError:  # being created right now: next time
                continue
            read.append(source)
            self._events(source, events)
            if source == "trader":
                self._trader_beats(beats)
            if hb is None:
                continue
            age = max(0.0, (now - int(hb["wall_ns"])) / 1e9)
            self.metrics.heartbeat_age.labels(source).set(age)
            if source == "trader":
                self._trader(hb["status"], age)
            else:
                self._collector(hb["status"], age)
        return read

    def observe_run(self, result: Any) -> None:
        """Add an in-process session's order latencies (``RunResult.decision_ns``) to the histogram."""
        self.metrics.observe_latencies_ns(getattr(result, "decision_ns", ()))

    # ------------------------------------------------------------------ internals
    def _advance(self, counter: Counter, labels: tuple[str, ...], pid: int, value: Any) -> None:
        if value is None:
            return
        value = int(value)
        key = (id(counter), *labels)
        prev = self._seen.get(key)
        base = prev[1] if prev is not None and prev[0] == pid and value >= prev[1] else 0
        if value > base:
            counter.labels(*labels).inc(value - base)
        else:
            counter.labels(*labels)  # the series exists (0) from the first read
        self._seen[key] = (pid, value)

    def _events(self, source: str, events: list[dict[str, Any]]) -> None:
        for e in events:
            self.metrics.alerts.labels(source, str(e["kind"]), str(e["level"])).inc()
            self._event_id[source] = int(e["id"])

    def _trader_beats(self, beats: list[dict[str, Any]]) -> None:
        for b in beats:
            self._hb_id["trader"] = int(b["id"])
            st = b["status"]
            lat = st.get("latency") or {}
            n = lat.get("decisions")
            if n is None:
                continue
            pid, n = int(st.get("pid") or 0), int(n)
            prev = self._seen.get(("latency",))
            base = prev[1] if prev is not None and prev[0] == pid and n >= prev[1] else 0
            if n > base:
                self.metrics.latency.observe(int(lat.get("last_decision_ns") or 0) / 1e9)
            self._seen[("latency",)] = (pid, n)

    def _trader(self, st: dict[str, Any], age: float) -> None:
        m, sym = self.metrics, str(st.get("symbol") or "")
        pid = int(st.get("pid") or 0)
        feed = st.get("feed") or {}
        self._advance(m.ticks, ("trader", sym), pid, feed.get("records"))
        self._advance(m.bars, ("trader", sym), pid, st.get("bars"))
        m.pnl_today.labels(sym).set(_num(st.get("pnl_today_usd")))
        m.pnl_open.labels(sym).set(_num(st.get("pnl_open_usd")))
        m.equity.labels(sym).set(_num(st.get("equity_usd")))
        m.position.labels(sym).set(_num(st.get("position")))
        m.trades_today.labels(sym).set(_num(st.get("trades_today")))
        halted = bool((st.get("kill_switches") or {}).get("feed_halt"))
        m.feed_up.labels("trader", sym).set(1.0 if age <= STALE_HEARTBEAT_S and not halted else 0.0)

    def _collector(self, st: dict[str, Any], age: float) -> None:
        m, pid = self.metrics, int(st.get("pid") or 0)
        for s in st.get("symbols") or []:
            sym = str(s.get("symbol") or "")
            self._advance(m.ticks, ("collector", sym), pid, s.get("ticks"))
            self._advance(m.bars, ("collector", sym), pid, s.get("bars"))
            lag = s.get("lag_s")
            m.collector_lag.labels(sym).set(math.nan if lag is None else float(lag))
            m.disk_used.labels(sym).set(_num(s.get("disk_used_bytes")))
            m.disk_free.labels(sym).set(_num(s.get("disk_free_bytes")))
            up = age <= STALE_HEARTBEAT_S and s.get("state") == "running"
            m.feed_up.labels("collector", sym).set(1.0 if up else 0.0)
