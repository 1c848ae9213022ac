"""One semantics, two backends: ``backend="numpy"`` runs the simplified, stabilized graph
that the numba backend compiles, so every output agrees to rounding, on the zoo models and
where the written form overflows. The oracles are closed forms; ``sd.evaluate`` stays the
as-written interpreter (inf or NaN where the written form overflows)."""
import warnings

import numpy as np
import pytest

import symdiff as sd
from symdiff.models.zoo import ZOO


def _both(inputs, outputs):
    return [sd.compile(inputs, outputs, backend=b) for b in ("numba", "numpy")]


# logreg and the MLP run by default; the other linear models with -m slow (one compile each)
ZOO_CASES = [n if n in ("logreg", "mlp") else pytest.param(n, marks=pytest.mark.slow)
             for n in sorted(ZOO)]


@pytest.mark.parametrize("name", ZOO_CASES)
def test_zoo_models_agree_in_both_backends_and_with_the_interpreter(name):
    m = ZOO[name]()
    rng = np.random.default_rng(7)
    values = []
    for v in m.inputs + m.params:
        shape = tuple(6 if not isinstance(d, int) else d for d in v.shape)
        if v.dtype == "int64":
            values.append(rng.integers(0, m.params[-1].shape[-1], shape))
        elif v.name == "y":
            values.append((rng.random(shape) > 0.5) * 2.0 - 1.0)     # +-1 (0/1 also valid)
        else:
            values.append(rng.standard_normal(shape))
    outs = [m.loss] + sd.grad(m.loss, m.params)
    kernel, function = _both(m.inputs + m.params, outs)
    want = sd.evaluate(outs, dict(zip(m.inputs + m.params, values)))
    for a, b, c in zip(kernel(*values), function(*values), want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(b, c, rtol=1e-12, atol=1e-15)


def _stability_cases(dtype):
    """(inputs, outputs, values, closed forms) where the written form overflows."""
    z = sd.var("z", (2, 3), dtype)
    y = sd.var("y", (2,), "int64")
    s = sd.var("s", (2,), dtype)
    t = sd.var("t", (2,), dtype)
    big = 1e4 if dtype == "float64" else 1e3
    Z = np.array([[big, -big, 0.0], [-big, big, 0.0]], dtype)
    Y = np.array([1, 1])
    edge = 900.0 if dtype == "float64" else 100.0        # exp overflows beyond 709 / 88
    S = np.array([edge, -edge], dtype)
    T = np.array([0.0, 1.0], dtype)
    ce = sd.mean(sd.softmax_cross_entropy(z, y))
    bce = sd.sum(sd.binary_cross_entropy_with_logits(s, t))
    softplus = sd.log(1 + sd.exp(s))                     # as written
    sigmoid = sd.sigmoid(s * (1000 / edge))              # at +-1000
    log_sigmoid = sd.log(sd.sigmoid(-s))
    outs = [ce, sd.grad(ce, z), bce, sd.grad(bce, s), softplus, sd.grad(sd.sum(softplus), s),
            sigmoid, sd.grad(sd.sum(sigmoid), s), log_sigmoid]
    want = [big, np.array([[0.5, -0.5, 0.0], [0.0, 0.0, 0.0]]),     # mean of 2 big, 0
            2 * edge, np.array([1.0, -1.0]),               # softplus(s) - t s, sigmoid(s) - t
            np.array([edge, 0.0]), np.array([1.0, 0.0]),   # log(1 + e^900) = 900
            np.array([1.0, 0.0]), np.array([0.0, 0.0]),    # sigmoid'(+-1000) underflows to 0
            np.array([-edge, 0.0])]                        # log sigmoid(-900) = -900
    return [z, y, s, t], outs, [Z, Y, S, T], want


@pytest.mark.parametrize("dtype, rtol", [("float64", 1e-12), ("float32", 2e-6)])
def test_stable_forms_in_both_backends(dtype, rtol):
    inputs, outs, values, want = _stability_cases(dtype)
    kernel, function = _both(inputs, outs)
    got_k, got_f = kernel(*values), function(*values)
    for a, b, w in zip(got_k, got_f, want):
        assert a.dtype == b.dtype == np.dtype(dtype)
        np.testing.assert_allclose(a, w, rtol=rtol, atol=1e-30)
        np.testing.assert_allclose(b, w, rtol=rtol, atol=1e-30)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)       # exp overflows, as written
        written = sd.evaluate(outs, dict(zip(inputs, values)))
    assert np.isinf(written[4][0])                        # log(1 + exp(900)) as written
    assert np.isneginf(written[8][0])                     # log(sigmoid(-900)) as written


def test_a_scaled_written_sigmoid_agrees_in_both_backends():
    """1 / (1 + exp(-2 s)) is not recognized as sigmoid(2 s) (1 / (1 + exp(-s)) is): at
    s = -900 its derivative 2 exp(-2 s) / (1 + exp(-2 s))^2 is inf * 0. Both backends
    agree on that NaN, and on the value."""
    s = sd.var("s", (2,))
    written = 1 / (1 + sd.exp(-2 * s))
    outs = [written, sd.grad(sd.sum(written), s)]
    S = np.array([900.0, -900.0])
    kernel, function = _both([s], outs)
    with np.errstate(over="ignore", invalid="ignore"):
        for a, b in zip(kernel(S), function(S)):
            np.testing.assert_array_equal(a, b)           # NaN where NaN
        np.testing.assert_array_equal(kernel(S)[0], [1.0, 0.0])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_a_scaled_written_sigmoid_has_a_finite_derivative(backend):
    """1 / (1 + exp(-2 s)) is sigmoid(2 s): d/ds = 2 sigmoid(2 s) (1 - sigmoid(2 s)), 0 at
    s = +-900, where the written form's derivative is inf / inf."""
    s = sd.var("s", (5,))
    written = 1 / (1 + sd.exp(-2 * s))
    f = sd.compile([s], sd.grad(sd.sum(written), s), backend=backend)
    S = np.array([900.0, -900.0, 0.0, 0.3, -2.5])
    sig = 0.5 * (1 + np.tanh(S))                       # sigmoid(2 s), overflow-free
    with np.errstate(over="raise", invalid="raise"):
        np.testing.assert_allclose(f(S), 2 * sig * (1 - sig), rtol=1e-12, atol=1e-300)
