"""The signal-quality filter of the live loop: P(win) of every entry decision, from the research model.

At each entry decision the trader hands the filter the signal's entry context (the row
`research.store.trade_records.context_row` gives, the same one the trade's snapshot is built from), its
side and signal bar. The filter builds the features exactly as ``navale ml dataset`` builds them for that
trade, from what is known at the decision:

- the registry features (`research.ml.features.FEATURES`) of a one-row snapshot made by
  `research.store.trade_records.trade_frame`, as the stored snapshot will be;
- the bar features (`research.ml.bars`: ``rv12_ticks``, ``delta_z20``) from a bounded window of the
  in-session bars closed so far (:data:`WINDOW_BARS` bars, enough for the longest bar-feature window;
  the window restarts at a contract change, as research's per-contract segments do);
- the prior-day as-of features (`research.ml.features.prior_day_outcomes`) from the run's trades of the
  same trading session closed strictly before the decision, shadow trades included.

P(win) >= the threshold (the mode's, `research.ml.model.threshold_for`, or an explicit one) takes the
signal. A feature still undefined (the bar window in warm-up, an indicator without history) or any
failure of the model skips it: the trader then follows the signal as a shadow trade and journals why.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.ml import features as F
from research.ml.bars import DELTA_Z_BARS, RV_BARS
from research.ml.dataset import add_labels
from research.ml.model import SimpleLinearModel, threshold_for
from research.store import snapshots as snap
from research.store.trade_records import trade_frame
from strategy import trade_rules as R
from strategy.market.sessions import session_id
from strategy.params import Params

__all__ = ["SignalQualityFilter", "QualityDecision", "WINDOW_BARS"]

# rv12 reads RV_BARS one-bar changes (RV_BARS + 1 closes); delta_z20 the DELTA_Z_BARS deltas before the bar
WINDOW_BARS = max(RV_BARS + 1, DELTA_Z_BARS + 1)
PRIOR_NAMES = tuple(n for n, _ in F.PRIOR_DAY)


@dataclass(frozen=True)
class QualityDecision:
    """The filter's word on one signal: P(win) (NaN when it could not be computed), the threshold, whether
    the signal is taken, and why not when it could not be scored (``error``: a model failure; ``undefined``:
    a feature not defined yet)."""

    p_win: float
    threshold: float
    taken: bool
    error: str | None = None
    undefined: str | None = None
    features: dict[str, float] | None = None


class SignalQualityFilter:
    """P(win) per entry decision with a `research.ml.model.SimpleLinearModel` (see the module docstring).

    Args:
        model: a trained model (`SimpleLinearModel.load` refuses a file without its sidecar or whose sha256
            differs from it: use :meth:`load`).
        params: the session's parameters (mode -> the default threshold; the snapshot fields).
        threshold: an explicit P(win) threshold in [0, 1] (default: the mode's).
        symbol, tick_size, bar_ns: the traded symbol, its tick, the bar length.
    """

    def __init__(self, model: SimpleLinearModel, params: Params, *, threshold: float | None = None,
                 symbol: str = "ES", tick_size: float = 0.25, bar_ns: int = 300 * 10**9,
                 source: str | None = None) -> None:
        if not model.fitted:
            raise ValueError("the signal-quality model is not trained")
        self.model = model
        self.params = params
        self.threshold = threshold_for(params.mode, threshold)
        self.symbol = symbol
        self.tick = float(tick_size)
        self.bar_ns = int(bar_ns)
        self.source = source
        names = set(model.features)
        self._feats = tuple(f for f in F.FEATURES if f.name in names)
        self._prior = bool(names & set(PRIOR_NAMES))
        self._bars = bool({f.name for f in self._feats if set(f.inputs) & set(F.BAR_COLUMNS)})
        self._window: deque[tuple[float, float, str]] = deque(maxlen=WINDOW_BARS)  # close ticks, delta, contract
        # closed trades of the current session (prior-day features), by (run id, trade id): a trade closed again
        # after a restart (bars re-processed since the last checkpoint) replaces its earlier copy
        self._history: dict[tuple[str, str], dict[str, Any]] = {}
        self.taken = 0
        self.skipped = 0

    @classmethod
    def load(cls, path: str | Path, params: Params, **kw: Any) -> SignalQualityFilter:
        """The filter of the model file ``path`` (written by ``navale ml train``; its sidecar and sha256 are
        checked before anything is unpickled)."""
        return cls(SimpleLinearModel.load(path), params, source=str(path), **kw)

    # ------------------------------------------------------------------ state the trader keeps
    def observe_bar(self, close: float, delta: float, contract: str | None) -> None:
        """One closed in-session bar (its close price, the signal kernel's delta, its contract)."""
        con = str(contract or "")
        if self._window and self._window[-1][2] != con:
            self._window.clear()  # a new contract segment: research's bar features restart there too
        self._window.append((float(close) / self.tick, float(delta), con))

    def window_state(self) -> list[list[Any]]:
        """The bar window as JSON-able rows (saved with the trader's state at each bar)."""
        return [list(r) for r in self._window]

    def load_window(self, rows: list[list[Any]] | None) -> None:
        """Restore the bar window saved by :meth:`window_state`."""
        self._window.clear()
        for c, d, con in rows or []:
            self._window.append((float(c), float(d), str(con)))

    def add_trades(self, rows: pd.DataFrame) -> None:
        """Closed trades of the run (real and shadow snapshot records): the prior-day history."""
        if rows is None or not len(rows) or not self._prior:
            return
        frame = snap.validate(rows, extra="drop")
        add_labels(frame)
        dec = pd.DatetimeIndex(frame["signal_ts"]) + pd.Timedelta(self.bar_ns, "ns")
        days = session_id(pd.DatetimeIndex(frame["signal_ts"])).astype(str)
        for i in range(len(frame)):
            key = (str(frame["run_id"].iat[i]), str(frame["trade_id"].iat[i]))
            self._history[key] = {"run_id": key[0], "trade_id": key[1], "session_date": days[i],
                                  "decision_ts": dec[i], "exit_ts": frame["exit_ts"].iat[i],
                                  "y_win": float(frame["y_win"].iat[i]), "y_r": float(frame["y_r"].iat[i])}

    # ------------------------------------------------------------------ the decision
    def bar_features(self, delta: float) -> dict[str, float]:
        """``rv12_ticks`` and ``delta_z20`` of the last observed bar (NaN while the window is short), as
        `research.ml.bars.bar_context_from_signals` computes them."""
        w = list(self._window)
        closes = np.array([r[0] for r in w], np.float64)
        deltas = np.array([r[1] for r in w], np.float64)
        rv = float(np.std(np.diff(closes[-(RV_BARS + 1):]), ddof=1)) if len(closes) >= RV_BARS + 1 else math.nan
        if len(deltas) >= DELTA_Z_BARS + 1:
            prev = deltas[-(DELTA_Z_BARS + 1):-1]
            mean, std = float(prev.mean()), float(np.std(prev, ddof=1))
            z = 0.0 if std == 0 else (float(delta) - mean) / std  # research's stated rule for a flat window
        else:
            z = math.nan
        return {"rv12_ticks": rv, "delta_z20": z}

    def decide(self, ctx: dict[str, Any], *, side: int, signal_ts_ns: int, run_id: str) -> QualityDecision:
        """P(win) of the signal with entry context ``ctx`` (from ``context_row``), side ``side``, signal bar
        start ``signal_ts_ns``; never raises (a failure is a skipped signal with ``error`` set)."""
        try:
            x = self.features(ctx, side=side, signal_ts_ns=signal_ts_ns, run_id=run_id)
            bad = [k for k in self.model.features if not np.isfinite(x[k])]
            if bad:
                d = QualityDecision(math.nan, self.threshold, False, undefined=f"feature(s) {bad} not defined yet",
                                    features=x)
            else:
                p = float(self.model.predict_signal_quality(x))
                d = QualityDecision(p, self.threshold, bool(p >= self.threshold), features=x)
        except Exception as exc:  # a broken model never blocks the loop: the signal is skipped
            d = QualityDecision(math.nan, self.threshold, False, error=f"{type(exc).__name__}: {exc}")
        if d.taken:
            self.taken += 1
        else:
            self.skipped += 1
        return d

    def features(self, ctx: dict[str, Any], *, side: int, signal_ts_ns: int, run_id: str) -> dict[str, float]:
        """The model's features of one signal, in the model's order (see the module docstring)."""
        row = self._snapshot_row(ctx, side, signal_ts_ns, run_id)
        sig_ts = pd.Timestamp(int(signal_ts_ns), unit="ns", tz="UTC")
        row["decision_ts"] = sig_ts + pd.Timedelta(self.bar_ns, "ns")
        bars = self.bar_features(float(ctx["delta"])) if self._bars else {"rv12_ticks": math.nan, "delta_z20": math.nan}
        for k, v in bars.items():
            row[k] = v
        X = F.build_features(row, self._feats, prior_day=False)
        out = {k: float(X[k].iat[0]) for k in X.columns}
        if self._prior:
            out.update(self._prior_day(row, run_id))
        return {k: out[k] for k in self.model.features}

    def _snapshot_row(self, ctx: dict[str, Any], side: int, signal_ts_ns: int, run_id: str) -> pd.DataFrame:
        """The one-row snapshot of the signal (its context fields as the stored record will hold them); the
        execution and outcome fields are placeholders no feature reads (the guard refuses them)."""
        ti = np.zeros((1, R.N_T), np.int64)
        tf = np.zeros((1, R.N_TF), np.float64)
        px = int(round(float(ctx["sig_close"]) / self.tick))
        ti[0, R.T_SIDE], ti[0, R.T_SIG_TS] = int(side), int(signal_ts_ns)
        ti[0, R.T_ENTRY_TS] = ti[0, R.T_EXIT_TS] = int(signal_ts_ns) + self.bar_ns
        ti[0, R.T_ENTRY_PX] = ti[0, R.T_EXIT_PX] = px
        ti[0, R.T_STOP_PX] = px - int(side) * int(self.params.stop_ticks)
        ti[0, R.T_TARGET_PX] = px + int(side) * int(self.params.target_ticks)
        frame = trade_frame(ti, tf, pd.DataFrame([ctx]), params=self.params, tick=self.tick, bar_ns=self.bar_ns,
                            symbol=self.symbol, run_id=run_id, order_flow=True)
        return snap.validate(frame, extra="drop")

    def _prior_day(self, row: pd.DataFrame, run_id: str) -> dict[str, float]:
        day = str(session_id(pd.DatetimeIndex(row["signal_ts"]))[0])
        # older sessions never count again
        self._history = {k: h for k, h in self._history.items() if h["session_date"] >= day}
        hist = [h for h in self._history.values() if h["session_date"] == day and h["run_id"] == run_id]
        cur = {"run_id": run_id, "trade_id": "~decision", "session_date": day,
               "decision_ts": row["decision_ts"].iat[0], "exit_ts": pd.Timestamp.max.tz_localize("UTC").floor("s"),
               "y_win": math.nan, "y_r": math.nan}
        frame = pd.DataFrame(hist + [cur])
        frame = frame.sort_values(["decision_ts", "trade_id"], kind="stable").reset_index(drop=True)
        got = F.prior_day_outcomes(frame)
        i = int(np.flatnonzero(frame["trade_id"].to_numpy() == "~decision")[0])
        return {k: float(got[k].iat[i]) for k in PRIOR_NAMES}

    def summary(self) -> dict[str, Any]:
        """What the status line and the ``--out`` files show: the model, the threshold, taken / skipped."""
        return {"model": self.source, "threshold": self.threshold, "taken": self.taken, "skipped": self.skipped,
                "features": len(self.model.features)}
