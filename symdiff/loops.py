"""Loops as one graph node: ``scan`` holds a step subgraph; ``fori_loop`` is built on it.

``carry_T, ys = scan(step, init, xs)`` computes, for t = 0, 1, ..., T-1 (T-1, ..., 0 when
``reverse``),

    carry_(t+1), y_t = step(carry_t, x_t),        ys[t] = y_t,

as in ``jax.lax.scan``. The graph holds the step once, whatever T is: one node per output,
``Node(Op.SCAN, src=(*init, *xs, *consts), arg=(body, k))``, where ``body`` (a ``ScanBody``)
is the step as a graph over placeholder vars and ``k`` picks the output: the final carries,
then the stacked ys, then the carry histories (``hist[t]`` = the carry entering step t, which
reverse mode reads). Outputs of one body and one source tuple are one loop: the interpreter
runs it once for all of them, and the kernel emits one loop that writes them all.

Derivatives are scans too. Forward mode carries tangents through the loop: the step's JVP
graph becomes the step of a scan over (carry, tangent). Reverse mode runs the loop backwards
over the saved carries: with c_t the carry entering step t and u the cotangent of the carry
leaving it,

    u_t = (d step_c / d c)^T u_(t+1) + hist cotangent_t,    ct x_t = (d step / d x)^T (u, ct y_t),
    ct consts = sum_t (d step / d consts)^T (u_(t+1), ct y_t)  (an accumulator carry),

so second derivatives (a Hessian-vector product through an RNN) are again scans.
Values the step reads that do not depend on the carry or x (weights, their transposes) are
hoisted out of the step: they are computed once, before the loop.
"""
import hashlib
import math
import threading

import numpy as np

from . import dtypes as dt
from . import frontend as F
from . import tensor as T
from .dims import Dim, shape_str
from .errors import ArgumentError, ShapeError
from .graph import Node, VarInfo, digest, flatten, substitute, toposort, unflatten
from .ops import Op

_trace = threading.local()     # nesting depth of scan steps being traced (placeholder names)


class ScanBody:
    """One step of a scan as a graph: placeholder vars for the carries, the per-step slices of
    xs and the loop-invariant values (consts), and the step's outputs: the new carries, then
    the per-step ys. Compared and hashed by identity of these (hash-consed) nodes."""

    __slots__ = ("carries", "xs", "consts", "outs", "reverse", "length", "_key", "_hash",
                 "_fingerprint", "_last", "_derived", "_sig", "__weakref__")

    def __init__(self, carries, xs, consts, outs, reverse, length):
        self.carries, self.xs, self.consts = tuple(carries), tuple(xs), tuple(consts)
        self.outs, self.reverse, self.length = tuple(outs), bool(reverse), length
        self._key = (self.carries, self.xs, self.consts, self.outs, self.reverse, length)
        self._hash = hash(self._key)
        self._fingerprint = None
        self._last = None            # (input arrays, results) of the latest interpreter run
        self._derived = {}           # derivative bodies, shared by all outputs of a loop
        self._sig = None

    def __eq__(self, other):
        return isinstance(other, ScanBody) and self._key == other._key

    def __reduce__(self):
        return ScanBody, (self.carries, self.xs, self.consts, self.outs, self.reverse,
                          self.length)

    def __hash__(self):
        return self._hash

    def __repr__(self):
        return f"ScanBody({len(self.carries)} carries, {len(self.xs)} xs, " \
               f"{len(self.consts)} consts, length {self.length})"

    @property
    def n_carry(self):
        return len(self.carries)

    @property
    def n_y(self):
        return len(self.outs) - len(self.carries)

    @property
    def placeholders(self):
        return self.carries + self.xs + self.consts

    def fingerprint(self):
        """A structural digest, stable across runs (kernel cache keys; see graph.digest)."""
        if self._fingerprint is None:
            h = hashlib.blake2b(repr((self.reverse, _dim_key(self.length))).encode(),
                                digest_size=16)
            for n in self.placeholders + self.outs:
                h.update(digest(n))
            h.update(repr((len(self.carries), len(self.xs), len(self.consts))).encode())
            self._fingerprint = h.hexdigest()
        return self._fingerprint

    def output(self, k):
        """(shape, dtype) of output k: final carry, stacked y, or carry history."""
        nc, ny = self.n_carry, self.n_y
        if k < nc:
            return self.carries[k].shape, self.carries[k].dtype
        if k < nc + ny:
            y = self.outs[k]
            return (self.length,) + y.shape, y.dtype
        c = self.carries[k - nc - ny]
        return (self.length,) + c.shape, c.dtype

    def kind(self, k):
        """("carry" | "y" | "hist", position) of output k."""
        nc, ny = self.n_carry, self.n_y
        return ("carry", k) if k < nc else ("y", k - nc) if k < nc + ny else \
            ("hist", k - nc - ny)

    def steps(self, length):
        """The loop's step indices in execution order."""
        order = range(length)
        return reversed(order) if self.reverse else order

    # --- the reference interpreter --------------------------------------------------------
    def evaluate(self, values):
        """Every output of the loop for the source arrays ``values`` (the last result is kept,
        so that the outputs of one loop, evaluated one after another, run it once)."""
        last = self._last
        if last is not None and len(last[0]) == len(values) and \
                all(a is b for a, b in zip(last[0], values)):
            return last[1]
        results = self._run(values)
        self._last = (tuple(values), results)
        return results

    def _run(self, values):
        from .interpret import run
        from .signature import Signature
        nc, nx = self.n_carry, len(self.xs)
        carry = [np.asarray(v) for v in values[:nc]]
        xs, consts = values[nc:nc + nx], values[nc + nx:]
        length = xs[0].shape[0] if xs else self.length     # an int when there are no xs
        if self._sig is None:
            self._sig = (Signature(self.placeholders, self.outs), toposort(list(self.outs)))
        sig, order = self._sig
        ys, hist = [None] * length, [None] * length
        for t in self.steps(length):
            hist[t] = carry
            arrays, sizes = sig.bind(carry + [x[t] for x in xs] + list(consts))
            out = run(order, list(self.outs), dict(zip(self.placeholders, arrays)), sizes)
            carry, ys[t] = [np.asarray(o) for o in out[:nc]], out[nc:]
        if length == 0:                   # the shapes of ys: one step on zero slices
            arrays, sizes = sig.bind(carry + [np.zeros(x.shape[1:], x.dtype) for x in xs] +
                                     list(consts))
            out = run(order, list(self.outs), dict(zip(self.placeholders, arrays)), sizes)
            return carry + [np.zeros((0,) + np.shape(y), y.dtype) for y in out[nc:]] + \
                [np.zeros((0,) + c.shape, c.dtype) for c in carry]
        stack = [np.stack([np.asarray(y[j]) for y in ys]) for j in range(self.n_y)]
        hists = [np.stack([h[i] for h in hist]) for i in range(nc)]
        return carry + stack + hists


def _dim_key(d):
    return d if isinstance(d, int) or d is None else (d.name, d.uid)


# --- building a scan ---------------------------------------------------------------------
def scan(step, init, xs=None, length=None, reverse=False, checkpoint=None):
    """Loop ``step`` over the leading axis of ``xs``, threading a carry (``jax.lax.scan``).

    ``step(carry, x) -> (new_carry, y)``: ``carry`` has the structure of ``init`` (a node or a
    list/tuple/dict of nodes), ``x`` one slice ``xs[t]`` of each array of ``xs`` (None when
    there are no xs: then ``length`` gives the number of steps). ``new_carry`` must have the
    shapes and dtypes of ``init``; ``y`` is a node, a structure of nodes, or None. Returns
    ``(carry_T, ys)`` with ``ys`` the per-step ys stacked along a new leading axis of length
    T. With ``reverse=True`` the steps run T-1, ..., 0 (``ys[t]`` still belongs to ``xs[t]``).

    The graph holds the step once: its size, simplification and compile time do not grow
    with T. Derivatives in both modes are scans as well (see the module docstring).

    Memory of reverse mode: by default the forward loop keeps every carry (and each step's
    matrix products) for the backward loop, O(T) of them. ``checkpoint=k`` keeps one carry
    per segment of k steps instead and recomputes a segment's steps when the backward loop
    reaches it (a loop of segments, each a loop of k steps): O(T/k + k) carries for one more
    forward pass; ``checkpoint=True`` takes k = ceil(sqrt(T)), the minimum, O(sqrt T).
    Needs an int length; a last, shorter segment takes the remainder.

    >>> import symdiff as sd, numpy as np
    >>> xs = sd.var("xs", (5,))
    >>> total, partial = sd.scan(lambda c, x: (c + x, c + x), sd.const(0.0), xs)
    >>> sd.evaluate([total, partial], {xs: np.arange(5.0)})
    [array(10.), array([ 0.,  1.,  3.,  6., 10.])]
    >>> g = sd.grad(sd.sum(partial * partial), xs)      # reverse mode runs the loop backwards
    >>> sd.evaluate(g, {xs: np.arange(5.0)}).tolist()
    [40.0, 40.0, 38.0, 32.0, 20.0]
    """
    init_nodes = [F.as_node(v) for v in flatten(_as_nodes(init, "init"))]
    xs_nodes = [F.as_node(v) for v in flatten(_as_nodes(xs, "xs"))] if xs is not None else []
    length = _length(xs_nodes, length)
    if checkpoint is not None and checkpoint is not False:
        return _checkpointed(step, init, xs, length, reverse, checkpoint)
    if not callable(step):
        raise TypeError(f"scan: step must be a function (carry, x) -> (carry, y), "
                        f"got {type(step).__name__}")
    depth = getattr(_trace, "depth", 0)
    carries = [_placeholder(f"scan{depth}.c{i}", v.shape, v.dtype)
               for i, v in enumerate(init_nodes)]
    x_ph = [_placeholder(f"scan{depth}.x{j}", v.shape[1:], v.dtype) for j, v in enumerate(xs_nodes)]
    _trace.depth = depth + 1
    try:
        result = step(unflatten(_structure(init), carries),
                      unflatten(_structure(xs), x_ph) if xs is not None else None)
    finally:
        _trace.depth = depth
    new_carry, y = _split_result(result)
    new_nodes = _check_carry(init, init_nodes, new_carry)
    y_struct = _as_nodes(y, "the step's y")
    y_nodes = [F.as_node(v) for v in flatten(y_struct)]
    nodes = make_scan(list(zip(carries, init_nodes)), list(zip(x_ph, xs_nodes)), [],
                      new_nodes + y_nodes, reverse, length, f"scan{depth}")
    nc = len(init_nodes)
    return unflatten(_structure(init), nodes[:nc]), \
        unflatten(y_struct, nodes[nc:nc + len(y_nodes)]) if y is not None else None


def _checkpointed(step, init, xs, length, reverse, k):
    """scan as a loop over segments of k steps, each segment a scan of its own: the reverse
    loop keeps the carries between segments and recomputes the steps of each."""
    if not isinstance(length, int):
        raise ShapeError(f"scan: checkpoint needs an int length, got {length!r}")
    if k is True:
        k = max(1, math.ceil(math.sqrt(length)))
    if not isinstance(k, int) or isinstance(k, bool) or k < 1:
        raise ShapeError(f"scan: checkpoint must be True or a positive int, got {k!r}")
    xs = _structure(xs) if xs is not None else None
    flat = [F.as_node(v) for v in flatten(xs)] if xs is not None else []
    if reverse:                               # the same loop over the flipped sequence
        flat = [T.flip(x, 0) for x in flat]
    m, rest = divmod(length, k)
    ys_parts, carry, y_struct = [], init, None
    if m:
        head = [F.reshape(x[:m * k], (m, k) + x.shape[1:]) for x in flat]

        def segment(c, seg):
            inner = unflatten(xs, list(seg)) if xs is not None else None
            return scan(step, c, inner, length=k)
        carry, ys = scan(segment, carry, head if flat else None, length=m)
        y_struct = ys
        ys_parts.append([F.reshape(y, (m * k,) + y.shape[2:]) for y in flatten(ys)])
    if rest:
        tail = unflatten(xs, [x[m * k:] for x in flat]) if xs is not None else None
        carry, ys = scan(step, carry, tail, length=rest)
        y_struct = ys
        ys_parts.append(flatten(ys))
    if y_struct is None:
        return carry, None
    ys = [T.concatenate(parts, 0) if len(parts) > 1 else parts[0] for parts in zip(*ys_parts)]
    if reverse:
        ys = [T.flip(y, 0) for y in ys]
    return carry, unflatten(y_struct, ys)


def fori_loop(lower, upper, body, init):
    """``body(i, carry) -> carry`` for i = lower, ..., upper - 1 (``jax.lax.fori_loop``), as
    a scan over the counter: differentiable in ``init`` and in whatever ``body`` reads.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", ())
    >>> y = sd.fori_loop(0, 3, lambda i, c: c * x + i, sd.const(1.0))   # ((1 x + 0) x + 1) x + 2 = x^3 + x + 2
    >>> sd.evaluate([y, sd.grad(y, x)], {x: np.array(2.0)})
    [array(12.), array(13.)]
    """
    if not (isinstance(lower, int) and isinstance(upper, int)):
        raise TypeError(f"fori_loop: lower and upper must be ints, got {lower!r}, {upper!r}")
    count = max(upper - lower, 0)
    counter = F.const(np.arange(lower, lower + count, dtype=np.float64))
    carry, _ = scan(lambda c, i: (body(i, c), None), init, counter)
    return carry


def _as_nodes(s, what):
    if isinstance(s, (Node, list, tuple, dict)) or s is None:
        return s
    if isinstance(s, (int, float, np.ndarray, np.generic)):
        return F.as_node(s)
    raise TypeError(f"scan: {what} must be a node or a list/tuple/dict of nodes, "
                    f"got {type(s).__name__}")


def _structure(s):
    """The structure of ``s`` with Python numbers turned into nodes (for unflatten)."""
    if isinstance(s, (int, float, np.ndarray, np.generic)):
        return F.as_node(s)
    return s


def _length(xs_nodes, length):
    for v in xs_nodes:
        if v.ndim == 0:
            raise ShapeError(f"scan: every array of xs needs a leading axis to loop over; "
                             f"`{v.name}` is 0-d")
    lead = [v.shape[0] for v in xs_nodes]
    ints = {d for d in lead if isinstance(d, int)}
    if len(ints) > 1:
        raise ShapeError(f"scan: the arrays of xs must share their leading length, got "
                         f"{', '.join(f'`{v.name}` {shape_str(v.shape)}' for v in xs_nodes)}")
    if length is not None:
        if not isinstance(length, int) or isinstance(length, bool) or length < 0:
            raise ShapeError(f"scan: length must be a non-negative int, got {length!r}")
        if ints and length not in ints:
            raise ShapeError(f"scan: length={length} but xs have leading length {ints.pop()}")
        return length
    if not xs_nodes:
        raise ShapeError("scan: give xs or length (the number of steps)")
    return ints.pop() if ints else lead[0]


def _placeholder(name, shape, dtype):
    return Node.make(Op.VAR, (), VarInfo(name, tuple(shape), dtype, False))


def _split_result(result):
    if not (isinstance(result, (tuple, list)) and len(result) == 2):
        raise TypeError(f"scan: step must return a pair (new_carry, y), got "
                        f"{type(result).__name__}"
                        f"{' of length ' + str(len(result)) if isinstance(result, (tuple, list)) else ''}")
    return result


def _check_carry(init, init_nodes, new_carry):
    new_nodes = [F.as_node(v) for v in flatten(_as_nodes(new_carry, "the new carry"))]
    if len(new_nodes) != len(init_nodes):
        raise ShapeError(f"scan: the step returned {len(new_nodes)} carry arrays, "
                         f"init has {len(init_nodes)}")
    out = []
    for i, (v, c) in enumerate(zip(new_nodes, init_nodes)):
        if v.dtype != c.dtype and np.can_cast(v.dtype, c.dtype):
            v = F.cast(v, c.dtype)            # e.g. an int added into a float carry
        if not _same_shape(v.shape, c.shape) and len(v.shape) <= len(c.shape):
            try:                              # a carry broadcast back to its shape
                v = F.broadcast_to(v, c.shape)
            except ShapeError:
                pass
        if v.dtype != c.dtype or not _same_shape(v.shape, c.shape):
            raise ShapeError(f"scan: carry {i} of the step has shape {shape_str(v.shape)} "
                             f"{v.dtype}; init has {shape_str(c.shape)} {c.dtype} (a carry "
                             f"keeps its shape and dtype from step to step)")
        out.append(v)
    return out


def _same_shape(a, b):
    return len(a) == len(b) and all(d == e or isinstance(d, Dim) and isinstance(e, Dim)
                                    for d, e in zip(a, b))


def make_scan(carries, xs, consts, outs, reverse, length, prefix):
    """The output nodes of a scan: ``carries``/``xs``/``consts`` pair each placeholder with
    its outer node; ``outs`` are the step's new carries then ys. Loop-invariant parts of the
    step are hoisted into consts, and xs and consts the step does not read are dropped."""
    dep_on = {p for p, _ in carries + xs}
    outs, hoisted = _hoist(outs, dep_on, prefix, len(consts))
    if hoisted and consts:              # a hoisted part reads consts: their outer values
        outer = substitute([v for _, v in hoisted], dict(consts))
        hoisted = [(p, v) for (p, _), v in zip(hoisted, outer)]
    consts = consts + hoisted
    used = {n for n in toposort(list(outs)) if n.op is Op.VAR}
    xs = [(p, v) for p, v in xs if p in used]
    consts = [(p, v) for p, v in consts if p in used]
    body = ScanBody([p for p, _ in carries], [p for p, _ in xs], [p for p, _ in consts], outs,
                    reverse, length)
    src = tuple(v for _, v in carries + xs + consts)
    return [Node.make(Op.SCAN, src, (body, k)) for k in range(len(outs) + len(carries))]


def _hoist(outs, dep_on, prefix, start):
    """Replace the maximal parts of the step that depend on no carry or x by placeholders:
    (new outs, [(placeholder, outer node)]). Constants that are one repeated value and index
    ranges stay in the step (free to recompute, and nothing to pass)."""
    order = toposort(list(outs))
    dep, closed = set(), set()
    for n in order:
        if n in dep_on or any(s in dep for s in n.src):
            dep.add(n)
        elif n.op is Op.IOTA or (n.op is Op.CONST and (n.ndim == 0 or n.arg.uniform is not None)) \
                or (n.op not in (Op.VAR, Op.DIM, Op.CONST) and all(s in closed for s in n.src)):
            closed.add(n)
    hoist = {}
    for n in order:
        if n in dep:
            for s in n.src:
                if s not in dep and s not in closed and s not in hoist:
                    hoist[s] = None
    for o in outs:
        if o not in dep and o not in closed and o not in hoist:
            hoist[o] = None
    pairs = []
    for k, s in enumerate(hoist):
        p = _placeholder(f"{prefix}.k{start + k}", s.shape, s.dtype)
        hoist[s] = p
        pairs.append((p, s))
    if not pairs:
        return tuple(outs), []
    return tuple(substitute(list(outs), hoist)), pairs
