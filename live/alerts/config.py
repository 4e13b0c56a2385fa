"""The alert thresholds: METHOD.md's alert rules, the anomaly limits and the delivery settings, read from a
TOML file (``--alerts-config``) over defaults taken from the mode table (``strategy.modes.MODE_PRESETS``).

Pure Python (no numpy/pandas): the command line reads it without the numerical stack.
"""

from __future__ import annotations

import math
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from strategy.modes import MODE_PRESETS, MODES

__all__ = ["AlertConfig", "AlertConfigError"]


class AlertConfigError(ValueError):
    """A bad alert configuration (one line: the file, the key and what is wrong)."""


@dataclass(frozen=True)
class AlertConfig:
    """Alert thresholds; percentages are 0-100, durations in seconds unless the name says minutes."""

    mode: str = "paper"
    # METHOD.md "Alerts"
    drawdown_pct: float = 10.0  # critical above
    consecutive_losses: int = 5  # warning at or above
    min_rolling_sharpe: float = 0.5  # warning below (annualised, daily P&L of the last sharpe_window_days)
    sharpe_window_days: int = 20
    cpu_pct: float = 80.0  # warning above
    disk_pct: float = 85.0  # warning above
    latency_ms: float = 500.0  # warning above (tick -> order)
    memory_pct: float = 90.0  # critical above
    daily_loss_limit_usd: float = 600.0  # the mode's limit
    daily_loss_warn_fraction: float = 0.8  # warning when the day's loss reaches this share of the limit
    # anomalies
    no_record_minutes: float = 5.0  # warning: no record for this long while the session is open
    reconnect_storm_count: int = 5  # warning: this many feed_resumed/restart events ...
    reconnect_storm_minutes: float = 10.0  # ... inside this window
    collector_lag_s: float = 60.0  # warning: a live collector this far behind its source
    # delivery
    cooldown_s: float = 300.0  # METHOD.md: 5 minutes per kind

    @classmethod
    def for_mode(cls, mode: str = "paper") -> AlertConfig:
        """The defaults of ``mode``: its daily loss limit and loss-streak kill switch (METHOD.md mode table)."""
        if mode not in MODE_PRESETS:
            raise AlertConfigError(f"unknown mode {mode!r}: one of {', '.join(MODES)}")
        p = MODE_PRESETS[mode]
        return cls(mode=mode, daily_loss_limit_usd=float(p["daily_loss_limit_usd"]),
                   consecutive_losses=int(p["max_consecutive_losses"] or cls.consecutive_losses))

    @classmethod
    def from_toml(cls, path: str | Path, mode: str | None = None) -> AlertConfig:
        """The file's values over the defaults of its ``mode`` key (or ``mode``, else paper). Keys go at the top
        level or under ``[alerts]``; an unknown key or a bad value is refused in one line naming the file."""
        path = Path(path)
        try:
            doc = tomllib.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise AlertConfigError(f"{path}: cannot read the alerts config ({exc.strerror or exc})") from None
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise AlertConfigError(f"{path}: not valid TOML ({' '.join(str(exc).split())})") from None
        if isinstance(doc.get("alerts"), dict):
            doc = {**{k: v for k, v in doc.items() if k != "alerts"}, **doc["alerts"]}
        return cls.from_dict(doc, mode=mode, source=str(path))

    @classmethod
    def from_dict(cls, doc: dict[str, Any], mode: str | None = None, source: str = "alerts config") -> AlertConfig:
        """As :meth:`from_toml`, from a dict already read."""
        chosen = doc.get("mode", mode or "paper")
        if not isinstance(chosen, str) or chosen not in MODE_PRESETS:
            raise AlertConfigError(f"{source}: mode must be one of {', '.join(MODES)}, not {chosen!r}")
        base = cls.for_mode(chosen)
        types = {f.name: type(getattr(base, f.name)) for f in fields(cls)}
        values: dict[str, Any] = {}
        for key, v in doc.items():
            if key == "mode":
                continue
            if key not in types:
                raise AlertConfigError(f"{source}: unknown key {key!r} (known: {', '.join(sorted(set(types) - {'mode'}))})")
            values[key] = _check(source, key, v, types[key])
        return replace(base, **values)


_FRACTIONS = ("daily_loss_warn_fraction",)
_PERCENTS = ("drawdown_pct", "cpu_pct", "disk_pct", "memory_pct")


def _check(source: str, key: str, v: Any, kind: type) -> Any:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or (kind is int and not isinstance(v, int)):
        want = "a whole number" if kind is int else "a number"
        raise AlertConfigError(f"{source}: {key} must be {want}, not {v!r}")
    if not math.isfinite(v):
        raise AlertConfigError(f"{source}: {key} must be finite, not {v!r}")
    if key == "min_rolling_sharpe":
        return float(v)
    if key in _FRACTIONS and not 0 < v <= 1:
        raise AlertConfigError(f"{source}: {key} must be in (0, 1], not {v!r}")
    if key in _PERCENTS and not 0 < v <= 100:
        raise AlertConfigError(f"{source}: {key} must be a percentage in (0, 100], not {v!r}")
    if key == "cooldown_s" and v < 0:
        raise AlertConfigError(f"{source}: {key} must be >= 0, not {v!r}")
    if key != "cooldown_s" and v <= 0:
        raise AlertConfigError(f"{source}: {key} must be > 0, not {v!r}")
    return kind(v)
