"""Layers of the model zoo's networks: dense maps, activations (plain, parametric, maxout, RBF),
and seeded initialization.

An activation is a name from ``ACTIVATIONS``, ``"prelu"``, ``"maxout:k"``, ``"rbf"``, or any
function of a node (e.g. one made with ``sd.elementwise``).
"""
import numpy as np

import symdiff as sd

ACTIVATIONS = {
    "sigmoid": sd.sigmoid,        # 1 / (1 + exp(-z))
    "tanh": sd.tanh,
    "relu": sd.relu,              # max(0, z), relu'(0) = 0
    "leaky_relu": sd.leaky_relu,  # max(0.01 z, z)
    "elu": sd.elu,                # z if z > 0 else exp(z) - 1
    "softplus": sd.softplus,      # log(1 + exp(z))
    "hard_tanh": sd.hard_tanh,    # max(-1, min(1, z))
    "abs": sd.abs_rect,           # |z|: absolute-value rectification
    "swish": sd.swish,            # z sigmoid(z)
    "linear": lambda z: z,
}
RELU_LIKE = {"relu", "leaky_relu", "elu", "prelu", "abs", "swish"}


def glorot(shape, rng, dtype):
    """Uniform Glorot/Xavier: variance 2 / (fan_in + fan_out), for sigmoid/tanh/linear units."""
    limit = np.sqrt(6.0 / (shape[0] + shape[-1]))
    return rng.uniform(-limit, limit, shape).astype(dtype)


def he(shape, rng, dtype):
    """He: normal with variance 2 / fan_in, for rectified units."""
    return (rng.standard_normal(shape) * np.sqrt(2.0 / shape[0])).astype(dtype)


class Builder:
    """Collects parameters and their initializers while a model is declared."""

    def __init__(self, dtype="float32", seed=0):
        self.dtype, self.rng = dtype, np.random.default_rng(seed)
        self.params, self.init, self.weights = [], {}, []

    def param(self, name, shape, value):
        p = sd.param(name, shape, self.dtype)
        self.params.append(p)
        self.init[p] = np.asarray(value, dtype=self.dtype).reshape(shape)
        return p

    def dense(self, h, n_out, name, activation="linear"):
        """h @ W + b with W initialized for ``activation`` (He for rectifiers, else Glorot)."""
        n_in = h.shape[-1]
        fn = he if activation in RELU_LIKE else glorot
        W = self.param(f"W{name}", (n_in, n_out), fn((n_in, n_out), self.rng, self.dtype))
        b = self.param(f"b{name}", (n_out,), np.zeros(n_out))
        self.weights.append(W)
        return h @ W + b

    def layer(self, h, width, activation, name):
        """One hidden layer: an affine map and its activation."""
        if callable(activation):
            return activation(self.dense(h, width, name))
        if activation == "rbf":                   # h_i = exp(-gamma_i ||x - c_i||^2)
            c = self.param(f"c{name}", (width, h.shape[-1]),
                           self.rng.standard_normal((width, h.shape[-1])))
            g = self.param(f"gamma{name}", (width,), np.full(width, 0.5))
            return sd.rbf(h, c, g)
        if activation.startswith("maxout"):       # max over k affine pieces per unit
            k = int(activation.split(":")[1]) if ":" in activation else 2
            return sd.maxout(self.dense(h, width * k, name, "relu"), k)
        z = self.dense(h, width, name, activation)
        if activation == "prelu":                 # max(0, z) + alpha min(0, z), alpha learned
            alpha = self.param(f"alpha{name}", (width,), np.full(width, 0.25))
            return sd.prelu(z, alpha)
        if activation not in ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; use one of "
                             f"{sorted(ACTIVATIONS) + ['prelu', 'maxout:k', 'rbf']} or a "
                             f"function of a node")
        return ACTIVATIONS[activation](z)

    def l2(self):
        """sum of the squared weights (biases excluded)."""
        total = None
        for W in self.weights:
            term = sd.sum(W * W)
            total = term if total is None else total + term
        return total
