"""`doctor` against the fake server: each check in plain words (reachable, logon, encoding, market data, trading,
accounts), and what it says when something is off."""

from __future__ import annotations

import socket

from dtc_helpers import make_ticks, settings_for
from dtc_fixtures import fake_server  # noqa: F401 (pytest fixtures)

from live.venues.dtc import doctor


def by_name(checks):
    return {c.name: c for c in checks}


def test_all_good(fake_server):
    fake = fake_server(make_ticks(20))
    c = by_name(doctor(settings_for(fake.port), dtc_sym=fake.symbol))
    assert [n for n, x in c.items() if not x.ok] == []
    assert set(c) == {"dtc tcp", "dtc logon", "dtc encoding", "dtc market data", "dtc trading", "dtc accounts"}
    assert "Logged on" in c["dtc logon"].detail and "JSON" in c["dtc encoding"].detail
    # market data flowing: trades counted, or (when no trade came within the check's wait on a busy
    # machine) the quote the server sent first
    detail = c["dtc market data"].detail
    assert ("trade(s)" in detail or "bid 5999.75 / ask 6000.0" in detail), detail
    assert "1 trade account" in c["dtc accounts"].detail


def test_nothing_listening():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    (c,) = doctor(settings_for(port))
    assert not c.ok and "enable its DTC Protocol Server" in c.detail


def test_logon_refused_trading_disabled_symbol_unknown_account_absent(fake_server):
    fake = fake_server([])
    fake.logon_result, fake.logon_text = 2, "Invalid password"
    c = by_name(doctor(settings_for(fake.port), dtc_sym=fake.symbol))
    assert not c["dtc logon"].ok and "Invalid password" in c["dtc logon"].detail and "pw" not in c["dtc logon"].detail
    fake.logon_result = 1
    fake.trading = False
    c = by_name(doctor(settings_for(fake.port), dtc_sym="ESZ26-NOPE", data_timeout_s=5))
    assert not c["dtc market data"].ok and "not found" in c["dtc market data"].detail
    assert not c["dtc trading"].ok and "Allow Trading" in c["dtc trading"].detail
    fake.trading = True
    c = by_name(doctor(settings_for(fake.port, account="Other9"), dtc_sym=fake.symbol, data_timeout_s=0.2))
    assert not c["dtc accounts"].ok and "not among" in c["dtc accounts"].detail and "Other9" not in c["dtc accounts"].detail


def test_navale_doctor_dtc_command(fake_server, capsys, monkeypatch, tmp_path):
    from research.cli import main

    monkeypatch.chdir(tmp_path)  # no navale.secrets.toml
    fake = fake_server(make_ticks(20))
    monkeypatch.setenv("NAVALE_DTC_SYMBOL", fake.symbol)
    assert main(["doctor", "dtc", "--port", str(fake.port)]) == 0
    out = capsys.readouterr().out
    assert "ok   dtc logon" in out and "all checks passed" in out
    fake.trading = False  # the server's "Allow Trading" off: said plainly, exit 1
    assert main(["doctor", "dtc", "--port", str(fake.port)]) == 1
    out = capsys.readouterr().out
    assert "FAIL dtc trading" in out and "Allow Trading" in out
