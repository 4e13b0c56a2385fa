"""Every Params field is bounded (strategy.bounds): both edges accepted, just outside refused with the
field, the value and the range in one line; inf, NaN, huge integers and wrong types refused; the
parameter table of docs/parameters.md agrees with the bounds."""

from __future__ import annotations

import math
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from strategy import Params, ParamsError
from strategy.bounds import BOUNDS, parameter_table

ROOT = Path(__file__).resolve().parents[2]
NUMERIC = [n for n, b in BOUNDS.items() if b.kind in ("int", "float")]

# companions that let an edge value satisfy the relations between fields
COMPANIONS = {
    ("green_min_up", 1): {"red_max_up": 0},
    ("green_min_up", 20): {"type_lookback_bars": 20},
    ("type_lookback_bars", 1): {"green_min_up": 1, "red_max_up": 0},
    ("red_max_up", 19): {"green_min_up": 20, "type_lookback_bars": 20},
    ("status_winning", "lo"): {"status_balanced": 0.0},
    ("status_balanced", "hi"): {"status_winning": 1.0},
    ("tc_weak", 1.0): {"tc_strong": 1.0},
    ("tc_strong", 0.0): {"tc_weak": 0.0},
}


def _make(name, value, edge=None):
    extra = COMPANIONS.get((name, value), COMPANIONS.get((name, edge), {}))
    return Params(**{name: value, **extra})


def test_every_field_has_a_bound_in_field_order():
    assert list(BOUNDS) == [f.name for f in fields(Params)]


def test_defaults_and_presets_are_inside_the_bounds():
    from strategy.modes import MODES

    for m in MODES:
        Params.for_mode(m)  # raises if a preset were outside its own ranges


@pytest.mark.parametrize("name", NUMERIC)
def test_numeric_edges(name):
    b = BOUNDS[name]
    step = 1 if b.kind == "int" else 1e-9 * max(1.0, abs(b.hi))
    cast = int if b.kind == "int" else float
    lo, hi = cast(b.lo), cast(b.hi)
    inside_lo = lo + (step if b.lo_open else 0)
    inside_hi = hi - (step if b.hi_open else 0)
    assert getattr(_make(name, inside_lo, "lo"), name) == inside_lo
    assert getattr(_make(name, inside_hi, "hi"), name) == inside_hi
    for outside in (lo if b.lo_open else lo - step, hi if b.hi_open else hi + step):
        with pytest.raises(ParamsError) as e:
            Params(**{name: outside})
        msg = str(e.value)
        assert "\n" not in msg and msg.startswith(f"parameter {name} = {outside!r}") and b.range_text() in msg


@pytest.mark.parametrize("name", NUMERIC)
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan, 10**20, -(10**20), "5", True, [1]],
                         ids=["inf", "-inf", "nan", "huge", "-huge", "str", "bool", "list"])
def test_numeric_refuses_absurd_values(name, bad):
    with pytest.raises(ParamsError, match=f"^parameter {name} = .*accepted"):
        Params(**{name: bad})


@pytest.mark.parametrize("name", [n for n, b in BOUNDS.items() if b.kind == "int"])
def test_integers_are_integers(name):
    b = BOUNDS[name]
    with pytest.raises(ParamsError, match=f"{name} = .* is not an integer"):
        Params(**{name: float(b.lo) + 0.5})
    assert getattr(_make(name, np.int64(b.hi), "hi"), name) == b.hi  # numpy integers are integers


def test_the_issue_cases_are_refused_with_the_range():
    cases = {
        "stop_ticks": (99999999999999999999, "accepted [1, 4000] (ticks)"),
        "contracts": (10**9, "accepted [1, 1000] (contracts)"),
        "target_r": (math.inf, "accepted (0, 50] (R)"),
        "weight_battle": (5.0, "accepted [0, 1] (fraction)"),
        "weight_trend": (-4, "accepted [0, 1] (fraction)"),
    }
    for name, (value, rng) in cases.items():
        with pytest.raises(ParamsError) as e:
            Params(**{name: value})
        assert str(e.value) == f"parameter {name} = {value!r}: {rng}"


def test_optional_fields_accept_none():
    p = Params(commission_per_side_usd=None, min_signal_probability=None)
    assert p.commission_per_side_usd is None and p.min_signal_probability is None
    with pytest.raises(ParamsError, match="contracts = None is not an integer"):
        Params(contracts=None)


def test_quality_weights():
    assert Params(quality_weights=(0, 0, 0, 1)).quality_weights == (0.0, 0.0, 0.0, 1.0)
    assert Params(quality_weights=[1, 1, 1, 1]).quality_weights == (1.0, 1.0, 1.0, 1.0)
    for bad in [(5.0, 0, 0, 0), (-4, 0.5, 0.5, 0), (0, 0, 0, 0), (math.nan, 0.3, 0.3, 0.3), (0.5, 0.5), 5, "abcd"]:
        with pytest.raises(ParamsError, match="^parameter quality_weights = .*accepted 4 values, each in"):
            Params(quality_weights=bad)


@pytest.mark.parametrize("name", [n for n, b in BOUNDS.items() if b.kind == "choice"])
def test_choices(name):
    for c in BOUNDS[name].choices:
        assert getattr(Params(**{name: c}), name) == c
    for bad in ("nope", "", None, 3):
        with pytest.raises(ParamsError, match=f"^parameter {name} = .*accepted one of"):
            Params(**{name: bad})


@pytest.mark.parametrize("name", [n for n, b in BOUNDS.items() if b.kind == "hhmm"])
def test_times_of_day(name):
    for ok in ("00:00", "23:59"):
        extra = {"entry_end_et": ok} if name == "entry_start_et" else {"entry_start_et": ok} \
            if name == "entry_end_et" else {}
        assert getattr(Params(**{name: ok, **extra}), name) == ok
    for bad in ("24:00", "12:60", "9:30", "09:30:00", "0930", 930, None):
        with pytest.raises(ParamsError, match=f"^parameter {name} = .*HH:MM"):
            Params(**{name: bad})


@pytest.mark.parametrize("name", [n for n, b in BOUNDS.items() if b.kind == "bool"])
def test_booleans(name):
    assert getattr(Params(**{name: False}), name) is False
    for bad in (1, 0, "true", None):
        with pytest.raises(ParamsError, match=f"^parameter {name} = .* is not true/false"):
            Params(**{name: bad})


def test_relations_between_fields():
    with pytest.raises(ParamsError, match="tc_weak = 0.7: must be <= tc_strong"):
        Params(tc_weak=0.7)
    with pytest.raises(ParamsError, match="all 0"):
        Params(weight_battle=0.0, weight_trend=0.0, weight_base=0.0)
    with pytest.raises(ParamsError, match="status_balanced = 0.8: must be < status_winning"):
        Params(status_balanced=0.8)


def test_docs_table_is_generated_from_the_bounds():
    text = (ROOT / "docs" / "parameters.md").read_text(encoding="utf-8")
    table = parameter_table(Params().to_dict())
    assert table in text, ("docs/parameters.md is out of date: replace its table with "
                           "strategy.bounds.parameter_table(Params().to_dict())")
    assert "docs/parameters.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------------------------------------------- TOML files
def test_binary_and_non_utf8_toml_name_the_file(tmp_path):
    from research.sweep import ParamGrid

    binary = tmp_path / "model.toml"
    binary.write_bytes(b"\x80\x04\x95\x00\x00pickle\x00\xff")
    latin = tmp_path / "latin.toml"
    latin.write_bytes('comment = "café"\n'.encode("latin-1"))
    nul = tmp_path / "nul.toml"
    nul.write_bytes(b"stop_ticks = 5\n\x00\x00")
    for path in (binary, latin, nul):
        for read in (Params.from_toml, ParamGrid.from_toml):
            with pytest.raises(ParamsError) as e:
                read(path)
            msg = str(e.value)
            assert msg.startswith(f"{path}: not a") and "\n" not in msg
    with pytest.raises(ParamsError, match=f"^{tmp_path}: cannot read"):
        Params.from_toml(tmp_path)  # a folder
    bom = tmp_path / "bom.toml"
    bom.write_bytes("\ufeffstop_ticks = 9\n".encode("utf-8"))
    assert Params.from_toml(bom).stop_ticks == 9
    bom.write_bytes("\ufeff[grid]\nstop_ticks = [5, 9]\n".encode("utf-8"))
    assert ParamGrid.from_toml(bom).values == {"stop_ticks": (5, 9)}


def test_toml_out_of_range_names_file_and_field(tmp_path):
    f = tmp_path / "p.toml"
    f.write_text("stop_ticks = 99999999999999999999\n")  # TOML reads it as an integer
    with pytest.raises(ParamsError, match=r"p.toml: parameter stop_ticks = 99999999999999999999: accepted \[1, 4000\]"):
        Params.from_toml(f)
    f.write_text("target_r = inf\n")
    with pytest.raises(ParamsError, match=r"p.toml: parameter target_r = inf: accepted \(0, 50\]"):
        Params.from_toml(f)
    f.write_text("params = 3\n")
    with pytest.raises(ParamsError, match="p.toml: 'params' must be a table"):
        Params.from_toml(f)
