"""Parameters that are valid on their own but cannot mean anything on the data at hand: refused
before simulating, so they never become a result (docs/parameters.md).

- A stop wider than the largest high-low range of one session (per contract) can never be hit. The
  range is taken over the bars simulated: those of ``Params.session`` (`in_session_rows`), split at
  each session and contract change (`session_ends`); a sweep applies the same rule per data set.
- A size beyond the instrument's `max_contracts` is beyond what the fixed-slippage fill model can price.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from strategy.market.clock import RTH_CLOSE_MIN, RTH_OPEN_MIN
from strategy.market.instruments import InstrumentSpec
from strategy.params import ParamsError

__all__ = ["largest_session_range", "session_ends", "in_session_rows", "check_size", "check_stop",
           "check_against_data"]


def largest_session_range(high: np.ndarray, low: np.ndarray, last: np.ndarray) -> tuple[int, int]:
    """``(range, first_row)``: the largest ``max(high) - min(low)`` over the segments that end where
    `last` is True (a session, or its part on one contract), in the units of `high`/`low` (ticks), and
    the first row of that segment. ``(0, 0)`` without bars."""
    n = len(high)
    if n == 0:
        return 0, 0
    ends = np.flatnonzero(last)
    if len(ends) == 0 or ends[-1] != n - 1:
        ends = np.append(ends, n - 1)
    starts = np.concatenate([[0], ends[:-1] + 1])
    ranges = np.maximum.reduceat(high, starts) - np.minimum.reduceat(low, starts)
    k = int(np.argmax(ranges))
    return int(ranges[k]), int(starts[k])


def session_ends(session_key: np.ndarray, contract: np.ndarray | None = None) -> np.ndarray:
    """True on the last bar of each session (or contract segment) of consecutive rows: where the
    session key or the contract changes, and on the last row (the simulator's `last` flags)."""
    n = len(session_key)
    last = np.ones(n, bool)
    if n > 1:
        brk = session_key[1:] != session_key[:-1]
        if contract is not None:
            brk |= contract[1:] != contract[:-1]
        last[:-1] = brk
    return last


def in_session_rows(start_min: np.ndarray, session: str) -> np.ndarray:
    """The signal kernel's session filter (`strategy.kernels.in_session`) on bar-start minutes ET:
    the bars a backtest with ``Params.session = session`` simulates."""
    if session == "all":
        return np.ones(len(start_min), bool)
    rth = (start_min >= RTH_OPEN_MIN) & (start_min < RTH_CLOSE_MIN)
    if session == "rth":
        return rth
    if session == "globex":
        return ~rth
    raise ValueError(f"session must be 'all', 'rth' or 'globex', not {session!r}")


def check_size(contracts: int, spec: InstrumentSpec) -> None:
    """Refuse a size beyond ``spec.max_contracts``."""
    if contracts > spec.max_contracts:
        raise ParamsError(f"parameter contracts = {contracts}: above {spec.root}'s limit of {spec.max_contracts} "
                          f"contracts per order (strategy/market/instruments.py max_contracts; the fill model's fixed "
                          f"slippage cannot price a larger order)")


def check_stop(stop_ticks: int, largest_range: int, where: str) -> None:
    """Refuse a stop that no session of the data could reach (`where` names the widest session)."""
    if stop_ticks > largest_range:
        raise ParamsError(f"parameter stop_ticks = {stop_ticks}: wider than the largest session high-low range of "
                          f"the data ({largest_range} ticks, {where}), so the stop could never be hit")


def check_against_data(params, spec: InstrumentSpec, high: np.ndarray, low: np.ndarray, last: np.ndarray,
                       index: pd.DatetimeIndex) -> None:
    """Both checks for one backtest: `high`/`low` in ticks of the bars simulated, `last` marking the
    last bar of each session (or contract segment), `index` their times."""
    check_size(params.contracts, spec)
    if len(high) == 0:
        return
    rng, first = largest_session_range(high, low, last)
    check_stop(params.stop_ticks, rng, f"session of {index[first].tz_convert('America/New_York'):%Y-%m-%d}")
