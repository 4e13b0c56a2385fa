"""``navale collect``: one process that records every symbol's feed into ROOT and, in data_collection mode, paper
trades the first symbol on the same records (the trade snapshots go to the run store as paper runs do).

The trader reads the records through :class:`CollectingFeed`, whose resume token is the collector's record
number (``seq``) and feed token: the trader's restart point (its last bar close) and the segments' checkpoints
agree, and the collector flushes + fsyncs before the trader persists its state, so the trader is never ahead of
the segments. On a restart the records the segments already hold past the trader's point are fed to the trader
only (from the segments), then the feed goes on.
"""

from __future__ import annotations

import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from live.collect import layout
from live.collect.collector import Collector, CollectorError
from live.events import Tick
from live.feeds.base import Feed
from research.data import segments as S

__all__ = ["run_collect", "CollectingFeed", "CollectResult", "open_collectors", "segment_ticks", "HEARTBEAT_S"]

HEARTBEAT_S = 2.0
SYNTHETIC_SPEED = 3600.0  # an hour of synthetic market time a second


@dataclass
class CollectResult:
    """What a collect run did."""

    reason: str  # "hours" | "replay_end" | "terminated" | "interrupted" | "halted"
    symbols: list[dict[str, Any]] = field(default_factory=list)  # Collector.status() per symbol
    trades: int = 0
    wall_s: float = 0.0
    trader: str | None = None  # why trading is off, or the run id
    segments: int = 0


def segment_ticks(root: Path, symbol: str, after_seq: int, upto_seq: int) -> list[Tick]:
    """The trades of ``symbol``'s segments with ``after_seq < seq <= upto_seq``, in order (with contracts)."""
    d = layout.segment_dir(root, symbol)
    segs = sorted(p for p in d.glob("*.seg") if S.parse_segment_name(p))
    chunks: list[list[Tick]] = []
    for seg in reversed(segs):
        data = S.read_segment(seg, allow_torn=True)
        t = data.ticks
        keep = (t["seq"] > after_seq) & (t["seq"] <= upto_seq)
        idx = keep.nonzero()[0].tolist()
        chunks.append([Tick(int(t["ts_ns"][i]), float(t["price"][i]), int(t["size"][i]), int(t["side"][i]),
                            data.tick_contracts[i], int(t["num_trades"][i]), float(t["bid"][i]), float(t["ask"][i]))
                       for i in idx])
        if len(t) and int(t["seq"][0]) <= after_seq + 1:
            break
    return [x for c in reversed(chunks) for x in c]


class CollectingFeed(Feed):
    """The trader's feed inside ``navale collect``: every record comes from the collectors (which write it
    first); token ``{"seq": n, "feed": token}``. ``main`` is the traded collector; the others are stepped in
    turn so every symbol is recorded while the trader runs."""

    def __init__(self, collectors: Sequence[Collector], main: int = 0, resume: Any = None,
                 on_tick: Any = None) -> None:
        self.collectors = list(collectors)
        self.main = self.collectors[main]
        self.symbol = self.main.feed.symbol if self.main.feed is not None else ""
        self.yields_bars = False
        self.live = bool(getattr(self.main.feed, "live", False))
        self.order_flow = True
        self.events = self.main.feed.events if hasattr(self.main.feed, "events") else []
        self.stop_requested = False
        self.trader: Any = None  # the trader reading this feed: stopped when the collection is done
        self.on_tick = on_tick
        self._seq = self.main.writer.seq
        self._backlog: list[Tick] = []
        self._skip_to = 0
        if resume is not None:
            if not isinstance(resume, dict) or not isinstance(resume.get("seq"), int):
                raise CollectorError(f"the trader's saved feed position {resume!r} is not the collector's "
                                     "(expected {'seq': N, ...}): start the trader over (move ROOT/trader aside)")
            want = int(resume["seq"])
            if want < self._seq:
                self._backlog = segment_ticks(self.main.root, self.main.symbol, want, self._seq)
                self._seq = want
            elif want > self._seq:
                self._skip_to = want  # the segments lost records the trader saw: it waits for them
        self._bi = 0

    @property
    def last_record_wall(self) -> float:
        return getattr(self.main.feed, "last_record_wall", time.monotonic())

    def next_record(self) -> Tick | None:
        if self._bi < len(self._backlog):
            t = self._backlog[self._bi]
            self._bi += 1
            self._seq += 1
            if self._bi == len(self._backlog):
                self._backlog, self._bi = [], 0
            return t
        for c in self.collectors:
            if c is not self.main and c.done is None:
                c.step()
        while True:
            t = self.main.step()
            if self.on_tick is not None:
                self.on_tick()
            if t is None:
                if self.main.done == "hours" or self.stop_requested:
                    self.stop_requested = True
                    if self.trader is not None:
                        self.trader.request_stop()
                return None
            seq = self.main.writer.seq
            if seq <= self._skip_to:
                continue
            self._seq = seq
            return t

    def exhausted(self) -> bool:
        return self.main.done == "replay_end" and not self._backlog and all(c.done for c in self.collectors)

    def resume_token(self) -> dict:
        return {"seq": self._seq, "feed": self.main.writer.token}


def _feed_opener(feed_text: str, symbol_index: int, n_symbols: int, symbol: str | None, speed: float | None,
                 synthetic: dict[str, Any] | None = None, venue: dict[str, Any] | None = None,
                 state_dir: Path | None = None):
    """``(resume) -> Feed`` for one symbol: a synthetic feed gets its own seed and contract per symbol;
    ``synthetic``: `SyntheticSpec` fields (``days``, ``seed``) of the synthetic feed; ``venue``: the overrides of
    an ``ib`` / ``dtc`` feed's settings (``host``, ``port``, ``client_id``), ``state_dir`` its files."""
    from live.feeds import open_feed

    text = feed_text.strip()
    if text.lower() in ("ib", "dtc"):  # a venue's live stream: one connection, closed when the process exits
        import atexit

        from live.session import instrument_of
        from live.venues.settings import load_settings
        from live.venues.wiring import VenueSet

        settings = load_settings(text.lower(), **(venue or {}))
        venues = VenueSet(lambda v: settings, feed=text, broker="paper")
        atexit.register(venues.close)
        sym = symbol or settings.symbol
        make = venues.feed_factory(Path(state_dir or ".") / f"venue_{text.lower()}", sym, instrument_of(sym).tick_size)

        def opener(resume: Any) -> Feed:
            return make(text, resume)
        return opener
    if text.lower() == "synthetic":
        from live.feeds.synthetic import SyntheticFeed
        from research.data.synthetic import SyntheticSpec

        base = SyntheticSpec(**(synthetic or {}))
        spec = base
        if symbol and symbol != "ES" or symbol_index:
            root = symbol or "ES"
            spec = SyntheticSpec(**{**(synthetic or {}), "seed": base.seed + symbol_index,
                                    "symbol": root + base.symbol[-3:]})

        def opener(resume: Any) -> Feed:
            return SyntheticFeed(spec, speed=speed, resume=resume)
        return opener
    kw: dict[str, Any] = {}
    if not text.lower().startswith("scid:"):
        kw["speed"] = speed

    def opener(resume: Any) -> Feed:
        return open_feed(text, resume=resume, **kw)
    return opener


def _synthetic_fields(args: Any) -> dict[str, Any]:
    """The synthetic feed's spec fields given on the command line (``--synthetic-days``, ``--synthetic-seed``)."""
    out: dict[str, Any] = {}
    if getattr(args, "synthetic_days", None) is not None:
        out["days"] = int(args.synthetic_days)
    if getattr(args, "synthetic_seed", None) is not None:
        out["seed"] = int(args.synthetic_seed)
    return out


def _product(code: str) -> str:
    from strategy.market.instruments import root_of

    try:
        return root_of(code) if code else "ES"
    except (KeyError, ValueError):
        return code or "ES"


def open_collectors(root: Path, feed_text: str, symbols: Sequence[str] | None, *, journal: Any, hours: float | None,
                    speed: float | None, bar: str = "5min", writer_kw: dict[str, Any] | None = None,
                    synthetic: dict[str, Any] | None = None, venue: dict[str, Any] | None = None,
                    **kw: Any) -> list[Collector]:
    """One opened `Collector` per symbol (a tick feed each; a file feed serves one symbol)."""
    from live.feeds import FeedError

    syms = list(symbols or [None])
    if len(syms) > 1 and not feed_text.strip().lower() == "synthetic":
        raise CollectorError(f"feed {feed_text!r} serves one symbol: give one --symbols (or run one collector "
                             "per file, each with its own --dir)")
    out = []
    for i, sym in enumerate(syms):
        opener = _feed_opener(feed_text, i, len(syms), sym, speed, synthetic, venue, root)
        if sym is None and feed_text.strip().lower() in ("ib", "dtc"):
            from live.venues.settings import load_settings

            sym = load_settings(feed_text.strip().lower(), **(venue or {})).symbol
        if sym is None:
            probe = opener(None)
            sym = _product(probe.symbol)
            probe.close()
        from live.session import instrument_of

        c = Collector(root, feed_text, open_feed=opener, journal=journal, symbol=sym, hours=hours, bar=bar,
                      tick_size=instrument_of(sym).tick_size, writer_kw=writer_kw, **kw)
        try:
            c.open()
        except FeedError as exc:
            raise CollectorError(f"{sym}: {' '.join(str(exc).split())}") from None
        out.append(c)
    return out


class _Heartbeat:
    def __init__(self, journal: Any, collectors: list[Collector], info: dict[str, Any], line: bool) -> None:
        self.journal = journal
        self.collectors = collectors
        self.info = info
        self.line = line
        self._at = 0.0
        self._line_at = 0.0
        self.trader: Any = None

    def status(self) -> dict[str, Any]:
        import os

        tr = self.trader
        trading = None
        if tr is not None:
            trading = {"run_id": tr.run_id, "trades": tr._n_trades if hasattr(tr, "_n_trades") else None,
                       "mode": tr.params.mode, "state_dir": str(tr.cfg.state_dir)}
        return {"kind": "collector", **self.info, "symbols": [c.status() for c in self.collectors],
                "trading": trading, "pid": os.getpid(), "wall_ns": time.time_ns()}

    def __call__(self, force: bool = False) -> None:
        now = time.monotonic()
        if force or now - self._at >= HEARTBEAT_S:
            self._at = now
            st = self.status()
            last = max((c.writer.last_ts or 0 for c in self.collectors), default=0)
            self.journal.heartbeat(last, st)
        if self.line and now - self._line_at >= 0.25:
            self._line_at = now
            sys.stderr.write("\r" + status_line(self.collectors) + "   ")
            sys.stderr.flush()


def status_line(collectors: Sequence[Collector]) -> str:
    """One line: per symbol its records, bars, gaps, last record time, segment size and state."""
    from datetime import datetime, timezone

    parts = []
    for c in collectors:
        w = c.writer
        ts = "-" if w.last_ts is None else datetime.fromtimestamp(w.last_ts / 1e9, tz=timezone.utc).strftime(
            "%Y-%m-%d %H:%M:%S")
        st = "DISK FULL " if w.disk_full else ("stalled " if c._stalled else "")
        parts.append(f"{c.symbol} {st}{ts} UTC seq {w.seq:,} ticks {c.ticks:,} bars {c.bars:,} gaps {c.gaps} "
                     f"seg {w.segment_bytes() / 1e6:.1f} MB")
    return " | ".join(parts)


def run_collect(args: Any, out: Any = None) -> int:
    """The ``navale collect`` run (the CLI's command function calls it with its console ``out``, where errors and
    the status line go; see research/cli/collect_cmd.py)."""
    from rich.markup import escape

    from live import control
    from live.collect.held_journal import HeldJournal
    from live.config import ConfigError
    from live.control import ControlError
    from live.feeds import FeedError
    from live.journal import Journal, JournalError
    from research.data import DataError

    if out is None:
        from rich.console import Console

        out = Console(stderr=True, highlight=False, soft_wrap=True)

    def fail(msg: str, code: int = 2) -> int:
        out.print(f"[bold red]error:[/] {escape(' '.join(str(msg).split()))}", highlight=False)
        return code

    root = layout.collect_dir(getattr(args, "dir", None))
    if root.exists() and not root.is_dir():
        return fail(f"collection dir {root} exists and is not a folder")
    feed_text = str(args.feed).strip()
    kind = feed_text.split(":", 1)[0].lower()
    venue_feed = kind in ("ib", "dtc") and ":" not in feed_text
    if not venue_feed and (kind not in ("synthetic", "replay", "scid") or (kind == "synthetic" and ":" in feed_text)
                           or (kind != "synthetic" and not feed_text.partition(":")[2].strip())):
        return fail(f"unknown feed {feed_text!r}: use synthetic, replay:PATH, scid:PATH, ib or dtc")
    venue = {k: getattr(args, k, None) for k in ("host", "port", "client_id")} if venue_feed else None
    if venue_feed:
        from live.venues.settings import SettingsError, load_settings

        try:
            load_settings(kind, **venue)  # a bad setting before anything is created
        except SettingsError as exc:
            return fail(str(exc))
    if kind in ("replay", "scid") and not Path(feed_text.partition(":")[2].strip()).exists():
        return fail(f"{feed_text.partition(':')[2].strip()}: no such file (feed {feed_text})")
    hours = getattr(args, "hours", None)
    if hours is not None and not hours > 0:
        return fail(f"--hours {hours}: must be > 0")
    speed = getattr(args, "speed", None)
    if speed is None:
        speed = SYNTHETIC_SPEED if kind == "synthetic" else float("inf")
    speed = None if speed == float("inf") else speed
    symbols = [s.strip() for s in (getattr(args, "symbols", None) or "").split(",") if s.strip()] or None
    writer_kw = {"fsync": getattr(args, "fsync", "interval") or "interval",
                 "fsync_seconds": float(getattr(args, "fsync_seconds", 1.0) or 1.0)}
    try:
        from research.data.aggregate import parse_bar_spec

        parse_bar_spec(args.bar)
        root.mkdir(parents=True, exist_ok=True)
        # one collector per directory (flock + pid file); a HALT file is the trader's business (ROOT/trader)
        control.lock_dir(root, holder="collector", hint=f"kill -TERM PID: it flushes, fsyncs and exits; `navale stop "
                         f"--state-dir {layout.trader_dir(root)}` stops only its paper trading")
        control.write_pid(root)
    except (ControlError, ValueError, OSError) as exc:
        return fail(str(exc))
    journal = None
    watcher = alert_line = None
    t0 = time.perf_counter()
    stop = {"flag": None}
    trader = None

    def on_signal(signum, _frame):
        stop["flag"] = "terminated" if signum == signal.SIGTERM else "interrupted"
        if trader is not None:
            trader.request_stop()

    signal.signal(signal.SIGTERM, on_signal)  # from the start: a stop during start-up ends cleanly too
    signal.signal(signal.SIGINT, on_signal)
    try:
        journal = HeldJournal(Journal(layout.journal_path(root)))  # events held while the disk is full
        collectors = open_collectors(root, feed_text, symbols, journal=journal, hours=hours, speed=speed,
                                     bar=args.bar, writer_kw=writer_kw,
                                     summary_to_store=not getattr(args, "no_store", False),
                                     synthetic=_synthetic_fields(args), venue=venue)
        if not getattr(args, "no_alerts", True):  # the alert rules on their own thread (live.alerts.watcher)
            from live.alerts.watcher import start_watcher

            watcher, alert_line = start_watcher(layout.journal_path(root), getattr(args, "mode", None) or
                                                "data_collection", args.alerts_config, args.alerts_interval)
    except (CollectorError, FeedError, DataError, JournalError, S.SegmentError, ValueError, OSError) as exc:
        control.remove_pid(root)
        control.release(root)
        return fail(str(exc))
    line = not getattr(args, "json", False) and not getattr(args, "quiet", False) and sys.stderr.isatty()
    info = {"feed": feed_text, "dir": str(root), "fsync": writer_kw["fsync"], "fsync_seconds": writer_kw["fsync_seconds"],
            "mode": "record only" if args.no_trade else args.mode, "hours": hours, "speed": speed}
    hb = _Heartbeat(journal, collectors, info, line)
    trader_note = None
    if not args.no_trade:
        try:
            trader = _open_trader(args, root, collectors, hb, feed_text)
        except Exception as exc:  # trading is optional: the collection goes on and says why
            from live.trader import HaltedError

            trader_note = ' '.join(str(exc).split()) or type(exc).__name__
            level = "warning" if isinstance(exc, HaltedError) else "critical"
            journal.record_risk_event("trading_off", f"paper trading not started: {trader_note}", time.time_ns(),
                                      level=level)
            out.print(f"[yellow]paper trading off[/]: {escape(trader_note)} (recording only)", highlight=False)
            if isinstance(exc, (ConfigError,)) and getattr(args, "ml_model", None):
                _close_all(collectors)
                control.remove_pid(root)
                control.release(root)
                return fail(trader_note)
        hb.trader = trader

    if trader is not None:
        trader.install_signal_handler()
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    out.print(f"collecting {', '.join(c.symbol for c in collectors)} from {feed_text} into {root}"
              + (f", paper trading {trader.run_id} ({trader.params.mode})" if trader is not None else ", recording only")
              + (f", {hours:g} h of market time" if hours else "") + f", fsync {writer_kw['fsync']}", highlight=False)
    if alert_line:
        out.print(alert_line, highlight=False)
    reason = "stopped"
    n_trades = 0
    if stop["flag"] and trader is not None:  # stopped while starting
        trader.request_stop()
    try:
        if trader is not None:
            res = trader.run()
            n_trades = len(trader.journal.trades(trader.run_id))
            reason = {"replay_end": "replay_end", "halted": "halted"}.get(res.reason, res.reason)
            if stop["flag"]:
                reason = stop["flag"]
            elif collectors[0].done:
                reason = collectors[0].done
            if res.reason == "halted":
                journal.record_risk_event("trading_off", "the trader halted (navale stop): recording goes on",
                                          time.time_ns(), level="critical")
                trader = None
        if trader is None:
            reason = _record_loop(collectors, hb, stop) if not (stop["flag"] or all(c.done for c in collectors)) \
                else (stop["flag"] or collectors[0].done or reason)
    finally:
        if watcher is not None:
            watcher.close(5.0)
        ok = _close_all(collectors)
        hb(force=True)
        if line:
            sys.stderr.write("\n")
        control.remove_pid(root)
        control.release(root)
    wall = time.perf_counter() - t0
    res = CollectResult(reason, [c.status() for c in collectors], n_trades, wall,
                        trader_note or (hb.trader.run_id if hb.trader is not None else None),
                        sum(len(list(layout.segment_dir(root, c.symbol).glob("*.seg"))) for c in collectors))
    journal.record_risk_event("collect_end", f"{reason}: " + ", ".join(
        f"{s['symbol']} {s['ticks']:,} ticks, {s['bars']:,} bars, {s['gaps']} gaps, seq {s['seq']:,}" for s in res.symbols)
        + f"; {n_trades} trades; {wall:.1f} s", time.time_ns(), level="info")
    journal.close()
    _print_result(res, out, getattr(args, "json", False))
    return 0 if ok else 1


def _close_all(collectors: Sequence[Collector]) -> bool:
    ok = True
    for c in collectors:
        try:
            ok = c.close() and ok
        except OSError:
            ok = False
    return ok


def _record_loop(collectors: list[Collector], hb: _Heartbeat, stop: dict) -> str:
    while True:
        if stop["flag"]:
            return stop["flag"]
        got = False
        for c in collectors:
            if c.done is None and c.step() is not None:
                got = True
        hb()
        if all(c.done for c in collectors):
            return collectors[0].done
        if not got:
            time.sleep(0.002)


def _open_trader(args: Any, root: Path, collectors: list[Collector], hb: _Heartbeat, feed_text: str):
    from live.session import open_session
    from research.store import default_store_path
    from strategy import Params

    params = Params.for_mode(args.mode)
    main = collectors[0]
    bars_part = Path(root) / "parquet" / "bars" / f"symbol={main.symbol}"
    manifest = {"source": "collect", "collect_dir": str(root), "bars_partitions": str(bars_part.resolve()),
                "bars_symbol": main.symbol}
    kw: dict[str, Any] = {}
    if getattr(args, "ml_model", None):
        kw["ml_model"] = args.ml_model
        if getattr(args, "ml_threshold", None) is not None:
            kw["ml_threshold"] = args.ml_threshold

    def factory(_feed: str, resume: Any = None, **_kw: Any) -> CollectingFeed:
        return CollectingFeed(collectors, 0, resume, on_tick=hb)

    trader = open_session(params, feed=feed_text, state_dir=layout.trader_dir(root), broker_mode="bar",
                          unvalidated=True, bar=args.bar, symbol=main.feed.symbol or main.symbol,
                          store_path=None if getattr(args, "no_store", False) else default_store_path(),
                          feed_factory=factory, store_manifest=manifest, **kw)
    trader.before_persist = main.sync
    if isinstance(trader.feed, CollectingFeed):
        trader.feed.trader = trader
    return trader


def _print_result(res: CollectResult, out: Any, as_json: bool) -> None:
    import json

    if as_json:
        print(json.dumps({"reason": res.reason, "symbols": res.symbols, "trades": res.trades, "wall_s": res.wall_s,
                          "trader": res.trader, "segments": res.segments}, default=str))
        return
    records = sum(s["records"] for s in res.symbols)
    out.print(f"{res.reason}: {records:,} records ("
              + ", ".join(f"{s['symbol']}: {s['ticks']:,} ticks, {s['bars']:,} bars, {s['gaps']} gaps, "
                          f"{s['events']} events, seq {s['seq']:,}" for s in res.symbols)
              + f"), {res.segments} segment(s), {res.trades} trades, {res.wall_s:.1f} s", highlight=False)
