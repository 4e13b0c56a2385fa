"""How big a sweep is before it starts: the combination count (refused above a limit), and a time
and memory estimate from a per-combination cost model (docs/sweeps.md "Size limit and estimate").

The grid is counted from its value lists, never expanded: a 10^7-combination grid is refused in
microseconds, without allocating its combinations.
"""

from __future__ import annotations

from dataclasses import dataclass

from strategy.params import ParamsError

from .grid import ParamGrid

__all__ = ["DEFAULT_MAX_COMBOS", "SweepTooLarge", "SweepEstimate", "check_combos", "estimate", "machine_load",
           "available_memory", "check_memory", "choose_engine"]

# Combinations a sweep runs without --max-combos: ~35x the default grid; on the 32 ES contracts (2,062
# sessions) about 1.7 GB and a minute or two on 2 idle cores (see `estimate`).
DEFAULT_MAX_COMBOS = 20_000

# Cost model, measured on this project's 2-core machine, idle (benchmarks/bench_sweep.py, docs/sweeps.md):
SIGNAL_NS_PER_BAR = 45.0  # the signal kernel (trade flags only), per bar and signal group (rth groups skip most bars)
SIMULATION_NS_PER_BAR = 2.2  # trade simulation + online metrics, per bar and combination
BUILD_NS_PER_BAR = 1_400.0  # building the data sets (kernel inputs, ticks), per bar, once
PREPARE_S_PER_COMBO = 2e-4  # validated Params, hashes and task plans, per combination (in this process)
CLUSTER_START_S = 1.5  # a local Dask cluster's start-up and shut-down (measured 0.4 + 0.3 s), the scatter and the
# larger merge (0.2-0.5 s each)
WORKER_WARMUP_S = 0.7  # a Dask worker importing the kernels and loading numba's cache (measured 0.6 s, in parallel)
LOCAL_WARMUP_S = 0.3  # the same in this process (--serial)
COMPILE_S = 30.0  # numba compiling the kernels when its cache is cold (first run, changed code), per process
# `scheduler="auto"` takes the local cluster only when the model says it saves at least this share of the
# serial time: the model's error must not make Dask the slower choice (fitted on the shipped grids: the
# model's serial / Dask ratio was within 5 % of the measured one)
DASK_MIN_SAVING = 0.15
# per combination and session: daily P&L (8) + trades (4), per task and merged, plus the summary's and the
# saved tables' temporaries (measured: 1,960 combinations x 2,062 sessions of the 32 ES contracts, +174 MB peak RSS)
RESULT_BYTES_PER_SESSION = 40
OBJECT_BYTES_PER_COMBO = 2_100  # per combination: its Params, combination dict, hashes and grid row


class SweepTooLarge(ParamsError):
    """The grid has more combinations than the limit allows."""


def check_combos(grid: ParamGrid, max_combos: int | None = DEFAULT_MAX_COMBOS, *, source: str = "") -> int:
    """The number of combinations to run; `SweepTooLarge` (count, limit, how to raise it) above
    `max_combos` (None: no limit)."""
    n = len(grid)
    if max_combos is not None and n > max_combos:
        where = f"{source}: " if source else ""
        sizes = " x ".join(f"{len(v)} {k}" for k, v in grid.values.items())
        raise SweepTooLarge(f"{where}the grid has {n:,} combinations ({sizes}), above the limit of {max_combos:,}: "
                            f"narrow it, draw a sample (--sample N) or raise the limit (--max-combos {n})")
    return n


@dataclass(frozen=True)
class SweepEstimate:
    """Expected cost of a sweep (an order of magnitude: the machine's load changes it)."""

    combos: int
    signal_groups: int
    bars: int
    sessions: int
    seconds: float
    memory_bytes: int
    load: float = 1.0
    note: str = ""  # how the engine was chosen (`choose_engine`), when it was

    def text(self) -> str:
        return (f"{self.combos:,} combinations ({self.signal_groups:,} signal group(s)) x {self.bars:,} bars, "
                f"{self.sessions:,} sessions: about {_duration(self.seconds)} and {_size(self.memory_bytes)} "
                f"(estimate{f', machine load x{self.load:.1f} included' if self.load > 1.05 else ''}; a first run "
                f"also compiles the kernels, ~{COMPILE_S:.0f} s){f'; {self.note}' if self.note else ''}")


def estimate(grid: ParamGrid, bars: int, sessions: int, *, workers: float = 1, cluster: bool = False,
             load: float = 1.0) -> SweepEstimate:
    """Time and memory of sweeping `grid` over `bars` bars covering `sessions` trading sessions, on
    `workers` processes (`cluster`: a local Dask cluster is started; workers > 1 without `cluster`: a
    remote one). `sessions` are those the results will hold (sessions with a simulated bar). `load` >= 1
    scales the time for a busy machine (see `machine_load`)."""
    n = len(grid)
    groups = grid.signal_groups
    compute = bars * (groups * SIGNAL_NS_PER_BAR + n * SIMULATION_NS_PER_BAR) * 1e-9 / max(1, workers)
    build = bars * BUILD_NS_PER_BAR * 1e-9
    if cluster:  # a local cluster starts and warms up while this process builds the data sets
        ready = max(build, CLUSTER_START_S + WORKER_WARMUP_S)
    else:
        ready = build + (WORKER_WARMUP_S if workers > 1 else LOCAL_WARMUP_S)
    seconds = (ready + n * PREPARE_S_PER_COMBO + compute) * max(1.0, load)
    memory = n * (sessions * RESULT_BYTES_PER_SESSION + OBJECT_BYTES_PER_COMBO)
    return SweepEstimate(combos=n, signal_groups=groups, bars=int(bars), sessions=int(sessions), seconds=seconds,
                         memory_bytes=int(memory), load=max(1.0, load))


def choose_engine(grid: ParamGrid, bars: int, n_workers: int, *, load: float = 1.0) -> tuple[str, str]:
    """``("serial" | "dask", why)`` for `scheduler="auto"`: a local cluster of `n_workers` only when the
    cost model says it takes at most ``1 - DASK_MIN_SAVING`` of the serial time, start-up included, so
    that Dask is never chosen for a grid it would run slower (small grids: the start-up dominates).
    On a loaded machine (`load` runnable processes per core) the workers share the cores with the
    rest: they count as ``n_workers / load`` (a machine twice busy gains nothing from 2 workers)."""
    serial = estimate(grid, bars, 0, workers=1, load=load).seconds
    if n_workers < 2:
        return "serial", f"serial: 1 worker (about {_duration(serial)})"
    effective = max(1.0, n_workers / max(1.0, load))
    dask = estimate(grid, bars, 0, workers=effective, cluster=True, load=load).seconds
    if dask <= (1 - DASK_MIN_SAVING) * serial:
        return "dask", f"a local Dask cluster of {n_workers} workers: about {dask:.1f} s against {serial:.1f} s serial"
    return "serial", f"serial: about {serial:.1f} s against {dask:.1f} s on a local Dask cluster of {n_workers} workers"


def available_memory() -> int | None:
    """Bytes this machine can give a new allocation without swapping (``MemAvailable`` of
    /proc/meminfo, else free pages); None when unknown."""
    import os

    try:
        with open("/proc/meminfo", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def check_memory(est: SweepEstimate, available: int | None = None) -> None:
    """`SweepTooLarge` when the estimated memory is above `available` (default: `available_memory()`)."""
    available = available_memory() if available is None else available
    if available is not None and est.memory_bytes > available:
        raise SweepTooLarge(f"the sweep needs about {_size(est.memory_bytes)} ({est.combos:,} combinations x "
                            f"{est.sessions:,} sessions), above the {_size(available)} of memory available on this "
                            f"machine: narrow the grid, draw a sample (--sample N) or sweep fewer files")


def machine_load() -> float:
    """Runnable processes per core over the last minute (1.0 when unknown): on a shared machine the
    cost model's times stretch by about this factor."""
    import os

    try:
        return max(1.0, os.getloadavg()[0] / (os.cpu_count() or 1))
    except (OSError, AttributeError):
        return 1.0


def _duration(s: float) -> str:
    if s < 60:
        return f"{max(s, 1):.0f} s"
    if s < 3600:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.1f} h"


def _size(b: float) -> str:
    for unit, scale in (("GB", 1e9), ("MB", 1e6)):
        if b >= scale:
            return f"{b / scale:.1f} {unit}"
    return f"{max(b / 1e3, 1):.0f} kB"
