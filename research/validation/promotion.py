"""The promotion gate: may a sweep's configuration go to *paper* trading?

:func:`evaluate` (or :func:`evaluate_sweep` for a ``SweepResult``) runs a walk-forward
(:mod:`research.validation.walkforward`), the Probability of Backtest Overfitting by CSCV and the Deflated
Sharpe Ratio (:mod:`research.validation.overfitting`) of the configuration it would promote, and compares them
with :class:`Thresholds`. The :class:`Decision` names the configuration that would trade next (chosen
on the latest in-sample window), every check with its value and threshold, and the reasons for a
refusal in plain words. :func:`record_promotion` appends it to the ``promotions`` table of the run
store (nothing is ever deleted there); :func:`write_outputs` writes ``promotion.json``,
``params.toml`` and, when promoted, ``ready_for_paper.toml`` into the sweep folder.

"Promoted" means paper trading only. Nothing here places or prepares a live order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.store.files import atomic_write_text
from research.validation.overfitting import (
    check_n_splits,
    default_n_splits,
    dsr_of_best,
    dsr_of_combo,
    pbo_cscv,
)
from research.validation.walkforward import OBJECTIVES, segment_boundaries, walk_forward

__all__ = [
    "Thresholds",
    "ThresholdsError",
    "Check",
    "Decision",
    "evaluate",
    "evaluate_sweep",
    "record_promotion",
    "promotions",
    "write_outputs",
    "load_sweep",
    "resolve_run",
]

# walk-forward objective -> CSCV / best-of-sweep metric of research.validation.overfitting
_METRIC = {"sharpe": "sharpe", "sortino": "sortino", "net_pnl": "mean", "profit_factor": "profit_factor"}

# ---------------------------------------------------------------- thresholds

_RENAMED = {"min_oos_trading_days": "min_oos_trades"}  # former threshold name -> current


class ThresholdsError(ValueError):
    """A promotion threshold is missing, of the wrong type or out of range; the message names it."""


@dataclass(frozen=True)
class Thresholds:
    """What a sweep must show to be promoted to paper trading (strict where it says ">"/"<").

    - ``min_oos_sharpe``: stitched walk-forward OOS Sharpe (annualised) > this (default 0);
    - ``max_pbo``: PBO (CSCV) < this (default 0.5: the IS-best beats the OOS median more often than not);
    - ``min_dsr``: DSR of the *proposed* configuration > this (default 0.95: 95% confidence of skill
      after deflating for the number of trials of the whole sweep);
    - ``min_oos_sessions``: OOS sessions >= this (default 120, about two quarters);
    - ``min_oos_trades``: trades of the walk-forward's choices in their OOS windows >= this (default
      30). A sweep saved without trade counts (``daily_trades``) falls back to OOS sessions with a
      non-zero P&L (check ``oos_trading_days``), a lower bound on the trades.

    ``min_oos_trading_days`` (the former name) is read as ``min_oos_trades``.
    """

    min_oos_sharpe: float = 0.0
    max_pbo: float = 0.5
    min_dsr: float = 0.95
    min_oos_sessions: int = 120
    min_oos_trades: int = 30

    def __post_init__(self) -> None:
        for f in fields(self):
            v = getattr(self, f.name)
            if f.type == "int":
                if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                    raise ThresholdsError(f"threshold {f.name} must be an integer, got {v!r}")
                if v < 0:
                    raise ThresholdsError(f"threshold {f.name} = {v}: must be >= 0")
            else:
                if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
                    raise ThresholdsError(f"threshold {f.name} must be a number, got {v!r}")
                if not math.isfinite(v):
                    raise ThresholdsError(f"threshold {f.name} = {v}: must be finite")
                object.__setattr__(self, f.name, float(v))
        for name in ("max_pbo", "min_dsr"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ThresholdsError(f"threshold {name} = {getattr(self, name)}: must be a probability in [0, 1]")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any], source: str = "thresholds") -> "Thresholds":
        """Build from a mapping; unknown keys and bad values raise :class:`ThresholdsError` naming them."""
        known = {f.name for f in fields(cls)}
        values = dict(values)
        for old, new in _RENAMED.items():
            if old in values:
                if new in values:
                    raise ThresholdsError(f"{source}: give {new} only ({old} is its former name)")
                values[new] = values.pop(old)
        unknown = sorted(set(values) - known)
        if unknown:
            raise ThresholdsError(f"{source}: unknown threshold(s) {', '.join(unknown)} "
                                  f"(known: {', '.join(sorted(known))})")
        try:
            return cls(**dict(values))
        except ThresholdsError as exc:
            raise ThresholdsError(f"{source}: {exc}") from None

    @classmethod
    def from_toml(cls, path: str | Path, section: str = "promotion") -> "Thresholds":
        """Read the ``[promotion]`` table of a TOML file (defaults fill what it omits)."""
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ThresholdsError(f"{path}: no such thresholds file") from None
        except tomllib.TOMLDecodeError as exc:
            raise ThresholdsError(f"{path}: not valid TOML ({exc})") from None
        table = doc.get(section)
        if not isinstance(table, dict):
            raise ThresholdsError(f"{path}: no [{section}] table (expected e.g. '[{section}]\\nmax_pbo = 0.4')")
        return cls.from_dict(table, source=f"{path} [{section}]")

    def with_overrides(self, **changes: Any) -> "Thresholds":
        """A copy with the non-None ``changes`` (e.g. command-line flags)."""
        changes = {_RENAMED.get(k, k): v for k, v in changes.items() if v is not None}
        return self.from_dict({**dataclasses.asdict(self), **changes}, source="override")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ---------------------------------------------------------------- decision


@dataclass
class Check:
    """One gate check: ``value op threshold`` must hold."""

    name: str
    value: float
    threshold: float
    op: str  # ">", "<" or ">="
    passed: bool
    reason: str = ""  # plain words, set when it failed


@dataclass
class Decision:
    """The gate's answer for one sweep."""

    passed: bool
    checks: list[Check]
    figures: dict[str, Any]
    combo: int | None  # the configuration that would trade next
    params: Any | None  # its strategy.Params (None without a params_of / no eligible combo)
    params_toml: str | None
    params_hash: str | None
    reasons: list[str]
    verdict: str  # walk-forward reading
    thresholds: Thresholds
    sweep_id: str | None = None
    promotion_id: str = field(default_factory=lambda: uuid.uuid4().hex[:16])
    created: dt.datetime = field(default_factory=lambda: dt.datetime.now(dt.UTC))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (NaN -> null, timestamps as ISO text)."""
        return _jsonable({
            "promotion_id": self.promotion_id,
            "sweep_id": self.sweep_id,
            "created": self.created,
            "passed": self.passed,
            "decision": "promoted to paper trading" if self.passed else "refused",
            "combo": self.combo,
            "params_hash": self.params_hash,
            "checks": [dataclasses.asdict(c) for c in self.checks],
            "reasons": self.reasons,
            "verdict": self.verdict,
            "thresholds": self.thresholds.to_dict(),
            "figures": self.figures,
            "params_toml": self.params_toml,
        })

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1, allow_nan=False)


def _jsonable(obj: Any) -> Any:
    """Plain JSON values: numpy scalars unwrapped, NaN/inf -> None, dates as ISO text."""
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, np.ndarray)):
        return [_jsonable(v) for v in obj]
    if obj is None or obj is pd.NA or obj is pd.NaT:
        return None
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, (dt.datetime, dt.date)):  # pd.Timestamp too
        return obj.isoformat()
    return obj


def _check(name: str, value: float, threshold: float, op: str) -> Check:
    ok = bool(np.isfinite(value)) and {">": value > threshold, "<": value < threshold, ">=": value >= threshold}[op]
    return Check(name, value, threshold, op, ok)


def evaluate(
    daily_pnl: pd.DataFrame,
    grid: pd.DataFrame | None = None,
    *,
    capital: float,
    thresholds: Thresholds | None = None,
    segments: pd.DataFrame | None = None,
    params_of: Callable[[int], Any] | None = None,
    sweep_id: str | None = None,
    n_trials: int | None = None,
    trades: pd.DataFrame | None = None,
    objective: str = "sharpe",
    scheme: str = "rolling",
    is_periods: int | None = None,
    oos_periods: int = 1,
    n_splits: int | None = None,
    min_trades: int = 0,
) -> Decision:
    """Run the gate on plain inputs (``daily_pnl`` $ per session x combo; see the module docstring).

    Periods are the ``segments``' first sessions when there are several (quarterly contracts), else
    calendar quarters. The configuration proposed is the walk-forward choice on the latest IS window
    (what would trade next); the last evaluated window's choice and the full-sample best are
    reported in ``figures``. The ``dsr`` check is on the proposed configuration's own session
    returns, deflated with the trial count and cross-trial Sharpe variance of the whole sweep (the
    full-sample best's DSR is in ``figures["dsr_full_sample_best"]``, for information only).
    ``trades`` (trades closed per session x combo, e.g. ``SweepResult.daily_trades``) makes the
    trade-count check count real trades (``oos_trades``); without it OOS sessions with a non-zero
    P&L stand in (``oos_trading_days``). ``min_trades``: IS trades a combo needs to be chosen in a
    window (needs ``trades``). ``is_periods=None``: the largest of 1-4 the periods allow
    (`research.validation.walkforward.default_is_periods`). ``n_splits``: CSCV blocks of the PBO, even, 2-20
    (None: 16, or the largest the sessions allow); an odd or out-of-range value raises ``ValueError``, one
    finer than the sessions allow fails the PBO check with the largest value that would work. ``params_of(combo)`` gives its ``strategy.Params``. Bad inputs (too
    few periods for the walk-forward, NaN P&L, capital <= 0, ...) raise ``ValueError``; a PBO or a
    DSR that cannot be computed (one configuration, too few sessions, no configuration traded)
    fails its check with the reason.
    """
    thresholds = thresholds or Thresholds()
    if objective not in OBJECTIVES:
        raise ValueError(f"unknown objective {objective!r}: use one of {OBJECTIVES}")
    if not (isinstance(capital, (int, float, np.integer, np.floating)) and math.isfinite(capital) and capital > 0):
        raise ValueError(f"capital must be a number > 0, got {capital!r}")
    n_splits = default_n_splits(len(daily_pnl)) if n_splits is None else check_n_splits(n_splits)
    metric = _METRIC[objective]
    boundaries = segment_boundaries(segments)
    wf = walk_forward(daily_pnl, grid, boundaries=boundaries, scheme=scheme, is_periods=is_periods,
                      oos_periods=oos_periods, objective=objective, capital=capital, trades=trades,
                      min_trades=min_trades)
    combo = wf.next_window["combo"]
    trials = max(int(n_trials or 0), daily_pnl.shape[1])
    try:
        best = dsr_of_best(daily_pnl, capital, metric, n_trials=trials)
    except ValueError as exc:  # e.g. no configuration traded: no Sharpe is defined
        best = {"dsr": math.nan, "error": str(exc)}
    if "error" in best:
        dsr = {"combo": combo, "dsr": math.nan, "error": best["error"]}
    elif combo is None:
        dsr = {"combo": None, "dsr": math.nan, "error": "no configuration is proposed"}
    else:  # the configuration promoted, deflated for the whole search it was selected from
        dsr = dsr_of_combo(daily_pnl, capital, combo, n_trials=best["n_trials"], sr_variance=best["sr_variance"])
    try:
        pbo = pbo_cscv(daily_pnl, n_splits=n_splits, metric=metric).summary()
    except ValueError as exc:
        pbo = {"pbo": math.nan, "error": str(exc)}

    s = wf.summary
    if "oos_trades" in s:  # real trade counts
        trade_check = _check("oos_trades", s["oos_trades"], thresholds.min_oos_trades, ">=")
    else:  # no trade counts: sessions with a trade are a lower bound on the trades
        trade_check = _check("oos_trading_days", s["oos_trading_days"], thresholds.min_oos_trades, ">=")
    checks = [
        _check("oos_sharpe", s["oos_sharpe"], thresholds.min_oos_sharpe, ">"),
        _check("pbo", pbo["pbo"], thresholds.max_pbo, "<"),
        _check("dsr", dsr["dsr"], thresholds.min_dsr, ">"),
        _check("oos_sessions", s["oos_sessions"], thresholds.min_oos_sessions, ">="),
        trade_check,
    ]
    _explain(checks, s, pbo, dsr)
    reasons = [c.reason for c in checks if not c.passed]
    if combo is None:
        reasons.append("no configuration was eligible in the latest in-sample window: nothing to promote")
    params = params_of(int(combo)) if params_of is not None and combo is not None else None
    last = wf.windows["combo"].iloc[-1]
    figures = {
        "walk_forward": {**s, "config": wf.config},
        "windows": wf.windows.drop(columns=[c for c in ("params_hash",) if c in wf.windows]).to_dict("records"),
        "pbo": pbo,
        "dsr": dsr,
        "dsr_full_sample_best": best,
        "chosen": {
            "combo": combo,
            "rule": (f"chosen on the latest in-sample window, {wf.next_window['is_start']:%Y-%m-%d} to "
                     f"{wf.next_window['is_end']:%Y-%m-%d} ({scheme})"),
            "is_objective": wf.next_window["is_objective"],
            "grid": wf.next_window.get("params"),
        },
        "last_window_combo": None if pd.isna(last) else last,
        "full_sample_best": ({"combo": None, "error": best["error"]} if "error" in best else
                             {"combo": best["best"], "sharpe": best["sharpe"], "net_pnl": best["net_pnl"],
                              "dsr": best["dsr"]}),
        "trade_counts": "trades" if "oos_trades" in s else "sessions with a trade (no trade counts)",
        "n_configs": int(daily_pnl.shape[1]),
        "n_sessions": int(daily_pnl.shape[0]),
        "settings": {"objective": objective, "scheme": scheme, "is_periods": wf.config["is_periods"],
                     "oos_periods": oos_periods, "n_splits": n_splits, "min_trades": min_trades,
                     "boundaries": "QS" if isinstance(boundaries, str) else "segments", "capital": capital},
    }
    return Decision(
        passed=not reasons,
        checks=checks,
        figures=_jsonable(figures),
        combo=None if combo is None else int(combo),
        params=params,
        params_toml=None if params is None else params.to_toml(),
        params_hash=None if params is None else params.hash(),
        reasons=reasons,
        verdict=wf.verdict,
        thresholds=thresholds,
        sweep_id=sweep_id,
    )


def _explain(checks: list[Check], s: dict[str, Any], pbo: dict[str, Any], dsr: dict[str, Any]) -> None:
    """Fill the plain-words reason of each failed check."""
    for c in checks:
        if c.passed:
            continue
        v, t = c.value, c.threshold
        if c.name == "oos_sharpe":
            c.reason = (f"walk-forward out-of-sample Sharpe {v:+.2f} is not above {t:+.2f}: the in-sample "
                        "choices did not earn a risk-adjusted return out of sample"
                        if np.isfinite(v) else "walk-forward out-of-sample Sharpe is undefined (no OOS P&L variation)")
        elif c.name == "pbo":
            c.reason = (f"PBO {v:.2f} is not below {t:.2f}: in {v:.0%} of the CSCV splits the in-sample best "
                        "configuration ranked at or below the median out of sample, so the selection is likely overfit"
                        if np.isfinite(v) else f"PBO could not be computed ({pbo.get('error', 'undefined')})")
        elif c.name == "dsr":
            if "error" in dsr:
                c.reason = f"DSR could not be computed ({dsr['error']})"
            elif np.isfinite(v):
                c.reason = (f"DSR {v:.2f} of the proposed configuration (combo {dsr['combo']}) is not above {t:.2f}: "
                            f"after deflating for {dsr['n_trials']} trials, its Sharpe ({dsr['sharpe']:.2f} "
                            f"annualised; noise alone is expected to reach "
                            f"{dsr['expected_max_sharpe'] * math.sqrt(252):.2f} for the best of them) is not "
                            "convincing evidence of skill")
            else:
                c.reason = (f"DSR is undefined for the proposed configuration (combo {dsr['combo']}): "
                            f"{dsr.get('note') or 'constant P&L?'}")
        elif c.name == "oos_sessions":
            c.reason = f"only {v:.0f} out-of-sample sessions (need {t:.0f}): too short an out-of-sample record"
        elif c.name == "oos_trades":
            c.reason = f"only {v:.0f} out-of-sample trades (need {t:.0f}): too few trades to judge"
        elif c.name == "oos_trading_days":
            c.reason = (f"only {v:.0f} out-of-sample sessions with a trade (need {t:.0f} trades; this sweep has no "
                        "trade counts, so sessions with a trade stand in for them): too few trades to judge")


def evaluate_sweep(
    result: Any,
    thresholds: Thresholds | None = None,
    *,
    objective: str = "sharpe",
    scheme: str = "rolling",
    is_periods: int | None = None,
    oos_periods: int = 1,
    n_splits: int | None = None,
    min_trades: int = 0,
) -> Decision:
    """:func:`evaluate` of a ``SweepResult`` (its capital, segments, ``params``, ``meta`` n_trials and,
    when it has them, trade counts ``daily_trades``)."""
    meta = getattr(result, "meta", {}) or {}
    if "capital" not in meta:
        raise ValueError("the sweep's meta has no 'capital' (needed to turn P&L into returns)")
    return evaluate(
        result.daily_pnl, result.grid, capital=float(meta["capital"]), thresholds=thresholds,
        segments=getattr(result, "segments", None), params_of=result.params, sweep_id=meta.get("sweep_id"),
        n_trials=meta.get("n_trials"), trades=getattr(result, "daily_trades", None), objective=objective,
        scheme=scheme, is_periods=is_periods, oos_periods=oos_periods, n_splits=n_splits, min_trades=min_trades,
    )


# ---------------------------------------------------------------- storage


def promotion_row(decision: Decision) -> dict[str, Any]:
    """``decision`` as a row of the store's ``promotions`` table."""
    d = decision.to_dict()
    return {
        "promotion_id": decision.promotion_id, "sweep_id": decision.sweep_id, "created": decision.created,
        "passed": decision.passed, "thresholds": json.dumps(d["thresholds"], sort_keys=True),
        "figures": json.dumps(d["figures"], sort_keys=True, allow_nan=False), "params": decision.params_toml,
        "params_hash": decision.params_hash, "reasons": json.dumps(decision.reasons),
    }


def record_promotion(store: Any, decision: Decision) -> str:
    """Append ``decision`` to the ``promotions`` table of a ``research.store.RunStore`` in one
    transaction; return its promotion id. Rows are never replaced or deleted."""
    return store.write_promotion(promotion_row(decision))


def promotions(store: Any, sweep_id: str | None = None) -> pd.DataFrame:
    """Stored promotion decisions, oldest first (empty frame when none was recorded yet)."""
    return store.promotions(sweep_id)


ACCOUNT_STOPS = ("daily_profit_target_usd", "max_drawdown_pct", "max_consecutive_losses")


def paper_params(params: Any) -> Any:
    """The tested parameters as paper trading runs them: mode ``paper``, and the paper preset's account
    stops (daily profit target, drawdown and loss-streak kill switches) where the tested values have
    none. Every tested value is kept; the stops only end a session's or the account's trading early."""
    from strategy.modes import MODE_PRESETS

    preset = MODE_PRESETS["paper"]
    stops = {k: preset[k] for k in ACCOUNT_STOPS if getattr(params, k) is None}
    return params.replace(mode="paper", **stops)


def write_outputs(decision: Decision, directory: str | Path) -> dict[str, Path]:
    """Write ``promotion.json``, ``params.toml`` and (promoted only) ``ready_for_paper.toml`` atomically.

    ``ready_for_paper.toml`` holds the tested values with ``mode = "paper"`` (the paper preset's risk
    limits are *not* applied: they would change what was tested), plus the paper preset's account
    stops where the tested values have none (:func:`paper_params`). A refusal renames an existing
    ``ready_for_paper.toml`` to ``ready_for_paper.toml.revoked-<promotion id>`` so that a stale file
    is never picked up; nothing is deleted.
    """
    d = Path(directory)
    out = {"promotion.json": atomic_write_text(d / "promotion.json", decision.to_json() + "\n")}
    head = (f"# promotion {decision.promotion_id} of sweep {decision.sweep_id}, "
            f"{decision.created:%Y-%m-%d %H:%M} UTC: {'PROMOTED to paper trading' if decision.passed else 'REFUSED'}"
            f"\n# combo {decision.combo}\n")
    if decision.params is not None:
        out["params.toml"] = atomic_write_text(d / "params.toml", head + decision.params.to_toml())
    ready = d / "ready_for_paper.toml"
    if decision.passed and decision.params is not None:
        paper = paper_params(decision.params)
        out["ready_for_paper.toml"] = atomic_write_text(
            ready, head + "# for PAPER trading only; values as tested, mode set to paper, the paper preset's account "
            "stops added (profit target, drawdown, loss streak)\n" + paper.to_toml())
    elif ready.exists():
        revoked = ready.with_name(f"ready_for_paper.toml.revoked-{decision.promotion_id}")
        ready.rename(revoked)
        out["revoked"] = revoked
    return out


# ---------------------------------------------------------------- locating a sweep


def resolve_run(run: str, sweeps_dir: str | Path = "reports/sweeps") -> Path:
    """The sweep folder for ``run``: a path to a folder, else ``sweeps_dir/run``."""
    p = Path(run)
    if p.is_dir():
        return p
    q = Path(sweeps_dir) / run
    if q.is_dir():
        return q
    raise FileNotFoundError(f"no sweep {run!r}: neither {p} nor {q} is a folder")


def load_sweep(directory: str | Path) -> Any:
    """``SweepResult.load`` of the sweep package."""
    try:
        from research.sweep import SweepResult
    except ImportError:
        from research.sweep.result import SweepResult
    return SweepResult.load(directory)
