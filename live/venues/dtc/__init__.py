"""Sierra Chart's DTC Protocol server (JSON encoding) behind the `Feed` and `Broker` interfaces.

Entry points: :func:`open_venue` (a logged-on, subscribed, reconciled `DTCVenue` with ``.link``, ``.feed``,
``.broker``, ``.close()``, ``.stats()``) and :func:`doctor` (the checks of `navale doctor`). Parts: ``constants``
(from DTCProtocol.h, version 8), ``framing`` (NUL-terminated JSON), ``client`` (logon, heartbeats, reconnect),
``feed``, ``broker`` and its SQLite ``store``, ``symbols`` (the front-month DTC symbol).
"""

from live.venues.dtc.venue import DTCVenue, doctor, open_venue

__all__ = ["DTCVenue", "doctor", "open_venue"]
