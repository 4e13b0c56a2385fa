"""Helpers of the IB adapter's tests: the front month, planted trades, polling waits, settings for a fake TWS."""

from __future__ import annotations

import time

import pytest
from fake_tws import FakeTWS

from live.venues.ib.contract import front_month
from live.venues.reconnect import Backoff
from live.venues.settings import VenueSettings

MONTH = front_month("ES", time.time_ns())
T0 = 1_709_562_600  # 2024-03-04 14:30:00 UTC, in seconds


def ticks(prices, t0=T0, step=1, spread=0.25):
    """Trades at ``prices`` one ``step`` s apart, each with a quote around it (bid = price, ask = price + spread)."""
    return [((t0 + i * step) * 1_000_000_000, p, 1, p, p + spread) for i, p in enumerate(prices)]


def wait_until(cond, timeout=30.0, what="condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return
        time.sleep(0.005)
    raise AssertionError(f"{what} not reached within {timeout:.0f} s")


def settings_for(server, client_id=17) -> VenueSettings:
    return VenueSettings(venue="ib", host="127.0.0.1", port=server.port, client_id=client_id, account="DU1234567",
                         timeout_s=5.0)


def fast_backoff() -> Backoff:
    return Backoff(base=0.05, cap=0.5, jitter=0.5)


@pytest.fixture
def tws():
    """A fake TWS on an ephemeral 127.0.0.1 port streaming the front-month ES contract (import it into a test
    module to use it: this directory has no conftest.py, whose bare name would shadow tests/conftest.py)."""
    server = FakeTWS(stream_month=MONTH)
    server.start()
    yield server
    server.stop()
