"""`ScidFeed`: tails a Sierra Chart ``.scid`` file while Sierra writes it, built on ``research.data.scid.ScidTail``.

- A partial record at the end (Sierra is mid-write) is left for the next poll.
- The file replaced (a new inode), truncated (smaller than the read offset) or rewritten (the last record
  read is not there any more): the feed reopens it from the start and skips every record up to the last
  one it yielded (same DateTime, and as many records of that DateTime as it yielded), so nothing is yielded
  twice; an event says so. The records of the old file up to that point are known by count (the read offset);
  once the skip is done, a new file holding more of them (a re-download with backfilled trades) gives a
  ``backfill`` event, fewer a ``history_changed`` event, each with both counts and the time span of the new
  file's records up to that point. Backfilled records are not yielded: they are older than records already
  yielded (out of order for a bar builder and a trader); collect them from the file with a replay feed
  (docs/feeds.md).
- Contract roll: :meth:`ScidFeed.roll_to` switches to another file; with ``auto_roll`` the feed also looks,
  while the current file is quiet, for the next contract's file by Sierra's naming in the same folder
  (``ESM24-CME.scid`` -> ``ESU24-CME.scid``) and switches once that file holds a record later than the last
  one read. Records of the new file at or before that time (its history) are skipped.

``events`` lists what happened as ``(kind, detail)`` for the journal: ``replaced``, ``truncated``,
``rewritten``, ``roll``, ``missing``, ``resumed``, ``backfill``, ``history_changed``, ``out_of_order`` (records whose DateTime goes back: yielded as
they are, in file order; the skip after a reopen assumes ordered times). ``last_record_wall`` is the monotonic time new records
last arrived (the loop's feed-halt kill switch). The resume token is the byte offset of the next record
plus what the duplicate check needs (see docs/feeds.md).
"""

from __future__ import annotations

import os
import re
import time
from collections.abc import Callable
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from live.events import NAN, Tick
from live.feeds.base import Feed, FeedError
from research.data import DataError
from research.data.loader import symbol_from_path
from research.data.scid import (
    SCID_HEADER_SIZE,
    SCID_RECORD_DTYPE,
    ScidTail,
    records_are_trades,
    scid_time_to_ns,
)
from strategy.market.instruments import MONTH_CODES, get_spec, parse_contract

__all__ = ["ScidFeed", "next_contract_path"]

REC = SCID_RECORD_DTYPE.itemsize
_ALL = 2**62  # "skip every record of that DateTime"
_NAME_RE = re.compile(r"^(?P<root>[A-Z0-9]{1,4}?)(?P<m>[FGHJKMNQUVXZ])(?P<y>\d{1,2})(?P<rest>[-_.].*)?\.scid$")
_QUARTERLY = (3, 6, 9, 12)


def next_contract_path(path: str | Path) -> Path | None:
    """The file Sierra Chart names for the contract after ``path``'s (same folder, same suffix), or None when
    the name is not a contract file of a known product. ``ESM24-CME.scid`` -> ``ESU24-CME.scid``,
    ``ESZ4.scid`` -> ``ESH5.scid``."""
    path = Path(path)
    m = _NAME_RE.match(path.name)
    if not m:
        return None
    code = parse_contract(m["root"] + m["m"] + m["y"])
    try:
        quarterly = get_spec(code.root).quarterly if code else None
    except (KeyError, ValueError):
        return None
    if code is None:
        return None
    months = _QUARTERLY if quarterly else tuple(range(1, 13))
    later = [mo for mo in months if mo > code.month]
    month, year = (later[0], code.year) if later else (months[0], code.year + 1)
    letter = {v: k for k, v in MONTH_CODES.items()}[month]
    digits = f"{year % 100:02d}" if len(m["y"]) == 2 else str(year % 10)
    return path.with_name(f"{code.root}{letter}{digits}{m['rest'] or ''}.scid")


class ScidFeed(Feed):
    """Yields the trades Sierra Chart appends to a ``.scid`` file (single-trade records) as `Tick`."""

    live = True

    def __init__(self, path: str | Path, *, resume: object = None, poll_interval: float = 0.25,
                 symbol: str | None = None, auto_roll: bool = True, roll_check_seconds: float = 2.0,
                 chunk_records: int = 65536, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0 seconds, got {poll_interval!r}")
        self.poll_interval = float(poll_interval)
        self.auto_roll = auto_roll
        self.roll_check = float(roll_check_seconds)
        self.chunk = int(chunk_records)
        self.clock, self.sleep = clock, sleep
        self.events: list[tuple[str, str]] = []
        self._symbol_override = symbol
        self._buf: list[Tick] = []
        self._buf_dt: list[int] = []
        self._bi = 0
        self._buf_offset = 0  # byte offset of the buffer's first record
        self._before_buf_dt: int | None = None  # DateTime of the record just before it (None: the file's start)
        self._last_dt: int | None = None  # Sierra DateTime (µs) of the last record yielded
        self._same = 0  # records yielded with that DateTime
        self._last_read_dt: int | None = None
        self._skip: list[int] | None = None  # [DateTime, count]: drop records before it, and `count` of it
        # a skip after a reopen: {"expected": records the old file held up to the skip point, "dropped": records
        # of the new file dropped so far, "first_dt"/"last_dt": their DateTimes}; None: no count to compare
        self._skip_check: dict | None = None
        self._reopen_had: int | None = None  # the old file's count, kept while a reopen waits for the file
        self._pending_roll: Path | None = None
        self._reopen_why: str | None = None  # a reopen waiting for the file to come back
        self._next_poll = 0.0
        self._next_roll_check = 0.0
        self._full_chunk = False
        self.last_record_wall = clock()
        if resume is None:
            self._start(Path(path), offset=None)
        else:
            self._resume(Path(path), resume)

    # ---- Feed ---------------------------------------------------------------------------------------------

    def next_record(self) -> Tick | None:
        if self._bi >= len(self._buf):
            if self._pending_roll is not None:
                self._do_roll(self._pending_roll)
            if not self._full_chunk:
                wait = self._next_poll - self.clock()
                if wait > 0:
                    self.sleep(min(wait, self.poll_interval))
            self._next_poll = self.clock() + self.poll_interval
            self._poll()
            if self._bi >= len(self._buf):
                return None
        i = self._bi
        self._bi += 1
        dt = self._buf_dt[i]
        if dt == self._last_dt:
            self._same += 1
        else:
            self._last_dt, self._same = dt, 1
        return self._buf[i]

    def resume_token(self) -> dict:
        """``offset``: the next record's byte offset; ``prev_dt``: the DateTime of the record before it (checked
        on resume: a file rewritten since is reopened); ``last_dt``/``same``: the last record yielded and how
        many of its DateTime were yielded (the duplicate check); ``skip``: a skip under way; ``skip_check``: its
        record counts (optional on resume: a token without it resumes, with no count check for that skip)."""
        if self._bi < len(self._buf):
            offset = self._buf_offset + REC * self._bi
            prev = self._buf_dt[self._bi - 1] if self._bi else self._before_buf_dt
            skip = check = None
        else:
            offset = self._tail.offset
            prev = self._last_read_dt if offset and offset > SCID_HEADER_SIZE else None
            skip = self._skip
            check = dict(self._skip_check) if self._skip is not None and self._skip_check else None
        return {"path": str(self.path), "inode": self._ino, "offset": offset, "prev_dt": prev,
                "last_dt": self._last_dt, "same": self._same, "skip": skip, "skip_check": check}

    def roll_to(self, path: str | Path) -> None:
        """Switch to another contract's file (once the records already read are yielded); its records at or
        before the last one yielded are skipped."""
        new = Path(path)
        if not new.exists():
            raise FeedError(f"{new}: cannot roll to it: no such file")
        if self._bi < len(self._buf):
            self._pending_roll = new
        else:
            self._do_roll(new)

    def _do_roll(self, new: Path) -> None:
        self._pending_roll = None
        self.events.append(("roll", f"{self.path.name} -> {new.name} (its records up to the last one yielded skipped)"))
        self._buf, self._buf_dt, self._bi = [], [], 0
        self._start(new, offset=None)
        self._skip_check = None  # another contract's history: nothing to compare
        if self._last_dt is not None:
            self._same = _ALL  # every record of that DateTime counts as yielded: it was the old contract's
            self._skip = [self._last_dt, _ALL]

    # ---- internals ----------------------------------------------------------------------------------------

    def _start(self, path: Path, offset: int | None) -> None:
        if not path.exists():
            raise FeedError(f"{path}: no such .scid file")
        self.path = path
        self.symbol = symbol_from_path(path) or self._symbol_override or ""
        try:
            self._tail = ScidTail(path, offset)
        except ValueError as exc:
            raise FeedError(f"{path}: bad resume offset: {exc}") from None
        self._ino = os.stat(path).st_ino

    def _resume(self, path: Path, token: object) -> None:
        keys = ("path", "inode", "offset", "prev_dt", "last_dt", "same", "skip")
        if not isinstance(token, dict) or any(k not in token for k in keys):
            raise FeedError(f"{path}: bad resume token {token!r} (expected the keys {', '.join(keys)})")
        path = Path(token["path"])  # a roll may have moved the feed to another file before the restart
        offset, self._last_dt, self._same = token["offset"], token["last_dt"], int(token["same"])
        self._last_read_dt = token["prev_dt"] if token["prev_dt"] is not None else self._last_dt
        self._skip = list(token["skip"]) if token["skip"] else None
        check = token.get("skip_check")
        self._skip_check = dict(check) if self._skip and isinstance(check, dict) else None
        if not path.exists():
            raise FeedError(f"{path}: no such .scid file (the resume token names it)")
        why = self._changed(path, token["inode"], offset, token["prev_dt"])
        if why is None:
            self._start(path, offset=offset if offset and offset > SCID_HEADER_SIZE else None)
            self.events.append(("resumed", f"{path.name} at byte {offset}"))
        else:
            self._reopen(path, why, self._had_records(offset))

    def _had_records(self, offset: int | None) -> int | None:
        """Records of the file being read up to the skip point a reopen now would set, the read position being
        ``offset`` with every record before it yielded or skipped (None: not known)."""
        if self._skip is not None:  # a skip under way: its own file's count
            return self._skip_check["expected"] if self._skip_check else None
        return (offset - SCID_HEADER_SIZE) // REC if offset and offset > SCID_HEADER_SIZE else 0

    def _changed(self, path: Path, inode: int | None, offset: int | None, prev_dt: int | None) -> str | None:
        """Why the file at ``path`` is not the one read up to ``offset`` (the record before it of DateTime
        ``prev_dt``) any more, or None."""
        try:
            st = os.stat(path)
        except FileNotFoundError:
            return "missing"
        if inode is not None and st.st_ino != inode:
            return "replaced"
        if offset is not None and st.st_size < offset:
            return "truncated"
        if offset is not None and offset > SCID_HEADER_SIZE and prev_dt is not None:
            with open(path, "rb") as fh:
                fh.seek(offset - REC)
                raw = fh.read(REC)
            if len(raw) < REC:
                return "truncated"
            if int(np.frombuffer(raw, dtype=SCID_RECORD_DTYPE)[0]["datetime"]) != prev_dt:
                return "rewritten"
        return None

    def _reopen(self, path: Path, why: str, had: int | None) -> None:
        """Read ``path`` again from its start, skipping what was yielded (``had`` records of the old file lie up
        to that point: checked once the skip is done); wait for it if it is gone."""
        self._buf, self._buf_dt, self._bi = [], [], 0
        self.path = path
        if not path.exists():
            if self._reopen_why is None:
                self._reopen_had = had
            self._reopen_why = self._reopen_why or why
            if not self.events or self.events[-1][0] != "missing":
                self.events.append(("missing", f"{path.name} is gone (being replaced?); waiting for it"))
            return
        self._reopen_why = None
        self._start(path, offset=None)
        if self._last_dt is not None:
            self._skip = [self._last_dt, self._same]
            self._skip_check = None if had is None else {"expected": int(had), "dropped": 0, "first_dt": None,
                                                         "last_dt": None}
        self.events.append((why, f"{path.name}: reopened from the start; records up to the last one yielded skipped"))

    def _poll(self) -> None:
        if self._reopen_why is not None:
            self._reopen(self.path, self._reopen_why, self._reopen_had)
            if self._reopen_why is not None:
                return
        offset = self._tail.offset
        why = self._changed(self.path, self._ino, offset, self._last_read_dt if offset and offset > SCID_HEADER_SIZE else None)
        if why is not None:
            self._reopen(self.path, why, self._had_records(offset))
            if self._reopen_why is not None:
                return
        start = self._tail.offset or SCID_HEADER_SIZE
        had = self._had_records(start)
        prev = self._last_read_dt if start > SCID_HEADER_SIZE else None
        try:
            rec = self._tail.read_new(max_records=self.chunk, ordered=False)
        except FileNotFoundError:
            self._reopen(self.path, "replaced", had)
            return
        except DataError as exc:
            if "shrank" in str(exc):
                self._reopen(self.path, "truncated", had)
                return
            raise FeedError(str(exc)) from None
        try:
            same_file = os.stat(self.path).st_ino == self._ino
        except FileNotFoundError:
            same_file = False
        if not same_file:  # replaced while it was read: what was read may come from either file
            self._reopen(self.path, "replaced", had)
            return
        self._full_chunk = rec.size == self.chunk
        if rec.size == 0:
            self._maybe_roll()
            return
        self.last_record_wall = self.clock()
        self._note_out_of_order(rec, start, prev)
        self._last_read_dt = int(rec["datetime"][-1])
        if self._skip is not None:
            rec, start, prev = self._apply_skip(rec, start, prev)
        self._buf, self._buf_dt = self._ticks(rec, start), rec["datetime"].tolist()
        self._bi = 0
        self._buf_offset = start
        self._before_buf_dt = prev

    def _note_out_of_order(self, rec: np.ndarray, start: int, prev: int | None) -> None:
        """An ``out_of_order`` event for records earlier than the one before them (the source's clock stepped
        back): they are yielded as they are, in file order, for the collector to record and flag."""
        dts = rec["datetime"]
        back = np.flatnonzero(np.diff(np.concatenate(([prev if prev is not None else dts[0]], dts))) < 0)
        if back.size:
            i = int(back[0])
            before = int(dts[i - 1]) if i else int(prev)
            self.events.append(("out_of_order", f"{self.path.name}: {back.size} record(s) earlier than the one "
                                f"before, first at byte {start + i * REC} ({(before - int(dts[i])) / 1e6:.3f} s "
                                "back): the source's clock stepped back? Yielded as they are"))

    def _apply_skip(self, rec: np.ndarray, start: int, prev: int | None) -> tuple[np.ndarray, int, int | None]:
        dt_skip, left = self._skip
        dts = rec["datetime"]
        k = int(np.searchsorted(dts, dt_skip, side="left"))
        same = int(np.searchsorted(dts, dt_skip, side="right")) - k
        drop = k + min(same, left)
        c = self._skip_check
        if c is not None and drop:
            c["dropped"] += drop
            c["first_dt"] = int(dts[0]) if c["first_dt"] is None else c["first_dt"]
            c["last_dt"] = int(dts[drop - 1])
        if drop < rec.size or (same and same >= left):  # a record after the skip point, or the last one of it
            self._skip = None
            self._compare_skipped()
        else:
            self._skip = [dt_skip, left - same]
        return rec[drop:], start + drop * REC, int(dts[drop - 1]) if drop else prev

    def _compare_skipped(self) -> None:
        """A ``backfill`` or ``history_changed`` event when the reopened file held more or fewer records up to
        the skip point than the file read before it."""
        c, self._skip_check = self._skip_check, None
        if c is None or c["dropped"] == c["expected"]:
            return
        had, now = int(c["expected"]), int(c["dropped"])
        span = f"from {_dt_text(c['first_dt'])} to {_dt_text(c['last_dt'])}" if now else "none"
        head = (f"{self.path.name}: the reopened file holds {now:,} records up to the last one yielded ({span}); "
                f"the file read before held {had:,}: ")
        if now > had:
            self.events.append(("backfill", head + f"{now - had:,} more (backfilled), not yielded: older than what was "
                                "already yielded; to collect them: navale collect --feed replay:"
                                f"{self.path} --dir OTHER_DIR --no-trade"))
        else:
            self.events.append(("history_changed", head + f"{had - now:,} fewer (history removed or rewritten); "
                                "what was yielded stands"))

    def _ticks(self, rec: np.ndarray, start: int) -> list[Tick]:
        trades = records_are_trades(rec)
        if not trades.all():
            i = int(np.flatnonzero(~trades)[0])
            raise FeedError(f"{self.path}: record at byte {start + i * REC} is a bar, not a single trade: set the "
                            "chart's Intraday Data Storage Time Unit to 1 Tick")
        ask = rec["ask_volume"].astype(np.int64)
        bid = rec["bid_volume"].astype(np.int64)
        both = (ask > 0) & (bid > 0)
        price = rec["close"].astype(np.float64)
        bad = ~(price > 0)
        if both.any() or bad.any():
            i = int(np.flatnonzero(both | bad)[0])
            what = "has both bid and ask volume" if both[i] else f"has the price {price[i]}"
            raise FeedError(f"{self.path}: single-trade record at byte {start + i * REC} {what}")
        side = np.where(ask > 0, 1, np.where(bid > 0, -1, 0)).tolist()
        ntr = np.maximum(rec["num_trades"].astype(np.int64), 1).tolist()
        # single-trade records: High = ask, Low = bid (a writer that has no quotes leaves them <= 0 or at the price)
        ask_px = rec["high"].astype(np.float64)
        bid_px = rec["low"].astype(np.float64)
        ask_px = [a if a > 0 else NAN for a in ask_px.tolist()]  # one NaN object: equal Ticks compare equal
        bid_px = [b if b > 0 else NAN for b in bid_px.tolist()]
        sym = self.symbol
        return [Tick(t, p, s, d, sym, n, b, a) for t, p, s, d, n, b, a in
                zip(scid_time_to_ns(rec["datetime"]).tolist(), price.tolist(), rec["total_volume"].astype(np.int64).tolist(),
                    side, ntr, bid_px, ask_px)]

    def _maybe_roll(self) -> None:
        if not self.auto_roll or self._last_read_dt is None:
            return
        now = self.clock()
        if now < self._next_roll_check:
            return
        self._next_roll_check = now + self.roll_check
        nxt = next_contract_path(self.path)
        if nxt is None or not nxt.exists():
            return
        last = _last_record_time(nxt)
        if last is not None and last > self._last_read_dt:
            self.roll_to(nxt)


def _dt_text(dt: int | None) -> str:
    """A Sierra DateTime (µs) as UTC ISO text."""
    if dt is None:
        return "?"
    ns = int(scid_time_to_ns(np.array([dt], dtype=np.int64))[0])
    return datetime.fromtimestamp(ns // 1000 / 1e6, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f UTC")


def _last_record_time(path: Path) -> int | None:
    """DateTime of a ``.scid`` file's last whole record, or None (no record yet, unreadable)."""
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            n = (size - SCID_HEADER_SIZE) // REC
            if n <= 0 or fh.read(4) != b"SCID":
                return None
            fh.seek(SCID_HEADER_SIZE + (n - 1) * REC)
            raw = fh.read(REC)
    except OSError:
        return None
    return int(np.frombuffer(raw, dtype=SCID_RECORD_DTYPE)[0]["datetime"]) if len(raw) == REC else None
