"""The live loop: feed -> bar builder -> `SignalEngine` -> `TradeEngine` (the backtest's rules) ->
broker -> journal and trade snapshots.

Per record the loop does only what the next decision needs: a trade goes to the broker (a tick-mode
paper broker fills on it) and to the bar builder; a closed bar runs the signal kernel and the trade
rules, sends orders, and persists everything in one journal transaction. Every time rule reads the
bar's timestamp; the wall clock only drives the live-only switches (feed halt, halt-file checks).

Restart: the state saved at each bar close (both engines, the feed position before the record that
opened the bar in progress, the broker fill cursor, the open trade's context) is loaded, the
broker's position is reconciled with it (a mismatch stops trading and says so), and the feed
resumes from the saved position. Order ids are deterministic (run id, purpose, bar time), so an
order re-sent for a re-processed bar is recognised by the broker: no duplicate.
"""

from __future__ import annotations

import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from live import control
from live.brokers.base import Broker
from live.config import TraderConfig
from live.events import Bar, Bracket, Fill, Order, Tick
from live.feeds.base import Feed
from research.data.aggregate import parse_bar_spec
from research.store import snapshots as snap
from research.store.trade_records import context_row, trade_frame
from strategy import SignalEngine
from strategy import trade_rules as R
from strategy.bar_clock import BarClock
from strategy.exits import EXIT_REASONS, R_FLATTEN, R_SESSION
from strategy.trade_engine import TradeEngine

__all__ = ["Trader", "ReconcileError", "HaltedError", "RunResult"]

log = logging.getLogger(__name__)
STATE_KEYS = ("signals", "trades", "loop")
REALTIME_NS = 600 * 10**9  # records this close to the wall clock are real time
HEARTBEAT_S = 5.0  # a waiting trader's heartbeat period
LOOP_STATE_VERSION = 1


class ReconcileError(RuntimeError):
    """The broker's position differs from the trader's own state: trading stops until a human looks."""


class HaltedError(RuntimeError):
    """The emergency stop is set (``navale stop``): no trading until ``navale stop --clear``."""


@dataclass
class RunResult:
    """How a session ended and what it did."""

    reason: str  # "replay_end" | "halted" | "stopped" | "max_records"
    trades: pd.DataFrame
    equity: pd.DataFrame  # per in-session bar close: equity, position
    bars: int = 0
    records: int = 0
    restarts: int = 0
    latency_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # per record, processing time
    shadow_trades: pd.DataFrame | None = None  # the shadow trades this process closed (with a quality filter)
    decision_ns: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # bar close -> order sent


class Trader:
    """One paper-trading session over a feed.

    Args:
        config: the session's settings (`live.config.TraderConfig`).
        open_feed: ``open_feed(resume_token_or_None) -> Feed`` (called once, after the state is loaded).
        broker: the broker (`live.brokers.base.Broker`).
        journal: the journal (`live.journal.Journal`) the state, orders, fills, trades and heartbeats go to.
        builder: ``(bar_spec_text, grace_seconds) -> bar builder`` for tick feeds (`live.bars.BarBuilder`).
        order_flow: bid/ask volumes drive the signals (exact δ); False: the OHLCV proxy.
        bar_ns: bar length (default from ``config.bar``).
        store_sync: optional `live.store_sync.StoreSync` the closed trades are pushed to.
        on_status: optional callback receiving the status dict after each bar.
        quality: optional `live.quality_filter.SignalQualityFilter`: every entry decision gets P(win); a
            skipped signal is followed as a SHADOW trade (the trade engine takes it, so the trade history
            and the account rules stay those of the backtest; its orders go to ``shadow_broker``, never to
            ``broker``; it is journaled in ``shadow_trades``, not ``trades``).
        shadow_broker: the bar-mode `live.brokers.paper.PaperBroker` (its own book file) shadow trades
            fill on; needed with ``quality``.
    """

    def __init__(self, config: TraderConfig, open_feed: Callable[[Any], Feed], broker: Broker, journal: Any, *,
                 builder: Callable[[str, float], Any] | None = None, order_flow: bool = True,
                 bar_ns: int | None = None, store_sync: Any = None, on_status: Callable[[dict], None] | None = None,
                 latency_capacity: int = 0, quality: Any = None, shadow_broker: Broker | None = None):
        self.cfg = config
        p = config.params
        self.params = p
        self._params_hash = p.hash()  # saved with the state at every bar
        self.bar_ns = int(bar_ns or parse_bar_spec(config.bar).size)
        self._open_feed = open_feed
        self.broker = broker
        self.journal = journal
        self._make_builder = builder
        self.order_flow = bool(order_flow)
        self.store_sync = store_sync
        self.on_status = on_status
        self.before_persist: Callable[[], Any] | None = None  # e.g. the collector's flush + fsync: never ahead of it
        if quality is not None and shadow_broker is None:
            raise ValueError("a signal-quality filter needs a shadow broker for the signals it skips")
        self.quality = quality
        self.shadow_broker = shadow_broker
        self.sig = SignalEngine(p, tick_size=config.tick_size, order_flow=self.order_flow,
                                bar_seconds=self.bar_ns / 1e9)
        self.eng = TradeEngine(p, tick_value=config.tick_value, commission_per_side=config.commission_per_side,
                               margin_per_contract=config.margin_per_contract)
        self.clock = BarClock(self.bar_ns)
        self.run_id = config.run_id
        self.feed: Feed | None = None
        self.builder: Any = None
        self._days: dict[int, tuple[float, bool]] = {}
        self._tick = float(config.tick_size)
        self._slip = int(p.slippage_ticks)
        # loop state (persisted)
        self._seq = 0  # last broker fill applied
        self._shadow_seq = 0  # last shadow-broker fill applied
        self._open_shadow = False  # the open trade is a shadow trade (its orders go to the shadow broker)
        self._n_shadow = 0  # closed shadow trades (of _n_trades)
        self._shadow_pnl = 0.0  # closed shadow trades' net P&L (the engine's equity holds it; the real book not)
        self._shadow_day: list[Any] = [None, 0.0, 0]  # trading date, its shadow trades' net P&L and entries
        self._resume: Any = None
        self._balls = [0, 0, 0, 0]  # balls of the last four in-session bars, newest first
        self._ctx: dict[int, dict] = {}  # signal bar index -> entry context (pending / open trade)
        self._n_trades = 0
        self._last_bar: dict[str, Any] | None = None  # ts, close ticks, day of the last in-session bar
        self._restarts = 0
        # live-only switches
        self._watch = control.HaltWatch(config.state_dir)
        self._terminate = False
        self._hb_at = 0.0
        self._feed_halted = False
        self._calendar: Any = None
        self._awaiting: dict[str, Any] | None = None
        self._last_rec_ts = 0  # market time of the last trade
        self._last_ts = -1  # start of the last bar processed (persisted)
        self._reported: tuple[str, str] = ("", "")  # the day gate / account stop last journaled
        self._position = 0  # last position journaled
        self._prev_day: int | None = None
        # outputs of this process
        self._trades: list[pd.DataFrame] = []
        self._shadow_trades: list[pd.DataFrame] = []
        self._equity: list[tuple[int, float, int]] = []
        self._bars = 0
        self._records = 0
        self._since_ckpt = 0
        self._lat = np.zeros(latency_capacity, np.int64)
        self._dec = np.zeros(max(latency_capacity // 10, 16) if latency_capacity else 0, np.int64)
        self._n_lat = self._n_dec = 0
        self._decisions = 0  # orders sent on a record's arrival, and the last one's latency (into the heartbeat)
        self._decision_last_ns = 0
        self._t_record = 0
        self._n_feed_events = 0  # of feed.events journaled

    # ------------------------------------------------------------------------------ start / state
    def start(self) -> None:
        """Refuse a halted state dir, load the saved state, reconcile with the broker, open the feed."""
        halt = control.read_halt(self.cfg.state_dir)
        if halt:
            raise HaltedError(f"emergency stop in force since {halt.get('time', '?')} ({halt.get('reason', '')}): "
                              f"run `navale stop --clear` before trading again")
        saved = self.journal.load_state()
        if saved is not None:
            self._load(saved[0])
            self._restarts += 1
        if not self.run_id:
            self.run_id = "paper-" + time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + "-" + uuid.uuid4().hex[:6]
        self._reconcile()
        if self.quality is not None and saved is not None:  # the prior-day history of a restarted run
            self.quality.add_trades(pd.concat([self.journal.trades(self.run_id),
                                               self.journal.shadow_trades(self.run_id)], ignore_index=True))
        self._warm_up()
        self.feed = self._open_feed(self._resume)
        if not self.feed.yields_bars:
            if self._make_builder is None:
                raise ValueError("a tick feed needs a bar builder")
            self.builder = self._make_builder(self.cfg.bar, self.cfg.grace_seconds)
        now = time.time_ns()
        self.journal.record_risk_event("start" if saved is None else "restart",
                                       f"run {self.run_id}, mode {self.params.mode}, broker {self.cfg.broker_mode}"
                                       + (", UNVALIDATED parameters" if self.cfg.unvalidated else ""), now, level="info")
        control.write_pid(self.cfg.state_dir)

    def _warm_up(self) -> None:
        """Compile (or load from numba's cache) the kernels on throwaway engines, so the first real bar does
        not wait for it (a fresh clone compiles for about a minute)."""
        from strategy.fills import bracket_on_bar, market_fill_ticks

        ts = 1_709_562_600_000_000_000  # 2024-03-04 14:30 UTC
        SignalEngine(self.params, tick_size=self.cfg.tick_size, order_flow=self.order_flow,
                     bar_seconds=self.bar_ns / 1e9).update_values(ts, 5000.0, 5000.25, 4999.75, 5000.0, 10, 5, 5)
        eng = TradeEngine(self.params, tick_value=self.cfg.tick_value, commission_per_side=0.0)
        day, close_min, _ = self.clock.fields(ts)
        eng.step_model(ts, day, 20000, 20001, 19999, 20000, close_min, 960.0, True, False, *([False] * 6))
        market_fill_ticks(20000, 1, 1)
        bracket_on_bar(1, 19990, 20010, 20000, 20001, 19999, True, 1)

    def _load(self, blobs: dict[str, bytes]) -> None:
        st = json.loads(blobs["loop"].decode())
        if st.get("version") != LOOP_STATE_VERSION:
            raise ValueError(f"saved loop state version {st.get('version')} != {LOOP_STATE_VERSION}: start over "
                             "with `navale paper --fresh`")
        if st.get("params_hash") != self._params_hash:
            raise ValueError(f"the session saved in {self.cfg.state_dir} was run with other parameters: use "
                             "another --state-dir, or `navale paper --fresh` to start over (the old session is "
                             "archived)")
        self.sig.load_bytes(blobs["signals"])
        self.eng.load_bytes(blobs["trades"])
        self.run_id = st["run_id"]
        self._seq = int(st["seq"])
        self._resume = st["resume"]
        self._balls = list(st["balls"])
        self._ctx = {int(k): v for k, v in st["ctx"].items()}
        self._n_trades = int(st["n_trades"])
        self._last_bar = st["last_bar"]
        self._prev_day = st.get("prev_day")
        self._restarts = int(st.get("restarts", 0))
        self._last_ts = int(st.get("last_ts", -1))
        self._reported = tuple(st.get("reported", ("", "")))
        self._position = int(st.get("position", 0))
        self._shadow_seq = int(st.get("shadow_seq", 0))
        self._open_shadow = bool(st.get("open_shadow", False))
        self._shadow_pnl = float(st.get("shadow_pnl", 0.0))
        self._n_shadow = int(st.get("n_shadow", 0))
        self._shadow_day = list(st.get("shadow_day", [None, 0.0, 0]))
        if self.quality is not None:
            q = st.get("quality") or {}
            self.quality.load_window(q.get("window"))
            self.quality.taken, self.quality.skipped = int(q.get("taken", 0)), int(q.get("skipped", 0))

    def _loop_state(self) -> bytes:
        return json.dumps({
            "version": LOOP_STATE_VERSION, "params_hash": self._params_hash, "run_id": self.run_id, "seq": self._seq,
            "resume": self._resume, "balls": self._balls, "ctx": {str(k): v for k, v in self._ctx.items()},
            "n_trades": self._n_trades, "last_bar": self._last_bar, "prev_day": self._prev_day,
            "restarts": self._restarts, "last_ts": self._last_ts, "reported": list(self._reported),
            "position": self._position, "shadow_seq": self._shadow_seq, "open_shadow": self._open_shadow,
            "shadow_pnl": self._shadow_pnl, "shadow_day": self._shadow_day, "n_shadow": self._n_shadow,
            "quality": None if self.quality is None else {"window": self.quality.window_state(),
                                                          "taken": self.quality.taken,
                                                          "skipped": self.quality.skipped},
        }, default=_jsonable).encode()

    def _reconcile(self) -> None:
        """The broker's position must equal ours plus the fills we have not applied yet."""
        own = 0 if self._open_shadow else self.eng.side * self.eng.contracts  # the real book holds real trades only
        if self.shadow_broker is not None:
            self._reconcile_shadow()
        have = int(self.broker.positions().get(self.cfg.symbol, 0))
        # only fills of this run's orders (ids "RUN:kind:ts", bracket legs "RUN:E:ts:stop") are expected;
        # another's (a flatten from outside while the trader was down) shows as a mismatch
        unapplied = [f for f in self.broker.fills_since(self._seq) if f.order_id.startswith(f"{self.run_id}:")]
        want = own + sum(f.side * f.quantity for f in unapplied)
        if have != want and have == 0 and not unapplied and own != 0:
            flat = [f for f in self.broker.fills_since(self._seq)
                    if f.role == "flatten" and (f.extra or {}).get("reason") == "emergency_stop"]
            if flat and self._last_bar is not None:  # `navale stop` flattened the book while the trader was down
                f = flat[-1]
                with self.journal.batch():
                    self.eng.close_exit(f.ts_ns, int(self._last_bar["c"]), self._ticks(f.price), R_FLATTEN)
                    self._seq = max(self._seq, int(f.seq))
                    self.journal.record_fill(f)
                    self._collect_trades()
                    self.persist()
                    self.journal.record_risk_event(
                        "outside_flatten", f"the book was flattened while the trader was down ({f.order_id} at "
                        f"{f.price}): the open trade is booked as exit 'flatten'", f.ts_ns, level="warning")
                want = 0
        if have != want:
            msg = (f"broker holds {have:+d} {self.cfg.symbol}, the trader's state expects {want:+d} "
                   f"({own:+d} plus {len(unapplied)} unapplied fill(s) of its orders): "
                   "trading stopped; flatten at the broker (`navale stop`) and start over with --fresh, or fix the state")
            self.journal.record_risk_event("reconcile_mismatch", msg, time.time_ns(), level="critical")
            raise ReconcileError(msg)

    def _reconcile_shadow(self) -> None:
        """The shadow book must hold the open trade when it is a shadow trade (plus its unapplied fills), else
        nothing: a mismatch stops trading as the real book's does."""
        own = self.eng.side * self.eng.contracts if self._open_shadow else 0
        have = int(self.shadow_broker.positions().get(self.cfg.symbol, 0))
        unapplied = [f for f in self.shadow_broker.fills_since(self._shadow_seq)
                     if f.order_id.startswith(f"{self.run_id}:")]
        want = own + sum(f.side * f.quantity for f in unapplied)
        if have != want:
            msg = (f"shadow book holds {have:+d} {self.cfg.symbol}, the trader's state expects {want:+d} ({own:+d} "
                   f"plus {len(unapplied)} unapplied shadow fill(s)): trading stopped; start over with --fresh")
            self.journal.record_risk_event("reconcile_mismatch", msg, time.time_ns(), level="critical")
            raise ReconcileError(msg)

    def persist(self) -> None:
        """Save both engines and the loop state (one transaction with the bar's journal rows); ``before_persist``
        runs first."""
        if self.before_persist is not None:
            self.before_persist()
        self.journal.save_state({"signals": self.sig.to_bytes(), "trades": self.eng.to_bytes(),
                                 "loop": self._loop_state()}, int(self._last_bar["ts"]) if self._last_bar else 0)

    # ------------------------------------------------------------------------------------- the loop
    def install_signal_handler(self) -> None:
        """SIGUSR1 (sent by ``navale stop``) requests the emergency stop; SIGTERM ends the session after the
        record in hand (the state saved at the last bar close is where a restart resumes). The handlers
        only set flags."""
        import signal

        self._watch.install()
        signal.signal(signal.SIGTERM, lambda *_: setattr(self, "_terminate", True))

    def request_stop(self) -> None:
        """End the session after the record in hand, as SIGTERM does (the state saved at the last bar close is
        where a restart resumes)."""
        self._terminate = True

    def run(self, *, max_records: int | None = None) -> RunResult:
        """Run until the feed ends (a replay), the emergency stop, or `max_records` records."""
        if self.feed is None:
            self.start()
        reason = "stopped"
        feed = self.feed
        try:
            while True:
                halt = self._watch.check()
                if halt is not None:
                    self.emergency_stop(str(halt.get("reason") or "emergency stop requested"))
                    reason = "halted"
                    break
                if self._terminate:
                    reason = "terminated"
                    break
                if max_records is not None and self._records >= max_records:
                    reason = "max_records"
                    break
                tok = feed.resume_token()
                rec = feed.next_record()
                if rec is None:
                    if feed.exhausted():
                        self.finish()
                        reason = "replay_end"
                        break
                    self._idle()
                    continue
                self._t_record = time.perf_counter_ns()
                self._records += 1
                if self._feed_halted:
                    self._feed_resumed()
                if isinstance(rec, Bar):
                    self._close_bar(rec, feed.resume_token())
                else:
                    self._on_tick(rec, tok)
                if self._n_lat < self._lat.shape[0]:
                    self._lat[self._n_lat] = time.perf_counter_ns() - self._t_record
                    self._n_lat += 1
        finally:
            if self.store_sync is not None:
                self.store_sync.close(10.0)
            control.remove_pid(self.cfg.state_dir)
            control.release(self.cfg.state_dir)
        return self.result(reason)

    def _on_tick(self, tick: Tick, tok: Any) -> None:
        self._last_rec_ts = tick.ts_ns
        self.broker.on_tick(tick)
        bar = self.builder.add(tick)
        if self._awaiting is not None:
            self._check_awaiting()
        if bar is not None:
            self._close_bar(bar, tok)

    def _idle(self) -> None:
        """Nothing new from a live feed: close a bar whose grace period passed (only when the records are
        real time: a replay's bars close on its own records), watch for a feed halt."""
        now = time.time_ns()
        if self.builder is not None and self.feed.live and 0 <= now - self._last_rec_ts < REALTIME_NS:
            bar = self.builder.poll(now)
            if bar is not None:
                self._close_bar(bar, self.feed.resume_token())
        if self._last_ts >= 0 and time.monotonic() - self._hb_at > HEARTBEAT_S:  # alive between bars too
            self._hb_at = time.monotonic()
            self.journal.heartbeat(self._last_ts, self.status())
        if self._n_feed_events != len(getattr(self.feed, "events", ()) or ()):
            self._journal_feed_events()
        last = getattr(self.feed, "last_record_wall", None)
        if last is not None and getattr(self.feed, "live", False) and not self._feed_halted:
            quiet = time.monotonic() - last
            if quiet > self.cfg.feed_halt_seconds and self._globex_open(now):
                self._feed_halted = True
                self.journal.record_risk_event("feed_halt", f"no record for {quiet:.1f} s while Globex is open: "
                                               "the pending entry is cancelled, no new entry until records resume "
                                               "(an open position keeps its stop and target)", now,
                                               level="critical")
                self._cancel_entries()
        time.sleep(0.01)

    def _journal_feed_events(self) -> None:
        """The feed's new ``events`` (a dropped link, a reconnect, a replaced file...) as risk events."""
        evs = self.feed.events
        for kind, detail in evs[self._n_feed_events:]:
            if kind == "resumed":  # the feed reopened at the saved offset: the trader's own restart event says it
                continue
            level = "info" if kind in ("roll", "reconnected") else "critical" if kind in ("disconnected", "rejected") else "warning"
            self.journal.record_risk_event(f"feed_{kind}", str(detail), time.time_ns(), level=level)
        self._n_feed_events = len(evs)

    def _globex_open(self, now_ns: int) -> bool:
        """Globex trades at wall time `now_ns` (a live feed is expected to be quiet outside)."""
        if self._calendar is None:
            from strategy.market.calendar import SessionCalendar

            self._calendar = SessionCalendar()
        try:
            return self._calendar.is_open(now_ns)
        except ValueError:  # outside the calendar's coverage: watch the feed all the time
            return True

    def _feed_resumed(self) -> None:
        self._feed_halted = False
        self.journal.record_risk_event("feed_resumed", "records again: entries allowed", time.time_ns(), level="info")

    # ------------------------------------------------------------------------------------ one bar
    def _close_bar(self, bar: Bar, resume: Any) -> None:
        if bar.ts_ns <= self._last_ts:  # a bar processed before a restart, fed again: never twice
            self.journal.record_risk_event("bar_skipped", f"bar {bar.ts_ns} already processed", bar.ts_ns, level="info")
            return
        if self._awaiting is not None:  # a close exit never filled before the next bar: book the model's price
            self._resolve_awaiting(None)
        if self._n_feed_events != len(getattr(self.feed, "events", ()) or ()):
            self._journal_feed_events()
        s = self.sig.update_values(bar.ts_ns, bar.open, bar.high, bar.low, bar.close, bar.volume, bar.bid_volume,
                                   bar.ask_volume, bar.roll_offset, copy=False)
        self._bars += 1
        self._last_ts = bar.ts_ns
        self._resume = resume
        with self.journal.batch():
            if s["in_session"]:
                self._trade_bar(bar, s)
            self._since_ckpt += 1
            if self._since_ckpt >= self.cfg.checkpoint_every:
                self.persist()
                self._since_ckpt = 0
            st = self.status(bar)
            st["in_session"] = bool(s["in_session"])  # the bar is a point of the session's equity curve
            st["signals"] = _bar_signals(bar, s)  # the dashboard's last bars
            self.journal.heartbeat(time.time_ns(), st)
        if self.on_status is not None:
            self.on_status(st)

    def _day(self, day: int) -> tuple[float, bool]:
        got = self._days.get(day)
        if got is None:
            from strategy.market.calendar import session_close_minutes, trading_day_ok

            d = np.array([day], np.int64)
            got = (float(session_close_minutes(d)[0]), bool(trading_day_ok(d)[0]))
            self._days[day] = got
        return got

    def _ticks(self, price: float) -> int:
        return int(np.rint(price / self._tick))

    def _trade_bar(self, bar: Bar, s: Any) -> None:
        eng = self.eng
        ts = bar.ts_ns
        day, close_min, weekday = self.clock.fields(ts)
        close_at, day_ok = self._day(day)
        o, h, l, c = (self._ticks(x) for x in (bar.open, bar.high, bar.low, bar.close))
        if day != self._prev_day:
            self._on_new_day(day, ts)
        forced = eng.begin_bar(ts, day)
        if self.quality is not None:  # the bar window of the bar features: every in-session bar, in order
            self.quality.observe_bar(bar.close, float(s["delta"]), bar.contract)
        # a shadow trade fills on the bar-mode shadow book whatever the real broker's mode
        bar_mode = self.cfg.broker_mode == "bar" or (eng.side != 0 and self._open_shadow)
        if forced >= 0 and bar_mode:
            self._send_exit("F", ts, R_SESSION, "next_open")
        self.broker.on_bar(bar)
        if self.shadow_broker is not None:
            self.shadow_broker.on_bar(bar)
        exit_px = entry_px = None
        bracket: Fill | None = None
        for f, shadow in self._fills_until(ts + self.bar_ns):
            kind = f.order_id.split(":")[1] if ":" in f.order_id else ""
            if f.role in ("stop", "target"):
                bracket = f
            elif kind == "E":
                entry_px = self._ticks(f.price)
                self._open_shadow = shadow
                if shadow:
                    self._shadow_today()[2] += 1
            elif kind in ("X", "F", "H"):
                exit_px = self._ticks(f.price)
        pending_sig = int(eng.si[R.I_PEND_SIG]) if eng.pending_entry != 0 else -1
        eng.open_fills(ts, o, exit_px, entry_px)
        if pending_sig >= 0 and entry_px is None:
            self._ctx.pop(pending_sig, None)  # a day order of another date, or not filled: no trade
        if bracket is not None:
            eng.bracket_fill(ts, o, h, l, R.R_STOP if bracket.role == "stop" else R.R_TARGET, self._ticks(bracket.price),
                             bool(bracket.extra.get("ambiguous", False)), bool(bracket.extra.get("gap", False)),
                             self._ticks(bracket.extra.get("optimistic_price", bracket.price)),
                             int(bracket.slippage_ticks))
        else:
            eng.bracket_fill(ts, o, h, l)
        last = bool(bar.last_of_contract)
        r = eng.close_exit_reason(close_min, close_at, last)
        if r < 0 and forced >= 0 and not bar_mode and eng.side != 0:
            r = R_SESSION  # tick mode: the forced exit goes at once, at the next trade
        args = dict(ts=ts, c=c, close_min=close_min, close_at=close_at, day_ok=day_ok, last=last, weekday=weekday,
                    close=bar.close, contract=bar.contract or self.cfg.symbol,
                    flags=(bool(s["long_entry"]), bool(s["short_entry"]), bool(s["long_candidate"]),
                           bool(s["short_candidate"]), bool(s["bull_violation"]), bool(s["bear_violation"])),
                    ctx=context_row(s, tuple(self._balls), bar.close, bar.contract or self.cfg.symbol, close_min,
                                    weekday),
                    ball=int(s["ball"]))
        if r >= 0:
            oid = self._send_exit("C", ts, r, "close")
            f = self._fill_of(oid)
            if f is None:
                self._awaiting = dict(args, order_id=oid, reason=r)
                return
            eng.close_exit(ts, c, self._ticks(f.price), r)
        self._decide(args)

    def _decide(self, a: dict) -> None:
        eng = self.eng
        eq = eng.decide(a["ts"], a["c"], a["close_min"], a["close_at"], a["day_ok"], a["last"], *a["flags"])
        if eng.pending_exit >= 0:
            self._send_exit("X", a["ts"], eng.pending_exit, "next_open")
        if eng.pending_entry != 0:
            ctx = dict(a["ctx"])
            if self.quality is not None:
                self._collect_trades()  # a trade closed in this bar is known at its close: prior-day history
                ctx.update(self._quality_of(ctx, a["ts"], eng.pending_entry))
            self._ctx[eng.bar_index - 1] = ctx
            shadow = bool(ctx.get("shadow", False))
            if not self._feed_halted and (shadow or self.broker.ready):
                self._send_entry(a["ts"], eng.pending_entry, eng.pending_day, shadow)
            elif not self._feed_halted:  # a venue link down or reconciling: no new exposure (exits are held)
                self.journal.record_risk_event("entry_skipped", f"entry signal of bar {a['ts']} not sent: the "
                                               "broker link is not ready", a["ts"], level="warning")
        self._balls = [a["ball"]] + self._balls[:3]
        self._journal_changes(a["ts"])
        self._collect_trades()
        if self._shadow_pnl or (eng.side and self._open_shadow):  # the real book: shadow trades taken out
            eq -= self._shadow_pnl + ((eng.equity(a["c"]) - eng.equity(eng.entry_price))
                                      if eng.side and self._open_shadow else 0.0)
        self._equity.append((a["ts"], eq, 0 if self._open_shadow else eng.side * eng.contracts))
        self._last_bar = {"ts": a["ts"], "c": a["c"], "close": a["close"]}

    def _quality_of(self, ctx: dict, ts: int, side: int) -> dict[str, Any]:
        """The filter's decision on the signal of bar ``ts`` as snapshot filter fields; a model failure or an
        undefined feature skips the signal (a shadow trade) and is journaled."""
        d = self.quality.decide(ctx, side=int(side), signal_ts_ns=int(ts), run_id=self.run_id)
        if d.error is not None:
            self.journal.record_risk_event("quality_error", f"signal-quality model failed ({d.error}): the signal "
                                           "is skipped (followed as a shadow trade)", ts, level="critical")
        elif d.undefined is not None:
            self.journal.record_risk_event("quality_undefined", f"{d.undefined}: the signal is skipped (followed as a "
                                           "shadow trade)", ts, level="warning")
        return {"quality_p_win": d.p_win, "quality_threshold": d.threshold, "quality_taken": d.taken,
                "shadow": not d.taken}

    def _journal_changes(self, ts: int) -> None:
        """Risk events when a day gate or an account stop trips or lifts; the position when it changes."""
        eng = self.eng
        now = (eng.day_stop, eng.halted)
        if now != self._reported:
            if now[0] != self._reported[0]:
                self.journal.record_risk_event("day_gate", f"{now[0]}: no new entry today" if now[0]
                                               else f"{self._reported[0]} lifted", ts,
                                               level="warning" if now[0] else "info")
            if now[1] and now[1] != self._reported[1]:
                self.journal.record_risk_event("account_stop", f"{now[1]}: trading stopped for good (equity "
                                               f"{eng.equity(eng.entry_price if eng.side else 0):,.2f})", ts,
                                               level="critical")
            self._reported = now
        pos = 0 if self._open_shadow else eng.side * eng.contracts  # the real book's position
        if pos != self._position:
            self.journal.record_position(self.cfg.symbol, pos, ts)
            self._position = pos

    def _on_new_day(self, day: int, ts: int) -> None:
        if self._prev_day is not None:
            gap_days = day - self._prev_day
            detail = f"trading date {np.datetime64(day, 'D')}: daily limits and counters reset"
            if gap_days > 1 and pd.Timestamp(int(day) * 86_400_000_000_000, unit="ns").weekday() == 0:
                self.journal.record_risk_event("weekend", f"weekend halt ended: Sunday's open resumes trading ({detail})",
                                               ts, level="info")
            self.journal.record_risk_event("day_roll", detail, ts, level="info")
        self._prev_day = day

    # -------------------------------------------------------------------------------- orders / fills
    def _oid(self, kind: str, ts: int) -> str:
        return f"{self.run_id}:{kind}:{ts}"

    def _send_exit(self, kind: str, ts: int, reason: int, fill_at: str) -> str:
        side = -self.eng.side
        order = Order(order_id=self._oid(kind, ts), symbol=self.cfg.symbol, side=side, quantity=self.eng.contracts,
                      purpose="exit", reason=EXIT_REASONS[reason], decided_ns=ts + self.bar_ns, fill_at=fill_at)
        self._submit(order, self._open_shadow and self.eng.side != 0)
        return order.order_id

    def _send_entry(self, ts: int, side: int, day: int, shadow: bool = False) -> None:
        p = self.params
        order = Order(order_id=self._oid("E", ts), symbol=self.cfg.symbol, side=side, quantity=self.eng.contracts,
                      purpose="entry", bracket=Bracket(p.stop_ticks, p.target_ticks), decided_ns=ts + self.bar_ns,
                      fill_at="next_open", session_day=day)
        self._submit(order, shadow)

    def _submit(self, order: Order, shadow: bool = False) -> None:
        if shadow:  # a shadow trade's order: the shadow book only, never the real broker nor its journal rows
            self.shadow_broker.submit(order)
            return
        self.broker.submit(order)
        if self._t_record:  # the record that closed the bar -> this order
            d = time.perf_counter_ns() - self._t_record
            self._decisions += 1
            self._decision_last_ns = d
            if self._n_dec < self._dec.shape[0]:
                self._dec[self._n_dec] = d
                self._n_dec += 1
        self.journal.record_order(order, time.time_ns(), "submitted")

    def _cancel_entries(self) -> None:
        """Cancel a pending entry. The broker cancels all or nothing, so the pending exit of a reversal
        (an entry is pending in a position only with an exit) is sent again on its own (kind ``H``)."""
        for shadow, broker in self._brokers():
            if not any(o.purpose == "entry" for o in broker.open_orders()):
                continue
            broker.cancel_all()
            if (self.eng.side != 0 and self._open_shadow == shadow and self.eng.pending_exit >= 0
                    and self._last_bar is not None):
                self._send_exit("H", int(self._last_bar["ts"]), self.eng.pending_exit, "next_open")

    def _brokers(self) -> list[tuple[bool, Broker]]:
        """(is_shadow, broker) of the real broker and, with a quality filter, the shadow book."""
        return [(False, self.broker)] + ([(True, self.shadow_broker)] if self.shadow_broker is not None else [])

    def _cursor(self, shadow: bool) -> int:
        return self._shadow_seq if shadow else self._seq

    def _advance(self, shadow: bool, f: Fill) -> None:
        """Move the fill cursor of the fill's book past ``f``; a real fill is journaled."""
        if shadow:
            self._shadow_seq = max(self._shadow_seq, int(f.seq))
        else:
            self._seq = max(self._seq, int(f.seq))
            self.journal.record_fill(f)

    def _fills_until(self, end_ns: int) -> list[tuple[Fill, bool]]:
        """Fills not applied yet that happened before `end_ns` (later ones belong to the next bar), of both
        books, each with whether it is a shadow fill."""
        out = []
        for shadow, broker in self._brokers():
            for f in broker.fills_since(self._cursor(shadow)):
                if f.ts_ns >= end_ns:
                    break
                out.append((f, shadow))
                self._advance(shadow, f)
        return out

    def _fill_of(self, order_id: str) -> Fill | None:
        for shadow, broker in self._brokers():
            for f in broker.fills_since(self._cursor(shadow)):
                if f.order_id == order_id:
                    self._advance(shadow, f)
                    return f
        return None

    def _check_awaiting(self) -> None:
        f = self._fill_of(self._awaiting["order_id"])
        if f is not None:
            with self.journal.batch():
                self._resolve_awaiting(f)
                self.persist()

    def _resolve_awaiting(self, f: Fill | None) -> None:
        a, self._awaiting = self._awaiting, None
        px = self._ticks(f.price) if f is not None else self.eng.model_close_price(a["c"])
        if f is None:
            self.journal.record_risk_event("fill_missing", f"close exit {a['order_id']} not filled before the next bar: "
                                           "booked at the bar model's price", a["ts"], level="warning")
        self.eng.close_exit(a["ts"], a["c"], px, a["reason"])
        self._decide(a)

    # ------------------------------------------------------------------------------------- trades
    def _collect_trades(self) -> None:
        ti, tf = self.eng.pop_trades()
        if not len(ti):
            return
        ctx = pd.DataFrame([self._ctx.pop(int(k), None) or _empty_context() for k in ti[:, R.T_SIG]])
        rows = trade_frame(ti, tf, ctx, params=self.params, tick=self._tick, bar_ns=self.bar_ns,
                           symbol=self.cfg.symbol, run_id=self.run_id, order_flow=self.order_flow,
                           first_trade=self._n_trades)
        for col, default in snap.FILTER_DEFAULTS.items():  # the filter's decision, captured at the entry
            if col in ctx.columns:
                rows[col] = ctx[col].where(ctx[col].notna(), default).to_numpy().astype(type(default))
        self._n_trades += len(rows)
        shadow = rows["shadow"].to_numpy(bool)
        real, ghost = rows.loc[~shadow].reset_index(drop=True), rows.loc[shadow].reset_index(drop=True)
        self._trades.append(real)
        if len(real):
            self.journal.record_trades(real)
        if len(ghost):
            self._shadow_trades.append(ghost)
            self.journal.record_shadow_trades(ghost)
            pnl = float(ghost["pnl_usd"].sum())
            self._shadow_pnl += pnl
            self._n_shadow += len(ghost)
            self._shadow_today()[1] += pnl
        if self.quality is not None:
            self.quality.add_trades(rows)
        if self.store_sync is not None:
            self.store_sync.push(rows)  # the store keeps both, told apart by the shadow column

    def _shadow_today(self) -> list[Any]:
        """[trading date, net P&L, entries] of today's shadow trades (what the real book's daily figures omit)."""
        if self._shadow_day[0] != self._prev_day:
            self._shadow_day = [self._prev_day, 0.0, 0]
        return self._shadow_day

    # ------------------------------------------------------------------------------ end / stop
    def finish(self) -> None:
        """The replay ended: an open position closes at the last bar's close (as the backtest's last bar)."""
        if self._awaiting is not None:
            self._resolve_awaiting(None)
        with self.journal.batch():
            if self.builder is not None:
                bar = self.builder.flush()
                if bar is not None:
                    self._close_bar(bar, self.feed.resume_token())
            if self.eng.side != 0 and self._last_bar is not None:
                for _, broker in self._brokers():
                    broker.cancel_all()
                oid = self._send_exit("C", int(self._last_bar["ts"]), R_SESSION, "close")
                f = self._fill_of(oid)
                px = self._ticks(f.price) if f is not None else None
                self.eng.finish(int(self._last_bar["ts"]), int(self._last_bar["c"]), px)
                self._collect_trades()
            else:
                for _, broker in self._brokers():
                    broker.cancel_all()
                self.eng.finish(0, 0)
            self.persist()
            if self._position != 0:  # the close at the last bar: the journal's position and heartbeat say flat
                self.journal.record_position(self.cfg.symbol, 0, int(self._last_bar["ts"]))
                self._position = 0
            if self._last_ts >= 0:
                self.journal.heartbeat(self._last_ts, self.status())
            self.journal.record_risk_event("replay_end", f"feed ended after {self._records:,} records", time.time_ns(),
                                           level="info")

    def emergency_stop(self, reason: str) -> None:
        """Cancel everything, flatten, journal it; the halt file (written by ``navale stop``) stays."""
        t0 = time.time_ns()
        if control.read_halt(self.cfg.state_dir) is None:
            control.write_halt(self.cfg.state_dir, reason, "trader")
        for _, broker in self._brokers():  # the shadow book is flattened too: no trade outlives the stop
            try:
                broker.cancel_all()
            except Exception as exc:  # noqa: BLE001 - the flatten below must go out whatever the cancel did
                log.error("emergency stop: cancel_all failed (%s); flattening anyway", exc)
                self.journal.record_risk_event("cancel_failed", f"emergency stop: cancel_all failed ({exc}); "
                                               "flattening anyway", time.time_ns(), level="critical")
            broker.flatten("emergency_stop")
        with self.journal.batch():
            for shadow, broker in self._brokers():
                for f in broker.fills_since(self._cursor(shadow)):
                    self._advance(shadow, f)
                    if (f.role == "flatten" and self.eng.side != 0 and self._open_shadow == shadow
                            and self._last_bar is not None):
                        self.eng.close_exit(f.ts_ns, int(self._last_bar["c"]), self._ticks(f.price), R_FLATTEN)
            if self.eng.side == 0:
                self.eng.finish(0, 0)  # drops a pending entry or exit: nothing may fill after the stop
            self._collect_trades()
            self.persist()
            self.journal.record_position(self.cfg.symbol, 0, time.time_ns())
            self._position = 0
            st = self.status()
            st["halted"] = reason
            self.journal.heartbeat(time.time_ns(), st)
            self.journal.record_risk_event("emergency_stop", f"flat ({reason}; {(time.time_ns() - t0) / 1e6:.1f} ms)",
                                           time.time_ns(), level="critical")

    # ------------------------------------------------------------------------------------- status
    def status(self, bar: Bar | None = None) -> dict[str, Any]:
        """The heartbeat: what `navale status` shows."""
        eng = self.eng
        c = self._last_bar["c"] if self._last_bar else 0
        feed = self.feed
        # the engine's daily counters reset at the first in-session bar of a date: before it (the evening
        # and overnight of a new trading date) the date's figures are zero, not the previous date's
        new_day = bar is not None and self._prev_day is not None and self.clock.fields(bar.ts_ns)[0] != self._prev_day
        # the real book's figures: the engine's (which the account stops read) less the shadow trades'
        shadow_open = (eng.equity(c) - eng.equity(eng.entry_price)) if eng.side and self._open_shadow else 0.0
        shadow_today, shadow_entries = (self._shadow_day[1], self._shadow_day[2]) \
            if self._shadow_day[0] == self._prev_day else (0.0, 0)
        real_equity = (eng.equity(c) if self._last_bar else self.params.initial_capital_usd) - self._shadow_pnl \
            - shadow_open
        return {
            "mode": self.params.mode, "symbol": self.cfg.symbol, "run_id": self.run_id,
            "bar_ts_ns": int(bar.ts_ns) if bar is not None else (self._last_ts if self._last_ts >= 0 else None),
            "position": 0 if self._open_shadow else eng.side * eng.contracts,
            "entry_price": eng.entry_price * self._tick if eng.side and not self._open_shadow else None,
            "bracket": {"stop": eng.stop_price * self._tick,  # the open trade's stop and target at the broker
                        "target": eng.target_price * self._tick if eng.target_price > 0 else None}
            if eng.side and not self._open_shadow else None,
            "pnl_today_usd": 0.0 if new_day else eng.day_pnl - shadow_today,
            "pnl_open_usd": (eng.equity(c) - eng.equity(eng.entry_price)) if eng.side and not self._open_shadow else 0.0,
            "equity_usd": real_equity,
            "trades_today": 0 if new_day else eng.trades_today - shadow_entries,
            "trades": self._n_trades - self._n_shadow,
            "bars": self._bars,
            "latency": {"decisions": self._decisions, "last_decision_ns": self._decision_last_ns},
            "latency_ms": self._decision_last_ns / 1e6 if self._decisions else None,  # the last record -> order
            "kill_switches": {
                "daily_gate": False if new_day else (eng.day_stop or False), "halted": eng.halted or False,
                "losses_in_a_row": eng.losses_in_a_row, "feed_halt": self._feed_halted,
                "drawdown_pct": round(100.0 * (1.0 - eng.equity(c) / eng.peak_equity), 3) if self._last_bar else 0.0,
            },
            "feed": {"kind": type(feed).__name__ if feed else None, "records": self._records,
                     "last_record_age_s": (time.monotonic() - feed.last_record_wall)
                     if feed is not None and getattr(feed, "last_record_wall", None) else None,
                     "events": len(getattr(feed, "events", []) or [])},
            "halted": None, "unvalidated": self.cfg.unvalidated, "pid": os.getpid(), "wall_ns": time.time_ns(),
            "quality": None if self.quality is None else {
                **self.quality.summary(), "shadow_open": bool(eng.side and self._open_shadow),
                "shadow_position": eng.side * eng.contracts if self._open_shadow else 0,
                "shadow_pnl_usd": self._shadow_pnl,
                "account_equity_usd": eng.equity(c) if self._last_bar else self.params.initial_capital_usd},
        }

    def result(self, reason: str) -> RunResult:
        trades = pd.concat(self._trades, ignore_index=True) if self._trades else self.journal.trades(self.run_id).iloc[:0]
        eq = pd.DataFrame(self._equity, columns=["ts", "equity", "position"])
        eq.index = pd.DatetimeIndex(eq.pop("ts").to_numpy().astype("datetime64[ns]"), tz="UTC")
        ghosts = pd.concat(self._shadow_trades, ignore_index=True) if self._shadow_trades else trades.iloc[:0]
        return RunResult(reason=reason, trades=trades, equity=eq, bars=self._bars, records=self._records,
                         shadow_trades=ghosts,
                         restarts=self._restarts, latency_ns=self._lat[:self._n_lat].copy(),
                         decision_ns=self._dec[:self._n_dec].copy())


SIGNAL_FIELDS = ("bn_score", "confidence", "base_lo", "base_hi", "green_lo", "green_hi", "red_lo", "red_hi",
                 "delta", "long_entry", "short_entry")


def _bar_signals(bar: Bar, s: Any) -> dict[str, Any]:
    """The closed bar and its signal columns (status as its label), JSON-able, for the heartbeat."""
    out: dict[str, Any] = {"ts_ns": int(bar.ts_ns), "open": bar.open, "high": bar.high, "low": bar.low,
                           "close": bar.close, "volume": int(bar.volume)}
    for k in SIGNAL_FIELDS:
        v = s[k]
        out[k] = bool(v) if isinstance(v, (bool, np.bool_)) else (None if v != v else float(v))
    out["status"] = str(s["status"])
    return out


def _empty_context() -> dict[str, Any]:
    return {}


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer,)):
        return int(x)
    if isinstance(x, (np.floating,)):
        return float(x)
    if isinstance(x, (np.bool_,)):
        return bool(x)
    if isinstance(x, pd.Timestamp):
        return x.isoformat()
    if x is pd.NaT:
        return None
    raise TypeError(f"not JSON-able: {type(x).__name__}")
