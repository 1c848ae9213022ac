"""Program -> Python/Numba source: loop nests over preallocated buffers, products through the
shared helpers of helpers.py (loops or BLAS by size).

The emitted module has one ``@numba.njit`` function ``kernel(inputs..., consts...,
outputs..., workspace...)`` that returns a status (0, or 1 when an index given to take or
one_hot is out of range). Typed constants are module globals (a bare float literal would
promote float32 arithmetic to float64). Math functions come from ``symdiff.codegen.jit``
(vectorizable, see mathlib.py) unless ``math="libm"``.
"""
import re

import numpy as np

from symdiff.ops import Op

from .expr import CAST, LIBM, MATH, SPECIAL, Body
from .helpers import SMALL_GEMM
from .loops import emit_loop
from .program import Copy, Gemm, Loop, Nest
from .scope import Rows, Scope, inline_once, node_tag
from .views import loop_vars, outer_vars

FASTMATH = {"nsz", "arcp", "contract", "afn", "reassoc"}   # never nnan/ninf: NaN/inf stay IEEE
_SUFFIX = {"float32": "f32", "float64": "f64"}


class Context:
    """Names for buffers, constants, dims and math functions while rendering one program."""

    def __init__(self, prog, math, module=None, fastmath=True):
        self.prog, self.math_mode, self.fastmath = prog, math, fastmath
        self.module = module if module is not None else Module()
        self.constants = self.module.constants     # (repr, dtype) -> global name
        self.globals = self.module.globals
        self.imports = self.module.imports
        self.dim_names = {root: f"d{k}" for k, root in enumerate(prog.dims)}
        self.dim_casts = {}
        self.stage = 0
        self.prange = False
        self.scope = None                      # the loop body being rendered (scope.py)
        self.input_names = {b.name for b in prog.inputs}
        # 0-d inputs that no update writes (a learning rate, a scalar bias) are read once into
        # a local: a load from a 0-d array inside a loop may alias the arrays it writes, which
        # keeps LLVM from vectorizing the loop (measured: 8% of a small MLP's training step)
        updated = {id(b) for b in prog.params}
        self.scalars = {n: f"{b.name}_v" for n, b in prog.buffers.items()
                        if not isinstance(n, tuple) and b.kind == "input" and not b.shape
                        and id(b) not in updated}

    # Body context interface -------------------------------------------------------------
    def is_buffer(self, n):
        return n in self.prog.buffers and n.op is not Op.CONST or (
            n.op is Op.CONST and n in self.prog.buffers)

    def buffer_name(self, n):
        return self.prog.buffers[n].name

    def scalar_local(self, n):
        return self.scalars.get(n)

    def argmax_name(self, n):
        return self.prog.argmax[n].name

    def literal(self, value, dtype):
        if dtype == "bool":
            return "True" if value else "False"
        if dtype == "int64":
            return str(int(value))
        value = float(value)
        text = repr(value) if np.isfinite(value) else (
            "np.nan" if np.isnan(value) else "np.inf" if value > 0 else "-np.inf")
        key = (text, dtype)
        if key not in self.constants:
            name = f"K{len(self.constants)}"
            self.constants[key] = name
            self.globals.append(f"{name} = np.{dtype}({text})")
        return self.constants[key]

    def size(self, d):
        if isinstance(d, int):
            return str(d)
        root = self.prog.cons.find(d)
        if root in self.dim_names:
            return self.dim_names[root]
        return str(self.prog.cons.value[root][0])

    def dim(self, d, dtype):
        size = self.size(d)
        if dtype == "int64":
            return size
        key = (size, dtype)
        if key not in self.dim_casts:
            self.dim_casts[key] = f"{size}_{_SUFFIX.get(dtype, dtype)}"
        return self.dim_casts[key]

    def math(self, op, dtype):
        if self.math_mode == "libm" and op in LIBM or dtype not in _SUFFIX:   # special: no libm
            code = LIBM[op]
            return f"{CAST[dtype]}({code})" if dtype == "float32" else code
        name = f"{MATH[op]}_{_SUFFIX[dtype]}" + ("" if self.fastmath or op in SPECIAL else "_strict")
        self.imports.add(name)
        return name + "({0})"


class Module:
    """What the functions of one kernel module share: typed constant globals, math imports,
    and the step functions of its loops (emitted before the functions that call them)."""

    def __init__(self):
        self.constants, self.globals, self.imports = {}, [], set()
        self.functions = []
        self.count = 0            # loops so far: names of their locals
        self.steps = {}           # id of a step Program -> its function's name


class Emitter:
    """Lines of Python with indentation: the one line emitter of kernels, their loops' step
    functions and epoch drivers (``epoch.py``).

    >>> out = Emitter(depth=0)
    >>> out.block("for i in range(n):"); out.emit("s += x[i]"); out.end()
    >>> print("\\n".join(out.lines))
    for i in range(n):
        s += x[i]
    """

    def __init__(self, depth=1):
        self.lines = []
        self.depth = depth

    def emit(self, line):
        self.lines.append("    " * self.depth + line)

    def block(self, header):
        self.emit(header)
        self.depth += 1

    def end(self, n=1):
        self.depth -= n


def render(prog, name="kernel", math="fast", parallel=False, fastmath=True, title=""):
    """Python source of the kernel module for ``prog``."""
    module = Module()
    main = _function(prog, name, math, parallel, fastmath, module)
    imports = [f"from symdiff.codegen.jit import {', '.join(sorted(module.imports))}"] \
        if module.imports else []
    head = module_head(f"kernel{': ' + title if title else ''}", imports)
    source = "\n".join(head + ["", *module.globals, ""] + module.functions + main) + "\n"
    # names come from vars, and "x²" is not a Python identifier: x² -> x_u00b2
    return source if source.isascii() else "".join(
        f"_u{ord(c):04x}" if ord(c) > 127 else c for c in source)


def module_head(what, imports=()):
    """The first lines of a generated module: its docstring and imports."""
    return [f'"""symdiff {what} (generated; edits are overwritten)"""', "import numba",
            "import numpy as np", *imports]


def _function(prog, name, math, parallel, fastmath, module):
    """Lines of one njit function computing ``prog`` (its loops' steps go to ``module``)."""
    ctx = Context(prog, math, module, fastmath)
    pro, body = Emitter(), Emitter()
    _prologue(prog, ctx, pro)
    for k, step in enumerate(prog.steps):
        if isinstance(step, Gemm):
            _gemm(step, ctx, body)
        elif isinstance(step, Loop):
            emit_loop(step, ctx, body, lambda p, nm: module.functions.extend(
                _function(p, nm, math, False, fastmath, module) + ["", ""]))
        elif isinstance(step, Copy):
            body.emit(f"{step.dst.name}[...] = {step.src.name}" if step.dst.shape else
                      f"{step.dst.name}[()] = {step.src.name}[()]")
        else:
            _nest(step, ctx, body, parallel)
    body.emit("return 0")
    args = ([b.name for b in prog.inputs] + [b.name for _, b in prog.consts] +
            [b.name for b in prog.outputs] + [f"arena_{dt}" for dt in arena_dtypes(prog)] +
            ["offsets"])
    flags = ("fastmath={" + ", ".join(repr(f) for f in sorted(FASTMATH)) + "}") if fastmath \
        else "fastmath=False"
    head = [f"@numba.njit(cache=True, nogil=True, error_model='numpy', {flags}"
            f"{', parallel=True' if ctx.prange else ''})",
            f"def {name}({', '.join(args)}):"]
    casts = [f"    {v} = np.{dt}({s})" for (s, dt), v in ctx.dim_casts.items()]
    return head + _legend(prog) + pro.lines + casts + body.lines


def _legend(prog, width=96):
    """Comments naming the vars behind the positional arguments (``# a0 = x [batch, 4]; a1
    = ...``), wrapped at ``width``. Comments are not part of the cache key (``code_of``)."""
    var = {id(b): n for n, b in prog.buffers.items() if b.kind == "input"}
    items = [f"{b.name} = {node_tag(var[id(b)])}" for b in prog.inputs if id(b) in var]
    lines = []
    for item in items:
        if lines and len(lines[-1]) + len(item) + 2 <= width:
            lines[-1] += "; " + item
        else:
            lines.append("    # " + item)
    return lines


def argument_types(prog):
    """(dtype, rank) of each argument of the kernel of ``prog``: inputs, constant arrays,
    outputs, one workspace arena per dtype, the arena offsets."""
    return ([(b.dtype, len(b.shape)) for b in prog.inputs] +
            [(b.dtype, len(b.shape)) for _, b in prog.consts] +
            [(b.dtype, len(b.shape)) for b in prog.outputs] +
            [(dtype, 1) for dtype in arena_dtypes(prog)] + [("int64", 1)])


def arena_dtypes(prog):
    """One workspace array (arena) per dtype holds every slot and scratch fallback."""
    return sorted({dt for dt, _ in prog.slots} | {dt for _, dt, _ in prog.scratch})


def _prologue(prog, ctx, out):
    """Sizes of symbolic dims from the inputs, shape checks, workspace views."""
    for root, (i, axis) in prog.dims.items():
        out.emit(f"{ctx.dim_names[root]} = {prog.inputs[i].name}.shape[{axis}]")
    _shape_checks(prog, ctx, out)
    for n, local in ctx.scalars.items():
        out.emit(f"{local} = {prog.buffers[n].name}[()]")
    # where each slot and scratch fallback starts in its dtype's arena: computed by the
    # caller, who knows which fallbacks the outputs make unnecessary at these sizes
    # (each slice goes straight into the one or two views made of it: a line, not two)
    items = [(f"ws{k}", dt, sz) for k, (dt, sz) in enumerate(prog.slots)] + \
        [(f"fb{k}", dt, sz) for k, (_, dt, sz) in enumerate(prog.scratch)]
    region = {}
    for j, (name, dt, (ints, syms)) in enumerate(items):
        n = " * ".join([str(ints)] + [ctx.size(d) for d in syms])
        region[name] = (f"arena_{dt}", f"offsets[{j}]", n)
    seen = set()
    for b in list(prog.buffers.values()) + list(prog.argmax.values()):
        if b.name in seen:
            continue
        seen.add(b.name)
        if b.kind in ("temp", "scratch"):
            out.emit(_workspace_line(b, prog, ctx, region))
    for b in prog.buffers.values():
        if b.kind == "view" and b.view == "reshape":
            index = _unit_index(b.base.shape, b.shape)
            if index is not None:
                out.emit(f"{b.name} = {b.base.name}[{index}]")
                continue
            shape = "(" + "".join(f"{ctx.size(d)}, " for d in b.shape) + ")"
            out.emit(f"{b.name} = {b.base.name}.reshape({shape})")


def _workspace_line(b, prog, ctx, region):
    """The line that makes the temp or scratch buffer ``b`` (scratch: an output's memory,
    free until the output is written): a 1-d slice as it is (a 0-d one reshaped), other
    shapes through a shared helper that reshapes (a reshape in the kernel costs ~35 ms of
    Numba's compile; the helper cannot iterate the empty shape of a 0-d buffer)."""
    low, tail = len(b.shape) <= 1, "" if len(b.shape) == 1 else ".reshape(())"
    shape = "(" + "".join(f"{_int64(ctx.size(d))}, " for d in b.shape) + ")"
    if b.kind == "temp":
        arena, start, n = region[f"ws{b.slot}"]
        if low:
            return f"{b.name} = {arena}[{start}:{start} + {n}]{tail}"
        ctx.imports.add("arena_view")
        return f"{b.name} = arena_view({arena}, {start}, {shape})"
    k, _, _ = prog.scratch[b.slot]
    arena, start, _ = region[f"fb{b.slot}"]
    if low:
        ctx.imports.add("scratch")
        n = _int64(ctx.size(b.shape[0]) if b.shape else "1")
        return f"{b.name} = scratch({prog.outputs[k].name}, {arena}, {start}, {n}){tail}"
    ctx.imports.add("scratch_nd")
    return f"{b.name} = scratch_nd({prog.outputs[k].name}, {arena}, {start}, {shape})"


def _int64(size):
    """A dim size as an int64 expression: a literal would give the helper a new signature per
    value (Numba types ``2`` as Literal[int](2), ``np.int64(2)`` as int64)."""
    return f"np.int64({size})" if size.isdigit() else size


def _unit_index(src, dst):
    """The basic index that views an array of shape ``src`` as ``dst`` when they differ only
    in size-1 axes (0 drops one, None inserts one: ``out[None, :]`` for (n,) -> (1, n)), or
    None. Only for at most one non-1 axis, with the dropped and inserted axes before it or
    inserted after it: Numba types those views C-contiguous (two full slices, or one between
    inserted axes, give a non-contiguous type, slower loops and other helper signatures).
    Indexing costs Numba no compile of a reshape routine (~40 ms per view, measured on the
    XOR kernel: 1.03 -> 0.99 s for its two views)."""
    if not dst or [d for d in src if d != 1] != [d for d in dst if d != 1]:
        return None
    tokens, j = [], 0
    for d in dst:
        if d == 1:
            tokens.append("None")
            continue
        while src[j] == 1:
            tokens.append("0")
            j += 1
        tokens.append(":")
        j += 1
    tokens += ["0"] * (len(src) - j)
    text = ", ".join(tokens)
    return text if _C_VIEW.fullmatch(text) else None


_C_VIEW = re.compile(r"((0|None), )*(:(, None)*|None)")   # (0|None)*, then one : and None*


def _shape_checks(prog, ctx, out):
    """Status 2 when an argument's shape does not fit: the caller then reports which
    (dtype and layout mismatches never get here: the kernel accepts only its signature)."""
    sources = set(prog.dims.values())
    conds = []
    for i, b in enumerate(prog.inputs + prog.outputs):
        for axis, d in enumerate(b.shape):
            if (i, axis) not in sources or i >= len(prog.inputs):
                conds.append(f"{b.name}.shape[{axis}] != {ctx.size(d)}")
    for k in range(0, len(conds), 4):
        out.emit(f"if {' or '.join(conds[k:k + 4])}: return 2")




def _gemm(step, ctx, out):
    a, b, c = step.a, step.b, step.out
    if step.contract or _stacked_rows(a, b, c):
        _one_gemm(step, ctx, out)
        return
    batch = len(c.shape) - 2 if len(c.shape) > 2 else 0
    idx = []
    for k in range(batch):
        out.block(f"for g{k} in range({ctx.size(c.shape[k])}):")
        idx.append(f"g{k}")

    def sl(x):
        extra = x.shape[:-2]
        lead = ["0" if d == 1 else i for d, i in zip(extra, idx[batch - len(extra):])]
        if x.view == "T" and lead:          # a batch of transposed matrices: base[g].T
            return f"{x.base.name}[{', '.join(lead)}].T"
        return _ref(x) + (f"[{', '.join(lead)}]" if lead else "")
    m = ctx.size(a.shape[-2]) if len(a.shape) >= 2 else "1"
    kk = ctx.size(a.shape[-1])
    n = ctx.size(b.shape[-1]) if len(b.shape) >= 2 else "1"
    if all(x.isdigit() for x in (m, n, kk)) and int(m) * int(n) * int(kk) <= SMALL_GEMM:
        _loop_gemm(step, sl, ctx, out)      # small and known: constant trip counts
    else:
        _call_gemm(a, b, sl(a), sl(b), sl(c), ctx, out, node_tag(step.node))
    out.end(batch)


def _call_gemm(a, b, A, B, C, ctx, out, tag=""):
    """C = A @ B by the shared, disk-cached helper (codegen/helpers.py: loops or BLAS by size).
    One call instead of an inline loop nest plus an np.dot branch (measured, CPU time of a
    cold compile under load: XOR 4.3 -> 2.6 s; each np.dot call site alone costs ~0.2 s of
    Numba's typing and lowering, so W1's five np.dot calls went to the helper too)."""
    kind = ("m" if len(a.shape) >= 2 else "v") + ("m" if len(b.shape) >= 2 else "v")
    helper = f"gemm_{kind}" + ("" if ctx.fastmath else "_strict")
    ctx.imports.add(helper)
    out.emit(f"{helper}({A}, {B}, {C})" + (f"  # {tag}" if tag else ""))


def _stacked_rows(a, b, c):
    """A batch of matrices times one matrix: one GEMM over the stacked rows of C-ordered a."""
    return len(c.shape) > 2 and len(b.shape) == 2 and len(a.shape) == len(c.shape) and \
        a.shape[:-1] == c.shape[:-1] and (a.kind != "view" or a.view == "reshape")


def _one_gemm(step, ctx, out):
    """c = a2 @ b or c = a2^T b2 with a2, b2 the stacked rows of a batch (reshaped views)."""
    a, b, c = step.a, step.b, step.out
    if step.contract:                 # sum_t a[t]^T b[t] = A^T B, A and B the stacked rows
        x = a.base
        A = f"{_ref(x)}.reshape((-1, {ctx.size(x.shape[-1])})).T"
        B = f"{_ref(b)}.reshape((-1, {ctx.size(b.shape[-1])}))"
        C = f"{_ref(c)}.reshape(({ctx.size(x.shape[-1])}, {ctx.size(b.shape[-1])}))"
        _call_gemm(x, b, A, B, C, ctx, out, node_tag(step.node))   # (c keeps size-1 axes)
        return
    A = f"{_ref(a)}.reshape((-1, {ctx.size(a.shape[-1])}))"
    C = f"{_ref(c)}.reshape((-1, {ctx.size(c.shape[-1])}))"
    _call_gemm(a, b, A, _ref(b), C, ctx, out, node_tag(step.node))


def _loop_gemm(step, sl, ctx, out):
    """c = a @ b as loops (numpy.matmul's vector cases included)."""
    a, b, c = step.a, step.b, step.out
    A, B, C = sl(a), sl(b), sl(c)
    rows = len(a.shape) >= 2
    cols = len(b.shape) >= 2
    acc = f"acc_{C.replace('[', '_').replace(']', '').replace(', ', '_').replace('.', '_')}"
    if rows:
        out.block(f"for gi in range({ctx.size(a.shape[-2])}):")
    if cols:
        out.block(f"for gj in range({ctx.size(b.shape[-1])}):")
    out.emit(f"{acc} = {ctx.literal(0, c.dtype)}")
    out.block(f"for gk in range({ctx.size(a.shape[-1])}):")
    ai = f"{A}[gi, gk]" if rows else f"{A}[gk]"
    bi = f"{B}[gk, gj]" if cols else f"{B}[gk]"
    out.emit(f"{acc} += {ai} * {bi}")
    out.end()
    ci = ", ".join(i for i, f in (("gi", rows), ("gj", cols)) if f) or "()"
    out.emit(f"{C}[{ci}] = {acc}")
    out.end(int(rows) + int(cols))


def _ref(b):
    """A matmul operand: a buffer or a transposed view of one (an F-contiguous view)."""
    return f"{b.base.name}.T" if b.view == "T" else b.name


def _init(kind, dtype, ctx):
    if kind in ("sum", "cumsum"):
        return ctx.literal(0, dtype)
    if dtype in ("float32", "float64"):
        return ctx.literal(-np.inf, dtype)
    return "False" if dtype == "bool" else str(np.iinfo(np.int64).min)


def _combine(kind, acc, v):
    return f"{acc} + {v}" if kind == "sum" else f"np.maximum({acc}, {v})"


def _nest(nest, ctx, out, parallel):
    space = nest.space
    outer = outer_vars(space)
    totals = {}
    for t in nest.tasks:                    # accumulators that span the whole nest
        if t.kind in ("sum", "max") and t.outer_reduction:
            if len(t.axes) == len(t.space):
                totals[t] = f"acc_{t.out.name}"
                out.emit(f"{totals[t]} = {_init(t.kind, t.out.dtype, ctx)}")
            else:
                out.emit(f"{t.out.name}[...] = {_init(t.kind, t.out.dtype, ctx)}")
        elif t.kind == "argmax" and t.outer_reduction:
            raise NotImplementedError("numba backend: argmax_mask over non-trailing axes")
    loops = 0
    for k, v in enumerate(outer):
        rng = "numba.prange" if parallel and k == 0 and nest.parallel_safe else "range"
        ctx.prange = ctx.prange or rng != "range"
        out.block(f"for {v} in {rng}({ctx.size(space[k])}):")
        loops += 1
    rows = Rows()                           # index checks done in the current row
    for group in _stage_groups(nest):
        _group(group, ctx, out, space, totals, rows)
    out.end(loops)
    for t, acc in totals.items():
        out.emit(f"{t.out.name}[{', '.join(['0'] * len(t.out.shape)) or '()'}] = {acc}")


def _stage_groups(nest):
    """Consecutive tasks that can share one inner loop: a task joins when it reads what the
    group wrote only at the same point, and no reduction or argmax of the group."""
    groups = []
    full = loop_vars(nest.space)
    for t in nest.tasks:
        inner = len(t.space) == len(nest.space) and len(nest.space) >= 2
        g = groups[-1] if groups else None
        if g is not None and g[0] == inner and _fits(t, g[1], full, inner):
            g[1].append(t)
        else:
            groups.append((inner, [t]))
    return [ts for _, ts in groups]


def _fits(t, group, full, inner):
    if not inner:
        return all(d.node not in t.reads for d in group)
    for d in group:
        if d.kind != "map" and (d.node in t.reads or d.node in t.argmax_reads):
            return False
        if any(tuple(i) != full for i in t.reads.get(d.node, [])):
            return False
    return True


def _group(tasks, ctx, out, space, totals, rows):
    t0 = tasks[0]
    full = loop_vars(t0.space)
    has_inner = len(t0.space) == len(space) and len(space) >= 2
    accs = {}
    for t in tasks:
        if t.kind == "argmax":
            accs[t] = (f"best_{t.out.name}", f"bi_{t.out.name}")
            out.emit(f"{accs[t][0]} = {_init('max', t.expr.dtype, ctx)}")
            out.emit(f"{accs[t][1]} = 0")
        elif t.kind != "map" and t not in totals and has_inner and len(space) - 1 in t.axes:
            accs[t] = f"acc_{t.out.name}"
            out.emit(f"{accs[t]} = {_init(t.kind, t.out.dtype, ctx)}")
    ctx.scope = Scope(rows, full[-1] if has_inner else None, ctx.input_names,
                      ctx.size(space[-1]) if has_inner else None)
    lines = _stages(tasks, ctx, full, totals, accs)
    for line in ctx.scope.hoisted:      # row-invariant checks: once per row, before the loop
        out.emit(line)
    ctx.scope = None
    if has_inner:
        out.block(f"for {full[-1]} in range({ctx.size(space[-1])}):")
    for text, tag in inline_once(lines):
        out.emit(text + (f"  # {tag}" if tag else ""))
    if has_inner:
        out.end()
    for t, acc in accs.items():
        target = _out_index(t, full)
        if t.kind == "cumsum":
            continue                    # stored element by element
        if t.kind == "argmax":
            out.emit(f"{t.out.name}[{', '.join(full[:-1]) or '()'}] = {acc[1]}")
        elif t.outer_reduction:
            out.emit(f"{t.out.name}[{target}] = "
                     f"{_combine(t.kind, f'{t.out.name}[{target}]', acc)}")
        else:
            out.emit(f"{t.out.name}[{target}] = {acc}")


def _stages(tasks, ctx, full, totals, accs):
    """[line, tag] pairs of the fused stages of one loop body (ctx.scope shares values and
    checks between them); each stage's first store carries the ``# node`` it computes."""
    lines = []
    for t in tasks:
        ctx.stage += 1          # SSA names unique per stage, deterministic (the cache key)
        body = Body(ctx, t.expr if t.kind == "map" and t.expr is t.node else None,
                    prefix=f"s{ctx.stage}_")
        value = body.value(t.expr, full)
        added = body.scatter_target(t.node, full) if t.kind == "scatter" else None
        store = Emitter()
        store.depth = 0
        _store(t, value, full, totals, accs, store, added)
        ctx.scope.stored(store.lines)
        lines += [[x, ""] for x in body.lines]
        lines += [[x, node_tag(t.node) if k == 0 else ""] for k, x in enumerate(store.lines)]
    return lines


def _store(t, value, full, totals, accs, out, added=None):
    """The store of task ``t``'s ``value`` at loop point ``full`` (``added``: the index a
    scatter adds into)."""
    if t.kind != "map" and t.kind != "argmax" and t.expr.dtype != t.out.dtype:
        value = f"{CAST[t.out.dtype]}({value})"
    target = _out_index(t, full)
    if t.kind == "map":
        out.emit(f"{t.out.name}[{target}] = {value}")
    elif t.kind == "scatter":           # repeated indices add up, in update order
        at = ", ".join(added) or "()"
        out.emit(f"{t.out.name}[{at}] += {value}")
    elif t.kind == "cumsum":
        out.emit(f"{accs[t]} += {value}")
        out.emit(f"{t.out.name}[{target}] = {accs[t]}")
    elif t.kind == "argmax":
        best, bi = accs[t]
        j = full[-1]
        # the first maximum, a NaN counting as the maximum (numpy.argmax)
        out.block(f"if {j} == 0 or {value} > {best} or ({value} != {value} and "
                  f"{best} == {best}):")
        out.emit(f"{best} = {value}")
        out.emit(f"{bi} = {j}")
        out.end()
    elif t in totals:
        out.emit(f"{totals[t]} = {_combine(t.kind, totals[t], value)}")
    elif t in accs:
        out.emit(f"{accs[t]} = {_combine(t.kind, accs[t], value)}")
    else:
        out.emit(f"{t.out.name}[{target}] = "
                 f"{_combine(t.kind, f'{t.out.name}[{target}]', value)}")


def _out_index(t, full):
    """Index of the task's output element for the current loop point."""
    if t.kind in ("map", "cumsum"):
        idx = list(full)
    else:
        keep = len(t.out.shape) == len(t.space)
        idx = [("0" if keep else None) if a in t.axes else v for a, v in enumerate(full)]
        idx = [i for i in idx if i is not None]
    return ", ".join(idx) if idx else "()"
