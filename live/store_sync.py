"""Closed paper trades copied into the DuckDB run store, in a background thread.

The run store (:class:`research.store.RunStore`) holds one read-write process at a time, so the trader
never writes it on its own path: :meth:`StoreSync.push` hands the trades to a thread that rewrites the
session's run (manifest + every trade so far, one transaction) whenever the store is free. The trades
are the same snapshot records backtests write, so ``PerformanceTracker.from_store(run_id)`` and the ML
data set read a paper session exactly as a backtest. A store held by another process is retried every
``retry_s``; a failed write keeps the trades; :meth:`close` flushes, and what still could not be stored
is saved as a pending bundle (``navale runs import`` adds it later).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from research.store import snapshots as snap
from research.store.pending import pending_dir, save_pending_run
from research.store.runs import RunStore, StoredRun, StoreError, one_line

__all__ = ["StoreSync"]


class StoreSync:
    """Keep run ``run_id`` of the store at ``store_path`` equal to the trades pushed so far.

    ``manifest`` is the run's manifest (``mode`` paper or data_collection, ``unvalidated``, ``params``,
    ``session``...); :meth:`set_manifest` replaces it (e.g. to add the sessions covered). Rows are
    snapshot records (dicts or a DataFrame), validated on :meth:`push` (a bad one raises there, naming
    the field); a trade pushed again under its ``trade_id`` replaces the earlier copy.
    """

    def __init__(self, store_path: str | Path, run_id: str, manifest: Mapping[str, Any], *,
                 retry_s: float = 2.0, lock_wait_s: float = 0.5) -> None:
        self.store_path = Path(store_path)
        self.run_id = run_id
        self.retry_s = retry_s
        self.lock_wait_s = lock_wait_s
        self._manifest = _stamped(manifest)
        self._frames: list[pd.DataFrame] = []
        self._n_pushed = 0
        self._n_stored = 0
        self._version = 0  # bumped by every push / set_manifest
        self._stored_version = 0
        self.last_error: str | None = None
        self.writes = 0
        self._cond = threading.Condition()
        self._closing = False
        self._deadline = math.inf
        self._thread = threading.Thread(target=self._loop, name=f"store-sync-{run_id}", daemon=True)
        self._thread.start()

    # -- the trader's side (never blocks on the store)

    def push(self, rows: Iterable[Mapping[str, Any]] | pd.DataFrame) -> int:
        """Queue closed trades for the store; returns how many. Never waits for the store."""
        frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame([dict(r) for r in rows])
        if frame.empty:
            return 0
        frame["run_id"] = self.run_id
        valid = snap.validate(frame, extra="drop")
        with self._cond:
            if self._closing:
                raise RuntimeError(f"store sync of run {self.run_id} is closed")
            self._frames.append(valid)
            self._n_pushed += len(valid)
            self._version += 1
            self._cond.notify()
        return len(valid)

    def set_manifest(self, manifest: Mapping[str, Any]) -> None:
        """Replace the run's manifest (written with the next store write)."""
        with self._cond:
            self._manifest = _stamped(manifest, self._manifest.get("created_at"))
            self._version += 1
            self._cond.notify()

    @property
    def pending(self) -> bool:
        """True while something pushed is not yet in the store."""
        with self._cond:
            return self._stored_version != self._version

    @property
    def stored(self) -> int:
        """Trades in the store as of the last successful write."""
        return self._n_stored

    def close(self, timeout: float = 30.0) -> bool:
        """Flush and stop the thread; True if the store holds everything pushed. Otherwise the run is
        saved as a pending bundle (``last_error`` says where) and False is returned."""
        with self._cond:
            self._deadline = time.monotonic() + timeout
            self._closing = True
            self._cond.notify()
        self._thread.join(timeout + self.lock_wait_s + 5.0)
        if not self.pending:
            return True
        got = self._run()
        if got is None:
            return True
        run = got[0]
        try:
            where = save_pending_run(run, pending_dir(self.store_path), store=self.store_path,
                                     reason=self.last_error or "store sync closed before the store was free")
            self.last_error = f"{self.last_error or 'store not written'}; the run is saved as {where} (navale runs import adds it)"
        except OSError as exc:
            self.last_error = f"{self.last_error or 'store not written'}; the pending bundle failed too: {exc}"
        return False

    def __enter__(self) -> StoreSync:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the thread

    def _run(self) -> tuple[StoredRun, int] | None:
        """The run as it stands (manifest, every trade pushed, a small summary) and its version."""
        with self._cond:
            frames, manifest, version = list(self._frames), dict(self._manifest), self._version
        if version == 0:
            return None
        trades = pd.concat(frames, ignore_index=True) if frames else snap.validate(pd.DataFrame(columns=list(snap.names())))
        trades = trades.drop_duplicates(subset=["trade_id"], keep="last").sort_values(["entry_ts", "trade_id"])
        shadow = trades["shadow"].fillna(False).astype(bool) if "shadow" in trades.columns else pd.Series(False, trades.index)
        pnl = trades.loc[~shadow, "pnl_usd"].astype(float)  # the real book's; shadow trades are counted apart
        summary = {"n_trades": int(len(pnl)), "net_pnl_usd": float(pnl.sum()),
                   "win_rate": float((pnl > 0).mean()) if len(pnl) else None,
                   "shadow_trades": int(shadow.sum()),
                   "shadow_net_pnl_usd": float(trades.loc[shadow, "pnl_usd"].astype(float).sum())}
        summary = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in summary.items()}
        return StoredRun(manifest, trades.reset_index(drop=True), summary, self.run_id), version

    def _write_once(self) -> bool:
        got = self._run()
        if got is None:
            return True
        run, version = got
        try:
            with RunStore(self.store_path, timeout=self.lock_wait_s, on_wait=None) as store:
                store.write_runs([run])
        except StoreError as exc:  # locked past lock_wait_s, full disk, read-only: keep the trades, retry
            self.last_error = one_line(exc)
            return False
        with self._cond:
            self._stored_version = version
            self._n_stored = len(run.snapshots)
        self.writes += 1
        self.last_error = None
        return True

    def _loop(self) -> None:
        retry_at = 0.0
        while True:
            with self._cond:
                while True:
                    now = time.monotonic()
                    done = self._stored_version == self._version
                    if self._closing:
                        if done or now >= self._deadline:
                            return
                        if now >= retry_at:
                            break
                        self._cond.wait(min(retry_at, self._deadline) - now)
                        continue
                    if not done and now >= retry_at:
                        break
                    self._cond.wait(None if done else retry_at - now)
                closing = self._closing
            ok = self._write_once()
            retry_at = 0.0 if ok else time.monotonic() + (min(self.retry_s, 0.2) if closing else self.retry_s)


def _stamped(manifest: Mapping[str, Any], created_at: str | None = None) -> dict[str, Any]:
    """The manifest with a ``created_at`` (kept across rewrites: the session's start, not the last write)."""
    out = dict(manifest)
    if not out.get("created_at"):
        out["created_at"] = created_at or pd.Timestamp.now(tz="UTC").isoformat()
    return out
