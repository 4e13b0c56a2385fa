"""Parameters valid alone but meaningless on the data are refused before simulating: a stop wider
than every session's high-low range (it could never be hit), a size above the instrument's limit."""

from __future__ import annotations

import numpy as np
import pytest

from research.backtest import run
from research.backtest.sanity import check_size, largest_session_range
from research.pipeline import load_series
from strategy import Params, compute_signals
from strategy.market.instruments import get_spec
from strategy.market.sessions import session_id
from strategy.params import ParamsError


@pytest.fixture(scope="module")
def bars():
    return load_series(None)[0].frame  # the embedded synthetic ES data set


def rth_session_range(frame) -> int:
    """The largest in-session (RTH) high-low range in ticks, computed independently with pandas."""
    sig = compute_signals(frame, Params())
    sub = frame.loc[sig["in_session"].to_numpy()]
    g = sub.groupby(session_id(sub.index))
    return int(round(((g["high"].max() - g["low"].min()) / 0.25).max()))


def test_largest_session_range():
    high = np.array([10, 12, 11, 30, 31, 29])
    low = np.array([9, 8, 10, 28, 20, 27])
    last = np.array([False, False, True, False, False, True])
    assert largest_session_range(high, low, last) == (11, 3)  # 31 - 20 in the second segment
    assert largest_session_range(high[:3], low[:3], np.zeros(3, bool)) == (4, 0)  # one open segment
    assert largest_session_range(high[:0], low[:0], last[:0]) == (0, 0)


def test_a_stop_no_session_reaches_is_refused(bars):
    widest = rth_session_range(bars)
    assert 10 < widest < 4000
    res = run(bars, Params(stop_ticks=widest, session="rth"))  # reachable in its widest session: a result
    assert res.meta["session_bars"] > 0
    with pytest.raises(ParamsError) as e:
        run(bars, Params(stop_ticks=widest + 1))
    msg = str(e.value)
    assert "\n" not in msg
    assert msg.startswith(f"parameter stop_ticks = {widest + 1}: wider than the largest session high-low range "
                          f"of the data ({widest} ticks, session of ")
    assert msg.endswith("so the stop could never be hit")


def test_a_size_beyond_the_instrument_limit_is_refused(bars):
    spec = get_spec("ES")
    check_size(spec.max_contracts, spec)  # at the limit: fine
    with pytest.raises(ParamsError, match=f"contracts = {spec.max_contracts + 1}: above ES's limit of "
                                          f"{spec.max_contracts} contracts per order"):
        run(bars, Params(contracts=spec.max_contracts + 1))
