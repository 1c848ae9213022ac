"""Linear discriminant analysis with a shared covariance, in closed form (seeds 000/004):
with Gaussian classes of equal covariance, p(y = 1 | x) = sigmoid(w.x + b) where
w = Sigma^-1 (mu_1 - mu_0) and b = (mu_0^T Sigma^-1 mu_0 - mu_1^T Sigma^-1 mu_1) / 2
+ log(p(y=1) / p(y=0)): the same model as logistic regression, fitted differently."""
import numpy as np
from scipy.special import expit


class LDA:
    """Closed-form two-class LDA (NumPy); ``ridge`` stabilizes the covariance inverse."""

    def __init__(self, ridge=1e-6):
        self.ridge = ridge

    def get_params(self, deep=True):
        return {"ridge": self.ridge}

    def fit(self, X, y):
        X = np.asarray(X, dtype=np.float64)
        self.classes_, codes = np.unique(np.asarray(y), return_inverse=True)
        if len(self.classes_) != 2:
            raise ValueError("LDA here is the two-class model of the lecture notes")
        mu = [X[codes == k].mean(axis=0) for k in (0, 1)]
        centered = np.concatenate([X[codes == k] - mu[k] for k in (0, 1)])
        sigma = centered.T @ centered / (len(X) - 2)
        sigma += self.ridge * np.trace(sigma) / len(sigma) * np.eye(len(sigma))
        inv = np.linalg.inv(sigma)
        prior1 = np.mean(codes == 1)
        self.coef_ = inv @ (mu[1] - mu[0])
        self.intercept_ = float(0.5 * (mu[0] @ inv @ mu[0] - mu[1] @ inv @ mu[1]) +
                                np.log(prior1 / (1 - prior1)))
        return self

    def _check_fitted(self):
        if not hasattr(self, "coef_"):
            raise RuntimeError("LDA is not fitted yet: call fit(X, y)")

    def predict_proba(self, X):
        self._check_fitted()
        p = expit(np.asarray(X, dtype=np.float64) @ self.coef_ + self.intercept_)
        return np.stack([1 - p, p], axis=1)

    def predict(self, X):
        self._check_fitted()
        return self.classes_[(self.predict_proba(X)[:, 1] >= 0.5).astype(np.int64)]

    def score(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))
