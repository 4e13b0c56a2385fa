"""The wall clocks of the CME equity-index session: time zones and regular trading hours.

Pure constants (no pandas, no numpy), so the command line, the numba kernels (which read them as
compile-time constants) and the calendar functions of :mod:`strategy.market.sessions` share one
definition.
"""

from __future__ import annotations

__all__ = ["ET", "CT", "EXCHANGE_TZ", "RTH_TZ", "RTH_OPEN_MIN", "RTH_CLOSE_MIN", "GLOBEX_OPEN_CT_MIN"]

ET = "America/New_York"  # the clock of RTH, of every ``*_et`` parameter and of the reports
CT = "America/Chicago"  # the exchange's clock: Globex hours, Sierra Chart exports

EXCHANGE_TZ = CT
RTH_TZ = ET

RTH_OPEN_MIN = 9 * 60 + 30  # 09:30 ET, minutes after midnight
RTH_CLOSE_MIN = 16 * 60  # 16:00 ET
GLOBEX_OPEN_CT_MIN = 17 * 60  # 17:00 CT: a session opens the evening before its trading date
