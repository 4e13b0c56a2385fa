"""What the dashboard shows, read from the trader's and the collector's journals (read-only connections, opened
and closed per read: a reader never holds a lock the writers wait on)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Sources", "read_snapshot", "equity_points"]

LAST_BARS = 12
LAST_TRADES = 10
LAST_ALERTS = 15
MAX_POINTS = 20_000  # equity points kept for the curve (in-session bars: months of 5-minute bars)


@dataclass(frozen=True)
class Sources:
    """Where the journals are: the trader's state dir and the collector's root (either may be None)."""

    state_dir: Path | None
    collect_dir: Path | None

    def trader_journal(self) -> Path | None:
        from live import control

        return None if self.state_dir is None else control.journal_path(self.state_dir)

    def collector_journal(self) -> Path | None:
        from live.collect import layout

        return None if self.collect_dir is None else layout.journal_path(self.collect_dir)


def _clean(x: Any) -> Any:
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_clean(v) for v in x]
    return x


def equity_points(beats: list[dict[str, Any]]) -> list[tuple[int, float]]:
    """(bar time ns, equity $) of the in-session heartbeats, oldest first."""
    out = []
    for b in beats:
        st = b["status"]
        if st.get("in_session") and isinstance(st.get("equity_usd"), (int, float)) and st.get("bar_ts_ns"):
            out.append((int(st["bar_ts_ns"]), float(st["equity_usd"])))
    return out


class _Beats:
    """The equity points and last bars of one journal's heartbeats, read incrementally (only the heartbeats
    after the last one read; a journal whose ids went back, a new session's, is read again)."""

    def __init__(self) -> None:
        self.last_id = 0
        self.equity: list[tuple[int, float]] = []
        self.bars: list[dict[str, Any]] = []

    def update(self, j: Any) -> None:
        new = j.heartbeats(after_id=self.last_id)
        if not new and self.last_id and not j.heartbeats(after_id=self.last_id - 1, limit=1):
            self.__init__()  # the heartbeat ids went back: another session's journal at this path
            new = j.heartbeats()
        for b in new:
            self.last_id = max(self.last_id, int(b["id"]))
        self.equity = (self.equity + equity_points(new))[-MAX_POINTS:]
        self.bars = (self.bars + [b["status"]["signals"] for b in new
                                  if isinstance(b["status"].get("signals"), dict)])[-LAST_BARS:]


_BEATS: dict[str, _Beats] = {}


def bracket_orders(status: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The open trade's bracket legs (a stop and a limit target working at the broker), from the trader's
    last heartbeat; none when flat."""
    if not status or not status.get("bracket") or not status.get("position"):
        return []
    pos, legs = int(status["position"]), status["bracket"]
    side, qty = ("sell" if pos > 0 else "buy"), abs(pos)
    return [{"order_id": "bracket", "side": side, "quantity": qty, "purpose": purpose, "type": kind,
             "price": legs.get(key)} for key, kind, purpose in (("stop", "stop", "stop loss"),
                                                                 ("target", "limit", "target"))
            if legs.get(key) is not None]


def _trader(path: Path) -> dict[str, Any]:
    from live.journal import Journal

    with Journal(path, readonly=True) as j:
        st = j.status(events=8)
        cache = _BEATS.setdefault(str(path.resolve()), _Beats())
        cache.update(j)
        trades = j.trades()
        orders = j.orders()
        fills = j.fills()
        alerts = j.alerts(limit=LAST_ALERTS)
        band = None
        try:
            from live.pnl_band import (
                read_band,  # the backtest's expected band, where the session stored one
            )

            band = read_band(j)
        except ImportError:
            band = None
    filled = set(fills["order_id"]) if len(fills) else set()
    open_orders = [] if orders.empty else [
        {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
        for row in orders[~orders["order_id"].isin(filled)][["order_id", "side", "quantity", "purpose", "reason",
                                                               "stop_ticks", "target_ticks"]].to_dict("records")]
    open_orders += bracket_orders(st)
    bars = list(cache.bars)
    cols = [c for c in ("trade_id", "side", "entry_ts", "entry_price", "exit_ts", "exit_price", "exit_reason",
                        "pnl_usd", "bn_score", "base_type", "status", "quality_p_win") if c in trades.columns]
    last_trades = [] if trades.empty else [{k: (str(v) if hasattr(v, "isoformat") else v) for k, v in r.items()}
                                           for r in trades[cols].tail(LAST_TRADES).iloc[::-1].to_dict("records")]
    return {"status": st, "equity": list(cache.equity), "bars": bars[::-1], "trades": last_trades,
            "open_orders": open_orders, "alerts": alerts[::-1], "band": None if band is None else band.__dict__}


def _collector(path: Path) -> dict[str, Any]:
    from live.journal import Journal

    with Journal(path, readonly=True) as j:
        hb = j.last_heartbeat()
        events = j.risk_events(limit=8)
    st = dict(hb["status"]) if hb else {}
    st["heartbeat_age_s"] = None if hb is None else max(0.0, (time.time_ns() - int(hb["wall_ns"])) / 1e9)
    summary = next((e for e in reversed(events) if e["kind"] == "daily_summary"), None)
    return {"status": st, "events": events[::-1], "daily_summary": summary}


def read_snapshot(src: Sources) -> dict[str, Any]:
    """Everything the page shows now: ``trader`` and ``collector`` (None where that journal does not exist or
    cannot be read yet, with the reason in ``errors``)."""
    from live.journal import JournalError

    out: dict[str, Any] = {"trader": None, "collector": None, "errors": [], "wall_ns": time.time_ns()}
    for key, path, read in (("trader", src.trader_journal(), _trader),
                            ("collector", src.collector_journal(), _collector)):
        if path is None or not path.is_file():
            continue
        try:
            out[key] = read(path)
        except (JournalError, OSError) as exc:  # a journal being created: the next refresh reads it
            out["errors"].append(f"{key}: {' '.join(str(exc).split())}")
        except Exception as exc:  # noqa: BLE001 - sqlite busy or a half-written schema: shown, never fatal
            out["errors"].append(f"{key}: {type(exc).__name__}: {' '.join(str(exc).split())}")
    return _clean(out)
