"""Special functions for emitted kernels: lgamma, digamma, polygamma, erf, erfc, log_ndtr.

The rules of ``codegen/mathlib.py`` hold here too (plain Python in the numba-compatible
subset, no numba import, float32 functions use float32 constants only; ``codegen/jit.py``
clones every function of this module next to mathlib's). Unlike mathlib's functions these
branch and loop, so they do not vectorize; what they own is accuracy and SciPy's special
values. For the same reason jit.py does not inline the public ones into kernels: each compiles
once (~1 s, then it loads from Numba's disk cache) and kernels call it, where every inlined
call site would cost that compile time again (measured: a kernel with polygamma of orders 1 and 2 compiled in 2.7 s
inlined, 1.2 s called; the helpers starting with ``_`` inline into them).

- lgamma, erf, erfc: the C library's (numba lowers ``math.lgamma``/``erf``/``erfc`` to libm's
  lgamma/erf/erfc for float64 and lgammaf/erff/erfcf for float32), with scipy.special's values
  at poles and infinities where they differ from libm's.
- digamma: reflection psi(x) = psi(1 - x) - pi cot(pi x) for x < 0 (the fraction of x taken
  exactly first), recurrence into [1, 2] below the asymptotic range, and there
  psi(x) = (x - x0) R(x) with x0 the positive root (split in two parts, so that digamma keeps
  its relative accuracy next to the root) and R a Chebyshev interpolant (computed in mpmath,
  60 digits: degree 22 for float64, 10 for float32); log(x) - 1/(2x) - sum B_2k/(2k x^2k) above
  (x >= 10, 8 terms; float32 x >= 6, 4 terms).
- polygamma(n, x), n >= 1: psi^(n)(x) = (-1)^(n+1) n! Z(x) with Z(x) = sum_k (x + k)^-(n+1)
  (Hurwitz zeta). For x >= 0: the first terms summed until x + k >= 10 + n (float32: 5 + n),
  the tail by Euler-Maclaurin, w^-n (1/n + 1/(2w) + sum_k B_2k (n+1)...(n+2k-1)/(2k)! w^-2k)
  (10 terms; float32: 5). For x < 0 the reflection
  psi^(n)(x) = (-1)^n psi^(n)(1 - x) - pi^(n+1) cot^(n)(pi x), with cot^(n)(y) = D_n(cot y) a
  polynomial (a table of exact coefficients for n <= 24) and cot(pi x) taken from the exact
  fraction of x; orders above 24 sum instead (x = r - N, N integer, |r| <= 1/2):
  Z(x) = r^-(n+1) + Z(1 + r) + (-1)^(n+1) (Z(1 - r) - Z(N + 1 - r)). Either way the cost does
  not grow with |x| (SciPy's does).
- log_ndtr(x) = log Phi(x): log1p(-erfc(x/sqrt 2)/2) for x > 0, log(erfc(-x/sqrt 2)/2) down to
  x = -20 (float32: -10), below that the asymptotic series
  -x^2/2 - log(-x) - log(2 pi)/2 + log1p(sum_k (-1)^k (2k-1)!! / x^2k) (8 terms; float32: 5).

Errors are measured against scipy.special (float64; float32: SciPy's float64 result rounded)
by ``tests/codegen/test_specialmath.py``; ``BOUNDS`` holds them (see there for the error
measure of each function).
"""
import math

import numpy as np

from .mathlib import (F32, INF, INF_F32, NAN, NAN_F32, NINF, NINF_F32, ONE_F32, ZERO_F32, HALF_F32,
                      TWO_F32, log1p_f32, log1p_f64, log_f32, log_f64, mul_sub, strict_sub)

# ---------------------------------------------------------------------------------------------
# float64 constants

PI = 3.141592653589793
SQRT1_2 = 0.7071067811865476
HALF_LOG_2PI = 0.9189385332046728              # log(2 pi) / 2
DIGAMMA_ROOT_HI = 1.4616321449683622           # the positive root of digamma to 53 bits
DIGAMMA_ROOT_LO = 9.549995429965697e-17        # root - DIGAMMA_ROOT_HI
DIGAMMA_ASYMPTOTIC = 10.0                      # the series below has error < 2e-18 from here
POLYGAMMA_ASYMPTOTIC = 10.0                    # + n: the tail series has error < 1e-17 (n <= 60)
LOG_NDTR_ASYMPTOTIC = -20.0

# R(x) = digamma(x) / (x - x0) on [1, 2], in powers of u = x - 1.5; |error| < 3e-18 R
DIGR = (0.9510558760318328, -0.4236274212814606, 0.24054248424078697, -0.14840492305388092,
        0.09498872445289039, -0.06192213327548831, 0.040760833940846085, -0.026975796659787055,
        0.017907248317313294, -0.011908220105959716, 0.007927021796868154,
        -0.005279937255532708, 0.003518106563802472, -0.0023454947397380833,
        0.0015633696313653504, -0.0010364584817312839, 0.0006909255761282986,
        -0.00048595039220036254, 0.00032395945401345196, -0.00014480643368061614,
        9.653646261410062e-05, -0.0001782188548855923, 0.00011881232908510335)
# B_2k / (2k), k = 1..8: digamma(x) ~ log x - 1/(2x) - sum_k DIGA[k-1] x^-2k
DIGA = (1 / 12, -1 / 120, 1 / 252, -1 / 240, 1 / 132, -691 / 32760, 1 / 12, -3617 / 8160)
# Bernoulli numbers B_2 .. B_20
BERNOULLI = (1 / 6, -1 / 30, 1 / 42, -1 / 30, 5 / 66, -691 / 2730, 7 / 6, -3617 / 510,
             43867 / 798, -174611 / 330)
# (-1)^k (2k - 1)!!, k = 1..8: log_ndtr's asymptotic series in z = 1/x^2
NDTRA = (-1.0, 3.0, -15.0, 105.0, -945.0, 10395.0, -135135.0, 2027025.0)
REFLECT_MAX = 24                               # polygamma orders with a cot-derivative row


def _cot_derivatives(nmax):
    """Row n: the coefficients of D_n in powers of c, d^n/dy^n cot(y) = D_n(cot y):
    D_0 = c, D_(k+1)(c) = -(1 + c^2) D_k'(c). Exact integers; each row's nonzero coefficients
    share one sign and one parity of power, so D_n(c) evaluates without cancellation."""
    rows = [[0, 1]]
    for _ in range(nmax):
        d = [i * a for i, a in enumerate(rows[-1])][1:]
        rows.append([-(d[i] if i < len(d) else 0) - (d[i - 2] if i >= 2 else 0)
                     for i in range(len(d) + 2)])
    table = np.zeros((nmax + 1, nmax + 2))
    for n, row in enumerate(rows):
        table[n, :len(row)] = row
    return table


COT_DERIVATIVES = _cot_derivatives(REFLECT_MAX)


def _horner(coef, u):
    """sum_k coef[k] u^k."""
    p = coef[len(coef) - 1]
    for k in range(len(coef) - 2, -1, -1):
        p = coef[k] + u * p
    return p


def _cot_derivative(table, n, c):
    """D_n(c), the n-th derivative of cot(y) where cot(y) = c (row n of ``table``, degree
    n + 1; only its own entries, so that c = inf at a pole gives +-inf, not 0 * inf)."""
    p = table[n, n + 1]
    for k in range(n, -1, -1):
        p = table[n, k] + c * p
    return p


def _powi(b, k, one):
    """b^k for an integer k >= 0 by repeated squaring; ``one`` is 1 in b's type."""
    r = one
    while k > 0:
        if k & 1:
            r = r * b
        b = b * b
        k = k >> 1
    return r


# ---------------------------------------------------------------------------------------------
# float64 functions


def lgamma_f64(x):
    """log|Gamma(x)|, float64: libm's lgamma with scipy.special.gammaln's special values.

    Poles x = 0, -1, -2, ... -> inf; -inf -> -inf (SciPy's choice; libm gives inf);
    NaN -> NaN. Measured max error vs SciPy: see BOUNDS (relative for x > 0, absolute
    near the roots at 1 and 2 and on x < 0, where both libraries lose relative accuracy).
    """
    pole = (x <= 0.0) & (np.floor(x) == x)
    y = math.lgamma(1.0 if pole else x)      # un-jitted math.lgamma raises at a pole
    y = INF if pole else y
    return NINF if x == NINF else y


def erf_f64(x):
    """erf(x), float64: libm's erf. Measured max relative error vs SciPy: see BOUNDS."""
    return math.erf(x)


def erfc_f64(x):
    """erfc(x), float64: libm's erfc. Measured max relative error vs SciPy: see BOUNDS."""
    return math.erfc(x)


def _digamma_pos_f64(x, c):
    """digamma(x + c) for x >= 0, +inf and NaN (digamma(+0) = -inf, digamma(-0) = +inf) and a
    correction |c| <= ulp(x) / 2, kept where it matters: next to the root (through x - x0)."""
    acc = 0.0
    if x < 1.0:                                  # psi(x) = psi(x + 1) - 1/x
        acc = -1.0 / x
        x = x + 1.0
    if x >= DIGAMMA_ASYMPTOTIC:
        z = 1.0 / (x * x)
        return acc + (log_f64(x) - (0.5 / x + z * _horner(DIGA, z)))
    while x > 2.0:                               # psi(x) = psi(x - 1) + 1/(x - 1), exact x - 1
        x = x - 1.0
        acc = acc + 1.0 / x
    g = strict_sub(strict_sub(x, DIGAMMA_ROOT_HI), DIGAMMA_ROOT_LO) + c   # x + c - x0
    return acc + g * _horner(DIGR, x - 1.5)


def digamma_f64(x):
    """digamma(x) = Gamma'(x) / Gamma(x), float64, with scipy.special.psi's special values.

    digamma(+0) = -inf, digamma(-0) = +inf, negative integers and -inf -> NaN, +inf -> inf.
    Method: see the module docstring. Measured max error vs SciPy: see BOUNDS.
    """
    neg = x < 0.0
    u = 1.0 - x                                  # psi(1 - x) = psi(u + c), c exact for x > -1
    c = strict_sub(strict_sub(1.0, u), x) if neg else 0.0
    y = _digamma_pos_f64(u if neg else x, c)     # one call site: inlined once (compile time)
    r = x - np.rint(x)                           # exact, |r| <= 1/2: cot(pi x) = cot(pi r)
    y = y - PI * _cot_pi_f64(r) if neg else y
    return NAN if neg & (r == 0.0) else y


def _cot_pi_f64(r):
    """cot(pi r) for |r| <= 1/2, with relative accuracy: for |r| > 1/4 as -tan(pi (r -+ 1/2))
    (an exact shift; pi r itself would lose accuracy next to the zero at r = 1/2)."""
    far = abs(r) > 0.25
    t = np.tan(PI * (r - np.copysign(0.5, r) if far else r))
    return -t if far else 1.0 / t


def _hurwitz_f64(n, x):
    """Z(x) = sum_{k >= 0} (x + k)^-(n+1) for x >= 0 (or -0), +inf, NaN; n >= 1."""
    w = abs(x)                                   # -0 -> +0: the pole's infinity is +inf
    s = 0.0
    top = POLYGAMMA_ASYMPTOTIC + n
    while w < top:
        s = s + _powi(1.0 / w, n + 1, 1.0)            # (1/w)^(n+1): no premature underflow of w^(n+1)
        w = w + 1.0
    z = 1.0 / w
    z2 = z * z
    nf = np.float64(n)
    p = (nf + 1.0) * 0.5                         # (n+1)...(n+2k-1) / (2k)!, k = 1
    tail = 0.0
    zk = z2
    for k in range(1, len(BERNOULLI) + 1):
        tail = tail + BERNOULLI[k - 1] * p * zk
        p = p * (nf + 2 * k) * (nf + 2 * k + 1) / ((2 * k + 1) * (2 * k + 2))
        zk = zk * z2
    return s + _powi(z, n, 1.0) * (1.0 / nf + 0.5 * z + tail)


def polygamma_f64(n, x):
    """The n-th derivative of digamma (n >= 1 an integer; order 0 is digamma_f64), float64,
    with scipy.special.polygamma's special values.

    Poles (x = 0, -1, -2, ..., and -inf) -> (-1)^(n+1) inf, +inf -> 0, NaN -> NaN.
    Method: see the module docstring. Measured max error: see BOUNDS (n = 1, 2, 3).
    """
    fact = 1.0
    for j in range(2, n + 1):
        fact = fact * j
    odd = n % 2 == 1
    neg = x < 0.0
    sums = neg & (n > REFLECT_MAX)               # no cot-derivative row: the three sums
    rx = np.rint(x) if neg else 0.0
    r = x - rx                                   # exact; r = 0 at a pole: 1/r = inf
    total = _powi(1.0 / r, n + 1, 1.0) if sums else 0.0
    for j in range(3 if sums else 1):            # one inlined Z, up to three arguments
        a = (1.0 + r if j == 0 else 1.0 - r if j == 1 else 1.0 - rx - r) if sums else \
            1.0 - x if neg else x
        c = 1.0 if j == 0 or odd == (j == 1) else -1.0    # (-1)^(n+1) (Z(1-r) - Z(N+1-r))
        total = total + c * _hurwitz_f64(n, a)
    y = (fact if odd else -fact) * total         # (-1)^(n+1) n! Z(a)
    if neg and not sums:                         # (-1)^n psi^(n)(1 - x) - pi^(n+1) D_n(cot pi x)
        d = _cot_derivative(COT_DERIVATIVES, n, _cot_pi_f64(r))
        y = (-y if odd else y) - _powi(PI, n + 1, 1.0) * d
    return (fact if odd else -fact) * INF if x == NINF else y


def log_ndtr_f64(x):
    """log of the standard normal CDF, log(erfc(-x/sqrt 2) / 2), float64, finite for finite x.

    -inf -> -inf, +inf -> 0, NaN -> NaN. Method: see the module docstring; one erfc, one log
    and one log1p serve all three ranges (each inlined once: compile time).
    Measured max relative error vs scipy.special.log_ndtr: see BOUNDS.
    """
    pos = x > 0.0
    tail = not x > LOG_NDTR_ASYMPTOTIC           # and NaN
    e = math.erfc(x * -SQRT1_2 if not pos else x * SQRT1_2)
    z = 1.0 / (x * x)
    s = z * _horner(NDTRA, z)
    lg = log_f64(-x if tail else 0.5 * e)        # log(-x), or log Phi(x) = log(erfc(-t) / 2)
    l1 = log1p_f64(-0.5 * e if pos else s)       # log(1 - erfc(t) / 2), or the series' log1p
    y = l1 if pos else lg
    tail_value = mul_sub(-(lg + (HALF_LOG_2PI - l1)), 0.5 * x, x)   # no x*x: overflows early
    return tail_value if tail else y


# ---------------------------------------------------------------------------------------------
# float32 constants

PI_F32 = F32(PI)
SQRT1_2_F32 = F32(SQRT1_2)
HALF_LOG_2PI_F32 = F32(HALF_LOG_2PI)
ONE_AND_HALF_F32 = F32(1.5)
QUARTER_F32 = F32(0.25)
DIGAMMA_ROOT_HI_F32 = F32(1.4616321325302124)
DIGAMMA_ROOT_LO_F32 = F32(1.243815006546356e-08)
DIGAMMA_ASYMPTOTIC_F32 = F32(6.0)
POLYGAMMA_ASYMPTOTIC_F32 = F32(5.0)
LOG_NDTR_ASYMPTOTIC_F32 = F32(-10.0)
DIGR_F32 = tuple(F32(c) for c in (
    0.9510558843612671, -0.42362749576568604, 0.24054253101348877, -0.14839886128902435,
    0.09498468786478043, -0.062055978924036026, 0.04085002839565277, -0.025786884129047394,
    0.017114989459514618, -0.016373619437217712, 0.01090258825570345))
DIGA_F32 = tuple(F32(c) for c in DIGA[:4])
COT_DERIVATIVES_F32 = COT_DERIVATIVES.astype(np.float32)      # |coefficients| <= 6.2e25
BERNOULLI_F32 = tuple(F32(c) for c in BERNOULLI[:5])
NDTRA_F32 = tuple(F32(c) for c in NDTRA[:5])

# ---------------------------------------------------------------------------------------------
# float32 functions: the float64 algorithms with float32 constants and fewer terms


def lgamma_f32(x):
    """log|Gamma(x)|, float32: libm's lgammaf, special values as lgamma_f64.

    Measured max error vs SciPy (float64, rounded): see BOUNDS.
    """
    pole = (x <= ZERO_F32) & (np.floor(x) == x)
    y = F32(math.lgamma(ONE_F32 if pole else x))
    y = INF_F32 if pole else y
    return NINF_F32 if x == NINF_F32 else y


def erf_f32(x):
    """erf(x), float32: libm's erff. Measured max relative error vs SciPy: see BOUNDS."""
    return F32(math.erf(x))


def erfc_f32(x):
    """erfc(x), float32: libm's erfcf. Measured max relative error vs SciPy: see BOUNDS."""
    return F32(math.erfc(x))


def _digamma_pos_f32(x, c):
    """digamma(x + c) for x >= 0, +inf and NaN, float32 (see _digamma_pos_f64)."""
    acc = ZERO_F32
    if x < ONE_F32:
        acc = -ONE_F32 / x
        x = x + ONE_F32
    if x >= DIGAMMA_ASYMPTOTIC_F32:
        z = ONE_F32 / (x * x)
        return acc + (log_f32(x) - (HALF_F32 / x + z * _horner(DIGA_F32, z)))
    while x > TWO_F32:
        x = x - ONE_F32
        acc = acc + ONE_F32 / x
    g = strict_sub(strict_sub(x, DIGAMMA_ROOT_HI_F32), DIGAMMA_ROOT_LO_F32) + c
    return acc + g * _horner(DIGR_F32, x - ONE_AND_HALF_F32)


def digamma_f32(x):
    """digamma(x), float32: digamma_f64's method and special values.

    Measured max error vs SciPy (float64, rounded): see BOUNDS.
    """
    neg = x < ZERO_F32
    u = ONE_F32 - x
    c = strict_sub(strict_sub(ONE_F32, u), x) if neg else ZERO_F32
    y = _digamma_pos_f32(u if neg else x, c)
    r = x - np.rint(x)
    y = y - PI_F32 * _cot_pi_f32(r) if neg else y
    return NAN_F32 if neg & (r == ZERO_F32) else y


def _cot_pi_f32(r):
    """cot(pi r) for |r| <= 1/2, float32 (see _cot_pi_f64)."""
    far = abs(r) > QUARTER_F32
    t = np.tan(PI_F32 * (r - np.copysign(HALF_F32, r) if far else r))
    return -t if far else ONE_F32 / t


def _hurwitz_f32(n, x):
    """Z(x) = sum_{k >= 0} (x + k)^-(n+1), float32 (see _hurwitz_f64)."""
    w = abs(x)
    s = ZERO_F32
    top = POLYGAMMA_ASYMPTOTIC_F32 + F32(n)
    while w < top:
        s = s + _powi(ONE_F32 / w, n + 1, ONE_F32)
        w = w + ONE_F32
    z = ONE_F32 / w
    z2 = z * z
    nf = F32(n)
    p = (nf + ONE_F32) * HALF_F32
    tail = ZERO_F32
    zk = z2
    for k in range(1, len(BERNOULLI_F32) + 1):
        tail = tail + BERNOULLI_F32[k - 1] * p * zk
        p = p * (nf + F32(2 * k)) * (nf + F32(2 * k + 1)) / F32((2 * k + 1) * (2 * k + 2))
        zk = zk * z2
    return s + _powi(z, n, ONE_F32) * (ONE_F32 / nf + HALF_F32 * z + tail)


def polygamma_f32(n, x):
    """The n-th derivative of digamma (n >= 1), float32: polygamma_f64's method and special
    values. Measured max error: see BOUNDS (n = 1, 2, 3).
    """
    fact = ONE_F32
    for j in range(2, n + 1):
        fact = fact * F32(j)
    odd = n % 2 == 1
    neg = x < ZERO_F32
    sums = neg & (n > REFLECT_MAX)
    rx = np.rint(x) if neg else ZERO_F32
    r = x - rx
    total = _powi(ONE_F32 / r, n + 1, ONE_F32) if sums else ZERO_F32
    for j in range(3 if sums else 1):
        a = (ONE_F32 + r if j == 0 else ONE_F32 - r if j == 1 else ONE_F32 - rx - r) if sums \
            else ONE_F32 - x if neg else x
        c = ONE_F32 if j == 0 or odd == (j == 1) else -ONE_F32
        total = total + c * _hurwitz_f32(n, a)
    y = (fact if odd else -fact) * total
    if neg and not sums:
        d = _cot_derivative(COT_DERIVATIVES_F32, n, _cot_pi_f32(r))
        y = (-y if odd else y) - _powi(PI_F32, n + 1, ONE_F32) * d
    return (fact if odd else -fact) * INF_F32 if x == NINF_F32 else y


def log_ndtr_f32(x):
    """log of the standard normal CDF, float32: log_ndtr_f64's method, asymptotic below -10.

    Measured max relative error vs SciPy (float64, rounded): see BOUNDS.
    """
    pos = x > ZERO_F32
    tail = not x > LOG_NDTR_ASYMPTOTIC_F32
    e = F32(math.erfc(x * -SQRT1_2_F32 if not pos else x * SQRT1_2_F32))
    z = ONE_F32 / (x * x)
    s = z * _horner(NDTRA_F32, z)
    lg = log_f32(-x if tail else HALF_F32 * e)
    l1 = log1p_f32(-HALF_F32 * e if pos else s)
    y = l1 if pos else lg
    tail_value = mul_sub(-(lg + (HALF_LOG_2PI_F32 - l1)), HALF_F32 * x, x)
    return tail_value if tail else y


# ---------------------------------------------------------------------------------------------
# Tables

FUNCTIONS = {
    ("lgamma", "float64"): lgamma_f64, ("lgamma", "float32"): lgamma_f32,
    ("digamma", "float64"): digamma_f64, ("digamma", "float32"): digamma_f32,
    ("polygamma", "float64"): polygamma_f64, ("polygamma", "float32"): polygamma_f32,
    ("erf", "float64"): erf_f64, ("erf", "float32"): erf_f32,
    ("erfc", "float64"): erfc_f64, ("erfc", "float32"): erfc_f32,
    ("log_ndtr", "float64"): log_ndtr_f64, ("log_ndtr", "float32"): log_ndtr_f32,
}
"""(function name, dtype name) -> scalar function (polygamma takes (n, x), the others x)."""

# Documented max error against mpmath (40 digits) at the function's own float inputs, in the
# function's error measure (tests/codegen/test_specialmath.py):
# - relative error, with the smallest normal number as the least unit (denormal results);
# - digamma and polygamma, x < 0: in units of |psi^(n)(1 - x)| + |pi^(n+1) cot^(n)(pi x)|, the
#   terms of the reflection formula (next to the roots on the negative axis no floating-point
#   evaluation keeps relative accuracy);
# - log_ndtr: relative error per max(1, x^2): for x > 1 the rounding of x / sqrt 2 costs up to
#   x^2 eps/2 (1.7e-13 at x = 37), as in SciPy's and PyTorch's log_ndtr.
# Each bound is the maximum measured over 23000-30000 inputs per function and dtype (where the
# function does its real work, edges, poles, log-uniform magnitudes), under both the kernel
# fast-math flags and no fast-math, rounded up. polygamma's bounds hold for n = 1, 2, 3. One
# float64 ulp is 1.1e-16..2.2e-16 relative, one float32 ulp 6e-8..1.2e-7.
BOUNDS = {
    ("lgamma", "float64"): 5e-16, ("lgamma", "float32"): 3e-7,
    ("digamma", "float64"): 7e-16, ("digamma", "float32"): 2.5e-7,
    ("polygamma1", "float64"): 7e-16, ("polygamma1", "float32"): 3.5e-7,
    ("polygamma2", "float64"): 9e-16, ("polygamma2", "float32"): 5e-7,
    ("polygamma3", "float64"): 1.3e-15, ("polygamma3", "float32"): 6.5e-7,
    ("erf", "float64"): 1.5e-16, ("erf", "float32"): 8e-8,
    ("erfc", "float64"): 3.5e-16, ("erfc", "float32"): 2e-7,
    ("log_ndtr", "float64"): 3.5e-16, ("log_ndtr", "float32"): 1.5e-7,
}
