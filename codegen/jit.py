"""Numba glue: the only module of symdiff that imports numba.

Section 1 (this part): the emitter-owned math library. Every function of
``symdiff.codegen.mathlib`` is exported here as an ``njit(inline="always")`` function under
the same name, so a generated kernel file can do ``from symdiff.codegen.jit import exp_f64``
and call it in a loop of its own ``@njit(cache=True, ...)`` function; inlined at Numba-IR
level, the call vectorizes with the loop. Nothing is compiled at import time: each function
compiles (and inlines) when the first kernel using it is compiled.

Measured (numba 0.68.1, AVX-512 VM): such a loop over 128x256 float32 runs tanh in 6 us
(NumPy's ufunc 6 us, numba's np.tanh 370 us); the kernel's on-disk cache loads in a new
process (cache hit, ~2-3 ms per kernel after numba's one-time ~0.2 s initialisation).
Kernel fast-math: {"nsz", "arcp", "contract", "afn", "reassoc"} keeps every NaN/inf result
of these functions; ``fastmath=True`` (adds nnan, ninf) does not (measured: exp(1000) gives
DBL_MAX, tanh(NaN) gives 1).
"""
import hashlib
import pathlib
import types as _pytypes

import numba
from llvmlite import ir as _llvm_ir
from numba.core import types as _nbtypes
from numba.extending import intrinsic as _intrinsic

from symdiff.codegen import mathlib as _mathlib, specialmath as _specialmath
from symdiff.cost import user_cache

# =============================================================================================
# 1. Math library (see codegen/mathlib.py)
# =============================================================================================

# Fast-math flags carried by the protected arithmetic. Numba's fast-math pass only adds its
# flags to float instructions that have none, so instructions created with these flags keep
# them inside a kernel compiled with "reassoc": they may contract to an FMA, never reassociate.
_PROTECTED_FLAGS = ("contract",)


def _is_float(ty, bits):
    return isinstance(ty, _nbtypes.Float) and ty.bitwidth == bits


@_intrinsic
def _bits_f64(typingctx, x):
    """float64 -> int64 bit cast."""
    if not _is_float(x, 64):
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _llvm_ir.IntType(64))

    return _nbtypes.int64(x), codegen


@_intrinsic
def _f64_from_bits(typingctx, i):
    """integer -> float64 bit cast (the integer is converted to int64 first)."""
    if not isinstance(i, _nbtypes.Integer):
        return None

    def codegen(context, builder, sig, args):
        wide = context.cast(builder, args[0], sig.args[0], _nbtypes.int64)
        return builder.bitcast(wide, _llvm_ir.DoubleType())

    return _nbtypes.float64(i), codegen


@_intrinsic
def _bits_f32(typingctx, x):
    """float32 -> int32 bit cast."""
    if not _is_float(x, 32):
        return None

    def codegen(context, builder, sig, args):
        return builder.bitcast(args[0], _llvm_ir.IntType(32))

    return _nbtypes.int32(x), codegen


@_intrinsic
def _f32_from_bits(typingctx, i):
    """integer -> float32 bit cast of its low 32 bits (numba widens int32 arithmetic to int64)."""
    if not isinstance(i, _nbtypes.Integer):
        return None

    def codegen(context, builder, sig, args):
        bits = args[0]
        if i.bitwidth > 32:
            bits = builder.trunc(bits, _llvm_ir.IntType(32))
        elif i.bitwidth < 32:
            bits = builder.sext(bits, _llvm_ir.IntType(32))
        return builder.bitcast(bits, _llvm_ir.FloatType())

    return _nbtypes.float32(i), codegen


def _same_floats(*tys):
    return isinstance(tys[0], _nbtypes.Float) and all(t == tys[0] for t in tys)


@_intrinsic
def _mul_sub(typingctx, a, b, c):
    """a - b*c with _PROTECTED_FLAGS (all three of the same float type)."""
    if not _same_floats(a, b, c):
        return None

    def codegen(context, builder, sig, args):
        prod = builder.fmul(args[1], args[2], flags=_PROTECTED_FLAGS)
        return builder.fsub(args[0], prod, flags=_PROTECTED_FLAGS)

    return a(a, b, c), codegen


@_intrinsic
def _strict_add(typingctx, a, b):
    """a + b with _PROTECTED_FLAGS (both of the same float type)."""
    if not _same_floats(a, b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1], flags=_PROTECTED_FLAGS)

    return a(a, b), codegen


@_intrinsic
def _strict_sub(typingctx, a, b):
    """a - b with _PROTECTED_FLAGS (both of the same float type)."""
    if not _same_floats(a, b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fsub(args[0], args[1], flags=_PROTECTED_FLAGS)

    return a(a, b), codegen


_INTRINSICS = {
    "bits_f64": _bits_f64,
    "f64_from_bits": _f64_from_bits,
    "bits_f32": _bits_f32,
    "f32_from_bits": _f32_from_bits,
    "mul_sub": _mul_sub,
    "strict_add": _strict_add,
    "strict_sub": _strict_sub,
}
assert set(_INTRINSICS) == set(_mathlib.PRIMITIVES)


_MODULES = (_mathlib, _specialmath)      # the math library: elementary, special functions


def _inline(module, name):
    """Elementary functions inline into the kernel's loop (it vectorizes); the special
    functions branch and loop anyway, so each compiles once per process and kernels call it
    (inlined, every call site cost ~1 s of compile time)."""
    return "never" if module is _specialmath and not name.startswith("_") else "always"


def _jit_mathlib():
    """name -> njit(inline="always") for every function of the math library modules (lazy:
    nothing compiles).

    Each function is rebuilt with a private copy of the modules' globals in which the
    primitives are the intrinsics above and the functions are their jitted versions, so calls
    between functions (tanh -> expm1, log_ndtr -> log1p) resolve to jitted code at compile time.
    """
    namespace = {}
    for module in _MODULES:
        namespace.update(vars(module))
    namespace.update(_INTRINSICS)
    jitted = {}
    for module, name, fn in [(m, k, v) for m in _MODULES for k, v in vars(m).items()]:
        if not isinstance(fn, _pytypes.FunctionType) or name in _INTRINSICS:
            continue
        if fn.__module__ != module.__name__:      # imported from the other module
            continue
        clone = _pytypes.FunctionType(fn.__code__, namespace, name, fn.__defaults__,
                                      fn.__closure__)
        clone.__doc__ = fn.__doc__
        clone.__qualname__ = fn.__qualname__
        jitted[name] = numba.njit(inline=_inline(module, name))(clone)
    namespace.update(jitted)
    return jitted


MATH = _jit_mathlib()
"""name -> jitted function, for every function of mathlib (public and private)."""

MATHLIB_DIGEST = hashlib.sha256(b"".join(pathlib.Path(m.__file__).read_bytes()
                                          for m in _MODULES)).hexdigest()[:16]
"""Changes when mathlib.py or specialmath.py changes. Numba's cache checks only the kernel's
own file, not the functions inlined into it (checked): put this in the kernel cache key, or
cached kernels keep the old math after an edit of the math library."""

exp_f64 = MATH["exp_f64"]
exp_f32 = MATH["exp_f32"]
log_f64 = MATH["log_f64"]
log_f32 = MATH["log_f32"]
log1p_f64 = MATH["log1p_f64"]
log1p_f32 = MATH["log1p_f32"]
expm1_f64 = MATH["expm1_f64"]
expm1_f32 = MATH["expm1_f32"]
tanh_f64 = MATH["tanh_f64"]
tanh_f32 = MATH["tanh_f32"]
sigmoid_f64 = MATH["sigmoid_f64"]
sigmoid_f32 = MATH["sigmoid_f32"]
softplus_f64 = MATH["softplus_f64"]
softplus_f32 = MATH["softplus_f32"]
lgamma_f64 = MATH["lgamma_f64"]
lgamma_f32 = MATH["lgamma_f32"]
digamma_f64 = MATH["digamma_f64"]
digamma_f32 = MATH["digamma_f32"]
polygamma_f64 = MATH["polygamma_f64"]
polygamma_f32 = MATH["polygamma_f32"]
erf_f64 = MATH["erf_f64"]
erf_f32 = MATH["erf_f32"]
erfc_f64 = MATH["erfc_f64"]
erfc_f32 = MATH["erfc_f32"]
log_ndtr_f64 = MATH["log_ndtr_f64"]
log_ndtr_f32 = MATH["log_ndtr_f32"]

# =============================================================================================
# 2. Kernel JIT and caching
# =============================================================================================
# The generated source is written once to <cache dir>/<key>/kernel.py (a real file: Numba's
# on-disk cache, tracebacks and `inspect` need one; it doubles as the inspectable source),
# imported under a unique module name registered in sys.modules (a second process needs that
# to load Numba's cache), and compiled eagerly for its one signature so that compile() pays
# the compile or cache-load time, not the first call.

import importlib.util  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402

import numpy as _np  # noqa: E402

_loaded = {}          # key -> dispatcher (compiling the same source twice reuses it)
STATS = {"compiled": 0, "loaded": 0, "reused": 0}
"""Kernels compiled by Numba, loaded from Numba's disk cache, and reused in this process."""


def cache_dir():
    """Root of the kernel cache: $SYMDIFF_CACHE_DIR, else $XDG_CACHE_HOME/symdiff/kernels."""
    env = os.environ.get("SYMDIFF_CACHE_DIR")
    return pathlib.Path(env) if env else user_cache("kernels")


def kernel_key(source):
    """Cache key: the source (it encodes graph, options and flags) and every version that
    changes what the source compiles to."""
    from symdiff import __version__
    h = hashlib.sha256(source.encode())
    for part in (__version__, numba.__version__, _np.__version__, MATHLIB_DIGEST, sys.version):
        h.update(part.encode())
    return h.hexdigest()[:24]


def _numba_type(dtype, ndim):
    return _nbtypes.Array(numba.from_dtype(_np.dtype(dtype)), ndim, "C")


def load(source, arg_types, name="kernel"):
    """The compiled dispatcher of ``source``'s function ``name`` for ``arg_types``
    [(dtype, ndim)], from memory, Numba's disk cache, or a fresh compile.

    A cache entry that fails to import or load is deleted and rebuilt, never a crash.
    """
    key = kernel_key(source)
    if key in _loaded:
        STATS["reused"] += 1
        return _loaded[key], key
    sig = tuple(_numba_type(dt, nd) for dt, nd in arg_types)
    folder = cache_dir() / key
    for attempt in range(2):
        try:
            fn = _import(folder, key, source, name)
            _compile(fn, sig)
            break
        except Exception:                      # corrupted or stale entry: rebuild it once
            if attempt:
                raise
            sys.modules.pop(f"symdiff_kernel_{key}", None)
            shutil.rmtree(folder, ignore_errors=True)
    if os.environ.get("SYMDIFF_DEBUG"):
        print(f"# symdiff kernel {folder / 'kernel.py'}\n{source}", file=sys.stderr)
    _loaded[key] = fn
    return fn, key


def _import(folder, key, source, name):
    path = folder / "kernel.py"
    if not path.exists() or path.read_text() != source:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"kernel.{os.getpid()}.tmp"
        tmp.write_text(source)
        os.replace(tmp, path)                  # atomic: a concurrent reader sees old or new
    modname = f"symdiff_kernel_{key}"
    spec = importlib.util.spec_from_file_location(modname, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module              # a second process needs it to load the cache
    spec.loader.exec_module(module)
    return getattr(module, name)


def _compile(fn, sig):
    """Compile (or load from Numba's cache) the one signature; count which it was."""
    fn.compile(sig)                            # numba recompiles when its cache is unusable
    fn.disable_compile()                       # other argument types: TypeError, not a compile
    hits = sum(fn.stats.cache_hits.values())
    STATS["loaded" if hits else "compiled"] += 1


def source_path(key):
    return cache_dir() / key / "kernel.py"
