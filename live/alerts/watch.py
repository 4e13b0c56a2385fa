"""One look at a journal through the rules: its last heartbeat (a trader's status or a collector's), the recent
risk events, the machine's load and the daily P&L series -> the alerts that fire now (``navale alerts check``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from .config import AlertConfig
from .rules import Alert, evaluate, machine_usage

__all__ = ["check_journal", "daily_pnl", "EVENTS_WINDOW_S"]

EVENTS_WINDOW_S = 3600.0  # risk events looked at: those journaled in the last hour


def daily_pnl(journal: Any) -> list[float]:
    """Net P&L per CME trading date of the journal's closed trades, oldest first."""
    from live.journal import trading_date

    by_day: dict[str, float] = {}
    for exit_ns, pnl in journal.trade_pnls():
        d = trading_date(exit_ns)
        by_day[d] = by_day.get(d, 0.0) + pnl
    return [by_day[d] for d in sorted(by_day)]


def check_journal(journal: Any, cfg: AlertConfig, *, now_ns: int | None = None, disk_path: str | Path = ".",
                  usage: dict[str, float | None] | None = None, calendar: Any = None) -> list[Alert]:
    """The alerts that fire now on ``journal``: a trader heartbeat's status (record age advanced by the
    heartbeat's own age), or a collector's (``kind == "collector"``); risk events of the last
    :data:`EVENTS_WINDOW_S`; the machine (``usage``, else :func:`machine_usage` of ``disk_path``); the rolling
    Sharpe of the daily P&L."""
    now = time.time_ns() if now_ns is None else int(now_ns)
    hb = journal.last_heartbeat()
    status = collector = None
    if hb is not None:
        st = dict(hb["status"])
        if st.get("kind") == "collector":
            collector = st
        else:
            feed = dict(st.get("feed") or {})
            if isinstance(feed.get("last_record_age_s"), (int, float)):
                feed["last_record_age_s"] += max(0.0, (now - int(hb["wall_ns"])) / 1e9)
            st["feed"] = feed
            status = st
    events = [e for e in journal.risk_events(limit=1000) if now - int(e["wall_ns"]) <= EVENTS_WINDOW_S * 1e9]
    return evaluate(cfg, now, status=status, events=events, collector=collector,
                    usage=machine_usage(disk_path) if usage is None else usage,
                    daily_pnl=daily_pnl(journal), calendar=calendar, band=_band(journal))


def _band(journal: Any) -> Any:
    from live.pnl_band import read_band

    return read_band(journal) if getattr(journal, "path", None) is not None else None
