"""Helpers of the live/ tests: valid trade-snapshot rows, and real processes that write and read a journal
(``python tests/live_helpers.py write|read|trader|hung ...``) for the concurrency, crash and stop tests.

``trader`` is the stop protocol the live loop implements, reduced to it: pid file, heartbeats, and on a
halt (signal or HALT file) an ``emergency_stop`` / ``flat`` risk event, then exit.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

T0 = 1_710_163_800_000_000_000  # 2024-03-11 13:30 UTC (09:30 ET), a bar start
BAR = 60_000_000_000


def trade_row(i: int, run_id: str = "paper-test", nulls: bool = False) -> dict:
    """A valid snapshot record (research.store.snapshots) of trade ``i``; ``nulls``: the nullable fields null."""
    import pandas as pd

    from research.store import snapshots as snap

    entry = T0 + (10 * i + 1) * BAR
    row: dict = {}
    for f in snap.FIELDS:
        if f.dtype == "string":
            row[f.name] = f"{f.name}-{i}"
        elif f.dtype in ("int8", "int32", "int64"):
            row[f.name] = (i % 3) - 1 if f.dtype == "int8" else i
        elif f.dtype == "float64":
            row[f.name] = 0.1 + 0.2 + i  # not exact in binary: the round trip must keep every bit
        elif f.dtype == "bool":
            row[f.name] = bool(i % 2)
        elif f.dtype == "timestamp":
            row[f.name] = pd.Timestamp(entry, tz="UTC")
        if nulls and f.nullable:
            row[f.name] = None
    row.update(run_id=run_id, trade_id=f"T{i:05d}", symbol="ES", contract="ESH24", mode="paper", session="rth",
               side=1 if i % 2 else -1, exit_reason="target", status="balanced", vix_regime=None if nulls else "LOW",
               signal_ts=pd.Timestamp(entry - BAR, tz="UTC"), entry_ts=pd.Timestamp(entry, tz="UTC"),
               exit_ts=pd.Timestamp(entry + 5 * BAR, tz="UTC"), pnl_usd=100.0 * ((i % 3) - 1) - 4.5)
    return row


def write_bars(path: str, n: int, forever: bool = False) -> None:
    """One batch per bar: order, fill, position, heartbeat, state; a trade and a risk event every 100."""
    from live.events import Bracket, Fill, Order
    from live.journal import Journal, TraderStatus

    j = Journal(path)
    k = 0
    while forever or k < n:
        ts = T0 + k * BAR
        side = 1 if k % 2 == 0 else -1
        with j.batch():
            j.record_order(Order(f"o{k}", "ES", side, 1, "entry", bracket=Bracket(8, 16), decided_ns=ts), ts, "submitted")
            j.record_fill(Fill(f"f{k}", f"o{k}", "ES", side, 1, 4000.0 + 0.25 * k, ts, "entry", seq=k + 1))
            j.record_position("ES", side, ts)
            j.heartbeat(ts, TraderStatus(mode="paper", symbol="ES", bar_ts_ns=ts, position=side, trades_today=k // 20,
                                         kill_switches={"consecutive_losses": False}, pid=os.getpid()))
            j.save_state({"signal": k.to_bytes(8, "little") * 64, "trade": (k * 7).to_bytes(8, "little")}, ts)
            if k % 100 == 0:
                j.record_trade(trade_row(k // 100))
            if k % 100 == 0:
                j.record_risk_event("planted", f"bar {k}", ts, "info")
        print(f"committed {k}", flush=True)
        k += 1
    j.close()


def read_until(path: str, done_file: str, out_file: str) -> None:
    """Poll status() and load_state() (trades() every 50th poll) until ``done_file`` exists (and once after);
    write what was seen (polls, errors, a non-monotonic or inconsistent view) to ``out_file``."""
    from live.journal import Journal

    j = Journal(path, readonly=True)
    seen = {"polls": 0, "errors": [], "intermediate": 0, "last": None}
    prev = {"bar": -1, "trades": -1, "orders": -1, "state": -1}
    Path(out_file + ".ready").write_text("ready")
    final, tr = False, None
    while True:
        try:
            st = j.status()
            if seen["polls"] % 50 == 0 or final:  # the snapshot validation costs ~50 ms: not on every poll
                tr = j.trades()
            state = j.load_state()
            c = st["counts"]
            bar = -1 if st["bar_ts_ns"] is None else st["bar_ts_ns"]
            now = {"bar": bar, "trades": len(tr) if tr is not None else prev["trades"], "orders": c["orders"], "state": -1 if state is None else state[1]}
            for key, v in now.items():
                if v < prev[key]:
                    seen["errors"].append(f"{key} went back from {prev[key]} to {v}")
            if not (c["orders"] == c["fills"] == c["positions"] == c["heartbeats"]) or c["state"] != 2 * bool(c["orders"]):
                seen["errors"].append(f"half a batch visible: {c}")
            if c["trades"] != (c["orders"] + 99) // 100 or (tr is not None and len(tr) < c["trades"]):
                seen["errors"].append(f"trades out of step: {c}, trades() {len(tr)}")
            if c["orders"] and bar != T0 + (c["orders"] - 1) * BAR:
                seen["errors"].append(f"last bar {bar} does not match {c['orders']} orders")
            prev = now
            seen["polls"] += 1
            seen["intermediate"] += 0 < c["orders"]
            seen["last"] = c
        except Exception as exc:  # noqa: BLE001 - every error is the finding
            seen["errors"].append(f"{type(exc).__name__}: {exc}")
        if final:
            break
        final = Path(done_file).exists()
        tr = None
        time.sleep(0.005)
    j.close()
    Path(out_file).write_text(json.dumps(seen))


def mini_trader(state_dir: str, hang: bool = False) -> None:
    """Heartbeats every 20 ms; on a halt journals emergency_stop/flat and exits. ``hang``: ignores it all."""
    import signal

    from live import control
    from live.journal import Journal, TraderStatus

    d = Path(state_dir)
    control.write_pid(d)
    if hang:
        signal.signal(control.STOP_SIGNAL, signal.SIG_IGN)
        print("ready", flush=True)
        time.sleep(3600)
    watch = control.HaltWatch(d, every_s=0.05).install()
    j = Journal(control.journal_path(d))
    k = 0
    while True:
        ts = T0 + k * BAR
        halt = watch.check()
        if halt is not None:
            j.record_position("ES", 0, ts)
            j.record_risk_event("emergency_stop", f"flat ({halt['reason']})", ts, "critical")
            break
        j.heartbeat(ts, TraderStatus(mode="paper", symbol="ES", bar_ts_ns=ts, position=1, entry_price=4000.25,
                                     pnl_today_usd=-12.5, trades_today=1, pid=os.getpid(),
                                     kill_switches={"consecutive_losses": False, "drawdown": False},
                                     feed={"kind": "synthetic", "last_record_age_s": 0.1, "records": k, "events": ""}))
        if k == 0:
            print("ready", flush=True)  # after the first heartbeat: a reader sees a running trader's status
        k += 1
        time.sleep(0.02)
    control.remove_pid(d)
    j.close()


if __name__ == "__main__":
    cmd, *rest = sys.argv[1:]
    if cmd == "write":
        write_bars(rest[0], int(rest[1]), forever="--forever" in rest)
    elif cmd == "read":
        read_until(*rest)
    elif cmd in ("trader", "hung"):
        mini_trader(rest[0], hang=cmd == "hung")
    else:
        raise SystemExit(f"unknown command {cmd}")
