"""The accepted range, type and unit of every `Params` field, the check that applies them, and the
parameter table of docs/parameters.md generated from them.

Ranges are what an ES (or MES/NQ/...) day trader could mean, wide enough for research, narrow enough
that an absurd value (a 10^20-tick stop, 10^9 contracts, an infinite target, a weight of 5) is refused
with the field, the value and the range instead of becoming a result. Relations between fields
(``red_max_up < green_min_up``, ...) are checked by `Params` itself.

Pure Python (no numpy): the command line may read the table without the numerical stack.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

from .modes import MODES, ORDER_FLOW_MODES, SESSIONS

__all__ = ["ParamsError", "Bound", "BOUNDS", "check_field", "parameter_table"]


class ParamsError(ValueError):
    """A parameter is out of range or of the wrong type; the message names it."""


@dataclass(frozen=True)
class Bound:
    """Accepted values of one parameter.

    `kind`: "int", "float", "bool", "choice", "hhmm" (wall-clock "HH:MM" ET) or "weights4" (four
    floats). Numbers lie in [lo, hi]; `lo_open` / `hi_open` make an end exclusive. `optional`: None is
    accepted (meaning the stated default).
    """

    kind: str
    unit: str
    meaning: str
    lo: float | None = None
    hi: float | None = None
    lo_open: bool = False
    hi_open: bool = False
    choices: tuple[str, ...] = ()
    optional: str = ""  # what None means, when None is accepted

    def range_text(self) -> str:
        """The accepted range as shown in messages and in the table."""
        if self.kind == "bool":
            return "true or false"
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        if self.kind == "hhmm":
            return '"00:00" to "23:59"'
        text = f"{'(' if self.lo_open else '['}{_num(self.lo)}, {_num(self.hi)}{')' if self.hi_open else ']'}"
        if self.kind == "weights4":
            text = f"4 values, each in {text}, not all 0"
        return text + (f" or omitted ({self.optional})" if self.optional else "")


def _num(x: float | None) -> str:
    if x is None:
        return ""
    if float(x).is_integer() and abs(x) >= 10_000:
        return f"{x:,.0f}".replace(",", "_")
    return f"{x:g}" if not float(x).is_integer() else str(int(x))


_FRACTION = dict(kind="float", unit="fraction", lo=0.0, hi=1.0)
_WINDOW = dict(kind="int", unit="bars", lo=2, hi=200)

# Every Params field, in field order (a test checks the two agree).
BOUNDS: dict[str, Bound] = {
    "mode": Bound("choice", "-", "risk preset of docs/method.md (contracts, limits, gates)", choices=MODES),
    "order_flow": Bound("choice", "-", "bidask: exact delta from bid/ask volume; ohlcv: proxy; auto: from the data",
                        choices=ORDER_FLOW_MODES),
    "session": Bound("choice", "-", "bars the windows run over (rth 09:30-16:00 ET, globex, all)", choices=SESSIONS),
    "aggression_window_bars": Bound(**_WINDOW, meaning="W, the battle-outcome window"),
    "ball_threshold_bidask": Bound("float", "fraction", "ball threshold theta with bid/ask volume", 0.0, 1.0,
                                   lo_open=True),
    "ball_threshold_ohlcv": Bound("float", "fraction", "ball threshold theta in OHLCV mode (body ratio)", 0.0, 1.0,
                                  lo_open=True),
    "volume_median_bars": Bound(**_WINDOW, meaning="median window of the volume reference"),
    "volume_weight_cap": Bound("float", "x median volume", "cap of a bar's volume weight", 0.0, 20.0, lo_open=True),
    "strong_battle": Bound(**_FRACTION, meaning="abs(battle outcome) above this is a strong battle"),
    "base_window_bars": Bound(**_WINDOW, meaning="bars a base is read over"),
    "base_max_width_ticks": Bound("int", "ticks", "widest high-low of a base", 0, 400),
    "consolidation_bars": Bound(**_WINDOW, meaning="window of the consolidation test"),
    "consolidation_std_frac": Bound("float", "fraction", "close std below this share of the range: consolidation",
                                    0.0, 1.0, lo_open=True),
    "type_lookback_bars": Bound("int", "bars", "up-closes are counted over this many bars", 1, 20),
    "green_min_up": Bound("int", "bars", "up-closes that make a base green", 1, 20),
    "red_max_up": Bound("int", "bars", "up-closes at most for a red base", 0, 19),
    "quality_duration_bars": Bound("int", "bars", "duration at which the quality's duration term saturates", 1, 500),
    "quality_weights": Bound("weights4", "weights", "base quality: duration, width, volume, respect", 0.0, 1.0),
    "quality_respect_term": Bound("choice", "-", "respect term of the base quality",
                                  choices=("constant", "declining_volume")),
    "min_record_quality": Bound(**_FRACTION, meaning="confirmed bases below this never become reference bases"),
    "golden_rule_ticks": Bound("int", "ticks", "a close this far beyond the base violates the golden rule", 0, 100),
    "tc_strong": Bound(**_FRACTION, meaning="trend continuation above this is strong"),
    "tc_weak": Bound(**_FRACTION, meaning="trend continuation below this is weak"),
    "ldu_lud_range_ticks": Bound("int", "ticks", "range of the LDU/LUD patterns", 0, 400),
    "cds_range_ticks": Bound("int", "ticks", "range of the CDS pattern", 0, 400),
    "weight_battle": Bound(**_FRACTION, meaning="composite-score weight of the battle outcome"),
    "weight_trend": Bound(**_FRACTION, meaning="composite-score weight of trend continuation"),
    "weight_base": Bound(**_FRACTION, meaning="composite-score weight of the base"),
    "entry_threshold": Bound(**_FRACTION, meaning="abs(composite score) an entry needs"),
    "status_winning": Bound("float", "fraction", "score above this: vikings/defenders winning", 0.0, 1.0,
                            lo_open=True),
    "status_balanced": Bound("float", "fraction", "score below this: balanced", 0.0, 1.0, hi_open=True),
    "min_base_quality": Bound(**_FRACTION, meaning="reference-base quality an entry needs (gate 3)"),
    "golden_rule_strict": Bound("bool", "-", "an intact golden rule is required to enter (gate 2)"),
    "entry_start_et": Bound("hhmm", "HH:MM ET", "first bar close an entry may follow"),
    "entry_end_et": Bound("hhmm", "HH:MM ET", "last bar close an entry may follow"),
    "friday_cutoff_et": Bound("hhmm", "HH:MM ET", "no new entries on Fridays after this bar close"),
    "cash_open_blackout": Bound("bool", "-", "no entries on bar closes in 09:30-09:40 ET"),
    "contracts": Bound("int", "contracts", "size of every trade (the instrument's limit also applies)", 1, 1000),
    "slippage_ticks": Bound("int", "ticks", "per market/stop fill, against the trade", 0, 50),
    "commission_per_side_usd": Bound("float", "$ per contract per side", "commission and fees", 0.0, 100.0,
                                     optional="the instrument's default"),
    "stop_ticks": Bound("int", "ticks", "protective stop from the entry fill (must also be within the data's "
                        "largest session range)", 1, 4000),
    "target_r": Bound("float", "R", "target as a multiple of the stop (R)", 0.0, 50.0, lo_open=True),
    "time_stop_bars": Bound("int", "bars", "exit at the close of the n-th bar held", 1, 5000),
    "flat_at_et": Bound("hhmm", "HH:MM ET", "positions are closed at the bar ending at/after this"),
    "max_trades_per_day": Bound("int", "trades", "entries per session at most", 1, 10_000),
    "daily_loss_limit_usd": Bound("float", "$", "no new entries once the session's loss reaches this", 0.0,
                                  10_000_000.0, lo_open=True),
    "daily_profit_target_usd": Bound("float", "$", "no new entries once the session's realised profit reaches this",
                                     0.0, 10_000_000.0, lo_open=True, optional="no profit target"),
    "max_drawdown_pct": Bound("float", "%", "trading stops for good once equity is this far below its peak (the "
                              "mode's max drawdown or the 3 % kill switch, the stricter)", 0.0, 100.0, lo_open=True,
                              optional="no drawdown stop"),
    "max_consecutive_losses": Bound("int", "trades", "no new entries for the rest of the session after this many "
                                    "losing trades in a row (kill switch)", 1, 10_000, optional="no loss-streak stop"),
    "initial_capital_usd": Bound("float", "$", "account value at the start", 1_000.0, 10_000_000_000.0),
    "min_signal_probability": Bound("float", "probability", "P(win) the ML filter needs", 0.0, 1.0,
                                    optional="the mode's threshold"),
}


def _is_int(v: Any) -> bool:
    return type(v) is int or (isinstance(v, numbers.Integral) and not isinstance(v, bool))


def _is_real(v: Any) -> bool:
    return type(v) in (float, int) or (isinstance(v, numbers.Real) and not isinstance(v, bool))


def _in_range(b: Bound, x: float) -> bool:
    if x != x or x in (math.inf, -math.inf):  # NaN, infinities
        return False
    above = x > b.lo if b.lo_open else x >= b.lo
    below = x < b.hi if b.hi_open else x <= b.hi
    return above and below


def _refuse(name: str, b: Bound, value: Any, what: str = "") -> None:
    shown = repr(value)
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    unit = f" ({b.unit})" if b.unit != "-" else ""
    raise ParamsError(f"parameter {name} = {shown}{what}: accepted {b.range_text()}{unit}")


def _hhmm_ok(value: Any) -> bool:
    return (isinstance(value, str) and len(value) == 5 and value[2] == ":" and value[:2].isdigit()
            and value[3:].isdigit() and int(value[:2]) < 24 and int(value[3:]) < 60)


def check_field(name: str, value: Any) -> None:
    """Raise `ParamsError` naming `name`, `value` and the accepted range unless `value` is accepted."""
    b = BOUNDS[name]
    kind = b.kind
    if value is None and b.optional:
        return
    if kind == "int":
        if not _is_int(value):
            _refuse(name, b, value, " is not an integer")
        if not _in_range(b, value):
            _refuse(name, b, value)
    elif kind == "float":
        if not _is_real(value):
            _refuse(name, b, value, " is not a number")
        if not _in_range(b, value):
            _refuse(name, b, value)
    elif kind == "bool":
        if not isinstance(value, bool):
            _refuse(name, b, value, " is not true/false")
    elif kind == "choice":
        if not isinstance(value, str) or value not in b.choices:
            _refuse(name, b, value)
    elif kind == "hhmm":
        if not _hhmm_ok(value):
            _refuse(name, b, value, " is not a time of day 'HH:MM'")
    elif kind == "weights4":
        if not (isinstance(value, (tuple, list)) and len(value) == 4 and all(_is_real(w) for w in value)):
            _refuse(name, b, value, " is not 4 numbers")
        if not all(_in_range(b, w) for w in value) or not any(w > 0 for w in value):
            _refuse(name, b, value)
    else:  # pragma: no cover - a new kind without a rule
        raise AssertionError(f"no rule for kind {kind!r}")


def parameter_table(defaults: dict[str, Any] | None = None) -> str:
    """The Markdown table of docs/parameters.md: every field with its unit, accepted range, default
    (`defaults`, e.g. ``Params().to_dict()``) and meaning."""
    defaults = defaults or {}
    rows = ["| parameter | unit | accepted | default | meaning |", "|---|---|---|---|---|"]
    for name, b in BOUNDS.items():
        d = defaults.get(name)
        shown = "-" if d is None else (", ".join(f"{x:g}" for x in d) if isinstance(d, (list, tuple)) else
                                       str(d).lower() if isinstance(d, bool) else str(d))
        rows.append(f"| `{name}` | {b.unit} | {b.range_text()} | {shown} | {b.meaning} |")
    return "\n".join(rows) + "\n"
