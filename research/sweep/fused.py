"""The fused sweep path: signals + trade simulation + online metrics, one task = (data set, combos).

For each signal-parameter group of a task (combinations sharing `Params.signal_hash()`):

1. `_signals_compact` runs the signal kernel (`strategy.kernels.run_trade`: the same step loop
   compiled to write only the flags the trade rules read) over the data set in blocks of
   `BLOCK` bars (per-task output buffers of BLOCK columns, reused) and keeps only what the trade
   simulator reads, for the in-session bars of the trading range: prices in ticks of the traded
   contract, session index, bar-close minute, last-of-session flag and the six signal flags
   (exactly the arrays `research.backtest.run` builds from a signal frame);
2. `_simulate_group` runs `research.backtest.simulator.simulate` once per execution variant
   (stop/target/time stop/slippage/...) on those arrays and folds each variant's trades into
   per-combination accumulators, a sessions x combinations P&L matrix and a sessions x combinations
   matrix of trades closed per session (both booked on the exit bar's session).

Nothing of size bars x combinations exists: memory per task is O(bars) for the inputs and the
compact arrays plus O(sessions x combinations) for the outputs. Both loops are hand-written numba
because no library runs this method's own kernel and simulator fused with a streaming reduction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from research.backtest import simulator as S
from strategy import exits
from strategy import kernels as K
from strategy.numba_cache import refresh_if_changed

__all__ = ["DataSet", "Plan", "make_plan", "run_plan", "run_task", "warmup", "BLOCK", "ACC_COLUMNS", "SIGNAL_RUNS"]

BLOCK = 512  # bars per signal-kernel block: ~150 KB of outputs stay in L2 (measured: 512 beats 4096 and whole-array)
# per-combination accumulators (summed over data sets)
A_TRADES, A_WINS, A_NET, A_GROSS_PROFIT, A_GROSS_LOSS, A_SUM_R, A_COMMISSION = range(7)
ACC_COLUMNS = ("trades", "wins", "net_pnl_usd", "gross_profit_usd", "gross_loss_usd", "sum_r", "commissions_usd")
N_ACC = len(ACC_COLUMNS)

# debug counter: signal-kernel runs in this process (tests check one run per signal group and data set)
SIGNAL_RUNS = 0


@dataclass
class DataSet:
    """One data set of a sweep (a contract segment or a whole series), as the arrays the kernels read.

    Rows ``0..trade_from-1`` are the warm-up prefix (signals only); trading and metrics cover rows
    ``trade_from..n-1``. Built once on the client (`research.sweep.runner.build_datasets`) and sent
    once to each worker.
    """

    name: str
    x: np.ndarray  # (K.N_X, n) int64: the signal kernel's input (forward-adjusted prices in ticks)
    xoff: np.ndarray  # (n,) roll offsets, or (1,) zero
    tz: np.ndarray  # ET offset table (kernels.et_offset_table)
    raw: np.ndarray  # (4, n) int64: open/high/low/close in ticks of the traded contract
    close_min: np.ndarray  # (n,) int64 bar-close minute ET (as the kernel derives it)
    sidx: np.ndarray  # (n,) int64 index into `sessions` (prefix rows: 0, never read)
    con: np.ndarray  # (n,) int64 contract code (0 when the series has one contract)
    sessions: np.ndarray  # (k,) int64 trading dates (days since 1970-01-01) of the trading range
    trade_from: int
    tick: float
    bar_ns: int
    tick_value: float
    commission: float  # the instrument's default per side
    flow: dict[str, Any] = field(default_factory=dict)  # order_flow choice -> bool, or an error message
    identity: str = ""  # content hash (cache key)
    margin_per_contract: float = 0.0  # the instrument's maintenance margin (the simulator's trading floor)
    # (n,) the CME calendar per row: its date's scheduled close (min ET, NaN: none), a cash-session date
    sess_close: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float64))
    day_ok: np.ndarray = field(default_factory=lambda: np.zeros(0, np.bool_))
    # Params.session -> (largest high-low range in ticks of one session's simulated bars, its trading date)
    widest_session: dict[str, tuple[int, int]] = field(default_factory=dict)
    # Params.session -> trading dates (days since 1970-01-01) with a simulated bar: the rows of the results
    session_days: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return self.x.shape[1]

    @property
    def bars(self) -> int:
        return self.n - self.trade_from


@njit(cache=True)
def _signals_compact(pv, si, sf, ri, rf, dq, med, tz, x, xoff, xb, xoffb, of, oi, ob, trade_from, raw,
                     close_min, sess_close, day_ok, sidx, con, co, ch, cl, cc, cs, cm, cclose, cok, clast, cle, cse,
                     clc, csc, cbv, crv, active):
    """Signals over all rows (blocks of xb.shape[1]), compacted to the in-session rows >= trade_from.
    Returns (rows kept, entry signals kept); marks `active[session]` for sessions with a kept row."""
    n = x.shape[1]
    nb = xb.shape[1]
    has_off = xoff.shape[0] > 1
    m = 0
    n_ent = 0
    prev = -1
    for a in range(0, n, nb):
        L = min(nb, n - a)
        # contiguous block copy of the inputs (the kernel indexes outputs by input row)
        for r in range(x.shape[0]):
            for j in range(L):
                xb[r, j] = x[r, a + j]
        for j in range(L):
            xoffb[j] = xoff[a + j] if has_off else xoff[0]
        # xoffb is passed whole: its length (>1 unless BLOCK == 1) makes the kernel read xoffb[row];
        # run_trade is the kernel compiled to write only the flags read below (kernels.TRADE_FLAGS)
        K.run_trade(pv, si, sf, ri, rf, dq, med, tz, xb, xoffb, of, oi, ob, 0, L)
        for j in range(L):
            i = a + j
            if i < trade_from or ob[K.B_INS, j] == 0:
                continue
            if prev >= 0:  # the previous kept row ends its contract
                clast[m - 1] = con[prev] != con[i]
            co[m] = raw[0, i]
            ch[m] = raw[1, i]
            cl[m] = raw[2, i]
            cc[m] = raw[3, i]
            cs[m] = sidx[i]
            cm[m] = close_min[i]
            cclose[m] = sess_close[i]
            cok[m] = day_ok[i]
            cle[m] = ob[K.B_LE, j] != 0
            cse[m] = ob[K.B_SE, j] != 0
            clc[m] = ob[K.B_LC, j] != 0
            csc[m] = ob[K.B_SC, j] != 0
            cbv[m] = ob[K.B_BULLV, j] != 0
            crv[m] = ob[K.B_BEARV, j] != 0
            if cle[m] or cse[m]:
                n_ent += 1
            active[sidx[i]] = True
            prev = i
            m += 1
    if m > 0:
        clast[m - 1] = True
    return m, n_ent


@njit(cache=True)
def _simulate_group(Q, stops, cols, m, cts, co, ch, cl, cc, cs, cm, cclose, cok, clast, cle, cse, clc, csc, cbv, crv,
                    ti, tf, equity, position, acc, daily, daily_trades):
    """Simulate every execution variant `Q[v]` on the first `m` compact rows; fold the trades into
    ``acc[cols[v]]``, ``daily[session, cols[v]]`` (P&L) and ``daily_trades[session, cols[v]]`` (count),
    both booked on the exit bar's session."""
    o = co[:m]
    h = ch[:m]
    l = cl[:m]
    c = cc[:m]
    sess = cs[:m]
    cmin = cm[:m]
    close_at = cclose[:m]
    ok = cok[:m]
    ts = cts[:m]
    last = clast[:m]
    le = cle[:m]
    se = cse[:m]
    lc = clc[:m]
    sc = csc[:m]
    bv = cbv[:m]
    rv = crv[:m]
    eq = equity[:m]
    pos = position[:m]
    halt = np.empty(2, np.int64)
    for v in range(Q.shape[0]):
        nt = S.simulate(Q[v], ts, o, h, l, c, sess, cmin, close_at, ok, last, le, se, lc, sc, bv, rv, ti, tf, eq, pos,
                        halt)
        col = cols[v]
        stop = stops[v]
        for k in range(nt):
            pnl = tf[k, S.TF_PNL]
            acc[col, A_TRADES] += 1.0
            if pnl > 0:
                acc[col, A_WINS] += 1.0
                acc[col, A_GROSS_PROFIT] += pnl
            elif pnl < 0:
                acc[col, A_GROSS_LOSS] -= pnl
            acc[col, A_NET] += pnl
            acc[col, A_SUM_R] += ti[k, S.T_SIDE] * (ti[k, S.T_EXIT_PX] - ti[k, S.T_ENTRY_PX]) / stop
            acc[col, A_COMMISSION] += tf[k, S.TF_COMMISSION]
            d = sess[ti[k, S.T_EXIT_IDX]]
            daily[d, col] += pnl
            daily_trades[d, col] += 1


class _Buffers:
    """Per-task work arrays, allocated once and reused by every group and combination."""

    def __init__(self, n: int, n_trade: int) -> None:
        from strategy.signals import allocate_outputs

        b = max(1, min(BLOCK, n))
        self.xb = np.zeros((K.N_X, b), np.int64)
        self.xoffb = np.zeros(max(b, 2), np.float64)
        self.of, self.oi, self.ob = allocate_outputs(b)
        m = max(n_trade, 1)
        # np.empty: every element is written (compaction, simulate) before it is read
        self.ints = [np.empty(m, np.int64) for _ in range(6)]  # o h l c session close_min
        self.ts = np.zeros(m, np.int64)  # bar times: only the trade records read them (not kept here)
        self.sess_close = np.empty(m, np.float64)
        self.flags = [np.empty(m, np.bool_) for _ in range(8)]  # last le se lc sc bull_viol bear_viol day_ok
        self.equity = np.empty(m, np.float64)
        self.position = np.empty(m, np.int64)
        self.ti = np.zeros((0, S.N_T), np.int64)
        self.tf = np.zeros((0, S.N_TF), np.float64)

    def trades(self, need: int) -> None:
        if self.ti.shape[0] < need:  # grows rarely (a few times per task at most)
            cap = max(need, 2 * self.ti.shape[0])
            self.ti = np.empty((cap, S.N_T), np.int64)
            self.tf = np.empty((cap, S.N_TF), np.float64)


def _flow(ds: DataSet, choice: str) -> bool:
    v = ds.flow.get(choice)
    if isinstance(v, str):
        raise ValueError(v)
    if v is None:
        raise ValueError(f"order_flow must be 'auto', 'bidask' or 'ohlcv', not {choice!r}")
    return bool(v)


def group_by_signal(params: list) -> list[tuple[int, list[int]]]:
    """``[(first position, positions)]`` of the combinations sharing a signal hash, in first-seen order."""
    groups: dict[str, list[int]] = {}
    for j, p in enumerate(params):
        groups.setdefault(p.signal_hash(), []).append(j)
    return [(g[0], g) for g in groups.values()]


@dataclass
class Plan:
    """What a task needs from its combinations, prepared once per chunk on the client (hashing and
    packing 256 `Params` costs ~5 ms: not something to redo in every (data set, chunk) task)."""

    combo: np.ndarray  # (nc,) combination ids
    signal_params: list  # one `Params` per signal group (its signal fields are the group's)
    members: list  # per group: positions 0..nc-1 of its combinations
    q: np.ndarray  # (nc, S.N_Q) simulator vectors; tick value and default commissions are the data set's
    stops: np.ndarray  # (nc,) stop in ticks (R multiples)


def make_plan(combo_ids: np.ndarray, params: list) -> Plan:
    """Group `params` (combinations `combo_ids`) by signal hash and pack their simulator vectors."""
    from research.backtest.run import sim_vector

    groups = group_by_signal(params)
    q = np.stack([sim_vector(p, 0.0, np.nan if p.commission_per_side_usd is None else p.commission_per_side_usd)
                  for p in params])
    return Plan(combo=np.asarray(combo_ids, np.int64), signal_params=[params[f] for f, _ in groups],
                members=[np.asarray(m, np.int64) for _, m in groups], q=q,
                stops=np.array([p.stop_ticks for p in params], np.float64))


def run_plan(ds: DataSet, plan: Plan) -> dict[str, Any]:
    """Evaluate a chunk's combinations on data set `ds`: per-combination accumulators (`ACC_COLUMNS`),
    the P&L (``daily``, float64) and the number of trades closed (``daily_trades``, int32) of each
    session of the trading range (sessions x combinations)."""
    global SIGNAL_RUNS
    from strategy.signals import pack_params

    nc = len(plan.combo)
    ns = len(ds.sessions)
    acc = np.zeros((nc, N_ACC), np.float64)
    daily = np.zeros((ns, nc), np.float64)
    daily_trades = np.zeros((ns, nc), np.int32)
    active = np.zeros(max(ns, 1), np.bool_)
    q = plan.q.copy()
    q[:, S.Q_TICK_VALUE] = ds.tick_value
    q[np.isnan(q[:, S.Q_COMMISSION]), S.Q_COMMISSION] = ds.commission  # the instrument's default
    q[:, S.Q_MARGIN] = ds.margin_per_contract
    buf = _Buffers(ds.n, ds.bars)
    o, h, l, c, sess, cmin = buf.ints
    last, le, se, lc, sc, bv, rv, ok = buf.flags
    runs = 0
    for p0, cols in zip(plan.signal_params, plan.members):
        pv = pack_params(p0, _flow(ds, p0.order_flow), ds.bar_ns, ds.tick)
        si, sf, ri, rf, dq, med = K.new_state(pv)
        m, n_ent = _signals_compact(pv, si, sf, ri, rf, dq, med, ds.tz, ds.x, ds.xoff, buf.xb, buf.xoffb, buf.of,
                                    buf.oi, buf.ob, ds.trade_from, ds.raw, ds.close_min, ds.sess_close, ds.day_ok,
                                    ds.sidx, ds.con, o, h, l, c, sess, cmin, buf.sess_close, ok, last, le, se, lc, sc,
                                    bv, rv, active)
        runs += 1
        SIGNAL_RUNS += 1
        buf.trades(n_ent + 1)
        _simulate_group(q[cols], plan.stops[cols], cols, m, buf.ts, o, h, l, c, sess, cmin, buf.sess_close, ok, last,
                        le, se, lc, sc, bv, rv, buf.ti, buf.tf, buf.equity, buf.position, acc, daily, daily_trades)
    return dict(combo=plan.combo.copy(), acc=acc, daily=daily, daily_trades=daily_trades, active=active[:ns].copy(),
                sessions=ds.sessions.copy(), signal_runs=np.int64(runs))


def run_task(ds: DataSet, combo_ids: np.ndarray, params: list) -> dict[str, Any]:
    """Evaluate `params` (combinations `combo_ids`) on data set `ds` (`make_plan` + `run_plan`)."""
    return run_plan(ds, make_plan(combo_ids, params))


def warmup() -> None:
    """Compile (or load from numba's cache) the fused kernels on a tiny data set; run once per worker."""
    import pandas as pd

    from strategy.params import Params
    from strategy.signals import time_inputs

    n = 64
    idx = pd.date_range("2024-03-04 14:30", periods=n, freq="5min", tz="UTC")
    ts, _, close_min, _ = time_inputs(idx, 300_000_000_000)
    x = np.zeros((K.N_X, n), np.int64)
    x[K.X_TS] = ts
    walk = 16000 + np.cumsum(np.resize([1, -1, 2, -2, 1], n))
    x[K.X_O], x[K.X_C] = walk, walk + 1
    x[K.X_H], x[K.X_L] = walk + 3, walk - 2
    x[K.X_V], x[K.X_BID], x[K.X_ASK] = 100, 40, 60
    ds = DataSet(name="warmup", x=x, xoff=np.zeros(1), tz=K.et_offset_table(int(ts[0]), int(ts[-1]) + 300_000_000_000),
                 raw=x[K.X_O:K.X_C + 1].copy(), close_min=close_min, sidx=np.zeros(n, np.int64),
                 con=np.zeros(n, np.int64), sessions=np.zeros(1, np.int64), trade_from=0, tick=0.25,
                  bar_ns=300_000_000_000, tick_value=12.5, commission=2.25, flow={"auto": True, "bidask": True,
                                                                                 "ohlcv": False},
                 sess_close=np.full(n, 960.0), day_ok=np.ones(n, np.bool_))
    global SIGNAL_RUNS
    before = SIGNAL_RUNS
    run_task(ds, np.arange(2), [Params(), Params(stop_ticks=5)])
    SIGNAL_RUNS = before


# kernels.run, the rolling helpers and simulator.simulate are compiled INTO the fused kernels' cached
# code: recompile them when those sources change (strategy.numba_cache)
refresh_if_changed(globals(), [Path(K.__file__), Path(K.__file__).with_name("rolling.py"), Path(K.__file__).with_name("layout.py"),
                               Path(K.__file__).with_name("market") / "clock.py", Path(K.__file__).with_name("trade_rules.py"),
                               Path(K.__file__).with_name("fills.py"), Path(exits.__file__),
                               Path(K.__file__).with_name("borrowed.py")])
