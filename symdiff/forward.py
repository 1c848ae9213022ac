"""Forward mode: push tangents through the graph in topological order.

Zeros are symbolic: a node none of whose sources carries a tangent gets none, and integer or
bool nodes never carry one. Tangents may have leading batch axes ``batch`` (one slice per
direction), which is how a whole Jacobian is pushed through at once.
"""
from . import frontend as F
from .dtypes import is_float
from .graph import toposort
from .ops import ELEMENTWISE, LEAVES
from .rules import JVP, pad


def _fit(t, n, batch):
    """Make a rule's result exactly batch + n.shape with n's dtype."""
    shape = batch + n.shape
    if t.shape != shape:
        t = F.broadcast_to(pad(t, len(batch), n.ndim), shape)
    return t if t.dtype == n.dtype else F.cast(t, n.dtype)


def jvp_graph(outputs, seeds, batch=()):
    """Tangent nodes of ``outputs`` (None where zero) given ``seeds`` {node: tangent}.

    Every seed has shape ``batch + node.shape``.
    """
    nb = len(batch)
    tan = dict(seeds)
    for n in toposort(outputs):
        if n in tan or n.op in LEAVES or not is_float(n.dtype) or JVP[n.op] is None:
            continue
        ts = [tan.get(s) for s in n.src]
        if all(t is None for t in ts):
            continue
        if nb and n.op in ELEMENTWISE:
            ts = [None if t is None else pad(t, nb, n.ndim) for t in ts]
        t = JVP[n.op](n, ts, nb)
        if t is not None:
            tan[n] = _fit(t, n, batch)
    return [tan.get(o) for o in outputs]
