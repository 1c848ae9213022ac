"""Scans in the Numba backend: kernel == interpreter (forward, reverse, nested loops, 0-d
carries and steps, symbolic sizes), an LSTM against PyTorch in float64, and one loop in the
emitted source whatever the number of steps."""
import re

import numpy as np
import pytest

import symdiff as sd
from symdiff.models import recurrent
from symdiff.models.layers import Builder

R = np.random.default_rng(3)


def close(got, want, rtol=1e-12):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=rtol, atol=rtol * max(1.0, np.abs(w).max(initial=0)))


def test_many_loop_shapes_in_one_kernel():
    """Forward and reversed loops, a nested loop, 0-d carries and 0-d steps, a carry that
    is an int counter, symbolic batch, and gradients through all of them."""
    xs = sd.var("xs", ("T", None, 3))
    s = sd.var("s", ("T",))
    W = sd.param("W", (3, 3))
    w = sd.param("w", ())
    h0 = sd.broadcast_to(sd.const(0.0), (xs.shape[1], 3))
    hT, hs = sd.scan(lambda h, x: (sd.tanh(h @ W + x),) * 2, h0, xs)
    back, bs = sd.scan(lambda c, x: (c * w + x, sd.sin(c)), sd.const(0.5), s, reverse=True)

    def outer(c, row):                  # an inner loop over each row of the batch
        inner, _ = sd.scan(lambda a, v: (sd.tanh(a * w + v + c), None), c, row)
        return inner, inner
    nest, ns = sd.scan(outer, sd.const(0.1), s[:, None] * w + 1.0)
    (n, acc), _ = sd.scan(lambda c, x: ((c[0] + 1, c[1] + x * sd.cast(c[0], "float64")), None),
                          (sd.const(0), sd.const(0.0)), s)
    loss = sd.sum(hs ** 2) + sd.sum(hT) + back + sd.sum(bs) + sd.sum(ns) + acc
    outs = [loss, hs, bs, ns, n] + sd.grad(loss, [W, w, xs, s])
    f = sd.compile([xs, s, W, w], outs)
    for t, batch in ((5, 2), (1, 4), (0, 3)):
        args = [R.standard_normal((t, batch, 3)), R.standard_normal(t),
                0.5 * R.standard_normal((3, 3)), np.array(0.8)]
        want = sd.evaluate(outs, dict(zip([xs, s, W, w], args)))
        close(f(*args), want)


def torch_lstm_loss(X, Wx, Wh, b, P, torch):
    """sum(hs * P) of PyTorch's LSTM (weights transposed to its layout) and the gradients."""
    lstm = torch.nn.LSTM(X.shape[2], Wh.shape[0], dtype=torch.float64)
    with torch.no_grad():
        lstm.weight_ih_l0.copy_(torch.tensor(Wx.T))
        lstm.weight_hh_l0.copy_(torch.tensor(Wh.T))
        lstm.bias_ih_l0.copy_(torch.tensor(b))
        lstm.bias_hh_l0.zero_()
    x = torch.tensor(X, requires_grad=True)
    hs, _ = lstm(x)
    loss = (hs * torch.tensor(P)).sum()
    loss.backward()
    return [loss.item(), lstm.weight_ih_l0.grad.numpy().T, lstm.weight_hh_l0.grad.numpy().T,
            lstm.bias_ih_l0.grad.numpy(), x.grad.numpy()]


def test_lstm_matches_pytorch_over_20_steps():
    import torch                                 # the test extra installs it
    T, B, D, H = 20, 3, 5, 8
    b = Builder("float64", seed=1)
    xs = sd.var("xs", (T, B, D))
    p = sd.var("p", (T, B, H))
    hs = recurrent.lstm(b, xs, H, "1")
    loss = sd.sum(hs * p)
    Wx, Wh, bias = b.params
    outs = sd.value_and_grad(loss, [Wx, Wh, bias, xs])
    f = sd.compile([xs, p, Wx, Wh, bias], outs)
    X, P = R.standard_normal((T, B, D)), R.standard_normal((T, B, H))
    vals = [b.init[v] + 0.1 * R.standard_normal(v.shape) for v in (Wx, Wh, bias)]
    want = torch_lstm_loss(X, *vals, P, torch)
    close(f(X, P, *vals), want, 1e-10)
    close(sd.evaluate(outs, dict(zip([xs, p, Wx, Wh, bias], [X, P] + vals))), want, 1e-10)


def test_the_kernel_holds_one_loop_whatever_the_length():
    sources = []
    for t in (10, 100):
        xs = sd.var("xs", (t, 4))
        W = sd.param("W", (4, 4))
        _, hs = sd.scan(lambda h, x: (sd.tanh(h @ W + x),) * 2, sd.const(np.zeros(4)), xs)
        loss = sd.sum(hs ** 2)
        f = sd.compile([xs, W], sd.value_and_grad(loss, W))
        X, Wv = R.standard_normal((t, 4)), 0.3 * R.standard_normal((4, 4))
        close(f(X, Wv), sd.evaluate(sd.value_and_grad(loss, W), {xs: X, W: Wv}))
        sources.append(f.source)
    for src in sources:
        # the forward loop and the backward loop, each a `for` over the steps
        assert len(re.findall(r"for L\d+_t in range", src)) == 2
        assert src.count("def step") == 2
    assert len(sources[0].splitlines()) == len(sources[1].splitlines())


def test_checkpointed_loop_kernel():
    """Segments of 3 steps over 7 (a loop of loops and a shorter last segment), reversed."""
    xs = sd.var("xs", (7, 2, 3))
    W = sd.param("W", (3, 3))
    hT, hs = sd.scan(lambda h, x: (sd.tanh(h @ W + x),) * 2, sd.const(np.zeros((2, 3))), xs,
                     reverse=True, checkpoint=3)
    loss = sd.sum(hs ** 2) + sd.sum(hT)
    outs = sd.value_and_grad(loss, [W, xs])
    f = sd.compile([xs, W], outs)
    args = [R.standard_normal((7, 2, 3)), 0.5 * R.standard_normal((3, 3))]
    close(f(*args), sd.evaluate(outs, dict(zip([xs, W], args))))


def test_jacobians_and_hessian_through_a_loop_kernel():
    """Tangents and cotangents with a batch axis of directions move behind the scanned axis."""
    xs = sd.var("xs", (4, 2, 3))
    W = sd.param("W", (3, 3))
    hT, hs = sd.scan(lambda h, x: (sd.tanh(h @ W + x),) * 2, sd.const(np.zeros((2, 3))), xs)
    outs = [sd.jacobian(hs, W, mode="forward"), sd.jacobian(hT, W, mode="reverse"),
            sd.hessian(sd.sum(hs ** 2), W)]
    f = sd.compile([xs, W], outs)
    args = [R.standard_normal((4, 2, 3)), 0.5 * R.standard_normal((3, 3))]
    close(f(*args), sd.evaluate(outs, dict(zip([xs, W], args))))
