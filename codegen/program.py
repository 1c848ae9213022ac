"""The loop IR between the graph and the Numba source: a ``Program`` is an ordered list of
steps over named buffers.

- ``Buffer``: an array the kernel touches (an input, a constant, an output, a parameter it
  updates, or a temporary living in a workspace slot).
- ``Gemm``: out = a @ b through BLAS (np.dot into a preallocated buffer); operands are views.
- ``Nest``: loops over ``space``. The outer loops run over ``space[:-1]`` (or the whole space
  for rank <= 1); each ``Task`` is one stage inside them, with its own inner loop over the last
  axis when it has one. Stages of one nest see the rows earlier stages wrote, so a softmax
  (max pass, exp-sum pass, output pass) and the bias-gradient column sums share one sweep.
- ``Task``: a map (store an expression at every point of the space), a reduction of an
  expression over some axes of the space (into a buffer or a scalar), or an argmax.
Expressions stay graph nodes; ``render.py`` turns them into Python at emission time.
"""
from dataclasses import dataclass, field, replace
from functools import lru_cache

from symdiff.dims import Dim


@dataclass(frozen=True, eq=False, slots=True)
class Buffer:
    name: str
    shape: tuple
    dtype: str
    kind: str                      # input | const | output | param | temp | scratch | view
    slot: int = -1                 # workspace slot of a temp
    base: "Buffer" = None          # a view's underlying buffer
    view: str = ""                 # how the view is made from base ("T", "reshape", "perm")
    perm: tuple = ()

    def placed(self, kind, slot, name):
        """This buffer at its place: ``kind`` temp (``slot``: its workspace slot) or scratch
        (``slot``: its scratch region), and the array variable ``name``."""
        return Buffer(name, self.shape, self.dtype, kind, slot, self.base, self.view, self.perm)


@dataclass(frozen=True, eq=False, slots=True)
class Task:
    kind: str                      # map | sum | max | cumsum | argmax | scatter
    node: object                   # the graph node it computes (the reduction's result)
    expr: object                   # the node whose value is stored or reduced
    out: Buffer                    # where the result goes
    space: tuple                   # iteration space (the expression's shape)
    axes: tuple = ()               # reduced axes (non-negative, into space)
    # its accesses (expr.access), at indices over the loop variables of ``space``:
    reads: dict = field(default_factory=dict)       # materialized node -> [index tuples]
    leaf_reads: dict = field(default_factory=dict)  # input or constant -> [index tuples]
    argmax_reads: frozenset = frozenset()           # ARGMAX_MASK nodes whose indices it reads
    after: frozenset = frozenset()                  # items that must run before it

    @property
    def deps(self):
        """What it depends on: the materialized nodes and argmax masks it reads."""
        return set(self.reads) | self.argmax_reads

    def into(self, out):
        """This task storing into ``out`` instead (a direct call: lowering moves every task
        once, and ``dataclasses.replace`` costs ten times more)."""
        return self if out is self.out else Task(
            self.kind, self.node, self.expr, out, self.space, self.axes, self.reads,
            self.leaf_reads, self.argmax_reads, self.after)

    @property
    def row_reduction(self):
        """Reduces exactly the last axis of a space of rank >= 2: done within each row."""
        return self.kind != "map" and len(self.space) >= 2 and self.axes == (len(self.space) - 1,)

    @property
    def outer_reduction(self):
        """Accumulates across the outer loops: its result is complete only after the nest."""
        return self.kind != "map" and not self.row_reduction


@dataclass(frozen=True, eq=False, slots=True)
class Gemm:
    out: Buffer
    a: Buffer
    b: Buffer
    node: object
    # sum_t a[t]^T b[t] over the leading axes as one GEMM of the stacked rows (a weight
    # gradient summed over time steps or a batch of matrices): node is that sum
    contract: bool = False

    @property
    def operands(self):
        """The matmul's operand nodes."""
        return self.node.src[0].src if self.contract else self.node.src


@dataclass(frozen=True, eq=False, slots=True)
class Nest:
    space: tuple
    tasks: list

    @property
    def parallel_safe(self):
        """No task accumulates across the outer loops, except scalar sum totals (a loss),
        which prange turns into per-thread partial sums."""
        return all(not t.outer_reduction or (t.kind == "sum" and len(t.axes) == len(t.space))
                   for t in self.tasks)


@dataclass(frozen=True, eq=False, slots=True)
class Copy:
    """dst[...] = src, e.g. a parameter update computed into a temporary first."""
    dst: Buffer
    src: Buffer


@dataclass(frozen=True, eq=False, slots=True)
class Loop:
    """A scan: ``step`` (a Program of its own, rendered as a function) called once per step
    over carry buffers swapped between steps, per-step views of the scanned inputs and the
    ys/history outputs, and the loop-invariant inputs."""
    node: object                   # the first SCAN node of the loop (its key in the schedule)
    nodes: list                    # every SCAN output node of the loop the program uses
    body: object                   # the ScanBody
    src: tuple                     # the loop's source nodes (init carries, xs, consts)
    step: "Program"                # the step: inputs = the body's placeholders
    ys: tuple                      # positions of the ys the step computes (the used ones)
    outs: dict = field(default_factory=dict)     # output index k -> Buffer
    ins: list = field(default_factory=list)      # per source: its Buffer, or None (a leaf)
    index: dict = field(default_factory=dict)    # SCAN node -> its output index in body


@dataclass(frozen=True)
class Program:
    """What lowering hands to rendering: every field declared here and set at construction
    (frozen: no pass attaches or rebinds a field later)."""

    buffers: dict                  # node -> Buffer of every materialized value
    inputs: list                   # input Buffers, in call order (vars, then state vars)
    consts: list                   # constant array Buffers (passed as arguments)
    outputs: list                  # output Buffers, in output order
    params: list                   # Buffers of updated parameters (aliases of inputs/state)
    slots: list                    # (dtype, symbolic size) of every workspace slot
    steps: list                    # Gemm | Nest | Loop | Copy, in execution order
    dims: dict                     # Dim -> (input index, axis) that binds it
    argmax: dict = field(default_factory=dict)   # ARGMAX_MASK node -> Buffer of its indices
    cons: object = None            # the dims' constraints (equal dims, known sizes)
    scratch: list = field(default_factory=list)  # (output index, dtype, size) per scratch

    def verify(self):
        """Check the invariants the passes rely on: every buffer a step reads is written
        earlier or is an input, and every buffer a scatter adds into (out[j] += u) was
        initialized by an earlier step; one array variable per place and shape; no two
        values live in one place at once (``_check_places``). (A reduction's accumulator is
        initialized by the renderer at the head of its nest, not by a step.)"""
        ready = {id(b) for b in self.inputs + [b for _, b in self.consts] + self.params}
        for step in self.steps:
            for b in _reads(step, self.buffers):
                root = root_buffer(b)
                assert id(root) in ready or root.kind in ("input", "const", "param"), \
                    f"{root.name} read before it is written"
            for b in step_writes(step):
                ready.add(id(b.base or b))
                ready.add(id(b))
        seen = {}
        for b in {id(b): b for b in self.buffers.values()}.values():
            key = (b.kind, b.slot, b.shape) if b.kind in ("temp", "scratch") else id(b)
            assert seen.setdefault(b.name, key) == key, f"buffer name {b.name} reused"
        self._check_places()
        return True

    def _check_places(self):
        """Values that share memory are live over disjoint step ranges: temporaries in one
        workspace slot, and an output with the temporaries kept in its memory before it is
        written (scratch). A value lives from its first write to its last access (an output:
        to the end); one step may end a value and start the next in its place (a map that
        overwrites its operand, element by element)."""
        span = {}
        for k, step in enumerate(self.steps):
            for b in step_writes(step):
                r = root_buffer(b)
                span.setdefault(id(r), [r, k, k])[2] = k
            for b in step_reads(step, self.buffers, self.argmax):
                if id(b) in span:
                    span[id(b)][2] = k
        places = {}
        for r, start, end in span.values():
            if r.kind == "temp":
                places.setdefault(("slot", r.slot), []).append((start, end, r))
            elif r.kind == "scratch":
                places.setdefault(("output", self.scratch[r.slot][0]), []).append(
                    (start, end, r))
        for k, out in enumerate(self.outputs):
            if id(out) in span and ("output", k) in places:
                places[("output", k)].append((span[id(out)][1], len(self.steps), out))
        for place, lives in places.items():
            lives.sort(key=lambda life: (life[0], life[1]))
            last_end, owner = -1, None
            for start, end, b in lives:
                assert start >= last_end, (
                    f"{b.name} (steps {start}-{end}) and {owner.name} (to step {last_end}) "
                    f"share {place[0]} {place[1]} while both are live")
                if end >= last_end:
                    last_end, owner = end, b


def relocate(steps, buffers, argmax, new):
    """(steps, buffers, argmax) with every buffer b replaced by ``new[id(b)]`` where given,
    and every view of a replaced buffer by a view of its replacement."""
    memo = dict(new)

    def moved(b):
        if b is None:
            return None
        got = memo.get(id(b))
        if got is None:
            got = b
            base = moved(b.base)
            if base is not b.base:            # a view of a moved buffer
                got = Buffer(f"{base.name}.T" if b.view == "T" else b.name, b.shape, b.dtype,
                             b.kind, b.slot, base, b.view, b.perm)
            memo[id(b)] = got
        return got

    def step(s):
        if isinstance(s, Nest):
            return Nest(s.space, [t.into(moved(t.out)) for t in s.tasks])
        if isinstance(s, Gemm):
            return Gemm(moved(s.out), moved(s.a), moved(s.b), s.node, s.contract)
        if isinstance(s, Copy):
            return Copy(moved(s.dst), moved(s.src))
        return replace(s, outs={k: moved(b) for k, b in s.outs.items()},
                       ins=[moved(b) for b in s.ins])
    return ([step(s) for s in steps], {n: moved(b) for n, b in buffers.items()},
            {n: moved(b) for n, b in argmax.items()})


def root_buffer(b):
    while b.base is not None:
        b = b.base
    return b


def step_reads(step, buffers, argmax):
    """Every buffer ``step`` reads (each stage's reads of a nest included, argmax indices
    too), each followed by the buffers it is a view of: the access analysis of the allocator
    and of ``Program.verify``."""
    if isinstance(step, Loop):
        bufs = [b for b in step.ins if b is not None]
    elif isinstance(step, Gemm):
        bufs = [step.a, step.b]
    elif isinstance(step, Copy):
        bufs = [step.src]
    else:
        bufs = [buffers[n] for t in step.tasks for n in t.reads]
        bufs += [argmax[n] for t in step.tasks for n in t.argmax_reads]
    out = []
    for b in bufs:
        while b is not None:
            out.append(b)
            b = b.base
    return out


def step_writes(step):
    """The buffers ``step`` writes."""
    if isinstance(step, Loop):
        return list(step.outs.values())
    if isinstance(step, Gemm):
        return [step.out]
    if isinstance(step, Copy):
        return [step.dst]
    return [t.out for t in step.tasks]


def _reads(step, buffers):
    if isinstance(step, Loop):
        return [b for b in step.ins if b is not None]
    if isinstance(step, Gemm):
        return [step.a, step.b]
    if isinstance(step, Copy):
        return [step.src]
    written = {id(t.out) for t in step.tasks}   # a stage may read rows an earlier one wrote
    added = [t.out for t in step.tasks if t.kind == "scatter"]   # out[j] += u: its init before
    return added + [buffers[n] for t in step.tasks for n in t.reads
                    if id(buffers[n]) not in written]


@lru_cache(maxsize=4096)      # lowering asks ~3 times per buffer, with a few distinct shapes
def size_expr(shape):
    """The element count of a shape as a tuple of factors (ints and Dims)."""
    ints, syms = 1, []
    for d in shape:
        if isinstance(d, Dim):
            syms.append(d)
        else:
            ints *= d
    return (ints, tuple(syms))
