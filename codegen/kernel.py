"""The compiled callable: argument checks, output and workspace buffers, in-place updates.

Same interface and errors as the NumPy backend (``symdiff.function.Function``). A call first
tries the fast path: arrays go straight to the kernel, which accepts only its own dtypes and
C layout (anything else raises TypeError in Numba's dispatcher) and checks every shape and
symbolic dim itself (status 2). Whatever the fast path refuses goes through the slow path,
which converts what it safely can (lists, int32 labels, non-contiguous arrays) and raises the
NumPy backend's ArgumentError otherwise, so wrong input never crashes compiled code.
Workspace buffers are allocated once per set of dim sizes (per thread), and output arrays the
caller has dropped are reused: a training loop allocates nothing per step.

Tiers: a Kernel built by the tiered compile (``symdiff.codegen.tiered``) has no compiled
function yet (``ready`` False): its calls and epochs run the NumPy tier (a
``symdiff.function.Function`` on the same Spec, sharing the held state and the updates lock)
until the compiled function is swapped in; each call reads ``_fn`` once, so a call in flight
finishes on the tier it started on.

Threads: calls release the GIL and run concurrently, each thread with its own workspace and
outputs. A kernel with ``updates`` writes arrays every call shares, so its calls and epochs
take a per-kernel lock and run one at a time (concurrent updates of one array would race).
Apart from that lock, a Kernel keeps no mutable state that calls share: plans and the last
call's sizes are per thread, and epochs go through its ``EpochRunner`` (epoch_call.py),
which owns the driver and the batch buffers.
"""
import sys
import threading
import time

import numpy as np

from symdiff.errors import ArgumentError
from symdiff.function import State, check_overlaps, keyword_error
from symdiff.graph import unflatten

from .program import size_expr


class Kernel:
    """A Numba kernel compiled from a graph; call it like the function it computes."""

    backend = "numba"

    def __init__(self, spec, program, fn, source, key, options, tier=None):
        self.spec, self._fn, self.options = spec, fn, options
        self._n_inputs = len(spec.inputs)
        self._scalar_inputs = [i for i, v in enumerate(spec.inputs) if v.ndim == 0]
        self._state = [spec.state[v] for v in spec.state_vars]
        self._local = threading.local()
        # arguments an update writes are checked against the others on every call
        self._updated_inputs = any(v in spec.inputs for v, _ in spec.updates)
        # a kernel with updates writes arrays that every call reads: one call or epoch at a
        # time (concurrent updates of one array would race and lose updates)
        self._lock = threading.Lock() if spec.updates else None
        # before the compiled function arrives: the NumPy tier, under the same lock
        self._tier, self._error = tier, None
        self._kick = _nothing                # tiered: starts the passes (see tiered.start)
        self._rendered, self._arrived = threading.Event(), threading.Event()
        if tier is not None:
            tier._lock = self._lock
        from .epoch_call import EpochRunner
        self._epochs = EpochRunner(self)     # the driver and batch buffers of epoch()
        flat = spec.structure
        self._single = not isinstance(flat, (list, tuple, dict))
        self._flat = isinstance(flat, list) and len(flat) == len(spec.outputs) and all(
            not isinstance(o, (list, tuple, dict)) for o in flat)
        if program is not None:
            self._bind(program, source, key)
        # perf_counter() when the compiled function came into use (tiered: the swap)
        self.ready_at = None
        if fn is not None:
            self.ready_at = time.perf_counter()
            self._arrived.set()

    def _bind(self, program, source, key, arg_types=None):
        """Take the lowered program (a tiered kernel gets it from a thread, before ``_fn``)."""
        from .render import argument_types
        self._program, self._source, self._key = program, source, key
        self._arg_types = arg_types if arg_types is not None else argument_types(program)
        # writable copies: the kernel signature takes ordinary (not read-only) arrays
        self._consts = [np.array(n.arg.value, order="C") for n, _ in program.consts]
        self._out_specs = [(b.shape, b.dtype) for b in program.outputs]
        self._dim_roots = list(program.dims)
        self._dim_src = [program.dims[r] for r in self._dim_roots]
        self._rendered.set()

    def defer(self, kick):
        """Tiered compiles: ``kick()`` starts symdiff's passes; every call, ``wait()`` and
        access to the program runs it (it acts once)."""
        self._kick = kick

    def _passes_done(self):
        self._kick()
        self._rendered.wait()
        if self._error is not None and not hasattr(self, "_program"):
            raise self._error                # the passes themselves failed
        return self

    @property
    def program(self):
        """The lowered loop program (``codegen/program.py``) the kernel runs."""
        return self._passes_done()._program

    @property
    def arg_types(self):
        """(dtype, rank) of every argument of the compiled function, in order."""
        return self._passes_done()._arg_types

    @property
    def source(self):
        """The emitted Python/Numba source of the kernel."""
        return self._passes_done()._source

    @property
    def key(self):
        """The kernel's disk-cache key (a hash of the source and every version it depends on)."""
        return self._passes_done()._key

    @property
    def ready(self):
        """Is the compiled Numba function in use? (False while calls run the NumPy tier.)"""
        return self._fn is not None

    def wait(self, timeout=None):
        """Block until the compiled Numba function is in use and return True, or False after
        ``timeout`` seconds. Raises the compile's error if it failed (as every call then does).
        """
        self._kick()
        done = self._arrived.wait(timeout)
        if self._error is not None:
            raise self._error
        return done

    def _swap(self, fn):
        """Start using the compiled function (the compile thread calls this once)."""
        self._fn = fn
        self.ready_at = time.perf_counter()
        self._arrived.set()

    def _fail(self, exc):
        """The passes or the compile failed: every call and wait() raises ``exc``."""
        self._error = exc
        self._rendered.set()
        self._arrived.set()

    def _tier_call(self, args, out, keywords):
        """A call before the compiled function arrived: the NumPy tier, with the kernel's
        stricter out= checks (the same buffers are accepted before and after the swap)."""
        if self._error is not None:
            raise self._error
        if keywords:
            raise keyword_error(self.spec, keywords)
        if out is not None:
            _, sizes = self.spec.signature.bind(list(args) + self._state)
            self._passes_done()._check_out(sizes, out)
        try:
            return self._tier(*args, out=out)
        finally:
            self._kick()

    def __reduce__(self):
        from symdiff.function import compile_again
        return compile_again, self.spec.recipe("numba", self.options)

    @property
    def state(self):
        """Arrays held for state vars (updated in place by ``updates``): a read-only mapping;
        write into a held array to change it, ``f.state[w][...] = new``."""
        return State(self.spec.state)

    def __repr__(self):
        key = getattr(self, "_key", None) or "(passes running)"
        return f"<symdiff numba kernel {key}: {len(self.spec.inputs)} inputs, " \
               f"{len(self.spec.outputs)} outputs>"

    def __call__(self, *args, out=None, **keywords):
        """Fast path: the arrays go straight to the kernel, which checks every shape (status
        2) and accepts only its dtypes and C layout (TypeError); anything else takes the slow
        path, which converts what it can and raises the numpy backend's errors otherwise."""
        fn = self._fn                        # read once: the call stays on its tier
        if fn is None:
            return self._tier_call(args, out, keywords)
        if keywords:
            raise keyword_error(self.spec, keywords)
        lock = self._lock                    # with updates: one call at a time
        if lock is not None:
            lock.acquire()
        try:
            try:
                key = tuple([args[i].shape[a] for i, a in self._dim_src])
                plan = self._local.plans[key]
            except (AttributeError, IndexError, KeyError, TypeError):
                return self._slow_call(fn, args, out)
            if len(args) != self._n_inputs or _foreign_scalar(args, self._scalar_inputs):
                return self._slow_call(fn, args, out)
            if out is None:
                outs = plan.outputs()
            else:
                outs = [out] if isinstance(out, np.ndarray) else list(out)
                if _foreign_scalar(outs, range(len(outs))):
                    return self._slow_call(fn, args, out)
            if out is not None or self._updated_inputs:
                check_overlaps(self.spec, args, outs, state=False)
            try:
                status = fn(*args, *self._state, *self._consts, *outs, *plan.arrays)
            except TypeError:
                return self._slow_call(fn, args, out)
            if status:
                return self._slow_call(fn, args, out)
            return self._wrap(outs)
        finally:
            if lock is not None:
                lock.release()

    def _slow_call(self, fn, args, out):
        return self._wrap(self._run_slow(fn, args, out))

    def _run_slow(self, fn, args, out):
        """The flat outputs of one call of ``fn`` that converts what it can (no lock)."""
        spec = self.spec
        arrays, sizes = spec.signature.bind(list(args) + self._state)
        # update targets are checked to be usable as they are (read-only: ArgumentError)
        targets = {id(spec.update_target(var, args, arrays)) for var, _ in spec.updates}
        # what the kernel only reads may be a copy in the layout its signature takes
        arrays = [a if id(a) in targets else kernel_array(a) for a in arrays]
        plan = self._plan(sizes)
        outs = plan.outputs() if out is None else self._check_out(sizes, out)
        check_overlaps(spec, args, [] if out is None else outs)
        status = fn(*arrays, *self._consts, *outs, *plan.arrays)
        if status == 1:
            raise index_error(spec, arrays)
        if status:
            raise RuntimeError(f"symdiff kernel {self.key}: unexpected status {status}")
        return outs

    def _wrap(self, outs):
        return outs[0] if self._single else list(outs) if self._flat else \
            unflatten(self.spec.structure, outs)

    def _plan(self, sizes):
        """Workspace, fallbacks and output shapes for one set of dim sizes (per thread)."""
        key = tuple(sizes[d] for d in self._dim_roots)
        plans = self._local.__dict__.setdefault("plans", {})
        if key not in plans:
            if len(plans) > 8:             # many batch sizes: keep the memory bounded
                plans.clear()
            plans[key] = _Plan(self.program, sizes, self._out_specs)
        self._local.last_sizes = sizes
        return plans[key]

    def _check_out(self, sizes, out):
        shapes = [(sizes.shape(s), d) for s, d in self._out_specs]
        outs = [out] if isinstance(out, np.ndarray) else list(out)
        if len(outs) != len(shapes):
            raise ArgumentError(f"out= has {len(outs)} arrays, the function has {len(shapes)} "
                                f"outputs")
        for i, (o, (s, d)) in enumerate(zip(outs, shapes)):
            if not isinstance(o, np.ndarray) or o.shape != s or o.dtype != d or \
                    not kernel_ready(o):
                got = (o.shape, o.dtype, _flags(o)) if isinstance(o, np.ndarray) else \
                    type(o).__name__
                raise ArgumentError(f"out[{i}] must be a writable, aligned, C-contiguous {d} "
                                    f"array of shape {s}, got {got}")
        return outs

    def peak_bytes(self, **dims):
        """Bytes of the workspace (every intermediate buffer) for the given named dim sizes,
        or for the sizes of this thread's last Numba call when none are given (None before)."""
        sizes = _Named(self.program, dims) if dims else getattr(self._local, "last_sizes", None)
        if sizes is None:
            return None
        shapes = [(sizes.shape(s), d) for s, d in self._out_specs]
        total, _ = arena_layout(self.program, sizes, shapes)
        return sum(np.dtype(dt).itemsize * n for dt, n in total.items())

    def epoch(self, *data, batch_size, order=None):
        """Run one training epoch inside Numba: for each mini-batch of ``batch_size`` rows
        taken from ``data`` (one array per input, rows in ``order``, default 0..n-1), call
        this step kernel (its ``updates`` apply in place after every step). Returns the
        scalar outputs of every step as an array of shape (steps, number of scalar outputs).

        The inputs must all be batched (the parameters are in ``state``) and share their
        leading dim. Before a tiered kernel is ready, the epoch runs on the NumPy tier
        (``Function.epoch``: the same checks and result). The driver compiles once per kernel
        (and is cached on disk); a tiered kernel's compiles in the background, and until it
        arrives the epochs call the compiled step from a Python loop. Epochs may
        run from several threads (each has its own batch buffers); with ``updates`` they run
        one at a time, as calls do.
        """
        if self._fn is None:
            if self._error is not None:
                raise self._error
            self._epochs.wanted = True
            try:
                return self._tier.epoch(*data, batch_size=batch_size, order=order)
            finally:
                self._kick()
        if self._lock is None:
            return self._epochs(data, batch_size, order)
        with self._lock:
            return self._epochs(data, batch_size, order)

    @property
    def epoch_compile_seconds(self):
        """Seconds spent loading or compiling the epoch driver (0 before the first epoch)."""
        return self._epochs.compile_seconds

    @property
    def arena_dtypes(self):
        from .render import arena_dtypes
        return arena_dtypes(self.program)

    @property
    def stats(self):
        """What the kernel does: BLAS calls, loop nests, fused tasks, workspace use."""
        from .program import Gemm, Nest
        steps = self.program.steps
        nests = [s for s in steps if isinstance(s, Nest)]
        return {"gemms": sum(isinstance(s, Gemm) for s in steps),
                "loop_nests": len(nests),
                "fused_tasks": sum(len(n.tasks) for n in nests),
                "workspace_slots": len(self.program.slots),
                "peak_intermediate_bytes": self.peak_bytes()}


def _nothing():
    pass


def kernel_ready(a):
    """Can the kernel take ``a`` as it is? Its Numba signature is for writable, aligned,
    C-contiguous arrays in native byte order: any other array ends in Numba's TypeError "No
    matching definition"."""
    flags = a.flags
    return flags.c_contiguous and flags.aligned and flags.writeable and a.dtype.isnative


def _foreign_scalar(arrays, positions):
    """Is one of ``arrays`` at ``positions`` a 0-d array in non-native byte order? Numba
    0.68 does not refuse those (it refuses any other big-endian array): it reads and writes
    them in native order, a silent wrong value (checked: a '>f8' 0.25 reads as 2.6e-319)."""
    for i in positions:
        a = arrays[i]
        if type(a) is np.ndarray and not a.dtype.isnative:
            return True
    return False


def _flags(a):
    f = a.flags
    return ", ".join(w for w, bad in [("read-only", not f.writeable), ("unaligned", not f.aligned),
                                     ("not C-contiguous", not f.c_contiguous)] if bad) or "ok"


def kernel_array(a):
    """``a`` as the kernel takes it: itself, or a copy when it is read-only, unaligned, not
    C-contiguous or big-endian (safe for an array the kernel only reads)."""
    return a if kernel_ready(a) else np.array(a, dtype=a.dtype.newbyteorder("="), order="C")


class _Named:
    """Dim sizes given by name (``peak_bytes(batch=128)``)."""

    def __init__(self, program, dims):
        self.dims = dims

    def __getitem__(self, d):
        return d if isinstance(d, int) else self.dims[d.name]

    def shape(self, shape):
        return tuple(self[d] for d in shape)


class _Plan:
    """Per set of dim sizes: workspace slots, scratch fallbacks, and output arrays reused
    across calls once the caller has dropped them (a large fresh array page-faults on its
    first write every call)."""

    def __init__(self, program, sizes, out_specs):
        from .render import arena_dtypes
        self.shapes = [(sizes.shape(s), d) for s, d in out_specs]
        total, offsets = arena_layout(program, sizes, self.shapes)
        self.arrays = [np.empty(total[dt], dt) for dt in arena_dtypes(program)] + [offsets]
        self.last = [np.empty(s, d) for s, d in self.shapes]

    def outputs(self):
        # an array is unused when only `last` and getrefcount's argument refer to it (a
        # caller's variable, list or view of it adds one); a used one is replaced
        last = self.last
        for i in range(len(last)):
            if sys.getrefcount(last[i]) > 2:
                s, d = self.shapes[i]
                last[i] = np.empty(s, d)
        return list(last)


def arena_layout(program, sizes, out_shapes):
    """Elements of each dtype's arena and the offset of every slot then every scratch
    fallback in it; a fallback whose output is large enough at these sizes gets no space."""
    total = {dt: 0 for dt, _ in program.slots}
    total.update({dt: 0 for _, dt, _ in program.scratch})
    offsets = []
    for dt, sz in program.slots:
        offsets.append(total[dt])
        total[dt] += _count(sz, sizes)
    for k, dt, sz in program.scratch:
        n = _count(sz, sizes)
        if int(np.prod(out_shapes[k][0], dtype=np.int64)) >= n:
            offsets.append(0)                  # lives in the output: never sliced for use
        else:
            offsets.append(total[dt])
            total[dt] += n
    return total, np.array(offsets, dtype=np.int64)


def _count(size, sizes, lookup=None):
    """Number of elements of a symbolic size (ints, dims) under the bound sizes."""
    ints, syms = size
    n = ints
    for d in syms:
        n *= lookup(d) if lookup is not None else sizes[d]
    return n


__all__ = ["Kernel", "size_expr"]


def index_error(spec, arrays):
    """The error for an index a kernel found out of range (status 1), from the interpreter,
    which names the op, the bad value and the valid range. Evaluating writes nothing."""
    from symdiff.interpret import evaluate
    try:
        evaluate(spec.outputs + [v for _, v in spec.updates], dict(zip(spec.params, arrays)))
    except ArgumentError as e:
        return e
    return ArgumentError("an index given to take/scatter_add/one_hot is out of range")
