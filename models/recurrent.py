"""Recurrent networks built on ``sd.scan``: Elman and LSTM layers, and a character-level
language model (predict the next symbol of a sequence at every position).

Sequences are batch-major at the interface (x of shape (batch, T), like the data an epoch
slices into batches) and time-major inside (scan loops over the leading axis). The input
projection x_t W_x + b of every step is one GEMM over all T steps before the loop, so the
loop body holds only what depends on the carry: h_(t-1) W_h and the gates.
"""
import numpy as np

import symdiff as sd

from .layers import Builder, glorot
from .networks import Model


def elman(b, xs, hidden, name, activation=sd.tanh):
    """Elman layer over xs (T, batch, n_in) -> hs (T, batch, hidden):
    h_t = g(x_t W_x + h_(t-1) W_h + b), h_0 = 0."""
    n_in = xs.shape[-1]
    Wx = b.param(f"Wx{name}", (n_in, hidden), glorot((n_in, hidden), b.rng, b.dtype))
    Wh = b.param(f"Wh{name}", (hidden, hidden), _orthogonal(hidden, hidden, b.rng))
    bias = b.param(f"b{name}", (hidden,), np.zeros(hidden))
    zx = xs @ Wx + bias                                   # all steps at once
    _, hs = sd.scan(lambda h, z: (activation(z + h @ Wh),) * 2, _zeros(xs, hidden, b), zx)
    return hs


def lstm(b, xs, hidden, name):
    """LSTM layer over xs (T, batch, n_in) -> hs (T, batch, hidden), gates in PyTorch's order:

        z_t = x_t W_x + h_(t-1) W_h + b = [z_i, z_f, z_g, z_o]
        c_t = sigmoid(z_f) c_(t-1) + sigmoid(z_i) tanh(z_g),   h_t = sigmoid(z_o) tanh(c_t)

    with h_0 = c_0 = 0 and the forget-gate bias initialized to 1."""
    n_in = xs.shape[-1]
    Wx = b.param(f"Wx{name}", (n_in, 4 * hidden), glorot((n_in, 4 * hidden), b.rng, b.dtype))
    Wh = b.param(f"Wh{name}", (hidden, 4 * hidden),
                 np.concatenate([_orthogonal(hidden, hidden, b.rng) for _ in range(4)], 1))
    bias = b.param(f"b{name}", (4 * hidden,),
                   np.concatenate([np.zeros(hidden), np.ones(hidden), np.zeros(2 * hidden)]))
    zx = xs @ Wx + bias
    zero = _zeros(xs, hidden, b)
    _, hs = sd.scan(lambda carry, z: lstm_cell(carry, z, Wh), (zero, zero), zx)
    return hs


def lstm_cell(carry, zx, Wh):
    """One LSTM step from the input projection zx = x_t W_x + b: ((h, c), h)."""
    h, c = carry
    n = h.shape[-1]
    z = zx + h @ Wh
    i, f = sd.sigmoid(z[..., :n]), sd.sigmoid(z[..., n:2 * n])
    g, o = sd.tanh(z[..., 2 * n:3 * n]), sd.sigmoid(z[..., 3 * n:])
    c = f * c + i * g
    h = o * sd.tanh(c)
    return (h, c), h


def char_lm(vocab, hidden=64, layers=1, cell="lstm", dtype="float32", seed=0):
    """Language model over symbols 0..vocab-1: x (batch, T) int64, y (batch, T) the next
    symbols; loss = mean over positions of the cross-entropy of softmax(h_t W + b) against y.
    ``cell``: "lstm" or "elman"; ``layers`` stacked recurrent layers."""
    if cell not in ("lstm", "elman"):
        raise ValueError(f"char_lm: cell must be 'lstm' or 'elman', got {cell!r}")
    b = Builder(dtype, seed)
    x = sd.var("x", ("batch", "time"), "int64")
    y = sd.var("y", ("batch", "time"), "int64")
    h = sd.transpose(sd.one_hot(x, vocab, dtype), (1, 0, 2))        # (T, batch, vocab)
    for k in range(layers):
        h = (lstm if cell == "lstm" else elman)(b, h, hidden, str(k + 1))
    logits = b.dense(h, vocab, "out")                               # (T, batch, vocab)
    loss = sd.mean(sd.softmax_cross_entropy(logits, sd.transpose(y)))
    return Model(f"{cell}_lm", x, y, b.params, b.init, loss,
                 {"logits": sd.transpose(logits, (1, 0, 2))})


def _zeros(xs, hidden, b):
    return sd.broadcast_to(sd.const(0.0, b.dtype), (xs.shape[1], hidden))


def _orthogonal(n, m, rng):
    q, r = np.linalg.qr(rng.standard_normal((max(n, m), min(n, m))))
    q = q * np.sign(np.diag(r))
    return q if n >= m else q.T
