"""The vectorizable math library (codegen/mathlib.py) against NumPy.

Each function is compiled once into a loop kernel ``out[i] = fn(x[i])``, the shape emitted
kernels use, under the kernel fast-math flags and without fast-math; every check reuses that
kernel. Reference: NumPy in float64; for float32 inputs, the float64 result rounded to float32.
Error: relative, |y - ref| / |ref|, where ref is a normal number; where ref is 0 or denormal,
the absolute error must be at most DENORMAL_ULPS units of the smallest denormal (the one
documented floor: gradual underflow rounds twice, once in the polynomial, once in the scaling).
"""
import subprocess
import sys

import numpy as np
import pytest
from numba import njit

from symdiff.codegen import jit, mathlib

KERNEL_FLAGS = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
NAMES = ("exp", "log", "log1p", "expm1", "tanh", "sigmoid", "softplus")
DTYPES = (np.float64, np.float32)
DENORMAL_ULPS = 1
CASES = [(name, dtype) for dtype in DTYPES for name in NAMES]


def _suffix(dtype):
    return "f64" if dtype == np.float64 else "f32"


def _loop_kernel(fn, flags):
    """out[i] = fn(x[i]), compiled like an emitted kernel (flags=None: no fast-math)."""
    options = {"error_model": "numpy"}
    if flags:
        options["fastmath"] = set(flags)

    @njit(**options)
    def kernel(x, out):
        for i in range(x.size):
            out[i] = fn(x[i])
    return kernel


@pytest.fixture(scope="module")
def kernels():
    """(name, dtype, flags) -> compiled loop kernel; each compiles once, on first use."""
    cache = {}

    def get(name, dtype, flags):
        key = (name, dtype, flags)
        if key not in cache:
            strict = "" if flags else "_strict"        # what a kernel of fastmath=False calls
            kernel = _loop_kernel(getattr(jit, f"{name}_{_suffix(dtype)}{strict}"), flags)
            x = np.zeros(4, dtype)
            kernel(x, np.empty_like(x))
            cache[key] = kernel
        return cache[key]
    return get


# ---------------------------------------------------------------------------------------------
# references and inputs


def _sigmoid_ref(x):
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


def _softplus_ref(x):
    return np.logaddexp(0.0, x)


REFERENCE = {"exp": np.exp, "log": np.log, "log1p": np.log1p, "expm1": np.expm1,
             "tanh": np.tanh, "sigmoid": _sigmoid_ref, "softplus": _softplus_ref}


def reference(name, x):
    with np.errstate(all="ignore"):
        return REFERENCE[name](x.astype(np.float64)).astype(x.dtype)


# Edges where behaviour changes: overflow, underflow to 0, start of denormal results, the
# k = 1024 (128) boundary of 2^k, tanh saturation.
THRESHOLDS = {
    np.float64: [709.782712893384, 709.0895657128241, -745.1332191019411, -708.3964185322641,
                 -37.42994775023705, 19.061547465398498, 36.7368005696771],
    np.float32: [88.72283, 88.0296, -103.97208, -87.33655, -17.32868, 9.010913, 16.635532],
}

# Where each function does its real work, swept densely.
DENSE = {"exp": (-30, 30), "expm1": (-3, 3), "log": (0, 3), "log1p": (-1, 3),
         "tanh": (-10, 10), "sigmoid": (-40, 40), "softplus": (-40, 40)}


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def sweep(name, dtype):
    """Dense grid, log-uniform magnitudes of both signs, thresholds, denormals, extremes."""
    rng = np.random.default_rng(20261123)
    info = np.finfo(dtype)
    tiny, big = float(info.smallest_subnormal), float(info.max)
    lo, hi = DENSE[name]
    mags = _log_uniform(rng, tiny, big, 60000)
    small = _log_uniform(rng, 1e-30, 2.0, 30000)
    parts = [np.linspace(lo, hi, 100001), mags, -mags, small, -small,
             1.0 + small[:10000] * 1e-3, -1.0 + small[:10000] * 1e-3,
             np.linspace(-800, 800, 20001), np.linspace(-110, 110, 20001)]
    for t in THRESHOLDS[dtype]:
        t = dtype(t)
        steps = np.arange(-40, 41, dtype=dtype) * np.spacing(t)
        parts += [t + steps, -t - steps]
    denormals = tiny * np.array([1, 2, 3, 1000, 2.0 ** 20])
    parts += [denormals, -denormals, np.array([info.tiny, -info.tiny, big, -big])]
    x = np.concatenate(parts).astype(dtype)
    return x[np.isfinite(x)]


SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, -np.nan]
DOMAIN_EDGES = {"log": [1.0, -1.0, -np.inf], "log1p": [-1.0, -2.0, 0.0]}   # exact: 0, NaN, -inf


def max_errors(y, ref):
    """(max relative error over normal refs, max |error| in denormal units over the rest)."""
    dtype = y.dtype.type
    info = np.finfo(dtype)
    finite = np.isfinite(ref)
    normal = finite & (np.abs(ref) >= info.tiny)
    y64, ref64 = y.astype(np.float64), ref.astype(np.float64)
    rel = np.abs(y64[normal] - ref64[normal]) / np.abs(ref64[normal])
    denormal = finite & ~normal
    absolute = np.abs(y64[denormal] - ref64[denormal]) / float(info.smallest_subnormal)
    return float(rel.max(initial=0.0)), float(absolute.max(initial=0.0))


# ---------------------------------------------------------------------------------------------
# tests


def test_tables_cover_every_function():
    expected = {(name, np.dtype(dtype).name) for name, dtype in CASES}
    assert set(mathlib.BOUNDS) == expected
    assert set(mathlib.FUNCTIONS) == expected
    for (name, dtype), fn in mathlib.FUNCTIONS.items():
        suffix = "f64" if dtype == "float64" else "f32"
        assert fn is getattr(mathlib, f"{name}_{suffix}")
        assert getattr(jit, f"{name}_{suffix}") is jit.MATH[f"{name}_{suffix}"]
        assert "Measured" in fn.__doc__ or "measured" in fn.__doc__, name


@pytest.mark.parametrize("flags", [KERNEL_FLAGS, None], ids=["kernel_flags", "no_fastmath"])
@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{_suffix(d)}" for n, d in CASES])
def test_accuracy_against_numpy(kernels, name, dtype, flags):
    x = sweep(name, dtype)
    y = np.empty_like(x)
    kernels(name, dtype, flags)(x, y)
    ref = reference(name, x)
    # overflow, saturation and underflow land exactly where NumPy's do
    np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref))
    np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref))
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    rel, denormal = max_errors(y, ref)
    assert rel <= mathlib.BOUNDS[(name, np.dtype(dtype).name)], (name, dtype, rel)
    assert denormal <= DENORMAL_ULPS, (name, dtype, denormal)


@pytest.mark.parametrize("flags", [KERNEL_FLAGS, None], ids=["kernel_flags", "no_fastmath"])
@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{_suffix(d)}" for n, d in CASES])
def test_special_values_match_numpy(kernels, name, dtype, flags):
    x = np.array(SPECIALS + DOMAIN_EDGES.get(name, []), dtype)
    y = np.empty_like(x)
    kernels(name, dtype, flags)(x, y)
    # NaN in -> NaN out, +-inf and 0 as NumPy (the sign of a zero is not compared)
    np.testing.assert_array_equal(y, reference(name, x))


@pytest.mark.parametrize("name", NAMES)
def test_float32_kernels_have_no_float64_arithmetic(kernels, name):
    kernel = kernels(name, np.float32, KERNEL_FLAGS)
    llvm_ir = kernel.inspect_llvm(kernel.signatures[0])
    assert "double" not in llvm_ir, f"{name}_f32 promotes to float64 somewhere"


@pytest.mark.parametrize("name,dtype", CASES, ids=[f"{n}-{_suffix(d)}" for n, d in CASES])
def test_pure_python_fallback_agrees_with_jit(kernels, name, dtype):
    """mathlib runs un-jitted on NumPy scalars too (struct-free bit views)."""
    x = np.array([-50.0, -3.5, -0.75, -1e-9, 1e-12, 0.3, 0.9, 2.5, 7.0, 60.0], dtype)
    x = x[x > -1] if name in ("log", "log1p") else x
    x = np.abs(x) if name == "log" else x
    jitted = np.empty_like(x)
    kernels(name, dtype, KERNEL_FLAGS)(x, jitted)
    fn = mathlib.FUNCTIONS[(name, np.dtype(dtype).name)]
    plain = np.array([fn(v) for v in x], dtype)
    bound = mathlib.BOUNDS[(name, np.dtype(dtype).name)]
    np.testing.assert_allclose(plain, jitted, rtol=2 * bound, atol=0)


def test_importing_jit_compiles_nothing():
    code = ("import symdiff.codegen.jit as j; "
            "print(sum(len(f.signatures) for f in j.MATH.values()), len(j.MATH))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    compiled, count = map(int, out.stdout.split())
    assert compiled == 0 and count >= 14
