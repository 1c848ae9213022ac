"""``sd.compile``: what a compiled function computes (``Spec``) and the NumPy backend.

A spec is checked when it is built: inputs are distinct vars, every var the outputs read is an
input or has a value in ``state``, updates target vars with matching shape and dtype. The numba
backend (``symdiff.codegen``) takes the same spec and gives a callable with the same interface,
and shares the call-time rules below: ``State`` (the read-only ``f.state``) and
``check_overlaps`` (no array a call writes shares memory with another it reads or writes).
"""
import sys
import threading
from collections.abc import Mapping

import numpy as np

from .errors import ArgumentError, ShapeError
from .graph import ConstValue, Node, flatten, leaves, toposort, unflatten
from .interpret import run
from .ops import Op
from .printing import label
from .signature import Signature, _coerce
from .simplify import simplify


class Spec:
    """Inputs, outputs, in-place updates and held state of a function to compile."""

    def __init__(self, inputs, outputs, updates=None, state=None):
        self.inputs = self._check_inputs(inputs)
        self.structure = outputs
        self.outputs = flatten(outputs)
        self.updates = self._check_updates(updates or {})
        self.state_vars, self.state = self._check_state(state or {})
        self.params = self.inputs + self.state_vars
        graph_outputs = self.outputs + [v for _, v in self.updates]
        self._check_free_vars(graph_outputs)
        self.signature = Signature(self.params, graph_outputs)
        self._check_dims(graph_outputs)

    def recipe(self, backend, options):
        """The arguments of ``compile`` that rebuild this function (pickling)."""
        return (self.inputs, self.structure, backend, dict(self.updates),
                dict(self.state), options)

    @staticmethod
    def _check_inputs(inputs):
        inputs = [inputs] if isinstance(inputs, Node) else list(inputs)
        for i, v in enumerate(inputs):
            if not isinstance(v, Node) or v.op is not Op.VAR:
                what = label(v) if isinstance(v, Node) else type(v).__name__
                raise TypeError(f"compile: inputs[{i}] is `{what}`, not a var; inputs must be "
                                f"sd.var / sd.param nodes")
        if len(set(inputs)) != len(inputs):
            dup = next(v for v in inputs if inputs.count(v) > 1)
            raise ValueError(f"compile: input `{dup.name}` is listed twice")
        return inputs

    def _check_updates(self, updates):
        out = []
        for var, new in dict(updates).items():
            if not isinstance(var, Node) or var.op is not Op.VAR:
                raise TypeError(f"compile: updates keys must be vars/params, got `{var}`")
            new = new if isinstance(new, Node) else Node.make(
                Op.BROADCAST_TO, (_scalar(new, var.dtype),), var.shape)
            if new.shape != var.shape:
                raise ShapeError(f"compile: update of `{var.name}` has shape {new.shape}, "
                                 f"expected {var.shape}: `{label(new)}`")
            if new.dtype != var.dtype:
                raise ArgumentError(f"compile: update of `{var.name}` has dtype {new.dtype}, "
                                    f"expected {var.dtype}")
            out.append((var, new))
        return out

    def _check_state(self, state):
        state_vars, values = [], {}
        updated = {v for v, _ in self.updates}
        for var, value in dict(state).items():
            if not isinstance(var, Node) or var.op is not Op.VAR:
                raise TypeError(f"compile: state keys must be vars/params, got `{var}`")
            if var in self.inputs:
                raise ValueError(f"compile: `{var.name}` is both an input and in state=")
            arr = _coerce(value, var, f"state[{var.name!r}]")
            # held arrays are updated in place by both backends: a layout the Numba kernel
            # takes as it is (writable, aligned, C-contiguous, native byte order)
            flags = arr.flags
            if not (flags.c_contiguous and flags.writeable and flags.aligned and
                    arr.dtype.isnative):
                arr = np.array(arr, dtype=arr.dtype.newbyteorder("="), order="C")
            if var in updated and isinstance(value, np.ndarray) and arr is not value:
                # the updates would go to a copy: the caller's array would silently stay
                raise ArgumentError(
                    f"compile: state[{var.name!r}] is updated in place, but the array given "
                    f"({value.dtype}, {'C' if value.flags.c_contiguous else 'non-C'} order, "
                    f"{'writable' if value.flags.writeable else 'read-only'}) would have to "
                    f"be copied to {var.dtype}, C order, writable: pass "
                    f"np.ascontiguousarray(value, dtype=np.{var.dtype}) (a writable copy) and "
                    f"read the trained values from it or from f.state")
            state_vars.append(var)
            values[var] = arr
        return state_vars, values

    def _check_free_vars(self, graph_outputs):
        known = set(self.params)
        free = [v for v in leaves(graph_outputs) if v not in known]
        if free:
            names = ", ".join(f"`{v.name}`" for v in free)
            raise ValueError(f"compile: the outputs read {names}, which is neither an input nor "
                             f"given a value in state=")
        for var, _ in self.updates:
            if var not in known:
                raise ValueError(f"compile: update target `{var.name}` is neither an input nor "
                                 f"in state=")

    def _check_dims(self, graph_outputs):
        """Every run-time size the outputs read (sd.size_of, mean) must come from an input."""
        cons = self.signature.cons
        bound = {cons.find(d) for v in self.params for d in v.shape if not isinstance(d, int)}
        for n in leaves(graph_outputs, Op.DIM):
            d = n.arg[0]
            root = cons.find(d)
            if root not in bound and root not in cons.value:
                raise ValueError(f"compile: the outputs read the size of dim `{d!r}`, but no "
                                 f"input or state has a dim `{d!r}`, so no argument gives it")

    def update_target(self, var, args, arrays):
        """The array an update of ``var`` writes into: the caller's own array or held state."""
        if var in self.state:
            if not self.state[var].flags.writeable:      # the caller locked the held array
                raise ArgumentError(f"state {var.name!r} is updated in place but its held "
                                    f"array was made read-only")
            return self.state[var]
        i = self.inputs.index(var)
        arr = arrays[i]
        if arr is not args[i] and not (isinstance(args[i], np.ndarray) and
                                       np.shares_memory(arr, args[i])):
            raise ArgumentError(f"{self.signature.where(i)} is updated in place, so it must be "
                                f"a {var.dtype} numpy array, got {type(args[i]).__name__} "
                                f"{getattr(args[i], 'dtype', '')}")
        check_target(self.signature.where(i), var, arr)
        return arr


def check_target(where, var, a):
    """An array an update writes in place must be one the Numba kernel can take as it is (a
    copy would receive the update instead); both backends enforce it, so they accept the same
    calls. ArgumentError naming the argument and what is wrong."""
    flags, wrong = a.flags, []
    if not flags.writeable:
        wrong.append("read-only")
    if not flags.c_contiguous:
        wrong.append("not C-contiguous")
    if not flags.aligned:
        wrong.append("not aligned")
    if not a.dtype.isnative:
        wrong.append(f"in non-native byte order ({a.dtype.str})")
    if wrong:
        raise ArgumentError(f"{where} is updated in place, so it must be a writable, aligned, "
                            f"C-contiguous {var.dtype} array in native byte order; the given "
                            f"array is {', '.join(wrong)}")


def _scalar(value, dtype):
    return Node.make(Op.CONST, (), ConstValue(np.asarray(value, dtype=dtype)))


class State(Mapping):
    """``f.state``: var -> the array held for it, the same array for the function's lifetime.

    The mapping is read-only (a kernel has its arrays bound when it is built); change a value
    by writing into the held array, ``f.state[w][...] = new``.
    """

    def __init__(self, arrays):
        self._arrays = arrays

    def __getitem__(self, var):
        return self._arrays[var]

    def __iter__(self):
        return iter(self._arrays)

    def __len__(self):
        return len(self._arrays)

    def __setitem__(self, var, value=None):
        name = getattr(var, "name", var)
        raise TypeError(f"f.state is read-only: the function keeps the array it was given for "
                        f"`{name}`; write into it in place instead, f.state[{name}][...] = new")

    __delitem__ = __setitem__

    def __repr__(self):
        return "State({" + ", ".join(f"{v.name}: {type(a).__name__}{a.shape}"
                                     for v, a in self._arrays.items()) + "})"


def overlap(a, b):
    """Do two arrays share memory? (exactly, unless that is too hard to tell: then yes)"""
    if not np.may_share_memory(a, b):
        return False
    try:
        return bool(np.shares_memory(a, b, max_work=10 ** 5))
    except np.exceptions.TooHardError:
        return True


def _owner(a):
    """The array that owns ``a``'s memory (numpy keeps a view's base at its owner), or None
    when no ndarray owns it (a foreign buffer: then only NumPy's bounds test can tell).
    Arrays under two different owners never share memory."""
    if not isinstance(a, np.ndarray):
        return None
    while isinstance(a.base, np.ndarray):
        a = a.base
    return a if a.base is None and a.flags.owndata else None


def _owner_ids(arrays):
    """The ids of the owners of ``arrays``, or None if some owner is unknown."""
    ids = set()
    for a in arrays:
        owner = _owner(a)
        if owner is None:
            return None
        ids.add(id(owner))
    return ids


def _first_sharing(a, pool):
    """The first label of ``pool`` [(label, array)] whose array shares memory with a."""
    return next((label for label, b in pool if overlap(a, b)), None)


def check_overlaps(spec, args, outs=(), state=True):
    """Arrays a call writes must not share memory with another array it reads or writes: an
    ``out=`` buffer with another, with an argument or with a held state array; an argument an
    update writes with another argument (or, with ``state``, a held state array with an
    argument). Raises ArgumentError naming both.

    An output under an owner no other array has is apart from all without a test (XOR net,
    5 outputs and 6 arguments: ~5 us; 30 us with NumPy's bounds test per pair)."""
    arrays = [(j, a) for j, a in enumerate(args) if isinstance(a, np.ndarray)]
    reads = arrays + [(v, spec.state[v]) for v in spec.state_vars]

    def what(label):                      # named only for the error
        return spec.signature.where(label) if isinstance(label, int) else \
            f"state {label.name!r}"

    for var, _ in spec.updates:
        if var in spec.state:
            j = _first_sharing(spec.state[var], arrays) if state else None
            if j is not None:
                raise ArgumentError(f"{what(j)} shares memory with state {var.name!r}, "
                                    f"which an update writes in place")
            continue
        i = spec.inputs.index(var)
        j = _first_sharing(args[i], [r for r in reads if r[0] != i]) if i < len(args) else None
        if j is not None:
            raise ArgumentError(f"{spec.signature.where(i)} is updated in place and shares "
                                f"memory with {what(j)}")
    seen, written = _owner_ids(a for _, a in reads), []
    for i, o in enumerate(outs):
        owner = _owner(o)
        if seen is not None and owner is not None and id(owner) not in seen:
            seen.add(id(owner))                          # its own memory: apart from all
        else:
            j = _first_sharing(o, written)
            if j is not None:
                raise ArgumentError(f"out[{j}] and out[{i}] share memory")
            j = _first_sharing(o, reads)
            if j is not None:
                raise ArgumentError(f"out[{i}] overlaps {what(j)}: outputs are written while "
                                    f"inputs are read")
            if owner is None:
                seen = None                  # memory of unknown owner: test every later one
            elif seen is not None:
                seen.add(id(owner))
        written.append((i, o))


def index_inputs(spec):
    """[(input position, ops, lowest, highest + 1)]: the inputs that some op reads directly
    as indices into an axis of fixed size (class labels of a cross-entropy, ids of a take),
    with the range that op accepts (negative indices count from the end for take and
    scatter_add, as in NumPy; labels and one_hot accept 0 to size - 1)."""
    cached = getattr(spec, "_index_inputs", None)
    if cached is not None:
        return cached
    position = {v: i for i, v in enumerate(spec.inputs)}
    found = {}
    for n in toposort(spec.outputs + [v for _, v in spec.updates]):
        if n.op is Op.TAKE:                              # x[..., idx]: labels
            idx, size, lo = n.src[1], n.src[0].shape[-1], 0
        elif n.op is Op.ONE_HOT:
            idx, size, lo = n.src[0], n.arg[0], 0
        elif n.op is Op.GATHER:
            idx, size = n.src[1], n.src[0].shape[n.arg[0]]
            lo = -size
        elif n.op is Op.SCATTER_ADD:
            idx, size = n.src[1], n.shape[n.arg[0]]
            lo = -size
        else:
            continue
        if idx in position and isinstance(size, int):   # a symbolic size: the kernel checks
            found.setdefault((position[idx], lo, size), set()).add(n.op.value)
    spec._index_inputs = [(i, ", ".join(sorted(ops)), lo, size)
                          for (i, lo, size), ops in sorted(found.items())]
    return spec._index_inputs


def check_index_rows(spec, data, rows=None, where="epoch"):
    """ArgumentError naming the input, value and row of the first index out of range in
    whole data arrays (``rows``: only those rows), so that an epoch fails before its first
    step instead of after earlier steps have updated the parameters."""
    for i, op, lo, size in index_inputs(spec):
        a = np.asarray(data[i])
        a = a if rows is None else a[rows]
        if not a.size or (a.min() >= lo and a.max() < size):
            continue
        bad = a.min() if a.min() < lo else a.max()
        at = np.argwhere(a == bad)[0]
        row = int(at[0] if rows is None else np.asarray(rows)[at[0]])
        raise ArgumentError(f"{where}: {spec.signature.where(i)} holds {bad} at row {row}, out "
                            f"of range for {op} over an axis of size {size} (valid: {lo} to "
                            f"{size - 1}); checked before the first step: nothing was updated")


def keyword_error(spec, keywords):
    """Arguments are positional (in the order of ``inputs``): an ArgumentError naming the
    keywords given and the expected order."""
    names = ", ".join(spec.signature.names[:len(spec.inputs)])
    return ArgumentError(f"unexpected keyword argument(s) {', '.join(map(repr, keywords))}: "
                         f"pass the inputs by position, in the order ({names}), and only "
                         f"out= by keyword")


def check_out(out, results):
    """Validate caller-provided output buffers and copy ``results`` into them."""
    outs = flatten_arrays(out)
    if len(outs) != len(results):
        raise ArgumentError(f"out= has {len(outs)} arrays, the function has {len(results)} "
                            f"outputs")
    for i, (o, r) in enumerate(zip(outs, results)):
        if not isinstance(o, np.ndarray) or o.shape != r.shape or o.dtype != r.dtype:
            got = (o.shape, o.dtype) if isinstance(o, np.ndarray) else type(o).__name__
            raise ArgumentError(f"out[{i}] must be a {r.dtype} array of shape {r.shape}, "
                                f"got {got}")
        if not o.flags.writeable:
            raise ArgumentError(f"out[{i}] is read-only")
    for o, r in zip(outs, results):
        np.copyto(o, r)
    return outs


def flatten_arrays(out):
    if isinstance(out, np.ndarray):
        return [out]
    return list(out)


class Function:
    """A compiled function run by the NumPy interpreter (``sd.compile(..., backend="numpy")``)
    on the simplified graph that the numba backend compiles (the same stable forms).

    Calls may run from several threads at once; a function with ``updates`` runs one call at
    a time (its lock), so that concurrent calls never lose an update.
    """

    backend = "numpy"

    def __init__(self, spec):
        self.spec = spec
        # the graph the numba backend runs, simplified and stabilized (log(1 + exp(-z)) ->
        # softplus(-z)...), so both backends agree to rounding; sd.evaluate runs graphs as
        # written
        self.graph_outputs = simplify(spec.outputs + [v for _, v in spec.updates])
        self.order = toposort(self.graph_outputs)
        self._lock = threading.Lock() if spec.updates else None

    ready = True           # nothing to compile

    def wait(self, timeout=None):
        """Nothing to wait for; returns True (the same interface as a Numba kernel)."""
        return True

    def __reduce__(self):
        return compile_again, self.spec.recipe("numpy", {})

    @property
    def state(self):
        """The arrays held for state vars (updated in place by ``updates``): a read-only
        mapping; write into a held array to change it, ``f.state[w][...] = new``."""
        return State(self.spec.state)

    def __call__(self, *args, out=None, **keywords):
        if keywords:
            raise keyword_error(self.spec, keywords)
        if self._lock is None:
            return unflatten(self.spec.structure, self._call(args, out))
        with self._lock:
            return unflatten(self.spec.structure, self._call(args, out))

    def epoch(self, *data, batch_size, order=None):
        """Run one training epoch: for each mini-batch of ``batch_size`` rows taken from
        ``data`` (one array per input, rows in ``order``, default 0..n-1), call this step
        (its ``updates`` apply in place after every step). Returns the scalar outputs of
        every step as a float64 array of shape (steps, number of scalar outputs).

        The same interface, checks and result as the numba kernel's ``epoch`` (which loops
        inside Numba): every input is batched along a shared leading dim, the parameters are
        in ``state``, a bad index fails before the first step, and an output whose shape
        follows the batch fails at the first smaller last batch.

        >>> import symdiff as sd, numpy as np
        >>> x = sd.var("x", ("batch",)); w = sd.param("w", ())
        >>> loss = sd.mean((x - w) ** 2)
        >>> f = sd.compile([x], loss, backend="numpy", state={w: np.zeros(())},
        ...                updates={w: w - 0.5 * sd.grad(loss, w)})
        >>> f.epoch(np.array([2.0, 2.0, 2.0, 2.0]), batch_size=2)
        array([[4.],
               [0.]])
        >>> float(f.state[w])
        2.0
        """
        if self._lock is None:
            return self._epoch(data, batch_size, order)
        with self._lock:
            return self._epoch(data, batch_size, order)

    def _epoch(self, data, batch_size, order):
        return run_epoch(self.spec, data, batch_size, order, lambda args: self._call(args, None))

    def _call(self, args, out):
        """The flat outputs of one call (updates applied)."""
        spec = self.spec
        arrays, sizes = spec.signature.bind(list(args) + [spec.state[v] for v in
                                                          spec.state_vars])
        targets = [spec.update_target(var, args, arrays) for var, _ in spec.updates]
        check_overlaps(spec, args, flatten_arrays(out) if out is not None else ())
        results = run(self.order, self.graph_outputs, dict(zip(spec.params, arrays)), sizes)
        n_out = len(spec.outputs)
        outputs, news = results[:n_out], results[n_out:]
        # a parallel assignment: every update and output reads the values from before the
        # call, so a value that a write below would change is copied first (an output is
        # never one of the arguments' or the held arrays, as with the numba backend)
        news = [np.array(r) if any(overlap(r, t) for j, t in enumerate(targets) if j != k)
                else r for k, r in enumerate(news)]
        outputs = [np.array(r) if r.ndim == 0 or any(overlap(r, a) for a in arrays) else r
                   for r in outputs]
        if out is not None:
            outputs = check_out(out, outputs)
        for target, new in zip(targets, news):
            np.copyto(target, new)
        return outputs


def run_epoch(spec, data, batch_size, order, step):
    """One epoch as a Python loop: ``step(batch arrays)`` returns the flat outputs of one
    call (updates applied). The NumPy backend's ``epoch``, and a tiered Numba kernel's until
    its compiled epoch driver arrives; the checks and the record of ``Kernel.epoch``."""
    check_epoch(spec, data, batch_size)
    arrays, _ = spec.signature.bind(list(data) + [spec.state[v] for v in spec.state_vars])
    arrays = arrays[:len(data)]
    n = arrays[0].shape[0]
    rows = None if order is None else epoch_order(order, n)
    check_index_rows(spec, arrays, rows)       # a bad label fails before any update
    order = np.arange(n) if rows is None else rows
    scalars = [k for k, v in enumerate(spec.outputs) if v.ndim == 0]
    if order.size == 0:
        return np.zeros((0, len(scalars)))
    b = max(1, min(batch_size, order.size))
    record = np.zeros(((order.size + b - 1) // b, len(scalars)))
    for s in range(record.shape[0]):
        rows = order[s * b:(s + 1) * b]
        if rows.size < b and _batched_outputs(spec):
            raise ArgumentError("epoch: an output's shape depends on the batch size "
                                "(outputs must be scalars or parameter-shaped, e.g. the "
                                "loss)")
        outputs = step([a[rows] for a in arrays])
        record[s] = [outputs[k] for k in scalars]
    return record


def check_epoch(spec, data, batch_size):
    """ArgumentError unless ``data`` can train ``spec`` by epochs: one array per input, all
    inputs batched along one shared symbolic leading dim, parameters in state, a positive
    int batch size (both backends' ``epoch``)."""
    if len(data) != len(spec.inputs):
        raise ArgumentError(f"epoch: expected {len(spec.inputs)} data arrays "
                            f"({', '.join(spec.signature.names[:len(spec.inputs)])}), got "
                            f"{len(data)}")
    if not spec.state_vars:
        raise ArgumentError("epoch: the kernel has no state= parameters to train")
    roots = {spec.signature.cons.find(v.shape[0]) if v.ndim and not isinstance(
        v.shape[0], int) else None for v in spec.inputs}
    if None in roots or len(roots) != 1:
        raise ArgumentError("epoch: every input must be batched along a shared leading "
                            "symbolic dim (e.g. shape=('batch', ...))")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ArgumentError(f"epoch: batch_size must be a positive int, got {batch_size!r}")


def epoch_order(order, n):
    """``order`` as int64 row indices of ``n`` rows, or ArgumentError: floats are not
    truncated into indices."""
    arr = np.asarray(order)
    if arr.ndim != 1 or (arr.size and arr.dtype.kind not in "iu") or \
            (arr.size and (arr.min() < 0 or arr.max() >= n)):
        raise ArgumentError(f"epoch: order must be indices of the {n} rows (a 1-d integer "
                            f"array), got {arr.dtype} shape {arr.shape}")
    return arr.astype(np.int64, copy=False)


def _batched_outputs(spec):
    """Does an output's shape follow the batch (the inputs' leading dim)? Such an output
    cannot be recorded by an epoch whose last batch is smaller."""
    find = spec.signature.cons.find
    batch = find(spec.inputs[0].shape[0])
    return any(not isinstance(d, int) and find(d) == batch for v in spec.outputs
               for d in v.shape)


def compile(inputs, outputs, backend="numba", updates=None, state=None, wait=None,  # noqa: A001
            **options):
    """Compile ``outputs`` as a function of ``inputs``.

    ``backend="numba"`` (default) emits one fused Numba kernel; ``"numpy"`` runs the reference
    interpreter with the same interface and checks, on the same simplified and stabilized
    graph (``sd.evaluate`` interprets a graph as written). ``updates={param: new_value}`` writes new
    parameter values in place after every output has been computed from the old ones;
    ``state={var: array}`` gives values to vars that are not inputs (held by the function).

    Tiered (numba backend): ``compile`` returns at once, after symdiff's own passes; until
    Numba has compiled the kernel (in a worker process, into the disk cache), calls and
    epochs run the numpy backend on the same spec and held state, then the kernel swaps in
    between calls. ``f.ready`` tells which tier runs, ``f.wait()`` blocks until the kernel
    runs; ``wait=True`` or the environment variable ``SYMDIFF_TIERED=0`` compile before
    returning instead.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (None, 2)); w = sd.param("w", (2,))
    >>> f = sd.compile([x, w], sd.sum(x @ w), backend="numpy")
    >>> float(f(np.ones((3, 2)), np.array([1.0, 2.0])))
    9.0
    """
    spec = Spec(inputs, outputs, updates, state)
    if backend == "numpy":
        return Function(spec)
    if backend == "numba":
        from symdiff.codegen import compile_spec
        return compile_spec(spec, wait=wait, **options)
    raise ValueError(f"compile: backend must be 'numba' or 'numpy', got {backend!r}")


def compile_again(inputs, structure, backend, updates, state, options):
    """A pickled compiled function, loaded: compiled again (a Numba kernel loads from the
    disk cache when it is there); held state arrays come back as pickled.

    Tiered as any compile, except in a Dask worker: its tasks want the full-speed kernel at
    once (the client's compile has normally filled the disk cache), and a compile worker
    process per Dask worker would only add processes."""
    wait = True if _in_dask_worker() else None
    return compile(inputs, structure, backend, updates=updates, state=state, wait=wait,
                   **options)


def _in_dask_worker():
    distributed = sys.modules.get("distributed")
    if distributed is None:
        return False
    try:
        distributed.get_worker()
        return True
    except (ValueError, AttributeError):
        return False
