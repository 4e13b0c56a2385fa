"""Signal / backtest timings, measured in one run on this machine (figures, not assertions).

Prints the four figures of the performance spec, then a compact summary table (figure, value,
target, met):

(a) `compute_signals` throughput (bars/s) on synthetic 1-minute frames of 1e6 and 1e7 bars, with
    ``Params(session="all")`` so the kernel runs on every bar (the default session is "rth", which
    would leave ~73 % of the bars to the cheap out-of-session branch). Split into kernel inputs
    (`kernel_inputs`: ticks + ET times), the kernel (`run`) and the frame assembly, and
    compared with a trivial one-pass ``@njit`` kernel reading the same input arrays (the
    memory-bandwidth reference). Target: >= 5 % of the reference (the spec's ~35 M bars/s).
(b) `SignalEngine.update_values` latency per call (p50/p99/p99.9/max, µs, `time.perf_counter_ns`)
    over ~200k real bars (the last bars of the 32-contract continuous series; synthetic bars when the
    real data is absent), plus the `.update(mapping)` convenience path. Target: p99 <= 5 µs.
(c) cold (empty numba cache) vs warm wall time of ``navale backtest FILE --out DIR`` in a subprocess.
    Target: warm <= 3 s.
(d) the numba trade simulator vs ``vbt.Portfolio.from_signals`` (warm, best of 5). Target: the
    simulator at least as fast.
(e) the kernel on the 32 real contracts (557,839 bars, all sessions) against the one-pass reference:
    fresh vs reused outputs (the allocation share), `run_trade` (the flags sweeps read),
    `compute_signals` with and without ``out=``, and two output floors: writing the 54 columns with
    trivial values bar by bar (the order a one-bar-at-a-time kernel writes them) and column by column.
    Targets: >= 3 % of the reference, allocation <= 10 % of the kernel time.
(f) `SignalEngine.update_values` with and without copy beside the Python-dispatch floor (an empty
    ``@njit`` taking the same arguments). Target: p50 <= 1 µs, p99 <= 2 µs on an idle machine.

Run: .venv/bin/python benchmarks/bench_signals.py [--quick]   (--quick: 1e5/1e6 bars, 50k updates)
"""

from __future__ import annotations

import argparse
import gc
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from numba import njit

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("NAVALE_SHARED_DATA") or ROOT.parent / "shared" / "data")
NS_MIN = 60_000_000_000
NS_DAY = 86_400_000_000_000


def timed(fn, repeat=3):
    best = float("inf")
    out = None
    for _ in range(repeat):
        out = None  # let the previous result go before the next run (1e7 bars: GBs)
        gc.collect()
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def fmt_rate(x: float) -> str:
    return f"{x / 1e6:,.1f} M/s"


# ---------------------------------------------------------------------------------------------
# synthetic bars


def synthetic_bars(n: int, seed: int = 7) -> pd.DataFrame:
    """`n` one-minute ES-like bars: Globex hours (Sun 17:00 - Fri 16:00 CT, daily 16:00-17:00 CT halt;
    CT taken as a fixed UTC-6), a random walk on the 0.25 grid with volatility clustering,
    lognormal volumes and bid/ask volumes tied to the bar's direction."""
    rng = np.random.default_rng(seed)
    # candidate minutes from Sunday 2000-01-02 00:00 CT; keep the Globex ones
    m = int(n * 10080 / 6840) + 10080
    t0 = pd.Timestamp("2000-01-02 06:00", tz="UTC").value  # Sunday 00:00 CT
    mins = np.arange(m, dtype=np.int64)
    ct_min_of_day = mins % 1440
    day = mins // 1440  # 0 = Sunday
    wd = day % 7
    open_ = ~((ct_min_of_day >= 16 * 60) & (ct_min_of_day < 17 * 60))  # daily halt
    open_ &= wd != 6  # Saturday
    open_ &= ~((wd == 5) & (ct_min_of_day >= 16 * 60))  # Friday after the close
    open_ &= ~((wd == 0) & (ct_min_of_day < 17 * 60))  # Sunday before the open
    del ct_min_of_day, day, wd
    keep = np.flatnonzero(open_)[:n]
    del open_
    if len(keep) < n:
        raise RuntimeError("synthetic calendar too short")
    ts = t0 + keep * NS_MIN
    del keep, mins
    # price: random walk in ticks, volatility clustering through a slow AR(1) regime
    vol = np.exp(np.repeat(rng.normal(0.0, 0.35, n // 60 + 1), 60)[:n]).astype(np.float32)
    step = np.rint(rng.standard_normal(n, dtype=np.float32) * 1.6 * vol).astype(np.int64)
    close = np.cumsum(step)
    close += 16_000  # ~4000 points
    if close.min() < 400:
        close += 400 - close.min()  # keep prices > 0
    open_t = np.empty(n, np.int64)
    open_t[0] = close[0]
    open_t[1:] = close[:-1]
    ext = (rng.geometric(0.5, size=(2, n)) - 1).astype(np.int64)  # wicks, ticks
    high = np.maximum(open_t, close) + ext[0]
    low = np.minimum(open_t, close) - ext[1]
    del ext
    volume = (rng.lognormal(5.0, 0.8, n) * vol + 1).astype(np.int64)
    # buy share: the bar's direction plus noise (so δ carries information, as in real data)
    p = np.clip(0.5 + 0.08 * np.sign(step) + rng.normal(0.0, 0.08, n), 0.02, 0.98)
    ask = rng.binomial(volume, p).astype(np.int64)
    bid = volume - ask
    del p, vol, step
    idx = pd.DatetimeIndex(ts.view("datetime64[ns]")).tz_localize("UTC")
    idx.name = "time"
    bars = pd.DataFrame({"open": open_t * 0.25, "high": high * 0.25, "low": low * 0.25, "close": close * 0.25,
                         "volume": volume, "bid_volume": bid, "ask_volume": ask}, index=idx, copy=False)
    bars.attrs = {"symbol": "ESSYN", "root": "ES", "tick_size": 0.25, "order_flow": True, "bar": "1min",
                  "synthetic": True}
    return bars


# ---------------------------------------------------------------------------------------------
# (a) compute_signals throughput


@njit  # no cache=True: nothing written next to this file; compiles in well under a second
def touch_all(x):
    """The memory-bandwidth reference: one pass over the kernel's input matrix (8 int64 rows:
    time, OHLC ticks, volume, bid, ask), exactly what `kernels.run` reads."""
    acc = 0
    for i in range(x.shape[1]):
        acc += x[0, i] + x[1, i] + x[2, i] + x[3, i] + x[4, i] + x[5, i] + x[6, i] + x[7, i]
    return acc


def bench_a(sizes: list[int], results: dict) -> None:
    from strategy import Params, compute_signals
    from strategy import kernels as K
    from strategy.signals import (
        allocate_outputs,
        kernel_inputs,
        outputs_to_frame,
        pack_params,
    )

    params = Params(session="all")
    small = synthetic_bars(5_000)
    compute_signals(small, params)  # warm the numba caches (load or compile)
    xs = kernel_inputs(small, params)
    touch_all(xs["x"])
    print("(a) compute_signals throughput, synthetic 1-minute bars, Params(session='all') "
          "(every bar runs the full kernel; the default session 'rth' would skip ~73 % of 24h bars)")
    print(f"    {'bars':>12s} {'stage':44s} {'seconds':>9s} {'bars/s':>12s}")
    for n in sizes:
        t = time.perf_counter()
        bars = synthetic_bars(n)
        gen = time.perf_counter() - t
        rep = 3 if n <= 2_000_000 else 2

        def inputs(bars=bars):
            return kernel_inputs(bars, params)

        t_in, x = timed(inputs, rep)
        pv = pack_params(params, x["flow"], x["bar_ns"], x["tick"])
        arrays = x["x"]

        def kernel(pv=pv, x=x, n=n):
            si, sf, ri, rf, dq, med = K.new_state(pv)
            of, oi, ob = allocate_outputs(n)
            K.run(pv, si, sf, ri, rf, dq, med, x["tz"], x["x"], x["xoff"], of, oi, ob, 0, n)
            return of, oi, ob

        t_k, outs = timed(kernel, rep)
        t_f, _ = timed(lambda outs=outs, x=x, bars=bars: outputs_to_frame(*outs, bars.index), rep)
        in_session = int(outs[2][K.B_COLS.index("in_session")].sum())
        del outs
        gc.collect()
        t_ref, _ = timed(lambda arrays=arrays: touch_all(arrays), 5)
        del x, arrays
        gc.collect()
        t_full, sig = timed(lambda bars=bars: compute_signals(bars, params), rep)
        entries = int(sig["long_entry"].sum() + sig["short_entry"].sum())
        del sig, bars
        gc.collect()
        rows = [("synthetic frame generation (not timed below)", gen),
                ("kernel_inputs (ticks, time-zone table)", t_in),
                ("run (new_state + outputs + kernel)", t_k),
                ("kernel alone: kernel_inputs + run", t_in + t_k),
                ("outputs_to_frame (DataFrame assembly)", t_f),
                ("compute_signals (full)", t_full),
                ("reference: one-pass @njit sum of the 8 inputs", t_ref)]
        for what, sec in rows:
            print(f"    {n:12,d} {what:44s} {sec:9.3f} {n / sec:12,.0f}")
        ratio = t_ref / t_full
        print(f"    {n:12,d} compute_signals = {100 * ratio:.2f} % of the reference; kernel alone "
              f"{100 * t_ref / (t_in + t_k):.2f} %, run alone {100 * t_ref / t_k:.2f} % "
              f"({in_session:,d} bars in session, {entries:,d} entry signals)")
        results[f"a{n}"] = dict(n=n, full=n / t_full, kernel=n / (t_in + t_k), ref=n / t_ref, ratio=ratio)


# ---------------------------------------------------------------------------------------------
# (b) SignalEngine latency


def engine_bars(n: int) -> tuple[pd.DataFrame, str]:
    if SHARED.exists():
        from research.data import load_bars

        files = sorted((SHARED / "es-5m").glob("ES*.txt.gz"))
        cont = load_bars(files)
        return cont.iloc[-n:], f"last {min(n, len(cont)):,d} bars of the 32-contract ES 5m continuous series"
    print(f"    (real data not found at {SHARED}: engine latency measured on synthetic bars)")
    b = synthetic_bars(n * 5)
    # 5-minute bars from the 1-minute ones
    g = b.groupby(b.index.floor("5min"))
    out = pd.DataFrame({"open": g["open"].first(), "high": g["high"].max(), "low": g["low"].min(),
                        "close": g["close"].last(), "volume": g["volume"].sum(), "bid_volume": g["bid_volume"].sum(),
                        "ask_volume": g["ask_volume"].sum()}).iloc[:n]
    return out, f"{len(out):,d} synthetic 5-minute bars"


def pct(lat_ns: np.ndarray) -> tuple[float, float, float, float]:
    q = np.percentile(lat_ns, [50, 99, 99.9]) / 1e3
    return float(q[0]), float(q[1]), float(q[2]), float(lat_ns.max() / 1e3)


def bench_b(n: int, results: dict) -> None:
    from strategy import Params, SignalEngine
    bars, what = engine_bars(n)
    n = len(bars)
    ts = bars.index.as_unit("ns").asi8.tolist()
    o, h, l, c = (bars[k].to_numpy(np.float64).tolist() for k in ("open", "high", "low", "close"))
    v, bv, av = (bars[k].to_numpy(np.int64).tolist() for k in ("volume", "bid_volume", "ask_volume"))
    ro = bars["roll_offset"].to_numpy(np.float64).tolist() if "roll_offset" in bars.columns else [0.0] * n
    stamps = list(bars.index)
    maps = [{"open": o[i], "high": h[i], "low": l[i], "close": c[i], "volume": v[i], "bid_volume": bv[i],
             "ask_volume": av[i], "roll_offset": ro[i]} for i in range(n)]
    pc = time.perf_counter_ns
    # the timer's own cost, included in every figure below
    t_over = np.empty(10_000, np.int64)
    for i in range(len(t_over)):
        t0 = pc()
        t_over[i] = pc() - t0
    print(f"(b) SignalEngine latency per call, {what}; gc enabled; "
          f"perf_counter_ns overhead p50 {np.median(t_over) / 1e3:.3f} µs (included)")
    warm = SignalEngine(Params())  # load/compile the step kernel
    for i in range(50):
        warm.update_values(ts[i], o[i], h[i], l[i], c[i], v[i], bv[i], av[i], ro[i])
    print(f"    {'path':46s} {'calls':>8s} {'p50 µs':>8s} {'p99 µs':>8s} {'p99.9 µs':>9s} {'max µs':>9s}")
    for session in ("all", "rth"):
        eng = SignalEngine(Params(session=session), tick_size=0.25, order_flow=True, bar_seconds=300)
        upd = eng.update_values
        lat = np.empty(n, np.int64)
        ins = np.empty(n, bool)
        for i in range(n):
            t0 = pc()
            row = upd(ts[i], o[i], h[i], l[i], c[i], v[i], bv[i], av[i], ro[i])
            lat[i] = pc() - t0
            ins[i] = row["in_session"]
        label = f"update_values, session={session!r}" + (" (all bars)" if session == "rth" else "")
        p = pct(lat)
        print(f"    {label:46s} {n:8,d} {p[0]:8.2f} {p[1]:8.2f} {p[2]:9.2f} {p[3]:9.1f}")
        if session == "all":
            results["b"] = p
        else:
            for name, mask in (("  in-session bars only", ins), ("  out-of-session bars only", ~ins)):
                if mask.any():
                    p = pct(lat[mask])
                    print(f"    {name:46s} {int(mask.sum()):8,d} {p[0]:8.2f} {p[1]:8.2f} {p[2]:9.2f} {p[3]:9.1f}")
    eng = SignalEngine(Params(session="all"))
    upd = eng.update_values
    lat = np.empty(n, np.int64)
    gc.disable()  # the same calls without the cyclic GC's gen-0 passes (SignalRow objects are GC-tracked)
    try:
        for i in range(n):
            t0 = pc()
            upd(ts[i], o[i], h[i], l[i], c[i], v[i], bv[i], av[i], ro[i])
            lat[i] = pc() - t0
    finally:
        gc.enable()
    p = pct(lat)
    print(f"    {'update_values, session=all, gc disabled':46s} {n:8,d} {p[0]:8.2f} {p[1]:8.2f} {p[2]:9.2f} {p[3]:9.1f}")
    eng = SignalEngine(Params(session="all"))
    upd = eng.update
    lat = np.empty(n, np.int64)
    for i in range(n):
        m, st = maps[i], stamps[i]
        t0 = pc()
        upd(m, time=st)
        lat[i] = pc() - t0
    p = pct(lat)
    print(f"    {'update(dict, time=pd.Timestamp), session=all':46s} {n:8,d} {p[0]:8.2f} {p[1]:8.2f} {p[2]:9.2f} {p[3]:9.1f}")
    results["b_map"] = p
    k = min(n, 20_000)
    eng = SignalEngine(Params(session="all"))
    series = [bars.iloc[i] for i in range(k)]
    lat = np.empty(k, np.int64)
    for i in range(k):
        s = series[i]
        t0 = pc()
        eng.update(s)
        lat[i] = pc() - t0
    p = pct(lat)
    print(f"    {'update(pd.Series row), session=all':46s} {k:8,d} {p[0]:8.2f} {p[1]:8.2f} {p[2]:9.2f} {p[3]:9.1f}")


# ---------------------------------------------------------------------------------------------
# (c) CLI cold vs warm


def bench_c(results: dict) -> None:
    navale = Path(sys.executable).parent / "navale"
    if SHARED.exists():
        files = [str(SHARED / "es-5m" / "ESH20-CME.scid_BarData__5m.txt.gz")]
        what = Path(files[0]).name
    else:
        files = []  # no DATA argument: the CLI's embedded synthetic data set
        what = "(embedded synthetic data)"
    print(f"(c) `navale backtest {what} --out DIR` wall time, subprocess; NUMBA_CACHE_DIR and NAVALE_DATA_DIR "
          "in a fresh temp dir")
    if not files:
        print(f"    (real data not found at {SHARED}: no DATA argument, so the cold run also generates the "
              "synthetic data set into NAVALE_DATA_DIR)")
    if not navale.exists():
        print(f"    {navale} not found (package not installed?): skipped")
        return
    with tempfile.TemporaryDirectory(prefix="navale-bench-") as tmp:
        env = dict(os.environ, NUMBA_CACHE_DIR=str(Path(tmp) / "numba"), NAVALE_DATA_DIR=str(Path(tmp) / "data"))
        times = []
        for k, label in enumerate(("cold (empty numba cache)", "warm (same cache)", "warm (same cache), again")):
            cmd = [str(navale), "backtest", *files, "--out", str(Path(tmp) / f"out{k}")]
            t = time.perf_counter()
            try:
                r = subprocess.run(cmd, env=env, cwd=tmp, capture_output=True, text=True, timeout=900)
            except subprocess.TimeoutExpired:
                print(f"    {label}: timed out after 900 s")
                return
            sec = time.perf_counter() - t
            if r.returncode != 0:
                lines = [x for x in (r.stderr or r.stdout).strip().splitlines() if x.strip()]
                print(f"    {label}: CLI failed (exit {r.returncode}): {lines[-1] if lines else '(no output)'}")
                return
            times.append(sec)
            print(f"    {label:28s} {sec:7.2f} s")
        cached = sum(1 for _ in (Path(tmp) / "numba").rglob("*.nbi"))
        print(f"    ({cached} numba cache index files written by the cold run)")
        results["c"] = (times[0], min(times[1:]))


# ---------------------------------------------------------------------------------------------
# (d) simulator vs vectorbt


def bench_d(quick: bool, results: dict) -> None:
    import vectorbt as vbt

    from research.backtest import run
    from research.backtest import simulator as S
    from strategy import Params

    if SHARED.exists():
        from research.data import load_bars

        files = sorted((SHARED / "es-5m").glob("ES*.txt.gz"))
        bars = load_bars(files[-8:] if quick else files)
        what = f"ES 5m continuous series, {len(files[-8:] if quick else files)} contracts"
    else:
        print(f"    (real data not found at {SHARED}: synthetic 1-minute bars)")
        bars = synthetic_bars(200_000 if quick else 1_000_000)
        what = "synthetic 1-minute bars"
    params = Params()
    captured = {}
    real = S.simulate

    def capture(*args):
        captured["args"] = args
        return real(*args)

    S.simulate = capture  # run.py calls S.simulate(...): grab its exact inputs
    try:
        res = run(bars, params)
    finally:
        S.simulate = real
    args = captured["args"]
    (q, _ts, o, h, l, c, sess, close_min, sess_close, _day_ok, last, le, se, lc, sc, bullv, bearv, ti, tf, equity,
     position, _halt) = args
    # the rules' session end: the calendar's flat time of each bar's date, or a contract's / the data's last bar
    flat = np.minimum(q[S.Q_FLAT_MIN], sess_close - (960.0 - q[S.Q_FLAT_MIN]))
    last = last | ~(close_min < flat)
    n = len(o)
    ntr = len(res.trades)
    tick = res.meta["tick_size"]
    t_sim, _ = timed(lambda: real(*args), 5)
    print(f"(d) trade simulator vs vectorbt {vbt.__version__} Portfolio.from_signals, {what}: {n:,d} in-session "
          f"(rth) bars, {ntr:,d} simulator trades; warm, best of 5")
    idx = res.equity.index
    close = pd.Series(c * tick, index=idx)
    ti_ = ti[:ntr]
    side = ti_[:, S.T_SIDE]
    e_i, x_i = ti_[:, S.T_ENTRY_IDX], ti_[:, S.T_EXIT_IDX]

    def flags(ix):
        a = np.zeros(n, bool)
        a[ix] = True
        return a

    common = dict(size=float(params.contracts), size_type="amount", fixed_fees=float(q[S.Q_COMMISSION]),
                  init_cash=1e12, freq=pd.Timedelta(res.meta["bar_ns"], "ns"))
    # A: the simulator's own trades as entry/exit flags (orders at the bar close; same-bar
    #    entry+exit pairs are signal conflicts vectorbt resolves its way: timing, not P&L, equivalence)
    kw_a = dict(entries=flags(e_i[side > 0]), exits=flags(x_i[side > 0]), short_entries=flags(e_i[side < 0]),
                short_exits=flags(x_i[side < 0]), **common)
    # B: the raw signals with the method's exits: entries long_entry/short_entry, exits on the
    #    golden-rule violation, the opposite candidate or the session's last bar, and stop/target
    #    as sl_stop/tp_stop fractions checked against open/high/low (vectorbt's intrabar model)
    kw_b = dict(entries=le.copy(), exits=bullv | sc | last, short_entries=se.copy(), short_exits=bearv | lc | last,
                open=o * tick, high=h * tick, low=l * tick, sl_stop=q[S.Q_STOP] * tick / close.to_numpy(),
                tp_stop=q[S.Q_TARGET] * tick / close.to_numpy(), upon_opposite_entry="reverse", **common)
    rows = [("numba simulator (research.backtest.simulator.simulate)", t_sim, ntr)]
    vb = {}
    for key, label, kw in (("A", "vbt from_signals A: the simulator's entries/exits", kw_a),
                           ("B", "vbt from_signals B: raw signals + sl_stop/tp_stop", kw_b)):
        pf = vbt.Portfolio.from_signals(close, **kw)  # warm vectorbt's numba functions
        t_v, pf = timed(lambda kw=kw: vbt.Portfolio.from_signals(close, **kw), 5)
        vb[key] = t_v
        rows.append((label, t_v, len(pf.trades.records)))
    print(f"    {'what':58s} {'ms':>9s} {'bars/s':>14s} {'trades':>8s}")
    for label, sec, k in rows:
        print(f"    {label:58s} {sec * 1e3:9.2f} {n / sec:14,.0f} {k:8,d}")
    print(f"    vbt/simulator time ratio: A {vb['A'] / t_sim:.1f}x, B {vb['B'] / t_sim:.1f}x "
          "(>1: the simulator is faster)")
    results["d"] = (vb["A"] / t_sim, vb["B"] / t_sim)


# ---------------------------------------------------------------------------------------------
# (e) the kernel on the 32 real contracts: output options, allocation share


@njit  # no cache=True (see touch_all)
def write_bar_by_bar(of, oi, ob):
    """The output floor of a one-bar-at-a-time kernel: every column of a bar, then the next bar
    (trivial values), into `allocate_outputs`'s column-major arrays."""
    for i in range(of.shape[1]):
        for j in range(of.shape[0]):
            of[j, i] = i + j
        for j in range(oi.shape[0]):
            oi[j, i] = i + j
        for j in range(ob.shape[0]):
            ob[j, i] = j


@njit  # no cache=True (see touch_all)
def write_column_by_column(of, oi, ob):
    """The same values, one whole column after the other (sequential streams)."""
    for j in range(of.shape[0]):
        for i in range(of.shape[1]):
            of[j, i] = i + j
    for j in range(oi.shape[0]):
        for i in range(oi.shape[1]):
            oi[j, i] = i + j
    for j in range(ob.shape[0]):
        for i in range(ob.shape[1]):
            ob[j, i] = j


def bench_e(results: dict) -> None:
    from research.data import load_bars
    from strategy import Params, compute_signals
    from strategy import kernels as K
    from strategy.signals import allocate_outputs, kernel_inputs, pack_params

    files = sorted((SHARED / "es-5m").glob("ES*.txt.gz")) if (SHARED / "es-5m").exists() else []
    if len(files) != 32:
        print(f"(e) skipped: the 32 ES 5-minute contracts are not in {SHARED / 'es-5m'}")
        return
    bars = load_bars(files)
    n = len(bars)
    params = Params(session="all")
    x = kernel_inputs(bars, params)
    pv = pack_params(params, x["flow"], x["bar_ns"], x["tick"])
    out = allocate_outputs(n)
    compute_signals(bars.iloc[:2000], params)  # warm the numba caches

    def kernel(fn, fresh: bool):
        def go():
            si, sf, ri, rf, dq, med = K.new_state(pv)
            of, oi, ob = allocate_outputs(n) if fresh else out
            fn(pv, si, sf, ri, rf, dq, med, x["tz"], x["x"], x["xoff"], of, oi, ob, 0, n)
        return go

    touch_all(x["x"])
    t_ref, _ = timed(lambda: touch_all(x["x"]), 7)
    rows = [("reference: one-pass @njit sum of the 8 inputs", t_ref)]
    write_bar_by_bar(*out)
    write_column_by_column(*out)
    for label, fn in (("floor: write the 54 columns bar by bar (trivial values)", lambda: write_bar_by_bar(*out)),
                      ("floor: write them column by column", lambda: write_column_by_column(*out)),
                      ("kernel run, fresh outputs (allocate + first touch)", kernel(K.run, True)),
                      ("kernel run, outputs reused", kernel(K.run, False)),
                      ("kernel run_trade (trade flags only), outputs reused", kernel(K.run_trade, False)),
                      ("compute_signals (fresh outputs)", lambda: compute_signals(bars, params)),
                      ("compute_signals(out=...) (outputs reused)", lambda: compute_signals(bars, params, out=out))):
        rows.append((label, timed(fn, 5)[0]))
    t = dict(rows)
    print(f"(e) the signal kernel on the 32 ES 5-minute contracts ({n:,d} bars), Params(session='all'), best of 5")
    print(f"    {'stage':54s} {'ms':>8s} {'ns/bar':>7s} {'M bars/s':>9s} {'% of ref':>9s}")
    for label, sec in rows:
        print(f"    {label:54s} {sec * 1e3:8.1f} {sec / n * 1e9:7.1f} {n / sec / 1e6:9.2f} {100 * t_ref / sec:9.2f}")
    alloc = t["kernel run, fresh outputs (allocate + first touch)"] / t["kernel run, outputs reused"] - 1
    print(f"    allocating and first-touching the outputs: +{100 * alloc:.0f} % of the kernel time "
          "(0 with reused outputs: compute_signals(out=...), and sweeps reuse per-task blocks)")
    print("    (a one-bar-at-a-time kernel writes its outputs in the first floor's order: that alone is "
          f"{100 * t_ref / t['floor: write the 54 columns bar by bar (trivial values)']:.1f} % of the reference)")
    results["e"] = dict(ref=t_ref, n=n, full=t["compute_signals (fresh outputs)"],
                        out=t["compute_signals(out=...) (outputs reused)"],
                        trade=t["kernel run_trade (trade flags only), outputs reused"], alloc=alloc)


# ---------------------------------------------------------------------------------------------
# (f) the engine call against the Python-dispatch floor


@njit  # the floor: a numba function taking what `_engine_step` takes (one byte array, nine scalars), doing nothing
def _floor(mem, ts, o, h, l, c, v, bid, ask, offset):
    return 0


def bench_f(n: int, results: dict) -> None:
    from strategy import Params, SignalEngine

    bars, what = engine_bars(n)
    n = len(bars)
    ts = bars.index.as_unit("ns").asi8.tolist()
    o, h, l, c = (bars[k].to_numpy(np.float64).tolist() for k in ("open", "high", "low", "close"))
    v, bv, av = (bars[k].to_numpy(np.int64).tolist() for k in ("volume", "bid_volume", "ask_volume"))
    ro = bars["roll_offset"].to_numpy(np.float64).tolist() if "roll_offset" in bars.columns else [0.0] * n
    pc = time.perf_counter_ns
    mem = np.zeros(64, np.uint8)
    _floor(mem, ts[0], o[0], h[0], l[0], c[0], v[0], bv[0], av[0], ro[0])
    print(f"(f) SignalEngine.update_values against the dispatch floor, {what}, session='all'")
    print(f"    {'call':58s} {'p50 µs':>8s} {'p99 µs':>8s} {'p99.9 µs':>9s}")
    lat = np.empty(n, np.int64)
    for label, key in (("floor: empty @njit, same arguments (1 array + 9 scalars)", "floor"),
                       ("update_values(copy=True)", "copy"), ("update_values(copy=False) (the live loop's)", "nocopy")):
        if key == "floor":
            fn = _floor
        else:
            eng = SignalEngine(Params(session="all"), tick_size=0.25, order_flow=True, bar_seconds=300)
            fn = eng.update_values
        copy = key == "copy"
        for i in range(n):
            if key == "floor":
                t0 = pc()
                fn(mem, ts[i], o[i], h[i], l[i], c[i], v[i], bv[i], av[i], ro[i])
                lat[i] = pc() - t0
            else:
                t0 = pc()
                fn(ts[i], o[i], h[i], l[i], c[i], v[i], bv[i], av[i], ro[i], copy=copy)
                lat[i] = pc() - t0
        p = pct(lat)
        print(f"    {label:58s} {p[0]:8.2f} {p[1]:8.2f} {p[2]:9.2f}")
        results[f"f_{key}"] = p


# ---------------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="1e5/1e6 bars and 50k engine updates (fast check)")
    ap.add_argument("--only", default="abcdef", help="run only these figures, e.g. --only ef")
    a = ap.parse_args()
    sizes = [100_000, 1_000_000] if a.quick else [1_000_000, 10_000_000]
    n_engine = 50_000 if a.quick else 200_000
    print(f"navale signal/backtest benchmark{' (--quick)' if a.quick else ''}: numpy {np.__version__}, "
          f"pandas {pd.__version__}, {os.cpu_count()} CPUs")
    results: dict = {}
    t_all = time.perf_counter()
    for key, fn in (("a", lambda: bench_a(sizes, results)), ("b", lambda: bench_b(n_engine, results)),
                    ("c", lambda: bench_c(results)), ("d", lambda: bench_d(a.quick, results)),
                    ("e", lambda: bench_e(results)), ("f", lambda: bench_f(n_engine, results))):
        if key in a.only:
            t = time.perf_counter()
            fn()
            print(f"    [{time.perf_counter() - t:.1f} s]\n")

    def yn(ok):
        return "yes" if ok else "NO"

    table = []
    for n in sizes:
        r = results.get(f"a{n}")
        if r:
            table.append((f"(a) compute_signals, {n:,d} bars, session=all", f"{fmt_rate(r['full'])} = "
                          f"{100 * r['ratio']:.1f} % of ref {fmt_rate(r['ref'])}", ">= 5 % of ref (~35 M/s)",
                          yn(r["ratio"] >= 0.05)))
            table.append((f"    kernel alone (inputs + run), {n:,d}", f"{fmt_rate(r['kernel'])} = "
                          f"{100 * r['kernel'] / r['ref']:.1f} % of ref", "", ""))
    if "b" in results:
        p = results["b"]
        table.append(("(b) update_values p50 / p99 / p99.9 / max", f"{p[0]:.2f} / {p[1]:.2f} / {p[2]:.2f} / {p[3]:.0f} µs",
                      "p99 <= 5 µs", yn(p[1] <= 5.0)))
        p = results["b_map"]
        table.append(("    update(mapping) p50 / p99", f"{p[0]:.2f} / {p[1]:.2f} µs", "", ""))
    if "c" in results:
        cold, warm = results["c"]
        table.append(("(c) navale backtest: cold / warm", f"{cold:.2f} s / {warm:.2f} s", "warm <= 3 s", yn(warm <= 3.0)))
    elif "c" in a.only:
        table.append(("(c) navale backtest: cold / warm", "not measured (see above)", "warm <= 3 s", "n/a"))
    if "d" in results:
        ra, rb = results["d"]
        table.append(("(d) vbt from_signals / simulator time", f"A {ra:.1f}x, B {rb:.1f}x", ">= 1x", yn(min(ra, rb) >= 1.0)))
    if "e" in results:
        r = results["e"]
        ref = r["ref"]
        table.append(("(e) compute_signals, 32 contracts, session=all", f"{r['n'] / r['full'] / 1e6:.2f} M/s = "
                      f"{100 * ref / r['full']:.2f} % of ref", ">= 3 % of ref", yn(ref / r["full"] >= 0.03)))
        table.append(("    compute_signals(out=...)", f"{100 * ref / r['out']:.2f} % of ref", ">= 3 % of ref",
                      yn(ref / r["out"] >= 0.03)))
        table.append(("    kernel run_trade (sweeps)", f"{100 * ref / r['trade']:.2f} % of ref", "", ""))
        table.append(("    output allocation / kernel time", f"+{100 * r['alloc']:.0f} % (0 with out=)", "<= 10 %",
                      yn(r["alloc"] <= 0.10) + " (fresh), yes (out=)"))
    if "f_nocopy" in results:
        p, fl = results["f_nocopy"], results["f_floor"]
        table.append(("(f) update_values(copy=False) p50 / p99", f"{p[0]:.2f} / {p[1]:.2f} µs (floor {fl[0]:.2f} / "
                      f"{fl[1]:.2f})", "<= 1 / 2 µs", yn(p[0] <= 1.0 and p[1] <= 2.0)))
        p = results["f_copy"]
        table.append(("    update_values(copy=True) p50 / p99", f"{p[0]:.2f} / {p[1]:.2f} µs", "", ""))
    print(f"{'figure':52s} {'value':40s} {'target':24s} met")
    for row in table:
        print(f"{row[0]:52s} {row[1]:40s} {row[2]:24s} {row[3]}")
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    print(f"(total {time.perf_counter() - t_all:.0f} s, peak RSS {rss:.1f} GiB)")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))
    sys.exit(main())
