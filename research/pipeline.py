"""From the user's DATA arguments to backtest-ready bar series: expand, load, date-filter, stitch.

Shared by ``navale backtest``, ``navale report`` and ``navale sweep`` so that every command reads
the same files the same way.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy/pandas are imported inside the functions: `navale --help` stays fast
    import numpy as np
    import pandas as pd

SYNTHETIC_BANNER = (
    "SYNTHETIC DATA: these results come from the embedded generated data set, not from the market. "
    "They show the pipeline works; they say nothing about the method's edge."
)


_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")
_DATE_TIME_RE = re.compile(r"\d{4}-\d{2}-\d{2}[T ]\d")


@dataclass
class Series:
    """One bar series to backtest: a single contract, or several stitched into a continuous one."""

    name: str
    frame: pd.DataFrame
    files: list[Path] = field(default_factory=list)
    data_check: dict = field(default_factory=dict)  # research.data.gate.DataCheckSummary.to_manifest()
    symbol: str | None = None  # the instrument the user named (--symbol), when the file names did not

    @property
    def synthetic(self) -> bool:
        return bool(self.frame.attrs.get("synthetic", False))


def load_params(params_file: str | Path | None = None, mode: str | None = None, session: str | None = None):
    """``Params`` as every command builds them: the TOML file (``mode`` overriding its mode) or the
    mode's preset (default ``backtest``), then ``session``."""
    from strategy import Params

    p = Params.from_toml(params_file, mode=mode) if params_file else Params.for_mode(mode or "backtest")
    return p.replace(session=session) if session else p


def parse_date(value: str | None, option: str = "date") -> np.datetime64 | None:
    """A ``YYYY-MM-DD`` trading date as a day; None stays None. Anything else is refused with one line
    naming the option: an empty text (it is not "no filter"), another layout (``01/03/2020`` is ambiguous),
    a time component (the filters work on whole trading dates), an impossible day."""
    import datetime as dt

    import numpy as np

    if value is None:
        return None
    text = str(value).strip()
    if not text:
        raise ValueError(f"{option} is empty: give a date YYYY-MM-DD, or leave the option out")
    if _DATE_RE.fullmatch(text) is None:
        more = (" (a time is not accepted: --from/--to keep or drop whole trading dates)"
                if _DATE_TIME_RE.match(text) else "")
        raise ValueError(f"{option} {value!r} is not a date in the form YYYY-MM-DD{more}")
    try:
        day = dt.date.fromisoformat(text)
    except ValueError as exc:
        raise ValueError(f"{option} {value!r} is not a valid date ({exc})") from None
    return np.datetime64(day, "D")


def parse_date_range(date_from: str | None, date_to: str | None) -> tuple[np.datetime64 | None, np.datetime64 | None]:
    """``--from``/``--to`` as days (`parse_date`), refusing a reversed range and an empty one
    (``--to`` is the first date dropped, so ``--from D --to D`` keeps nothing)."""
    lo, hi = parse_date(date_from, "--from"), parse_date(date_to, "--to")
    if lo is not None and hi is not None:
        if hi < lo:
            raise ValueError(f"--from {date_from} --to {date_to} is reversed: --to must be after --from")
        if hi == lo:
            raise ValueError(f"--from {date_from} --to {date_to} is an empty range: --to is the first date dropped, "
                             f"so it must be after --from (e.g. --to {(lo + 1).astype(object):%Y-%m-%d} for one day)")
    return lo, hi


def date_filter(frame: pd.DataFrame, date_from: str | None, date_to: str | None) -> pd.DataFrame:
    """Keep the bars whose trading date (session id) is in ``[date_from, date_to)``."""
    import numpy as np

    from strategy.market.sessions import session_id

    lo, hi = parse_date_range(date_from, date_to)
    if lo is None and hi is None:
        return frame
    sid = session_id(frame.index)
    keep = np.ones(len(frame), dtype=bool)
    if lo is not None:
        keep &= sid >= lo
    if hi is not None:
        keep &= sid < hi
    out = frame.loc[keep]
    out.attrs = frame.attrs
    return out


def expand(paths: Sequence[str | Path] | None) -> list[Path]:
    """Files named by paths, folders or globs; the embedded synthetic data set when none are given."""
    from research.data import default_dataset, expand_paths

    if paths:
        return expand_paths(list(paths))
    return [default_dataset()]


def load_series(
    paths: Sequence[str | Path] | None,
    *,
    bar: str | None = None,
    date_from: str | None = None,
    date_to: str | None = None,
    series: str = "continuous",
    on_file: Callable[[Path], None] | None = None,
    allow_data_errors: bool = False,
    on_check: Callable[[str], None] | None = None,
    symbol: str | None = None,
) -> list[Series]:
    """Load DATA into the series to backtest.

    Every file is checked as loaded (:class:`research.data.gate.DataGate`): data errors raise a
    one-line :class:`research.data.gate.DataCheckError` unless ``allow_data_errors`` (impossible
    rows are then left out); ``on_check`` receives the one-line summary of errors and warnings.

    Contracts of one product are stitched into one continuous series (``series="continuous"``,
    volume roll, forward-adjusted signals, real contract prices traded) or kept one per contract
    (``series="contracts"``); other files are always one series each. Raises ``ValueError`` when
    nothing is left after the date filter.

    ``symbol`` names the instrument or contract of every file (``load_bars(symbol=)``); without it, a
    file whose name does not start with a known instrument is refused (``DataError``, one line).
    """
    from research.data import DataError, build_continuous, load_bars
    from research.data.gate import DataGate
    from strategy.market.instruments import parse_contract

    if series not in ("continuous", "contracts"):
        raise ValueError(f"series must be 'continuous' or 'contracts', not {series!r}")
    parse_date_range(date_from, date_to)
    files = expand(paths)
    frames: list = []
    kept: list[Path] = []
    gate = DataGate(allow_errors=allow_data_errors)
    for p in files:
        if on_file is not None:
            on_file(p)
        if symbol is not None:
            _require_known_symbol(symbol)
        loaded = load_bars(p, bar=bar, continuous=False, on_error="quarantine", symbol=symbol)
        if loaded.attrs.get("tick_size") is None:
            raise DataError(f"the instrument is unknown: the file name does not start with a known instrument or "
                            f"contract ({_known_roots()}, or a contract such as ESH20); name it with --symbol "
                            f"(e.g. --symbol ES)", path=str(p))
        gate.add(p, loaded)
        f = date_filter(loaded, date_from, date_to)
        if len(f):
            frames.append(f)
            kept.append(p)
    checked = gate.finish()
    if on_check is not None:
        on_check(checked.line())
    if not frames:
        raise ValueError("no bars left after the date filter")
    symbols = [f.attrs.get("symbol") for f in frames]
    contracts = len(frames) > 1 and all(parse_contract(str(s)) for s in symbols)
    roots = sorted({str(f.attrs.get("root")) for f in frames if f.attrs.get("root")})
    if contracts and series == "continuous" and len(roots) > 1:
        raise ValueError(f"the files hold contracts of different products ({', '.join(roots)}): a continuous series "
                         "is one product; load them separately, or pass --series contracts for one backtest per file")
    if contracts and series == "continuous":
        return [Series("continuous", build_continuous(frames), kept, checked.to_manifest(), symbol)]
    return [Series(str(f.attrs.get("symbol")), f, [p], checked.to_manifest(), symbol) for f, p in zip(frames, kept)]


def _known_roots() -> str:
    from strategy.market.instruments import INSTRUMENTS, get_spec

    get_spec("ES")  # loads a NAVALE_INSTRUMENTS table, if any
    return ", ".join(sorted(INSTRUMENTS))


def _require_known_symbol(symbol: str) -> None:
    """``ValueError`` (one line) unless ``symbol`` names an instrument of the table, or a contract of one."""
    from strategy.market.instruments import get_spec

    try:
        get_spec(symbol)
    except KeyError:
        raise ValueError(f"--symbol {symbol!r}: not a known instrument or contract (known: {_known_roots()}, "
                         f"or a contract such as ESH20; more via NAVALE_INSTRUMENTS)") from None


def contract_segments(frame: pd.DataFrame) -> list[tuple[str, int, int]]:
    """``(contract, start, stop)`` row ranges of a continuous frame, one per contract held (roll order)."""
    import numpy as np

    if "contract" not in frame.columns or frame.empty:
        return [(str(frame.attrs.get("symbol", "series")), 0, len(frame))]
    con = frame["contract"].astype(str).to_numpy()
    cut = np.flatnonzero(con[1:] != con[:-1]) + 1
    starts = np.concatenate([[0], cut])
    stops = np.concatenate([cut, [len(con)]])
    return [(con[a], int(a), int(b)) for a, b in zip(starts, stops)]


@dataclass
class StoredBacktest:
    """A backtest with the manifest and run id it is stored under (see :func:`backtest_series`)."""

    run_id: str
    manifest: dict
    result: object  # research.backtest.BacktestResult
    summary: dict  # res.stats() as plain floats (None for NaN), as stored
    stored: bool  # written to the run store

    def stored_run(self):
        """The run as the store takes it (``research.store.StoredRun``)."""
        from research.store import StoredRun

        return StoredRun(self.manifest, self.result.snapshots(), self.summary, self.run_id)


def store_backtests(backtests: Sequence[StoredBacktest], *, fallback_dirs: Sequence[str | Path] = ()) -> list[str]:
    """Write backtests to the run store in one transaction, or save them as pending bundles and raise
    ``research.store.RunsNotStoredError`` (one line: cause, bundles, how to import them later)."""
    from research.store import store_runs

    ids = store_runs([bt.stored_run() for bt in backtests], fallback_dirs=fallback_dirs)
    for bt in backtests:
        bt.stored = True
    return ids


def backtest_series(series: Series, params, *, label: str, date_from: str | None = None, date_to: str | None = None,
                    bar: str | None = None, run_id: str | None = None, store: bool = True,
                    margin_floor: bool = True) -> StoredBacktest:
    """Backtest one series and store the run (manifest + trade snapshots) in the run store
    (:func:`store_backtests`; ``store=False`` leaves that to the caller, e.g. after writing its outputs).

    The run id is the hash of the manifest (params, data files, mode, session, ``label``, dates,
    bar, code commit) unless given, so ``navale backtest`` and ``navale report performance`` on the
    same inputs name, and replace, the same run. ``margin_floor=False`` (the ML data set) trades on
    whatever the equity (see `research.backtest.run`); it is part of the id then.
    """
    import math

    from research.backtest import run as run_backtest
    from research.store import build_manifest, make_run_id

    extra = {"series": label, "from": date_from, "to": date_to, "bar": bar, "synthetic": series.synthetic}
    if not margin_floor:  # signal outcomes, not an account: another run than `navale backtest`'s
        extra["margin_floor"] = False
    if series.data_check:
        extra["data_check"] = series.data_check
    if series.symbol:  # only when named: the ids of runs whose files name their instrument stay as they were
        extra["symbol"] = series.symbol
    manifest = build_manifest(params=params.to_dict(), params_hash=params.hash(), data_files=series.files,
                              mode=params.mode, session=params.session, extra=extra)
    rid = run_id or make_run_id(manifest)
    res = run_backtest(series.frame, params, run_id=rid, margin_floor=margin_floor)
    # the trading dates covered (not part of the id: they follow from the data and params): a tracker built
    # from the stored snapshots alone counts the sessions without a trade as flat days, as the backtest does
    from research.backtest.stats import daily_equity

    manifest["sessions"] = [d.strftime("%Y-%m-%d") for d in daily_equity(res.equity).index]
    manifest["margin"] = {"floor": margin_floor, "per_contract_usd": res.meta["margin_per_contract"],
                          "usd": res.meta["margin_usd"], "trading_stopped": res.meta["trading_stopped"]}
    summary = {k: (None if not math.isfinite(float(v)) else float(v)) for k, v in res.stats().items()}  # JSON: no NaN/inf
    bt = StoredBacktest(run_id=rid, manifest=manifest, result=res, summary=summary, stored=False)
    if store:
        store_backtests([bt])
    return bt
