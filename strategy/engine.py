"""`SignalEngine`: the incremental form of `compute_signals` for live use.

It runs the same numba kernel (`kernels.run`) as the vectorized path, one closed bar at a time. Its
state is a handful of fixed-size arrays (rings of the last 32 bars, four deques, the sorted
volume window, the last green/red base records), laid out with the parameters and the one-bar
output row in one byte buffer, that `snapshot` copies and `restore` puts back, so a restarted
process resumes exactly where it stopped.
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
from .borrowed import float64_view, float64_view2, int8_view2, int64_view, int64_view2
from .state_codec import pack, unpack

SNAPSHOT_VERSION = 3
_NF, _NI, _NB = len(L.F_COLS), len(L.I_COLS), len(L.B_COLS)
_OFF_I = _NF * 8
_OFF_B = _OFF_I + _NI * 8
_BUF_BYTES = _OFF_B + _NB
_TZ_SPAN_NS = 400 * 86_400_000_000_000  # the engine's time-zone table covers +-400 days

# The engine's memory: one byte buffer holding a header (int64 slots `H_*`), the kernel's state
# arrays, its parameter vector, a one-bar input, the one-bar output row and the time-zone table, so
# that one update crosses from Python into numba with one array and nine scalars instead of fifteen
# arrays (each array argument costs the dispatcher about 50 ns to unbox;
# docs/performance.md). `_engine_step` carves the typed views out of it.
(H_LAST_TS, H_TZ_LO, H_TZ_HI, H_CAP, H_NMED, H_SI, H_SF, H_RI, H_RF, H_DQ, H_MED, H_PV, H_X, H_XOFF,
 H_OUT, H_TZ, H_TZ_N) = range(17)
N_HEADER = 17
_TZ_SLOTS = 2 * _TZ_SPAN_NS // 3_600_000_000_000 + 4  # the table's entries for +-400 days (`_cover`)
STEP_OK, STEP_NOT_AFTER, STEP_TZ = 0, 1, 2  # `_engine_step` results


@njit(cache=True)
def _engine_step(mem, ts, o, h, l, c, v, bid, ask, offset):
    # one Python -> numba crossing per bar: the checks, prices to ticks exactly as `signals.to_ticks`
    # (rint((price - offset) / tick)), then the same kernel as the vectorized path. The typed views are
    # borrowed (strategy.borrowed): the engine object keeps `mem` alive, and no view counts references.
    hd = int64_view(mem, 0, N_HEADER)
    if ts <= hd[H_LAST_TS]:
        return STEP_NOT_AFTER
    if ts < hd[H_TZ_LO] or ts >= hd[H_TZ_HI]:
        return STEP_TZ
    cap = hd[H_CAP]
    tz = int64_view(mem, hd[H_TZ], hd[H_TZ_N])
    si = int64_view(mem, hd[H_SI], L.N_SI)
    sf = float64_view(mem, hd[H_SF], L.N_SF)
    ri = int64_view2(mem, hd[H_RI], (L.N_RI, cap))
    rf = float64_view2(mem, hd[H_RF], (L.N_RF, cap))
    dq = int64_view2(mem, hd[H_DQ], (L.N_DQ, 2 + 2 * cap))
    med = int64_view(mem, hd[H_MED], hd[H_NMED])
    pv = float64_view(mem, hd[H_PV], L.N_PARAMS)
    x = int64_view2(mem, hd[H_X], (L.N_X, 1))
    xoff = float64_view(mem, hd[H_XOFF], 1)
    out = hd[H_OUT]
    of = float64_view2(mem, out, (_NF, 1))
    oi = int64_view2(mem, out + _OFF_I, (_NI, 1))
    ob = int8_view2(mem, out + _OFF_B, (_NB, 1))
    tick = pv[L.P_TICK]
    x[L.X_TS, 0] = ts
    x[L.X_O, 0] = np.int64(np.rint((o - offset) / tick))
    x[L.X_H, 0] = np.int64(np.rint((h - offset) / tick))
    x[L.X_L, 0] = np.int64(np.rint((l - offset) / tick))
    x[L.X_C, 0] = np.int64(np.rint((c - offset) / tick))
    x[L.X_V, 0] = v
    x[L.X_BID, 0] = bid
    x[L.X_ASK, 0] = ask
    xoff[0] = offset
    K.run_inline(pv, si, sf, ri, rf, dq, med, tz, x, xoff, of, oi, ob, 0, 1)
    hd[H_LAST_TS] = ts
    return STEP_OK


def _engine_memory(pv: np.ndarray) -> tuple[np.ndarray, tuple[np.ndarray, ...], np.ndarray]:
    """The engine's byte buffer for parameter vector `pv`: ``(mem, state views, output-row view)``, the
    state set to `kernels.new_state`'s."""
    fresh = K.new_state(pv)
    parts = list(fresh) + [pv, np.zeros((L.N_X, 1), np.int64), np.zeros(1)]
    offsets, at = [], 8 * N_HEADER
    for arr in parts:
        offsets.append(at)
        at += -(-arr.nbytes // 8) * 8  # each part 8-byte aligned
    out_at = at
    tz_at = out_at + -(-_BUF_BYTES // 8) * 8
    mem = np.zeros(tz_at + 8 * _TZ_SLOTS, np.uint8)
    views = []
    for arr, off in zip(parts, offsets):
        view = mem[off:off + arr.nbytes].view(arr.dtype).reshape(arr.shape)
        view[...] = arr
        views.append(view)
    hd = mem[:8 * N_HEADER].view(np.int64)
    hd[H_LAST_TS] = np.iinfo(np.int64).min
    hd[H_CAP] = fresh[2].shape[1]
    hd[H_NMED] = fresh[5].shape[0]
    hd[H_SI:H_XOFF + 1] = offsets
    hd[H_OUT] = out_at
    hd[H_TZ] = tz_at
    return mem, tuple(views[:6]), mem[out_at:out_at + _BUF_BYTES]


def _check_state_values(arrays: list[np.ndarray]) -> None:
    """Refuse state values the kernel would index with unchecked: the sorted volume window's size
    must be ``min(bars seen, window)`` and each deque's head and size inside its ring (the step
    reads these views without bounds checks)."""
    si, _sf, ri, _rf, dq, med = arrays
    t, med_n = int(si[L.S_T]), int(si[L.S_MED_N])
    window = med.shape[0] - 1
    if t < 0 or med_n != min(t, window):
        raise ValueError(f"snapshot state is damaged: {t} bars seen and a volume window of {med_n} "
                         f"(expected {min(max(t, 0), window)})")
    cap = ri.shape[1]
    for k in range(dq.shape[0]):
        head, size = int(dq[k, 0]), int(dq[k, 1])
        if not (0 <= head < cap and 0 <= size <= cap):
            raise ValueError(f"snapshot state is damaged: deque {k} has head {head}, size {size} (ring of {cap})")


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
        self._mem, self._state, self._out = _engine_memory(self._pv)
        self._header = self._mem[:8 * N_HEADER].view(np.int64)
        self._row = SignalRow(self._out, 0)  # the no-copy path's row, reused (it reads `_out`)

    def __reduce__(self):
        raise TypeError("a SignalEngine is not copied or pickled (its arrays are views of one buffer): "
                        "use snapshot()/restore() or to_bytes()/load_bytes()")

    def __deepcopy__(self, memo):
        self.__reduce__()

    def __copy__(self):
        self.__reduce__()

    @property
    def _last_ts(self) -> int:
        return int(self._header[H_LAST_TS])

    @_last_ts.setter
    def _last_ts(self, ts_ns: int) -> None:
        self._header[H_LAST_TS] = ts_ns

    def _cover(self, ts_ns: int) -> None:
        # rebuilt about once a year of bars; reading it is exact across DST changes
        tz = K.et_offset_table(ts_ns - _TZ_SPAN_NS, ts_ns + _TZ_SPAN_NS)
        if len(tz) > _TZ_SLOTS:  # the views in `_engine_step` are not bounds-checked
            raise AssertionError(f"time-zone table of {len(tz)} entries exceeds the engine's {_TZ_SLOTS}")
        at = int(self._header[H_TZ])
        self._mem[at:at + tz.nbytes].view(np.int64)[:] = tz
        self._header[H_TZ_N] = len(tz)
        self._header[H_TZ_LO] = ts_ns - _TZ_SPAN_NS // 2
        self._header[H_TZ_HI] = ts_ns + _TZ_SPAN_NS // 2

    def update_values(self, ts_ns: int, open_: float, high: float, low: float, close: float, volume: int,
                      bid_volume: int = 0, ask_volume: int = 0, roll_offset: float = 0.0, *,
                      copy: bool = True) -> SignalRow:
        """Fast path of :meth:`update`: bar start time in UTC ns and raw values (prices as floats).

        ``copy=False`` returns the engine's own row object, which reads the engine's output buffer (no
        allocation; it shows the next bar's values after the next update). The live loop uses it.
        """
        r = _engine_step(self._mem, ts_ns, open_, high, low, close, volume, bid_volume, ask_volume,
                         roll_offset)
        if r != STEP_OK:
            if r == STEP_NOT_AFTER:
                raise ValueError(f"bar at {pd.Timestamp(ts_ns, unit='ns', tz='UTC')} is not after the previous bar "
                                 f"({pd.Timestamp(self._last_ts, unit='ns', tz='UTC')})")
            self._cover(ts_ns)
            r = _engine_step(self._mem, ts_ns, open_, high, low, close, volume, bid_volume, ask_volume,
                             roll_offset)
            assert r == STEP_OK, r
        if copy:
            return SignalRow(self._out.copy(), ts_ns)
        row = self._row
        row.time = ts_ns
        return row

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
        arrays = [np.asarray(a) for a in snap["arrays"]]
        if [(a.shape, a.dtype) for a in arrays] != [(a.shape, a.dtype) for a in self._state]:
            raise ValueError("snapshot state arrays do not match this engine's layout")
        _check_state_values(arrays)
        for dst, src in zip(self._state, arrays):
            dst[...] = src  # into the engine's memory (the views `_engine_step` reads)
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
refresh_if_changed(globals(), [K.__file__] + [K.__file__.replace("kernels.py", f) for f in ("rolling.py", "layout.py", "market/clock.py",
                                                                                     "borrowed.py")])
