"""einsum: Einstein summation lowered to transposes, reshapes and matmuls (BLAS) where a
contraction is a GEMM, and to a broadcast product and a sum (fused loops) otherwise.

out[r] = sum over the letters not in the output of prod_k operand_k[letters_k]. With three or
more operands the pairwise order is NumPy's ``einsum_path(optimize="optimal")`` on the
operands' shapes (symbolic dims counted as 64). Derivatives need no rule: the derivative of a
matmul is a matmul of the cotangent, i.e. einsum of the cotangent.

>>> import symdiff as sd, numpy as np
>>> a, b = sd.var("a", (2, 3)), sd.var("b", (4, 3, 5))
>>> c = sd.einsum("ij,kjl->kil", a, b)
>>> A, B = np.ones((2, 3)), np.ones((4, 3, 5))
>>> np.allclose(sd.evaluate(c, {a: A, b: B}), np.einsum("ij,kjl->kil", A, B))
True
"""
import math

import numpy as np

from .dims import Dim
from .errors import ShapeError
from .frontend import as_node, matmul, reshape, transpose
from .frontend import sum as _sum
from .joins import diagonal

_SPARE = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"      # letters for the dims an ellipsis stands for


def einsum(subscripts, *operands):
    """numpy.einsum on nodes: explicit ("ij,jk->ik") or implicit ("ij,jk") output, "..." for
    broadcast leading dims, repeated letters in one operand for its diagonal."""
    ops = [as_node(o) for o in operands]
    ins, out = _parse(subscripts.replace(" ", ""), ops)
    sizes = _sizes(ins, ops, subscripts)
    terms = [_unique(t, o) for t, o in zip(ins, ops)]
    terms = [_presum(t, o, [u for j, (u, _) in enumerate(terms) if j != i], out)
             for i, (t, o) in enumerate(terms)]
    for a, b in _order([t for t, _ in terms], out, sizes):
        (ta, xa), (tb, xb) = terms[a], terms[b]
        later = set(out).union(*(t for k, (t, _) in enumerate(terms) if k not in (a, b)))
        keep = "".join(c for c in dict.fromkeys(ta + tb) if c in later)
        terms = [t for k, t in enumerate(terms) if k not in (a, b)] + \
            [_contract(ta, xa, tb, xb, keep, out)]
    (t, x), = terms
    t, x = _presum(t, x, [], out)
    return transpose(x, tuple(t.index(c) for c in out)) if t != out else x


def _parse(spec, ops):
    if "->" in spec:
        lhs, out = spec.split("->")
    else:
        lhs, out = spec, None
    ins = lhs.split(",")
    if len(ins) != len(ops):
        raise ShapeError(f"einsum: {len(ins)} operand subscripts for {len(ops)} operands")
    width = max((o.ndim - len(t.replace("...", "")) for t, o in zip(ins, ops) if "..." in t),
                default=0)
    ell = _SPARE[:width]
    ins = [t.replace("...", ell[width - (o.ndim - len(t) + 3):]) if "..." in t else t
           for t, o in zip(ins, ops)]
    if out is None:
        letters = "".join(ins)
        out = ell + "".join(sorted(c for c in set(letters) if letters.count(c) == 1
                                   and c not in ell))
    else:
        out = out.replace("...", ell)
    for t, o in zip(ins, ops):
        if len(t) != o.ndim or not all(c.isalpha() for c in t):
            raise ShapeError(f"einsum: subscripts {t!r} do not fit operand "
                             f"`{o.name}` of shape {o.shape}")
    if len(set(out)) != len(out) or any(c not in "".join(ins) for c in out):
        raise ShapeError(f"einsum: output subscripts {out!r} repeat a letter or name one no "
                         f"operand has")
    return ins, out


def _sizes(ins, ops, spec):
    sizes = {}
    for t, o in zip(ins, ops):
        for c, d in zip(t, o.shape):
            e = sizes.get(c, 1)
            if e == 1 or d == e or isinstance(d, Dim) or isinstance(e, Dim):
                sizes[c] = e if d == 1 else d
            elif d != 1:
                raise ShapeError(f"einsum {spec!r}: letter {c!r} has sizes {e} and {d}")
    return sizes


def _unique(t, x):
    """Repeated letters in one operand take the diagonal: 'ii' -> 'i'."""
    while len(set(t)) != len(t):
        c = next(c for c in t if t.count(c) > 1)
        i = t.index(c)
        j = t.index(c, i + 1)
        x = diagonal(x, 0, i, j)
        t = "".join(ch for k, ch in enumerate(t) if k not in (i, j)) + c
    return t, x


def _presum(t, x, others, out):
    """Sum out the letters no other operand and not the output has."""
    gone = [i for i, c in enumerate(t) if c not in out and not any(c in o for o in others)]
    if not gone:
        return t, x
    return "".join(c for i, c in enumerate(t) if i not in gone), _sum(x, tuple(gone))


def _order(terms, out, sizes):
    """Pairs (positions in the shrinking list of terms) to contract, in order."""
    if len(terms) <= 1:
        return []
    if len(terms) == 2:
        return [(0, 1)]
    shapes = [np.broadcast_to(np.empty(()), tuple(_guess(sizes[c]) for c in t)) for t in terms]
    path, _ = np.einsum_path(",".join(terms) + "->" + out, *shapes, optimize="optimal")
    return [tuple(sorted(p)) for p in path[1:]]


def _guess(d):
    return 64 if isinstance(d, Dim) else d


def _contract(ta, xa, tb, xb, keep, out):
    """(letters, node) of the pairwise product summed over the letters not in ``keep``."""
    batch = [c for c in ta if c in tb and c in keep]
    con = [c for c in ta if c in tb and c not in keep]
    left = [c for c in ta if c not in tb]
    right = [c for c in tb if c not in ta]
    if con and _gemm_ok(xa, ta, xb, tb, left, con, right, batch):
        # A B or (B^T A^T): the product's last axis should be the output's innermost letter,
        # so that putting the result in output order reads it in contiguous runs
        last = next((c for c in reversed(out) if c in left + right), None)
        if last in left and right:
            return _gemm(tb, xb, ta, xa, batch, right, con, left)
        return _gemm(ta, xa, tb, xb, batch, left, con, right)
    letters = batch + left + right + con                  # broadcast product, then a sum
    pa = _align(ta, xa, letters)
    pb = _align(tb, xb, letters)
    prod = pa * pb
    if con:
        prod = _sum(prod, tuple(range(len(letters) - len(con), len(letters))))
    return "".join(batch + left + right), prod


def _align(t, x, letters):
    """x transposed to the order of ``letters`` with size-1 axes for the letters it lacks."""
    own = [c for c in letters if c in t]
    x = transpose(x, tuple(t.index(c) for c in own)) if own != list(t) else x
    shape = tuple(x.shape[own.index(c)] if c in own else 1 for c in letters)
    return reshape(x, shape) if shape != x.shape else x


def _gemm_ok(xa, ta, xb, tb, left, con, right, batch):
    """Merging letters into one GEMM dim needs concrete sizes and no broadcast mismatch."""
    def dims(x, t, group):
        return [x.shape[t.index(c)] for c in group]
    for group in (left, con):
        ds = dims(xa, ta, group)
        if len(ds) > 1 and any(isinstance(d, Dim) for d in ds):
            return False
    for group in (con, right):
        ds = dims(xb, tb, group)
        if len(ds) > 1 and any(isinstance(d, Dim) for d in ds):
            return False
    return all(xa.shape[ta.index(c)] == xb.shape[tb.index(c)] or
               isinstance(xa.shape[ta.index(c)], Dim) or isinstance(xb.shape[tb.index(c)], Dim)
               for c in con)


def _merged(dims):
    if len(dims) == 1:
        return dims[0]
    return math.prod(dims) if dims else 1


def _gemm(ta, xa, tb, xb, batch, left, con, right):
    """(batch, left, con) @ (batch, con, right) through matmul, then split left and right."""
    a = transpose(xa, tuple(ta.index(c) for c in batch + left + con))
    b = transpose(xb, tuple(tb.index(c) for c in batch + con + right))
    nb = len(batch)
    ld, cd = a.shape[nb:nb + len(left)], a.shape[nb + len(left):]
    rd = b.shape[nb + len(con):]
    a2 = reshape(a, a.shape[:nb] + (_merged(ld), _merged(cd)))
    b2 = reshape(b, b.shape[:nb] + (_merged(cd), _merged(rd)))
    c = matmul(a2, b2)
    return "".join(batch + left + right), reshape(c, c.shape[:nb] + tuple(ld) + tuple(rd))
