"""The tensor language: slicing, joining, gather/scatter, scans and the structured matrices.

Builders for the primitives IOTA, SLICE, PAD, FLIP, CONCAT, GATHER, SCATTER_ADD, CUMSUM and
ARGMAX, and composites built from them (stack, split, tile, repeat, tril, triu, eye, diagonal,
diag, trace, take_along_axis, segment_sum, argmin). NumPy's conventions throughout: negative
axes and indices count from the end, ``axis=None`` flattens where NumPy's does.

>>> import symdiff as sd, numpy as np
>>> x = sd.var("x", (5,))
>>> r = sd.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)   # Rosenbrock
>>> float(sd.evaluate(r, {x: np.ones(5)}))
0.0
"""
import builtins

import numpy as np

from . import dtypes as dt
from .dims import shape_str
from .errors import ShapeError
from .frontend import as_node, broadcast_to, cast, const, reshape, transpose
from .graph import Node
from .ops import Op


def _axis(axis, ndim, what):
    """A non-negative axis, or ShapeError naming the call."""
    if not isinstance(axis, (int, np.integer)) or not -ndim <= axis < ndim:
        raise ShapeError(f"{what}: axis {axis!r} is out of range for a {ndim}-d input")
    return int(axis) % ndim


def _flatten(x):
    return reshape(x, (-1,)) if x.ndim != 1 else x


# --- primitives --------------------------------------------------------------------------
def iota(shape, axis, dtype="int64"):
    """The index along ``axis`` at every point of ``shape``: iota((2, 3), 1) = [[0, 1, 2]] * 2.

    >>> import symdiff as sd
    >>> sd.evaluate(sd.iota((2, 3), 1), {}).tolist()
    [[0, 1, 2], [0, 1, 2]]
    """
    shape = tuple(shape)
    return Node.make(Op.IOTA, (), (shape, _axis(axis, len(shape), "iota"),
                                   dt.canonical(dtype)))


def slice_axes(x, spec):
    """x sliced by ``spec``: per axis None (all of it) or (start, step, size), step >= 1."""
    spec = tuple(spec)
    if all(s is None or (s[0] == 0 and s[1] == 1 and s[2] == x.shape[i])
           for i, s in enumerate(spec)):
        return x
    return Node.make(Op.SLICE, (x,), spec)


def pad_axes(x, widths, value=0.0):
    """x padded with ``value``: per axis (before, after, interior) counts of inserted values."""
    widths = tuple((int(a), int(b), int(c)) for a, b, c in widths)
    if not builtins.any(builtins.any(w) for w in widths):
        return x
    return Node.make(Op.PAD, (x,), (widths, float(value) if dt.is_float(x.dtype) else
                                    int(value)))


def flip(x, axis=None):
    """Reverse the order of elements along ``axis`` (all axes when None), numpy.flip.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (3,))
    >>> sd.evaluate(sd.flip(x), {x: np.arange(3.0)}).tolist()
    [2.0, 1.0, 0.0]
    """
    x = as_node(x)
    axes = range(x.ndim) if axis is None else (
        (axis,) if isinstance(axis, (int, np.integer)) else axis)
    axes = tuple(sorted({_axis(a, x.ndim, "flip") - x.ndim for a in axes}))
    axes = tuple(a for a in axes if x.shape[a] != 1)
    return Node.make(Op.FLIP, (x,), axes) if axes else x


def concatenate(arrays, axis=0):
    """Join arrays along an existing axis (numpy.concatenate); dtypes promote as in NumPy.

    >>> import symdiff as sd, numpy as np
    >>> a, b = sd.var("a", (2,)), sd.var("b", (1,))
    >>> sd.evaluate(sd.concatenate([a, b]), {a: np.zeros(2), b: np.ones(1)}).tolist()
    [0.0, 0.0, 1.0]
    """
    parts = [as_node(a) for a in arrays]
    if not parts:
        raise ShapeError("concatenate: needs at least one array")
    if axis is None:
        return concatenate([_flatten(p) for p in parts], 0)
    if parts[0].ndim == 0:
        raise ShapeError("concatenate: zero-dimensional arrays cannot be concatenated")
    a = _axis(axis, parts[0].ndim, "concatenate") - parts[0].ndim
    parts = [p for p in parts if p.shape[a] != 0] or parts[:1]     # empty parts add nothing
    if len(parts) == 1:
        return parts[0]
    return Node.make(Op.CONCAT, tuple(parts), a)


def take(x, idx, axis=None):
    """numpy.take: ``x`` indexed by the integer array ``idx`` along ``axis`` (None: the
    flattened x). The result has shape x.shape[:axis] + idx.shape + x.shape[axis+1:].
    Negative indices count from the end; others out of range raise (in every backend).
    Its derivative is a scatter-add: O(number of indices), no one-hot matrix.

    >>> import symdiff as sd, numpy as np
    >>> cams = sd.var("cams", (3, 2)); obs = np.array([2, 0, 2, -1])
    >>> sd.evaluate(sd.take(cams, obs, axis=0), {cams: np.arange(6.0).reshape(3, 2)})[:, 0]
    array([4., 0., 4., 4.])
    """
    x, idx = as_node(x), _index(idx, "take")
    if axis is None:
        x, axis = _flatten(x), 0
    return Node.make(Op.GATHER, (x, idx), (_axis(axis, x.ndim, "take"), 0))


def _index(idx, what):
    if isinstance(idx, Node):
        return idx
    arr = np.asarray(idx)
    if arr.dtype.kind not in "iu":
        raise ShapeError(f"{what}: indices must be integers, got dtype {arr.dtype}")
    return const(arr.astype(np.int64))


def take_along_axis(x, idx, axis):
    """numpy.take_along_axis: out[..., j, ...] = x[..., idx[..., j, ...], ...] along ``axis``;
    the other axes of x and idx broadcast.

    >>> import symdiff as sd, numpy as np
    >>> z = sd.var("z", (2, 3)); y = np.array([[2], [0]])
    >>> sd.evaluate(sd.take_along_axis(z, y, 1), {z: np.arange(6.0).reshape(2, 3)}).tolist()
    [[2.0], [3.0]]
    """
    x, idx = as_node(x), _index(idx, "take_along_axis")
    if idx.ndim != x.ndim:
        raise ShapeError(f"take_along_axis: indices must have as many dims as the input "
                         f"({x.ndim}), got shape {shape_str(idx.shape)}")
    a = _axis(axis, x.ndim, "take_along_axis")
    lead = _broadcast_lead(x, idx, a, "take_along_axis")
    xs, ids = _move_last(x, a), _move_last(idx, a)
    xs = broadcast_to(xs, lead + xs.shape[-1:])
    ids = broadcast_to(ids, lead + ids.shape[-1:])
    out = Node.make(Op.GATHER, (xs, ids), (len(lead), len(lead)))
    return _move_back(out, a)


def _broadcast_lead(x, idx, a, what):
    from .dims import broadcast_shapes
    xo = x.shape[:a] + x.shape[a + 1:]
    io = idx.shape[:a] + idx.shape[a + 1:]
    lead = broadcast_shapes(xo, io)
    if lead is None:
        raise ShapeError(f"{what}: the input {shape_str(x.shape)} and the indices "
                         f"{shape_str(idx.shape)} do not broadcast off axis {a}")
    return lead


def _move_last(x, a):
    return transpose(x, tuple(i for i in range(x.ndim) if i != a) + (a,))


def _move_back(x, a):
    perm = list(range(x.ndim - 1))
    perm.insert(a, x.ndim - 1)
    return transpose(x, tuple(perm))


def scatter_add(x, idx, updates, axis=0):
    """x with ``updates`` added at ``idx`` along ``axis`` (numpy.add.at; repeated indices add
    up): out[:, ..., idx[j], ...] += updates[:, ..., j, ...]. ``updates`` broadcasts to
    x.shape[:axis] + idx.shape + x.shape[axis+1:]. The derivative w.r.t. updates is a gather.

    >>> import symdiff as sd, numpy as np
    >>> u = sd.var("u", (3,))
    >>> sd.evaluate(sd.scatter_add(np.zeros(2), [1, 0, 1], u), {u: np.ones(3)}).tolist()
    [1.0, 2.0]
    """
    x, idx, upd = as_node(x), _index(idx, "scatter_add"), as_node(updates)
    a = _axis(axis, x.ndim, "scatter_add")
    want = x.shape[:a] + idx.shape + x.shape[a + 1:]
    if upd.shape != want:
        upd = broadcast_to(upd, want)
    return Node.make(Op.SCATTER_ADD, (x, idx, upd), (a, 0))


index_add = scatter_add


def segment_sum(data, segment_ids, num_segments):
    """out[s] = sum of data[i] over i with segment_ids[i] == s, for s < num_segments
    (ids out of range raise). data (n, ...), segment_ids (n,) -> (num_segments, ...).

    >>> import symdiff as sd, numpy as np
    >>> d = sd.var("d", (4,))
    >>> sd.evaluate(sd.segment_sum(d, [0, 0, 2, 1], 3), {d: np.arange(4.0)}).tolist()
    [1.0, 3.0, 2.0]
    """
    data = as_node(data)
    ids = _index(segment_ids, "segment_sum")
    if ids.ndim != 1:
        raise ShapeError(f"segment_sum: segment_ids must be 1-d, got {shape_str(ids.shape)}")
    zeros = broadcast_to(const(0, data.dtype), (int(num_segments),) + data.shape[1:])
    return scatter_add(zeros, ids, data, 0)


def cumsum(x, axis=None):
    """Inclusive prefix sums along ``axis`` (None: of the flattened x), numpy.cumsum.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (4,))
    >>> sd.evaluate(sd.cumsum(x), {x: np.arange(4.0)}).tolist()
    [0.0, 1.0, 3.0, 6.0]
    """
    x = as_node(x)
    if axis is None:
        x, axis = _flatten(x), 0
    return Node.make(Op.CUMSUM, (x,), _axis(axis, x.ndim, "cumsum") - x.ndim)


def argmax(x, axis=None):
    """int64 index of the first maximum along ``axis`` (None: of the flattened x); NaN counts
    as the maximum, as in numpy.argmax. Not differentiable (an index).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2, 3))
    >>> sd.evaluate(sd.argmax(x, 1), {x: np.array([[0., 5, 5], [7, 1, 2]])}).tolist()
    [1, 0]
    """
    x = as_node(x)
    if axis is None:
        x, axis = _flatten(x), 0
    return Node.make(Op.ARGMAX, (x,), _axis(axis, x.ndim, "argmax") - x.ndim)


def argmin(x, axis=None):
    """int64 index of the first minimum along ``axis``: argmax(-x)."""
    x = as_node(x)
    return argmax(-(cast(x, "int64") if x.dtype == "bool" else x), axis)
