"""The collector's quality monitor: the rules of :func:`research.data.quality.check`, one record at a time.

API (the collector calls it for every record, in arrival order)::

    mon = QualityMonitor("ES", tick_size=0.25, bar_seconds=60)
    f = mon.on_tick(ts_ns, price, size, side)      # Finding | None
    f = mon.on_bar(ts_ns, o, h, l, c, volume, bid_volume, ask_volume, num_trades)   # Finding | None
    f = mon.on_idle(now_ns)                        # Finding | None: no record for a while (stale feed)
    if f is not None:
        for x in f.all():                          # one record can break several rules
            journal.record_risk_event(x.event_kind, x.detail, x.ts_ns, x.level)
            # and the segment's EVENT frame: segments.json_frame(segments.EVENT, x.to_event())

``None`` is the normal path: no object is built and each call costs O(1) (the spike rule's running median is
O(log n) per bar; a gap costs O(missing bars) once, when it is found). ``mon.counts`` (kind -> findings) and
:meth:`QualityMonitor.status` feed the status line.

Bar rules: every rule of ``check`` (same names, severities and thresholds: :data:`CHECKS`), applied to bar
``t`` with the bars before it only, so that a finding never changes when later bars come:

- the per-bar rules (duplicate_time, time_out_of_order, nonfinite/nonpositive price, price_jump,
  ohlc_inconsistent, off_tick, negative_volume, flow_*, trades_exceed_volume, volume_without_trades,
  zero_volume, off_bar_grid) give exactly ``check``'s findings;
- ``stale``: reported once, when a run of identical bars reaches :data:`STALE_MIN_RUN` bars, at the run's first
  repeat (``row``, ``ts_ns``: its second bar), as ``check`` reports it (``check`` also knows the run's final
  length);
- ``spike``: the bar's range against the median range of its session *so far* (``check`` takes the whole
  session's median, so on a day whose typical range changes late the two can differ), from the 21st bar on
  (``check`` needs more than 20 rows);
- ``gap`` and ``in_halt`` ask :class:`strategy.market.calendar.SessionCalendar` whether the market is open:
  on regular days that is ``check``'s regular-hours rule; on holidays and early closes the calendar knows the
  session ends early (``check`` does not), and outside the calendar's coverage (2013-2030) every missing bar
  counts and ``in_halt`` is not applied.

Tick rules (``TICK_CHECKS``, no batch twin): a tick earlier than the previous one (equal times are normal);
a price NaN, infinite, zero or negative; off the tick grid; a negative size or a side not in {-1, 0, +1}; a
price over :data:`JUMP_FACTOR` times (or under its inverse) the previous tick's (``price_jump``'s rule); a move
from the previous tick over 1 % of price and over 25 ticks (``spike``'s thresholds, the session median of
tick moves taken as its floor of one tick: most ticks trade where the previous one did); no tick for more than
``tick_gap_seconds`` of open market inside one session. ``on_idle``: no record for more than
``stale_seconds`` while the market is open, reported once per quiet period.

A :class:`Finding`'s ``row`` is the record's position among the bars (bar rules) or the ticks (tick rules)
the monitor has seen, 0-based: ``check``'s ``row`` when the bars are the frame's rows.
"""

from __future__ import annotations

import heapq
import math
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from research.data.aggregate import session_bounds_ns
from research.data.quality import CHECKS, JUMP_FACTOR, STALE_MIN_RUN
from strategy.market.calendar import SessionCalendar

__all__ = ["Finding", "QualityMonitor", "TICK_CHECKS", "ALL_CHECKS", "QUALITY_PREFIX", "SPIKE_FACTOR",
           "SPIKE_PRICE_FRACTION", "SPIKE_MIN_ROWS", "LEVELS"]

TICK_CHECKS: dict[str, tuple[str, str]] = {
    "tick_out_of_order": ("error", "a tick earlier than the previous one"),
    "tick_bad_price": ("error", "a tick price NaN, infinite, zero or negative"),
    "tick_off_tick": ("error", "a tick price not on the instrument's tick grid"),
    "tick_bad_size": ("error", "a negative tick size, or a side not in {-1, 0, +1}"),
    "tick_jump": ("error", "a tick over 3x, or under 1/3 of, the previous tick's price"),
    "tick_spike": ("warning", "a move from the previous tick over 1% of price and over 25 ticks"),
    "tick_gap": ("warning", "no tick for longer than tick_gap_seconds while the market is open"),
    "stale_feed": ("warning", "no record for longer than stale_seconds while the market is open"),
}
ALL_CHECKS: dict[str, tuple[str, str]] = {**CHECKS, **TICK_CHECKS}
LEVELS = {"error": "warning", "warning": "info"}  # check's severity -> the journal's risk-event level
QUALITY_PREFIX = "quality."  # event kinds of the findings in the journal and the segments: quality.<kind>
SPIKE_FACTOR = 25.0  # check's spike rule: range > 25x the session's median range ...
SPIKE_PRICE_FRACTION = 0.01  # ... and > 1% of price
SPIKE_MIN_ROWS = 21  # check applies the spike rule to frames of more than 20 rows
_LOG_JUMP = math.log(JUMP_FACTOR)
_PRICE_FIELDS = ("open", "high", "low", "close")
_HOUR_NS = 3_600_000_000_000
_DAY_NS = 86_400_000_000_000


@dataclass(frozen=True, slots=True)
class Finding:
    """One broken rule: ``kind`` (a name of :data:`ALL_CHECKS`), ``severity`` (check's error|warning),
    ``ts_ns`` (the record's time, UTC ns; a stale run's first repeat), ``detail`` (one line), ``row`` (see the
    module docstring), ``field``; ``others``: the record's further findings (:meth:`all`)."""

    kind: str
    severity: str
    ts_ns: int
    detail: str
    row: int
    field: str = ""
    others: tuple[Finding, ...] = ()

    @property
    def level(self) -> str:
        """The journal's risk-event level (:data:`LEVELS`)."""
        return LEVELS[self.severity]

    @property
    def event_kind(self) -> str:
        """The event kind in the journal and the segments: ``quality.<kind>``."""
        return QUALITY_PREFIX + self.kind

    def all(self) -> tuple[Finding, ...]:
        """This finding and the record's others, in rule order (without their ``others``)."""
        if not self.others:
            return (self,)
        return (Finding(self.kind, self.severity, self.ts_ns, self.detail, self.row, self.field), *self.others)

    def to_event(self) -> dict[str, Any]:
        """The segment EVENT record: ``{ts_ns, kind, level, detail}``."""
        return {"ts_ns": int(self.ts_ns), "kind": self.event_kind, "level": self.level, "detail": self.detail}


def _chain(found: list[Finding]) -> Finding | None:
    if not found:
        return None
    first = found[0]
    if len(found) == 1:
        return first
    return Finding(first.kind, first.severity, first.ts_ns, first.detail, first.row, first.field, tuple(found[1:]))


class _RunningMedian:
    """Median of a growing set of numbers (two heaps: O(log n) per value), pandas' median for even counts."""

    __slots__ = ("lo", "hi")

    def __init__(self) -> None:
        self.lo: list[float] = []  # max-heap (negated): the smaller half
        self.hi: list[float] = []  # min-heap: the larger half

    def clear(self) -> None:
        self.lo.clear()
        self.hi.clear()

    def add(self, x: float) -> None:
        if self.lo and x > -self.lo[0]:
            heapq.heappush(self.hi, x)
        else:
            heapq.heappush(self.lo, -x)
        if len(self.lo) > len(self.hi) + 1:
            heapq.heappush(self.hi, -heapq.heappop(self.lo))
        elif len(self.hi) > len(self.lo):
            heapq.heappush(self.lo, -heapq.heappop(self.hi))

    def median(self) -> float:
        if not self.lo:
            return math.nan
        if len(self.lo) > len(self.hi):
            return -self.lo[0]
        return (-self.lo[0] + self.hi[0]) / 2.0


def _ts(ts_ns: int) -> str:
    from datetime import datetime, timezone

    return datetime.fromtimestamp(ts_ns // 1_000_000_000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


class QualityMonitor:
    """Incremental data-quality rules for one symbol's ticks and bars (see the module docstring).

    ``tick_size``: the price grid (None: no off-tick rule); ``bar_seconds``: the time-bar size (None for
    volume/tick bars: no gap and grid rules); ``stale_seconds``/``tick_gap_seconds``: the tick-level quiet
    periods; ``calendar``: a shared :class:`SessionCalendar` (one is built otherwise).
    """

    def __init__(self, symbol: str, tick_size: float | None, bar_seconds: float | None, *,
                 stale_seconds: float = 120.0, tick_gap_seconds: float = 300.0,
                 calendar: SessionCalendar | None = None) -> None:
        self.symbol = symbol
        self.tick_size = float(tick_size) if tick_size else None
        self.bar_seconds = float(bar_seconds) if bar_seconds else None
        self.step_ns = int(self.bar_seconds * 1e9) if self.bar_seconds else 0
        self.grid = bool(self.step_ns) and 86400 % self.bar_seconds == 0  # check: sizes that divide a day
        self.stale_ns = int(stale_seconds * 1e9)
        self.tick_gap_ns = int(tick_gap_seconds * 1e9)
        self.calendar = calendar or SessionCalendar()
        self.counts: dict[str, int] = {}
        self.last: Finding | None = None
        # bars
        self.bars = 0
        self._bar_ts: int | None = None
        self._bar_close = math.nan
        self._bar_vals: tuple | None = None
        self._run_start_row = 0  # the current run's first repeat
        self._run_start_ts = 0
        self._run_len = 1
        self._ranges = _RunningMedian()
        self._bar_session = (0, 0)  # [open, next open) of the last bar's session
        # ticks
        self.ticks = 0
        self._tick_ts: int | None = None
        self._tick_px = math.nan
        self._tick_session = (0, 0)
        self._last_record_ns: int | None = None
        self._stale_reported = False

    # -- helpers

    def _note(self, found: list[Finding]) -> Finding | None:
        for f in found:
            self.counts[f.kind] = self.counts.get(f.kind, 0) + 1
        out = _chain(found)
        if out is not None:
            self.last = out
        return out

    @staticmethod
    def _session(ts_ns: int, cached: tuple[int, int]) -> tuple[int, int]:
        if cached[0] <= ts_ns < cached[1]:
            return cached
        return session_bounds_ns(ts_ns)

    def _open(self, ts_ns: int) -> bool | None:
        """The calendar's answer, None outside its coverage."""
        try:
            return self.calendar.is_open(ts_ns)
        except ValueError:
            return None

    def _open_probes(self, start_ns: int, count: int) -> int:
        """How many of ``start_ns + j * step`` (j = 1..count) fall while the market is open."""
        step, cal = self.step_ns, self.calendar
        j, n = 1, 0
        while j <= count:
            p = start_ns + j * step
            try:
                if cal.is_open(p):
                    n += 1
                    j += 1
                    continue
                nxt = cal.next_open_ns(p)
            except ValueError:  # outside the calendar: every missing bar counts
                n += 1
                j += 1
                continue
            j = max(j + 1, -(-(nxt - start_ns) // step))  # the first probe at or after the reopening
        return n

    # -- ticks

    def on_tick(self, ts_ns: int, price: float, size: int, side: int) -> Finding | None:
        """Check one tick (after the ticks before it); None when it breaks no rule."""
        row = self.ticks
        self.ticks += 1
        prev_ts, prev_px = self._tick_ts, self._tick_px
        self._tick_ts, self._last_record_ns, self._stale_reported = ts_ns, ts_ns, False
        found: list[Finding] | None = None
        tick = self.tick_size
        good = math.isfinite(price) and price > 0
        if prev_ts is not None and ts_ns < prev_ts:
            found = [Finding("tick_out_of_order", "error", ts_ns,
                             f"tick at {_ts(ts_ns)} before the previous one at {_ts(prev_ts)}", row, "time")]
        if not good:
            found = found or []
            found.append(Finding("tick_bad_price", "error", ts_ns, f"tick price {price}", row, "price"))
        elif tick is not None:
            q = price / tick
            if abs(q - round(q)) > 1e-6:
                found = found or []
                found.append(Finding("tick_off_tick", "error", ts_ns, f"{price} is not a multiple of tick {tick}",
                                     row, "price"))
        if size < 0 or side not in (-1, 0, 1):
            found = found or []
            found.append(Finding("tick_bad_size", "error", ts_ns, f"tick size {size}, side {side}", row, "size"))
        if good and prev_px > 0:  # NaN compares False: no previous good price
            move = abs(price - prev_px)
            if abs(math.log(price / prev_px)) > _LOG_JUMP:
                found = found or []
                found.append(Finding("tick_jump", "error", ts_ns, f"tick {price:g} vs previous tick {prev_px:g}",
                                     row, "price"))
            elif move > SPIKE_PRICE_FRACTION * price and move > SPIKE_FACTOR * (tick or 0.0):
                found = found or []
                found.append(Finding("tick_spike", "warning", ts_ns,
                                     f"tick {price:g} moved {move:g} from the previous tick {prev_px:g}", row, "price"))
        if good:
            self._tick_px = price
        if prev_ts is not None and ts_ns - prev_ts > self.tick_gap_ns:
            sess = self._session(prev_ts, self._tick_session)
            self._tick_session = sess
            if ts_ns < sess[1]:  # same session
                open_from = prev_ts
                try:
                    if not self.calendar.is_open(prev_ts):
                        open_from = self.calendar.next_open_ns(prev_ts)
                except ValueError:
                    pass
                quiet = ts_ns - open_from
                if quiet > self.tick_gap_ns:
                    found = found or []
                    found.append(Finding("tick_gap", "warning", ts_ns,
                                         f"no tick for {timedelta(microseconds=quiet // 1000)} of open market "
                                         f"(since {_ts(prev_ts)})", row, "time"))
        return None if found is None else self._note(found)

    def on_idle(self, now_ns: int) -> Finding | None:
        """Call when no record came for a while (``now_ns`` on the records' clock): a ``stale_feed``
        finding, once per quiet period, when the last record is over ``stale_seconds`` old and the market
        is open now."""
        last = self._last_record_ns
        if last is None or self._stale_reported or now_ns - last <= self.stale_ns:
            return None
        if self._open(now_ns) is False:
            return None
        self._stale_reported = True
        quiet = timedelta(microseconds=(now_ns - last) // 1000)
        return self._note([Finding("stale_feed", "warning", now_ns,
                                   f"no record for {quiet} while the market is open (last at {_ts(last)})",
                                   self.ticks, "time")])

    # -- bars

    def on_bar(self, ts_ns: int, open_: float, high: float, low: float, close: float, volume: int,
               bid_volume: int, ask_volume: int, num_trades: int) -> Finding | None:
        """Check one closed bar (``ts_ns`` its start) against the bars before it; None when it breaks no rule."""
        row = self.bars
        self.bars += 1
        found: list[Finding] = []
        add = found.append
        prev_ts, prev_close = self._bar_ts, self._bar_close
        px = (open_, high, low, close)
        tick = self.tick_size
        if prev_ts is not None:
            if ts_ns == prev_ts:
                add(Finding("duplicate_time", "error", ts_ns, CHECKS["duplicate_time"][1], row, "time"))
            elif ts_ns < prev_ts:
                add(Finding("time_out_of_order", "error", ts_ns,
                            f"bar at {_ts(ts_ns)} before the previous one at {_ts(prev_ts)}", row, "time"))
        finite = True
        for name, x in zip(_PRICE_FIELDS, px):
            if not math.isfinite(x):
                finite = False
                add(Finding("nonfinite_price", "error", ts_ns, f"{name} {x}", row, name))
        for name, x in zip(_PRICE_FIELDS, px):
            if x <= 0:
                add(Finding("nonpositive_price", "error", ts_ns, f"{name} {x}", row, name))
        if prev_ts is not None:  # check: one finding per bar, its price furthest from the previous close
            worst, worst_dev = 0, -1.0
            for k, x in enumerate(px):
                ratio = x / prev_close if (x > 0 and prev_close > 0) else 1.0
                dev = abs(math.log(ratio))
                if dev > worst_dev:
                    worst, worst_dev = k, dev
            if worst_dev > _LOG_JUMP:
                f = _PRICE_FIELDS[worst]
                add(Finding("price_jump", "error", ts_ns, f"{f} {px[worst]:g} vs previous close {prev_close:g}",
                            row, f))
        if low > open_ or low > close or low > high:
            add(Finding("ohlc_inconsistent", "error", ts_ns,
                        f"low {low} > min(open {open_}, close {close}, high {high})", row, "low"))
        elif high < open_ or high < close:
            add(Finding("ohlc_inconsistent", "error", ts_ns, f"high {high} < max(open {open_}, close {close})",
                        row, "high"))
        if tick is not None:
            for name, x in zip(_PRICE_FIELDS, px):
                q = x / tick
                if math.isfinite(q) and abs(q - round(q)) > 1e-6:
                    add(Finding("off_tick", "error", ts_ns, f"{x} is not a multiple of tick {tick}", row, name))
        for name, v in (("volume", volume), ("num_trades", num_trades), ("bid_volume", bid_volume),
                        ("ask_volume", ask_volume)):
            if v < 0:
                add(Finding("negative_volume", "error", ts_ns, f"{name} {v}", row, name))
        flow = bid_volume + ask_volume
        if flow > volume:
            add(Finding("flow_exceeds_volume", "error", ts_ns, f"bid+ask {flow} > volume {volume}", row,
                        "bid_volume+ask_volume"))
        elif flow < volume:
            add(Finding("flow_below_volume", "warning", ts_ns, f"bid+ask {flow} < volume {volume}", row,
                        "bid_volume+ask_volume"))
        if num_trades > volume:
            add(Finding("trades_exceed_volume", "warning", ts_ns, f"{num_trades} trades > volume {volume}", row,
                        "num_trades"))
        elif num_trades == 0 and volume > 0:
            add(Finding("volume_without_trades", "warning", ts_ns, f"volume {volume} with no trade", row,
                        "num_trades"))
        if volume == 0:
            add(Finding("zero_volume", "warning", ts_ns, CHECKS["zero_volume"][1], row, "volume"))
        if self._open(ts_ns) is False:
            add(Finding("in_halt", "warning", ts_ns, f"bar at {_ts(ts_ns)} while the market is closed", row, "time"))
        sess = self._session(ts_ns, self._bar_session)
        if self.grid:
            step = self.step_ns
            off = ts_ns % step if _HOUR_NS % step == 0 else (ts_ns - sess[0]) % step
            if off:
                add(Finding("off_bar_grid", "warning", ts_ns, f"{_ts(ts_ns)} is not on the {self.bar_seconds:g}s grid",
                            row, "time"))
        same_session = sess == self._bar_session
        if self.step_ns and prev_ts is not None and same_session and ts_ns - prev_ts > self.step_ns * 1.5:
            count = max((ts_ns - prev_ts - 1) // self.step_ns, 0)
            missing = self._open_probes(prev_ts, count)
            if missing:
                add(Finding("gap", "warning", ts_ns, f"{missing} bar(s) missing "
                            f"({timedelta(microseconds=(ts_ns - prev_ts) // 1000)} since the previous bar)", row, "time"))
        # stale: a run of identical bars (prices and volumes; NaN never equals) reported when it reaches the minimum
        vals = (open_, high, low, close, volume, num_trades, bid_volume, ask_volume)
        if self._bar_vals is not None and vals == self._bar_vals and finite:
            self._run_len += 1
            if self._run_len == 2:  # check reports a run at its first repeat
                self._run_start_row, self._run_start_ts = row, ts_ns
            if self._run_len == STALE_MIN_RUN:
                add(Finding("stale", "warning", self._run_start_ts,
                            f"{STALE_MIN_RUN} identical consecutive bars (repeats from {_ts(self._run_start_ts)})",
                            self._run_start_row, "bar"))
        else:
            self._run_len = 1
        # spike: the range against its session's median range so far (this bar included)
        if not same_session:
            self._ranges.clear()
        rng = high - low
        if rng == rng:  # pandas' median skips NaN
            self._ranges.add(rng)
        if self.bars >= SPIKE_MIN_ROWS:
            med = self._ranges.median()
            floor = max(med, tick or 0.0) if med == med else math.nan
            if rng > SPIKE_FACTOR * floor and rng > SPIKE_PRICE_FRACTION * abs(close):
                add(Finding("spike", "warning", ts_ns, f"range {rng:g} vs session median {med:g}", row, "high-low"))
        self._bar_ts, self._bar_close, self._bar_vals, self._bar_session = ts_ns, close, vals, sess
        self._last_record_ns, self._stale_reported = ts_ns, False
        if not found:
            return None
        return self._note(found)

    def status(self) -> dict[str, Any]:
        """For the status line: records seen, findings by kind, the last finding."""
        last = self.last
        return {"ticks": self.ticks, "bars": self.bars, "findings": sum(self.counts.values()),
                "by_kind": dict(self.counts),
                "last": None if last is None else {"kind": last.kind, "ts_ns": last.ts_ns, "detail": last.detail}}
