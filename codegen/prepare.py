"""Graph passes that run before lowering: simplify, then rewrite the graph into the subset the
loop IR handles directly.

- stop_gradient is the identity once derivatives are formed;
- Op.FN nodes (sd.elementwise) expand into primitives through from_sympy;
- matmul operands get the matmul's dtype (BLAS needs one dtype);
- a vector . vector product, and integer matmuls, become a sum of products (no BLAS).
"""
import symdiff as sd
from symdiff.ops import Op
from symdiff.rewrite import P, Pat, Rule, RuleSet, rewrite
from symdiff.simplify import simplify

X = Pat.var("x")


def _expand_fn(n):
    from symdiff.sympy_bridge import from_sympy
    sf = n.arg
    out = from_sympy(sf.expr, dict(zip(sf.symbols, n.src)))
    return sd.cast(out, n.dtype)


def _matmul(n):
    a, b = n.src
    if n.dtype in ("float32", "float64"):
        if a.dtype != n.dtype or b.dtype != n.dtype:
            return sd.matmul(sd.cast(a, n.dtype), sd.cast(b, n.dtype))
        if a.ndim == 1 and b.ndim == 1:
            return sd.sum(a * b)                          # a . b
        return None
    # integer/bool matmul: sum over k of a[..., i, k] * b[..., k, j], no BLAS
    a2 = sd.reshape(a, (1,) + a.shape) if a.ndim == 1 else a
    b2 = sd.reshape(b, b.shape + (1,)) if b.ndim == 1 else b
    prod = sd.reshape(a2, a2.shape + (1,)) * sd.reshape(b2, b2.shape[:-2] + (1,) + b2.shape[-2:])
    out = sd.sum(sd.cast(prod, n.dtype), axis=-2)
    return sd.reshape(out, n.shape)


def _argmax(n):
    """argmax_mask over any axes -> over the last axis of a rank >= 2 array (the loop form):
    move the reduced axes last, merge them, add a leading axis if none is left, undo it all."""
    x, axes = n.src[0], tuple(a + n.ndim for a in n.arg)
    keep = tuple(a for a in range(n.ndim) if a not in axes)
    if axes == (n.ndim - 1,) and n.ndim >= 2:
        return None
    perm = keep + axes
    xt = sd.transpose(x, perm)
    lead = xt.shape[:len(keep)] or (1,)
    size = 1
    for a in axes:
        if not isinstance(x.shape[a], int):
            return None if len(axes) == 1 and not keep else None
        size *= x.shape[a]
    mask = sd.argmax_mask(sd.reshape(xt, lead + (size,)), -1)
    inverse = tuple(perm.index(a) for a in range(n.ndim))
    return sd.transpose(sd.reshape(mask, xt.shape), inverse)


def _last_axis(n):
    """cumsum/argmax along any axis -> along the last axis of a rank >= 2 array (the loop
    form: one row per outer iteration): move the axis last, add a leading axis to a vector."""
    x, a = n.src[0], n.arg + n.src[0].ndim
    if a == x.ndim - 1 and x.ndim >= 2:
        return None
    perm = tuple(i for i in range(x.ndim) if i != a) + (a,)
    xt = sd.transpose(x, perm)
    if xt.ndim == 1:
        xt = sd.reshape(xt, (1,) + xt.shape)
    out = sd.Node.make(n.op, (xt,), -1)
    if n.op is Op.ARGMAX:
        return sd.reshape(out, n.shape)
    out = sd.reshape(out, tuple(x.shape[p] for p in perm))
    return sd.transpose(out, tuple(perm.index(i) for i in range(x.ndim)))


LOWERABLE = RuleSet("lowerable", [
    Rule("cumsum/argmax -> along the last axis", Pat(frozenset({Op.CUMSUM, Op.ARGMAX})),
         lambda n: _last_axis(n)),
    Rule("argmax_mask -> argmax over the last axis", Pat(Op.ARGMAX_MASK), lambda n: _argmax(n)),
    Rule("stop_gradient(x) -> x", P(Op.STOP_GRADIENT, X), lambda n, x: x),
    Rule("fn(...) -> its SymPy expression in primitives", Pat(Op.FN), lambda n: _expand_fn(n)),
    Rule("matmul -> BLAS-ready matmul", Pat(Op.MATMUL), lambda n: _matmul(n)),
])


def _keepdims(n):
    """sum/max without keepdims is a unit reshape of the keepdims one: both share a buffer."""
    axes, keepdims = n.arg
    if keepdims:
        return None
    return sd.reshape(sd.Node.make(n.op, n.src, (axes, True)), n.shape)


KEEPDIMS = RuleSet("keepdims", [
    Rule("reduce(x) -> reshape(reduce(x, keepdims))", Pat(frozenset({Op.SUM, Op.MAX})),
         lambda n: _keepdims(n)),
])


def prepare(outputs):
    """Simplified graph outputs in the form ``lower`` accepts.

    LOWERABLE first (it removes stop_gradient, which changes every digest above it and so the
    canonical order: simplifying before it was a whole pass redone after it), then simplify;
    LOWERABLE again for what simplify made, and simplify again only if that changed anything.
    """
    outs = simplify(rewrite(list(outputs), LOWERABLE))
    again = rewrite(outs, LOWERABLE)
    if any(a is not b for a, b in zip(again, outs)):
        outs = simplify(again)
    return rewrite(outs, KEEPDIMS)
