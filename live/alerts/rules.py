"""The alert rules: METHOD.md's (drawdown, loss streak, rolling Sharpe, machine load, latency, feed, daily loss
limit, every kill switch) and the cheap anomalies (feed silent in session, position disagreeing with the broker,
reconnect storm, collector behind), each evaluated on what the journal holds -> a list of :class:`Alert`.

The rules only read; delivery (cooldown, history, notification) is :mod:`live.alerts.delivery`.
"""

from __future__ import annotations

import math
import os
import shutil
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .config import AlertConfig

__all__ = ["Alert", "KILL_SWITCH_EVENTS", "RECONNECT_EVENTS", "status_alerts", "machine_alerts", "machine_usage",
           "event_alerts", "collector_alerts", "band_alert", "OUT_OF_ORDER_EVENTS", "silence_alert", "sharpe_alert", "rolling_sharpe", "evaluate"]

# risk events journaled when a kill switch fires (live/trader.py, navale stop, the collector); the weekend halt
# journals only its end, so it has no alert
KILL_SWITCH_EVENTS = ("feed_halt", "account_stop", "day_gate", "emergency_stop", "disk_full")
RECONNECT_EVENTS = ("feed_resumed", "feed_reconnected", "restart")
# records or bars out of order: the bar builder's late trades, the .scid feed's DateTime going back, the
# collector's quality finding, a bar fed again to the trader after a restart
OUT_OF_ORDER_EVENTS = ("late_record", "feed_out_of_order", "quality.out_of_order", "bar_skipped")
NS = 1_000_000_000


@dataclass(frozen=True)
class Alert:
    """One rule that fired: ``kind`` (cooldown and dedup go by it), ``severity`` (info|warning|critical), the
    observed ``value`` against its ``threshold``, a one-line ``detail``, when (``ts_ns``, UTC ns) and an optional
    ``dedup_key`` (an alert whose key is already in the history is not recorded again: e.g. one risk event)."""

    kind: str
    severity: str
    value: float | None
    threshold: float | None
    detail: str
    ts_ns: int
    dedup_key: str | None = None


def _num(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, (int, float)) or not math.isfinite(x):
        return None
    return float(x)


def status_alerts(status: Mapping[str, Any], cfg: AlertConfig, ts_ns: int) -> list[Alert]:
    """The rules on a trader's heartbeat status (``Trader.status()``): drawdown, loss streak, daily loss,
    feed halted (disconnected) and tick -> order latency (``latency_ms`` when the status has it)."""
    out: list[Alert] = []
    ks = status.get("kill_switches") or {}
    dd = _num(ks.get("drawdown_pct"))
    if dd is not None and dd > cfg.drawdown_pct:
        out.append(Alert("drawdown", "critical", dd, cfg.drawdown_pct,
                         f"drawdown {dd:.2f} % > {cfg.drawdown_pct:g} %", ts_ns))
    losses = _num(ks.get("losses_in_a_row"))
    if losses is not None and losses >= cfg.consecutive_losses:
        out.append(Alert("consecutive_losses", "warning", losses, float(cfg.consecutive_losses),
                         f"{int(losses)} losses in a row (>= {cfg.consecutive_losses})", ts_ns))
    pnl = _num(status.get("pnl_today_usd"))
    warn_at = cfg.daily_loss_warn_fraction * cfg.daily_loss_limit_usd
    if pnl is not None and -pnl >= warn_at:
        out.append(Alert("daily_loss", "warning", pnl, -warn_at,
                         f"P&L today {pnl:,.2f} USD: {-pnl / cfg.daily_loss_limit_usd:.0%} of the daily loss "
                         f"limit {cfg.daily_loss_limit_usd:,.0f} USD", ts_ns))
    if ks.get("feed_halt"):
        why = ks["feed_halt"] if isinstance(ks["feed_halt"], str) else "the trader halted on a silent feed"
        age = _num((status.get("feed") or {}).get("last_record_age_s"))
        out.append(Alert("feed_disconnected", "critical", age, None, f"feed disconnected: {why}", ts_ns))
    lat = _num(status.get("latency_ms"))
    if lat is not None and lat > cfg.latency_ms:
        out.append(Alert("latency", "warning", lat, cfg.latency_ms,
                         f"tick -> order latency {lat:.0f} ms > {cfg.latency_ms:g} ms", ts_ns))
    return out


def rolling_sharpe(daily_pnl: Sequence[float], window: int, periods_per_year: int = 252) -> float | None:
    """Annualised Sharpe of the last ``window`` daily P&Ls (mean / sample std * sqrt(252)); None with fewer
    than ``window`` days or no dispersion."""
    xs = [float(x) for x in daily_pnl][-window:]
    if len(xs) < max(window, 2):
        return None
    sd = statistics.stdev(xs)
    return None if sd == 0 else statistics.fmean(xs) / sd * math.sqrt(periods_per_year)


def sharpe_alert(daily_pnl: Sequence[float], cfg: AlertConfig, ts_ns: int) -> list[Alert]:
    """Rolling Sharpe below :attr:`AlertConfig.min_rolling_sharpe` (a warning)."""
    s = rolling_sharpe(daily_pnl, cfg.sharpe_window_days)
    if s is None or s >= cfg.min_rolling_sharpe:
        return []
    return [Alert("rolling_sharpe", "warning", s, cfg.min_rolling_sharpe,
                  f"rolling Sharpe ({cfg.sharpe_window_days} days) {s:.2f} < {cfg.min_rolling_sharpe:g}", ts_ns)]


def machine_usage(path: str | Path = ".") -> dict[str, float | None]:
    """CPU, memory and disk use in % (disk: the file system of ``path``). psutil when installed; else the load
    average over the CPU count and /proc/meminfo (Linux); None where neither answers."""
    cpu = mem = disk = None
    try:
        import psutil

        cpu, mem = float(psutil.cpu_percent(interval=None)), float(psutil.virtual_memory().percent)
    except ImportError:
        try:
            cpu = 100.0 * os.getloadavg()[0] / (os.cpu_count() or 1)
        except OSError:
            pass
        try:
            info = dict(line.split(":", 1) for line in Path("/proc/meminfo").read_text().splitlines() if ":" in line)
            total, avail = (float(info[k].split()[0]) for k in ("MemTotal", "MemAvailable"))
            mem = 100.0 * (1 - avail / total)
        except (OSError, KeyError, ValueError, ZeroDivisionError):
            pass
    try:
        du = shutil.disk_usage(path)
        disk = 100.0 * du.used / du.total if du.total else None
    except OSError:
        pass
    return {"cpu_pct": cpu, "memory_pct": mem, "disk_pct": disk}


def machine_alerts(cfg: AlertConfig, ts_ns: int, usage: Mapping[str, float | None]) -> list[Alert]:
    """CPU > 80 % and disk > 85 % (warnings), memory > 90 % (critical), on :func:`machine_usage`'s figures."""
    out = []
    for key, kind, severity in (("cpu_pct", "cpu", "warning"), ("disk_pct", "disk", "warning"),
                                ("memory_pct", "memory", "critical")):
        v, limit = _num(usage.get(key)), getattr(cfg, key)
        if v is not None and v > limit:
            out.append(Alert(kind, severity, v, limit, f"{kind} use {v:.1f} % > {limit:g} %", ts_ns))
    return out


def silence_alert(last_record_age_s: float | None, now_ns: int, cfg: AlertConfig, calendar: Any = None) -> list[Alert]:
    """No record for :attr:`AlertConfig.no_record_minutes` while the Globex session is open at ``now_ns``
    (``calendar``: a ``strategy.market.calendar.SessionCalendar``, built when None; a time outside its coverage
    counts as open)."""
    age = _num(last_record_age_s)
    if age is None or age < cfg.no_record_minutes * 60:
        return []
    if calendar is None:
        from strategy.market.calendar import SessionCalendar

        calendar = SessionCalendar()
    try:
        if not calendar.is_open(int(now_ns)):
            return []
    except ValueError:
        pass
    return [Alert("feed_silent", "warning", age, cfg.no_record_minutes * 60,
                  f"no record for {age / 60:.1f} min while the session is open", now_ns)]


def event_alerts(events: Iterable[Mapping[str, Any]], cfg: AlertConfig, now_ns: int) -> list[Alert]:
    """From journaled risk events (``Journal.risk_events``, with ``id`` and ``wall_ns``): every kill switch firing,
    the position disagreeing with the broker (``reconcile_mismatch``), and a reconnect storm (at least
    ``reconnect_storm_count`` feed_resumed/restart events in the last ``reconnect_storm_minutes`` before
    ``now_ns``). Each event alerts once (its id is the dedup key)."""
    out: list[Alert] = []
    window_ns = int(cfg.reconnect_storm_minutes * 60 * NS)
    reconnects = []
    for e in events:
        kind, eid = str(e.get("kind")), e.get("id")
        if kind in KILL_SWITCH_EVENTS:
            sev = "critical" if e.get("level") == "critical" or kind in ("account_stop", "emergency_stop",
                                                                          "feed_halt", "disk_full") else "warning"
            out.append(Alert(f"kill_switch:{kind}", sev, None, None, f"kill switch {kind}: {e.get('detail', '')}",
                             int(e.get("ts_ns") or now_ns), dedup_key=f"risk_event:{eid}"))
        elif kind in ("feed_disconnected", "feed_rejected"):  # a venue link dropped, or its market data refused
            what = "disconnected" if kind == "feed_disconnected" else "market data refused"
            out.append(Alert(kind, "critical", None, None, f"feed {what}: {e.get('detail', '')}",
                             int(e.get("ts_ns") or now_ns), dedup_key=f"risk_event:{eid}"))
        elif kind == "reconcile_mismatch":
            out.append(Alert("position_mismatch", "critical", None, None,
                             f"position disagrees with the broker: {e.get('detail', '')}", int(e.get("ts_ns") or now_ns),
                             dedup_key=f"risk_event:{eid}"))
        elif kind in OUT_OF_ORDER_EVENTS:
            out.append(Alert("bars_out_of_order", "warning", None, None,
                             f"records or bars out of order ({kind}): {e.get('detail', '')}",
                             int(e.get("ts_ns") or now_ns), dedup_key=f"risk_event:{eid}"))
        elif kind in RECONNECT_EVENTS and now_ns - int(e.get("wall_ns") or 0) <= window_ns:
            reconnects.append(e)
    if len(reconnects) >= cfg.reconnect_storm_count:
        out.append(Alert("reconnect_storm", "warning", float(len(reconnects)), float(cfg.reconnect_storm_count),
                         f"{len(reconnects)} reconnects/restarts in {cfg.reconnect_storm_minutes:g} min "
                         f"(>= {cfg.reconnect_storm_count})", now_ns,
                         dedup_key=f"reconnect_storm:{reconnects[0].get('id')}"))
    return out


def collector_alerts(collector_status: Mapping[str, Any], cfg: AlertConfig, ts_ns: int) -> list[Alert]:
    """A live collector falling behind its source: a symbol of the collector's heartbeat (``symbols``) whose
    ``lag_s`` exceeds :attr:`AlertConfig.collector_lag_s` (one kind per symbol)."""
    out = []
    for s in collector_status.get("symbols") or []:
        lag = _num(s.get("lag_s"))
        if lag is not None and lag > cfg.collector_lag_s:
            sym = s.get("symbol") or "?"
            out.append(Alert(f"collector_lag:{sym}", "warning", lag, cfg.collector_lag_s,
                             f"collector {sym} {lag:.1f} s behind its source (> {cfg.collector_lag_s:g} s)", ts_ns))
    return out


def band_alert(status: Mapping[str, Any], band: Any, ts_ns: int) -> list[Alert]:
    """The day's P&L (``pnl_today_usd`` of the heartbeat) outside the band the backtest of the same configuration
    predicts (``live.pnl_band.PnlBand``: below its 5 % or above its 95 % daily quantile)."""
    pnl = _num(status.get("pnl_today_usd"))
    if band is None or pnl is None or not band.outside(pnl):
        return []
    side = "below" if pnl < band.q05_day else "above"
    edge = band.q05_day if pnl < band.q05_day else band.q95_day
    return [Alert("pnl_band", "warning", pnl, edge, f"P&L today {pnl:,.2f} $ is {side} the backtest's daily band "
                  f"[{band.q05_day:,.2f}, {band.q95_day:,.2f}] $ ({band.source})", ts_ns)]


def evaluate(cfg: AlertConfig, now_ns: int, *, status: Mapping[str, Any] | None = None,
             events: Iterable[Mapping[str, Any]] = (), collector: Mapping[str, Any] | None = None,
             usage: Mapping[str, float | None] | None = None, daily_pnl: Sequence[float] | None = None,
             calendar: Any = None, band: Any = None) -> list[Alert]:
    """Every rule on what is given: a trader ``status``, risk ``events``, a ``collector`` heartbeat status, the
    machine's ``usage`` (:func:`machine_usage`), the ``daily_pnl`` series (rolling Sharpe)."""
    out: list[Alert] = []
    if status is not None:
        out += status_alerts(status, cfg, now_ns)
        out += silence_alert((status.get("feed") or {}).get("last_record_age_s"), now_ns, cfg, calendar)
        out += band_alert(status, band, now_ns)
    out += event_alerts(events, cfg, now_ns)
    if collector is not None:
        out += collector_alerts(collector, cfg, now_ns)
    if usage is not None:
        out += machine_alerts(cfg, now_ns, usage)
    if daily_pnl is not None:
        out += sharpe_alert(daily_pnl, cfg, now_ns)
    return out
