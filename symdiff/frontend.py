"""The declaration vocabulary: leaves (var, param, const) and one builder per primitive.

Builders check and normalize their arguments (axes, shapes, dtypes, Python scalars) and call
``Node.make``. Python scalars are weak: ``x32 * 0.5`` stays float32 (NumPy 2 / NEP 50).
"""
import builtins
import numbers

import numpy as np

from . import dtypes as dt
from .dims import Dim, dim, normalize_shape
from .errors import DTypeError, ShapeError
from .graph import ConstValue, Node, VarInfo
from .ops import Op


# --- leaves ------------------------------------------------------------------------------
def var(name, shape=(), dtype="float64"):
    """A named input. ``None`` in the shape is a size bound at call time; a string names a
    size shared by every var that uses the same name.

    >>> import symdiff as sd
    >>> x = sd.var("x", shape=(None, 64))
    >>> x.shape, x.dtype
    ((None, 64), 'float64')
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"var: the name must be a non-empty string, got {name!r}")
    shape = normalize_shape(shape, f"var {name!r}: shape")
    return Node.make(Op.VAR, (), VarInfo(name, shape, dt.canonical(dtype, f"var {name!r}"),
                                         False))


def param(name, shape=(), dtype="float64"):
    """A trainable input (a var tagged as a parameter, e.g. for ``updates`` and the models).

    >>> import symdiff as sd
    >>> W = sd.param("W", shape=(64, 10))
    >>> W.trainable
    True
    """
    v = var(name, shape, dtype)
    return Node.make(Op.VAR, (), VarInfo(v.arg.name, v.arg.shape, v.arg.dtype, True))


def const(value, dtype=None):
    """A constant array (ints become int64; dtype defaults to the value's own).

    >>> import symdiff as sd
    >>> sd.const([1.0, 2.0]).shape
    (2,)
    """
    a = np.asarray(value)
    target = dt.canonical(dtype, "const") if dtype is not None else dt.from_array(a)
    if dtype is not None and not np.can_cast(a.dtype, target, "same_kind") and a.size:
        raise DTypeError(f"const: cannot represent values of dtype {a.dtype} as {target}")
    return Node.make(Op.CONST, (), ConstValue(a.astype(target)))


def size_of(d, dtype="float64"):
    """A scalar node holding the run-time size of dim ``d`` (an int, a Dim or a dim name)."""
    if isinstance(d, int):
        return const(d, dtype)
    d = dim(d) if isinstance(d, str) else d
    return Node.make(Op.DIM, (), (d, dt.canonical(dtype)))


def as_node(x, like=None):
    """Lift a Python scalar (weakly typed, next to a node of dtype ``like``) or an array."""
    if isinstance(x, Node):
        return x
    if isinstance(x, (bool, int, float)) and not isinstance(x, np.generic):
        return const(x, dt.weak_scalar_dtype(x, like or dt.FLOAT64))
    if isinstance(x, (np.ndarray, np.generic, list, tuple, numbers.Number)):
        return const(x)
    raise TypeError(f"cannot use a {type(x).__name__} as a symdiff operand")


def _pair(a, b):
    a_node, b_node = isinstance(a, Node), isinstance(b, Node)
    if not a_node and not b_node:
        raise TypeError("at least one operand must be a symdiff node")
    like = a.dtype if a_node else b.dtype
    return as_node(a, like), as_node(b, like)


# --- elementwise -------------------------------------------------------------------------
def _unary(op, x, arg=None):
    return Node.make(op, (as_node(x),), arg)


def _binary(op, a, b):
    return Node.make(op, _pair(a, b))


def neg(x): return _unary(Op.NEG, x)
def exp(x): return _unary(Op.EXP, x)
def log(x): return _unary(Op.LOG, x)
def log1p(x): return _unary(Op.LOG1P, x)
def expm1(x): return _unary(Op.EXPM1, x)
def sqrt(x): return _unary(Op.SQRT, x)
def tanh(x): return _unary(Op.TANH, x)
def sin(x): return _unary(Op.SIN, x)
def cos(x): return _unary(Op.COS, x)
def abs(x): return _unary(Op.ABS, x)          # noqa: A001  (the public name is sd.abs)
def sign(x): return _unary(Op.SIGN, x)
def sigmoid(x): return _unary(Op.SIGMOID, x)  # 1 / (1 + exp(-x)), stable for all x
def softplus(x): return _unary(Op.SOFTPLUS, x)  # log(1 + exp(x)), stable for all x
def stop_gradient(x): return _unary(Op.STOP_GRADIENT, x)
def add(a, b): return _binary(Op.ADD, a, b)
def sub(a, b): return _binary(Op.SUB, a, b)
def mul(a, b): return _binary(Op.MUL, a, b)
def div(a, b): return _binary(Op.DIV, a, b)
def pow(a, b): return _binary(Op.POW, a, b)   # noqa: A001
def maximum(a, b): return _binary(Op.MAXIMUM, a, b)
def minimum(a, b): return _binary(Op.MINIMUM, a, b)
def less(a, b): return _binary(Op.LT, a, b)
def less_equal(a, b): return _binary(Op.LE, a, b)
def greater(a, b): return _binary(Op.GT, a, b)
def greater_equal(a, b): return _binary(Op.GE, a, b)
def equal(a, b): return _binary(Op.EQ, a, b)
def not_equal(a, b): return _binary(Op.NE, a, b)


# --- special functions: scipy.special semantics; integer inputs promote to float64 --------
def lgamma(x):
    """log|Gamma(x)| (scipy.special.gammaln); lgamma' = digamma. Poles x = 0, -1, ... -> inf.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.lgamma(x), {x: np.array([1.0, 5.0])})        # log 0!, log 4!
    array([0.        , 3.17805383])
    """
    return _unary(Op.LGAMMA, x)


def digamma(x):
    """psi(x) = Gamma'(x) / Gamma(x) = d lgamma(x) / dx (scipy.special.psi); psi' = polygamma(1, x).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.digamma(x), {x: np.array([1.0, 2.0])})       # -gamma, 1 - gamma
    array([-0.57721566,  0.42278434])
    """
    return _unary(Op.DIGAMMA, x)


def polygamma(n, x):
    """psi^(n)(x), the n-th derivative of digamma (scipy.special.polygamma): polygamma(0, x) is
    digamma(x), and d/dx polygamma(n, x) = polygamma(n + 1, x), so every order differentiates.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.polygamma(1, x), {x: np.array([1.0, 2.0])})  # pi^2/6, pi^2/6 - 1
    array([1.64493407, 0.64493407])
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"polygamma: the order n must be an int >= 0, got {n!r}")
    return digamma(x) if n == 0 else _unary(Op.POLYGAMMA, x, int(n))


def erf(x):
    """erf(x) = 2/sqrt(pi) int_0^x exp(-t^2) dt; erf'(x) = 2/sqrt(pi) exp(-x^2).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.erf(x), {x: np.array([0.0, 1.0])})
    array([0.        , 0.84270079])
    """
    return _unary(Op.ERF, x)


def erfc(x):
    """erfc(x) = 1 - erf(x), with full relative accuracy where erf(x) rounds to 1.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.erfc(x), {x: np.array([0.0, 10.0])})
    array([1.00000000e+00, 2.08848758e-45])
    """
    return _unary(Op.ERFC, x)


def log_ndtr(x):
    """log Phi(x) = log(erfc(-x / sqrt 2) / 2), the log of the standard normal CDF
    (scipy.special.log_ndtr): finite for every finite x, where log(Phi(x)) is -inf below
    x = -37.7; its derivative exp(-x^2/2 - log_ndtr(x)) / sqrt(2 pi) never divides by Phi(x).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.log_ndtr(x), {x: np.array([-1.0, -40.0])})
    array([  -1.84102165, -804.60844201])
    """
    return _unary(Op.LOG_NDTR, x)


def cast(x, dtype):
    """Convert to ``dtype`` (numpy ``astype`` semantics)."""
    x = as_node(x)
    dtype = dt.canonical(dtype, "cast")
    return x if x.dtype == dtype else _unary(Op.CAST, x, dtype)


def where(cond, a, b):
    """``a`` where ``cond`` is true, else ``b`` (broadcast); the derivative flows to the taken side."""
    cond = as_node(cond)
    if not isinstance(a, Node) and not isinstance(b, Node):
        a = as_node(a)
    a, b = _pair(a, b)
    return Node.make(Op.WHERE, (cond, a, b))


# --- reductions --------------------------------------------------------------------------
def normalize_axes(axis, ndim, what):
    """Axes as a sorted tuple of negative ints; None means all axes."""
    if axis is None:
        return tuple(range(-ndim, 0))
    axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    out = []
    for a in axes:
        a = int(a)
        if not -ndim <= a < ndim:
            raise ShapeError(f"{what}: axis {a} is out of range for a {ndim}-d input")
        out.append(a - ndim if a >= 0 else a)
    if len(set(out)) != len(out):
        raise ShapeError(f"{what}: repeated axis in {axis!r}")
    return tuple(sorted(out))


def _reduce(op, x, axis, keepdims):
    x = as_node(x)
    axes = normalize_axes(axis, x.ndim, f"{op.value} of `{x.name}` {x.shape}")
    if not axes and not keepdims:
        return x
    return Node.make(op, (x,), (axes, builtins.bool(keepdims)))


def sum(x, axis=None, keepdims=False):  # noqa: A001
    """Sum over ``axis`` (int, tuple or None for all), numpy semantics."""
    return _reduce(Op.SUM, x, axis, keepdims)


def max(x, axis=None, keepdims=False):  # noqa: A001
    """Maximum over ``axis``; its derivative flows to one argmax (the first)."""
    return _reduce(Op.MAX, x, axis, keepdims)


def argmax_mask(x, axis=None):
    """Bool mask with True at the first maximum of each slice over ``axis``."""
    x = as_node(x)
    return Node.make(Op.ARGMAX_MASK, (x,), normalize_axes(axis, x.ndim, "argmax_mask"))


# --- linear algebra and movement ---------------------------------------------------------
def matmul(a, b):
    """numpy.matmul: vector and matrix cases, and batched matmul with broadcast batch dims."""
    return Node.make(Op.MATMUL, _pair(a, b))


def transpose(x, axes=None):
    """Permute axes (reverse them when ``axes`` is None), numpy semantics."""
    x = as_node(x)
    perm = tuple(range(x.ndim))[::-1] if axes is None else tuple(
        int(a) % x.ndim if x.ndim else int(a) for a in axes)
    if perm == tuple(range(x.ndim)):
        return x
    return Node.make(Op.TRANSPOSE, (x,), perm)


def matrix_transpose(x):
    """Swap the last two axes."""
    x = as_node(x)
    if x.ndim < 2:
        raise ShapeError(f"matrix_transpose: `{x.name}` has shape {x.shape}; needs 2 or more dims")
    perm = tuple(range(x.ndim - 2)) + (x.ndim - 1, x.ndim - 2)
    return Node.make(Op.TRANSPOSE, (x,), perm)


def _resolve_minus_one(x, target):
    """Infer the -1 entry of a reshape target from the input's ints and symbols."""
    known = [d for d in target if d != -1]
    pin = int(np.prod([d for d in x.shape if isinstance(d, int)], dtype=np.int64))
    pout = int(np.prod([d for d in known if isinstance(d, int)], dtype=np.int64))
    left = [d for d in x.shape if isinstance(d, Dim)]
    for d in known:
        if isinstance(d, Dim) and d in left:
            left.remove(d)
    if not left and pout and pin % pout == 0:
        fill = pin // pout
    elif len(left) == 1 and pin == pout:
        fill = left[0]
    else:
        raise ShapeError(f"reshape: cannot infer -1 in {target} from `{x.name}` of shape "
                         f"{x.shape}")
    return tuple(fill if d == -1 else d for d in target)


def reshape(x, shape):
    """Reshape (numpy semantics, C order); one entry may be -1; symbolic dims must carry over."""
    x = as_node(x)
    target = tuple(dim(d) if isinstance(d, str) else (d if isinstance(d, Dim) else int(d))
                   for d in ((shape,) if isinstance(shape, (int, str, Dim)) else shape))
    if builtins.sum(1 for d in target if d == -1) > 1:
        raise ShapeError(f"reshape: more than one -1 in {target}")
    if -1 in [d for d in target if isinstance(d, int)]:
        target = _resolve_minus_one(x, target)
    if target == x.shape:
        return x
    return Node.make(Op.RESHAPE, (x,), target)


def broadcast_to(x, shape):
    """Broadcast to ``shape`` (numpy semantics; symbolic dims allowed)."""
    x = as_node(x)
    target = normalize_shape(shape, "broadcast_to shape") if not isinstance(shape, tuple) or any(
        d is None or isinstance(d, str) for d in shape) else tuple(shape)
    if target == x.shape:
        return x
    return Node.make(Op.BROADCAST_TO, (x,), target)


# --- indexing ----------------------------------------------------------------------------
def take_rows(x, idx):
    """``x[..., idx[...]]``: one index per row along the last axis (e.g. integer class labels);
    the leading dims of x broadcast against idx. (``sd.take`` is numpy.take.)

    >>> import symdiff as sd, numpy as np
    >>> z = sd.var("z", (2, 3)); y = sd.var("y", (2,), dtype="int64")
    >>> sd.evaluate(sd.take_rows(z, y), {z: np.arange(6.0).reshape(2, 3), y: np.array([2, 0])})
    array([2., 3.])
    """
    x, idx = as_node(x), as_node(idx)
    return Node.make(Op.TAKE, (x, idx))


def one_hot(idx, depth, dtype="float64"):
    """One-hot encoding of integer labels: shape idx.shape + (depth,)."""
    idx = as_node(idx)
    if not isinstance(depth, (int, np.integer)) or depth <= 0:
        raise ShapeError(f"one_hot: depth must be a positive int, got {depth!r}")
    return Node.make(Op.ONE_HOT, (idx,), (int(depth), dt.canonical(dtype)))
