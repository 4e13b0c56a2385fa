"""What a venue adapter gives the live loop: a connection (its `Link`), and the `Feed` and/or `Broker` over it;
plus the checks of `navale doctor`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from live.brokers.base import Broker
from live.feeds.base import Feed
from live.venues.reconnect import Link

__all__ = ["Venue", "DoctorCheck"]


@dataclass(frozen=True, slots=True)
class DoctorCheck:
    """One line of `navale doctor`: what was checked, whether it passed, and in plain words what was found or
    what to do about it."""

    name: str
    ok: bool
    detail: str


class Venue(Protocol):
    """One connection to a venue, shared by its feed and its broker (either may be None)."""

    link: Link
    feed: Feed | None
    broker: Broker | None

    def close(self) -> None:
        """Unsubscribe, disconnect, stop the connection's thread."""
