"""Resampling bars (`load_bars(bar=...)`): only whole multiples of the source bar, on the session-open grid.

A bar the source cannot make (finer, not a whole multiple, a volume bar below the source's median bar) is
refused with one line naming the file, the source bar and the requested one; resampled bars are unions of
whole source bars, never span two sessions and never start before the data.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

from research.data import DataError, check, load_bars
from strategy.market.sessions import in_scheduled_halt, session_id

ESH20 = "es-5m/ESH20-CME.scid_BarData__5m.txt.gz"
HEADER = "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"


@pytest.fixture(scope="module")
def esh20():
    p = shared_file(ESH20)
    return p, load_bars(p)


def _pandas_resample(frame: pd.DataFrame, bar: str) -> pd.DataFrame:
    agg = {"open": "first", "high": "max", "low": "min", "close": "last", "volume": "sum", "num_trades": "sum",
           "bid_volume": "sum", "ask_volume": "sum"}
    r = frame.resample(bar, origin="epoch", label="left", closed="left")
    return r.agg(agg)[r.size() > 0].astype(frame.dtypes.to_dict())


def test_no_bar_and_the_source_bar_leave_the_frame_as_loaded(esh20):
    p, raw = esh20
    same = load_bars(p, bar="5min")
    assert raw.equals(same) and same.attrs["bar"] == "5min" and len(raw) == 16_883


@pytest.mark.parametrize("bar", ["15min", "30min", "1h"])
def test_whole_multiples_match_pandas_resample(esh20, bar):
    p, raw = esh20
    f = load_bars(p, bar=bar)
    want = _pandas_resample(raw, bar)
    pd.testing.assert_frame_equal(f, want, check_freq=False, check_names=False)
    assert f.attrs["bar"] == bar and f.index[0] == raw.index[0]
    rep = check(f)
    assert rep.errors == 0 and not {"off_bar_grid", "in_halt"} & set(rep.to_dict(max_issues=0)["counts"])


@pytest.mark.parametrize("bar", ["1s", "1min", "7min", "8min", "12min"])
def test_finer_or_not_whole_multiple_is_refused(esh20, bar):
    p, _ = esh20
    with pytest.raises(DataError) as exc:
        load_bars(p, bar=bar)
    msg = str(exc.value)
    assert "\n" not in msg and msg.startswith(f"{p}: field 'bar': cannot resample 5min bars into {bar} bars")
    assert "whole multiple of the source bar (5min)" in msg


def test_volume_bars_finer_than_the_source_are_refused(esh20):
    p, raw = esh20
    median = int(raw["volume"].median())
    with pytest.raises(DataError, match=re.escape(f"cannot resample 5min bars into volume:100 bars: finer than the source, "
                                                  f"whose median bar holds {median:,} contracts")):
        load_bars(p, bar="volume:100")
    assert len(load_bars(p, bar=f"volume:{median * 4}")) < len(raw)


@pytest.mark.parametrize("bar", ["45min", "2h", "4h"])
def test_bars_that_do_not_divide_an_hour_follow_the_session_open(esh20, bar):
    """ESH20 starts at 18:00 CT: the first 45min/2h/4h bar starts with the data, none crosses a session."""
    p, raw = esh20
    f = load_bars(p, bar=bar)
    step = pd.Timedelta(bar)
    assert f.index[0] == raw.index[0] and (f.index >= raw.index[0]).all()
    assert not in_scheduled_halt(f.index).any()
    # every source bar lands in the output bar that starts at or before it, within the same session
    pos = np.searchsorted(f.index.asi8, raw.index.asi8, side="right") - 1
    assert (pos >= 0).all()
    assert (session_id(f.index)[pos] == session_id(raw.index)).all()
    assert ((raw.index - f.index[pos]) < step).all()
    # sums are kept, and check() sees the session-open grid (ESH20's COVID spikes stay warnings)
    assert f["volume"].sum() == raw["volume"].sum() and f["high"].max() == raw["high"].max()
    rep = check(f)
    assert rep.errors == 0 and not {"off_bar_grid", "in_halt"} & set(rep.to_dict(max_issues=0)["counts"])


def test_source_bars_off_their_own_grid_are_refused(tmp_path):
    rows = [f"2024/3/5, 08:{m:02d}:00, 5100.00, 5100.25, 5099.75, 5100.00, 10, 4, 5, 5\n" for m in (30, 35, 40, 47, 50)]
    p = tmp_path / "ESH24.txt"
    p.write_text(HEADER + "".join(rows))
    assert len(load_bars(p)) == 5  # as stored it loads (check() flags the off-grid bar)
    with pytest.raises(DataError, match=re.escape(f"{p}: line 5: field 'time': bar at 2024-03-05 14:47:00+00:00 is not on "
                                                  "the 5min grid")):
        load_bars(p, bar="15min")


def test_unknown_source_bar_is_refused(tmp_path):
    p = tmp_path / "ESH24.txt"
    p.write_text(HEADER + "2024/3/5, 08:30:00, 5100.00, 5100.25, 5099.75, 5100.00, 10, 4, 5, 5\n")
    with pytest.raises(DataError, match="the source bar size is unknown"):
        load_bars(p, bar="15min")


def test_a_scid_mixing_bars_and_trades_aggregates_at_any_size(tmp_path):
    from research.data.scid import SCID_RECORD_DTYPE, ns_to_scid_time, write_scid

    t0 = pd.Timestamp("2024-03-05 14:30", tz="UTC").value
    rec = np.zeros(6, dtype=SCID_RECORD_DTYPE)
    rec["datetime"] = ns_to_scid_time(t0 + np.array([0, 60, 61, 62, 120, 185]) * 10**9 + 1234)
    rec["open"] = [5000.0, 0, 0, 0, 5001.0, 5001.25]  # open 0: a single trade (High = ask, Low = bid)
    rec["high"] = [5001.0, 5000.75, 5000.75, 5001.0, 5001.5, 5001.5]
    rec["low"] = [4999.75, 5000.5, 5000.5, 5000.75, 5000.75, 5001.0]
    rec["close"] = [5000.5, 5000.5, 5000.75, 5001.0, 5001.25, 5001.25]
    rec["total_volume"] = rec["num_trades"] = [10, 1, 2, 1, 8, 4]
    p = write_scid(tmp_path / "ESH24.scid", rec)
    with pytest.raises(DataError, match="mixes bar and trade records"):
        load_bars(p)
    f = load_bars(p, bar="1min")
    assert f.attrs["records"] == "mixed" and f["volume"].tolist() == [10, 4, 8, 4]
    assert f.index.tolist() == [pd.Timestamp(f"2024-03-05 14:3{m}", tz="UTC") for m in range(4)]
