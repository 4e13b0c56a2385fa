"""The kernel's output options: the trade-only compilation (`kernels.run_trade`) and caller-owned
output buffers (`compute_signals(out=...)`) give exactly the values of the full kernel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from barbuilder import edge_case_bars

from strategy import Params, compute_signals
from strategy import kernels as K
from strategy import layout as L
from strategy.signals import allocate_outputs, kernel_inputs, pack_params

TRADE_ROWS = [L.B_COLS.index(name) for name in K.TRADE_FLAGS]


def run_kernel(kernel, bars: pd.DataFrame, params: Params, n: int | None = None) -> tuple[np.ndarray, ...]:
    """`kernel` over the first `n` bars, into outputs filled with a sentinel."""
    n = len(bars) if n is None else n
    x = kernel_inputs(bars.iloc[:n], params)
    pv = pack_params(params, x["flow"], x["bar_ns"], x["tick"])
    si, sf, ri, rf, dq, med = K.new_state(pv)
    of, oi, ob = allocate_outputs(n)
    of.fill(-7.5)
    oi.fill(-7)
    ob.fill(-7)
    kernel(pv, si, sf, ri, rf, dq, med, x["tz"], x["x"], x["xoff"], of, oi, ob, 0, n)
    return of, oi, ob, si, sf


@pytest.mark.parametrize("session", ["rth", "all"])
@pytest.mark.parametrize("flow", [True, False])
def test_trade_kernel_writes_the_trade_flags_and_only_them(session, flow):
    bars = edge_case_bars(flow=flow)
    params = Params(session=session)
    full = run_kernel(K.run, bars, params)
    trade = run_kernel(K.run_trade, bars, params)
    assert full[2][TRADE_ROWS].min() >= 0  # the full kernel wrote every trade flag
    np.testing.assert_array_equal(trade[2][TRADE_ROWS], full[2][TRADE_ROWS])
    for ours, theirs in zip(trade[3:], full[3:]):  # the same state afterwards
        np.testing.assert_array_equal(ours, theirs)
    others = np.setdiff1d(np.arange(len(L.B_COLS)), TRADE_ROWS)
    assert (trade[2][others] == -7).all() and (trade[1] == -7).all() and (trade[0] == -7.5).all()
    ob = full[2]
    assert ob[L.B_LE].any() and ob[L.B_SE].any() and ob[L.B_BULLV].any()  # the data exercises the flags


def test_trade_kernel_is_prefix_invariant():
    bars = edge_case_bars(flow=True)
    params = Params(session="all")
    full = run_kernel(K.run_trade, bars, params)[2][TRADE_ROWS]
    for n in (1, 37, len(bars) // 3, len(bars) - 1):
        np.testing.assert_array_equal(run_kernel(K.run_trade, bars, params, n)[2][TRADE_ROWS], full[:, :n])


def test_signals_into_given_outputs_equal_fresh_ones():
    bars = edge_case_bars(flow=True)
    out = allocate_outputs(len(bars))
    for a in out:
        a.fill(3)
    for params in (Params(session="rth"), Params(session="all", stop_ticks=8)):
        fresh = compute_signals(bars, params)
        into = compute_signals(bars, params, out=out)
        pd.testing.assert_frame_equal(into, fresh)
        assert np.shares_memory(into["delta"].to_numpy(), out[0])  # the frame reads the caller's buffer
    assert into.attrs == fresh.attrs


def test_bad_output_buffers_are_refused_by_name():
    bars = edge_case_bars(n_days=1)
    n = len(bars)
    of, oi, ob = allocate_outputs(n)
    with pytest.raises(ValueError, match="the 3 arrays"):
        compute_signals(bars, out=(of, oi))
    with pytest.raises(ValueError, match=rf"the int array .* shape \({len(L.I_COLS)}, {n}\).*got int64\({len(L.I_COLS)}, {n + 1}\)"):
        compute_signals(bars, out=(of, allocate_outputs(n + 1)[1], ob))
    with pytest.raises(ValueError, match="the flag array must be a writeable C-contiguous int8"):
        compute_signals(bars, out=(of, oi, ob.astype(np.int16)))
    with pytest.raises(ValueError, match="the float array"):
        compute_signals(bars, out=(np.asfortranarray(of), oi, ob))
    of.setflags(write=False)
    with pytest.raises(ValueError, match="the float array"):
        compute_signals(bars, out=(of, oi, ob))
