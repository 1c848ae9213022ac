"""Scans in the Numba backend: the step is a program of its own, called once per step.

The step graph goes through the same pipeline as a kernel (prepare, lower) and is rendered as
an njit function ``step<k>(carries..., x_t..., consts..., new carries..., y_t..., arenas...,
offsets)``. The calling kernel emits one real loop:

    c = copy of init; for t in range(T) (or reversed): hist[t] = c;
        step(c, xs[t], consts, c_next, ys[t]); swap(c, c_next)
    final carry = c

so the kernel's size and compile time do not depend on T. The step's workspace and the two
carry buffers are allocated once per kernel call, before the loop; the step writes its ys
straight into the rows of the output arrays.
"""
import weakref

from symdiff.ops import Op
from symdiff.signature import Signature

from .program import Loop

_programs = weakref.WeakKeyDictionary()      # body -> {ys: step Program}


class _StepSpec:
    """What ``lower`` reads of a compile spec, for a step: its inputs are the placeholders."""

    def __init__(self, body, outs):
        self.params = list(body.placeholders)
        self.signature = Signature(self.params, outs)


def step_program(body, ys):
    """The Program of one step computing the new carries and the ys at positions ``ys``."""
    from .lower import lower
    from .prepare import prepare
    cache = _programs.setdefault(body, {})
    if ys not in cache:
        nc = body.n_carry
        outs = prepare(list(body.outs[:nc]) + [body.outs[nc + j] for j in ys])
        prog = lower(_StepSpec(body, outs), outs, [], borrow=False)
        prog.verify()
        cache[ys] = prog
    return cache[ys]


def loops_of(order):
    """SCAN node -> its Loop, for every scan in ``order``. Loops over the same sources whose
    bodies differ only by extra ys (a forward loop extended by the residuals its reverse
    loop reads) are one loop: the longest body computes the outputs of all of them."""
    groups = {}
    for n in order:
        if n.op is Op.SCAN:
            b = n.arg[0]
            key = (b.carries, b.xs, b.consts, b.reverse, b.length, n.src)
            groups.setdefault(key, []).append(n)
    loops = {}
    for ns in groups.values():
        for body, members in _merge(ns):
            index = {n: _index(n, body) for n in members}
            ys = tuple(sorted({k - body.n_carry for k in index.values()
                               if body.kind(k)[0] == "y"}))
            loop = Loop(members[0], members, body, members[0].src, step_program(body, ys), ys,
                        index=index)
            loops.update((n, loop) for n in members)
    return loops


def _merge(nodes):
    """[(body, nodes it computes)]: each body's outs extend those of the bodies it absorbs."""
    bodies = sorted({n.arg[0] for n in nodes}, key=lambda b: -len(b.outs))
    merged = []
    for b in bodies:
        home = next((m for m in merged if m[0].outs[:len(b.outs)] == b.outs), None)
        if home is None:
            merged.append((b, [b]))
        else:
            home[1].append(b)
    return [(big, [n for n in nodes if n.arg[0] in members]) for big, members in merged]


def _index(n, big):
    """The output of ``big`` that equals output k of n's body (histories come last)."""
    body, k = n.arg
    return k if k < len(body.outs) else k - len(body.outs) + len(big.outs)


# --- emission ----------------------------------------------------------------------------
def emit_loop(loop, ctx, out, add_function):
    """Emit the loop of ``loop`` into the calling function (``out``); ``add_function(prog,
    name)`` renders the step function into the module."""
    body, step = loop.body, loop.step
    k = ctx.module.count
    ctx.module.count += 1
    p = f"L{k}_"
    steps = ctx.module.steps                 # one function per step program in the module
    if id(step) not in steps:
        steps[id(step)] = name = f"step{len(steps)}"
        add_function(step, name)
    name = steps[id(step)]
    nc, nx = body.n_carry, len(body.xs)
    out.emit(f"# scan {k}: {'reversed ' if body.reverse else ''}loop over {name}")
    ins = [_source(s, b, ctx, out, f"{p}s{i}") for i, (s, b) in
           enumerate(zip(loop.src, loop.ins))]
    out.emit(f"{p}T = {ins[nc]}.shape[0]" if nx else f"{p}T = {ctx.size(body.length)}")
    for i in range(nc):
        out.emit(f"{p}c{i} = np.empty_like({ins[i]})")
        out.emit(f"{p}n{i} = np.empty_like({ins[i]})")
        out.emit(_copy(f"{p}c{i}", ins[i], body.carries[i].ndim))
    where = [(ins[i], 0) for i in range(nc)] + [(ins[nc + j], 1) for j in range(nx)] + \
        [(x, 0) for x in ins[nc + nx:]]
    arena = _arena(step, where, out, p)
    t = f"{p}t"
    out.block(f"for {t} in range({p}T - 1, -1, -1):" if body.reverse else
              f"for {t} in range({p}T):")
    ny = body.n_y
    for i in range(nc):                      # the carry entering step t, when read
        b = loop.outs.get(nc + ny + i)
        if b is not None:
            out.emit(f"{b.name}[{t}] = {p}c{i}" + ("[()]" if not body.carries[i].ndim else ""))
    consts = [ctx.buffer_name(n) for n, _ in step.consts]
    args = [f"{p}c{i}" for i in range(nc)] + \
        [_row(ins[nc + j], t, body.xs[j].ndim) for j in range(nx)] + ins[nc + nx:] + consts + \
        [f"{p}n{i}" for i in range(nc)] + \
        [_row(loop.outs[nc + j].name, t, body.outs[nc + j].ndim) for j in loop.ys] + arena
    out.emit(f"{p}st = {name}({', '.join(args)})")
    out.emit(f"if {p}st != 0:")
    out.emit(f"    return {p}st")
    for i in range(nc):
        out.emit(f"{p}c{i}, {p}n{i} = {p}n{i}, {p}c{i}")
    out.end()
    for i in range(nc):
        b = loop.outs.get(i)
        if b is not None:
            out.emit(_copy(b.name, f"{p}c{i}", body.carries[i].ndim))


def _source(s, b, ctx, out, local):
    """The array of a loop source: its buffer, or a local filled with a scalar leaf."""
    if b is not None:
        return b.name
    if s.op is Op.CONST:
        value = ctx.literal(s.arg.uniform if s.ndim else s.arg.value.item(), s.dtype)
    else:                                      # Op.DIM: a run-time size
        value = ctx.dim(s.arg[0], s.dtype)
    shape = "(" + "".join(f"{ctx.size(d)}, " for d in s.shape) + ")"
    out.emit(f"{local} = np.full({shape}, {value})")
    return local


def _row(name, t, ndim):
    """The step-t slice of a scanned array, as an array (a 0-d view for scalar steps)."""
    return f"{name}[{t}]" if ndim else f"{name}[{t}:{t} + 1].reshape(())"


def _copy(dst, src, ndim):
    return f"{dst}[...] = {src}" if ndim else f"{dst}[()] = {src}[()]"


def _arena(step, where, out, p):
    """Allocate the step's workspace (one array per dtype) and its slot offsets, sized from
    the arrays that bind the step's symbolic dims (``where``: (array, leading axes) per step
    input)."""
    from .render import arena_dtypes

    def size(d):
        if isinstance(d, int):
            return str(d)
        root = step.cons.find(d)
        if root in step.dims:
            i, axis = step.dims[root]
            name, lead = where[i]
            return f"{name}.shape[{axis + lead}]"
        return str(step.cons.value[root][0])

    dtypes = arena_dtypes(step)
    for dt in dtypes:
        out.emit(f"{p}n_{dt} = 0")
    out.emit(f"{p}off = np.empty({max(len(step.slots), 1)}, np.int64)")
    for j, (dt, (ints, syms)) in enumerate(step.slots):
        out.emit(f"{p}off[{j}] = {p}n_{dt}")
        out.emit(f"{p}n_{dt} += {' * '.join([str(ints)] + [size(d) for d in syms])}")
    for dt in dtypes:
        out.emit(f"{p}ar_{dt} = np.empty({p}n_{dt}, np.{dt})")
    return [f"{p}ar_{dt}" for dt in dtypes] + [f"{p}off"]
