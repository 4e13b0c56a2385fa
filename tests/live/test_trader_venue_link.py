"""The live loop over a venue link: the feed's link events (a drop, a reconnect) become risk events, and while the
broker says it is not ready no entry goes out (the signal is journaled as skipped); the same session with a ready
broker trades. Real Trader, real paper broker book, the synthetic trade feed."""

from __future__ import annotations

from live import control
from live.brokers.paper import PaperBroker
from live.feeds.synthetic import SyntheticFeed
from live.journal import Journal
from live.session import open_session
from research.data.synthetic import SyntheticSpec
from strategy.params import Params

SPEC = SyntheticSpec(days=1)


class LinkFeed(SyntheticFeed):
    """The synthetic trades with a dropped and restored link reported after record 2,000."""

    live = False  # a replay: the loop's feed-halt clock stays out of it

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.events: list[tuple[str, str]] = []
        self.n = 0

    def next_record(self):
        rec = super().next_record()
        self.n += rec is not None
        if self.n == 2000 and not self.events:
            self.events += [("disconnected", "ib: socket dropped (test)"), ("reconnected", "ib: resubscribed")]
        return rec


class NotReadyBroker(PaperBroker):
    @property
    def ready(self) -> bool:
        return False


def run(sd, broker_cls):
    def broker(sym, tick, state_dir):
        return broker_cls(sym, tick_size=tick, mode="tick", slippage_ticks=1, book_path=state_dir / "venue_book.sqlite")

    trader = open_session(Params.for_mode("paper"), feed="synthetic", state_dir=sd, broker_mode="tick", speed=None,
                          unvalidated=True, feed_factory=lambda f, resume=None, **kw: LinkFeed(SPEC, resume=resume,
                                                                                              speed=None),
                          broker_factory=broker)
    try:
        res = trader.run()
    finally:
        trader.journal.close()
    with Journal(control.journal_path(sd), readonly=True) as j:
        events = j.risk_events()
        orders = j.orders() if hasattr(j, "orders") else None
    return res, events, orders


def test_link_events_are_journaled_and_no_entry_goes_out_while_the_broker_is_not_ready(tmp_path):
    res, events, _ = run(tmp_path / "ready", PaperBroker)
    kinds = [e["kind"] for e in events]
    assert len(res.trades) > 0 and "entry_skipped" not in kinds
    drop = [e for e in events if e["kind"] == "feed_disconnected"]
    assert len(drop) == 1 and drop[0]["level"] == "critical" and "socket dropped" in drop[0]["detail"]
    assert kinds.count("feed_reconnected") == 1

    res2, events2, _ = run(tmp_path / "down", NotReadyBroker)
    skipped = [e for e in events2 if e["kind"] == "entry_skipped"]
    assert len(res2.trades) == 0 and len(skipped) >= len(res.trades)
    assert all("not ready" in e["detail"] for e in skipped)
