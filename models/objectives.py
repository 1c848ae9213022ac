"""Classic differentiation benchmarks written in the tensor language: Rosenbrock, a Gaussian
mixture log-likelihood with packed Cholesky factors, and bundle-adjustment residuals.

Each is a plain function of symdiff nodes (so ``sd.grad``, ``sd.jacobian`` and ``sd.compile``
apply), built from slices, gathers and einsum: no selection matrices.

>>> import numpy as np, symdiff as sd
>>> from symdiff.models.objectives import rosenbrock
>>> x = sd.var("x", (4,))
>>> float(sd.evaluate(rosenbrock(x), {x: np.ones(4)}))
0.0
"""
import numpy as np

import symdiff as sd


def rosenbrock(x):
    """sum_i 100 (x[i+1] - x[i]^2)^2 + (1 - x[i])^2 over a vector x; its minimum is x = 1."""
    return sd.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)


def tril_positions(d):
    """(d, d) int64: the position in the packed strictly-lower part of (i, j), i > j (row by
    row, numpy.tril_indices(d, -1) order); 0 elsewhere (masked out by ``tril``)."""
    rows, cols = np.tril_indices(d, -1)
    where = np.zeros((d, d), dtype=np.int64)
    where[rows, cols] = np.arange(len(rows))
    return where


def cholesky_factor(icf, d):
    """Q (K, d, d) lower triangular from packed rows icf (K, d + d(d-1)/2): diagonal
    exp(icf[:, :d]) (positive, so Q is a valid Cholesky factor), then the strictly lower part.
    Built by a gather and a mask: no dense selection matmul."""
    diagonal = sd.exp(icf[:, None, :d]) * sd.eye(d)
    if d == 1:                                   # no strictly lower part to gather from
        return diagonal
    return sd.tril(sd.take(icf[:, d:], tril_positions(d), axis=1), -1) + diagonal


def gmm_loglik(x, alphas, means, icf):
    """Per-point log-likelihood of a Gaussian mixture, shape (n,):

        log p(x_i) = logsumexp_k [ log w_k + log det Q_k - |Q_k (x_i - mu_k)|^2 / 2 ] - d/2 log 2 pi

    with weights w = softmax(alphas), means mu (K, d) and precision Q_k^T Q_k, Q_k from
    ``cholesky_factor(icf, d)``. Equals scikit-learn's ``GaussianMixture.score_samples`` with
    Q_k = precisions_cholesky_[k].T.
    """
    d = x.shape[-1]
    Q = cholesky_factor(icf, d)
    y = sd.einsum("kij,nkj->nki", Q, x[:, None, :] - means)      # Q_k (x_i - mu_k)
    logw = alphas - sd.logsumexp(alphas)
    lp = logw + sd.sum(icf[:, :d], axis=1) - 0.5 * sd.sum(y * y, axis=2)
    return sd.logsumexp(lp, axis=1) - 0.5 * d * np.log(2 * np.pi)


def pack_precision_cholesky(prec_chol):
    """icf (K, d + d(d-1)/2) from scikit-learn's upper ``precisions_cholesky_`` (K, d, d)."""
    L = np.transpose(prec_chol, (0, 2, 1))
    d = L.shape[-1]
    rows, cols = np.tril_indices(d, -1)
    return np.concatenate([np.log(np.diagonal(L, axis1=1, axis2=2)), L[:, rows, cols]], axis=1)


def _cross(a, b):
    """Row-wise cross product of (n, 3) arrays, from slices."""
    return sd.stack([a[:, 1] * b[:, 2] - a[:, 2] * b[:, 1],
                     a[:, 2] * b[:, 0] - a[:, 0] * b[:, 2],
                     a[:, 0] * b[:, 1] - a[:, 1] * b[:, 0]], axis=1)


def rotate(r, X):
    """Rodrigues: rotate rows of X by the axis-angle vectors r (n, 3):
    X cos t + (k x X) sin t + k (k . X)(1 - cos t), t = |r|, k = r / t."""
    theta = sd.sqrt(sd.sum(r * r, axis=1, keepdims=True) + 1e-30)   # finite gradient at r = 0
    k = r / theta
    c, s = sd.cos(theta), sd.sin(theta)
    return X * c + _cross(k, X) * s + k * sd.sum(k * X, axis=1, keepdims=True) * (1 - c)


def bundle_residuals(cams, points, cam_idx, pt_idx, observed):
    """Reprojection residuals (n_obs, 2) of bundle adjustment (the Snavely camera model):
    camera rows (rotation 3, translation 3, focal f, radial k1, k2) and 3-D points are
    gathered per observation; p = -P[:2] / P[2] for P = R X + t, and the prediction is
    f (1 + k1 |p|^2 + k2 |p|^4) p."""
    c = sd.take(cams, cam_idx, axis=0)                  # (n_obs, 9)
    X = sd.take(points, pt_idx, axis=0)                 # (n_obs, 3)
    P = rotate(c[:, :3], X) + c[:, 3:6]
    p = -P[:, :2] / P[:, 2:3]
    r2 = sd.sum(p * p, axis=1, keepdims=True)
    dist = 1 + c[:, 7:8] * r2 + c[:, 8:9] * r2 * r2
    return c[:, 6:7] * dist * p - observed
