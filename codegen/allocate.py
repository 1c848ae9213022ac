"""Memory (pass 4 of lowering): a place for every temporary, then the program's buffers
with their places.

``allocate`` walks the steps in order and gives each temporary the first of: the place of
an operand it overwrites in place (a map that is the last to read it, at the same index), a
workspace slot freed by liveness, an output not yet written (free scratch), or a new slot.
``place`` names the temporaries by place and returns the steps and buffer tables over the
placed buffers (``program.relocate``). Both return new values; no buffer is changed.
"""
from dataclasses import dataclass, field

from .program import Nest, relocate, root_buffer, size_expr, step_reads, step_writes
from .queues import FreeOutputs
from .views import loop_vars


@dataclass
class _Pool:
    """The allocation state of one ``allocate`` call (private to it)."""

    buffers: dict                  # node -> Buffer
    out_first: dict                # output buffer -> first step writing it
    lenders: dict                  # dtype -> outputs free to hold a temporary (FreeOutputs)
    borrow: bool
    released: set = field(default_factory=set)    # temps whose place is free again
    indexed: tuple = None          # (nest, _nest_index of it), the last one asked for


def allocate(steps, buffers, argmax, outputs, borrow=True):
    """(workspace slots as (dtype, symbolic size), temporary -> its place: ("slot", k) or
    ("out", output Buffer)). ``borrow``: temporaries may live in outputs' memory."""
    first, last = {}, {}
    for k, step in enumerate(steps):
        for b in step_writes(step):
            first.setdefault(b, k)
        for b in step_reads(step, buffers, argmax):
            last[b] = k
    out_first = {}
    for b, k in first.items():
        root = root_buffer(b)
        if root.kind == "output":
            out_first[root] = min(k, out_first.get(root, k))
    pool = _Pool(buffers, out_first, _lenders(out_first), borrow)
    slots, free, where = [], {}, {}
    dying = {}                           # step -> temps placed earlier, dead from then on
    for k, step in enumerate(steps):
        for b in dying.pop(k, ()):
            if b not in pool.released:
                pool.released.add(b)
                if where[b][0] == "slot":
                    free.setdefault(_slot_key(b), []).append(where[b][1])
        for b in step_writes(step):
            if b.kind != "temp" or b in where:
                continue
            end = last.get(b, k)
            reuse = free.get(_slot_key(b), [])
            loc = _in_place(pool, step, b, where, last, k, end) or \
                (("slot", reuse.pop()) if reuse else None) or _borrow_output(pool, b, k, end)
            if loc is None:                 # only now does the workspace grow
                loc = ("slot", len(slots))
                slots.append(_slot_key(b))
            where[b] = loc
            dying.setdefault(max(k, last.get(b, first[b])) + 1, []).append(b)
    return slots, where


def _lenders(out_first):
    """Outputs free to hold a temporary, the largest first (weight gradients: usually larger
    than an activation), one index per dtype."""
    order = sorted(out_first, key=lambda o: -size_expr(o.shape)[0])
    return {dtype: FreeOutputs([o for o in order if o.dtype == dtype and o.kind == "output"],
                               out_first)
            for dtype in dict.fromkeys(o.dtype for o in order)}


def _borrow_output(pool, b, start, end):
    """An output written only after ``b`` is dead and free meanwhile: ``b`` becomes a
    kernel argument that the caller fills with that output's memory when it is large
    enough at run time (sizes may be symbolic), or with workspace memory otherwise."""
    lenders = pool.lenders.get(b.dtype)
    o = lenders.lend(start, end) if pool.borrow and lenders is not None else None
    return None if o is None else ("out", o)


def _in_place(pool, step, b, where, last, k, end):
    """Place of an operand this map may overwrite: same size, read only at the same index
    by every task of the nest, and by no task after this one."""
    if not isinstance(step, Nest):
        return None
    writer, position, indices, last_reader = _nest_index(pool, step)
    task = writer[id(b)]
    if task.kind != "map":
        return None
    full = loop_vars(task.space)
    pos = position[task]
    for n in task.reads:
        src = pool.buffers.get(n)
        if src is None or src.kind != "temp" or src not in where or last.get(src) != k \
                or _slot_key(src) != _slot_key(b) or src in pool.released:
            continue
        if not indices[n] <= {full} or last_reader[n] > pos or id(src) in writer:
            continue        # read elsewhere than at this point, later, or written here
        kind, at = where[src]
        if kind == "out":
            if pool.out_first[at] <= end or src.shape != b.shape:
                continue
            pool.lenders[at.dtype].busy(at, k, end)
        pool.released.add(src)
        return where[src]
    return None


def _nest_index(pool, step):
    """For the nest ``step``: the first task writing each buffer (by id), each task's
    position, the indices each node is read at by the nest's tasks and the position of
    its last reader (built once per nest, not per operand: a scalar graph is one nest
    of thousands of tasks, and a node can have thousands of readers)."""
    if pool.indexed is None or pool.indexed[0] is not step:
        writer, position, indices, last_reader = {}, {}, {}, {}
        for pos, t in enumerate(step.tasks):
            writer.setdefault(id(t.out), t)
            position.setdefault(t, pos)
            for n, at in t.reads.items():
                indices.setdefault(n, set()).update(tuple(i) for i in at)
                last_reader[n] = max(last_reader.get(n, pos), position[t])
        pool.indexed = (step, (writer, position, indices, last_reader))
    return pool.indexed[1]


def place(steps, buffers, argmax, where, outputs):
    """(steps, node -> Buffer, ARGMAX_MASK node -> Buffer, scratch regions) over buffers
    placed by ``where`` (``allocate``). Temporaries are named by place: one array variable
    per (place, shape), so an in-place map reads and writes through the same pointer, which
    LLVM vectorizes (two views of the same memory fail its runtime alias check and run
    scalar, ~12x slower). A temporary in an output's memory is "scratch": region k of
    ``scratch`` is (output index, dtype, size)."""
    names, scratch, scratch_slot, new = {}, [], {}, {}
    index = {id(o): k for k, o in reversed(list(enumerate(outputs)))}
    for b, (kind, at) in where.items():
        if kind == "slot":
            name = names.setdefault((kind, at, b.shape), f"w{at}_{len(names)}")
            new[id(b)] = b.placed("temp", at, name)
            continue
        key = (kind, at.name, b.shape)
        if key not in names:
            names[key] = f"sc{len(scratch)}"
            scratch_slot[key] = len(scratch)
            scratch.append((index[id(at)], b.dtype, size_expr(b.shape)))
        # the slot of this place, not of the newest scratch (a later temp can share it)
        new[id(b)] = b.placed("scratch", scratch_slot[key], names[key])
    return (*relocate(steps, buffers, argmax, new), scratch)


def _slot_key(b):
    return (b.dtype, size_expr(b.shape))
