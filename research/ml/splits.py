"""Time-ordered cross-validation for trade labels: purged k-fold with an embargo, and the OOS split.

A trade's label is only known at its exit, so sample i "lives" on ``[t0_i, t1_i]`` (decision time to exit
time). :class:`PurgedKFold` cuts the time-ordered samples into k contiguous test blocks; for each block it
removes from training every sample whose interval overlaps the test block's span (purging) and every sample
that starts less than ``embargo`` after the block ends (the embargo: serial correlation right after the test
period). The embargo must be at least the label horizon (50 bars of 5 minutes by METHOD.md 7.8).

Written here rather than taken from skfolio: skfolio's ``CombinatorialPurgedCV`` purges a fixed number of
observations of an evenly spaced return series; trades are irregular events with their own label end time
``t1``, which is what purging needs (López de Prado, AFML ch. 7). The class follows scikit-learn's splitter
API, so ``cross_validate``, ``permutation_test_score`` and ``learning_curve`` accept it as ``cv``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pandas as pd

__all__ = ["PurgedKFold", "time_split", "overlapping_pairs"]


def _ns(x) -> np.ndarray:
    return pd.DatetimeIndex(x).as_unit("ns").asi8


class PurgedKFold:
    """K contiguous time blocks as test folds; training purged of overlapping labels and embargoed after each block.

    ``t0``/``t1``: per sample, decision time and label end (exit) time, tz-aware; samples must be ordered by
    ``t0``. ``embargo``: a ``pandas.Timedelta`` (or anything it parses), at least the label horizon.
    ``min_train``: folds left with fewer training samples raise (a clear error, not a silent empty fit).
    """

    def __init__(self, n_splits: int = 5, *, t0, t1, embargo="250min", min_train: int = 1) -> None:
        if n_splits < 2:
            raise ValueError(f"n_splits must be >= 2, not {n_splits}")
        self.n_splits = int(n_splits)
        self.t0 = _ns(t0)
        self.t1 = _ns(t1)
        if len(self.t0) != len(self.t1):
            raise ValueError("t0 and t1 differ in length")
        if np.any(self.t1 < self.t0):
            i = int(np.flatnonzero(self.t1 < self.t0)[0])
            raise ValueError(f"sample {i}: label end t1 is before its start t0")
        if np.any(np.diff(self.t0) < 0):
            raise ValueError("samples must be ordered by t0 (decision time)")
        self.embargo = pd.Timedelta(embargo)
        if self.embargo < pd.Timedelta(0):
            raise ValueError("embargo must be >= 0")
        self.min_train = int(min_train)

    def get_n_splits(self, X=None, y=None, groups=None) -> int:
        """Number of folds (scikit-learn API)."""
        return self.n_splits

    def split(self, X=None, y=None, groups=None) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Yield ``(train_idx, test_idx)`` per fold (scikit-learn API)."""
        n = len(self.t0)
        if X is not None and len(X) != n:
            raise ValueError(f"X has {len(X)} rows, the splitter was built for {n} samples")
        if n < self.n_splits:
            raise ValueError(f"{n} samples cannot make {self.n_splits} folds")
        emb = self.embargo.value
        for test in np.array_split(np.arange(n), self.n_splits):
            lo, hi = self.t0[test[0]], self.t1[test].max()
            overlaps = (self.t0 <= hi) & (self.t1 >= lo)
            embargoed = (self.t0 > hi) & (self.t0 <= hi + emb)
            train_mask = ~(overlaps | embargoed)
            train_mask[test] = False
            train = np.flatnonzero(train_mask)
            if len(train) < self.min_train:
                raise ValueError(f"fold with test samples {test[0]}..{test[-1]}: only {len(train)} training samples "
                                 f"left after purging and the embargo (min_train {self.min_train})")
            yield train, test

    def __repr__(self) -> str:
        return f"PurgedKFold(n_splits={self.n_splits}, embargo={self.embargo})"


def time_split(t0, t1, oos_from, *, embargo="250min") -> tuple[np.ndarray, np.ndarray]:
    """Train/OOS indices: OOS = decided at or after ``oos_from``; train = labels ending before ``oos_from - embargo``
    (a training trade still open when the OOS period starts, or inside the embargo, is dropped)."""
    start = pd.Timestamp(oos_from)
    if start.tzinfo is None:
        start = start.tz_localize("UTC")
    a, b = _ns(t0), _ns(t1)
    oos = np.flatnonzero(a >= start.value)
    train = np.flatnonzero(b < start.value - pd.Timedelta(embargo).value)
    return train, oos


def overlapping_pairs(t0, t1, train: np.ndarray, test: np.ndarray, embargo="0min") -> int:
    """Number of (train, test) pairs whose label windows overlap, or where the train sample starts within
    ``embargo`` after the test block's last label end: 0 for a correctly purged split (used by the tests)."""
    a, b = _ns(t0), _ns(t1)
    emb = pd.Timedelta(embargo).value
    ta, tb = a[train][:, None], b[train][:, None]
    sa, sb = a[test][None, :], b[test][None, :]
    overlap = (ta <= sb) & (tb >= sa)
    block_end = b[test].max() if len(test) else 0
    late = (a[train] > block_end) & (a[train] <= block_end + emb)
    return int(overlap.sum() + late.sum())
