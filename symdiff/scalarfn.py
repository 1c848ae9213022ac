"""User-defined elementwise functions from SymPy expressions: ``sd.elementwise``.

The function becomes an ``Op.FN`` node whose arg is a ``ScalarFunction``. Its partial
derivatives come from ``sympy.diff`` (simplified) and are ``Op.FN`` nodes too, so they work
in both modes and at any order. NumPy evaluation uses ``sympy.lambdify``; compiled kernels
expand the expression into primitives (``sympy_bridge.from_sympy``).
"""
import functools

import numpy as np

from .graph import Node
from .ops import Op


class ScalarFunction:
    """A SymPy expression in named scalar symbols, with cached partial derivatives."""

    __slots__ = ("name", "expr", "symbols", "_key", "_partials", "_numpy")

    def __init__(self, name, expr, symbols):
        import sympy as sp
        self.name, self.expr, self.symbols = name, expr, tuple(symbols)
        free = expr.free_symbols - set(self.symbols)
        if free:
            raise ValueError(f"elementwise {name!r}: the expression uses {sorted(map(str, free))} "
                             f"which are not arguments {[str(s) for s in self.symbols]}")
        self._key = (name, sp.srepr(expr), tuple(sp.srepr(s) for s in self.symbols))
        self._partials = {}
        self._numpy = None

    def __reduce__(self):
        return ScalarFunction, (self.name, self.expr, self.symbols)

    @property
    def arity(self):
        return len(self.symbols)

    def __eq__(self, other):
        return isinstance(other, ScalarFunction) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __repr__(self):
        return f"{self.name}({', '.join(map(str, self.symbols))}) = {self.expr}"

    def partial(self, i):
        """d expr / d symbols[i] as a ScalarFunction (simplified by SymPy)."""
        if i not in self._partials:
            import sympy as sp
            d = sp.diff(self.expr, self.symbols[i])
            # derivatives of kinks (sign, Heaviside) are 0 almost everywhere, as the seeds take
            # relu'(0) = 0: drop the DiracDelta terms sympy produces
            d = sp.simplify(d.replace(sp.DiracDelta, lambda *args: sp.S.Zero))
            suffix = "'" if self.arity == 1 else f"_{self.symbols[i]}"
            self._partials[i] = ScalarFunction(f"{self.name}{suffix}", d, self.symbols)
        return self._partials[i]

    def numpy(self, *values):
        """Evaluate elementwise with NumPy (broadcasting the arguments)."""
        if self._numpy is None:
            import sympy as sp
            mods = [{"sigmoid": _expit, "softplus": lambda x: np.logaddexp(0, x),
                     "Heaviside": lambda x, h0=0.0: np.heaviside(x, h0)}, "numpy"]
            self._numpy = sp.lambdify(self.symbols, self.expr, modules=mods)
        out = self._numpy(*values)
        return np.broadcast_to(np.asarray(out), np.broadcast_shapes(*(np.shape(v) for v in values)))


def _expit(x):
    from scipy.special import expit
    return expit(x)


def elementwise(name, fn):
    """Define an elementwise function from a SymPy expression; returns a builder of nodes.

    ``fn`` receives one SymPy symbol per argument and returns the expression. Derivatives
    come from ``sympy.diff``; the function works in forward and reverse mode, in compiled
    kernels, and can be differentiated again.

    >>> import symdiff as sd, sympy, numpy as np
    >>> swish = sd.elementwise("swish", lambda t: t / (1 + sympy.exp(-t)))
    >>> x = sd.var("x", (2,))
    >>> g = sd.grad(sd.sum(swish(x)), x)
    >>> np.round(sd.evaluate(g, {x: np.array([0.0, 1.0])}), 6)
    array([0.5     , 0.927671])
    """
    import inspect
    import sympy as sp
    params = list(inspect.signature(fn).parameters)
    symbols = [sp.Symbol(p, real=True) for p in params]
    sf = ScalarFunction(name, sp.sympify(fn(*symbols)), symbols)

    @functools.wraps(fn)
    def build(*args):
        from . import frontend as F
        if len(args) != sf.arity:
            raise TypeError(f"{name} takes {sf.arity} arguments ({', '.join(params)}), "
                            f"got {len(args)}")
        nodes = [a for a in args if isinstance(a, Node)]
        like = nodes[0].dtype if nodes else "float64"
        return Node.make(Op.FN, tuple(F.as_node(a, like) for a in args), sf)
    build.function = sf
    build.__doc__ = f"{name}: {sf!r} (elementwise, defined with SymPy)"
    return build
