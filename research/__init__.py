"""navale research side: data loading, backtests, sweeps, performance, ML, storage."""
