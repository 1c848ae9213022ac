"""Jacobians: forward (all tangents at once) == reverse (all cotangents at once) == finite
differences, on hand-picked and hypothesis-generated random graphs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import symdiff as sd
from gradcheck import numeric_jvp

# ops that keep values of order 1, so that finite differences stay meaningful at any depth
UNARY = [sd.tanh, sd.sin, sd.sigmoid, sd.softplus, lambda t: sd.exp(sd.tanh(t)),
         lambda t: t * sd.tanh(t), sd.log_sigmoid,
         lambda t: sd.sum(t, axis=-1, keepdims=True) * t, lambda t: sd.softmax(t),
         lambda t: sd.logsumexp(t, keepdims=True) - t]
BINARY = [lambda a, b: a + b, lambda a, b: a * sd.tanh(b), lambda a, b: a - 0.5 * b,
          lambda a, b: a / (1.5 + sd.tanh(b))]


def numeric_jacobian(y, x, env, eps=1e-6):
    n = np.size(env[x])
    cols = [numeric_jvp(y, env, [x], [np.eye(n)[k].reshape(np.shape(env[x]))], eps)
            for k in range(n)]
    return np.stack(cols, axis=-1).reshape(np.shape(sd.evaluate(y, env)) + np.shape(env[x]))


def check_jacobian(y, x, env):
    jf = sd.evaluate(sd.jacobian(y, x, mode="forward"), env)
    jr = sd.evaluate(sd.jacobian(y, x, mode="reverse"), env)
    assert jf.shape == y.shape + x.shape
    scale = max(1.0, float(np.abs(jr).max()))
    np.testing.assert_allclose(jf, jr, rtol=1e-10, atol=1e-12 * scale)
    # central differences with eps = 1e-6 are good to about 1e-9 of the scale
    np.testing.assert_allclose(jf, numeric_jacobian(y, x, env), rtol=1e-6, atol=1e-7 * scale)


@settings(max_examples=60, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(UNARY) - 1), st.integers(0, len(BINARY) - 1),
                          st.integers(0, 3)), min_size=1, max_size=6),
       st.integers(0, 2 ** 31 - 1))
def test_random_graphs_forward_equals_reverse(program, seed):
    x = sd.var("x", (4,))
    W = sd.const(np.random.default_rng(seed).standard_normal((4, 4)) * 0.5)
    pool = [x, sd.tanh(W @ x)]
    for u, b, pick in program:
        a = UNARY[u](pool[-1])
        pool.append(BINARY[b](a, pool[pick % len(pool)]))
    y = pool[-1]
    env = {x: np.random.default_rng(seed + 1).standard_normal(4)}
    check_jacobian(y, x, env)


@pytest.mark.parametrize("case", ["mlp", "matrix_input", "scalar_output", "batched_matmul"])
def test_structured_jacobians(case):
    rng = np.random.default_rng(3)
    if case == "mlp":
        x = sd.var("x", (5,))
        W1, W2 = sd.const(rng.standard_normal((5, 6))), sd.const(rng.standard_normal((6, 3)))
        y, env = sd.tanh(x @ W1) @ W2, {x: rng.standard_normal(5)}
    elif case == "matrix_input":
        x = sd.var("W", (3, 2))
        X = sd.const(rng.standard_normal((4, 3)))
        y, env = sd.softmax(X @ x + 1.0), {x: rng.standard_normal((3, 2))}
    elif case == "scalar_output":
        x = sd.var("x", (2, 3))
        y, env = sd.logsumexp(sd.reshape(x, (6,))), {x: rng.standard_normal((2, 3))}
    else:
        x = sd.var("x", (2, 3, 2))
        B = sd.const(rng.standard_normal((2, 2, 4)))
        y, env = sd.sum(sd.tanh(x @ B), axis=1), {x: rng.standard_normal((2, 3, 2))}
    check_jacobian(y, x, env)


def test_jacobian_of_disconnected_output_is_zero():
    x, z = sd.var("x", (3,)), sd.var("z", (2,))
    J = sd.evaluate(sd.jacobian(sd.tanh(z), x, mode="forward"), {x: np.ones(3), z: np.ones(2)})
    assert J.shape == (2, 3) and not J.any()
