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

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)

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

    def _eval_evalf(self, prec):
        return self.rewrite(sp.exp)._eval_evalf(prec)


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


class Ones(sp.OneMatrix):
    """The matrix of ones that broadcasting multiplies by, printed as a bold 1."""

    def _latex(self, printer):
        return r"\mathbf{1}"

    def _eval_transpose(self):
        return Ones(self.cols, self.rows)


class Apply(ElementwiseApplyFunction):
    """f applied to every element of a matrix, printed f.(M); in LaTeX f(M) with f's own
    notation (\\tanh, \\sigma) or, for a function given by name only, \\operatorname{f}(M).

    One subclass per function name (``apply``), so that SymPy can rebuild it from
    (function, expr) as it does for ElementwiseApplyFunction.
    """

    _name = "f"
    _named = False

    def _sympystr(self, printer):
        return f"{self._name}.({printer._print(self.expr)})"

    def _latex(self, printer):
        inner = printer._print(self.expr)
        if self._named:
            return rf"\operatorname{{{self._name}}}\left({inner}\right)"
        hole = sp.Symbol("HOLE")
        return printer._print(self.function(hole)).replace("HOLE", inner)


_APPLY = {}


def apply(name, function, expr, named=False):
    """``function`` (a Lambda) applied elementwise to the matrix ``expr``, shown as ``name``
    (``named``: in LaTeX too, instead of the function's own notation)."""
    key = (name, named)
    if key not in _APPLY:
        _APPLY[key] = type(f"Apply_{name}", (Apply,), {"_name": name, "_named": named})
    return _APPLY[key](function, expr)


# --- matrix-level forms of reductions and row-wise functions --------------------------------
# A numpy array of shape (m, n) renders as an m x n matrix and a vector (n,) as an n x 1
# column. These classes keep a reduction over an axis, softmax, one-hot labels... as one
# matrix expression (printed \sum_j, \operatorname{softmax}, \mathbb{1}[y = j]) instead of
# expanding it into its elements; ``explicit()`` writes one out over its elements when the
# shapes are numbers, which is how tests check them against the numbers.
_KINDS = {"sum": (r"\sum", sp.Add), "max": (r"\max", sp.Max),
          "lse": (r"\log \sum", lambda *v: sp.log(sp.Add(*map(sp.exp, v))))}


def _indexed(printer, m, index):
    """M_{index}, with parentheses around a compound M."""
    body = printer._print(m)
    if not isinstance(m, sp.MatrixSymbol):
        body = rf"\left({body}\right)"
    return f"{body}_{{{index}}}"


def _reduced(printer, kind, m, index, over):
    """\\sum_{over} M_{index} (or \\max, or \\log\\sum \\exp) as LaTeX."""
    op, _ = _KINDS[kind]
    term = _indexed(printer, m, index)
    term = rf"\exp\left({term}\right)" if kind == "lse" else term
    return rf"{op}_{{{over}}} {term}"


class Reduce(sp.Function):
    """The scalar sum, max or log-sum-exp of all elements of a matrix: Reduce("sum", M)."""

    is_commutative = True
    is_real = True

    @classmethod
    def eval(cls, kind, m):
        return None

    def _latex(self, printer):
        kind, m = str(self.args[0]), self.args[1]
        if m.shape[1] == 1:
            return _reduced(printer, kind, m, "i", "i")
        return _reduced(printer, kind, m, "i, j", "i, j")

    def _sympystr(self, printer):
        return f"{self.args[0]}({printer._print(self.args[1])})"

    def explicit(self):
        """The reduction written out over the elements (the shape must be numbers)."""
        return _KINDS[str(self.args[0])][1](*self.args[1].as_explicit())


def reduce_all(kind, m):
    """Reduce ``m`` (a matrix expression) to a scalar: kind is "sum", "max" or "lse"."""
    return Reduce(sp.Symbol(kind), m)


class _MatrixFunction(sp.MatrixExpr):
    """A matrix expression whose args are sympy objects; subclasses give shape and _entry."""

    def _sympystr(self, printer):
        return f"{self._name()}({', '.join(printer._print(a) for a in self.args)})"

    def _name(self):
        return type(self).__name__.lower()

    def explicit(self):
        """The matrix of elements (the shape must be numbers)."""
        return self.as_explicit()


class AxisReduce(_MatrixFunction):
    """Sum, max or log-sum-exp over one axis of a matrix: over the columns (axis 1, a column
    of row results, index j) or over the rows (axis 0, a row of column results, index i)."""

    kind = property(lambda self: str(self.args[0]))
    arg = property(lambda self: self.args[1])
    axis = property(lambda self: int(self.args[2]))

    @property
    def shape(self):
        rows, cols = self.arg.shape
        return (rows, 1) if self.axis == 1 else (1, cols)

    def _entry(self, i, j, **kwargs):
        rows, cols = self.arg.shape
        line = [self.arg[i, k] for k in range(cols)] if self.axis == 1 else \
            [self.arg[k, j] for k in range(rows)]
        return _KINDS[self.kind][1](*line)

    def _latex(self, printer):
        return _reduced(printer, self.kind, self.arg, ":, j" if self.axis == 1 else "i, :",
                        "j" if self.axis == 1 else "i")

    def _sympystr(self, printer):
        return f"{self.kind}_{'rows' if self.axis == 1 else 'columns'}({printer._print(self.arg)})"


def reduce_axis(kind, m, axis):
    """``kind`` over the columns (axis=1) or the rows (axis=0) of the matrix ``m``."""
    return AxisReduce(sp.Symbol(kind), m, sp.Integer(axis))


class Softmax(_MatrixFunction):
    """softmax over the columns of each row (axis 1) or over the rows (axis 0, a vector):
    softmax(z)_j = exp(z_j) / sum_k exp(z_k)."""

    arg = property(lambda self: self.args[0])
    axis = property(lambda self: int(self.args[1]))
    shape = property(lambda self: self.arg.shape)

    def _line(self, i, j):
        rows, cols = self.arg.shape
        line = [self.arg[i, k] for k in range(cols)] if self.axis == 1 else \
            [self.arg[k, j] for k in range(rows)]
        return self.arg[i, j], sp.Add(*map(sp.exp, line))

    def _entry(self, i, j, **kwargs):
        z, total = self._line(i, j)
        return sp.exp(z) / total

    def _latex(self, printer):
        return rf"\operatorname{{softmax}}\left({printer._print(self.arg)}\right)"

    def _sympystr(self, printer):
        return f"softmax({printer._print(self.arg)})"


class LogSoftmax(Softmax):
    """log softmax(z)_j = z_j - log sum_k exp(z_k)."""

    def _entry(self, i, j, **kwargs):
        z, total = self._line(i, j)
        return z - sp.log(total)

    def _latex(self, printer):
        return rf"\log\operatorname{{softmax}}\left({printer._print(self.arg)}\right)"

    def _sympystr(self, printer):
        return f"log_softmax({printer._print(self.arg)})"


class OneHot(_MatrixFunction):
    """The one-hot rows of integer labels y (a column): entry (i, j) is 1 when y_i = j."""

    labels = property(lambda self: self.args[0])
    shape = property(lambda self: (self.labels.shape[0], self.args[1]))

    def _entry(self, i, j, **kwargs):
        return sp.KroneckerDelta(self.labels[i, 0], j)

    def _latex(self, printer):
        return rf"\mathbb{{1}}\left[{printer._print(self.labels)} = j\right]"

    def _name(self):
        return "one_hot"


class TakeRows(_MatrixFunction):
    """The column (z_{i, y_i})_i: in each row of z, the entry at that row's label."""

    shape = property(lambda self: (self.args[0].shape[0], 1))

    def _entry(self, i, j, **kwargs):
        z, y = self.args
        return sp.Add(*[sp.KroneckerDelta(y[i, 0], k) * z[i, k] for k in range(z.shape[1])])

    def _latex(self, printer):
        z, y = self.args
        return _indexed(printer, z, f"i, {_indexed(printer, y, 'i')}")

    def _name(self):
        return "take_rows"


_RELATIONS = {">": sp.StrictGreaterThan, ">=": sp.GreaterThan, "<": sp.StrictLessThan,
              "<=": sp.LessThan, "=": sp.Eq, r"\neq": sp.Ne}


class Compare(_MatrixFunction):
    """The elementwise comparison a > b (or another relation) of two matrices of one shape."""

    shape = property(lambda self: self.args[0].shape)

    def _entry(self, i, j, **kwargs):
        a, b, rel = self.args
        return _RELATIONS[str(rel)](a[i, j], b[i, j])

    def _latex(self, printer):
        a, b, rel = self.args
        return f"{printer._print(a)} {rel} {printer._print(b)}"


class Where(_MatrixFunction):
    """Elementwise choice: a where the condition holds, else b."""

    shape = property(lambda self: self.args[1].shape)

    def _entry(self, i, j, **kwargs):
        c, a, b = self.args
        return sp.Piecewise((a[i, j], c[i, j]), (b[i, j], True))

    def _latex(self, printer):
        c, a, b = (printer._print(x) for x in self.args)
        return (rf"\begin{{cases}} {a} & \text{{if }} {c} \\ {b} & \text{{otherwise}}"
                r" \end{cases}")


class Extremum(_MatrixFunction):
    """Elementwise max(a, b) (or min) of two matrices of one shape."""

    shape = property(lambda self: self.args[1].shape)

    def _entry(self, i, j, **kwargs):
        kind, a, b = self.args
        return (sp.Max if str(kind) == "max" else sp.Min)(a[i, j], b[i, j])

    def _latex(self, printer):
        kind, a, b = self.args
        return rf"\{kind}\left({printer._print(a)}, {printer._print(b)}\right)"


def definitions(expr):
    """name -> the equation f(t) = ... of every named elementwise function applied in expr."""
    found = {}
    for e in sp.preorder_traversal(expr):
        if isinstance(e, Apply) and e._named:
            (t,), body = e.function.variables, e.function.expr
            found[e._name] = sp.Eq(sp.Function(e._name)(t), body)
        elif isinstance(e, (sigmoid, softplus)) or (isinstance(e, Apply) and
                                                    e._name in ("sigmoid", "softplus")):
            f = sigmoid if "sigmoid" in (getattr(e, "_name", ""), type(e).__name__) else softplus
            found[f.__name__] = sp.Eq(f(_T), f(_T).rewrite(sp.exp))
    return found


_T = sp.Symbol("t", real=True)


class Maxout(_MatrixFunction):
    """Maxout units: the max of each group of ``pieces`` consecutive columns of z."""

    shape = property(lambda self: (self.args[0].shape[0], self.args[0].shape[1] / self.args[1]))

    def _entry(self, i, j, **kwargs):
        z, k = self.args
        return sp.Max(*[z[i, j * k + p] for p in range(k)])

    def _latex(self, printer):
        z, k = self.args
        return rf"\operatorname{{maxout}}_{{{k}}}\left({printer._print(z)}\right)"


def _opaque_latex(self, printer):
    name = str(self.args[0]).replace("_", r"\_")
    return rf"\operatorname{{{name}}}\left({', '.join(map(printer._print, self.args[3:]))}\right)"


class Opaque(_MatrixFunction):
    """An operation without a matrix form, shown by name over its operands:
    Opaque(name, rows, cols, *operands)."""

    shape = property(lambda self: self.args[1:3])
    _latex = _opaque_latex

    def _sympystr(self, printer):
        return f"{self.args[0]}({', '.join(map(printer._print, self.args[3:]))})"


class OpaqueArray(sp.Function):
    """Opaque for a result that is not a matrix (a scalar, or more than two axes):
    OpaqueArray(name, 0, 0, *operands)."""

    is_commutative = True
    _latex = _opaque_latex
    _sympystr = Opaque._sympystr
