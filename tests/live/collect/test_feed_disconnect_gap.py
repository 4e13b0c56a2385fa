"""A network feed that reports ``disconnected`` (the IB and DTC adapters, on a dropped link): the collector writes a
gap from the last trade before the drop to the first one after, with the feed's reason, and journals both events;
no trade is invented in between."""

from __future__ import annotations

from collections import deque

from live.collect.collector import Collector
from live.events import Tick
from live.feeds.base import Feed
from live.journal import Journal
from research.data import segments as S

NS = 10**9
T0 = 1709582400 * NS  # 2024-03-04 14:00 CT, Globex open


class ScriptedFeed(Feed):
    """Yields planted ticks; before tick ``drop_at`` it reports a disconnect, before ``back_at`` a reconnect."""

    symbol = "ES"
    live = True

    def __init__(self, ticks: list[Tick], drop_at: int, back_at: int):
        self.ticks, self.drop_at, self.back_at = deque(enumerate(ticks)), drop_at, back_at
        self.events: list[tuple[str, str]] = []
        self.n = 0

    def next_record(self):
        if not self.ticks:
            return None
        i, t = self.ticks[0]
        if i == self.drop_at and not self.events:
            self.events.append(("disconnected", "socket dropped (test)"))
            return None
        if i == self.back_at and len(self.events) == 1:
            self.events.append(("reconnected", "resubscribed with new request ids"))
        self.ticks.popleft()
        self.n = i + 1
        return t

    def exhausted(self) -> bool:
        return not self.ticks

    def resume_token(self):
        return self.n


def test_a_disconnect_is_a_gap_between_the_trades_around_it(tmp_path):
    ticks = [Tick(T0 + k * 2 * NS, 5000.0 + 0.25 * (k % 3), 1, 1 if k % 2 else -1) for k in range(40)]
    ticks = ticks[:20] + [Tick(t.ts_ns + 90 * NS, t.price, t.size, t.side) for t in ticks[20:]]  # 90 s away
    feed = ScriptedFeed(ticks, drop_at=20, back_at=20)
    root = tmp_path / "collect"
    c = Collector(root, "scripted", open_feed=lambda tok: feed, journal=Journal(root / "collector.sqlite"),
                  symbol="ES", quality=None, gap_seconds=3600)
    c.open()
    try:
        idle = 0
        while idle < 5:
            idle = idle + 1 if c.step() is None else 0
    finally:
        c.close()
    kinds = [e["kind"] for e in c.journal.risk_events()]
    c.journal.close()
    assert "feed_disconnected" in kinds and "feed_reconnected" in kinds and "gap" in kinds
    gaps = [g for seg in sorted((root / "segments" / "ES").glob("*.seg")) for g in S.read_segment(seg).gaps]
    assert len(gaps) == 1, gaps
    g = gaps[0]
    assert (g["start_ns"], g["end_ns"]) == (ticks[19].ts_ns, ticks[20].ts_ns) and "disconnected" in g["reason"]
    n = sum(len(S.read_segment(seg).ticks) for seg in (root / "segments" / "ES").glob("*.seg"))
    assert n == 40
