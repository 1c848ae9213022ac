"""scikit-learn estimators over the model zoo, trained by whole epochs inside compiled
kernels: fit (with a per-epoch ``callback``), partial_fit, warm_start, early stopping,
predict, predict_proba, score, and scikit-learn's parameter protocol and tags
(``symdiff.models.base`` has the training conventions; scikit-learn >= 1.6 is needed, from the
``demo`` or ``test`` extra).

>>> import numpy as np
>>> from sklearn.base import is_classifier, is_regressor
>>> from sklearn.model_selection import cross_val_score
>>> from symdiff.models import LogisticRegression, MLPRegressor
>>> X = np.random.default_rng(0).normal(size=(60, 2))
>>> y = (X[:, 0] + X[:, 1] > 0).astype(int)
>>> bool(cross_val_score(LogisticRegression(early_stopping=False), X, y, cv=3).mean() >= 0.9)
True
>>> is_classifier(MLPRegressor()), is_regressor(MLPRegressor())
(False, True)
"""
import numpy as np

from . import networks
from .base import Classifier, Regressor, keep_params
from .dask_fit import over_rows
from .train import log_epoch


class MLPClassifier(Classifier):
    """MLP with a softmax output and cross-entropy, trained by mini-batch SGD (with momentum)
    or by ``optimizer=`` "sgd" | "momentum" | "nesterov" | "adam" | "adamw" | "rmsprop" |
    "adagrad" (``symdiff.models.optimizers``, torch.optim's update rules). ``epochs`` is
    scikit-learn's ``max_iter``, ``patience`` its ``n_iter_no_change``.

    >>> from symdiff.models import MLPClassifier
    >>> import numpy as np
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, float)
    >>> y = np.array([0, 1, 1, 0] * 8)
    >>> clf = MLPClassifier(hidden=(8,), lr=0.5, epochs=300, seed=1)
    >>> clf.fit(X, y).score(X, y)
    1.0
    >>> stop = lambda est, epoch, loss: loss < 0.1            # a true return stops training
    >>> clf.fit(X, y, callback=stop).n_iter_ < 300, len(clf.loss_curve_) == clf.n_iter_
    (True, True)
    """

    def __init__(self, hidden=(128, 64), activation="tanh", lr=0.05, momentum=0.9,
                 batch_size=32, epochs=30, l2=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=5, seed=0, dtype="float32", verbose=0,
                 optimizer=None, warm_start=False, backend="numba"):
        keep_params(self, locals())

    def _build(self, n_in):
        return _mlp(self, n_in, len(self.classes_), "softmax")

    def _encode(self, codes):
        return codes.astype(np.int64)

    def _codes(self, X):
        return np.argmax(self.trainer_.predict("logits", X), axis=1)

    @over_rows
    def predict_proba(self, X):
        """softmax of the logits: one column per class of ``classes_``."""
        return self._predict("proba", X)


class SoftmaxRegression(MLPClassifier):
    """p(y | x) = softmax(x W + b): multinomial logistic regression (an MLP without hidden
    layers).

    >>> import numpy as np
    >>> from symdiff.models import SoftmaxRegression
    >>> X = np.repeat([[0.0, 0.0], [4.0, 0.0], [0.0, 4.0]], 10, axis=0)
    >>> y = np.repeat([0, 1, 2], 10)
    >>> SoftmaxRegression(early_stopping=False).fit(X, y).score(X, y)
    1.0
    """

    hidden, activation, optimizer = (), "linear", None

    def __init__(self, lr=0.1, momentum=0.9, batch_size=32, epochs=100, l2=0.0,
                 early_stopping=True, validation_fraction=0.1, patience=10, seed=0,
                 dtype="float64", verbose=0, warm_start=False, backend="numba"):
        keep_params(self, locals())


class LogisticRegression(Classifier):
    """p(y = 1 | x) = sigmoid(w.x + b) fitted by maximum likelihood: binary cross-entropy
    -[y log p + (1 - y) log(1 - p)] averaged over the batch. ``decision_function`` is the
    logit w.x + b.

    >>> import numpy as np
    >>> from symdiff.models import LogisticRegression
    >>> X, y = np.array([[-2.0], [-1.0], [1.0], [2.0]] * 5), np.array([0, 0, 1, 1] * 5)
    >>> clf = LogisticRegression(early_stopping=False).fit(X, y)
    >>> clf.predict([[-3.0], [3.0]]).tolist(), bool(clf.coef_[0] > 0)
    ([0, 1], True)
    """

    binary = True

    def __init__(self, lr=0.1, momentum=0.9, batch_size=32, epochs=100, l2=0.0,
                 early_stopping=True, validation_fraction=0.1, patience=10, seed=0,
                 dtype="float64", verbose=0, warm_start=False, backend="numba"):
        keep_params(self, locals())

    def _build(self, n_in):
        return networks.logistic_regression(n_in, self.l2, self.dtype, self.seed)

    def _encode(self, codes):
        return codes.astype(self.dtype)

    def _codes(self, X):
        return (self.trainer_.predict("logits", X) > 0).astype(np.int64)

    @over_rows
    def decision_function(self, X):
        """The logit w.x + b: positive for ``classes_[1]``."""
        return self._predict("logits", X)

    @over_rows
    def predict_proba(self, X):
        """Columns 1 - p and p = sigmoid(w.x + b), for ``classes_[0]`` and ``classes_[1]``."""
        p = self._predict("proba", X)
        return np.stack([1 - p, p], axis=1)

    @property
    def coef_(self):
        return self.trainer_.params[self.trainer_.model.params[0]]

    @property
    def intercept_(self):
        return float(self.trainer_.params[self.trainer_.model.params[1]])


class LinearSVM(Classifier):
    """Linear SVM: lambda ||w||^2 + mean hinge loss max(0, 1 - y (w.x + b)),
    labels y = -1 for ``classes_[0]`` and +1 for ``classes_[1]``.

    >>> import numpy as np
    >>> from symdiff.models import LinearSVM
    >>> X, y = np.array([[-2.0], [-1.0], [1.0], [2.0]] * 5), np.array(["a", "a", "b", "b"] * 5)
    >>> LinearSVM(early_stopping=False).fit(X, y).predict([[-3.0], [3.0]]).tolist()
    ['a', 'b']
    """

    binary = True

    def __init__(self, lam=0.01, lr=0.05, momentum=0.9, batch_size=32, epochs=100,
                 early_stopping=True, validation_fraction=0.1, patience=10, seed=0,
                 dtype="float64", verbose=0, warm_start=False, backend="numba"):
        keep_params(self, locals())

    def _build(self, n_in):
        return networks.linear_svm(n_in, self.lam, self.dtype, self.seed)

    def _encode(self, codes):
        return np.where(codes == 1, 1.0, -1.0).astype(self.dtype)

    @over_rows
    def decision_function(self, X):
        """The score w.x + b: positive for ``classes_[1]``."""
        return self._predict("score", X)

    def _codes(self, X):
        return (self.trainer_.predict("score", X) > 0).astype(np.int64)


class Perceptron(LinearSVM):
    """The perceptron rule: SGD with learning rate 1 and batch 1 on the perceptron criterion
    sum max(0, -y (w.x + b)) (``networks.perceptron_criterion``), labels y = -1 for
    ``classes_[0]`` and +1 for ``classes_[1]``, examples in order, stopping after the first
    epoch without a mistake (Rosenblatt's rule: w <- w + y x on each mistake) or after
    ``max_epochs``. After fit, ``n_updates_`` counts the updates made and ``converged_`` says whether the last epoch made
    no mistake. Without ``bias`` the plane passes through the origin; on data separable with
    margin gamma and radius R = max ||x|| it converges after at most (R / gamma)^2 updates
    (Novikoff's theorem).

    >>> import numpy as np
    >>> from symdiff.models import Perceptron
    >>> X = np.array([[-2.0, 1.0], [-1.0, -1.0], [1.0, 1.0], [2.0, -1.0]])
    >>> p = Perceptron().fit(X, [0, 0, 1, 1])
    >>> p.converged_, p.predict(X).tolist()
    (True, [0, 0, 1, 1])
    """

    _step_outputs = ("mistakes",)
    seed, batch_size = 0, 1

    def __init__(self, max_epochs=1000, bias=False, dtype="float64", verbose=0,
                 warm_start=False, backend="numba"):
        keep_params(self, locals())

    def _max_epochs(self):
        return self.max_epochs

    def _build(self, n_in):
        self.n_updates_, self.converged_ = 0, False
        return networks.perceptron(n_in, self.bias, self.dtype)

    def _trainer_args(self):
        return {"lr": 1.0, "outputs": self._step_outputs, "backend": self.backend}

    def _run(self, X, y, epochs, callback, X_val=None, y_val=None):
        """Epochs over the rows in order until one makes no mistake."""
        signs, done, last = self._targets(y), self._epoch_done(callback), self.n_iter_ + epochs
        for _ in range(epochs):
            record = self.trainer_.run_epoch(X, signs, 1, self._rng, shuffle=False)
            mistakes = int(record[:, 1].sum())
            self.n_updates_ += mistakes
            self.converged_ = mistakes == 0
            row = {"epoch": self.n_iter_ + 1, "loss": float(np.mean(record[:, 0]))}
            if self.verbose:
                log_epoch(row, last)
            if done(row) or self.converged_:
                break

    @property
    def n_epochs_(self):
        """Epochs run (``n_iter_``)."""
        return self.n_iter_

    @property
    def coef_(self):
        return self.trainer_.params[self.trainer_.model.params[0]]

    def _codes(self, X):
        return (self.trainer_.predict("score", X) >= 0).astype(np.int64)


def _mlp(est, n_in, n_out, output, **kw):
    """The estimator's MLP: its hidden layers and activation, an ``output`` head."""
    return networks.mlp(n_in, est.hidden, n_out, est.activation, output,
                        getattr(est, "l2", 0.0), est.dtype, est.seed, **kw)


class MLPRegressor(Regressor):
    """MLP with a linear output and MSE, or a Gaussian output (predicted mean and variance)
    with its negative log-likelihood (``output="gaussian"``); ``score`` is R^2.

    >>> import numpy as np
    >>> from symdiff.models import MLPRegressor
    >>> X = np.linspace(-1, 1, 40)[:, None]
    >>> reg = MLPRegressor(hidden=(16,), lr=0.1, epochs=300).fit(X, X[:, 0] ** 2)
    >>> reg.score(X, X[:, 0] ** 2) > 0.95
    True
    """

    def __init__(self, hidden=(64,), activation="tanh", output="linear", lr=0.05,
                 momentum=0.9, batch_size=32, epochs=200, l2=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=10, seed=0, dtype="float64", verbose=0,
                 optimizer=None, warm_start=False, backend="numba"):
        keep_params(self, locals())

    def _build(self, n_in):
        if self.output not in ("linear", "gaussian"):
            raise ValueError(f"MLPRegressor: output={self.output!r}; use 'linear' or "
                             f"'gaussian' (MixtureDensityNetwork for a mixture)")
        return _mlp(self, n_in, self.n_outputs_, self.output)

    @over_rows
    def predict(self, X):
        """The predicted mean of each row: a vector for one output, else (rows, outputs)."""
        return self._vector(self._predict("mean", X))

    @over_rows
    def predict_variance(self, X):
        """The predicted variance (rows, outputs) of ``output="gaussian"``."""
        X = self._X(X)
        if self.output != "gaussian":
            raise ValueError("MLPRegressor.predict_variance needs output='gaussian'")
        return np.exp(self.trainer_.predict("log_var", X))


class MixtureDensityNetwork(Regressor):
    """p(t | x) = sum_k pi_k(x) N(t; mu_k(x), sigma_k(x)^2), 1-D targets;
    ``predict`` is the mean of the most probable component, ``score`` the mean
    log-likelihood (higher is better; not R^2).

    >>> import numpy as np
    >>> from symdiff.models import MixtureDensityNetwork
    >>> X = np.repeat(np.linspace(-1, 1, 20), 2)[:, None]
    >>> t = np.where(np.arange(40) % 2, X[:, 0], -X[:, 0])     # two branches: t = +x, -x
    >>> mdn = MixtureDensityNetwork(hidden=(8,), components=2, lr=0.01, epochs=300).fit(X, t)
    >>> [a.shape for a in mdn.mixture(X[:3])]
    [(3, 2), (3, 2), (3, 2)]
    """

    l2 = 0.0

    def __init__(self, hidden=(32,), activation="tanh", components=3, lr=0.005, momentum=0.9,
                 batch_size=32, epochs=1500, early_stopping=False, validation_fraction=0.1,
                 patience=50, seed=0, dtype="float64", verbose=0, warm_start=False,
                 backend="numba"):
        keep_params(self, locals())

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = False
        # score is a mean log-likelihood in nats, not R^2: scikit-learn's R^2 > 0.5
        # threshold for regressors does not measure it (its other checks do apply)
        tags.regressor_tags.poor_score = True
        return tags

    def _set_targets(self, y, classes=None):
        if y.shape[1] != 1:
            raise ValueError(f"MixtureDensityNetwork models 1-D targets; y has "
                             f"{y.shape[1]} columns")
        self.n_outputs_ = 1

    def _build(self, n_in):
        return _mlp(self, n_in, 1, "mdn", components=self.components)

    def mixture(self, X):
        """(weights, means, standard deviations), each of shape (samples, components)."""
        X, t = self._X(X), self.trainer_
        return t.predict("weights", X), t.predict("mean", X), t.predict("std", X)

    def nll(self, X, y):
        """Mean negative log-likelihood of targets ``y`` under the predicted mixtures."""
        from scipy.special import logsumexp
        w, mu, sd_ = self.mixture(X)
        t = np.asarray(y, dtype=float).reshape(-1, 1)
        # log sum_k w_k N(t; mu_k, sd_k^2), summed in log space (never log 0)
        log_n = -0.5 * ((t - mu) / sd_) ** 2 - np.log(sd_) - 0.5 * np.log(2 * np.pi)
        return float(-np.mean(logsumexp(np.log(w) + log_n, axis=1)))

    @over_rows
    def predict(self, X):
        """The mean of the most probable component."""
        w, mu, _ = self.mixture(X)
        return mu[np.arange(len(mu)), np.argmax(w, axis=1)]

    def score(self, X, y):
        """Minus the mean negative log-likelihood (higher is better)."""
        return -self.nll(X, y)
