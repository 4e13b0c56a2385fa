"""The front-month DTC symbol: the quarterly contract by the ``days:N`` roll rule of research.data.continuous."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from live.venues.dtc.symbols import (
    ROLL_DAYS,
    business_days_before,
    dtc_symbol,
    front_month,
)


@pytest.mark.parametrize("day,want", [
    (dt.date(2026, 12, 3), "ESZ26-CME"), (dt.date(2026, 12, 9), "ESZ26-CME"), (dt.date(2026, 12, 10), "ESH27-CME"),
    (dt.date(2024, 3, 6), "ESH24-CME"), (dt.date(2024, 3, 7), "ESM24-CME"), (dt.date(2025, 1, 2), "ESH25-CME")])
def test_front_month(day, want):
    assert dtc_symbol("ES", "CME", day, env={}) == want


def test_formats_and_override():
    d = dt.date(2026, 12, 3)
    assert dtc_symbol("ES", "CME", d, fmt="{root}{month}{y}", env={}) == "ESZ6"
    assert dtc_symbol("MES", "CME", d, env={"NAVALE_DTC_SYMBOL_FORMAT": "{root}{month}{yy}"}) == "MESZ26"
    assert dtc_symbol("ES", "CME", d, env={"NAVALE_DTC_SYMBOL": "ESH27-CME"}) == "ESH27-CME"


def test_business_days_back_is_numpys_busday_offset():
    for k in range(0, 400, 7):
        d = dt.date(2024, 1, 1) + dt.timedelta(days=k)
        want = np.busday_offset(np.datetime64(d, "D"), -ROLL_DAYS, roll="backward").astype(object)
        assert business_days_before(d, ROLL_DAYS) == want


def test_roll_day_is_the_second_thursday_before_expiry():
    for y in (2024, 2025, 2026):
        for m in (3, 6, 9, 12):
            c = front_month("ES", dt.date(y, m, 1))
            roll = business_days_before(c.expiry, ROLL_DAYS)
            assert roll.weekday() == 3 and (c.expiry - roll).days == 8
