"""The trade snapshot: one flat record per closed trade (METHOD.md §7.8).

This module is the single definition of the record. Backtests write it now;
paper and live trading will write the same type. ``FIELDS`` lists the columns
in order with type, unit, group and meaning; :func:`validate` turns a
DataFrame into the canonical form (exact columns, exact dtypes, UTC
timestamps) or raises :class:`SnapshotError` naming the row and the field.

Groups: ``key`` (identity), ``context`` (known at the signal bar's close,
from bars up to the signal bar only: the ML features), ``execution``,
``outcome`` (never a feature), ``audit`` (how much the fill model had to
assume). Prices are on the instrument's price scale; ``ticks`` are
``price difference / tick size``; signed quantities in ticks are positive
in the trade's favour unless the doc says otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Literal

import numpy as np
import pandas as pd
import pyarrow as pa

from strategy.exits import EXIT_REASONS

__all__ = [
    "SCHEMA_VERSION",
    "SnapshotField",
    "FIELDS",
    "EXIT_REASONS",
    "SnapshotError",
    "names",
    "arrow_schema",
    "validate",
    "to_arrow",
    "docs_table",
    "FILTER_DEFAULTS",
    "READABLE_VERSIONS",
    "upgrade",
]

# v2 added the ``filter`` group (quality_p_win, quality_threshold, quality_taken, shadow); a v1 record reads
# as v2 with FILTER_DEFAULTS (see :func:`upgrade` and ``research.store.runs``' migration).
SCHEMA_VERSION = 2
READABLE_VERSIONS = (1, 2)

ARROW_TYPES: dict[str, pa.DataType] = {
    "string": pa.string(),
    "int8": pa.int8(),
    "int32": pa.int32(),
    "int64": pa.int64(),
    "float64": pa.float64(),
    "bool": pa.bool_(),
    "timestamp": pa.timestamp("ns", tz="UTC"),
}
UNITS = ("ticks", "USD", "bars", "R", "price", "fraction", "minutes", "contracts", "")
GROUPS = ("key", "context", "execution", "outcome", "audit", "filter")


class SnapshotError(ValueError):
    """A snapshot frame does not match the schema (the message names the row and the field)."""


@dataclass(frozen=True)
class SnapshotField:
    """One column of the snapshot record."""

    name: str
    dtype: str  # a key of ARROW_TYPES
    unit: str  # one of UNITS ("" = dimensionless, a label or a flag)
    group: str  # one of GROUPS
    doc: str
    nullable: bool = False

    def __post_init__(self) -> None:
        if self.dtype not in ARROW_TYPES:
            raise ValueError(f"field {self.name}: unknown dtype {self.dtype!r}")
        if self.unit not in UNITS:
            raise ValueError(f"field {self.name}: unknown unit {self.unit!r}")
        if self.group not in GROUPS:
            raise ValueError(f"field {self.name}: unknown group {self.group!r}")

    @property
    def arrow_type(self) -> pa.DataType:
        """The pyarrow type of the column."""
        return ARROW_TYPES[self.dtype]


F = SnapshotField
_ball = "{-1 Defender, 0, +1 Viking}"
FIELDS: tuple[SnapshotField, ...] = (
    # --- key
    F("run_id", "string", "", "key", "run that produced the trade (store run id; paper/live: session run id)"),
    F("trade_id", "string", "", "key", "trade id, unique within the run"),
    F("symbol", "string", "", "key", "traded symbol or product root, e.g. ES"),
    F("contract", "string", "", "key", "contract actually traded, e.g. ESH24 (null when unknown)", nullable=True),
    F("mode", "string", "", "key", "backtest | data_collection | paper | live"),
    F("session", "string", "", "key", "session filter of the bars: rth | globex | all"),
    F("side", "int8", "", "key", "+1 long, -1 short"),
    F("signal_ts", "timestamp", "", "key", "timestamp (bar start, UTC) of the signal bar; the decision is taken at its close"),
    F("entry_ts", "timestamp", "", "key", "entry fill time, UTC"),
    F("exit_ts", "timestamp", "", "key", "exit fill time, UTC"),
    # --- context: bars up to the signal bar only
    F("delta", "float64", "", "context", "bar aggression δ_t in [-1, 1] of the signal bar"),
    F("ball", "int8", "", "context", f"ball b_t of the signal bar {_ball}"),
    F("ball_lag1", "int8", "", "context", "ball b_{t-1}"),
    F("ball_lag2", "int8", "", "context", "ball b_{t-2}"),
    F("ball_lag3", "int8", "", "context", "ball b_{t-3}"),
    F("ball_lag4", "int8", "", "context", "ball b_{t-4}"),
    F("battle", "float64", "", "context", "signed battle outcome BO_t in [-1, 1] (volume-weighted mean δ over W bars)"),
    F("bn_score", "float64", "", "context", "composite score 0.40·BO + 0.35·TC + 0.25·BQ"),
    F("status", "string", "", "context", "vikings_winning | defenders_winning | contested | balanced"),
    F("confidence", "float64", "fraction", "context", "mean(q_ref, |P|, |TC|, |bn_score|) in [0, 1]"),
    F("tc", "float64", "", "context", "signed trend continuation TC in [-0.6, 0.6] (0 = no reference base)"),
    F("ref_side", "int8", "", "context", "reference base: +1 green, -1 red, 0 none"),
    F("q_ref", "float64", "fraction", "context", "quality of the reference base (0 when none)"),
    F("bull_intact", "bool", "", "context", "no golden-rule violation of the last green base since its confirmation"),
    F("bear_intact", "bool", "", "context", "no violation of the last red base since its confirmation"),
    F("base_width_ticks", "float64", "ticks", "context", "reference base width (hi - lo); null when none", nullable=True),
    F("base_age_bars", "int32", "bars", "context", "bars from the reference base's confirmation to the signal bar; null when none", nullable=True),
    F("dist_base_hi_ticks", "float64", "ticks", "context", "signal-bar close minus reference base hi (signed); null when none", nullable=True),
    F("dist_base_lo_ticks", "float64", "ticks", "context", "signal-bar close minus reference base lo (signed); null when none", nullable=True),
    F("pattern", "float64", "", "context", "Sierra pattern score P_t = clip(LDU - LUD - CDS, -1, 1)"),
    F("ldu", "bool", "", "context", "LDU pattern completed at the signal bar"),
    F("lud", "bool", "", "context", "LUD pattern completed at the signal bar"),
    F("cds", "bool", "", "context", "CDS pattern completed at the signal bar"),
    F("atr14_ticks", "float64", "ticks", "context", "14-bar average true range; null in warm-up", nullable=True),
    F("rel_volume", "float64", "", "context", "signal-bar volume / median volume of the 20 bars before; null if undefined", nullable=True),
    F("ret5_ticks", "float64", "ticks", "context", "close(t) - close(t-5), not signed by side; null in warm-up", nullable=True),
    F("ret15_ticks", "float64", "ticks", "context", "close(t) - close(t-15), not signed by side; null in warm-up", nullable=True),
    F("minutes_since_open", "float64", "minutes", "context", "minutes from 09:30 ET to the signal bar's close (negative before the open)"),
    F("weekday", "int8", "", "context", "weekday of the signal bar in New York, 0 = Monday"),
    F("vix_regime", "string", "", "context", "LOW | MID | HIGH | EXTREME from the prior VIX close; null without VIX data", nullable=True),
    F("order_flow", "bool", "", "context", "True: δ from bid/ask volume; False: OHLCV proxy"),
    # --- execution
    F("entry_price", "float64", "price", "execution", "entry fill price (slippage included)"),
    F("stop_price", "float64", "price", "execution", "initial stop price"),
    F("target_price", "float64", "price", "execution", "initial target price"),
    F("slippage_ticks", "float64", "ticks", "execution", "slippage of the entry and exit fills together, against the trade (limit targets: none)"),
    F("contracts", "int32", "contracts", "execution", "position size"),
    F("commission_usd", "float64", "USD", "execution", "round-trip commission for all contracts"),
    # --- outcome (never a feature)
    F("exit_price", "float64", "price", "outcome", "exit fill price (slippage included)"),
    F("exit_reason", "string", "", "outcome", " | ".join(EXIT_REASONS)),
    F("pnl_ticks", "float64", "ticks", "outcome", "side · (exit - entry) per contract"),
    F("pnl_usd", "float64", "USD", "outcome", "net P&L: pnl_ticks · tick value · contracts - commission"),
    F("r_multiple", "float64", "R", "outcome", "pnl_ticks / initial risk |entry - stop| in ticks"),
    F("mfe_ticks", "float64", "ticks", "outcome", "maximum favourable excursion from entry to the exit fill (>= 0)"),
    F("mae_ticks", "float64", "ticks", "outcome", "maximum adverse excursion from entry to the exit fill (>= 0; a stop: its realised loss)"),
    F("bars_held", "int32", "bars", "outcome", "bars held: entry bar through exit bar; an exit at a bar open does not count that bar (1 = exit inside the entry bar)"),
    # --- audit
    F("intrabar_ambiguous", "bool", "", "audit", "stop and target both inside one bar (the stop was assumed first)"),
    F("same_bar_exit", "bool", "", "audit", "entry and exit in the same bar"),
    F("gap_through_stop", "bool", "", "audit", "a bar opened beyond the stop: filled at the open, worse than the stop"),
    F("pnl_usd_optimistic", "float64", "USD", "audit", "pnl_usd had every ambiguous bar resolved in the trade's favour"),
    # --- filter: the signal-quality filter at the entry decision (never a feature; v2)
    F("quality_p_win", "float64", "fraction", "filter", "the ML model's P(win) at the entry decision; null (NaN) without a model or when a feature was undefined", nullable=True),
    F("quality_threshold", "float64", "fraction", "filter", "the P(win) threshold in force; null (NaN) without a model", nullable=True),
    F("quality_taken", "bool", "", "filter", "the filter takes the signal (P(win) >= threshold); True without a model"),
    F("shadow", "bool", "", "filter", "a skipped signal followed as if taken (a shadow trade, never sent to the real broker)"),
)
del F

_BY_NAME = {f.name: f for f in FIELDS}
# what a v1 record (no filter group) and a backtest trade hold: no model, taken, not a shadow trade
FILTER_DEFAULTS = {"quality_p_win": np.nan, "quality_threshold": np.nan, "quality_taken": True, "shadow": False}
_KEY = ("run_id", "trade_id")
_INT_RANGES = {k: np.iinfo(k) for k in ("int8", "int32", "int64")}


def names(group: str | None = None) -> tuple[str, ...]:
    """Column names in schema order, optionally of one group (e.g. ``"context"`` = the features)."""
    if group is not None and group not in GROUPS:
        raise ValueError(f"unknown group {group!r}; one of {GROUPS}")
    return tuple(f.name for f in FIELDS if group is None or f.group == group)


@cache
def arrow_schema() -> pa.Schema:
    """The pyarrow schema: field metadata unit/group/doc, schema metadata ``navale_snapshot_version``."""
    return pa.schema(
        [
            pa.field(f.name, f.arrow_type, nullable=f.nullable, metadata={"unit": f.unit, "group": f.group, "doc": f.doc})
            for f in FIELDS
        ],
        metadata={"navale_snapshot_version": str(SCHEMA_VERSION)},
    )


def upgrade(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with the v2 ``filter`` columns added (``FILTER_DEFAULTS``) where they are absent: a v1 record
    read as v2. Columns present are left as they are."""
    missing = [c for c in FILTER_DEFAULTS if c not in df.columns]
    if not missing:
        return df
    out = df.copy()
    for c in missing:
        out[c] = FILTER_DEFAULTS[c]
    return out


# ---------------------------------------------------------------- validation

Where = Callable[[int], str]


def validate(df: pd.DataFrame, *, extra: Literal["raise", "drop"] = "raise") -> pd.DataFrame:
    """Return a copy of ``df`` with exactly the schema's columns, in order, coerced to the schema's dtypes.

    Strings become pandas ``str``, integers numpy ints (pandas ``Int*`` when nullable), timestamps
    ``datetime64[ns, UTC]``. Raises :class:`SnapshotError` naming the (0-based, positional) row and the
    field for: a missing column, a null in a non-nullable field, a value that cannot be converted,
    a non-finite float, a tz-naive timestamp, an unknown ``exit_reason``, ``side`` not ±1, a duplicate
    ``(run_id, trade_id)``. Extra columns raise unless ``extra="drop"``. Absent ``filter`` columns (a v1
    record) are filled with ``FILTER_DEFAULTS``.
    """
    if extra not in ("raise", "drop"):
        raise ValueError(f"extra must be 'raise' or 'drop', not {extra!r}")
    df = upgrade(df)  # a v1 record (no filter columns) is read with their defaults
    missing = [n for n in names() if n not in df.columns]
    if missing:
        raise SnapshotError(f"snapshot frame: missing column(s): {', '.join(missing)}")
    extras = [str(c) for c in df.columns if c not in _BY_NAME]
    if extras and extra == "raise":
        raise SnapshotError(f"snapshot frame: unexpected column(s): {', '.join(extras)} (pass extra='drop' to drop them)")
    if df.columns.duplicated().any():
        dup = sorted({str(c) for c in df.columns[df.columns.duplicated()]})
        raise SnapshotError(f"snapshot frame: duplicated column(s): {', '.join(dup)}")

    where = _locator(df)
    out = pd.DataFrame(
        {f.name: _coerce(df[f.name].reset_index(drop=True), f, where) for f in FIELDS},
        index=pd.RangeIndex(len(df)),
    )
    _check_values(out, where)
    return out


def to_arrow(df: pd.DataFrame, *, extra: Literal["raise", "drop"] = "raise") -> pa.Table:
    """Validate ``df`` and return it as a pyarrow Table with :func:`arrow_schema`."""
    return _frame_to_table(validate(df, extra=extra))


def _frame_to_table(valid: pd.DataFrame) -> pa.Table:
    table = pa.Table.from_pandas(valid, schema=arrow_schema(), preserve_index=False)
    return table.replace_schema_metadata(arrow_schema().metadata)  # drop pandas' metadata: one schema, ours


def _locator(df: pd.DataFrame) -> Where:
    """Row description for messages: ``row 2 (trade_id 'T3')``."""
    tids = df["trade_id"].tolist() if "trade_id" in df.columns else None

    def where(i: int) -> str:
        tid = tids[i] if tids is not None else None
        return f"row {i} (trade_id {tid!r})" if isinstance(tid, str) else f"row {i}"

    return where


def _fail(f: SnapshotField, where: Where, bad: np.ndarray, problem: Callable[[int], str]) -> None:
    """Raise for the first True of ``bad`` (a boolean array over rows)."""
    rows = np.flatnonzero(bad)
    if rows.size:
        i = int(rows[0])
        more = f" ({rows.size} rows in all)" if rows.size > 1 else ""
        raise SnapshotError(f"snapshot {where(i)}, field {f.name!r} ({f.dtype}): {problem(i)}{more}")


def _coerce(s: pd.Series, f: SnapshotField, where: Where) -> pd.Series:
    """Convert one column to the field's dtype; raise on the first bad value."""
    raw = s.to_numpy(dtype=object)
    was_null = s.isna().to_numpy()
    out = _CONVERTERS[f.dtype](s, f, where, raw, was_null)
    if not f.nullable:
        _fail(f, where, out.isna().to_numpy(), lambda i: "null in a non-nullable field")
    return out


def _cannot(f: SnapshotField, raw: np.ndarray) -> Callable[[int], str]:
    return lambda i: f"cannot convert {raw[i]!r} to {f.dtype}"


def _to_string(s: pd.Series, f: SnapshotField, where: Where, raw: np.ndarray, was_null: np.ndarray) -> pd.Series:
    bad = np.array([not n and not isinstance(v, str) for v, n in zip(raw, was_null)], dtype=bool)
    _fail(f, where, bad, lambda i: f"expected a string, got {type(raw[i]).__name__} {raw[i]!r}")
    return pd.Series(np.where(was_null, None, raw), dtype="str")


def _numeric(s: pd.Series, f: SnapshotField, where: Where, raw: np.ndarray, was_null: np.ndarray) -> np.ndarray:
    """Float values of a column (NaN where null); booleans, non-numbers and infinities are errors."""
    if pd.api.types.is_bool_dtype(s.dtype):
        _fail(f, where, ~was_null, _cannot(f, raw))
    elif s.dtype == object:
        _fail(f, where, np.array([isinstance(v, (bool, np.bool_)) for v in raw], dtype=bool), _cannot(f, raw))
    values = pd.to_numeric(s, errors="coerce").to_numpy(dtype="float64", na_value=np.nan)
    _fail(f, where, np.isnan(values) & ~was_null, _cannot(f, raw))
    _fail(f, where, np.isinf(values), lambda i: f"{raw[i]!r} is not finite")
    return values


def _to_float(s: pd.Series, f: SnapshotField, where: Where, raw: np.ndarray, was_null: np.ndarray) -> pd.Series:
    return pd.Series(_numeric(s, f, where, raw, was_null), dtype="float64")


def _to_int(s: pd.Series, f: SnapshotField, where: Where, raw: np.ndarray, was_null: np.ndarray) -> pd.Series:
    info = _INT_RANGES[f.dtype]
    if pd.api.types.is_signed_integer_dtype(s.dtype):
        values = s.astype("Int64").to_numpy(dtype="int64", na_value=0)
        bad = (values < info.min) | (values > info.max)
    else:  # floats, strings, objects: whole numbers only
        floats = _numeric(s, f, where, raw, was_null)
        with np.errstate(invalid="ignore"):
            bad = ~was_null & ((floats % 1 != 0) | (floats < info.min) | (floats > info.max))
        values = np.where(was_null, 0, floats)
    _fail(f, where, bad & ~was_null, _cannot(f, raw))
    values = values.astype(f.dtype)
    if was_null.any():
        return pd.Series(pd.arrays.IntegerArray(values, was_null.copy()))
    return pd.Series(values)


def _to_bool(s: pd.Series, f: SnapshotField, where: Where, raw: np.ndarray, was_null: np.ndarray) -> pd.Series:
    if pd.api.types.is_bool_dtype(s.dtype) and not was_null.any():
        return pd.Series(s.to_numpy(dtype=bool))
    ok = (True, False, 1, 0)  # 1/0 and numpy bools compare equal to True/False
    bad = np.array([not n and not (isinstance(v, (bool, np.bool_, int, np.integer)) and v in ok) for v, n in zip(raw, was_null)])
    _fail(f, where, bad, _cannot(f, raw))
    if was_null.any():
        return pd.Series(pd.array(np.where(was_null, None, raw), dtype="boolean"))
    return pd.Series(raw.astype(bool))


def _to_timestamp(s: pd.Series, f: SnapshotField, where: Where, raw: np.ndarray, was_null: np.ndarray) -> pd.Series:
    if isinstance(s.dtype, pd.DatetimeTZDtype):
        try:
            return s.dt.tz_convert("UTC").dt.as_unit("ns")
        except (ValueError, OverflowError):  # out of the ns range: the element path below names the row
            pass
    parsed = [None if n else _parse_timestamp(v) for v, n in zip(raw, was_null)]
    _fail(f, where, np.array([p is False for p in parsed], dtype=bool), _cannot(f, raw))
    naive = np.array([isinstance(p, pd.Timestamp) and p.tzinfo is None for p in parsed], dtype=bool)
    _fail(f, where, naive, lambda i: f"naive timestamp {raw[i]!r}: timestamps must be tz-aware (e.g. UTC)")
    utc = [None if p is None else p.tz_convert("UTC") for p in parsed]
    return pd.Series(pd.DatetimeIndex(utc, dtype="datetime64[ns, UTC]"))


def _parse_timestamp(v: object) -> pd.Timestamp | bool:
    """A ns Timestamp from a datetime-like or an ISO string; False if ``v`` is neither or out of range."""
    if not isinstance(v, (str, np.datetime64)) and not hasattr(v, "tzinfo"):
        return False
    try:
        return pd.Timestamp(v).as_unit("ns")
    except (TypeError, ValueError, OverflowError):  # OutOfBoundsDatetime is a ValueError
        return False


_CONVERTERS = {
    "string": _to_string,
    "int8": _to_int,
    "int32": _to_int,
    "int64": _to_int,
    "float64": _to_float,
    "bool": _to_bool,
    "timestamp": _to_timestamp,
}


def _check_values(out: pd.DataFrame, where: Where) -> None:
    """Value rules beyond the dtype: side, exit_reason, unique key."""
    side = out["side"].to_numpy()
    _fail(_BY_NAME["side"], where, (side != 1) & (side != -1), lambda i: f"side must be +1 or -1, got {side[i]}")
    reason = out["exit_reason"].to_numpy(dtype=object)
    bad = ~out["exit_reason"].isin(EXIT_REASONS).to_numpy()
    _fail(_BY_NAME["exit_reason"], where, bad, lambda i: f"{reason[i]!r} is not one of {'|'.join(EXIT_REASONS)}")
    dup = out.duplicated(subset=list(_KEY)).to_numpy()
    _fail(_BY_NAME["trade_id"], where, dup, lambda i: "duplicate (run_id, trade_id)")


# ---------------------------------------------------------------- docs


def docs_table() -> str:
    """The schema as a markdown table (field, type, unit, group, doc)."""
    lines = [
        f"Trade snapshot schema, version {SCHEMA_VERSION}.",
        "",
        "| field | type | unit | group | doc |",
        "| --- | --- | --- | --- | --- |",
    ]
    for f in FIELDS:
        typ = f.dtype + (", nullable" if f.nullable else "")
        doc = f.doc.replace("|", "\\|")
        lines.append(f"| `{f.name}` | {typ} | {f.unit} | {f.group} | {doc} |")
    return "\n".join(lines) + "\n"
