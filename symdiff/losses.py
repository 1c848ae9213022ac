"""Losses from the lecture notes, written in their numerically stable forms.

``reduction`` is "none" (per example), "mean" or "sum". Cross-entropies default to "none" so
that ``sd.mean(sd.softmax_cross_entropy(z, y))`` reads as the seeds write it; ``mse`` is the
mean squared error and defaults to "mean".
"""
import math

from . import composites as C
from . import frontend as F
from .errors import ShapeError


def _reduce(loss, reduction):
    if reduction == "none":
        return loss
    if reduction == "mean":
        return C.mean(loss)
    if reduction == "sum":
        return F.sum(loss)
    raise ValueError(f"reduction must be 'none', 'mean' or 'sum', got {reduction!r}")


def mse(pred, target, reduction="mean"):
    """mean((pred - target)^2).

    >>> import symdiff as sd, numpy as np
    >>> p = sd.var("p", (2,))
    >>> float(sd.evaluate(sd.mse(p, np.array([1.0, 1.0])), {p: np.array([2.0, 3.0])}))
    2.5
    """
    return _reduce(C.square(F.as_node(pred) - target), reduction)


def binary_cross_entropy_with_logits(z, y, reduction="none"):
    """-y log sigmoid(z) - (1 - y) log(1 - sigmoid(z)) = softplus(z) - y z (stable for all z)."""
    z = F.as_node(z)
    return _reduce(F.softplus(z) - y * z, reduction)


def binary_cross_entropy(p, y, reduction="none"):
    """-y log p - (1 - y) log(1 - p) on probabilities (the simplifier stabilizes p = sigmoid(z))."""
    p = F.as_node(p)
    return _reduce(-(y * F.log(p) + (1 - y) * F.log(1 - p)), reduction)


def softmax_cross_entropy(z, y, reduction="none", axis=-1):
    """-sum(y * log_softmax(z)) per example = logsumexp(z) - z[y]; ``y`` one-hot (float, same
    shape as z) or integer labels (int64, z's shape without the class axis).

    >>> import symdiff as sd, numpy as np
    >>> z = sd.var("z", (1, 3)); y = sd.var("y", (1,), dtype="int64")
    >>> sd.evaluate(sd.softmax_cross_entropy(z, y), {z: np.zeros((1, 3)), y: np.array([1])})
    array([1.09861229])
    """
    z, y = F.as_node(z), F.as_node(y, z.dtype)
    if y.dtype == "int64":
        if axis not in (-1, z.ndim - 1):
            raise ShapeError("softmax_cross_entropy: integer labels need the class axis last")
        return _reduce(C.logsumexp(z, -1) - F.take_rows(z, y), reduction)
    if y.dtype == "bool":
        y = F.cast(y, z.dtype)
    return _reduce(-F.sum(y * C.log_softmax(z, axis), axis), reduction)


def cross_entropy(p, y, reduction="none", axis=-1):
    """-sum(y * log p) on probabilities (the simplifier turns log(softmax z) into log_softmax z)."""
    p = F.as_node(p)
    return _reduce(-F.sum(y * F.log(p), axis), reduction)


def hinge(z, y, reduction="none"):
    """max(0, 1 - y z) for labels y in {-1, +1}."""
    return _reduce(C.relu(1 - y * F.as_node(z)), reduction)


def exponential_loss(z, y, reduction="none"):
    """exp(-y z) for labels y in {-1, +1}."""
    return _reduce(F.exp(-(y * F.as_node(z))), reduction)


def gaussian_nll(mean, log_var, target, reduction="mean"):
    """-log N(target; mean, exp(log_var)) = (log_var + (target - mean)^2 exp(-log_var) + log 2pi) / 2."""
    mean, log_var = F.as_node(mean), F.as_node(log_var)
    r = target - mean
    nll = 0.5 * (log_var + r * r * F.exp(-log_var) + math.log(2 * math.pi))
    return _reduce(nll, reduction)


def mixture_nll(logits, mean, log_std, target, reduction="mean"):
    """-log sum_k pi_k N(target; mean_k, std_k^2), pi = softmax(logits); all (..., K), target
    (..., 1) or (...,); computed as -logsumexp(log pi_k + log N_k)."""
    logits, mean, log_std = F.as_node(logits), F.as_node(mean), F.as_node(log_std)
    t = F.as_node(target, mean.dtype)
    if t.ndim == mean.ndim - 1:
        t = F.reshape(t, t.shape + (1,))
    z = (t - mean) * F.exp(-log_std)
    log_n = -0.5 * z * z - log_std - 0.5 * math.log(2 * math.pi)
    return _reduce(-C.logsumexp(C.log_softmax(logits) + log_n, -1), reduction)
