"""load_bars reads the collector's Parquet partitions directly: bars as stored, ticks aggregated like any tick source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from segment_builder import write_chain

from research.data import DataError, load_bars
from research.data import segments as sg
from research.data.collected import collected_kind


def _segment_ticks(root, symbol="ES") -> pd.DataFrame:
    rows = [sg.read_segment(p).ticks for p in sorted((root / "segments" / symbol).glob("*.seg"))]
    t = np.concatenate(rows)
    return pd.DataFrame({"price": t["price"], "size": t["size"], "side": t["side"]},
                        index=pd.to_datetime(t["ts_ns"], utc=True))


def test_bars_partitions_load_as_the_canonical_frame(tmp_path):
    write_chain(tmp_path)
    bars_dir = tmp_path / "parquet" / "bars"
    assert collected_kind(bars_dir) == "bars" and collected_kind(tmp_path / "parquet" / "ticks") == "ticks"
    f = load_bars(bars_dir)
    assert str(f.index.tz) == "UTC" and f.index.name == "time" and f.index.is_monotonic_increasing
    assert list(f.columns) == ["open", "high", "low", "close", "volume", "num_trades", "bid_volume", "ask_volume"]
    assert (f.attrs["symbol"], f.attrs["tick_size"], f.attrs["contract"], f.attrs["order_flow"]) == ("ES", 0.25, "ESH4", True)
    assert len(f) == 9 and f["volume"].sum() == 9 * 40
    expected = np.concatenate([sg.read_segment(p).bars["ts_ns"]
                               for p in sorted((tmp_path / "segments" / "ES").glob("*.seg"))])
    assert f.index.as_unit("ns").asi8.tolist() == expected.tolist()
    one_day = tmp_path / "parquet" / "bars" / "symbol=ES" / "date=2024-03-05"
    assert len(load_bars(one_day)) == 3 and len(load_bars(one_day / "part-0.parquet")) == 3
    assert len(load_bars(bars_dir / "symbol=ES")) == 9


def test_ticks_partitions_aggregate_like_a_tick_source(tmp_path):
    write_chain(tmp_path, n_ticks=120)
    f = load_bars(tmp_path / "parquet" / "ticks", bar="5min")
    ticks = _segment_ticks(tmp_path)
    g = ticks.groupby(ticks.index.floor("5min"))
    assert f.index.tolist() == list(g.groups)
    assert f["volume"].tolist() == g["size"].sum().tolist()
    assert f["close"].tolist() == g["price"].last().tolist()
    assert f["ask_volume"].tolist() == g.apply(lambda d: d["size"][d["side"] > 0].sum()).tolist()
    assert f.attrs["bar"] == "5min" and f.attrs["records"] == "trades"


def test_several_symbols_need_one_named(tmp_path):
    write_chain(tmp_path, dates=("2024-03-04",))
    write_chain(tmp_path, symbol="MES", dates=("2024-03-04",), n_ticks=25)
    with pytest.raises(DataError, match="several symbols"):
        load_bars(tmp_path / "parquet" / "ticks")
    assert load_bars(tmp_path / "parquet" / "ticks", symbol="MES").attrs["symbol"] == "MES"
    assert load_bars(tmp_path / "parquet" / "bars" / "symbol=MES").attrs["symbol"] == "MES"


def test_an_events_partition_or_a_plain_folder_is_not_bars(tmp_path):
    write_chain(tmp_path, dates=("2024-03-04",))
    assert collected_kind(tmp_path / "parquet" / "events") == "events"
    with pytest.raises(DataError):
        load_bars(tmp_path / "parquet" / "events")
    assert collected_kind(tmp_path / "segments") is None
