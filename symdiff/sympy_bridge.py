"""SymPy in and out.

``to_sympy`` renders a graph as SymPy for display (``sympy.latex``, pretty printing): scalars
as expressions, vectors (n,) as n x 1 MatrixSymbols, matrices as MatrixSymbols, matmul as
MatMul, elementwise products as Hadamard products, broadcasting as products with ones
matrices. Reductions over an axis, softmax, log-softmax, log-sum-exp (recognized in the
stable form the composites build: exp(z - max z) / sum exp(z - max z) is softmax(z)), one-hot
labels and elementwise choices stay matrix expressions (``sympy_functions``), never expanded
into their elements. What has no matrix form (slices, > 2-D arrays...) is shown by its op's
name over its operands, so any graph renders. ``from_sympy`` (in ``sympy_in``) builds a graph
from a SymPy expression (or a Matrix of them) of elementwise functions.
"""
import sympy as sp
from sympy.codegen.cfunctions import expm1 as sp_expm1, log1p as sp_log1p

from .dims import Dim
from .graph import flatten, toposort, unflatten
from .ops import Op
from .printing import label
from .sympy_functions import (Compare, Dot, Extremum, LogSoftmax, Maxout, OneHot, Opaque,
                              OpaqueArray, Ones, Softmax, TakeRows, Where, apply, definitions,
                              reduce_all, reduce_axis, sigmoid, softplus)
from .sympy_in import from_sympy  # noqa: F401  (the other direction, re-exported)

_UNARY = {Op.EXP: sp.exp, Op.LOG: sp.log, Op.LOG1P: sp_log1p, Op.EXPM1: sp_expm1,
          Op.SQRT: sp.sqrt, Op.TANH: sp.tanh, Op.SIN: sp.sin, Op.COS: sp.cos, Op.ABS: sp.Abs,
          Op.SIGN: sp.sign, Op.SIGMOID: sigmoid, Op.SOFTPLUS: softplus,
          Op.LGAMMA: sp.loggamma,        # log|Gamma| for x > 0 (SymPy's is complex for x < 0)
          Op.DIGAMMA: sp.digamma, Op.ERF: sp.erf, Op.ERFC: sp.erfc,
          Op.LOG_NDTR: lambda t: sp.log(sp.erfc(-t / sp.sqrt(2)) / 2)}
_COMPARE = {Op.LT: sp.StrictLessThan, Op.LE: sp.LessThan, Op.GT: sp.StrictGreaterThan,
            Op.GE: sp.GreaterThan, Op.EQ: sp.Eq, Op.NE: sp.Ne}


def _dim(d):
    return sp.Symbol(d.name or f"N{d.uid}", integer=True, positive=True) if isinstance(d, Dim) else d


def _shape2(shape):
    """numpy shape -> (rows, cols) of its matrix form; vectors are columns; None past 2-D."""
    if len(shape) == 1:
        return (_dim(shape[0]), 1)
    if len(shape) == 2:
        return tuple(_dim(d) for d in shape)
    return None


def _all_ones(shape):
    return len(shape) > 0 and all(d == 1 for d in shape)


def _is_matrix(e):
    return isinstance(e, sp.MatrixBase) or getattr(e, "is_Matrix", False)


class _Renderer:
    """Node -> SymPy, memoized; falls back to named placeholders."""

    def __init__(self):
        self.out = {}

    def placeholder(self, n):
        """n by its op's name over its rendered operands (no matrix form for it)."""
        if n.op in (Op.VAR, Op.CONST):
            return sp.Symbol(n.arg.name if n.op is Op.VAR else label(n))
        shape2 = _shape2(n.shape)
        operands = [self.out[s] for s in n.src]
        if shape2 and n.ndim:
            return Opaque(sp.Symbol(n.op.value), *shape2, *operands)
        return OpaqueArray(sp.Symbol(n.op.value), 0, 0, *operands)

    def fit(self, e, shape, target):
        """Broadcast the form of a value of numpy ``shape`` to numpy shape ``target``."""
        if tuple(shape) == tuple(target) or len(target) == 0 or _all_ones(target):
            return e
        rows, cols = _shape2(target)
        if not _is_matrix(e):
            return e * Ones(rows, cols) if (rows, cols) != (1, 1) else e
        if len(shape) == 1:              # numpy aligns a vector with the last axis: a row
            if len(target) == 1:
                return e
            e = e.T
            return Ones(rows, 1) * e if rows != 1 else e
        r, c = _shape2(shape)
        if r == 1 and rows != 1:
            e = Ones(rows, 1) * e
        if c == 1 and cols != 1:
            e = e * Ones(1, cols)
        return e

    def render(self, n):
        if n.ndim > 2:
            return self.placeholder(n)
        handler = getattr(self, f"_{n.op.name.lower()}", None)
        if handler is None:
            return self.placeholder(n)
        try:
            e = self.rowwise(n)
            if e is None:
                e = handler(n, [self.out[s] for s in n.src])
        except (TypeError, ValueError, AttributeError, sp.ShapeError):
            e = None
        if e is None:                 # no matrix form for this use of the op
            return self.placeholder(n)
        if _all_ones(n.shape) and _is_matrix(e) and n.op is not Op.VAR:
            e = e[0, 0]           # a (1,) or (1, 1) value broadcasts like a scalar
        return e

    def _var(self, n, a):
        shape2 = _shape2(n.shape)
        return sp.Symbol(n.arg.name, real=True) if n.ndim == 0 else sp.MatrixSymbol(n.arg.name,
                                                                                     *shape2)

    def _const(self, n, a):
        u = n.arg.uniform
        v = n.arg.value
        if n.ndim == 0 or u is not None:
            scalar = sp.nsimplify(u if u is not None else v.item(), rational=False) \
                if isinstance(u if u is not None else v.item(), float) else sp.Integer(int(
                    u if u is not None else v.item()))
            return scalar if n.ndim == 0 else scalar * Ones(*_shape2(n.shape))
        if v.size <= 16:
            return sp.ImmutableMatrix(v.reshape(_shape2(v.shape)))
        return self.placeholder(n)

    def _dim(self, n, a):
        return _dim(n.arg[0])

    def _neg(self, n, a):
        return -a[0]

    def _cast(self, n, a):
        return a[0]

    _stop_gradient = _cast

    def _unary(self, n, a):
        f = _UNARY[n.op]
        return apply(n.op.value, sp.Lambda(_T, f(_T)), a[0]) if _is_matrix(a[0]) else f(a[0])

    _exp = _log = _log1p = _expm1 = _sqrt = _tanh = _sin = _cos = _abs = _sign = _unary
    _sigmoid = _softplus = _lgamma = _digamma = _erf = _erfc = _log_ndtr = _unary

    def _polygamma(self, n, a):
        f = sp.Lambda(_T, sp.polygamma(n.arg, _T))
        return apply(f"polygamma{n.arg}", f, a[0]) if _is_matrix(a[0]) else f(a[0])

    def _fn(self, n, a):
        sf = n.arg
        if any(_is_matrix(x) for x in a):
            if n.ndim and all(s.shape == n.shape for s in n.src) and sf.arity == 1:
                return apply(sf.name, sp.Lambda(sf.symbols[0], sf.expr), a[0], named=True)
            return self.placeholder(n)
        return sf.expr.subs(dict(zip(sf.symbols, a)), simultaneous=True)

    def _binary_args(self, n, a):
        return [self.fit(x, s.shape, n.shape) for x, s in zip(a, n.src)]

    def _add(self, n, a):
        x, y = self._binary_args(n, a)
        return x + y

    def _sub(self, n, a):
        x, y = self._binary_args(n, a)
        return x - y

    def _mul(self, n, a):
        if not _is_matrix(a[0]) or not _is_matrix(a[1]):
            x, y = a
            return x * y if not (_is_matrix(x) and _is_matrix(y)) else None
        x, y = self._binary_args(n, a)
        return sp.HadamardProduct(x, y)

    def _div(self, n, a):
        x, y = a
        if not _is_matrix(y):
            return x / y if not _is_matrix(x) else x * (1 / y)
        x, y = self._binary_args(n, a)
        return sp.HadamardProduct(x, sp.HadamardPower(y, -1)) if _is_matrix(x) else \
            x * sp.HadamardPower(y, -1)

    def _pow(self, n, a):
        x, y = a
        if _is_matrix(y):
            return self.placeholder(n)
        return sp.HadamardPower(x, y) if _is_matrix(x) else x ** y

    def _maximum(self, n, a):
        return self._extremum(n, a, sp.Max, "max")

    def _minimum(self, n, a):
        return self._extremum(n, a, sp.Min, "min")

    def _extremum(self, n, a, scalar, kind):
        if not any(map(_is_matrix, a)):
            return scalar(*a)
        return Extremum(sp.Symbol(kind), *self._binary_args(n, a))

    def _compare(self, n, a):
        if not any(map(_is_matrix, a)):
            return _COMPARE[n.op](*a)
        return Compare(*self._binary_args(n, a), sp.Symbol(_RELATION[n.op]))

    _lt = _le = _gt = _ge = _eq = _ne = _compare

    def _where(self, n, a):
        if not any(map(_is_matrix, a)):
            return sp.Piecewise((a[1], a[0]), (a[2], True))
        return Where(*[self.fit(x, s.shape, n.shape) for x, s in zip(a, n.src)])

    def _one_hot(self, n, a):
        return OneHot(a[0], n.arg[0]) if n.ndim == 2 else None

    def _take(self, n, a):
        return TakeRows(*a) if n.src[0].ndim == 2 and n.src[1].ndim == 1 else None

    def _matmul(self, n, a):
        x, y = a
        s0, s1 = n.src
        if s0.ndim == 1 and s1.ndim == 1:
            return Dot(x, y)
        if s0.ndim == 1:
            return y.T * x                 # (x^T B)^T as a column
        return x * y

    def _transpose(self, n, a):
        return a[0].T

    def _reshape(self, n, a):
        x, src = a[0], n.src[0]
        if n.ndim == 0 and _is_matrix(x):
            return x[0, 0]
        if src.ndim == 0:
            return x * Ones(*_shape2(n.shape))
        if _shape2(src.shape) == _shape2(n.shape):
            return x
        if src.ndim == 1 and n.ndim == 2 and n.shape[0] == 1:
            return x.T
        return self.placeholder(n)

    def _broadcast_to(self, n, a):
        return self.fit(a[0], n.src[0].shape, n.shape)

    def _sum(self, n, a):
        return self._reduce("sum", n, a[0])

    def _max(self, n, a):
        return self._reduce("max", n, a[0])

    def _reduce(self, kind, n, x):
        """sum/max/log-sum-exp of x over the axes of the reduction n: a scalar, a column of
        row results (over the last axis) or a row of column results (over the first)."""
        src, (axes, keepdims) = n.src[0], n.arg
        if src.ndim == 0:
            return x
        if len(axes) == src.ndim:
            total = reduce_all(kind, x)
            return total * Ones(*_shape2(n.shape)) if n.ndim else total
        if axes == (-1,):
            return reduce_axis(kind, x, 1)
        column_results = reduce_axis(kind, x, 0)
        return column_results if keepdims else column_results.T

    def rowwise(self, n):
        """softmax / log-softmax / log-sum-exp / maxout in the forms the composites build,
        else None."""
        if n.op is Op.MAX and n.ndim == 2 and n.src[0].op is Op.RESHAPE and \
                n.src[0].ndim == 3 and n.arg[0] == (-1,) and n.src[0].src[0].ndim == 2:
            return Maxout(self.out[n.src[0].src[0]], n.src[0].shape[-1])
        if n.op is Op.DIV:
            z = _softmax_of(n)
            return Softmax(self.out[z], _axis(z)) if z is not None else None
        if n.op is Op.LOG and _exp_sum(n.src[0]):
            z, shift = _exp_sum(n.src[0])
            lse = self._reduce("lse", n.src[0], self.out[z])
            return lse if shift is None else lse - self.out[shift]
        if n.op is Op.ADD:
            z = _logsumexp_of(n)
            log = n.src[1] if n.src[1].op is Op.LOG else n.src[0]
            return self._reduce("lse", log.src[0], self.out[z]) if z is not None else None
        if n.op is Op.SUB and n.src[1].op is Op.ADD and _logsumexp_of(n.src[1]) is n.src[0] \
                and n.src[1].ndim == n.src[0].ndim and n.src[0].ndim in (1, 2):
            return LogSoftmax(self.out[n.src[0]], _axis(n.src[0]))
        return None


def _axis(z):
    """The matrix axis of z's last numpy axis: the columns of a matrix, the rows of a vector."""
    return 1 if z.ndim == 2 else 0


def _unwrap(m):
    while m.op in (Op.STOP_GRADIENT, Op.RESHAPE, Op.BROADCAST_TO):
        m = m.src[0]
    return m


def _row_max(m):
    """z when m is max(z) over z's last axis (under stop_gradient/reshape), else None."""
    m = _unwrap(m)
    return m.src[0] if m.op is Op.MAX and m.arg[0] == (-1,) else None


def _shifted(e):
    """(z, shift) for exp(z - max z) with shift the max node, (z, None) for exp(z), or None."""
    if e.op is not Op.EXP:
        return None
    d = e.src[0]
    if d.op is Op.SUB and _row_max(d.src[1]) is d.src[0]:
        return d.src[0], d.src[1]
    return e.src[0], None


def _exp_sum(s):
    """(z, shift) for sum(exp(z [- max z])) over the last axis, else None."""
    if s.op is not Op.SUM or s.arg[0] != (-1,) or s.src[0].ndim not in (1, 2):
        return None
    return _shifted(s.src[0])


def _softmax_of(n):
    """z when n is exp(z - max z) / sum(exp(z - max z)) over the last axis, else None."""
    e, s = n.src[0], _unwrap(n.src[1])
    found = _exp_sum(s)
    if found is None or s.src[0] is not e or not s.arg[1] or e.shape != n.shape:
        return None
    return found[0]


def _logsumexp_of(n):
    """z when n is max(z) + log(sum(exp(z - max z))) (either order), else None."""
    for m, lg in (n.src, n.src[::-1]):
        if lg.op is Op.LOG and _exp_sum(lg.src[0]):
            z, shift = _exp_sum(lg.src[0])
            if shift is not None and _row_max(m) is z:
                return z
    return None


_RELATION = {Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">=", Op.EQ: "=", Op.NE: r"\neq"}


_T = sp.Symbol("t", real=True)


def to_sympy(outputs):
    """SymPy rendering of node(s), for display and symbolic checks.

    >>> import symdiff as sd
    >>> w1, w2 = sd.var("w1"), sd.var("w2")
    >>> sd.to_sympy(sd.grad(w1 ** 3 * w2 + 3 * w1, w1))
    3*w1**2*w2 + 3
    """
    r = _Renderer()
    for n in toposort(flatten(outputs)):
        r.out[n] = r.render(n)
    return unflatten(outputs, [r.out[o] for o in flatten(outputs)])


def sympy_definitions(expr):
    """The named elementwise functions that a ``to_sympy`` result applies, with their
    definitions: name -> the SymPy equation f(t) = <formula>.

    >>> import symdiff as sd, sympy
    >>> swish = sd.elementwise("swish", lambda t: t / (1 + sympy.exp(-t)))
    >>> x = sd.var("x", (3,))
    >>> e = sd.to_sympy(swish(x)); e
    swish.(x)
    >>> sd.sympy_definitions(e)
    {'swish': Eq(swish(t), t/(1 + exp(-t)))}
    """
    return definitions(expr)
