"""``navale paper``: paper trade a promoted configuration with the backtest's signal code and trade rules."""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from .common import add_alert_options, check_alert_options, speed_arg, start_alerts
from .common import console as make_console

FEED_HELP = "synthetic (default: the embedded generator in accelerated time), replay:PATH (a recorded .scid, tick " \
            "text, DBN or bar file), scid:PATH (tail a .scid file Sierra Chart is writing), ib (Interactive " \
            "Brokers tick-by-tick through TWS or IB Gateway), dtc (Sierra Chart's DTC server)"
BROKER_HELP = "bar (default: the paper broker with the backtest's fill model, compares exactly), tick (the paper " \
              "broker filling on trades), paper (= bar), ib (orders to TWS / IB Gateway: a paper account unless " \
              "`navale live`), dtc (orders through Sierra Chart's DTC server)"
LIVE_CONFIRM = "LIVE"  # typed with the account: "LIVE U1234567"



def add_parser(sub: Any, formatter: type) -> None:
    """Register ``navale paper`` and ``navale live`` on the top-level subparsers."""
    _session_options(_paper_parser(sub, formatter), live=False)
    _session_options(_live_parser(sub, formatter), live=True)


def _live_parser(sub: Any, formatter: type) -> argparse.ArgumentParser:
    return sub.add_parser(
        "live",
        help="trade a live account (IB or DTC broker): needs --live-config and a typed confirmation",
        description=(
            "The same live loop as `navale paper`, on a real-money account. It needs a promoted configuration "
            "(--from-promotion ID or its ready_for_paper.toml: never --unvalidated), a venue broker (--broker ib "
            "or dtc), a separate git-ignored settings file (--live-config FILE with [ib] or [dtc] live = true, "
            "the account and a live port) and a typed confirmation 'LIVE ACCOUNT' (asked on the terminal, or "
            "--confirm 'LIVE ACCOUNT'). Mode live's risk preset applies. Read the go-live checklist in "
            "docs/automation_guide.md first."
        ),
        epilog=(
            "example:\n"
            "  navale live --from-promotion PROMO_ID --feed ib --broker ib --live-config ~/navale.live.toml\n"
            "\nexit status: 0 done, 1 stopped by a kill switch / emergency stop / reconcile mismatch, 2 bad input "
            "or no confirmation.\n"
        ),
        formatter_class=formatter,
    )


def _paper_parser(sub: Any, formatter: type) -> argparse.ArgumentParser:
    return sub.add_parser(
        "paper",
        help="paper trade a promoted configuration: the backtest's signals and trade rules, bar by bar",
        description=(
            "Run the live loop (feed -> bar builder -> signals -> trade rules -> paper broker -> journal) on a "
            "configuration `navale promote` accepted (--from-promotion ID, or --params with its ready_for_paper.toml). "
            "Anything else needs --unvalidated and is marked so in every output. State, journal and the paper "
            "broker's book live in --state-dir (default $NAVALE_LIVE_DIR, else data/live); a restarted session "
            "resumes where it stopped after reconciling with the broker. `navale status` reads it while it runs; "
            "`navale stop` is the emergency stop. With a replay feed it ends when the replay ends. "
            "--feed ib / dtc and --broker ib / dtc connect to TWS / IB Gateway (a paper account: ports 7497 or "
            "4002) or Sierra Chart's DTC server; their settings come from the environment or the git-ignored "
            "./navale.secrets.toml (docs/automation_guide.md). Real money needs `navale live`."
        ),
        epilog=(
            "examples:\n"
            "  navale paper --unvalidated                                   # synthetic feed, 300x real time\n"
            "  navale paper --unvalidated --speed max --out reports/paper/demo\n"
            "  navale paper --from-promotion PROMO_ID --feed replay:../shared/data/es-5m/ESH20-CME.scid_BarData__5m.txt.gz\n"
            "  navale paper --params reports/sweeps/ID/ready_for_paper.toml --feed scid:/sierra/Data/ESZ26-CME.scid\n"
            "  navale paper --from-promotion PROMO_ID --feed ib --broker ib     # IB Gateway paper account, port 4002\n"
            "  navale paper --from-promotion PROMO_ID --feed dtc --broker dtc   # Sierra Chart's DTC server\n"
            "\nexit status: 0 done, 1 stopped by a kill switch / emergency stop / reconcile mismatch, 2 bad input.\n"
        ),
        formatter_class=formatter,
    )


def _session_options(p: argparse.ArgumentParser, *, live: bool) -> None:
    p.set_defaults(live_session=live)
    p.add_argument("--feed", default="ib" if live else "synthetic", help=FEED_HELP)
    p.add_argument("--params", metavar="FILE", help="parameters TOML (a promoted ready_for_paper.toml is validated)")
    p.add_argument("--from-promotion", metavar="ID", help="the parameters of this accepted `navale promote` decision")
    if not live:
        p.add_argument("--unvalidated", action="store_true",
                       help="trade parameters the promotion gate has not accepted (marked in every output)")
        p.add_argument("--mode", choices=("paper", "data_collection"), default=None,
                       help="risk preset (default: the parameters' mode, else paper)")
    else:
        p.set_defaults(unvalidated=False, mode="live")
        p.add_argument("--live-config", metavar="FILE", required=True,
                       help="the live settings file ([ib] or [dtc] with live = true, the account, a live port); "
                            "git-ignored, never the paper settings")
        p.add_argument("--confirm", metavar="TEXT", help="the typed confirmation 'LIVE ACCOUNT' (else asked on the "
                       "terminal)")
    p.add_argument("--speed", type=speed_arg(1e6), default=None, metavar="N|max",
                   help="replay and synthetic feeds: N x real time or 'max' (default: 300 for synthetic (a 5-minute bar a second), max for replays)")
    p.add_argument("--broker", choices=("ib", "dtc") if live else ("bar", "tick", "paper", "ib", "dtc"),
                   default="ib" if live else "bar", help=BROKER_HELP)
    p.add_argument("--host", help="venue host (default: $NAVALE_IB_HOST / $NAVALE_DTC_HOST, the settings file, "
                   "127.0.0.1)")
    p.add_argument("--port", type=int, help="venue port (IB paper: 7497 TWS, 4002 Gateway; DTC: 11099)")
    p.add_argument("--client-id", type=int, help="IB API client id (default 17; the next ids are tried when in use)")
    p.add_argument("--bar", default="5min", help="bar size built from trades (default 5min)")
    p.add_argument("--state-dir", metavar="DIR", help="live state directory (default: $NAVALE_LIVE_DIR, else data/live)")
    p.add_argument("--fresh", action="store_true",
                   help="start a new session: the state dir's previous journal and book are moved to its archive/")
    p.add_argument("--out", metavar="DIR", help="write trades.parquet/.csv (backtest columns), equity, stats, manifest")
    p.add_argument("--no-store", action="store_true", help="do not copy the closed trades into the run store")
    p.add_argument("--quiet", action="store_true", help="no live status line")
    add_alert_options(p)
    p.add_argument("--no-band", action="store_true", help="do not backtest the parameters at start for the expected "
                   "daily P&L band (the dashboard's band and the pnl_band alert)")
    p.add_argument("--ml-model", metavar="FILE", help="signal-quality model (navale ml train): P(win) on every "
                   "signal; one under the threshold is followed as a shadow trade, never sent to the broker")
    p.add_argument("--ml-threshold", type=float, metavar="P", help="P(win) threshold in [0, 1] (default: the mode's)")


def resolve_params(args: argparse.Namespace) -> tuple[Any, str | None]:
    """The parameters to paper trade and the accepted promotion they are (None: unvalidated).

    A promotion's tested values are traded as `research.validation.promotion.paper_params` makes them
    (mode paper, the paper preset's account stops); ``--params FILE`` is validated when it equals
    that for an accepted promotion (its ``ready_for_paper.toml``)."""
    from research.pipeline import load_params
    from research.store import RunStore, default_store_path
    from research.validation.promotion import paper_params
    from strategy import Params

    if args.params and args.from_promotion:
        raise ValueError("give --params or --from-promotion, not both")
    store = default_store_path()
    promos = None
    if store.exists():
        with RunStore(store, read_only=True) as rs:
            promos = rs.promotions()
    accepted = promos[promos["passed"].astype(bool) & promos["params"].notna()] if promos is not None else None
    if args.from_promotion:
        if promos is None or not (promos["promotion_id"] == args.from_promotion).any():
            raise ValueError(f"no promotion {args.from_promotion!r} in the store {store} (see `navale promote`)")
        row = promos[promos["promotion_id"] == args.from_promotion].iloc[-1]
        if not bool(row["passed"]) or not row["params"]:
            raise ValueError(f"promotion {args.from_promotion} did not pass the gate: its parameters cannot be "
                             "paper traded (use --params FILE --unvalidated to trade them anyway)")
        params = paper_params(_params_of(row["params"]))
        if args.mode == "data_collection":
            params = params.replace(mode="data_collection")
        return params, str(row["promotion_id"])
    if args.params:
        params = load_params(args.params, args.mode or None)
    else:
        params = Params.for_mode(args.mode or "paper")
    if params.mode == "backtest":
        params = paper_params(params)
    promo = None
    if accepted is not None and len(accepted):
        for _, row in accepted[::-1].iterrows():
            if paper_params(_params_of(row["params"])).hash() == params.hash():
                promo = str(row["promotion_id"])
                break
    return params, promo


def _params_of(text: str):
    import tempfile

    from strategy import Params

    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False, encoding="utf-8") as fh:
        fh.write(text)
    try:
        return Params.from_toml(fh.name)
    finally:
        Path(fh.name).unlink(missing_ok=True)


def run(args: argparse.Namespace) -> int:
    from live.brokers.base import BrokerError
    from live.config import UNVALIDATED, ConfigError
    from live.control import ControlError
    from live.feeds import FeedError
    from live.journal import JournalError
    from live.trader import HaltedError, ReconcileError
    from research.data import DataError
    from strategy.params import ParamsError

    from live.venues.settings import SettingsError

    console = make_console(stderr=True)
    venues = None
    try:
        params, promo = resolve_params(args)
        if promo is None and not args.unvalidated:
            raise ConfigError(UNVALIDATED)
        if args.live_session:
            params = live_params(params)
        venues = session_venues(args, console)
        check_alert_options(args, params.mode)  # a bad alerts config or channel file: before the state is claimed
        speed = args.speed if args.speed is not None else (300.0 if args.feed.strip() == "synthetic" else float("inf"))
        speed = None if speed == float("inf") else speed
        trader = _open(args, params, promo, speed, console, venues)
        if venues is not None and venues.broker_venue is not None:
            from live.venues.wiring import write_venue_file

            write_venue_file(trader.cfg.state_dir, venues.broker_venue, live_config=getattr(args, "live_config", None),
                             overrides={"host": args.host, "port": args.port, "client_id": args.client_id})
        else:  # the paper broker: `navale stop` flattens the paper book
            (trader.cfg.state_dir / "venue.json").unlink(missing_ok=True)
    except (ConfigError, ControlError, FeedError, DataError, ParamsError, HaltedError, ValueError, OSError,
            BrokerError, JournalError, SettingsError) as exc:
        console.print(f"[bold red]error:[/] {_one_line(exc)}", markup=True, highlight=False)
        if venues is not None:
            venues.close()
        return 2
    except ReconcileError as exc:
        console.print(f"[bold red]error:[/] {_one_line(exc)}", highlight=False)
        if venues is not None:
            venues.close()
        return 1
    try:
        return _session(args, params, promo, trader, console)
    finally:
        if venues is not None:
            venues.close()


def live_params(params):
    """The promoted parameters as a live session trades them: mode ``live``, and the live preset's size, trade
    count and loss / profit / drawdown limits (the stricter of the two for each); the tested signal values stay."""
    from strategy.modes import MODE_PRESETS

    live = MODE_PRESETS["live"]
    stricter = {"contracts": min, "max_trades_per_day": min, "daily_loss_limit_usd": min,
                "daily_profit_target_usd": min, "max_drawdown_pct": min, "max_consecutive_losses": min}
    changes = {k: (live[k] if getattr(params, k) is None else pick(getattr(params, k), live[k]))
               for k, pick in stricter.items()}
    return params.replace(mode="live", **changes)


def session_venues(args, console):
    """The venues of ``--feed`` / ``--broker`` (None when both are local), with the live opt-in checked."""
    from live.venues.settings import SettingsError, load_settings
    from live.venues.wiring import VenueSet, is_venue

    if args.live_session and not is_venue(args.broker):
        raise SettingsError("navale live trades through a venue broker: --broker ib or dtc")
    if not (is_venue(args.feed) or is_venue(args.broker)):
        return None
    if is_venue(args.feed) and args.broker in ("bar", "paper"):
        args.broker = "tick"  # a live stream: the paper broker fills on its trades
    if is_venue(args.feed) and args.speed is not None:
        raise SettingsError(f"--speed: the {args.feed} feed streams in real time")
    settings: dict[str, object] = {}

    def settings_for(venue: str):
        if venue not in settings:
            live = bool(args.live_session) and venue == args.broker
            settings[venue] = load_settings(venue, live=live, live_config=getattr(args, "live_config", None),
                                            host=args.host, port=args.port, client_id=args.client_id)
            if live:
                confirm_live(settings[venue], getattr(args, "confirm", None))
        return settings[venue]

    if args.live_session:
        settings_for(args.broker)  # the opt-in before anything connects
    return VenueSet(settings_for, feed=args.feed, broker=args.broker)


def confirm_live(settings, typed: str | None) -> None:
    """Ask for ``LIVE ACCOUNT`` on the terminal (or take ``--confirm``); anything else refuses (SettingsError)."""
    from live.venues.settings import SettingsError

    want = f"{LIVE_CONFIRM} {settings.account}".strip()
    if typed is None:
        if not sys.stdin.isatty():
            raise SettingsError(f"live trading needs the typed confirmation '{want}': run on a terminal, or pass "
                                f"--confirm '{want}'")
        sys.stderr.write(f"REAL MONEY: account {settings.account} at {settings.host}:{settings.port} "
                         f"({settings.venue}). Type '{want}' to trade it: ")
        sys.stderr.flush()
        typed = sys.stdin.readline()
    if " ".join(str(typed).split()) != want:
        raise SettingsError(f"live trading not confirmed (expected '{want}'): nothing was sent")


def _session(args, params, promo, trader, console) -> int:
    from live.brokers.base import BrokerError
    from live.trader import ReconcileError

    if args.unvalidated and promo is None:
        console.print("[yellow]UNVALIDATED parameters[/]: not accepted by `navale promote`; marked in every output")
    _store_band(params, args, trader, console)
    watcher = start_alerts(args, trader.journal.path, params.mode, console)
    trader.install_signal_handler()
    console.print(f"{'LIVE' if args.live_session else 'paper'} session {trader.run_id}: mode {params.mode}, "
                  f"feed {args.feed}, broker {args.broker}, "
                  f"state {trader.cfg.state_dir}" + (", resumed" if trader._restarts else ""), highlight=False)
    t0 = time.perf_counter()
    try:
        res = trader.run()
    except KeyboardInterrupt:
        res = trader.result("interrupted")
        trader.persist()
    except (BrokerError, ReconcileError) as exc:
        trader.journal.record_risk_event("stopped", _one_line(exc), time.time_ns(), level="critical")
        console.print(f"\n[bold red]error:[/] {_one_line(exc)} (state saved at the last bar close; see `navale "
                      "status`)", highlight=False)
        return 1
    finally:
        if watcher is not None:
            watcher.close(5.0)
        if not args.quiet:
            sys.stderr.write("\n")
    wall = time.perf_counter() - t0
    trades = res.trades
    net = float(trades["pnl_usd"].sum()) if len(trades) else 0.0
    console.print(f"{res.reason}: {res.records:,} records, {res.bars:,} bars, {len(trades)} trades, net ${net:,.2f} "
                  f"in {wall:.1f} s", highlight=False)
    if trader.quality is not None:
        q = trader.quality.summary()
        console.print(f"signal quality: threshold {q['threshold']:.2f}, {q['taken']} signals taken, {q['skipped']} "
                      f"skipped (followed as shadow trades)", highlight=False)
    if args.out:
        out = write_session_outputs(args.out, trader, res, params, promo, args)
        console.print(f"wrote {out}", highlight=False)
    return 1 if res.reason == "halted" else 0


def _store_band(params, args, trader, console) -> None:
    """Write the expected daily P&L band (the backtest of the same parameters, a few seconds) beside the journal,
    on a daemon thread: the session never waits for it. A failure is journaled, never fatal (no band: the
    dashboard and the P&L-band alert do without)."""
    if getattr(args, "no_band", False):
        return
    import threading

    from live.pnl_band import write_band

    from .paper_band import session_band

    state_dir, feed, bar, journal_path = trader.cfg.state_dir, args.feed, args.bar, trader.journal.path

    def work() -> None:
        try:
            band = session_band(params, feed, bar)
            if band is not None:
                write_band(state_dir, band)
        except Exception as exc:  # noqa: BLE001 - a band is a convenience, the session goes on
            from live.journal import Journal

            try:
                with Journal(journal_path) as j:
                    j.record_risk_event("band_unavailable", f"no expected P&L band: {_one_line(exc)}", time.time_ns(),
                                        level="info")
            except Exception:  # noqa: BLE001
                pass

    threading.Thread(target=work, name="navale-band", daemon=True).start()


def _open(args, params, promo, speed, console, venues=None):
    from live import control
    from live.session import instrument_of, open_session
    from research.store import default_store_path

    status = None if args.quiet or not sys.stderr.isatty() else _status_line()
    feed_factory = broker_factory = None
    mode = "bar" if args.broker == "paper" else args.broker
    if venues is not None:
        sym = venues.settings_for(venues.feed_venue or venues.broker_venue).symbol
        feed_factory = venues.feed_factory(control.state_dir(args.state_dir), sym, instrument_of(sym).tick_size)
        broker_factory = venues.broker_factory()
        if broker_factory is not None:
            mode = "tick"
    return open_session(params, feed=args.feed, state_dir=args.state_dir, broker_mode=mode, speed=speed,
                        unvalidated=promo is None, promotion_id=promo, bar=args.bar,
                        store_path=None if args.no_store else default_store_path(), fresh=args.fresh,
                        on_status=status, ml_model=args.ml_model, ml_threshold=args.ml_threshold,
                        feed_factory=feed_factory, broker_factory=broker_factory, live=bool(args.live_session))


def _status_line():
    last = [0.0]

    def show(st: dict) -> None:
        now = time.monotonic()
        if now - last[0] < 0.2:
            return
        last[0] = now
        import pandas as pd

        bar = pd.Timestamp(st["bar_ts_ns"], unit="ns", tz="UTC").tz_convert("America/New_York") if st.get(
            "bar_ts_ns") else "-"
        ks = st.get("kill_switches", {})
        tripped = [k for k, v in ks.items() if v is True or (isinstance(v, str) and v)]
        q = st.get("quality")
        qs = f"ML >= {q['threshold']:.2f}: {q['taken']} taken / {q['skipped']} shadow  " if q else ""
        sys.stderr.write(f"\r{bar:%Y-%m-%d %H:%M} ET  pos {st['position']:+d}  P&L today ${st['pnl_today_usd']:,.2f}"
                         f"  open ${st['pnl_open_usd']:,.2f}  trades {st['trades']}  {qs}"
                         f"kill switches: {', '.join(tripped) or 'none'}   " if bar != "-" else "\rwaiting for bars")
        sys.stderr.flush()

    return show


def write_session_outputs(out_dir: str, trader, res, params, promo, args) -> Path:
    """``trades.parquet``/``.csv`` (the backtest's columns), ``equity.parquet``, ``stats.json``,
    ``manifest.json``, ``params.toml``; each written atomically."""
    import io

    import pandas as pd

    from research.backtest.stats import compute_stats
    from research.store.files import atomic_write_bytes, atomic_write_text, ensure_dir

    out = ensure_dir(out_dir)
    trades = trader.journal.trades(trader.run_id)  # the whole session, restarts included
    if len(res.trades) == len(trades) and "signal_bar" in res.trades:
        trades = res.trades  # one process ran it all: the backtest's columns, aliases included
    else:  # the backtest's aliases, from the stored record
        bar = pd.Timedelta(trader.bar_ns, "ns")
        trades = trades.assign(signal_time=trades["signal_ts"] + bar, entry_time=trades["entry_ts"],
                               exit_time=trades["exit_ts"])
    buf = io.BytesIO()
    trades.to_parquet(buf, index=False)
    atomic_write_bytes(out / "trades.parquet", buf.getvalue())
    atomic_write_text(out / "trades.csv", trades.to_csv(index=False))
    buf = io.BytesIO()
    res.equity.to_parquet(buf)
    atomic_write_bytes(out / "equity.parquet", buf.getvalue())
    stats: dict[str, Any] = {}
    whole = res.restarts == 0
    if len(res.equity) and whole:
        st = compute_stats(trades, res.equity["equity"], res.equity["position"], params.initial_capital_usd)
        stats = {k: (None if v != v else v) for k, v in st.to_dict().items() if isinstance(v, (int, float))}
    quality = None if trader.quality is None else {**trader.quality.summary(),
                                                   "shadow_trades": len(trader.journal.shadow_trades(trader.run_id))}
    atomic_write_text(out / "stats.json", json.dumps({"run_id": trader.run_id, **stats, "quality": quality},
                                                     indent=1, default=str))
    manifest = {"run_id": trader.run_id, "kind": "paper", "mode": params.mode, "feed": args.feed,
                "broker": args.broker, "unvalidated": promo is None, "promotion_id": promo,
                "params_hash": params.hash(), "ended": res.reason, "records": res.records, "bars": res.bars,
                "restarts": res.restarts, "symbol": trader.cfg.symbol, "quality": quality,
                "trades_file": "real trades only (shadow trades: the journal's shadow_trades table, and the run "
                               "store's snapshots with shadow = true)",
                "equity_covers": "the whole session" if whole else "the bars since the last restart (trades: the "
                                 "whole session; stats.json is left empty: run the session again with --fresh)"}
    atomic_write_text(out / "manifest.json", json.dumps(manifest, indent=1, default=str))
    atomic_write_text(out / "params.toml", params.to_toml())
    return out


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__
