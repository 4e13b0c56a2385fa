"""`navale live`'s opt-in: its own settings file saying live = true on a live port, the typed confirmation 'LIVE
ACCOUNT', a venue broker; the live preset's limits over the promoted values. Nothing connects before the opt-in."""

from __future__ import annotations

import argparse
import io

import pytest

from live.config import ConfigError, TraderConfig
from live.venues.settings import SettingsError
from research.cli.paper_cmd import live_params, session_venues
from strategy.params import Params


def args(tmp_path, **kw) -> argparse.Namespace:
    base = dict(live_session=True, feed="ib", broker="ib", live_config=str(tmp_path / "live.toml"), confirm=None,
                host=None, port=None, client_id=None, speed=None)
    return argparse.Namespace(**{**base, **kw})


def live_file(tmp_path, text='[ib]\nlive = true\nport = 4001\naccount = "U7654321"\n'):
    (tmp_path / "live.toml").write_text(text)


def test_the_confirmation_must_be_typed_exactly(tmp_path, monkeypatch):
    live_file(tmp_path)
    with pytest.raises(SettingsError, match="expected 'LIVE U7654321'"):
        session_venues(args(tmp_path, confirm="LIVE"), None)
    with pytest.raises(SettingsError, match="expected 'LIVE U7654321'"):
        session_venues(args(tmp_path, confirm="live U7654321"), None)
    monkeypatch.setattr("sys.stdin", io.StringIO("LIVE U7654321\n"))  # not a terminal: never read
    with pytest.raises(SettingsError, match="run on a terminal, or pass --confirm 'LIVE U7654321'"):
        session_venues(args(tmp_path), None)
    v = session_venues(args(tmp_path, confirm="  LIVE   U7654321 "), None)
    assert v.broker_venue == "ib" and v.feed_venue == "ib" and v.open == {}  # nothing connected yet


def test_live_refuses_paper_settings_and_the_paper_broker(tmp_path):
    live_file(tmp_path, '[ib]\nport = 4001\naccount = "U7654321"\n')
    with pytest.raises(SettingsError, match="must say live = true"):
        session_venues(args(tmp_path, confirm="LIVE U7654321"), None)
    live_file(tmp_path, '[ib]\nlive = true\nport = 7497\naccount = "U7654321"\n')
    with pytest.raises(SettingsError, match="7497 is a paper port"):
        session_venues(args(tmp_path, confirm="LIVE U7654321"), None)
    with pytest.raises(SettingsError, match="--broker ib or dtc"):
        session_venues(args(tmp_path, broker="tick"), None)
    with pytest.raises(SettingsError, match="no such file"):
        session_venues(args(tmp_path, live_config=str(tmp_path / "nope.toml")), None)


def test_a_paper_session_on_a_venue_uses_the_paper_settings_and_no_confirmation(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    v = session_venues(args(tmp_path, live_session=False, broker="bar", live_config=None), None)
    assert v.feed_venue == "ib" and v.broker_venue is None
    assert v.settings_for("ib").port == 4002 and not v.settings_for("ib").live
    with pytest.raises(SettingsError, match="7496 is a live IB port"):
        session_venues(args(tmp_path, live_session=False, broker="ib", port=7496, live_config=None), None).settings_for("ib")


def test_live_params_take_the_stricter_limits_and_keep_the_tested_signal_values():
    tested = Params.for_mode("paper", contracts=2, stop_ticks=9, min_base_quality=0.6, max_trades_per_day=10)
    p = live_params(tested)
    assert (p.mode, p.contracts, p.max_trades_per_day, p.daily_profit_target_usd) == ("live", 1, 10, 800.0)
    assert (p.stop_ticks, p.min_base_quality) == (9, 0.6)


def test_the_trader_config_refuses_live_without_its_opt_in():
    p = live_params(Params.for_mode("paper"))
    with pytest.raises(ConfigError, match="mode live needs `navale live`"):
        TraderConfig(params=p, promotion_id="P1")
    with pytest.raises(ConfigError, match="accepted"):
        TraderConfig(params=p, live=True, broker_mode="tick", unvalidated=True)
    with pytest.raises(ConfigError, match="venue broker"):
        TraderConfig(params=p, live=True, broker_mode="bar", promotion_id="P1")
    assert TraderConfig(params=p, live=True, broker_mode="tick", promotion_id="P1").live
