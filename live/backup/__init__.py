"""Backups of the collection directory and the run store to any fsspec target (a local folder, S3 through
s3fs): content-addressed objects, one manifest per run, incremental, verified on demand and before every
restore. docs/backups.md has the layout at the target and the rules."""
