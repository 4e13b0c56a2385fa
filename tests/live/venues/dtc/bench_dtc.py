"""Figures of the DTC adapter against the fake DTC server (run: ``PYTHONPATH=. python tests/live/venues/dtc/bench_dtc.py``
from the repository root; ``--quick`` for a short run).

- tick -> order: from the fake server writing a trade to it receiving the market order a driver sent on seeing that
  trade (socket, decoding, the feed's deque, the driver's poll every 0.1 ms, the broker's hand-off to the loop thread,
  the socket back): p50 / p99 / max;
- fill -> OCO: from the fake writing an entry's fill to it receiving the OCO bracket the broker sends from it;
- reconnect: from a dropped socket to the link READY again (resubscribed and reconciled), and to the first trade
  after it, with the default back-off (0.2 s base, jitter);
- the scripted fault scenarios of the test suite, run with pytest: passed / total.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]

from dtc_helpers import make_ticks, settings_for, take, wait_for
from fake_dtc import FakeDTCServer

from live.events import Bracket, Order
from live.venues.dtc.venue import DTCVenue

POLL_S = 0.0001  # the driver's poll of feed.next_record() when empty (a trader polling every 2 ms adds ~1 ms)
FAULT_TESTS = [
    "test_dtc_broker.py::test_drop_mid_trade_reconnects_resubscribes_and_sends_nothing_twice",
    "test_dtc_broker.py::test_fill_during_the_outage_is_recovered_once",
    "test_dtc_broker.py::test_entry_filled_during_the_outage_gets_its_bracket_after_the_reconnect",
    "test_dtc_broker.py::test_restart_with_an_open_bracket_reconciles_without_a_second_one",
    "test_dtc_broker.py::test_position_mismatch_after_a_reconnect_is_the_servers",
    "test_dtc_broker.py::test_orders_are_held_while_the_link_is_down_and_sent_when_ready",
    "test_dtc_broker.py::test_a_stale_held_entry_expires_instead_of_going_out",
    "test_dtc_link.py::test_logon_rejected_at_start_is_one_line",
    "test_dtc_link.py::test_nothing_listening_is_one_line_and_does_not_hang",
    "test_dtc_link.py::test_trading_disabled_says_what_to_enable",
    "test_dtc_link.py::test_heartbeat_timeout_is_a_dead_link_then_reconnects",
    "test_dtc_link.py::test_silent_server_then_back",
    "test_dtc_link.py::test_logon_refused_on_reconnect_retries_then_fatal_stops",
    "test_dtc_feed.py::test_drop_resubscribes_and_neither_duplicates_nor_invents",
    "test_dtc_feed.py::test_trades_missed_during_an_outage_are_not_invented",
    "test_dtc_feed.py::test_silent_feed_last_record_wall_stops_moving",
    "test_dtc_framing.py::test_a_line_of_garbage_on_the_socket_loses_nothing",
    "test_dtc_framing.py::test_through_a_socket_split_and_coalesced",
    "test_dtc_framing.py::test_a_malformed_trade_is_skipped_in_one_line_and_the_link_survives",
    "test_dtc_link.py::test_server_logoff_reconnects_unless_told_not_to",
    "test_dtc_broker.py::test_order_whose_ack_was_lost_is_matched_to_its_fill_or_reported_never_resent",
    "test_dtc_broker.py::test_flatten_while_the_link_is_down_is_held_and_cancels_the_bracket_first",
    "test_dtc_broker.py::test_exit_sent_before_the_ocos_acknowledgement_waits_for_it",
    "test_dtc_trader.py::test_a_trader_session_through_dtc_equals_the_paper_brokers[3]",
    "test_dtc_trader_restart.py::test_a_trader_restarted_with_an_open_bracket_reconciles_and_ends_the_same",
    "test_dtc_trader_restart.py::test_a_position_changed_while_the_trader_was_down_stops_the_restart",
]


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def ms(xs: list[float]) -> str:
    return f"p50 {pct(xs, .5) * 1e3:.2f} ms, p99 {pct(xs, .99) * 1e3:.2f} ms, max {max(xs) * 1e3:.2f} ms (n={len(xs)})"


def open_venue(fake: FakeDTCServer, state: Path, **kw) -> DTCVenue:
    v = DTCVenue(settings_for(fake.port), state_dir=state, want_feed=True, want_broker=True, dtc_sym=fake.symbol,
                 heartbeat_s=5, **kw)
    v.start()
    return v


def tick_to_order(n: int, state: Path) -> tuple[list[float], list[float]]:
    """Market orders sent on seeing a trade (entry, exit, entry...): tick -> order; then bracketed entries: fill -> OCO."""
    ticks = make_ticks(n + 1, seed=5)
    fake = FakeDTCServer(ticks, slippage_ticks=0)
    fake.hold_after = {i: 1 for i in range(n)}
    fake.start()
    v = open_venue(fake, state / "a")
    lat = []
    try:
        for i in range(n):
            take(v.feed, 1, poll_s=POLL_S)
            pos = v.broker.positions().get("ES", 0)
            side = 1 if pos == 0 else -pos
            purpose = "entry" if pos == 0 else "exit"
            v.broker.submit(Order(order_id=f"B:{purpose[0]}:{i}", symbol="ES", side=side, quantity=1, purpose=purpose))
        wait_for(lambda: len(fake.order_at) == n, what="all orders at the server")
        lat = [fake.order_at[i][0] - fake.sent_at[i] for i in range(n)]
    finally:
        v.close()
        fake.stop()
    # bracketed entries every 3 trades: entry after trade i, its fill with trade i+1 -> OCO; exit after trade i+1
    m = max(30, n // 3)
    ticks = make_ticks(3 * m + 2, seed=6)
    fake = FakeDTCServer(ticks, slippage_ticks=0)
    fake.hold_after = {}
    for j in range(m):
        fake.hold_after[3 * j] = 1
        fake.hold_after[3 * j + 1] = 2
    fake.start()
    v = open_venue(fake, state / "b")
    oco = []
    try:
        for i in range(3 * m):
            (_t,) = take(v.feed, 1, poll_s=POLL_S)
            pos = v.broker.positions().get("ES", 0)
            if i % 3 == 0 and pos == 0:
                v.broker.submit(Order(order_id=f"B:E:{i}", symbol="ES", side=1, quantity=1, purpose="entry",
                                      bracket=Bracket(40, 40)))
            elif i % 3 == 1 and pos:
                v.broker.submit(Order(order_id=f"B:X:{i}", symbol="ES", side=-1, quantity=1, purpose="exit"))
        wait_for(lambda: sum(1 for _, x in fake.order_at if x["Type"] == 201) == m, what="every OCO")
        k = 0
        for at, x in fake.order_at:
            if x["Type"] == 201:
                oco.append(at - fake.sent_at[3 * k + 1])
                k += 1
    finally:
        v.close()
        fake.stop()
    return lat, oco


def reconnects(n: int, state: Path) -> tuple[list[float], list[float]]:
    ticks = make_ticks(n * 200 + 200)
    fake = FakeDTCServer(ticks, interval_s=0.002)
    fake.start()
    v = open_venue(fake, state / "c")
    ready, flow = [], []
    try:
        take(v.feed, 3)
        for k in range(n):
            before = v.link.reconnects
            t0 = time.perf_counter()
            fake.drop()
            wait_for(lambda b=before: v.link.reconnects > b, what="reconnected")
            ready.append(v.link.outages[-1].seconds)
            while v.feed.next_record() is not None:
                pass
            seen = v.feed.received
            wait_for(lambda s=seen: v.feed.received > s, what="trades again")
            flow.append(time.perf_counter() - t0)
    finally:
        v.close()
        fake.stop()
    return ready, flow


def fault_scenarios() -> tuple[int, int]:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                        *[str(HERE / t) for t in FAULT_TESTS]], capture_output=True, text=True, check=False, cwd=HERE.parents[3])
    tail = r.stdout.strip().splitlines()[-1] if r.stdout.strip() else r.stderr
    passed = int(tail.split(" passed")[0].split()[-1]) if " passed" in tail else 0
    failed = int(tail.split(" failed")[0].split()[-1]) if " failed" in tail else 0
    return passed, passed + failed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    a = ap.parse_args()
    n = 100 if a.quick else 1000
    with tempfile.TemporaryDirectory() as d:
        lat, oco = tick_to_order(n, Path(d))
        print(f"tick -> order : {ms(lat)}")
        print(f"fill -> OCO   : {ms(oco)}")
        ready, flow = reconnects(5 if a.quick else 20, Path(d))
        print(f"reconnect     : drop -> READY {ms(ready)}; drop -> trades again {ms(flow)}")
    p, t = fault_scenarios()
    print(f"fault scenarios: {p}/{t} passed (pytest cases of {len(FAULT_TESTS)} scripted fault tests)")


if __name__ == "__main__":
    main()
