"""`SignalEngine`: the incremental form of `compute_signals` for live use.

It calls the same numba `step` kernel as the vectorized path, one closed bar at a time. Its
state is a handful of fixed-size arrays (rings of the last 32 bars, four deques, the sorted
volume window, the last green/red base records) that `snapshot` copies and `restore` puts back,
so a restarted process resumes exactly where it stopped.
"""

from __future__ import annotations

import io
import datetime as dt
from typing import Any, Mapping
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
from numba import njit

from . import kernels as K
from .params import Params
from .signals import (BOOL_COLS, COLUMNS, STATUS_CATEGORIES, TIME_COLS, _B_POS, _F_POS, _I_POS,
                      _STATUS_CODE_TO_CAT, pack_params)

_ET = ZoneInfo("America/New_York")
_NS_HOUR = 3_600_000_000_000
_NS_MIN = 60_000_000_000
_NS_DAY = 86_400_000_000_000
SNAPSHOT_VERSION = 1
# input vector layout for `_step_one`
_IN_TS, _IN_O, _IN_H, _IN_L, _IN_C, _IN_V, _IN_BID, _IN_ASK, _IN_START, _IN_CLOSE, _IN_WD = range(11)


@njit(cache=True)
def _step_one(pv, si, sf, ri, rf, dq, med, x, of, oi, ob):
    # one Python -> numba crossing with few arguments (dispatch cost grows with the argument count)
    K.step(pv, si, sf, ri, rf, dq, med, x[_IN_TS], x[_IN_O], x[_IN_H], x[_IN_L], x[_IN_C], x[_IN_V], x[_IN_BID],
           x[_IN_ASK], x[_IN_START], x[_IN_CLOSE], x[_IN_WD], of, oi, ob, 0)


class SignalRow:
    """One bar's signal values; read like a mapping (``row['bn_score']``) or as attributes."""

    __slots__ = ("_f", "_i", "_b", "_tick", "_offset", "time")

    def __init__(self, f: np.ndarray, i: np.ndarray, b: np.ndarray, tick: float, offset: float, time: int):
        self._f, self._i, self._b, self._tick, self._offset, self.time = f, i, b, tick, offset, time

    def __getitem__(self, name: str) -> Any:
        if name in _F_POS:
            x = float(self._f[_F_POS[name]])
            return x * self._tick + self._offset if name in K.PRICE_COLS else x
        if name in _I_POS:
            x = int(self._i[_I_POS[name]])
            if name in TIME_COLS:
                return pd.NaT if x == K.NAT else pd.Timestamp(x, unit="ns", tz="UTC")
            return x
        if name in _B_POS:
            x = int(self._b[_B_POS[name]])
            if name in BOOL_COLS:
                return bool(x)
            if name == "status":
                return STATUS_CATEGORIES[_STATUS_CODE_TO_CAT[x + 2]]
            return x
        raise KeyError(name)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernel's float/int/int8 output vectors (prices in ticks): for bulk comparison."""
        return self._f, self._i, self._b

    def to_dict(self) -> dict[str, Any]:
        """All columns, in `COLUMNS` order."""
        return {c: self[c] for c in COLUMNS}

    def __repr__(self) -> str:
        return (f"SignalRow({pd.Timestamp(self.time, unit='ns', tz='UTC')}, bn_score={self['bn_score']:.3f}, "
                f"status={self['status']}, long_entry={self['long_entry']}, short_entry={self['short_entry']})")


class SignalEngine:
    """Incremental Battle Navale signals: ``engine.update(bar)`` per closed bar.

    Args:
        params: the method's parameters (same object as for `compute_signals`).
        tick_size: instrument tick size.
        order_flow: True for bid/ask volumes (exact δ), False for the OHLCV proxy. Explicit:
            the engine never guesses per bar.
        bar_seconds: bar length (the entry time window reads the bar's close time).
    """

    def __init__(self, params: Params | None = None, *, tick_size: float = 0.25, order_flow: bool = True,
                 bar_seconds: float = 300.0):
        self.params = params or Params()
        self.tick_size = float(tick_size)
        self.order_flow = bool(order_flow)
        self.bar_ns = int(round(bar_seconds * 1e9))
        self._pv = pack_params(self.params, self.order_flow)
        self._state = K.new_state(self._pv)
        self._x = np.zeros(11, np.int64)
        self._of = np.empty((1, len(K.F_COLS)), np.float64)
        self._oi = np.empty((1, len(K.I_COLS)), np.int64)
        self._ob = np.empty((1, len(K.B_COLS)), np.int8)
        self._last_ts = np.iinfo(np.int64).min
        self._offset_cache: dict[int, int] = {}

    # -- time: bar timestamp -> ET minute / weekday, offset cached per UTC hour (DST changes on the hour)
    def _utc_offset_ns(self, ts_ns: int) -> int:
        hour = ts_ns // _NS_HOUR
        off = self._offset_cache.get(hour)
        if off is None:
            when = dt.datetime.fromtimestamp(hour * 3600, tz=dt.timezone.utc).astimezone(_ET)
            off = int(when.utcoffset().total_seconds()) * 1_000_000_000
            if len(self._offset_cache) > 4096:
                self._offset_cache.clear()
            self._offset_cache[hour] = off
        return off

    def update_values(self, ts_ns: int, open_: float, high: float, low: float, close: float, volume: int,
                      bid_volume: int = 0, ask_volume: int = 0, roll_offset: float = 0.0) -> SignalRow:
        """Fast path of :meth:`update`: bar start time in UTC ns and raw values."""
        if ts_ns <= self._last_ts:
            raise ValueError(f"bar at {pd.Timestamp(ts_ns, unit='ns', tz='UTC')} is not after the previous bar "
                             f"({pd.Timestamp(self._last_ts, unit='ns', tz='UTC')})")
        tick = self.tick_size
        x = self._x
        x[_IN_TS] = ts_ns
        x[_IN_O] = round((open_ - roll_offset) / tick)
        x[_IN_H] = round((high - roll_offset) / tick)
        x[_IN_L] = round((low - roll_offset) / tick)
        x[_IN_C] = round((close - roll_offset) / tick)
        x[_IN_V] = volume
        x[_IN_BID] = bid_volume
        x[_IN_ASK] = ask_volume
        local = ts_ns + self._utc_offset_ns(ts_ns)
        start_min = (local // _NS_MIN) % 1440
        close_ts = ts_ns + self.bar_ns
        local_c = close_ts + self._utc_offset_ns(close_ts)
        close_min = (local_c // _NS_MIN) % 1440
        if close_min < start_min:
            close_min += 1440
        x[_IN_START] = start_min
        x[_IN_CLOSE] = close_min
        x[_IN_WD] = (local_c // _NS_DAY + 3) % 7  # 1970-01-01 was a Thursday
        si, sf, ri, rf, dq, med = self._state
        _step_one(self._pv, si, sf, ri, rf, dq, med, x, self._of, self._oi, self._ob)
        self._last_ts = ts_ns
        return SignalRow(self._of[0].copy(), self._oi[0].copy(), self._ob[0].copy(), tick, roll_offset, ts_ns)

    def update(self, bar: Mapping[str, Any] | pd.Series, time: Any = None) -> SignalRow:
        """Feed one closed bar (keys open/high/low/close/volume[/bid_volume/ask_volume/roll_offset]; its
        start time from `time`, ``bar['time']`` or a Series' name, tz-aware) and get its row."""
        when = time if time is not None else (bar.get("time") if "time" in bar else getattr(bar, "name", None))
        ts = pd.Timestamp(when)
        if ts.tzinfo is None:
            raise ValueError(f"bar time {when!r} is naive: bar times must be tz-aware")
        if self.order_flow and ("bid_volume" not in bar or "ask_volume" not in bar):
            raise ValueError("engine is in order-flow mode but the bar has no bid_volume/ask_volume")
        return self.update_values(
            ts.value if ts.unit == "ns" else ts.as_unit("ns").value,
            float(bar["open"]), float(bar["high"]), float(bar["low"]), float(bar["close"]), int(bar["volume"]),
            int(bar["bid_volume"]) if self.order_flow else 0, int(bar["ask_volume"]) if self.order_flow else 0,
            float(bar["roll_offset"]) if "roll_offset" in bar else 0.0,
        )

    @property
    def bars_seen(self) -> int:
        """In-session bars processed so far."""
        return int(self._state[0][K.S_T])

    # -- persistence ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state (small: a few KiB), restorable with :meth:`restore`."""
        return {
            "version": SNAPSHOT_VERSION,
            "params_hash": self.params.hash(),
            "tick_size": self.tick_size,
            "order_flow": self.order_flow,
            "bar_ns": self.bar_ns,
            "last_ts": self._last_ts,
            "arrays": [a.copy() for a in self._state],
        }

    def restore(self, snap: Mapping[str, Any]) -> None:
        """Put back a state from :meth:`snapshot`; refuses one made with other parameters or settings."""
        if snap.get("version") != SNAPSHOT_VERSION:
            raise ValueError(f"engine snapshot version {snap.get('version')} != {SNAPSHOT_VERSION}")
        mine = (self.params.hash(), self.tick_size, self.order_flow, self.bar_ns)
        theirs = (snap["params_hash"], snap["tick_size"], snap["order_flow"], snap["bar_ns"])
        if mine != theirs:
            raise ValueError(f"snapshot was made with (params, tick, order_flow, bar_ns) = {theirs}, engine has {mine}")
        arrays = [np.array(a, copy=True) for a in snap["arrays"]]
        if [a.shape for a in arrays] != [a.shape for a in self._state]:
            raise ValueError("snapshot state arrays do not match this engine's layout")
        self._state = tuple(arrays)
        self._last_ts = int(snap["last_ts"])

    def to_bytes(self) -> bytes:
        """Serialized snapshot (NumPy ``.npz``) for a file or a database."""
        s = self.snapshot()
        buf = io.BytesIO()
        meta = np.array([s["version"], s["last_ts"], s["bar_ns"], int(s["order_flow"])], np.int64)
        np.savez(buf, meta=meta, tick=np.array([s["tick_size"]]), params_hash=np.array(s["params_hash"]),
                 **{f"a{k}": a for k, a in enumerate(s["arrays"])})
        return buf.getvalue()

    def load_bytes(self, data: bytes) -> None:
        """Restore from :meth:`to_bytes` output."""
        z = np.load(io.BytesIO(data), allow_pickle=False)
        meta = z["meta"]
        self.restore({
            "version": int(meta[0]), "last_ts": int(meta[1]), "bar_ns": int(meta[2]), "order_flow": bool(meta[3]),
            "tick_size": float(z["tick"][0]), "params_hash": str(z["params_hash"]),
            "arrays": [z[f"a{k}"] for k in range(6)],
        })
