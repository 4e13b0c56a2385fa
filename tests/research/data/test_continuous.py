import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA, shared_file

from research.data import DataError, adjusted_prices, load_bars, roll_schedule
from strategy.market.instruments import parse_contract
from strategy.market.sessions import session_id

YEARS = ["20", "21", "22"]


def files_2020_2022():
    shared_file("es-5m")
    return [SHARED_DATA / "es-5m" / f"ES{m}{y}-CME.scid_BarData__5m.txt.gz" for y in YEARS for m in "HMUZ"]


@pytest.fixture(scope="module")
def cont():
    return load_bars(files_2020_2022())  # several contracts -> continuous by default


def test_continuous_structure(cont):
    assert cont.attrs["continuous"] and cont.attrs["roll"] == "volume"
    assert cont.index.is_monotonic_increasing and cont.index.is_unique
    order = list(dict.fromkeys(cont["contract"].astype(str)))
    assert order == [f"ES{m}{y}" for y in YEARS for m in "HMUZ"]  # each contract once, in expiry order
    assert len(cont.attrs["rolls"]) == 11
    # a contract owns whole sessions
    sid = session_id(cont.index)
    per_day = pd.Series(cont["contract"].astype(str).to_numpy(), index=sid).groupby(level=0).nunique()
    assert (per_day == 1).all()


def test_no_session_lost_and_rolls_at_contract_change(cont):
    # the es-5m files do not overlap (each holds its front-month months), so every roll happens
    # when the old contract's data ends, and every session of every file is in the series
    days_in_files = set()
    for p in files_2020_2022():
        days_in_files |= set(session_id(load_bars(p).index).tolist())
    assert set(session_id(cont.index).tolist()) == days_in_files
    for r in cont.attrs["rolls"]:
        assert r["gap_method"] == "adjacent" and r["gap_measured_at"] < r["time"]
        expiry = parse_contract(r["from"]).expiry
        day = session_id(pd.DatetimeIndex([r["time"]]))[0].astype("datetime64[D]").item()
        assert 0 < (day - expiry).days <= 4  # first session after expiry (a weekend in between)


def _daily(symbol, days, volumes, price):
    idx = pd.DatetimeIndex([pd.Timestamp(f"{d} 10:00", tz="America/New_York") for d in days]).tz_convert("UTC").as_unit("ns")
    f = pd.DataFrame({"open": price, "high": price, "low": price, "close": price, "volume": volumes, "num_trades": volumes}, index=idx.rename("time"), dtype=float)
    f[["volume", "num_trades"]] = f[["volume", "num_trades"]].astype("int64")
    f.attrs.update(symbol=symbol, root="ES", sources=[symbol], order_flow=False)
    return f


def test_volume_roll_rule_on_overlapping_contracts():
    days = [f"2024-03-{d:02d}" for d in (4, 5, 6, 7, 8, 11, 12, 13, 14, 15)]
    old = _daily("ESH24", days, [900, 900, 800, 700, 600, 400, 300, 200, 100, 50], 5000.0)
    new = _daily("ESM24", days, [100, 200, 300, 400, 500, 700, 800, 900, 950, 990], 5050.0)
    sched = roll_schedule([new, old]).set_index("session_id")["contract"].astype(str).to_dict()
    # ESM24 first out-trades ESH24 on 03-11; the switch is the *next* session (decided with known volume)
    assert sched[np.datetime64("2024-03-11")] == "ESH24"
    assert sched[np.datetime64("2024-03-12")] == "ESM24"
    from research.data import build_continuous

    c = build_continuous([old, new])
    (r,) = c.attrs["rolls"]
    assert r["gap_method"] == "overlap" and r["gap"] == 50.0
    assert r["gap_measured_at"] == old.index[5]  # 03-11, the last common bar before the switch
    assert c["roll_offset"].tolist() == [0.0] * 6 + [50.0] * 4
    assert adjusted_prices(c, "back")["close"].tolist() == [5050.0] * 10
    assert adjusted_prices(c, "forward")["close"].tolist() == [5000.0] * 10
    # fixed-days rule: 2 business days before the 03-15 expiry
    s2 = roll_schedule([old, new], roll="days:2")
    assert s2[s2["contract"] == "ESM24"]["session_id"].iloc[0] == np.datetime64("2024-03-13")


def test_real_prices_kept_and_adjustment(cont):
    esm21 = load_bars(SHARED_DATA / "es-5m" / "ESM21-CME.scid_BarData__5m.txt.gz")
    part = cont[cont["contract"] == "ESM21"]
    pd.testing.assert_series_equal(part["close"], esm21.loc[part.index, "close"], check_names=False)
    back = adjusted_prices(cont, "back")
    fwd = adjusted_prices(cont, "forward")
    last = cont["contract"] == "ESZ22"
    first = cont["contract"] == "ESH20"
    assert np.allclose(back.loc[last, "close"], cont.loc[last, "close"])  # latest contract unchanged
    assert np.allclose(fwd.loc[first, "close"], cont.loc[first, "close"])  # first contract unchanged
    for r in cont.attrs["rolls"]:  # gap = new first open - old last close (files do not overlap)
        new_f = load_bars(SHARED_DATA / "es-5m" / f"{r['to']}-CME.scid_BarData__5m.txt.gz")
        old_f = load_bars(SHARED_DATA / "es-5m" / f"{r['from']}-CME.scid_BarData__5m.txt.gz")
        assert r["gap"] == pytest.approx(new_f["open"].iloc[0] - old_f["close"].iloc[-1])
    same = cont["contract"] == cont["contract"].shift()
    assert np.allclose(cont["close"].diff()[same], back["close"].diff()[same])  # in-contract moves untouched


def test_days_rule_never_drops_sessions():
    files = files_2020_2022()[:4]
    assert len(load_bars(files, roll="days:8")) == len(load_bars(files))


def test_needs_contract_codes(tmp_path):
    p = tmp_path / "bars.csv"
    p.write_text("timestamp_utc,open,high,low,close,volume\n2024-01-01 23:00,1,1,1,1,1\n")
    f = load_bars(p, symbol="ES")
    from research.data import build_continuous

    with pytest.raises(DataError, match="contract codes"):
        build_continuous([f, f])
