"""`strategy.borrowed`: views without reference counting read and write the memory they view."""

from __future__ import annotations

import numpy as np
import pytest
from numba import njit
from numba.core.errors import TypingError

from strategy.borrowed import borrow, float64_view, int8_view2, int64_view, int64_view2


@njit
def _bump_borrowed(a):
    b = borrow(a)
    for i in range(b.shape[0]):
        for j in range(b.shape[1]):
            b[i, j] += i * 10 + j
    return b.sum()


def test_borrowed_view_is_the_same_memory():
    a = np.zeros((3, 4), np.int64)
    total = _bump_borrowed(a)
    np.testing.assert_array_equal(a, np.arange(3)[:, None] * 10 + np.arange(4))
    assert total == a.sum()


@njit
def _write_views(buf):
    hd = int64_view(buf, 0, 2)
    grid = int64_view2(buf, 16, (2, 3))
    f = float64_view(buf, 64, 2)
    flags = int8_view2(buf, 80, (3, 2))
    hd[0], hd[1] = 11, 12
    for i in range(2):
        for j in range(3):
            grid[i, j] = 100 * i + j
    f[0], f[1] = 0.5, -2.25
    for i in range(3):
        for j in range(2):
            flags[i, j] = i - j
    return grid.shape[0] * grid.shape[1], grid.strides[0], flags.size


def test_typed_views_lay_out_like_numpy_views():
    buf = np.zeros(96, np.uint8)
    nitems, row_stride, nflags = _write_views(buf)
    assert (nitems, row_stride, nflags) == (6, 24, 6)
    np.testing.assert_array_equal(buf[:16].view(np.int64), [11, 12])
    np.testing.assert_array_equal(buf[16:64].view(np.int64).reshape(2, 3), [[0, 1, 2], [100, 101, 102]])
    np.testing.assert_array_equal(buf[64:80].view(np.float64), [0.5, -2.25])
    np.testing.assert_array_equal(buf[80:86].view(np.int8).reshape(3, 2), [[0, -1], [1, 0], [2, 1]])
    assert not buf[86:].any()  # nothing written past the views


@njit
def _view_of(buf):
    return int64_view(buf, 0, 1)[0]


def test_typed_views_need_a_contiguous_byte_buffer():
    with pytest.raises(TypingError):
        _view_of(np.zeros(8, np.int64))


def test_typed_views_refuse_a_read_only_buffer():
    buf = np.zeros(8, np.uint8)
    buf.setflags(write=False)
    with pytest.raises(TypingError):
        _view_of(buf)
