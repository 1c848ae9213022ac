"""Lowering: a prepared graph -> a ``Program`` of BLAS calls and fused loop nests.

1. Materialize: decide which nodes get a buffer (outputs, matmuls and their operands,
   reductions, elementwise nodes used by several loops unless cheap to recompute, and every
   48th level of a long elementwise chain). Other elementwise nodes are inlined into their
   consumers' loop bodies; transposes, broadcasts and unit-dim reshapes become index maps.
2. Tasks: one per materialized non-matmul node: a map, or a reduction over its input's space.
3. Schedule: list scheduling that fuses ready tasks over the same space into one nest, as long
   as a stage reads what earlier stages of the nest wrote only in its own row (softmax passes,
   bias-gradient column sums, tanh' = 1 - h^2 next to its use).
4. Buffers: outputs and updated parameters are arguments; temporaries live in workspace slots
   reused after their last reader; a map writes in place over an operand it is the last to read.
"""
from symdiff.graph import toposort
from symdiff.ops import ELEMENTWISE, INDEX_MAPS, LEAVES, Op

from .expr import Body
from .program import (
    Buffer,
    Copy,
    Gemm,
    Loop,
    Nest,
    Program,
    Task,
    size_expr,
    step_reads,
    step_writes,
)
from .queues import FreeOutputs, ReadyQueue

VIEWS = frozenset({Op.TRANSPOSE, Op.BROADCAST_TO, Op.RESHAPE})
CHEAP = frozenset({Op.NEG, Op.ADD, Op.SUB, Op.MUL, Op.CAST, Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ,
                   Op.NE, Op.WHERE, Op.ONE_HOT, Op.ABS, Op.MAXIMUM, Op.MINIMUM, Op.SIGN,
                   Op.TAKE, Op.IOTA, Op.SLICE, Op.FLIP, Op.PAD, Op.GATHER})
INLINE = ELEMENTWISE | INDEX_MAPS | {Op.TAKE, Op.ONE_HOT, Op.ARGMAX_MASK}
# index maps that read each source element at most once per output element
ONCE = frozenset({Op.SLICE, Op.FLIP, Op.PAD})
# ops computed by a task of their own over their source's space (never inlined)
SCANS = frozenset({Op.SUM, Op.MAX, Op.CUMSUM, Op.ARGMAX})
MAX_INLINE_DEPTH = 48      # longer elementwise chains are cut into materialized pieces


def unit_reshape(n):
    """A reshape that only inserts or removes size-1 axes: an index map, not a copy."""
    return [d for d in n.shape if d != 1] == [d for d in n.src[0].shape if d != 1]


def is_index_view(n):
    return n.op in VIEWS and (n.op is not Op.RESHAPE or unit_reshape(n))


def is_matrix_transpose(n):
    """A transpose of the last two axes only (a matrix, or a batch of them): BLAS reads it
    as a transposed view of its source, no copy."""
    k = n.ndim
    return n.op is Op.TRANSPOSE and k >= 2 and n.arg == tuple(range(k - 2)) + (k - 1, k - 2)


def loop_vars(space):
    return tuple(f"i{k}" for k in range(len(space)))


def outer_vars(space):
    return loop_vars(space)[:len(space) - 1] if len(space) >= 2 else loop_vars(space)


def lower(spec, outputs, updates, borrow=True):
    """Lower prepared output nodes and (var, new value) updates of ``spec`` to a Program.
    ``borrow=False``: no temporary lives in an output's memory (a scan step's program, whose
    workspace its loop lays out without the caller's output sizes)."""
    return Lowering(spec, list(outputs), list(updates), borrow).run()


class _Probe:
    """A Body context that only tells which nodes are buffers (used to find reads)."""

    def __init__(self, lowering):
        self.lw = lowering

    def is_buffer(self, n):
        return self.lw.is_buffer(n)

    def buffer_name(self, n):
        return "B"

    def argmax_name(self, n):
        return "A"

    def literal(self, value, dtype):
        return "K"

    def dim(self, d, dtype):
        return "D"

    def size(self, d):
        return "S"

    def math(self, op, dtype):
        return "f({0})"


class Lowering:
    def __init__(self, spec, outputs, updates, borrow=True):
        self.spec, self.outputs, self.updates, self.borrow = spec, outputs, updates, borrow
        self.update_nodes = [v for _, v in updates]
        self.order = toposort(outputs + self.update_nodes + list(spec.params))
        self.consumers = {n: [] for n in self.order}
        for n in self.order:
            for s in n.src:
                self.consumers[s].append(n)
        self.mat = set()           # materialized (non-leaf) nodes
        self.buffers = {}          # node -> Buffer
        self.argmax = {}           # ARGMAX_MASK node -> Buffer of argmax indices
        self.names = set()
        self._last_k = {}          # base name -> the last k that _name tried
        self._indexed = None       # (nest, its index) for _in_place
        self._released = set()
        self.loops = {}            # SCAN node -> its loop (loops_of)
        self.contracted = set()    # matmuls summed over a batch into one GEMM (materialize)
        self.absorbed = set()      # nodes whose buffer is another's (_assign_result_buffers)
        self.scratch = []          # (output index, dtype, size) per scratch region (_place)
        self._lenders = {}         # dtype -> outputs free to hold a temporary (allocate)

    def is_buffer(self, n):
        return n in self.mat or n.op is Op.VAR or (n.op is Op.CONST and n in self.buffers)

    def run(self):
        from .loops import loops_of
        self.loops = loops_of(self.order)
        self.materialize()
        inputs, consts = self.leaf_buffers()
        items = self.make_items()
        steps = self.schedule(items)
        slots = self.allocate(steps)
        return Program(self.buffers, inputs, consts, [self.buffers[("out", k)] for k in
                                                        range(len(self.outputs))],
                       [self.buffers[v] for v, _ in self.updates], slots, steps,
                       self.bind_dims(), argmax=self.argmax, cons=self.spec.signature.cons,
                       scratch=self.scratch)

    # --- 1. materialization ------------------------------------------------------------
    def _cost(self, n, depth=0):
        """Cost of recomputing ``n`` at every use (inf: worth a buffer)."""
        if n.op in LEAVES or n in self.mat:
            return 0
        if is_index_view(n):
            return self._cost(n.src[0], depth)
        if n.op not in CHEAP or depth > 3:
            return float("inf")
        return 1 + sum(self._cost(s, depth + 1) for s in n.src)

    def _consumer_spaces(self, n):
        """Iteration shapes of the loops that would evaluate ``n`` (seen through views).

        A slice, flip or pad reads each source element at most once per element of its own
        space: a loop over that space counts as a loop over the source's (not amplified)."""
        spaces, stack = [], [(c, None) for c in self.consumers[n]]
        while stack:
            c, like = stack.pop()
            if c not in self.mat and (is_index_view(c) or c.op in ONCE):
                stack.extend((d, (c.shape, n.shape) if c.op in ONCE and like is None else like)
                             for d in self.consumers[c])
                continue
            space = c.src[0].shape if c.op in SCANS else c.shape
            if like is not None and size_expr(space) == size_expr(like[0]):
                space = like[1]
            spaces.append(space)
        return spaces

    def _contracted(self, n):
        """Is ``n`` sum_t a[t]^T b[t] over all leading axes of a batched matmul that only it
        reads, with a and b stacks of C-ordered matrices (one GEMM of the stacked rows)?"""
        if n.op is not Op.SUM:
            return False
        mm = n.src[0]
        if mm.op is not Op.MATMUL or mm.ndim < 3 or self.consumers[mm] != [n] or \
                n.arg[0] != tuple(range(-mm.ndim, -2)) or mm in self.outputs:
            return False
        a, b = mm.src
        return is_matrix_transpose(a) and a.src[0].shape[:-2] == b.shape[:-2] == \
            mm.shape[:-2] and not is_matrix_transpose(b) and b.op is not Op.TRANSPOSE and \
            a.src[0].op is not Op.TRANSPOSE and a.src[0].op not in LEAVES - {Op.VAR}

    def materialize(self):
        m = self.mat
        m.update(self.outputs)
        m.update(self.update_nodes)
        self.contracted = {n for n in self.order if self._contracted(n)}
        skip = {n.src[0] for n in self.contracted}
        for n in self.order:
            if n in self.contracted:
                m.add(n)
                a, b = n.src[0].src
                m.update((a.src[0], b))
            elif n.op is Op.MATMUL and n not in skip:
                m.add(n)
                for s in n.src:
                    m.add(s.src[0] if is_matrix_transpose(s) else s)
            elif n.op in SCANS or n.op is Op.SCATTER_ADD:
                m.add(n)
            elif n.op is Op.SCAN:              # a loop reads whole arrays of its sources
                m.add(n)
                m.update(s for s in n.src if s.op not in LEAVES)
            elif n.op is Op.RESHAPE and not unit_reshape(n):
                m.update((n, n.src[0]))
        depth = {}
        for n in self.order:                  # cut long inline chains
            if n.op in LEAVES or n in m:
                depth[n] = 0
                continue
            depth[n] = 1 + max((depth[s] for s in n.src), default=0)
            if depth[n] > MAX_INLINE_DEPTH:
                m.add(n)
                depth[n] = 0
        for n in reversed(self.order):        # consumers are decided before their sources
            if n in m or n.op in LEAVES or is_index_view(n) or n.op not in INLINE:
                continue
            spaces = self._consumer_spaces(n)
            amplified = any(size_expr(s) != size_expr(n.shape) for s in spaces)
            if (len(spaces) > 1 or amplified) and self._cost(n) > 2:
                m.add(n)
        m.difference_update([n for n in m if n.op in LEAVES])

    # --- buffers ------------------------------------------------------------------------
    def _name(self, base):
        """``base``, else ``base_k`` for the first free k (names are never freed, so the
        search goes on from the last k taken for ``base``: not from 1 for every "v")."""
        k = self._last_k.get(base, 1)
        name = base if k == 1 else f"{base}_{k}"
        while name in self.names:
            k += 1
            name = f"{base}_{k}"
        self._last_k[base] = k
        self.names.add(name)
        return name

    def leaf_buffers(self):
        inputs = []
        # positional names (a0, a1, ...), not the vars' names: the kernel's code, and with it
        # the cache key, is the same for graphs that differ only in names (the render lists
        # the names in comments), and no var name can collide with a generated local
        for k, v in enumerate(self.spec.params):
            b = Buffer(self._name(f"a{k}"), v.shape, v.dtype, "input")
            self.buffers[v] = b
            inputs.append(b)
        consts = []
        for n in self.order:
            if n.op is Op.CONST and n.ndim and n.arg.uniform is None:
                b = Buffer(self._name(f"c{len(consts)}"), n.shape, n.dtype, "const")
                self.buffers[n] = b
                consts.append((n, b))
        for loop in {id(lp): lp for lp in self.loops.values()}.values():
            for n, _ in loop.step.consts:          # a step's constant arrays are arguments
                if n not in self.buffers:
                    b = Buffer(self._name(f"c{len(consts)}"), n.shape, n.dtype, "const")
                    self.buffers[n] = b
                    consts.append((n, b))
        return inputs, consts

    def _temp(self, shape, dtype, base="t"):
        return Buffer(self._name(f"{base}{len(self.names)}"), shape, dtype, "temp")

    # --- 2. tasks -----------------------------------------------------------------------
    def make_items(self):
        """Gemms and tasks in topological order, then output copies and update tasks."""
        self._assign_result_buffers()
        items = []
        for n in self.order:
            if n not in self.mat or self._is_reshape_view(n):
                continue
            if n.op is Op.MATMUL:
                items.append(Gemm(self.buffers[n], None, None, n))
            elif n in self.contracted:
                items.append(Gemm(self.buffers[n], None, None, n, contract=True))
            elif n.op is Op.SCAN:
                loop = self.loops[n]
                loop.outs[loop.index[n]] = self.buffers[n]
                if loop.node is n:
                    items.append(loop)
            elif n.op is Op.SCATTER_ADD:
                items += self._scatter_tasks(n)
            else:
                items.append(self._task(n))
        items += [self._argmax_task(n) for n in self.order if n.op is Op.ARGMAX_MASK]
        items += self._output_copies()
        for it in items:
            it.deps = self._deps(it)
        return items

    def _assign_result_buffers(self):
        """Buffers of materialized nodes: outputs, in-place parameters, views, temps."""
        for k, o in enumerate(self.outputs):
            out = Buffer(self._name(f"out{k}"), o.shape, o.dtype, "output")
            self.buffers[("out", k)] = out
            if o in self.mat and o not in self.buffers:
                self.buffers[o] = out
        self.absorbed = set()
        for k, o in enumerate(self.outputs):     # a reduction that only feeds an output
            r = o.src[0] if o.op is Op.RESHAPE and unit_reshape(o) else None
            if r is not None and r in self.mat and r not in self.buffers and \
                    self.consumers[r] == [o] and self.buffers.get(o) is self.buffers[("out", k)]:
                self.buffers[r] = Buffer(self._name("v"), r.shape, r.dtype, "view",
                                         base=self.buffers[("out", k)], view="reshape")
                self.mat.discard(o)
                del self.buffers[o]
                self.absorbed.add(k)
        for n in self.order:
            if n not in self.mat or n in self.buffers:
                continue
            if n.op is Op.RESHAPE and not unit_reshape(n) and self._contiguous(n.src[0]):
                self.buffers[n] = Buffer(self._name("v"), n.shape, n.dtype, "view",
                                         base=self.buffers[n.src[0]], view="reshape")
            else:
                self.buffers[n] = self._temp(n.shape, n.dtype)

    def _is_reshape_view(self, n):
        b = self.buffers.get(n)
        return n.op is Op.RESHAPE and b is not None and b.kind == "view" and \
            b.base is self.buffers.get(n.src[0])

    def _contiguous(self, n):
        b = self.buffers.get(n)
        return b is not None and b.base is None

    def _task(self, n):
        if n.op in (Op.SUM, Op.MAX):
            x = n.src[0]
            axes = tuple(a + x.ndim for a in n.arg[0])
            return Task(n.op.value, n, x, self.buffers[n], x.shape, axes)
        if n.op in (Op.CUMSUM, Op.ARGMAX):     # along the last axis of a rank >= 2 space
            x = n.src[0]                       # (prepare moves the axis there)
            return Task(n.op.value, n, x, self.buffers[n], x.shape, (x.ndim - 1,))
        return Task("map", n, n, self.buffers[n], n.shape)

    def _scatter_tasks(self, n):
        """out = x (a map), then out[target(j)] += updates[j] over the updates' space (a
        scatter, ordered after the map; it joins no nest, see ``_joins``)."""
        x, _, upd = n.src
        init = Task("map", ("init", n), x, self.buffers[n], n.shape)
        scatter = Task("scatter", n, upd, self.buffers[n], upd.shape)
        scatter.after = {init}
        return [init, scatter]

    def _argmax_task(self, mask):
        x = mask.src[0]
        k = len(mask.arg)
        if mask.arg != tuple(range(-k, 0)):
            raise NotImplementedError("numba backend: argmax over non-trailing axes "
                                      f"{mask.arg} (use the numpy backend)")
        out = self._temp(x.shape[:-k], "int64", base="am")
        self.argmax[mask] = out
        return Task("argmax", mask, x, out, x.shape, tuple(range(x.ndim - k, x.ndim)))

    def _output_copies(self):
        """Outputs that are leaves or repeats of another output are copied into place."""
        items = []
        for k, o in enumerate(self.outputs):
            out = self.buffers[("out", k)]
            if self.buffers.get(o) is not out and k not in self.absorbed:
                items.append(Task("map", ("out", k), o, out, o.shape))
        return items

    def _deps(self, it):
        if isinstance(it, Loop):
            it.ins = [self.buffers.get(s) for s in it.src]
            return {s for s in it.src if s.op not in LEAVES}
        if isinstance(it, Gemm):
            return {self._base(s) for s in it.operands} - {None}
        body = Body(_Probe(self), it.expr if it.kind == "map" and it.expr is it.node else None)
        idx = loop_vars(it.space)
        body.value(it.expr, idx)
        if it.kind == "scatter":
            body.scatter_target(it.node, idx)
        it.reads = {n: i for n, i in body.reads.items() if n.op not in LEAVES or n in
                    self.mat}
        it.leaf_reads = {n for n in body.reads if n.op in LEAVES}
        it.argmax_reads = set(body.argmax_reads)
        return set(it.reads) | set(it.argmax_reads)

    def _base(self, s):
        base = s.src[0] if is_matrix_transpose(s) else s
        return base if base.op not in LEAVES else None

    # --- 3. schedule --------------------------------------------------------------------
    def schedule(self, items):
        items = items + self._update_copies(items)
        producer = {it.node: it for it in items}
        producer.update((n, it) for it in items if isinstance(it, Loop) for n in it.nodes)
        for it in items:
            it.dep_items = {producer[self._producer_node(d)] for d in it.deps
                            if self._producer_node(d) in producer} | getattr(it, "after", set())
        tail = self._in_place_updates(items)
        # ready items by list order (a queue, not a rescan of the pending list per step);
        # only tasks can join a nest, and only over its space or its rows
        queue = ReadyQueue(items, lambda it: it.space if isinstance(it, Task) else None,
                           lambda it: isinstance(it, Gemm))
        steps, nest, members = [], None, set()
        while queue:
            if nest is not None:
                keys = (nest.space, nest.space[:-1]) if len(nest.space) >= 2 else (nest.space,)
                cand = next((it for it in queue.spaced(*keys)
                             if self._joins(it, nest, members)), None)
                if cand is not None:
                    nest.tasks.append(cand)
                    members.add(cand)
                    queue.take(cand)
                    continue
                steps.append(nest)
                nest, members = None, set()
            # a ready matmul goes first: the weight gradients then release activations before
            # the next nest, which can overwrite them in place
            it = queue.first_gemm() or queue.first()
            queue.take(it)
            if isinstance(it, Gemm):
                it.a, it.b = (self._operand(s) for s in it.operands)
                steps.append(it)
            elif isinstance(it, Loop):
                steps.append(it)
            else:
                nest, members = Nest(it.space, [it]), {it}
        if nest is not None:
            steps.append(nest)
        return steps + tail

    def _producer_node(self, n):
        """The node whose task writes what ``n`` reads (a reshape view reads its source)."""
        while self._is_reshape_view(n):
            n = n.src[0]
        return n

    def _update_copies(self, items):
        """A map task for every update whose value no item computes (a var, a reshaped view
        of one, a constant): a copy like any other update task, so it is ordered like one."""
        computed = {it.node for it in items} | {n for it in items if isinstance(it, Loop)
                                                for n in it.nodes}
        copies = []
        for var, new in self.updates:
            if new is not var and new not in computed:
                out = self.buffers[("update", var)] = self._temp(new.shape, new.dtype)
                task = Task("map", ("update", var), new, out, new.shape)
                task.deps = self._deps(task)
                copies.append(task)
        return copies

    def _param_reads(self, it, params):
        """The updated parameters ``it`` reads -> the indices it reads each at (None: any
        element, through BLAS or a reshaped view)."""
        if isinstance(it, Loop):
            return {v: None for v in map(self._producer_node, it.src) if v in params}
        if isinstance(it, Gemm):
            ops = [s.src[0] if is_matrix_transpose(s) else s for s in it.operands]
            return {v: None for v in map(self._producer_node, ops) if v in params}
        reads = {self._producer_node(n): None for n in it.reads}
        reads = {v: None for v in reads if v in params}
        direct = [v for v in it.leaf_reads if v in params and v not in reads]
        if direct:
            body = Body(_Probe(self), it.expr if it.kind == "map" and it.expr is it.node else
                        None)
            body.value(it.expr, loop_vars(it.space))
            reads.update((v, [tuple(i) for i in body.reads[v]]) for v in direct)
        return reads

    def _in_place_updates(self, items):
        """Updates are a parallel assignment: every update and output reads the parameters as
        they were before the call. An update task writes straight into its parameter when it
        reads that parameter only at the element it writes and every other reader of the
        parameter can run before it (a dependency, and a stage of the same nest only when it
        reads the same element, see ``_joins``). Where readers and writers form a cycle (a
        swap; an output reading a parameter's old and new value) one writer computes into a
        temporary instead, copied into place at the end: the Copy steps returned."""
        params = {v for v, _ in self.updates}
        for it in items:
            it.param_reads = self._param_reads(it, params)
            it.writes = None
        item = {it.node: it for it in items}
        writers = {}                          # var -> the task writing it in place
        writing, outputs = set(), set(self.outputs)
        for var, new in self.updates:
            task = item.get(("update", var), item.get(new))
            own = task.param_reads.get(var, []) if isinstance(task, Task) else None
            if own is not None and task.kind == "map" and task.out.kind == "temp" and \
                    new not in outputs and task not in writing and \
                    all(i == loop_vars(task.space) for i in own):
                writers[var] = task
                writing.add(task)
        readers = {}                          # var -> the items reading it
        for r in items:
            for var in r.param_reads:
                readers.setdefault(var, []).append(r)
        while True:
            war = {w: {r for r in readers.get(var, ()) if r is not w}
                   for var, w in writers.items()}
            cycle = _find_cycle(items, war)
            if cycle is None:
                break
            on_cycle = [w for w, r in zip(cycle, cycle[1:]) if w in war and r in war[w] and
                        r not in w.dep_items]
            victim = next((w for w in on_cycle if isinstance(w.node, tuple)), on_cycle[0])
            del writers[next(v for v, w in writers.items() if w is victim)]
        for var, task in writers.items():
            task.out, task.writes = self.buffers[var], var
            task.dep_items |= war[task]
            self.buffers[task.node] = self.buffers[var]
        tail = []
        for var, new in self.updates:
            if new is not var and var not in writers:
                task = item.get(("update", var), item.get(new))
                tail.append(Copy(self.buffers[var], task.out if task is not None else
                                 self.buffers[new]))
        return tail

    def _joins(self, it, nest, members):
        """Can ``it``, a ready item, be a further stage of the open nest (whose stages are
        ``members``)? Same space (or the nest's rows), and what it reads from the nest's
        stages lies in its own row."""
        row_level = len(nest.space) >= 2 and it.space == nest.space[:-1] if \
            isinstance(it, Task) else False
        if not isinstance(it, Task) or (it.space != nest.space and not row_level):
            return False
        if it.kind == "scatter" or nest.tasks[0].kind == "scatter":
            return False    # writes anywhere in its output: alone in its nest
        if row_level and (it.row_reduction or it.kind == "argmax"):
            return False    # its reduced last axis is an outer loop of the nest: no row of it
        if it.writes is not None:         # an update over what stages before it read
            at = loop_vars(it.space)
            if any(m.param_reads.get(it.writes, ()) is None or
                   any(i != at for i in m.param_reads.get(it.writes, ())) for m in members):
                return False
        outer = outer_vars(nest.space)
        for dep in it.dep_items & members:
            if dep.outer_reduction:
                return False
            for idx in it.reads.get(dep.node, []):
                if tuple(idx[:len(outer)]) != outer:
                    return False
            if dep.kind == "argmax" and dep.node in it.argmax_reads and len(outer) == 0:
                return False
        return True

    def _operand(self, s):
        if is_matrix_transpose(s):      # each matrix of it is an F-contiguous .T view
            base = self.buffers[s.src[0]]
            return Buffer(f"{base.name}.T", s.shape, s.dtype, "view", base=base, view="T")
        return self.buffers[s]

    # --- 4. workspace slots ------------------------------------------------------------
    def allocate(self, steps):
        """Give every temporary a place: an output buffer not yet written (free scratch), the
        slot of an operand it overwrites in place, a slot freed by liveness, or a new slot."""
        first, last = {}, {}
        for k, step in enumerate(steps):
            for b in step_writes(step):
                first.setdefault(b, k)
            for b in step_reads(step, self.buffers, self.argmax):
                last[b] = k
        out_first = {}                       # output buffer -> first step writing it
        for b, k in first.items():
            root = b
            while root.base is not None:
                root = root.base
            if root.kind == "output":
                out_first[root] = min(k, out_first.get(root, k))
        # outputs free to hold a temporary, the largest first (weight gradients: usually
        # larger than an activation), one index per dtype
        order = sorted(out_first, key=lambda o: -size_expr(o.shape)[0])
        self._lenders = {}
        for dtype in dict.fromkeys(o.dtype for o in order):
            self._lenders[dtype] = FreeOutputs([o for o in order if o.dtype == dtype and
                                                o.kind == "output"], out_first)
        slots, free, where = [], {}, {}
        dying = {}                           # step -> temps placed earlier, dead from then on
        for k, step in enumerate(steps):
            for b in dying.pop(k, ()):
                if b not in self._released:
                    self._released.add(b)
                    if where[b][0] == "slot":
                        free.setdefault(_slot_key(b), []).append(where[b][1])
            for b in step_writes(step):
                if b.kind != "temp" or b in where:
                    continue
                end = last.get(b, k)
                pool = free.get(_slot_key(b), [])
                loc = self._in_place(step, b, where, last, k, end, out_first) or \
                    (("slot", pool.pop()) if pool else None) or \
                    self._borrow_output(b, k, end)
                if loc is None:                 # only now does the workspace grow
                    loc = ("slot", len(slots))
                    slots.append(_slot_key(b))
                where[b] = loc
                dying.setdefault(max(k, last.get(b, first[b])) + 1, []).append(b)
        self._place(where)
        return slots

    def _borrow_output(self, b, start, end):
        """An output written only after ``b`` is dead and free meanwhile: ``b`` becomes a
        kernel argument that the caller fills with that output's memory when it is large
        enough at run time (sizes may be symbolic), or with workspace memory otherwise."""
        lenders = self._lenders.get(b.dtype)
        o = lenders.lend(start, end) if self.borrow and lenders is not None else None
        return None if o is None else ("out", o)

    def _place(self, where):
        """Name temporaries by place: one array variable per (place, shape), so an in-place
        map reads and writes through the same pointer, which LLVM vectorizes (two views of
        the same memory fail its runtime alias check and run scalar, ~12x slower)."""
        names, self.scratch, scratch_slot = {}, [], {}
        outputs = {id(self.buffers[("out", k)]): k for k in reversed(range(len(self.outputs)))}
        for b, (kind, at) in where.items():
            if kind == "slot":
                b.slot = at
                b.name = names.setdefault((kind, at, b.shape), f"w{at}_{len(names)}")
                continue
            key = (kind, at.name, b.shape)
            if key not in names:
                names[key] = f"sc{len(self.scratch)}"
                scratch_slot[key] = len(self.scratch)
                self.scratch.append((outputs[id(at)], b.dtype, size_expr(b.shape)))
            # the slot of this place, not of the newest scratch (a later temp can share it)
            b.kind, b.slot, b.name = "scratch", scratch_slot[key], names[key]

    def _in_place(self, step, b, where, last, k, end, out_first):
        """Place of an operand this map may overwrite: same size, read only at the same index
        by every task of the nest, and by no task after this one."""
        if not isinstance(step, Nest):
            return None
        writer, position, indices, last_reader = self._nest_index(step)
        task = writer[id(b)]
        if task.kind != "map":
            return None
        full = loop_vars(task.space)
        pos = position[task]
        for n in task.reads:
            src = self.buffers.get(n)
            if src is None or src.kind != "temp" or src not in where or last.get(src) != k \
                    or _slot_key(src) != _slot_key(b) or src in self._released:
                continue
            if not indices[n] <= {full} or last_reader[n] > pos or id(src) in writer:
                continue        # read elsewhere than at this point, later, or written here
            kind, at = where[src]
            if kind == "out":
                if out_first[at] <= end or src.shape != b.shape:
                    continue
                self._lenders[at.dtype].busy(at, k, end)
            self._released.add(src)
            return where[src]
        return None

    def _nest_index(self, step):
        """For the nest ``step``: the first task writing each buffer (by id), each task's
        position, the indices each node is read at by the nest's tasks and the position of
        its last reader (built once per nest, not per operand: a scalar graph is one nest
        of thousands of tasks, and a node can have thousands of readers)."""
        if self._indexed is None or self._indexed[0] is not step:
            writer, position, indices, last_reader = {}, {}, {}, {}
            for pos, t in enumerate(step.tasks):
                writer.setdefault(id(t.out), t)
                position.setdefault(t, pos)
                for n, at in t.reads.items():
                    indices.setdefault(n, set()).update(tuple(i) for i in at)
                    last_reader[n] = max(last_reader.get(n, pos), position[t])
            self._indexed = (step, (writer, position, indices, last_reader))
        return self._indexed[1]

    def bind_dims(self):
        """Where each symbolic dim's size is read at run time: (input index, axis)."""
        cons = self.spec.signature.cons
        dims = {}
        for i, v in enumerate(self.spec.params):
            for axis, d in enumerate(v.shape):
                if not isinstance(d, int):
                    dims.setdefault(cons.find(d), (i, axis))
        return dims


def _find_cycle(items, extra):
    """A dependency cycle [x0, x1, ..., x0] (x1 a dependency of x0) through ``dep_items``
    plus the ``extra`` dependencies of some items, or None."""
    state, path = {}, []

    def deps(it):
        return it.dep_items | extra.get(it, set())
    for root in items:
        if root in state:
            continue
        stack = [(root, iter(deps(root)))]
        state[root], path = 1, [root]
        while stack:
            it, rest = stack[-1]
            nxt = next(rest, None)
            if nxt is None:
                state[it] = 2
                stack.pop()
                path.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = 1
                path.append(nxt)
                stack.append((nxt, iter(deps(nxt))))
    return None


def _slot_key(b):
    return (b.dtype, size_expr(b.shape))


def _fits_in(shape, container):
    """Does an array of ``shape`` fit in one of ``container`` (sizes compared symbolically)?"""
    (ni, ns), (ci, cs) = size_expr(shape), size_expr(container)
    return sorted(map(id, ns)) == sorted(map(id, cs)) and ni <= ci if ns or cs else ni <= ci
