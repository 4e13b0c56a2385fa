"""The link state machine and the back-off every venue connection uses.

A venue link moves through explicit states; a transition the table does not allow raises, so a bug shows
instead of a second reconnect loop or an order sent on a dead socket. Only READY allows orders.

    DISCONNECTED -> CONNECTING -> SYNCING -> READY
    READY/SYNCING -> LOST (socket dropped, or the venue says it lost its own upstream: IB 1100)
    LOST -> CONNECTING (the one reconnect loop) -> SYNCING (resubscribe, recover fills, reconcile) -> READY
    any -> CLOSED (shutdown); CONNECTING -> FAILED (a fatal refusal: bad credentials, client id in use for good)

``begin_reconnect`` is the single-flight guard: it returns False when a reconnect is already running, so two
error callbacks racing each other never start two loops. Outages (LOST -> READY) are kept as
``(lost_wall_ns, ready_wall_ns, reason)`` for the feed's gap records.
"""

from __future__ import annotations

import enum
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

__all__ = ["LinkState", "Link", "LinkError", "Backoff", "Outage"]


class LinkState(enum.Enum):
    DISCONNECTED = "disconnected"
    CONNECTING = "connecting"
    SYNCING = "syncing"
    READY = "ready"
    LOST = "lost"
    FAILED = "failed"
    CLOSED = "closed"


S = LinkState
_ALLOWED: dict[LinkState, frozenset[LinkState]] = {
    S.DISCONNECTED: frozenset({S.CONNECTING, S.CLOSED}),
    S.CONNECTING: frozenset({S.SYNCING, S.LOST, S.FAILED, S.CLOSED}),
    S.SYNCING: frozenset({S.READY, S.LOST, S.FAILED, S.CLOSED}),
    S.READY: frozenset({S.LOST, S.SYNCING, S.CLOSED}),
    S.LOST: frozenset({S.CONNECTING, S.FAILED, S.CLOSED}),
    S.FAILED: frozenset({S.CLOSED, S.CONNECTING}),
    S.CLOSED: frozenset(),
}


class LinkError(RuntimeError):
    """A transition the state machine does not allow (a bug in the venue adapter), or an order on a link not READY."""


@dataclass(frozen=True, slots=True)
class Outage:
    """A span without a usable link: wall-clock ns from LOST to READY again, and why it was lost."""

    lost_ns: int
    ready_ns: int
    reason: str

    @property
    def seconds(self) -> float:
        return (self.ready_ns - self.lost_ns) / 1e9


@dataclass
class Backoff:
    """Capped exponential delays with jitter: ``base * 2**n`` up to ``cap`` seconds, each multiplied by a
    random factor in ``[1 - jitter, 1]`` (so a fleet of clients does not reconnect in step)."""

    base: float = 0.5
    cap: float = 30.0
    jitter: float = 0.5
    rng: random.Random = field(default_factory=random.Random)
    attempts: int = 0

    def next_delay(self) -> float:
        """The wait before the next attempt (and count it)."""
        d = min(self.cap, self.base * (2.0 ** min(self.attempts, 30)))
        self.attempts += 1
        return d * (1.0 - self.jitter * self.rng.random())

    def reset(self) -> None:
        self.attempts = 0


class Link:
    """Thread-safe link state with a transition table, a single-flight reconnect guard and an outage log.

    ``on_change(old, new, reason)`` listeners run after the lock is released (they may journal or alert; an
    exception in one is swallowed and counted, never propagated into the connection's thread)."""

    def __init__(self, name: str, clock: Callable[[], int] = time.time_ns):
        self.name = name
        self._clock = clock
        self._lock = threading.Lock()
        self._state = S.DISCONNECTED
        self._reconnecting = False
        self._lost_at: tuple[int, str] | None = None
        self.outages: list[Outage] = []
        self.history: list[tuple[int, LinkState, str]] = []  # (wall ns, new state, reason)
        self.listeners: list[Callable[[LinkState, LinkState, str], None]] = []
        self.listener_errors = 0
        self.reconnects = 0
        self.ready_event = threading.Event()

    @property
    def state(self) -> LinkState:
        return self._state

    @property
    def ready(self) -> bool:
        return self._state is S.READY

    def to(self, new: LinkState, reason: str = "") -> bool:
        """Move to ``new``; False (no change) when already there; LinkError when the table forbids it."""
        with self._lock:
            old = self._state
            if new is old:
                return False
            if new not in _ALLOWED[old]:
                raise LinkError(f"{self.name}: link cannot go from {old.value} to {new.value} ({reason})")
            self._state = new
            now = self._clock()
            self.history.append((now, new, reason))
            if new is S.LOST and self._lost_at is None:
                self._lost_at = (now, reason)
            if new is S.READY:
                self.ready_event.set()
                if self._lost_at is not None:
                    self.outages.append(Outage(self._lost_at[0], now, self._lost_at[1]))
                    self._lost_at = None
                    self.reconnects += 1
            else:
                self.ready_event.clear()
            listeners = list(self.listeners)
        for fn in listeners:
            try:
                fn(old, new, reason)
            except Exception:  # a listener (journal, alert) never breaks the connection's thread
                self.listener_errors += 1
        return True

    def begin_reconnect(self) -> bool:
        """Claim the one reconnect loop: False when one already runs (or the link is closed)."""
        with self._lock:
            if self._reconnecting or self._state is S.CLOSED:
                return False
            self._reconnecting = True
            return True

    def end_reconnect(self) -> None:
        with self._lock:
            self._reconnecting = False

    @property
    def reconnecting(self) -> bool:
        return self._reconnecting

    def require_ready(self, what: str) -> None:
        """Raise LinkError unless READY (no order goes out on a link that is down or still reconciling)."""
        if self._state is not S.READY:
            raise LinkError(f"{self.name}: {what} refused: the link is {self._state.value}, not ready")
