"""Time the emitter-owned math library (codegen/mathlib.py) against Numba's and NumPy's.

For each function and dtype, on a 128x256 array (an MLP layer's activations):

- ours:      ``out[i] = tanh_f32(x[i])`` in an @njit loop (the kernel flags below), inlined
- numba np:  ``out[i] = np.tanh(x[i])`` in the same loop (scalar libm per element)
- numpy:     the NumPy ufunc writing into a preallocated output (SIMD inside NumPy)

sigmoid and softplus have no NumPy ufunc: "numba np" and "numpy" use their stable formulas
``1/(1+exp(-x))`` and ``max(x,0) + log1p(exp(-|x|))`` written with np functions.
Median of many repeats, in microseconds; the three variants are timed in interleaved rounds
so that load drifting on a shared VM hits them alike. Run: ``python benchmarks/bench_mathlib.py``.
"""
import os
import platform
import time

import numpy as np
from numba import njit

from symdiff.codegen import jit

SHAPE = (128, 256)
ROUNDS = 10
REPEATS = 40                           # per round and variant: 400 timings each
KERNEL_FLAGS = {"nsz", "arcp", "contract", "afn", "reassoc"}
NAMES = ("exp", "log", "log1p", "expm1", "tanh", "sigmoid", "softplus")

# Inputs: a range where each function does real work (no saturation shortcuts).
DOMAIN = {"exp": (-20, 20), "log": (1e-3, 1e3), "log1p": (-0.9, 10), "expm1": (-5, 5),
          "tanh": (-5, 5), "sigmoid": (-10, 10), "softplus": (-10, 10)}


def _numpy_call(name):
    """The NumPy (ufunc) version writing into out."""
    if name == "sigmoid":
        return lambda x, out: np.divide(1, 1 + np.exp(-x), out=out)
    if name == "softplus":
        return lambda x, out: np.add(np.maximum(x, 0), np.log1p(np.exp(-np.abs(x))), out=out)
    ufunc = getattr(np, name)
    return lambda x, out: ufunc(x, out=out)


def _loop_kernel(fn):
    """An @njit loop applying the scalar function fn elementwise, as emitted kernels do."""
    @njit(error_model="numpy", fastmath=KERNEL_FLAGS)
    def kernel(x, out):
        flat_x = x.ravel()
        flat_out = out.ravel()
        for i in range(flat_x.size):
            flat_out[i] = fn(flat_x[i])
    return kernel


def _numba_np(name, dtype):
    """numba's np.<fn> (libm per element) as an inlinable scalar function."""
    zero, one = dtype(0), dtype(1)     # typed: an int literal would promote float32 to float64
    if name == "sigmoid":
        return njit(inline="always")(lambda v: one / (one + np.exp(-v)))
    if name == "softplus":
        return njit(inline="always")(lambda v: max(v, zero) + np.log1p(np.exp(-abs(v))))
    ufunc = getattr(np, name)
    return njit(inline="always")(lambda v: ufunc(v))


def _medians_us(calls, x, out):
    """Median time of each call(x, out) in microseconds, timed in interleaved rounds."""
    for call in calls:
        call(x, out)                   # warm-up (and compile)
    times = [[] for _ in calls]
    for _ in range(ROUNDS):
        for call, samples in zip(calls, times):
            for _ in range(REPEATS):
                start = time.perf_counter()
                call(x, out)
                samples.append(time.perf_counter() - start)
    return [1e6 * float(np.median(samples)) for samples in times]


def bench(name, dtype):
    """(ours, numba's np.<fn>, numpy's ufunc) median microseconds for one function."""
    lo, hi = DOMAIN[name]
    x = np.random.default_rng(0).uniform(lo, hi, SHAPE).astype(dtype)
    out = np.empty_like(x)
    suffix = "f64" if dtype == np.float64 else "f32"
    calls = [_loop_kernel(getattr(jit, f"{name}_{suffix}")),
             _loop_kernel(_numba_np(name, dtype)),
             _numpy_call(name)]
    return _medians_us(calls, x, out)


def _spin(seconds=1.0):
    """Busy work before timing, so the first rows do not see a CPU still clocking up."""
    a = np.random.default_rng(1).random(SHAPE)
    stop = time.perf_counter() + seconds
    while time.perf_counter() < stop:
        np.exp(a)


def main():
    _spin()
    runs = ROUNDS * REPEATS
    print(f"# bench_mathlib: {SHAPE[0]}x{SHAPE[1]} elements, median of {runs} runs, us")
    print(f"# {platform.machine()}, {os.cpu_count()} cpus, load average "
          f"{os.getloadavg()[0]:.2f}, numpy {np.__version__}")
    header = "| function | dtype | ours | numba np.fn | numpy ufunc | numba/ours | numpy/ours |"
    print(header)
    print("|---|---|---:|---:|---:|---:|---:|")
    for dtype in (np.float32, np.float64):
        for name in NAMES:
            ours, numba_np, numpy_t = bench(name, dtype)
            print(f"| {name} | {np.dtype(dtype).name} | {ours:.1f} | {numba_np:.1f} | "
                  f"{numpy_t:.1f} | {numba_np / ours:.1f}x | {numpy_t / ours:.2f}x |")


if __name__ == "__main__":
    main()
