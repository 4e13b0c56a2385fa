"""Performance analytics of one run: metrics, drawdown periods, monthly table, P&L attribution.

:class:`PerformanceTracker` works the same on a backtest (:meth:`PerformanceTracker.from_backtest`,
with the per-bar equity and position) and on trade snapshots read from the run store
(:meth:`PerformanceTracker.from_store`, trades only), so paper and live runs get the same report.

Conventions (``docs/performance.md`` has every definition):

- daily P&L is per trading session (``strategy.market.sessions.session_id``); daily returns are daily
  P&L / initial capital (fixed-size futures do not compound, as in ``research.backtest.stats``);
- annualisation uses ``periods_per_year`` (252) trading sessions; annual return is the mean daily
  return x 252, not a compounded growth rate;
- Sharpe and Sortino are vectorbt's / empyrical's definitions on those daily returns (risk-free
  rate: annual, ``risk_free / 252`` per session); Calmar is annual return / (max drawdown of the
  session-close equity / capital), all non-compounded;
- PSR / DSR (``research.validation.sharpe``) are on daily excess returns against a zero Sharpe ratio.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.backtest.stats import TRADING_DAYS, daily_equity
from research.validation.sharpe import (
    deflated_sharpe_ratio,
    probabilistic_sharpe_ratio,
    sharpe_ratio,
)
from strategy.exits import EXIT_REASONS
from strategy.market.sessions import RTH_TZ, session_frame, session_id

__all__ = ["PerformanceTracker", "ATTRIBUTION_KEYS", "PHASES", "SESSION_MINUTES", "METRIC_LABELS"]

NAN = float("nan")
ONE_NS = pd.Timedelta(1, "ns")

ATTRIBUTION_KEYS: tuple[str, ...] = (
    "hour", "weekday", "phase", "status", "base_type", "base_width", "pattern", "order_flow",
    "exit_reason", "month", "year", "contract", "side",
)

# session phases of the decision time (signal bar close): METHOD.md's, as strategy.market.sessions.session_frame names them
PHASES: tuple[str, ...] = ("asia", "premarket", "london", "ny_open", "lunch", "afternoon", "after_hours")

# scheduled minutes of one session by the snapshot `session` filter (exposure without positions)
SESSION_MINUTES = {"rth": 390, "globex": 23 * 60 - 390, "all": 23 * 60}

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
STATUSES = ("vikings_winning", "defenders_winning", "contested", "balanced")
WIDTH_BINS = ((4.0, "<=4"), (8.0, "4-8"), (16.0, "8-16"), (math.inf, ">16"))  # base width, ticks

METRIC_LABELS: dict[str, tuple[str, str]] = {  # key -> (label, format kind)
    "net_pnl_usd": ("Net P&L", "usd"),
    "gross_pnl_usd": ("Gross P&L (before commissions)", "usd"),
    "commissions_usd": ("Commissions", "usd"),
    "trades": ("Trades", "int"),
    "win_rate": ("Win rate", "pct"),
    "profit_factor": ("Profit factor", "ratio"),
    "expectancy_usd": ("Expectancy ($/trade)", "usd"),
    "expectancy_r": ("Expectancy (R/trade)", "r"),
    "avg_win_usd": ("Average win", "usd"),
    "avg_loss_usd": ("Average loss", "usd"),
    "avg_win_r": ("Average win (R)", "r"),
    "avg_loss_r": ("Average loss (R)", "r"),
    "largest_win_usd": ("Largest win", "usd"),
    "largest_loss_usd": ("Largest loss", "usd"),
    "max_consecutive_wins": ("Max consecutive wins", "int"),
    "max_consecutive_losses": ("Max consecutive losses", "int"),
    "exposure": ("Exposure (time in market)", "pct"),
    "avg_holding_minutes": ("Average holding time", "minutes"),
    "avg_bars_held": ("Average bars held", "float"),
    "sharpe": ("Sharpe ratio (annualised)", "ratio"),
    "sortino": ("Sortino ratio (annualised)", "ratio"),
    "calmar": ("Calmar ratio", "ratio"),
    "annual_return": ("Annual return (mean daily x 252)", "pct"),
    "annual_volatility": ("Annual volatility", "pct"),
    "max_drawdown_usd": ("Max drawdown", "usd"),
    "max_drawdown_pct": ("Max drawdown (% of peak)", "pct"),
    "psr": ("Probabilistic Sharpe ratio (vs 0)", "prob"),
    "dsr": ("Deflated Sharpe ratio", "prob"),
    "sessions": ("Sessions", "int"),
    "trades_per_day": ("Trades per session", "float"),
    "final_equity_usd": ("Final equity", "usd"),
    "first_session": ("First session", "date"),
    "last_session": ("Last session", "date"),
}


class PerformanceTracker:
    """Metrics, drawdowns, monthly table and attribution of one run's trades.

    ``trades``: one row per closed trade with at least ``pnl_usd`` and ``exit_ts`` (or ``exit_time``);
    the other snapshot fields (``docs/snapshots.md``) enable more metrics and attribution keys.
    ``equity``: $ account value per in-session bar (index: bar start, tz-aware), for mark-to-market
    daily P&L and intraday drawdowns; ``position``: signed contracts per bar, for exposure.
    ``n_trials`` / ``sr_variance``: number of configurations tried and the variance of their *daily*
    (per-session, not annualised) Sharpe ratios, for the DSR.
    ``sessions``: the trading dates the run covered, for daily P&L from trades alone (sessions without a
    closed trade count as 0 in the ratios); without it, weekdays from the first to the last exit session
    (exchange holidays then count as flat days: a small bias, said in ``meta["calendar"]``).
    """

    def __init__(self, trades: pd.DataFrame, equity: pd.Series | None = None, position: pd.Series | None = None, *,
                 capital: float = 100_000.0, risk_free: float = 0.0, periods_per_year: int = TRADING_DAYS,
                 n_trials: int = 1, sr_variance: float | None = None, stop_ticks: float | None = None,
                 sessions: Any = None, meta: dict | None = None) -> None:
        if capital <= 0:
            raise ValueError(f"capital must be > 0, not {capital}")
        if n_trials < 1:
            raise ValueError(f"n_trials must be >= 1, not {n_trials}")
        if sr_variance is not None and not sr_variance >= 0:
            raise ValueError(f"sr_variance must be >= 0, not {sr_variance}")
        self.trades = _normalise_trades(trades)
        self.equity = _tz_series(equity, "equity")
        self.position = _tz_series(position, "position")
        self.capital = float(capital)
        self.risk_free = float(risk_free)
        self.periods_per_year = int(periods_per_year)
        self.n_trials = int(n_trials)
        self.sr_variance = sr_variance
        self.stop_ticks = stop_ticks
        self.sessions = None if sessions is None else _session_dates(sessions)
        self.meta = dict(meta or {})

    # ------------------------------------------------------------------ constructors
    @classmethod
    def from_backtest(cls, result, **kw: Any) -> PerformanceTracker:
        """From a :class:`research.backtest.BacktestResult` (trades, per-bar equity and position);
        capital and stop from its params unless given."""
        kw.setdefault("capital", result.params.initial_capital_usd)
        kw.setdefault("stop_ticks", result.params.stop_ticks)
        kw.setdefault("meta", {**result.meta, "symbol": result.symbol, "params_hash": result.params.hash()})
        return cls(result.trades, result.equity, result.position, **kw)

    @classmethod
    def from_store(cls, run_id: str, store=None, **kw: Any) -> PerformanceTracker:
        """From the trade snapshots of ``run_id`` in a run store (a ``RunStore``, a store path, or None for
        the default store, opened read-only). Capital and stop from the manifest params when present.
        Trades only: daily P&L by exit session, exposure from holding times."""
        from research.store import RunStore

        if isinstance(store, RunStore):
            snaps, manifest = store.snapshots(run_id), store.manifest(run_id)
        else:
            with RunStore(Path(store) if store is not None else None, read_only=True) as s:
                snaps, manifest = s.snapshots(run_id), s.manifest(run_id)
        params = manifest.get("params") or {}
        if params.get("initial_capital_usd") is not None:
            kw.setdefault("capital", float(params["initial_capital_usd"]))
        if params.get("stop_ticks") is not None:
            kw.setdefault("stop_ticks", float(params["stop_ticks"]))
        if manifest.get("sessions"):
            kw.setdefault("sessions", manifest["sessions"])
        meta = {k: manifest.get(k) for k in ("run_id", "mode", "session", "params_hash", "extra", "git_commit")}
        kw.setdefault("meta", {**meta, "run_id": run_id})
        return cls(snaps, **kw)

    @classmethod
    def from_journal(cls, journal: Any, run_id: str | None = None, **kw: Any) -> PerformanceTracker:
        """From a paper session's journal, running or finished: an open ``live.journal.Journal`` (read-only;
        research/ does not import live/, so the caller opens it), or anything with its ``trades(run_id)``
        and ``heartbeats()``. Its closed trades, and the equity and position of each bar from the trader's
        heartbeats (one per bar close) when the journal still holds them all (the oldest are pruned past
        ``live.journal.HEARTBEATS_KEPT``: then trades only, said in ``meta["equity"]``). ``run_id``: that
        run's trades and heartbeats (default: the last heartbeat's run). Capital: the first bar's equity
        (no trade can be open at the first bar close) unless given."""
        beats = journal.heartbeats()
        if run_id is None:
            run_id = next((b["status"].get("run_id") for b in reversed(beats) if b["status"].get("run_id")), None)
        trades = journal.trades(run_id)
        complete = bool(beats) and beats[0]["id"] == 1
        rows = {}  # bar start -> (equity, position): the last heartbeat of each bar
        for b in beats:
            st = b["status"]
            if st.get("run_id") == run_id and st.get("in_session") and st.get("equity_usd") is not None:
                rows[int(st["bar_ts_ns"])] = (float(st["equity_usd"]), int(st.get("position") or 0))
        meta = {"run_id": run_id, "mode": "paper", "journal": str(getattr(journal, "path", ""))}
        if complete and rows:
            idx = pd.DatetimeIndex(pd.to_datetime(list(rows), unit="ns", utc=True))
            equity = pd.Series([v[0] for v in rows.values()], index=idx).sort_index()
            position = pd.Series([v[1] for v in rows.values()], index=idx).sort_index()
            kw.setdefault("capital", float(equity.iloc[0]))
            meta["equity"] = "per bar, from the trader's heartbeats"
        else:
            equity = position = None
            meta["equity"] = "trades only: " + ("no in-session bar heartbeat" if not rows else "the oldest heartbeats were pruned")
        kw.setdefault("meta", meta)
        return cls(trades, equity, position, **kw)

    # ------------------------------------------------------------------ series
    @cached_property
    def _exit_session(self) -> pd.DatetimeIndex:
        """Trading date of each trade's exit: the session of its last held instant (exit - 1 ns)."""
        return _sessions(pd.DatetimeIndex(self.trades["exit_ts"]) - ONE_NS)

    def daily_pnl(self) -> pd.Series:
        """$ P&L per trading session (index: session date, ``DatetimeIndex`` named "session").

        From the equity curve when given (mark-to-market, every session with bars, flat ones at 0),
        else the trades' P&L summed by exit session over the run's calendar (``sessions``; flat ones at 0).
        """
        return self._daily.copy()

    @cached_property
    def _daily(self) -> pd.Series:
        if self.equity is not None and len(self.equity):
            daily = daily_equity(self.equity)
            pnl = daily.diff()
            pnl.iloc[0] = daily.iloc[0] - self.capital
        else:
            pnl = self.trades["pnl_usd"].groupby(self._exit_session).sum()
            if self.sessions is not None:
                calendar = self.sessions.union(pnl.index)
                self.meta.setdefault("calendar", "sessions of the run")
                outside = pnl.index.difference(self.sessions)
                if len(outside):  # trades exiting on dates the calendar lacks: say so rather than hide it
                    self.meta["calendar_mismatch"] = [d.strftime("%Y-%m-%d") for d in outside]
            elif len(pnl):
                calendar = pd.bdate_range(pnl.index.min(), pnl.index.max())
                self.meta.setdefault("calendar", "weekdays between the first and last exit session (no session list)")
            else:
                calendar = pnl.index
            pnl = pnl.reindex(calendar, fill_value=0.0)
        pnl = pnl.astype(np.float64)
        pnl.index = pd.DatetimeIndex(pnl.index, name="session")
        return pnl.rename("pnl_usd").sort_index()

    def daily_returns(self) -> pd.Series:
        """Daily P&L / initial capital (the fixed-size futures convention of ``research.backtest.stats``)."""
        return (self._daily / self.capital).rename("return")

    def equity_curve(self) -> pd.Series:
        """$ account value: per bar when the equity was given, else capital + cumulative P&L at each trade exit."""
        return self._curve.copy()

    @cached_property
    def _curve(self) -> pd.Series:
        if self.equity is not None:
            return self.equity.astype(np.float64).rename("equity")
        idx = pd.DatetimeIndex(self.trades["exit_ts"], name="time")
        return pd.Series(self.capital + self.trades["pnl_usd"].cumsum().to_numpy(), index=idx, name="equity")

    def underwater(self) -> pd.DataFrame:
        """Per equity point: ``drawdown_usd`` (value - running peak) and ``drawdown_pct`` (of the peak), both <= 0.
        The running peak starts at the initial capital."""
        eq = self._curve.to_numpy()
        peak = _running_peak(eq, self.capital)
        return pd.DataFrame({"drawdown_usd": eq - peak, "drawdown_pct": (eq - peak) / peak}, index=self._curve.index)

    def drawdowns(self, top: int | None = None) -> pd.DataFrame:
        """Every drawdown period of the equity curve, deepest first (``top``: the first rows only).

        A period starts at the last peak (the first point if the capital itself was the peak), reaches
        its trough, and recovers at the first point back at or above the peak (NaT and
        ``recovered=False`` if still open). ``depth_usd`` and ``depth_pct`` (of the peak) are positive;
        ``duration`` runs from start to recovery, or to the last point when open.
        """
        rows = _drawdown_rows(self._curve.to_numpy(), self._curve.index, self.capital)
        cols = ["start", "trough", "recovery", "peak_usd", "trough_usd", "depth_usd", "depth_pct", "duration",
                "time_to_trough", "time_to_recover", "recovered"]
        tz = self._curve.index.tz
        out = pd.DataFrame(rows, columns=cols)
        for c in ("start", "trough", "recovery"):
            out[c] = pd.DatetimeIndex(out[c], tz=tz) if len(out) else pd.DatetimeIndex([], tz=tz)
        for c in ("duration", "time_to_trough", "time_to_recover"):
            # object first: a column of NaT only (every drawdown still open) is inferred as datetime64
            out[c] = pd.to_timedelta(out[c].astype(object))
        out["recovered"] = out["recovered"].astype(bool)
        out = out.sort_values(["depth_usd", "start"], ascending=[False, True], kind="mergesort").reset_index(drop=True)
        return out.head(top) if top is not None else out

    def monthly_returns(self, pct: bool = False) -> pd.DataFrame:
        """Year x month (1..12) table of P&L $ by session date (``pct``: as a fraction of the capital,
        non-compounded); NaN where no session."""
        d = self._daily / self.capital if pct else self._daily
        if d.empty:
            return pd.DataFrame(columns=pd.Index(range(1, 13), name="month"), index=pd.Index([], name="year"))
        idx = pd.DatetimeIndex(d.index)
        table = d.groupby([idx.year, idx.month]).sum().unstack()
        table = table.reindex(columns=range(1, 13))
        table.index.name, table.columns.name = "year", "month"
        return table

    # ------------------------------------------------------------------ metrics
    def metrics(self) -> pd.Series:
        """All metrics (stable snake_case keys, ``METRIC_LABELS`` order); NaN where undefined."""
        out = {**self._trade_metrics(), **self._time_metrics(), **self._ratio_metrics()}
        return pd.Series({k: out[k] for k in METRIC_LABELS}, name="value", dtype=object)

    def headline(self) -> pd.DataFrame:
        """Metric label and formatted value of every metric (the report's top table), indexed by key."""
        m = self.metrics()
        none = not m["trades"]  # a rate or ratio of zero trades is not n/a but "no trades"
        rows = {k: (label, "no trades" if none and _undefined(m[k]) else _fmt(m[k], kind))
                for k, (label, kind) in METRIC_LABELS.items()}
        if self.n_trials == 1:  # a single run has nothing to deflate for: say so rather than repeat the PSR silently
            rows["dsr"] = ("Deflated Sharpe ratio (1 trial: equals the PSR; a sweep gives the trial count)",
                           rows["dsr"][1])
        else:
            rows["dsr"] = (f"Deflated Sharpe ratio ({self.n_trials:,} trials)", rows["dsr"][1])
        if self.meta.get("margin_usd") is not None:
            rows["margin_usd"] = ("Margin floor (maintenance margin x contracts): no new entry below it",
                                  _fmt(float(self.meta["margin_usd"]), "usd"))
            stop = self.meta.get("trading_stopped")
            rows["trading_stopped"] = ("Trading stopped (equity below the margin floor)",
                                       f"{stop['time'][:16].replace('T', ' ')} ET at equity "
                                       f"{_fmt(float(stop['equity_usd']), 'usd')}" if stop else "no")
        return pd.DataFrame.from_dict(rows, orient="index", columns=["metric", "value"])

    def _r(self) -> pd.Series:
        """R multiple per trade: the ``r_multiple`` field, else ``pnl_ticks / stop_ticks``, else NaN."""
        t = self.trades
        if "r_multiple" in t.columns:
            return t["r_multiple"].astype(np.float64)
        if "pnl_ticks" in t.columns and self.stop_ticks:
            return t["pnl_ticks"].astype(np.float64) / float(self.stop_ticks)
        return pd.Series(NAN, index=t.index)

    def _trade_metrics(self) -> dict[str, Any]:
        pnl = self.trades["pnl_usd"].to_numpy(np.float64)
        r = self._r().to_numpy()
        win, loss = pnl > 0, pnl < 0
        comm = float(self.trades["commission_usd"].sum()) if "commission_usd" in self.trades.columns else NAN
        wins_run, losses_run = _max_runs(win), _max_runs(loss)
        return {
            "net_pnl_usd": float(pnl.sum()),
            "gross_pnl_usd": float(pnl.sum()) + comm,
            "commissions_usd": comm,
            "trades": int(len(pnl)),
            "win_rate": _mean(win),
            "profit_factor": _profit_factor(pnl),
            "expectancy_usd": _mean(pnl),
            "expectancy_r": _mean(r),
            "avg_win_usd": _mean(pnl[win]),
            "avg_loss_usd": _mean(pnl[loss]),
            "avg_win_r": _mean(r[win]),
            "avg_loss_r": _mean(r[loss]),
            "largest_win_usd": float(pnl.max()) if win.any() else NAN,
            "largest_loss_usd": float(pnl.min()) if loss.any() else NAN,
            "max_consecutive_wins": wins_run,
            "max_consecutive_losses": losses_run,
        }

    def _time_metrics(self) -> dict[str, Any]:
        t = self.trades
        held = (t["exit_ts"] - t["entry_ts"]).dt.total_seconds().to_numpy() / 60 if "entry_ts" in t.columns else []
        bars = t["bars_held"].astype(np.float64).to_numpy() if "bars_held" in t.columns else []
        daily = self._daily
        n_days = len(daily)
        final = float(self.equity.iloc[-1]) if self.equity is not None and len(self.equity) else (
            self.capital + float(t["pnl_usd"].sum()))
        return {
            "exposure": self._exposure(),
            "avg_holding_minutes": _mean(held),
            "avg_bars_held": _mean(bars),
            "sessions": int(n_days),
            "trades_per_day": len(t) / n_days if n_days else NAN,
            "final_equity_usd": final,
            "first_session": daily.index[0] if n_days else pd.NaT,
            "last_session": daily.index[-1] if n_days else pd.NaT,
        }

    def _exposure(self) -> float:
        """Fraction of in-session bars holding a position (``position`` given), else the time in market
        (union of entry->exit intervals) over the sessions' scheduled time (``SESSION_MINUTES`` of the
        trades' ``session`` filter x sessions of :meth:`daily_pnl`)."""
        if self.position is not None:
            return float((self.position.to_numpy() != 0).mean()) if len(self.position) else NAN
        t = self.trades
        n_days = len(self._daily)
        if not len(t):
            return 0.0 if n_days else NAN
        if "entry_ts" not in t.columns or "session" not in t.columns:
            return NAN
        minutes = {SESSION_MINUTES.get(str(s)) for s in t["session"].unique()}
        if len(minutes) != 1 or None in minutes or not n_days:
            return NAN
        held = _union_minutes(t["entry_ts"], t["exit_ts"])
        return float(held / (n_days * minutes.pop()))

    def _ratio_metrics(self) -> dict[str, float]:
        import empyrical

        rets = self.daily_returns()
        ppy = self.periods_per_year
        rf = self.risk_free / ppy
        excess = rets - rf
        n = len(rets)
        with np.errstate(divide="ignore", invalid="ignore"):
            sortino = float(empyrical.sortino_ratio(rets, required_return=rf, annualization=ppy)) if n >= 2 else NAN
            vol = float(empyrical.annual_volatility(rets, annualization=ppy)) if n >= 2 else NAN
        annual = float(rets.mean() * ppy) if n else NAN
        mdd_usd, mdd_pct = self._max_drawdown()
        return {
            "sharpe": sharpe_ratio(rets, risk_free=self.risk_free, periods_per_year=ppy),
            "sortino": sortino,
            "calmar": self._calmar(annual),
            "annual_return": annual,
            "annual_volatility": vol,
            "max_drawdown_usd": mdd_usd,
            "max_drawdown_pct": mdd_pct,
            "psr": probabilistic_sharpe_ratio(excess),
            "dsr": self._dsr(excess),
        }

    def _max_drawdown(self) -> tuple[float, float]:
        """(max drawdown $, max drawdown as a fraction of the peak) over the whole equity curve, >= 0."""
        uw = self.underwater()
        if uw.empty:
            return 0.0, 0.0
        return float(-uw["drawdown_usd"].min()), float(-uw["drawdown_pct"].min())

    def _calmar(self, annual_return: float) -> float:
        """Annual return / (max drawdown of the session-close equity / capital).

        Hand-written: empyrical and vectorbt divide a compounded annual growth rate by the drawdown of
        compounded returns; with P&L / fixed capital both are non-compounded here (mean daily return x
        252 over the $ drawdown of capital + cumulative daily P&L, as a fraction of the capital).
        NaN without a drawdown, like the libraries.
        """
        eq = self.capital + self._daily.cumsum().to_numpy()
        mdd = float((_running_peak(eq, self.capital) - eq).max()) if len(eq) else 0.0
        return annual_return / (mdd / self.capital) if mdd > 0 and math.isfinite(annual_return) else NAN

    def _dsr(self, excess: pd.Series) -> float:
        """DSR of the daily excess returns: PSR(0) with one trial; with several, NaN unless the trials'
        Sharpe ratios vary (``sr_variance`` > 0): without dispersion there is nothing to deflate by, and
        the PSR would pass for a DSR (as research.validation.overfitting.dsr_of_combo)."""
        if self.n_trials == 1:
            return probabilistic_sharpe_ratio(excess)
        if self.sr_variance is None or not self.sr_variance > 0:
            return NAN
        return deflated_sharpe_ratio(excess, self.n_trials, float(self.sr_variance))

    # ------------------------------------------------------------------ attribution
    def attribution(self, by: str) -> pd.DataFrame:
        """Trades grouped by ``by`` (one of ``ATTRIBUTION_KEYS``): pnl_usd, trades, win_rate, expectancy_usd,
        expectancy_r, profit_factor, share_of_pnl (of the total net P&L), in the key's natural order.

        Raises ``ValueError`` for an unknown key and ``KeyError`` naming the trade column(s) it needs
        when they are absent.
        """
        if by not in _KEYS:
            raise ValueError(f"unknown attribution key {by!r}; use one of {', '.join(ATTRIBUTION_KEYS)}")
        needs, fn = _KEYS[by]
        missing = [c for c in needs if c not in self.trades.columns]
        if missing:
            raise KeyError(f"attribution by {by!r} needs trade column(s) {missing}, absent from these trades")
        labels, order = fn(self)
        return _group_table(self.trades["pnl_usd"], self._r(), labels, order, by)

    def attribution_all(self) -> dict[str, pd.DataFrame]:
        """:meth:`attribution` for every key of ``ATTRIBUTION_KEYS`` whose columns the trades have."""
        out = {}
        for key in ATTRIBUTION_KEYS:
            try:
                out[key] = self.attribution(key)
            except KeyError:
                continue
        return out

    def _bar(self) -> pd.Timedelta | None:
        """Bar duration: ``meta['bar_ns']``, else ``meta['extra']['bar']``, else the most common
        entry_ts - signal_ts (an entry fills at the open of the bar after the signal bar)."""
        if self.meta.get("bar_ns"):
            return pd.Timedelta(int(self.meta["bar_ns"]), "ns")
        bar = (self.meta.get("extra") or {}).get("bar")
        if bar:
            try:
                return pd.Timedelta(str(bar))
            except ValueError:
                pass
        t = self.trades
        if {"signal_ts", "entry_ts"} <= set(t.columns) and len(t):
            d = t["entry_ts"] - t["signal_ts"]
            d = d[d > pd.Timedelta(0)]
            if len(d):
                return d.mode().iloc[0]
        return None

    def _signal_close_et(self) -> pd.DatetimeIndex:
        """Decision time (signal bar close) in ET: ``signal_time``, else ``signal_ts`` + bar duration."""
        t = self.trades
        if "signal_time" in t.columns:
            ts = pd.DatetimeIndex(t["signal_time"])
        else:
            bar = self._bar()
            if bar is None:
                if len(t):
                    raise KeyError("the signal bar's close needs 'signal_time' or a known bar duration (meta bar_ns)")
                bar = pd.Timedelta(0)
            ts = pd.DatetimeIndex(t["signal_ts"]) + bar
        return ts.tz_convert(RTH_TZ)


# ---------------------------------------------------------------------- attribution keys
def _by_hour(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    return p._signal_close_et().hour.to_numpy(), list(range(24))


def _by_weekday(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    return np.asarray(p._signal_close_et().day_name()), list(WEEKDAYS)


def _by_phase(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    # the signal bar's close is the decision instant; its phase is the one strategy.market.sessions gives that instant
    # (a decision at 12:00:00 ET belongs to lunch, the phase the entry is made in)
    et = p._signal_close_et()
    return np.asarray(session_frame(et.tz_convert("UTC"))["phase"].astype(object)), list(PHASES)


def _by_column(col: str, order: tuple = (), missing: str = "unknown") -> Callable:
    def fn(p: PerformanceTracker) -> tuple[np.ndarray, list]:
        s = p.trades[col]
        return np.asarray(s.astype(object).where(s.notna(), missing).astype(str)), list(order)
    return fn


def _by_map(col: str, mapping: dict) -> Callable:
    def fn(p: PerformanceTracker) -> tuple[np.ndarray, list]:
        s = p.trades[col]
        labels = [mapping.get(int(v), "unknown") if pd.notna(v) else "unknown" for v in s]
        return np.asarray(labels, dtype=object), list(mapping.values())
    return fn


def _by_base_width(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    w = p.trades["base_width_ticks"].astype("Float64").to_numpy(dtype=np.float64, na_value=np.nan)
    out = np.full(len(w), "none", dtype=object)
    lo = 0.0
    for hi, label in WIDTH_BINS:
        out[(w > lo) & (w <= hi)] = label
        lo = hi
    return out, [label for _, label in WIDTH_BINS] + ["none"]


def _by_pattern(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    t = p.trades
    flags = {name: t[name.lower()].fillna(False).astype(bool).to_numpy() for name in ("LDU", "LUD", "CDS")}
    labels = ["+".join(n for n in flags if flags[n][i]) or "none" for i in range(len(t))]
    return np.asarray(labels, dtype=object), ["none", "LDU", "LUD", "CDS"]


def _by_order_flow(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    labels = np.where(p.trades["order_flow"].fillna(False).astype(bool).to_numpy(), "bid_ask", "ohlcv_proxy")
    return labels.astype(object), ["bid_ask", "ohlcv_proxy"]


def _by_month(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    return np.asarray(p._exit_session.strftime("%Y-%m")), []


def _by_year(p: PerformanceTracker) -> tuple[np.ndarray, list]:
    return p._exit_session.year.to_numpy(), []


_SIGNAL = ("signal_ts",)
_KEYS: dict[str, tuple[tuple[str, ...], Callable]] = {
    "hour": (_SIGNAL, _by_hour),
    "weekday": (_SIGNAL, _by_weekday),
    "phase": (_SIGNAL, _by_phase),
    "status": (("status",), _by_column("status", STATUSES)),
    "base_type": (("ref_side",), _by_map("ref_side", {1: "green", -1: "red", 0: "none"})),
    "base_width": (("base_width_ticks",), _by_base_width),
    "pattern": (("ldu", "lud", "cds"), _by_pattern),
    "order_flow": (("order_flow",), _by_order_flow),
    "exit_reason": (("exit_reason",), _by_column("exit_reason", EXIT_REASONS)),
    "month": ((), _by_month),
    "year": ((), _by_year),
    "contract": (("contract",), _by_column("contract")),
    "side": (("side",), _by_map("side", {1: "long", -1: "short"})),
}


def _group_table(pnl: pd.Series, r: pd.Series, labels: np.ndarray, order: list, name: str) -> pd.DataFrame:
    """Per-label P&L statistics, rows in ``order`` (present labels only) then the other labels sorted."""
    labels = np.asarray(labels)
    present = list(pd.unique(labels))
    cats = [k for k in order if k in present] + sorted(k for k in present if k not in order)
    total = float(pnl.sum())
    rows = {}
    for k in cats:
        sel = labels == k
        p = pnl.to_numpy(np.float64)[sel]
        rows[k] = {
            "pnl_usd": float(p.sum()),
            "trades": int(sel.sum()),
            "win_rate": _mean(p > 0),
            "expectancy_usd": _mean(p),
            "expectancy_r": _mean(r.to_numpy()[sel]),
            "profit_factor": _profit_factor(p),
            "share_of_pnl": float(p.sum()) / total if total != 0 else NAN,
        }
    cols = ["pnl_usd", "trades", "win_rate", "expectancy_usd", "expectancy_r", "profit_factor", "share_of_pnl"]
    out = pd.DataFrame.from_dict(rows, orient="index", columns=cols)
    out.index.name = name
    return out.astype({"trades": np.int64})


# ---------------------------------------------------------------------- helpers
def _session_dates(sessions: Any) -> pd.DatetimeIndex:
    """Trading dates as tz-naive midnight timestamps (tz-aware values keep their own calendar date)."""
    idx = pd.DatetimeIndex(pd.to_datetime(list(sessions)))
    if idx.tz is not None:
        idx = idx.tz_localize(None)
    return idx.normalize().unique().sort_values()


def _normalise_trades(trades: pd.DataFrame) -> pd.DataFrame:
    """A copy with ``exit_ts``/``entry_ts`` (from ``*_time`` aliases) as UTC timestamps, sorted by exit."""
    t = trades.copy()
    for ts, alias in (("exit_ts", "exit_time"), ("entry_ts", "entry_time")):
        if ts not in t.columns and alias in t.columns:
            t[ts] = t[alias]
    if len(t) == 0:
        for col in ("pnl_usd", "exit_ts"):
            if col not in t.columns:
                t[col] = pd.Series([], dtype="datetime64[ns, UTC]" if col == "exit_ts" else np.float64)
    missing = [c for c in ("pnl_usd", "exit_ts") if c not in t.columns]
    if missing:
        raise ValueError(f"trades lack column(s) {missing} (one row per closed trade with its net P&L and exit time)")
    for col in ("exit_ts", "entry_ts", "signal_ts", "signal_time"):
        if col in t.columns:
            t[col] = _utc(t[col], col)
    t["pnl_usd"] = t["pnl_usd"].astype(np.float64)
    for col, bad in (("pnl_usd", ~np.isfinite(t["pnl_usd"].to_numpy())), ("exit_ts", t["exit_ts"].isna().to_numpy())):
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            tid = f" (trade_id {t['trade_id'].iloc[row]!r})" if "trade_id" in t.columns else ""
            raise ValueError(f"trade row {row}{tid}: {col} is missing or not finite "
                             f"({int(bad.sum())} row(s) in all); every closed trade needs its net P&L and exit time")
    keys = ["exit_ts"] + (["entry_ts"] if "entry_ts" in t.columns else [])
    return t.sort_values(keys, kind="mergesort").reset_index(drop=True)


def _utc(s: pd.Series, name: str) -> pd.Series:
    s = pd.to_datetime(s)
    if s.dt.tz is None and len(s) == 0:
        s = s.dt.tz_localize("UTC")
    if s.dt.tz is None:
        raise ValueError(f"trade column {name!r} must be tz-aware (UTC)")
    return s.dt.tz_convert("UTC")


def _tz_series(s: pd.Series | None, name: str) -> pd.Series | None:
    if s is None:
        return None
    if not isinstance(s.index, pd.DatetimeIndex) or s.index.tz is None:
        raise ValueError(f"{name} needs a tz-aware DatetimeIndex (bar start times)")
    return s.sort_index()


def _sessions(ts: pd.DatetimeIndex) -> pd.DatetimeIndex:
    """Trading date of each timestamp (naive dates)."""
    if not len(ts):
        return pd.DatetimeIndex([], dtype="datetime64[ns]")
    return pd.DatetimeIndex(session_id(ts).astype("datetime64[ns]"))


def _mean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(x.mean()) if len(x) else NAN


def _profit_factor(pnl: np.ndarray) -> float:
    """Gross win / gross loss; inf with wins and no loss, NaN with neither."""
    win, loss = pnl[pnl > 0].sum(), -pnl[pnl < 0].sum()
    if loss > 0:
        return float(win / loss)
    return math.inf if win > 0 else NAN


def _max_runs(flag: np.ndarray) -> int:
    """Longest run of consecutive True values."""
    best = cur = 0
    for f in flag:
        cur = cur + 1 if f else 0
        best = max(best, cur)
    return int(best)


def _union_minutes(start: pd.Series, end: pd.Series) -> float:
    """Minutes covered by the union of [start, end] intervals."""
    iv = sorted(zip(start.to_numpy(), end.to_numpy()))
    total = np.timedelta64(0, "ns")
    cur_s, cur_e = iv[0]
    for s, e in iv[1:]:
        if s > cur_e:
            total += cur_e - cur_s
            cur_s, cur_e = s, e
        else:
            cur_e = max(cur_e, e)
    total += cur_e - cur_s
    return float(total / np.timedelta64(1, "m"))


def _running_peak(eq: np.ndarray, capital: float) -> np.ndarray:
    """Running maximum of the equity, starting from the initial capital."""
    return np.maximum.accumulate(np.maximum(eq, capital)) if len(eq) else eq


def _drawdown_rows(eq: np.ndarray, times: pd.DatetimeIndex, capital: float) -> list[tuple]:
    """(start, trough, recovery, peak, trough value, depth $, depth %, duration, to trough, to recover,
    recovered) of every drawdown; see :meth:`PerformanceTracker.drawdowns`."""
    rows: list[tuple] = []
    peak, peak_i = capital, 0  # the capital is the first peak, dated at the first point
    trough_i = -1  # -1: not in a drawdown
    for i, v in enumerate(eq):
        if v >= peak:
            if trough_i >= 0:
                rows.append(_dd_row(times, peak_i, trough_i, i, peak, eq[trough_i]))
                trough_i = -1
            peak, peak_i = v, i
        elif trough_i < 0 or v < eq[trough_i]:
            trough_i = i
    if trough_i >= 0:
        rows.append(_dd_row(times, peak_i, trough_i, None, peak, eq[trough_i]))
    return rows


def _dd_row(times: pd.DatetimeIndex, s: int, tr: int, rec: int | None, peak: float, low: float) -> tuple:
    start, trough = times[s], times[tr]
    recovery = times[rec] if rec is not None else pd.NaT
    end = recovery if rec is not None else times[-1]
    return (start, trough, recovery, float(peak), float(low), float(peak - low), float((peak - low) / peak),
            end - start, trough - start, (recovery - trough) if rec is not None else pd.NaT, rec is not None)


def _undefined(v: Any) -> bool:
    return v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v))


def _fmt(v: Any, kind: str) -> str:
    """A metric value as text for the headline table."""
    if v is None or v is pd.NaT or (isinstance(v, float) and math.isnan(v)):
        return "n/a"
    if kind == "date":
        return pd.Timestamp(v).strftime("%Y-%m-%d")
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    if v == 0:
        v = 0.0 * v + 0.0  # -0.0 (an empty drawdown) reads as 0
    if kind == "usd":
        return f"-${-v:,.2f}" if v < 0 else f"${v:,.2f}"
    if kind in ("pct", "prob"):
        return f"{v:.2%}" if kind == "pct" else f"{v:.1%}"
    if kind == "int":
        return f"{int(v):,d}"
    if kind == "r":
        return f"{v:+.2f} R"
    if kind == "minutes":
        return f"{v:,.1f} min"
    return f"{v:,.2f}"
