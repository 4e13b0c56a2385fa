"""`run_sweep`: a parameter grid over one or many data sets, in parallel with Dask (or serially).

Tasks are (data set, chunk of combinations); chunks never split a signal group unless the group
alone is larger than the chunk, so signals are computed once per (group, data set). The data sets
are scattered once to every worker; results come back as small arrays and are merged into one
`SweepResult`. Finished tasks are cached (`research.sweep.cache`) so an interrupted sweep resumes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from strategy.params import Params

from . import cache as C
from .budget import (
    DEFAULT_MAX_COMBOS,
    SweepEstimate,
    check_combos,
    check_memory,
    choose_engine,
    estimate,
    machine_load,
)
from .grid import ParamGrid
from .result import SweepResult, summarize

__all__ = ["run_sweep", "build_datasets", "default_chunk_size", "check_workers", "simulated_sessions",
           "WARMUP_SESSIONS"]

WARMUP_SESSIONS = 10  # sessions of earlier bars that warm up a contract segment's signals (docs/sweeps.md)
MAX_CHUNK = 1024  # combinations per task at most (default chunking)
MIN_TASKS = 8  # default chunking aims at >= this many tasks per sweep
SPLITS = ("contract", "none")
SESSIONS = ("rth", "globex", "all")  # Params.session values (strategy.kernels.SESSION_CODES)
# Format of a cached task's arrays, part of the sweep key: bump it whenever a task returns other arrays,
# so that older cache entries (another key) are never reused. 2: + daily_trades (trades closed per session).
TASK_FORMAT = 2


# -------------------------------------------------------------------------------------- data sets
def _frame_identity(*arrays: np.ndarray, extra: Any = None) -> str:
    import hashlib

    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str((a.dtype.str, a.shape)).encode())
        h.update(memoryview(a).cast("B"))
    h.update(C.digest(extra, 64).encode())
    return h.hexdigest()[:16]


def build_datasets(series: Sequence[Any], split: str = "contract", warmup_sessions: int = WARMUP_SESSIONS) -> list:
    """The sweep's data sets: with ``split="contract"`` one per contract segment of a continuous series
    (`research.pipeline.contract_segments`), its signals warmed up on the `warmup_sessions` previous
    sessions of the series; with ``split="none"`` (or a one-contract series) one per series."""
    from research.backtest.run import (  # the backtest's own session keys and calendar
        calendar_arrays,
        session_keys,
    )
    from research.pipeline import contract_segments
    from strategy import kernels as K
    from strategy.market.instruments import get_spec
    from strategy.signals import (
        bar_duration_ns,
        kernel_inputs,
        resolve_order_flow,
        resolve_tick_size,
        time_inputs,
        to_ticks,
    )

    from .fused import DataSet

    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, not {split!r}")
    out: list[DataSet] = []
    names: set[str] = set()
    for s in series:
        frame = s.frame
        if frame.empty:
            continue
        tick = resolve_tick_size(frame)
        bar_ns = bar_duration_ns(frame, None)
        sym = str(frame.attrs.get("symbol") or frame.attrs.get("root") or "ES")
        spec = get_spec(frame.attrs.get("root") or sym)
        has_flow = "bid_volume" in frame.columns and "ask_volume" in frame.columns
        flow: dict[str, Any] = {}
        for choice in ("auto", "bidask", "ohlcv"):
            try:
                flow[choice] = resolve_order_flow(frame, Params(), choice)
            except ValueError as exc:
                flow[choice] = str(exc)
        keys = session_keys(frame.index)
        con_all = (pd.factorize(frame["contract"].astype(str))[0].astype(np.int64) if "contract" in frame.columns
                   else np.zeros(len(frame), np.int64))
        segs = contract_segments(frame) if split == "contract" else [(s.name, 0, len(frame))]
        # slices without attrs: pandas deep-copies attrs (32 roll records) on every slice and column access;
        # the kernel inputs get tick size, bar size and order-flow mode explicitly
        light = frame.copy(deep=False)
        light.attrs = {}
        if len(segs) == 1:
            segs = [(s.name, 0, len(frame))]
        for name, start, stop in segs:
            pre = start
            if start > 0 and warmup_sessions > 0:
                prev = np.unique(keys[:start])
                pre = int(np.searchsorted(keys, prev[-min(warmup_sessions, len(prev))], "left"))
            sub = light.iloc[pre:stop]
            x = kernel_inputs(sub, Params(), order_flow="bidask" if has_flow else "ohlcv", tick_size=tick,
                              bar_seconds=bar_ns / 1e9)
            raw = np.empty((4, len(sub)), np.int64)
            for r, col in enumerate(("open", "high", "low", "close")):
                to_ticks(sub[col].to_numpy(np.float64), tick, col, sub.index, out=raw[r])
            _, start_min, close_min, _ = time_inputs(sub.index, bar_ns)
            sess_close, day_ok = calendar_arrays(sub.index)
            k = keys[pre:stop]
            trade_from = start - pre
            sessions = np.unique(k[trade_from:])
            sidx = np.clip(np.searchsorted(sessions, k), 0, max(len(sessions) - 1, 0)).astype(np.int64)
            con = con_all[pre:stop].copy()
            widest, days = _simulated_sessions(raw[1, trade_from:], raw[2, trade_from:], k[trade_from:],
                                               con[trade_from:], start_min[trade_from:])
            xoff = x["xoff"]
            label = name
            j = 2
            while label in names:
                label = f"{name}#{j}"
                j += 1
            names.add(label)
            ds = DataSet(name=label, x=x["x"], xoff=np.ascontiguousarray(xoff, np.float64), tz=x["tz"], raw=raw,
                         close_min=close_min, sidx=sidx, con=con, sessions=sessions.astype(np.int64),
                         trade_from=int(trade_from), tick=float(tick), bar_ns=int(bar_ns),
                         tick_value=float(tick * spec.point_value), commission=float(spec.commission_per_side),
                         flow=flow, margin_per_contract=float(spec.margin_per_contract), widest_session=widest,
                         session_days=days, sess_close=sess_close, day_ok=day_ok)
            ds.identity = _frame_identity(ds.x, ds.xoff, ds.raw, ds.close_min, ds.sidx, ds.con, ds.sessions,
                                          ds.sess_close, ds.day_ok,
                                          extra=[ds.trade_from, ds.tick, ds.bar_ns, ds.tick_value, ds.commission,
                                                 ds.flow, K.N_X, ds.margin_per_contract])
            out.append(ds)
    if not out:
        raise ValueError("no bars to sweep")
    return out


# ------------------------------------------------------------------------------------------ tasks
def _groups(signal_hashes: list[str]) -> list[list[int]]:
    """Combination ids sharing a signal hash, groups in first-seen order."""
    groups: dict[str, list[int]] = {}
    for i, h in enumerate(signal_hashes):
        groups.setdefault(h, []).append(i)
    return list(groups.values())


def _chunks(groups: list[list[int]], chunk_size: int) -> list[np.ndarray]:
    """Combination ids per task: signal groups packed whole into chunks of at most `chunk_size`
    (a larger group is cut into pieces of `chunk_size`)."""
    chunks: list[list[int]] = []
    cur: list[int] = []
    for members in groups:
        if len(members) > chunk_size:
            if cur:
                chunks.append(cur)
                cur = []
            chunks += [members[i:i + chunk_size] for i in range(0, len(members), chunk_size)]
            continue
        if len(cur) + len(members) > chunk_size:
            chunks.append(cur)
            cur = []
        cur = cur + members
    if cur:
        chunks.append(cur)
    return [np.asarray(c, np.int64) for c in chunks]


def default_chunk_size(n_combos: int, n_datasets: int, largest_group: int = 1) -> int:
    """Combinations per task when not given: large tasks (Dask costs ~ms per task; measured on the 32
    contracts: 1024-combination tasks 1.2x faster than 256), at least `MIN_TASKS` tasks per sweep when
    that does not cut a signal group (one data set still spreads over workers), never more than
    `MAX_CHUNK`. Depends on the sweep only (task cache keys use it)."""
    per_dataset = -(-MIN_TASKS // max(n_datasets, 1))
    return max(1, min(MAX_CHUNK, max(-(-n_combos // per_dataset), largest_group)))


def _as_series(series: Any) -> list:
    from research.pipeline import Series

    if isinstance(series, pd.DataFrame):
        return [Series(str(series.attrs.get("symbol") or "series"), series, [])]
    if isinstance(series, Series):
        return [series]
    return list(series)


def _data_files(series: list) -> list[dict[str, str]]:
    from research.store import file_sha256

    seen: dict[str, str] = {}
    for s in series:
        for p in s.files:
            p = Path(p)
            if str(p) not in seen and p.exists():
                seen[str(p)] = file_sha256(p)
    return [{"path": k, "sha256": v} for k, v in seen.items()]


# ----------------------------------------------------------------------------------------- engines
class _Progress:
    """One rich progress bar for the whole sweep, shown from its first second: the phase being done
    (checking the values, building the data sets and the combinations, compiling or waiting for the cluster),
    then the evaluations
    (combinations x data sets) with their ETA. Disabled: every call is a no-op."""

    def __init__(self, enabled: Any) -> None:
        self._p = None
        self._task = None
        self.seconds: dict[str, float] = {}  # wall time of each phase, by its first words (meta["phases_s"])
        self._current: tuple[str, float] | None = None
        if enabled:
            console = enabled if not isinstance(enabled, bool) else None  # a rich Console to draw on
            from research.progress import make_progress

            self._p = make_progress(console=console, description="[bold]sweep[/] {task.description}")

    def __enter__(self) -> _Progress:
        if self._p is not None:
            self._p.start()
            self._task = self._p.add_task("starting", total=None)
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._p is not None:
            self._p.stop()

    def phase(self, text: str) -> None:
        """A step without a known length (the bar pulses); drawn at once, however short."""
        self._replace(text, None)

    def start(self, text: str, total: int) -> None:
        """Counted work from here: `total` units, advanced by `advance`."""
        self._replace(text, total)

    def _replace(self, text: str, total: int | None) -> None:
        self.lap()
        self._current = (" ".join(text.split(" (")[0].split()[:4]), time.perf_counter())
        if self._p is not None:
            self._p.remove_task(self._task)
            self._task = self._p.add_task(text, total=total)
            self._p.refresh()

    def advance(self, units: int = 1) -> None:
        if self._p is not None:
            self._p.advance(self._task, units)

    def lap(self) -> None:
        """Close the current phase's timing."""
        if self._current is not None:
            name, t = self._current
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t
            self._current = None


def _run_serial(datasets, pending, plans, on_done, bar: _Progress, units, cached: int) -> None:
    from .fused import run_plan, warmup

    bar.phase("compiling the kernels (numba cache)")
    warmup()
    bar.start(f"evaluating {_units_text(pending, cached)}", sum(units[c] for _, c in pending.values()))
    for key, (d, c) in pending.items():
        res = run_plan(datasets[d], plans[c])
        on_done(key, res)
        bar.advance(units[c])


class _LocalCluster:
    """A local Dask cluster started (and its workers warmed up) on a background thread, so that it
    comes up while this process builds the data sets; `client()` waits for it, `close()` stops it."""

    def __init__(self, n_workers: int) -> None:
        import concurrent.futures

        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="navale-cluster")
        self._started = self._pool.submit(self._start, n_workers)

    @staticmethod
    def _start(n_workers: int):
        from distributed import Client, LocalCluster

        from . import fused

        cluster = LocalCluster(n_workers=n_workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               silence_logs=logging.ERROR)
        client = None
        try:
            client = Client(cluster)
            client.run(fused.warmup)  # compile (or load numba's cache) once per worker, before the tasks
        except BaseException:
            _LocalCluster._stop(cluster, client)
            raise
        return cluster, client

    @staticmethod
    def _stop(cluster, client) -> None:
        try:
            if client is not None:
                client.close()
        finally:
            cluster.close()

    def client(self):
        return self._started.result()[1]

    def _close_started(self) -> None:
        try:
            cluster, client = self._started.result()
        except Exception:  # it never started: nothing to close (`client()` raised its error)
            return
        self._stop(cluster, client)

    def close(self, wait: bool = True) -> None:
        """Stop the cluster; ``wait=False`` (an error is on its way up): queue the stop behind the
        start-up on the cluster's thread and return at once, so the error is not held back by it."""
        if wait:
            try:
                self._close_started()
            finally:
                self._pool.shutdown(wait=True)  # its one task is done: the thread ends at once
        else:
            self._pool.submit(self._close_started)
            self._pool.shutdown(wait=False)  # the thread runs the stop, then ends; exit waits for it


def _run_dask(datasets, pending, plans, on_done, bar: _Progress, units, cached: int, scheduler,
              local: _LocalCluster | None) -> dict[str, Any]:
    from distributed import Client, as_completed

    from . import fused

    if local is not None:
        bar.phase("waiting for the local Dask cluster (started with the data sets)")
        client = local.client()
    else:
        bar.phase(f"connecting to {scheduler}")
        client = Client(scheduler)
    try:
        info = {"scheduler": client.scheduler.address, "workers": len(client.scheduler_info()["workers"])}
        if local is None:
            bar.phase("compiling the kernels on the workers (numba cache)")
            client.run(fused.warmup)  # compile (or load numba's cache) once per worker, before the tasks
        # a data set used by several tasks goes to every worker once, one used by a single task to one
        # worker (round robin: the task runs where its data is); chunk plans go to every worker.
        # A task is (data set, plan) references.
        bar.phase("sending the data sets to the workers")
        needed = sorted({d for d, _ in pending.values()})
        shared = len(pending) > len(needed)
        futures_ds = dict(zip(needed, client.scatter([datasets[d] for d in needed], broadcast=shared, hash=False)))
        used = sorted({c for _, c in pending.values()})
        futures_plan = dict(zip(used, client.scatter([plans[c] for c in used], broadcast=True, hash=False)))
        futs = {}
        for key, (d, c) in pending.items():
            f = client.submit(fused.run_plan, futures_ds[d], futures_plan[c], key=f"sweep-task-{key}", pure=False)
            futs[f] = key
        bar.start(f"evaluating {_units_text(pending, cached)}", sum(units[c] for _, c in pending.values()))
        for f, res in as_completed(list(futs), with_results=True):
            key = futs[f]
            on_done(key, res)
            bar.advance(units[pending[key][1]])
        return info
    finally:
        if local is None:
            client.close()


def _units_text(pending: dict[str, tuple[int, int]], cached: int) -> str:
    """What the bar counts: combinations x data sets still to evaluate (and the tasks the cache had)."""
    n_ds = len({d for d, _ in pending.values()})
    from_cache = f", {cached} task(s) from the cache" if cached else ""
    return f"combinations x data sets ({n_ds} data set{'s' if n_ds != 1 else ''}{from_cache})"


def _simulated_sessions(high: np.ndarray, low: np.ndarray, session_key: np.ndarray, contract: np.ndarray,
                        start_min: np.ndarray) -> tuple[dict[str, tuple[int, int]], dict[str, np.ndarray]]:
    """Per `Params.session` value, over the bars a backtest simulates (`research.backtest.sanity`, the
    backtest's rule): the largest high-low range (ticks) of one session with its trading date, and the
    trading dates with a simulated bar."""
    from research.backtest.sanity import (
        in_session_rows,
        largest_session_range,
        session_ends,
    )

    widest: dict[str, tuple[int, int]] = {}
    days: dict[str, np.ndarray] = {}
    for session in SESSIONS:
        rows = in_session_rows(start_min, session)
        key, con = session_key[rows], contract[rows]
        rng, first = largest_session_range(high[rows], low[rows], session_ends(key, con))
        widest[session] = (rng, int(key[first]) if len(key) else 0)
        days[session] = np.unique(key)
    return widest, days


def simulated_sessions(datasets: Sequence[Any], sessions: Sequence[str]) -> int:
    """Trading dates with a simulated bar in any data set for any of `sessions` (`Params.session`
    values): the rows of the sweep's daily results, at most."""
    days = [ds.session_days[s] for ds in datasets for s in sessions if s in ds.session_days]
    return len(np.unique(np.concatenate(days))) if days else 0


def _check_against_data(series: list, datasets: list, params: list[Params]) -> None:
    """Grid values that cannot mean anything on these data (`research.backtest.sanity`, the backtest's
    rules): a size above an instrument's limit; a stop wider than the largest session range of the bars
    its combination simulates (its `Params.session`), over every data set."""
    from research.backtest.sanity import check_size, check_stop
    from strategy.market.instruments import get_spec

    contracts = max(p.contracts for p in params)
    for s in series:
        f = s.frame
        check_size(contracts, get_spec(f.attrs.get("root") or str(f.attrs.get("symbol") or "ES")))
    widest_stop: dict[str, int] = {}
    for p in params:
        widest_stop[p.session] = max(widest_stop.get(p.session, 0), p.stop_ticks)
    for session, stop in widest_stop.items():
        rng, day, name = max((ds.widest_session[session] + (ds.name,) for ds in datasets
                              if ds.widest_session.get(session, (0, 0))[0] > 0), default=(0, 0, ""))
        if rng:
            when = np.datetime64(day, "D").astype(str)
            check_stop(stop, rng, f"session of {when} in data set {name}, session = {session!r}")


# ------------------------------------------------------------------------------------------ sweep
def run_sweep(series: Any, grid: ParamGrid | Mapping[str, Sequence[Any]], *, base: Params | None = None,
              scheduler: str | None = "auto", n_workers: int = 2, chunk_size: int | None = None,
              split: str = "contract", cache_dir: str | Path | None | bool = None, progress: Any = True,
              warmup_sessions: int = WARMUP_SESSIONS, max_combos: int | None = DEFAULT_MAX_COMBOS,
              on_estimate: Callable[[SweepEstimate], None] | None = None,
              memory_limit: int | None = None) -> SweepResult:
    """Evaluate every combination of `grid` (values replacing `base`, default `Params()`) on `series`
    (`research.pipeline.Series` list, one Series or a bar frame) with the fused path.

    `scheduler`: ``"auto"`` (default) = serial, or a local Dask cluster of `n_workers` when the cost model
    (`research.sweep.budget.choose_engine`) says it saves at least 15 % of the serial time;
    None = a local Dask cluster of `n_workers` single-threaded processes (started while the data sets
    are built, closed here, at most one per core); ``"tcp://host:port"`` = that cluster; ``"serial"`` =
    in this process, no Dask.
    `split`: "contract" = one data set per contract of a continuous series, "none" = whole series.
    `chunk_size`: combinations per task (default `default_chunk_size`); signal groups are kept whole when they fit.
    `cache_dir`: finished tasks are kept there (default ``$NAVALE_DATA_DIR/sweep-cache``; False: no cache).
    `max_combos`: a larger grid raises `SweepTooLarge` before anything is built (None: no limit).
    `progress`: one rich bar from the first second (phases, then combinations x data sets with an ETA);
    True draws on rich's console, a `rich.console.Console` on that one.

    Order: the combinations are counted and their values checked (`ParamGrid.validate`, never
    built), the engine chosen, the data sets built, the time and memory estimated
    (`research.sweep.budget.estimate`, given to `on_estimate`) and refused above `memory_limit` bytes
    (default: the memory available), and only then the combinations built. A grid value the data
    cannot support (a stop wider than every session's range of the bars it simulates, a size above
    the instrument's limit) raises `ParamsError` before any evaluation.
    """
    t0 = time.perf_counter()
    grid = grid if isinstance(grid, ParamGrid) else ParamGrid(grid)
    check_combos(grid, max_combos)  # counted from the value lists: a huge grid is refused before it is built
    check_workers(n_workers, None if scheduler == "auto" else scheduler)
    with _Progress(progress) as bar:
        bar.phase(f"checking the values of {len(grid):,} combinations")
        base = base or Params()
        grid.validate(base)
        series = _as_series(series)
        load = machine_load()
        why = ""
        if scheduler == "auto":
            chosen, why = choose_engine(grid, sum(len(s.frame) for s in series), n_workers, load=load)
            scheduler = "serial" if chosen == "serial" else None
        local = _LocalCluster(n_workers) if scheduler is None else None  # comes up while the data sets are built
        try:
            bar.phase("building the data sets" + (" (and starting a local Dask cluster)" if local else ""))
            datasets = build_datasets(series, split=split, warmup_sessions=warmup_sessions)
            sessions = grid.values.get("session", (base.session,))
            est = estimate(grid, sum(ds.bars for ds in datasets), simulated_sessions(datasets, sessions),
                           workers=1 if scheduler == "serial" else n_workers, cluster=scheduler is None, load=load)
            if why:
                est = dataclasses.replace(est, note=f"engine: {why}")
            if on_estimate is not None:
                on_estimate(est)
            check_memory(est, memory_limit)
            bar.phase(f"building {len(grid):,} combinations")
            params = grid.params(base)
            combos = grid.combos()
            _check_against_data(series, datasets, params)
            res = _evaluate(t0, grid, base, params, combos, series, datasets, scheduler, n_workers, chunk_size,
                            split, cache_dir, warmup_sessions, bar, local)
        except BaseException:
            if local is not None:
                local.close(wait=False)
            raise
        if local is not None:
            bar.phase("closing the local Dask cluster")
            local.close()
        bar.lap()
        res.meta["engine_choice"] = why or "given"
        res.meta["phases_s"] = {k: round(v, 3) for k, v in bar.seconds.items()}
        return res


def check_workers(n_workers: int, scheduler: str | None = None) -> None:
    """Refuse a local cluster of less than 1 or more workers than this machine has cores (each worker
    is one single-threaded process; more would only compete for the same cores)."""
    import os

    if scheduler is not None:
        return
    cores = os.cpu_count() or 1
    if not 1 <= n_workers <= cores:
        raise ValueError(f"--workers {n_workers}: a local cluster runs 1 to {cores} worker processes on this "
                         f"machine ({cores} core{'s' if cores != 1 else ''}); for more, start a Dask cluster and "
                         "pass --scheduler")


def _evaluate(t0, grid, base, params, combos, series, datasets, scheduler, n_workers, chunk_size, split, cache_dir,
              warmup_sessions, bar: _Progress, local: _LocalCluster | None) -> SweepResult:
    """The sweep once its combinations are validated and its data sets built: tasks, cache, engine, merge."""
    n = len(params)
    bar.phase("hashing the combinations")
    shashes = [p.signal_hash() for p in params]
    groups = _groups(shashes)
    if chunk_size is None:
        chunk_size = default_chunk_size(n, len(datasets), max(len(g) for g in groups))
    chunk = int(chunk_size)
    if chunk < 1:
        raise ValueError("chunk_size must be >= 1")
    chunks = _chunks(groups, chunk)
    code = C.code_version()
    hashes = [p.hash() for p in params]
    sweep_key = C.digest({"data": [d.identity for d in datasets], "names": [d.name for d in datasets],
                          "base": base.hash(), "grid": grid.spec(), "combos": hashes, "split": split,
                          "warmup_sessions": warmup_sessions, "code": code, "task_format": TASK_FORMAT})
    tasks: dict[str, tuple[int, int]] = {}  # task key -> (data set, chunk)
    for d, ds in enumerate(datasets):
        for c, ids in enumerate(chunks):
            key = C.digest({"data": ds.identity, "name": ds.name, "combos": ids.tolist(),
                            "hashes": [hashes[i] for i in ids]})
            tasks[key] = (d, c)

    cdir = None
    if cache_dir is not False:
        cdir = Path(cache_dir) if cache_dir not in (None, True) else C.default_cache_dir()
        cdir = cdir / sweep_key
    results: dict[str, dict[str, Any]] = {}
    if cdir is not None:
        bar.phase("reading the task cache")
        for key in tasks:
            got = C.load_task(cdir / f"{key}.npz")
            if got is not None:
                results[key] = got
    n_cached = len(results)
    pending = {k: v for k, v in tasks.items() if k not in results}

    def on_done(key: str, res: dict[str, Any]) -> None:
        results[key] = res
        if cdir is not None:
            C.save_task(cdir / f"{key}.npz", res)

    engine = "serial" if scheduler == "serial" else "dask"
    info: dict[str, Any] = {}
    if pending:
        from .fused import make_plan

        bar.phase("planning the tasks")
        plans = [make_plan(ids, [params[i] for i in ids]) for ids in chunks]
        units = [len(ids) for ids in chunks]
        if engine == "serial":
            _run_serial(datasets, pending, plans, on_done, bar, units, n_cached)
        else:
            info = _run_dask(datasets, pending, plans, on_done, bar, units, n_cached, scheduler, local)
    bar.phase("merging the results")

    # ---- merge: accumulators add up; sessions summed by date over data sets
    from .fused import N_ACC

    acc = np.zeros((n, N_ACC))
    active_days: set[int] = set()
    for key in tasks:
        r = results[key]
        acc[r["combo"]] += r["acc"]
        active_days.update(r["sessions"][r["active"]].tolist())
    days = np.array(sorted(active_days), np.int64)
    daily = np.zeros((len(days), n))
    daily_trades = np.zeros((len(days), n), np.int32)
    for key in tasks:
        r = results[key]
        act = r["active"]
        rows = np.searchsorted(days, r["sessions"][act])
        daily[rows[:, None], r["combo"][None, :]] += r["daily"][act]
        daily_trades[rows[:, None], r["combo"][None, :]] += r["daily_trades"][act]
    capital = np.array([p.initial_capital_usd for p in params], np.float64)
    summary = summarize(acc, daily, capital)
    index = pd.RangeIndex(n, name="combo")
    grid_df = pd.DataFrame({k: [c[k] for c in combos] for k in grid.names}, index=index)
    grid_df["params_hash"] = hashes
    grid_df["signal_hash"] = shashes
    session_index = pd.DatetimeIndex(days.astype("datetime64[D]").astype("datetime64[ns]"), name="session")
    daily_df = pd.DataFrame(daily, index=session_index, columns=pd.Index(range(n), name="combo"))
    trades_df = pd.DataFrame(daily_trades, index=session_index.copy(), columns=pd.Index(range(n), name="combo"))
    def day(ds, k: int) -> np.datetime64:
        return ds.sessions[k].astype("datetime64[D]").astype("datetime64[ns]") if len(ds.sessions) else \
            np.datetime64("NaT", "ns")

    segments = pd.DataFrame({
        "name": [ds.name for ds in datasets],
        "first_session": pd.DatetimeIndex([day(ds, 0) for ds in datasets]).as_unit("ns"),
        "last_session": pd.DatetimeIndex([day(ds, -1) for ds in datasets]).as_unit("ns"),
        "bars": np.array([ds.bars for ds in datasets], np.int64),
    })
    meta = {
        "sweep_id": sweep_key,
        "base_params": base.to_dict(),
        "base_params_hash": base.hash(),
        "capital": float(base.initial_capital_usd),
        "n_trials": n,
        "grid": grid.spec(),
        "data": _data_files(series),
        "series": [s.name for s in series],
        "split": split,
        "warmup_sessions": warmup_sessions,
        "datasets": len(datasets),
        "chunk_size": chunk,
        "tasks": len(tasks),
        "tasks_cached": n_cached,
        "tasks_computed": len(pending),
        "signal_runs": int(sum(int(results[k]["signal_runs"]) for k in pending)),
        "signal_groups": len(groups),
        "created": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "elapsed_s": round(time.perf_counter() - t0, 3),
        "engine": engine,
        "n_workers": info.get("workers", 1 if engine == "serial" else n_workers),
        "scheduler": info.get("scheduler", "serial" if engine == "serial" else scheduler),
        "code_version": code,
        "cache_dir": str(cdir) if cdir is not None else None,
        "synthetic": any(bool(s.frame.attrs.get("synthetic", False)) for s in series),
    }
    return SweepResult(grid=grid_df, summary=summary, daily_pnl=daily_df, segments=segments, meta=meta,
                       daily_trades=trades_df)
