"""One semantics table, op -> NumPy: the reference interpreter, constant folding and test oracle.

Each entry is ``fn(arg, shape, *values)`` where ``shape`` is the node's concrete output shape.
"""
import numpy as np
from scipy import special

from .errors import ArgumentError
from .ops import Op
from .printing import label

INDEXED = {Op.TAKE: 1, Op.GATHER: 1, Op.SCATTER_ADD: 1, Op.ONE_HOT: 0}   # op -> index source


def _ufunc(f):
    return lambda arg, shape, *v: f(*v)


def _softplus(x):
    # log(1 + exp(x)) = logaddexp(0, x), exact to rounding for every x and dtype-preserving
    return np.logaddexp(np.zeros((), x.dtype), x)


def _polygamma(arg, shape, x):
    """scipy.special.polygamma of order arg, in float64 (float32 results round once). SciPy's
    sum takes time proportional to |x| for x < 0 (0.3 s at x = -1e7)."""
    return special.polygamma(arg, x.astype(np.float64))


def _pow(a, b):
    try:
        return np.power(a, b)
    except ValueError as e:   # numpy refuses negative integer powers of integers
        raise ArgumentError(f"pow: {e}") from None


def _max(arg, shape, x):
    axes, keepdims = arg
    initial = -np.inf if x.dtype.kind == "f" else (
        False if x.dtype.kind == "b" else np.iinfo(x.dtype).min)
    return np.max(x, axis=axes, keepdims=keepdims, initial=initial)


def _check_index(idx, depth, op):
    if idx.size and (idx.min() < 0 or idx.max() >= depth):
        bad = idx.min() if idx.min() < 0 else idx.max()
        raise ArgumentError(f"{op}: index {bad} is out of range for a class axis of size {depth}")


def _take(arg, shape, x, idx):
    c = x.shape[-1]
    _check_index(idx, c, "take")
    xb = np.broadcast_to(x, tuple(shape) + (c,))
    ib = np.broadcast_to(idx, shape)
    return np.take_along_axis(xb, ib[..., None], axis=-1)[..., 0]


def _one_hot(arg, shape, idx):
    depth, dtype = arg
    _check_index(idx, depth, "one_hot")
    return (idx[..., None] == np.arange(depth)).astype(dtype)


def _argmax_mask(arg, shape, x):
    """True at the first maximum (C order) of each slice over the axes ``arg``."""
    n = x.ndim
    axes = [a + n for a in arg]
    rest = [i for i in range(n) if i not in axes]
    moved = np.transpose(x, rest + axes)
    flat = moved.reshape(moved.shape[:len(rest)] + (-1,))
    mask = np.zeros(flat.shape, dtype=bool)
    if flat.shape[-1] and flat.size:
        np.put_along_axis(mask, np.argmax(flat, axis=-1)[..., None], True, axis=-1)
    return np.transpose(mask.reshape(moved.shape), np.argsort(rest + axes))


# --- tensor language ---------------------------------------------------------------------
def _iota(arg, shape):
    _, axis, dtype = arg
    view = [1] * len(shape)
    view[axis] = shape[axis]
    return np.broadcast_to(np.arange(shape[axis], dtype=dtype).reshape(view), shape)


def _slice(arg, shape, x):
    return x[tuple(slice(None) if s is None else slice(s[0], s[0] + s[1] * (s[2] - 1) + 1, s[1])
                   for s in arg)]


def _pad(arg, shape, x):
    widths, value = arg
    out = np.full(shape, value, dtype=x.dtype)
    out[tuple(slice(lo, lo + (d - 1) * (k + 1) + 1, k + 1) if d else slice(lo, lo)
              for (lo, _, k), d in zip(widths, x.shape))] = x
    return out


def _wrap_index(idx, size, op, what="index"):
    """NumPy's negative indices (-size <= i < 0 count from the end); others raise."""
    idx = np.asarray(idx)
    if idx.size and (idx.min() < -size or idx.max() >= size):
        bad = idx.min() if idx.min() < -size else idx.max()
        raise ArgumentError(f"{op}: {what} {bad} is out of range for an axis of size {size} "
                            f"(valid: {-size} to {size - 1})")
    return np.where(idx < 0, idx + size, idx)


def _gather(arg, shape, x, idx):
    axis, batch = arg
    if batch == 0:
        return np.take(x, _wrap_index(idx, x.shape[axis], "take"), axis=axis)
    return x[_batched_key(arg, x.shape, idx, "take")]


def _batched_key(arg, xshape, idx, op):
    """Index tuple for x (B..., A..., n, C...) with idx (B..., J...): out (B..., A..., J..., C...)."""
    axis, batch = arg
    idx = _wrap_index(idx, xshape[axis], op)
    nj = idx.ndim - batch
    a = axis - batch
    out_nd = axis + nj + len(xshape) - axis - 1
    key = []
    for k in range(batch):           # batch axis k sits at output position k
        key.append(np.arange(xshape[k]).reshape((-1,) + (1,) * (out_nd - k - 1)))
    for k in range(batch, axis):     # kept axes of x before the gathered one
        key.append(np.arange(xshape[k]).reshape((-1,) + (1,) * (out_nd - k - 1)))
    j = idx.reshape(idx.shape[:batch] + (1,) * a + idx.shape[batch:] +
                    (1,) * (len(xshape) - axis - 1))
    key.append(j)
    for k in range(axis + 1, len(xshape)):
        pos = axis + nj + (k - axis - 1)
        key.append(np.arange(xshape[k]).reshape((-1,) + (1,) * (out_nd - pos - 1)))
    return tuple(key)


def _scatter_add(arg, shape, x, idx, upd):
    out = np.array(np.broadcast_to(x, shape), dtype=np.result_type(x, upd))
    axis, batch = arg
    if batch == 0:
        key = (slice(None),) * axis + (_wrap_index(idx, shape[axis], "scatter_add"),)
        np.add.at(out, key, upd)
    else:
        key = _batched_key(arg, shape, idx, "scatter_add")
        np.add.at(out, tuple(np.broadcast_arrays(*key)), upd)
    return out


def _argmax(arg, shape, x):
    if x.shape[arg] == 0:
        raise ArgumentError("argmax: the reduced axis is empty")
    return np.argmax(x, axis=arg)


SEMANTICS = {
    Op.NEG: _ufunc(np.negative),
    Op.EXP: _ufunc(np.exp),
    Op.LOG: _ufunc(np.log),
    Op.LOG1P: _ufunc(np.log1p),
    Op.EXPM1: _ufunc(np.expm1),
    Op.SQRT: _ufunc(np.sqrt),
    Op.TANH: _ufunc(np.tanh),
    Op.SIN: _ufunc(np.sin),
    Op.COS: _ufunc(np.cos),
    Op.ABS: _ufunc(np.abs),
    Op.SIGN: _ufunc(np.sign),
    Op.SIGMOID: _ufunc(special.expit),
    Op.SOFTPLUS: _ufunc(_softplus),
    Op.CAST: lambda arg, shape, x: x.astype(arg),
    Op.STOP_GRADIENT: _ufunc(lambda x: x),
    Op.FN: lambda arg, shape, *v: arg.numpy(*v),
    Op.LGAMMA: _ufunc(special.gammaln),
    Op.DIGAMMA: _ufunc(special.psi),
    Op.POLYGAMMA: _polygamma,
    Op.ERF: _ufunc(special.erf),
    Op.ERFC: _ufunc(special.erfc),
    Op.LOG_NDTR: _ufunc(special.log_ndtr),
    Op.ADD: _ufunc(np.add),
    Op.SUB: _ufunc(np.subtract),
    Op.MUL: _ufunc(np.multiply),
    Op.DIV: _ufunc(np.true_divide),
    Op.POW: _ufunc(_pow),
    Op.MAXIMUM: _ufunc(np.maximum),
    Op.MINIMUM: _ufunc(np.minimum),
    Op.LT: _ufunc(np.less),
    Op.LE: _ufunc(np.less_equal),
    Op.GT: _ufunc(np.greater),
    Op.GE: _ufunc(np.greater_equal),
    Op.EQ: _ufunc(np.equal),
    Op.NE: _ufunc(np.not_equal),
    Op.WHERE: _ufunc(np.where),
    Op.SUM: lambda arg, shape, x: np.sum(x, axis=arg[0], keepdims=arg[1]),
    Op.MAX: _max,
    Op.MATMUL: _ufunc(np.matmul),
    Op.TRANSPOSE: lambda arg, shape, x: np.transpose(x, arg),
    Op.RESHAPE: lambda arg, shape, x: np.reshape(x, shape),
    Op.BROADCAST_TO: lambda arg, shape, x: np.broadcast_to(x, shape),
    Op.TAKE: _take,
    Op.ONE_HOT: _one_hot,
    Op.ARGMAX_MASK: _argmax_mask,
    Op.IOTA: lambda arg, shape: _iota(arg, shape),
    Op.SLICE: _slice,
    Op.PAD: _pad,
    Op.FLIP: lambda arg, shape, x: np.flip(x, arg),
    Op.CONCAT: lambda arg, shape, *parts: np.concatenate(parts, axis=arg),
    Op.GATHER: _gather,
    Op.SCATTER_ADD: _scatter_add,
    Op.CUMSUM: lambda arg, shape, x: np.cumsum(x, axis=arg),
    Op.ARGMAX: _argmax,
    Op.SCAN: lambda arg, shape, *v: arg[0].evaluate(v)[arg[1]],
}


def apply(node, values, shape):
    """Evaluate one non-leaf node on NumPy values; the result has exactly the node's dtype."""
    try:
        with np.errstate(all="ignore"):  # overflow to inf, 0/0 to nan: IEEE, as in kernels
            out = SEMANTICS[node.op](node.arg, shape, *values)
    except ArgumentError as e:           # name the index argument and the expression
        if node.op not in INDEXED:
            raise
        idx = node.src[INDEXED[node.op]]
        raise ArgumentError(f"{e}; the indices are `{label(idx)}` in `{label(node, 2)}`") \
            from None
    out = np.asarray(out)
    return out if out.dtype.name == node.dtype else out.astype(node.dtype)
