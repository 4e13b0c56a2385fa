"""The dashboard over real HTTP (uvicorn on 127.0.0.1) on the journal of a real paper session: the token, the
cookie, the numbers against the journal, acknowledgement, the emergency stop's confirmation, /metrics."""

from __future__ import annotations

import http.cookiejar
import json
import re
import urllib.error
import urllib.parse
import urllib.request

import pytest
from dashboard_server import TOKEN, served
from paper_runs import run_session

from live import control
from live.journal import Journal


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    sd = tmp_path_factory.mktemp("dash") / "live"
    trader, res = run_session("synthetic", sd)
    with Journal(control.journal_path(sd)) as j:
        aid = j.record_alert("drawdown", "critical", 12.5, 10.0, "drawdown 12.50 % > 10 %", 1_700_000_000 * 10**9)
    return sd, res, aid


def get(url: str, token: str | None = TOKEN, opener=None) -> tuple[int, str, dict]:
    req = urllib.request.Request(url)
    if token is not None:
        req.add_header("Authorization", f"Bearer {token}")
    try:
        with (opener.open(req) if opener else urllib.request.urlopen(req, timeout=20)) as r:
            return r.status, r.read().decode(), dict(r.headers)
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(), dict(e.headers)


def post(url: str, data: dict, token: str = TOKEN) -> tuple[int, str]:
    req = urllib.request.Request(url, data=urllib.parse.urlencode(data).encode(), method="POST")
    req.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def field(html: str, name: str) -> str:
    m = re.search(rf'data-field="{re.escape(name)}"[^>]*>([^<]*)<', html)
    assert m, f"no {name} on the page"
    return m.group(1).strip()


def nonce(html: str) -> str:
    return re.search(r'name="nonce" value="([^"]+)"', html).group(1)


def test_no_token_or_a_wrong_one_is_refused(session):
    sd, _, _ = session
    with served(sd) as url:
        for path in ("", "events", "metrics", "api/snapshot", "stop"):
            assert get(url + path, token=None)[0] == 401, path
            assert get(url + path, token="wrong")[0] == 401, path
        assert get(url + "?token=wrong", token=None)[0] == 401
        assert get(url + "healthz", token=None)[:2] == (200, "ok")


def test_the_token_once_in_the_url_sets_a_cookie_and_redirects_to_the_clean_url(session):
    sd, _, _ = session
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
    with served(sd) as url:
        status, html, _ = get(url + f"?token={TOKEN}", token=None, opener=opener)
        assert status == 200 and "navale" in html
        assert [c.name for c in jar] == ["navale_dashboard"]
        assert get(url + "api/snapshot", token=None, opener=opener)[0] == 200  # the cookie alone now


def test_the_page_shows_the_journal_numbers(session):
    sd, res, _ = session
    with Journal(control.journal_path(sd), readonly=True) as j:
        st = j.status()
        n = len(j.trades())
    with served(sd) as url:
        status, html, _ = get(url)
    assert status == 200
    assert n > 0 and field(html, "trades_total") == str(n) == str(st["trades_total"])
    assert field(html, "position") == str(st["position"])
    assert field(html, "pnl_today_usd") == f"{st['pnl_today_usd']:.2f}"
    assert field(html, "equity_usd") == f"{st['equity_usd']:.2f}"
    assert field(html, "mode") == "paper" and field(html, "run_id") == st["run_id"]
    assert field(html, "alert-kind") == "drawdown"
    assert "bn_score" in html and html.count("<tr>") > 10  # the last bars with their signal columns
    assert 'data-field="equity-svg"' in html


def test_events_stream_the_panels(session):
    sd, _, _ = session
    with served(sd) as url:
        req = urllib.request.Request(url + "events", headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(req, timeout=20) as r:
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = []
            while not any(x.startswith("data:") for x in lines):
                lines.append(r.readline().decode().strip())
    assert "event: panels" in lines
    data = json.loads(next(x for x in lines if x.startswith("data:"))[5:])
    assert data["seq"] == 1 and {"trader", "alerts", "bars", "collector"} <= set(data["panels"])


def test_acknowledge_writes_the_journal_and_needs_the_pages_nonce(session):
    sd, _, aid = session
    with served(sd) as url:
        _, html, _ = get(url)
        assert post(url + f"alerts/{aid}/ack", {"nonce": "forged"})[0] == 403
        status, _ = post(url + f"alerts/{aid}/ack", {"nonce": nonce(html)})
        assert status == 200  # redirected to the page
        assert post(url + "alerts/999999/ack", {"nonce": nonce(html)})[0] == 404
    with Journal(control.journal_path(sd), readonly=True) as j:
        row = j.alert(aid)
    assert row["acked_ns"] and "dashboard" in row["ack_by"]


def test_the_emergency_stop_needs_the_typed_confirmation(tmp_path):
    sd = tmp_path / "live"
    run_session("synthetic", sd)
    with served(sd) as url:
        _, page, _ = get(url + "stop")
        assert "Type <b>STOP</b>" in page
        status, body = post(url + "stop", {"nonce": nonce(page), "confirm": "stop please"})
        assert status == 400 and "type STOP to confirm" in body
        assert control.read_halt(sd) is None  # nothing was done
        assert post(url + "stop", {"nonce": "forged", "confirm": "STOP"})[0] == 403
        status, body = post(url + "stop", {"nonce": nonce(page), "confirm": "STOP", "reason": "test"})
    assert status == 200 and ">FLAT<" in body
    assert control.read_halt(sd)["reason"] == "test"


def test_metrics_are_the_navale_metrics_of_the_journal(session):
    sd, _, _ = session
    with served(sd) as url:
        status, text, headers = get(url + "metrics")
    assert status == 200 and headers["content-type"].startswith("text/plain")
    names = set(re.findall(r"^(navale_[a-z_]+)", text, re.M))
    assert {"navale_bars_total", "navale_ticks_total", "navale_position_contracts", "navale_pnl_today_usd",
            "navale_tick_to_order_latency_seconds_bucket", "navale_feed_up"} <= names, sorted(names)
    with Journal(control.journal_path(sd), readonly=True) as j:
        bars = j.last_heartbeat()["status"]["bars"]
    assert re.search(rf"^navale_bars_total{{[^}}]*}} {bars}(\.0)?$", text, re.M), "bars differ from the journal"


def test_the_heartbeats_are_read_incrementally_and_a_new_journal_is_read_again(tmp_path):
    from live.dashboard.snapshot import Sources, read_snapshot

    sd = tmp_path / "live"
    with Journal(control.journal_path(sd)) as j:
        for i in range(3):
            j.heartbeat(i, {"in_session": True, "equity_usd": 100.0 + i, "bar_ts_ns": 10 + i})
    src = Sources(sd, None)
    assert [v for _, v in read_snapshot(src)["trader"]["equity"]] == [100.0, 101.0, 102.0]
    with Journal(control.journal_path(sd)) as j:
        j.heartbeat(3, {"in_session": True, "equity_usd": 103.0, "bar_ts_ns": 13})
    assert [v for _, v in read_snapshot(src)["trader"]["equity"]] == [100.0, 101.0, 102.0, 103.0]
    for f in sd.glob("journal.sqlite*"):
        f.unlink()
    with Journal(control.journal_path(sd)) as j:
        j.heartbeat(0, {"in_session": True, "equity_usd": 50.0, "bar_ts_ns": 1})
    assert [v for _, v in read_snapshot(src)["trader"]["equity"]] == [50.0]


def test_open_orders_list_the_open_trades_bracket_at_the_brokers_prices(tmp_path):
    """A session stopped with a trade open: the page's open orders are its stop and limit target, at the
    prices the paper broker's book holds."""
    import pandas as pd
    from paper_runs import synthetic_slice

    from live.brokers.paper import PaperBroker
    from live.session import open_session
    from strategy.params import Params

    f, bars = synthetic_slice(1, tmp_path)
    _, whole = run_session(f"replay:{f}", tmp_path / "whole")
    long_trades = whole.trades[whole.trades["exit_ts"] - whole.trades["entry_ts"] > pd.Timedelta("20min")]
    first = long_trades.iloc[0]
    sd = tmp_path / "live"
    trader = open_session(Params.for_mode("paper"), feed=f"replay:{f}", state_dir=sd, speed=None, unvalidated=True)
    try:
        res = trader.run(max_records=int((bars.index <= first["entry_ts"] + pd.Timedelta("10min")).sum()))
    finally:
        trader.journal.close()
    assert res.reason == "max_records"
    broker = PaperBroker.from_state_dir(sd)
    try:
        stop, target = broker.bracket_prices()
        pos = broker.positions()
    finally:
        broker.close()
    assert list(pos.values()) == [int(first["side"])]
    with served(sd) as url:
        status, html, _ = get(url)
    assert status == 200
    rows = {m.group(1): m.group(2) for m in re.finditer(r'<tr data-order="([^"]+)">(.*?)</tr>', html, re.S)}
    exit_side = "buy" if first["side"] < 0 else "sell"
    assert set(rows) == {"stop loss", "target"}, rows
    assert exit_side in rows["stop loss"] and f"<td>{stop:.2f}</td>" in rows["stop loss"]
    assert f"<td>{target:.2f}</td>" in rows["target"] and "<td>limit</td>" in rows["target"]


def test_a_replay_that_ends_in_a_trade_leaves_the_journal_flat(tmp_path):
    """The end-of-data close: the journal's last position and the trader's last heartbeat say flat."""
    import pandas as pd
    from paper_runs import synthetic_slice, write_sierra_bars

    f, bars = synthetic_slice(1, tmp_path)
    _, whole = run_session(f"replay:{f}", tmp_path / "whole")
    first = whole.trades[whole.trades["exit_ts"] - whole.trades["entry_ts"] > pd.Timedelta("20min")].iloc[0]
    (tmp_path / "cut").mkdir()
    cut = write_sierra_bars(bars.loc[:first["entry_ts"] + pd.Timedelta("10min")], tmp_path / "cut" / f.name)
    sd = tmp_path / "live"
    _, res = run_session(f"replay:{cut}", sd)
    assert res.reason == "replay_end" and len(res.trades) == int((whole.trades["entry_ts"] <= first["entry_ts"]).sum())
    with Journal(control.journal_path(sd)) as j:
        st, positions = j.status(), j.positions()
    assert st["position"] == 0 and st["bracket"] is None
    assert positions and set(positions.values()) == {0}
