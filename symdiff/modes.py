"""Jacobian strategies: forward, reverse, automatic choice, and optimal chain bracketing.

For y = f_L(...f_1(x)) with cut widths n_0 = |x|, n_1, ..., n_L = |y| the Jacobian is the
chain product J_L ... J_1. Evaluated right to left it is forward mode (n_0 tangent sweeps),
left to right reverse mode (n_L adjoint sweeps). ``plan_jacobian(..., "optimal")`` solves the
Jacobian-chain bracketing problem by dynamic programming: the Jacobian of each sub-chain
i..j is the cheapest of

- ``fwd``:  n_{i-1} unit tangent sweeps through segments i..j;
- ``rev``:  n_j unit adjoint sweeps back through segments j..i;
- ``mul``:  J(k+1..j) @ J(i..k), both formed first (n_j n_k n_{i-1} multiply-adds);
- ``push``: J(i..k) formed, its n_{i-1} columns pushed as tangents through k+1..j;
- ``pull``: J(k+1..j) formed, its n_j rows pulled as cotangents through i..k,

with the cost of a sweep from the cost model (``cost.py``) measured on the segment's own
tangent/adjoint graph. The plan is then emitted as one mixed-mode graph. On widths
500-500-20-500-500 the plan is ``(J4 J3) fwd x20 | (J2 J1) rev x20``: adjoint sweeps through
the first two layers, tangent sweeps through the last two, one product.
"""
import dataclasses

import numpy as np

from . import frontend as F
from .chain import layer_chain
from .cost import Cost, get_weights, graph_cost, node_cost
from .dims import is_concrete, shape_str
from .dtypes import is_float
from .errors import DifferentiationError, ShapeError
from .forward import jvp_graph
from .graph import Node, toposort
from .printing import duration
from .reverse import vjp_graph

STRATEGIES = ("forward", "reverse", "auto", "optimal")
MAX_CHAIN = 64          # longer chains fall back to the better pure mode
MAX_UNIT_SEED = 1024    # above this width a unit sweep's cost is estimated, not built
PRUNE = 4.0             # auto builds no pure mode estimated this many times the cheapest
COMPOSITE_PENALTY = 4   # node overheads charged per formed intermediate Jacobian
MIXED_MARGIN = 0.03     # a mixed plan must be predicted 3% cheaper than a simpler one


@dataclasses.dataclass
class JacobianPlan:
    """How a Jacobian dy/dx is computed: the strategy, its bracketing and predicted cost."""

    strategy: str            # "forward" | "reverse" | "optimal" (what was built)
    requested: str           # the mode the caller asked for
    tree: tuple              # the bracketing (see the module docstring)
    widths: tuple            # n_0 .. n_L of the chain used
    note: str = ""           # why a fallback happened, or what auto compared
    graph: object = None     # the Jacobian graph, shape y.shape + x.shape
    cost: Cost = None        # cost model counts of the whole graph
    predicted: float = 0.0   # predicted seconds (cost model weights)

    @property
    def bracketing(self):
        """The bracketing alone, e.g. ``(J4 J3) fwd x20 | (J2 J1) rev x20``."""
        return describe(self.tree, self.widths)

    @property
    def description(self):
        """The bracketing and why it was chosen (fallbacks, auto's predictions)."""
        return f"{self.bracketing} ({self.note})" if self.note else self.bracketing

    def __str__(self):
        return f"{self.strategy}: {self.description}"


def plan_jacobian(y, x, mode="auto", sizes=None, weights=None):
    """Plan and build the Jacobian of ``y`` w.r.t. ``x`` (both with concrete shapes).

    >>> import symdiff as sd
    >>> x = sd.var("x", (500,)); h = x
    >>> for i, (a, b) in enumerate(zip([500, 500, 20, 500], [500, 20, 500, 500])):
    ...     h = sd.tanh(h @ sd.param(f"W{i}", (a, b)))
    >>> print(sd.plan_jacobian(h, x, "optimal").description)
    (J4 J3) fwd x20 | (J2 J1) rev x20
    """
    if mode not in STRATEGIES:
        raise ValueError(f"jacobian: mode must be one of {', '.join(map(repr, STRATEGIES))}, "
                         f"got {mode!r}")
    for node, what in ((x, "input"), (y, "output")):
        if not isinstance(node, Node):
            raise TypeError(f"jacobian: the {what} must be one symdiff node, got "
                            f"{type(node).__name__}")
        if not is_float(node.dtype):
            raise DifferentiationError(f"jacobian: the {what} `{node.name}` has dtype "
                                       f"{node.dtype}; only float nodes have derivatives")
        if not is_concrete(node.shape):
            raise ShapeError(f"jacobian: the {what} `{node.name}` has symbolic shape "
                             f"{shape_str(node.shape)}; a Jacobian needs concrete sizes")
    weights = weights or get_weights()
    if mode in ("forward", "reverse"):
        return _finish(_pure(y, x, mode), y, x, sizes, weights)
    chain, note = _chain(y, x)
    if mode == "optimal" and chain is None:
        plans = [_finish(_pure(y, x, m), y, x, sizes, weights) for m in ("forward", "reverse")]
        best = min(plans, key=lambda p: p.predicted)
        best.requested, best.note = "optimal", f"{note}: the better pure mode"
        return best
    if mode == "optimal":
        tree = Bracketing(chain, sizes, weights).solve()
        plan = JacobianPlan("optimal", "optimal", tree, _widths(chain))
        return _finish(plan, y, x, sizes, weights, chain)
    return _auto(y, x, chain, sizes, weights)


def _auto(y, x, chain, sizes, weights):
    """The cheapest predicted of forward, reverse and (on a chain) the optimal bracketing.

    The dynamic program's sweep estimates (one generic direction per segment, cheap to
    build) first rule out a pure mode predicted PRUNE times dearer than the best, so a
    Jacobian of a 10,000-wide input by reverse mode never builds the 10,000-direction
    forward graph just to compare it.
    """
    br = Bracketing(chain or [x, y], sizes, weights)
    est = {"forward": br.fwd_cost(1, br.L), "reverse": br.rev_cost(1, br.L)}
    best_est = min(est.values())
    plans = [_finish(_pure(y, x, m), y, x, sizes, weights) for m in ("forward", "reverse")
             if est[m] <= PRUNE * best_est]
    if chain is not None:
        tree = br.solve()
        if tree[0] not in ("fwd", "rev") or (tree[1], tree[2]) != (1, len(chain) - 1):
            plans.append(_finish(JacobianPlan("optimal", "auto", tree, _widths(chain)),
                                 y, x, sizes, weights, chain))
    best = min(plans, key=lambda p: p.predicted * (1 + MIXED_MARGIN * (p.strategy == "optimal")))
    best.requested = "auto"
    notes = [f"{p.strategy} {duration(p.predicted)}" for p in plans]
    notes += [f"{m} not built (estimated {est[m] / best_est:.0f}x dearer)" for m in est
              if est[m] > PRUNE * best_est]
    best.note = "predicted " + ", ".join(notes)
    return best


def _pure(y, x, mode):
    kind = "fwd" if mode == "forward" else "rev"
    return JacobianPlan(mode, mode, (kind, 1, 1), (x.size, y.size))


def _finish(plan, y, x, sizes, weights, chain=None):
    chain = chain or [x, y]
    m = Emitter(chain).build(plan.tree)
    plan.graph = F.reshape(m, y.shape + x.shape)
    plan.cost = graph_cost(plan.graph, sizes, primal=toposort([y]))
    plan.predicted = plan.cost.seconds(weights)
    return plan


def _chain(y, x):
    """The layer chain from x to y, or (None, why not)."""
    chain = layer_chain(y, x)
    if len(chain) < 3:
        return None, "not a chain: no layer boundary (a single tensor every path passes) " \
            "between the input and the output"
    if len(chain) - 1 > MAX_CHAIN:
        return None, f"a chain of {len(chain) - 1} layers is longer than {MAX_CHAIN}"
    if not all(is_concrete(v.shape) for v in chain):
        return None, "a cut of the chain has a symbolic shape"
    return chain, ""


def _widths(chain):
    return tuple(int(v.size) for v in chain)


# --- emission: a bracketing -> one graph ---------------------------------------------------
class Emitter:
    """Builds the flattened Jacobian (n_j, n_{i-1}) of each sub-chain of a plan tree."""

    def __init__(self, chain):
        self.v = chain
        self.n = _widths(chain)

    def build(self, tree):
        return getattr(self, "_" + tree[0])(*tree[1:])

    def _fwd(self, i, j):
        src = self.v[i - 1]
        return self._push_columns(_unit(src), i - 1, j)

    def _rev(self, i, j):
        dst = self.v[j]
        return self._pull_rows(_unit(dst), i - 1, j)

    def _mul(self, left, right):
        return self.build(left) @ self.build(right)       # J(k+1..j) @ J(i..k)

    def _push(self, inner, k, j):
        m = self.build(inner)                              # J(i..k): (n_k, n_{i-1})
        seed = F.reshape(F.transpose(m), (m.shape[1],) + self.v[k].shape)
        return self._push_columns(seed, k, j)

    def _pull(self, inner, i, k):
        m = self.build(inner)                              # J(k+1..j): (n_j, n_k)
        seed = F.reshape(m, (m.shape[0],) + self.v[k].shape)
        return self._pull_rows(seed, i - 1, k)

    def _push_columns(self, seed, a, b):
        """Tangents ``seed`` (dirs, *v_a.shape) pushed to v_b: the (n_b, dirs) Jacobian."""
        dirs = seed.shape[0]
        (t,) = jvp_graph([self.v[b]], {self.v[a]: seed}, batch=(dirs,))
        if t is None:
            return zeros((self.n[b], dirs), self.v[b].dtype)
        return F.transpose(F.reshape(t, (dirs, self.n[b])))

    def _pull_rows(self, seed, a, b):
        """Cotangents ``seed`` (dirs, *v_b.shape) pulled to v_a: the (dirs, n_a) Jacobian."""
        dirs = seed.shape[0]
        (c,) = vjp_graph([self.v[b]], [seed], [self.v[a]], batch=(dirs,))
        if c is None:
            return zeros((dirs, self.n[a]), self.v[a].dtype)
        return F.reshape(c, (dirs, self.n[a]))


def _unit(v):
    """The unit seed of v: the identity, one direction per element, shape (size, *v.shape);
    a reshape of an identity constant, which the matmul rules recognize."""
    size = int(v.size)
    return F.reshape(F.const(np.eye(size, dtype=v.dtype)), (size,) + tuple(v.shape))


def zeros(shape, dtype):
    """An exact zero array as a graph (a broadcast scalar): a disconnected derivative."""
    return F.broadcast_to(F.const(0, dtype), shape)


# --- the dynamic program ---------------------------------------------------------------------
class Bracketing:
    """Optimal bracketing of the Jacobian chain J_L ... J_1 (module docstring)."""

    def __init__(self, chain, sizes=None, weights=None):
        self.v, self.n = chain, _widths(chain)
        self.L = len(chain) - 1
        self.sizes, self.w = sizes, weights or get_weights()
        self.primal = set(toposort([chain[-1]]))
        segs = range(1, self.L + 1)
        self.fwd1 = {s: self._sweep(s, "fwd", probe=True) for s in segs}
        self.rev1 = {s: self._sweep(s, "rev", probe=True) for s in segs}
        self.fwdu = {s: self._sweep(s, "fwd", probe=False) for s in segs}
        self.revu = {s: self._sweep(s, "rev", probe=False) for s in segs}

    def fwd_cost(self, i, j):
        """Seconds of n_{i-1} unit tangent sweeps through segments i..j."""
        return self.fwdu[i][0] + self._sweeps(self.fwd1, i + 1, j, self.n[i - 1])

    def rev_cost(self, i, j):
        """Seconds of n_j unit adjoint sweeps back through segments j..i."""
        return self.revu[j][0] + self._sweeps(self.rev1, i, j - 1, self.n[j])

    def _sweep(self, s, kind, probe):
        """(fixed, per-direction) seconds of one segment's tangent or adjoint sweep.

        With a probe (one generic direction) the nodes that depend on it scale with the
        number of directions; the others (e.g. tanh' = 1 - h^2) are paid once. Without, the
        cost is the whole sweep from a unit seed, where I @ W costs nothing.
        """
        a, b = self.v[s - 1], self.v[s]
        width = self.n[s - 1] if kind == "fwd" else self.n[s]
        if not probe and width > MAX_UNIT_SEED:
            fixed, per = self._sweep(s, kind, True)
            return fixed + width * per, 0.0
        src = a if kind == "fwd" else b
        dirs = 1 if probe else width
        seed = F.var("__probe__", (1,) + src.shape, src.dtype) if probe else _unit(src)
        if kind == "fwd":
            (out,) = jvp_graph([b], {a: seed}, batch=(dirs,))
        else:
            (out,) = vjp_graph([b], [seed], [a], batch=(dirs,))
        if out is None:
            return 0.0, 0.0
        fixed = per = 0.0
        scaled = {seed}
        for n in toposort([out]):
            if n in self.primal or n is seed:
                continue
            b, lp, t = node_cost(n, self.sizes)
            work = b * self.w["blas"] + lp * self.w["loop"] + t * self.w["trans"]
            fixed += self.w["node"]                 # one loop or call, whatever the width
            if probe and any(s in scaled for s in n.src):
                scaled.add(n)
                per += work
            else:
                fixed += work
        return (fixed, per) if probe else (fixed + per, 0.0)

    def _sweeps(self, table, lo, hi, dirs):
        """Seconds of ``dirs`` generic sweeps through segments lo..hi."""
        return sum(table[s][0] + dirs * table[s][1] for s in range(lo, hi + 1))

    def _mul_cost(self, i, k, j):
        return self.n[j] * self.n[k] * self.n[i - 1] * self.w["blas"] + self.w["node"]

    def solve(self):
        """The cheapest plan tree for the whole chain."""
        best = {}
        for length in range(1, self.L + 1):
            for i in range(1, self.L - length + 2):
                j = i + length - 1
                best[i, j] = min(self._options(i, j, best), key=lambda o: o[0])
        return best[1, self.L][1]

    def _options(self, i, j, best):
        n = self.n
        yield self.fwd_cost(i, j), ("fwd", i, j)
        yield self.rev_cost(i, j), ("rev", i, j)
        # near-ties go to the simpler plan: a formed intermediate Jacobian costs a buffer and
        # a loop more than the model sees
        extra, m = COMPOSITE_PENALTY * self.w["node"], 1 + MIXED_MARGIN
        for k in range(i, j):
            (cl, tl), (cr, tr) = best[k + 1, j], best[i, k]
            yield m * (cl + cr + self._mul_cost(i, k, j)) + extra, ("mul", tl, tr)
            yield m * (cr + self._sweeps(self.fwd1, k + 1, j, n[i - 1])) + extra, \
                ("push", tr, k, j)
            yield m * (cl + self._sweeps(self.rev1, i, k, n[j])) + extra, ("pull", tl, i, k)


# --- description -------------------------------------------------------------------------------
def describe(tree, widths):
    """A bracketing as text, e.g. ``(J4 J3) fwd x20 | (J2 J1) rev x20``."""
    return _describe(tree, widths, top=True)


def _describe(tree, n, top=False):
    kind = tree[0]
    if kind == "fwd":
        _, i, j = tree
        return f"{_seg(i, j, len(n))} fwd x{n[i - 1]}"
    if kind == "rev":
        _, i, j = tree
        return f"{_seg(i, j, len(n))} rev x{n[j]}"
    if kind == "mul":
        text = f"{_describe(tree[1], n)} | {_describe(tree[2], n)}"
        return text if top else f"[{text}]"
    if kind == "push":
        _, inner, k, j = tree
        return f"{_seg(k + 1, j, len(n))} fwd x{n[_first(inner) - 1]} on [{_describe(inner, n)}]"
    _, inner, i, k = tree
    return f"{_seg(i, k, len(n))} rev x{n[_last(inner)]} on [{_describe(inner, n)}]"


def _seg(i, j, count):
    if count == 2:                      # a pure mode over the whole graph: no chain labels
        return "J"
    names = [f"J{s}" for s in range(j, i - 1, -1)]
    if len(names) > 4:
        names = [names[0], "..", names[-1]]
    return names[0] if len(names) == 1 else "(" + " ".join(names) + ")"


def _first(tree):
    kind = tree[0]
    if kind in ("fwd", "rev"):
        return tree[1]
    if kind == "mul":
        return _first(tree[2])
    if kind == "push":
        return _first(tree[1])
    return tree[2]


def _last(tree):
    kind = tree[0]
    if kind in ("fwd", "rev"):
        return tree[2]
    if kind == "mul":
        return _last(tree[1])
    if kind == "push":
        return tree[3]
    return _last(tree[1])
