"""Named rule sets for the rewrite engine, one rule per line, each named by its identity.

- FOLD evaluates constant subgraphs through the semantics table (small or uniform results).
- ALGEBRA: identities that remove work. x * 0 -> 0 and x - x -> 0 fire only where x cannot be
  inf or NaN (a constant, a one-hot, a comparison...), so they never hide a NaN the unsimplified
  graph would produce; x / x is left alone for the same reason.
- CANONICAL: constants first in commutative ops, then a stable structural order, so that
  a * b and b * a become one node (CSE is hash-consing).
- STABILIZE: numerically stable forms (log sigmoid -> -softplus, log softmax -> log_softmax,
  log(1 + x) -> log1p...). ``grad`` applies it to the function before differentiating.
Dead code vanishes by construction: a graph is what its outputs reach.
"""
import numpy as np

from . import frontend as F
from .dims import Dim, broadcast_shapes
from .graph import Node, digest, flatten, shape_digest, unflatten
from .ops import BINARY, COMPARE, ELEMENTWISE, LEAVES, Op
from .rewrite import CONST_OPS, P, Pat, Rule as R, RuleSet, rewrite, single_use, uniform_value
from .semantics import apply

X, Y, Z, W = Pat.var("x"), Pat.var("y"), Pat.var("z"), Pat.var("w")
C, D = Pat.const(name="c"), Pat.const(name="d")
SC = Pat.var("c", lambda n: n.ndim == 0)     # any scalar (a constant or e.g. 1 / batch size)


def S(pat):
    """``pat`` restricted to nodes with one consumer: rewriting it away must not duplicate work."""
    return Pat(pat.op, pat.src, pat.name, single_use if pat.pred is None else
               (lambda n, p=pat.pred: p(n) and single_use(n)))
FOLD_LIMIT = 4096       # fold a constant subgraph only into this many elements (or a uniform one)


# --- predicates --------------------------------------------------------------------------
def is_const(n):
    return uniform_value(n) is not None or n.op is Op.CONST


def finite(n, depth=6):
    """True when ``n`` can never hold inf or NaN, whatever its inputs."""
    if n.op is Op.CONST:
        return n.arg.value.dtype.kind != "f" or bool(np.all(np.isfinite(n.arg.value)))
    if n.op in COMPARE or n.op in (Op.ONE_HOT, Op.ARGMAX_MASK, Op.DIM):
        return True
    if n.dtype not in ("float32", "float64"):
        return n.op is not Op.VAR or True
    if depth and n.op in (Op.BROADCAST_TO, Op.RESHAPE, Op.TRANSPOSE, Op.NEG, Op.CAST):
        return finite(n.src[0], depth - 1)
    return False


def nonnegative(n):
    """True when every value of ``n`` is >= 0 (or NaN)."""
    if n.op in (Op.EXP, Op.SIGMOID, Op.SOFTPLUS, Op.SQRT, Op.ABS, Op.DIM):
        return True
    if n.op is Op.MUL and n.src[0] is n.src[1]:
        return True
    return n.op is Op.CONST and bool(np.all(n.arg.value >= 0))


def _scalar(value, like):
    return F.const(value, like.dtype if like.dtype in ("float32", "float64") else None)


# --- folding -----------------------------------------------------------------------------
_UNFOLDED = LEAVES | {Op.BROADCAST_TO}


def _foldable(n):
    """Is ``n`` an operation (not a leaf or a broadcast) whose sources are all constant?
    (Tried on every node: the op tests come before is_const.)"""
    if n.op in _UNFOLDED or not n.src:
        return False
    for s in n.src:
        if s.op not in CONST_OPS or not is_const(s):
            return False
    return True


def _fold(n):
    """Evaluate a node whose sources are all constant."""
    if n.op in ELEMENTWISE and all(uniform_value(s) is not None for s in n.src):
        vals = [np.asarray(uniform_value(s), dtype=s.dtype) for s in n.src]
        out = apply(n, vals, ())
        return F.broadcast_to(F.const(out, n.dtype), n.shape)
    if not all(s.op is Op.CONST for s in n.src) or not all(isinstance(d, int) for d in n.shape):
        return None
    if int(np.prod(n.shape, dtype=np.int64)) > FOLD_LIMIT:
        return None
    out = apply(n, [s.arg.value for s in n.src], n.shape)
    return F.const(out, n.dtype)


def _scalar_const(n):
    """A constant array whose elements are all equal is a broadcast scalar."""
    if n.ndim and n.arg.uniform is not None:
        return F.broadcast_to(F.const(n.arg.uniform, n.dtype), n.shape)
    return None


FOLD = RuleSet("fold", [
    R("constant subgraph -> its value", Pat(pred=_foldable), lambda n: _fold(n)),
    R("uniform constant array -> broadcast scalar", Pat(Op.CONST), _scalar_const),
])


# --- algebra -----------------------------------------------------------------------------
def _zero(n, **_):
    return _scalar(0, n)


def _drop_broadcasts(n):
    """op(broadcast_to(x), y) -> op(x, y) when broadcasting x against y already gives n's shape."""
    if n.op not in BINARY and n.op not in COMPARE and n.op is not Op.WHERE:
        return None
    src = list(n.src)
    for i, s in enumerate(src):
        if s.op is Op.BROADCAST_TO or _adds_leading_ones(s):
            trial = src[:i] + [s.src[0]] + src[i + 1:]
            if broadcast_shapes(*(t.shape for t in trial)) == n.shape:
                src = trial
    return None if src == list(n.src) else Node.make(n.op, tuple(src), n.arg)


def _adds_leading_ones(s):
    """A reshape that only prepends size-1 axes (implicit under broadcasting)."""
    if s.op is not Op.RESHAPE:
        return False
    k = s.ndim - s.src[0].ndim
    return k > 0 and s.shape[:k] == (1,) * k and s.shape[k:] == s.src[0].shape


def _reshape_of_sum(n, x):
    """reshape(sum(x, keepdims)) that drops the kept axes, or reinserts the dropped ones, is
    the other form of the same sum."""
    axes, keepdims = n.src[0].arg
    other = F.sum(x, axes, not keepdims)
    return other if other.shape == n.shape else None


def _reshape_into_scalar_op(n, x, c):
    """reshape(x op c) -> reshape(x) op c for a scalar constant c (elementwise op)."""
    op = n.src[0]
    if op.op not in BINARY or c.ndim != 0:
        return None
    src = tuple(F.reshape(s, n.shape) if s is x else s for s in op.src)
    return Node.make(op.op, src, op.arg)


def _positive_factor(n, c, x, y):
    v = uniform_value(c)
    return (-c) * (y - x) if c.ndim == 0 and v < 0 else None


def _opposite_factors(n, c, x, d, y):
    cv, dv = uniform_value(c), uniform_value(d)
    return c * (x - y) if cv == -dv and c.ndim == 0 and d.ndim == 0 else None


def _size(x, d):
    return F.size_of(d, x.dtype) if isinstance(d, Dim) else _scalar(d, x)


def _sum_of_broadcast(n, x):
    """sum(broadcast_to(x, S)) over broadcast axes is a multiplication by their sizes."""
    b = n.src[0]
    axes, keepdims = n.arg
    k = b.ndim - x.ndim
    real, scale = [], None
    for a in (a + b.ndim for a in axes):
        if a < k or (x.shape[a - k] == 1 and b.shape[a] != 1):
            f = _size(x, b.shape[a])
            scale = f if scale is None else scale * f
        elif b.shape[a] != 1:
            real.append(a - k)
    if scale is None:
        return None
    y = F.sum(x, real, keepdims=True) if real else x
    kept = tuple(1 if i - b.ndim in axes else d for i, d in enumerate(b.shape))
    y = F.broadcast_to(scale * y, kept)
    return y if keepdims else F.reshape(y, n.shape)


def _sum_of_size_one_axes(n, x):
    axes, _ = n.arg
    if all(x.shape[a] == 1 for a in axes):
        return F.reshape(x, n.shape)
    return None


def _transpose_pair(n, x):
    inner = n.src[0].arg
    return F.transpose(x, tuple(inner[p] for p in n.arg))


def _pow_int(n, x, c):
    """x ** k for small integer k as products (exact: one rounding per product, like numpy)."""
    k = uniform_value(c)
    table = {2: lambda: x * x, 3: lambda: (x * x) * x, -1: lambda: 1 / x,
             -2: lambda: 1 / (x * x), 0.5: lambda: F.sqrt(x)}
    return table[k]() if k in table else None


ALGEBRA = RuleSet("algebra", [
    R("x + 0 -> x", X + 0, lambda n, x: x),
    R("x - 0 -> x", X - 0, lambda n, x: x),
    R("0 - x -> -x", 0 - X, lambda n, x: -x),
    R("x * 1 -> x", X * 1, lambda n, x: x),
    R("x / 1 -> x", X / 1, lambda n, x: x),
    R("x * -1 -> -x", X * -1, lambda n, x: -x),
    R("x * 0 -> 0 (x finite)", Pat.var("x", finite) * 0, _zero),
    R("x ** 1 -> x", X ** 1, lambda n, x: x),
    R("x ** 0 -> 1", X ** 0, lambda n, x: _scalar(1, n)),
    R("x ** k -> products (k = 2, 3, -1, -2, 1/2)", X ** C, _pow_int),
    R("--x -> x", -(-X), lambda n, x: x),
    R("-(x - y) -> y - x", -S(X - Y), lambda n, x, y: y - x),
    R("-(c * x) -> (-c) * x", -S(C * X), lambda n, c, x: (-c) * x),
    R("x + -y -> x - y", X + (-Y), lambda n, x, y: x - y),
    R("x - -y -> x + y", X - (-Y), lambda n, x, y: x + y),
    R("-x - y -> -(x + y)", S(-X) - Y, lambda n, x, y: -(x + y)),
    R("(-x) * y -> -(x * y)", S(-X) * Y, lambda n, x, y: -(x * y)),
    R("(-x) / y -> -(x / y)", S(-X) / Y, lambda n, x, y: -(x / y)),
    R("x / -y -> -(x / y)", X / S(-Y), lambda n, x, y: -(x / y)),
    R("x - x -> 0 (x finite)", P(Op.SUB, Pat.var("x", finite), X), _zero),
    R("x + x -> 2 * x", X + X, lambda n, x: 2 * x),
    R("(x + y) + x -> 2 * x + y", S(X + Y) + X, lambda n, x, y: 2 * x + y),
    R("c * x + d * x -> (c + d) * x", S(C * X) + S(D * X), lambda n, c, d, x: (c + d) * x),
    R("c * x + d * y -> c * (x - y) (d = -c)", S(C * X) + S(D * Y), _opposite_factors),
    R("c * (x - y) -> (-c) * (y - x) (c < 0)", C * S(X - Y), _positive_factor),
    R("c * (d * x) -> (c * d) * x", C * S(D * X), lambda n, c, d, x: (c * d) * x),
    R("c * (x / d) -> (c / d) * x", C * S(X / D), lambda n, c, d, x: (c / d) * x),
    R("(c * x) / d -> (c / d) * x", S(C * X) / D, lambda n, c, d, x: (c / d) * x),
    R("(x / c) / d -> x / (c * d)", S(X / C) / D, lambda n, c, d, x: x / (c * d)),
    R("x * (y * c) -> c * (x * y)", X * S(Y * C), lambda n, x, y, c: c * (x * y)),
    # x must not be a scalar too: with both 0-d the rule maps s * (t / u) to t * (s / u) and
    # back, forever (issue 12); for an array x it moves the scalar c outwards, once.
    R("x * (c / y) -> c * (x / y) (c scalar, x not)", Pat.var("x", lambda n: n.ndim > 0) *
      S(SC / Y), lambda n, x, y, c: c * (x / y)),
    R("x * y + x * z -> x * (y + z)", S(X * Y) + S(X * Z), lambda n, x, y, z: x * (y + z)),
    R("x * y - x * z -> x * (y - z)", S(X * Y) - S(X * Z), lambda n, x, y, z: x * (y - z)),
    R("x * y + x -> x * (y + 1)", S(X * Y) + X, lambda n, x, y: x * (y + 1)),
    R("x * y - x -> x * (y - 1)", S(X * Y) - X, lambda n, x, y: x * (y - 1)),
    R("x - x * y -> x * (1 - y)", X - S(X * Y), lambda n, x, y: x * (1 - y)),
    R("x / z + y / z -> (x + y) / z", S(X / Z) + S(Y / Z), lambda n, x, y, z: (x + y) / z),
    R("x / z - y / z -> (x - y) / z", S(X / Z) - S(Y / Z), lambda n, x, y, z: (x - y) / z),
    R("c * (d * x + y) -> (c * d) * x + c * y",
      C * S(S(D * X) + Y), lambda n, c, d, x, y: (c * d) * x + c * y),
    R("op(broadcast_to(x), y) -> op(x, y) (implicit broadcast)",
      Pat(BINARY | COMPARE | {Op.WHERE}), lambda n: _drop_broadcasts(n)),
    R("sum(broadcast_to(x)) -> size * x", P(Op.SUM, P(Op.BROADCAST_TO, X)), _sum_of_broadcast),
    R("sum over size-1 axes -> reshape", P(Op.SUM, X), _sum_of_size_one_axes),
    R("transpose(transpose(x)) -> transpose(x)", P(Op.TRANSPOSE, P(Op.TRANSPOSE, X)),
      _transpose_pair),
    R("reshape(reshape(x)) -> reshape(x)", P(Op.RESHAPE, P(Op.RESHAPE, X)),
      lambda n, x: F.reshape(x, n.shape)),
    R("reshape(sum(x)) -> sum(x) with the other keepdims", P(Op.RESHAPE, P(Op.SUM, X)),
      _reshape_of_sum),
    R("reshape(x) -> broadcast_to(x) (x scalar)", P(Op.RESHAPE, Pat.var("x", lambda n: n.ndim == 0)),
      lambda n, x: F.broadcast_to(x, n.shape)),
    R("reshape(broadcast_to(c)) -> broadcast_to(c) (c scalar)",
      P(Op.RESHAPE, P(Op.BROADCAST_TO, Pat.var("c", lambda n: n.ndim == 0))),
      lambda n, c: F.broadcast_to(c, n.shape)),
    R("reshape(x op c) -> reshape(x) op c (c scalar)",
      P(Op.RESHAPE, Pat(BINARY, (X, SC), pred=single_use)), _reshape_into_scalar_op),
    R("reshape(c op x) -> c op reshape(x) (c scalar)",
      P(Op.RESHAPE, Pat(BINARY, (SC, X), pred=single_use)), _reshape_into_scalar_op),
    R("broadcast_to(broadcast_to(x)) -> broadcast_to(x)",
      P(Op.BROADCAST_TO, P(Op.BROADCAST_TO, X)), lambda n, x: F.broadcast_to(x, n.shape)),
    R("broadcast_to(-x) -> -broadcast_to(x)", P(Op.BROADCAST_TO, S(-X)),
      lambda n, x: -F.broadcast_to(x, n.shape)),
    R("reshape(-x) -> -reshape(x)", P(Op.RESHAPE, S(-X)), lambda n, x: -F.reshape(x, n.shape)),
    R("where(c, x, x) -> x", P(Op.WHERE, Y, X, X), lambda n, x, y: x),
    R("where(c, x, 0) * y -> where(c, x * y, 0)", S(P(Op.WHERE, Z, X, 0)) * Y,
      lambda n, x, y, z: F.where(z, x * y, 0)),
    R("-where(c, x, 0) -> where(c, -x, 0)", -S(P(Op.WHERE, Z, X, 0)),
      lambda n, x, z: F.where(z, -x, 0)),
    R("maximum(x, x) -> x", P(Op.MAXIMUM, X, X), lambda n, x: x),
    R("minimum(x, x) -> x", P(Op.MINIMUM, X, X), lambda n, x: x),
    R("exp(log x) -> x (x >= 0)", P(Op.EXP, P(Op.LOG, Pat.var("x", nonnegative))),
      lambda n, x: x),
    R("log(exp x) -> x", P(Op.LOG, P(Op.EXP, X)), lambda n, x: x),
    R("stop_gradient(stop_gradient(x)) -> stop_gradient(x)",
      P(Op.STOP_GRADIENT, P(Op.STOP_GRADIENT, X)), lambda n, x: n.src[0]),
])


# --- canonical order ---------------------------------------------------------------------
def _order_key(n):
    """Constants first, then by structure blind to names (renaming vars keeps the order, and
    so the kernel and its cache entry); ties go to the full digest (``_reorder``: x + y and
    y + x of two vars alike but for their names still become one node)."""
    return (0 if is_const(n) else 1, shape_digest(n))


def _reorder(n):
    a, b = n.src
    ka, kb = _order_key(a), _order_key(b)
    # the full digest only on a tie: most pairs differ in structure, and a digest of every
    # node a rule builds was a quarter of simplify's time on 10,000-op graphs
    swap = kb < ka if ka != kb else digest(b) < digest(a)
    return Node.make(n.op, (b, a), n.arg) if swap else None


CANONICAL = RuleSet("canonicalize", [
    R("a op b -> b op a (constants first, then a stable order)",
      Pat(frozenset({Op.ADD, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.EQ, Op.NE})), _reorder),
])


# --- stabilize ---------------------------------------------------------------------------
SIG = P(Op.SIGMOID, Z)
STABILIZE = RuleSet("stabilize", [
    R("log(sigmoid(z)) -> -softplus(-z)", P(Op.LOG, SIG), lambda n, z: -F.softplus(-z)),
    R("log(1 - sigmoid(z)) -> -softplus(z)", P(Op.LOG, 1 - SIG), lambda n, z: -F.softplus(z)),
    R("log(exp(x) / y) -> x - log(y)  (log softmax)", P(Op.LOG, P(Op.EXP, X) / Y),
      lambda n, x, y: x - F.log(y)),
    R("log(1 + exp(x)) -> softplus(x)", P(Op.LOG, 1 + P(Op.EXP, X)), lambda n, x: F.softplus(x)),
    R("log1p(exp(x)) -> softplus(x)", P(Op.LOG1P, P(Op.EXP, X)), lambda n, x: F.softplus(x)),
    R("log(1 + x) -> log1p(x)", P(Op.LOG, 1 + X), lambda n, x: F.log1p(x)),
    R("exp(x) - 1 -> expm1(x)", P(Op.EXP, X) - 1, lambda n, x: F.expm1(x)),
    R("1 / (1 + exp(-x)) -> sigmoid(x)", 1 / (1 + P(Op.EXP, -X)), lambda n, x: F.sigmoid(x)),
    # any other exponent, e.g. exp(-2 s) (a product with a constant, not a negation): the
    # written form's derivative exp(x) / (1 + exp(x))^2 is inf / inf = NaN at x = 900
    R("1 / (1 + exp(x)) -> sigmoid(-x)", 1 / (1 + P(Op.EXP, X)), lambda n, x: F.sigmoid(-x)),
])

# Fused forms recognized before anything inside them is rewritten (their inner logs would
# otherwise be stabilized one by one, leaving a form whose gradient does not simplify).
ONE_MINUS_Y, LOG_SIG, LOG_1M_SIG = 1 - Y, P(Op.LOG, SIG), P(Op.LOG, 1 - SIG)
FUSED = RuleSet("fused losses", [
    R("y log s(z) + (1 - y) log(1 - s(z)) -> y z - softplus(z)",
      Y * LOG_SIG + ONE_MINUS_Y * LOG_1M_SIG, lambda n, y, z: y * z - F.softplus(z)),
    R("-y log s(z) - (1 - y) log(1 - s(z)) -> softplus(z) - y z",
      (-Y) * LOG_SIG - ONE_MINUS_Y * LOG_1M_SIG, lambda n, y, z: F.softplus(z) - y * z),
    R("-(y log s(z)) - (1 - y) log(1 - s(z)) -> softplus(z) - y z",
      -(Y * LOG_SIG) - ONE_MINUS_Y * LOG_1M_SIG, lambda n, y, z: F.softplus(z) - y * z),
])

DEFAULT = FOLD + STABILIZE + ALGEBRA + CANONICAL
FOLD_STABILIZE = FOLD + STABILIZE      # one object: its record of settled nodes is kept


def simplify(outputs, rules=None, trace=False):
    """Simplify node(s): constant folding, algebra, canonical order, stable forms.

    Returns the same structure as ``outputs`` (and a list of (rule, before, after) when
    ``trace=True``). Idempotent; values change only by floating-point rounding.

    >>> import symdiff as sd
    >>> x = sd.var("x", (3,))
    >>> str(sd.simplify(sd.log(sd.sigmoid(x * 1 + 0))))
    '-softplus(-x)'
    """
    log = [] if trace else None
    new = flatten(outputs)
    if rules is None:
        new = rewrite(new, FUSED, log)
    new = rewrite(new, rules or DEFAULT, log)
    result = unflatten(outputs, new)
    return (result, log) if trace else result


def stabilize(outputs):
    """Apply only the fused-loss and STABILIZE rules (and folding): the form ``grad``
    differentiates."""
    return rewrite(rewrite(flatten(outputs), FUSED), FOLD_STABILIZE)
