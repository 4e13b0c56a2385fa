"""Fixed-size incremental rolling structures for the step kernel (numba, no allocation).

Each structure lives in a caller-owned int64 array so that its whole state can be copied,
snapshotted and restored with the rest of the engine state.

- Monotonic deque (window max/min in amortised O(1); `cap` is a power of two): row ``dq[k]`` holds
  ``[head, size, idx_0..idx_{cap-1}, val_0..val_{cap-1}]`` as a circular buffer.
- Sorted window (rolling median): ``buf[:n]`` kept sorted; an update replaces the oldest value
  by the newest in one pass (a vectorised count finds the old one, the elements between the
  two places shift). For the 20-bar volume window this beats two heaps or a skip list (which pay pointer
  chasing and lazy deletion for an asymptotic gain that does not exist at w = 20); written by
  hand because no library offers a numba-callable, snapshot-able incremental median.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, inline="always")
def deque_push_max(dq: np.ndarray, k: int, cap: int, t: int, x: int, window: int) -> int:
    """Push value `x` of bar `t` into max-deque `k`; return the max over bars ``t-window+1..t``."""
    m = (cap - 1) & 0x3FFF_FFFF  # known non-negative: the indices below need no negative-index fix-up
    head = dq[k, 0] & m
    size = dq[k, 1]
    while size > 0:
        pos = (head + size - 1) & m
        if dq[k, 2 + cap + pos] <= x:
            size -= 1
        else:
            break
    pos = (head + size) & m
    dq[k, 2 + pos] = t
    dq[k, 2 + cap + pos] = x
    size += 1
    while dq[k, 2 + head] <= t - window:
        head = (head + 1) & m
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
def sorted_replace(buf: np.ndarray, n: int, old: int, new: int) -> None:
    """Replace one occurrence of `old` by `new` in sorted ``buf[:n]`` in one pass.

    The hole left by `old` (found by a branch-free count, which the compiler vectorises) moves
    towards `new`'s place; only the elements in between shift (about n/3 on average).
    """
    pos = 0
    for i in range(n):
        pos += buf[i] < old
    if new > old:
        while pos + 1 < n and buf[pos + 1] < new:
            buf[pos] = buf[pos + 1]
            pos += 1
    else:
        while pos > 0 and buf[pos - 1] > new:
            buf[pos] = buf[pos - 1]
            pos -= 1
    buf[pos] = new


@njit(cache=True, inline="always")
def sorted_median(buf: np.ndarray, n: int) -> float:
    """Median of sorted ``buf[:n]`` (mean of the two middle values when n is even)."""
    h = n >> 1
    if n & 1:
        return float(buf[h])
    return 0.5 * (float(buf[h - 1]) + float(buf[h]))
