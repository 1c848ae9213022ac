"""The kernel cache's key and root, computed without importing numba.

The tiered compile (``symdiff.codegen.tiered``) names a kernel (``f.key``) the moment
``sd.compile`` returns, before anything imports numba (~0.4 s): the versions come from the
installed distributions' metadata, which is what ``numba.__version__`` reports.
"""
import functools
import hashlib
import io
import os
import pathlib
import sys
import tokenize


@functools.cache
def _versions():
    from importlib.metadata import version

    import numpy

    from symdiff import __version__
    return (__version__, version("numba"), numpy.__version__, mathlib_digest(), sys.version)


KERNEL_LIBRARY = ("jit.py", "mathlib.py", "specialmath.py", "helpers.py")
"""The files whose code a kernel calls: jit.py wraps the functions of the other three."""


@functools.cache
def mathlib_digest():
    """Changes when a file whose functions a kernel calls changes (KERNEL_LIBRARY: the math
    library, the shared GEMM helpers, their jit glue). Numba's cache checks only the kernel's
    own file, not the functions it calls (checked): they are part of the kernel cache key,
    or cached kernels keep the old math after an edit of the library.
    The files are read from disk, not imported, so naming a kernel does not import numba."""
    here = pathlib.Path(__file__).parent
    return hashlib.sha256(b"".join((here / f).read_bytes()
                                   for f in KERNEL_LIBRARY)).hexdigest()[:16]


def kernel_key(source):
    """Cache key: the source's code (it encodes graph, options and flags; not its comments,
    which name the vars) and every version that changes what the source compiles to.

    Graphs that differ only in the names of their vars and dims, or in the values of their
    constant arrays (kernel arguments), render the same code and share one compiled kernel.

    >>> kernel_key("def kernel(x):  # x = weights") == kernel_key("def kernel(x):  # x = w")
    True
    >>> len(kernel_key("def kernel(): return 0"))
    24
    """
    h = hashlib.sha256(code_of(source).encode())
    for part in _versions():
        h.update(part.encode())
    return h.hexdigest()[:24]


def code_of(source):
    """``source`` without its comments and blank lines: what Numba compiles of it.

    >>> code_of("def f(a0):  # a0 = x\n    # a note\n\n    return a0 + 1  # add\n")
    'def f(a0):\n    return a0 + 1'
    """
    lines = source.splitlines()
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                lines[row - 1] = lines[row - 1][:col].rstrip()
    except (tokenize.TokenError, SyntaxError):   # not Python: all of it is code
        return source
    return "\n".join(line for line in lines if line.strip())


def cache_dir():
    """Root of the kernel cache: $SYMDIFF_CACHE_DIR, else $XDG_CACHE_HOME/symdiff/kernels."""
    from symdiff.cost import user_cache
    env = os.environ.get("SYMDIFF_CACHE_DIR")
    return pathlib.Path(env) if env else user_cache("kernels")
