"""A collector restarted while a bar is being built makes the bars an uninterrupted run makes, wherever the restart
lands: after every single trade of planted ``.scid`` files (a contract roll inside a bar, volume bars filled by a
trade, a trade that alone fills a bar), and after a bar the clock closed followed by a late trade of the next
contract. In-process `Collector` on a real `ScidFeed` and real segments and journal; nothing depends on speed.

The soak (tests/live/collect/test_soak.py) met the roll case under load: the restarted builder put the floor of
late trades at the end of the roll's bar, so the next contract's trades of that bar were dropped as late."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from live.collect.collector import Collector
from live.feeds.scid import ScidFeed
from live.journal import Journal
from research.data import segments as S
from research.data.scid import ticks_to_scid_records, write_scid

NS = 10**9
T0 = 1709582400 * NS  # 2024-03-04 14:00 CT: Globex open, bars at :00, :05, ...
ROLL = T0 + (12 * 60 + 30) * NS  # inside the 14:10 bar


def trades(t_from: int, t_to: int, step_s: float, seed: int) -> dict[str, np.ndarray]:
    """Trades every ``step_s`` seconds in [t_from, t_to): sizes 1-3 with a 12-lot now and then, both sides."""
    rng = np.random.default_rng(seed)
    ts = np.arange(t_from, t_to, int(step_s * NS), dtype=np.int64)
    size = rng.integers(1, 4, len(ts))
    size[rng.random(len(ts)) < 0.04] = 12
    price = 5000.0 + 0.25 * np.cumsum(rng.integers(-1, 2, len(ts)))
    return {"ts": ts, "size": size, "price": price, "side": np.where(rng.random(len(ts)) < 0.5, 1, -1)}


def write_trades(path: Path, t: dict[str, np.ndarray], *, append: bool = False) -> None:
    rec = ticks_to_scid_records(t["ts"], t["price"], t["size"], t["side"], t["price"] - 0.25, t["price"])
    write_scid(path, rec, append=append)


def open_collector(root: Path, scid: Path, bar: str) -> Collector:
    def feed(token: object) -> ScidFeed:  # polls at once: the test never waits on a clock
        return ScidFeed(scid, resume=token, poll_interval=1e-4, roll_check_seconds=0.0, sleep=lambda s: None)

    c = Collector(root, f"scid:{scid}", open_feed=feed, journal=Journal(root / "collector.sqlite"), symbol="ES",
                  bar=bar, quality=None)
    c.open()
    return c


def collect(c: Collector, *, ticks: int | None = None, idle_steps: int = 20) -> int:
    """Step ``c`` until it has recorded ``ticks`` trades or found nothing new ``idle_steps`` times running (it
    polls the bar clock then); returns the trades recorded."""
    n = idle = 0
    while (ticks is None or n < ticks) and idle < idle_steps:
        if c.step() is None:
            idle += 1
        else:
            n, idle = n + 1, 0
    return n


def stop(c: Collector) -> None:
    """Flush (the checkpoint a SIGKILL leaves after the collector's 0.1 s flush) and drop the collector."""
    c.close()
    c.journal.close()


def bars_of(root: Path) -> list[tuple]:
    out = []
    for seg in sorted((root / "segments" / "ES").glob("*.seg")):
        d = S.read_segment(seg)
        out += [(*(x.item() for x in row), c) for row, c in zip(d.bars, d.bar_contracts)]
    return out


def ticks_of(root: Path) -> list[int]:
    return [int(x) for seg in sorted((root / "segments" / "ES").glob("*.seg")) for x in S.read_segment(seg).ticks["ts_ns"]]


def late_records(root: Path) -> int:
    with Journal(root / "collector.sqlite", readonly=True) as j:
        return sum(1 for e in j.risk_events() if e["kind"] == "late_record")


@pytest.fixture
def roll_files(tmp_path: Path) -> Path:
    """ESM24 trades up to ROLL, ESU24 trades after it (the roll 2.5 minutes into the 14:10 bar)."""
    sierra = tmp_path / "sierra"
    sierra.mkdir()
    write_trades(sierra / "ESM24-CME.scid", trades(T0, ROLL, 6.0, 1))
    write_trades(sierra / "ESU24-CME.scid", trades(ROLL, T0 + 30 * 60 * NS, 6.0, 2))
    return sierra / "ESM24-CME.scid"


@pytest.mark.parametrize("bar", ["5min", "volume:10"])
def test_a_restart_after_any_trade_gives_the_bars_of_an_uninterrupted_run(tmp_path, roll_files, bar):
    once = open_collector(tmp_path / "once", roll_files, bar)
    n = collect(once)
    stop(once)
    expected = bars_of(tmp_path / "once")
    assert n == 300 and len(expected) > (5 if bar == "5min" else 50)
    assert {b[-1] for b in expected} == {"ESM24", "ESU24"}
    assert late_records(tmp_path / "once") == 0

    root = tmp_path / "restarted"
    done = 0
    while done < n:  # a restart after every single trade (the first run takes one trade, each next one more)
        c = open_collector(root, roll_files, bar)
        done += collect(c, ticks=1)
        stop(c)
    assert ticks_of(root) == ticks_of(tmp_path / "once")
    assert bars_of(root) == expected
    assert late_records(root) == 0


def test_a_late_trade_of_the_next_contract_after_the_clock_closed_its_bar_stays_late_after_a_restart(tmp_path):
    """Records within 10 minutes of the wall clock: the idle collector closes the bar on the clock; then the next
    contract's first trade comes, in that bar's time (a late record), and the collector restarts."""
    # bar0: the bar that ended over 5 s (the grace) ago, while the next one (bar0 + 300 s, where the
    # later trades fall) is still open for the whole test: its age must stay within 310..590 s
    while True:
        now = time.time_ns()
        bar0 = now - now % (300 * NS) - 300 * NS
        if 310 * NS <= now - bar0 <= 590 * NS:
            break
        time.sleep(1.0)  # at most ~20 s, near a 5-minute boundary

    def run(work: Path, restart: bool) -> list[tuple]:
        sierra, root = work / "sierra", work / "collect"
        sierra.mkdir(parents=True)
        scid = sierra / "ESM24-CME.scid"
        write_trades(scid, trades(bar0 + 60 * NS, bar0 + 240 * NS, 20.0, 3))
        c = open_collector(root, scid, "5min")
        assert collect(c) == 9 and c.bars == 1  # then idle: the clock closed the bar
        write_trades(sierra / "ESU24-CME.scid", trades(bar0 + 270 * NS, bar0 + 271 * NS, 1.0, 4))
        assert collect(c) == 1  # the roll, and its late trade
        if restart:
            stop(c)
            c = open_collector(root, scid, "5min")
        write_trades(sierra / "ESU24-CME.scid", trades(bar0 + 301 * NS, bar0 + 302 * NS, 1.0, 5), append=True)
        assert collect(c) == 1
        stop(c)
        return bars_of(root)

    expected = run(tmp_path / "once", restart=False)
    assert len(expected) == 1 and expected[0][-1] == "ESM24" and late_records(tmp_path / "once" / "collect") == 1
    assert run(tmp_path / "restarted", restart=True) == expected
    assert ticks_of(tmp_path / "restarted" / "collect") == ticks_of(tmp_path / "once" / "collect")
