"""load_bars refuses rows that cannot be real, cut last lines, empty files; accepts BOMs; names compressed .scid."""

from __future__ import annotations

import gzip
import re

import numpy as np
import pytest
from conftest import shared_file

from research.data import DataError, check, load_bars
from research.data.scid import SCID_RECORD_DTYPE, write_scid

HEADER = "Date, Time, Open, High, Low, Last, Volume, NumberOfTrades, BidVolume, AskVolume\n"
ROW = "2024/3/5, 08:{m:02d}:00, 5100.00, 5101.25, 5099.75, 5101.00, 120, 40, 50, 70\n"


def sierra(tmp_path, rows: list[str], name: str = "ESH24.txt", end: str = "") -> str:
    p = tmp_path / name
    p.write_text(HEADER + "".join(rows) + end)
    return str(p)


def good_rows(n: int = 10) -> list[str]:
    return [ROW.format(m=30 + i) for i in range(n)]


def one_line(exc: pytest.ExceptionInfo) -> str:
    text = str(exc.value)
    assert "\n" not in text
    return text


# (field replaced on line 5 -> the field named, the reason); line 5 is the 4th data row
RULES = [
    ("5101.25", "5100.50", "High", "high below open or close"),
    ("5099.75", "5101.50", "Low", "low above open, close or high"),
    ("5100.00", "0.00", "Open", "price is zero or negative"),
    ("5101.00", "-5101.00", "Last", "price is zero or negative"),
    ("5100.00", "5100.10", "Open", "price is not a multiple of the tick size 0.25"),
    (" 120,", " -120,", "Volume", "negative count"),
    (" 40,", " -40,", "NumberOfTrades", "negative count"),
    (" 50,", " 90,", "BidVolume+AskVolume", "bid + ask volume above volume"),
    (" 70\n", " -70\n", "AskVolume", "negative count"),
]


@pytest.mark.parametrize("old,new,field,reason", RULES, ids=[r[2] + ":" + r[3][:12] for r in RULES])
def test_each_rule_names_file_line_and_field(tmp_path, old, new, field, reason):
    rows = good_rows()
    rows[3] = rows[3].replace(old, new, 1)
    p = sierra(tmp_path, rows)
    with pytest.raises(DataError) as exc:
        load_bars(p)
    text = one_line(exc)
    assert text.startswith(f"{p}: line 5: field {field!r}: {reason}"), text
    # quarantine sets the row aside and lists it; the other rows load unchanged
    f = load_bars(p, on_error="quarantine")
    assert len(f) == 9 and [q["line"] for q in f.attrs["quarantine"]] == [5]
    assert f.attrs["quarantine"][0]["field"] == field
    # strict=False keeps the row for the check, which reports it as an error
    assert check(load_bars(p, strict=False)).errors >= 1


def test_scid_bar_record_is_named_by_record(tmp_path):
    rec = np.zeros(3, dtype=SCID_RECORD_DTYPE)
    rec["datetime"] = 3_917_000_000_000_000 + np.arange(3) * 60_000_000
    rec["open"], rec["high"], rec["low"], rec["close"] = 5000.0, 5001.0, 4999.0, 5000.5
    rec["total_volume"], rec["num_trades"] = 10, 5
    rec["high"][2] = 5000.25
    p = write_scid(tmp_path / "ESH24.scid", rec)
    with pytest.raises(DataError, match=re.escape(f"{p}: record 2: field 'high': high below open or close")):
        load_bars(p)


def test_tick_text_price_zero_is_refused(tmp_path):
    text = "Date;Time;Sequence;Price;Volume;TradeType\n" + "".join(
        f"2022-01-24;13:30:00.{5000 + i};{100 + i};{'0' if i == 4 else '4347.75'};1;2\n" for i in range(8))
    p = tmp_path / "ES_tbt.txt"
    p.write_text(text)
    with pytest.raises(DataError, match=re.escape(f"{p}: trade 4: field 'price': price is zero or negative")):
        load_bars(p)


def test_cut_last_line_is_an_error_not_a_shorter_value(tmp_path):
    """AskVolume 70 cut to 7: the values are valid, only the missing line break tells."""
    p = sierra(tmp_path, good_rows())
    with open(p, "rb+") as fh:
        fh.truncate(fh.seek(0, 2) - 2)
    with pytest.raises(DataError) as exc:
        load_bars(p)
    assert one_line(exc).startswith(f"{p}: line 11: field 'AskVolume': last line has no line break")
    f = load_bars(p, on_error="quarantine")
    assert len(f) == 9 and f.attrs["quarantine"][0]["line"] == 11


def test_cut_last_line_of_tick_text_is_caught_by_its_field_count(tmp_path):
    text = "Date;Time;Sequence;Price;Volume;TradeType;AskPrice\n" + "".join(
        f"2022-01-24;13:30:00.{5000 + i};{100 + i};4347.75;1;2;4348.00\n" for i in range(8))
    p = tmp_path / "ES_tbt.txt"
    p.write_text(text.rsplit(";", 1)[0])  # the last line loses its last field and its line break
    with pytest.raises(DataError, match=re.escape(f"{p}: line 9: field 'TradeType': line has 6 of the header's 7 fields")):
        load_bars(p)


@pytest.mark.parametrize("content,msg", [("", "file is empty"), ("\n\n", "file is empty"), ("  \n", "file is empty"),
                                         (HEADER, "line 1: file has a header line and no data rows")])
def test_empty_and_header_only_files_say_so(tmp_path, content, msg):
    for name, blob in (("ESH24.txt", content.encode()), ("ESH24.txt.gz", gzip.compress(content.encode()))):
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(DataError, match=re.escape(f"{p}: {msg}") if blob else "file is empty"):
            load_bars(p)


def test_header_only_csv_tick_text_and_scid(tmp_path):
    p = tmp_path / "bars.csv"
    p.write_text("timestamp_utc,open,high,low,close,volume\n")
    with pytest.raises(DataError, match="header line and no data rows"):
        load_bars(p)
    p = tmp_path / "ES_tbt.txt"
    p.write_text("Date;Time;Sequence;Price;Volume;TradeType\n")
    with pytest.raises(DataError, match="header line and no"):
        load_bars(p)
    p = write_scid(tmp_path / "ESH24.scid", np.zeros(0, dtype=SCID_RECORD_DTYPE))
    with pytest.raises(DataError, match=re.escape(f"{p}: record 0: file has a header and no records")):
        load_bars(p)


BOM = b"\xef\xbb\xbf"


@pytest.mark.parametrize("gz", [False, True])
def test_utf8_bom_is_accepted_on_every_text_format(tmp_path, gz):
    samples = {
        "ESH24.txt": (HEADER + "".join(good_rows())).encode(),
        "6EH4.csv": b"timestamp_utc,open,high,low,close,volume\n" + b"".join(
            f"2024-01-02 10:{m:02d}:00,1.10000,1.10010,1.09990,1.10005,12\n".encode() for m in range(10)),
        "ES_tbt.txt": b"Date;Time;Sequence;Price;Volume;TradeType\n" + b"".join(
            f"2022-01-24;13:30:00.{5000 + i};{100 + i};4347.75;1;2\n".encode() for i in range(8)),
    }
    for name, blob in samples.items():
        plain, bommed = tmp_path / f"plain-{name}", tmp_path / f"bom-{name}"
        if gz:
            plain, bommed = plain.with_name(plain.name + ".gz"), bommed.with_name(bommed.name + ".gz")
        plain.write_bytes(gzip.compress(blob) if gz else blob)
        bommed.write_bytes(gzip.compress(BOM + blob) if gz else BOM + blob)
        a, b = load_bars(plain, symbol=name[:4]), load_bars(bommed, symbol=name[:4])
        assert a.equals(b) and len(a) and a.attrs["source_format"] == b.attrs["source_format"], name


def test_compressed_scid_gets_a_message_that_says_so(tmp_path):
    rec = np.zeros(2, dtype=SCID_RECORD_DTYPE)
    rec["datetime"] = 3_917_000_000_000_000 + np.arange(2)
    rec["close"] = rec["high"] = rec["low"] = 5000.0
    rec["total_volume"] = rec["ask_volume"] = 1
    raw = write_scid(tmp_path / "ESH24.scid", rec).read_bytes()
    cases = {"ESH24.scid.gz": gzip.compress(raw), "ESH24.dat": gzip.compress(raw),  # gzip: by content
             "ESH24.scid.zst": b"\x28\xb5\x2f\xfd" + raw, "ESH24.scid.zip": b"PK\x03\x04" + raw}
    for name, blob in cases.items():
        p = tmp_path / name
        p.write_bytes(blob)
        with pytest.raises(DataError) as exc:
            load_bars(p)
        assert re.fullmatch(re.escape(str(p)) + r": a \w+-compressed Sierra \.scid file: .*decompress it first", one_line(exc)), name


def test_real_files_pass_the_rules():
    """The real exports (bar text, tick text, .scid, DBN, generic CSV) load with every rule on."""
    for rel in ("es-5m/ESH20-CME.scid_BarData__5m.txt.gz", "ticks/ES_2022-01-24_tbt.txt.gz",
                "ticks/ES_2023-06-29_open_tbt.txt.gz", "ticks/ESM23_sample.scid",
                "bars/6EH4.XCME_1min_bars_20240101_20240131.csv.gz"):
        f = load_bars(shared_file(rel))
        assert len(f) and not f.attrs["quarantine"] and check(f).errors == 0, rel


def test_bom_in_front_of_a_binary_file_is_named(tmp_path):
    """A text tool that prepends a BOM to a .scid (or Parquet, gzip) gets a message saying so, not a CSV error."""
    rec = np.zeros(2, dtype=SCID_RECORD_DTYPE)
    rec["datetime"] = 3_917_000_000_000_000 + np.arange(2)
    rec["close"] = rec["high"] = rec["low"] = 5000.0
    rec["total_volume"] = rec["ask_volume"] = 1
    raw = write_scid(tmp_path / "ESH24.scid", rec).read_bytes()
    cases = {"bom.scid": (raw, "Sierra .scid"), "ESH24.parquet": (b"PAR1" + raw, "Parquet"),
             "ESH24.txt.gz": (gzip.compress(raw), "gzip-compressed")}
    for name, (blob, kind) in cases.items():
        p = tmp_path / name
        p.write_bytes(BOM + blob)
        with pytest.raises(DataError) as exc:
            load_bars(p, symbol="ESH24")
        assert one_line(exc).startswith(f"{p}: a {kind} file with a UTF-8 byte-order mark (EF BB BF) in front: "
                                        "a text tool has rewritten this binary file"), name
    (tmp_path / "fixed.scid").write_bytes((tmp_path / "bom.scid").read_bytes()[len(BOM):])
    assert len(load_bars(tmp_path / "fixed.scid", symbol="ESH24")) == 1  # the advice works
