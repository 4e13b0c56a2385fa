"""`Params`: every parameter of the Battle Navale method (METHOD.md), with units, mode presets,
validation, TOML round trip and a stable hash.

Units are in the field names where they are not obvious: ``*_bars`` (bars of the chosen bar size),
``*_ticks`` (instrument ticks), ``*_usd`` (dollars), ``*_et`` (wall-clock "HH:MM" America/New_York);
scores and thresholds are fractions. Instrument economics (tick size, tick value) are not here:
they come from the instrument table (`strategy.market.instruments`), so one parameter set runs on ES and MES.
Every field's type, unit and accepted range are in `strategy.bounds.BOUNDS` (table: docs/parameters.md).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import numbers
import os
import tempfile
import tomllib
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from .bounds import ParamsError, check_field
from .modes import (
    MODE_PRESETS,
    MODES,
    SIGNAL_PROBABILITY_BY_MODE,
)

# Fields that only the trade simulator reads: signals computed with parameters differing only in
# these can be reused (a sweep over stops recomputes nothing).
# Fields `Params._validate` checks together (the relations between fields); every other field is valid
# or not on its own (`strategy.bounds`). A parameter grid is validated per group (`ParamGrid.validate`).
RELATED_FIELDS: tuple[tuple[str, ...], ...] = (
    ("red_max_up", "green_min_up", "type_lookback_bars"),
    ("status_balanced", "status_winning"),
    ("tc_weak", "tc_strong"),
    ("weight_battle", "weight_trend", "weight_base"),
    ("entry_start_et", "entry_end_et"),
)

EXECUTION_FIELDS = frozenset({
    "mode", "contracts", "slippage_ticks", "commission_per_side_usd", "stop_ticks", "target_r", "time_stop_bars",
    "flat_at_et", "max_trades_per_day", "daily_loss_limit_usd", "initial_capital_usd", "min_signal_probability",
    "daily_profit_target_usd", "max_drawdown_pct", "max_consecutive_losses",
})

def _hhmm(value: str, name: str) -> int:
    check_field(name, value)
    return int(value[:2]) * 60 + int(value[3:])


@dataclass(frozen=True)
class Params:
    """All Battle Navale parameters. Defaults are METHOD.md's table; `for_mode` applies a mode's risk preset."""

    mode: str = "backtest"
    # --- data / session -------------------------------------------------------------------
    order_flow: str = "auto"  # "bidask" (exact δ from bid/ask volume), "ohlcv" (proxy) or "auto" (from the frame)
    session: str = "rth"  # bars the windows run over: rth (09:30-16:00 ET), globex, all
    # --- 7.1 aggression ---------------------------------------------------------------------
    aggression_window_bars: int = 5  # W
    ball_threshold_bidask: float = 0.2  # θ in order-flow mode (ratio 0.6/0.4)
    ball_threshold_ohlcv: float = 0.6  # θ in OHLCV mode (body ratio)
    volume_median_bars: int = 20  # median window of the volume reference (bars t-20..t-1)
    volume_weight_cap: float = 2.0
    strong_battle: float = 0.4  # |BO| above this is a strong battle (v1 0.7 on the 0..1 scale)
    # --- 7.2 bases --------------------------------------------------------------------------
    base_window_bars: int = 8
    base_max_width_ticks: int = 10
    consolidation_bars: int = 15
    consolidation_std_frac: float = 0.3
    type_lookback_bars: int = 4  # u_t counts up-closes over k = 0..3
    green_min_up: int = 3
    red_max_up: int = 1
    quality_duration_bars: int = 10  # D at which the duration term saturates
    quality_weights: tuple[float, float, float, float] = (0.30, 0.20, 0.25, 0.25)  # duration, width, volume, respect
    quality_respect_term: str = "constant"  # "constant" (v1: identically 1) or "declining_volume"
    min_record_quality: float = 0.5  # confirmed episodes below this never become reference bases
    # --- 7.3 golden rule / trend continuation ---------------------------------------------
    golden_rule_ticks: int = 1  # a violation closes at least this many ticks beyond the base
    tc_strong: float = 0.6
    tc_weak: float = 0.2
    # --- 7.4 patterns -----------------------------------------------------------------------
    ldu_lud_range_ticks: int = 8
    cds_range_ticks: int = 12
    # --- 7.5 composite --------------------------------------------------------------------
    weight_battle: float = 0.40
    weight_trend: float = 0.35
    weight_base: float = 0.25
    entry_threshold: float = 0.25
    status_winning: float = 0.7
    status_balanced: float = 0.3
    # --- 7.6 entry gates (mode presets fill these) -----------------------------------------
    min_base_quality: float = 0.50
    golden_rule_strict: bool = True
    entry_start_et: str = "09:35"  # first allowed bar close
    entry_end_et: str = "15:45"  # last allowed bar close
    friday_cutoff_et: str = "15:00"  # no new entries on Friday after this bar close
    cash_open_blackout: bool = False  # no entries with a bar close in 09:30-09:40 ET
    # --- 7.6-7.7 execution and management ---------------------------------------------------
    contracts: int = 2
    slippage_ticks: int = 1  # per market/stop fill, against the trade (targets are limit orders: none)
    commission_per_side_usd: float | None = None  # None: the instrument's default
    stop_ticks: int = 7
    target_r: float = 2.0
    time_stop_bars: int = 50
    flat_at_et: str = "15:55"  # positions are closed at the close of the bar ending at/after this time
    max_trades_per_day: int = 999
    daily_loss_limit_usd: float = 500.0
    daily_profit_target_usd: float | None = None  # None: no profit target (the mode presets set it)
    max_drawdown_pct: float | None = None  # % below the equity peak at which trading stops; None: never
    max_consecutive_losses: int | None = None  # losing trades in a row that end the session's entries
    initial_capital_usd: float = 100_000.0
    # --- 7.8 ML filter ---------------------------------------------------------------------------
    min_signal_probability: float | None = None  # None: the mode's (SIGNAL_PROBABILITY_BY_MODE)

    # ------------------------------------------------------------------------------------------
    def __post_init__(self) -> None:
        qw = self.quality_weights
        if isinstance(qw, (tuple, list)) and all(isinstance(x, numbers.Real) and not isinstance(x, bool) for x in qw):
            object.__setattr__(self, "quality_weights", tuple(float(x) for x in qw))
        self._validate()

    def _validate(self) -> None:
        """Every field within its `strategy.bounds.BOUNDS` range, then the relations between fields."""
        for f in fields(self):
            check_field(f.name, getattr(self, f.name))

        def need(cond: bool, name: str, what: str) -> None:
            if not cond:
                raise ParamsError(f"parameter {name} = {getattr(self, name)!r}: {what}")

        need(self.red_max_up < self.green_min_up <= self.type_lookback_bars, "green_min_up",
             f"need red_max_up ({self.red_max_up}) < green_min_up <= type_lookback_bars ({self.type_lookback_bars})")
        need(self.status_balanced < self.status_winning, "status_balanced",
             f"must be < status_winning ({self.status_winning})")
        need(self.tc_weak <= self.tc_strong, "tc_weak", f"must be <= tc_strong ({self.tc_strong})")
        need(self.weight_battle + self.weight_trend + self.weight_base > 0, "weight_battle",
             "weight_battle, weight_trend and weight_base are all 0: the composite score is always 0")
        need(_hhmm(self.entry_start_et, "entry_start_et") <= _hhmm(self.entry_end_et, "entry_end_et"),
             "entry_start_et", f"must be <= entry_end_et ({self.entry_end_et})")

    # ------------------------------------------------------------------------------------------
    @classmethod
    def for_mode(cls, mode: str = "backtest", **overrides: Any) -> "Params":
        """Parameters with `mode`'s risk preset (METHOD.md tables), then `overrides` on top."""
        if mode not in MODE_PRESETS:
            raise ParamsError(f"parameter mode = {mode!r}: must be one of {MODES}")
        unknown = set(overrides) - {f.name for f in fields(cls)}
        if unknown:
            raise ParamsError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
        return cls(**{**MODE_PRESETS[mode], **overrides, "mode": mode})

    def replace(self, **changes: Any) -> "Params":
        """A copy with `changes` (validated)."""
        return dataclasses.replace(self, **changes)

    @property
    def signal_probability_threshold(self) -> float:
        """P(win) an ML-filtered trade needs: ``min_signal_probability``, else the mode's (0.55 / 0.70 / 0.80)."""
        if self.min_signal_probability is not None:
            return float(self.min_signal_probability)
        return SIGNAL_PROBABILITY_BY_MODE[self.mode]

    @property
    def target_ticks(self) -> int:
        """Target distance in ticks: ``round(target_r * stop_ticks)`` (14 by default)."""
        return int(round(self.target_r * self.stop_ticks))

    @property
    def warmup_bars(self) -> int:
        """Bars before the first possible signal.

        METHOD.md says "t >= 20 (the largest window)"; the battle outcome at t needs the volume
        weight of bars t-W+1..t, each needing a full median window, so the exact requirement is
        ``volume_median_bars + aggression_window_bars - 1`` (24 by default). We use the exact one.
        """
        return max(self.volume_median_bars + self.aggression_window_bars - 1, self.consolidation_bars,
                   self.type_lookback_bars + 1)

    def minutes(self, name: str) -> int:
        """A ``*_et`` field as minutes after midnight ET."""
        return _hhmm(getattr(self, name), name)

    # ------------------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain values (tuples as lists), in field order; ``None`` values are omitted (TOML has no null)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if v is None:
                continue
            out[f.name] = list(v) if isinstance(v, tuple) else v
        return out

    @classmethod
    def from_dict(cls, values: dict[str, Any], *, mode: str | None = None) -> "Params":
        """Build from a mapping: the mode preset first (`mode` argument, else ``values['mode']``), then values."""
        values = dict(values)
        m = mode or values.pop("mode", "backtest")
        values.pop("mode", None)
        if isinstance(values.get("quality_weights"), list):
            values["quality_weights"] = tuple(values["quality_weights"])
        return cls.for_mode(m, **values)

    def to_toml(self) -> str:
        """TOML text that `from_toml` reads back to an equal object."""
        lines = [f"# navale parameters (hash {self.hash()})"]
        for k, v in self.to_dict().items():
            lines.append(f"{k} = {toml_value(v)}")
        return "\n".join(lines) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the TOML file atomically."""
        return _write_atomic(Path(path), self.to_toml())

    @classmethod
    def from_toml(cls, path: str | Path, *, mode: str | None = None) -> "Params":
        """Read a TOML file (flat keys, or under a ``[params]`` table). `mode` overrides the file's mode."""
        path = Path(path)
        data = read_toml(path)
        data = data.get("params", data)
        if not isinstance(data, dict):
            raise ParamsError(f"{path}: 'params' must be a table of parameters, not {type(data).__name__}")
        try:
            return cls.from_dict(data, mode=mode)
        except ParamsError as exc:
            raise ParamsError(f"{path}: {exc}") from None
        except TypeError as exc:
            raise ParamsError(f"{path}: {exc}") from None

    def hash(self) -> str:
        """Stable 16-hex-digit identity of the values (independent of field order and Python version)."""
        return _digest(self.to_dict())

    def signal_hash(self) -> str:
        """Identity of the fields `compute_signals` reads (all but `EXECUTION_FIELDS`)."""
        return _digest({k: v for k, v in self.to_dict().items() if k not in EXECUTION_FIELDS})


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file as a dict (a UTF-8 BOM is accepted); `ParamsError` naming the file when it cannot be
    read, is not UTF-8 text (binary, another encoding) or is not valid TOML."""
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise ParamsError(f"{path}: cannot read ({exc.strerror or exc})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParamsError(f"{path}: not a UTF-8 text file (byte {exc.start}: {raw[exc.start:exc.start + 1]!r}); "
                          "a TOML file is UTF-8 text") from None
    if "\x00" in text:
        raise ParamsError(f"{path}: not a text file (NUL byte at {text.index(chr(0))}); a TOML file is UTF-8 text")
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ParamsError(f"{path}: not valid TOML ({exc})") from None


def _digest(values: dict[str, Any]) -> str:
    blob = json.dumps(values, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def toml_value(v: Any) -> str:
    """One parameter value as TOML (bool, number, string or list of them)."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return json.dumps(v)
    if isinstance(v, list):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} to TOML")


def _write_atomic(path: Path, text: str) -> Path:
    """Write via a temporary file in the same folder, fsync, then rename over `path`: a reader sees
    the old file or the new one, never half of one. The parameter file is the one file `strategy/`
    writes, and `strategy/` may not import research.store.files, the project's general atomic writers."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
