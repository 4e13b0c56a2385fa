"""The broker interface the live loop talks to. Small on purpose: the paper broker, Interactive
Brokers (ib_async) and Sierra Chart's DTC server each implement it."""

from __future__ import annotations

from abc import ABC, abstractmethod

from live.events import Bar, Fill, Order, Tick

__all__ = ["Broker", "BrokerError", "StoredFills"]


class BrokerError(RuntimeError):
    """A broker refused or could not carry out a request (message says which and why)."""


class Broker(ABC):
    """Market orders with an optional OCO bracket; cancel, flatten, positions, open orders, fills.

    Fills are pulled with :meth:`poll_fills` (events since the last call, in the order they
    happened), so a slow or crashed consumer never loses one: a broker keeps undelivered fills.
    ``submit`` is idempotent on ``order_id``.
    """

    @abstractmethod
    def submit(self, order: Order) -> None:
        """Send a market order (with its bracket, if any). Re-submitting a known order_id does nothing."""

    @abstractmethod
    def cancel_all(self) -> None:
        """Cancel every working order (pending market orders and brackets)."""

    def cancel(self, order_id: str) -> bool:
        """Cancel one working order: a pending market order by its id, or the bracket of entry ``order_id``
        (either leg's id ``ENTRY:stop`` / ``ENTRY:target`` cancels both: they are one OCO group). True when
        something was cancelled, False when nothing with that id is working."""
        raise BrokerError(f"{type(self).__name__} cannot cancel a single order")

    @property
    def ready(self) -> bool:
        """True when orders can be sent now (a venue broker: connected and reconciled)."""
        return True

    @abstractmethod
    def flatten(self, reason: str = "flatten") -> None:
        """Cancel everything and close every position at market."""

    @abstractmethod
    def positions(self) -> dict[str, int]:
        """Signed contracts held per symbol (symbols with 0 may be left out)."""

    @abstractmethod
    def open_orders(self) -> list[Order]:
        """Orders not yet filled or cancelled (bracket legs included, as exit orders)."""

    @abstractmethod
    def poll_fills(self) -> list[Fill]:
        """Fills since the last call, oldest first."""

    @abstractmethod
    def fills_since(self, seq: int) -> list[Fill]:
        """Every fill with ``Fill.seq > seq``, oldest first: a restarted trader catches up from the
        last fill it persisted (``poll_fills`` then continues after those)."""

    # market data a simulated broker fills against; real brokers ignore it
    def on_tick(self, tick: Tick) -> None:
        """A trade happened (tick-mode paper broker fills on trades)."""

    def on_bar(self, bar: Bar) -> None:
        """A bar closed (bar-mode paper broker fills with the backtest's bar model)."""

    def close(self) -> None:
        """Release connections and files."""


class StoredFills:
    """``poll_fills`` and ``fills_since`` of a broker whose fills are numbered in a book: the broker gives
    ``_stored_fills(seq)`` (every fill with ``seq`` above, oldest first) and keeps ``_cursor``, the last fill
    ``poll_fills`` delivered (or that a catch-up with ``fills_since`` went past)."""

    _cursor: int = 0

    def _stored_fills(self, seq: int) -> list[Fill]:
        raise NotImplementedError

    def poll_fills(self) -> list[Fill]:
        out = self._stored_fills(self._cursor)
        if out:
            self._cursor = out[-1].seq
        return out

    def fills_since(self, seq: int) -> list[Fill]:
        out = self._stored_fills(seq)
        self._cursor = max(self._cursor, seq, out[-1].seq if out else 0)
        return out
