"""The ``navale`` command line. Heavy libraries are imported inside the commands, so
``navale --help`` stays fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .sweep_cmd import default_grid_size

__all__ = ["main", "build_parser"]

EPILOG = f"""examples:
  navale data check                                  # the embedded synthetic data set
  navale data check ../shared/data/es-5m/*.gz        # every contract, one report each
  navale data info ../shared/data/ticks/ESM23_sample.scid --bar 1min
  navale data synth --days 5 --out data/synthetic
  navale backtest                                    # backtest on the embedded synthetic data
  navale backtest ../shared/data/es-5m/*.gz          # 2015-2022, stitched, per contract and year
  navale report performance                          # HTML performance report on the embedded data
  navale report performance ../shared/data/es-5m/ESH20*.gz
  navale sweep ../shared/data/es-5m/*.gz             # default grid ({default_grid_size():,} combinations) x 32 contracts, local Dask
  navale report sweep SWEEP_ID                       # walk-forward, PBO, DSR, stability maps
  navale promote --run SWEEP_ID                      # paper-trading gate: OOS Sharpe, PBO, DSR
  navale ml validate ../shared/data/es-5m/*.gz       # signal-quality model: purged CV, OOS, permutation test
  navale report ml ../shared/data/es-5m/*.gz         # the ML-validation report (HTML)
  navale runs                                        # stored runs; `navale runs export FILE` for ML
  navale lab                                         # JupyterLab in notebooks/
  navale paper --unvalidated                         # paper trading on the synthetic feed (300x real time)
  navale paper --from-promotion ID --feed ib --broker ib   # an IB paper account (TWS / IB Gateway)
  navale doctor ib                                   # connectivity, account, contract, market data, permissions
  navale status                                      # the paper trader: position, P&L today, feed, kill switches
  navale metrics                                     # the same as Prometheus metrics (navale_*)
  navale dashboard                                   # live monitoring page on 127.0.0.1 (token), emergency stop
  navale stop                                        # emergency stop: cancel, flatten, halt until --clear
  navale alerts                                      # the alert history; --ack ID; `navale alerts test` tries every channel
  navale collect --feed synthetic --hours 1          # record ticks, bars, events into durable segments
  navale backup run --to s3://bucket/navale          # back up the collected data and the run store; verify, restore

exit status: 0 done, 1 a verdict (data errors found, promotion refused, report failed), 2 bad input,
3 the store could not take the run (outputs written, run saved as pending), 4 a file or folder could
not be written or read (the error line names it and the cause). With --json, stdout holds the JSON alone.
"""


class _Formatter(argparse.RawDescriptionHelpFormatter):
    pass


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="navale",
        description="navale: Battle Navale order-flow research for CME index futures.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    sub = p.add_subparsers(dest="group", metavar="COMMAND")
    data = sub.add_parser(
        "data",
        help="load, inspect, check and generate market data",
        description="Market data: check quality, show what a file holds, generate the synthetic default.",
        epilog=EPILOG,
        formatter_class=_Formatter,
    )
    dsub = data.add_subparsers(dest="command", metavar="SUBCOMMAND")

    def load_opts(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("paths", nargs="*", metavar="PATH", help="data files, folders or globs (default: the embedded synthetic data set)")
        sp.add_argument("--bar", help="bar size for tick sources, or to resample bars into a whole multiple of theirs: 1min, 15min, volume:1000, tick:500")
        sp.add_argument("--tz", help="time zone of naive source times (Sierra exports: America/Chicago)")
        sp.add_argument("--session", choices=("all", "rth", "globex"), default="all", help="keep only these bars (default: all)")
        sp.add_argument("--symbol", help="contract or product, when the file name does not say")

    c = dsub.add_parser(
        "check",
        help="data-quality report; exit code 1 when errors are found",
        description=(
            "Check bar data for out-of-order or duplicated times, inconsistent OHLC, off-tick prices, "
            "negative volumes, bid+ask != volume, gaps inside sessions, bars in exchange halts, stale "
            "(repeated) bars and spikes. Each file is checked on its own, exactly as stored."
        ),
        epilog="examples:\n  navale data check\n  navale data check ../shared/data/es-5m/*.gz --json reports/check.json\n",
        formatter_class=_Formatter,
    )
    load_opts(c)
    c.add_argument("--json", metavar="FILE", help="also write the machine-readable result here ('-' for stdout)")
    c.add_argument("--show", type=int, default=5, metavar="N", help="findings listed per check and file (default 5)")
    c.add_argument("--strict-warnings", action="store_true", help="exit 1 on warnings too")

    i = dsub.add_parser(
        "info",
        help="what a file holds: format, symbol, span, bars, order-flow mode",
        epilog="example:\n  navale data info ../shared/data/ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst --bar 5min\n",
        formatter_class=_Formatter,
    )
    load_opts(i)

    s = dsub.add_parser(
        "synth",
        help="write the seeded synthetic ES data set as Sierra .scid",
        description="Generate synthetic ES trades (CME sessions, RTH/Globex profile, volatility clustering, flow-driven price) as a .scid file.",
        epilog="example:\n  navale data synth --days 20 --seed 7 --out data/synthetic\n",
        formatter_class=_Formatter,
    )
    s.add_argument("--out", default=None, help="output folder (default: $NAVALE_DATA_DIR/synthetic or ./data/synthetic)")
    s.add_argument("--days", type=int, default=None, help="trading days (weekdays), 1 to 65 (default 10)")
    s.add_argument("--seed", type=int, default=None, help="random seed, 0 to 4294967295 (default 20240304)")
    s.add_argument("--start", default=None, help="first trading date, YYYY-MM-DD, 1990-01-01 to 2099-12-31 (default 2024-03-04)")

    v = dsub.add_parser(
        "verify",
        help="re-read the collected segments and partitions and check them; exit code 1 on any error",
        description=(
            "Check every segment and Parquet partition of a collection directory: frame checksums, headers, "
            "SEAL records and manifests (sha256, bytes, counts), the partitions against their manifests and "
            "(by default) their rows against the segments, that consecutive segments join, and that no tick seq "
            "or bar time repeats or is missing. Read-only, no lock: it can run while `navale collect` runs "
            "(the open segment's partial last record is reported, not an error). Nothing is ever repaired."
        ),
        epilog="examples:\n  navale data verify\n  navale data verify data/collect/segments/ES\n"
               "  navale data verify --dir /mnt/collect --json report.json\n",
        formatter_class=_Formatter,
    )
    v.add_argument("path", nargs="?", default=None, metavar="PATH",
                   help="a collection directory, segments/SYMBOL or one DATE.seg (default: --dir)")
    v.add_argument("--dir", default=None, help="the collection directory (default $NAVALE_COLLECT_DIR or data/collect)")
    v.add_argument("--json", nargs="?", const="-", default=None, metavar="FILE",
                   help="also write the result as JSON to FILE (or stdout with no FILE or '-')")
    v.add_argument("--no-deep", dest="deep", action="store_false",
                   help="skip comparing each partition's rows with its segment's (sha256 and row counts are still "
                        "checked; the deep comparison costs about one more decode of every segment)")

    from . import (
        alerts_cmd,
        backtest_cmd,
        backup_cmd,
        collect_cmd,
        dashboard_cmd,
        doctor_cmd,
        lab_cmd,
        metrics_cmd,
        ml_cmd,
        paper_cmd,
        promote_cmd,
        report_cmd,
        runs_cmd,
        status_cmd,
        stop_cmd,
        sweep_cmd,
    )

    for module in (backtest_cmd, report_cmd, sweep_cmd, promote_cmd, ml_cmd, runs_cmd, lab_cmd, paper_cmd, status_cmd, stop_cmd,
                   collect_cmd, backup_cmd, alerts_cmd, metrics_cmd, dashboard_cmd, doctor_cmd):
        module.add_parser(sub, _Formatter)
    return p


# command group -> module with run(args); imported on use so `navale --help` stays fast
_COMMANDS = {
    "backtest": "backtest_cmd",
    "report": "report_cmd",
    "sweep": "sweep_cmd",
    "promote": "promote_cmd",
    "ml": "ml_cmd",
    "runs": "runs_cmd",
    "lab": "lab_cmd",
    "paper": "paper_cmd",
    "live": "paper_cmd",
    "status": "status_cmd",
    "stop": "stop_cmd",
    "collect": "collect_cmd",
    "backup": "backup_cmd",
    "alerts": "alerts_cmd",
    "metrics": "metrics_cmd",
    "dashboard": "dashboard_cmd",
    "doctor": "doctor_cmd",
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; its exit status. An OS error no command handled (an output folder on a read-only
    or full disk, a file where a folder is wanted) becomes one ``error:`` line naming the path and the
    cause, exit status 4 (``common.WRITE_FAILED``)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.group is None:
        parser.print_help()
        return 0
    if args.group not in ("data", "lab", "status", "stop", "collect", "alerts", "metrics", "dashboard"):  # a bad $NAVALE_STORE_TIMEOUT fails before any work, not after it
        from research.store.runs import StoreError, lock_timeout

        try:
            lock_timeout()
        except StoreError as exc:
            from rich.markup import escape

            from .common import console

            console(stderr=True).print(f"[bold red]error:[/] {escape(str(exc))}")
            return 2
    try:
        return _dispatch(parser, args)
    except OSError as exc:
        from rich.markup import escape

        from .common import WRITE_FAILED, console, os_error_line

        console(stderr=bool(getattr(args, "json", None))).print(f"[bold red]error:[/] {escape(os_error_line(exc))}")
        return WRITE_FAILED


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.group == "data":
        if args.command is None:
            parser.parse_args(["data", "--help"])
        from . import data_cmd

        return data_cmd.run(args)
    if args.group in _COMMANDS:
        import importlib

        return importlib.import_module(f".{_COMMANDS[args.group]}", __name__).run(args)
    parser.error(f"unknown command {args.group}")  # pragma: no cover
    return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
