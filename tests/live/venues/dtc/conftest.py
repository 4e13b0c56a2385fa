"""Fixtures of the DTC adapter tests: a fake DTC server per test (stopped after it)."""

from __future__ import annotations

import pytest
from fake_dtc import FakeDTCServer


@pytest.fixture
def fake_server():
    """``make(**kw)`` starts a FakeDTCServer(**kw) on an ephemeral 127.0.0.1 port; all are stopped at the end."""
    made: list[FakeDTCServer] = []

    def make(*a, **kw) -> FakeDTCServer:
        s = FakeDTCServer(*a, **kw)
        s.start()
        made.append(s)
        return s

    yield make
    for s in made:
        s.stop()
