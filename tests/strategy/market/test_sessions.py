import pandas as pd

from strategy.market.sessions import (
    in_scheduled_halt,
    session_close,
    session_frame,
    session_id,
    session_mask,
)


def ct(*stamps):
    return pd.DatetimeIndex(pd.to_datetime(list(stamps))).tz_localize("America/Chicago").tz_convert("UTC")


def test_session_id_rolls_at_17_ct():
    idx = ct("2024-03-05 16:55", "2024-03-05 17:00", "2024-03-06 08:30", "2024-03-08 15:55", "2024-03-10 17:00")
    got = session_id(idx).astype(str).tolist()
    assert got == ["2024-03-05", "2024-03-06", "2024-03-06", "2024-03-08", "2024-03-11"]


def test_rth_is_et_and_dst_correct():
    # 09:30 ET is 08:30 CT all year; in UTC it moves with DST (14:30 in winter, 13:30 in summer)
    idx = pd.DatetimeIndex(["2024-01-10 14:30", "2024-01-10 13:30", "2024-07-10 13:30", "2024-07-10 19:55", "2024-07-10 20:00"], tz="UTC")
    assert session_mask(idx, "rth").tolist() == [True, False, True, True, False]
    assert session_mask(idx, "globex").tolist() == [False, True, False, False, True]
    assert session_mask(idx, "all").all()
    # across the March 2024 change: the first RTH bar of each day is 09:30 ET
    days = pd.date_range("2024-03-07", "2024-03-13", freq="B")
    opens = [pd.Timestamp(f"{d:%Y-%m-%d} 09:30", tz="America/New_York") for d in days]
    assert session_mask(pd.DatetimeIndex(opens).tz_convert("UTC"), "rth").all()
    before = [o - pd.Timedelta(minutes=1) for o in opens]
    assert not session_mask(pd.DatetimeIndex(before).tz_convert("UTC"), "rth").any()


def test_halts_by_regime():
    idx = ct("2015-03-10 15:20", "2015-03-10 16:05", "2015-03-10 16:20", "2019-03-12 16:05", "2019-03-12 15:20", "2022-03-10 15:20", "2022-03-10 16:00", "2022-03-10 17:00", "2022-03-12 10:00", "2022-03-13 16:00", "2022-03-13 17:00")
    assert in_scheduled_halt(idx).tolist() == [True, False, True, True, True, False, True, False, True, True, False]


def test_session_frame_phases():
    idx = pd.DatetimeIndex(["2024-07-10 13:30", "2024-07-10 16:00", "2024-07-10 12:00", "2024-07-10 03:00"], tz="UTC")
    f = session_frame(idx)
    assert f["phase"].astype(str).tolist() == ["ny_open", "lunch", "london", "asia"]
    assert f["rth"].tolist() == [True, True, False, False]


def test_requires_tz_aware():
    import pytest

    with pytest.raises(ValueError, match="tz-aware"):
        session_id(pd.DatetimeIndex(["2024-01-01"]))


def test_session_close_by_regime_and_dst():
    idx = ct("2015-03-09 20:00", "2015-03-10 10:00", "2022-03-10 10:00", "2022-03-14 10:00")
    got = session_close(idx).tz_convert("America/Chicago").strftime("%Y-%m-%d %H:%M").tolist()
    assert got == ["2015-03-10 16:15", "2015-03-10 16:15", "2022-03-10 16:00", "2022-03-14 16:00"]
    rth = session_close(idx, "rth").tz_convert("America/New_York").strftime("%Y-%m-%d %H:%M").tolist()
    assert rth == ["2015-03-10 16:00", "2015-03-10 16:00", "2022-03-10 16:00", "2022-03-14 16:00"]
    assert (session_close(idx) > idx).all()
