"""Named model declarations (built with the public API only) for the CLI and the tests.

Each builder returns the ``Model`` of ``models/model.py`` (the one the networks and the
estimators use): the data inputs x and y, the parameters with seeded initial values (so a zoo
model trains with ``Trainer`` too), the loss and named outputs. ``batch`` is the leading dim of
the data: the symbol "batch" (sizes bound at call time) or an int (what a Jacobian over the
rows needs: sizes known when the graph is built).
"""
import numpy as np

import symdiff as sd

from .layers import Builder
from .model import Model
from .networks import perceptron_criterion, xor_network

SEED = 0      # every zoo model starts from the same values on every call


def _linear(features, batch):
    """x, y, w, b and the score z = x.w + b of a linear unit, starting from w = 0, b = 0."""
    init = Builder("float64", SEED)
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    w, b = init.param("w", (features,), np.zeros(features)), init.param("b", (), 0.0)
    return init, x, y, w, b, x @ w + b


def logreg(features=5, batch="batch"):
    """Logistic regression p(y = 1 | x) = sigmoid(w.x + b), binary cross-entropy on logits."""
    init, x, y, w, b, z = _linear(features, batch)
    loss = sd.mean(sd.binary_cross_entropy_with_logits(z, y))
    return Model("logreg", x, y, [w, b], init.init, loss, {"proba": sd.sigmoid(z)})


def perceptron(features=2, batch="batch"):
    """Perceptron sign(w.x + b) with the perceptron criterion sum max(0, -y (w.x + b)), the
    loss the estimator trains (``networks.perceptron_criterion``)."""
    init, x, y, w, b, z = _linear(features, batch)
    loss = perceptron_criterion(z, y)
    return Model("perceptron", x, y, [w, b], init.init, loss, {"score": z})


def svm(features=5, lam=0.01, batch="batch"):
    """Linear SVM: lambda ||w||^2 + mean(max(0, 1 - y (w.x + b)))."""
    init, x, y, w, b, z = _linear(features, batch)
    loss = lam * sd.sum(w * w) + sd.mean(sd.hinge(z, y))
    return Model("svm", x, y, [w, b], init.init, loss, {"score": z})


def mlp(sizes=(4, 8, 3), activation="tanh", batch="batch"):
    """MLP with softmax cross-entropy: h = g(h W + b) per hidden layer, logits h W + b
    (Glorot initial weights, He for rectifiers, zero biases)."""
    act = getattr(sd, activation)
    init = Builder("float64", SEED)
    x, y = sd.var("x", (batch, sizes[0])), sd.var("y", (batch,), dtype="int64")
    h = x
    for i, n in enumerate(sizes[1:]):
        hidden = i < len(sizes) - 2
        h = init.dense(h, n, str(i + 1), activation if hidden else "linear")
        if hidden:
            h = act(h)
    loss = sd.mean(sd.softmax_cross_entropy(h, y))
    return Model("mlp", x, y, init.params, init.init, loss, {"logits": h})


def xor(batch="batch"):
    """The XOR network f(x) = w^T max(0, W^T x + c) + b with an MSE loss
    (``networks.xor_network``, from its random start)."""
    return xor_network(seed=SEED, batch=batch)


def mlp_relu(sizes=(4, 8, 3), batch="batch"):
    """The MLP with ReLU hidden units max(0, h W + b)."""
    m = mlp(sizes, "relu", batch)
    m.name = "mlp_relu"
    return m


def regression(features=3, batch="batch"):
    """Heteroscedastic linear regression: mean x.w + b and log-variance x.v + c, fitted by the
    Gaussian negative log-likelihood mean((log s^2 + (y - mu)^2 / s^2 + log 2 pi) / 2)."""
    init, x, y, w, b, mu = _linear(features, batch)
    v, c = init.param("v", (features,), np.zeros(features)), init.param("c", (), 0.0)
    loss = sd.gaussian_nll(mu, x @ v + c, y)
    return Model("regression", x, y, [w, b, v, c], init.init, loss, {"mean": mu})


def mixture(features=2, components=3, batch="batch"):
    """Mixture density network with a linear layer: mixing logits x A, means x M and log
    standard deviations x S of ``components`` Gaussians, loss -mean log sum_k pi_k N_k(y).
    The means start spread out (N(0, 1) weights) so the components differ."""
    init = Builder("float64", SEED)
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    shape = (features, components)
    A = init.param("A", shape, init.rng.normal(0.0, 0.1, shape))
    M = init.param("M", shape, init.rng.normal(0.0, 1.0, shape))
    S = init.param("S", shape, np.zeros(shape))
    logits = x @ A
    loss = sd.mixture_nll(logits, x @ M, x @ S, y)
    return Model("mixture", x, y, [A, M, S], init.init, loss, {"logits": logits})


def rbf_net(features=2, units=4, batch="batch"):
    """RBF network f(x) = sum_i w_i exp(-gamma_i ||x - c_i||^2) + b with an MSE loss
    (standard normal centres, gamma = 0.5)."""
    init = Builder("float64", SEED)
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    C = init.param("C", (units, features), init.rng.standard_normal((units, features)))
    gamma = init.param("gamma", (units,), np.full(units, 0.5))
    w = init.param("w", (units,), init.rng.normal(0.0, 0.5, units))
    b = init.param("b", (), 0.0)
    f = sd.rbf(x, C, gamma) @ w + b
    return Model("rbf", x, y, [w, b, C, gamma], init.init, sd.mse(f, y), {"f": f})


def maxout_net(features=3, units=2, pieces=2, classes=3, batch="batch"):
    """Maxout hidden layer (max over ``pieces`` linear pieces per unit), softmax output."""
    init = Builder("float64", SEED)
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,), dtype="int64")
    h = sd.maxout(init.dense(x, units * pieces, "1", "relu"), pieces)
    logits = init.dense(h, classes, "2")
    W1, b1, W2, b2 = init.params
    loss = sd.mean(sd.softmax_cross_entropy(logits, y))
    return Model("maxout", x, y, [W2, b2, W1, b1], init.init, loss, {"logits": logits})


ZOO = {"logreg": logreg, "perceptron": perceptron, "svm": svm, "mlp": mlp, "xor": xor,
       "mlp_relu": mlp_relu, "regression": regression, "mixture": mixture, "rbf": rbf_net,
       "maxout": maxout_net}
