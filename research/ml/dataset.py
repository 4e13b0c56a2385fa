"""``MLDataProcessor``: trade snapshots -> clean -> features -> labels, as an ``MLDataset``.

Sources: runs of the store (one or several), Parquet exports (``navale runs export``), or in-memory frames.
Steps, each stated in ``MLDataset.meta["rules"]``:

1. clean: every row checked against the snapshot schema; bad rows are rejected with the reason (file, row,
   field), never silently fixed;
2. labels: ``y_win`` = 1 when the trade hit its target (before the stop, within the time stop: the
   simulator's rules) with a positive net P&L (costs included); ``y_r`` = net P&L / initial risk in $
   (realised R after commission and slippage);
3. decision time = signal bar start + one bar (the close, when the decision is made); label window =
   ``[decision_ts, exit_ts]``, used by the purged splitter;
4. bar features (realised volatility, delta z-score) joined at the signal bar, from the run's bars (reloaded
   from the manifest, sha256-checked) or bars passed in;
5. features from the entry context only (:mod:`research.ml.features`, leakage guard), then the look-ahead
   checks of every feature (``check_causality``: row locality, the prior-day rule at every row, as-of prefix
   invariance on sampled cuts);
6. rows whose features are undefined (indicator warm-up) are rejected with the reason.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from research.ml import features as F
from research.ml.clean import clean_snapshots
from research.store import snapshots as snap

__all__ = ["MLDataset", "MLDataProcessor", "KEY_COLUMNS", "LABEL_COLUMNS", "OUTCOME_COLUMNS", "FILTER_COLUMNS", "add_labels", "live_bar_source",
           "read_bar_partitions", "load_live_bars", "DEFAULT_OOS_FROM"]

KEY_COLUMNS = ("run_id", "trade_id", "symbol", "contract", "mode", "side", "session_date", "signal_ts",
               "decision_ts", "entry_ts", "exit_ts")
LABEL_COLUMNS = ("y_win", "y_r")
# Kept for the economic test and the report, never features (the model only ever sees MLDataset.X).
OUTCOME_COLUMNS = ("pnl_usd", "commission_usd", "exit_reason", "r_multiple", "contracts")
# The signal-quality filter's decision and the shadow flag (snapshot group "filter"), kept, never features.
FILTER_COLUMNS = tuple(snap.FILTER_DEFAULTS)
DEFAULT_OOS_FROM = "2021-01-01"
DEFAULT_HORIZON_BARS = 50  # METHOD.md 7.8: target before the stop within 50 bars
_WARMUP_FIELDS = ("atr14_ticks", "rel_volume", "ret5_ticks", "ret15_ticks")
_DATASET_VERSION = 1

RULES = {
    "label": "y_win = 1 when exit_reason is 'target' (target hit before the stop, within the time stop, under "
             "the simulator's rules) and pnl_usd > 0 (commission and slippage included); y_r = pnl_usd / initial "
             "risk in $ (|entry - stop| in ticks x tick value x contracts)",
    "decision": "decision_ts = signal bar start + one bar (the signal bar's close)",
    "missing": "base fields null when there is no reference base -> 0, with has_base = 0; warm-up nulls "
               "(ATR, relative volume, 5/15-bar returns, bar features) -> row rejected with the reason; "
               "vix_regime is not used (null without VIX data)",
    "prior_day": "same-day history = other trades of the same run and session with exit_ts < decision_ts "
                 "(strictly: an exit filled at the open of the decision bar has an unknown price)",
    "leakage": "features read only snapshot 'context' fields, side/signal_ts/symbol, decision_ts and the bar "
               "features (always recomputed from the bars); outcome/execution/audit fields are refused by schema; "
               "every build checks row locality, re-evaluates the prior-day rule at every row, and checks as-of "
               "prefix invariance on sampled cuts",
}


@dataclass
class MLDataset:
    """One row per trade, ordered by decision time: keys, features, labels and (never as features) outcomes."""

    frame: pd.DataFrame
    features: tuple[str, ...]
    rejected: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["source", "stage", "row", "run_id", "trade_id", "reason"]))
    meta: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def X(self) -> pd.DataFrame:
        """The design matrix (float64, the feature columns only)."""
        return self.frame.loc[:, list(self.features)].astype(np.float64)

    @property
    def y(self) -> np.ndarray:
        """Win label (0/1)."""
        return self.frame["y_win"].to_numpy(np.int64)

    @property
    def r(self) -> np.ndarray:
        """Realised net R (regression target)."""
        return self.frame["y_r"].to_numpy(np.float64)

    @property
    def t0(self) -> pd.DatetimeIndex:
        """Decision times (label window start)."""
        return pd.DatetimeIndex(self.frame["decision_ts"])

    @property
    def t1(self) -> pd.DatetimeIndex:
        """Exit times (label window end)."""
        return pd.DatetimeIndex(self.frame["exit_ts"])

    @property
    def embargo(self) -> pd.Timedelta:
        """The embargo the splitter should use: at least the label horizon (``meta['embargo']``)."""
        return pd.Timedelta(self.meta.get("embargo", "250min"))

    @property
    def sessions(self) -> list[str] | None:
        """Trading dates the source runs covered (for flat days in the economic test), when known."""
        return self.meta.get("sessions")

    def rows_hash(self) -> str:
        """sha256 (16 hex) of the keys, features and labels and the feature list: what a model is fitted on."""
        cols = ["run_id", "trade_id", *self.features, *LABEL_COLUMNS]
        h = pd.util.hash_pandas_object(self.frame.loc[:, cols], index=False).to_numpy()
        return hashlib.sha256(h.tobytes() + json.dumps(list(self.features)).encode()).hexdigest()[:16]

    def data_hash(self) -> str:
        """sha256 (16 hex) of every column (keys, times, features, labels, outcomes), the feature list and the
        split settings (embargo, horizon, bar): the identity of what a model was trained and validated on."""
        h = pd.util.hash_pandas_object(self.frame, index=False).to_numpy()
        settings = {k: self.meta.get(k) for k in ("embargo", "horizon_bars", "bar")}
        blob = h.tobytes() + json.dumps([list(self.frame.columns), list(self.features), settings], default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def subset(self, rows: Sequence[int] | np.ndarray) -> MLDataset:
        """The rows at positions ``rows`` (order kept), same features and meta."""
        rows = np.asarray(rows)
        meta = {**self.meta, "parent_data_hash": self.meta.get("parent_data_hash") or self.data_hash()}
        return MLDataset(self.frame.iloc[rows].reset_index(drop=True), self.features, self.rejected, meta)

    def split_oos(self, oos_from: str | pd.Timestamp = DEFAULT_OOS_FROM) -> tuple[MLDataset, MLDataset]:
        """(train, out-of-sample): OOS = decided on/after ``oos_from``; train = labels closed before it minus the embargo."""
        from research.ml.splits import time_split

        tr, te = time_split(self.t0, self.t1, oos_from, embargo=self.embargo)
        return self.subset(tr), self.subset(te)

    def summary(self) -> dict[str, Any]:
        """Counts, base rate and time span."""
        n = len(self)
        return {
            "trades": n,
            "rejected": int(len(self.rejected)),
            "win_rate": float(self.y.mean()) if n else float("nan"),
            "mean_r": float(self.r.mean()) if n else float("nan"),
            "first": str(self.t0.min()) if n else None,
            "last": str(self.t0.max()) if n else None,
            "features": len(self.features),
            "runs": sorted(self.frame["run_id"].unique().tolist()) if n else [],
        }

    # -------------------------------------------------------------- persistence
    def save(self, folder: str | Path) -> Path:
        """Write ``dataset.parquet``, ``rejected.csv`` and ``dataset.json`` (features, meta, hash) atomically."""
        from research.store.files import atomic_write_bytes, atomic_write_text

        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        self.frame.to_parquet(buf, index=False)
        atomic_write_bytes(folder / "dataset.parquet", buf.getvalue())
        atomic_write_text(folder / "rejected.csv", self.rejected.to_csv(index=False))
        info = {"dataset_version": _DATASET_VERSION, "features": list(self.features), "data_hash": self.data_hash(),
                "summary": self.summary(), "meta": self.meta}
        atomic_write_text(folder / "dataset.json", json.dumps(info, indent=1, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> MLDataset:
        """Read a folder written by :meth:`save`; the stored hash must match the data."""
        folder = Path(folder)
        info_path = folder / "dataset.json"
        if not info_path.exists():
            raise FileNotFoundError(f"{folder}: no dataset.json (not a folder written by `navale ml dataset`)")
        info = json.loads(info_path.read_text())
        if info.get("dataset_version") != _DATASET_VERSION:
            raise ValueError(f"{info_path}: dataset version {info.get('dataset_version')}, this code reads {_DATASET_VERSION}")
        if not (folder / "dataset.parquet").exists():
            raise FileNotFoundError(f"{folder}: dataset.json without dataset.parquet (an incomplete data set folder)")
        frame = pd.read_parquet(folder / "dataset.parquet")
        rej_path = folder / "rejected.csv"
        rejected = pd.read_csv(rej_path) if rej_path.exists() and rej_path.stat().st_size else None
        ds = cls(frame, tuple(info["features"]), meta=info["meta"])
        if rejected is not None:
            ds.rejected = rejected
        if ds.data_hash() != info["data_hash"]:
            raise ValueError(f"{folder}: dataset.parquet or the settings in dataset.json changed since written "
                             f"(hash mismatch)")
        horizon, bar = ds.meta.get("horizon_bars"), ds.meta.get("bar")
        if horizon and bar and ds.embargo < int(horizon) * pd.Timedelta(bar):
            raise ValueError(f"{info_path}: embargo {ds.embargo} is shorter than the label horizon "
                             f"({horizon} bars of {bar})")
        return ds


class MLDataProcessor:
    """Build an :class:`MLDataset` from trade snapshots (see the module docstring for the steps).

    ``features``: the registry to use (default :data:`research.ml.features.FEATURES`; a feature reading an
    outcome is refused). ``bar_features=False`` drops the two bar features (for snapshots without bars: a
    model trained so records it). ``check_causality``: run the as-of prefix-invariance check on ``cuts`` cuts.
    ``shadow``: keep shadow trades (signals a live quality filter skipped, followed as if taken: labelled
    samples like the others); False drops them.
    """

    def __init__(self, *, features: Iterable[F.Feature] | None = None, bar_features: bool = True,
                 prior_day: bool = True, check_causality: bool = True, cuts: int = 6,
                 horizon_bars: int | None = None, shadow: bool = True) -> None:
        feats = tuple(F.FEATURES if features is None else features)
        if not bar_features:
            feats = tuple(f for f in feats if not set(f.inputs) & set(F.BAR_COLUMNS))
        for f in feats:
            F.check_inputs(f)
        self.features = feats
        self.bar_features = bar_features
        self.prior_day = prior_day
        self.check_causality = check_causality
        self.cuts = cuts
        self.horizon_bars = horizon_bars
        self.shadow = bool(shadow)

    # -------------------------------------------------------------- sources
    def from_store(self, run_ids: Sequence[str] | str, *, store=None,
                   bars: Mapping[str, pd.DataFrame] | None = None) -> MLDataset:
        """Snapshots of one or several runs of the store (default store, read-only); bars reloaded from each
        run's manifest unless given per run id."""
        from research.store import RunStore

        ids = [run_ids] if isinstance(run_ids, str) else list(run_ids)
        if not ids:
            raise ValueError("no run ids given")

        def read(s) -> tuple[pd.DataFrame, dict]:
            frames, mans = [], {}
            for rid in ids:
                frames.append(s.snapshots(rid, shadow=self.shadow))
                mans[rid] = s.manifest(rid)
            return pd.concat(frames, ignore_index=True), mans

        if isinstance(store, RunStore):
            snaps, manifests = read(store)
        else:
            with RunStore(Path(store) if store is not None else None, read_only=True) as s:
                snaps, manifests = read(s)
        return self.from_frame(snaps, source=f"store runs {', '.join(ids)}", manifests=manifests, bars=bars)

    def from_parquet(self, paths: Sequence[str | Path] | str | Path, *,
                     bars: Mapping[str, pd.DataFrame] | None = None) -> MLDataset:
        """Snapshots from Parquet exports (``navale runs export``); the schema version must match."""
        import pyarrow.parquet as pq

        paths = [paths] if isinstance(paths, (str, Path)) else list(paths)
        frames, rejected, manifests = [], [], {}
        for p in paths:
            p = Path(p)
            if not p.exists():
                raise FileNotFoundError(f"{p}: no such file")
            meta = pq.read_schema(p).metadata or {}
            version = meta.get(b"navale_snapshot_version")
            if version is not None and int(version) not in snap.READABLE_VERSIONS:
                older = [v for v in snap.READABLE_VERSIONS if v != snap.SCHEMA_VERSION]
                raise snap.SnapshotError(f"{p}: snapshot schema version {int(version)}, this code reads "
                                         f"{snap.SCHEMA_VERSION} (and {', '.join(map(str, older))}, read as "
                                         f"{snap.SCHEMA_VERSION})")
            if b"navale_manifests" in meta:  # written by RunStore.export_parquet: sessions, params, synthetic flag
                try:
                    manifests.update(json.loads(meta[b"navale_manifests"]))
                except ValueError:
                    raise snap.SnapshotError(f"{p}: the navale_manifests metadata is not valid JSON") from None
            valid, rej = clean_snapshots(snap.upgrade(pd.read_parquet(p)), source=str(p))
            frames.append(valid)
            rejected.append(rej)
        snaps = pd.concat(frames, ignore_index=True)
        return self._build(snaps, pd.concat(rejected, ignore_index=True), manifests=manifests, bars=bars,
                           source=", ".join(str(p) for p in paths))

    def from_frame(self, snapshots: pd.DataFrame, *, source: str = "frame", manifests: Mapping[str, dict] | None = None,
                   bars: Mapping[str, pd.DataFrame] | pd.DataFrame | None = None) -> MLDataset:
        """Snapshots already in memory (e.g. ``BacktestResult.snapshots()``). ``bars``: one frame (all runs) or
        a mapping run id -> bars; missing ones are reloaded from ``manifests`` when possible."""
        valid, rejected = clean_snapshots(snapshots, source=source)
        return self._build(valid, rejected, manifests=dict(manifests or {}), bars=bars, source=source)

    def from_backtest(self, stored, bars: pd.DataFrame) -> MLDataset:
        """From a :class:`research.pipeline.StoredBacktest` and the bars it ran on (nothing reloaded)."""
        manifests = {stored.run_id: stored.manifest}
        return self.from_frame(stored.result.snapshots(), source=f"backtest {stored.run_id}", manifests=manifests,
                               bars={stored.run_id: bars})

    # -------------------------------------------------------------- the pipeline
    def _build(self, snaps: pd.DataFrame, rejected: pd.DataFrame, *, manifests: dict, bars, source: str) -> MLDataset:
        snaps = snaps.copy() if self.shadow else snaps.loc[~snaps["shadow"].to_numpy(bool)].reset_index(drop=True)
        rejected = [rejected] if len(rejected) else []
        runs = list(dict.fromkeys(snaps["run_id"].astype(str)))
        bar_frames = self._bars_by_run(runs, manifests, bars)

        # decision time: signal bar start + one bar (from the bars, else the commonest entry - signal gap of the run)
        bar_len = {}
        for rid in runs:
            b = bar_frames.get(rid)
            if isinstance(b, pd.DataFrame) and len(b) > 1 and {"open", "high", "low", "close"} <= set(b.columns):
                from strategy.signals import bar_duration_ns

                bar_len[rid] = pd.Timedelta(bar_duration_ns(b, None), "ns")
            else:
                m = snaps["run_id"] == rid
                gaps = pd.DatetimeIndex(snaps.loc[m, "entry_ts"]) - pd.DatetimeIndex(snaps.loc[m, "signal_ts"])
                bar_len[rid] = pd.Series(gaps).mode().min() if len(gaps) else pd.Timedelta("5min")
        snaps["decision_ts"] = snaps["signal_ts"] + snaps["run_id"].map(bar_len).astype("timedelta64[ns]")

        from strategy.market.sessions import session_id

        snaps["session_date"] = pd.Series(session_id(pd.DatetimeIndex(snaps["signal_ts"]))).astype(str).to_numpy()
        add_labels(snaps)

        # bar features joined at the signal bar
        if self.bar_features:
            for col in F.BAR_COLUMNS:
                snaps[col] = np.nan
            for rid in runs:
                b = bar_frames.get(rid)
                if b is None:
                    raise ValueError(
                        f"run {rid}: the bar features need the bars it ran on; none were given and the manifest "
                        f"cannot supply them (pass bars=, or bar_features=False to train without them)")
                ctx = self._context_of(b, manifests.get(rid), rid)
                m = (snaps["run_id"] == rid).to_numpy()
                joined = ctx.reindex(pd.DatetimeIndex(snaps.loc[m, "signal_ts"]))
                for col in F.BAR_COLUMNS:
                    snaps.loc[m, col] = joined[col].to_numpy()

        # time order: decision, then run and trade id (deterministic)
        snaps = snaps.sort_values(["decision_ts", "run_id", "trade_id"], kind="stable").reset_index(drop=True)

        # as-of causality of every feature, on the full history of the sources
        if self.check_causality and len(snaps) > 2:
            bad = F.causality_violations(snaps, self.features, prior_day=self.prior_day, cuts=self.cuts)
            if bad:
                raise F.LeakageError("features depend on information after the decision:\n  " + "\n  ".join(bad[:10]))

        X = F.build_features(snaps, self.features, prior_day=self.prior_day)

        # rows that cannot be used: warm-up nulls, then any undefined feature
        reason = pd.Series(pd.NA, index=snaps.index, dtype="object")
        for col in _WARMUP_FIELDS + (F.BAR_COLUMNS if self.bar_features else ()):
            reason = reason.mask(reason.isna() & snaps[col].isna(), f"warm-up: {col} is null")
        finite = np.isfinite(X.to_numpy())
        for j, col in enumerate(X.columns):
            reason = reason.mask(reason.isna() & ~finite[:, j], f"feature {col!r} is not finite")
        reason = reason.mask(reason.isna() & ~np.isfinite(snaps["y_r"].to_numpy(np.float64)), "label y_r undefined (zero risk)")
        bad = reason.notna().to_numpy()
        if bad.any():
            # stage "features": row = position in the time-ordered, merged snapshots (not in a source file)
            rejected.append(pd.DataFrame({"source": source, "stage": "features", "row": np.flatnonzero(bad),
                                          "run_id": snaps.loc[bad, "run_id"].to_numpy(),
                                          "trade_id": snaps.loc[bad, "trade_id"].to_numpy(),
                                          "reason": reason[bad].astype(str).to_numpy()}))
        keep = ~bad
        if not keep.any():
            counts = pd.concat(rejected, ignore_index=True)["reason"].value_counts() if rejected else pd.Series(dtype=int)
            detail = "; ".join(f"{r}: {n}" for r, n in counts.head(5).items())
            raise ValueError(f"{source}: no usable trades ({len(snaps) if len(snaps) else 'no'} snapshot rows"
                             f"{', every row rejected: ' + detail if detail else ''})")
        cols = [c for c in KEY_COLUMNS] + list(LABEL_COLUMNS) + list(OUTCOME_COLUMNS) + list(FILTER_COLUMNS)
        frame = pd.concat([snaps.loc[keep, cols].reset_index(drop=True), X.loc[keep].reset_index(drop=True)], axis=1)
        rej = pd.concat(rejected, ignore_index=True) if rejected else MLDataset(frame, ()).rejected
        meta = self._meta(frame, manifests, runs, bar_len, source)
        return MLDataset(frame, tuple(X.columns), rej, meta)

    def _bars_by_run(self, runs: list[str], manifests: Mapping[str, dict], bars) -> dict[str, pd.DataFrame]:
        """Bars per run: given (one frame for all, or per run id), else reloaded from the manifest when the bar
        features are on; identical file sets are loaded once."""
        from research.ml.bars import BarContext

        if isinstance(bars, (pd.DataFrame, BarContext)):
            return {rid: bars for rid in runs}
        out = dict(bars or {})
        if not self.bar_features:
            return out
        cache: dict[str, pd.DataFrame] = {}
        for rid in runs:
            if rid in out or rid not in manifests:
                continue
            man = manifests[rid]
            live = live_bar_source(man)
            if live is not None:  # a paper / collector run: the bars it traded on
                key = json.dumps(live, sort_keys=True, default=str)
                if key not in cache:
                    cache[key] = load_live_bars(man, rid)
                out[rid] = cache[key]
                continue
            if not man.get("data_files") and man.get("kind") == "paper":
                raise ValueError(f"run {rid}: a paper run whose bars the manifest does not name (no "
                                 "bars_partitions, replay path or synthetic spec): pass bars=, or "
                                 "--no-bar-features")
            key = json.dumps([sorted(f["sha256"] for f in man.get("data_files", [])), man.get("extra", {})],
                             sort_keys=True, default=str)
            if key not in cache:
                cache[key] = _load_manifest_bars(man, rid)
            out[rid] = cache[key]
        return out

    @staticmethod
    def _context_of(bars, manifest: dict | None, rid: str) -> pd.DataFrame:
        """The bar features of a run. Bars (OHLC) are always recomputed here, whatever extra columns they carry:
        a caller-supplied ``rv12_ticks`` column would bypass the causality of ``research.ml.bars``. Only an
        explicit :class:`research.ml.bars.BarContext` is taken as it is."""
        from research.ml.bars import BarContext

        if isinstance(bars, BarContext):
            return bars.frame
        if isinstance(bars, pd.DataFrame) and {"open", "high", "low", "close"} <= set(bars.columns):
            return MLDataProcessor._bar_context(bars, manifest)
        raise ValueError(f"run {rid}: the bars given have no open/high/low/close columns, so the bar features cannot "
                         f"be computed (a precomputed context must be wrapped in research.ml.bars.BarContext)")

    @staticmethod
    def _bar_context(bars: pd.DataFrame, manifest: dict | None) -> pd.DataFrame:
        from research.ml.bars import bar_context
        from strategy import Params

        params = Params.from_dict(manifest["params"]) if manifest and manifest.get("params") else Params()
        return bar_context(bars, params)

    def _meta(self, frame: pd.DataFrame, manifests: Mapping[str, dict], runs: list[str], bar_len: dict,
              source: str) -> dict[str, Any]:
        horizon = self.horizon_bars
        if horizon is None:
            stops = [int(m["params"]["time_stop_bars"]) for m in manifests.values()
                     if m.get("params", {}).get("time_stop_bars") is not None]
            horizon = max(stops) if stops else DEFAULT_HORIZON_BARS
        longest_bar = max(bar_len.values()) if bar_len else pd.Timedelta("5min")
        longest_label = (pd.DatetimeIndex(frame["exit_ts"]) - pd.DatetimeIndex(frame["decision_ts"])).max() \
            if len(frame) else pd.Timedelta(0)
        embargo = max(horizon * longest_bar, longest_label if pd.notna(longest_label) else pd.Timedelta(0))
        sessions = sorted({d for m in manifests.values() for d in (m.get("sessions") or [])}) or None
        warnings: list[str] = []
        if frame["run_id"].nunique() > 1:
            same = frame.duplicated(subset=["contract", "side", "signal_ts"], keep=False)
            if same.any():
                warnings.append(
                    f"{int(same.sum())} trades share contract, side and signal bar with a trade of another run "
                    f"(runs over the same data): they are not independent samples, so the CV and the permutation "
                    f"test overstate the evidence; use one run per period")
        params_hashes = sorted({m.get("params_hash") for m in manifests.values() if m.get("params_hash")})
        return {
            "source": source,
            "runs": {rid: {k: manifests[rid].get(k) for k in ("mode", "session", "params_hash", "git_commit", "extra")}
                     for rid in runs if rid in manifests},
            "params_hashes": params_hashes,
            "params": next(iter(manifests.values())).get("params") if len(params_hashes) == 1 else None,
            "snapshot_schema_version": snap.SCHEMA_VERSION,
            "feature_schema_version": F.FEATURE_SCHEMA_VERSION,
            "bar_features": self.bar_features,
            "prior_day": self.prior_day,
            "horizon_bars": int(horizon),
            "bar": str(longest_bar),
            "embargo": str(embargo),
            "sessions": sessions,
            "synthetic": any(bool((m.get("extra") or {}).get("synthetic")) for m in manifests.values()),
            "rules": RULES,
            "warnings": warnings,
        }


def add_labels(snaps: pd.DataFrame) -> None:
    """Add the labels ``y_win`` and ``y_r`` (``RULES["label"]``) to the snapshot frame ``snaps``, in place."""
    tick = np.empty(len(snaps))
    tick_value = np.empty(len(snaps))
    for sym, rows in snaps.groupby("symbol", sort=False).groups.items():
        spec = _spec(str(sym), snaps.loc[rows, "contract"])
        tick[rows] = spec.tick_size
        tick_value[rows] = spec.tick_size * spec.point_value
    risk_ticks = np.abs(snaps["entry_price"].to_numpy(np.float64) - snaps["stop_price"].to_numpy(np.float64)) / tick
    risk_usd = risk_ticks * tick_value * snaps["contracts"].to_numpy(np.float64)
    pnl = snaps["pnl_usd"].to_numpy(np.float64)
    snaps["y_win"] = ((snaps["exit_reason"].astype(str) == "target").to_numpy() & (pnl > 0)).astype(np.int64)
    with np.errstate(divide="ignore", invalid="ignore"):
        snaps["y_r"] = np.where(risk_usd > 0, pnl / risk_usd, np.nan)


def _spec(symbol: str, contracts: pd.Series):
    """Instrument spec of a snapshot symbol: the symbol itself, else its traded contract, else the part before a
    dot (continuous names such as ``ES.c``)."""
    from strategy.market.instruments import get_spec

    candidates = [symbol, *contracts.dropna().astype(str).unique()[:1].tolist(), symbol.split(".")[0]]
    for c in candidates:
        try:
            return get_spec(c)
        except KeyError:
            continue
    raise KeyError(f"symbol {symbol!r}: no instrument spec for it or its contract (register it in strategy.market.instruments)")


BAR_PARTITION_COLUMNS = ("open", "high", "low", "close", "volume", "bid_volume", "ask_volume", "num_trades", "contract")


def live_bar_source(manifest: Mapping[str, Any]) -> dict[str, Any] | None:
    """Where a live run's bars are, from its store manifest: ``bars_partitions`` (a collector's hive-partitioned
    bar Parquet directory), a ``replay:PATH`` feed, or the synthetic feed's spec; None when it names none."""
    if manifest.get("bars_partitions"):
        return {"partitions": str(manifest["bars_partitions"]), "symbol": manifest.get("symbol")}
    feed = str(manifest.get("feed") or "")
    if feed.lower().startswith("replay:"):
        return {"replay": feed.split(":", 1)[1], "bar": manifest.get("bar")}
    if feed.strip() == "synthetic" and manifest.get("synthetic_spec"):
        return {"synthetic": manifest["synthetic_spec"], "bar": manifest.get("bar")}
    return None


def read_bar_partitions(root: str | Path, symbol: str | None = None) -> pd.DataFrame:
    """The canonical bar frame (index ``time``: bar start, UTC; OHLCV, bid/ask volume, trades, contract) of a
    hive-partitioned bar directory ``ROOT/symbol=SYM/date=YYYY-MM-DD/*.parquet`` (the collector's
    ``parquet/bars``; ``root`` may be the ``symbol=SYM`` folder itself). Raises naming the folder when empty."""
    import pyarrow.dataset as pads

    root = Path(root)
    if symbol and (root / f"symbol={symbol}").is_dir():
        root = root / f"symbol={symbol}"
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no bar partitions there")
    table = pads.dataset(str(root), format="parquet", partitioning="hive").to_table()
    if table.num_rows == 0:
        raise ValueError(f"{root}: the bar partitions hold no bars")
    df = table.to_pandas()
    missing = [c for c in ("ts", *BAR_PARTITION_COLUMNS) if c not in df.columns]
    if missing:
        raise ValueError(f"{root}: bar partitions without column(s) {missing}")
    idx = pd.DatetimeIndex(df["ts"])
    idx = (idx.tz_localize("UTC") if idx.tz is None else idx.tz_convert("UTC")).as_unit("ns")
    out = df.loc[:, list(BAR_PARTITION_COLUMNS)].copy()
    out.index = pd.DatetimeIndex(idx, name="time")
    out = out.sort_index(kind="stable")
    if out.index.has_duplicates:
        raise ValueError(f"{root}: bar partitions hold {int(out.index.duplicated().sum())} duplicated bar time(s)")
    for c in ("open", "high", "low", "close"):
        out[c] = out[c].astype(np.float64)
    for c in ("volume", "bid_volume", "ask_volume", "num_trades"):
        out[c] = out[c].astype(np.int64)
    out["contract"] = out["contract"].astype(str)
    sym = symbol or (str(df["symbol"].iat[0]) if "symbol" in df.columns else root.name.removeprefix("symbol="))
    from strategy.market.instruments import get_spec, root_of

    try:
        spec = get_spec(root_of(sym))
    except (KeyError, ValueError):
        raise ValueError(f"{root}: symbol {sym!r} has no instrument spec (tick size unknown)") from None
    out.attrs.update(symbol=sym, root=root_of(sym), tick_size=spec.tick_size, order_flow=True,
                     sources=[str(root)], session="all")
    return out


def load_live_bars(manifest: Mapping[str, Any], run_id: str) -> pd.DataFrame:
    """The bars of a paper / collector run, from what :func:`live_bar_source` finds in its manifest."""
    from research.data import load_bars

    src = live_bar_source(manifest)
    if src is None:
        raise ValueError(f"run {run_id}: the manifest names no bars (bars_partitions, replay path or synthetic spec)")
    if "partitions" in src:
        return read_bar_partitions(src["partitions"], src.get("symbol"))
    if "replay" in src:
        p = Path(src["replay"])
        if not p.exists():
            raise FileNotFoundError(f"run {run_id}: replayed file {p} is gone; pass the bars explicitly or use "
                                    "--no-bar-features")
        return load_bars(p, bar=src.get("bar"))
    from research.data import SyntheticSpec, default_dataset

    return load_bars(default_dataset(SyntheticSpec(**src["synthetic"])), bar=src.get("bar") or "5min")


def _load_manifest_bars(manifest: dict, run_id: str) -> pd.DataFrame:
    """The bars a stored run ran on, from its manifest's files (each sha256-checked) and load options."""
    from research.pipeline import load_series
    from research.store import file_sha256

    files = manifest.get("data_files") or []
    if not files:
        raise ValueError(f"run {run_id}: the manifest lists no data files, so its bars cannot be reloaded")
    for f in files:
        p = Path(f["path"])
        if not p.exists():
            raise FileNotFoundError(f"run {run_id}: data file {p} is gone; pass the bars explicitly "
                                    f"or use bar_features=False")
        if file_sha256(p) != f["sha256"]:
            raise ValueError(f"run {run_id}: data file {p} changed since the run (sha256 differs)")
    extra = manifest.get("extra") or {}
    series = "continuous" if extra.get("series", "continuous") == "continuous" else "contracts"
    loaded = load_series([f["path"] for f in files], bar=extra.get("bar"), date_from=extra.get("from"),
                         date_to=extra.get("to"), series=series, symbol=extra.get("symbol"),
                         allow_data_errors=bool((extra.get("data_check") or {}).get("allow_data_errors")))
    if len(loaded) != 1:
        raise ValueError(f"run {run_id}: its files load as {len(loaded)} series, expected one")
    return loaded[0].frame
