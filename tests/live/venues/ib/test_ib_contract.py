"""The front-month rule: research.data.continuous's days rule (6 business days before the 3rd-Friday expiry)."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from live.venues.ib.contract import front_month, local_symbol, roll_date, trading_date
from strategy.market.instruments import ContractCode


def _ns(y, m, d, hour=15, tz=-6):
    return int(dt.datetime(y, m, d, hour, tzinfo=dt.timezone(dt.timedelta(hours=tz))).timestamp() * 1e9)


@pytest.mark.parametrize("year,month", [(y, m) for y in range(2015, 2031) for m in (3, 6, 9, 12)])
def test_roll_date_is_numpys_busday_offset_of_the_expiry(year, month):
    exp = ContractCode("ES", month, year).expiry
    want = np.busday_offset(np.datetime64(exp, "D"), -6, roll="backward").astype(dt.date)
    assert roll_date("ES", year, month) == want


def test_front_month_switches_on_the_roll_date():
    roll = roll_date("ES", 2024, 3)  # 2024-03-07 (expiry Friday 03-15)
    assert roll == dt.date(2024, 3, 7)
    assert front_month("ES", _ns(2024, 3, 6)) == "202403"
    assert front_month("ES", _ns(2024, 3, 7)) == "202406"
    assert front_month("ES", _ns(2024, 3, 6, hour=17)) == "202406"  # 17:00 CT: already the 7th's session
    assert front_month("ES", _ns(2024, 1, 2)) == "202403"
    assert front_month("MES", _ns(2024, 12, 30)) == "202503"
    assert front_month("ES", _ns(2024, 12, 12)) == "202503"  # Dec roll: Thursday 2024-12-12
    assert front_month("ES", _ns(2024, 12, 11)) == "202412"


def test_the_rule_agrees_with_the_continuous_series_days_rule():
    """Per trading date, research.data.continuous.roll_schedule(days:6) on two contracts' bars picks the same one."""
    import pandas as pd

    from research.data.continuous import roll_schedule

    def frame(sym, start, end):
        idx = pd.date_range(start, end, freq="1h", tz="UTC")
        f = pd.DataFrame({"volume": 1}, index=idx)
        f.attrs["symbol"] = sym
        return f

    sched = roll_schedule([frame("ESH24", "2024-02-20", "2024-03-15 20:00"), frame("ESM24", "2024-02-20",
                                                                                    "2024-04-01")], "days:6")
    for sid, contract in zip(sched["session_id"], sched["contract"]):
        day = np.datetime64(sid, "D").astype(dt.date) if not isinstance(sid, dt.date) else sid
        noon = _ns(day.year, day.month, day.day, hour=12)
        assert {"202403": "ESH24", "202406": "ESM24"}[front_month("ES", noon)] == contract, day


def test_trading_date_and_local_symbol():
    assert trading_date(_ns(2024, 3, 4, hour=16)) == dt.date(2024, 3, 4)
    assert trading_date(_ns(2024, 3, 4, hour=17)) == dt.date(2024, 3, 5)
    assert local_symbol("ES", "202403") == "ESH4" and local_symbol("MES", "202712") == "MESZ7"
