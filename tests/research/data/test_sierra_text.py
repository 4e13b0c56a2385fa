import gzip
import time

import numpy as np
import pandas as pd
import pytest
from conftest import es5m_files, shared_file

from research.data import DataError, load_bars

HEADER = "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"
ROWS = [
    "2024/3/5, 08:30:00, 5100.00, 5101.25, 5099.75, 5101.00, 120, 40, 50, 70\n",
    "2024/3/5, 08:35:00, 5101.00, 5101.50, 5100.50, 5100.75, 80, 30, 45, 35\n",
    "2024/3/5, 08:40:00, 5100.75, 5100.75, 5099.00, 5099.25, 95, 33, 60, 35\n",
]


def write(tmp_path, rows, name="ESH24-CME.scid_BarData__5m.txt", gz=False):
    p = tmp_path / (name + (".gz" if gz else ""))
    data = (HEADER + "".join(rows)).encode()
    p.write_bytes(gzip.compress(data) if gz else data)
    return p


@pytest.mark.parametrize("gz", [False, True])
def test_canonical_frame(tmp_path, gz):
    f = load_bars(write(tmp_path, ROWS, gz=gz))
    assert list(f.columns) == ["open", "high", "low", "close", "volume", "num_trades", "bid_volume", "ask_volume"]
    assert str(f.index.tz) == "UTC" and f.index.name == "time"
    # 08:30 CT in March 2024 (before the DST change on the 10th) is 14:30 UTC
    assert f.index[0] == pd.Timestamp("2024-03-05 14:30", tz="UTC")
    assert f["close"].tolist() == [5101.0, 5100.75, 5099.25]
    assert f.dtypes["volume"] == np.int64 and f.dtypes["open"] == np.float64
    assert f.attrs["symbol"] == "ESH24" and f.attrs["root"] == "ES" and f.attrs["tick_size"] == 0.25
    assert f.attrs["order_flow"] is True and f.attrs["bar"] == "5min" and f.attrs["source_tz"] == "America/Chicago"


def test_source_tz_option(tmp_path):
    f = load_bars(write(tmp_path, ROWS), tz="UTC")
    assert f.index[0] == pd.Timestamp("2024-03-05 08:30", tz="UTC")


def test_bad_number_names_file_line_field(tmp_path):
    rows = ROWS[:1] + ["2024/3/5, 08:35:00, 5101.00, abc, 5100.50, 5100.75, 80, 30, 45, 35\n"] + ROWS[2:]
    p = write(tmp_path, rows)
    with pytest.raises(DataError) as e:
        load_bars(p)
    assert e.value.row == 3 and e.value.field == "High" and e.value.path == str(p)
    assert "abc" in str(e.value)


def test_bad_date(tmp_path):
    rows = ROWS[:2] + ["2024/13/5, 08:40:00, 5100.75, 5100.75, 5099.00, 5099.25, 95, 33, 60, 35\n"]
    with pytest.raises(DataError) as e:
        load_bars(write(tmp_path, rows))
    assert e.value.row == 4 and e.value.field == "Date/Time"


def test_quarantine_reports_and_keeps_the_rest(tmp_path):
    rows = ROWS[:1] + ["2024/3/5, 08:35:00, 5101.00, abc, 5100.50, 5100.75, 80, 30, 45, 35\n"] + ROWS[2:] + [ROWS[2]]
    f = load_bars(write(tmp_path, rows), on_error="quarantine")
    assert len(f) == 2
    q = f.attrs["quarantine"]
    assert [(r["line"], r["field"]) for r in q] == [(3, "High"), (5, "time")]
    assert "duplicated" in q[1]["reason"]


def test_duplicate_and_out_of_order_raise(tmp_path):
    with pytest.raises(DataError, match="duplicated") as e:
        load_bars(write(tmp_path, ROWS + [ROWS[2]]))
    assert e.value.row == 5 and e.value.field == "time"
    with pytest.raises(DataError, match="out of order"):
        load_bars(write(tmp_path, [ROWS[1], ROWS[0]]))
    # strict=False keeps the rows exactly as stored (for checks)
    f = load_bars(write(tmp_path, [ROWS[1], ROWS[0]]), strict=False)
    assert f["close"].tolist() == [5100.75, 5101.0]


def test_missing_column(tmp_path):
    p = tmp_path / "x.txt"
    p.write_text("Date, Time, Open, High, Low, Last\n2024/3/5, 08:30:00, 1, 1, 1, 1\n")
    with pytest.raises(DataError) as e:
        load_bars(p)
    assert e.value.field == "Volume" and e.value.row == 1


def test_no_flow_columns_means_order_flow_off(tmp_path):
    p = tmp_path / "ESH24.txt"
    p.write_text("Date, Time, Open, High, Low, Last, Volume, NumberOfTrades\n2024/3/5, 08:30:00, 1.00, 1.25, 0.75, 1.00, 10, 3\n")
    f = load_bars(p)
    assert "bid_volume" not in f and "ask_volume" not in f and f.attrs["order_flow"] is False


def test_session_filter(tmp_path):
    rows = ["2024/3/5, 03:00:00, 5100.00, 5100.25, 5099.75, 5100.00, 10, 4, 5, 5\n"] + ROWS
    f = load_bars(write(tmp_path, rows), session="rth")
    assert len(f) == 3 and f.attrs["session"] == "rth"
    g = load_bars(write(tmp_path, rows), session="globex")
    assert len(g) == 1


def test_resample_bars(tmp_path):
    f = load_bars(write(tmp_path, ROWS), bar="15min")
    assert len(f) == 1
    r = f.iloc[0]
    assert (r.open, r.high, r.low, r.close, r.volume, r.num_trades, r.bid_volume, r.ask_volume) == (5100.0, 5101.5, 5099.0, 5099.25, 295, 103, 155, 140)


def test_real_contract():
    p = shared_file("es-5m/ESH20-CME.scid_BarData__5m.txt.gz")
    f = load_bars(p)
    raw = pd.read_csv(p, skipinitialspace=True)
    assert len(f) == len(raw)  # nothing dropped
    assert f.index.is_monotonic_increasing and f.index.is_unique
    assert (f["volume"] == f["bid_volume"] + f["ask_volume"]).all()
    np.testing.assert_array_equal(f["close"].to_numpy(), raw["Last"].to_numpy())
    # first bar: 2019/12/22 17:00 CT = 23:00 UTC
    first = pd.Timestamp(f"{raw.Date[0]} {raw.Time[0]}").tz_localize("America/Chicago")
    assert f.index[0] == first


def test_all_32_contracts():
    files = es5m_files()
    t0 = time.perf_counter()
    f = [load_bars(p) for p in files]
    elapsed = time.perf_counter() - t0
    assert sum(len(x) for x in f) > 500_000
    assert all(x.attrs["order_flow"] for x in f)
    print(f"loaded 32 contracts in {elapsed:.2f}s")  # figure only; speed is measured in benchmarks/
