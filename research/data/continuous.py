"""Continuous futures series from consecutive contracts.

The active contract is chosen per trading date (session id), using only what was known
before that session opened:
- ``roll="volume"``: switch to the next contract on the session after the first session in
  which the next contract traded more than the active one;
- ``roll="days:N"``: switch N business days before the active contract's expiry (3rd Friday).
A contract that has no bars any more is always rolled out of.

The frame keeps the *real* traded prices (P&L must use them) plus:
- ``contract``: the contract traded in each bar;
- ``roll_offset``: the sum of the roll gaps of every roll up to and including this bar (causal).
  A gap is next close - current close at the last common bar before the switch; when the two
  contracts' files do not overlap (each holds only its front-month months, as the es-5m set
  does) it is the new contract's first open - the old one's last close (``gap_method`` in
  ``attrs['rolls']`` says which).
Use :func:`adjusted_prices` for back-adjusted (anchored on the latest contract, the usual
chart view) or forward-adjusted (anchored on the first contract; causal) OHLC for signals.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import pandas as pd

from strategy.market.instruments import parse_contract
from strategy.market.sessions import session_id

from .errors import DataError

__all__ = ["build_continuous", "adjusted_prices", "roll_schedule"]


def _parse_roll(roll: str) -> tuple[str, int]:
    if roll == "volume":
        return "volume", 0
    if roll.startswith("days:") and roll[5:].isdigit():
        return "days", int(roll[5:])
    raise ValueError(f"roll must be 'volume' or 'days:N', not {roll!r}")


def roll_schedule(frames: list[pd.DataFrame], roll: str = "volume") -> pd.DataFrame:
    """Per trading date, the active contract. Returns columns ``session_id, contract`` (ordered)."""
    kind, ndays = _parse_roll(roll)
    items = []
    for f in frames:
        sym = f.attrs.get("symbol")
        code = parse_contract(sym) if sym else None
        if code is None:
            raise DataError(f"continuous series needs contract codes (like ESH20); got {sym!r}", path=(f.attrs.get("sources") or [None])[0])
        items.append((code, f))
    items.sort(key=lambda cf: cf[0].sort_key())
    names = [c.name for c, _ in items]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise DataError(f"contract(s) {dup} given more than once: concatenate each contract's files first")
    vols = {}
    for code, f in items:
        sid = session_id(f.index)
        vols[code.name] = pd.Series(f["volume"].to_numpy(), index=sid).groupby(level=0).sum()
    days = np.unique(np.concatenate([v.index.to_numpy() for v in vols.values()]))
    last_day = {n: v.index.max() for n, v in vols.items()}
    k = 0
    active = []
    prev_day = None
    for d in days:
        while k + 1 < len(items):
            cur, nxt = items[k][0], items[k + 1][0]
            expired = d > last_day[cur.name]
            if kind == "volume":
                switch = prev_day is not None and vols[nxt.name].get(prev_day, 0) > vols[cur.name].get(prev_day, 0)
            else:
                switch = d >= np.busday_offset(np.datetime64(cur.expiry, "D"), -ndays, roll="backward")
            # never switch to a contract with no bars that day while the current one still trades
            if expired or (switch and d in vols[nxt.name].index):
                k += 1
            else:
                break
        active.append(items[k][0].name)
        prev_day = d
    return pd.DataFrame({"session_id": days, "contract": active})


def build_continuous(frames: list[pd.DataFrame], roll: str = "volume") -> pd.DataFrame:
    """Stitch contract frames (canonical bar frames with contract symbols) into one continuous frame."""
    sched = roll_schedule(frames, roll)
    by_name = {parse_contract(f.attrs["symbol"]).name: f for f in frames}
    day_to_contract = pd.Series(sched["contract"].to_numpy(), index=sched["session_id"].to_numpy())
    pieces = []
    for name, f in by_name.items():
        sid = session_id(f.index)
        take = day_to_contract.reindex(sid).to_numpy() == name
        if take.any():
            pieces.append(f.loc[take].assign(contract=name))
    out = pd.concat(pieces).sort_index(kind="stable")
    if not out.index.is_unique:  # cannot happen when contracts own disjoint days; guard anyway
        raise DataError("continuous series has duplicated timestamps")
    # roll gaps at the last common bar before each switch
    contracts = out["contract"].to_numpy()
    switch_pos = np.flatnonzero(contracts[1:] != contracts[:-1]) + 1
    offset = np.zeros(len(out))
    rolls = []
    for pos in switch_pos:
        old, new = by_name[contracts[pos - 1]], by_name[contracts[pos]]
        when = out.index[pos]
        common = old.index[old.index < when].intersection(new.index[new.index < when])
        if len(common):
            ref = common[-1]
            gap = float(new.at[ref, "close"] - old.at[ref, "close"])
            method = "overlap"
        else:
            # The files do not overlap (each holds only its front-month period): the best available
            # estimate is the jump from the old contract's last close to the new one's first open.
            # It also contains the market's move between those bars; attrs['rolls'] says so.
            ref = out.index[pos - 1]
            gap = float(new["open"].iloc[new.index.get_indexer([when])[0]] - old["close"].iloc[-1])
            method = "adjacent"
        offset[pos:] += gap
        rolls.append({"time": when, "from": contracts[pos - 1], "to": contracts[pos], "gap": gap, "gap_measured_at": ref, "gap_method": method})
    out["contract"] = pd.Categorical(contracts, categories=list(dict.fromkeys(contracts)))
    out["roll_offset"] = offset
    attrs = dict(frames[0].attrs)
    attrs.update(
        symbol=f"{attrs.get('root') or ''}.c".lstrip("."),
        sources=[s for f in frames for s in f.attrs.get("sources", [])],
        quarantine=[q for f in frames for q in f.attrs.get("quarantine", [])],
        order_flow=all(f.attrs.get("order_flow") for f in frames),
        continuous=True,
        roll=roll,
        rolls=rolls,
        line_offset=None,
    )
    if not attrs["order_flow"]:
        out = out.drop(columns=[c for c in ("bid_volume", "ask_volume") if c in out.columns])
    out.attrs = attrs
    return out


def adjusted_prices(frame: pd.DataFrame, method: Literal["back", "forward"] = "back") -> pd.DataFrame:
    """Copy of a continuous frame with OHLC shifted across rolls (volumes untouched).

    ``back``: the latest contract keeps its real prices, earlier bars are shifted (the usual
    chart view; uses later roll gaps, so only differences are causal). ``forward``: the first
    contract keeps its prices, later bars are shifted by past gaps only (fully causal).
    """
    if "roll_offset" not in frame.columns:
        raise ValueError("not a continuous frame (no roll_offset column)")
    off = frame["roll_offset"].to_numpy()
    shift = (off[-1] - off) if method == "back" else -off
    out = frame.copy()
    for c in ("open", "high", "low", "close"):
        out[c] = frame[c].to_numpy() + shift
    out.attrs = dict(frame.attrs, adjusted=method)
    return out
