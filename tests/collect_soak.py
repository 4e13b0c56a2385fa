"""The collector soak's fault driver (test tooling; `benchmarks/soak_collect.py` and tests/live/collect/test_soak.py).

`run_soak(config, work)`:

1. synthetic ES trades (`research.data.synthetic.generate_trades`) over ``config.hours`` of simulated time are
   written by a `SierraScidWriter` into ``work/sierra/ESM24-CME.scid`` (then ``ESU24-CME.scid`` from the roll in the
   middle), paced at ``config.speed`` times real time;
2. the collector runs as a real subprocess (``navale collect --feed scid:PATH --dir ROOT ...``) tailing it;
3. ``config.faults`` faults are injected at seeded random points of simulated time, each kind at least once:
   ``kill`` (SIGKILL, then a restart), ``torn_segment`` (SIGKILL, a partial frame appended to the open segment as
   a write cut by a power loss, then a restart), ``stall`` (the source writes nothing for minutes, the trades of
   that span never exist), ``tear`` (Sierra's flush ends inside a record), ``replace`` (the .scid rewritten and
   renamed over, a new inode), ``jump`` (the source's clock steps forward minutes), ``disk_full`` (ROOT is a small
   tmpfs: it is filled, then freed minutes later; needs root, else that kind is left out and the reason said);
4. at the end the collector is stopped (SIGTERM) and the collected ticks (segments; Parquet partitions of the
   sealed ones) are compared with what reached the .scid files, record by record, the collected bars with one
   uninterrupted bar builder over those records, and every fault is looked up in the collector's journal
   (ROOT/collector.sqlite risk_events) and segments (GAP/EVENT records).

A collector that exits by itself is restarted (a supervisor's job, like systemd ``Restart=always``) and the exit is
reported as a problem. `SoakResult.problems` lists every failed check (empty: the soak passed).
"""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from sierra_writer import SierraScidWriter

from live.collect import layout
from research.data import SyntheticSpec
from research.data import segments as sg
from research.data.synthetic import generate_trades

__all__ = ["SoakConfig", "SoakResult", "FaultRecord", "run_soak", "KINDS", "EVIDENCE", "collected_ticks",
           "plan_faults", "try_mount_tmpfs", "STAND_IN"]

ROOT_DIR = Path(__file__).resolve().parents[1]
NS = 1_000_000_000
KINDS = ("kill", "torn_segment", "stall", "tear", "replace", "jump", "disk_full")
# ``jump_back`` (the source's clock steps back: records out of order) is not in the soak's mix: a replaced file
# after it could not be matched by time any more; test_soak.py runs it on its own.
WEIGHTS = {"kill": 8, "torn_segment": 2, "stall": 3, "tear": 3, "replace": 2, "jump": 2, "disk_full": 2,
           "jump_back": 1}
# the journal event kinds (collector.sqlite risk_events) that make each fault visible; a stall and a clock jump
# also count a GAP record of the segments that covers them. ``tear`` has none by design: a reader leaves a
# partial .scid record for its next poll, nothing is wrong.
EVIDENCE = {
    "kill": ("restart",),
    "torn_segment": ("torn_tail",),
    "stall": ("gap", "feed_stall"),
    "replace": ("feed_replaced", "replaced"),
    "jump": ("gap", "clock_jump"),
    "disk_full": ("disk_full",),
    "jump_back": ("feed_out_of_order", "time_out_of_order", "out_of_order", "clock_jump"),
    "tear": (),
}
START_KINDS = ("start", "restart")
NEEDS_UP = ("kill", "torn_segment", "disk_full")  # faults injected only into a collector that is up
TICK_COLS = ("ts_ns", "price", "size", "side", "bid", "ask")


@dataclass
class SoakConfig:
    hours: float = 2.0  # simulated hours of trades
    faults: int = 10
    speed: float = 500.0  # simulated seconds per wall second
    seed: int = 1
    start_hour: float = 15.5  # hours after the first session's open (17:00 CT) where the run starts; 15.5 = 08:30 CT
    spec_start: str = "2024-03-04"  # the synthetic data's first trading date
    stall_minutes: tuple[float, float] = (6.0, 15.0)
    jump_minutes: tuple[float, float] = (6.0, 15.0)  # over the collector's 5-minute gap rule
    jump_back_seconds: tuple[float, float] = (20.0, 60.0)
    disk_full_minutes: tuple[float, float] = (5.0, 10.0)
    disk_full_wait_seconds: float = 30.0  # a full disk is freed no sooner than the collector has seen it (or this)
    disk_mb: int = 64  # the tmpfs of ROOT (the disk-full fault)
    collector_args: tuple[str, ...] = ("--no-trade",)
    collector: tuple[str, ...] | None = None  # the command before --feed; None: navale collect (STAND_IN: the stand-in)
    kinds: tuple[str, ...] = KINDS
    catch_up_seconds: float = 90.0  # after the source is done, how long the collector may take to hold it all
    log: bool = False  # print progress lines
    startup_kill_share: float = 0.3  # kills followed by a second SIGKILL 0.1-1.5 s later (during start-up)
    keep_root: bool = False  # copy ROOT to work/collect-kept before the tmpfs is unmounted (to look at it after)


@dataclass
class FaultRecord:
    kind: str
    at_ns: int  # when it was injected, on the source's clock (the DateTime of the records written then)
    wall_s: float  # wall seconds from the start
    detail: str = ""
    end_ns: int | None = None  # stall / disk full / jump: the span
    early: bool = False  # a kill of a collector that had not journaled its start yet


@dataclass
class SoakResult:
    config: SoakConfig
    faults: list[FaultRecord]
    skipped_kinds: dict[str, str]  # kind -> why it was not injected
    source: int = 0  # ticks that reached the .scid files
    dropped_at_source: int = 0  # trades of stalled spans (never written)
    collected: int = 0
    lost: int = 0
    duplicated: int = 0
    mismatched: int = 0
    bars: int = 0  # closed bars in the segments
    bars_differ: int = 0  # of those (and missing), not as one uninterrupted BarBuilder makes them from the source (a problem)
    verify: str = ""  # what navale data verify said
    parquet_rows: int = 0
    parquet_dates: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    restarts: int = 0
    unplanned_exits: list[str] = field(default_factory=list)
    startup_kills: int = 0  # extra SIGKILLs of a collector still starting (part of a kill fault)
    exits_started: int = 0  # unplanned exits of a run that had journaled its start
    journal_kinds: dict[str, int] = field(default_factory=dict)
    evidence: dict[str, str] = field(default_factory=dict)  # fault kind -> what made it visible (or MISSING)
    wall_s: float = 0.0
    problems: list[str] = field(default_factory=list)

    def faults_by_kind(self) -> dict[str, int]:
        return dict(Counter(f.kind for f in self.faults))

    def summary(self) -> str:
        c = self.config
        lines = [
            f"collector soak: {c.hours:g} simulated hours at {c.speed:g}x, seed {c.seed}, wall {self.wall_s:.1f} s",
            f"faults: {len(self.faults)} ({', '.join(f'{k} {n}' for k, n in sorted(self.faults_by_kind().items()))})"
            + (f"; not injected: {', '.join(f'{k} ({why})' for k, why in self.skipped_kinds.items())}"
               if self.skipped_kinds else ""),
            f"records: source {self.source:,} ticks ({self.dropped_at_source:,} trades never written: stalls), "
            f"collected {self.collected:,}; lost {self.lost}, duplicated {self.duplicated}, different {self.mismatched}",
            f"bars: {self.bars:,} collected, {self.bars_differ} differ from one uninterrupted bar builder on the source",
            f"segments: {', '.join(self.segments)}; parquet: {self.parquet_rows:,} tick rows in "
            f"{len(self.parquet_dates)} sealed date(s)",
            f"navale data verify: {self.verify}",
            f"collector: {self.restarts} restarts ({self.startup_kills} extra kills during a start-up), "
            f"{len(self.unplanned_exits)} exits of its own",
            "journal: " + ", ".join(f"{k} {n}" for k, n in sorted(self.journal_kinds.items())),
            "evidence: " + "; ".join(f"{k}: {v}" for k, v in self.evidence.items()),
        ]
        lines.append("OK" if not self.problems else "PROBLEMS:\n  " + "\n  ".join(self.problems))
        return "\n".join(lines)


# ---- set-up ------------------------------------------------------------------------------------------------

def window_trades(cfg: SoakConfig) -> pd.DataFrame:
    """The synthetic trades of the run's simulated span."""
    days = int(np.ceil((cfg.start_hour + cfg.hours) / 24.0)) + 1
    spec = SyntheticSpec(start=cfg.spec_start, days=days)
    t = generate_trades(spec)
    t0 = t.index[0].floor("h") + pd.Timedelta(hours=cfg.start_hour)  # the first session opens on the hour
    return t[(t.index >= t0) & (t.index < t0 + pd.Timedelta(hours=cfg.hours))]


def plan_faults(cfg: SoakConfig, trade_ns: np.ndarray, kinds: list[str], rng: random.Random) -> list[tuple[int, str]]:
    """``cfg.faults`` (time, kind) pairs: every kind once, the rest by `WEIGHTS`; at random points of even slots
    over 5-85 % of the run, each moved to the next trade (so inside a session) and at least half a slot after
    the one before. A stall or a clock step shows as a gap only while Globex is open on both sides of it and
    before the run ends: those kinds take the slots where that holds (the others take the rest)."""
    from strategy.market.calendar import SessionCalendar

    n = cfg.faults
    chosen = list(kinds[:n])
    pool = [k for k in kinds for _ in range(WEIGHTS[k])]
    chosen += [rng.choice(pool) for _ in range(n - len(chosen))]
    rng.shuffle(chosen)
    t0, t1 = int(trade_ns[0]), int(trade_ns[-1])
    lo, hi = t0 + (t1 - t0) * 0.05, t0 + (t1 - t0) * 0.85
    slot = (hi - lo) / n
    times, prev = [], -(1 << 62)
    for i in range(n):
        t = max(int(lo + (i + rng.uniform(0.1, 0.6)) * slot), prev + int(slot / 2))
        prev = int(trade_ns[min(int(np.searchsorted(trade_ns, t)), len(trade_ns) - 1)])
        times.append(prev)
    cal = SessionCalendar()
    span = int((max(cfg.stall_minutes[1], cfg.jump_minutes[1]) + 10) * 60 * NS)

    def observable(at: int) -> bool:
        return at + span < t1 and all(cal.is_open(at + q * span // 4) for q in range(5))

    free = list(range(n))
    good = [i for i in free if observable(times[i])]
    out = []
    for kind in sorted(chosen, key=lambda k: k not in ("stall", "jump")):  # those first: they pick their slots
        cand = [i for i in good if i in free] if kind in ("stall", "jump") else []
        i = rng.choice(cand) if cand else rng.choice(free)
        free.remove(i)
        out.append((times[i], kind))
    return sorted(out)


def try_mount_tmpfs(where: Path, size_mb: int) -> str | None:
    """Mount a tmpfs of ``size_mb`` on ``where``; None when done, else why it cannot be."""
    where.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return "mounting a tmpfs needs root (CAP_SYS_ADMIN)"
    p = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size_mb}m", "tmpfs", str(where)], capture_output=True,
                       text=True)
    return None if p.returncode == 0 else f"mount -t tmpfs failed: {p.stderr.strip() or p.returncode}"


def umount(where: Path) -> None:
    subprocess.run(["umount", "-l", str(where)], capture_output=True)


class DiskFiller:
    """Fills the file system of ``folder`` to the last block with one file, then frees it. A collector lagging its
    source (a loaded machine) may reach the trades of the full span only after it was meant to end: `seen` says
    when the disk may be freed, so that every episode is one the collector met."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.path = folder / "soak-filler.bin"
        self.bytes = 0
        self._at: tuple[float, int, int] | None = None  # (wall, source trades written, evidence) at the fill
        self._next_look = 0.0

    @staticmethod
    def evidence(folder: Path, col: Collector) -> int:
        """disk_full events journaled, plus the critical lines the collector printed for them."""
        printed = sum(p.read_text(errors="replace").count("critical: disk_full") for p in col.logs.glob("run-*.err"))
        return printed + sum(1 for e in journal_events(folder) if e["kind"] == "disk_full")

    def seen(self, writer: SierraScidWriter, col: Collector, cfg: SoakConfig) -> bool:
        """True when the disk may be freed: the collector reported it full, no trade was written since the fill,
        or ``cfg.disk_full_wait_seconds`` of wall time have passed (then the evidence check names it)."""
        if self._at is None:
            return True
        wall, written, base = self._at
        if writer.written == written or time.monotonic() - wall >= cfg.disk_full_wait_seconds:
            return True
        if time.monotonic() < self._next_look:
            return False
        self._next_look = time.monotonic() + 0.2
        return self.evidence(self.folder, col) > base

    def fill(self, writer: SierraScidWriter | None = None, col: Collector | None = None) -> int:
        if writer is not None and col is not None:
            self._at = (time.monotonic(), writer.written, self.evidence(self.folder, col))
        chunk = 1 << 20
        with open(self.path, "ab", buffering=0) as fh:
            while chunk >= 512:
                try:
                    fh.write(b"\0" * chunk)
                    self.bytes += chunk
                except OSError:
                    chunk //= 4
        return self.bytes

    def free(self) -> None:
        self.path.unlink(missing_ok=True)
        self.bytes = 0
        self._at = None


# ---- the collector process ---------------------------------------------------------------------------------

class Collector:
    """The collector as a subprocess: start, SIGKILL, SIGTERM; each run's output in ``logs/run-N.{out,err}``."""

    def __init__(self, cmd: list[str], logs: Path, env: dict[str, str], root: Path) -> None:
        self.cmd, self.logs, self.env, self.root = cmd, logs, env, root
        self.starts_at_launch = 0
        self._started_run = -1
        logs.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.runs = 0

    def start(self) -> None:
        self.starts_at_launch = starts_journaled(self.root)
        self.runs += 1
        out = open(self.logs / f"run-{self.runs}.out", "wb")
        err = open(self.logs / f"run-{self.runs}.err", "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=err, env=self.env, cwd=str(ROOT_DIR))
        out.close()
        err.close()

    def started(self) -> bool:
        """Whether this run has journaled its start (a kill before that is a kill during start-up)."""
        if self._started_run != self.runs and starts_journaled(self.root) > self.starts_at_launch:
            self._started_run = self.runs
        return self._started_run == self.runs

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait()

    def exited(self) -> int | None:
        return None if self.proc is None else self.proc.poll()

    def last_error(self) -> str:
        p = self.logs / f"run-{self.runs}.err"
        lines = [ln for ln in p.read_text(errors="replace").splitlines() if ln.strip()] if p.exists() else []
        return lines[-1][:300] if lines else "(no stderr)"

    def stop(self, timeout: float = 60.0) -> int | None:
        if self.proc is None or self.proc.poll() is not None:
            return None if self.proc is None else self.proc.returncode
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            return None


STAND_IN = (sys.executable, str(Path(__file__).with_name("stand_in_collector.py")))


def starts_journaled(root: Path) -> int:
    """How many start/restart events the collector's journal holds."""
    return sum(1 for e in journal_events(root) if e["kind"] in START_KINDS)


def collector_command(scid: Path, root: Path, cfg: SoakConfig) -> list[str]:
    head = list(cfg.collector or (sys.executable, "-m", "research.cli", "collect"))
    return [*head, "--feed", f"scid:{scid}", "--dir", str(root),
            "--symbols", "ES", *cfg.collector_args]


def open_segment(root: Path) -> Path | None:
    """The newest segment of ES without a manifest (the one the collector appends to), or None."""
    segs = sorted(layout.segment_dir(root, "ES").glob("*.seg"))
    open_ = [s for s in segs if not layout.manifest_path(s).exists()]
    return open_[-1] if open_ else None


def tear_segment(seg: Path, rng: random.Random) -> int:
    """Append the first bytes of a tick frame to ``seg`` (a write cut short); returns how many."""
    fr = sg.tick_frame(1, 1.0, 1, 1, 1, float("nan"), float("nan"), 10**12)
    n = rng.randint(1, len(fr) - 1)
    with open(seg, "ab") as fh:
        fh.write(fr[:n])
    return n


# ---- reading back ------------------------------------------------------------------------------------------

def collected_ticks(root: Path, symbol: str = "ES") -> tuple[pd.DataFrame, list[sg.SegmentData]]:
    """The ticks of every segment of ``symbol`` (date order, a torn tail ignored) as one frame with the
    segment's contract, plus the decoded segments."""
    frames, datas = [], []
    for seg in sorted(layout.segment_dir(root, symbol).glob("*.seg")):
        d = sg.read_segment(seg, allow_torn=True)
        datas.append(d)
        f = pd.DataFrame(d.ticks)
        f["contract"] = d.tick_contracts
        f["date"] = seg.name[:10]
        frames.append(f)
    cols = [*TICK_COLS, "num_trades", "seq", "contract", "date"]
    return (pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)), datas


def count_ticks(root: Path) -> int:
    n = 0
    for seg in layout.segment_dir(root, "ES").glob("*.seg"):
        try:
            n += sg.scan(seg).counts.get("tick", 0)
        except (OSError, sg.SegmentError):
            pass
    return n


def parquet_ticks(root: Path, dates: list[str]) -> pd.DataFrame:
    import pyarrow.parquet as pq

    parts = []
    for d in dates:
        p = layout.partition_path(root, "ticks", "ES", d)
        t = pq.read_table(p).to_pandas()
        t["ts_ns"] = t["ts"].astype("int64") if t["ts"].dtype.kind == "i" else t["ts"].dt.as_unit("ns").astype("int64")
        t["date"] = d
        parts.append(t)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def compare(source: pd.DataFrame, got: pd.DataFrame) -> tuple[int, int, int]:
    """(lost, duplicated, different) between the source ticks and the collected ones, as multisets of full
    records; ``different`` counts positions where the sequences differ though the multisets agree."""
    cols = [*TICK_COLS, "contract"]
    s = source[cols].copy()
    g = got[cols].copy()
    for f in (s, g):
        f["k"] = f.groupby(cols, dropna=False).cumcount()
    m = s.merge(g, on=[*cols, "k"], how="outer", indicator=True)
    lost = int((m["_merge"] == "left_only").sum())
    dup = int((m["_merge"] == "right_only").sum())
    n = min(len(s), len(g))
    a, b = s[cols].iloc[:n].reset_index(drop=True), g[cols].iloc[:n].reset_index(drop=True)
    eq = np.ones(n, bool)
    for c in cols:
        x, y = a[c].to_numpy(), b[c].to_numpy()
        eq &= (x == y) | (pd.isna(x) & pd.isna(y)) if x.dtype.kind == "f" else (x == y)
    return lost, dup, int((~eq).sum()) + abs(len(s) - len(g))


def verify_root(res: SoakResult, root: Path) -> None:
    """``navale data verify --dir ROOT`` where it exists (live/collect/verify.py): exit 0 or a problem."""
    import importlib.util

    if importlib.util.find_spec("live.collect.verify") is None:
        res.verify = "not run (no navale data verify here)"
        return
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    p = subprocess.run([sys.executable, "-m", "research.cli", "data", "verify", "--dir", str(root)],
                       capture_output=True, text=True, env=env, cwd=str(ROOT_DIR))
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    res.verify = f"exit {p.returncode}: {lines[-1] if lines else ''}"
    if p.returncode != 0:
        res.problems.append(f"navale data verify --dir ROOT {res.verify}; " + " | ".join(lines[-6:]))


def compare_bars(source: pd.DataFrame, datas: list[sg.SegmentData], bar: str = "5min") -> tuple[int, int]:
    """(bars collected, bars that differ or are missing) against `live.bars.BarBuilder` run once over the source
    ticks (the collector's default bar; the last bar, still open at the stop, is left out), each bar with its
    contract (at a roll inside a bar both contracts have a bar of that start). The source is what reached the
    files (a stall's trades never did), so no difference is legitimate: restarts must not change a bar."""
    from live.bars import BarBuilder
    from live.events import Tick

    b = BarBuilder(bar, symbol="ES")
    ref = []
    for r in source.itertuples(index=False):
        out = b.add(Tick(int(r.ts_ns), float(r.price), int(r.size), int(r.side), r.contract, 1, float(r.bid),
                         float(r.ask)))
        if out is not None:
            ref.append((out.ts_ns, out.open, out.high, out.low, out.close, out.volume, out.bid_volume, out.ask_volume,
                        out.contract))
    got = [(*[x.item() for x in row][:8], c) for d in datas for row, c in zip(d.bars, d.bar_contracts)]
    return len(got), len(Counter(ref) - Counter(got)) + len(Counter(got) - Counter(ref))


def journal_events(root: Path) -> list[dict]:
    p = layout.journal_path(root)
    if not p.exists():
        return []
    con = sqlite3.connect(f"file:{p}?mode=ro", uri=True)
    try:
        rows = con.execute("SELECT kind, level, detail, ts_ns, wall_ns FROM risk_events ORDER BY id").fetchall()
    except sqlite3.OperationalError as exc:  # a collector starting: the file is there, its tables not yet
        if "no such table" not in str(exc):
            raise
        return []
    finally:
        con.close()
    return [dict(zip(("kind", "level", "detail", "ts_ns", "wall_ns"), r)) for r in rows]


def gap_spans(datas: list[sg.SegmentData], events: list[dict]) -> list[tuple[int, int]]:
    """Every reported gap as (start_ns, end_ns): GAP records of the segments, and gap EVENT records / journal
    events whose detail is JSON with start_ns/end_ns."""
    spans = [(int(g["start_ns"]), int(g["end_ns"])) for d in datas for g in d.gaps]
    for e in [*(e for d in datas for e in d.events), *events]:
        if "gap" not in str(e.get("kind", "")) and "stale" not in str(e.get("kind", "")):
            continue
        det = e.get("detail")
        try:
            obj = json.loads(det) if isinstance(det, str) else det
        except ValueError:
            obj = None
        if isinstance(obj, dict) and "start_ns" in obj and "end_ns" in obj:
            spans.append((int(obj["start_ns"]), int(obj["end_ns"])))
    return spans


# ---- the run -----------------------------------------------------------------------------------------------

def run_soak(cfg: SoakConfig, work: Path) -> SoakResult:
    """Run the soak in the empty folder ``work``; see the module docstring."""
    t_start = time.monotonic()
    rng = random.Random(cfg.seed)
    work.mkdir(parents=True, exist_ok=True)
    sierra, root = work / "sierra", work / "collect"
    kinds = [k for k in cfg.kinds]
    skipped: dict[str, str] = {}
    mounted = False
    if "disk_full" in kinds:
        why = try_mount_tmpfs(root, cfg.disk_mb)
        if why:
            kinds.remove("disk_full")
            skipped["disk_full"] = why
        else:
            mounted = True
    root.mkdir(parents=True, exist_ok=True)
    trades = window_trades(cfg)
    ns = trades.index.as_unit("ns").asi8
    plan = plan_faults(cfg, ns, kinds, rng)
    writer = SierraScidWriter(sierra, trades, speed=cfg.speed, roll_at_ns=int(ns[len(ns) // 2]))
    env = {**os.environ, "PYTHONPATH": str(ROOT_DIR) + os.pathsep + os.environ.get("PYTHONPATH", ""),
           "NAVALE_COLLECT_DIR": str(root)}
    col = Collector(collector_command(writer.open(start=False), root, cfg), work / "logs", env, root)
    res = SoakResult(cfg, [], skipped)
    filler = DiskFiller(root)
    pending: list[tuple[int, str]] = []  # follow-ups: (sim ns, "free_disk" | "kill_startup")
    try:
        col.start()
        deadline = time.monotonic() + 120
        while not col.started() and col.exited() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        if not col.started():
            res.problems.append(f"the collector did not start: {col.last_error()}")
            return res
        writer.start()  # the source begins once the collector runs: no fault lands in its first start-up
        last_restart, next_check = time.monotonic(), 0.0
        ready = True
        while not writer.done:
            now = writer.sim_ns()
            if plan and plan[0][0] <= now and not ready and time.monotonic() >= next_check:
                ready = col.started()  # a restarted collector must be up again (checked every 50 ms)
                next_check = time.monotonic() + 0.05
            for item in [p for p in plan if p[0] <= now]:
                kind = item[1]
                if kind in NEEDS_UP and not ready:  # it waits; the source's own faults do not
                    continue
                plan.remove(item)
                rec = inject(kind, writer, col, root, filler, rng, cfg, pending)
                rec.wall_s = time.monotonic() - t_start
                res.faults.append(rec)
                ready = ready and kind not in ("kill", "torn_segment")
                if cfg.log:
                    print(f"  {rec.wall_s:7.1f} s  {kind:12s} {rec.detail}", flush=True)
            while pending and pending[0][0] <= now:
                if pending[0][1] == "free_disk" and not filler.seen(writer, col, cfg):
                    break  # a collector behind its source has not reached the full disk yet: it stays full
                _, action = pending.pop(0)
                if action == "free_disk":
                    filler.free()
                    full = [f for f in res.faults if f.kind == "disk_full"]
                    if full:  # the episode lasted until now on the source's clock
                        full[-1].end_ns = max(full[-1].end_ns or 0, writer.sim_ns() + writer.shift_ns)
                elif not col.started():  # "kill_startup": again, while the restarted collector recovers
                    col.kill9()
                    col.start()
                    res.startup_kills += 1
                    if cfg.log:
                        print(f"  {time.monotonic() - t_start:7.1f} s  kill         again during start-up", flush=True)
            code = col.exited()
            if code is not None and time.monotonic() - last_restart > 0.5:
                res.unplanned_exits.append(f"exit {code} at {pd.Timestamp(now, tz='UTC')}: {col.last_error()}")
                res.exits_started += int(col.started())
                col.start()
                last_restart = time.monotonic()
            writer.step()
            time.sleep(0.002)
        filler.free()
        writer.finish()
        if plan:
            res.problems.append(f"{len(plan)} faults not injected before the source ended (waiting for the collector"
                                f" to be up): {', '.join(k for _, k in plan)}")
        res.source, res.dropped_at_source = writer.written, writer.dropped
        deadline = time.monotonic() + cfg.catch_up_seconds
        while time.monotonic() < deadline and count_ticks(root) < res.source:
            if col.exited() is not None:
                res.unplanned_exits.append(f"exit {col.exited()} after the source ended: {col.last_error()}")
                col.start()
            time.sleep(0.25)
        code = col.stop()
        if code not in (0, None):
            res.problems.append(f"the collector's clean stop (SIGTERM) exited {code}: {col.last_error()}")
        res.wall_s = time.monotonic() - t_start
        res.restarts = col.runs - 1
        check(res, writer, root)
    finally:
        col.kill9()
        writer.close()
        filler.free()
        if mounted:
            if cfg.keep_root:
                shutil.copytree(root, work / "collect-kept")
            umount(root)
    return res


def inject(kind: str, writer: SierraScidWriter, col: Collector, root: Path, filler: DiskFiller, rng: random.Random,
           cfg: SoakConfig, pending: list) -> FaultRecord:
    now = writer.sim_ns() + writer.shift_ns  # fault times are on the source's clock (DateTime written)
    if kind == "kill":
        early = not col.started()
        col.kill9()
        col.start()
        if rng.random() < cfg.startup_kill_share:  # and once more soon, while it starts and recovers
            pending.append((writer.sim_ns() + int(rng.uniform(0.1, 1.5) * cfg.speed * NS), "kill_startup"))
            pending.sort()
        return FaultRecord(kind, now, 0.0, f"SIGKILL{' during start-up' if early else ''}, restart (run {col.runs})",
                           early=early)
    if kind == "torn_segment":
        early = not col.started()
        col.kill9()
        seg = open_segment(root)
        try:
            n = tear_segment(seg, rng) if seg is not None else 0
        except OSError as exc:  # the disk is full at that moment
            n = f"0 ({exc.strerror})"
        col.start()
        return FaultRecord(kind, now, 0.0, f"SIGKILL, {n} bytes of a frame appended to {seg.name if seg else '(none)'}",
                           early=early)
    if kind == "stall":
        s0, s1 = writer.stall(rng.uniform(*cfg.stall_minutes) * 60)
        sh = writer.shift_ns
        return FaultRecord(kind, s0 + sh, 0.0, f"{(s1 - s0) / 60e9:.1f} min with no write", s1 + sh)
    if kind == "tear":
        writer.tear()
        return FaultRecord(kind, now, 0.0, "the next flush ends inside a record")
    if kind == "replace":
        p = writer.replace()
        return FaultRecord(kind, now, 0.0, f"{p.name} rewritten and renamed over")
    if kind == "jump":
        s = rng.uniform(*cfg.jump_minutes) * 60
        writer.jump(s)
        return FaultRecord(kind, now, 0.0, f"source clock {s / 60:+.1f} min", now + int(s * NS))
    if kind == "jump_back":
        s = rng.uniform(*cfg.jump_back_seconds)
        writer.jump(-s)
        return FaultRecord(kind, now, 0.0, f"source clock -{s:.0f} s (records out of order)", now - int(s * NS))
    if kind == "disk_full":
        n = filler.fill(writer, col)
        hold = int(rng.uniform(*cfg.disk_full_minutes) * 60 * NS)
        pending.append((writer.sim_ns() + hold, "free_disk"))  # the loop's clock: simulated, without the jumps
        pending.sort()
        return FaultRecord(kind, now, 0.0, f"ROOT filled ({n / 2**20:.1f} MiB), freed {hold / 60e9:.1f} min later",
                           now + hold)
    raise ValueError(f"unknown fault kind {kind!r}")


def check(res: SoakResult, writer: SierraScidWriter, root: Path) -> None:
    """Fill ``res`` with the comparisons and the evidence; every failed check goes to ``res.problems``."""
    src = writer.source_ticks()
    on_disk = writer.on_disk()
    if len(on_disk) != len(src):
        res.problems.append(f"the .scid files hold {len(on_disk)} records, the writer wrote {len(src)}")
    got, datas = collected_ticks(root)
    res.segments = [f"{d.header.get('date', '?')}{'' if d.seal is None else ' (sealed)'}" for d in datas]
    res.collected = len(got)
    res.lost, res.duplicated, res.mismatched = compare(src, got)
    seq = got["seq"].to_numpy()
    if len(seq) and not np.array_equal(seq, np.arange(1, len(seq) + 1)):
        dup_seq = len(seq) - len(np.unique(seq))
        res.problems.append(f"seq is not 1..{len(seq)} in order ({dup_seq} repeated, first {seq[:3].tolist()})")
    if res.lost or res.duplicated or res.mismatched:
        res.problems.append(f"collected ticks differ from the source: {res.lost} lost, {res.duplicated} duplicated, "
                            f"{res.mismatched} different positions")
    torn = [d.scan.path for d in datas if d.scan.problem is not None]
    if torn:
        res.problems.append(f"segments with a torn tail after a clean stop: {', '.join(torn)}")
    sealed = [d.header["date"] for d in datas if d.seal is not None and
              layout.manifest_path(Path(d.scan.path)).exists()]
    res.parquet_dates = sealed
    if sealed:
        pq_t = parquet_ticks(root, sealed)
        res.parquet_rows = len(pq_t)
        seg_t = got[got["date"].isin(sealed)].reset_index(drop=True)
        pl, pd_, pm = compare(seg_t, pq_t)
        if pl or pd_ or pm:
            res.problems.append(f"Parquet ticks of the sealed dates differ from their segments: {pl} missing, "
                                f"{pd_} extra, {pm} different")
    res.bars, res.bars_differ = compare_bars(src, datas)
    if res.bars_differ:
        res.problems.append(f"bars not as one uninterrupted bar builder makes them from the source: {res.bars_differ} "
                            "(changed or missing)")
    verify_root(res, root)
    events = journal_events(root)
    res.journal_kinds = dict(Counter(e["kind"] for e in events))
    evidence(res, events, datas, np.sort(src["ts_ns"].to_numpy()))


def evidence(res: SoakResult, events: list[dict], datas: list[sg.SegmentData], src_ns: np.ndarray | None = None) -> None:
    """For each kind of fault injected, what in the journal (or the segments) shows it; a missing one is a problem.
    A full disk shows only when the collector writes: an episode with no source trade inside it (the daily halt,
    a stall) needs no event (``src_ns``: the source's trade times, sorted)."""
    by = Counter(f.kind for f in res.faults)
    kinds = Counter(e["kind"] for e in events)
    spans = gap_spans(datas, events)
    for kind, n in by.items():
        if kind == "tear":
            res.evidence[kind] = f"{n} injected; none needed (a reader leaves a partial record for its next poll)"
            continue
        if kind == "kill":  # every stop of a run that had started is followed by a journaled restart
            early = sum(1 for f in res.faults if f.early)
            need = sum(1 for f in res.faults if f.kind in ("kill", "torn_segment") and not f.early) + res.exits_started
            have = kinds["restart"]
            ok = have >= need
            res.evidence[kind] = (f"{have} restart events for {need} stops of a started collector ({early + res.startup_kills}"
                                  " kills during a start-up, before it journaled anything, need none)")
        elif kind == "torn_segment":
            have = kinds["torn_tail"]
            ok = have >= n
            res.evidence[kind] = f"{have} torn_tail events for {n} torn tails"
        elif kind in ("stall", "jump"):
            covered = sum(1 for f in res.faults if f.kind == kind and any(
                a <= f.at_ns + 60 * NS and b >= (f.end_ns or f.at_ns) - 60 * NS for a, b in spans))
            ok = covered == n
            res.evidence[kind] = f"{covered} of {n} covered by a reported gap ({len(spans)} gaps reported)"
        elif kind == "disk_full" and src_ns is not None:
            episodes: list[list[int]] = []  # overlapping fills are one full disk for the collector
            for f in sorted((f for f in res.faults if f.kind == kind), key=lambda f: f.at_ns):
                end = f.end_ns or f.at_ns
                if episodes and f.at_ns <= episodes[-1][1]:
                    episodes[-1][1] = max(episodes[-1][1], end)
                else:
                    episodes.append([f.at_ns, end])
            need = sum(1 for a, b in episodes if np.searchsorted(src_ns, b) > np.searchsorted(src_ns, a))
            have = kinds["disk_full"]
            ok = have >= need
            res.evidence[kind] = (f"{have} disk_full events for {n} faults ({len(episodes)} episode(s), {need} with "
                                  "trades to write while the disk was full)")
        else:
            have = sum(kinds[k] for k in EVIDENCE[kind])
            ok = have >= n
            res.evidence[kind] = f"{have} {'/'.join(EVIDENCE[kind])} events for {n} faults"
        if not ok:
            res.evidence[kind] += " MISSING"
            res.problems.append(f"{kind}: not visible in the journal ({res.evidence[kind]})")
