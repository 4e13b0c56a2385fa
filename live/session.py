"""A paper-trading session assembled from its parts: the feed, the paper broker's book and the journal in
the state directory, the instrument of the feed's symbol, and the trader loop."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Any, Callable

from live import control
from live.config import TraderConfig
from live.trader import Trader
from strategy import Params
from strategy.market.instruments import get_spec, root_of

__all__ = ["open_session", "archive_state", "instrument_of", "SHADOW_BOOK"]

SHADOW_BOOK = "shadow_broker.sqlite"  # the bar-mode paper book of the shadow trades (skipped signals)
STATE_FILES = ("journal.sqlite", "journal.sqlite-wal", "journal.sqlite-shm", "paper_broker.sqlite",
               "paper_broker.sqlite-wal", "paper_broker.sqlite-shm", SHADOW_BOOK, SHADOW_BOOK + "-wal",
               SHADOW_BOOK + "-shm") + tuple(f"{b}{x}" for b in ("ib_broker.sqlite", "dtc_broker.sqlite")
                                             for x in ("", "-wal", "-shm")) + ("venue.json",)  # the venue brokers' books


def instrument_of(symbol: str):
    """The instrument spec of a contract or product code (ES when the feed names none)."""
    try:
        return get_spec(root_of(symbol) if symbol else "ES")
    except (KeyError, ValueError):
        return get_spec("ES")


def archive_state(state_dir: Path) -> Path | None:
    """Move a previous session's journal and paper book aside (``STATE_DIR/archive/TIME/``); the
    files are kept, never deleted. Returns the archive folder, or None when there was nothing."""
    present = [state_dir / f for f in STATE_FILES if (state_dir / f).exists()]
    if not present:
        return None
    dest = state_dir / "archive" / time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    dest.mkdir(parents=True, exist_ok=True)
    for f in present:
        shutil.move(str(f), str(dest / f.name))
    return dest


def open_session(params: Params, *, feed: str = "synthetic", state_dir: str | Path | None = None,
                 broker_mode: str = "bar", speed: float | None = 60.0, unvalidated: bool = False,
                 promotion_id: str | None = None, bar: str = "5min", symbol: str | None = None,
                 store_path: str | Path | None = None, checkpoint_every: int = 1, fresh: bool = False,
                 feed_kw: dict[str, Any] | None = None, on_status: Callable[[dict], None] | None = None,
                 latency_capacity: int = 0, ml_model: str | Path | None = None,
                 ml_threshold: float | None = None, feed_factory: Callable[..., Any] | None = None,
                 store_manifest: dict[str, Any] | None = None,
                 broker_factory: Callable[[str, float, Path], Any] | None = None, live: bool = False) -> Trader:
    """A started `Trader` (state loaded and reconciled, feed open) for ``navale paper``.

    ``feed``: ``synthetic``, ``replay:PATH`` or ``scid:PATH`` (`live.feeds.open_feed`); ``speed``:
    N x real time, None as fast as possible. ``store_path``: the run store the closed trades are
    copied to (None: not copied). ``fresh``: archive the state dir's previous session first.
    ``ml_model``: a signal-quality model file (``navale ml train``; its sidecar and sha256 are checked):
    every entry decision gets P(win), and a signal under the threshold (``ml_threshold``, default the
    mode's) is followed as a shadow trade on a bar-mode paper book of its own (``STATE_DIR/SHADOW_BOOK``).
    ``feed_factory``: ``(feed, resume=None, **kw) -> Feed`` instead of `live.feeds.open_feed` (the collector's
    records). ``store_manifest``: keys added to the stored run's manifest (the collector's ``bars_partitions``: where
    ``navale ml dataset --run`` finds the run's bars). ``broker_factory``: ``(symbol, tick_size, state_dir) ->
    Broker`` instead of the paper broker (a venue's: IB, DTC); it fills on trades, so ``broker_mode`` must be
    ``"tick"``. ``live``: a real-money session (`navale live`, after its opt-in): mode live, a promoted
    configuration and a venue broker are required.
    """
    from live.bars import BarBuilder
    from live.brokers.paper import PaperBroker
    from live.config import ConfigError
    from live.feeds import open_feed
    from live.journal import Journal
    from research.data.aggregate import parse_bar_spec

    sd = control.state_dir(state_dir)
    if sd.exists() and not sd.is_dir():
        raise ConfigError(f"state dir {sd} exists and is not a folder")
    parse_bar_spec(bar)  # every check before anything is created or archived
    quality = None
    if ml_model is not None:
        from live.quality_filter import SignalQualityFilter
        from research.ml.model import FeatureSchemaError, ModelFileError

        try:
            quality = SignalQualityFilter.load(ml_model, params, threshold=ml_threshold)
        except (ModelFileError, FeatureSchemaError, FileNotFoundError, ValueError) as exc:
            raise ConfigError(f"--ml-model: {exc}") from None  # the message names the file
    elif ml_threshold is not None:
        raise ConfigError("--ml-threshold needs --ml-model")
    kw = dict(feed_kw or {})
    if not str(feed).strip().lower().startswith("scid:"):
        kw["speed"] = speed  # a .scid tail runs at the writer's pace
    if feed_factory is not None:
        open_feed = feed_factory  # noqa: F811 (the caller's records instead of a feed of its own)
    if broker_factory is not None and broker_mode != "tick":
        raise ConfigError("a venue broker fills on the market's trades: it runs with broker_mode 'tick'")
    probe = open_feed(feed, **kw)  # the first open tells the symbol, bar size and order flow
    if probe.yields_bars and broker_mode == "tick":
        raise ConfigError(f"feed {feed!r} replays bars: a tick-mode broker needs trades (use --broker bar, or "
                          "replay a .scid, tick text or DBN file)")
    sym = symbol or probe.symbol or "ES"
    spec = instrument_of(sym)
    order_flow = bool(getattr(probe, "order_flow", True)) and params.order_flow != "ohlcv"
    bar_ns = getattr(probe, "bar_ns", None) if probe.yields_bars else None
    cfg = TraderConfig(params=params, symbol=sym, tick_size=spec.tick_size, point_value=spec.point_value,
                       commission_per_side=(spec.commission_per_side if params.commission_per_side_usd is None
                                            else params.commission_per_side_usd),
                       margin_per_contract=spec.margin_per_contract, broker_mode=broker_mode, bar=bar,
                       state_dir=sd, unvalidated=unvalidated, promotion_id=promotion_id,
                       checkpoint_every=checkpoint_every, live=live)
    if live and broker_factory is None:
        raise ConfigError("live trading goes through a venue broker (IB or DTC), never the paper broker")
    sd.mkdir(parents=True, exist_ok=True)
    control.claim(sd)  # refuses a halted state dir or one another trader holds
    if fresh:
        archive_state(sd)
    journal = Journal(control.journal_path(sd))
    if broker_factory is not None:
        broker = broker_factory(sym, spec.tick_size, sd)
    else:
        broker = PaperBroker(sym, tick_size=spec.tick_size, mode=broker_mode, slippage_ticks=params.slippage_ticks,
                             book_path=sd / "paper_broker.sqlite")
    shadow = None
    if quality is not None:
        quality.symbol, quality.tick = sym, float(spec.tick_size)
        quality.bar_ns = int(bar_ns or parse_bar_spec(bar).size)
        shadow = PaperBroker(sym, tick_size=spec.tick_size, mode="bar", slippage_ticks=params.slippage_ticks,
                             book_path=sd / SHADOW_BOOK)
    first = [probe]

    def feed_factory(resume: Any):
        if resume is None and first:
            return first.pop()
        first.clear()
        return open_feed(feed, resume=resume, **kw)

    trader = Trader(cfg, feed_factory, broker, journal,
                    builder=lambda b, g: BarBuilder(b, grace_seconds=g, symbol=sym), order_flow=order_flow,
                    bar_ns=bar_ns, store_sync=None, on_status=on_status, latency_capacity=latency_capacity,
                    quality=quality, shadow_broker=shadow)
    trader.start()
    if store_path is not None:  # the run id is known once the saved state is loaded
        trader.store_sync = _store_sync(store_path, trader, params, feed, unvalidated, promotion_id,
                                        None if quality is None else quality.summary(), feed_kw, store_manifest)
    return trader


def _store_sync(store_path: str | Path, trader: Trader, params: Params, feed: str, unvalidated: bool,
                promotion_id: str | None, quality: dict | None = None, feed_kw: dict | None = None,
                extra: dict | None = None):
    import pandas as pd

    from live.store_sync import StoreSync

    manifest = {"kind": "paper", "mode": params.mode, "session": params.session, "feed": feed, "params": params.to_dict(),
                "params_hash": params.hash(), "unvalidated": unvalidated, "promotion_id": promotion_id,
                "broker": trader.cfg.broker_mode, "symbol": trader.cfg.symbol, "bar": trader.cfg.bar}
    if quality is not None:
        manifest["quality"] = {"model": quality["model"], "threshold": quality["threshold"]}
    synthetic = str(feed).strip().lower() == "synthetic"
    spec = (feed_kw or {}).get("spec")
    if spec is None and synthetic:  # the feed's default generator
        from research.data.synthetic import SyntheticSpec

        spec = SyntheticSpec()
    if spec is not None and hasattr(spec, "__dataclass_fields__"):  # the synthetic feed's spec: its bars reload
        from dataclasses import asdict

        manifest["synthetic_spec"] = asdict(spec)
    if synthetic:  # every reader of the run (reports, ML data sets) says so
        manifest["extra"] = {"synthetic": True}
    manifest.update(extra or {})
    sync = StoreSync(store_path, trader.run_id, manifest)
    earlier = pd.concat([trader.journal.trades(trader.run_id), trader.journal.shadow_trades(trader.run_id)],
                        ignore_index=True)  # a restarted session: the store gets the whole run
    if len(earlier):
        sync.push(earlier)
    return sync
