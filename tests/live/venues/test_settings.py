"""Venue settings: defaults, the git-ignored secrets file, the environment, overrides; paper ports only without
--live; live only from its own file with live = true; errors in one line naming the source."""

from __future__ import annotations

import pytest

from live.venues.settings import SettingsError, load_settings


def test_precedence_defaults_file_environment_override(tmp_path):
    f = tmp_path / "navale.secrets.toml"
    f.write_text('[ib]\nhost = "10.0.0.5"\nport = 7497\nclient_id = 3\naccount = "DU1234567"\n')
    s = load_settings("ib", env={}, secrets=f)
    assert (s.host, s.port, s.client_id, s.account, s.live) == ("10.0.0.5", 7497, 3, "DU1234567", False)
    s = load_settings("ib", env={"NAVALE_IB_PORT": "4002", "NAVALE_IB_CLIENT_ID": "9"}, secrets=f, client_id=11)
    assert (s.port, s.client_id) == (4002, 11) and "$NAVALE_IB_PORT" in s.source
    assert s.redacted()["account"] == "DU…67" and "DU1234567" not in str(s.redacted())
    d = load_settings("dtc", env={"NAVALE_DTC_PASSWORD": "pw"}, secrets=tmp_path / "none.toml")
    assert d.port == 11099 and d.password == "pw" and d.redacted()["password"] == "…"


def test_a_live_port_is_refused_for_paper_and_a_paper_port_for_live(tmp_path):
    with pytest.raises(SettingsError, match="7496 is a live IB port"):
        load_settings("ib", env={"NAVALE_IB_PORT": "7496"}, secrets=tmp_path / "none.toml")
    live = tmp_path / "live.toml"
    live.write_text('[ib]\nlive = true\nport = 4002\naccount = "U7654321"\n')
    with pytest.raises(SettingsError, match="4002 is a paper port"):
        load_settings("ib", live=True, live_config=live, env={})
    live.write_text('[ib]\nlive = true\nport = 4001\naccount = "U7654321"\n')
    assert load_settings("ib", live=True, live_config=live, env={}).live


def test_live_needs_its_own_file_saying_live(tmp_path):
    with pytest.raises(SettingsError, match="needs --live-config"):
        load_settings("ib", live=True, env={})
    f = tmp_path / "live.toml"
    f.write_text('[ib]\nport = 4001\naccount = "U1"\n')
    with pytest.raises(SettingsError, match="must say live = true"):
        load_settings("ib", live=True, live_config=f, env={})
    paper = tmp_path / "navale.secrets.toml"
    paper.write_text('[ib]\nlive = true\n')
    with pytest.raises(SettingsError, match="live = true outside --live"):
        load_settings("ib", env={}, secrets=paper)


def test_bad_values_name_the_source_and_key(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text('[ib]\nport = "seventy"\n')
    with pytest.raises(SettingsError, match=r"s.toml \[ib\]: port = 'seventy' is not valid"):
        load_settings("ib", env={}, secrets=f)
    f.write_text('[ib]\nhots = "x"\n')
    with pytest.raises(SettingsError, match="unknown key 'hots'"):
        load_settings("ib", env={}, secrets=f)
    with pytest.raises(SettingsError, match=r"\$NAVALE_IB_CLIENT_ID: client_id = 'x' is not valid"):
        load_settings("ib", env={"NAVALE_IB_CLIENT_ID": "x"}, secrets=f.with_name("none"))


def test_a_damaged_venue_file_is_reported_by_name_never_raised(tmp_path):
    from live.venues.wiring import VENUE_FILE, flatten_at_venue

    assert flatten_at_venue(tmp_path) is None  # a paper session: no venue file
    (tmp_path / VENUE_FILE).write_text("{not json")
    flat, detail = flatten_at_venue(tmp_path)
    assert flat is False and str(tmp_path / VENUE_FILE) in detail and "by hand" in detail
    (tmp_path / VENUE_FILE).write_text('{"broker": "paper"}')
    flat, detail = flatten_at_venue(tmp_path)
    assert flat is False and "'paper' is not a venue" in detail
