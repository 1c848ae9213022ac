"""Shape and dtype inference, one function per op; errors name the op, operands and shapes.

Reduction axes are stored as sorted negative ints, so that a rule written for an array also
works on a batch of them with extra leading axes (batched tangents in forward mode).
"""
from . import dtypes as dt
from .dims import Dim, broadcast_shapes, shape_str
from .errors import DTypeError, ShapeError
from .ops import BINARY, COMPARE, FLOAT_UNARY, Op, UNARY
from .printing import expr, label


def infer(op, src, arg):
    """(shape, dtype) of op(src, arg); raises ShapeError / DTypeError naming what is at fault."""
    return _INFER[op](op, src, arg)


def describe(src):
    """`x` (None, 64) float64, `W` (32, 10) float64: operands with their shapes and dtypes."""
    return ", ".join(f"`{label(s, 2)}` {shape_str(s.shape)} {s.dtype}" for s in src)


def _fail(op, src, arg, why, cls=ShapeError):
    raise cls(f"{op.value}: {why} in `{expr(op, src, arg, 3)}`; operands: {describe(src)}")


# --- leaves ------------------------------------------------------------------------------
def _var(op, src, arg):
    return arg.shape, arg.dtype


def _const(op, src, arg):
    return arg.value.shape, dt.from_array(arg.value)


def _dim(op, src, arg):
    return (), arg[1]


# --- elementwise -------------------------------------------------------------------------
def _unary(op, src, arg):
    (x,) = src
    if op in FLOAT_UNARY:
        return x.shape, dt.float_of(x.dtype)
    if op is Op.NEG and x.dtype == dt.BOOL:
        _fail(op, src, arg, "negation of a bool is undefined (use sd.logical... or cast)",
              DTypeError)
    if op is Op.CAST:
        return x.shape, arg
    return x.shape, x.dtype


def _broadcast(op, src, arg):
    shape = broadcast_shapes(*(s.shape for s in src))
    if shape is None:
        _fail(op, src, arg, "shapes do not broadcast")
    return shape


def _binary(op, src, arg):
    shape = _broadcast(op, src, arg)
    dtype = dt.promote(src[0].dtype, src[1].dtype)
    if op in COMPARE:
        return shape, dt.BOOL
    if op is Op.DIV:
        return shape, dt.float_of(dtype)
    if dtype == dt.BOOL and op not in (Op.MAXIMUM, Op.MINIMUM):
        dtype = dt.INT64        # arithmetic on bools is arithmetic on 0/1 integers
    return shape, dtype


def _fn(op, src, arg):
    if len(src) != arg.arity:
        _fail(op, src, arg, f"{arg.name} takes {arg.arity} arguments, got {len(src)}")
    return _broadcast(op, src, arg), dt.float_of(dt.promote(*(s.dtype for s in src)))


def _where(op, src, arg):
    if src[0].dtype != dt.BOOL:
        _fail(op, src, arg, f"the condition must be bool, got {src[0].dtype}", DTypeError)
    return _broadcast(op, src, arg), dt.promote(src[1].dtype, src[2].dtype)


# --- reductions --------------------------------------------------------------------------
def _check_axes(op, src, arg, axes):
    n = src[0].ndim
    if any(not -n <= a < 0 for a in axes) or len(set(axes)) != len(axes):
        _fail(op, src, arg, f"axis {tuple(a + n for a in axes)} out of range for {n}-d input")


def _reduce(op, src, arg):
    axes, keepdims = arg
    _check_axes(op, src, arg, axes)
    x = src[0]
    n = x.ndim
    red = {a + n for a in axes}
    shape = tuple(1 if i in red else d for i, d in enumerate(x.shape) if keepdims or i not in red)
    dtype = x.dtype
    if op is Op.SUM and dtype == dt.BOOL:
        dtype = dt.INT64
    return shape, dtype


def _argmax_mask(op, src, arg):
    _check_axes(op, src, arg, arg)
    return src[0].shape, dt.BOOL


# --- linear algebra ----------------------------------------------------------------------
def _matmul(op, src, arg):
    a, b = src
    if a.ndim == 0 or b.ndim == 0:
        _fail(op, src, arg, "matmul needs operands with at least 1 dim (use * for scalars)")
    ka = a.shape[-1]
    kb = b.shape[-2] if b.ndim >= 2 else b.shape[0]
    if isinstance(ka, int) and isinstance(kb, int) and ka != kb:
        _fail(op, src, arg, f"inner dimensions differ ({ka} vs {kb})")
    batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    if batch is None:
        _fail(op, src, arg, "batch dimensions do not broadcast")
    rows = a.shape[-2:-1] if a.ndim >= 2 else ()
    cols = b.shape[-1:] if b.ndim >= 2 else ()
    dtype = dt.promote(a.dtype, b.dtype)
    return batch + rows + cols, dt.INT64 if dtype == dt.BOOL else dtype


# --- movement ----------------------------------------------------------------------------
def _transpose(op, src, arg):
    x = src[0]
    if sorted(arg) != list(range(x.ndim)):
        _fail(op, src, arg, f"axes {arg} are not a permutation of the {x.ndim} axes")
    return tuple(x.shape[p] for p in arg), x.dtype


def _split(shape):
    """(product of int dims, list of symbolic dims) of a shape."""
    prod, syms = 1, []
    for d in shape:
        if isinstance(d, Dim):
            syms.append(d)
        else:
            prod *= d
    return prod, syms


def unmatched_symbols(shape_in, shape_out):
    """Symbols of ``shape_in`` and of ``shape_out`` that do not appear in the other, in order.

    A reshape may relabel a symbol (e.g. a gradient carries the batch dim of another operand
    that was unified with it); the unmatched symbols are then linked pairwise at call time.
    """
    sin, sout = _split(shape_in)[1], _split(shape_out)[1]
    left = [d for d in sin if d not in sout]
    right = [d for d in sout if d not in sin]
    return left, right


def _reshape(op, src, arg):
    x = src[0]
    pin, sin = _split(x.shape)
    pout, sout = _split(arg)
    if len(sin) != len(sout) or pin != pout:
        _fail(op, src, arg, f"cannot reshape {shape_str(x.shape)} into {shape_str(arg)} "
                            f"(sizes differ)")
    return arg, x.dtype


def _broadcast_to(op, src, arg):
    x = src[0]
    k = len(arg) - x.ndim
    if k < 0 or not all(_fits(d, t) for d, t in zip(x.shape, arg[k:])):
        _fail(op, src, arg, f"cannot broadcast {shape_str(x.shape)} to {shape_str(arg)}")
    return arg, x.dtype


def _fits(d, t):
    """Can a dim d broadcast to target dim t? (symbols are unified at call time)"""
    return d == 1 or d is t or isinstance(d, Dim) or isinstance(t, Dim) or d == t


# --- indexing ----------------------------------------------------------------------------
def _take(op, src, arg):
    x, idx = src
    if idx.dtype != dt.INT64:
        _fail(op, src, arg, f"indices must be int64, got {idx.dtype}", DTypeError)
    if x.ndim == 0:
        _fail(op, src, arg, "take needs an input with at least 1 dim")
    shape = broadcast_shapes(x.shape[:-1], idx.shape)
    if shape is None:
        _fail(op, src, arg, "the indices' shape does not match the input's leading dims")
    return shape, x.dtype


def _one_hot(op, src, arg):
    if src[0].dtype != dt.INT64:
        _fail(op, src, arg, f"indices must be int64, got {src[0].dtype}", DTypeError)
    return src[0].shape + (arg[0],), arg[1]


# --- tensor language: index space, slicing, joining, gather/scatter, scans ----------------
def _iota(op, src, arg):
    shape, axis, dtype = arg
    if not 0 <= axis < len(shape):
        _fail(op, src, arg, f"axis {axis} out of range for shape {shape_str(shape)}")
    return shape, dtype


def _slice(op, src, arg):
    x = src[0]
    if len(arg) != x.ndim:
        _fail(op, src, arg, f"{len(arg)} slices for a {x.ndim}-d input")
    shape = []
    for d, s in zip(x.shape, arg):
        if s is None:
            shape.append(d)
            continue
        start, step, size = s
        if not isinstance(d, int):
            _fail(op, src, arg, f"cannot slice the symbolic dim {d!r} (only `:` keeps it)")
        if step < 1 or size < 0 or start < 0 or (size and start + (size - 1) * step >= d):
            _fail(op, src, arg, f"slice (start {start}, step {step}, size {size}) does not fit "
                                f"an axis of size {d}")
        shape.append(size)
    return tuple(shape), x.dtype


def _pad(op, src, arg):
    x = src[0]
    widths, _ = arg
    if len(widths) != x.ndim:
        _fail(op, src, arg, f"{len(widths)} pad widths for a {x.ndim}-d input")
    shape = []
    for d, (lo, hi, interior) in zip(x.shape, widths):
        if min(lo, hi, interior) < 0:
            _fail(op, src, arg, "pad widths must be >= 0")
        if not isinstance(d, int):
            if lo or hi or interior:
                _fail(op, src, arg, f"cannot pad the symbolic dim {d!r}")
            shape.append(d)
        else:
            shape.append(lo + hi + d + max(d - 1, 0) * interior)
    return tuple(shape), x.dtype


def _flip(op, src, arg):
    _check_axes(op, src, arg, arg)
    return src[0].shape, src[0].dtype


def _concat(op, src, arg):
    if not src:
        _fail(op, src, arg, "needs at least one array")
    x = src[0]
    if x.ndim == 0 or not -x.ndim <= arg < 0:
        _fail(op, src, arg, f"axis {arg} out of range for {x.ndim}-d inputs")
    a = arg + x.ndim
    total = 0
    for s in src:
        if s.ndim != x.ndim:
            _fail(op, src, arg, "all inputs must have the same number of dims")
        if any(not _same(d, e) for i, (d, e) in enumerate(zip(s.shape, x.shape)) if i != a):
            _fail(op, src, arg, "the inputs' shapes differ off the joined axis")
        if not isinstance(s.shape[a], int):
            _fail(op, src, arg, f"cannot join along the symbolic dim {s.shape[a]!r}")
        total += s.shape[a]
    dtype = dt.promote(*(s.dtype for s in src))
    return x.shape[:a] + (total,) + x.shape[a + 1:], dtype


def _scan(op, src, arg):
    body, k = arg
    if len(src) != len(body.placeholders):
        _fail(op, src, arg, f"the loop takes {len(body.placeholders)} sources, got {len(src)}")
    return body.output(k)


def _same(d, e):
    """Equal dims, or a symbol that call-time binding will unify with the other."""
    return d == e or isinstance(d, Dim) or isinstance(e, Dim)


def _gather_shape(op, src, arg):
    x, idx = src[0], src[1]
    axis, batch = arg
    if idx.dtype != dt.INT64:
        _fail(op, src, arg, f"indices must be int64, got {idx.dtype}", DTypeError)
    if not 0 <= axis < x.ndim:
        _fail(op, src, arg, f"axis {axis} out of range for a {x.ndim}-d input")
    if batch > axis or idx.ndim < batch or \
            not all(_same(d, e) for d, e in zip(x.shape[:batch], idx.shape[:batch])):
        _fail(op, src, arg, f"the first {batch} dims of the input and the indices must match")
    return x.shape[:axis] + idx.shape[batch:] + x.shape[axis + 1:]


def _gather(op, src, arg):
    return _gather_shape(op, src, arg), src[0].dtype


def _scatter_add(op, src, arg):
    x, upd = src[0], src[2]
    want = _gather_shape(op, src[:2], arg)
    if len(want) != upd.ndim or not all(_same(d, e) for d, e in zip(want, upd.shape)):
        _fail(op, src, arg, f"updates must have shape {shape_str(want)}")
    return x.shape, dt.promote(x.dtype, upd.dtype)


def _cumsum(op, src, arg):
    _check_axes(op, src, arg, (arg,))
    x = src[0]
    return x.shape, dt.INT64 if x.dtype == dt.BOOL else x.dtype


def _argmax(op, src, arg):
    _check_axes(op, src, arg, (arg,))
    x = src[0]
    return tuple(d for i, d in enumerate(x.shape) if i != arg + x.ndim), dt.INT64


_INFER = {Op.VAR: _var, Op.CONST: _const, Op.DIM: _dim, Op.WHERE: _where, Op.FN: _fn, Op.SUM: _reduce,
          Op.MAX: _reduce, Op.ARGMAX_MASK: _argmax_mask, Op.MATMUL: _matmul,
          Op.TRANSPOSE: _transpose, Op.RESHAPE: _reshape, Op.BROADCAST_TO: _broadcast_to,
          Op.TAKE: _take, Op.ONE_HOT: _one_hot, Op.IOTA: _iota, Op.SLICE: _slice, Op.PAD: _pad,
          Op.FLIP: _flip, Op.CONCAT: _concat, Op.GATHER: _gather, Op.SCATTER_ADD: _scatter_add,
          Op.CUMSUM: _cumsum, Op.ARGMAX: _argmax, Op.SCAN: _scan}
_INFER.update({op: _unary for op in UNARY})
_INFER.update({op: _binary for op in BINARY | COMPARE})
assert set(_INFER) == set(Op)
