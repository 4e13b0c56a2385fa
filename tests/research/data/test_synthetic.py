import numpy as np
import pandas as pd
import pytest

from research.data import check, default_dataset, load_bars, load_ticks
from research.data.synthetic import (
    SyntheticSpec,
    generate_trades,
    is_synthetic_scid,
    write_synthetic_scid,
)
from strategy.market.sessions import in_scheduled_halt, session_frame

SMALL = SyntheticSpec(days=3, seed=11)


@pytest.fixture(scope="module")
def ticks():
    return generate_trades(SMALL)


def test_deterministic(tmp_path):
    a = write_synthetic_scid(tmp_path / "a.scid", SMALL)
    b = write_synthetic_scid(tmp_path / "b.scid", SMALL)
    assert a.read_bytes() == b.read_bytes()
    c = write_synthetic_scid(tmp_path / "c.scid", SyntheticSpec(days=3, seed=12))
    assert c.read_bytes() != a.read_bytes()


def test_structure(ticks):
    t = ticks
    assert t.index.is_monotonic_increasing and t.index.is_unique  # µs-unique like Sierra
    assert np.allclose(t["price"] / 0.25, np.round(t["price"] / 0.25))  # tick grid
    assert not in_scheduled_halt(t.index).any()  # nothing in halts or weekends
    # buys at the ask, sells at the bid, 1-tick spread
    assert (t.loc[t["side"] > 0, "price"] == t.loc[t["side"] > 0, "ask"]).all()
    assert (t.loc[t["side"] < 0, "price"] == t.loc[t["side"] < 0, "bid"]).all()
    assert np.allclose(t["ask"] - t["bid"], 0.25)
    # RTH busier than Globex overnight, per minute
    s = session_frame(t.index)
    per_min = t.groupby([s["rth"].to_numpy(), t.index.floor("1min")])["size"].sum().groupby(level=0).mean()
    assert per_min[True] > 3 * per_min[False]


def test_flow_drives_price_and_vol_clusters(ticks):
    bars = load_bars_from_ticks(ticks)
    delta = (bars["ask_volume"] - bars["bid_volume"]).to_numpy()
    ret = bars["close"].diff().to_numpy()
    assert np.corrcoef(delta[1:], ret[1:])[0, 1] > 0.3  # aggressor imbalance moves price
    absret = pd.Series(np.abs(ret[1:]))
    assert absret.autocorr(1) > 0.1  # volatility clustering


def load_bars_from_ticks(ticks):
    from research.data.aggregate import parse_bar_spec, ticks_to_bars
    from research.data.frame import make_bar_frame

    cols = ticks_to_bars(ticks, parse_bar_spec("5min"))
    return make_bar_frame(cols.pop("time_ns"), cols, attrs={"tick_size": 0.25})


def test_default_dataset_is_marked_synthetic():
    p = default_dataset(SMALL)
    assert is_synthetic_scid(p) and "synthetic" in p.name
    assert default_dataset(SMALL) == p  # cached
    bars = load_bars(p, bar="5min")
    assert bars.attrs["synthetic"] is True and bars.attrs["order_flow"] is True
    assert bars.attrs["symbol"] == "ESM24"
    assert check(bars).ok
    assert load_ticks(p)["side"].isin([-1, 1]).all()


def test_spec_fields_are_bounded():
    for change, msg in [({"days": 0}, "days=0: must be an integer from 1 to 65"),
                        ({"days": 10**8}, "days=100000000: must be an integer from 1 to 65"),
                        ({"days": 2.5}, "days=2.5: must be an integer"),
                        ({"seed": -1}, "seed=-1: must be an integer from 0 to 4,294,967,295"),
                        ({"seed": 10**23}, "seed=100000000000000000000000: must be"),
                        ({"start": "2020-13-45"}, "start='2020-13-45': not a valid date"),
                        ({"start": "03/04/2024"}, "start='03/04/2024': must be a date of the form YYYY-MM-DD"),
                        ({"start": "1900-01-02"}, "must be from 1990-01-01 to 2099-12-31"),
                        ({"start": "2099-12-30", "days": 5}, "ends 2100-01-05, after 2099-12-31"),
                        ({"tick_size": 0.0}, "tick_size=0.0: must be a number from"),
                        ({"vol_persistence": 1.0}, "vol_persistence=1.0: must be a number from 0.0 to 0.999"),
                        ({"rth_trades_per_sec": float("nan")}, "rth_trades_per_sec=nan: must be a number")]:
        with pytest.raises(ValueError) as exc:
            SyntheticSpec(**change)
        assert str(exc.value).startswith("synthetic ") and msg in str(exc.value) and "\n" not in str(exc.value), change
    assert SyntheticSpec(days=1, seed=2**32 - 1, start="1990-01-02").days == 1


@pytest.mark.parametrize("args, msg", [
    (["--days", "0"], "error: --days=0: must be an integer from 1 to 65 (trading dates)"),
    (["--days", "-3"], "error: --days=-3: must be an integer from 1 to 65"),
    (["--days", "100000000"], "error: --days=100000000: must be an integer from 1 to 65"),
    (["--start", "2020-13-45"], "error: --start='2020-13-45': not a valid date"),
    (["--seed", "99999999999999999999999"], "error: --seed=99999999999999999999999: must be an integer from 0 to 4,294,967,295"),
])
def test_synth_command_refuses_absurd_values_in_one_line(tmp_path, capsys, args, msg):
    from research.cli import main

    out = tmp_path / "out"
    assert main(["data", "synth", *args, "--out", str(out)]) == 2
    text = capsys.readouterr().out.strip()
    assert text.startswith(msg) and "\n" not in text
    assert not out.exists()  # nothing written
