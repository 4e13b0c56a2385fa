"""The live half of navale: empty today. Feeds, brokers, the trading loop, alerts and monitoring will go here
(docs/architecture.md, "Where new things go"); they will run ``strategy.SignalEngine``."""
