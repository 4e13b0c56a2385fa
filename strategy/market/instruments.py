"""Futures instrument specifications and contract-code parsing.

One table (`INSTRUMENTS`) holds tick size, tick value, point value, the
default commission per side and the maintenance margin per contract for each
product root. Users extend it with
:func:`register` or a TOML file named by ``NAVALE_INSTRUMENTS`` (same keys as
:class:`InstrumentSpec`), e.g.::

    [RTY]
    tick_size = 0.1
    point_value = 50.0
    commission_per_side = 2.25
    margin_per_contract = 6000.0
    description = "E-mini Russell 2000"
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, replace
from pathlib import Path

__all__ = [
    "InstrumentSpec",
    "INSTRUMENTS",
    "ContractCode",
    "get_spec",
    "register",
    "parse_contract",
    "root_of",
    "MONTH_CODES",
]

MONTH_CODES = {"F": 1, "G": 2, "H": 3, "J": 4, "K": 5, "M": 6, "N": 7, "Q": 8, "U": 9, "V": 10, "X": 11, "Z": 12}


@dataclass(frozen=True)
class InstrumentSpec:
    """Contract economics of one futures product (per contract)."""

    root: str
    tick_size: float
    point_value: float  # $ per 1.0 price point
    commission_per_side: float  # $ per contract per side (broker + exchange + NFA), a default to override
    description: str = ""
    exchange: str = "CME"
    quarterly: bool = True  # H/M/U/Z cycle, expiring on the 3rd Friday
    # Largest order a backtest may assume (contracts). The fill model charges a fixed `slippage_ticks`
    # whatever the size, which holds only while an order fits in the size shown at the best price
    # (for ES in regular hours, typically a few hundred contracts; less overnight and on the micros).
    # 500 is that order of magnitude, an estimate, not an exchange rule: set your own with
    # `register()` or NAVALE_INSTRUMENTS.
    max_contracts: int = 500
    # $ the account must hold per contract to keep trading (exchange maintenance margin); the
    # backtest stops opening trades when equity falls below it (0: only when equity reaches 0)
    margin_per_contract: float = 0.0

    @property
    def tick_value(self) -> float:
        """Dollars per tick per contract."""
        return self.tick_size * self.point_value

    def __post_init__(self) -> None:
        if not (self.tick_size > 0 and self.point_value > 0 and self.commission_per_side >= 0
                and self.margin_per_contract >= 0):
            raise ValueError(f"instrument {self.root}: tick_size and point_value must be > 0, commission and "
                             "margin_per_contract >= 0")
        if not (isinstance(self.max_contracts, int) and self.max_contracts >= 1):
            raise ValueError(f"instrument {self.root}: max_contracts must be an integer >= 1, got {self.max_contracts!r}")


# Commissions are typical retail all-in figures (IBKR tiered + CME fees, 2024); override per account.
# Margins are CME Clearing outright maintenance margins per contract, rounded, at their 2022-2024 level
# (cmegroup.com, "<product> Margins" pages; ES $12,000, the Micro 1/10 of it). SPAN moves them with
# volatility (ES was ~$6,000 in 2017 and above $13,000 in 2020); brokers may ask more, and intraday
# "day-trade" margins are lower. One fixed figure for the whole history is a floor, not a broker model.
INSTRUMENTS: dict[str, InstrumentSpec] = {
    s.root: s
    for s in (
        InstrumentSpec("ES", 0.25, 50.0, 2.25, "E-mini S&P 500", margin_per_contract=12_000.0),
        InstrumentSpec("MES", 0.25, 5.0, 0.62, "Micro E-mini S&P 500", margin_per_contract=1_200.0),
        InstrumentSpec("NQ", 0.25, 20.0, 2.25, "E-mini Nasdaq-100", margin_per_contract=17_000.0),
        InstrumentSpec("MNQ", 0.25, 2.0, 0.62, "Micro E-mini Nasdaq-100", margin_per_contract=1_700.0),
        InstrumentSpec("YM", 1.0, 5.0, 2.25, "E-mini Dow", exchange="CBOT", margin_per_contract=8_500.0),
        InstrumentSpec("RTY", 0.1, 50.0, 2.25, "E-mini Russell 2000", margin_per_contract=6_000.0),
        InstrumentSpec("6E", 0.00005, 125000.0, 2.47, "Euro FX", margin_per_contract=2_500.0),
    )
}

_user_file_loaded = False


def _load_user_file() -> None:
    global _user_file_loaded
    if _user_file_loaded:
        return
    _user_file_loaded = True
    path = os.environ.get("NAVALE_INSTRUMENTS")
    if not path:
        return
    p = Path(path)
    try:
        table = tomllib.loads(p.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{p}: cannot read instrument table: {exc}") from exc
    for root, fields in table.items():
        try:
            register(InstrumentSpec(root=root, **fields))
        except TypeError as exc:
            raise ValueError(f"{p}: [{root}]: {exc}") from exc


def register(spec: InstrumentSpec) -> None:
    """Add or replace an instrument in the table."""
    INSTRUMENTS[spec.root.upper()] = replace(spec, root=spec.root.upper())


@dataclass(frozen=True)
class ContractCode:
    """A parsed contract code such as ``ESH15``."""

    root: str
    month: int
    year: int

    @property
    def name(self) -> str:
        code = {v: k for k, v in MONTH_CODES.items()}[self.month]
        return f"{self.root}{code}{self.year % 100:02d}"

    @property
    def expiry(self) -> dt.date:
        """Last trading day for equity-index quarterlies: the 3rd Friday of the month."""
        first = dt.date(self.year, self.month, 1)
        first_friday = first + dt.timedelta(days=(4 - first.weekday()) % 7)
        return first_friday + dt.timedelta(days=14)

    def sort_key(self) -> tuple[int, int]:
        return (self.year, self.month)


_CONTRACT_RE = re.compile(r"^(?P<root>[A-Z0-9]{1,4}?)(?P<m>[FGHJKMNQUVXZ])(?P<y>\d{1,2})$")


def parse_contract(code: str, *, reference_year: int | None = None) -> ContractCode | None:
    """Parse ``ESH15`` / ``ESH5`` / ``6EH4`` into a :class:`ContractCode`, or None if not a contract code.

    One-digit years are resolved to the decade nearest ``reference_year`` (default: this year).
    """
    m = _CONTRACT_RE.match(code.upper())
    if not m:
        return None
    y = int(m["y"])
    if len(m["y"]) == 2:
        year = 2000 + y
    else:
        ref = reference_year or dt.date.today().year
        year = ref - ref % 10 + y
        if year > ref + 5:
            year -= 10
    return ContractCode(m["root"], MONTH_CODES[m["m"]], year)


def root_of(symbol: str) -> str:
    """Product root of a symbol or contract code (``ESZ22`` -> ``ES``, ``ES`` -> ``ES``)."""
    c = parse_contract(symbol)
    return c.root if c else symbol.upper()


def get_spec(symbol: str) -> InstrumentSpec:
    """Spec for a root or a contract code; raises KeyError naming the known roots."""
    _load_user_file()
    root = root_of(symbol)
    try:
        return INSTRUMENTS[root]
    except KeyError:
        raise KeyError(
            f"unknown instrument {symbol!r} (root {root!r}); known: {', '.join(sorted(INSTRUMENTS))}. "
            "Add it with strategy.market.instruments.register() or a NAVALE_INSTRUMENTS TOML file."
        ) from None
