"""--from/--to: strict YYYY-MM-DD trading dates; a time, another layout, a reversed or empty range
is refused in one line that says which."""

from __future__ import annotations

import numpy as np
import pytest

from research.pipeline import load_series, parse_date, parse_date_range


def test_dates_are_strict_yyyy_mm_dd():
    assert parse_date("2020-01-03", "--from") == np.datetime64("2020-01-03")
    assert parse_date(None) is None
    for empty in ("", "  "):  # an empty value is not "no filter"
        with pytest.raises(ValueError, match="^--from is empty: give a date YYYY-MM-DD, or leave the option out$"):
            parse_date(empty, "--from")
    for bad, why in [("01/03/2020", "form YYYY-MM-DD"), ("2020/01/03", "form YYYY-MM-DD"), ("20200103", "form"),
                     ("2020-1-3", "form"), ("3 Jan 2020", "form"), ("2020-02-30", "not a valid date"),
                     ("2020-01-03T10:00", "a time is not accepted"), ("2020-01-03 09:30", "a time is not accepted")]:
        with pytest.raises(ValueError) as e:
            parse_date(bad, "--from")
        msg = str(e.value)
        assert msg.startswith(f"--from {bad!r} is not a") and why in msg and "\n" not in msg


def test_reversed_and_empty_ranges():
    assert parse_date_range("2020-01-03", "2020-01-04") == (np.datetime64("2020-01-03"), np.datetime64("2020-01-04"))
    with pytest.raises(ValueError, match="--from 2020-02-01 --to 2020-01-01 is reversed"):
        parse_date_range("2020-02-01", "2020-01-01")
    with pytest.raises(ValueError, match="is an empty range: --to is the first date dropped.*--to 2020-01-04"):
        parse_date_range("2020-01-03", "2020-01-03")
    with pytest.raises(ValueError, match="reversed"):  # every command loads through load_series
        load_series(None, date_from="2024-03-14", date_to="2024-03-13")
