"""The special functions of the math library (codegen/specialmath.py) against mpmath and SciPy.

One loop kernel per dtype and fast-math setting evaluates every function (``out[k, i] =
fn_k(x[i])``, polygamma's order an argument), compiled like an emitted kernel; every check
reuses it. Accuracy is measured against mpmath (40 digits) at the kernel's own inputs, with
the error measure of each function (``scale`` below; BOUNDS in specialmath.py documents it):
relative error, except where the function's own formula is ill-conditioned in a way that no
floating-point implementation escapes (roots of digamma and of even-order polygammas on the
negative axis, log_ndtr's upper tail). Special values and a wide sweep are checked against
SciPy, the interpreter's semantics.
"""
import functools
import math
import zlib

import mpmath as mp
import numpy as np
import pytest
from numba import njit
from scipy import special

from symdiff.codegen import jit, specialmath

KERNEL_FLAGS = frozenset({"nsz", "arcp", "contract", "afn", "reassoc"})
FLAGS = [KERNEL_FLAGS, None]
FLAG_IDS = ["kernel_flags", "no_fastmath"]
DTYPES = (np.float64, np.float32)
ROWS = ("lgamma", "digamma", "polygamma", "erf", "erfc", "log_ndtr")     # kernel output rows
NAMES = ("lgamma", "digamma", "polygamma1", "polygamma2", "polygamma3", "erf", "erfc",
         "log_ndtr")


def _suffix(dtype):
    return "f64" if dtype == np.float64 else "f32"


def _all_kernel(dtype, flags):
    """out[k, i] = ROWS[k](x[i]) (polygamma of order n), compiled like an emitted kernel."""
    s = _suffix(dtype)
    lgamma, digamma, polygamma = (jit.MATH[f"{f}_{s}"] for f in ("lgamma", "digamma", "polygamma"))
    erf, erfc, log_ndtr = (jit.MATH[f"{f}_{s}"] for f in ("erf", "erfc", "log_ndtr"))
    options = {"error_model": "numpy", "fastmath": set(flags) if flags else False}

    @njit(**options)
    def kernel(x, n, out):
        for i in range(x.size):
            out[0, i] = lgamma(x[i])
            out[1, i] = digamma(x[i])
            out[2, i] = polygamma(n, x[i])
            out[3, i] = erf(x[i])
            out[4, i] = erfc(x[i])
            out[5, i] = log_ndtr(x[i])
    return kernel


@pytest.fixture(scope="module")
def run():
    """run(name, x, flags) -> that function's values at x from the (cached) loop kernel."""
    cache = {}

    def get(name, x, flags):
        key = (x.dtype.type, flags)
        if key not in cache:
            cache[key] = _all_kernel(x.dtype.type, flags)
        out = np.empty((len(ROWS), x.size), x.dtype)
        order = int(name[-1]) if name.startswith("polygamma") else 1
        cache[key](x, order, out)
        return out[ROWS.index(name.rstrip("123"))]
    return get


# ---------------------------------------------------------------------------------------------
# inputs and references


def _log_uniform(rng, lo, hi, n):
    return np.exp(rng.uniform(np.log(lo), np.log(hi), n))


def sample(name, dtype, n=700):
    """Where each function does its real work, its edges, and log-uniform magnitudes."""
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    info = np.finfo(dtype)
    tiny, big = float(info.tiny), float(info.max) / 4
    parts = {
        "lgamma": [_log_uniform(rng, tiny, big, n), rng.uniform(0, 12, n),
                   1 + rng.uniform(-1e-3, 1e-3, n // 4), 2 + rng.uniform(-1e-3, 1e-3, n // 4),
                   -rng.uniform(0, 25, n), -_log_uniform(rng, 25, 1e6, n // 4),
                   np.array([-2.4570247382208006, -2.7476826467274127, -3.14358088834998])],
        "digamma": [_log_uniform(rng, tiny, big, n), rng.uniform(0, 12, n),
                    1.4616321449683622 + rng.uniform(-1e-5, 1e-5, n // 4),
                    -rng.uniform(0, 25, n), -_log_uniform(rng, 25, 1e6, n // 4)],
        "polygamma": [_log_uniform(rng, 1e-30, 1e30, n), rng.uniform(0, 25, n),
                      -rng.uniform(0, 30, n), -_log_uniform(rng, 30, 1e3, n // 4)],
        "erf": [rng.uniform(-6, 6, n), _log_uniform(rng, tiny, 6, n),
                -_log_uniform(rng, tiny, 6, n)],
        "erfc": [rng.uniform(-6, 27, n), _log_uniform(rng, tiny, 27, n),
                 -_log_uniform(rng, tiny, 7, n)],
        "log_ndtr": [rng.uniform(-45, 40, n), -_log_uniform(rng, tiny, 1e150, n),
                     _log_uniform(rng, tiny, 38, n), rng.uniform(-21, -19, n // 4),
                     rng.uniform(-11, -9, n // 4)],
    }[name.rstrip("123")]
    with np.errstate(over="ignore"):
        x = np.concatenate(parts).astype(dtype)
    return x[np.isfinite(x) & (x != 0)]


def _exact(name, v):
    """The exact value at v (an mpf), or None at a pole."""
    try:
        if name == "lgamma":
            return mp.re(mp.loggamma(v))
        if name == "digamma":
            return mp.digamma(v)
        if name.startswith("polygamma"):
            return mp.polygamma(int(name[-1]), v)
        if name == "log_ndtr":
            return mp.log1p(-mp.ncdf(-v)) if v > 0 else mp.log(mp.ncdf(v))
        return {"erf": mp.erf, "erfc": mp.erfc}[name](v)
    except (ValueError, ZeroDivisionError):
        return None


@functools.lru_cache(maxsize=None)
def exact_values(name, dtype):
    """(x, exact values as mpf or None at poles, the error unit at each x) for sample(name)."""
    x = sample(name, dtype)
    with mp.workdps(40):
        exact = [_exact(name, mp.mpf(v)) for v in x.tolist()]
    approx = np.array([np.nan if e is None else float(e) for e in exact])
    return x, exact, scale(name, x.astype(np.float64), approx)


def scale(name, x, exact):
    """The error measure's unit: |exact| (relative error) unless the function's formula is
    ill-conditioned there (see the module docstring), then the condition's own scale (a few
    digits suffice: float64 SciPy)."""
    unit = np.abs(exact)
    neg, xn = x < 0, x[x < 0]
    with np.errstate(all="ignore"):
        if name == "digamma" or name.startswith("polygamma"):
            # the reflection's terms: psi^(n)(1 - x) and pi^(n+1) cot^(n)(pi x), the latter
            # equal to (-1)^n psi^(n)(1 - x) - psi^(n)(x)
            n = int(name[-1]) if name.startswith("polygamma") else 0
            far = special.polygamma(n, 1 - xn)
            unit[neg] = np.abs(far) + np.abs((-1) ** n * far - exact[neg])
        if name == "log_ndtr":                   # the rounding of x / sqrt 2 grows as x^2 eps
            unit *= np.maximum(1.0, x * x)
    return unit


def max_error(name, x, y):
    """Max error in the function's measure; where the exact result is 0 or denormal the unit
    is at least the smallest normal number (one denormal ulp is then 2^-52 or 2^-23)."""
    xs, exact, units = exact_values(name, x.dtype.type)
    assert xs is x or np.array_equal(xs, x)
    info = np.finfo(x.dtype)
    worst = 0.0
    with mp.workdps(40):
        for yi, e, unit in zip(y.astype(np.float64).tolist(), exact, units.tolist()):
            if e is None or not mp.isfinite(e):
                continue
            if abs(e) > info.max:              # overflow: inf of the right sign
                ok = yi == (math.inf if e > 0 else -math.inf)
                worst = max(worst, 0.0 if ok else math.inf)
            elif math.isfinite(yi):
                worst = max(worst, float(abs(yi - e)) / max(unit, float(info.tiny)))
            else:
                worst = math.inf
    return worst


def reference(name, x):
    """SciPy at x (float64, then rounded to x's dtype)."""
    x64 = x.astype(np.float64)
    with np.errstate(all="ignore"):
        if name.startswith("polygamma"):
            out = special.polygamma(int(name[-1]), x64)
        else:
            out = {"lgamma": special.gammaln, "digamma": special.psi, "erf": special.erf,
                   "erfc": special.erfc, "log_ndtr": special.log_ndtr}[name](x64)
        return out.astype(x.dtype)


SPECIALS = [0.0, -0.0, np.inf, -np.inf, np.nan, 1.0, 2.0, -1.0, -2.0, -3.0, -100.0, 0.5, -0.5,
            -40.0, 40.0, 1e30, -1e30, -30.5]
CASES = [(name, dtype) for dtype in DTYPES for name in NAMES]
CASE_IDS = [f"{n}-{_suffix(d)}" for n, d in CASES]


# ---------------------------------------------------------------------------------------------
# tests


def test_tables_cover_every_function():
    expected = {(name, np.dtype(dtype).name) for name in ROWS for dtype in DTYPES}
    assert set(specialmath.FUNCTIONS) == expected
    assert {(n.rstrip("123"), dt) for n, dt in specialmath.BOUNDS} == expected
    for (name, dtype), fn in specialmath.FUNCTIONS.items():
        suffix = "f64" if dtype == "float64" else "f32"
        assert fn is getattr(specialmath, f"{name}_{suffix}")
        assert getattr(jit, f"{name}_{suffix}") is jit.MATH[f"{name}_{suffix}"]
        assert "Measured" in fn.__doc__, name


@pytest.mark.slow          # ~1 minute on 2 cores: mpmath at 40 digits (run with -m slow)
@pytest.mark.parametrize("flags", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("name,dtype", CASES, ids=CASE_IDS)
def test_accuracy_against_mpmath(run, name, dtype, flags):
    x = exact_values(name, dtype)[0]
    worst = max_error(name, x, run(name, x, flags))
    assert worst <= specialmath.BOUNDS[(name, np.dtype(dtype).name)], (name, dtype, worst)


@pytest.mark.parametrize("flags", FLAGS, ids=FLAG_IDS)
@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_special_values_match_scipy(run, dtype, flags):
    x = np.array(SPECIALS, dtype)
    for name in NAMES:
        y, ref = run(name, x, flags), reference(name, x)
        # NaN, +-inf (poles) and 0 exactly as SciPy (the sign of a zero is not compared)
        exact = ~np.isfinite(ref) | (ref == 0)
        np.testing.assert_array_equal(y[exact], ref[exact], err_msg=name)
        tol = 1e-13 if dtype == np.float64 else 1e-6     # SciPy's polygamma(2, -30.5): 5e-13
        np.testing.assert_allclose(y[~exact], ref[~exact], err_msg=name, rtol=tol, atol=tol)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f64", "f32"])
def test_wide_sweep_agrees_with_scipy(run, dtype):
    """Overflow, poles and underflow land where SciPy's do; values agree to a mixed tolerance
    (SciPy's own errors included: gammaln near 1 and 2, psi next to negative integers)."""
    rng = np.random.default_rng(5)
    info = np.finfo(dtype)
    mags = _log_uniform(rng, float(info.tiny), float(info.max), 20000)
    with np.errstate(over="ignore"):
        x = np.concatenate([np.linspace(-60, 60, 24001), mags, -(mags % 1e4)]).astype(dtype)
        far = (-mags).astype(dtype)           # SciPy's polygamma takes time ~ |x| for x < 0
    x, far = x[np.isfinite(x)], far[np.isfinite(far)]
    rtol = 2e-9 if dtype == np.float64 else 2e-5
    for name in NAMES:
        xs = x if name.startswith("polygamma") else np.concatenate([x, far])
        y, ref = run(name, xs, KERNEL_FLAGS), reference(name, xs)
        np.testing.assert_array_equal(np.isnan(y), np.isnan(ref), err_msg=name)
        np.testing.assert_array_equal(np.isposinf(y), np.isposinf(ref), err_msg=name)
        np.testing.assert_array_equal(np.isneginf(y), np.isneginf(ref), err_msg=name)
        ok = np.isfinite(ref)
        err = np.abs(y[ok].astype(float) - ref[ok]) / np.maximum(1.0, np.abs(ref[ok]))
        assert err.max() <= rtol, (name, float(err.max()), xs[ok][np.argmax(err)])


def _native_ir(fn, sig):
    """The LLVM IR of fn's native function (not of its CPython wrapper, which reads floats as
    doubles), from a copy compiled here: fn itself may come from Numba's disk cache, which
    keeps no IR to inspect."""
    fresh = njit(**{k: v for k, v in fn.targetoptions.items() if k != "nopython"})(fn.py_func)
    fresh.compile(sig)
    blocks = fresh.inspect_llvm(fresh.signatures[0]).split("\ndefine ")
    return "".join(b for b in blocks[1:] if b.split("@", 1)[1].startswith("_ZN7symdiff"))


def test_float32_functions_have_no_float64_arithmetic(run):
    for name in ROWS:
        sig = "float32(int64, float32)" if name == "polygamma" else "float32(float32)"
        ir = _native_ir(jit.MATH[f"{name}_f32"], sig)            # called, not inlined: own IR
        assert ir and "double" not in ir, name


@pytest.mark.parametrize("name,dtype", CASES, ids=CASE_IDS)
def test_pure_python_fallback_agrees_with_jit(run, name, dtype):
    """specialmath runs un-jitted on NumPy scalars too, special values included."""
    x = np.array([-50.5, -3.5, -0.75, -1e-9, 1e-12, 0.3, 0.9, 2.5, 7.0, 60.0, -2.0, 0.0,
                  np.inf, -np.inf, np.nan], dtype)
    fn = specialmath.FUNCTIONS[(name.rstrip("123"), np.dtype(dtype).name)]
    with np.errstate(all="ignore"):
        plain = np.array([fn(int(name[-1]), v) if name.startswith("polygamma") else fn(v)
                          for v in x], dtype)
    # (CPython's math.lgamma is its own, not libm's: 2e-15 relative near lgamma's roots)
    bound = 4 * specialmath.BOUNDS[(name, np.dtype(dtype).name)]
    np.testing.assert_allclose(plain, run(name, x, KERNEL_FLAGS), rtol=bound, atol=bound)
