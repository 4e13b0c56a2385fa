"""Data collection: `navale collect` records every tick, bar and feed event into durable segments (see
docs/data_collection_guide.md); integrity checks and backups read what it writes."""
