"""The Battle Navale method: numba signal kernels and the incremental engine (no I/O).

Implemented in the signal-engine issue; see ../shared/METHOD.md for the definition.
"""
