import numpy as np
import pandas as pd
import pytest
from conftest import shared_file

from research.data import DataError, load_bars, load_ticks
from research.data.scid import (
    SCID_HEADER_SIZE,
    ScidTail,
    bars_to_scid_records,
    read_scid_records,
    records_are_trades,
    scid_time_to_ns,
    ticks_to_scid_records,
    write_scid,
)


def test_real_sample_records():
    rec = read_scid_records(shared_file("ticks/ESM23_sample.scid"))
    assert len(rec) == 10
    assert records_are_trades(rec).all()  # Open = 0 and the two unbundled-trade sentinels
    assert (rec["open"][3] < -1e37) and (rec["open"][4] < -1e37)
    t = pd.to_datetime(scid_time_to_ns(rec["datetime"]), utc=True)
    assert t[0] == pd.Timestamp("2023-02-21 20:37:19.026", tz="UTC")
    assert t[4] - t[3] == pd.Timedelta(microseconds=1)  # Sierra keeps sub-trades unique by 1 µs


def test_real_sample_ticks_and_bars():
    p = shared_file("ticks/ESM23_sample.scid")
    ticks = load_ticks(p)
    assert ticks["price"].tolist()[:3] == [4048.0, 4048.0, 4047.5]
    assert ticks["side"].tolist() == [-1, -1, -1, -1, -1, -1, 1, 1, -1, -1]
    assert ticks["ask"].iloc[0] == 4048.75 and ticks["bid"].iloc[0] == 4048.0
    bars = load_bars(p, bar="1min")
    assert bars.attrs["symbol"] == "ESM23" and bars.attrs["order_flow"]
    # groupby reference on the same ticks
    g = ticks.groupby(ticks.index.floor("1min"))
    assert bars["open"].tolist() == g["price"].first().tolist()
    assert bars["high"].tolist() == g["price"].max().tolist()
    assert bars["low"].tolist() == g["price"].min().tolist()
    assert bars["close"].tolist() == g["price"].last().tolist()
    assert bars["volume"].tolist() == g["size"].sum().tolist()
    assert bars["bid_volume"].sum() == 8 and bars["ask_volume"].sum() == 2


def _ticks(n=500, seed=1):
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2024-03-05 14:30", tz="UTC").value
    ts = t0 + np.cumsum(rng.integers(1, 2_000_000_000, n)) // 1000 * 1000
    price = 5000 + 0.25 * np.cumsum(rng.integers(-1, 2, n))
    size = rng.integers(1, 20, n)
    side = rng.choice([-1, 1], n)
    return ts, price, size, side


def test_writer_roundtrip_trades(tmp_path):
    ts, price, size, side = _ticks()
    p = write_scid(tmp_path / "ESH24.scid", ticks_to_scid_records(ts, price, size, side))
    assert not list(tmp_path.glob("*.tmp"))  # atomic: no temp file left
    t = load_ticks(p)
    np.testing.assert_array_equal(t.index.asi8, ts)
    np.testing.assert_array_equal(t["price"], price)
    np.testing.assert_array_equal(t["side"], side)


def test_writer_roundtrip_bars(tmp_path):
    idx = pd.date_range("2024-03-05 14:30", periods=4, freq="1min", tz="UTC", name="time").as_unit("ns")
    f = pd.DataFrame({"open": [1.0, 2, 3, 4], "high": [2.0, 3, 4, 5], "low": [0.5, 1, 2, 3], "close": [1.5, 2.5, 3.5, 4.5], "volume": [10, 20, 30, 40], "num_trades": [1, 2, 3, 4], "bid_volume": [4, 10, 15, 0], "ask_volume": [6, 10, 15, 40]}, index=idx)
    p = write_scid(tmp_path / "ESH24.scid", bars_to_scid_records(f))
    g = load_bars(p)
    pd.testing.assert_frame_equal(g, f, check_freq=False)
    assert g.attrs["records"] == "bars" and g.attrs["bar"] == "1min"


def test_tail_reader_resumes_and_waits_for_partial_records(tmp_path):
    ts, price, size, side = _ticks(100)
    rec = ticks_to_scid_records(ts, price, size, side)
    p = write_scid(tmp_path / "live.scid", rec[:30])
    tail = ScidTail(p)
    assert len(tail.read_new()) == 30
    assert len(tail.read_new()) == 0
    # a writer appends 20.5 records: only 20 whole ones are returned
    with open(p, "ab") as fh:
        fh.write(rec[30:50].tobytes() + rec[50:51].tobytes()[:17])
    got = tail.read_new()
    assert len(got) == 20 and tail.offset == SCID_HEADER_SIZE + 50 * 40
    with open(p, "ab") as fh:
        fh.write(rec[50:51].tobytes()[17:] + rec[51:60].tobytes())
    saved = tail.offset
    # a restarted process resumes from the saved offset and sees the rest exactly once
    tail2 = ScidTail(p, offset=saved)
    got2 = tail2.read_new()
    np.testing.assert_array_equal(got2, rec[50:60])
    with pytest.raises(ValueError, match="record boundary"):
        ScidTail(p, offset=saved + 3)


def test_append_and_shrink(tmp_path):
    ts, price, size, side = _ticks(20)
    rec = ticks_to_scid_records(ts, price, size, side)
    p = write_scid(tmp_path / "a.scid", rec[:10])
    write_scid(p, rec[10:], append=True)
    np.testing.assert_array_equal(read_scid_records(p), rec)
    with pytest.raises(DataError, match="before the file's last record"):
        write_scid(p, rec[:1], append=True)
    tail = ScidTail(p)
    tail.read_new()
    write_scid(p, rec[:5])  # file replaced by a shorter one
    with pytest.raises(DataError, match="shrank"):
        tail.read_new()


@pytest.mark.parametrize(
    "mutate,field",
    [
        (lambda b: b"SCIX" + b[4:], "header.magic"),
        (lambda b: b[:4] + (72).to_bytes(4, "little") + b[8:], "header.HeaderSize"),
        (lambda b: b[:8] + (44).to_bytes(4, "little") + b[12:], "header.RecordSize"),
        (lambda b: b[:30], "header"),
        (lambda b: b[:-7], "record"),
    ],
)
def test_bad_files(tmp_path, mutate, field):
    ts, price, size, side = _ticks(5)
    p = write_scid(tmp_path / "x.scid", ticks_to_scid_records(ts, price, size, side))
    p.write_bytes(mutate(p.read_bytes()))
    with pytest.raises(DataError) as e:
        read_scid_records(p)
    assert e.value.field == field and str(p) in str(e.value)


def test_garbage_record_time(tmp_path):
    ts, price, size, side = _ticks(5)
    rec = ticks_to_scid_records(ts, price, size, side)
    rec["datetime"][3] = 12345
    p = tmp_path / "x.scid"
    from research.data.scid import _header_bytes

    p.write_bytes(_header_bytes() + rec.tobytes())
    with pytest.raises(DataError) as e:
        read_scid_records(p)
    assert e.value.row == 3 and e.value.field == "DateTime"
