"""NumPy functions on symdiff nodes (NEP 13 ``__array_ufunc__``, NEP 18 ``__array_function__``).

``np.tanh(x)``, ``np.dot(x, W)``, ``np.sum(x, axis=1)``... on nodes build the same graph as the
``sd.`` functions, so a model written with ``import numpy as np`` differentiates (autograd's
habit). Each supported NumPy function is one row of a table below; a NumPy function without a
row, or an argument symdiff does not model (``out=``, ``where=``, ``dtype=`` ...), raises a
TypeError naming the function and the symdiff alternative: never a silent coercion of a node
into an object array.

>>> import numpy as np, symdiff as sd
>>> x, W = sd.var("x", (2, 3)), sd.param("W", (3, 4))
>>> loss = np.mean(np.tanh(np.dot(x, W)) ** 2)           # NumPy spelling, symdiff graph
>>> g = sd.grad(loss, W)
>>> X, Wv = np.ones((2, 3)), np.full((3, 4), 0.1)
>>> bool(np.isclose(sd.evaluate(loss, {x: X, W: Wv}), np.tanh(0.3) ** 2))
True
"""
import numpy as np

from . import composites as C
from .einsum import einsum
from . import frontend as F
from . import joins as J
from . import tensor as T


# ufunc -> symdiff function of the same arity
UFUNCS = {
    np.add: F.add, np.subtract: F.sub, np.multiply: F.mul, np.divide: F.div,
    np.true_divide: F.div, np.power: F.pow, np.negative: F.neg, np.positive: lambda x: x,
    np.exp: F.exp, np.log: F.log, np.log1p: F.log1p, np.expm1: F.expm1, np.sqrt: F.sqrt,
    np.tanh: F.tanh, np.sin: F.sin, np.cos: F.cos, np.absolute: F.abs, np.sign: F.sign,
    np.square: C.square, np.maximum: F.maximum, np.minimum: F.minimum,
    np.logaddexp: C.logaddexp, np.matmul: F.matmul,
    np.less: F.less, np.less_equal: F.less_equal, np.greater: F.greater,
    np.greater_equal: F.greater_equal, np.equal: F.equal, np.not_equal: F.not_equal,
}
# ufunc.reduce -> reduction
REDUCE = {np.add: F.sum, np.maximum: F.max, np.minimum: C.min, np.multiply: J.prod}


def _dot(a, b):
    """numpy.dot: matmul for 1-d and 2-d operands, a product with a scalar."""
    a, b = F.as_node(a), F.as_node(b)
    if a.ndim == 0 or b.ndim == 0:
        return a * b
    if a.ndim > 2 or b.ndim > 2:
        raise TypeError("np.dot of arrays with more than 2 dims sums over the last axis of a "
                        "and the second-to-last of b; write it with sd.einsum (or use "
                        "sd.matmul for a batch of matrix products)")
    return F.matmul(a, b)


def _where(cond, a=None, b=None):
    if a is None or b is None:
        raise TypeError("np.where(cond) (the indices of nonzero entries) has no symbolic "
                        "form: its size depends on the values; use np.where(cond, a, b)")
    return F.where(cond, a, b)


def _reduction(fn):
    def call(a, axis=None, keepdims=False):
        return fn(F.as_node(a), axis=axis, keepdims=keepdims)
    return call


# NumPy function -> (symdiff function, the keyword arguments it takes)
FUNCTIONS = {
    np.dot: (_dot, ()), np.matmul: (F.matmul, ()),
    np.sum: (_reduction(F.sum), ("axis", "keepdims")),
    np.mean: (_reduction(C.mean), ("axis", "keepdims")),
    np.max: (_reduction(F.max), ("axis", "keepdims")),
    np.amax: (_reduction(F.max), ("axis", "keepdims")),
    np.min: (_reduction(C.min), ("axis", "keepdims")),
    np.amin: (_reduction(C.min), ("axis", "keepdims")),
    np.prod: (_reduction(J.prod), ("axis", "keepdims")),
    np.where: (_where, ()),
    np.concatenate: (T.concatenate, ("axis",)), np.stack: (J.stack, ("axis",)),
    np.split: (J.split, ("axis",)), np.einsum: (einsum, ()),
    np.transpose: (F.transpose, ("axes",)), np.reshape: (F.reshape, ("shape",)),
    np.broadcast_to: (F.broadcast_to, ()), np.tril: (J.tril, ("k",)),
    np.triu: (J.triu, ("k",)), np.diagonal: (J.diagonal, ("offset", "axis1", "axis2")),
    np.trace: (J.trace, ("offset", "axis1", "axis2")), np.cumsum: (T.cumsum, ("axis",)),
    np.cumprod: (J.cumprod, ("axis",)), np.flip: (T.flip, ("axis",)),
    np.take: (T.take, ("axis",)), np.take_along_axis: (T.take_along_axis, ("axis",)),
    np.tile: (J.tile, ()), np.repeat: (J.repeat, ("axis",)),
    np.pad: (J.pad, ("mode", "constant_values")), np.argmax: (T.argmax, ("axis",)),
    np.argmin: (T.argmin, ("axis",)), np.clip: (C.clip, ()),
    np.outer: (lambda a, b: F.reshape(a, (-1, 1)) * F.reshape(b, (1, -1)), ()),
}


def _alternative(name):
    import symdiff as sd
    return f"sd.{name}" if hasattr(sd, name) else "the sd. functions (see the README)"


def array_ufunc(ufunc, method, inputs, kwargs):
    """A ufunc called on nodes: the symdiff function of its row, or a TypeError."""
    name = ufunc.__name__
    if kwargs:
        raise TypeError(f"np.{name} on symdiff nodes: the argument(s) "
                        f"{', '.join(sorted(kwargs))} are not supported; call "
                        f"{_alternative(name)} without them")
    if method == "__call__" and ufunc in UFUNCS:
        return UFUNCS[ufunc](*inputs)
    if method == "reduce" and ufunc in REDUCE:
        return REDUCE[ufunc](F.as_node(inputs[0]), axis=0)
    what = f"np.{name}" if method == "__call__" else f"np.{name}.{method}"
    raise TypeError(f"{what} has no symdiff form; use {_alternative(name)} or build it from "
                    f"sd. functions")


def array_function(func, args, kwargs):
    """A NumPy function called with a node among its arguments."""
    name = getattr(func, "__name__", str(func))
    module = getattr(func, "__module__", "numpy") or "numpy"
    if module.startswith("numpy.") and not module.startswith("numpy._"):
        name = module[len("numpy."):] + "." + name          # np.linalg.inv
    if func not in FUNCTIONS:
        raise TypeError(f"np.{name} on symdiff nodes is not supported; use "
                        f"{_alternative(name)} (NumPy functions with a symdiff form: "
                        f"{', '.join(sorted(f.__name__ for f in FUNCTIONS))})")
    fn, allowed = FUNCTIONS[func]
    extra = sorted(k for k, v in kwargs.items() if k not in allowed and v is not None and
                   not (k == "keepdims" and v is False))
    if extra:
        raise TypeError(f"np.{name} on symdiff nodes: the argument(s) {', '.join(extra)} are "
                        f"not supported (symdiff takes {', '.join(allowed) or 'none'})")
    return fn(*args, **{k: v for k, v in kwargs.items() if k in allowed})
