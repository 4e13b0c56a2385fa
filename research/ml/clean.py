"""Row-level cleaning of trade snapshots for the ML data set: keep the valid rows, report the others.

:func:`research.store.snapshots.validate` is all-or-nothing (the store must never hold a bad row). A learning
set read from a Parquet export or from several runs is better served by dropping the bad rows and saying
why, so this module checks every row against the same schema, rejects the bad ones with a reason naming
the field, and then validates what is left (which must pass).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from research.store import snapshots as snap

__all__ = ["clean_snapshots"]

_INT_DTYPES = ("int8", "int32", "int64")


def _bad_values(s: pd.Series, f: snap.SnapshotField) -> tuple[np.ndarray, str]:
    """Rows where the column cannot hold a valid value of the field, and the problem in words."""
    raw = s.to_numpy(dtype=object)
    null = s.isna().to_numpy()
    if f.dtype == "string":
        bad = np.array([not n and not isinstance(v, str) for v, n in zip(raw, null)], dtype=bool)
        return bad, "not a string"
    if f.dtype in ("float64", *_INT_DTYPES):
        isbool = np.array([isinstance(v, (bool, np.bool_)) for v in raw], dtype=bool)
        num = pd.to_numeric(s.where(~isbool, np.nan) if isbool.any() else s, errors="coerce")
        x = num.to_numpy(dtype=np.float64, na_value=np.nan)
        bad = (np.isnan(x) & ~null) | np.isinf(x) | isbool
        if f.dtype in _INT_DTYPES:
            info = np.iinfo(f.dtype)
            with np.errstate(invalid="ignore"):
                bad |= ~np.isnan(x) & ((x % 1 != 0) | (x < info.min) | (x > info.max))
        return bad, "not a finite number" if f.dtype == "float64" else f"not a whole number in {f.dtype}'s range"
    if f.dtype == "bool":
        bad = np.array([not n and not (isinstance(v, (bool, np.bool_, int, np.integer)) and v in (True, False, 0, 1))
                        for v, n in zip(raw, null)], dtype=bool)
        return bad, "not a boolean"
    # timestamp
    def bad_ts(v) -> bool:
        try:
            t = pd.Timestamp(v)
        except (TypeError, ValueError, OverflowError):
            return True
        return t.tzinfo is None
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        return np.zeros(len(s), bool), ""
    bad = np.array([not n and bad_ts(v) for v, n in zip(raw, null)], dtype=bool)
    return bad, "not a tz-aware timestamp"


def clean_snapshots(df: pd.DataFrame, *, source: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``(valid, rejected)``: ``valid`` is ``snapshots.validate``'d; ``rejected`` has ``source, stage ("schema"),
    row (0-based, in ``df``), run_id, trade_id, reason`` for every dropped row (first problem found per row).

    Raises ``SnapshotError`` naming ``source`` when a column is missing (no row can be used then).
    """
    df = snap.upgrade(df)  # a v1 record (no filter columns) is read with their defaults
    missing = [n for n in snap.names() if n not in df.columns]
    if missing:
        raise snap.SnapshotError(f"{source}: missing snapshot column(s): {', '.join(missing)}")
    df = df.reset_index(drop=True)
    reason = pd.Series(pd.NA, index=df.index, dtype="object")

    def flag(mask: np.ndarray, why: str) -> None:
        new = np.asarray(mask, bool) & reason.isna().to_numpy()
        reason[new] = why

    for f in snap.FIELDS:
        s = df[f.name]
        bad, problem = _bad_values(s, f)
        flag(bad, f"field {f.name!r}: {problem}")
        if not f.nullable:
            flag(s.isna().to_numpy(), f"field {f.name!r}: null in a non-nullable field")
    # value rules (on rows still standing, with permissive parsing)
    side = pd.to_numeric(df["side"], errors="coerce")
    flag(~side.isin([1, -1]).to_numpy(), "field 'side': not +1 or -1")
    flag(~df["exit_reason"].isin(snap.EXIT_REASONS).to_numpy(), "field 'exit_reason': unknown exit reason")
    ts = {c: pd.to_datetime(df[c].where(reason.isna()), utc=True, errors="coerce") for c in ("signal_ts", "entry_ts", "exit_ts")}
    flag((ts["entry_ts"] <= ts["signal_ts"]).to_numpy(), "field 'entry_ts': not after the signal bar's start")
    flag((ts["exit_ts"] < ts["entry_ts"]).to_numpy(), "field 'exit_ts': before entry_ts")
    entry = pd.to_numeric(df["entry_price"], errors="coerce")
    stop = pd.to_numeric(df["stop_price"], errors="coerce")
    flag(((entry - stop) * side <= 0).to_numpy(), "field 'stop_price': not on the losing side of the entry")
    flag((pd.to_numeric(df["contracts"], errors="coerce") <= 0).to_numpy(), "field 'contracts': not >= 1")
    flag(df.duplicated(subset=["run_id", "trade_id"], keep="first").to_numpy(), "duplicate (run_id, trade_id)")

    bad = reason.notna().to_numpy()
    rejected = pd.DataFrame({
        "source": source,
        "stage": "schema",
        "row": np.flatnonzero(bad),
        "run_id": df.loc[bad, "run_id"].astype(object).to_numpy(),
        "trade_id": df.loc[bad, "trade_id"].astype(object).to_numpy(),
        "reason": reason[bad].astype(str).to_numpy(),
    })
    valid = snap.validate(df.loc[~bad].reset_index(drop=True), extra="drop")
    return valid, rejected
