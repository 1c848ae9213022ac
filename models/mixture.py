"""A Gaussian mixture fitted by gradient ascent on its log-likelihood, in compiled kernels.

The parameters are unconstrained: weights w = softmax(alphas), means mu_k, and per component
a packed lower-triangular factor Q_k of the precision Q_k^T Q_k whose diagonal is
exp(icf[k, :d]) (so every Q_k is a valid Cholesky factor without constraints) and whose
strictly lower part is icf[k, d:] (``objectives.cholesky_factor``: a gather and ``tril``).
Each step is one kernel call computing the mean log-likelihood

    L = 1/n sum_i log sum_k w_k N(x_i | mu_k, (Q_k^T Q_k)^-1)

and its gradient, and updating the parameters in place by Adam (ascent):
m <- b1 m + (1 - b1) g, v <- b2 v + (1 - b2) g^2, theta <- theta + lr m_hat / (sqrt(v_hat) + eps)
with the bias corrections m_hat = m / (1 - b1^t), v_hat = v / (1 - b2^t).

>>> import numpy as np
>>> from symdiff.models.mixture import GaussianMixtureGD
>>> X = np.random.default_rng(0).normal(size=(200, 2)) + np.repeat([[0, 0], [6, 6]], 100, 0)
>>> gm = GaussianMixtureGD(2, steps=300, seed=0).fit(X)
>>> np.sort(gm.means_[:, 0]).round().tolist() == [0.0, 6.0]
True
"""
import numpy as np

import symdiff as sd

from .base import BaseEstimator, DensityMixin, check_is_fitted, keep_params, validate_data
from .objectives import gmm_loglik
from .optimizers import optimizer_updates


class GaussianMixtureGD(DensityMixin, BaseEstimator):
    """Full-covariance Gaussian mixture, maximum likelihood by Adam on (alphas, means, icf);
    a scikit-learn density estimator (``score_samples``, ``score``)."""

    def __init__(self, n_components=1, steps=500, learning_rate=0.05, seed=0,
                 backend="numba"):
        keep_params(self, locals())

    def _init(self, X):
        """Means at distinct random points, unit weights, precisions from the data's scale."""
        rng = np.random.default_rng(self.seed)
        K, d = self.n_components, X.shape[1]
        if len(X) < K:
            raise ValueError(f"GaussianMixtureGD: {len(X)} points for {K} components")
        means = X[rng.choice(len(X), K, replace=False)].copy()
        icf = np.zeros((K, d + d * (d - 1) // 2))
        icf[:, :d] = -np.log(X.std(axis=0) + 1e-12)      # Q = diag(1 / std)
        return {"alphas": np.zeros(K), "means": means, "icf": icf}

    def fit(self, X, y=None):
        """Maximize the mean log-likelihood of the rows of X by ``steps`` Adam steps (``y`` is
        ignored); ``loglik_curve_`` holds it before each step."""
        X = validate_data(self, X, dtype=np.float64, order="C")
        x = sd.var("x", ("n", X.shape[1]))
        init = self._init(X)
        params = {name: sd.param(name, v.shape) for name, v in init.items()}
        loss = sd.mean(gmm_loglik(x, params["alphas"], params["means"], params["icf"]))
        # ascent on the log-likelihood: Adam's descent on its negative
        grads = sd.grad(-loss, list(params.values()))
        updates, state, _ = optimizer_updates("adam", list(params.values()), grads,
                                              self.learning_rate)
        state.update({p: init[name].copy() for name, p in params.items()})
        step = sd.compile([x], loss, updates=updates, state=state, backend=self.backend)
        self.loglik_curve_ = np.array([float(step(X)) for _ in range(self.steps)])
        alphas, self.means_, self.icf_ = (state[params[k]] for k in ("alphas", "means", "icf"))
        self.weights_ = np.exp(alphas - alphas.max()) / np.exp(alphas - alphas.max()).sum()
        self._score = sd.compile([x], gmm_loglik(x, *(sd.const(v) for v in (
            alphas, self.means_, self.icf_))), backend=self.backend)
        return self

    def score_samples(self, X):
        """log p(x_i) per row."""
        check_is_fitted(self)
        return self._score(validate_data(self, X, reset=False, dtype=np.float64, order="C"))

    def score(self, X, y=None):
        """Mean log-likelihood per point (scikit-learn's GaussianMixture.score)."""
        return float(np.mean(self.score_samples(X)))
