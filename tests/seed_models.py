"""The seed models with their hand-written backprop (the layer equations of the seeds:
dz = a - y, dW = a^T dz, da = dz W^T, dz = g'(z) * da), shared by tests and benchmarks."""
import numpy as np

import symdiff as sd


def _n(B, dtype="float64"):
    """The batch size as a number or, for a named symbolic batch, its run-time size node."""
    return B if isinstance(B, int) else sd.size_of(B, dtype)


def logistic_regression(B=32, dtype="float64"):
    X, y = sd.var("X", (B, 5), dtype), sd.var("y", (B,), dtype)
    w, b = sd.param("w", (5,), dtype), sd.param("b", (), dtype)
    loss = sd.mean(sd.binary_cross_entropy_with_logits(X @ w + b, y))
    dz = (sd.sigmoid(X @ w + b) - y) / _n(B, dtype)            # dz = a - y (mean over the batch)
    return loss, [w, b], [X.T @ dz, sd.sum(dz)], [X, y]


def mlp_sigmoid(B=32, dtype="float64"):
    X, y = sd.var("X", (B, 5), dtype), sd.var("y", (B,), dtype)
    W1, b1, W2, b2 = sd.param("W1", (5, 8), dtype), sd.param("b1", (8,), dtype), sd.param("W2", (8,), dtype), sd.param("b2", (), dtype)
    h = sd.sigmoid(X @ W1 + b1)
    loss = sd.mean(sd.binary_cross_entropy_with_logits(h @ W2 + b2, y))
    dz2 = (sd.sigmoid(h @ W2 + b2) - y) / _n(B, dtype)
    dh = sd.reshape(dz2, (B, 1)) * W2                # da = dz W^T
    dz1 = dh * (h * (1 - h))                          # dz = g'(z) * da
    return loss, [W1, b1, W2, b2], [X.T @ dz1, sd.sum(dz1, 0), h.T @ dz2, sd.sum(dz2)], [X, y]


def mlp_tanh_softmax(B=32, dtype="float64"):
    X, y = sd.var("X", (B, 5), dtype), sd.var("y", (B,), dtype="int64")
    Ws = [sd.param(f"W{i}", s, dtype) for i, s in enumerate([(5, 8), (8, 8), (8, 3)])]
    bs = [sd.param(f"b{i}", (s,), dtype) for i, s in enumerate([8, 8, 3])]
    h1 = sd.tanh(X @ Ws[0] + bs[0])
    h2 = sd.tanh(h1 @ Ws[1] + bs[1])
    z = h2 @ Ws[2] + bs[2]
    loss = sd.mean(sd.softmax_cross_entropy(z, y))
    dz3 = (sd.softmax(z) - sd.one_hot(y, 3, dtype)) / _n(B, dtype)
    dz2 = (dz3 @ Ws[2].T) * (1 - h2 * h2)
    dz1 = (dz2 @ Ws[1].T) * (1 - h1 * h1)
    grads = [X.T @ dz1, h1.T @ dz2, h2.T @ dz3, sd.sum(dz1, 0), sd.sum(dz2, 0), sd.sum(dz3, 0)]
    return loss, Ws + bs, grads, [X, y]


def mlp_mse(B=32, dtype="float64"):
    X, t = sd.var("X", (B, 5), dtype), sd.var("t", (B, 2), dtype)
    W1, b1, W2, b2 = sd.param("W1", (5, 8), dtype), sd.param("b1", (8,), dtype), sd.param("W2", (8, 2), dtype), sd.param("b2", (2,), dtype)
    h = sd.tanh(X @ W1 + b1)
    out = h @ W2 + b2
    loss = sd.mse(out, t)
    dz2 = (out - t) * (2.0 / _n(B, dtype) / 2)
    dz1 = (dz2 @ W2.T) * (1 - h * h)
    return loss, [W1, b1, W2, b2], [X.T @ dz1, sd.sum(dz1, 0), h.T @ dz2, sd.sum(dz2, 0)], [X, t]


def linear_svm(B=32, dtype="float64", lam=0.01):
    X, y = sd.var("X", (B, 5), dtype), sd.var("y", (B,), dtype)
    w, b = sd.param("w", (5,), dtype), sd.param("b", (), dtype)
    z = X @ w + b
    loss = sd.mean(sd.hinge(z, y)) + lam * sd.sum(w * w)
    dz = sd.where(1 - y * z > 0, -y, 0.0) / _n(B, dtype)
    return loss, [w, b], [X.T @ dz + (2 * lam) * w, sd.sum(dz)], [X, y]


SEED_MODELS = {"logistic regression": logistic_regression, "MLP 1 hidden sigmoid": mlp_sigmoid,
               "MLP 3 layers tanh + softmax CE": mlp_tanh_softmax, "MLP regression (MSE)": mlp_mse,
               "linear SVM (hinge + L2)": linear_svm}


def environment(params, data, seed=0, batch=32):
    rng = np.random.default_rng(seed)
    env = {}
    for v in params + data:
        shape = tuple(batch if not isinstance(d, int) else d for d in v.shape)
        if v.dtype == "int64":
            env[v] = rng.integers(0, 3, shape)
        elif v.name == "y" and v.ndim == 1:
            env[v] = rng.choice([0.0, 1.0], shape).astype(v.dtype)
        else:
            env[v] = (rng.standard_normal(shape) * 0.5).astype(v.dtype)
    return env
