"""Which venue serves the feed and which the broker of a session (``navale paper --feed ib --broker ib``), with
one connection per venue shared by both, opened once and closed at the end."""

from __future__ import annotations

import dataclasses
import importlib
from pathlib import Path
from typing import Any, Callable

from live.brokers.base import BrokerError
from live.feeds.base import FeedError
from live.venues.settings import VenueSettings

__all__ = ["VENUES", "PAPER_BROKERS", "VENUE_FILE", "is_venue", "VenueSet", "write_venue_file", "flatten_at_venue"]

VENUES = ("ib", "dtc")
PAPER_BROKERS = ("bar", "tick", "paper")  # the paper broker's fill modes ("paper" is "bar")
VENUE_FILE = "venue.json"  # in the state dir: which venue broker a session trades through (no secret in it)


def is_venue(text: str) -> bool:
    """``text`` names a venue (``ib``, ``dtc``) rather than a file feed or the paper broker."""
    return str(text).strip().lower() in VENUES


class VenueSet:
    """The venues a session uses, each opened once (its feed and broker share the connection).

    ``settings_for(venue) -> VenueSettings`` gives each venue's settings (`live.venues.settings.load_settings`).
    """

    def __init__(self, settings_for: Callable[[str], VenueSettings], *, feed: str, broker: str,
                 connect_timeout_s: float = 20.0):
        self.settings_for = settings_for
        self.feed_venue = feed.strip().lower() if is_venue(feed) else None
        self.broker_venue = broker.strip().lower() if is_venue(broker) else None
        self.connect_timeout_s = connect_timeout_s
        self.open: dict[str, Any] = {}

    @property
    def any(self) -> bool:
        return self.feed_venue is not None or self.broker_venue is not None

    def venue(self, name: str, *, state_dir: Path, symbol: str, tick_size: float) -> Any:
        """The open venue ``name`` (connected on first use, wanting the feed and/or broker this session needs)."""
        if name not in self.open:
            module = _adapter(name)
            self.open[name] = module.open_venue(self.settings_for(name), state_dir=Path(state_dir),
                                                want_feed=self.feed_venue == name,
                                                want_broker=self.broker_venue == name, symbol=symbol,
                                                tick_size=tick_size, connect_timeout_s=self.connect_timeout_s)
        return self.open[name]

    def feed_factory(self, state_dir: Path, symbol: str, tick_size: float) -> Callable[..., Any] | None:
        """``(feed, resume=None, **kw) -> Feed`` for `live.session.open_session`, or None (a file feed)."""
        if self.feed_venue is None:
            return None
        name = self.feed_venue

        def make(_text: str, resume: Any = None, **_kw: Any) -> Any:
            v = self.venue(name, state_dir=state_dir, symbol=symbol, tick_size=tick_size)
            if v.feed is None:
                raise FeedError(f"{name}: the venue was opened without its feed")
            if resume is not None and hasattr(v.feed, "resume_from"):  # skip what the restarted loop already has
                v.feed.resume_from(resume)
            return v.feed  # a live stream: nothing older than the connection is replayed

        return make

    def broker_factory(self) -> Callable[[str, float, Path], Any] | None:
        """``(symbol, tick_size, state_dir) -> Broker`` for `live.session.open_session`, or None (the paper broker)."""
        if self.broker_venue is None:
            return None
        name = self.broker_venue

        def make(symbol: str, tick_size: float, state_dir: Path) -> Any:
            v = self.venue(name, state_dir=state_dir, symbol=symbol, tick_size=tick_size)
            if v.broker is None:
                raise BrokerError(f"{name}: the venue was opened without its broker")
            return v.broker

        return make

    def stats(self) -> dict[str, Any]:
        return {name: (v.stats() if hasattr(v, "stats") else {}) for name, v in self.open.items()}

    def close(self) -> None:
        """Close every venue opened (errors are swallowed: the session's state is already saved)."""
        for v in self.open.values():
            try:
                v.close()
            except Exception:  # noqa: BLE001 - closing a dead connection
                pass
        self.open.clear()


def _adapter(name: str) -> Any:
    try:
        return importlib.import_module(f"live.venues.{name}")
    except ImportError as exc:
        raise BrokerError(f"the {name} adapter cannot be imported ({exc}): reinstall with `make` (requirements.lock)")


def write_venue_file(state_dir: Path, broker: str, *, live_config: str | None, overrides: dict[str, Any]) -> Path:
    """Record which venue broker the session of ``state_dir`` uses and how its settings are found (the settings
    file path and the command-line overrides, never a secret), for `navale stop` to flatten there when the
    trader cannot."""
    import json

    from research.store.files import atomic_write_text

    doc = {"broker": broker, "live_config": None if live_config is None else str(Path(live_config).resolve()),
           "overrides": {k: v for k, v in overrides.items() if v is not None and k in ("host", "port", "client_id")}}
    return atomic_write_text(Path(state_dir) / VENUE_FILE, json.dumps(doc, indent=1))


def flatten_at_venue(state_dir: Path, reason: str = "emergency_stop") -> tuple[bool, str] | None:
    """Cancel everything and flatten at the venue broker the session of ``state_dir`` trades through (its
    ``venue.json``): ``(flat, detail)``, or None when the session uses the paper broker. A second connection is
    opened (IB: the next client id, since the trader may still hold its own)."""
    import json

    from live.venues.settings import SettingsError, load_settings

    path = Path(state_dir) / VENUE_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        name = str(doc["broker"])
    except (OSError, ValueError, KeyError, TypeError) as exc:
        return False, f"{path}: unreadable ({type(exc).__name__}: {exc}): flatten at the venue by hand"
    if name not in VENUES:
        return False, f"{path}: broker {name!r} is not a venue ({', '.join(VENUES)}): flatten at the venue by hand"
    live_config = doc.get("live_config")
    overrides = dict(doc.get("overrides") or {})
    try:
        settings = load_settings(name, live=live_config is not None, live_config=live_config, **overrides)
    except SettingsError as exc:
        return False, f"{name}: {exc}: nothing was flattened at the venue"
    if name == "ib":  # the trader may still hold its client id
        settings = dataclasses.replace(settings, client_id=settings.client_id + 1)
    venues = VenueSet(lambda _v: settings, feed="none", broker=name)
    try:
        v = venues.venue(name, state_dir=Path(state_dir), symbol=settings.symbol, tick_size=0.25)
        v.broker.flatten(reason)
        left = {s: q for s, q in v.broker.positions().items() if q}
        orders = v.broker.open_orders()
    except Exception as exc:  # noqa: BLE001 - reported to the operator, never hidden
        return False, f"{name}: the flatten at the venue failed: {' '.join(str(exc).split())}"
    finally:
        venues.close()
    if left or orders:
        return False, f"{name}: NOT flat after flatten: positions {left}, {len(orders)} open order(s)"
    return True, f"flat (navale stop cancelled and flattened at {name} {settings.host}:{settings.port})"
