"""The ``explore`` notebook's context: one trading session's bars, signals and trades."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ExploreContext", "explore_context", "SIGNAL_TABLE_COLUMNS", "signal_table"]



@dataclass
class ExploreContext:
    """One session of bars with the signals (computed over the whole series, so warm-up and bases
    carried from earlier days are right) and the backtest's trades."""

    bars: pd.DataFrame
    signals: pd.DataFrame
    trades: pd.DataFrame
    day: Any
    params: Any
    synthetic: bool
    series: str
    days: list[Any]


def explore_context(data: Sequence[str | Path] | str | None = None, date: str | None = None,
                    params_file: str | Path | None = None, mode: str | None = None, session: str | None = None,
                    bar: str | None = None) -> ExploreContext:
    """Load DATA (default: the embedded synthetic set), compute signals and trades, and select the
    trading date ``date`` (default: the last one with in-session bars)."""
    import numpy as np
    import pandas as pd

    from research.backtest import run as run_backtest
    from research.pipeline import load_params, load_series, parse_date
    from strategy.market.sessions import session_id

    paths = [data] if isinstance(data, (str, Path)) else list(data or [])
    params = load_params(params_file, mode, session)
    s = load_series(paths or None, bar=bar)[0]
    res = run_backtest(s.frame, params)
    sig = res.signals
    sid = session_id(s.frame.index)
    days = sorted(set(sid[sig["in_session"].to_numpy()]))
    if not days:
        raise ValueError("no bars inside the session filter")
    day = parse_date(date, "date") if date else days[-1]
    if day not in days:
        raise ValueError(f"no in-session bars on {day}; trading dates: {days[0]} .. {days[-1]}")
    keep = sid == np.datetime64(day, "D")
    tr = res.trades
    on_day = tr.loc[(session_id(pd.DatetimeIndex(tr["entry_ts"])) == day)] if len(tr) else tr
    return ExploreContext(bars=s.frame.loc[keep], signals=sig.loc[keep], trades=on_day, day=day, params=params,
                          synthetic=s.synthetic, series=s.name, days=days)


SIGNAL_TABLE_COLUMNS = ("delta", "ball", "battle", "base_active", "base_type", "ref_side", "ref_lo", "ref_hi", "q_ref",
                        "bull_intact", "bear_intact", "bull_violation", "bear_violation", "tc", "bq", "pattern",
                        "bn_score", "status", "long_candidate", "short_candidate", "long_entry", "short_entry")


def signal_table(ctx: ExploreContext, columns: Sequence[str] = SIGNAL_TABLE_COLUMNS) -> pd.DataFrame:
    """The session's in-session rows: OHLC and the signal columns that explain a decision, New York time."""
    from research.reports.plots import to_et

    s = ctx.signals.loc[ctx.signals["in_session"]]
    out = ctx.bars.loc[s.index, ["open", "high", "low", "close", "volume"]].join(s[list(columns)])
    out.index = to_et(out.index)
    out.index.name = "bar start (ET)"
    return out
