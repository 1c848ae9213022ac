"""Derivative rules: JVP and VJP side by side, one entry per primitive, in enum order.

A JVP rule ``(n, t, nb) -> tangent`` gets the node ``n`` and one tangent per source (None =
symbolic zero); a VJP rule ``(n, g, nb) -> tuple`` gets the cotangent ``g`` of ``n`` and returns
one cotangent per source (None = no gradient). Rules build graph nodes, never numbers.

Tangents and cotangents may carry ``nb`` extra leading batch axes (all directions of a Jacobian
at once). Elementwise rules need no care: forward mode pads each source tangent to the node's
rank, and numpy broadcasting aligns from the right. Rules for reshapes, transposes, matmul and
reductions use ``nb`` explicitly; reduction axes are negative so they survive batching.
"""
import math

import numpy as np

from . import frontend as F
from . import tensor as T
from . import loop_rules as loops
from .dims import broadcast_shapes, is_concrete
from .ops import Op


# --- helpers -----------------------------------------------------------------------------
def pad(t, nb, rank):
    """Insert size-1 axes after the ``nb`` batch axes so that t has nb + rank axes."""
    k = nb + rank - t.ndim
    return t if k <= 0 else F.reshape(t, t.shape[:nb] + (1,) * k + t.shape[nb:])


def unbroadcast(c, nb, shape):
    """Sum a cotangent of shape batch + broadcast(shape) down to batch + shape."""
    batch = c.shape[:nb]
    extra = c.ndim - nb - len(shape)
    if extra < 0:
        return F.broadcast_to(pad(c, nb, len(shape)), batch + tuple(shape))
    if extra:                                     # leading axes that broadcasting added
        c = F.sum(c, tuple(range(nb, nb + extra)))
    ones = [nb + i for i, d in enumerate(shape) if d == 1 and c.shape[nb + i] != 1]
    if ones:                                      # axes where the input had size 1
        c = F.sum(c, ones, keepdims=True)
    return c if c.shape == batch + tuple(shape) else F.reshape(c, batch + tuple(shape))


def _add(a, b):
    """a + b with symbolic zeros."""
    return b if a is None else a if b is None else a + b


def _expand(g, n, nb):
    """Undo a reduction's dropped axes: g (batch + reduced shape) -> broadcast to batch + x.shape."""
    x = n.src[0]
    axes, keepdims = n.arg
    if not keepdims:
        red = {a + x.ndim for a in axes}
        g = F.reshape(g, g.shape[:nb] + tuple(1 if i in red else d for i, d in enumerate(x.shape)))
    return F.broadcast_to(g, g.shape[:nb] + x.shape)


def _batch_perm(perm, nb):
    return tuple(range(nb)) + tuple(p + nb for p in perm)


def _inverse(perm):
    inv = [0] * len(perm)
    for i, p in enumerate(perm):
        inv[p] = i
    return tuple(inv)


# --- matmul: promote vectors to matrices, apply the matrix rule, reshape back ------------
def _as_matrices(n):
    a, b = n.src
    a2 = F.reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = F.reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    return a2, b2


def _matmul_jvp(n, t, nb):
    a, b = n.src
    if nb == 0:      # d(A B) = dA B + A dB, numpy.matmul handles the vector cases
        return _add(None if t[0] is None else t[0] @ b, None if t[1] is None else a @ t[1])
    a2, b2 = _as_matrices(n)
    rank = max(a2.ndim, b2.ndim)
    batch = (t[0] if t[0] is not None else t[1]).shape[:nb]
    out = None
    if t[0] is not None:                          # dA B
        ta = F.reshape(t[0], batch + a2.shape)
        out = _add(out, _rows_matmul(ta, b2) if b2.ndim == 2 else pad(ta, nb, rank) @ b2)
    if t[1] is not None:                          # A dB
        tb = F.reshape(t[1], batch + b2.shape)
        out = _add(out, _left_matmul(a2, tb, nb, rank))
    return F.reshape(out, out.shape[:nb] + n.shape)


def _rows_matmul(t, b):
    """t @ b for a batched t (..., k) and a 2-D b as one GEMM over all rows of t.

    Against a unit seed (t is the identity, up to reshapes) no product is formed at all:
    I B = B, so the tangent of x @ W for the unit tangents of x is W itself.
    """
    lead = t.shape[:-1]
    if not is_concrete(lead):
        return t @ b
    unit = _batched_unit_product(t, b)
    if unit is not None:
        return unit
    rows = int(np.prod(lead, dtype=np.int64))
    flat = F.reshape(t, (rows, t.shape[-1]))
    diag = diagonal(flat)
    if diag is _DENSE:
        prod = flat @ b
    else:                                         # diag(v) B = v[:, None] * B: a row scaling
        prod = b if diag is None else F.reshape(diag, (rows, 1)) * b
    return F.reshape(prod, lead + b.shape[-1:])


def _batched_unit_product(t, b):
    """U @ B for the unit seed U of a batched operand X (shape (M*K,) + X.shape, X = (..., K))
    without a product: direction (i, j) holds row j of B in row i, zeros elsewhere, i.e.
    eye(M)[i, i'] * B[j, :] as a broadcast product (M K M h multiplies instead of M K M K h
    multiply-adds against a one-hot constant)."""
    base = _unreshape(t)
    n, k = t.shape[0], t.shape[-1]
    if t.ndim < 3 or base.op is not Op.CONST or base.shape != (n, n) or \
            not base.arg.identity or int(np.prod(t.shape[1:], dtype=np.int64)) != n:
        return None
    m, h = n // k, b.shape[-1]
    if m == 1:
        return None                  # a vector's unit seed: the identity path gives B itself
    eye = F.reshape(F.const(np.eye(m, dtype=t.dtype)), (m, 1, m, 1))
    return F.reshape(eye * F.reshape(b, (1, k, 1, h)), t.shape[:-1] + (h,))


def _left_matmul(a2, tb, nb, rank):
    """A dB for a batch of dB; with dB a batch of column vectors, one GEMM dB^T A^T."""
    if a2.ndim == 2 and tb.ndim == nb + 2 and tb.shape[-1] == 1:
        cols = _rows_matmul(F.reshape(tb, tb.shape[:-1]), F.matrix_transpose(a2))
        return F.reshape(cols, cols.shape + (1,))
    return a2 @ pad(tb, nb, rank)


_DENSE = object()


def _unreshape(t):
    while t.op is Op.RESHAPE:
        t = t.src[0]
    return t


def is_identity(t):
    """True when t is a square identity constant, possibly reshaped (a unit seed)."""
    base = _unreshape(t)
    return t.ndim == 2 and base.op is Op.CONST and base.shape == t.shape and base.arg.identity


def diagonal(t):
    """v when the square matrix t is diag(v), None when it is the identity, else _DENSE.

    A unit seed pushed through elementwise ops is I * f'(x): the diagonal elemental Jacobian.
    Recognizing it keeps it a row scaling instead of a dense diagonal matrix in a GEMM.
    """
    if t.ndim != 2 or t.shape[0] != t.shape[1]:
        return _DENSE
    if is_identity(t):
        return None
    n, base = t.shape[0], _unreshape(t)
    if base.shape != t.shape:
        return _DENSE
    if base.op is Op.NEG:
        d = diagonal(base.src[0])
        if d is None:
            return F.broadcast_to(F.const(-1, t.dtype), (n,))    # -I = diag(-1)
        return _DENSE if d is _DENSE else -d
    if base.op is not Op.MUL:
        return _DENSE
    for m, v in (base.src, base.src[::-1]):
        d = diagonal(m) if m.shape == t.shape else _DENSE
        if d is not _DENSE and v.shape in ((n,), (1, n), (n, 1), (1,), ()):
            v = F.reshape(v, (n,)) if v.size == n else F.broadcast_to(F.reshape(v, ()), (n,))
            return v if d is None else d * v
    return _DENSE


def _outer(u, v):
    """u v^T as a broadcast product."""
    return F.reshape(u, u.shape + (1,)) * v


def _matmul_vjp(n, g, nb):
    a, b = n.src
    if nb == 0 and a.ndim <= 2 and b.ndim <= 2 and (a.ndim == 1 or b.ndim == 1):
        if a.ndim == 1 and b.ndim == 1:
            return g * b, g * a                       # d(a . b) = b da + a db
        if b.ndim == 1:
            return _outer(g, b), F.matrix_transpose(a) @ g     # dA = g b^T, db = A^T g
        return b @ g, _outer(a, g)                    # da = B g, dB = a g^T
    if nb == 0 and a.ndim >= 2 and b.ndim >= 2:
        return g @ F.matrix_transpose(b), F.matrix_transpose(a) @ g   # dA = dC B^T, dB = A^T dC
    a2, b2 = _as_matrices(n)
    batch = g.shape[:nb]
    g2 = F.reshape(g, batch + _matmul_shape(a2, b2))
    rank = max(a2.ndim, b2.ndim)
    b2t = F.matrix_transpose(b2)                  # dA = dC B^T, dB = A^T dC, per direction
    ga = _rows_matmul(g2, b2t) if b2.ndim == 2 else g2 @ b2t
    gb = _left_matmul(F.matrix_transpose(a2), g2, nb, rank)
    ga, gb = unbroadcast(ga, nb, a2.shape), unbroadcast(gb, nb, b2.shape)
    return F.reshape(ga, batch + a.shape), F.reshape(gb, batch + b.shape)


def _matmul_shape(a2, b2):
    return broadcast_shapes(a2.shape[:-2], b2.shape[:-2]) + a2.shape[-2:-1] + b2.shape[-1:]


# --- JVP rules (tangent of n from tangents t of its sources) ------------------------------
JVP = {
    Op.NEG: lambda n, t, nb: -t[0],
    Op.EXP: lambda n, t, nb: t[0] * n,                             # d exp x = exp x dx
    Op.LOG: lambda n, t, nb: t[0] / n.src[0],                      # d log x = dx / x
    Op.LOG1P: lambda n, t, nb: t[0] / (1 + n.src[0]),
    Op.EXPM1: lambda n, t, nb: t[0] * (n + 1),
    Op.SQRT: lambda n, t, nb: t[0] / (2 * n),
    Op.TANH: lambda n, t, nb: t[0] * (1 - n * n),                  # tanh' = 1 - tanh^2
    Op.SIN: lambda n, t, nb: t[0] * F.cos(n.src[0]),
    Op.COS: lambda n, t, nb: -(t[0] * F.sin(n.src[0])),
    Op.ABS: lambda n, t, nb: t[0] * F.sign(n.src[0]),             # abs'(0) = sign(0) = 0
    Op.SIGN: None,
    Op.SIGMOID: lambda n, t, nb: t[0] * (n * (1 - n)),            # s' = s (1 - s)
    Op.SOFTPLUS: lambda n, t, nb: t[0] * F.sigmoid(n.src[0]),     # softplus' = sigmoid
    Op.CAST: lambda n, t, nb: F.cast(t[0], n.dtype),
    Op.STOP_GRADIENT: None,
    Op.FN: lambda n, t, nb: _fn_jvp(n, t),
    Op.LGAMMA: lambda n, t, nb: t[0] * F.digamma(n.src[0]),        # lgamma' = digamma
    Op.DIGAMMA: lambda n, t, nb: t[0] * F.polygamma(1, n.src[0]),  # digamma' = polygamma(1)
    Op.POLYGAMMA: lambda n, t, nb: t[0] * F.polygamma(n.arg + 1, n.src[0]),
    Op.ERF: lambda n, t, nb: t[0] * _erf_prime(n.src[0]),
    Op.ERFC: lambda n, t, nb: -(t[0] * _erf_prime(n.src[0])),     # erfc' = -erf'
    Op.LOG_NDTR: lambda n, t, nb: t[0] * _log_ndtr_prime(n),
    Op.ADD: lambda n, t, nb: _add(t[0], t[1]),
    Op.SUB: lambda n, t, nb: _add(t[0], None if t[1] is None else -t[1]),
    Op.MUL: lambda n, t, nb: _add(None if t[0] is None else t[0] * n.src[1],
                                  None if t[1] is None else n.src[0] * t[1]),
    Op.DIV: lambda n, t, nb: _add(None if t[0] is None else t[0] / n.src[1],
                                  None if t[1] is None else -(t[1] * (n / n.src[1]))),
    Op.POW: lambda n, t, nb: _add(
        None if t[0] is None else t[0] * (n.src[1] * n.src[0] ** (n.src[1] - 1)),
        None if t[1] is None else t[1] * (n * _safe_log(n.src[0]))),
    Op.MAXIMUM: lambda n, t, nb: _pick(n.src[0] >= n.src[1], t),   # ties go to the first
    Op.MINIMUM: lambda n, t, nb: _pick(n.src[0] <= n.src[1], t),
    Op.LT: None, Op.LE: None, Op.GT: None, Op.GE: None, Op.EQ: None, Op.NE: None,
    Op.WHERE: lambda n, t, nb: _pick(n.src[0], t[1:]),
    Op.SUM: lambda n, t, nb: F.sum(t[0], n.arg[0], n.arg[1]),
    Op.MAX: lambda n, t, nb: F.sum(F.where(F.argmax_mask(n.src[0], n.arg[0]), t[0], 0),
                                   n.arg[0], n.arg[1]),            # tangent at one argmax
    Op.MATMUL: _matmul_jvp,
    Op.TRANSPOSE: lambda n, t, nb: F.transpose(t[0], _batch_perm(n.arg, nb)),
    Op.RESHAPE: lambda n, t, nb: F.reshape(t[0], t[0].shape[:nb] + n.shape),
    Op.BROADCAST_TO: lambda n, t, nb: F.broadcast_to(pad(t[0], nb, n.ndim),
                                                     t[0].shape[:nb] + n.shape),
    Op.TAKE: lambda n, t, nb: F.take_rows(t[0], n.src[1]),
    Op.ONE_HOT: None,
    Op.ARGMAX_MASK: None,
    Op.IOTA: None,
    Op.SLICE: lambda n, t, nb: T.slice_axes(t[0], (None,) * nb + n.arg),
    Op.PAD: lambda n, t, nb: T.pad_axes(t[0], ((0, 0, 0),) * nb + n.arg[0]),   # pads with 0
    Op.FLIP: lambda n, t, nb: T.flip(t[0], n.arg),
    Op.CONCAT: lambda n, t, nb: _concat_jvp(n, t, nb),
    Op.GATHER: lambda n, t, nb: _gather(t[0], n, nb),
    Op.SCATTER_ADD: lambda n, t, nb: _scatter_jvp(n, t, nb),
    Op.CUMSUM: lambda n, t, nb: T.cumsum(t[0], n.arg),
    Op.ARGMAX: None,
    Op.SCAN: lambda n, t, nb: loops.scan_jvp(n, t, nb),          # the loop over (x, dx)
}


def _fn_partial(n, i):
    """d f / d arg_i as another elementwise function node (from sympy.diff)."""
    return F.Node.make(Op.FN, n.src, n.arg.partial(i))


def _fn_jvp(n, t):
    out = None
    for i, ti in enumerate(t):
        if ti is not None:
            out = _add(out, ti * _fn_partial(n, i))
    return out


def _erf_prime(x):
    """erf'(x) = 2 / sqrt(pi) exp(-x^2)."""
    return (2 / math.sqrt(math.pi)) * F.exp(-(x * x))     # Python floats: weak scalars


def _log_ndtr_prime(n):
    """log_ndtr'(x) = pdf(x) / cdf(x) = exp(-x^2/2 - log_ndtr(x)) / sqrt(2 pi): never divides
    by a tiny cdf (about -x for x << 0, finite down to x = -1e154)."""
    x = n.src[0]
    return F.exp(-0.5 * (x * x) - n) * (1 / math.sqrt(2 * math.pi))


def _pick(cond, t):
    """where(cond, ta, tb) with symbolic zeros."""
    ta, tb = t
    if ta is None and tb is None:
        return None
    return F.where(cond, 0 if ta is None else ta, 0 if tb is None else tb)


def _safe_log(x):
    """log x where x != 0, else 0: d(x^y)/dy = x^y log x is 0 at x = 0 (for y > 0)."""
    return F.log(F.where(F.equal(x, 0), 1, x))


# --- VJP rules (cotangents of the sources from the cotangent g of n) ----------------------
VJP = {
    Op.NEG: lambda n, g, nb: (-g,),
    Op.EXP: lambda n, g, nb: (g * n,),
    Op.LOG: lambda n, g, nb: (g / n.src[0],),
    Op.LOG1P: lambda n, g, nb: (g / (1 + n.src[0]),),
    Op.EXPM1: lambda n, g, nb: (g * (n + 1),),
    Op.SQRT: lambda n, g, nb: (g / (2 * n),),
    Op.TANH: lambda n, g, nb: (g * (1 - n * n),),
    Op.SIN: lambda n, g, nb: (g * F.cos(n.src[0]),),
    Op.COS: lambda n, g, nb: (-(g * F.sin(n.src[0])),),
    Op.ABS: lambda n, g, nb: (g * F.sign(n.src[0]),),
    Op.SIGN: None,
    Op.SIGMOID: lambda n, g, nb: (g * (n * (1 - n)),),
    Op.SOFTPLUS: lambda n, g, nb: (g * F.sigmoid(n.src[0]),),
    Op.CAST: lambda n, g, nb: (F.cast(g, n.src[0].dtype),),
    Op.STOP_GRADIENT: None,
    Op.FN: lambda n, g, nb: tuple(g * _fn_partial(n, i) for i in range(len(n.src))),
    Op.LGAMMA: lambda n, g, nb: (g * F.digamma(n.src[0]),),
    Op.DIGAMMA: lambda n, g, nb: (g * F.polygamma(1, n.src[0]),),
    Op.POLYGAMMA: lambda n, g, nb: (g * F.polygamma(n.arg + 1, n.src[0]),),
    Op.ERF: lambda n, g, nb: (g * _erf_prime(n.src[0]),),
    Op.ERFC: lambda n, g, nb: (-(g * _erf_prime(n.src[0])),),
    Op.LOG_NDTR: lambda n, g, nb: (g * _log_ndtr_prime(n),),
    Op.ADD: lambda n, g, nb: (g, g),
    Op.SUB: lambda n, g, nb: (g, -g),
    Op.MUL: lambda n, g, nb: (g * n.src[1], g * n.src[0]),
    Op.DIV: lambda n, g, nb: (g / n.src[1], -(g * (n / n.src[1]))),
    Op.POW: lambda n, g, nb: (g * (n.src[1] * n.src[0] ** (n.src[1] - 1)),
                              None if n.src[1].op is Op.CONST else g * (n * _safe_log(n.src[0]))),
    Op.MAXIMUM: lambda n, g, nb: _split(n.src[0] >= n.src[1], g),
    Op.MINIMUM: lambda n, g, nb: _split(n.src[0] <= n.src[1], g),
    Op.LT: None, Op.LE: None, Op.GT: None, Op.GE: None, Op.EQ: None, Op.NE: None,
    Op.WHERE: lambda n, g, nb: (None,) + _split(n.src[0], g),
    Op.SUM: lambda n, g, nb: (_expand(g, n, nb),),
    Op.MAX: lambda n, g, nb: (F.where(F.argmax_mask(n.src[0], n.arg[0]), _expand(g, n, nb), 0),),
    Op.MATMUL: _matmul_vjp,
    Op.TRANSPOSE: lambda n, g, nb: (F.transpose(g, _batch_perm(_inverse(n.arg), nb)),),
    Op.RESHAPE: lambda n, g, nb: (F.reshape(g, g.shape[:nb] + n.src[0].shape),),
    Op.BROADCAST_TO: lambda n, g, nb: (g,),                         # reverse unbroadcasts
    Op.TAKE: lambda n, g, nb: (_take_vjp(n, g), None),
    Op.ONE_HOT: None,
    Op.ARGMAX_MASK: None,
    Op.IOTA: None,
    Op.SLICE: lambda n, g, nb: (T.pad_axes(g, ((0, 0, 0),) * nb + _slice_pads(n)),),
    Op.PAD: lambda n, g, nb: (T.slice_axes(g, (None,) * nb + _pad_slices(n)),),
    Op.FLIP: lambda n, g, nb: (T.flip(g, n.arg),),
    Op.CONCAT: lambda n, g, nb: _concat_vjp(n, g, nb),
    Op.GATHER: lambda n, g, nb: (_scatter(_zeros(g, nb, n.src[0]), n, g, nb), None),
    Op.SCATTER_ADD: lambda n, g, nb: (g, None, _gather(g, n, nb)),
    Op.CUMSUM: lambda n, g, nb: (T.flip(T.cumsum(T.flip(g, n.arg), n.arg), n.arg),),  # sum_{j>=i}
    Op.ARGMAX: None,
    Op.SCAN: lambda n, g, nb: loops.scan_vjp(n, g, nb),          # the loop run backwards
}


def _split(cond, g):
    """(where(cond, g, 0), where(cond, 0, g)): the cotangent goes to the taken branch."""
    return F.where(cond, g, 0), F.where(cond, 0, g)


def _take_vjp(n, g):
    """Scatter g back along the last axis: g[..., None] * one_hot(idx)."""
    x, idx = n.src
    return F.reshape(g, g.shape + (1,)) * F.one_hot(idx, x.shape[-1], n.dtype)


# --- tensor language ---------------------------------------------------------------------
def _slice_pads(n):
    """The zero padding that puts a slice's cotangent back in place: (lo, hi, interior)."""
    out = []
    for d, s in zip(n.src[0].shape, n.arg):
        if s is None:
            out.append((0, 0, 0))
        elif s[2] == 0:
            out.append((d, 0, 0))
        else:
            start, step, size = s
            out.append((start, d - start - (size - 1) * step - 1, step - 1))
    return tuple(out)


def _pad_slices(n):
    """The slice of a padded array that holds the original elements."""
    return tuple(None if w == (0, 0, 0) else (w[0], w[2] + 1, d)
                 for d, w in zip(n.src[0].shape, n.arg[0]))


def _zeros(g, nb, like):
    return F.broadcast_to(F.const(0, g.dtype), g.shape[:nb] + like.shape)


def _concat_jvp(n, t, nb):
    batch = next(x for x in t if x is not None).shape[:nb]
    parts = [x if x is not None else F.broadcast_to(F.const(0, n.dtype), batch + s.shape)
             for x, s in zip(t, n.src)]
    return T.concatenate(parts, n.arg)


def _concat_vjp(n, g, nb):
    out, at = [], 0
    for s in n.src:
        size = s.shape[n.arg]
        spec = [None] * g.ndim
        spec[n.arg] = (at, 1, size)
        out.append(T.slice_axes(g, spec))
        at += size
    return tuple(out)


def _batched_index(n, nb, lead):
    """(idx, (axis, batch)) of a gather/scatter node for values with ``nb`` batch axes: the
    axis shifts by nb; with batch dims, the index is broadcast over the new leading axes."""
    idx, (axis, batch) = n.src[1], n.arg
    if nb == 0:
        return idx, n.arg
    if batch == 0:
        return idx, (axis + nb, 0)
    return F.broadcast_to(idx, lead + idx.shape), (axis + nb, batch + nb)


def _gather(x, n, nb):
    """Gather x (batch + source shape) as node n gathers."""
    idx, arg = _batched_index(n, nb, x.shape[:nb])
    return F.Node.make(Op.GATHER, (x, idx), arg)


def _scatter(x, n, upd, nb):
    """Scatter-add upd (batch + gathered shape) into x (batch + source shape) as n indexes."""
    idx, arg = _batched_index(n, nb, x.shape[:nb])
    return F.Node.make(Op.SCATTER_ADD, (x, idx, upd), arg)


def _scatter_jvp(n, t, nb):
    tx, _, tu = t
    if tu is None:
        return tx
    batch = tu.shape[:nb]
    base = F.broadcast_to(pad(tx, nb, n.ndim), batch + n.shape) if tx is not None else \
        F.broadcast_to(F.const(0, n.dtype), batch + n.shape)
    if tu.dtype != n.dtype:
        tu = F.cast(tu, n.dtype)
    return _scatter(F.cast(base, n.dtype), n, tu, nb)


DIFFERENTIABLE = frozenset(op for op, rule in JVP.items() if rule is not None)
