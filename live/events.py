"""The records that flow through the live loop: trades from a feed, closed bars, orders and fills.

Plain slotted dataclasses (no pandas): the per-tick path builds none of them per tick except the
`Tick` a feed yields. Times are int64 UTC nanoseconds (`*_ns`); prices are instrument prices
(floats on the tick grid; the trade engine converts them to ticks exactly as the backtest does).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

NAN = float("nan")

__all__ = ["NAN", "Tick", "Bar", "Bracket", "Order", "Fill", "OrderPurpose", "FillRole"]


@dataclass(slots=True)
class Tick:
    """One trade: time, price, size, aggressor side (+1 buyer lifted the ask, -1 seller hit the bid, 0 unknown).

    ``num_trades`` is the count the record stands for (1 for a single trade; a bundled Sierra record may say more);
    tick:N bars count it, as ``load_bars`` does. ``bid``/``ask``: the best quotes at the trade where the feed has
    them (a Sierra single-trade record's Low/High), NaN otherwise.
    """

    ts_ns: int
    price: float
    size: int
    side: int
    contract: str = ""
    num_trades: int = 1
    bid: float = NAN
    ask: float = NAN


@dataclass(slots=True)
class Bar:
    """One closed bar, labelled by its start time (the canonical bar frame's row, as `load_bars` gives it)."""

    ts_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: int
    bid_volume: int = 0
    ask_volume: int = 0
    num_trades: int = 0
    contract: str = ""
    last_of_contract: bool = False  # set by a replay of a stitched series on the old contract's last bar
    roll_offset: float = 0.0  # a stitched series' forward adjustment (prices stay the contract's own)


OrderPurpose = Literal["entry", "exit", "flatten"]
FillRole = Literal["entry", "exit", "stop", "target", "flatten"]


@dataclass(frozen=True, slots=True)
class Bracket:
    """Stop and target as one OCO pair, placed at these offsets (ticks) from the entry's fill price."""

    stop_ticks: int
    target_ticks: int


@dataclass(frozen=True, slots=True)
class Order:
    """A market order (the method trades only market entries/exits plus the OCO bracket).

    ``order_id`` is deterministic (from the decision's bar and purpose), so an order re-sent after
    a restart is recognised by the broker as the one it already has: never a duplicate.
    ``fill_at`` tells a bar-mode paper broker which price the backtest's fill model uses:
    ``"next_open"`` (decided at a close, filled at the next bar's open) or ``"close"`` (the
    session-end and time-stop exits, filled at the deciding bar's close). Real brokers ignore it.
    """

    order_id: str
    symbol: str
    side: int  # +1 buy, -1 sell
    quantity: int
    purpose: OrderPurpose
    reason: str = ""  # the exit reason (strategy.exits.EXIT_REASONS) or "" for an entry
    bracket: Bracket | None = None
    decided_ns: int = 0  # close time of the bar that decided it
    fill_at: Literal["next_open", "close"] = "next_open"
    session_day: int = -1  # valid for this trading date only (days since the epoch; -1: any); a day order


@dataclass(frozen=True, slots=True)
class Fill:
    """A fill reported by a broker (the whole order: the method trades fixed sizes)."""

    fill_id: str
    order_id: str
    symbol: str
    side: int
    quantity: int
    price: float
    ts_ns: int
    role: FillRole
    slippage_ticks: int = 0
    seq: int = 0  # the broker's running fill number (1, 2, ...): the trader persists the last one it applied
    extra: dict = field(default_factory=dict)  # broker-specific detail (e.g. ambiguous stop/target bar)
