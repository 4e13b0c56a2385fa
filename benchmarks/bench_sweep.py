"""Sweep throughput: the fused numba path vs ``vbt.Portfolio.from_signals``, measured in one run.

Figures (not assertions), in (bars x combinations) / s, on the same 1e5 bars (real ES 5-minute
contracts concatenated when ../shared/data is present, else synthetic 1-minute bars) with
``session="all"`` so that every bar goes through the simulator:

(a) one signal group x 1,000 execution combinations (10 stops x 10 targets x 10 time stops):
    - fused: `research.sweep.fused.run_plan` = one signal-kernel run + 1,000 simulations with online
      metrics (per-combination accumulators, sessions x combinations P&L); the plan (grouping by
      signal hash, simulator vectors: done once per chunk for all data sets) is timed apart;
    - vectorbt: `Portfolio.from_signals` on the same precomputed signals (computing them is not timed),
      one column per combination: entries/exits from the signals shifted to the next bar's open,
      stop/target as per-column ``sl_stop``/``tp_stop`` fractions, fees and slippage as fractions.
      vectorbt has no time stop, no "stop first in one bar" rule and no daily limits, so its trades
      are NOT identical: it is the same amount of work of the same kind, not the same backtest.
    Each contender runs in its own subprocess; its peak RSS is ``getrusage(RUSAGE_CHILDREN).ru_maxrss``
    read by an otherwise idle parent, minus the same for a subprocess that only does the imports.
    Targets: fused >= 3x vectorbt's throughput at <= 1/10 of its peak memory.
(b) serial fused throughput with signal parameters varied: 10 signal groups x 100 execution variants
    and 100 groups x 10 variants (1,000 combinations each).
(c) the end-to-end case, when the 32 real contracts are present (not with --quick): the default
    grid (576 combinations) and `signal_grid.toml` (972) x 32 contracts, one data set per contract,
    serial, on a 2-worker `LocalCluster` (cluster start-up included) and with the default engine
    choice (``scheduler="auto"``), cache off; speed-up on 2 workers and scaling efficiency.

Run: .venv/bin/python benchmarks/bench_sweep.py [--quick]   (--quick: 1e4 bars x 100 combinations)
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAVALE_SHARED_DATA") or ROOT.parent / "shared" / "data")
STOPS = list(range(4, 14))  # 10 stops (ticks)
TARGETS = [0.75, 1.0, 1.25, 1.5, 1.75, 2.0, 2.25, 2.5, 3.0, 3.5]  # 10 targets (R)
TIME_STOPS = [5, 10, 15, 20, 30, 40, 50, 75, 100, 150]  # 10 time stops (bars)


# -------------------------------------------------------------------------------------- data
def make_frame(n: int):
    """`n` bars: the last n of the real contracts stitched, else synthetic 1-minute bars."""
    files = sorted((SHARED / "es-5m").glob("ES*.txt.gz"), key=lambda p: (p.name[3:5], "HMUZ".index(p.name[2]))) \
        if (SHARED / "es-5m").exists() else []  # chronological: ESH15, ESM15, ...
    if files:
        from research.pipeline import load_series

        need = max(1, int(np.ceil(n / 16_000)) + 1)
        frame = load_series(files[-need:])[0].frame
        out = frame.iloc[-n:]
        out.attrs = dict(frame.attrs)
        return out, f"real ES 5-minute bars: the last {n:,} of {files[-need].name[:5]}..{files[-1].name[:5]} stitched"
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from bench_signals import synthetic_bars

    return synthetic_bars(n), f"synthetic 1-minute bars ({n:,})"


def exec_params(n_combos: int):
    from strategy import Params

    base = Params(session="all")
    out = []
    for s in STOPS:
        for t in TARGETS:
            for ts in TIME_STOPS:
                out.append(base.replace(stop_ticks=s, target_r=t, time_stop_bars=ts))
    return out[:n_combos] if n_combos <= len(out) else [out[i % len(out)].replace(slippage_ticks=i // len(out))
                                                         for i in range(n_combos)]


# ------------------------------------------------------------------------------------ children
def child_fused(data: Path, n_combos: int) -> dict:
    from research.pipeline import Series
    from research.sweep import fused
    from research.sweep.runner import build_datasets

    frame = pickle.loads(data.read_bytes())
    ds = build_datasets([Series("bench", frame, [])], split="none")[0]
    params = exec_params(n_combos)
    fused.warmup()  # numba: compile or load the cache before timing
    one = fused.make_plan(np.arange(1), params[:1])
    t_one = float("inf")
    for _ in range(3):  # one signal run + one simulation (best of 3)
        t = time.perf_counter()
        fused.run_plan(ds, one)
        t_one = min(t_one, time.perf_counter() - t)
    t = time.perf_counter()
    plan = fused.make_plan(np.arange(len(params)), params)  # once per chunk in a sweep, for all data sets
    t_plan = time.perf_counter() - t
    t = time.perf_counter()
    out = fused.run_plan(ds, plan)
    el = time.perf_counter() - t
    return dict(elapsed=el, signal_and_one=t_one, plan=t_plan, bars=ds.bars, combos=len(params),
                trades=int(out["acc"][:, 0].sum()))


def child_vbt(data: Path, n_combos: int) -> dict:
    import vectorbt as vbt

    from strategy import compute_signals
    from strategy.market.instruments import get_spec

    frame = pickle.loads(data.read_bytes())
    params = exec_params(n_combos)
    p0 = params[0]
    sig = compute_signals(frame, p0)  # not timed: vectorbt gets the signals ready-made
    spec = get_spec(frame.attrs.get("root") or "ES")
    tick = float(frame.attrs.get("tick_size") or spec.tick_size)
    px = float(frame["close"].median())

    def shift(a: np.ndarray) -> np.ndarray:  # decided at bar t's close, filled at bar t+1's open
        out = np.zeros_like(a)
        out[1:] = a[:-1]
        return out[:, None]

    b = {c: sig[c].to_numpy(bool) for c in ("long_entry", "short_entry", "long_candidate", "short_candidate",
                                           "bull_violation", "bear_violation")}
    col = {c: frame[c].to_numpy(np.float64)[:, None] for c in ("open", "high", "low", "close")}
    sl = np.array([p.stop_ticks * tick / px for p in params])[None, :]
    tp = np.array([p.target_ticks * tick / px for p in params])[None, :]
    fees = spec.commission_per_side / (px * spec.point_value)
    slip = p0.slippage_ticks * tick / px

    def go(n: int, k: int):
        cut = {c: v[:n] for c, v in col.items()}
        return vbt.Portfolio.from_signals(
            cut["close"], entries=shift(b["long_entry"])[:n],
            exits=shift(b["bull_violation"] | b["short_candidate"])[:n],
            short_entries=shift(b["short_entry"])[:n],
            short_exits=shift(b["bear_violation"] | b["long_candidate"])[:n],
            price=cut["open"], open=cut["open"], high=cut["high"], low=cut["low"], sl_stop=sl[:, :k], tp_stop=tp[:, :k],
            size=p0.contracts, fees=fees, slippage=slip, init_cash=1e9, freq="5min")

    go(500, 2)  # numba compile / cache load before timing
    n = len(frame)
    t = time.perf_counter()
    pf = go(n, len(params))
    el = time.perf_counter() - t
    return dict(elapsed=el, bars=n, combos=len(params), trades=int(pf.orders.count().sum() // 2))


def child_baseline(kind: str) -> dict:
    if kind == "fused":
        from research.sweep import fused  # noqa: F401
        from research.sweep.runner import build_datasets  # noqa: F401
    else:
        import vectorbt  # noqa: F401

        from strategy import compute_signals  # noqa: F401
    return {}


def child_groups(data: Path, groups: int, variants: int) -> dict:
    from research.pipeline import Series
    from research.sweep import fused
    from research.sweep.runner import build_datasets

    frame = pickle.loads(data.read_bytes())
    ds = build_datasets([Series("bench", frame, [])], split="none")[0]
    ex = exec_params(variants)
    thresholds = np.linspace(0.10, 0.45, groups)
    params = [p.replace(entry_threshold=round(float(t), 6)) for t in thresholds for p in ex]
    fused.warmup()
    plan = fused.make_plan(np.arange(len(params)), params)
    t = time.perf_counter()
    fused.run_plan(ds, plan)
    el = time.perf_counter() - t
    return dict(elapsed=el, bars=ds.bars, combos=len(params), groups=groups, variants=variants)


# ------------------------------------------------------------------------------------ harness
def measure(args: list[str]) -> dict:
    """Run a child in a fresh intermediate process so RUSAGE_CHILDREN is that child's own peak."""
    code = ("import json, resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], capture_output=True, text=True)\n"
            "if r.returncode: sys.stderr.write(r.stderr); sys.exit(r.returncode)\n"
            "doc = json.loads(r.stdout.strip().splitlines()[-1])\n"
            "doc['peak_rss_mb'] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024\n"
            "print(json.dumps(doc))\n")
    r = subprocess.run([sys.executable, "-c", code, sys.executable, __file__, *args], capture_output=True, text=True,
                       cwd=ROOT)
    if r.returncode:
        raise RuntimeError(f"child {args} failed:\n{r.stderr[-3000:]}")
    return json.loads(r.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="1e4 bars x 100 combinations")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    ap.add_argument("--only-c", action="store_true", help="only (c), the whole sweeps over the 32 contracts")
    a = ap.parse_args()
    if a.only_c:
        full_sweeps()
        return
    if a.child:
        kind, rest = a.child[0], a.child[1:]
        if kind == "fused":
            doc = child_fused(Path(rest[0]), int(rest[1]))
        elif kind == "vbt":
            doc = child_vbt(Path(rest[0]), int(rest[1]))
        elif kind == "groups":
            doc = child_groups(Path(rest[0]), int(rest[1]), int(rest[2]))
        else:
            doc = child_baseline(rest[0])
        print(json.dumps(doc))
        return

    n, combos = (10_000, 100) if a.quick else (100_000, 1_000)
    frame, label = make_frame(n)
    print(f"data: {label}; {combos:,} execution combinations, session='all' (every bar simulated)")
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "bars.pkl"
        data.write_bytes(pickle.dumps(frame))
        base_f = measure(["--child", "baseline", "fused"])
        base_v = measure(["--child", "baseline", "vbt"])
        fu = measure(["--child", "fused", str(data), str(combos)])
        vb = measure(["--child", "vbt", str(data), str(combos)])
        g = 10 if not a.quick else 5
        grp = [measure(["--child", "groups", str(data), str(g), str(combos // g)]),
               measure(["--child", "groups", str(data), str(combos // g), str(g)])]

    def rate(d: dict) -> float:
        return d["bars"] * d["combos"] / d["elapsed"]

    mem_f = fu["peak_rss_mb"] - base_f["peak_rss_mb"]
    mem_v = vb["peak_rss_mb"] - base_v["peak_rss_mb"]
    print("\n(a) one signal group x execution combinations")
    print(f"{'contender':<10} {'time s':>8} {'(bars x combos)/s':>18} {'peak RSS MB':>12} {'imports MB':>11} "
          f"{'net MB':>8} {'trades':>12}")
    for name, d, b, m in (("fused", fu, base_f, mem_f), ("vectorbt", vb, base_v, mem_v)):
        print(f"{name:<10} {d['elapsed']:>8.3f} {rate(d) / 1e6:>15.1f} M/s {d['peak_rss_mb']:>12.0f} "
              f"{b['peak_rss_mb']:>11.0f} {m:>8.0f} {d['trades']:>12,}")
    speed = rate(fu) / rate(vb)
    mem_ratio = mem_f / mem_v if mem_v > 0 else float("nan")
    print(f"fused: signal kernel + 1 simulation {fu['signal_and_one'] * 1e3:.1f} ms of {fu['elapsed'] * 1e3:.0f} ms; "
          f"plan (once per chunk, not timed above) {fu['plan'] * 1e3:.0f} ms")
    print(f"throughput ratio fused / vectorbt: {speed:.1f}x (target >= 3x) -> {'met' if speed >= 3 else 'NOT met'}")
    print(f"net peak memory ratio fused / vectorbt: {mem_ratio:.3f} (target <= 0.1) -> "
          f"{'met' if mem_ratio <= 0.1 else 'NOT met'}")
    print("(vectorbt's trades differ by design: no time stop, no stop-first rule, no daily limits)")
    print("\n(b) serial fused path, signal parameters varied (entry_threshold)")
    for d in grp:
        print(f"{d['groups']:>4} signal groups x {d['variants']:>4} variants: {d['elapsed']:.3f} s, "
              f"{rate(d) / 1e6:,.1f} M (bars x combos)/s, peak RSS {d['peak_rss_mb']:.0f} MB")
    if not a.quick:
        full_sweeps()


def full_sweeps() -> None:
    """(c): the 32 contracts x the shipped grids: serial, on a 2-worker local Dask cluster (start-up
    included) and with the default engine choice ("auto"); the speed-up on 2 workers, end to end and
    of the evaluation phase alone, and the scaling efficiency (speed-up / 2)."""
    files = sorted((SHARED / "es-5m").glob("ES*.txt.gz")) if (SHARED / "es-5m").exists() else []
    if len(files) != 32:
        print("\n(c) skipped: the 32 ES 5-minute contracts are not in", SHARED / "es-5m")
        return
    from research.pipeline import load_series
    from research.sweep import DEFAULT_GRID_PATH, ParamGrid, run_sweep

    series = load_series(files)
    bars = sum(len(s.frame) for s in series)
    print(f"\n(c) 32 contracts ({bars:,} bars, one data set per contract), cache off")
    print(f"{'grid':<18} {'combos':>7} {'serial s':>9} {'dask 2w s':>10} {'auto s':>7} {'auto took':>9} "
          f"{'speed-up':>9} {'efficiency':>11} {'eval speed-up':>14}")
    for path in (DEFAULT_GRID_PATH, DEFAULT_GRID_PATH.with_name("signal_grid.toml")):
        grid = ParamGrid.from_toml(path)
        times, meta = {}, {}
        for engine in ("serial", None, "auto"):
            t0 = time.perf_counter()
            res = run_sweep(series, grid, scheduler=engine, cache_dir=False, progress=False)
            times[engine] = time.perf_counter() - t0
            meta[engine] = res.meta
        speed = times["serial"] / times[None]
        ev = "evaluating combinations x data"
        eval_speed = meta["serial"]["phases_s"][ev] / meta[None]["phases_s"][ev]
        print(f"{path.name:<18} {len(grid):>7,} {times['serial']:>9.2f} {times[None]:>10.2f} {times['auto']:>7.2f} "
              f"{meta['auto']['engine']:>9} {speed:>8.2f}x {speed / 2:>10.0%} {eval_speed:>13.2f}x")
        print(f"    auto: {meta['auto']['engine_choice']}")
        print(f"    dask phases (s): " + ", ".join(f"{k} {v:.2f}" for k, v in meta[None]["phases_s"].items()))


if __name__ == "__main__":
    main()
