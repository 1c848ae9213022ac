"""Named model declarations (built with the public API only) for the CLI and the tests.

Each builder returns a ``Model``: the loss, its parameters, and the data inputs. ``batch`` is
the leading dim of the data: the symbol "batch" (sizes bound at call time) or an int (what a
Jacobian over the rows needs: sizes known when the graph is built).
"""
from dataclasses import dataclass, field

import symdiff as sd

from .networks import perceptron_criterion


@dataclass
class Model:
    name: str
    loss: object
    params: list
    inputs: list
    outputs: dict = field(default_factory=dict)   # other named nodes (predictions...)


def logreg(features=5, batch="batch"):
    """Logistic regression p(y = 1 | x) = sigmoid(w.x + b), binary cross-entropy on logits."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    w, b = sd.param("w", (features,)), sd.param("b")
    z = x @ w + b
    loss = sd.mean(sd.binary_cross_entropy_with_logits(z, y))
    return Model("logreg", loss, [w, b], [x, y], {"proba": sd.sigmoid(z)})


def perceptron(features=2, batch="batch"):
    """Perceptron sign(w.x + b) with the perceptron criterion sum max(0, -y (w.x + b)), the
    loss the estimator trains (``networks.perceptron_criterion``)."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    w, b = sd.param("w", (features,)), sd.param("b")
    z = x @ w + b
    loss = perceptron_criterion(z, y)
    return Model("perceptron", loss, [w, b], [x, y], {"score": z})


def svm(features=5, lam=0.01, batch="batch"):
    """Linear SVM: lambda ||w||^2 + mean(max(0, 1 - y (w.x + b)))."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    w, b = sd.param("w", (features,)), sd.param("b")
    z = x @ w + b
    loss = lam * sd.sum(w * w) + sd.mean(sd.hinge(z, y))
    return Model("svm", loss, [w, b], [x, y], {"score": z})


def mlp(sizes=(4, 8, 3), activation="tanh", batch="batch"):
    """MLP with softmax cross-entropy: h = g(h W + b) per hidden layer, logits h W + b."""
    act = getattr(sd, activation)
    x, y = sd.var("x", (batch, sizes[0])), sd.var("y", (batch,), dtype="int64")
    params, h = [], x
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = sd.param(f"W{i + 1}", (m, n)), sd.param(f"b{i + 1}", (n,))
        params += [W, b]
        h = h @ W + b
        if i < len(sizes) - 2:
            h = act(h)
    loss = sd.mean(sd.softmax_cross_entropy(h, y))
    return Model("mlp", loss, params, [x, y], {"logits": h})


def xor(batch="batch"):
    """The seeds' XOR network f(x) = w^T max(0, W^T x + c) + b with an MSE loss."""
    x, y = sd.var("x", (batch, 2)), sd.var("y", (batch,))
    W, c, w, b = sd.param("W", (2, 2)), sd.param("c", (2,)), sd.param("w", (2,)), sd.param("b")
    f = sd.relu(x @ W + c) @ w + b
    return Model("xor", sd.mse(f, y), [W, c, w, b], [x, y], {"f": f})


def mlp_relu(sizes=(4, 8, 3), batch="batch"):
    """The MLP with ReLU hidden units max(0, h W + b)."""
    m = mlp(sizes, "relu", batch)
    m.name = "mlp_relu"
    return m


def regression(features=3, batch="batch"):
    """Heteroscedastic linear regression: mean x.w + b and log-variance x.v + c, fitted by the
    Gaussian negative log-likelihood mean((log s^2 + (y - mu)^2 / s^2 + log 2 pi) / 2)."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    w, b = sd.param("w", (features,)), sd.param("b")
    v, c = sd.param("v", (features,)), sd.param("c")
    mu = x @ w + b
    loss = sd.gaussian_nll(mu, x @ v + c, y)
    return Model("regression", loss, [w, b, v, c], [x, y], {"mean": mu})


def mixture(features=2, components=3, batch="batch"):
    """Mixture density network with a linear layer: mixing logits x A, means x M and log
    standard deviations x S of ``components`` Gaussians, loss -mean log sum_k pi_k N_k(y)."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    A, M, S = (sd.param(n, (features, components)) for n in ("A", "M", "S"))
    logits = x @ A
    loss = sd.mixture_nll(logits, x @ M, x @ S, y)
    return Model("mixture", loss, [A, M, S], [x, y], {"logits": logits})


def rbf_net(features=2, units=4, batch="batch"):
    """RBF network f(x) = sum_i w_i exp(-gamma_i ||x - c_i||^2) + b with an MSE loss."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,))
    C, gamma = sd.param("C", (units, features)), sd.param("gamma", (units,))
    w, b = sd.param("w", (units,)), sd.param("b")
    f = sd.rbf(x, C, gamma) @ w + b
    return Model("rbf", sd.mse(f, y), [w, b, C, gamma], [x, y], {"f": f})


def maxout_net(features=3, units=2, pieces=2, classes=3, batch="batch"):
    """Maxout hidden layer (max over ``pieces`` linear pieces per unit), softmax output."""
    x, y = sd.var("x", (batch, features)), sd.var("y", (batch,), dtype="int64")
    W1, b1 = sd.param("W1", (features, units * pieces)), sd.param("b1", (units * pieces,))
    W2, b2 = sd.param("W2", (units, classes)), sd.param("b2", (classes,))
    logits = sd.maxout(x @ W1 + b1, pieces) @ W2 + b2
    loss = sd.mean(sd.softmax_cross_entropy(logits, y))
    return Model("maxout", loss, [W2, b2, W1, b1], [x, y], {"logits": logits})


ZOO = {"logreg": logreg, "perceptron": perceptron, "svm": svm, "mlp": mlp, "xor": xor,
       "mlp_relu": mlp_relu, "regression": regression, "mixture": mixture, "rbf": rbf_net,
       "maxout": maxout_net}
