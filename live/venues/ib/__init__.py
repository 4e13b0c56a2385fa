"""Interactive Brokers through ib_async: the front-month ES/MES future (`contract`), the tick-by-tick feed
(`feed`), the broker with OCA brackets (`broker`) and its SQLite book (`store`), on one connection with the
reconnect state machine (`connection`). The live loop calls `open_venue`; ``navale doctor`` calls `doctor`."""

from __future__ import annotations

from live.venues.ib.contract import front_month
from live.venues.ib.venue import IBVenue, doctor, open_venue

__all__ = ["IBVenue", "doctor", "front_month", "open_venue"]
