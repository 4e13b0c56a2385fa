"""Market-data layer: loaders into the canonical bar frame, sessions, continuous series, checks.

Main entry points: :func:`load_bars`, :func:`check`, :func:`load_ticks`,
:func:`build_continuous` / :func:`adjusted_prices`, :func:`default_dataset`.
"""

from .continuous import adjusted_prices, build_continuous, roll_schedule
from .errors import DataError
from .frame import FLOW_COLUMNS, PRICE_COLUMNS, has_order_flow
from .loader import detect_format, expand_paths, load_bars, load_ticks
from .quality import QualityReport, check
from .synthetic import SyntheticSpec, default_dataset

__all__ = [
    "DataError",
    "load_bars",
    "load_ticks",
    "detect_format",
    "expand_paths",
    "check",
    "QualityReport",
    "build_continuous",
    "adjusted_prices",
    "roll_schedule",
    "default_dataset",
    "SyntheticSpec",
    "has_order_flow",
    "PRICE_COLUMNS",
    "FLOW_COLUMNS",
]
