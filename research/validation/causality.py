"""No-look-ahead checks, reusable for every signal, feature and label of the project.

A causal transform gives, on the first t bars, exactly the first t rows it gives on the whole
history ("prefix invariance"). `prefix_violations` runs a transform on truncated inputs and
reports every column where that fails.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd


def frames_equal(a: pd.DataFrame, b: pd.DataFrame, *, atol: float = 1e-9) -> list[str]:
    """Columns where `a` and `b` differ: exact for ints/bools/strings/times, |Δ| <= atol for floats
    (NaN equals NaN). Returns human-readable differences (empty when equal)."""
    problems: list[str] = []
    if list(a.columns) != list(b.columns):
        return [f"columns differ: {sorted(set(a.columns) ^ set(b.columns))}"]
    if len(a) != len(b):
        return [f"lengths differ: {len(a)} vs {len(b)}"]
    if not a.index.equals(b.index):
        return ["indexes differ"]
    for col in a.columns:
        x, y = a[col], b[col]
        if pd.api.types.is_float_dtype(x.dtype) and pd.api.types.is_float_dtype(y.dtype):
            xv, yv = x.to_numpy(), y.to_numpy()
            both_nan = np.isnan(xv) & np.isnan(yv)
            diff = np.where(both_nan, 0.0, np.abs(xv - yv))
            bad = ~(diff <= atol)
        else:
            bad = _exact_mismatch(x, y)
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            problems.append(f"{col}: {int(bad.sum())} row(s) differ, first at row {i} ({a.index[i]}): {x.iloc[i]!r} vs {y.iloc[i]!r}")
    return problems


def _exact_mismatch(x: pd.Series, y: pd.Series) -> np.ndarray:
    """Row mask where two non-float columns differ (missing equals missing)."""
    if isinstance(x.dtype, pd.DatetimeTZDtype) and isinstance(y.dtype, pd.DatetimeTZDtype):
        return pd.DatetimeIndex(x).as_unit("ns").asi8 != pd.DatetimeIndex(y).as_unit("ns").asi8
    if x.dtype == y.dtype and (pd.api.types.is_bool_dtype(x.dtype) or pd.api.types.is_integer_dtype(x.dtype)) \
            and not x.hasnans and not y.hasnans:
        return x.to_numpy() != y.to_numpy()
    xs, ys = x.astype(object).to_numpy(), y.astype(object).to_numpy()
    return np.array([not ((pd.isna(u) and pd.isna(v)) or u == v) for u, v in zip(xs, ys)], dtype=bool)


def prefix_violations(transform: Callable[[pd.DataFrame], pd.DataFrame], data: pd.DataFrame, cuts: Iterable[int],
                      *, atol: float = 1e-9, full: pd.DataFrame | None = None) -> list[str]:
    """For each cut t: compare ``transform(data.iloc[:t])`` with ``transform(data)[:t]``.

    `transform` must return a frame aligned to its input. Returns the differences found (empty
    when the transform is causal at these cuts). Pass `full` to reuse an already computed result.
    """
    whole = transform(data) if full is None else full
    out: list[str] = []
    for t in cuts:
        part = data.iloc[:t]
        part.attrs = dict(data.attrs)
        got = transform(part)
        for p in frames_equal(got, whole.iloc[:t], atol=atol):
            out.append(f"cut {t}: {p}")
    return out


def random_cuts(n: int, k: int, *, seed: int = 0, min_len: int = 2) -> list[int]:
    """`k` distinct sorted cut points in [min_len, n)."""
    rng = np.random.default_rng(seed)
    k = min(k, max(n - min_len, 0))
    return sorted(int(x) for x in rng.choice(np.arange(min_len, n), size=k, replace=False))
