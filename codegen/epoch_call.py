"""Preparing and running an epoch driver for a Kernel (see epoch.py).

``EpochRunner`` owns a kernel's driver and buffers. Batch buffers, outputs and workspaces
belong to the calling thread, so epochs from several
threads never share them (a kernel with updates also runs them one at a time, see kernel.py).
"""
import threading
import time

import numpy as np

from symdiff.errors import ArgumentError
from symdiff.function import check_epoch, check_index_rows, epoch_order, run_epoch

from .epoch import render_epoch
from .kernel import kernel_array, kernel_ready


class EpochRunner:
    """The epochs of one Kernel (``Kernel.epoch``): it owns the epoch driver (rendered and
    loaded at the first epoch, under its own lock, then kept) and, per thread, the batch
    buffers and workspaces of the recent data shapes. The Kernel holds no epoch state."""

    def __init__(self, kernel):
        self.kernel = kernel
        self.compile_seconds = 0.0          # loading (or compiling) the driver
        self._driver = None
        self._requested = self._fell_back = False     # the background compile (tiered)
        self.wanted = False                 # the NumPy tier ran epochs: queue the driver early
        self._loading = threading.Lock()
        self._local = threading.local()     # .prep: {data key: (buffers, direct)}

    def __call__(self, data, batch_size, order):
        """Run one epoch (see ``Kernel.epoch``); the record of scalar outputs per step."""
        kernel = self.kernel
        driver = self.driver()
        if driver is None:          # tiered: the driver is on its way; the step from Python
            fn = kernel._fn
            return run_epoch(kernel.spec, data, batch_size, order,
                             lambda args: kernel._run_slow(fn, args, None))
        cache = self._local.__dict__.setdefault("prep", {})
        arrays, n, prep = _prepare(kernel, cache, data, batch_size, order)
        rows = None if order is None else _order(order, n)
        check_index_rows(kernel.spec, arrays, rows)       # a bad label fails before any update
        order = np.arange(n) if rows is None else rows
        if order.size == 0:
            return np.zeros((0, _n_scalars(kernel)))
        full, last, outs, arenas, offs_full, offs_last = prep
        b = full[0].shape[0]
        record = np.zeros(((order.size + b - 1) // b, _n_scalars(kernel)))
        status = driver(order, record, *arrays, *full, *last, *kernel._state,
                        *kernel._consts, *outs, *arenas, offs_full, offs_last)
        if status == 1:
            raise ArgumentError("epoch: an index in the data (e.g. a class label, or an index "
                                "given to take/scatter_add) is out of range; found mid-epoch, "
                                "so the steps before it have updated the parameters")
        if status == 2:
            raise ArgumentError("epoch: an output's shape depends on the batch size (outputs "
                                "must be scalars or parameter-shaped, e.g. the loss)")
        if status:
            raise RuntimeError(f"epoch: unexpected kernel status {status}")
        return record

    def driver(self):
        """The jitted driver (one thread renders and loads it; the others wait for it), or
        None while a tiered kernel's driver compiles in the background."""
        drv = self._driver
        if drv is None and self._in_background():
            return None
        if drv is None:
            with self._loading:
                if self._driver is None:
                    t0 = time.perf_counter()
                    self._driver = _load_driver(self.kernel)
                    self.compile_seconds = time.perf_counter() - t0
                drv = self._driver
        return drv

    def _in_background(self):
        """A tiered kernel's driver compiles like the kernel, in the compile worker (queued
        at the first epoch): True while it is on its way. After a failed background compile
        the driver compiles in process (which raises the error to the caller)."""
        if self.kernel._tier is None or self._fell_back:
            return False
        with self._loading:
            if self._driver is not None:
                return False
            if not self._requested:
                self._requested = True
                from .tiered import build_driver
                build_driver(self.kernel, self)
        return True

    def arrive(self, fn):
        """The background compile's driver (None: it failed)."""
        with self._loading:
            if fn is None:
                self._fell_back = True
            elif self._driver is None:
                self._driver = fn


def _load_driver(kernel):
    from . import jit
    source, types = driver_source(kernel)
    return jit.load(source, types, name="epoch")[0]


def driver_source(kernel):
    """(source, argument types) of ``kernel``'s epoch driver (its step is imported from the
    module the kernel was loaded as)."""
    source = render_epoch(kernel, f"symdiff_kernel_{kernel.key}")
    n = len(kernel.spec.inputs)
    types = ([("int64", 1), ("float64", 2)] + [(b.dtype, len(b.shape)) for b in
                                              kernel.program.inputs[:n]] * 3 +
             [(b.dtype, len(b.shape)) for b in kernel.program.inputs[n:]] +
             [(b.dtype, len(b.shape)) for _, b in kernel.program.consts] +
             [(b.dtype, len(b.shape)) for b in kernel.program.outputs] +
             [(dt, 1) for dt in kernel.arena_dtypes] + [("int64", 1), ("int64", 1)])
    return source, types


def _order(order, n):
    """``order`` as int64 row indices the driver takes (a copy when needed)."""
    return kernel_array(epoch_order(order, n))


def _data_arrays(kernel, data):
    """The data through the kernel's checks (dtypes, shapes, dims), each as the driver
    takes it: converted to its dtype, and copied when read-only, unaligned, non-contiguous
    or big-endian (the driver only reads the data)."""
    arrays, _ = kernel.spec.signature.bind(list(data) + kernel._state)
    return [kernel_array(a) for a in arrays[:len(data)]]


def _prepare(kernel, cache, data, batch_size, order):
    """(contiguous data arrays, rows, batch buffers and workspaces) for one epoch call.

    Checking the data and building the batch buffers and workspace plans costs ~70 us, as
    much as ten steps of a small model: it is done once per (data shapes and dtypes, batch
    size, order length) and kept in ``cache`` (the runner's, for this thread).
    """
    size = None if order is None else np.size(order)
    key = _data_key(data, batch_size, size)
    if key is not None and key in cache:
        prep, direct = cache[key]
        # the key holds shapes and dtypes, not flags: data of the kernel's dtypes is passed
        # as it is only when the driver can take it (else it is converted, every call)
        if direct and all(kernel_ready(a) for a in data):
            return list(data), data[0].shape[0], prep
        return _data_arrays(kernel, data), data[0].shape[0], prep
    check_epoch(kernel.spec, data, batch_size)
    arrays = _data_arrays(kernel, data)
    direct = all(getattr(d, "dtype", None) == a.dtype for a, d in zip(arrays, data))
    n = arrays[0].shape[0]
    total = n if size is None else size
    b = max(1, min(batch_size, total))
    rest = total % b or b
    full = [np.empty((b,) + a.shape[1:], a.dtype) for a in arrays]
    last = [np.empty((rest,) + a.shape[1:], a.dtype) for a in arrays]
    plan_full = kernel._plan(kernel.spec.signature.bind(full + kernel._state)[1])
    plan_last = kernel._plan(kernel.spec.signature.bind(last + kernel._state)[1])
    arenas = [a if a.size >= al.size else al for a, al in zip(plan_full.arrays[:-1],
                                                              plan_last.arrays)]
    prep = (full, last, plan_full.outputs(), arenas, plan_full.arrays[-1], plan_last.arrays[-1])
    if key is not None:
        if len(cache) > 8:
            cache.clear()
        cache[key] = (prep, direct)
    return arrays, n, prep


def _data_key(data, batch_size, size):
    """Shapes and dtypes of C-contiguous numpy data, or None (then nothing is cached)."""
    if not all(type(a) is np.ndarray and a.flags.c_contiguous for a in data) or not data:
        return None
    if not isinstance(batch_size, (int, np.integer)):
        return None
    return (tuple((a.dtype.str, a.shape) for a in data), int(batch_size), size)


def _n_scalars(kernel):
    return sum(1 for b in kernel.program.outputs if not b.shape)
