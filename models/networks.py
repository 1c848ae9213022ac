"""Model declarations from the lecture notes, each returning a ``Model`` (``models/model.py``:
the data inputs x and y, the parameters with their seeded initial values, the mean loss over
a batch, and named prediction outputs).
"""
import numpy as np

import symdiff as sd

from .layers import Builder
from .model import Model     # also networks.Model, as before


def _hidden(b, x, hidden, activations):
    acts = activations if isinstance(activations, (list, tuple)) else [activations] * len(hidden)
    if len(acts) != len(hidden):
        raise ValueError(f"{len(acts)} activations for {len(hidden)} hidden layers")
    h = x
    for i, (width, act) in enumerate(zip(hidden, acts)):
        h = b.layer(h, width, act, str(i + 1))
    return h


def mlp(n_in, hidden, n_out, activation="tanh", output="softmax", l2=0.0, dtype="float32",
        seed=0, components=3):
    """Multi-layer perceptron h_l = g_l(h_{l-1} W_l + b_l) with an output layer and its loss:

    - "softmax": p = softmax(z), loss = cross-entropy with integer labels;
    - "sigmoid": p = sigmoid(z) (n_out = 1), loss = binary cross-entropy on the logit;
    - "linear": y_hat = z, loss = mean squared error;
    - "gaussian": mean and log-variance heads, loss = Gaussian negative log-likelihood;
    - "mdn": a mixture density network head with ``components`` Gaussians.
    Optional L2 penalty l2 * sum ||W||^2.
    """
    b = Builder(dtype, seed)
    x = sd.var("x", ("batch", n_in), dtype)
    h = _hidden(b, x, list(hidden), activation)
    last = str(len(hidden) + 1)
    outputs = {}
    if output == "softmax":
        y = sd.var("y", ("batch",), "int64")
        z = b.dense(h, n_out, last)
        loss = sd.mean(sd.softmax_cross_entropy(z, y))
        outputs = {"logits": z, "proba": sd.softmax(z)}
    elif output == "sigmoid":
        y = sd.var("y", ("batch",), dtype)
        z = sd.reshape(b.dense(h, 1, last), ("batch",))
        loss = sd.mean(sd.binary_cross_entropy_with_logits(z, y))
        outputs = {"logits": z, "proba": sd.sigmoid(z)}
    elif output == "linear":
        y = sd.var("y", ("batch", n_out), dtype)
        z = b.dense(h, n_out, last)
        loss = sd.mse(z, y)
        outputs = {"mean": z}
    elif output == "gaussian":
        y = sd.var("y", ("batch", n_out), dtype)
        mean, log_var = b.dense(h, n_out, last), b.dense(h, n_out, last + "v")
        loss = sd.gaussian_nll(mean, log_var, y)
        outputs = {"mean": mean, "log_var": log_var}
    elif output == "mdn":
        y = sd.var("y", ("batch", 1), dtype)
        logits = b.dense(h, components, last + "pi")
        mu = b.dense(h, components, last + "mu")
        log_std = b.dense(h, components, last + "sigma")
        loss = sd.mixture_nll(logits, mu, log_std, y)
        outputs = {"weights": sd.softmax(logits), "mean": mu, "std": sd.exp(log_std)}
    else:
        raise ValueError(f"unknown output {output!r}: softmax, sigmoid, linear, gaussian, mdn")
    if l2:
        loss = loss + l2 * b.l2()
    return Model(f"mlp-{output}", x, y, b.params, b.init, loss, outputs)


def logistic_regression(n_in, l2=0.0, dtype="float64", seed=0):
    """p(y = 1 | x) = sigmoid(w.x + b), binary cross-entropy on the logit."""
    return _linear_model("logistic_regression", n_in, l2, dtype, seed, "sigmoid")


def softmax_regression(n_in, n_classes, l2=0.0, dtype="float64", seed=0):
    """p(y | x) = softmax(x W + b), cross-entropy."""
    return mlp(n_in, [], n_classes, output="softmax", l2=l2, dtype=dtype, seed=seed)


def _linear_model(name, n_in, l2, dtype, seed, kind):
    b = Builder(dtype, seed)
    x = sd.var("x", ("batch", n_in), dtype)
    y = sd.var("y", ("batch",), dtype)
    w = b.param("w", (n_in,), np.zeros(n_in))
    c = b.param("b", (), 0.0)
    z = x @ w + c
    if kind == "sigmoid":
        loss = sd.mean(sd.binary_cross_entropy_with_logits(z, y))
        outputs = {"logits": z, "proba": sd.sigmoid(z)}
    elif kind == "hinge":                         # y in {-1, +1}
        loss = sd.mean(sd.hinge(z, y))
        outputs = {"score": z}
    else:                                         # the perceptron rule, y in {-1, +1}
        loss = perceptron_criterion(z, y)
        outputs = {"score": z, "mistakes": sd.sum(sd.cast(y * z <= 0, dtype))}
    if l2:
        loss = loss + l2 * sd.sum(w * w)
    return Model(name, x, y, b.params, b.init, loss, outputs)


def perceptron_criterion(z, y):
    """The perceptron criterion sum_i max(0, -y_i z_i) for scores z = w.x + b and labels y in
    {-1, +1}: minus the sum of y_i z_i over the misclassified points. Its gradient is the
    perceptron rule's -y_i x_i for every point with y_i z_i <= 0, on the plane too (relu's
    derivative 0 at the kink would leave w = 0, the usual start, without an update)."""
    m = y * z
    return sd.sum(sd.where(m <= 0, -m, 0.0))


def linear_svm(n_in, lam=0.01, dtype="float64", seed=0):
    """lambda ||w||^2 + mean(max(0, 1 - y (w.x + b))), labels y in {-1, +1}."""
    return _linear_model("linear_svm", n_in, lam, dtype, seed, "hinge")


def perceptron(n_in, bias=False, dtype="float64"):
    """sign(w.x + b) trained by the perceptron rule: SGD with learning rate 1 on
    max(0, -y (w.x + b)), labels in {-1, +1}. Without ``bias`` the separating plane passes
    through the origin (the setting of Novikoff's bound of (R / gamma)^2 updates)."""
    m = _linear_model("perceptron", n_in, 0.0, dtype, 0, "perceptron")
    if not bias:
        w, c = m.params
        (loss, score, mistakes) = sd.substitute([m.loss, m.outputs["score"],
                                                 m.outputs["mistakes"]], {c: sd.const(0.0, dtype)})
        m = Model(m.name, m.x, m.y, [w], {w: m.init[w]}, loss,
                  {"score": score, "mistakes": mistakes})
    return m


def xor_network(dtype="float64", seed=0, oracle=False, batch="batch"):
    """f(x) = w^T max(0, W^T x + c) + b with MSE on the four XOR points.
    ``oracle=True`` starts from the exact solution W = [[1, 1], [1, 1]], c = (0, -1),
    w = (1, -2), b = 0. ``batch``: the leading dim of x and y (a symbol or an int)."""
    b = Builder(dtype, seed)
    x = sd.var("x", (batch, 2), dtype)
    y = sd.var("y", (batch,), dtype)
    rng = np.random.default_rng(seed)
    # random start: small weights, rectifier biases 0.1 (so both units
    # start active), output bias at the targets' mean
    W = b.param("W", (2, 2), np.ones((2, 2)) if oracle else rng.normal(0, 0.5, (2, 2)))
    c = b.param("c", (2,), np.array([0.0, -1.0]) if oracle else np.full(2, 0.1))
    w = b.param("w", (2,), np.array([1.0, -2.0]) if oracle else rng.normal(0, 0.5, 2))
    bb = b.param("b", (), 0.0 if oracle else 0.5)
    f = sd.relu(x @ W + c) @ w + bb
    return Model("xor", x, y, b.params, b.init, sd.mse(f, y), {"f": f})


def universal_approximator(width, activation="relu", dtype="float64", seed=0):
    """F(x) = sum_i v_i g(w_i x + b_i) + c: one hidden layer fitted to a 1-D function."""
    return mlp(1, [width], 1, activation=activation, output="linear", dtype=dtype, seed=seed)


def fit_xor(restarts=10, seed=0, epochs=500, lr=0.1, momentum=0.9):
    """Train the 2-2-1 XOR network from random starts until one fits the four points.

    A 2-unit rectifier network has bad local minima (dead units): one random start fits XOR
    about a third of the time, so a few restarts make it reliable. Returns (trainer, start).
    """
    from .data import xor
    from .train import Trainer, fit
    X, y = xor()
    best = None
    for k in range(restarts):
        trainer = Trainer(xor_network(seed=seed + k), lr=lr, momentum=momentum)
        history = fit(trainer, X, y.astype(float), epochs, 4, seed=seed + k)
        hits = np.mean((trainer.predict("f", X) > 0.5) == (y == 1))
        if best is None or (hits, -history[-1]["loss"]) > best[0]:
            best = ((hits, -history[-1]["loss"]), trainer, seed + k)
        if hits == 1.0:
            break
    return best[1], best[2]
