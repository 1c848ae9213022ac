"""Buffers and work items of lowering (pass 2).

- ``leaf_buffers``: the kernel's arguments for inputs and constant arrays.
- ``result_buffers``: an array for every materialized node: an output, a view of another
  buffer (a copying reshape of a contiguous array, a reduction that only feeds an output), or
  a temporary.
- ``make_items``: a ``Gemm`` per matmul, the ``Loop`` of every scan, and a ``Task`` for every
  other materialized node, with what it reads at which index (``expr.access``).
Each returns new values; ``Names`` hands out the buffers' names.
"""
from dataclasses import replace

from symdiff.ops import LEAVES, Op

from .expr import access
from .program import Buffer, Gemm, Loop, Task
from .views import loop_vars, unit_reshape


class Names:
    """Fresh buffer names: ``base``, else ``base_k`` for the first free k (names are never
    freed, so the search goes on from the last k taken for ``base``: not from 1 for every
    view "v").

    >>> names = Names()
    >>> names.take("a0"), names.take("a0"), names.temp((2,), "float64").name
    ('a0', 'a0_2', 't2')
    """

    def __init__(self):
        self.taken, self.last_k = set(), {}

    def take(self, base):
        k = self.last_k.get(base, 1)
        name = base if k == 1 else f"{base}_{k}"
        while name in self.taken:
            k += 1
            name = f"{base}_{k}"
        self.last_k[base] = k
        self.taken.add(name)
        return name

    def temp(self, shape, dtype, base="t"):
        """A temporary (its place is decided by ``allocate``)."""
        return Buffer(self.take(f"{base}{len(self.taken)}"), shape, dtype, "temp")


def leaf_buffers(g, names):
    """(input Buffers in call order, [(constant node, Buffer)], node -> Buffer)."""
    buffers, inputs = {}, []
    # positional names (a0, a1, ...), not the vars' names: the kernel's code, and with it
    # the cache key, is the same for graphs that differ only in names (the render lists
    # the names in comments), and no var name can collide with a generated local
    for k, v in enumerate(g.spec.params):
        b = buffers[v] = Buffer(names.take(f"a{k}"), v.shape, v.dtype, "input")
        inputs.append(b)
    arrays = [n for n in g.order if n.op is Op.CONST and n.ndim and n.arg.uniform is None]
    for loop in {id(lp): lp for lp in g.loops.values()}.values():
        arrays += [n for n, _ in loop.step.consts]      # a step's constant arrays are arguments
    consts = []
    for n in arrays:
        if n not in buffers:
            buffers[n] = Buffer(names.take(f"c{len(consts)}"), n.shape, n.dtype, "const")
            consts.append((n, buffers[n]))
    return inputs, consts, buffers


def result_buffers(g, mat, leaves, names):
    """(materialized nodes, node -> Buffer with every result's, indices of outputs computed
    in place by the reduction they reshape). Output k's buffer is keyed ("out", k)."""
    buffers, mat, absorbed = dict(leaves), set(mat), set()
    for k, o in enumerate(g.outputs):
        out = buffers[("out", k)] = Buffer(names.take(f"out{k}"), o.shape, o.dtype, "output")
        if o in mat and o not in buffers:
            buffers[o] = out
    for k, o in enumerate(g.outputs):     # a reduction that only feeds an output
        r = o.src[0] if o.op is Op.RESHAPE and unit_reshape(o) else None
        if r is not None and r in mat and r not in buffers and g.consumers[r] == [o] and \
                buffers.get(o) is buffers[("out", k)]:
            buffers[r] = Buffer(names.take("v"), r.shape, r.dtype, "view",
                                base=buffers[("out", k)], view="reshape")
            mat.discard(o)
            del buffers[o]
            absorbed.add(k)
    for n in g.order:
        if n not in mat or n in buffers:
            continue
        src = buffers.get(n.src[0]) if n.src else None
        if n.op is Op.RESHAPE and not unit_reshape(n) and src is not None and src.base is None:
            buffers[n] = Buffer(names.take("v"), n.shape, n.dtype, "view", base=src,
                                view="reshape")
        else:
            buffers[n] = names.temp(n.shape, n.dtype)
    return frozenset(mat), buffers, frozenset(absorbed)


def is_reshape_view(n, buffers):
    """Is ``n`` a reshape whose buffer is a view of its source's?"""
    b = buffers.get(n)
    return n.op is Op.RESHAPE and b is not None and b.kind == "view" and \
        b.base is buffers.get(n.src[0])


def buffer_test(mat, buffers):
    """Is a node read from a buffer (materialized, an input, a constant array)?"""
    def is_buffer(n):
        return n in mat or n.op is Op.VAR or (n.op is Op.CONST and n in buffers)
    return is_buffer


def new_task(kind, node, expr, out, space, is_buffer, axes=(), after=frozenset(),
             scatter=None):
    """A Task with its accesses: the buffers it reads and at which indices."""
    self_node = expr if kind == "map" and expr is node else None
    reads, argmax_reads = access(expr, loop_vars(space), is_buffer, self_node, scatter)
    return Task(kind, node, expr, out, space, axes,
                reads={n: i for n, i in reads.items() if n.op not in LEAVES},
                leaf_reads={n: i for n, i in reads.items() if n.op in LEAVES},
                argmax_reads=argmax_reads, after=frozenset(after))


def make_items(g, mat, contracted, buffers, absorbed, names):
    """(Gemms, Loops and Tasks in topological order, then output copies; ARGMAX_MASK node ->
    Buffer of its argmax indices)."""
    is_buffer = buffer_test(mat, buffers)

    def task(kind, node, expr, out, space, axes=(), after=frozenset(), scatter=None):
        return new_task(kind, node, expr, out, space, is_buffer, axes, after, scatter)

    items, loop_outs = [], {}
    for n in g.order:
        if n not in mat or is_reshape_view(n, buffers):
            continue
        if n.op is Op.MATMUL or n in contracted:
            items.append(Gemm(buffers[n], None, None, n, contract=n in contracted))
        elif n.op is Op.SCAN:
            loop = g.loops[n]
            loop_outs.setdefault(loop, {})[loop.index[n]] = buffers[n]
            if loop.node is n:
                items.append(loop)
        elif n.op is Op.SCATTER_ADD:
            # out = x (a map), then out[target(j)] += updates[j] over the updates' space (a
            # scatter, ordered after the map; it joins no nest, see schedule._joins)
            x, _, upd = n.src
            init = task("map", ("init", n), x, buffers[n], n.shape)
            items += [init, task("scatter", n, upd, buffers[n], upd.shape, after={init},
                                 scatter=n)]
        elif n.op in (Op.SUM, Op.MAX):
            x = n.src[0]
            items.append(task(n.op.value, n, x, buffers[n], x.shape,
                              tuple(a + x.ndim for a in n.arg[0])))
        elif n.op in (Op.CUMSUM, Op.ARGMAX):   # along the last axis of a rank >= 2 space
            x = n.src[0]                       # (prepare moves the axis there)
            items.append(task(n.op.value, n, x, buffers[n], x.shape, (x.ndim - 1,)))
        else:
            items.append(task("map", n, n, buffers[n], n.shape))
    argmax = {}
    for mask in (n for n in g.order if n.op is Op.ARGMAX_MASK):
        x, k = mask.src[0], len(mask.arg)
        if mask.arg != tuple(range(-k, 0)):
            raise NotImplementedError("numba backend: argmax over non-trailing axes "
                                      f"{mask.arg} (use the numpy backend)")
        out = argmax[mask] = names.temp(x.shape[:-k], "int64", base="am")
        items.append(task("argmax", mask, x, out, x.shape, tuple(range(x.ndim - k, x.ndim))))
    for k, o in enumerate(g.outputs):    # leaves and repeats of another output: copied
        out = buffers[("out", k)]
        if buffers.get(o) is not out and k not in absorbed:
            items.append(task("map", ("out", k), o, out, o.shape))
    items = [replace(it, outs=loop_outs[it]) if isinstance(it, Loop) else it for it in items]
    return items, argmax

