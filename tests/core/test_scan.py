"""sd.scan and sd.fori_loop in the interpreter: semantics against plain NumPy loops,
derivatives in both modes (finite differences, first and second order, Jacobians with many
directions at once, Hessians), graph size independent of the length, and clear errors."""
import numpy as np
import pytest

import symdiff as sd
from gradcheck import check_grads

R = np.random.default_rng(7)
T, B, D, H = 6, 2, 3, 4


def rnn_inputs(t=T, batch=B):
    """xs (t, batch, D), W, U, h0 (batch, H) and values; batch=None: a symbolic dim."""
    xs = sd.var("xs", (t, batch, D))
    W, U = sd.param("W", (H, H)), sd.param("U", (D, H))
    h0 = sd.var("h0", (batch, H))
    env = {xs: R.standard_normal((t, B, D)), W: 0.5 * R.standard_normal((H, H)),
           U: R.standard_normal((D, H)), h0: R.standard_normal((B, H))}
    return xs, W, U, h0, env


def elman(h0, xs, W, U, reverse=False):
    """h_(t+1) = tanh(h_t W + x_t U); ys_t = |h_(t+1)|^2 per row."""
    def step(h, x):
        hn = sd.tanh(h @ W + x @ U)
        return hn, sd.sum(hn * hn, axis=1)
    return sd.scan(step, h0, xs, reverse=reverse)


def elman_numpy(h, xs, W, U, reverse=False):
    ys = [None] * len(xs)
    for t in (reversed(range(len(xs))) if reverse else range(len(xs))):
        h = np.tanh(h @ W + xs[t] @ U)
        ys[t] = np.sum(h * h, axis=1)
    return h, np.stack(ys)


@pytest.mark.parametrize("reverse", [False, True])
def test_values_match_a_numpy_loop(reverse):
    xs, W, U, h0, env = rnn_inputs(batch=None)
    hT, ys = elman(h0, xs, W, U, reverse)
    got = sd.evaluate([hT, ys], env)
    want = elman_numpy(env[h0], env[xs], env[W], env[U], reverse)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-13, atol=1e-14)


def test_cumulative_sum_and_structures():
    xs = sd.var("xs", (5,))
    ys = sd.var("ys", (5, 2))
    # a dict carry and a tuple of xs; the step's y is a list
    carry, (a, b) = sd.scan(lambda c, x: ({"s": c["s"] + x[0], "n": c["n"] + 1.0},
                                          [c["s"], x[1] * 2.0]),
                            {"s": sd.const(0.0), "n": sd.const(0.0)}, (xs, ys))
    xv, yv = np.arange(5.0), R.standard_normal((5, 2))
    s, n, av, bv = sd.evaluate([carry["s"], carry["n"], a, b], {xs: xv, ys: yv})
    assert s == 10.0 and n == 5.0
    np.testing.assert_array_equal(av, np.concatenate([[0.0], np.cumsum(xv)[:-1]]))
    np.testing.assert_array_equal(bv, 2 * yv)


def test_fori_loop_and_length_without_xs():
    x = sd.var("x", ())
    y = sd.fori_loop(0, 4, lambda i, c: c * x + i, sd.const(1.0))
    xv = 1.5
    want = 1.0
    for i in range(4):
        want = want * xv + i
    assert sd.evaluate(y, {x: np.array(xv)}) == pytest.approx(want, rel=1e-15)
    # d/dx of the polynomial, from its coefficients
    assert sd.evaluate(sd.grad(y, x), {x: np.array(xv)}) == pytest.approx(
        4 * xv ** 3 + 2 * xv + 2, rel=1e-14)
    c, ys = sd.scan(lambda c, _: (c * 2.0, c), sd.const(1.0), length=4)
    np.testing.assert_array_equal(sd.evaluate(ys, {}), [1.0, 2.0, 4.0, 8.0])
    assert sd.evaluate(c, {}) == 16.0


@pytest.mark.parametrize("reverse", [False, True])
def test_gradients_first_and_second_order(reverse):
    xs, W, U, h0, env = rnn_inputs(4)
    hT, ys = elman(h0, xs, W, U, reverse)
    check_grads(sd.sum(ys * ys) + sd.sum(hT * 0.5), env, order=2)


def test_gradient_of_the_final_carry_and_of_ys_separately():
    xs, W, U, h0, env = rnn_inputs(4)
    hT, ys = elman(h0, xs, W, U)
    check_grads(hT, env, order=1)
    check_grads(ys, env, order=1)


def test_jacobians_forward_equals_reverse_and_hessian_is_symmetric():
    xs, W, U, h0, env = rnn_inputs(3)
    hT, ys = elman(h0, xs, W, U)
    jf = sd.evaluate(sd.jacobian(ys, W, mode="forward"), env)
    jr = sd.evaluate(sd.jacobian(ys, W, mode="reverse"), env)
    ja = sd.evaluate(sd.jacobian(ys, W, mode="auto"), env)
    np.testing.assert_allclose(jf, jr, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(ja, jr, rtol=1e-12, atol=1e-13)
    loss = sd.sum(ys) + sd.sum(hT)
    hess = sd.evaluate(sd.hessian(loss, W), env).reshape(H * H, H * H)
    np.testing.assert_allclose(hess, hess.T, rtol=1e-10, atol=1e-12)
    # one column against finite differences of the gradient
    g = sd.grad(loss, W)
    e = np.zeros((H, H))
    e[1, 2] = 1.0
    eps = 1e-6
    fd = (sd.evaluate(g, {**env, W: env[W] + eps * e}) -
          sd.evaluate(g, {**env, W: env[W] - eps * e})) / (2 * eps)
    np.testing.assert_allclose(hess[:, 1 * H + 2], fd.ravel(), rtol=1e-6, atol=1e-8)
    hv = sd.evaluate(sd.hvp(loss, W, sd.const(e)), env)
    np.testing.assert_allclose(hv.ravel(), hess[:, 1 * H + 2], rtol=1e-10, atol=1e-12)


def test_lstm_cell_with_two_carries():
    xs = sd.var("xs", (5, 2, 3))
    Wx, Wh, b = sd.param("Wx", (3, 16)), sd.param("Wh", (4, 16)), sd.param("b", (16,))

    def step(carry, x):
        h, c = carry
        z = x @ Wx + h @ Wh + b
        i, f, g, o = sd.sigmoid(z[:, :4]), sd.sigmoid(z[:, 4:8]), sd.tanh(z[:, 8:12]), \
            sd.sigmoid(z[:, 12:])
        c = f * c + i * g
        h = o * sd.tanh(c)
        return (h, c), h
    zero = sd.broadcast_to(sd.const(0.0), (2, 4))
    (hT, cT), hs = sd.scan(step, (zero, zero), xs)
    env = {xs: R.standard_normal((5, 2, 3)), Wx: 0.5 * R.standard_normal((3, 16)),
           Wh: 0.5 * R.standard_normal((4, 16)), b: 0.1 * R.standard_normal(16)}
    check_grads(sd.sum(hs ** 2) + sd.sum(cT), env, order=2)


def test_nested_scan():
    xs = sd.var("xs", (3, 4))
    w = sd.param("w", ())

    def outer(c, row):               # the inner loop runs over the row's elements
        inner, _ = sd.scan(lambda a, v: (sd.tanh(a * w + v + c), None), c, row)
        return inner, inner
    cT, ys = sd.scan(outer, sd.const(0.1), xs)
    env = {xs: R.standard_normal((3, 4)), w: np.array(0.7)}
    c, want = 0.1, []
    for row in env[xs]:
        a = c
        for v in row:
            a = np.tanh(a * 0.7 + v + c)
        c = a
        want.append(c)
    np.testing.assert_allclose(sd.evaluate(ys, env), want, rtol=1e-14)
    check_grads(sd.sum(ys ** 2) + cT, env, order=2)


def test_graph_size_does_not_grow_with_length():
    sizes = []
    for t in (10, 100):
        xs, W, U, h0, _ = rnn_inputs(t)
        hT, ys = elman(h0, xs, W, U)
        loss = sd.sum(ys)
        sizes.append((sd.count_ops(loss), sd.count_ops(sd.grad(loss, [W, U])),
                      sd.count_ops(sd.hvp(loss, W, sd.const(np.ones((H, H)))))))
    assert sizes[0] == sizes[1]


def test_loop_invariant_values_are_hoisted():
    xs, W, U, h0, _ = rnn_inputs()
    w2, ut = W * 2.0, U.T
    hT, _ = elman(h0, xs, w2, ut.T)
    # W * 2 and (U^T)^T are computed once, before the loop: the loop reads them
    assert w2 in hT.src and ut.T in hT.src and W not in hT.src and U not in hT.src


def test_numpy_backend_runs_the_loop():
    xs, W, U, h0, env = rnn_inputs(batch=None)
    hT, ys = elman(h0, xs, W, U)
    outs = sd.value_and_grad(sd.sum(ys), [W, U])
    f = sd.compile([xs, W, U, h0], outs, backend="numpy")
    got = f(*(env[v] for v in (xs, W, U, h0)))
    for g, w in zip(got, sd.evaluate(outs, env)):
        np.testing.assert_allclose(g, w, rtol=1e-13)


def test_zero_length():
    xs = sd.var("xs", (None, 2))
    c, ys = sd.scan(lambda c, x: (c + x, c * x), sd.const(np.ones(2)), xs)
    cv, yv = sd.evaluate([c, ys], {xs: np.zeros((0, 2))})
    np.testing.assert_array_equal(cv, [1.0, 1.0])
    assert yv.shape == (0, 2)


def test_printing_and_simplify():
    xs, W, U, h0, env = rnn_inputs()
    hT, ys = elman(h0, xs, W, U)
    assert "scan(" in str(hT)
    g = sd.grad(sd.sum(ys), W)
    np.testing.assert_allclose(sd.evaluate(sd.simplify(g), env), sd.evaluate(g, env),
                               rtol=1e-13)


@pytest.mark.parametrize("build, match", [
    (lambda x: sd.scan(lambda c, v: (sd.stack([c, c]), v), sd.const(0.0), x),
     r"carry 0 of the step has shape \(2,\)"),
    (lambda x: sd.scan(lambda c, v: (sd.cast(c, "float64"), v), sd.const(0.0, "float32"), x),
     r"float64; init has \(\) float32"),
    (lambda x: sd.scan(lambda c, v: c + v, sd.const(0.0), x), "must return a pair"),
    (lambda x: sd.scan(lambda c, v: ((c, c), v), sd.const(0.0), x), "returned 2 carry arrays"),
    (lambda x: sd.scan(lambda c, v: (c, v), sd.const(0.0)), "give xs or length"),
    (lambda x: sd.scan(lambda c, v: (c, v), sd.const(0.0), sd.const(1.0)), "is 0-d"),
    (lambda x: sd.scan(lambda c, v: (c, v), sd.const(0.0), [x, sd.const(np.ones(3))]),
     "share their leading length"),
    (lambda x: sd.scan(lambda c, v: (c, v), sd.const(0.0), x, length=4), "length=4"),
    (lambda x: sd.scan("step", sd.const(0.0), x), "step must be a function"),
])
def test_errors_name_the_problem(build, match):
    x = sd.var("x", (5,))
    with pytest.raises((sd.SymdiffError, TypeError), match=match):
        build(x)


@pytest.mark.parametrize("checkpoint", [3, 4, True])
@pytest.mark.parametrize("reverse", [False, True])
def test_checkpointing_recomputes_and_keeps_fewer_carries(checkpoint, reverse):
    xs, W, U, h0, env = rnn_inputs(12)
    plain = elman(h0, xs, W, U, reverse)

    def step(h, x):
        hn = sd.tanh(h @ W + x @ U)
        return hn, sd.sum(hn * hn, axis=1)
    ck = sd.scan(step, h0, xs, reverse=reverse, checkpoint=checkpoint)
    losses = [sd.sum(ys * ys) + sd.sum(hT) for hT, ys in (plain, ck)]
    grads = [sd.grad(loss, [W, U, h0]) for loss in losses]
    for a, b in zip(sd.evaluate([losses[0]] + grads[0], env),
                    sd.evaluate([losses[1]] + grads[1], env)):
        np.testing.assert_allclose(b, a, rtol=1e-12, atol=1e-13)
    # the carry histories the reverse loop reads: one per step, or one per segment
    hist = [max(n.shape[0] for n in sd.toposort(g) if n.op is sd.Op.SCAN and
                n.arg[0].kind(n.arg[1])[0] == "hist") for g in grads]
    k = 4 if checkpoint is True else checkpoint          # ceil(sqrt(12)) = 4
    assert hist[0] == 12 and hist[1] == max(12 // k, 12 % k)


def test_checkpoint_errors():
    x = sd.var("x", (None, 2))
    with pytest.raises(sd.ShapeError, match="checkpoint needs an int length"):
        sd.scan(lambda c, v: (c + v, None), sd.const(np.zeros(2)), x, checkpoint=2)
    with pytest.raises(sd.ShapeError, match="positive int"):
        sd.scan(lambda c, v: (c, None), sd.const(0.0), length=4, checkpoint=0)
