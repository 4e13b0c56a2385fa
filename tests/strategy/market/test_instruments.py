import datetime as dt

import pytest

from strategy.market import instruments as ins


@pytest.mark.parametrize(
    "code,root,month,year",
    [("ESH15", "ES", 3, 2015), ("ESZ22", "ES", 12, 2022), ("MESM24", "MES", 6, 2024), ("NQM1", "NQ", 6, 2021), ("MNQU21", "MNQ", 9, 2021), ("6EH4", "6E", 3, 2024)],
)
def test_parse_contract(code, root, month, year):
    c = ins.parse_contract(code, reference_year=2023)
    assert (c.root, c.month, c.year) == (root, month, year)


def test_not_a_contract():
    assert ins.parse_contract("ES") is None
    assert ins.root_of("ES") == "ES"
    assert ins.root_of("esz22") == "ES"


@pytest.mark.parametrize("code,expiry", [("ESH15", dt.date(2015, 3, 20)), ("ESZ22", dt.date(2022, 12, 16)), ("ESM20", dt.date(2020, 6, 19)), ("ESU21", dt.date(2021, 9, 17))])
def test_expiry_third_friday(code, expiry):
    assert ins.parse_contract(code).expiry == expiry


def test_specs():
    es = ins.get_spec("ESH20")
    assert (es.tick_size, es.tick_value, es.point_value) == (0.25, 12.5, 50.0)
    assert ins.get_spec("MES").tick_value == pytest.approx(1.25)
    assert ins.get_spec("NQ").tick_value == 5.0
    assert ins.get_spec("MNQ").tick_value == 0.5
    with pytest.raises(KeyError, match="known:"):
        ins.get_spec("ZZZ")


def test_user_table(tmp_path, monkeypatch):
    f = tmp_path / "inst.toml"
    f.write_text('[CL]\ntick_size = 0.01\npoint_value = 1000.0\ncommission_per_side = 2.5\ndescription = "Crude"\n')
    monkeypatch.setenv("NAVALE_INSTRUMENTS", str(f))
    monkeypatch.setattr(ins, "_user_file_loaded", False)
    try:
        assert ins.get_spec("CLZ24").tick_value == pytest.approx(10.0)
    finally:
        ins.INSTRUMENTS.pop("CL", None)


def test_bad_spec():
    with pytest.raises(ValueError):
        ins.InstrumentSpec("XX", 0.0, 50.0, 1.0)
