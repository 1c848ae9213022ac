"""Lowering: a prepared graph -> a ``Program`` of BLAS calls and fused loop nests, as pure
passes, each a function of what the ones before it returned:

    graph_of -> materialize -> leaf_buffers, result_buffers, make_items (items.py)
             -> schedule (schedule.py) -> allocate, place (allocate.py) -> Program

1. Materialize: decide which nodes get a buffer (outputs, matmuls and their operands,
   reductions, elementwise nodes used by several loops unless cheap to recompute, and every
   48th level of a long elementwise chain). Other elementwise nodes are inlined into their
   consumers' loop bodies; transposes, broadcasts and unit-dim reshapes become index maps.
2. Items: a GEMM per matmul, a loop per scan, and one task per other materialized node: a
   map, or a reduction over its input's space, each with the buffers it reads and where.
3. Schedule: list scheduling that fuses ready tasks over the same space into one nest, as long
   as a stage reads what earlier stages of the nest wrote only in its own row (softmax passes,
   bias-gradient column sums, tanh' = 1 - h^2 next to its use).
4. Allocate: outputs and updated parameters are arguments; temporaries live in workspace
   slots reused after their last reader; a map writes in place over an operand it is the last
   to read. ``place`` gives each temporary its place and name.
"""
from dataclasses import dataclass

from symdiff.graph import toposort
from symdiff.ops import ELEMENTWISE, INDEX_MAPS, LEAVES, Op

from .allocate import allocate, place
from .items import Names, leaf_buffers, make_items, result_buffers
from .program import Program, size_expr
from .schedule import schedule
from .views import blas_operand, is_index_view, is_matrix_transpose, unit_reshape

CHEAP = frozenset({Op.NEG, Op.ADD, Op.SUB, Op.MUL, Op.CAST, Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ,
                   Op.NE, Op.WHERE, Op.ONE_HOT, Op.ABS, Op.MAXIMUM, Op.MINIMUM, Op.SIGN,
                   Op.TAKE, Op.IOTA, Op.SLICE, Op.FLIP, Op.PAD, Op.GATHER})
INLINE = ELEMENTWISE | INDEX_MAPS | {Op.TAKE, Op.ONE_HOT, Op.ARGMAX_MASK}
# index maps that read each source element at most once per output element
ONCE = frozenset({Op.SLICE, Op.FLIP, Op.PAD})
# ops computed by a task of their own over their source's space (never inlined)
SCANS = frozenset({Op.SUM, Op.MAX, Op.CUMSUM, Op.ARGMAX})
MAX_INLINE_DEPTH = 48      # longer elementwise chains are cut into materialized pieces


@dataclass(frozen=True)
class Graph:
    """What every pass reads of the graph being lowered."""

    spec: object                   # the compile spec (its params are the kernel's inputs)
    outputs: list                  # prepared output nodes
    updates: list                  # (var, prepared new value) pairs
    borrow: bool                   # may temporaries live in outputs' memory
    order: list                    # every node, sources before consumers
    consumers: dict                # node -> the nodes reading it
    loops: dict                    # SCAN node -> its Loop (loops.loops_of)

    @property
    def update_nodes(self):
        return [v for _, v in self.updates]


def graph_of(spec, outputs, updates, borrow=True):
    """The Graph of prepared ``outputs`` and ``updates`` of ``spec``."""
    from .loops import loops_of
    outputs, updates = list(outputs), list(updates)
    order = toposort(outputs + [v for _, v in updates] + list(spec.params))
    consumers = {n: [] for n in order}
    for n in order:
        for s in n.src:
            consumers[s].append(n)
    return Graph(spec, outputs, updates, borrow, order, consumers, loops_of(order))


def lower(spec, outputs, updates, borrow=True):
    """Lower prepared output nodes and (var, new value) updates of ``spec`` to a Program.
    ``borrow=False``: no temporary lives in an output's memory (a scan step's program, whose
    workspace its loop lays out without the caller's output sizes)."""
    g = graph_of(spec, outputs, updates, borrow)
    mat, contracted = materialize(g)
    names = Names()
    inputs, consts, buffers = leaf_buffers(g, names)
    mat, buffers, absorbed = result_buffers(g, mat, buffers, names)
    items, argmax = make_items(g, mat, contracted, buffers, absorbed, names)
    steps, buffers = schedule(g, items, buffers, mat, names)
    outputs = [buffers[("out", k)] for k in range(len(g.outputs))]
    slots, where = allocate(steps, buffers, argmax, outputs, borrow)
    steps, buffers, argmax, scratch = place(steps, buffers, argmax, where, outputs)
    return Program(buffers, inputs, consts, outputs, [buffers[v] for v, _ in g.updates],
                   slots, steps, bind_dims(spec), argmax=argmax, cons=spec.signature.cons,
                   scratch=scratch)


def bind_dims(spec):
    """Where each symbolic dim's size is read at run time: (input index, axis)."""
    cons = spec.signature.cons
    dims = {}
    for i, v in enumerate(spec.params):
        for axis, d in enumerate(v.shape):
            if not isinstance(d, int):
                dims.setdefault(cons.find(d), (i, axis))
    return dims


# --- 1. materialization ------------------------------------------------------------------
def materialize(g):
    """(the non-leaf nodes that get a buffer, the batched matmuls summed as one GEMM)."""
    contracted = frozenset(n for n in g.order if _contracted(g, n))
    m = set(g.outputs) | set(g.update_nodes) | _structural(g, contracted)
    depth = {}
    for n in g.order:                     # cut long inline chains
        if n.op in LEAVES or n in m:
            depth[n] = 0
            continue
        depth[n] = 1 + max((depth[s] for s in n.src), default=0)
        if depth[n] > MAX_INLINE_DEPTH:
            m.add(n)
            depth[n] = 0
    for n in reversed(g.order):           # consumers are decided before their sources
        if n in m or n.op in LEAVES or is_index_view(n) or n.op not in INLINE:
            continue
        spaces = _consumer_spaces(g, m, n)
        amplified = any(size_expr(s) != size_expr(n.shape) for s in spaces)
        if (len(spaces) > 1 or amplified) and _cost(m, n) > 2:
            m.add(n)
    return frozenset(n for n in m if n.op not in LEAVES), contracted


def _structural(g, contracted):
    """Nodes that need a buffer whatever their consumers: matmuls and their operands (BLAS
    reads arrays), reductions, scans and their sources, copying reshapes and their sources."""
    m = set()
    skip = {n.src[0] for n in contracted}
    for n in g.order:
        if n in contracted:
            m.add(n)
            a, b = n.src[0].src
            m.update((a.src[0], b))
        elif n.op is Op.MATMUL and n not in skip:
            m.add(n)
            m.update(map(blas_operand, n.src))
        elif n.op in SCANS or n.op is Op.SCATTER_ADD:
            m.add(n)
        elif n.op is Op.SCAN:              # a loop reads whole arrays of its sources
            m.add(n)
            m.update(s for s in n.src if s.op not in LEAVES)
        elif n.op is Op.RESHAPE and not unit_reshape(n):
            m.update((n, n.src[0]))
    return m


def _cost(m, n, depth=0):
    """Cost of recomputing ``n`` at every use (inf: worth a buffer)."""
    if n.op in LEAVES or n in m:
        return 0
    if is_index_view(n):
        return _cost(m, n.src[0], depth)
    if n.op not in CHEAP or depth > 3:
        return float("inf")
    return 1 + sum(_cost(m, s, depth + 1) for s in n.src)


def _consumer_spaces(g, m, n):
    """Iteration shapes of the loops that would evaluate ``n`` (seen through views).

    A slice, flip or pad reads each source element at most once per element of its own
    space: a loop over that space counts as a loop over the source's (not amplified)."""
    spaces, stack = [], [(c, None) for c in g.consumers[n]]
    while stack:
        c, like = stack.pop()
        if c not in m and (is_index_view(c) or c.op in ONCE):
            stack.extend((d, (c.shape, n.shape) if c.op in ONCE and like is None else like)
                         for d in g.consumers[c])
            continue
        space = c.src[0].shape if c.op in SCANS else c.shape
        if like is not None and size_expr(space) == size_expr(like[0]):
            space = like[1]
        spaces.append(space)
    return spaces


def _contracted(g, n):
    """Is ``n`` sum_t a[t]^T b[t] over all leading axes of a batched matmul that only it
    reads, with a and b stacks of C-ordered matrices (one GEMM of the stacked rows)?"""
    if n.op is not Op.SUM:
        return False
    mm = n.src[0]
    if mm.op is not Op.MATMUL or mm.ndim < 3 or g.consumers[mm] != [n] or \
            n.arg[0] != tuple(range(-mm.ndim, -2)) or mm in g.outputs:
        return False
    a, b = mm.src
    return is_matrix_transpose(a) and a.src[0].shape[:-2] == b.shape[:-2] == \
        mm.shape[:-2] and not is_matrix_transpose(b) and b.op is not Op.TRANSPOSE and \
        a.src[0].op is not Op.TRANSPOSE and a.src[0].op not in LEAVES - {Op.VAR}
