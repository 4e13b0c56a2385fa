"""The link state machine: the allowed transitions, the single-flight reconnect guard under racing threads,
outages, listeners that fail; the back-off's cap and jitter."""

from __future__ import annotations

import random
import threading

import pytest

from live.venues.reconnect import Backoff, Link, LinkError, LinkState as S


def ready(link: Link) -> Link:
    for s in (S.CONNECTING, S.SYNCING, S.READY):
        link.to(s, "test")
    return link


def test_orders_need_ready_and_a_forbidden_transition_raises():
    link = Link("ib")
    with pytest.raises(LinkError, match="disconnected, not ready"):
        link.require_ready("order E1")
    with pytest.raises(LinkError, match="cannot go from disconnected to ready"):
        link.to(S.READY)
    ready(link).require_ready("order E1")
    assert link.to(S.READY) is False  # no change
    link.to(S.LOST, "socket dropped")
    with pytest.raises(LinkError, match="lost, not ready"):
        link.require_ready("order E2")
    with pytest.raises(LinkError, match="from lost to ready"):  # never READY without resubscribing/reconciling
        link.to(S.READY)


def test_one_reconnect_loop_however_many_error_callbacks_race():
    link = ready(Link("ib"))
    link.to(S.LOST, "1100")
    won = []
    barrier = threading.Barrier(16)

    def claim():
        barrier.wait()
        if link.begin_reconnect():
            won.append(threading.get_ident())

    threads = [threading.Thread(target=claim) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(won) == 1
    link.end_reconnect()
    assert link.begin_reconnect() is True


def test_an_outage_is_kept_from_lost_to_ready_with_its_reason():
    clock = iter(range(0, 10_000, 1000)).__next__
    link = ready(Link("dtc", clock=clock))  # 0, 1000, 2000
    link.to(S.LOST, "socket dropped")  # 3000
    link.to(S.CONNECTING)  # 4000
    link.to(S.LOST, "refused")  # 5000: still the same outage
    link.to(S.CONNECTING)
    link.to(S.SYNCING)
    link.to(S.READY)  # 8000
    assert [(o.lost_ns, o.ready_ns, o.reason) for o in link.outages] == [(3000, 8000, "socket dropped")]
    assert link.reconnects == 1 and link.ready_event.is_set()


def test_a_failing_listener_is_counted_never_raised():
    link = Link("ib")
    seen = []
    link.listeners += [lambda o, n, r: 1 / 0, lambda o, n, r: seen.append((o, n))]
    link.to(S.CONNECTING)
    assert seen == [(S.DISCONNECTED, S.CONNECTING)] and link.listener_errors == 1


def test_a_closed_link_takes_no_reconnect():
    link = ready(Link("ib"))
    link.to(S.CLOSED)
    assert link.begin_reconnect() is False
    with pytest.raises(LinkError):
        link.to(S.CONNECTING)


def test_backoff_doubles_up_to_its_cap_with_jitter_below_the_nominal_delay():
    b = Backoff(base=0.5, cap=8.0, jitter=0.5, rng=random.Random(1))
    delays = [b.next_delay() for _ in range(12)]
    nominal = [min(8.0, 0.5 * 2**k) for k in range(12)]
    assert all(n * 0.5 <= d <= n for d, n in zip(delays, nominal))
    assert max(delays) <= 8.0 and len(set(delays)) == len(delays)  # jittered: no two equal
    b.reset()
    assert b.next_delay() <= 0.5
