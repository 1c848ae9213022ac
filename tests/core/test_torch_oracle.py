"""Gradients of a 3-layer MLP with every activation and every loss match torch.autograd
(float64, rtol 1e-10). PyTorch is an optional oracle (the ``test`` extra installs it)."""
import numpy as np
import pytest

import symdiff as sd

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
TF = torch.nn.functional

ACTIVATIONS = {
    "sigmoid": (sd.sigmoid, torch.sigmoid),
    "tanh": (sd.tanh, torch.tanh),
    "relu": (sd.relu, torch.relu),
    "leaky_relu": (lambda z: sd.leaky_relu(z, 0.01), lambda z: TF.leaky_relu(z, 0.01)),
    "elu": (sd.elu, TF.elu),
    "softplus": (sd.softplus, lambda z: TF.softplus(z, threshold=40)),
    "hard_tanh": (sd.hard_tanh, TF.hardtanh),
    "abs": (sd.abs, torch.abs),
    "swish": (sd.swish, TF.silu),
    "prelu": ("prelu", "prelu"),
}
LOSSES = ["softmax_ce_labels", "softmax_ce_onehot", "bce_logits", "mse", "hinge", "gaussian_nll",
          "cross_entropy_probs"]
SIZES = [5, 7, 6, 4]
N = 8


def _data(loss, rng):
    X = rng.standard_normal((N, SIZES[0]))
    labels = rng.integers(0, SIZES[-1], N)
    if loss == "softmax_ce_labels":
        return X, labels
    if loss in ("softmax_ce_onehot", "cross_entropy_probs"):
        return X, np.eye(SIZES[-1])[labels]
    if loss == "bce_logits":
        return X, rng.integers(0, 2, (N, SIZES[-1])).astype(float)
    if loss == "hinge":
        return X, rng.choice([-1.0, 1.0], (N, SIZES[-1]))
    return X, rng.standard_normal((N, SIZES[-1]))


def _sd_loss(loss, z, y, z2):
    if loss == "softmax_ce_labels" or loss == "softmax_ce_onehot":
        return sd.mean(sd.softmax_cross_entropy(z, y))
    if loss == "cross_entropy_probs":
        return sd.mean(sd.cross_entropy(sd.softmax(z), y))
    if loss == "bce_logits":
        return sd.mean(sd.binary_cross_entropy_with_logits(z, y))
    if loss == "mse":
        return sd.mse(z, y)
    if loss == "hinge":
        return sd.mean(sd.hinge(z, y))
    return sd.gaussian_nll(z, z2, y)


def _torch_loss(loss, z, y, z2):
    if loss == "softmax_ce_labels":
        return TF.cross_entropy(z, y)
    if loss == "softmax_ce_onehot":
        return TF.cross_entropy(z, y)
    if loss == "cross_entropy_probs":
        return -(y * torch.log(torch.softmax(z, -1))).sum(-1).mean()
    if loss == "bce_logits":
        return TF.binary_cross_entropy_with_logits(z, y)
    if loss == "mse":
        return TF.mse_loss(z, y)
    if loss == "hinge":
        return torch.clamp(1 - y * z, min=0).mean()
    return (0.5 * (z2 + (y - z) ** 2 * torch.exp(-z2) + np.log(2 * np.pi))).mean()


def _activate(lib, act, z, alpha):
    if act == "prelu":   # parametric ReLU with a learned slope per unit
        return sd.prelu(z, alpha) if lib == "sd" else torch.where(z > 0, z, alpha * z)
    return ACTIVATIONS[act][0 if lib == "sd" else 1](z)


def _forward(lib, act, h, p):
    W1, W2, W3, b1, b2, b3, Wv, a1, a2 = p
    h = _activate(lib, act, h @ W1 + b1, a1)
    h = _activate(lib, act, h @ W2 + b2, a2)
    return h @ W3 + b3, h @ Wv       # a second head: the log-variance of gaussian_nll


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("act", sorted(ACTIVATIONS))
def test_mlp_gradients_match_torch(act, loss):
    rng = np.random.default_rng(abs(hash((act, loss))) % 2 ** 32)
    Xv, Yv = _data(loss, rng)
    shapes = [(SIZES[i], SIZES[i + 1]) for i in range(3)]
    values = [rng.standard_normal(s) / np.sqrt(s[0]) for s in shapes]
    values += [rng.standard_normal(s[1]) * 0.1 for s in shapes]
    values += [rng.standard_normal((SIZES[2], SIZES[3])) / 3, np.full(SIZES[1], 0.2),
               np.full(SIZES[2], 0.3)]
    names = ["W1", "W2", "W3", "b1", "b2", "b3", "Wv", "a1", "a2"]
    params = [sd.param(n, v.shape) for n, v in zip(names, values)]
    tparams = [torch.tensor(v, requires_grad=True) for v in values]
    labels = loss == "softmax_ce_labels"
    x = sd.var("x", (None, SIZES[0]))
    y = sd.var("y", (None,) if labels else (None, SIZES[-1]), "int64" if labels else "float64")
    z, z2 = _forward("sd", act, x, params)
    tz, tz2 = _forward("torch", act, torch.tensor(Xv), tparams)
    L = _sd_loss(loss, z, y, z2)
    Lt = _torch_loss(loss, tz, torch.tensor(Yv), tz2)
    got = sd.evaluate([L] + sd.grad(L, params), {x: Xv, y: Yv, **dict(zip(params, values))})
    tgrads = torch.autograd.grad(Lt, tparams, allow_unused=True)
    want = [Lt.detach().numpy()] + [np.zeros_like(v) if g is None else g.numpy()
                                    for g, v in zip(tgrads, values)]
    for name, a, b in zip(["loss"] + names, got, want):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-13, err_msg=f"{act}/{loss}/{name}")
