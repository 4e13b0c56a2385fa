"""`borrow`: a view of a NumPy array inside numba code that skips reference counting.

numba counts references to every array it passes around: a call to a step function that was not
inlined, or an inlined one with branches, costs an atomic increment and decrement of each array
argument (``lock incq``/``lock decq``, about 20 cycles each) per call. In a per-bar loop calling a
handful of step functions with five arrays each, that was 60 % of the trade simulator's time
(docs/performance.md). A borrowed view has a null memory-info pointer, for which numba's
``NRT_incref``/``NRT_decref`` do nothing, so the loop pays a test and a predicted branch instead.

Rule of use: borrow only arrays that something else keeps alive for the whole time the view is
used (the caller's arguments, or a local array still referenced after the loop), and never return
or store the view. Written by hand because numba has no option to mark an array as borrowed.
"""

from __future__ import annotations

from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

__all__ = ["borrow"]


@intrinsic
def borrow(typingctx, arr):
    """The same array (data, shape, strides) without its reference-counted owner."""
    if not isinstance(arr, types.Array):
        return None

    def codegen(context, builder, signature, args):
        src = context.make_array(arr)(context, builder, value=args[0])
        view = context.make_array(arr)(context, builder)
        view.meminfo = cgutils.get_null_value(view.meminfo.type)
        view.parent = cgutils.get_null_value(view.parent.type)
        view.nitems = src.nitems
        view.itemsize = src.itemsize
        view.data = src.data
        view.shape = src.shape
        view.strides = src.strides
        return view._getvalue()

    return arr(arr), codegen
