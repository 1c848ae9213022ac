"""Numba glue: the only module of symdiff that imports numba.

Section 1 (this part): the emitter-owned math library. Every public function of
``symdiff.codegen.mathlib`` is exported here under the same name as a disk-cached njit
function marked ``alwaysinline``, so a generated kernel file can do
``from symdiff.codegen.jit import exp_f64`` and call it in a loop of its own
``@njit(cache=True, ...)`` function: LLVM inlines the call and the loop vectorizes (see
``_flags`` for the special functions, which are called). Nothing is compiled at import time:
each function compiles (or loads from Numba's cache) when the first kernel using it does.
The kernel helpers of ``codegen/helpers.py`` (matrix products, scratch views) are different:
``njit(cache=True)``, compiled once per dtype/layout into Numba's disk cache and called.

Measured (numba 0.68.1, AVX-512 VM): such a loop over 128x256 float32 runs tanh in 6 us
(NumPy's ufunc 6 us, numba's np.tanh 370 us); the kernel's on-disk cache loads in a new
process (cache hit, ~2-3 ms per kernel after numba's one-time ~0.2 s initialisation).
Kernel fast-math: {"nsz", "arcp", "contract", "afn", "reassoc"} keeps every NaN/inf result
of these functions; ``fastmath=True`` (adds nnan, ninf) does not (measured: exp(1000) gives
DBL_MAX, tanh(NaN) gives 1).
"""
import functools
import hashlib
import pathlib
import types as _pytypes

import numba
from llvmlite import ir as _llvm_ir
from numba.core import types as _nbtypes
from numba.extending import intrinsic as _intrinsic

from symdiff.codegen import cache_key as _cache_key
from symdiff.codegen import helpers as _helpers, mathlib as _mathlib, specialmath as _specialmath

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


def _cached_njit(fn, nogil=True, **flags):
    """njit(cache=True), or without the disk cache when Numba finds nowhere to keep it (a
    read-only package dir and home: Numba refuses cache=True with a RuntimeError)."""
    try:
        return numba.njit(cache=True, nogil=nogil, **flags)(fn)
    except RuntimeError:
        return numba.njit(nogil=nogil, **flags)(fn)


def _flags(module, name, strict):
    """How a kernel gets a math library function, by kind (measured, XOR train step: 2.25 ->
    1.69 s of cold compile for elementary functions inlined by LLVM instead of by Numba):

    - private helpers (``_name``): Numba-IR inlined into the public function that calls them,
      compiled once with it;
    - public elementary functions (mathlib): compiled once, in the kernels' fast-math flags
      (``strict``: none, for the kernels of fastmath=False) and Numba's error model, disk
      cached, and marked ``alwaysinline`` so that LLVM inlines them into the kernel's loop,
      which then vectorizes. Numba-IR inlining (``inline="always"``) would give the same code,
      but Numba re-translates and deep-copies the function's IR at every call site, ~0.2 s each;
    - public special functions (specialmath): they branch and loop, so they do not vectorize
      anyway: compiled once, disk cached, and called (inlined, every call site cost ~1 s).
    """
    from symdiff.codegen.render import FASTMATH
    if name.startswith("_"):
        return {"inline": "always"}
    if module is _specialmath:
        return {"inline": "never", "cache": True}
    return {"forceinline": True, "cache": True, "error_model": "numpy",
            "fastmath": False if strict else FASTMATH}


def _jit_namespace(strict, shared):
    """name -> jitted function for every function of the math library modules in one set of
    flags (lazy: nothing compiles); ``shared`` names functions taken as they are.

    Each function is rebuilt with a private copy of the modules' globals in which the
    primitives are the intrinsics above and the functions are their jitted versions, so calls
    between functions (tanh -> expm1, log_ndtr -> log1p) resolve to jitted code at compile time.
    A public function's qualname carries ``_library_tag()`` (and ``_strict``): its Numba disk
    cache entry is then never one compiled from other library files or flags.
    """
    namespace = {}
    for module in _MODULES:
        namespace.update(vars(module))
    namespace.update(_INTRINSICS)
    namespace.update(shared)
    jitted = {}
    for module, name, fn in [(m, k, v) for m in _MODULES for k, v in vars(m).items()]:
        if not isinstance(fn, _pytypes.FunctionType) or name in _INTRINSICS or name in shared:
            continue
        if fn.__module__ != module.__name__:      # imported from the other module
            continue
        clone = _pytypes.FunctionType(fn.__code__, namespace, name, fn.__defaults__,
                                      fn.__closure__)
        clone.__doc__ = fn.__doc__
        clone.__qualname__ = fn.__qualname__
        flags = _flags(module, name, strict)
        if flags.pop("cache", False):
            clone.__qualname__ += ("_strict_" if strict else "_") + _library_tag()
            jitted[name] = _cached_njit(clone, nogil=False, **flags)
        else:
            jitted[name] = numba.njit(**flags)(clone)
    namespace.update(jitted)
    return jitted


def _jit_mathlib():
    """name -> jitted function: every function of the math library in the kernels' fast-math
    flags, and name + "_strict" -> the public elementary functions without fast-math. The
    special functions have no fast-math in either (their compile is shared)."""
    strict = _jit_namespace(True, {})
    special = {k: f for k, f in strict.items()
               if getattr(getattr(_specialmath, k, None), "__module__", "") == _specialmath.__name__}
    fast = _jit_namespace(False, special)
    public = {k + "_strict": f for k, f in strict.items()
              if not k.startswith("_") and k not in special}
    return {**fast, **special, **public}


MATHLIB_DIGEST = _cache_key.mathlib_digest()
"""Changes when a file of cache_key.KERNEL_LIBRARY changes (see cache_key.mathlib_digest)."""


@functools.cache
def _library_tag():
    """A digest of the library files and of the kernels' fast-math flags, for the qualnames
    of the functions kept in Numba's disk cache: Numba keys its cache by a function's
    bytecode and signature only (not its globals, the functions it calls or its flags), so a
    changed library or flag set must not find the old entries."""
    from symdiff.codegen.render import FASTMATH
    text = MATHLIB_DIGEST + repr(sorted(FASTMATH))
    return hashlib.sha256(text.encode()).hexdigest()[:12]


MATH = _jit_mathlib()
"""name -> jitted function, for every function of the math library (public and private; the
public elementary ones also as name + "_strict")."""

globals().update({k: f for k, f in MATH.items() if not k.startswith("_")})   # for kernels


def _jit_helpers():
    """name -> njit(cache=True) for every helper of codegen/helpers.py, the products with the
    kernels' fast-math flags, and name + "_strict" -> a product without fast-math. Compiled
    once per dtype/layout into Numba's disk cache, under qualnames that carry
    ``_library_tag()``; a new kernel links the cached helper."""
    from symdiff.codegen.render import FASTMATH
    out = {}
    for name in _helpers.FUNCTIONS:
        fn = getattr(_helpers, name)
        kinds = [("", {})] if name not in _helpers.GEMMS else \
            [("", {"fastmath": FASTMATH}), ("_strict", {})]
        for suffix, flags in kinds:
            clone = _pytypes.FunctionType(fn.__code__, fn.__globals__, name + suffix)
            clone.__qualname__ = f"{name}{suffix}_{_library_tag()}"
            clone.__doc__ = fn.__doc__
            out[name + suffix] = _cached_njit(clone, **flags)
    return out


HELPERS = _jit_helpers()
"""name -> the jitted helpers of codegen/helpers.py (products: also *_strict)."""
globals().update(HELPERS)

# =============================================================================================
# 2. Kernel JIT and caching
# =============================================================================================
# The generated source is written once to <cache dir>/<key>/kernel.py (a real file: Numba's
# on-disk cache, tracebacks and `inspect` need one; it doubles as the inspectable source),
# imported under a unique module name registered in sys.modules (a second process needs that
# to load Numba's cache), and compiled eagerly for its one signature so that compile() pays
# the compile or cache-load time, not the first call.
#
# Faults (each tested with real processes in tests/codegen/test_cache_faults.py):
# - an entry Numba cannot load (truncated, zeroed or garbage files, an index from another
#   Numba version) recompiles: Numba's index check or our one retry after deleting the entry;
# - an entry path that is a file, a `__pycache__` or `kernel.py` of the wrong kind: replaced;
# - a cache dir that cannot be written (read-only, a regular file, no permission): one
#   CacheWarning, then kernels go to a private temporary dir removed at exit; an entry the
#   unwritable dir already holds is copied there first, so it still loads instead of compiling;
# - processes compiling the same kernel at once: a lock file per key (<key>.lock, flock)
#   makes one compile while the others wait and then load its result; every file is written
#   to a temporary name and renamed into place (Numba does the same for its own files).

import atexit  # noqa: E402
import importlib.util  # noqa: E402
import os  # noqa: E402
import shutil  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import threading  # noqa: E402
import tokenize as _tokenize  # noqa: E402
import warnings  # noqa: E402

import numpy as _np  # noqa: E402

try:
    import fcntl as _fcntl  # noqa: E402
except ImportError:            # Windows: no lock; concurrent compiles still rename atomically
    _fcntl = None

_loaded = {}          # key -> dispatcher (compiling the same source twice reuses it)
_paths = {}           # key -> the kernel.py it was loaded from
_fallback = {}        # unusable cache root -> the temporary root used instead
_mutex = threading.Lock()
STATS = {"compiled": 0, "loaded": 0, "reused": 0}
"""Kernels compiled by Numba, loaded from Numba's disk cache, and reused in this process."""


class CacheWarning(RuntimeWarning):
    """The kernel cache dir cannot be used; kernels compile into a temporary dir instead."""


cache_dir = _cache_key.cache_dir
kernel_key = _cache_key.kernel_key       # numba-free: the tiered compile names kernels early


def _numba_type(dtype, ndim):
    return _nbtypes.Array(numba.from_dtype(_np.dtype(dtype)), ndim, "C")


def load(source, arg_types, name="kernel"):
    """The compiled dispatcher of ``source``'s function ``name`` for ``arg_types``
    [(dtype, ndim)], from memory, Numba's disk cache, or a fresh compile.

    A cache entry that fails to import or load is deleted and rebuilt; a cache dir that
    cannot be written is replaced by a temporary one (with a CacheWarning); never a crash.
    """
    key = kernel_key(source)
    if key in _loaded:
        STATS["reused"] += 1
        return _loaded[key], key
    sig = tuple(_numba_type(dt, nd) for dt, nd in arg_types)
    root = cache_dir()
    try:
        fn = _load_entry(root, key, source, name, sig)
    except OSError as exc:                     # the cache dir cannot be written
        fn = _load_entry(_fallback_root(root, exc), key, source, name, sig, copy_from=root)
    if os.environ.get("SYMDIFF_DEBUG"):
        print(f"# symdiff kernel {_paths[key]}\n{source}", file=sys.stderr)
    _loaded[key] = fn
    return fn, key


def _load_entry(root, key, source, name, sig, copy_from=None):
    """Load or compile the kernel in ``root/key`` while holding its lock. OSError: ``root``
    cannot be written (raised before anything is compiled)."""
    folder = root / key
    with _locked(root, key):
        if key in _loaded:                     # another thread of this process finished it
            return _loaded[key]
        if copy_from is not None:
            _copy_entry(copy_from / key, folder, source)
        for attempt in range(2):
            _prepare(folder, source)           # OSError propagates: an unusable root
            try:
                fn = _import(folder, key, name)
                _compile(fn, sig)
                break
            except Exception:                  # corrupted or stale entry: rebuild it once
                sys.modules.pop(f"symdiff_kernel_{key}", None)
                if attempt:
                    raise
                shutil.rmtree(folder, ignore_errors=True)
    _paths[key] = folder / "kernel.py"
    return fn


class _locked:
    """An exclusive lock on ``root/<key>.lock`` (flock: held by an open file, released when
    the process dies), so one process compiles a key while the others wait for its result."""

    def __init__(self, root, key):
        self.path = root / f"{key}.lock"

    def __enter__(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.file = open(self.path, "a+b")
        if _fcntl is not None:
            _fcntl.flock(self.file.fileno(), _fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        self.file.close()                      # closing releases the lock


def _prepare(folder, source):
    """Make ``folder`` hold ``source`` as kernel.py beside a writable ``__pycache__``, replacing
    whatever of the wrong kind sits at those paths. OSError if the folder cannot be written."""
    if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
        folder.unlink()                        # an entry replaced by a file
    folder.mkdir(parents=True, exist_ok=True)
    path, pycache = folder / "kernel.py", folder / "__pycache__"
    for p, kind in ((path, "file"), (pycache, "dir")):
        if p.is_symlink() or (p.exists() and (p.is_dir() if kind == "file" else not p.is_dir())):
            shutil.rmtree(p) if p.is_dir() and not p.is_symlink() else p.unlink()
    pycache.mkdir(exist_ok=True)
    tempfile.TemporaryFile(dir=pycache).close()    # Numba's own test that it can save there
    if not _holds(path, source):
        tmp = folder / f"kernel.{os.getpid()}.{threading.get_ident()}.tmp"
        tmp.write_text(source)
        os.replace(tmp, path)                  # atomic: a concurrent reader sees old or new


def _holds(path, source):
    """Does the file ``path`` hold ``source``'s code? Its comments may name other vars: the
    entry is shared by graphs that differ only in names, and rewriting the file would make
    Numba's cache (which checks a hash of the file's bytes) recompile it."""
    try:
        return path.is_file() and _cache_key.code_of(path.read_text()) == \
            _cache_key.code_of(source)
    except (OSError, ValueError, SyntaxError, _tokenize.TokenError):   # garbage: rewrite it
        return False


def _copy_entry(src, folder, source):
    """Copy an unwritable cache's entry (if it holds this source) so it loads from the copy:
    kernel.py and Numba's files, without their permission bits."""
    try:
        if folder.exists() or not _holds(src / "kernel.py", source):
            return
        (folder / "__pycache__").mkdir(parents=True)
        for f in [src / "kernel.py", *(src / "__pycache__").iterdir()]:
            shutil.copyfile(f, folder / f.relative_to(src))
    except OSError:                            # nothing usable there: compile afresh
        shutil.rmtree(folder, ignore_errors=True)


def _fallback_root(root, exc):
    """The temporary root that replaces an unusable ``root`` (one warning per root)."""
    with _mutex:
        if root not in _fallback:
            tmp = pathlib.Path(tempfile.mkdtemp(prefix="symdiff-kernels-"))
            atexit.register(shutil.rmtree, tmp, ignore_errors=True)
            _fallback[root] = tmp
            warnings.warn(f"symdiff: the kernel cache {root} cannot be written "
                          f"({type(exc).__name__}: {exc}); compiling kernels into {tmp}, "
                          f"which is removed at exit (set SYMDIFF_CACHE_DIR to a writable "
                          f"dir to keep them)", CacheWarning, stacklevel=4)
        return _fallback[root]


def _import(folder, key, name):
    modname = f"symdiff_kernel_{key}"
    spec = importlib.util.spec_from_file_location(modname, folder / "kernel.py")
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
    """The kernel.py a loaded kernel came from (in the fallback dir if the cache was unusable)."""
    return _paths.get(key, cache_dir() / key / "kernel.py")
