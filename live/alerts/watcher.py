"""`AlertWatcher`: the alert rules run beside the trader or the collector, on a daemon thread of their own.

Every ``interval_s`` of wall time the thread opens the journal file with its own connection, runs
:func:`live.alerts.watch.check_journal` on it and submits what fires to an :class:`AlertSystem`, whose delivery
thread sends through apprise. The trading loop never calls into it and never waits on it: a slow or dead
notification endpoint only lengthens the delivery thread's queue (bounded; the oldest undelivered is dropped and
said on its row), and a rule or a journal read that raises is recorded once as an ``alert_watch_error`` risk
event and the next look goes on. Alerts are recorded in the journal's history even with no channel configured,
so `navale alerts` and the dashboard show them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .config import AlertConfig

__all__ = ["AlertWatcher", "start_watcher"]


class AlertWatcher:
    """Watch the journal at ``path`` with ``config``, notifying ``urls`` (apprise URLs or Channel objects)."""

    def __init__(self, path: str | Path, config: AlertConfig, urls: Sequence[Any] = (), *, interval_s: float = 5.0,
                 disk_path: str | Path | None = None, delivery_kw: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self.config = config
        self.urls = list(urls)
        self.interval_s = float(interval_s)
        self.disk_path = Path(disk_path) if disk_path is not None else self.path.parent
        self.delivery_kw = dict(delivery_kw or {})
        self.looks = 0
        self.submitted = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._system: Any = None
        self._journal: Any = None
        self._error_said = False

    def start(self) -> AlertWatcher:
        """Start the thread (a daemon: it never keeps the process alive)."""
        self._thread = threading.Thread(target=self._run, name="navale-alerts", daemon=True)
        self._thread.start()
        return self

    def _open(self) -> bool:
        from live.journal import Journal

        if self._journal is None:
            if not self.path.is_file():
                return False
            self._journal = Journal(self.path)
            from .delivery import AlertSystem

            self._system = AlertSystem(self._journal, self.urls, cooldown_s=self.config.cooldown_s,
                                       **self.delivery_kw)
        return True

    def look(self) -> int:
        """One evaluation now; the number of alerts submitted."""
        from .watch import check_journal

        if not self._open():
            return 0
        alerts = check_journal(self._journal, self.config, disk_path=self.disk_path)
        self.looks += 1
        n = 0
        for a in alerts:
            if self._system.submit(a) is not None:
                n += 1
        self.submitted += n
        return n

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.look()
            except Exception as exc:  # noqa: BLE001 - a rule or a read that fails never reaches the loop
                self.errors += 1
                if not self._error_said and self._journal is not None:
                    self._error_said = True
                    try:
                        self._journal.record_risk_event("alert_watch_error", f"{type(exc).__name__}: "
                                                        f"{' '.join(str(exc).split())}", time.time_ns())
                    except Exception:  # noqa: BLE001 - the journal itself may be what fails
                        pass

    def close(self, timeout: float = 5.0) -> None:
        """Look a last time, then stop the thread and the delivery (each waits at most ``timeout`` s;
        undelivered alerts stay in the history with delivered = 0)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
            if not self._thread.is_alive():  # one last look: what the end of a short run fired is recorded too
                try:
                    self.look()
                except Exception:  # noqa: BLE001
                    self.errors += 1
        if self._system is not None:
            try:
                self._system.close(timeout)
            except Exception:  # noqa: BLE001
                pass
        if self._journal is not None:
            try:
                self._journal.close()
            except Exception:  # noqa: BLE001
                pass


def start_watcher(journal_path: str | Path, mode: str, config_file: str | Path | None = None,
                  interval_s: float = 5.0) -> tuple[AlertWatcher, str]:
    """An `AlertWatcher` on ``journal_path`` with the thresholds of ``config_file`` (else the mode's defaults)
    and the configured channels, started; and a one-line description. Raises AlertConfigError /
    ChannelConfigError on a bad configuration."""
    from .channels import configured_urls

    cfg = AlertConfig.from_toml(config_file, mode=mode) if config_file else AlertConfig.for_mode(mode)
    urls, source = configured_urls()
    w = AlertWatcher(journal_path, cfg, urls, interval_s=interval_s).start()
    where = f"{len(urls)} channel(s) from {source}" if urls else "no channel configured: recorded in the history only"
    return w, f"alerts: every {interval_s:g} s, {where}"
