"""The engines' byte format: exact round trip; damaged bytes are a one-line ValueError, never a wrong state."""

import numpy as np
import pytest

from strategy.state_codec import pack, unpack


def test_round_trip_keeps_dtypes_shapes_and_values():
    arrays = [np.arange(6, dtype=np.int64).reshape(2, 3), np.array([1.5, np.nan]), np.zeros((0, 4), np.int8)]
    meta, got = unpack(pack({"a": 1, "b": "x"}, arrays))
    assert meta == {"a": 1, "b": "x"}
    for a, b in zip(arrays, got):
        assert a.dtype == b.dtype and a.shape == b.shape and np.array_equal(a, b, equal_nan=True)
        assert b.flags.writeable


@pytest.mark.parametrize("damage, message", [
    (lambda b: b"junk" + b, "bad header"),
    (lambda b: b[:-3], "truncated"),
    (lambda b: b + b"\0", "trailing bytes"),
    (lambda b: b[:10] + b"x" + b[11:], "damaged header"),
])
def test_damaged_bytes_are_refused(damage, message):
    blob = pack({"v": 1}, [np.arange(4)])
    with pytest.raises(ValueError, match=message):
        unpack(damage(blob), "signal engine state")
