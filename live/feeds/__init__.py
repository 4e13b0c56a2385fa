"""Market-data feeds behind one interface (`live.feeds.base.Feed`): replay, Sierra `.scid` tail, synthetic."""
