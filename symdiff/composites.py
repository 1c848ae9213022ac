"""Composite functions built from primitives; each line states its formula.

They need no derivative rules of their own: their derivative graphs come from the primitives'.
Where a naive formula is unstable the composite is written in its stable form (logsumexp
subtracts the max, elu never evaluates exp of a large positive number, relu'(0) = 0).
"""
import numpy as np

from . import frontend as F
from .dims import Dim


def square(x):
    """x * x."""
    x = F.as_node(x)
    return x * x


def _count(x, axes):
    """The number of elements reduced over ``axes``, as a node (symbolic dims included)."""
    ints = [x.shape[a] for a in axes if isinstance(x.shape[a], int)]
    syms = [x.shape[a] for a in axes if isinstance(x.shape[a], Dim)]
    dtype = x.dtype if x.dtype in ("float32", "float64") else "float64"
    count = F.const(int(np.prod(ints, dtype=np.int64)), dtype)
    for d in syms:
        count = count * F.size_of(d, dtype)
    return count


def mean(x, axis=None, keepdims=False):
    """sum(x) / count over ``axis`` (numpy semantics; symbolic dims are counted at call time).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (None, 2))
    >>> sd.evaluate(sd.mean(x, axis=0), {x: np.array([[1.0, 2.0], [3.0, 6.0]])})
    array([2., 4.])
    """
    x = F.as_node(x)
    axes = F.normalize_axes(axis, x.ndim, "mean")
    s = F.sum(x, axis, keepdims)
    if x.dtype not in ("float32", "float64"):
        s = F.cast(s, "float64")
    return s / _count(x, axes) if axes else s


def min(x, axis=None, keepdims=False):  # noqa: A001
    """-max(-x): minimum over ``axis``; the derivative flows to one argmin."""
    return -F.max(-F.as_node(x), axis, keepdims)


def relu(x):
    """max(0, x), written where(x > 0, x, 0) so that relu'(0) = 0 as in the seeds."""
    return F.where(F.as_node(x) > 0, x, 0)


def leaky_relu(x, alpha=0.01):
    """max(alpha x, x) for 0 < alpha < 1: where(x > 0, x, alpha * x)."""
    x = F.as_node(x)
    return F.where(x > 0, x, alpha * x)


def prelu(x, alpha):
    """Parametric ReLU: where(x > 0, x, alpha * x) with ``alpha`` a (learned) node."""
    x = F.as_node(x)
    return F.where(x > 0, x, alpha * x)


def elu(x, alpha=1.0):
    """x if x > 0 else alpha (exp(x) - 1); expm1 sees min(x, 0) so no inf * 0 enters the gradient."""
    x = F.as_node(x)
    return F.where(x > 0, x, alpha * F.expm1(F.minimum(x, 0)))


def hard_tanh(x):
    """max(-1, min(1, x))."""
    return F.minimum(F.maximum(F.as_node(x), -1), 1)


def abs_rect(x):
    """Absolute-value rectification |x| (the seeds' g(z, alpha=-1))."""
    return F.abs(x)


def log_sigmoid(x):
    """log(sigmoid(x)) = -softplus(-x), finite for all x."""
    return -F.softplus(-F.as_node(x))


def swish(x):
    """x * sigmoid(x)."""
    x = F.as_node(x)
    return x * F.sigmoid(x)


def rbf(x, centers, gamma):
    """RBF units h_i = exp(-gamma_i ||x - c_i||^2): x (..., p), centers (q, p), gamma (q,)."""
    x, centers = F.as_node(x), F.as_node(centers)
    sq = (F.sum(x * x, -1, keepdims=True) - 2 * (x @ centers.T)
          + F.sum(centers * centers, -1))                 # ||x||^2 - 2 x.c + ||c||^2
    return F.exp(-gamma * sq)


def maxout(z, pieces):
    """Maxout units: max over groups of ``pieces`` consecutive features of the last axis."""
    z = F.as_node(z)
    k = z.shape[-1]
    if not isinstance(k, int) or k % pieces:
        raise ValueError(f"maxout: last dim {k} of `{z.name}` is not a multiple of {pieces}")
    return F.max(F.reshape(z, z.shape[:-1] + (k // pieces, pieces)), -1)


def logsumexp(x, axis=-1, keepdims=False):
    """m + log(sum(exp(x - m))) with m = max(x) held constant: never overflows, and its
    derivative is softmax(x).

    >>> import symdiff as sd, numpy as np
    >>> z = sd.var("z", (3,))
    >>> round(float(sd.evaluate(sd.logsumexp(z), {z: np.array([1e4, 1e4, 0.0])})), 6)
    10000.693147
    """
    x = F.as_node(x)
    m = F.stop_gradient(F.max(x, axis, keepdims=True))
    s = F.sum(F.exp(x - m), axis, keepdims)
    return (m if keepdims else F.reshape(m, s.shape)) + F.log(s)


def softmax(x, axis=-1):
    """exp(x - max x) / sum(exp(x - max x))."""
    x = F.as_node(x)
    e = F.exp(x - F.stop_gradient(F.max(x, axis, keepdims=True)))
    return e / F.sum(e, axis, keepdims=True)


def log_softmax(x, axis=-1):
    """x - logsumexp(x)."""
    x = F.as_node(x)
    return x - logsumexp(x, axis, keepdims=True)


def clip(x, lo, hi):
    """min(max(x, lo), hi)."""
    return F.minimum(F.maximum(F.as_node(x), lo), hi)


def logaddexp(a, b):
    """log(exp(a) + exp(b)) = where(a >= b, a + softplus(b - a), b + softplus(a - b)): never
    overflows; gradient (sigmoid(a - b), sigmoid(b - a)), 1/2 each at a == b. Where a == b,
    b - a is taken from the inputs clipped to the finite range, so equal infinite inputs give
    logaddexp(-inf, -inf) = -inf and logaddexp(inf, inf) = inf (numpy) instead of NaN.

    >>> import symdiff as sd, numpy as np
    >>> a = sd.var("a", (3,)); b = sd.var("b", (3,))
    >>> sd.evaluate(sd.logaddexp(a, b), {a: np.array([1e4, 0.0, -np.inf]),
    ...                                  b: np.array([1e4, -np.inf, -np.inf])})
    array([10000.69314718,     0.        ,           -inf])
    """
    d = F.as_node(b - a)
    a, b = F.as_node(a, d.dtype), F.as_node(b, d.dtype)
    big = float(np.finfo(d.dtype if d.dtype in ("float32", "float64") else "float64").max)
    d = F.where(F.equal(a, b), clip(b, -big, big) - clip(a, -big, big), d)    # inf - inf -> 0
    return F.where(F.greater_equal(a, b), a + F.softplus(d), b + F.softplus(-d))
