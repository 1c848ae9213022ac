"""Call-time checks shared by every backend: argument count, dtypes, shapes and symbolic dims.

``dim_constraints`` re-derives from a graph which symbolic dims must be equal (or pinned to a
size); ``Signature.bind`` binds each class of equal dims to one size across all arguments and
reports a mismatch naming both arguments and sizes.
"""
import numpy as np

from .dims import Dim, DimConstraints, shape_str
from .errors import ArgumentError
from .graph import toposort
from .ops import BINARY, COMPARE, Op
from .printing import label
from .shapes import unmatched_symbols


def _align(shapes, ndim):
    return [(None,) * (ndim - len(s)) + tuple(s) for s in shapes]


def _link_axes(cons, shapes, reason):
    """Unify, axis by axis (right-aligned), all dims of ``shapes`` that are not 1."""
    ndim = max((len(s) for s in shapes), default=0)
    for column in zip(*_align(shapes, ndim)):
        dims = [d for d in column if d is not None and d != 1]
        for d in dims[1:]:
            cons.unify(dims[0], d, reason)


def _link_equal(cons, shapes, reason):
    """Unify the dims of ``shapes`` (all of one rank) axis by axis."""
    for column in zip(*shapes):
        for d in column[1:]:
            cons.unify(column[0], d, reason)


def dim_constraints(nodes):
    """The equalities between dims that the ops of ``nodes`` (topologically ordered) require."""
    cons = DimConstraints()
    for n in nodes:
        op, src = n.op, n.src
        if op in BINARY or op in COMPARE or op is Op.WHERE or op is Op.FN:
            _link_axes(cons, [s.shape for s in src] + [n.shape], n)
        elif op is Op.MATMUL:
            a, b = src
            cons.unify(a.shape[-1], b.shape[-2] if b.ndim >= 2 else b.shape[0], n)
            _link_axes(cons, [a.shape[:-2], b.shape[:-2]], n)
        elif op is Op.BROADCAST_TO:
            _link_axes(cons, [src[0].shape, n.shape], n)
        elif op is Op.RESHAPE:
            for a, b in zip(*unmatched_symbols(src[0].shape, n.shape)):
                cons.unify(a, b, n)
        elif op is Op.TAKE:
            _link_axes(cons, [src[0].shape[:-1], src[1].shape, n.shape], n)
        elif op is Op.CONCAT:
            _link_equal(cons, [s.shape[:n.arg] + s.shape[n.arg + 1:] if n.arg != -1 else
                               s.shape[:-1] for s in src + (n,)], n)
        elif op in (Op.GATHER, Op.SCATTER_ADD):
            batch = n.arg[1]
            _link_equal(cons, [src[0].shape[:batch], src[1].shape[:batch]], n)
            if op is Op.SCATTER_ADD:
                axis, x, idx = n.arg[0], src[0], src[1]
                _link_equal(cons, [x.shape[:axis] + idx.shape[batch:] + x.shape[axis + 1:],
                                   src[2].shape], n)
    return cons


def _coerce(value, node, where):
    """``value`` as an array of ``node``'s dtype (safe casts only), or ArgumentError."""
    want = node.dtype
    if isinstance(value, (np.ndarray, np.generic)):
        arr = np.asarray(value)
        if arr.dtype.name == want:
            return arr
        if np.can_cast(arr.dtype, want, "safe"):
            return arr.astype(want)
        raise ArgumentError(f"{where}: expected dtype {want}, got {arr.dtype} "
                            f"(convert it with .astype(np.{want}))")
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError) as e:
        raise ArgumentError(f"{where}: cannot convert {type(value).__name__} to an array: {e}")
    if arr.dtype.kind not in "biuf":
        raise ArgumentError(f"{where}: expected numbers of dtype {want}, got {arr.dtype}")
    kinds = {"bool": "b", "int64": "biu", "float32": "biuf", "float64": "biuf"}[want]
    if arr.dtype.kind not in kinds:
        raise ArgumentError(f"{where}: expected dtype {want}, got {arr.dtype}")
    return arr.astype(want)


class Signature:
    """The inputs of a compiled function and the dim equalities its graph requires."""

    def __init__(self, inputs, outputs):
        self.inputs = list(inputs)
        self.names = [label(v) for v in self.inputs]
        self.cons = dim_constraints(toposort(list(outputs) + self.inputs))

    def where(self, i):
        return f"argument {self.names[i]!r} (position {i})"

    def bind(self, args):
        """Arrays for ``args`` and the size of every symbolic dim; ArgumentError on misfit."""
        if len(args) != len(self.inputs):
            raise ArgumentError(f"expected {len(self.inputs)} arguments "
                                f"({', '.join(self.names)}), got {len(args)}")
        arrays = [_coerce(a, v, self.where(i)) for i, (a, v) in enumerate(zip(args, self.inputs))]
        sizes = {}
        for i, (arr, v) in enumerate(zip(arrays, self.inputs)):
            self._bind_shape(i, arr, v, sizes)
        return arrays, _Sizes(self.cons, sizes)

    def _bind_shape(self, i, arr, v, sizes):
        if arr.ndim != v.ndim:
            raise ArgumentError(f"{self.where(i)}: expected a {v.ndim}-d array of shape "
                                f"{shape_str(v.shape)}, got shape {arr.shape}")
        for axis, (d, n) in enumerate(zip(v.shape, arr.shape)):
            if isinstance(d, int):
                if d != n:
                    raise ArgumentError(f"{self.where(i)}: expected shape {shape_str(v.shape)}, "
                                        f"got {arr.shape} (axis {axis} differs)")
                continue
            root = self.cons.find(d)
            if root in sizes and sizes[root][0] != n:
                m, j, ax = sizes[root]
                raise ArgumentError(
                    f"size mismatch for dim {d!r}: {self.where(i)} has {n} at axis {axis} but "
                    f"{self.where(j)} has {m} at axis {ax}")
            pinned = self.cons.value.get(root)
            if pinned is not None and pinned[0] != n:
                raise ArgumentError(
                    f"{self.where(i)}: axis {axis} has size {n} but must be {pinned[0]} "
                    f"to match `{label(pinned[1], 3)}`")
            sizes[root] = (n, i, axis)


class _Sizes:
    """Run-time sizes of symbolic dims, looked up through the equality classes."""

    def __init__(self, cons, sizes):
        self.cons, self.sizes = cons, sizes

    def __getitem__(self, d):
        if isinstance(d, int):
            return d
        root = self.cons.find(d)
        if root in self.sizes:
            return self.sizes[root][0]
        if root in self.cons.value:
            return self.cons.value[root][0]
        raise ArgumentError(f"no argument binds the size of dim {d!r}")

    def shape(self, shape):
        return tuple(self[d] if isinstance(d, Dim) else d for d in shape)
