"""Fixed-size incremental rolling structures for the step kernel (numba, no allocation).

Each structure lives in a caller-owned int64 array so that its whole state can be copied,
snapshotted and restored with the rest of the engine state.

- Monotonic deque (window max/min in amortised O(1); `cap` is a power of two): row ``dq[k]`` holds
  ``[head, size, idx_0..idx_{cap-1}, val_0..val_{cap-1}]`` as a circular buffer.
- Sorted window (rolling median): ``buf[:n]`` kept sorted; an update is a binary search plus a
  shift. For the 20-bar volume window this beats two heaps or a skip list (which pay pointer
  chasing and lazy deletion for an asymptotic gain that does not exist at w = 20); written by
  hand because no library offers a numba-callable, snapshot-able incremental median.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def deque_push_max(dq: np.ndarray, k: int, cap: int, t: int, x: int, window: int) -> int:
    """Push value `x` of bar `t` into max-deque `k`; return the max over bars ``t-window+1..t``."""
    head = dq[k, 0]
    size = dq[k, 1]
    while size > 0:
        pos = (head + size - 1) & (cap - 1)
        if dq[k, 2 + cap + pos] <= x:
            size -= 1
        else:
            break
    pos = (head + size) & (cap - 1)
    dq[k, 2 + pos] = t
    dq[k, 2 + cap + pos] = x
    size += 1
    while dq[k, 2 + head] <= t - window:
        head = (head + 1) & (cap - 1)
        size -= 1
    dq[k, 0] = head
    dq[k, 1] = size
    return dq[k, 2 + cap + head]


@njit(cache=True, inline="always")
def deque_push_min(dq: np.ndarray, k: int, cap: int, t: int, x: int, window: int) -> int:
    """Min-deque version of :func:`deque_push_max` (stores negated values)."""
    return -deque_push_max(dq, k, cap, t, -x, window)


@njit(cache=True, inline="always")
def _bisect_left(buf: np.ndarray, n: int, x: int) -> int:
    lo = 0
    hi = n
    while lo < hi:
        mid = (lo + hi) >> 1
        if buf[mid] < x:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, inline="always")
def sorted_insert(buf: np.ndarray, n: int, x: int) -> int:
    """Insert `x` into sorted ``buf[:n]``; return the new size."""
    pos = _bisect_left(buf, n, x)
    for i in range(n, pos, -1):
        buf[i] = buf[i - 1]
    buf[pos] = x
    return n + 1


@njit(cache=True, inline="always")
def sorted_remove(buf: np.ndarray, n: int, x: int) -> int:
    """Remove one occurrence of `x` (present) from sorted ``buf[:n]``; return the new size."""
    pos = _bisect_left(buf, n, x)
    for i in range(pos, n - 1):
        buf[i] = buf[i + 1]
    return n - 1


@njit(cache=True, inline="always")
def sorted_median(buf: np.ndarray, n: int) -> float:
    """Median of sorted ``buf[:n]`` (mean of the two middle values when n is even)."""
    h = n >> 1
    if n & 1:
        return float(buf[h])
    return 0.5 * (float(buf[h - 1]) + float(buf[h]))
