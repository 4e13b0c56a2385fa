"""What a paper-trading session runs with: the parameters (from a promotion the gate accepted, or
explicitly unvalidated), the instrument, the fill mode and the limits of the live-only switches."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from strategy import Params

__all__ = ["TraderConfig", "ConfigError", "PAPER_MODES", "UNVALIDATED"]

PAPER_MODES = ("paper", "data_collection")
UNVALIDATED = ("these parameters were not accepted by `navale promote`: pass --from-promotion ID (or --params with a "
               "ready_for_paper.toml), or --unvalidated to paper trade them anyway")


class ConfigError(ValueError):
    """The configuration cannot be traded (message says why and what to do)."""


@dataclass
class TraderConfig:
    """A paper-trading session's settings.

    ``feed_halt_seconds``: a live feed with no record for this long while Globex is open is a feed
    halt (no new entries until records resume); replays, which run on their own clock, never halt.
    ``checkpoint_every``: persist the whole state every this many closed bars (1: every bar, the
    default and what the restart guarantee assumes).
    """

    params: Params
    symbol: str = "ES"
    tick_size: float = 0.25
    point_value: float = 50.0
    commission_per_side: float = 2.25
    margin_per_contract: float = 12_000.0
    broker_mode: str = "bar"  # "bar" | "tick"
    bar: str = "5min"
    grace_seconds: float = 5.0
    feed_halt_seconds: float = 120.0
    state_dir: Path = field(default_factory=lambda: Path("data/live"))
    run_id: str = ""
    unvalidated: bool = False
    promotion_id: str | None = None
    checkpoint_every: int = 1
    live: bool = False  # a real-money session: set by `navale live` after its opt-in (settings file + confirmation)

    def __post_init__(self) -> None:
        if self.live:
            if self.params.mode != "live":
                raise ConfigError(f"a live session trades mode live, not {self.params.mode!r}")
            if self.unvalidated or not self.promotion_id:
                raise ConfigError("live trading needs parameters `navale promote` accepted (--from-promotion ID): "
                                  "unvalidated parameters are paper traded only")
            if self.broker_mode != "tick":
                raise ConfigError("live trading goes through a venue broker (IB or DTC), never the paper broker")
        elif self.params.mode not in PAPER_MODES:
            if self.params.mode == "live":
                raise ConfigError("mode live needs `navale live` (a venue broker, --live-config FILE and the typed "
                                  "confirmation); paper trade with --mode paper or data_collection")
            raise ConfigError(f"mode {self.params.mode!r} cannot be paper traded: use one of {', '.join(PAPER_MODES)}")
        if self.broker_mode not in ("bar", "tick"):
            raise ConfigError(f"broker mode {self.broker_mode!r}: use 'bar' or 'tick'")
        if not self.unvalidated and not self.promotion_id:
            raise ConfigError(UNVALIDATED)
        self.state_dir = Path(self.state_dir)
        self.checkpoint_every = max(1, int(self.checkpoint_every))

    @property
    def tick_value(self) -> float:
        return self.tick_size * self.point_value
