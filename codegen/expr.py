"""Loop bodies: the value of a node at a symbolic index, as SSA lines of Python.

``Body.value(node, idx)`` returns a Python expression for ``node`` at index ``idx`` (a tuple of
index strings, one per axis of the node), appending SSA assignments for inlined operations and
recording every buffer read with its index. Views are index maps (a transpose permutes the
index, a broadcast pins size-1 axes to 0); ``take`` reads with a computed index; ``one_hot``
and ``argmax_mask`` compare an index with a loop variable. The op -> code table is ``CODE``.
"""
from symdiff.ops import Op

from . import specialmath

# math functions owned by the emitter (codegen/mathlib.py, specialmath.py), by op and dtype
# suffix; LIBM has the alternative (math="libm") of the elementary ones
MATH = {Op.EXP: "exp", Op.LOG: "log", Op.LOG1P: "log1p", Op.EXPM1: "expm1", Op.TANH: "tanh",
        Op.SIGMOID: "sigmoid", Op.SOFTPLUS: "softplus", Op.LGAMMA: "lgamma",
        Op.DIGAMMA: "digamma", Op.POLYGAMMA: "polygamma", Op.ERF: "erf", Op.ERFC: "erfc",
        Op.LOG_NDTR: "log_ndtr"}
# the special functions (codegen/specialmath.py): called, one copy for every kernel (no
# "_strict" copy without fast-math, jit.py compiles them without it)
SPECIAL = frozenset(op for op, name in MATH.items() if (name, "float64") in specialmath.FUNCTIONS)
ORDER_ARG = frozenset({Op.POLYGAMMA})    # the node's arg is a leading argument: polygamma_f64(n, x)
LIBM = {Op.EXP: "np.exp({0})", Op.LOG: "np.log({0})", Op.LOG1P: "np.log1p({0})",
        Op.EXPM1: "np.expm1({0})", Op.TANH: "np.tanh({0})",
        Op.SIGMOID: "(1.0 / (1.0 + np.exp(-{0})))", Op.SOFTPLUS: "np.logaddexp(0.0, {0})"}
CODE = {
    Op.NEG: "(-{0})", Op.ADD: "({0} + {1})", Op.SUB: "({0} - {1})", Op.MUL: "({0} * {1})",
    Op.DIV: "({0} / {1})", Op.POW: "({0} ** {1})", Op.MAXIMUM: "np.maximum({0}, {1})",
    Op.MINIMUM: "np.minimum({0}, {1})", Op.LT: "({0} < {1})", Op.LE: "({0} <= {1})",
    Op.GT: "({0} > {1})", Op.GE: "({0} >= {1})", Op.EQ: "({0} == {1})", Op.NE: "({0} != {1})",
    Op.WHERE: "({1} if {0} else {2})", Op.SQRT: "np.sqrt({0})", Op.SIN: "np.sin({0})",
    Op.COS: "np.cos({0})", Op.ABS: "abs({0})", Op.SIGN: "np.sign({0})",
}
CAST = {"float32": "np.float32", "float64": "np.float64", "int64": "np.int64", "bool": "bool"}
_PROMOTE = {"bool": 0, "int64": 1, "float32": 2, "float64": 3}
_COMPARE = (Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ, Op.NE)


def natural_dtype(n):
    """The dtype numba gives the Python expression of ``n`` before any cast."""
    if n.op in _COMPARE:
        return "bool"
    srcs = [s.dtype for s in (n.src[1:] if n.op is Op.WHERE else n.src)]
    if n.op is not Op.DIV and all(d == n.dtype for d in srcs) and n.dtype != "bool":
        return n.dtype              # one dtype throughout: the common case, no promotion
    top = max(srcs, key=_PROMOTE.__getitem__)
    if top == "float32" and "int64" in srcs:
        return "float64"
    if n.op is Op.DIV:
        return top if top in ("float32", "float64") else "float64"
    if top == "bool" and n.op in (Op.ADD, Op.SUB, Op.MUL):
        return "int64"
    return top


def child_index(idx, shape, src_shape):
    """Index of a source broadcast against ``shape`` (numpy: right-aligned, size 1 -> 0)."""
    if src_shape == shape and 1 not in shape:
        return tuple(idx)           # same shape, no size-1 axis: the same index
    k = len(shape) - len(src_shape)
    return tuple(["0" if d == 1 else i for d, i in zip(src_shape, idx[k:])])


class Body:
    """SSA lines of one loop body; ``ctx`` names buffers, constants, dims and math functions.

    ``ctx`` provides: ``is_buffer(node)``, ``buffer_name(node)``, ``argmax_name(node)``,
    ``literal(value, dtype)``, ``dim(d, dtype)``, ``math(op, dtype)``.
    """

    def __init__(self, ctx, self_node=None, prefix="v"):
        self.ctx, self.self_node, self.prefix = ctx, self_node, prefix
        self.lines, self.memo = [], {}
        self.reads = {}              # node -> [index tuples]
        self.argmax_reads = set()

    def value(self, n, idx):
        key = (n, idx)
        if key not in self.memo:
            self.memo[key] = self._value(n, tuple(idx))
        return self.memo[key]

    def _read(self, n, idx):
        self.reads.setdefault(n, []).append(idx)
        local = getattr(self.ctx, "scalar_local", None)
        if not idx and local is not None and local(n) is not None:
            return local(n)                  # a 0-d input read once before the loops
        ix = ", ".join(idx) if idx else "()"
        return f"{self.ctx.buffer_name(n)}[{ix}]"

    def _value(self, n, idx):
        ctx = self.ctx
        if n is not self.self_node and ctx.is_buffer(n):
            return self._read(n, idx)
        if n.op is Op.CONST:
            return ctx.literal(n.arg.uniform if n.arg.uniform is not None else n.arg.value.item(),
                               n.dtype)
        if n.op is Op.DIM:
            return ctx.dim(n.arg[0], n.dtype)
        if n.op is Op.TRANSPOSE:
            inv = [0] * len(n.arg)
            for k, p in enumerate(n.arg):
                inv[p] = idx[k]
            return self.value(n.src[0], tuple(inv))
        if n.op is Op.BROADCAST_TO:
            return self.value(n.src[0], child_index(idx, n.shape, n.src[0].shape))
        if n.op is Op.RESHAPE:
            return self.value(n.src[0], self._reshape_index(n, idx))
        if n.op is Op.TAKE:
            return self._take(n, idx)
        if n.op is Op.ONE_HOT:
            label = self.value(n.src[0], idx[:-1])
            self._check(label, n.arg[0], "one_hot")
            return self._ssa(n, f"{CAST[n.dtype]}({label} == {idx[-1]})")
        if n.op is Op.ARGMAX_MASK:
            return self._argmax_mask(n, idx)
        if n.op in INDEX_MAPS:
            return INDEX_MAPS[n.op](self, n, idx)
        return self._ssa(n, self._op_code(n, idx))

    def _op_code(self, n, idx):
        args = [self.value(s, child_index(idx, n.shape, s.shape)) for s in n.src]
        if n.op is Op.CAST:
            return f"{CAST[n.dtype]}({args[0]})"
        if n.op in MATH:
            lead = [str(n.arg)] if n.op in ORDER_ARG else []
            return self.ctx.math(n.op, n.dtype).format(", ".join(lead + args))
        code = CODE[n.op].format(*args)
        return code if natural_dtype(n) == n.dtype else f"{CAST[n.dtype]}({code})"

    def _reshape_index(self, n, idx):
        """Index of a reshape's source: unit reshapes keep the non-1 axes' indices; others go
        through the flat (C-order) position."""
        src = n.src[0].shape
        if [d for d in n.shape if d != 1] == [d for d in src if d != 1]:
            it = iter(i for i, d in zip(idx, n.shape) if d != 1)
            return tuple("0" if d == 1 else next(it) for d in src)
        flat = idx[0] if idx else "0"
        for d, i in zip(n.shape[1:], idx[1:]):
            flat = f"({flat} * {self.ctx.size(d)} + {i})"
        flat = self._ssa(n, flat)
        out, stride = [], None
        for d in reversed(src):
            q = flat if stride is None else f"({flat} // ({stride}))"
            out.append(f"({q} % {self.ctx.size(d)})")
            stride = self.ctx.size(d) if stride is None else f"{stride} * {self.ctx.size(d)}"
        return tuple(reversed(out))

    def _take(self, n, idx):
        x, ix = n.src
        label = self.value(ix, child_index(idx, n.shape, ix.shape))
        self._check(label, x.shape[-1], "take")
        lead = child_index(idx, n.shape, x.shape[:-1])
        return self.value(x, lead + (label,))

    def label(self, n, idx_node, at, size, what):
        """An index read from ``idx_node`` at ``at``, negative ones counted from the end
        (NumPy), checked against ``size`` before anything is read or written with it."""
        raw = self.value(idx_node, at)
        size = self.ctx.size(size)
        wrapped = self._ssa(n, f"({raw} + {size} if {raw} < 0 else {raw})")
        self._check(wrapped, size, what)
        return wrapped

    def scatter_target(self, n, idx):
        """Index of the output element that update element ``idx`` of SCATTER_ADD ``n`` adds to."""
        x, ix, _ = n.src
        axis, batch = n.arg
        nj = ix.ndim - batch
        lab = self.label(n, ix, tuple(idx[:batch]) + tuple(idx[axis:axis + nj]), x.shape[axis],
                         "scatter_add")
        return tuple(idx[:axis]) + (lab,) + tuple(idx[axis + nj:])

    def _argmax_mask(self, n, idx):
        k = len(n.arg)
        self.argmax_reads.add(n)
        lead, tail = idx[:-k], idx[-k:]
        flat = tail[0]
        for d, i in zip(n.shape[-k + 1:] if k > 1 else (), tail[1:]):
            flat = f"({flat} * {self.ctx.size(d)} + {i})"
        ix = ", ".join(lead) if lead else "()"
        return self._ssa(n, f"({self.ctx.argmax_name(n)}[{ix}] == {flat})")

    def _check(self, label, size, what):
        """Return status 1 before an out-of-range index reaches memory (take, one_hot)."""
        size = size if isinstance(size, str) else self.ctx.size(size)
        line = f"if {label} < 0 or {label} >= {size}: return 1"
        scope = getattr(self.ctx, "scope", None)     # the loop body's (codegen/scope.py)
        if scope is None or scope.check(line):
            self.lines.append(line)

    def _ssa(self, n, code):
        name = f"{self.prefix}{len(self.lines)}"
        scope = getattr(self.ctx, "scope", None)
        if scope is not None:
            known = scope.value(code, name)
            if known != name:
                return known                         # computed by an earlier stage
        self.lines.append(f"{name} = {code}")
        return name



class _Placeholders:
    """A Body context for an access analysis: which nodes are buffers, and placeholder
    names for everything else (an access is an index tuple compared with loop variables,
    never with these names)."""

    scope = scalar_local = None      # no values shared between stages, no 0-d locals

    def __init__(self, is_buffer):
        self.is_buffer = is_buffer

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


def access(expr, idx, is_buffer, self_node=None, scatter=None):
    """What computing ``expr`` at index ``idx`` reads: ({buffered node: [index tuples]},
    {argmax masks whose indices it reads}). ``self_node``: the node being stored (read
    through its own expression, not its buffer); ``scatter``: a SCATTER_ADD node whose
    target index is computed too. The walk is the one that emits the code (``Body``), so
    the access analysis and the emitted loads never disagree on an index map.

    >>> import symdiff as sd
    >>> x = sd.var("x", (3, 4))
    >>> y = sd.transpose(x) * 2.0
    >>> reads, _ = access(y, ("i0", "i1"), lambda n: n is x)
    >>> reads[x]
    [('i1', 'i0')]
    """
    body = Body(_Placeholders(is_buffer), self_node)
    body.value(expr, idx)
    if scatter is not None:
        body.scatter_target(scatter, idx)
    return body.reads, frozenset(body.argmax_reads)


# --- index maps of the tensor language: the source element (or elements) each output
# element reads, as index expressions; a conditional read clamps its index so that the
# source is only ever read in bounds, and selects afterwards
def _iota(body, n, idx):
    i = idx[n.arg[1]]
    return i if n.dtype == "int64" else body._ssa(n, f"{CAST[n.dtype]}({i})")


def _slice(body, n, idx):
    src = []
    for i, s in zip(idx, n.arg):
        if s is None or i == "0" and s[0] == 0:
            src.append(i)
        else:
            start, step, _ = s
            src.append(f"({start} + {i})" if step == 1 else f"({start} + {step} * {i})")
    return body.value(n.src[0], tuple(src))


def _flip(body, n, idx):
    axes = {a + n.ndim for a in n.arg}
    src = tuple(f"({body.ctx.size(d)} - 1 - {i})" if k in axes else i
                for k, (i, d) in enumerate(zip(idx, n.shape)))
    return body.value(n.src[0], src)


def _clamp(i, lo, hi):
    return f"min(max({i}, {lo}), {hi})"


def _pad(body, n, idx):
    x = n.src[0]
    widths, value = n.arg
    fill = body.ctx.literal(value, n.dtype)
    if any(d == 0 for d in x.shape):
        return fill
    src, conds = [], []
    for i, d, (lo, _, k) in zip(idx, x.shape, widths):
        if (lo, k) == (0, 0) and d == n.shape[len(src)]:
            src.append(i)
            continue
        j = body._ssa(n, f"({i} - {lo})")
        span = (d - 1) * (k + 1) + 1
        conds.append(f"{j} >= 0 and {j} < {span}" + (f" and {j} % {k + 1} == 0" if k else ""))
        src.append(_clamp(f"{j} // {k + 1}" if k else j, 0, d - 1))
    inner = body.value(x, tuple(src))
    if not conds:
        return inner
    return body._ssa(n, f"({inner} if {' and '.join(conds)} else {fill})")


def _concat(body, n, idx):
    a = n.arg + n.ndim
    i, at, vals = idx[a], 0, []
    for part in n.src:
        size = part.shape[a]
        j = _clamp(f"{i} - {at}", 0, size - 1) if at or size != n.shape[a] else i
        v = body.value(part, tuple(idx[:a]) + (j,) + tuple(idx[a + 1:]))
        vals.append((at + size, v if part.dtype == n.dtype else f"{CAST[n.dtype]}({v})"))
        at += size
    code = vals[-1][1]
    for end, v in reversed(vals[:-1]):
        code = f"({v} if {i} < {end} else {code})"
    return body._ssa(n, code)


def _gather(body, n, idx):
    x, ix = n.src
    axis, batch = n.arg
    nj = ix.ndim - batch
    lab = body.label(n, ix, tuple(idx[:batch]) + tuple(idx[axis:axis + nj]), x.shape[axis],
                     "take")
    return body.value(x, tuple(idx[:axis]) + (lab,) + tuple(idx[axis + nj:]))


INDEX_MAPS = {Op.IOTA: _iota, Op.SLICE: _slice, Op.FLIP: _flip, Op.PAD: _pad, Op.CONCAT: _concat,
              Op.GATHER: _gather}
