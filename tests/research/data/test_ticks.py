
import pandas as pd
import pytest
from conftest import shared_file

from research.data import DataError, load_bars, load_ticks


def groupby_reference(ticks: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The straightforward pandas aggregation the numba kernel must agree with."""
    key = ticks.index.floor(freq)
    g = ticks.groupby(key)
    out = pd.DataFrame(
        {
            "open": g["price"].first(),
            "high": g["price"].max(),
            "low": g["price"].min(),
            "close": g["price"].last(),
            "volume": g["size"].sum(),
            "num_trades": g["size"].count(),
            "bid_volume": ticks["size"].where(ticks["side"] < 0, 0).groupby(key).sum(),
            "ask_volume": ticks["size"].where(ticks["side"] > 0, 0).groupby(key).sum(),
        }
    )
    out.index.name = "time"
    return out


def assert_bars_match(bars, ref):
    pd.testing.assert_frame_equal(bars[ref.columns], ref, check_freq=False, check_dtype=False)


def test_tbt_2022_microsecond_quirk():
    p = shared_file("ticks/ES_2022-01-24_tbt.txt.gz")
    t = load_ticks(p)
    assert len(t) == 2026
    assert t.attrs["time_fraction"] == "micros"
    # ".5000" is 5 ms, not 500 ms
    assert t.index[0] == pd.Timestamp("2022-01-24 13:30:00.005", tz="UTC")
    assert t.index.is_monotonic_increasing
    assert set(t["side"].unique()) == {-1, 1}


def test_tbt_2023_reordered_by_sequence():
    p = shared_file("ticks/ES_2023-06-29_open_tbt.txt.gz")
    t = load_ticks(p)
    assert len(t) == 1026  # the data README says 1,025; the file holds 1,026 trades
    assert t["sequence"].is_monotonic_increasing
    assert t.index.is_monotonic_increasing
    assert t.attrs["reordered_rows"] > 0  # the file's row order followed a wrong decimal reading of the time
    # ".10000" is 10 ms, after ".1001" (1.001 ms)
    assert t.index[0] == pd.Timestamp("2023-06-29 13:30:00", tz="UTC")


@pytest.mark.parametrize("freq", ["1s", "5s", "1min"])
@pytest.mark.parametrize("name", ["ticks/ES_2022-01-24_tbt.txt.gz", "ticks/ES_2023-06-29_open_tbt.txt.gz", "ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst"])
def test_aggregation_matches_groupby(name, freq):
    p = shared_file(name)
    ticks = load_ticks(p)
    bars = load_bars(p, bar=freq)
    assert_bars_match(bars, groupby_reference(ticks, freq))
    assert bars.attrs["bar"] == freq


def test_dbn_trades():
    p = shared_file("ticks/esh4-glbx-mdp3-20231225.mbo.dbn.zst")
    t = load_ticks(p)
    assert len(t) == 2973 and t.attrs["symbol"] == "ESH4"
    assert (t["side"] == 0).sum() == 1 and t.attrs["unknown_side_trades"] == 1
    b = load_bars(p, bar="5min")
    # the one trade of unknown aggressor is in volume but in neither side: never invented
    assert (b["volume"] - b["bid_volume"] - b["ask_volume"]).sum() == t["size"][t["side"] == 0].sum()
    assert b.index[0] >= pd.Timestamp("2023-12-25 23:00", tz="UTC")  # Globex reopen at 17:00 CT


def test_tbt_errors(tmp_path):
    head = "Date;Time;Sequence;DepthSequence;Price;Volume;TradeType\n"
    good = "2022-01-24;13:30:00.5000;1;1;4347.75;1;2\n"
    p = tmp_path / "ES_tbt.txt"
    p.write_text(head + good + "2022-01-24;13:30:00.5001;2;1;4347.75;1;7\n")
    with pytest.raises(DataError) as e:
        load_ticks(p)
    assert e.value.row == 3 and e.value.field == "TradeType"
    p.write_text(head + good + "2022-01-24;13:30:00.5001;2;1;x;1;2\n")
    with pytest.raises(DataError) as e:
        load_ticks(p)
    assert e.value.row == 3 and e.value.field == "Price"
    p.write_text(head + good + "2022-01-24;13:30:00.5001;1;1;4347.75;1;2\n")
    with pytest.raises(DataError, match="duplicated Sequence"):
        load_ticks(p)
    # numbers pandas reads but no price or size can be (found by the fuzz test: they became garbage int64)
    p.write_text(head + good + "2022-01-24;13:30:00.5001;2;1;inf;1;2\n")
    with pytest.raises(DataError, match="not a finite number") as e:
        load_ticks(p)
    assert e.value.row == 3 and e.value.field == "Price"
    p.write_text(head + good + "2022-01-24;13:30:00.5001;2;1;4347.75;1e999;2\n")
    with pytest.raises(DataError, match="not a finite number") as e:
        load_ticks(p)
    assert e.value.field == "Volume"
    p.write_text(head + good + "2022-01-24;13:30:00.5001;2;1;4347.75;1e300;2\n")
    with pytest.raises(DataError, match="integer out of range") as e:
        load_ticks(p)
    assert e.value.field == "Volume"


def test_volume_and_tick_bars():
    p = shared_file("ticks/ES_2022-01-24_tbt.txt.gz")
    ticks = load_ticks(p)
    vb = load_bars(p, bar="volume:500")
    assert vb["volume"].sum() == ticks["size"].sum()
    # reference: a bar closes on the first trade that brings it to >= 500 contracts
    expected, acc = [], 0
    for size in ticks["size"]:
        acc += size
        if acc >= 500:
            expected.append(acc)
            acc = 0
    expected += [acc] if acc else []
    assert vb["volume"].tolist() == expected
    tb = load_bars(p, bar="tick:100")
    assert (tb["num_trades"].iloc[:-1] == 100).all() and tb["num_trades"].sum() == len(ticks)
    assert tb.index[0] == ticks.index[0]  # labelled by the first trade
    assert tb["open"].iloc[1] == ticks["price"].iloc[100]
