"""The CME holiday and early-close calendar: known dates, the live calendar against the vectorised
functions, Globex hours around weekends and halts, and the 32 real ES contracts."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from strategy.market import calendar as C
from strategy.market.calendar import (
    SessionCalendar,
    calendar_inputs,
    day_keys,
    flat_minutes,
    globex_close_minutes,
    session_close_minutes,
    trading_day_ok,
)

ROOT = Path(__file__).resolve().parents[3]
FLAT_AT = 15 * 60 + 55  # Params.flat_at_et default, 15:55 ET


def keys(*dates: str) -> np.ndarray:
    return np.array(dates, dtype="datetime64[D]").astype(np.int64)


def ct_ns(stamp: str) -> int:
    return pd.Timestamp(stamp, tz="America/Chicago").value


EARLY_CLOSES = ("2019-11-29", "2021-11-26", "2019-07-03", "2018-07-03", "2018-12-24", "2019-12-24")
HOLIDAY_TRADING = ("2019-07-04", "2019-11-28", "2020-01-20")  # Globex to 12:00 CT, no cash session
CLOSED = ("2019-12-25", "2020-01-01", "2019-04-19", "2021-12-24")  # Christmas, New Year, Good Friday, observed


def test_early_close_days_end_at_13_15_et_and_flatten_at_13_10():
    d = keys(*EARLY_CLOSES)
    assert session_close_minutes(d).tolist() == [795.0] * len(d)
    assert trading_day_ok(d).all()
    assert flat_minutes(d, FLAT_AT).tolist() == [790.0] * len(d)
    assert globex_close_minutes(d).tolist() == [795.0] * len(d)  # 12:15 CT


def test_holidays_allow_no_entry():
    d = keys(*HOLIDAY_TRADING, *CLOSED)
    assert not trading_day_ok(d).any()
    assert np.isnan(session_close_minutes(d)).all()
    trading, closed = keys(*HOLIDAY_TRADING), keys(*CLOSED)
    assert globex_close_minutes(trading).tolist() == [780.0] * 3  # 12:00 CT
    assert flat_minutes(trading, FLAT_AT).tolist() == [775.0] * 3  # the same 5-minute lead
    assert np.isnan(globex_close_minutes(closed)).all()
    assert (flat_minutes(closed, FLAT_AT) == 0.0).all()


def test_good_friday_and_days_of_mourning_have_no_cash_session():
    d = keys("2015-04-03", "2021-04-02", "2018-12-05", "2025-01-09")
    assert not trading_day_ok(d).any()
    assert globex_close_minutes(d).tolist() == [555.0, 555.0, 570.0, 570.0]  # 08:15 / 08:30 CT


def test_regular_days_keep_flat_at():
    d = keys("2019-03-12", "2016-06-15", "2022-10-03", "2026-11-30")
    assert session_close_minutes(d).tolist() == [960.0] * 4
    assert trading_day_ok(d).all()
    assert flat_minutes(d, FLAT_AT).tolist() == [955.0] * 4
    # Globex: 16:15 CT until 2018-08-31, then 16:00 CT (HOURS_REGIMES)
    assert globex_close_minutes(d).tolist() == [1020.0, 1035.0, 1020.0, 1020.0]


def test_flat_lead_scales_to_the_close_and_never_passes_flat_at():
    early, regular = keys("2019-11-29"), keys("2019-11-26")
    assert flat_minutes(early, 900.0).tolist() == [735.0]  # 15:00 -> 12:15 (60 min lead)
    assert flat_minutes(regular, 900.0).tolist() == [900.0]
    assert flat_minutes(early, 700.0).tolist() == [535.0]  # 11:40 flat_at -> 08:55
    assert flat_minutes(regular, 970.0).tolist() == [970.0]  # after 16:00 on a regular day: unchanged
    assert flat_minutes(early, 970.0).tolist() == [795.0]  # but never after the early close


def test_trading_dates_accept_datetime64_and_sunday_evening_bars_belong_to_monday():
    # 2019-03-10 is the spring DST change: Globex opens 17:00 CDT = 22:00 UTC (23:00 UTC a week before)
    idx = pd.DatetimeIndex(["2019-03-10 22:00", "2019-03-11 14:30", "2019-03-11 19:55", "2019-03-03 23:00"], tz="UTC")
    assert day_keys(idx).tolist() == keys("2019-03-11", "2019-03-11", "2019-03-11", "2019-03-04").tolist()
    flat, ok = calendar_inputs(idx, FLAT_AT)
    assert flat.tolist() == [955.0] * 4 and ok.all()
    assert trading_day_ok(np.array(["2019-11-28"], "datetime64[D]")).tolist() == [False]
    cal = SessionCalendar(FLAT_AT)
    assert cal.is_open(ct_ns("2019-03-10 17:00")) and not cal.is_open(ct_ns("2019-03-10 16:59"))
    assert cal.is_open(pd.Timestamp("2019-03-10 22:00", tz="UTC").value)
    assert cal.next_open_ns(ct_ns("2019-03-09 12:00")) == pd.Timestamp("2019-03-10 22:00", tz="UTC").value
    # the autumn change: 17:00 CST = 23:00 UTC
    assert cal.next_open_ns(ct_ns("2019-11-02 12:00")) == pd.Timestamp("2019-11-03 23:00", tz="UTC").value


def test_calendar_inputs_per_bar_match_the_per_date_functions():
    idx = pd.date_range("2019-11-20", "2020-01-10", freq="5min", tz="UTC")
    flat, ok = calendar_inputs(idx, FLAT_AT)
    d = day_keys(idx)
    assert np.array_equal(flat, flat_minutes(d, FLAT_AT))
    assert np.array_equal(ok, trading_day_ok(d))
    assert flat.dtype == np.float64 and ok.dtype == np.bool_
    assert {790.0, 775.0, 955.0, 0.0} <= set(flat.tolist())


def test_session_calendar_agrees_with_the_vectorised_functions_2015_2022():
    days = np.arange(*keys("2015-01-01", "2023-01-01"))
    cal = SessionCalendar(FLAT_AT)
    got = [cal.day(int(k)) for k in days]
    assert [g[0] for g in got] == flat_minutes(days, FLAT_AT).tolist()
    assert [g[1] for g in got] == trading_day_ok(days).tolist()
    k = int(keys("2019-11-29")[0])
    assert cal.day(k) is cal.day(k) == (790.0, True)  # cached: the same object, nothing built again
    assert sum(not g[1] for g in got) > 0 and sum(g[0] == 790.0 for g in got) > 0


def test_is_open_across_a_weekend_and_the_daily_halt():
    cal = SessionCalendar()
    assert cal.is_open(ct_ns("2019-03-15 15:59")) and not cal.is_open(ct_ns("2019-03-15 16:00"))  # Friday close
    for t in ("2019-03-15 17:00", "2019-03-16 12:00", "2019-03-17 16:59"):
        assert not cal.is_open(ct_ns(t)) and cal.is_weekend(ct_ns(t)), t
        assert cal.next_open_ns(ct_ns(t)) == ct_ns("2019-03-17 17:00")
    assert cal.is_open(ct_ns("2019-03-17 17:00")) and not cal.is_weekend(ct_ns("2019-03-17 17:00"))
    assert not cal.is_weekend(ct_ns("2019-03-15 15:59")) and cal.is_weekend(ct_ns("2019-03-15 16:00"))
    # the daily halt 16:00-17:00 CT, Tuesday
    assert not cal.is_open(ct_ns("2019-03-19 16:30")) and not cal.is_weekend(ct_ns("2019-03-19 16:30"))
    assert cal.next_open_ns(ct_ns("2019-03-19 16:30")) == ct_ns("2019-03-19 17:00")
    assert cal.next_open_ns(ct_ns("2019-03-19 10:00")) == ct_ns("2019-03-19 10:00")
    # before 2018-09-04 Globex closed at 16:15 CT and halted 15:15-15:30 CT until 2021-06-25
    assert cal.is_open(ct_ns("2017-03-14 16:10")) and not cal.is_open(ct_ns("2017-03-14 16:15"))
    assert cal.is_weekend(ct_ns("2017-03-17 16:15")) and not cal.is_weekend(ct_ns("2017-03-17 16:10"))
    assert not cal.is_open(ct_ns("2019-03-19 15:20"))
    assert cal.next_open_ns(ct_ns("2019-03-19 15:20")) == ct_ns("2019-03-19 15:30")
    assert cal.is_open(ct_ns("2022-03-15 15:20"))


def test_is_open_honours_early_closes_and_holidays():
    cal = SessionCalendar()
    assert cal.is_open(ct_ns("2019-11-29 12:14")) and not cal.is_open(ct_ns("2019-11-29 12:15"))
    assert cal.next_open_ns(ct_ns("2019-11-29 12:15")) == ct_ns("2019-12-01 17:00")
    assert cal.is_open(ct_ns("2020-01-20 11:59")) and not cal.is_open(ct_ns("2020-01-20 12:00"))  # MLK
    assert cal.next_open_ns(ct_ns("2020-01-20 12:00")) == ct_ns("2020-01-20 17:00")
    assert not cal.is_open(ct_ns("2019-12-24 13:00")) and not cal.is_open(ct_ns("2019-12-25 10:00"))
    assert cal.next_open_ns(ct_ns("2019-12-24 12:15")) == ct_ns("2019-12-25 17:00")
    assert not cal.is_weekend(ct_ns("2019-12-25 10:00"))  # a holiday is not a weekend
    assert cal.session_close_ns(int(keys("2019-12-24")[0])) == ct_ns("2019-12-24 12:15")
    assert cal.session_close_ns(int(keys("2019-12-25")[0])) == -1


def test_dates_outside_the_coverage_are_refused_with_the_date_and_the_range():
    first, last = C.COVERAGE
    for fn in (session_close_minutes, trading_day_ok, lambda d: flat_minutes(d, FLAT_AT)):
        with pytest.raises(ValueError, match=rf"2012-06-01 is outside .*{first}\.\.{last}"):
            fn(keys("2019-01-02", "2012-06-01"))
    cal = SessionCalendar()
    with pytest.raises(ValueError, match=r"2031-01-06 is outside"):
        cal.day(int(keys("2031-01-06")[0]))
    with pytest.raises(ValueError, match=r"outside the session calendar's coverage"):
        cal.is_open(ct_ns("2031-02-03 10:00"))
    with pytest.raises(ValueError, match=r"2012-06-04 is outside"):
        calendar_inputs(pd.DatetimeIndex(["2012-06-04 15:00"], tz="UTC"), FLAT_AT)


@pytest.mark.filterwarnings("ignore:Series.dt.weekday is deprecated:Warning")  # inside the library's NYSE rules
def test_every_schedule_2015_2026_matches_the_cash_market():
    """The CME calendar's shortened days are the cash market's: a 12:15 CT close exactly on NYSE early
    closes, and no cash session exactly on the weekdays the NYSE does not trade."""
    import pandas_market_calendars as mcal

    nyse = mcal.get_calendar("NYSE")
    sched = nyse.schedule("2015-01-01", "2026-12-31")
    cash_days = set(sched.index.strftime("%Y-%m-%d"))
    early = set(nyse.early_closes(sched).index.strftime("%Y-%m-%d"))
    days = np.arange(*keys("2015-01-01", "2027-01-01"))
    names = np.datetime_as_string(days.astype("datetime64[D]"))
    ok = trading_day_ok(days)
    assert set(names[ok]) == cash_days
    assert set(names[session_close_minutes(days) == 795.0]) == early
    assert set(names[globex_close_minutes(days) == 795.0]) == early
    assert len(early) == 25 and {"2023-07-03", "2024-07-03", "2025-07-03", "2026-12-24"} <= early


def test_the_2015_2022_early_closes_and_no_cash_dates_are_the_known_ones():
    days = np.arange(*keys("2015-01-01", "2023-01-01"))
    names = np.datetime_as_string(days.astype("datetime64[D]"))
    weekday = (days + 3) % 7 < 5  # 1970-01-01 was a Thursday
    early = names[session_close_minutes(days) == 795.0].tolist()
    assert early == [
        "2015-11-27", "2015-12-24", "2016-11-25", "2017-07-03", "2017-11-24", "2018-07-03", "2018-11-23",
        "2018-12-24", "2019-07-03", "2019-11-29", "2019-12-24", "2020-11-27", "2020-12-24", "2021-11-26",
        "2022-11-25"]
    no_cash = names[weekday & ~trading_day_ok(days)]
    # nine NYSE holidays a year, Juneteenth from 2022, a day of mourning; 2022-01-01 (a Saturday) not observed
    assert len(no_cash) == 9 * 8 + 1 + 1 - 1
    assert {"2018-12-05", "2022-06-20", "2021-07-05", "2020-07-03", "2015-07-03"} <= set(no_cash)


def test_import_strategy_does_not_load_the_calendar_library():
    code = ("import sys, strategy, strategy.market.calendar, strategy.market.sessions; "
            "print(sorted(m for m in ('pandas_market_calendars', 'exchange_calendars') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT).stdout
    assert out.strip() == "[]"


# the one 5-minute bar of the 32 contracts that trades inside a scheduled halt (15:15-15:30 CT):
# 421 contracts on the 2015-12-04 payrolls day, ESZ15
TRADES_IN_A_HALT = {"2015-12-04 15:25:00-06:00"}


@pytest.mark.realdata
def test_the_32_es_contracts_trade_inside_the_calendar():
    """Every ES 5-minute bar of 2015-2022 lies inside its date's scheduled session (``is_open`` at its
    start, outside the halts too, but for one bar), and every
    shortened session's last bar ends at the scheduled close (a lone print at the close itself,
    at most a few contracts, is the closing trade stamped on the close)."""
    from conftest import es5m_files

    from research.data import load_bars
    from strategy.market.sessions import session_mask

    files = es5m_files()
    t = C._table()
    cal = SessionCalendar()
    bar_ns = 5 * 60 * 10**9
    early_dates, no_cash_dates, no_cash_rth_bars, closing_prints = set(), set(), set(), []
    for path in files:
        bars = load_bars(path)
        ts = bars.index.as_unit("ns").asi8
        d = day_keys(bars.index)
        r = d - t.first
        assert (t.open_ns[r] >= 0).all(), f"{path.name}: bars on a closed date"
        assert (ts >= t.open_ns[r]).all(), f"{path.name}: a bar before its session's open"
        late = ts >= t.close_ns[r]
        assert (ts[late] == t.close_ns[r][late]).all(), f"{path.name}: a bar starting after the close"
        assert (bars["volume"].to_numpy()[late] <= 10).all(), f"{path.name}: volume after the close"
        closing_prints += [f"{path.name[:5]} {np.datetime64(int(k), 'D')}" for k in d[late]]
        is_open = np.fromiter(map(cal.is_open, ts.tolist()), bool, len(ts))
        on_stop = (ts == t.close_ns[r]) | (ts == t.halt_start_ns[r])  # a print stamped as trading stops
        odd = {str(x) for x in bars.index[~is_open & ~on_stop].tz_convert("America/Chicago")}
        assert odd <= TRADES_IN_A_HALT, f"{path.name}: bars while the calendar says closed: {sorted(odd)}"
        # every shortened session inside the file ends at its scheduled close
        inner = (d > d[0]) & (d < d[-1])
        frame = pd.DataFrame({"d": d, "end": ts + bar_ns})[inner & ~late]
        last_end = frame.groupby("d")["end"].max()
        u = last_end.index.to_numpy()
        short = globex_close_minutes(u) < 960.0
        assert (last_end.to_numpy()[short] == t.close_ns[u[short] - t.first]).all()
        # early closes: the last RTH bar closes at or before the calendar's close
        rth = session_mask(bars.index, "rth") & ~late
        close_et = (bars.index + pd.Timedelta(bar_ns)).tz_convert("America/New_York")
        close_min = (close_et.hour * 60 + close_et.minute).to_numpy()
        sc = session_close_minutes(d)
        early = rth & (sc < 960.0)
        assert (close_min[early] <= sc[early]).all(), f"{path.name}: an RTH bar after an early close"
        early_dates |= set(d[early].tolist())
        no_cash = ~trading_day_ok(d)
        no_cash_dates |= set(d[no_cash].tolist())
        no_cash_rth_bars |= set(ts[rth & no_cash].tolist())
    print(f"\n{len(early_dates)} early-close dates, {len(no_cash_dates)} dates without a cash session "
          f"(holidays), {len(no_cash_rth_bars)} bar times inside 09:30-16:00 ET on those; "
          f"{len(closing_prints)} lone prints at a close: {closing_prints}")
    assert len(early_dates) >= 15 and len(no_cash_dates) >= 50 and len(no_cash_rth_bars) > 1500
