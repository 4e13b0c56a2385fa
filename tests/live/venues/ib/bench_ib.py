"""Figures of the IB adapter against the fake TWS (prints them):

- tick -> order latency: from the fake server sending a trade to its receiving the placeOrder that trade caused,
  (a) through the adapter with a minimal driver (read the feed, submit a market order on every 10th trade; the\n  fake server in a process of its own), and
  (b) in a whole Trader session (the bar-closing trade -> the entry/exit the trade rules decided; the fake server\n  in this process);
- reconnect time after a socket drop: drop -> link READY again (contract qualified, subscriptions re-sent,
  executions and open orders read), with the default back-off, and with the back-off's wait taken out;
- the scripted fault scenarios: tests/live/venues/ib/test_ib_faults.py run, passed / total.

Run: ``PYTHONPATH=. python tests/live/venues/ib/bench_ib.py [--orders 500] [--drops 20]``
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parents[2])]  # the helpers here, tests/ (paper_runs)

from fake_tws import FakeTWS
from ib_helpers import MONTH, settings_for, ticks, wait_until

from live.events import Order
from live.venues.ib import open_venue
from live.venues.reconnect import Backoff


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def _show(name: str, us: list[float]) -> None:
    print(f"{name}: n={len(us)}  p50={_pct(us, 0.5):.0f} us  p99={_pct(us, 0.99):.0f} us  max={max(us):.0f} us")


def _serve(rows: list, holds: set[int], conn) -> None:
    """The fake TWS in a process of its own (so its thread does not share the client's GIL): its port out, then its
    (tick sent, placeOrder received) perf_counter stamps when asked. CLOCK_MONOTONIC: comparable across processes."""
    server = FakeTWS(rows, stream_month=MONTH, tick_delay_s=0.0025)
    server.start()
    server.hold_after(holds)
    conn.send(server.port)
    conn.recv()
    conn.send((dict(server.sent_tick_at), dict(server.order_at)))
    server.stop()


def driver_latency(n_orders: int, every: int = 10) -> list[float]:
    """Market orders (alternately buy and sell) on every ``every``-th trade, the stream held after each one; 2.5 ms
    between trades (about 40 orders a second: under ib_async's pacing of 45 requests a second, as IB's limit of 50,
    which would otherwise queue them)."""
    import multiprocessing as mp

    n = n_orders * every + 2
    rows = ticks([5000.0 + 0.25 * (i % 8) for i in range(n)])
    trig = {i: f"B:{i}" for i in range(every - 1, n - 1, every)}
    here, there = mp.Pipe()
    proc = mp.get_context("fork").Process(target=_serve, args=(rows, set(trig), there), daemon=True)
    proc.start()
    port = here.recv()
    with tempfile.TemporaryDirectory() as d:
        s = settings_for(type("S", (), {"port": port})())
        v = open_venue(s, state_dir=Path(d), want_feed=True, want_broker=True, connect_timeout_s=10)
        try:
            seen, side = 0, 1
            while seen < n - 1:
                t = v.feed.next_record()
                if t is None:
                    time.sleep(0.0002)
                    continue
                if seen in trig:
                    v.broker.submit(Order(trig[seen], "ES", side, 1, "exit" if side < 0 else "entry"))
                    side = -side
                seen += 1
            time.sleep(0.5)
            here.send("report")
            sent, got = here.recv()
        finally:
            v.close()
            proc.join(10)
    return [(got[r] - sent[i]) * 1e6 for i, r in trig.items() if r in got]


def trader_latency() -> list[float]:
    """The parity session (2 synthetic days): each order's trade -> its placeOrder at the fake server."""
    from ib_runs import UntilFeed, as_ticks, make_trader, reference_run, synthetic_rows

    rows = synthetic_rows(days=2)
    with tempfile.TemporaryDirectory() as d:
        _, _, holds = reference_run(as_ticks(rows, MONTH), Path(d) / "paper")
        server = FakeTWS(rows, stream_month=MONTH)
        server.start()
        server.hold_after(holds)
        v = open_venue(settings_for(server), state_dir=Path(d) / "ib", want_feed=True, want_broker=True,
                       connect_timeout_s=10)
        try:
            tr = make_trader(UntilFeed(v.feed, len(rows)), v.broker, Path(d) / "ib")
            try:
                tr.run()
            finally:
                tr.journal.close()
            refs = [o.ref for o in sorted(server.orders.values(), key=lambda o: o.order_id)
                    if not o.ref.endswith((":stop", ":target"))]
            return [(server.order_at[r] - server.sent_tick_at[i]) * 1e6 for i, r in zip(holds, refs)
                    if i in server.sent_tick_at]
        finally:
            v.close()
            server.stop()


def reconnect_times(drops: int) -> tuple[list[float], list[float]]:
    """(drop -> READY in ms, the same less the back-off's wait) over ``drops`` drops, default back-off."""
    server = FakeTWS(ticks([5000.0]), stream_month=MONTH)
    server.start()
    total, net = [], []
    with tempfile.TemporaryDirectory() as d:
        bo = Backoff()
        v = open_venue(settings_for(server), state_dir=Path(d), want_feed=True, want_broker=True, connect_timeout_s=10,
                       backoff=bo)
        try:
            for k in range(drops):
                delays: list[float] = []
                orig = bo.next_delay

                def counted(orig=orig, delays=delays) -> float:
                    delays.append(orig())
                    return delays[-1]

                bo.next_delay = counted  # type: ignore[method-assign]
                t0 = time.perf_counter()
                server.drop()
                wait_until(lambda k=k: v.link.reconnects == k + 1 and v.link.ready, 60, "reconnect")
                dt = time.perf_counter() - t0
                bo.next_delay = orig  # type: ignore[method-assign]
                total.append(dt * 1e3)
                net.append((dt - sum(delays)) * 1e3)
        finally:
            v.close()
            server.stop()
    return total, net


def fault_scenarios() -> tuple[int, int]:
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(HERE / "test_ib_faults.py")],
                       capture_output=True, text=True, cwd=HERE.parents[3], check=False)
    last = r.stdout.strip().splitlines()[-1]
    passed = int(last.split(" passed")[0].split()[-1]) if " passed" in last else 0
    failed = int(last.split(" failed")[0].split()[-1]) if " failed" in last else 0
    return passed, passed + failed


def main() -> None:
    import logging

    logging.disable(logging.WARNING)  # the drops and reconnects are expected here
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--orders", type=int, default=500)
    ap.add_argument("--drops", type=int, default=20)
    a = ap.parse_args()
    _show("tick -> placeOrder, adapter + driver", driver_latency(a.orders))
    _show("tick -> placeOrder, Trader session (bar close -> order)", trader_latency())
    total, net = reconnect_times(a.drops)
    print(f"reconnect after a drop: n={len(total)}  p50={statistics.median(total):.0f} ms  max={max(total):.0f} ms "
          f"(default back-off: first wait 0.25-0.5 s); without the back-off's wait p50={statistics.median(net):.1f} ms "
          f"max={max(net):.1f} ms")
    p, t = fault_scenarios()
    print(f"scripted fault scenarios (test_ib_faults.py): {p}/{t} passed")


if __name__ == "__main__":
    main()
