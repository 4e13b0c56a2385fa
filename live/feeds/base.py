"""The feed interface: a source of trades (or of closed bars, for a bar-file replay) in time order."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Iterator

from live.events import Bar, Tick

__all__ = ["Feed", "FeedError"]


class FeedError(RuntimeError):
    """A feed cannot go on (message names the source and why)."""


class Feed(ABC):
    """Yields `Tick` (trade feeds) or `Bar` (bar-file replays) in time order.

    ``resume_token()`` is a small JSON-able value (a byte offset, a record count, a time) that,
    given back to the feed's constructor as ``resume=``, restarts it right after the last record
    it yielded; the live loop persists it at every bar close. ``None`` from :meth:`next_record`
    means nothing new yet (a live source); :meth:`exhausted` is True when a replay has ended.
    """

    symbol: str = ""
    yields_bars: bool = False
    live: bool = False  # written in real time: a silence while Globex is open is a feed halt (see `last_record_wall`)

    @abstractmethod
    def next_record(self) -> Tick | Bar | None:
        """The next record, or None when there is none yet (never blocks for long)."""

    def exhausted(self) -> bool:
        """True when no record will ever come (a replay has ended)."""
        return False

    @abstractmethod
    def resume_token(self) -> object:
        """Where to resume after the last record yielded (JSON-able)."""

    def __iter__(self) -> Iterator[Tick | Bar]:
        while True:
            rec = self.next_record()
            if rec is None:
                if self.exhausted():
                    return
                continue
            yield rec

    def close(self) -> None:
        """Release files and connections."""
