"""Jacobian chains: the single-tensor cuts between an input x and an output y.

A node v is a cut of the graph from x to y when every path from x to y passes through v. The
cuts in topological order, x = v0, v1, ..., vL = y, factor the Jacobian as a chain product
dy/dx = J_L ... J_2 J_1 with J_s = dv_s / dv_{s-1} (the seeds' ABCD). In an MLP every
matmul, bias add and activation output is a cut; ``layer_chain`` keeps one cut per layer (the
cut before each matmul or reduction), so the segments are the layers.
"""
from .dtypes import is_float
from .graph import toposort
from .ops import ELEMENTWISE, MOVEMENT


def cuts(y, x):
    """Every cut between x and y, in topological order (x first, y last); [] if y ignores x.

    In a topological order of the nodes on x -> y paths, v is a cut exactly when no edge
    jumps over it (from a node before v to a node after v).
    """
    order = toposort([y])
    if x not in order:
        return []
    on_path = _on_paths(order, x)
    nodes = [n for n in order if n in on_path]
    pos = {n: i for i, n in enumerate(nodes)}
    reach = [0] * len(nodes)                       # furthest consumer position of each node
    for n in nodes:
        for s in n.src:
            if s in pos:
                reach[pos[s]] = max(reach[pos[s]], pos[n])
    out, furthest = [], 0
    for i, n in enumerate(nodes):
        if furthest <= i and is_float(n.dtype):
            out.append(n)
        furthest = max(furthest, reach[i])
    return out


def _on_paths(order, x):
    """Nodes that depend on x (x included); all of ``order`` leads to y by construction."""
    dep = {x}
    for n in order:
        if any(s in dep for s in n.src):
            dep.add(n)
    return dep


def layer_chain(y, x):
    """The cuts that start a layer: x, each cut whose next segment holds a matmul or a
    reduction, and y. Runs of elementwise cuts merge into the layer they end."""
    cs = cuts(y, x)
    if len(cs) < 2:
        return cs
    order = toposort([y])
    dep = _on_paths(order, x)
    nodes = [n for n in order if n in dep]
    pos = {n: i for i, n in enumerate(nodes)}
    keep = [cs[0]]
    for a, b in zip(cs[1:-1], cs[2:]):
        seg = nodes[pos[a] + 1:pos[b] + 1]
        if any(n.op not in ELEMENTWISE and n.op not in MOVEMENT for n in seg):
            keep.append(a)
    keep.append(cs[-1])
    return keep
