"""``AlertSystem``: what the rules raise goes to the journal's alert history and out through apprise.

- **Dedup**: an alert whose ``dedup_key`` is already in the history (one risk event seen twice) is dropped.
- **Cooldown** per kind (METHOD.md: 5 minutes): the same kind again inside it is counted on the first alert's
  row (``repeats``), not notified.
- **Delivery** on one background thread from a bounded queue, with retry and exponential backoff. ``submit``
  never waits for the network: it writes the history row (a local SQLite write, as the trader's risk events)
  and queues; a full queue drops its OLDEST undelivered notification and records that on its row.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from typing import Any

from .rules import Alert

__all__ = ["AlertSystem"]

DEFAULT_QUEUE = 256


def _iso(ns: int) -> str:
    return datetime.fromtimestamp(ns / 1e9, tz=timezone.utc).isoformat(timespec="seconds")


def message(alert: Alert, alert_id: int) -> tuple[str, str]:
    """The notification's (title, body)."""
    title = f"navale {alert.severity.upper()}: {alert.kind}"
    body = alert.detail
    if alert.value is not None:
        body += f"\nvalue {alert.value:g}" + ("" if alert.threshold is None else f", threshold {alert.threshold:g}")
    body += f"\nat {_iso(alert.ts_ns)}" + (f" (alert #{alert_id}; navale alerts --ack {alert_id})" if alert_id else "")
    return title, body


class AlertSystem:
    """Alerts of one journal (a :class:`live.journal.Journal`) to the apprise ``urls`` (or :class:`Channel`
    objects). ``clock`` (wall ns) drives the cooldown; ``retries`` attempts per notification, waiting
    ``backoff_s`` doubling up to ``backoff_max_s`` between them. Call :meth:`close` at the end."""

    def __init__(self, journal: Any, urls: Sequence[Any] = (), cooldown_s: float = 300.0, *,
                 clock: Callable[[], int] = time.time_ns, queue_size: int = DEFAULT_QUEUE, retries: int = 5,
                 backoff_s: float = 1.0, backoff_max_s: float = 60.0) -> None:
        from .channels import Channel

        if queue_size < 1 or retries < 1 or cooldown_s < 0 or backoff_s < 0:
            raise ValueError("queue_size and retries must be >= 1, cooldown_s and backoff_s >= 0")
        self.journal = journal
        self.channels = [u if isinstance(u, Channel) else Channel(u) for u in urls]
        self.cooldown_ns = int(cooldown_s * 1e9)
        self.clock = clock
        self.queue_size, self.retries = int(queue_size), int(retries)
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self.stats = {"submitted": 0, "recorded": 0, "deduplicated": 0, "cooled_down": 0, "dropped": 0,
                      "delivered": 0, "failed": 0, "journal_errors": 0}
        self._submit_lock = threading.Lock()
        self._keys: set[str] = set()
        now = clock()
        # the cooldown survives a restart: the last alert of each kind still inside it
        self._last: dict[str, tuple[int, int]] = {
            a["kind"]: (a["id"], a["wall_ns"]) for a in self._note(journal.alerts, since_ns=now - self.cooldown_ns) or []}
        self._queue: collections.deque[tuple[int, Alert]] = collections.deque()
        self._cv = threading.Condition()
        self._closing = False
        self._abort = threading.Event()
        self._busy = False
        self._thread = threading.Thread(target=self._run, name="navale-alerts", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ submitting
    def submit(self, alert: Alert) -> int | None:
        """Record ``alert`` and queue its notification; its history id, or None when deduplicated, inside its
        kind's cooldown, or when the journal could not take the row (the notification still goes out). Never
        waits for a channel, never raises for a journal error."""
        with self._submit_lock:
            self.stats["submitted"] += 1
            key = alert.dedup_key
            if key is not None and (key in self._keys or self._seen_key(key)):
                self._keys.add(key)
                self.stats["deduplicated"] += 1
                return None
            if key is not None:
                self._keys.add(key)
            now = self.clock()
            last = self._last.get(alert.kind)
            if last is not None and now - last[1] < self.cooldown_ns:
                self.stats["cooled_down"] += 1
                if last[0]:
                    self._note(self.journal.count_alert_repeat, last[0])
                return None
            alert_id = self._note(self.journal.record_alert, alert.kind, alert.severity, alert.value,
                                  alert.threshold, alert.detail, alert.ts_ns, key) or 0
            self.stats["recorded"] += bool(alert_id)
            self._last[alert.kind] = (alert_id, now)
            if not self.channels:
                self._delivery(alert_id, False, "no alert channel configured", 0)
                return alert_id or None
            dropped = None
            with self._cv:
                if self._closing:
                    dropped = (alert_id, "not delivered: the alert system was closed")
                else:
                    if len(self._queue) >= self.queue_size:
                        old = self._queue.popleft()[0]
                        dropped = (old, f"dropped: the delivery queue was full ({self.queue_size}) behind a slow "
                                        "channel")
                    self._queue.append((alert_id, alert))
                    self._cv.notify()
            if dropped is not None:
                self.stats["dropped"] += 1
                self._delivery(dropped[0], False, dropped[1], 0)
            return alert_id or None

    def _seen_key(self, key: str) -> bool:
        return bool(self._note(self.journal.alerts, dedup_key=key, limit=1))

    def _note(self, write: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """A journal call whose failure (a locked or full disk) is counted, never raised: alerts never stop
        the caller."""
        try:
            return write(*args, **kwargs)
        except Exception:  # noqa: BLE001 - counted in stats["journal_errors"]
            self.stats["journal_errors"] += 1
            return None

    def _delivery(self, alert_id: int, delivered: bool, error: str | None, attempts: int,
                  delivered_ns: int | None = None) -> None:
        if alert_id:  # 0: the row could not be written
            self._note(self.journal.record_alert_delivery, alert_id, delivered, error, attempts, delivered_ns)

    def submit_all(self, alerts: Sequence[Alert]) -> list[int]:
        """:meth:`submit` each; the ids of those recorded."""
        return [i for i in (self.submit(a) for a in alerts) if i is not None]

    def pending(self) -> int:
        """Notifications queued or being sent."""
        with self._cv:
            return len(self._queue) + int(self._busy)

    # ------------------------------------------------------------------ the delivery thread
    def _run(self) -> None:
        while True:
            with self._cv:
                while not self._queue and not self._closing:
                    self._cv.wait()
                if not self._queue or self._abort.is_set():
                    return
                alert_id, alert = self._queue.popleft()
                self._busy = True
            try:
                self._deliver(alert_id, alert)
            except Exception:  # noqa: BLE001 - a channel plugin failing must not end delivery
                self.stats["failed"] += 1
            finally:
                with self._cv:
                    self._busy = False
                    self._cv.notify_all()

    def _deliver(self, alert_id: int, alert: Alert) -> None:
        title, body = message(alert, alert_id)
        pending = list(self.channels)
        attempts = 0
        while True:
            errors = {}
            for ch in pending:
                err = ch.send(title, body, alert.severity)
                if err is not None:
                    errors[ch] = err
            attempts += 1
            pending = [ch for ch in pending if ch in errors]
            if not pending:
                self.stats["delivered"] += 1
                self._delivery(alert_id, True, None, attempts, time.time_ns())
                return
            error = "; ".join(f"{ch.name}: {e}" for ch, e in errors.items())
            final = attempts >= self.retries or self._abort.is_set()
            self._delivery(alert_id, False, error if final else f"retrying: {error}", attempts)
            if final:
                self.stats["failed"] += 1
                return
            if self._abort.wait(min(self.backoff_s * 2 ** (attempts - 1), self.backoff_max_s)):
                self.stats["failed"] += 1
                self._delivery(alert_id, False, f"not delivered before close: {error}", attempts)
                return

    # ------------------------------------------------------------------ closing
    def close(self, timeout: float = 5.0) -> bool:
        """Deliver what is queued for up to ``timeout`` seconds, then give up on the rest (recorded as not
        delivered). True when everything queued went out or failed for good within the timeout."""
        with self._cv:
            self._closing = True
            self._cv.notify_all()
        self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            self._abort.set()  # a retry waiting its backoff stops; a call stuck in a channel is left to its timeout
            with self._cv:
                left, self._queue = list(self._queue), collections.deque()
            for alert_id, _ in left:
                self._delivery(alert_id, False, "not delivered before close", 0)
        return done

    def __enter__(self) -> AlertSystem:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
