"""Composites of the tensor language: joining and splitting, and structured matrices.

Each is built from primitives (slice, pad, concatenate, gather, iota, where...) and needs no
derivative rule of its own. NumPy's signatures and conventions.
"""
import builtins

import numpy as np

from .dims import Dim
from .errors import ShapeError
from .frontend import as_node, broadcast_to, cast, equal, reshape, transpose, where
from .frontend import sum as _sum
from .graph import Node
from .ops import Op
from .tensor import _axis, concatenate, iota, pad_axes, slice_axes


def _expand(x, a):
    return reshape(x, x.shape[:a] + (1,) + x.shape[a:])


def stack(arrays, axis=0):
    """Join arrays of one shape along a new axis (numpy.stack).

    >>> import symdiff as sd, numpy as np
    >>> a = sd.var("a", (2,))
    >>> sd.evaluate(sd.stack([a, 2 * a], axis=1), {a: np.ones(2)}).tolist()
    [[1.0, 2.0], [1.0, 2.0]]
    """
    parts = [as_node(a) for a in arrays]
    if not parts:
        raise ShapeError("stack: needs at least one array")
    a = _axis(axis, parts[0].ndim + 1, "stack")
    if any(p.ndim != parts[0].ndim for p in parts):
        raise ShapeError("stack: all inputs must have the same shape, got "
                         f"{[p.shape for p in parts]}")
    return concatenate([_expand(p, a) for p in parts], a)


def split(x, indices_or_sections, axis=0):
    """Split ``x`` into pieces along ``axis`` (numpy.split): a number of equal sections or
    the sorted indices where pieces start. Each piece is a slice (its derivative a zero pad).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (5,))
    >>> [p.shape for p in sd.split(x, [2, 3])]
    [(2,), (1,), (2,)]
    """
    x = as_node(x)
    a = _axis(axis, x.ndim, "split")
    n = x.shape[a]
    if isinstance(n, Dim):
        raise ShapeError(f"split: axis {a} of `{x.name}` has the symbolic size {n!r}")
    if isinstance(indices_or_sections, (int, np.integer)):
        k = int(indices_or_sections)
        if k <= 0 or n % k:
            raise ShapeError(f"split: {n} elements do not split into {k} equal sections")
        cuts = [i * (n // k) for i in range(1, k)]
    else:
        cuts = [builtins.min(builtins.max(int(c) + (n if c < 0 else 0), 0), n)
                for c in indices_or_sections]
    bounds = [0] + cuts + [n]
    return [_range(x, a, lo, builtins.max(hi, lo)) for lo, hi in zip(bounds, bounds[1:])]


def _range(x, a, lo, hi):
    spec = [None] * x.ndim
    spec[a] = (lo, 1, hi - lo)
    return slice_axes(x, spec)


def pad(x, pad_width, mode="constant", constant_values=0):
    """numpy.pad with ``mode="constant"``: ``pad_width`` is an int, (before, after), or one
    (before, after) pair per axis. The derivative is the slice of the unpadded part.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.pad(x, (1, 2)), {x: np.ones(2)}).tolist()
    [0.0, 1.0, 1.0, 0.0, 0.0]
    """
    x = as_node(x)
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    w = np.asarray(pad_width, dtype=np.int64)
    if w.size and w.min() < 0:
        raise ShapeError(f"pad: pad widths must be >= 0, got {pad_width!r}")
    try:
        w = np.broadcast_to(w.reshape(-1, 2) if w.ndim == 1 and w.size == 2 else w, (x.ndim, 2))
    except ValueError:
        raise ShapeError(f"pad: pad_width {pad_width!r} does not fit a {x.ndim}-d input") \
            from None
    return pad_axes(x, [(lo, hi, 0) for lo, hi in w.tolist()], constant_values)


def tile(x, reps):
    """numpy.tile: ``x`` repeated ``reps`` times along each axis (a broadcast and a reshape)."""
    x = as_node(x)
    reps = (reps,) if isinstance(reps, (int, np.integer)) else tuple(reps)
    nd = builtins.max(x.ndim, len(reps))
    reps = (1,) * (nd - len(reps)) + tuple(int(r) for r in reps)
    x = reshape(x, (1,) * (nd - x.ndim) + x.shape)
    inter = tuple(v for r, d in zip(reps, x.shape) for v in (r, d))
    spread = broadcast_to(reshape(x, tuple(v for d in x.shape for v in (1, d))), inter)
    return reshape(spread, tuple(_mul(r, d) for r, d in zip(reps, x.shape)))


def repeat(x, repeats, axis=None):
    """numpy.repeat with an int ``repeats``: each element repeated along ``axis``."""
    x = as_node(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    a = _axis(axis, x.ndim, "repeat")
    r = int(repeats)
    wide = broadcast_to(_expand(x, a + 1), x.shape[:a + 1] + (r,) + x.shape[a + 1:])
    return reshape(wide, x.shape[:a] + (_mul(r, x.shape[a]),) + x.shape[a + 1:])


def _mul(r, d):
    if r == 1:
        return d
    if isinstance(d, Dim):
        raise ShapeError(f"tile/repeat: cannot repeat the symbolic dim {d!r}")
    return r * d


# --- structured matrices -----------------------------------------------------------------
def _tri_mask(x, k, lower):
    """row + k >= col (lower) or row + k <= col (upper) over the last two axes of x."""
    if x.ndim < 2:
        raise ShapeError(f"tril/triu: `{x.name}` needs at least 2 dims, got {x.shape}")
    shape = x.shape[-2:]
    row, col = iota(shape, 0), iota(shape, 1)
    return row + int(k) >= col if lower else row + int(k) <= col


def tril(m, k=0):
    """Lower triangle: m where col <= row + k, else 0 (numpy.tril, over the last two axes).

    >>> import symdiff as sd, numpy as np
    >>> m = sd.var("m", (2, 2))
    >>> sd.evaluate(sd.tril(m), {m: np.ones((2, 2))}).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """
    m = as_node(m)
    return where(_tri_mask(m, k, True), m, 0)


def triu(m, k=0):
    """Upper triangle: m where col >= row + k, else 0 (numpy.triu, over the last two axes)."""
    m = as_node(m)
    return where(_tri_mask(m, k, False), m, 0)


def eye(n, m=None, k=0, dtype="float64"):
    """Identity-like matrix: 1 where col == row + k (numpy.eye); n, m may be symbolic dims."""
    shape = (n, n if m is None else m)
    return cast(equal(iota(shape, 0) + int(k), iota(shape, 1)), dtype)


def diagonal(x, offset=0, axis1=0, axis2=1):
    """numpy.diagonal: the elements x[..., i, i + offset] over axes (axis1, axis2), as the
    last axis of the result. A gather (its derivative a scatter), not a mask product.

    >>> import symdiff as sd, numpy as np
    >>> m = sd.var("m", (2, 3))
    >>> sd.evaluate(sd.diagonal(m, 1), {m: np.arange(6.0).reshape(2, 3)}).tolist()
    [1.0, 5.0]
    """
    x = as_node(x)
    a1, a2 = _axis(axis1, x.ndim, "diagonal"), _axis(axis2, x.ndim, "diagonal")
    if a1 == a2:
        raise ShapeError("diagonal: axis1 and axis2 must differ")
    rest = tuple(i for i in range(x.ndim) if i not in (a1, a2))
    x = transpose(x, rest + (a1, a2))
    n, m = x.shape[-2:]
    k = int(offset)
    if isinstance(n, Dim) or isinstance(m, Dim):
        if k or n is not m:
            raise ShapeError("diagonal: needs concrete sizes (or one symbolic dim, offset 0)")
        size, r0, c0 = n, 0, 0
    else:
        size = builtins.max(0, builtins.min(n, m - k) if k >= 0 else builtins.min(n + k, m))
        r0, c0 = builtins.max(0, -k), builtins.max(0, k)
        spec = [None] * x.ndim
        spec[-2] = (r0, 1, size)
        x = slice_axes(x, spec)
    lead = x.shape[:-1]
    idx = broadcast_to(reshape(iota((size,), 0) + c0, (size, 1)), lead + (1,))
    out = Node.make(Op.GATHER, (x, idx), (x.ndim - 1, x.ndim - 1))
    return reshape(out, lead)


def diag(v, k=0):
    """numpy.diag: the k-th diagonal of a matrix, or a matrix with ``v`` on its k-th diagonal.

    >>> import symdiff as sd, numpy as np
    >>> v = sd.var("v", (2,))
    >>> sd.evaluate(sd.diag(v), {v: np.array([1.0, 2.0])}).tolist()
    [[1.0, 0.0], [0.0, 2.0]]
    """
    v = as_node(v)
    if v.ndim == 2:
        return diagonal(v, k)
    if v.ndim != 1 or isinstance(v.shape[0], Dim):
        raise ShapeError(f"diag: needs a 1-d (concrete size) or 2-d input, got {v.shape}")
    k = int(k)
    n = v.shape[0] + builtins.abs(k)
    full = pad_axes(v, [(0, builtins.abs(k), 0)])          # v then |k| zeros
    mask = equal(iota((n, n), 0) + k, iota((n, n), 1))
    along = reshape(full, (n, 1)) if k >= 0 else reshape(full, (1, n))   # row i or col j
    return where(mask, broadcast_to(along, (n, n)), 0)


def trace(x, offset=0, axis1=0, axis2=1):
    """Sum of the diagonal (numpy.trace)."""
    return _sum(diagonal(x, offset, axis1, axis2), -1)


# --- products: multiplications only, so derivatives stay exact at zeros (no division) -----
def _along(x, axis, what):
    a = _axis(axis, x.ndim, what)
    if isinstance(x.shape[a], Dim):
        raise ShapeError(f"{what}: axis {a} of `{x.name}` has the symbolic size {x.shape[a]!r}")
    return a


def _part(x, a, start, step, size):
    spec = [None] * x.ndim
    spec[a] = (start, step, size)
    return slice_axes(x, spec)


def prod(x, axis=None, keepdims=False):
    """Product over ``axis`` (numpy.prod) as a tree of pairwise products: log2(n) levels of
    x[0::2] * x[1::2], so the derivative is exact where elements are 0 (no prod / x).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2, 3))
    >>> sd.evaluate(sd.prod(x, axis=1), {x: np.array([[1., 2, 3], [0, 5, 6]])}).tolist()
    [6.0, 0.0]
    """
    x = as_node(x)
    if axis is None:
        out = prod(reshape(x, (-1,)), 0) if x.ndim else x
        return reshape(out, (1,) * x.ndim) if keepdims else out
    a = _along(x, axis, "prod")
    if x.shape[a] == 0:
        return prod(pad_axes(x, [(0, 1, 0) if i == a else (0, 0, 0) for i in range(x.ndim)],
                             1.0), a, keepdims)
    while x.shape[a] > 1:
        n = x.shape[a]
        if n % 2:                                     # an odd count: pad with a 1
            x = pad_axes(x, [(0, 1, 0) if i == a else (0, 0, 0) for i in range(x.ndim)], 1.0)
            n += 1
        x = _part(x, a, 0, 2, n // 2) * _part(x, a, 1, 2, n // 2)
    return x if keepdims else reshape(x, x.shape[:a] + x.shape[a + 1:])


def cumprod(x, axis=None):
    """Inclusive prefix products along ``axis`` (numpy.cumprod), by log2(n) doubling steps
    y <- y * (y shifted by 2^k, padded with 1): multiplications only, exact derivatives at 0.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (4,))
    >>> sd.evaluate(sd.cumprod(x), {x: np.array([1., 2, 0, 3])}).tolist()
    [1.0, 2.0, 0.0, 0.0]
    """
    x = as_node(x)
    if axis is None:
        x, axis = reshape(x, (-1,)), 0
    a = _along(x, axis, "cumprod")
    n, k = x.shape[a], 1
    while k < n:
        shifted = pad_axes(_part(x, a, 0, 1, n - k),
                           [(k, 0, 0) if i == a else (0, 0, 0) for i in range(x.ndim)], 1.0)
        x, k = x * shifted, 2 * k
    return x
