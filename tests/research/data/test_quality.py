import numpy as np
import pandas as pd
import pytest
from conftest import es5m_files

from research.data import check, load_bars
from research.data.frame import make_bar_frame


def clean_frame(n=60):
    idx = pd.date_range("2024-03-05 14:30", periods=n, freq="1min", tz="UTC").as_unit("ns")
    rng = np.random.default_rng(0)
    close = 5000 + 0.25 * np.cumsum(rng.integers(-2, 3, n))
    open_ = np.r_[close[0], close[:-1]]
    high = np.maximum(open_, close) + 0.25 * rng.integers(0, 3, n)
    low = np.minimum(open_, close) - 0.25 * rng.integers(0, 3, n)
    bid = rng.integers(10, 100, n)
    ask = rng.integers(10, 100, n)
    cols = dict(open=open_, high=high, low=low, close=close, volume=bid + ask, num_trades=(bid + ask) // 3, bid_volume=bid, ask_volume=ask)
    return make_bar_frame(idx.asi8, cols, attrs={"tick_size": 0.25, "bar": "1min", "symbol": "ESH24"})


def found(rep, name):
    return rep.issues[rep.issues["check"] == name]


def test_clean_frame_is_clean():
    rep = check(clean_frame())
    assert rep.ok and rep.errors == 0 and rep.warnings == 0, rep.issues


@pytest.mark.parametrize(
    "plant,name,row,field",
    [
        (lambda f: f.iloc[[0, 1, 2, 3, 3, 4]], "duplicate_time", 4, "time"),
        (lambda f: f.iloc[[0, 1, 3, 2, 4]], "time_out_of_order", 3, "time"),
        (lambda f: f.assign(low=np.where(np.arange(len(f)) == 7, f["high"] + 1, f["low"])), "ohlc_inconsistent", 7, "low"),
        (lambda f: f.assign(high=np.where(np.arange(len(f)) == 9, f[["open", "close"]].min(axis=1) - 0.25, f["high"]).clip(min=f["low"])), "ohlc_inconsistent", 9, "high"),
        (lambda f: f.assign(close=np.where(np.arange(len(f)) == 11, f["close"] + 0.1, f["close"])), "off_tick", 11, "close"),
        (lambda f: f.assign(volume=np.where(np.arange(len(f)) == 13, -5, f["volume"])), "negative_volume", 13, "volume"),
        (lambda f: f.assign(volume=np.where(np.arange(len(f)) == 15, f["volume"] - 1, f["volume"])), "flow_exceeds_volume", 15, "bid_volume+ask_volume"),
        (lambda f: f.assign(volume=np.where(np.arange(len(f)) == 17, f["volume"] + 1, f["volume"])), "flow_below_volume", 17, "bid_volume+ask_volume"),
        (lambda f: f.drop(f.index[20:23]), "gap", 20, "time"),
        (lambda f: pd.concat([f.iloc[:30], f.iloc[[30, 30, 30]].set_axis(f.index[30:33]), f.iloc[33:]]), "stale", 31, "bar"),
        (lambda f: f.assign(num_trades=np.where(np.arange(len(f)) == 25, 10_000, f["num_trades"])), "trades_exceed_volume", 25, "num_trades"),
        (lambda f: f.assign(high=np.where(np.arange(len(f)) == 40, f["high"] + 400, f["high"])), "spike", 40, "high-low"),
    ],
)
def test_each_planted_fault_is_found(plant, name, row, field):
    f = clean_frame()
    g = plant(f)
    g.attrs = dict(f.attrs)
    rep = check(g)
    hits = found(rep, name)
    assert len(hits) >= 1, rep.issues
    assert hits["row"].iloc[0] == row and hits["field"].iloc[0] == field
    assert rep.ok == (hits["severity"].iloc[0] != "error")


def test_bars_in_halt_are_flagged():
    f = clean_frame(5)
    # 16:30 CT = 22:30 UTC in March 2024 (CST until the 10th): the daily halt
    g = f.set_axis(pd.date_range("2024-03-05 22:20", periods=5, freq="5min", tz="UTC").as_unit("ns"))
    g.attrs = dict(f.attrs, bar="5min")
    hits = found(check(g), "in_halt")
    assert hits["row"].tolist() == [0, 1, 2, 3, 4]  # 16:20-16:40 CT, all inside the daily halt


def test_report_is_machine_readable_and_names_lines(tmp_path):
    p = tmp_path / "ESH24.txt"
    p.write_text(
        "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"
        "2024/3/5, 08:30:00, 5100.00, 5101.25, 5099.75, 5101.00, 120, 40, 50, 70\n"
        "2024/3/5, 08:30:00, 5101.00, 5101.50, 5100.50, 5100.80, 80, 30, 45, 35\n"
    )
    f = load_bars(p, strict=False)
    rep = check(f)
    d = rep.to_dict()
    assert d["ok"] is False and d["counts"] == {"duplicate_time": 1, "off_tick": 1}
    assert {(i["check"], i["line"]) for i in d["issues"]} == {("duplicate_time", 3), ("off_tick", 3)}
    import json

    json.dumps(d)  # serialisable


def test_real_data_findings():
    files = es5m_files()
    totals = {}
    for p in files:
        rep = check(load_bars(p, strict=False))
        assert rep.errors == 0, (p.name, rep.issues.head())  # the 32 contracts have no hard errors
        for k, v in rep.to_dict(max_issues=0)["counts"].items():
            totals[k] = totals.get(k, 0) + v
    # known, real features of this data set (see the closing note of the data-layer issue)
    assert totals.get("in_halt", 0) > 0  # pre-2016 bars stamped 15:15 / 16:15 CT
    assert totals.get("gap", 0) > 0


@pytest.mark.parametrize("value", [0.0, -5000.0])
def test_zero_or_negative_price_is_an_error(value):
    f = clean_frame()
    f.iloc[10, f.columns.get_loc("low")] = value
    rep = check(f)
    got = found(rep, "nonpositive_price")
    assert list(got["row"]) == [10] and got["severity"].iloc[0] == "error" and not rep.ok


def test_price_jump_over_3x_is_an_error_once_per_bar():
    f = clean_frame()
    for c in ("open", "high", "low", "close"):
        f.iloc[20, f.columns.get_loc(c)] *= 3.5  # consistent OHLC, on the tick grid: only the jump is wrong
    rep = check(f)
    got = found(rep, "price_jump")
    assert list(got["row"]) == [20, 21] and set(got["severity"]) == {"error"}
    assert "vs previous close" in got["detail"].iloc[0]
    assert found(check(clean_frame()), "price_jump").empty


def test_bar_off_its_grid_and_volume_without_trades_are_warnings():
    f = clean_frame()
    idx = f.index.asi8.copy()
    idx[30] += 20 * 10**9  # 14:59:20 in a 1-minute file: an edited time
    g = f.copy()
    g.index = pd.DatetimeIndex(idx, tz="UTC", name="time")
    g.attrs = f.attrs
    g.iloc[5, g.columns.get_loc("num_trades")] = 0
    rep = check(g)
    assert list(found(rep, "off_bar_grid")["row"]) == [30] and list(found(rep, "volume_without_trades")["row"]) == [5]
    assert rep.ok and set(found(rep, "off_bar_grid")["severity"]) == {"warning"}
