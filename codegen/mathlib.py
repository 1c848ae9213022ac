"""Vectorizable scalar math for emitted kernels: exp, log, log1p, expm1, tanh, sigmoid, softplus.

Why: inside ``@njit``, ``np.exp``/``np.tanh`` call scalar libm once per element, which stops
LLVM from vectorizing a fused loop (tanh: ~15 ns/element). These functions use arithmetic,
comparisons (compiled to selects, not branches) and integer bit manipulation only, so once
inlined into a loop the whole body vectorizes (AVX2/AVX-512 here).

Rules of this module:

- No numba import (only ``codegen/jit.py`` imports numba). The functions are plain Python in
  the numba-compatible subset; they also run un-jitted (slowly) on NumPy scalars, which is what
  the pure-Python primitives below are for (un-jitted, special inputs may raise NumPy
  RuntimeWarnings from intermediates that the final selects discard; results are right).
- ``codegen/jit.py`` re-creates every public function of this module as a disk-cached,
  ``alwaysinline`` njit function compiled in the kernels' fast-math flags (and a ``_strict``
  copy without them, for kernels of fastmath=False), with its globals pointing to the jitted
  versions, and replaces the names in ``PRIMITIVES`` by LLVM intrinsics: the bit casts, and
  the "protected" arithmetic ``mul_sub``, ``strict_add``, ``strict_sub``. LLVM inlines them
  into the kernel's loop; everything else here carries the kernels' fast-math flags; the protected instructions keep fixed flags (no
  ``reassoc``), so a kernel compiled with ``reassoc`` cannot fold the Cody-Waite split
  ``x - k*LN2_HI - k*LN2_LO`` into ``x - k*LN2`` (measured: 2.4e-14 error in exp) nor
  reorder the final sums of exp and log (measured: 2 ulp instead of 1).
- float32 functions use float32 constants only (a bare Python float promotes to float64 and
  halves the speed; a test asserts there is no ``double`` in the float32 kernels' LLVM IR).
  Numba widens int32 arithmetic to int64; the float32 bit casts truncate, and where a shift
  must stay 32-bit (``_split_f32``) an explicit ``np.int32`` lets LLVM keep 32-bit lanes
  (measured: log_f32 10.6 -> 6.1 us per 128x256).
- Special values: NaN in -> NaN out; +-inf, overflow and underflow as NumPy (gradual underflow
  to denormals included). The sign of a zero result is NumPy's without the ``nsz`` flag, and
  is not guaranteed under ``nsz``.

Errors are measured against NumPy in float64 (for float32: NumPy's float64 result rounded to
float32) by ``tests/codegen/test_mathlib.py``, as relative error |y - ref| / |ref|; where the
reference is 0 or denormal the absolute error is counted in units of the smallest denormal.
``BOUNDS`` holds the documented bound per function; the tests assert it under both the kernel
fast-math flags {nsz, arcp, contract, afn, reassoc} and no fast-math.

Polynomial coefficients are degree-n Chebyshev interpolants computed in mpmath (60 digits) on
a range 1% wider than the reduced argument's, then rounded to the target precision:
exp: q(r) = (exp(r) - 1 - r) / r^2 on |r| <= 0.35; log: P(z) = (2 atanh(s) - 2 s) / s^3,
z = s^2, on 0 <= z <= 0.03 (s = f / (2 + f), f in [sqrt(1/2) - 1, sqrt(2) - 1]).
"""
import numpy as np

# ---------------------------------------------------------------------------------------------
# Primitives. jit.py replaces these by intrinsics; here they are pure-Python equivalents.


def bits_f64(x):
    """The IEEE-754 bits of a float64 as an int64."""
    return np.float64(x).view(np.int64)


def f64_from_bits(i):
    """The float64 whose bits are the int64 i."""
    return np.int64(i).view(np.float64)


def bits_f32(x):
    """The IEEE-754 bits of a float32 as an int32."""
    return np.float32(x).view(np.int32)


def f32_from_bits(i):
    """The float32 whose bits are the low 32 bits of the integer i."""
    return np.int64(i).astype(np.int32).view(np.float32)


def mul_sub(a, b, c):
    """a - b*c, never reassociated with the surrounding code (contraction to FMA allowed)."""
    return a - b * c


def strict_add(a, b):
    """a + b, never reassociated with the surrounding code."""
    return a + b


def strict_sub(a, b):
    """a - b, never reassociated with the surrounding code."""
    return a - b


PRIMITIVES = ("bits_f64", "f64_from_bits", "bits_f32", "f32_from_bits", "mul_sub", "strict_add",
              "strict_sub")

# ---------------------------------------------------------------------------------------------
# float64 constants

INF = np.inf
NINF = -np.inf
NAN = np.nan
LOG2E = 1.4426950408889634                 # 1/ln2
LN2_HI = 6.93147180369123816490e-01        # ln2 rounded to 33 bits: k*LN2_HI is exact, |k|<2^20
LN2_LO = 1.90821492927058770002e-10        # ln2 - LN2_HI
EXP_OVERFLOW = 709.782712893384            # largest x with finite exp(x) (expm1 too); x is
                                           # clamped to it: k <= 1024 and 2^k exp(r) finite
EXP_CLAMP_LO = -746.0                      # exp(-746) rounds to 0; keeps k >= -1077
EXPM1_CLAMP_LO = -40.0                     # expm1(x) rounds to -1 below -37.5; keeps k >= -58
MIN_NORMAL_K = -1021                       # p*2^k is normal for p >= 1/2 and k >= -1021
DENORMAL_SHIFT = 64                        # scale by 2^(k+64), then by 2^-64 (one rounding)
TWO_M64 = 2.0 ** -64
DBL_MIN = 2.2250738585072014e-308          # smallest normal float64
TWO_P54 = 2.0 ** 54                        # lifts a denormal into the normal range
TINY_F64 = 2.0 ** -54                      # expm1(x) = log1p(x) = x (rounded) below this
SQRT_HALF_BITS_F64 = 0x3FE6A09E667F3BCD    # bits of sqrt(1/2): the mantissa split point
ABS_MASK_F64 = 0x7FFFFFFFFFFFFFFF
SIGN_MASK_F64 = -0x8000000000000000
TANH_CLAMP_F64 = 20.0                      # tanh(x) rounds to +-1 for |x| > 19.06

# q(r) = (exp(r) - 1 - r) / r^2, degree 9 (exp(r) is then degree 11); |error| < 3e-16 * q
EXPQ0 = 0.5000000000000001
EXPQ1 = 0.16666666666666669
EXPQ2 = 0.04166666666662061
EXPQ3 = 0.008333333333329791
EXPQ4 = 0.0013888888918952918
EXPQ5 = 0.00019841269864391087
EXPQ6 = 2.480151862045023e-05
EXPQ7 = 2.7557266402504823e-06
EXPQ8 = 2.762134843705726e-07
EXPQ9 = 2.510135443993923e-08

# P(z), 2 atanh(s) = 2 s + s^3 P(s^2), degree 6; |error| < 6e-16 * P
LOGP0 = 0.666666666666667
LOGP1 = 0.39999999999886615
LOGP2 = 0.28571428631764334
LOGP3 = 0.2222221019926421
LOGP4 = 0.18182956608063458
LOGP5 = 0.15329500754204178
LOGP6 = 0.14643628601909797

# ---------------------------------------------------------------------------------------------
# float64 functions


def _expm1_poly_f64(r):
    """expm1(r) for |r| <= 0.35 as r + r^2 q(r): the leading term exact, relative accuracy."""
    q = EXPQ8 + r * EXPQ9
    q = EXPQ7 + r * q
    q = EXPQ6 + r * q
    q = EXPQ5 + r * q
    q = EXPQ4 + r * q
    q = EXPQ3 + r * q
    q = EXPQ2 + r * q
    q = EXPQ1 + r * q
    q = EXPQ0 + r * q
    return r + r * r * q


def _reduce_ln2_f64(x):
    """k, r with x = k ln2 + r, |r| <= ln2/2 (+ rounding), for finite |x| < 2^20."""
    kf = np.rint(x * LOG2E)
    # Cody-Waite: kf*LN2_HI and x - kf*LN2_HI are exact; LN2_HI + LN2_LO is ln2 to 86 bits
    r = mul_sub(mul_sub(x, kf, LN2_HI), kf, LN2_LO)
    return kf, r


def _ldexp_f64(p, k):
    """p * 2^k for p in [1/2, 2), -1077 <= k <= 1024, by adding k to the exponent bits.

    For k < MIN_NORMAL_K the result would be denormal: scale by 2^(k+64) (normal) and then
    multiply by 2^-64, so the only rounding is the final, correct gradual underflow.
    """
    tiny = k < MIN_NORMAL_K
    kk = k + DENORMAL_SHIFT if tiny else k
    tail = TWO_M64 if tiny else 1.0
    return f64_from_bits(bits_f64(p) + (kk << 52)) * tail


def exp_f64(x):
    """exp(x), float64.

    Method: x = k ln2 + r (Cody-Waite, |r| <= ln2/2), exp(r) = 1 + r + r^2 q(r) with q a
    degree-9 Chebyshev fit, 2^k added to the exponent bits (gradual underflow kept).
    x > 709.78 -> inf, x < -745.13 -> 0, NaN -> NaN.
    Measured max relative error vs NumPy: 2.2e-16 (1 ulp); denormal results within 1 unit of
    the smallest denormal.
    """
    xc = x if x < EXP_OVERFLOW else EXP_OVERFLOW       # NaN, +inf -> 709.78 (fixed below)
    xc = xc if xc > EXP_CLAMP_LO else EXP_CLAMP_LO    # -inf -> -746 -> 0
    kf, r = _reduce_ln2_f64(xc)
    p = strict_add(1.0, _expm1_poly_f64(r))
    y = _ldexp_f64(p, np.int64(kf))
    return y if x <= EXP_OVERFLOW else x + INF       # x > 709.78 -> inf, NaN -> NaN


def expm1_f64(x):
    """exp(x) - 1, float64, accurate relative to the result near 0.

    Method: as exp, then expm1(x) = 2^k expm1(r) + (2^k - 1); for k = 0 this is the
    polynomial itself with r = x exactly. 2^k - 1 is exact for the k where it matters. k = 1024
    is handled as 2^1023 and one more exponent step on the result.
    Measured max relative error vs NumPy: 2.7e-16 (near |x| = ln2/2, where 2^k expm1(r) and
    2^k - 1 partly cancel); 2.2e-16 near 0.
    """
    xc = x if x < EXP_OVERFLOW else EXP_OVERFLOW
    xc = xc if xc > EXPM1_CLAMP_LO else EXPM1_CLAMP_LO
    kf, r = _reduce_ln2_f64(xc)
    em = _expm1_poly_f64(r)
    k = np.int64(kf)
    top = 1 if k > 1023 else 0                        # 2^1024 is not a float64
    s = f64_from_bits((k - top + 1023) << 52)         # 2^(k - top)
    y = strict_add(s * em, s - 1.0)
    y = f64_from_bits(bits_f64(y) + (top << 52))      # times 2^top, exactly
    y = x if abs(x) < TINY_F64 else y                 # keeps -0.0 and denormals exact
    return y if x <= EXP_OVERFLOW else x + INF       # x > 709.78 -> inf, NaN -> NaN


def _expm1_finite_f64(x):
    """expm1(x) for finite -40 <= x <= 709 (no special values): 2^k expm1(r) + (2^k - 1)."""
    kf, r = _reduce_ln2_f64(x)
    s = f64_from_bits((np.int64(kf) + 1023) << 52)
    return strict_add(s * _expm1_poly_f64(r), s - 1.0)


def _split_f64(v):
    """kf, m with v = 2^kf * m, m in [sqrt(1/2), sqrt(2)), for positive normal v."""
    bits = bits_f64(v) & ABS_MASK_F64                 # sign dropped: negatives are fixed later
    k = (bits - SQRT_HALF_BITS_F64) >> 52
    m = f64_from_bits(bits - (k << 52))
    return np.float64(k), m


def _log1p_core_f64(f, kf, c):
    """kf ln2 + log(1 + f) + c for f in [sqrt(1/2) - 1, sqrt(2) - 1] and a small correction c.

    log(1 + f) = 2 atanh(s) = f - f^2/2 + s (f^2/2 + s^2 P(s^2)) with s = f / (2 + f); the
    large terms f and f^2/2 are added last (fdlibm's arrangement): error below 1 ulp.
    """
    s = f / (2.0 + f)
    z = s * s
    p = LOGP5 + z * LOGP6
    p = LOGP4 + z * p
    p = LOGP3 + z * p
    p = LOGP2 + z * p
    p = LOGP1 + z * p
    p = LOGP0 + z * p
    hfsq = 0.5 * f * f
    small = s * (hfsq + z * p) + (kf * LN2_LO + c)
    return strict_add(kf * LN2_HI, strict_sub(f, strict_sub(hfsq, small)))


def log_f64(x):
    """log(x), float64.

    Method: x = 2^k m with m in [sqrt(1/2), sqrt(2)) from the exponent bits (denormals first
    scaled by 2^54), log(m) = 2 atanh((m - 1)/(m + 1)) with a degree-6 polynomial in s^2.
    log(0) = -inf, log(x < 0) = NaN, log(inf) = inf, NaN -> NaN.
    Measured max relative error vs NumPy: 2.2e-16 (1 ulp), also near x = 1 and for denormals.
    """
    sub = x < DBL_MIN
    v = x * TWO_P54 if sub else x
    kf, m = _split_f64(v)
    kf = kf - 54.0 if sub else kf
    y = _log1p_core_f64(m - 1.0, kf, 0.0)
    y = y if x < INF else x                           # +inf -> inf, NaN -> NaN
    y = NINF if x == 0.0 else y
    return NAN if x < 0.0 else y


def _log1p_finite_f64(x):
    """log1p(x) for finite x > -1 (NaN -> NaN), without the special-value selects.

    u = 1 + x = 2^k m. If k = 0, log1p(x) = 2 atanh(x / (2 + x)) with f = x exactly;
    otherwise log(u) plus the rounding error of 1 + x, c = x - (u - 1) (exact), as c / u.
    """
    u = 1.0 + x
    kf, m = _split_f64(u)
    near = kf == 0.0
    f = x if near else m - 1.0
    c = 0.0 if near else strict_sub(x, strict_sub(u, 1.0)) / u
    return _log1p_core_f64(f, kf, c)


def log1p_f64(x):
    """log(1 + x), float64, accurate relative to the result near 0.

    Method: see _log1p_finite_f64; log1p(-1) = -inf, x < -1 -> NaN, inf -> inf, NaN -> NaN.
    Measured max relative error vs NumPy: 2.2e-16 (1 ulp), including tiny x and x near -1.
    """
    y = _log1p_finite_f64(x)
    y = x if abs(x) < TINY_F64 else y                 # keeps -0.0 and denormals exact
    y = y if x < INF else x                           # +inf -> inf, NaN -> NaN
    y = NINF if x == -1.0 else y
    return NAN if x < -1.0 else y


def tanh_f64(x):
    """tanh(x), float64.

    Method: tanh|x| = e / (e + 2) with e = expm1(2|x|) (no cancellation anywhere), |x|
    clamped to 20 (tanh rounds to 1 beyond 19.06), sign bit of x copied onto the result.
    Measured max relative error vs NumPy: 4.8e-16 (2 ulp; the three roundings of expm1, e + 2
    and the division add up for small |x|); 4.3e-16 against a long-double reference.
    """
    ax = abs(x)
    ax = ax if ax < TANH_CLAMP_F64 else TANH_CLAMP_F64    # +inf -> 20, NaN -> 20 (fixed below)
    e = _expm1_finite_f64(2.0 * ax)
    t = e / (e + 2.0)
    t = x if x != x else t
    return f64_from_bits(bits_f64(t) | (bits_f64(x) & SIGN_MASK_F64))


def sigmoid_f64(x):
    """1 / (1 + exp(-x)), float64.

    Method: e = exp(-|x|) <= 1; sigmoid = 1 / (1 + e) for x >= 0 and e / (1 + e) for x < 0,
    so the tiny tail for x < 0 keeps full relative accuracy (down to denormals).
    Measured max relative error vs NumPy's float64 formula: 3.3e-16; 4.1e-16 against a
    long-double reference (exp, 1 + e and the division each round once).
    """
    e = exp_f64(-abs(x))
    num = 1.0 if x >= 0.0 else e
    return num / (1.0 + e)


def softplus_f64(x):
    """log(1 + exp(x)), float64, as max(x, 0) + log1p(exp(-|x|)) (never overflows).

    Measured max relative error vs NumPy's logaddexp(0, x): 3.8e-16; 2.7e-16 against a
    long-double reference.
    """
    pos = x if x > 0.0 else 0.0                       # NaN -> 0, but the log1p term is NaN
    return pos + _log1p_finite_f64(exp_f64(-abs(x)))     # exp(-|x|) in [0, 1] or NaN


# ---------------------------------------------------------------------------------------------
# float32 constants (every one typed: a Python float would promote the arithmetic to float64)

F32 = np.float32
ZERO_F32 = F32(0.0)
HALF_F32 = F32(0.5)
ONE_F32 = F32(1.0)
TWO_F32 = F32(2.0)
INF_F32 = F32(np.inf)
NINF_F32 = F32(-np.inf)
NAN_F32 = F32(np.nan)
LOG2E_F32 = F32(1.4426950408889634)
LN2_HI_F32 = F32(0.693145751953125)        # ln2 rounded to 15 bits: k*LN2_HI_F32 exact
LN2_LO_F32 = F32(1.428606765330187e-06)    # ln2 - LN2_HI_F32
EXP_OVERFLOW_F32 = F32(88.72283172607421875)   # largest x with finite exp(x); the clamp
EXP_CLAMP_LO_F32 = F32(-104.0)             # exp(-104) rounds to 0 in float32
EXPM1_CLAMP_LO_F32 = F32(-20.0)            # expm1(x) rounds to -1 below -17.4
MIN_NORMAL_K_F32 = -125                    # p*2^k is normal for p >= 1/2 and k >= -125
DENORMAL_SHIFT_F32 = 32
TWO_M32_F32 = F32(2.0 ** -32)
FLT_MIN = F32(1.1754943508222875e-38)      # smallest normal float32
TWO_P24_F32 = F32(2.0 ** 24)
EXPONENT_24_F32 = F32(24.0)
TINY_F32 = F32(2.0 ** -25)
SQRT_HALF_BITS_F32 = 0x3F3504F3
ABS_MASK_F32 = 0x7FFFFFFF
SIGN_MASK_F32 = -0x80000000
TANH_CLAMP_F32 = F32(10.0)                 # tanh(x) rounds to +-1 for |x| > 9.01

# q(r) = (exp(r) - 1 - r) / r^2, degree 4 (exp(r) is then degree 6)
EXPQ0_F32 = F32(0.5)
EXPQ1_F32 = F32(0.16666573286056519)
EXPQ2_F32 = F32(0.04166654869914055)
EXPQ3_F32 = F32(0.008363778702914715)
EXPQ4_F32 = F32(0.0013926932588219643)

# P(z), 2 atanh(s) = 2 s + s^3 P(s^2), degree 2
LOGP0_F32 = F32(0.6666668653488159)
LOGP1_F32 = F32(0.3998831808567047)
LOGP2_F32 = F32(0.2960069179534912)

# ---------------------------------------------------------------------------------------------
# float32 functions: the float64 algorithms with float32 constants and polynomial degrees


def _expm1_poly_f32(r):
    """expm1(r) for |r| <= 0.35 as r + r^2 q(r)."""
    q = EXPQ3_F32 + r * EXPQ4_F32
    q = EXPQ2_F32 + r * q
    q = EXPQ1_F32 + r * q
    q = EXPQ0_F32 + r * q
    return r + r * r * q


def _reduce_ln2_f32(x):
    """k, r with x = k ln2 + r, |r| <= ln2/2 (+ rounding), for finite |x| < 2^8."""
    kf = np.rint(x * LOG2E_F32)
    r = mul_sub(mul_sub(x, kf, LN2_HI_F32), kf, LN2_LO_F32)
    return kf, r


def _ldexp_f32(p, k):
    """p * 2^k for p in [1/2, 2), -151 <= k <= 128, with gradual underflow (see _ldexp_f64)."""
    tiny = k < MIN_NORMAL_K_F32
    kk = k + DENORMAL_SHIFT_F32 if tiny else k
    tail = TWO_M32_F32 if tiny else ONE_F32
    return f32_from_bits(bits_f32(p) + (kk << 23)) * tail


def exp_f32(x):
    """exp(x), float32: exp_f64's method, degree-6 polynomial. x > 88.72 -> inf, x < -103.97 -> 0.

    Measured max relative error vs NumPy (float64, rounded): 1.2e-7 (1 ulp); denormal results
    within 1 unit of the smallest denormal.
    """
    xc = x if x < EXP_OVERFLOW_F32 else EXP_OVERFLOW_F32
    xc = xc if xc > EXP_CLAMP_LO_F32 else EXP_CLAMP_LO_F32
    kf, r = _reduce_ln2_f32(xc)
    p = strict_add(ONE_F32, _expm1_poly_f32(r))
    y = _ldexp_f32(p, np.int32(kf))
    return y if x <= EXP_OVERFLOW_F32 else x + INF_F32     # overflow -> inf, NaN -> NaN


def expm1_f32(x):
    """exp(x) - 1, float32: expm1_f64's method, degree-6 polynomial.

    Measured max relative error vs NumPy (float64, rounded): 1.4e-7 (near |x| = ln2/2).
    """
    xc = x if x < EXP_OVERFLOW_F32 else EXP_OVERFLOW_F32
    xc = xc if xc > EXPM1_CLAMP_LO_F32 else EXPM1_CLAMP_LO_F32
    kf, r = _reduce_ln2_f32(xc)
    em = _expm1_poly_f32(r)
    k = np.int32(kf)
    top = 1 if k > 127 else 0                         # 2^128 is not a float32
    s = f32_from_bits((k - top + 127) << 23)
    y = strict_add(s * em, s - ONE_F32)
    y = f32_from_bits(bits_f32(y) + (top << 23))
    y = x if abs(x) < TINY_F32 else y
    return y if x <= EXP_OVERFLOW_F32 else x + INF_F32     # overflow -> inf, NaN -> NaN


def _expm1_finite_f32(x):
    """expm1(x) for finite -20 <= x <= 88 (no special values)."""
    kf, r = _reduce_ln2_f32(x)
    s = f32_from_bits((np.int32(kf) + 127) << 23)
    return strict_add(s * _expm1_poly_f32(r), s - ONE_F32)


def _split_f32(v):
    """kf, m with v = 2^kf * m, m in [sqrt(1/2), sqrt(2)), for positive normal v."""
    bits = bits_f32(v) & ABS_MASK_F32
    k = np.int32(bits - SQRT_HALF_BITS_F32) >> 23     # int32: lets LLVM keep 32-bit lanes
    m = f32_from_bits(bits - (k << 23))
    return np.float32(k), m


def _log1p_core_f32(f, kf, c):
    """kf ln2 + log(1 + f) + c, float32 (see _log1p_core_f64)."""
    s = f / (TWO_F32 + f)
    z = s * s
    p = LOGP1_F32 + z * LOGP2_F32
    p = LOGP0_F32 + z * p
    hfsq = HALF_F32 * f * f
    small = s * (hfsq + z * p) + (kf * LN2_LO_F32 + c)
    return strict_add(kf * LN2_HI_F32, strict_sub(f, strict_sub(hfsq, small)))


def log_f32(x):
    """log(x), float32: log_f64's method, degree-2 polynomial in s^2.

    Measured max relative error vs NumPy (float64, rounded): 1.2e-7 (1 ulp), exhaustive over
    [0.5, 2) and random elsewhere, denormals included.
    """
    sub = x < FLT_MIN
    v = x * TWO_P24_F32 if sub else x
    kf, m = _split_f32(v)
    kf = kf - EXPONENT_24_F32 if sub else kf
    y = _log1p_core_f32(m - ONE_F32, kf, ZERO_F32)
    y = y if x < INF_F32 else x
    y = NINF_F32 if x == ZERO_F32 else y
    return NAN_F32 if x < ZERO_F32 else y


def _log1p_finite_f32(x):
    """log1p(x) for finite x > -1 (NaN -> NaN), without the special-value selects."""
    u = ONE_F32 + x
    kf, m = _split_f32(u)
    near = kf == ZERO_F32
    f = x if near else m - ONE_F32
    c = ZERO_F32 if near else strict_sub(x, strict_sub(u, ONE_F32)) / u
    return _log1p_core_f32(f, kf, c)


def log1p_f32(x):
    """log(1 + x), float32: log1p_f64's method.

    Measured max relative error vs NumPy (float64, rounded): 1.2e-7 (1 ulp).
    """
    y = _log1p_finite_f32(x)
    y = x if abs(x) < TINY_F32 else y
    y = y if x < INF_F32 else x
    y = NINF_F32 if x == -ONE_F32 else y
    return NAN_F32 if x < -ONE_F32 else y


def tanh_f32(x):
    """tanh(x), float32: tanh_f64's method, |x| clamped to 10.

    Measured max relative error vs NumPy (float64, rounded): 2.3e-7 (2 ulp, small |x|).
    """
    ax = abs(x)
    ax = ax if ax < TANH_CLAMP_F32 else TANH_CLAMP_F32
    e = _expm1_finite_f32(TWO_F32 * ax)
    t = e / (e + TWO_F32)
    t = x if x != x else t
    return f32_from_bits(bits_f32(t) | (bits_f32(x) & SIGN_MASK_F32))


def sigmoid_f32(x):
    """1 / (1 + exp(-x)), float32: sigmoid_f64's method.

    Measured max relative error vs NumPy (float64, rounded): 2.35e-7 (2 ulp).
    """
    e = exp_f32(-abs(x))
    num = ONE_F32 if x >= ZERO_F32 else e
    return num / (ONE_F32 + e)


def softplus_f32(x):
    """log(1 + exp(x)), float32, as max(x, 0) + log1p(exp(-|x|)).

    Measured max relative error vs NumPy (float64 logaddexp, rounded): 1.45e-7.
    """
    pos = x if x > ZERO_F32 else ZERO_F32
    return pos + _log1p_finite_f32(exp_f32(-abs(x)))


# ---------------------------------------------------------------------------------------------
# Tables

FUNCTIONS = {
    ("exp", "float64"): exp_f64, ("exp", "float32"): exp_f32,
    ("log", "float64"): log_f64, ("log", "float32"): log_f32,
    ("log1p", "float64"): log1p_f64, ("log1p", "float32"): log1p_f32,
    ("expm1", "float64"): expm1_f64, ("expm1", "float32"): expm1_f32,
    ("tanh", "float64"): tanh_f64, ("tanh", "float32"): tanh_f32,
    ("sigmoid", "float64"): sigmoid_f64, ("sigmoid", "float32"): sigmoid_f32,
    ("softplus", "float64"): softplus_f64, ("softplus", "float32"): softplus_f32,
}
"""(function name, dtype name) -> scalar function (un-jitted; jitted ones are in codegen.jit)."""

# Documented max relative error against NumPy (float64; float32: float64 rounded to float32)
# for a normal reference value; where the reference is 0 or denormal, the error is at most one
# unit of the smallest denormal. Each bound is the maximum measured over 3e7 (float64) and
# 4.7e7-6.4e7 (float32, including whole binades) inputs, under both the kernel fast-math flags
# and no fast-math, rounded up. One float64 ulp is 1.1e-16..2.2e-16 relative, one float32 ulp
# 6e-8..1.2e-7.
BOUNDS = {
    ("exp", "float64"): 2.5e-16, ("exp", "float32"): 1.3e-7,
    ("log", "float64"): 2.5e-16, ("log", "float32"): 1.3e-7,
    ("log1p", "float64"): 2.5e-16, ("log1p", "float32"): 1.3e-7,
    ("expm1", "float64"): 3e-16, ("expm1", "float32"): 1.6e-7,
    ("tanh", "float64"): 5e-16, ("tanh", "float32"): 2.5e-7,
    ("sigmoid", "float64"): 4e-16, ("sigmoid", "float32"): 2.5e-7,
    ("softplus", "float64"): 4e-16, ("softplus", "float32"): 1.6e-7,
}
