"""`SweepResult`: the grid, per-combination summary, per-session P&L and trade-count matrices, data
sets and metadata of a sweep; Parquet + JSON on disk.

Daily ratios follow `research.backtest.stats`: daily return = session P&L / initial capital,
Sharpe = mean / std (ddof 1) x sqrt(252), Sortino = mean / sqrt(mean(min(r, 0)^2)) x sqrt(252).
The drawdown is measured on the stitched per-session P&L (closed sessions), not intrabar.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.store.files import atomic_write_bytes, atomic_write_text
from strategy.params import Params

__all__ = ["SweepResult", "SUMMARY_COLUMNS", "summarize", "profit_factor_text"]

TRADING_DAYS = 252
SUMMARY_COLUMNS = ("trades", "wins", "win_rate", "net_pnl_usd", "gross_profit_usd", "gross_loss_usd", "profit_factor",
                   "expectancy_usd", "expectancy_r", "commissions_usd", "sharpe", "sortino", "max_drawdown_usd",
                   "sessions", "trades_per_day")
_FILES = ("grid", "summary", "daily_pnl", "segments")


def profit_factor_text(pf: float | None) -> str:
    """A profit factor for a table: ``1.23``, "no losses" (gross loss 0, stored as inf) or "-" (no trades)."""
    if pf is None or pf != pf:
        return "-"
    return "no losses" if pf == np.inf else f"{pf:.2f}"


def summarize(acc: np.ndarray, daily: np.ndarray, capital: np.ndarray) -> pd.DataFrame:
    """Summary columns from the accumulators (`fused.ACC_COLUMNS`, combos x 7) and the daily P&L
    (sessions x combos); `capital` per combination."""
    from .fused import (
        A_COMMISSION,
        A_GROSS_LOSS,
        A_GROSS_PROFIT,
        A_NET,
        A_SUM_R,
        A_TRADES,
        A_WINS,
    )

    n_sess, nc = daily.shape
    trades = acc[:, A_TRADES]
    gp, gl = acc[:, A_GROSS_PROFIT], acc[:, A_GROSS_LOSS]
    with np.errstate(divide="ignore", invalid="ignore"):
        has = trades > 0
        win_rate = np.where(has, acc[:, A_WINS] / trades, np.nan)
        pf = np.where(gl > 0, gp / gl, np.where(gp > 0, np.inf, np.nan))
        exp_usd = np.where(has, acc[:, A_NET] / trades, np.nan)
        exp_r = np.where(has, acc[:, A_SUM_R] / trades, np.nan)
        r = daily / capital[None, :]
        ann = np.sqrt(TRADING_DAYS)
        if n_sess >= 2:
            mean = r.mean(axis=0)
            sd = r.std(axis=0, ddof=1)
            down = np.sqrt(np.mean(np.minimum(r, 0.0) ** 2, axis=0))
            sharpe = np.where(sd > 0, mean / sd * ann, np.nan)
            sortino = np.where(down > 0, mean / down * ann, np.nan)
        else:
            sharpe = sortino = np.full(nc, np.nan)
    eq = np.vstack([np.zeros((1, nc)), np.cumsum(daily, axis=0)])
    max_dd = (np.maximum.accumulate(eq, axis=0) - eq).max(axis=0) if nc else np.zeros(0)
    return pd.DataFrame({
        "trades": trades.astype(np.int64),
        "wins": acc[:, A_WINS].astype(np.int64),
        "win_rate": win_rate,
        "net_pnl_usd": acc[:, A_NET],
        "gross_profit_usd": gp,
        "gross_loss_usd": gl,
        "profit_factor": pf,
        "expectancy_usd": exp_usd,
        "expectancy_r": exp_r,
        "commissions_usd": acc[:, A_COMMISSION],
        "sharpe": sharpe,
        "sortino": sortino,
        "max_drawdown_usd": max_dd,
        "sessions": np.full(nc, n_sess, np.int64),
        "trades_per_day": trades / max(n_sess, 1),
    }, index=pd.RangeIndex(nc, name="combo"))


@dataclass
class SweepResult:
    """A finished sweep. Index ``combo`` (0..N-1, grid order) everywhere.

    - ``grid``: one column per grid parameter, plus ``params_hash`` and ``signal_hash``;
    - ``summary``: `SUMMARY_COLUMNS` per combination;
    - ``daily_pnl``: $ P&L per session (rows: DatetimeIndex "session", tz-naive trading dates; columns:
      combo ids), 0.0 on a session without a trade; sessions of all data sets, summed by date;
    - ``segments``: one row per data set (name, first_session, last_session, bars);
    - ``meta``: sweep_id, base_params, capital, n_trials, data files + sha256, created, elapsed_s,
      engine, code_version, and the run's settings;
    - ``daily_trades``: trades closed per session (int32; same index and columns as ``daily_pnl``;
      trades are booked, like their P&L, on the exit bar's session). ``None`` for a sweep saved
      before trade counts existed: consumers then fall back to sessions with a non-zero P&L.
    """

    grid: pd.DataFrame
    summary: pd.DataFrame
    daily_pnl: pd.DataFrame
    segments: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    daily_trades: pd.DataFrame | None = None

    @property
    def base(self) -> Params:
        """The base parameters the grid's values replace."""
        return Params.from_dict(self.meta["base_params"])

    @property
    def param_names(self) -> list[str]:
        return [c for c in self.grid.columns if c not in ("params_hash", "signal_hash")]

    def params(self, combo: int) -> Params:
        """The full `Params` of combination `combo`."""
        c = int(combo)
        values = {k: _native(self.grid.at[c, k]) for k in self.param_names}  # per column: keeps each dtype
        return self.base.replace(**values)

    def to_frame(self) -> pd.DataFrame:
        """Grid joined with the summary (one row per combination)."""
        return self.grid.join(self.summary)

    def top(self, n: int = 10, by: str = "sharpe") -> pd.DataFrame:
        """The `n` best combinations by `by` (descending, NaN last)."""
        return self.to_frame().sort_values(by, ascending=False, na_position="last").head(n)

    def backtest(self, combo: int, series: Any):
        """`research.backtest.run` of combination `combo` on `series` (a `research.pipeline.Series` or
        a bar frame): trades, equity, snapshots, the vectorbt portfolio."""
        from research.backtest import run

        frame = getattr(series, "frame", series)
        return run(frame, self.params(combo), run_id=f"{self.meta.get('sweep_id', 'sweep')}-{int(combo)}")

    # ------------------------------------------------------------------------------------ files
    def save(self, directory: str | Path) -> Path:
        """``grid/summary/daily_pnl/segments.parquet`` (+ ``daily_trades.parquet`` when present) and
        ``meta.json`` in `directory`, each written atomically."""
        d = Path(directory)
        d.mkdir(parents=True, exist_ok=True)
        daily = self.daily_pnl.copy()
        daily.columns = [str(c) for c in daily.columns]  # Parquet column names are strings
        grid = self.grid.copy()
        for c in grid.columns:  # tuples (quality_weights) as lists
            if grid[c].map(lambda v: isinstance(v, tuple)).any():
                grid[c] = grid[c].map(list)
        frames = [("grid", grid), ("summary", self.summary), ("daily_pnl", daily), ("segments", self.segments)]
        if self.daily_trades is not None:
            trades = self.daily_trades.copy()
            trades.columns = [str(c) for c in trades.columns]
            frames.append(("daily_trades", trades))
        elif (d / "daily_trades.parquet").exists():  # an earlier save's counts would not match this P&L
            (d / "daily_trades.parquet").unlink()
        for name, frame in frames:
            buf = io.BytesIO()
            frame.to_parquet(buf)
            atomic_write_bytes(d / f"{name}.parquet", buf.getvalue())
        atomic_write_text(d / "meta.json", json.dumps(self.meta, indent=1, default=str))
        return d

    @classmethod
    def load(cls, directory: str | Path) -> SweepResult:
        """Read a folder written by `save` (``daily_trades`` is None when the folder has no
        ``daily_trades.parquet``: a sweep saved before trade counts existed)."""
        d = Path(directory)
        missing = [f"{n}.parquet" for n in _FILES if not (d / f"{n}.parquet").exists()]
        if missing or not (d / "meta.json").exists():
            raise FileNotFoundError(f"{d} is not a saved sweep (missing {missing or ['meta.json']})")
        grid, summary, daily, segments = (pd.read_parquet(d / f"{n}.parquet") for n in _FILES)
        daily.columns = pd.Index([int(c) for c in daily.columns], dtype=np.int64, name="combo")
        for c in grid.columns:
            if grid[c].dtype == object and len(grid) and isinstance(grid[c].iloc[0], (list, np.ndarray)):
                grid[c] = grid[c].map(lambda v: tuple(float(x) for x in v))
        trades = None
        if (d / "daily_trades.parquet").exists():
            trades = pd.read_parquet(d / "daily_trades.parquet")
            trades.columns = pd.Index([int(c) for c in trades.columns], dtype=np.int64, name="combo")
        meta = json.loads((d / "meta.json").read_text(encoding="utf-8"))
        return cls(grid=grid, summary=summary, daily_pnl=daily, segments=segments, meta=meta, daily_trades=trades)

    def __repr__(self) -> str:
        m = self.meta
        return (f"SweepResult({m.get('sweep_id')}: {len(self.grid)} combos x {len(self.segments)} data sets, "
                f"{len(self.daily_pnl)} sessions, engine={m.get('engine')}, {m.get('elapsed_s', 0):.1f} s)")


def _native(v: Any) -> Any:
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, np.ndarray)):
        return tuple(_native(x) for x in v)
    return v
