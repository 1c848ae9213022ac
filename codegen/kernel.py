"""The compiled callable: argument checks, output and workspace buffers, in-place updates.

Same interface and checks as the NumPy backend (``symdiff.function.Function``). Arguments
are checked in Python before the kernel runs (count, dtype, shapes, symbolic dims, index
ranges inside the kernel), so wrong input raises an ArgumentError and never reaches compiled
code. Workspace buffers are allocated once per set of dim sizes (per thread): a training
loop that passes ``out=`` allocates nothing per step.
"""
import threading

import numpy as np

from symdiff.errors import ArgumentError
from symdiff.graph import unflatten

from .program import size_expr


class Kernel:
    """A Numba kernel compiled from a graph; call it like the function it computes."""

    backend = "numba"

    def __init__(self, spec, program, fn, source, key, options):
        self.spec, self.program, self._fn = spec, program, fn
        self.source, self.key, self.options = source, key, options
        self._consts = [np.ascontiguousarray(n.arg.value) for n, _ in program.consts]
        self._local = threading.local()
        self._out_specs = [(b.shape, b.dtype) for b in program.outputs]
        self._last_sizes = None

    @property
    def state(self):
        """Arrays held for state vars (updated in place by ``updates``)."""
        return self.spec.state

    def __repr__(self):
        return f"<symdiff numba kernel {self.key}: {len(self.spec.inputs)} inputs, " \
               f"{len(self._out_specs)} outputs>"

    def __call__(self, *args, out=None):
        spec = self.spec
        arrays, sizes = spec.signature.bind(list(args) + [spec.state[v] for v in
                                                          spec.state_vars])
        for var, _ in spec.updates:
            target = spec.update_target(var, args, arrays)
            if not target.flags.c_contiguous:
                raise ArgumentError(f"`{var.name}` is updated in place, so it must be a "
                                    f"C-contiguous array")
        arrays = [a if a.flags.c_contiguous else np.ascontiguousarray(a) for a in arrays]
        outs = self._outputs(sizes, out)
        status = self._fn(*arrays, *self._consts, *outs, *self._workspace(sizes))
        if status:
            raise ArgumentError("an index given to take/one_hot (e.g. a class label) is out "
                                "of range for the class axis")
        self._last_sizes = sizes
        return unflatten(spec.structure, outs)

    def _outputs(self, sizes, out):
        shapes = [(sizes.shape(s), d) for s, d in self._out_specs]
        if out is None:
            return [np.empty(s, d) for s, d in shapes]
        outs = [out] if isinstance(out, np.ndarray) else list(out)
        if len(outs) != len(shapes):
            raise ArgumentError(f"out= has {len(outs)} arrays, the function has {len(shapes)} "
                                f"outputs")
        for i, (o, (s, d)) in enumerate(zip(outs, shapes)):
            if not isinstance(o, np.ndarray) or o.shape != s or o.dtype != d or \
                    not o.flags.c_contiguous or not o.flags.writeable:
                got = (o.shape, o.dtype) if isinstance(o, np.ndarray) else type(o).__name__
                raise ArgumentError(f"out[{i}] must be a writable C-contiguous {d} array of "
                                    f"shape {s}, got {got}")
        return outs

    def _workspace(self, sizes):
        key = tuple(_count(size, sizes) for _, size in self.program.slots)
        cache = getattr(self._local, "ws", None)
        if cache is None or cache[0] != key:
            bufs = [np.empty(n, dtype) for n, (dtype, _) in zip(key, self.program.slots)]
            self._local.ws = cache = (key, bufs)
        return cache[1]

    def peak_bytes(self, **dims):
        """Bytes of intermediate buffers (the workspace) for the given named dim sizes, or for
        the last call's sizes when none are given."""
        if dims:
            def size(d):
                return dims[d.name]
            return sum(np.dtype(dt).itemsize * _count(sz, None, size)
                       for dt, sz in self.program.slots)
        if self._last_sizes is None:
            return None
        return sum(np.dtype(dt).itemsize * _count(sz, self._last_sizes)
                   for dt, sz in self.program.slots)

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


def _count(size, sizes, lookup=None):
    """Number of elements of a symbolic size (ints, dims) under the bound sizes."""
    ints, syms = size
    n = ints
    for d in syms:
        n *= lookup(d) if lookup is not None else sizes[d]
    return n


__all__ = ["Kernel", "size_expr"]
