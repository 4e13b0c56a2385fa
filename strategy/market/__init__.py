"""Market vocabulary shared by research and live: instruments, the CME session calendar, clocks.

- :mod:`strategy.market.clock`: time zones and regular trading hours (plain constants);
- :mod:`strategy.market.instruments`: tick size, tick value and commissions per product root,
  contract-code parsing;
- :mod:`strategy.market.sessions`: trading dates, RTH/Globex masks, halts and session phases,
  computed from bar timestamps;
- :mod:`strategy.market.calendar`: CME holidays and early closes (flat time, no-entry dates, Globex
  open/closed for the live loop), from ``pandas_market_calendars`` loaded on first use.

Import the submodule you need; this package imports nothing itself, so
``import strategy.market.clock`` costs no pandas.
"""
