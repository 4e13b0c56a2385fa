"""Helpers of the live-loop proofs (parity, crash/restart, concurrency) and of their long benchmark
versions: bar files a replay reads, whole-session runs through `live.session.open_session`, trader
processes forked from an interpreter that has imported everything once (so a `SIGKILL` + restart costs
no start-up), and the snapshot comparison.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import pandas as pd

from live.journal import Journal, JournalError
from live.session import open_session
from live.trader import ReconcileError
from research.store.snapshots import names, validate
from strategy import Params

CT = "America/Chicago"
IGNORED = ("run_id", "trade_id")


def write_sierra_bars(frame: pd.DataFrame, path: str | Path) -> Path:
    """Write a canonical bar frame as a Sierra Chart bar export (times in CT), the format of the
    es-5m files; ``load_bars`` of it gives the frame back."""
    t = frame.index.tz_convert(CT)
    out = pd.DataFrame({"Date": t.strftime("%Y/%m/%d"), "Time": t.strftime("%H:%M:%S"), "Open": frame["open"],
                        "High": frame["high"], "Low": frame["low"], "Last": frame["close"], "Volume": frame["volume"],
                        "NumberOfTrades": frame["num_trades"], "BidVolume": frame["bid_volume"],
                        "AskVolume": frame["ask_volume"]})
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    out.to_csv(tmp, index=False, float_format="%.2f")
    os.replace(tmp, path)
    return path


def trading_dates(frame: pd.DataFrame) -> pd.Index:
    """The CME trading date of each bar (the date rolls at 17:00 CT)."""
    return pd.Index((frame.index.tz_convert(CT) + pd.Timedelta(hours=7)).date)


def synthetic_slice(days: int, path: str | Path, first: int = 0) -> tuple[Path, pd.DataFrame]:
    """``days`` trading dates (from the ``first``-th) of the default synthetic data set (10 dates, 2024-03-04
    to 03-15) as 5-minute bars, written as ``ESM24-CME.scid_BarData__5m.txt`` in folder ``path``; returns
    (file, the bars as ``load_bars`` reads it)."""
    from research.data import default_dataset, load_bars

    bars = load_bars(default_dataset(), bar="5min")
    d = trading_dates(bars)
    keep = sorted(set(d))[first:first + days]
    f = write_sierra_bars(bars[d.isin(keep)], Path(path) / f"{bars.attrs['symbol']}-CME.scid_BarData__5m.txt")
    return f, load_bars(f)


def snapshot_rows(trades: pd.DataFrame) -> pd.DataFrame:
    """Trades as schema-validated snapshot records without run_id/trade_id, for comparing a paper
    session with a backtest."""
    if trades.empty and not len(trades.columns):  # RunResult.trades of a session without a trade
        trades = pd.DataFrame(columns=list(names()))
    return validate(trades, extra="drop").drop(columns=list(IGNORED)).reset_index(drop=True)


def assert_same_trades(got: pd.DataFrame, want: pd.DataFrame, what: str = "") -> None:
    """Every column of the snapshot record but run_id/trade_id equal (NaN == NaN), in order."""
    a, b = snapshot_rows(got), snapshot_rows(want)
    assert len(a) == len(b), f"{what}: {len(a)} trades, expected {len(b)}"
    pd.testing.assert_frame_equal(a, b, check_exact=True, obj=what or "trades")


def mismatches(got: pd.DataFrame, want: pd.DataFrame) -> list[str]:
    """Differences between two trade lists (empty when equal), one line each: a count or the first
    differing row and columns."""
    a, b = snapshot_rows(got), snapshot_rows(want)
    if len(a) != len(b):
        return [f"{len(a)} trades vs {len(b)}"]
    out = []
    for i in range(len(a)):
        diff = [c for c in a.columns if not _same(a.at[i, c], b.at[i, c])]
        if diff:
            out.append(f"trade {i} ({a.at[i, 'entry_ts']}): {', '.join(diff)}")
    return out


def _same(x: Any, y: Any) -> bool:
    if pd.isna(x) and pd.isna(y):
        return True
    return bool(x == y)


def run_session(feed: str, state_dir: str | Path, params: Params | None = None, **kw: Any):
    """One whole session at full speed: ``(trader, RunResult)``."""
    params = params or Params.for_mode("paper")
    kw.setdefault("unvalidated", True)
    trader = open_session(params, feed=feed, state_dir=state_dir, speed=None, **kw)
    try:
        return trader, trader.run()
    finally:
        trader.journal.close()


def fork_trader(feed: str, state_dir: str | Path, mode: str = "paper", broker_mode: str = "bar",
                feed_kw: dict | None = None) -> int:
    """A trader process (fork of this one) running ``feed`` (``feed_kw`` to its constructor) to its end on
    ``state_dir``; its pid. Exit status 0 at the replay's end, 3 on a ReconcileError, 4 on anything else."""
    pid = os.fork()
    if pid:
        return pid
    code = 4  # everything the child runs is imported already: no import lock taken after the fork
    try:
        try:
            _, res = run_session(feed, state_dir, Params.for_mode(mode), broker_mode=broker_mode, feed_kw=feed_kw)
            code = 0 if res.reason == "replay_end" else 4
        except ReconcileError:
            code = 3
    finally:
        os._exit(code)


_REAPED: dict[int, int] = {}  # pid -> exit status of a child already collected (by exited or wait_exit)


def _reap(pid: int) -> int | None:
    """The exit status of child ``pid`` once it has ended (collected once, remembered after), else None."""
    try:
        got, status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:  # collected by an earlier call (the OS first: a pid can be reused by a new child)
        if pid in _REAPED:
            return _REAPED[pid]
        raise
    if not got:
        return None
    _REAPED[pid] = os.waitstatus_to_exitcode(status)
    return _REAPED[pid]


def wait_exit(pid: int, timeout: float = 120.0) -> int:
    """Wait for a forked trader; its exit status (-N when killed by signal N)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        code = _reap(pid)
        if code is not None:
            return code
        time.sleep(0.005)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    raise TimeoutError(f"trader {pid} did not end within {timeout:.0f} s")


def exited(pid: int) -> int | None:
    """The exit status of a forked trader that has ended, else None."""
    return _reap(pid)


def last_bar_ts(journal) -> int | None:
    """The bar time of the journal's newest heartbeat (None before the first)."""
    hb = journal.last_heartbeat()
    return None if hb is None else hb["status"].get("bar_ts_ns") or hb["ts_ns"]


def slice_bar_file(src: str | Path, folder: str | Path, start: str, end: str) -> Path:
    """Bars of bar file ``src`` with ``start <= time < end`` (UTC dates) written as a Sierra export of the
    same contract name in ``folder``; a short real replay for the suite."""
    from research.data import load_bars

    src = Path(src)
    frame = load_bars(src)
    part = frame[(frame.index >= pd.Timestamp(start, tz="UTC")) & (frame.index < pd.Timestamp(end, tz="UTC"))]
    Path(folder).mkdir(parents=True, exist_ok=True)
    return write_sierra_bars(part, Path(folder) / src.name.removesuffix(".gz"))


def open_reader(sd: str | Path):
    """A read-only journal of state dir ``sd``, or None while none exists yet."""
    try:
        return Journal(Path(sd) / "journal.sqlite", readonly=True)
    except (JournalError, OSError):
        return None


def kill_at(pid: int, sd: str | Path, target_ts: int | None, delay_s: float) -> int | None:
    """SIGKILL the trader once its heartbeats reach bar ``target_ts`` (then ``delay_s`` more), or after
    ``delay_s`` when no target; returns its exit status if it ended first, else None (killed)."""
    j = None
    deadline = time.monotonic() + 120
    try:
        while target_ts is not None and time.monotonic() < deadline:
            code = exited(pid)
            if code is not None:
                return code
            j = j or open_reader(sd)
            ts = last_bar_ts(j) if j is not None else None
            if ts is not None and ts >= target_ts:
                break
            time.sleep(0.002)
    finally:
        if j is not None:
            j.close()
    time.sleep(delay_s)
    code = exited(pid)
    if code is not None:
        return code
    os.kill(pid, signal.SIGKILL)
    assert wait_exit(pid) == -signal.SIGKILL
    return None


def _last_bar(sd: str | Path) -> int | None:
    j = open_reader(sd)
    if j is None:
        return None
    try:
        return last_bar_ts(j)
    finally:
        j.close()


def crash_run(feed: str, sd: str | Path, bar_ts, kills: int, rng, startup_kills: int = 3,
              **trader_kw: Any) -> tuple[int, int]:
    """Run ``feed`` on ``sd`` with ``kills`` SIGKILLs, each followed by a restart: ``startup_kills`` at
    random delays after a start, the rest at random bar times (``bar_ts``, sorted) plus a few random
    milliseconds, so a kill lands anywhere inside a bar's processing. Returns (kills done, kills after a
    bar target this process reached itself); the caller runs the last restart to the end. ``trader_kw`` go to `fork_trader`. A trader ending before its kill point is
    an AssertionError unless it ended well (status 0)."""
    n = len(bar_ts)
    targets = sorted(rng.sample(range(max(n - 20, 1)), kills - startup_kills))
    plan = [(None, rng.uniform(0.0, 0.15)) for _ in range(startup_kills)]
    plan += [(int(bar_ts[i]), rng.uniform(0, 0.004)) for i in targets]
    done = mid_run = 0
    for target, delay in plan:
        before = _last_bar(sd)  # a target the previous process already passed is a kill in the start-up
        code = kill_at(fork_trader(feed, sd, **trader_kw), sd, target, delay)
        if code is None:
            done += 1
            mid_run += target is not None and (before is None or before < target)
        else:
            assert code == 0, f"trader exited with {code} before its kill point"
    return done, mid_run
