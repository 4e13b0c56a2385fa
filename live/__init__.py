"""Live side: market-data feeds, brokers, the trading loop, alerts and monitoring (paper by default)."""
