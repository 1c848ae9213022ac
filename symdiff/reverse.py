"""Reverse mode: accumulate cotangents in reverse topological order (backpropagation).

This is the seeds' recursive form du_n/du_j = sum_{i: j in Pa(i)} du_n/du_i du_i/du_j: each
node is visited once, after all its consumers, so shared subexpressions cost nothing extra.
Only nodes on a path from a ``wrt`` node to an output are visited; zeros stay symbolic.
"""
from .dtypes import is_float
from .graph import toposort
from . import frontend as F
from .ops import LEAVES
from .rules import VJP, unbroadcast


def _depends(order, wrt):
    """The nodes of ``order`` that depend on some node of ``wrt`` (including those nodes)."""
    targets = set(wrt)
    dep = set()
    for n in order:
        if n in targets or any(s in dep for s in n.src):
            dep.add(n)
    return dep


def vjp_graph(outputs, cotangents, wrt, batch=()):
    """Cotangent nodes of ``wrt`` (None where zero) given one cotangent per output.

    Every cotangent has shape ``batch + output.shape``.
    """
    nb = len(batch)
    order = toposort(outputs)
    dep = _depends(order, wrt)
    ct = {}
    for o, c in zip(outputs, cotangents):
        if c is not None and o in dep:
            ct[o] = c if o not in ct else ct[o] + c
    for n in reversed(order):
        g = ct.get(n)
        if g is None or n.op in LEAVES or not is_float(n.dtype) or VJP[n.op] is None:
            continue
        for s, c in zip(n.src, VJP[n.op](n, g, nb)):
            if c is None or s not in dep or not is_float(s.dtype):
                continue
            if c.shape != batch + s.shape:
                c = unbroadcast(c, nb, s.shape)
            if c.dtype != s.dtype:
                c = F.cast(c, s.dtype)
            ct[s] = c if s not in ct else ct[s] + c
    return [ct.get(w) for w in wrt]
