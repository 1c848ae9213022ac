"""SymPy classes for the functions symdiff has and SymPy lacks (imported lazily: sympy is slow
to import). sigmoid and softplus know their derivatives and rewrite to exp; ``Dot`` is the
scalar w^T x of two vectors; ``Apply`` is a function applied elementwise to a matrix."""
import sympy as sp
from sympy.matrices.expressions.applyfunc import ElementwiseApplyFunction


class sigmoid(sp.Function):  # noqa: N801  (prints as the math name)
    """sigma(x) = 1 / (1 + exp(-x))."""

    def fdiff(self, argindex=1):
        s = sigmoid(self.args[0])
        return s * (1 - s)

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return 1 / (1 + sp.exp(-x))

    def _latex(self, printer):
        return rf"\sigma\left({printer._print(self.args[0])}\right)"


class softplus(sp.Function):  # noqa: N801
    """softplus(x) = log(1 + exp(x))."""

    def fdiff(self, argindex=1):
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))

    def _eval_rewrite_as_log(self, x, **kwargs):
        return sp.log(1 + sp.exp(x))


class Dot(sp.Function):
    """The scalar a^T b of two column vectors."""

    is_commutative = True      # a scalar, although its arguments are matrices
    is_real = True

    def _sympystr(self, printer):
        a, b = self.args
        return f"{printer._print(a)}.T*{printer._print(b)}"

    def _latex(self, printer):
        a, b = self.args
        return f"{printer._print(a)}^{{T}} {printer._print(b)}"

    def _eval_rewrite_as_MatMul(self, a, b, **kwargs):
        return (a.T * b)[0, 0]


class Apply(ElementwiseApplyFunction):
    """f applied to every element of a matrix, printed f.(M) (latex f \\circ M).

    One subclass per function name (``apply``), so that SymPy can rebuild it from
    (function, expr) as it does for ElementwiseApplyFunction.
    """

    _name = "f"

    def _sympystr(self, printer):
        return f"{self._name}.({printer._print(self.expr)})"

    def _latex(self, printer):
        return rf"\operatorname{{{self._name}}}\circ\left({printer._print(self.expr)}\right)"


_APPLY = {}


def apply(name, function, expr):
    """``function`` (a Lambda) applied elementwise to the matrix ``expr``, shown as ``name``."""
    if name not in _APPLY:
        _APPLY[name] = type(f"Apply_{name}", (Apply,), {"_name": name})
    return _APPLY[name](function, expr)
