"""A deliberately small stand-in for ``navale collect --feed scid:PATH`` (ticks only), to prove the soak driver
itself (tests/collect_soak.py) independently of the real collector: when the driver reports a loss against the real
one, this shows whether the harness or the collector is at fault. Not product code.

    python tests/stand_in_collector.py --feed scid:PATH --dir ROOT [other collector flags, ignored]

Per flush (every 0.1 s) one ``os.write`` of the buffered TICK/GAP/EVENT frames and a CHECKPOINT (seq, the feed's
resume token); on start, bytes after the last whole CHECKPOINT of the newest segment are cut (kept in
``.seg.torn-N``); ENOSPC keeps the buffer and retries; SIGTERM flushes and exits 0.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from live.collect import layout  # noqa: E402
from live.feeds.scid import ScidFeed  # noqa: E402
from live.journal import Journal, JournalError, trading_date  # noqa: E402
from research.data import segments as sg  # noqa: E402

GAP_NS = 5 * 60 * 1_000_000_000


class StandIn:
    def __init__(self, scid: Path, root: Path) -> None:
        self.root = root
        self.dir = layout.segment_dir(root, "ES")
        self.dir.mkdir(parents=True, exist_ok=True)
        self.journal = Journal(layout.journal_path(root))
        self.later: list[tuple[str, str, int]] = []
        self.buf = bytearray()
        self.seq, self.token, self.last_ts = 0, None, None
        self.fd, self.date, self.full, self.contract = None, None, False, None
        segs = sorted(self.dir.glob("*.seg"))
        if segs:
            self.recover(segs[-1])
        self.feed = ScidFeed(scid, resume=self.token, poll_interval=0.05)
        self.stop = False
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "stop", True))

    def event(self, kind: str, detail: str, ts: int) -> None:
        self.later.append((kind, detail, ts))
        try:
            while self.later:
                self.journal.record_risk_event(*self.later[0])
                self.later.pop(0)
        except (sqlite3.Error, JournalError):
            pass  # disk full: journaled when space is back

    def recover(self, seg: Path) -> None:
        buf = seg.read_bytes()
        sc = sg.scan(seg, buf)
        end, ck = len(sg.MAGIC), None
        for off, kind, payload in sg.iter_frames(buf):
            if kind == sg.CHECKPOINT:
                ck, end = json.loads(bytes(payload)), off + sg.FRAME.size + len(payload)
            elif kind == sg.HEADER:
                end = off + sg.FRAME.size + len(payload)
            elif kind == sg.TICK:
                self.last_ts = sg.TICK_STRUCT.unpack(payload)[0]
        self.contract = None  # a CONTRACT frame opens what follows the restart
        if ck is None:  # the newest segment has no checkpoint yet: the one before has it
            prev = sorted(p for p in self.dir.glob("*.seg") if p < seg)
            if prev:
                for _, kind, payload in sg.iter_frames(prev[-1].read_bytes()):
                    if kind == sg.CHECKPOINT:
                        ck = json.loads(bytes(payload))
        if end < len(buf):
            n = len(list(self.dir.glob(seg.name + ".torn-*"))) + 1
            Path(f"{seg}.torn-{n}").write_bytes(buf[end:])
            os.truncate(seg, end)
            if sc.problem is not None:
                self.event("torn_tail", f"{seg.name}: {len(buf) - end} bytes cut at byte {end} ({sc.problem})", 0)
        if ck is not None:
            self.seq, self.token = ck["seq"], ck["token"]
        self.event("restart", f"resumed at seq {self.seq}", 0)
        self.date = seg.name[:10]
        self.fd = os.open(seg, os.O_WRONLY | os.O_APPEND)

    def open_date(self, date: str, ts: int) -> None:
        self.flush()
        if self.fd is not None:
            os.close(self.fd)
        p = layout.segment_path(self.root, "ES", date)
        self.fd = os.open(p, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.date, self.contract = date, None  # a segment names its contract again
        self.buf += sg.header_frame("ES", date, "stand-in", ts, None)

    def flush(self) -> None:
        if self.fd is None or not self.buf:
            return
        out = bytes(self.buf) + sg.json_frame(sg.CHECKPOINT, {"seq": self.seq, "token": self.token,
                                                                "ts_ns": self.last_ts or 0, "wall_ns": time.time_ns()})
        size = os.fstat(self.fd).st_size
        try:
            os.write(self.fd, out)
            os.fsync(self.fd)
        except OSError as exc:
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            os.truncate(self.fd, size)
            if not self.full:
                self.full = True
                self.event("disk_full", str(exc), self.last_ts or 0)
            return
        self.buf.clear()
        if self.later:
            self.event(*self.later.pop())
        if self.full:
            self.full = False
            self.event("disk_ok", "space is back", self.last_ts or 0)

    def run(self) -> None:
        next_flush = time.monotonic() + 0.1
        while not self.stop:
            tk = None if self.full and len(self.buf) > 1 << 22 else self.feed.next_record()
            for kind, detail in self.feed.events:
                self.event(kind, detail, self.last_ts or 0)
                self.buf += sg.json_frame(sg.EVENT, {"ts_ns": self.last_ts or 0, "kind": kind, "level": "info",
                                                     "detail": detail})
            self.feed.events.clear()
            if tk is not None:
                date = trading_date(tk.ts_ns)
                if date != self.date:
                    self.open_date(date, tk.ts_ns)
                if self.last_ts is not None and tk.ts_ns - self.last_ts > GAP_NS:
                    gap = {"start_ns": self.last_ts, "end_ns": tk.ts_ns, "reason": "no record"}
                    self.buf += sg.json_frame(sg.GAP, gap)
                    self.event("gap", json.dumps(gap), tk.ts_ns)
                if tk.contract != self.contract:
                    self.contract = tk.contract
                    self.buf += sg.json_frame(sg.CONTRACT, {"contract": tk.contract})
                self.seq += 1
                self.buf += sg.tick_frame(tk.ts_ns, tk.price, tk.size, tk.side, tk.num_trades, tk.bid, tk.ask,
                                          self.seq)
                self.token, self.last_ts = self.feed.resume_token(), tk.ts_ns
            if time.monotonic() >= next_flush:
                self.flush()
                next_flush = time.monotonic() + (0.5 if self.full else 0.1)
        while self.buf:
            self.flush()
            if self.buf:
                time.sleep(0.2)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--feed", required=True)
    ap.add_argument("--dir", required=True)
    args, _ = ap.parse_known_args()
    StandIn(Path(args.feed.split(":", 1)[1]), Path(args.dir)).run()


if __name__ == "__main__":
    main()
