"""The Gaussian mixture fitted by gradient ascent (Adam in a compiled kernel, Cholesky-factor
parameters) reaches the log-likelihood of scikit-learn's EM on the iris data."""
import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.mixture import GaussianMixture

from symdiff.models.mixture import GaussianMixtureGD


def test_reaches_the_em_log_likelihood_on_iris():
    X = load_iris().data
    gm = GaussianMixtureGD(3, steps=1500, learning_rate=0.05, seed=0).fit(X)
    em = GaussianMixture(3, random_state=0, n_init=5).fit(X)
    # EM's best of 5 starts is a local optimum too: the gradient fit must come within 0.5%
    assert gm.score(X) == pytest.approx(em.score(X), rel=5e-3)
    assert gm.loglik_curve_[-1] > gm.loglik_curve_[0] + 3
    np.testing.assert_allclose(gm.weights_.sum(), 1.0)
    # its per-point log-likelihoods are those of the fitted density, evaluated independently
    Q = np.zeros((3, 4, 4))
    for k in range(3):
        Q[k][np.tril_indices(4, -1)] = gm.icf_[k, 4:]
        Q[k] += np.diag(np.exp(gm.icf_[k, :4]))
    cov = [np.linalg.inv(q.T @ q) for q in Q]
    from scipy.stats import multivariate_normal
    dens = sum(w * multivariate_normal(m, c).pdf(X) for w, m, c in
               zip(gm.weights_, gm.means_, cov))
    np.testing.assert_allclose(gm.score_samples(X), np.log(dens), rtol=1e-10)


def test_errors():
    with pytest.raises(ValueError, match="2 points for 3 components"):
        GaussianMixtureGD(3).fit(np.zeros((2, 2)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        GaussianMixtureGD(1).fit(np.array([[np.nan, 1.0]]))
    with pytest.raises(AttributeError, match="GaussianMixtureGD instance is not fitted yet"):
        GaussianMixtureGD(2).score_samples(np.zeros((2, 2)))
