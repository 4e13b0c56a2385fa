"""`ParamGrid`: the parameter combinations of a sweep (cartesian grid or a seeded random sample of it).

Combinations are numbered 0..N-1 in grid order: the cartesian product with the first parameter
varying slowest (``itertools.product`` order, parameters in the order given). A sample keeps the
grid order of the combinations it draws, so ids are stable for a given (grid, n, seed).
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import fields
from pathlib import Path
from typing import Any

import numpy as np

from strategy.bounds import check_field
from strategy.params import (
    EXECUTION_FIELDS,
    RELATED_FIELDS,
    Params,
    ParamsError,
    read_toml,
)

__all__ = ["ParamGrid", "parse_param_string", "DEFAULT_GRID_PATH"]

DEFAULT_GRID_PATH = Path(__file__).with_name("default_grid.toml")
_FIELDS = {f.name: f for f in fields(Params)}


def _native(v: Any) -> Any:
    """Plain Python values (numpy scalars -> int/float/bool, sequences -> tuples): `Params.hash` is
    computed from JSON, where ``np.int64(7)`` and ``7`` would not hash alike."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple, np.ndarray)):
        return tuple(_native(x) for x in v)
    return v


class ParamGrid:
    """Values per parameter -> combinations (dicts of overrides of a base `Params`).

    ``ParamGrid({"stop_ticks": [5, 7, 9], "target_r": [1.5, 2.0]})`` has 6 combinations;
    ``.sample(n, seed)`` draws n of them without replacement, reproducibly.
    """

    def __init__(self, values: Mapping[str, Any], *, sample_n: int | None = None, seed: int | None = None) -> None:
        if not values:
            raise ParamsError("the grid is empty: give at least one parameter with its values")
        self.values: dict[str, tuple[Any, ...]] = {}
        for name, vals in values.items():
            if name not in _FIELDS:
                raise ParamsError(f"unknown parameter {name!r} in the grid (see strategy.Params)")
            if isinstance(vals, (str, bytes)) or not isinstance(vals, (Sequence, np.ndarray)):
                vals = [vals]
            elif name == "quality_weights" and len(vals) and not isinstance(vals[0], (Sequence, np.ndarray)):
                vals = [vals]  # one weight vector, not a list of them
            vals = tuple(_native(v) for v in vals)
            if not vals:
                raise ParamsError(f"parameter {name}: empty list of values")
            if len({json.dumps(v, default=str) for v in vals}) != len(vals):
                raise ParamsError(f"parameter {name}: duplicated values {list(vals)}")
            for v in vals:  # each value within the parameter's range (strategy.bounds), before any combination
                check_field(name, v)
            self.values[name] = vals
        self.sample_n = sample_n
        self.seed = seed
        if sample_n is not None and sample_n < 1:
            raise ParamsError(f"sample size must be >= 1, got {sample_n}")

    # ---------------------------------------------------------------------------------- building
    @classmethod
    def from_toml(cls, path: str | Path) -> ParamGrid:
        """Read ``[grid] name = [v1, v2, ...]`` (scalars = one value) and optional ``[sample] n, seed``."""
        path = Path(path)
        doc = read_toml(path)
        values = doc.get("grid")
        if values is None:
            values = {k: v for k, v in doc.items() if not isinstance(v, dict)}
        sample = doc.get("sample") or {}
        try:
            grid = cls(values)
        except ParamsError as exc:
            raise ParamsError(f"{path}: {exc}") from None
        if sample:
            try:
                grid = grid.sample(int(sample["n"]), int(sample.get("seed", 0)))
            except (KeyError, TypeError, ValueError) as exc:
                raise ParamsError(f"{path}: [sample] needs an integer n (and optionally seed): {exc}") from None
        return grid

    @classmethod
    def from_strings(cls, items: Sequence[str]) -> ParamGrid:
        """From CLI strings ``name=v1,v2,...`` (values parsed by the parameter's type)."""
        values: dict[str, list[Any]] = {}
        for item in items:
            name, vals = parse_param_string(item)
            if name in values:
                raise ParamsError(f"parameter {name} given twice (--param {item!r})")
            values[name] = vals
        return cls(values)

    def sample(self, n: int, seed: int = 0) -> ParamGrid:
        """The same grid restricted to `n` combinations drawn without replacement with `seed`
        (all of them when n >= the grid size)."""
        return ParamGrid(self.values, sample_n=int(n), seed=int(seed))

    # ---------------------------------------------------------------------------------- reading
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.values)

    @property
    def full_size(self) -> int:
        """Combinations of the cartesian product."""
        return math.prod(len(v) for v in self.values.values())

    @property
    def signal_groups(self) -> int:
        """Distinct signal-parameter sets (the signal kernel runs once per group and data set), counted
        from the values alone: the product over the parameters `compute_signals` reads."""
        groups = math.prod(len(v) for k, v in self.values.items() if k not in EXECUTION_FIELDS)
        return min(groups, len(self))

    def indices(self) -> np.ndarray:
        """Positions in the cartesian product of the combinations, ascending (grid order)."""
        total = self.full_size
        if self.sample_n is None or self.sample_n >= total:
            return np.arange(total, dtype=np.int64)
        rng = np.random.default_rng(self.seed)
        return np.sort(rng.choice(total, size=self.sample_n, replace=False)).astype(np.int64)

    def __len__(self) -> int:
        return self.full_size if self.sample_n is None else min(self.sample_n, self.full_size)

    def combos(self) -> list[dict[str, Any]]:
        """The combinations, in id order, as ``{name: value}``."""
        names = self.names
        radix = [len(self.values[k]) for k in names]
        out = []
        for flat in self.indices().tolist():
            digits = []
            for r in reversed(radix):  # the last parameter varies fastest
                flat, d = divmod(flat, r)
                digits.append(d)
            digits.reverse()
            out.append({k: self.values[k][d] for k, d in zip(names, digits)})
        return out

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.combos())

    def validate(self, base: Params | None = None) -> None:
        """Refuse the grid if any of its combinations would be an invalid `Params`, without building them:
        each value is checked alone when the grid is made; the relations between fields
        (`strategy.params.RELATED_FIELDS`) are checked on the product of each related group's values
        only, the other fields at `base`. A sampled grid is refused as well when its full grid holds an
        invalid combination. `ParamsError` names the values and the rule."""
        base = base or Params()
        for group in RELATED_FIELDS:
            names = [k for k in group if k in self.values]
            if not names:
                continue
            for combo in itertools.product(*(self.values[k] for k in names)):
                values = dict(zip(names, combo))
                try:
                    base.replace(**values)
                except (ParamsError, TypeError) as exc:
                    raise ParamsError(f"grid values {values} (every combination holding them): {exc}") from None

    def params(self, base: Params | None = None) -> list[Params]:
        """Every combination as a validated `Params` (`base` with the combination's values);
        a bad value raises `ParamsError` naming the combination and the parameter."""
        base = base or Params()
        out = []
        for i, combo in enumerate(self.combos()):
            try:
                out.append(base.replace(**combo))
            except (ParamsError, TypeError) as exc:
                raise ParamsError(f"grid combination {i} {combo}: {exc}") from None
        return out

    def spec(self) -> dict[str, Any]:
        """JSON-able description (values, sample), for hashes and the result's meta."""
        values = {k: [list(x) if isinstance(x, tuple) else x for x in v] for k, v in self.values.items()}
        return {"values": values, "sample_n": self.sample_n, "seed": self.seed}

    def to_toml(self) -> str:
        """TOML text `from_toml` reads back to the same grid."""
        from strategy.params import (
            toml_value,  # the same value writer as Params.to_toml
        )

        lines = ["[grid]"]
        for k, v in self.values.items():
            lines.append(f"{k} = {toml_value(self.spec()['values'][k])}")
        if self.sample_n is not None:
            lines += ["", "[sample]", f"n = {self.sample_n}", f"seed = {self.seed}"]
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        s = f", sample_n={self.sample_n}, seed={self.seed}" if self.sample_n is not None else ""
        return f"ParamGrid({dict(self.values)!r}{s})"


def _parse_value(name: str, text: str) -> Any:
    kind = str(_FIELDS[name].type)
    t = text.strip()
    try:
        if kind == "bool":
            low = t.lower()
            if low not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return low in ("true", "1", "yes")
        if kind == "int":
            return int(t)
        if kind.startswith("float"):
            return float(t)
        if kind == "str":
            return t
    except ValueError:
        raise ParamsError(f"parameter {name}: cannot read {t!r} as {kind}") from None
    raise ParamsError(f"parameter {name} ({kind}) cannot be given as name=v1,v2 text: use a --grid TOML file")


def parse_param_string(item: str) -> tuple[str, list[Any]]:
    """``"stop_ticks=5,7,9"`` -> ``("stop_ticks", [5, 7, 9])``."""
    if "=" not in item:
        raise ParamsError(f"--param {item!r}: expected NAME=V1,V2,...")
    name, _, rest = item.partition("=")
    name = name.strip()
    if name not in _FIELDS:
        raise ParamsError(f"unknown parameter {name!r} in --param {item!r} (see strategy.Params)")
    vals = [_parse_value(name, v) for v in rest.split(",") if v.strip()]
    if not vals:
        raise ParamsError(f"--param {item!r}: no values")
    return name, vals
