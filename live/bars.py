"""Live bar builder: trades (`Tick`) in, closed `Bar`s out, exactly the bars ``research.data.load_bars`` makes.

It uses the batch aggregation's own per-record rules (``research.data.aggregate``): ``bar_start_ns`` for
the time-bar grid (multiples of the size from the 17:00 CT session open), ``session_bounds_ns`` for the
session a trade belongs to, and ``threshold_add`` for volume:N / tick:N bars (which restart at each
session and are labelled by their first trade).

When a bar closes (see docs/feeds.md):
- time bars: on the first trade of a later bar, or by :meth:`BarBuilder.poll` once the clock passes the
  bar's end plus ``grace_seconds`` (Sierra Chart flushes ``.scid`` files about every 5 s);
- volume/tick bars: on the trade that fills them, or at the session change (the next session's first trade,
  or ``poll`` past the next session's open plus the grace);
- any bar: when a trade of another contract arrives, and at :meth:`BarBuilder.flush`.

A trade older than the bars already closed (a *late record*: it arrived after ``poll`` closed its bar) is
not added to any bar: it is counted in ``late_records`` / ``late_volume`` and reported in ``events``.
Per trade the builder does plain int/float arithmetic and allocates nothing but the `Bar` it returns.
"""

from __future__ import annotations

from live.events import Bar, Tick
from research.data.aggregate import (
    BarSpec,
    bar_start_ns,
    parse_bar_spec,
    session_bounds_ns,
    threshold_add,
)

__all__ = ["BarBuilder", "STATE_VERSION"]

STATE_VERSION = 1
_HOUR_NS = 3600 * 10**9
_NS = 10**9
_BAR_FIELDS = ("b_ts", "b_end", "b_open", "b_high", "b_low", "b_close", "b_volume", "b_bid", "b_ask", "b_trades",
               "b_contract", "b_acc", "b_full", "b_session")


class BarBuilder:
    """Turns a time-ordered stream of trades into closed bars of one bar spec (``"5min"``, ``"volume:500"``, ...).

    ``add(tick)`` returns the bar the trade's arrival closes (at most one: when one trade both ends a bar and
    fills the next volume/tick bar, the second is returned by the next ``poll``, ``add`` or ``flush``).
    ``symbol`` labels bars whose trades carry no contract.
    """

    def __init__(self, bar: str | BarSpec = "5min", *, grace_seconds: float = 5.0, symbol: str = "") -> None:
        self.spec = bar if isinstance(bar, BarSpec) else parse_bar_spec(bar)
        if not grace_seconds >= 0:
            raise ValueError(f"grace_seconds must be >= 0, got {grace_seconds!r}")
        self.grace_ns = int(round(grace_seconds * _NS))
        self.symbol = symbol
        self._time = self.spec.kind == "time"
        self._step = self.spec.size
        self._by_volume = self.spec.kind == "volume"
        self._session_grid = self._time and _HOUR_NS % self._step != 0
        self.late_records = 0
        self.late_volume = 0
        self.events: list[tuple[str, str]] = []
        self._s_open = 0  # the cached session [open, next open) of the last trade seen
        self._s_next = -1
        self._floor = -(2**63)  # trades before this time belong to bars already closed
        self._floor_before = self._floor  # the floor before the open bar's first trade (for state(open_bar=False))
        self._has = False
        self._clear_bar()

    # ---- the per-trade path -------------------------------------------------------------------------------

    def add(self, tick: Tick) -> Bar | None:
        """Add one trade; return the bar its arrival closes, or None."""
        ts = tick.ts_ns
        if ts < self._floor:
            self._late(tick)
            return None
        if ts >= self._s_next or ts < self._s_open:
            self._s_open, self._s_next = session_bounds_ns(ts)
        contract = tick.contract or self.symbol
        closed = None
        if self._has and (ts >= self.b_end or contract != self.b_contract or self.b_full):
            closed = self._close()
        if not self._has:
            self._open(tick, ts, contract)
            if self._time:
                return closed
        else:
            p = tick.price
            if p > self.b_high:
                self.b_high = p
            if p < self.b_low:
                self.b_low = p
            self.b_close = p
            self.b_volume += tick.size
            self.b_trades += tick.num_trades
            if tick.side < 0:
                self.b_bid += tick.size
            elif tick.side > 0:
                self.b_ask += tick.size
            if self._time:
                return closed
        self.b_acc, full = threshold_add(self.b_acc, tick.size if self._by_volume else tick.num_trades, self._step)
        if full:
            self.b_full = True
            if closed is None:
                self._floor = ts
                return self._close()
        return closed

    def poll(self, now_ns: int) -> Bar | None:
        """Close the open bar if the clock ``now_ns`` (UTC ns; the record clock in a replay) is past its end
        plus the grace; a full volume/tick bar waiting behind another closes at once."""
        if not self._has:
            return None
        if self.b_full:
            return self._close()
        if now_ns >= self.b_end + self.grace_ns:
            self._floor = max(self._floor, self.b_end)
            return self._close()
        return None

    def flush(self) -> Bar | None:
        """Close the open bar whatever the time (the end of a replay)."""
        return self._close() if self._has else None

    @property
    def open_bar_start(self) -> int | None:
        """Label (UTC ns) of the bar being built, or None."""
        return self.b_ts if self._has else None

    # ---- state --------------------------------------------------------------------------------------------

    def state(self, *, open_bar: bool = True) -> dict:
        """The builder's state as a JSON-able dict. ``open_bar=False`` leaves the bar being built out, as if
        its trades had not come yet: for a restart that re-reads the feed from that bar's first trade."""
        out = {"version": STATE_VERSION, "bar": self.spec.text, "grace_ns": self.grace_ns, "symbol": self.symbol,
               "late_records": self.late_records, "late_volume": self.late_volume}
        if open_bar and self._has:
            out["floor"] = self._floor
            out["open_bar"] = {k: getattr(self, k) for k in _BAR_FIELDS}
        else:
            out["floor"] = self._floor_before if self._has else self._floor
            out["open_bar"] = None
        return out

    def restore(self, state: dict) -> None:
        """Continue from :meth:`state`'s output; refuses a state of another bar spec or version."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"bar builder state version {state.get('version')!r}, this code reads {STATE_VERSION}")
        if state.get("bar") != self.spec.text:
            raise ValueError(f"bar builder state is for {state.get('bar')!r} bars, this builder makes {self.spec.text!r}")
        self.late_records = int(state["late_records"])
        self.late_volume = int(state["late_volume"])
        self._floor = self._floor_before = int(state["floor"])
        self._s_open, self._s_next = 0, -1
        bar = state.get("open_bar")
        if bar:
            for k in _BAR_FIELDS:
                setattr(self, k, bar[k])
            self._has = True
        else:
            self._clear_bar()

    # ---- internals ----------------------------------------------------------------------------------------

    def _clear_bar(self) -> None:
        self._has = False
        self.b_ts = self.b_end = 0
        self.b_open = self.b_high = self.b_low = self.b_close = 0.0
        self.b_volume = self.b_bid = self.b_ask = self.b_trades = self.b_acc = 0
        self.b_contract = ""
        self.b_full = False
        self.b_session = 0

    def _open(self, tick: Tick, ts: int, contract: str) -> None:
        self._floor_before = self._floor
        if self._time:
            start = int(bar_start_ns(ts, self._s_open if self._session_grid else 0, self._step))
            self.b_ts = start
            self.b_end = min(start + self._step, self._s_next)
            if start > self._floor:
                self._floor = start
        else:
            self.b_ts = ts
            self.b_end = self._s_next
        p = tick.price
        self.b_open = self.b_high = self.b_low = self.b_close = p
        self.b_volume = tick.size
        self.b_trades = tick.num_trades
        self.b_bid = tick.size if tick.side < 0 else 0
        self.b_ask = tick.size if tick.side > 0 else 0
        self.b_contract = contract
        self.b_acc = 0
        self.b_full = False
        self.b_session = self._s_open
        self._has = True

    def _close(self) -> Bar:
        bar = Bar(self.b_ts, self.b_open, self.b_high, self.b_low, self.b_close, self.b_volume, self.b_bid,
                  self.b_ask, self.b_trades, self.b_contract)
        self._floor_before = self._floor
        self._has = False
        self.b_full = False
        return bar

    def _late(self, tick: Tick) -> None:
        self.late_records += 1
        self.late_volume += tick.size
        self.events.append(("late_record", f"trade at {tick.ts_ns} ns ({tick.size} @ {tick.price}) arrived after its "
                                           f"bar closed (bars closed up to {self._floor} ns); not in any bar"))
