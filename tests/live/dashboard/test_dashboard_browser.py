"""The dashboard in a real headless Chromium (Debian's package, driven by playwright): the page loads with the
journal's numbers, follows a paper session live without a reload, refuses a wrong token, and its emergency stop
flattens the running trader. Screenshots go to reports/dashboard/."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from dashboard_server import TOKEN, served

from live import control
from live.journal import Journal

ROOT = Path(__file__).resolve().parents[3]
SHOTS = ROOT / "reports" / "dashboard"
CHROMIUM = os.environ.get("NAVALE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _browser_or_skip():
    if importlib.util.find_spec("playwright") is None:
        pytest.skip("playwright is not installed (pip install playwright; its own browser download is not needed)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: install Debian's chromium package (CI does: .ci/run)")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    _browser_or_skip()
    from playwright.sync_api import sync_playwright

    SHOTS.mkdir(parents=True, exist_ok=True)
    profile = tmp_path_factory.mktemp("chromium-profile")
    with sync_playwright() as p:
        ctx = p.chromium.launch_persistent_context(str(profile), executable_path=CHROMIUM, headless=True,
                                                   args=FLAGS, viewport={"width": 1400, "height": 1100})
        yield ctx
        ctx.close()


def trader(state_dir: Path, speed: str) -> subprocess.Popen:
    """`navale paper` on the synthetic feed, as a user starts it."""
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    return subprocess.Popen([sys.executable, "-m", "research.cli", "paper", "--unvalidated", "--feed", "synthetic",
                             "--speed", speed, "--state-dir", str(state_dir), "--quiet", "--no-store"],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def wait_for(cond, what: str, timeout: float = 120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def journal_status(sd: Path) -> dict | None:
    p = control.journal_path(sd)
    if not p.is_file():
        return None
    try:
        with Journal(p, readonly=True) as j:
            return j.status()
    except Exception:  # noqa: BLE001 - being created
        return None


def text(page, name: str) -> str:
    return page.locator(f'[data-field="{name}"]').first.inner_text().strip()


def test_a_wrong_token_is_refused(browser, tmp_path):
    with served(tmp_path / "live") as url:
        page = browser.new_page()
        resp = page.goto(url + "?token=not-the-token")
        assert resp.status == 401 and "401" in page.content()
        resp = page.goto(url)
        assert resp.status == 401
        page.close()


def test_the_page_follows_a_session_live_and_its_emergency_stop_flattens_the_trader(browser, tmp_path):
    sd = tmp_path / "live"
    proc = trader(sd, "1500")
    try:
        wait_for(lambda: (journal_status(sd) or {}).get("bars"), "the trader's first bar")
        with served(sd) as url:
            page = browser.new_page()
            page.goto(url + f"?token={TOKEN}")  # sets the cookie, then the clean URL
            assert "token" not in page.url
            # the numbers the page shows are the journal's
            st = journal_status(sd)
            assert text(page, "mode") == "paper" and text(page, "run_id") == st["run_id"]
            first_bars = int(text(page, "bars"))
            # live: the SSE updates the panels without a reload
            page.wait_for_function("() => Number(document.body.dataset.seq || 0) >= 3", timeout=60_000)
            wait_for(lambda: int(text(page, "bars")) > first_bars, "the bar count to move on the page", 60)
            assert page.locator("#conn").inner_text() == "live"
            # a moment with a position open, when the session gives one in time
            t_end = time.monotonic() + 90
            while time.monotonic() < t_end and text(page, "position") in ("0", "") and proc.poll() is None:
                time.sleep(0.1)
            pos_before = text(page, "position")
            # one synchronous read of the DOM: the position and the working orders of the same rendering
            shown = page.evaluate("""() => ({pos: document.querySelector('[data-field="position"]').innerText.trim(),
                legs: document.querySelectorAll('tr[data-order="stop loss"], tr[data-order="target"]').length})""")
            if shown["pos"] not in ("0", ""):  # an open trade: its stop and target are listed as working orders
                assert shown["legs"] == 2, shown
            st = journal_status(sd)
            assert text(page, "trades_total") in {str(st["trades_total"]), str(st["trades_total"] - 1),
                                                  str(st["trades_total"] + 1)}  # one refresh apart at most
            page.screenshot(path=str(SHOTS / "dashboard_live.png"), full_page=True)
            # the emergency stop: button, typed confirmation, result
            page.click("#stop-button")
            page.fill("#confirm", "STOP")
            page.click("#confirm-stop")
            page.wait_for_selector("#stop-result", timeout=60_000)
            assert page.locator("#stop-result").inner_text() == "FLAT"
            page.screenshot(path=str(SHOTS / "dashboard_after_stop.png"), full_page=True)
            proc.wait(60)
            page.goto(url)
            assert text(page, "position") == "0"
            assert text(page, "halted").startswith("emergency stop from the dashboard")  # the halt file's reason
            page.screenshot(path=str(SHOTS / "dashboard_halted.png"), full_page=True)
            page.close()
        with Journal(control.journal_path(sd), readonly=True) as j:
            kinds = [e["kind"] for e in j.risk_events()]
            positions = j.positions()
        assert "emergency_stop" in kinds and not any(positions.values()), (kinds[-5:], positions)
        assert control.read_halt(sd) is not None
        print(f"position on the page before the stop: {pos_before}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
