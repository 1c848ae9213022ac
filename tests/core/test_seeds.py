"""The lecture notes' worked examples, as tests."""
import numpy as np
import pytest

import symdiff as sd


def test_backprop_example_gradient_is_39_8():
    # seeds 001: g(w) = w1^3 w2 + 3 w1 at w = (2, 3) has gradient (39, 8)
    w1, w2 = sd.var("w1"), sd.var("w2")
    g = w1 ** 3 * w2 + 3 * w1
    for grads in (sd.grad(g, [w1, w2]),
                  [sd.jvp(g, [w1, w2], [1.0, 0.0]), sd.jvp(g, [w1, w2], [0.0, 1.0])]):
        assert [float(v) for v in sd.evaluate(grads, {w1: 2.0, w2: 3.0})] == [39.0, 8.0]


def test_vector_form_of_the_same_example():
    w = sd.var("w", (2,))
    g = sd.sum(w ** 3 * sd.const([1.0, 0.0])) * sd.sum(w * sd.const([0.0, 1.0])) + 3 * sd.sum(
        w * sd.const([1.0, 0.0]))
    assert sd.evaluate(sd.grad(g, w), {w: np.array([2.0, 3.0])}).tolist() == [39.0, 8.0]


def test_xor_network_with_oracle_weights():
    # seeds 002: f(x) = w^T max(0, W^T x + c) + b
    X = sd.var("X", (None, 2))
    W, c, w, b = sd.param("W", (2, 2)), sd.param("c", (2,)), sd.param("w", (2,)), sd.param("b")
    f = sd.relu(X @ W + c) @ w + b
    env = {X: np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float), W: np.ones((2, 2)),
           c: np.array([0.0, -1.0]), w: np.array([1.0, -2.0]), b: 0.0}
    assert sd.evaluate(f, env).tolist() == [0.0, 1.0, 1.0, 0.0]


def test_logistic_regression_gradient_is_sigmoid_minus_y_times_x():
    # seeds 001/003: d CE / d w = (sigmoid(w.x + b) - y) x
    x, w, b, y = sd.var("x", (5,)), sd.param("w", (5,)), sd.param("b"), sd.var("y")
    p = sd.sigmoid(w @ x + b)
    ce = -y * sd.log(p) - (1 - y) * sd.log(1 - p)
    gw, gb = sd.grad(ce, [w, b])
    rng = np.random.default_rng(0)
    for yv in (0.0, 1.0):
        env = {x: rng.standard_normal(5), w: rng.standard_normal(5), b: 0.3, y: yv}
        s = 1 / (1 + np.exp(-(env[w] @ env[x] + 0.3)))
        gwv, gbv = sd.evaluate([gw, gb], env)
        assert np.allclose(gwv, (s - yv) * env[x], rtol=1e-12)
        assert np.isclose(gbv, s - yv, rtol=1e-12)


def test_sigmoid_derivative_is_sigmoid_times_one_minus_sigmoid():
    z = sd.var("z", (101,))
    zs = np.linspace(-8, 8, 101)
    d = sd.evaluate(sd.grad(sd.sum(sd.sigmoid(z)), z), {z: zs})
    s = 1 / (1 + np.exp(-zs))
    assert np.allclose(d, s * (1 - s), rtol=1e-13)
    assert d.max() <= 0.25


@pytest.mark.parametrize("fn", [sd.relu, sd.abs])
def test_derivative_at_the_kink_is_zero(fn):
    x = sd.var("x", (3,))
    g = sd.evaluate(sd.grad(sd.sum(fn(x)), x), {x: np.array([-1.0, 0.0, 2.0])})
    assert g[1] == 0.0


def test_max_picks_one_argmax():
    x = sd.var("x", (4,))
    g = sd.evaluate(sd.grad(sd.max(x), x), {x: np.array([1.0, 3.0, 3.0, 0.0])})
    assert g.tolist() == [0.0, 1.0, 0.0, 0.0]


def test_vanishing_gradient_bound_through_three_sigmoid_layers():
    # seeds 000: |d yhat / d w1| <= (1/4)^3 |w3 w2 x| for the 1-unit sigmoid chain
    x, w1, w2, w3 = (sd.var(n) for n in ("x", "w1", "w2", "w3"))
    yhat = sd.sigmoid(w3 * sd.sigmoid(w2 * sd.sigmoid(w1 * x)))
    env = {x: 1.5, w1: 0.7, w2: -0.9, w3: 0.8}
    d = float(sd.evaluate(sd.grad(yhat, w1), env))
    assert abs(d) <= 0.25 ** 3 * abs(0.8 * -0.9 * 1.5)
