"""Special functions: sd.lgamma, digamma, polygamma, erf, erfc, log_ndtr, logaddexp and
sd.special.multigammaln. Values against SciPy and NumPy, derivatives by finite differences in
forward and reverse mode to second order (tests/gradcheck.py), compiled kernels against the
interpreter to the math library's documented bounds (float64 and float32), PyTorch as an
oracle for values and gradients where it is installed."""
import math

import mpmath as mp
import numpy as np
import pytest
import sympy
from scipy import special

import symdiff as sd
from gradcheck import check_grads
from symdiff.codegen import specialmath
from symdiff.ops import Op

R = np.random.default_rng(2025)
S = (3, 4)


def positive(shape):
    return R.uniform(0.3, 6.0, shape)


def negative(shape):
    """Negative non-integers, kept 0.15 away from the poles of lgamma and digamma."""
    return -R.integers(0, 4, shape) - R.uniform(0.15, 0.85, shape)


def normal(shape):
    return R.standard_normal(shape) * 1.5


def wide(shape):
    return R.uniform(-12.0, 12.0, shape)


# name: (builder, SciPy reference, derivative domains)
FUNCTIONS = {
    "lgamma": (sd.lgamma, special.gammaln, [positive, negative]),
    "digamma": (sd.digamma, special.psi, [positive, negative]),
    "polygamma1": (lambda x: sd.polygamma(1, x), lambda x: special.polygamma(1, x),
                   [positive, negative]),
    "polygamma3": (lambda x: sd.polygamma(3, x), lambda x: special.polygamma(3, x), [positive]),
    "erf": (sd.erf, special.erf, [normal]),
    "erfc": (sd.erfc, special.erfc, [normal]),
    "log_ndtr": (sd.log_ndtr, special.log_ndtr, [wide]),
}
GRID = np.linspace(-4.9, 9.9, 25)
GRID = np.concatenate([GRID[np.abs(GRID - np.rint(GRID)) > 0.05],    # away from the poles
                       [-39.7, -24.6, -20.3, -19.7, 0.04, 20.3, 36.6]])


def _ids(cases):
    return [f"{n}-{d}" for n, d in cases]


# ---------------------------------------------------------------------------------------------
# values and dtypes


@pytest.mark.parametrize("name,dtype", [(n, d) for n in FUNCTIONS for d in ("float64", "float32")],
                         ids=_ids([(n, d) for n in FUNCTIONS for d in ("float64", "float32")]))
def test_values_match_scipy(name, dtype):
    build, ref, _ = FUNCTIONS[name]
    x = sd.var("x", GRID.shape, dtype)
    xv = GRID.astype(dtype)
    y = sd.evaluate(build(x), {x: xv})
    assert y.dtype == dtype                                  # float32 stays float32
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(y, ref(xv.astype(np.float64)).astype(dtype))


def test_integer_inputs_promote_to_float64():
    k = sd.var("k", (4,), "int64")
    kv = np.array([1, 2, 3, 10])
    for name, (build, ref, _) in FUNCTIONS.items():
        y = build(k)
        assert y.dtype == "float64", name
        np.testing.assert_array_equal(sd.evaluate(y, {k: kv}), ref(kv.astype(float)), name)


def test_polygamma_order():
    x = sd.var("x", (3,))
    assert sd.polygamma(0, x) is sd.digamma(x)               # order 0 is digamma
    assert sd.polygamma(2, x).op is Op.POLYGAMMA and sd.polygamma(2, x).arg == 2
    assert sd.simplify(sd.grad(sd.sum(sd.polygamma(2, x)), x)) is sd.polygamma(3, x)
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="order"):
            sd.polygamma(bad, x)
    assert str(sd.polygamma(2, x)) == "polygamma(x, n=2)"


# ---------------------------------------------------------------------------------------------
# derivatives


DERIVATIVE_CASES = [(name, k) for name, (_, _, domains) in FUNCTIONS.items()
                    for k in range(len(domains))]


@pytest.mark.parametrize("name,k", DERIVATIVE_CASES,
                         ids=[f"{n}-{FUNCTIONS[n][2][k].__name__}" for n, k in DERIVATIVE_CASES])
def test_derivatives_match_finite_differences(name, k):
    """JVP and VJP against central differences, the inner-product identity, second order."""
    build, _, domains = FUNCTIONS[name]
    x = sd.var("x", S)
    check_grads(build(x), {x: domains[k](S)}, order=2)


def test_logaddexp_and_multigammaln_derivatives():
    a, b = sd.var("a", S), sd.var("b", S)
    av, bv = normal(S), normal(S)
    bv[0] = av[0]                                            # ties: gradient 1/2 each
    check_grads(sd.logaddexp(a, b), {a: av, b: bv}, order=2)
    check_grads(sd.special.multigammaln(a, 3), {a: positive(S) + 1.0}, order=2)
    check_grads(sd.logaddexp(a, 2.0), {a: av}, order=2)       # a Python scalar operand


def test_log_ndtr_far_tails_are_finite_and_accurate():
    """log_ndtr and its derivative at -40 .. 40 against mpmath (float64), finite everywhere."""
    xs = np.array([-40.0, -38.0, -30.0, -20.5, -20.0, -19.5, -5.0, -1.0, 0.0, 1.0, 5.0, 20.0,
                   40.0])
    x = sd.var("x", xs.shape)
    y = sd.log_ndtr(x)
    g = sd.grad(sd.sum(y), x)
    t = sd.jvp(y, x, sd.const(np.ones(xs.shape)))
    value, grad, tangent = sd.evaluate([y, g, t], {x: xs})
    assert np.all(np.isfinite(value)) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(grad, tangent, rtol=1e-15)
    with mp.workdps(40):
        want = [mp.log1p(-mp.ncdf(-v)) if v > 0 else mp.log(mp.ncdf(v)) for v in map(mp.mpf, xs)]
        dwant = [mp.npdf(v) / mp.ncdf(v) for v in map(mp.mpf, xs)]
    np.testing.assert_allclose(value, [float(w) for w in want], rtol=1e-13)
    np.testing.assert_allclose(value, special.log_ndtr(xs), rtol=1e-13)
    # exp(-x^2/2 - log_ndtr(x)): the cancellation costs |x|^2 eps of relative accuracy
    np.testing.assert_allclose(grad, [float(w) for w in dwant], rtol=1e-12, atol=1e-300)


def test_logaddexp_matches_numpy_at_special_values():
    pairs = [(1e4, 1e4), (0.0, -np.inf), (-np.inf, 0.0), (-np.inf, -np.inf), (np.inf, np.inf),
             (np.inf, -np.inf), (-np.inf, np.inf), (np.nan, 1.0), (1.0, np.nan), (-1e4, 3.0),
             (2.5, 2.5), (-745.0, -745.0)]
    av, bv = (np.array(p) for p in zip(*pairs))
    a, b = sd.var("a", av.shape), sd.var("b", bv.shape)
    with np.errstate(invalid="ignore"):
        want = np.logaddexp(av, bv)
    np.testing.assert_array_equal(sd.evaluate(sd.logaddexp(a, b), {a: av, b: bv}), want)
    ga, gb = sd.evaluate(sd.grad(sd.sum(sd.logaddexp(a, b)), [a, b]), {a: av, b: bv})
    assert ga[-1] == gb[-1] == 0.5 and ga[0] == gb[0] == 0.5            # ties
    assert (ga[1], gb[1]) == (1.0, 0.0) and (ga[2], gb[2]) == (0.0, 1.0)  # -inf gets nothing
    a32 = sd.var("a32", (2,), "float32")
    assert sd.logaddexp(a32, 1.0).dtype == "float32"


@pytest.mark.parametrize("d", [1, 2, 3, 5])
def test_multigammaln_matches_scipy(d):
    av = np.array([2.6, 3.3, 7.5, 40.0])             # a > (d - 1) / 2
    a = sd.var("a", av.shape)
    np.testing.assert_allclose(sd.evaluate(sd.special.multigammaln(a, d), {a: av}),
                               [special.multigammaln(v, d) for v in av], rtol=1e-14)
    with pytest.raises(ValueError, match="dimension"):
        sd.special.multigammaln(a, 0)


def test_special_module_and_sympy_bridge():
    for name in ("lgamma", "digamma", "polygamma", "erf", "erfc", "log_ndtr", "logaddexp"):
        assert getattr(sd.special, name) is getattr(sd, name)
    t = sympy.Symbol("t", positive=True)
    x = sd.var("x")
    expr = sympy.loggamma(t) + sympy.polygamma(2, t) + sympy.erf(t) * sympy.erfc(t)
    y = sd.from_sympy(expr, {t: x})
    want = special.gammaln(2.5) + special.polygamma(2, 2.5) + special.erf(2.5) * special.erfc(2.5)
    assert abs(float(sd.evaluate(y, {x: np.array(2.5)})) - want) < 1e-14
    assert sd.to_sympy(sd.lgamma(x)) == sympy.loggamma(sympy.Symbol("x", real=True))
    assert sd.to_sympy(sd.polygamma(2, x)) == sympy.polygamma(2, sympy.Symbol("x", real=True))


# ---------------------------------------------------------------------------------------------
# compiled kernels (one compile per dtype: values, gradients and second derivatives together)


# SciPy's own error, which the interpreter's values carry: psi for x < 0 (cephes reduces x
# by modf, not to the nearest integer) up to ~4e-15 on GRID; float32 rounds SciPy's float64
SCIPY_SLACK = {"float64": 4e-15, "float32": 6e-8}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_kernel_matches_interpreter(dtype):
    """Values and first derivatives of every function, second derivatives of a few, in one
    kernel per dtype (each special function call site costs ~1 s of Numba compile)."""
    x = sd.var("x", (None,), dtype)
    b = sd.var("b", (None,), dtype)
    # float32: the moderate range (log_ndtr's derivative exp(-x^2/2 - log_ndtr(x)) loses
    # x^2 eps to cancellation; test_specialmath checks the far tails of the functions)
    grid = GRID if dtype == "float64" else GRID[np.abs(GRID) < 10]
    xv = grid.astype(dtype)
    bv = np.linspace(-3, 3, grid.size).astype(dtype)
    names = list(FUNCTIONS) + ["logaddexp"]
    values = [FUNCTIONS[name][0](x) for name in FUNCTIONS] + [sd.logaddexp(x, b)]
    firsts = [sd.grad(sd.sum(y), x) for y in values]                     # f'(x) elementwise
    seconds = [sd.grad(sd.sum(firsts[names.index(name)]), x) for name in ("lgamma", "erf",
                                                                              "log_ndtr")]
    outs = values + firsts + seconds
    f = sd.compile([x, b], outs)
    got, want = f(xv, bv), sd.evaluate(outs, {x: xv, b: bv})
    rtol = 1e-12 if dtype == "float64" else 2e-5              # tests/codegen/test_kernels.py
    for k, (a, w) in enumerate(zip(got, want)):
        name = names[k] if k < len(names) else f"derivative {k}"
        assert a.dtype == w.dtype == dtype
        fin = np.isfinite(w)
        np.testing.assert_array_equal(fin, np.isfinite(a), err_msg=name)
        if k >= len(values) + len(firsts):   # log_ndtr'' = -log_ndtr' (x + log_ndtr'): the
            fin &= np.abs(xv) < 20           # cancellation costs x^4 eps (3e-10 at x = -40)
        err = np.abs(a[fin].astype(float) - w[fin]) / np.maximum(1.0, np.abs(w[fin]))
        # the primitives to their documented bound plus SciPy's error, the composite and the
        # derivative graphs to the kernel suite's tolerance
        key = (name, dtype)
        tol = specialmath.BOUNDS[key] + SCIPY_SLACK[dtype] if key in specialmath.BOUNDS else rtol
        assert err.max(initial=0.0) <= tol, (name, float(err.max()), xv[fin][np.argmax(err)])


def test_libm_kernels_use_the_same_special_functions():
    x = sd.var("x", (None,))
    outs = [sd.lgamma(x), sd.erf(x)]
    f = sd.compile([x], outs, math="libm")
    xv = np.array([0.5, 3.0, -2.5])
    for a, w in zip(f(xv), sd.evaluate(outs, {x: xv})):
        np.testing.assert_allclose(a, w, rtol=1e-15)


# ---------------------------------------------------------------------------------------------
# PyTorch as an oracle (values and gradients, float64, 1e-10 relative)


def test_values_and_gradients_match_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    oracle = {
        "lgamma": torch.lgamma, "digamma": torch.digamma,
        "polygamma1": lambda t: torch.polygamma(1, t), "polygamma3": lambda t: torch.polygamma(3, t),
        "erf": torch.erf, "erfc": torch.erfc, "log_ndtr": torch.special.log_ndtr,
    }
    # torch's trigamma (polygamma(1, x), digamma's derivative) has relative errors up to 5e-10
    # (against mpmath: 4.8e-10 at x = 1.3, where SciPy's and ours are 2e-16)
    value_rtol, grad_rtol = {"polygamma1": 1e-9}, {"digamma": 1e-9}
    rng = np.random.default_rng(3)
    for name, (build, _, domains) in FUNCTIONS.items():
        for domain in domains:
            xv = domain((6,))
            w = rng.standard_normal(6)
            x = sd.var("x", xv.shape)
            y = build(x)
            loss = sd.sum(y * sd.const(w))
            got = sd.evaluate([y] + sd.grad(loss, [x]), {x: xv})
            xt = torch.tensor(xv, requires_grad=True)
            yt = oracle[name](xt)
            (gt,) = torch.autograd.grad((yt * torch.tensor(w)).sum(), [xt])
            np.testing.assert_allclose(got[0], yt.detach().numpy(),
                                       rtol=value_rtol.get(name, 1e-10), err_msg=name)
            np.testing.assert_allclose(got[1], gt.numpy(), rtol=grad_rtol.get(name, 1e-10),
                                       err_msg=name)
    av, bv = rng.standard_normal(6) * 3, rng.standard_normal(6) * 3
    a, b = sd.var("a", (6,)), sd.var("b", (6,))
    got = sd.evaluate([sd.logaddexp(a, b)] + sd.grad(sd.sum(sd.logaddexp(a, b) ** 2), [a, b]),
                      {a: av, b: bv})
    at, bt = (torch.tensor(v, requires_grad=True) for v in (av, bv))
    yt = torch.logaddexp(at, bt)
    want = [yt.detach().numpy()] + [g.numpy() for g in torch.autograd.grad((yt ** 2).sum(),
                                                                             [at, bt])]
    for g, wv in zip(got, want):
        np.testing.assert_allclose(g, wv, rtol=1e-10)
    pv = np.array([2.2, 3.0, 9.5])
    p = sd.var("p", (3,))
    got = sd.evaluate([sd.special.multigammaln(p, 3)] + sd.grad(
        sd.sum(sd.special.multigammaln(p, 3)), [p]), {p: pv})
    pt = torch.tensor(pv, requires_grad=True)
    yt = torch.mvlgamma(pt, 3)
    np.testing.assert_allclose(got[0], yt.detach().numpy(), rtol=1e-10)
    np.testing.assert_allclose(got[1], torch.autograd.grad(yt.sum(), [pt])[0].numpy(), rtol=1e-10)
