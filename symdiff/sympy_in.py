"""SymPy -> graph: ``from_sympy`` builds a graph from a SymPy expression (or a Matrix of them)
of elementwise functions. (``sympy_bridge`` holds the other direction, ``to_sympy``.)"""
import numpy as np
import sympy as sp
from sympy.codegen.cfunctions import expm1 as sp_expm1, log1p as sp_log1p

from . import frontend as F
from .graph import Node
from .sympy_functions import sigmoid, softplus


def _relational(e, args):
    ops = {sp.StrictLessThan: F.less, sp.LessThan: F.less_equal,
           sp.StrictGreaterThan: F.greater, sp.GreaterThan: F.greater_equal,
           sp.Equality: F.equal, sp.Unequality: F.not_equal}
    return ops[type(e)](*args)


def _piecewise(pairs):
    (value, cond), rest = pairs[0], pairs[1:]
    if cond is True or cond == sp.true:
        return value
    return F.where(cond, value, _piecewise(rest))


_FROM_FUNCS = {sp.exp: F.exp, sp.log: F.log, sp.tanh: F.tanh, sp.sin: F.sin, sp.cos: F.cos,
               sp.Abs: F.abs, sp.sign: F.sign, sigmoid: F.sigmoid, softplus: F.softplus,
               sp_log1p: F.log1p, sp_expm1: F.expm1, sp.loggamma: F.lgamma,
               sp.digamma: F.digamma, sp.polygamma: lambda n, x: F.polygamma(int(n), x),
               sp.erf: F.erf, sp.erfc: F.erfc,
               sp.sinh: lambda x: (F.exp(x) - F.exp(-x)) / 2,
               sp.cosh: lambda x: (F.exp(x) + F.exp(-x)) / 2,
               sp.tan: lambda x: F.sin(x) / F.cos(x),
               sp.Heaviside: lambda x, h0=None: F.where(x > 0, 1.0, 0.0 if h0 is None else h0)}


def _convert(e, mapping, memo):
    if e in memo:
        return memo[e]
    if isinstance(e, sp.Symbol):
        if e not in mapping:
            raise ValueError(f"from_sympy: no node given for symbol {e}")
        return mapping[e]
    if e.is_Number or e in (sp.pi, sp.E):
        return float(e) if not e.is_Integer else int(e)
    args = [_convert(a, mapping, memo) for a in e.args] if not isinstance(e, sp.Piecewise) \
        else None
    if isinstance(e, sp.Add):
        out = args[0]
        for a in args[1:]:
            out = out + a
    elif isinstance(e, sp.Mul):
        out = args[0]
        for a in args[1:]:
            out = out * a
    elif isinstance(e, sp.Pow):
        base, ex = args
        out = F.sqrt(base) if e.exp == sp.Rational(1, 2) else (
            1 / F.sqrt(base) if e.exp == sp.Rational(-1, 2) else F.as_node(base) ** ex
            if isinstance(base, Node) else base ** ex)
    elif isinstance(e, (sp.Max, sp.Min)):
        fn = F.maximum if isinstance(e, sp.Max) else F.minimum
        out = args[0]
        for a in args[1:]:
            out = fn(out, a)
    elif isinstance(e, sp.Piecewise):
        pairs = [(_convert(v, mapping, memo), c if c in (True, sp.true) else
                  _convert(c, mapping, memo)) for v, c in e.args]
        out = _piecewise(pairs)
    elif isinstance(e, sp.core.relational.Relational):
        out = _relational(e, args)
    elif type(e) in _FROM_FUNCS or e.func in _FROM_FUNCS:
        out = _FROM_FUNCS[e.func](*args)
    else:
        raise ValueError(f"from_sympy: {e.func.__name__} is not supported (in {e})")
    memo[e] = out
    return out


def from_sympy(expr, mapping):
    """Build a graph from a SymPy expression of elementwise functions.

    ``mapping`` maps each SymPy symbol to a node (or array); a SymPy Matrix of expressions
    becomes a node of shape (rows, cols) (its entries must be scalars).

    >>> import symdiff as sd, sympy, numpy as np
    >>> t = sympy.Symbol("t")
    >>> x = sd.var("x", (3,))
    >>> y = sd.from_sympy(sympy.exp(-t ** 2), {t: x})      # the RBF unit
    >>> np.round(sd.evaluate(y, {x: np.array([0.0, 1.0, 2.0])}), 4)
    array([1.    , 0.3679, 0.0183])
    """
    mapping = {k: F.as_node(v) for k, v in mapping.items()}
    memo = {}
    if isinstance(expr, sp.MatrixBase):
        return _matrix(expr, mapping, memo)
    out = _convert(sp.sympify(expr), mapping, memo)
    return F.as_node(out)


def _matrix(m, mapping, memo):
    rows, cols = m.shape
    total = None
    for i in range(rows):
        for j in range(cols):
            entry = F.as_node(_convert(m[i, j], mapping, memo))
            if entry.ndim:
                raise ValueError("from_sympy: Matrix entries must be scalar expressions")
            basis = np.zeros((rows, cols))
            basis[i, j] = 1.0
            term = entry * F.const(basis, entry.dtype if entry.dtype != "int64" else "float64")
            total = term if total is None else total + term
    return total
