"""Stands in for Sierra Chart recording a live ES feed into ``.scid`` files, for the collector soak (test tooling).

`SierraScidWriter` appends single-trade records (Open 0, High = ask, Low = bid, Close = price, AskVolume for a buy
aggressor, BidVolume for a sell; `research.data.scid.ticks_to_scid_records`) in time order, paced at ``speed`` times
real time: a trade becomes due when the simulated clock reaches its time, and due trades sit in the writer's buffer
until the next flush, every ``flush_seconds`` of simulated time (Sierra writes its intraday file about every 5 s), as
one ``write`` call. At ``roll_at_ns`` it starts the next contract's file, named as Sierra names it
(``ESM24-CME.scid`` -> ``ESU24-CME.scid``, `live.feeds.scid.next_contract_path`); the old file gets nothing more.

Faults, injected by the soak driver while it runs:

- :meth:`stall`: nothing is written for a span of simulated time and the trades of that span never reach the file
  (the data connection is down; Sierra has nothing to write), so the source has a hole the collector must report;
- :meth:`tear`: the next flush ends inside a record (its first bytes only); the following flush completes it, as
  a reader sees a file Sierra is writing;
- :meth:`replace`: the current file is written again (everything so far) to a temp file renamed over it, a new
  inode, as a Sierra re-download does;
- :meth:`jump`: the DateTime of every later record is shifted by a number of seconds: forward (a clock step, a
  hole in time with no trade missing) or backward (records out of order).

``records()`` / ``source_ticks()`` are what reached the files, in order: the truth the collected ticks must equal.
The file writing is by hand (plain ``os.write``) because it must produce the states a real writer produces (partial
records, unflushed buffers, out-of-order times) that `research.data.scid.write_scid` rightly refuses.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from live.feeds.scid import next_contract_path
from research.data.scid import (
    SCID_HEADER_SIZE,
    SCID_RECORD_DTYPE,
    scid_time_to_ns,
    ticks_to_scid_records,
    write_scid,
)
from research.data.synthetic import SYNTHETIC_MARK

__all__ = ["SierraScidWriter", "WrittenFile", "contract_of"]

REC = SCID_RECORD_DTYPE.itemsize
NS = 1_000_000_000


def contract_of(path: Path) -> str:
    """The contract code of a Sierra file name (``ESM24-CME.scid`` -> ``ESM24``)."""
    return Path(path).name.split("-")[0].split(".")[0]


@dataclass
class WrittenFile:
    """One ``.scid`` file the writer produced and the records it holds whole (in file order)."""

    path: Path
    contract: str
    chunks: list[np.ndarray]

    def records(self) -> np.ndarray:
        return np.concatenate(self.chunks) if self.chunks else np.zeros(0, SCID_RECORD_DTYPE)


class SierraScidWriter:
    """Writes ``trades`` (a tick frame with ``price, size, side, bid, ask``, e.g. from
    ``research.data.synthetic.generate_trades``) into ``folder/<CONTRACT><suffix>.scid`` as Sierra Chart would.

    ``clock`` is the wall clock (monotonic seconds); the simulated time is ``start_ns + (clock() - t0) * speed``
    from :meth:`open`, ``start_ns`` defaulting to the first trade's time.
    """

    def __init__(self, folder: str | Path, trades: pd.DataFrame, *, contract: str = "ESM24", suffix: str = "-CME",
                 speed: float = 500.0, flush_seconds: float = 5.0, roll_at_ns: int | None = None,
                 start_ns: int | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        if not speed > 0:
            raise ValueError(f"speed must be > 0, got {speed!r}")
        self.folder = Path(folder)
        self.speed, self.clock = float(speed), clock
        self.flush_ns = int(flush_seconds * NS)
        ts = trades.index.as_unit("ns").asi8
        self._due_ns = ts  # when each trade becomes due (its original time; clock jumps do not move it)
        self._rec = ticks_to_scid_records(ts, trades["price"].to_numpy(), trades["size"].to_numpy(),
                                          trades["side"].to_numpy(), trades["bid"].to_numpy(), trades["ask"].to_numpy())
        self.start_ns = int(ts[0]) if start_ns is None else int(start_ns)
        self.end_ns = int(ts[-1]) if len(ts) else self.start_ns
        self.roll_at_ns = roll_at_ns
        self.path = self.folder / f"{contract}{suffix}.scid"
        self.files: list[WrittenFile] = []
        self._i = 0  # next trade not yet consumed (written or dropped)
        self._next_flush = self.start_ns
        self._shift_us = 0  # clock jumps so far (added to DateTime)
        self._stall_until = -1
        self._tear_next = False
        self._torn_rest = b""  # the bytes of a torn record still to write
        self._torn_rec: np.ndarray | None = None
        self._fd: int | None = None
        self._rolled = False
        self._t0: float | None = None
        self.dropped = 0
        self.flushes = 0
        self.log: list[tuple[str, int, str]] = []  # (fault, sim ns, detail)

    # ---- running ------------------------------------------------------------------------------------------

    def open(self, *, start: bool = True) -> Path:
        """Create the first contract's file (the header only) and, unless ``start=False``, start the simulated
        clock (:meth:`start`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self._new_file(self.path)
        if start:
            self.start()
        return self.path

    def start(self) -> None:
        """Start the simulated clock at ``start_ns`` now."""
        self._t0 = self.clock()

    def sim_ns(self) -> int:
        """The simulated time now (``start_ns`` until the clock starts)."""
        if self._t0 is None:
            return self.start_ns
        return self.start_ns + int((self.clock() - self._t0) * self.speed * NS)

    @property
    def shift_ns(self) -> int:
        """The clock jumps so far: a trade due at simulated time t is written with DateTime t + shift_ns."""
        return self._shift_us * 1000

    @property
    def done(self) -> bool:
        return self._i >= len(self._due_ns) and not self._torn_rest

    @property
    def written(self) -> int:
        return sum(sum(len(c) for c in f.chunks) for f in self.files)

    def step(self) -> int:
        """Flush when the simulated clock has passed the next flush time; returns the records written."""
        now = self.sim_ns()
        if now < self._next_flush:
            return 0
        self._next_flush = now - (now - self.start_ns) % self.flush_ns + self.flush_ns
        return self.flush(now)

    def finish(self) -> int:
        """Write every remaining trade (the writer's buffer emptied) and close the file."""
        n = self.flush(max(self.end_ns, self.sim_ns()) + 1, tear_ok=False)
        self.close()
        return n

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def flush(self, upto_ns: int, *, tear_ok: bool = True) -> int:
        """Write the due trades (original time <= ``upto_ns``) in one ``write`` (two around a roll)."""
        if self.roll_at_ns is not None and upto_ns >= self.roll_at_ns and not self._rolled:
            n = self._flush_to(self.roll_at_ns - 1, tear_ok=False)
            self._roll()
            return n + self._flush_to(upto_ns, tear_ok=tear_ok)
        return self._flush_to(upto_ns, tear_ok=tear_ok)

    def _flush_to(self, upto_ns: int, *, tear_ok: bool) -> int:
        j = int(np.searchsorted(self._due_ns, upto_ns, side="right"))
        if self._stall_until >= 0:  # trades of the stalled span never reach the file
            k = max(self._i, min(j, int(np.searchsorted(self._due_ns, self._stall_until, side="left"))))
            self.dropped += k - self._i
            self._i = k
            if upto_ns < self._stall_until:
                return 0
            self._stall_until = -1
        rec = self._rec[self._i:j].copy()
        self._i = j
        rec["datetime"] += self._shift_us
        out = self._torn_rest + rec.tobytes()
        whole = [self._torn_rec] if self._torn_rec is not None else []
        self._torn_rest, self._torn_rec = b"", None
        whole.append(rec)
        if tear_ok and self._tear_next and self._i < len(self._due_ns):
            self._tear_next = False
            nxt = self._rec[self._i:self._i + 1].copy()
            self._i += 1
            nxt["datetime"] += self._shift_us
            raw = nxt.tobytes()
            cut = 1 + (self._i * 7919) % (REC - 1)  # somewhere inside the record, never 0 or all of it
            out += raw[:cut]
            self._torn_rest, self._torn_rec = raw[cut:], nxt
        if out:
            os.write(self._fd, out)
            self.flushes += 1
        for r in whole:
            if len(r):
                self.files[-1].chunks.append(r)
        return sum(len(r) for r in whole)

    def _new_file(self, path: Path) -> None:
        write_scid(path, np.zeros(0, SCID_RECORD_DTYPE), header_reserved=SYNTHETIC_MARK)
        self.close()
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND)
        self.files.append(WrittenFile(path, contract_of(path), []))

    def _roll(self) -> None:
        nxt = next_contract_path(self.path)
        assert nxt is not None, f"{self.path.name}: not a contract file name"
        self._rolled = True
        self.log.append(("roll", self.roll_at_ns, f"{self.path.name} -> {nxt.name}"))
        self.path = nxt
        self._new_file(nxt)

    # ---- faults -------------------------------------------------------------------------------------------

    def stall(self, seconds: float) -> tuple[int, int]:
        """Write nothing for ``seconds`` of simulated time from now; the trades of that span are lost at the
        source. Returns the span (ns)."""
        start = self.sim_ns()
        self.flush(start)
        self._stall_until = start + int(seconds * NS)
        self.log.append(("stall", start, f"{seconds:.0f} s"))
        return start, self._stall_until

    def tear(self) -> None:
        """The next flush stops inside a record; the flush after it completes the record."""
        self._tear_next = True
        self.log.append(("tear", self.sim_ns(), ""))

    def replace(self) -> Path:
        """Write the current file again (its whole records so far, plus a torn record completed) to a temp file
        and rename it over the file: a new inode with the same content."""
        f = self.files[-1]
        with open(f.path, "rb") as fh:
            head = fh.read(SCID_HEADER_SIZE)
        body = f.records().tobytes()
        if self._torn_rec is not None:  # a re-download holds whole records only
            body += self._torn_rec.tobytes()
            f.chunks.append(self._torn_rec)
            self._torn_rest, self._torn_rec = b"", None
        tmp = f.path.with_name(f.path.name + ".download")
        with open(tmp, "wb") as fh:
            fh.write(head + body)
        os.replace(tmp, f.path)
        self.close()
        self._fd = os.open(f.path, os.O_WRONLY | os.O_APPEND)
        self.log.append(("replace", self.sim_ns(), f.path.name))
        return f.path

    def jump(self, seconds: float) -> None:
        """Shift the DateTime of every later record by ``seconds`` (negative: back in time)."""
        self.flush(self.sim_ns())
        self._shift_us += int(seconds * 1_000_000)
        self.log.append(("jump", self.sim_ns(), f"{seconds:+.0f} s"))

    # ---- the truth ----------------------------------------------------------------------------------------

    def records(self) -> np.ndarray:
        """Every record written whole, in order (all files)."""
        parts = [f.records() for f in self.files]
        return np.concatenate(parts) if parts else np.zeros(0, SCID_RECORD_DTYPE)

    def source_ticks(self) -> pd.DataFrame:
        """What reached the files as a flat frame: ts_ns, price, size, side, bid, ask, contract (file order)."""
        rows = []
        for f in self.files:
            r = f.records()
            ask_v, bid_v = r["ask_volume"].astype(np.int64), r["bid_volume"].astype(np.int64)
            rows.append(pd.DataFrame({
                "ts_ns": scid_time_to_ns(r["datetime"]), "price": r["close"].astype(np.float64),
                "size": r["total_volume"].astype(np.int64),
                "side": np.where(ask_v > 0, 1, np.where(bid_v > 0, -1, 0)).astype(np.int8),
                "bid": r["low"].astype(np.float64), "ask": r["high"].astype(np.float64), "contract": f.contract}))
        return pd.concat(rows, ignore_index=True) if rows else pd.DataFrame()

    def on_disk(self) -> np.ndarray:
        """The records the files hold now (whole ones; read back raw, without the order check)."""
        parts = []
        for f in self.files:
            raw = f.path.read_bytes()[SCID_HEADER_SIZE:]
            parts.append(np.frombuffer(raw[: len(raw) // REC * REC], SCID_RECORD_DTYPE))
        return np.concatenate(parts) if parts else np.zeros(0, SCID_RECORD_DTYPE)
