"""Linear discriminant analysis with a shared covariance, in closed form:
with Gaussian classes of equal covariance, p(y = 1 | x) = sigmoid(w.x + b) where
w = Sigma^-1 (mu_1 - mu_0) and b = (mu_0^T Sigma^-1 mu_0 - mu_1^T Sigma^-1 mu_1) / 2
+ log(p(y=1) / p(y=0)): the same model as logistic regression, fitted differently."""
import numpy as np
from scipy.special import expit

from .base import BaseEstimator, Labels, check_is_fitted, validate_data


class LDA(Labels, BaseEstimator):
    """Closed-form two-class LDA (NumPy); ``ridge`` stabilizes the covariance inverse.

    >>> import numpy as np
    >>> from symdiff.models import LDA
    >>> X, y = np.array([[0.0, 1.0], [1.0, 0.0], [3.0, 4.0], [4.0, 3.0]]), np.array([0, 0, 1, 1])
    >>> LDA().fit(X, y).predict([[0.5, 0.5], [3.5, 3.5]]).tolist()
    [0, 1]
    """

    binary = True

    def __init__(self, ridge=1e-6):
        self.ridge = ridge

    def fit(self, X, y):
        X, y = self._validate(X, y, reset=True)
        self._set_targets(y)
        codes = np.searchsorted(self.classes_, y)
        mu = [X[codes == k].mean(axis=0) for k in (0, 1)]
        centered = np.concatenate([X[codes == k] - mu[k] for k in (0, 1)])
        sigma = centered.T @ centered / max(len(X) - 2, 1)
        sigma += self.ridge * np.trace(sigma) / len(sigma) * np.eye(len(sigma))
        inv = np.linalg.pinv(sigma)              # pinv: a constant feature leaves sigma singular
        prior1 = np.mean(codes == 1)
        self.coef_ = inv @ (mu[1] - mu[0])
        self.intercept_ = float(0.5 * (mu[0] @ inv @ mu[0] - mu[1] @ inv @ mu[1]) +
                                np.log(prior1 / (1 - prior1)))
        return self

    def decision_function(self, X):
        """The logit w.x + b: positive for ``classes_[1]``."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.float64) @ self.coef_ + \
            self.intercept_

    def predict_proba(self, X):
        p = expit(self.decision_function(X))
        return np.stack([1 - p, p], axis=1)

    def predict(self, X):
        positive = self.decision_function(X) > 0
        return self.classes_[positive.astype(np.int64)]
