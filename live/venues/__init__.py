"""Connections to real venues behind the `Feed` and `Broker` interfaces: Interactive Brokers (`live.venues.ib`,
through ib_async) and Sierra Chart's DTC server (`live.venues.dtc`). Shared parts: the reconnect state machine
and back-off (`reconnect`), the quote rule for trades without an aggressor side (`aggressor`), and the
connection settings read from the environment or a git-ignored file (`settings`)."""
