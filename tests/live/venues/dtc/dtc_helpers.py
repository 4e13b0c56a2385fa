"""Helpers of the DTC adapter tests: synthetic trades, a venue connected to the fake server, waiting by polling."""

from __future__ import annotations

import random
import time
from pathlib import Path

from live.events import Tick
from live.venues.dtc.venue import DTCVenue
from live.venues.reconnect import Backoff
from live.venues.settings import VenueSettings

T0 = 1_796_000_400_000_000_000  # 2026-11-30 (a Monday) 22:20 UTC, in ns; trades are 100 ms apart
STEP = 100_000_000


def make_ticks(n: int, seed: int = 7, start: float = 6000.0) -> list[Tick]:
    """``n`` trades of a random walk on the 0.25 grid, millisecond times, with a side and a one-tick quote."""
    rng = random.Random(seed)
    px, out = round(start / 0.25), []
    for k in range(n):
        px += rng.choice((-1, 0, 0, 1))
        side = rng.choice((1, -1))
        p = px * 0.25
        bid, ask = (p - 0.25, p) if side > 0 else (p, p + 0.25)
        out.append(Tick(ts_ns=T0 + k * STEP, price=p, size=rng.randint(1, 5), side=side, contract="ESZ26",
                        bid=bid, ask=ask))
    return out


def path_ticks(prices: list[float], side: int = 1) -> list[Tick]:
    """Trades at these prices, 100 ms apart, size 1, all on one side."""
    return [Tick(ts_ns=T0 + k * STEP, price=p, size=1, side=side, contract="ESZ26", bid=p - 0.25, ask=p)
            for k, p in enumerate(prices)]


def settings_for(port: int, **kw) -> VenueSettings:
    return VenueSettings(venue="dtc", host="127.0.0.1", port=port, username="trader", password="pw",
                         account=kw.pop("account", "Sim1"), timeout_s=kw.pop("timeout_s", 5.0), **kw)


def venue(fake, state_dir: Path | None, *, feed: bool = True, broker: bool = True, heartbeat_s: int = 1,
          start: bool = True, gate: bool = False, **kw) -> DTCVenue:
    """A DTCVenue on the fake server (fast heartbeats and back-off), started unless ``start=False``. ``gate``: the
    fake streams only while this venue's broker is ready (a comparison with the paper broker, which is always
    ready: a trade that closes a bar while the broker resyncs after a logon would make the trader skip an entry)."""
    v = DTCVenue(settings_for(fake.port), state_dir=state_dir, want_feed=feed, want_broker=broker,
                 dtc_sym=kw.pop("dtc_sym", fake.symbol), heartbeat_s=heartbeat_s, connect_timeout_s=20.0,
                 backoff=Backoff(base=0.05, cap=0.5, jitter=0.5), **kw)
    if gate:
        fake.gate = lambda: v.broker.ready
    if start:
        v.start()
    return v


def diagnose(fake, v: DTCVenue):
    """A callable describing the fake's stream and the venue's feed, link and broker (a stalled run's message)."""
    return lambda: (f"{fake.describe()}; feed {v.feed.stats()}; link {v.link.state.value}, "
                    f"broker ready {v.broker.ready}, events {v.feed.events}")


def wait_for(pred, timeout: float = 30.0, what: str = "condition") -> None:
    """Poll ``pred()`` until it is true; AssertionError naming ``what`` after ``timeout`` s."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return
        time.sleep(0.005)
    raise AssertionError(f"{what} not reached within {timeout} s")


def take(feed, n: int, timeout: float = 30.0, poll_s: float = 0.002) -> list[Tick]:
    """The next ``n`` ticks from ``feed`` (polling ``next_record``, sleeping ``poll_s`` when there is none)."""
    out: list[Tick] = []
    end = time.monotonic() + timeout
    while len(out) < n and time.monotonic() < end:
        r = feed.next_record()
        if r is None:
            time.sleep(poll_s)
        else:
            out.append(r)
    assert len(out) == n, f"{len(out)} ticks of {n} within {timeout} s"
    return out
