"""Replay of a recorded file through the live path: trades (`.scid`, tick text, DBN) or bars (bar files).

Files are read by the research data layer (``research.data``), so bad input stops with its one-line
errors, and trades are screened by the same rules as ``load_bars`` (``research.data.validate``). The
resume token is ``{"next": i, "records": n}``: the index of the next record to yield, and how many the
source holds (a source that changed since is refused).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from live.events import NAN, Bar, Tick
from live.feeds.base import Feed, FeedError
from live.feeds.pacing import Pacer
from research.data import detect_format, expand_paths, load_bars, load_ticks
from research.data.validate import screen_ticks
from strategy.market.instruments import get_spec, root_of

__all__ = ["ReplayFeed", "ArrayFeed", "TickColumns", "BarColumns", "ticks_from_frame", "bars_from_frame"]

TICK_FORMATS = ("tbt_text", "dbn")


class TickColumns:
    """A tick frame's columns as Python lists; ``[i]`` builds the i-th `Tick` (only when asked for)."""

    def __init__(self, ticks: pd.DataFrame, contract: str = "") -> None:
        n = len(ticks)
        self.ts = ticks.index.as_unit("ns").asi8.tolist()
        nan = [NAN] * n
        self._cols = (self.ts, ticks["price"].tolist(), ticks["size"].tolist(), ticks["side"].astype(np.int64).tolist(),
                      [contract] * n, ticks["num_trades"].tolist() if "num_trades" in ticks else [1] * n,
                      _quotes(ticks["bid"]) if "bid" in ticks else nan, _quotes(ticks["ask"]) if "ask" in ticks else nan)

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, i: int) -> Tick:
        t, p, s, d, c, k, b, a = self._cols
        return Tick(t[i], p[i], s[i], d[i], c[i], k[i], b[i], a[i])


def _quotes(col: pd.Series) -> list[float]:
    """A quote column as floats, every missing one the same NaN object (so equal `Tick`s compare equal)."""
    return [NAN if x != x else x for x in col.astype(np.float64).tolist()]


class BarColumns:
    """A canonical bar frame's columns as Python lists; ``[i]`` builds the i-th `Bar`. On a stitched series
    (a ``contract`` column) the last bar of each contract before a roll has ``last_of_contract=True``."""

    def __init__(self, frame: pd.DataFrame) -> None:
        n = len(frame)
        zeros = [0] * n
        def col(c: str) -> list:
            return frame[c].tolist() if c in frame else zeros

        contracts = frame["contract"].astype(str).tolist() if "contract" in frame else [str(frame.attrs.get("symbol") or "")] * n
        last = [contracts[i] != contracts[i + 1] for i in range(n - 1)] + [False] if n else []
        self.ts = frame.index.as_unit("ns").asi8.tolist()
        self._cols = (self.ts, col("open"), col("high"), col("low"), col("close"), col("volume"), col("bid_volume"),
                      col("ask_volume"), col("num_trades"), contracts, last,
                      frame["roll_offset"].tolist() if "roll_offset" in frame else [0.0] * n)
        self.order_flow = "bid_volume" in frame and "ask_volume" in frame
        self.bar_ns = _bar_ns(frame)

    def __len__(self) -> int:
        return len(self.ts)

    def __getitem__(self, i: int) -> Bar:
        return Bar(*(c[i] for c in self._cols))


def _bar_ns(frame: pd.DataFrame) -> int | None:
    from strategy.signals import bar_duration_ns

    try:
        return int(bar_duration_ns(frame, None)) if len(frame) > 1 else None
    except ValueError:
        return None


def ticks_from_frame(ticks: pd.DataFrame, contract: str = "") -> list[Tick]:
    """A canonical tick frame (``research.data.ticks``) as a list of `Tick`, in frame order."""
    cols = TickColumns(ticks, contract)
    return [cols[i] for i in range(len(cols))]


def bars_from_frame(frame: pd.DataFrame) -> list[Bar]:
    """A canonical bar frame as a list of `Bar` (see :class:`BarColumns`)."""
    cols = BarColumns(frame)
    return [cols[i] for i in range(len(cols))]


class ArrayFeed(Feed):
    """Yields records held in memory (a sequence of `Tick`/`Bar`, or :class:`TickColumns`/:class:`BarColumns`),
    paced by their timestamps; resumable by index."""

    def __init__(self, records: Sequence[Tick | Bar] | TickColumns | BarColumns, *, yields_bars: bool, symbol: str = "", speed: float | None = None,
                 resume: object = None, source: str = "replay", max_wait_seconds: float = 2.0,
                 clock: Callable[[], float] | None = None, sleep: Callable[[float], None] | None = None) -> None:
        self._records = records
        self.yields_bars = yields_bars
        self.symbol = symbol
        self.source = source
        kw = {k: v for k, v in (("clock", clock), ("sleep", sleep)) if v is not None}
        self.pacer = Pacer(speed, max_wait_seconds=max_wait_seconds, **kw)
        self._i = self._resume_index(resume)
        self.events: list[tuple[str, str]] = []  # nothing to report: the same attribute as ScidFeed's
        self.last_record_wall = self.pacer.clock()  # monotonic time of the last record yielded

    def _resume_index(self, resume: object) -> int:
        if resume is None:
            return 0
        n = len(self._records)
        if not (isinstance(resume, dict) and isinstance(resume.get("next"), int) and isinstance(resume.get("records"), int)):
            raise FeedError(f"{self.source}: bad resume token {resume!r} (expected {{'next': int, 'records': int}})")
        if resume["records"] != n:
            raise FeedError(f"{self.source}: the resume token is for a source of {resume['records']:,} records, "
                            f"this one holds {n:,} (the file changed?)")
        if not 0 <= resume["next"] <= n:
            raise FeedError(f"{self.source}: resume position {resume['next']:,} is outside 0..{n:,}")
        return resume["next"]

    def next_record(self) -> Tick | Bar | None:
        if self._i >= len(self._records):
            return None
        if self.pacer.speed is not None and not self.pacer.ready(self._ts(self._i)):
            return None
        self._i += 1
        self.last_record_wall = self.pacer.clock()
        return self._records[self._i - 1]

    def _ts(self, i: int) -> int:
        recs = self._records
        return recs.ts[i] if isinstance(recs, (TickColumns, BarColumns)) else recs[i].ts_ns

    def exhausted(self) -> bool:
        return self._i >= len(self._records)

    def resume_token(self) -> dict:
        return {"next": self._i, "records": len(self._records)}

    @property
    def order_flow(self) -> bool:
        """Bid/ask volumes are known: trades carry their aggressor side, bars their bid/ask columns."""
        return bool(getattr(self._records, "order_flow", True))

    @property
    def bar_ns(self) -> int | None:
        """Bar length of a bar replay (None for trades)."""
        return getattr(self._records, "bar_ns", None)

    @property
    def position(self) -> int:
        """Index of the next record."""
        return self._i

    def __len__(self) -> int:
        return len(self._records)


class ReplayFeed(ArrayFeed):
    """A recorded file replayed as fast as possible (``speed=None``) or at ``speed`` x real time.

    ``path``: a ``.scid`` of single trades, a tick-by-tick text export or a DBN file (yields `Tick`), or
    a bar file, several bar files or a folder of them (yields `Bar`, ``yields_bars=True``; several
    contracts make a continuous series as ``load_bars`` does). ``symbol`` overrides the file name's.
    """

    def __init__(self, path: str | Path | Sequence[str | Path], *, speed: float | None = None,
                 symbol: str | None = None, resume: object = None, **kw) -> None:
        paths = expand_paths(path)
        source = str(paths[0]) if len(paths) == 1 else f"{paths[0]} (+{len(paths) - 1} files)"
        if len(paths) == 1 and _holds_trades(paths[0]):
            ticks = load_ticks(paths[0], symbol=symbol)
            sym = str(ticks.attrs.get("symbol") or "")
            attrs: dict = {}
            ticks = screen_ticks(ticks, paths[0], _tick_size(sym), False, attrs)
            super().__init__(TickColumns(ticks, sym), yields_bars=False, symbol=sym, speed=speed, resume=resume,
                             source=source, **kw)
        else:
            frame = load_bars(paths if len(paths) > 1 else paths[0], symbol=symbol)
            super().__init__(BarColumns(frame), yields_bars=True, symbol=str(frame.attrs.get("symbol") or ""),
                             speed=speed, resume=resume, source=source, **kw)

    @classmethod
    def from_frame(cls, frame: pd.DataFrame, *, speed: float | None = None, resume: object = None, **kw) -> ArrayFeed:
        """A replay of a canonical bar frame (as ``load_bars`` returns it)."""
        return ArrayFeed(BarColumns(frame), yields_bars=True, symbol=str(frame.attrs.get("symbol") or ""),
                         speed=speed, resume=resume, source="bar frame", **kw)


def _holds_trades(path: Path) -> bool:
    fmt = detect_format(path)
    if fmt in TICK_FORMATS:
        return True
    if fmt != "scid":
        return False
    from research.data.scid import read_scid_records, records_are_trades

    rec = read_scid_records(path)
    if rec.size == 0:
        raise FeedError(f"{path}: file has a header and no records")
    return bool(records_are_trades(rec).all())


def _tick_size(symbol: str) -> float | None:
    try:
        return get_spec(root_of(symbol)).tick_size if symbol else None
    except (KeyError, ValueError):
        return None
