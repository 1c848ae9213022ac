"""Shared kernel helpers: matrix products whose size a kernel learns only at run time
(``c = a @ b`` written into ``c``) and the scratch views of output memory.

A kernel calls one of these (through ``symdiff.codegen.jit``, which compiles them once per
dtype/layout with Numba's disk cache) instead of carrying both a loop nest and an ``np.dot``
branch per product: one call in the kernel instead of ~10 lines, so Numba types and lowers
the product once per library, not once per kernel. The choice is made here per call: loops for
at most ``SMALL_GEMM`` multiply-adds (a BLAS call costs ~0.3 us, more than a 2x2x4 product),
BLAS otherwise. ``m`` marks a matrix operand, ``v`` a vector (numpy.matmul's vector cases).

Plain Python in Numba's subset (only ``codegen/jit.py`` imports numba); they also run un-jitted:

>>> import numpy as np
>>> c = np.empty((2, 2)); gemm_mm(np.eye(2), np.arange(4.0).reshape(2, 2), c); c.tolist()
[[0.0, 1.0], [2.0, 3.0]]
"""
import numpy as np

SMALL_GEMM = 4096      # multiply-adds below which loops beat a BLAS call (~0.3 us each)


def gemm_mm(a, b, c):
    """c[i, j] = sum_k a[i, k] b[k, j]."""
    m, kk, n = a.shape[0], a.shape[1], b.shape[1]
    if m * n * kk > SMALL_GEMM:
        np.dot(a, b, c)
        return
    for i in range(m):
        for j in range(n):
            c[i, j] = 0                   # the accumulator takes c's dtype
            acc = c[i, j]
            for k in range(kk):
                acc += a[i, k] * b[k, j]
            c[i, j] = acc


def gemm_mv(a, b, c):
    """c[i] = sum_k a[i, k] b[k]."""
    m, kk = a.shape[0], a.shape[1]
    if m * kk > SMALL_GEMM:
        np.dot(a, b, c)
        return
    for i in range(m):
        c[i] = 0
        acc = c[i]
        for k in range(kk):
            acc += a[i, k] * b[k]
        c[i] = acc


def gemm_vm(a, b, c):
    """c[j] = sum_k a[k] b[k, j]."""
    kk, n = b.shape[0], b.shape[1]
    if n * kk > SMALL_GEMM:
        np.dot(a, b, c)
        return
    for j in range(n):
        c[j] = 0
        acc = c[j]
        for k in range(kk):
            acc += a[k] * b[k, j]
        c[j] = acc


def gemm_vv(a, b, c):
    """c[()] = sum_k a[k] b[k] (c 0-d)."""
    c[()] = 0
    acc = c[()]
    for k in range(a.shape[0]):
        acc += a[k] * b[k]
    c[()] = acc


def scratch(out, arena, start, n):
    """The first ``n`` elements of ``out``'s memory if it has that many, else of the arena
    from ``start``: where a kernel keeps a temporary until it writes the output. A call, not
    an inline ``(a if c else b)``: that one conditional cost ~0.15 s of Numba's compile per
    view (measured, XOR: 3 views, 1.7 -> 1.25 s CPU time)."""
    if out.size >= n:
        return out.ravel()[:n]
    return arena[start:start + n]


def scratch_nd(out, arena, start, shape):
    """``scratch`` of prod(shape) elements as an array of ``shape``, a tuple of int64 (a
    literal int in it would make Numba compile this helper once per constant). The reshape
    is compiled once here, not in every kernel: ~70 ms of Numba for the XOR kernel's two
    views (1.00 -> 0.85 s of cold compile, measured).

    >>> import numpy as np
    >>> scratch_nd(np.zeros(3), np.arange(8.0), 2, (np.int64(2), np.int64(2))).tolist()
    [[2.0, 3.0], [4.0, 5.0]]
    """
    n = 1
    for d in shape:
        n *= d
    if out.size >= n:
        return out.ravel()[:n].reshape(shape)
    return arena[start:start + n].reshape(shape)


def arena_view(arena, start, shape):
    """The arena's prod(shape) elements from ``start`` as an array of ``shape`` (a workspace
    slot; ``shape`` as for ``scratch_nd``)."""
    n = 1
    for d in shape:
        n *= d
    return arena[start:start + n].reshape(shape)


GEMMS = ("gemm_mm", "gemm_mv", "gemm_vm", "gemm_vv")     # fast-math and strict copies
FUNCTIONS = GEMMS + ("scratch", "scratch_nd", "arena_view")
