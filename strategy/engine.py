"""`SignalEngine`: the incremental form of `compute_signals` for live use.

It runs the same numba kernel (`kernels.run`) as the vectorized path, one closed bar at a time. Its
state is a handful of fixed-size arrays (rings of the last 32 bars, four deques, the sorted
volume window, the last green/red base records) that `snapshot` copies and `restore` puts back,
so a restarted process resumes exactly where it stopped.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np
import pandas as pd
from numba import njit

from . import kernels as K
from . import layout as L
from .numba_cache import refresh_if_changed
from .params import Params
from .signals import (
    _B_POS,
    _F_POS,
    _I_POS,
    BOOL_COLS,
    COLUMNS,
    STATUS_CATEGORIES,
    TIME_COLS,
    pack_params,
)
from .state_codec import pack, unpack

SNAPSHOT_VERSION = 3
_NF, _NI, _NB = len(L.F_COLS), len(L.I_COLS), len(L.B_COLS)
_OFF_I = _NF * 8
_OFF_B = _OFF_I + _NI * 8
_BUF_BYTES = _OFF_B + _NB
_TZ_SPAN_NS = 400 * 86_400_000_000_000  # the engine's time-zone table covers +-400 days


@njit(cache=True)
def _engine_step(pv, si, sf, ri, rf, dq, med, tz, x, xoff, of, oi, ob, ts, o, h, l, c, v, bid, ask, offset, tick):
    # one Python -> numba crossing per bar: prices to ticks exactly as `signals.to_ticks`
    # (rint((price - offset) / tick)), then the same kernel as the vectorized path
    x[L.X_TS, 0] = ts
    x[L.X_O, 0] = np.int64(np.rint((o - offset) / tick))
    x[L.X_H, 0] = np.int64(np.rint((h - offset) / tick))
    x[L.X_L, 0] = np.int64(np.rint((l - offset) / tick))
    x[L.X_C, 0] = np.int64(np.rint((c - offset) / tick))
    x[L.X_V, 0] = v
    x[L.X_BID, 0] = bid
    x[L.X_ASK, 0] = ask
    xoff[0] = offset
    K.run(pv, si, sf, ri, rf, dq, med, tz, x, xoff, of, oi, ob, 0, 1)


def _views(buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Float, int and int8 output columns (shape (k, 1)) laid out in one byte buffer."""
    return (buf[:_OFF_I].view(np.float64).reshape(_NF, 1), buf[_OFF_I:_OFF_B].view(np.int64).reshape(_NI, 1),
            buf[_OFF_B:].view(np.int8).reshape(_NB, 1))


class SignalRow:
    """One bar's signal values; read like a mapping (``row['bn_score']``) or as attributes."""

    __slots__ = ("_buf", "time")

    def __init__(self, buf: np.ndarray, time: int):
        self._buf, self.time = buf, time

    @property
    def _f(self) -> np.ndarray:
        return self._buf[:_OFF_I].view(np.float64)

    @property
    def _i(self) -> np.ndarray:
        return self._buf[_OFF_I:_OFF_B].view(np.int64)

    @property
    def _b(self) -> np.ndarray:
        return self._buf[_OFF_B:].view(np.int8)

    def __getitem__(self, name: str) -> Any:
        if name in _F_POS:
            return float(self._f[_F_POS[name]])
        if name in _I_POS:
            x = int(self._i[_I_POS[name]])
            if name in TIME_COLS:
                return pd.NaT if x == L.NAT else pd.Timestamp(x, unit="ns", tz="UTC")
            return x
        if name in _B_POS:
            x = int(self._b[_B_POS[name]])
            if name in BOOL_COLS:
                return bool(x)
            if name == "status":
                return STATUS_CATEGORIES[x]
            return x
        raise KeyError(name)

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None

    @property
    def raw(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The kernel's float/int/int8 output vectors: for bulk comparison."""
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
        self._pv = pack_params(self.params, self.order_flow, self.bar_ns, self.tick_size)
        self._params_hash = self.params.hash()
        self._state = K.new_state(self._pv)
        self._x = np.zeros((L.N_X, 1), np.int64)
        self._xoff = np.zeros(1)
        self._buf = np.zeros(_BUF_BYTES, np.uint8)
        self._of, self._oi, self._ob = _views(self._buf)
        self._last_ts = np.iinfo(np.int64).min
        self._tz = np.zeros(2, np.int64)
        self._tz_lo = self._tz_hi = 0

    def _cover(self, ts_ns: int) -> None:
        # rebuilt about once a year of bars; reading it is exact across DST changes
        self._tz = K.et_offset_table(ts_ns - _TZ_SPAN_NS, ts_ns + _TZ_SPAN_NS)
        self._tz_lo = ts_ns - _TZ_SPAN_NS // 2
        self._tz_hi = ts_ns + _TZ_SPAN_NS // 2

    def update_values(self, ts_ns: int, open_: float, high: float, low: float, close: float, volume: int,
                      bid_volume: int = 0, ask_volume: int = 0, roll_offset: float = 0.0, *,
                      copy: bool = True) -> SignalRow:
        """Fast path of :meth:`update`: bar start time in UTC ns and raw values (prices as floats).

        ``copy=False`` returns a row that reads the engine's own output buffer (no allocation; it
        shows the next bar's values after the next update).
        """
        if ts_ns <= self._last_ts:
            raise ValueError(f"bar at {pd.Timestamp(ts_ns, unit='ns', tz='UTC')} is not after the previous bar "
                             f"({pd.Timestamp(self._last_ts, unit='ns', tz='UTC')})")
        if not self._tz_lo <= ts_ns < self._tz_hi:
            self._cover(ts_ns)
        si, sf, ri, rf, dq, med = self._state
        _engine_step(self._pv, si, sf, ri, rf, dq, med, self._tz, self._x, self._xoff, self._of, self._oi, self._ob,
                     ts_ns, open_, high, low, close, volume, bid_volume, ask_volume, roll_offset, self.tick_size)
        self._last_ts = ts_ns
        return SignalRow(self._buf.copy() if copy else self._buf, ts_ns)

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
        return int(self._state[0][L.S_T])

    # -- persistence ------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A deep copy of the whole state (small: a few KiB), restorable with :meth:`restore`."""
        return {
            "version": SNAPSHOT_VERSION,
            "params_hash": self._params_hash,
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
        mine = (self._params_hash, self.tick_size, self.order_flow, self.bar_ns)
        theirs = (snap["params_hash"], snap["tick_size"], snap["order_flow"], snap["bar_ns"])
        if mine != theirs:
            raise ValueError(f"snapshot was made with (params, tick, order_flow, bar_ns) = {theirs}, engine has {mine}")
        arrays = [np.array(a, copy=True) for a in snap["arrays"]]
        if [a.shape for a in arrays] != [a.shape for a in self._state]:
            raise ValueError("snapshot state arrays do not match this engine's layout")
        self._state = tuple(arrays)
        self._last_ts = int(snap["last_ts"])

    def to_bytes(self) -> bytes:
        """Serialized snapshot (`strategy.state_codec`) for a file or a database."""
        meta = {"version": SNAPSHOT_VERSION, "last_ts": int(self._last_ts), "bar_ns": self.bar_ns,
                "order_flow": self.order_flow, "tick_size": self.tick_size, "params_hash": self._params_hash}
        return pack(meta, list(self._state))

    def load_bytes(self, data: bytes) -> None:
        """Restore from :meth:`to_bytes` output."""
        meta, arrays = unpack(data, "signal engine state")
        self.restore({**meta, "arrays": arrays})


# kernels.run (with the rolling helpers, the layouts and the clock constants) is compiled into _engine_step's
# cached code: recompile when any of them changes
refresh_if_changed(globals(), [K.__file__] + [K.__file__.replace("kernels.py", f) for f in ("rolling.py", "layout.py", "market/clock.py")])
