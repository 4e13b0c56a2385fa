"""`HeldJournal`: the collector's journal through a full disk.

SQLite cannot commit while the disk is full (``database or disk is full``), and the collector must keep running
then (the segment writer holds its records in memory and retries). An event that cannot be written is held in
memory, in order (at most ``max_held``; beyond that the oldest held are dropped and counted in the next event
written), and written before the next event once the journal takes writes again; a heartbeat that cannot be
written is skipped (the next one replaces it). Reads and everything else go to the wrapped `live.journal.Journal`.
"""

from __future__ import annotations

import sqlite3
from typing import Any

from live.journal import RISK_LEVELS, Journal, JournalError

__all__ = ["HeldJournal"]


class HeldJournal:
    """Wraps ``journal``; ``record_risk_event`` and ``heartbeat`` never raise for a journal that cannot write."""

    def __init__(self, journal: Journal, *, max_held: int = 10_000) -> None:
        self.journal = journal
        self.max_held = int(max_held)
        self.held: list[tuple[str, str, int, str]] = []
        self.dropped = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.journal, name)

    def flush_held(self) -> bool:
        """Write the held events; True when none is left."""
        try:
            if self.dropped:
                self.journal.record_risk_event("journal_dropped", f"{self.dropped} events could not be journaled "
                                               "(the disk was full) and were dropped", self.held[0][2] if self.held
                                               else 0, level="critical")
                self.dropped = 0
            while self.held:
                kind, detail, ts_ns, level = self.held[0]
                self.journal.record_risk_event(kind, detail, ts_ns, level=level)
                self.held.pop(0)
        except (JournalError, sqlite3.Error):
            return False
        return True

    def record_risk_event(self, kind: str, detail: str, ts_ns: int, level: str = "warning") -> int:
        if level not in RISK_LEVELS:
            raise ValueError(f"risk event level must be one of {'|'.join(RISK_LEVELS)}, not {level!r}")
        self.held.append((kind, detail, int(ts_ns), level))
        if len(self.held) > self.max_held:
            self.held.pop(0)
            self.dropped += 1
        return 0 if not self.flush_held() else self.journal.last_risk_event_id()

    def heartbeat(self, ts_ns: int, status: Any) -> None:
        if not self.flush_held():
            return
        try:
            self.journal.heartbeat(ts_ns, status)
        except (JournalError, sqlite3.Error):
            pass
