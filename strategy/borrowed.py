"""Array views inside numba code that skip reference counting: `borrow` (the same array) and the
typed views `int64_view`, `float64_view`, ... (an array laid out inside a byte buffer).

numba counts references to every array it passes around: a call to a step function that was not
inlined, or an inlined one with branches, costs an atomic increment and decrement of each array
argument (``lock incq``/``lock decq``, about 20 cycles each) per call. In a per-bar loop calling a
handful of step functions with five arrays each, that was 60 % of the trade simulator's time
(docs/performance.md). A borrowed view has a null memory-info pointer, for which numba's
``NRT_incref``/``NRT_decref`` do nothing, so the loop pays a test and a predicted branch instead.

The typed views let `strategy.engine` keep all of its state in one byte buffer: one array argument
to unbox per update instead of fifteen.

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


def _typed_view(dtype: types.Type, ndim: int):
    @intrinsic
    def view(typingctx, buf, at, shape):
        """A borrowed C-contiguous `dtype` array of `shape` (an int or a tuple of ints) starting
        `at` bytes into the writeable byte array `buf`; no bounds check: the caller lays the buffer out."""
        if not (isinstance(buf, types.Array) and buf.dtype == types.uint8 and buf.layout == "C" and buf.mutable):
            return None
        out_t = types.Array(dtype, ndim, "C")

        def codegen(context, builder, signature, args):
            src = context.make_array(buf)(context, builder, value=args[0])
            shape_vals = cgutils.unpack_tuple(builder, args[2], ndim) if ndim > 1 else [args[2]]
            itemsize = context.get_constant(types.intp, context.get_abi_sizeof(context.get_data_type(dtype)))
            view = context.make_array(out_t)(context, builder)
            data = builder.gep(src.data, [args[1]])
            data = builder.bitcast(data, view.data.type)
            strides, step = [], itemsize
            for dim in reversed(shape_vals):
                strides.append(step)
                step = builder.mul(step, dim)
            strides.reverse()
            nitems = builder.sdiv(step, itemsize)
            context.populate_array(view, data=data, shape=cgutils.pack_array(builder, shape_vals),
                                   strides=cgutils.pack_array(builder, strides), itemsize=itemsize, meminfo=None)
            view.nitems = nitems
            return view._getvalue()

        shape_t = shape if ndim > 1 else types.intp
        return out_t(buf, types.intp, shape_t), codegen

    return view


# borrowed typed views into a byte buffer (the engine's memory): ``int64_view(buf, at, (rows, cols))``
int64_view = _typed_view(types.int64, 1)
int64_view2 = _typed_view(types.int64, 2)
float64_view = _typed_view(types.float64, 1)
float64_view2 = _typed_view(types.float64, 2)
int8_view2 = _typed_view(types.int8, 2)
__all__ += ["int64_view", "int64_view2", "float64_view", "float64_view2", "int8_view2"]
