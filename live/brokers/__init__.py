"""Brokers behind one interface (`live.brokers.base.Broker`): the paper broker today; IBKR and DTC next."""
