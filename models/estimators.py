"""scikit-learn-style estimators over the model zoo: fit, predict, predict_proba, score,
get_params, set_params. Training runs whole epochs inside compiled kernels."""
import inspect

import numpy as np

from . import networks
from .train import Trainer, fit


class _Estimator:
    """get_params/set_params from the constructor's keyword arguments (sklearn's protocol)."""

    _step_outputs = ()

    def get_params(self, deep=True):
        names = [p for p in inspect.signature(type(self).__init__).parameters if p != "self"]
        return {n: getattr(self, n) for n in names}

    def set_params(self, **params):
        valid = self.get_params()
        for k, v in params.items():
            if k not in valid:
                raise ValueError(f"{type(self).__name__}: unknown parameter {k!r}; valid: "
                                 f"{sorted(valid)}")
            setattr(self, k, v)
        return self

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    def _check_fitted(self):
        if not hasattr(self, "trainer_"):
            raise RuntimeError(f"{type(self).__name__} is not fitted yet: call fit(X, y)")

    def _as_x(self, X, fitting=False):
        kind = np.asarray(X).dtype.kind
        if kind not in "biuf":                  # complex would lose its imaginary part
            raise ValueError(f"X must be real numbers, got dtype {np.asarray(X).dtype}")
        X = np.ascontiguousarray(X, dtype=self.dtype)
        if X.ndim != 2:
            raise ValueError(f"X must be 2-d (samples, features), got shape {X.shape}")
        if not np.all(np.isfinite(X)):      # training on NaN fits NaN, silently
            raise ValueError("X contains NaN or inf")
        if not fitting and hasattr(self, "n_features_in_") and X.shape[1] != self.n_features_in_:
            raise ValueError(f"X has {X.shape[1]} features, {type(self).__name__} was fitted "
                             f"with {self.n_features_in_}")
        return X

    def _as_y(self, X, y, numeric=False):
        """The targets as an array with one row per row of X (ValueError otherwise)."""
        y = np.asarray(y)
        if y.ndim == 0 or len(y) != len(X):
            raise ValueError(f"y has {y.shape[0] if y.ndim else 0} rows, X has {len(X)}: "
                             f"give one target per sample")
        if numeric and not np.all(np.isfinite(np.asarray(y, dtype=float))):
            raise ValueError("y contains NaN or inf")
        return y

    def _classes(self, X, y):
        """(classes_, codes) of the labels; a classifier needs at least two classes."""
        classes, codes = np.unique(self._as_y(X, y), return_inverse=True)
        if len(classes) < 2:
            raise ValueError(f"y has {len(classes)} class(es); a classifier needs at least 2")
        return classes, codes

    def _train(self, model, X, y, score):
        """Compile the model, hold out a validation split for early stopping, train."""
        self.n_features_in_ = X.shape[1]
        self.trainer_ = Trainer(model, self.lr, self.momentum, outputs=self._step_outputs,
                                optimizer=getattr(self, "optimizer", None))
        X_val = y_val = None
        if self.early_stopping and self.validation_fraction:
            idx = np.random.default_rng(self.seed).permutation(len(X))
            n_val = max(1, int(round(len(X) * self.validation_fraction)))
            X, y, X_val, y_val = X[idx[n_val:]], y[idx[n_val:]], X[idx[:n_val]], y[idx[:n_val]]
        self.history_ = fit(self.trainer_, X, y, self.epochs, self.batch_size, score, X_val,
                            y_val, self.patience, self.seed, self.verbose)
        return self


class _Classifier(_Estimator):
    """Classifiers with integer class codes, predict_proba and accuracy."""

    def fit(self, X, y):
        X = self._as_x(X, fitting=True)
        self.classes_, codes = self._classes(X, y)
        model, targets = self._build(X.shape[1], len(self.classes_), codes)
        return self._train(model, X, targets,
                           lambda Xv, yv: float(np.mean(self._codes(Xv) == self._target_codes(yv))))

    def _target_codes(self, yv):
        return yv

    def predict(self, X):
        self._check_fitted()
        return self.classes_[self._codes(X)]

    def score(self, X, y):
        """Mean accuracy."""
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPClassifier(_Classifier):
    """MLP with a softmax output and cross-entropy, trained by mini-batch SGD (with momentum)
    or by ``optimizer=`` "sgd" | "momentum" | "nesterov" | "adam" | "adamw" | "rmsprop" |
    "adagrad" (``symdiff.models.optimizers``, torch.optim's update rules).

    >>> from symdiff.models import MLPClassifier
    >>> import numpy as np
    >>> X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]] * 8, float)
    >>> y = np.array([0, 1, 1, 0] * 8)
    >>> clf = MLPClassifier(hidden=(8,), lr=0.5, epochs=300, early_stopping=False, seed=1)
    >>> clf.fit(X, y).score(X, y)
    1.0
    """

    def __init__(self, hidden=(128, 64), activation="tanh", lr=0.05, momentum=0.9,
                 batch_size=32, epochs=30, l2=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=5, seed=0, dtype="float32", verbose=1,
                 optimizer=None):
        self.hidden, self.activation, self.lr, self.momentum = hidden, activation, lr, momentum
        self.optimizer = optimizer        # None: SGD (with momentum), else optimizers.py
        self.batch_size, self.epochs, self.l2 = batch_size, epochs, l2
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.patience, self.seed, self.dtype, self.verbose = patience, seed, dtype, verbose

    def _build(self, n_in, n_classes, codes):
        model = networks.mlp(n_in, self.hidden, n_classes, self.activation, "softmax",
                             self.l2, self.dtype, self.seed)
        return model, codes.astype(np.int64)

    def _codes(self, X):
        return np.argmax(self.trainer_.predict("logits", self._as_x(X)), axis=1)

    def predict_proba(self, X):
        self._check_fitted()
        return self.trainer_.predict("proba", self._as_x(X))


class SoftmaxRegression(MLPClassifier):
    """p(y | x) = softmax(x W + b): multinomial logistic regression."""

    def __init__(self, lr=0.1, momentum=0.9, batch_size=32, epochs=100, l2=0.0,
                 early_stopping=True, validation_fraction=0.1, patience=10, seed=0,
                 dtype="float64", verbose=1):
        super().__init__((), "linear", lr, momentum, batch_size, epochs, l2, early_stopping,
                         validation_fraction, patience, seed, dtype, verbose)


class LogisticRegression(_Classifier):
    """p(y = 1 | x) = sigmoid(w.x + b) fitted by maximum likelihood: binary cross-entropy
    (seeds 000/001)."""

    def __init__(self, lr=0.1, momentum=0.9, batch_size=32, epochs=100, l2=0.0,
                 early_stopping=True, validation_fraction=0.1, patience=10, seed=0,
                 dtype="float64", verbose=1):
        self.lr, self.momentum, self.batch_size, self.epochs, self.l2 = \
            lr, momentum, batch_size, epochs, l2
        self.early_stopping, self.validation_fraction = early_stopping, validation_fraction
        self.patience, self.seed, self.dtype, self.verbose = patience, seed, dtype, verbose

    def _build(self, n_in, n_classes, codes):
        if n_classes != 2:
            raise ValueError(f"LogisticRegression is binary; got {n_classes} classes "
                             f"(use SoftmaxRegression)")
        model = networks.logistic_regression(n_in, self.l2, self.dtype, self.seed)
        return model, codes.astype(self.dtype)

    def _codes(self, X):
        return (self.trainer_.predict("proba", self._as_x(X)) >= 0.5).astype(np.int64)

    def predict_proba(self, X):
        self._check_fitted()
        p = self.trainer_.predict("proba", self._as_x(X))
        return np.stack([1 - p, p], axis=1)

    @property
    def coef_(self):
        return self.trainer_.params[self.trainer_.model.params[0]]

    @property
    def intercept_(self):
        return float(self.trainer_.params[self.trainer_.model.params[1]])


class LinearSVM(_Classifier):
    """Linear SVM: lambda ||w||^2 + mean hinge loss max(0, 1 - y (w.x + b)) (seeds 004)."""

    def __init__(self, lam=0.01, lr=0.05, momentum=0.9, batch_size=32, epochs=100,
                 early_stopping=True, validation_fraction=0.1, patience=10, seed=0,
                 dtype="float64", verbose=1):
        self.lam, self.lr, self.momentum, self.batch_size = lam, lr, momentum, batch_size
        self.epochs, self.early_stopping = epochs, early_stopping
        self.validation_fraction, self.patience = validation_fraction, patience
        self.seed, self.dtype, self.verbose = seed, dtype, verbose

    def _build(self, n_in, n_classes, codes):
        if n_classes != 2:
            raise ValueError("LinearSVM is binary")
        model = networks.linear_svm(n_in, self.lam, self.dtype, self.seed)
        return model, np.where(codes == 1, 1.0, -1.0).astype(self.dtype)

    def _target_codes(self, yv):
        return (yv > 0).astype(np.int64)

    def decision_function(self, X):
        self._check_fitted()
        return self.trainer_.predict("score", self._as_x(X))

    def _codes(self, X):
        return (self.decision_function(X) >= 0).astype(np.int64)


class Perceptron(_Estimator):
    """The perceptron rule as SGD with learning rate 1 and batch 1 on max(0, -y (w.x + b)),
    stopping at the first epoch without a mistake (the seeds' train_perceptron). After fit,
    ``n_updates_`` counts the updates made."""

    def __init__(self, max_epochs=1000, bias=False, dtype="float64"):
        self.max_epochs, self.bias, self.dtype = max_epochs, bias, dtype

    def fit(self, X, y):
        X = self._as_x(X, fitting=True)
        self.n_features_in_ = X.shape[1]
        self.classes_, codes = self._classes(X, y)
        signs = np.where(codes == 1, 1.0, -1.0).astype(self.dtype)
        model = networks.perceptron(X.shape[1], self.bias, self.dtype)
        self.trainer_ = Trainer(model, lr=1.0, outputs=("mistakes",))
        rng = np.random.default_rng(0)
        self.n_updates_, self.n_epochs_, changes = 0, 0, -1
        while self.n_epochs_ < self.max_epochs and changes != 0:
            record = self.trainer_.run_epoch(X, signs, 1, rng, shuffle=False)
            changes = int(record[:, 1].sum())
            self.n_updates_ += changes
            self.n_epochs_ += 1
        self.converged_ = changes == 0
        return self

    @property
    def coef_(self):
        return self.trainer_.params[self.trainer_.model.params[0]]

    def predict(self, X):
        self._check_fitted()
        s = self.trainer_.predict("score", self._as_x(X))
        return self.classes_[(s >= 0).astype(np.int64)]

    def score(self, X, y):
        return float(np.mean(self.predict(X) == np.asarray(y)))


class MLPRegressor(MLPClassifier):
    """MLP with a linear output and MSE, or a Gaussian output (predicted mean and variance)
    with its negative log-likelihood (``output="gaussian"``)."""

    def __init__(self, hidden=(64,), activation="tanh", output="linear", lr=0.05,
                 momentum=0.9, batch_size=32, epochs=200, l2=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=10, seed=0, dtype="float64", verbose=1,
                 optimizer=None):
        super().__init__(hidden, activation, lr, momentum, batch_size, epochs, l2,
                         early_stopping, validation_fraction, patience, seed, dtype, verbose,
                         optimizer)
        self.output = output

    def fit(self, X, y):
        X = self._as_x(X, fitting=True)
        Y = np.ascontiguousarray(np.asarray(self._as_y(X, y, True), dtype=self.dtype)
                                 .reshape(len(X), -1))
        self.n_outputs_ = Y.shape[1]
        model = networks.mlp(X.shape[1], self.hidden, Y.shape[1], self.activation,
                             self.output, self.l2, self.dtype, self.seed)
        return self._train(model, X, Y, lambda Xv, yv: -float(
            np.mean((self.predict(Xv).reshape(yv.shape) - yv) ** 2)))

    def predict(self, X):
        self._check_fitted()
        out = self.trainer_.predict("mean", self._as_x(X))
        return out[:, 0] if self.n_outputs_ == 1 else out

    def predict_variance(self, X):
        self._check_fitted()
        return np.exp(self.trainer_.predict("log_var", self._as_x(X)))

    def score(self, X, y):
        """Coefficient of determination R^2."""
        y = np.asarray(y, dtype=float).reshape(len(y), -1)
        pred = self.predict(X).reshape(y.shape)
        return float(1 - np.sum((y - pred) ** 2) / np.sum((y - y.mean(0)) ** 2))


class MixtureDensityNetwork(MLPRegressor):
    """p(t | x) = sum_k pi_k(x) N(t; mu_k(x), sigma_k(x)^2) (seeds 002), 1-D targets."""

    def __init__(self, hidden=(32,), activation="tanh", components=3, lr=0.005, momentum=0.9,
                 batch_size=32, epochs=1500, early_stopping=False, validation_fraction=0.1,
                 patience=50, seed=0, dtype="float64", verbose=1):
        super().__init__(hidden, activation, "mdn", lr, momentum, batch_size, epochs, 0.0,
                         early_stopping, validation_fraction, patience, seed, dtype, verbose)
        self.components = components

    def fit(self, X, y):
        X = self._as_x(X, fitting=True)
        Y = np.ascontiguousarray(np.asarray(self._as_y(X, y, True), dtype=self.dtype)
                                 .reshape(-1, 1))
        self.n_outputs_ = 1
        model = networks.mlp(X.shape[1], self.hidden, 1, self.activation, "mdn", 0.0,
                             self.dtype, self.seed, self.components)
        return self._train(model, X, Y, lambda Xv, yv: -self.nll(Xv, yv))

    def mixture(self, X):
        """(weights, means, standard deviations), each of shape (samples, components)."""
        self._check_fitted()
        X = self._as_x(X)
        t = self.trainer_
        return t.predict("weights", X), t.predict("mean", X), t.predict("std", X)

    def nll(self, X, y):
        """Mean negative log-likelihood of targets ``y`` under the predicted mixtures."""
        from scipy.special import logsumexp
        w, mu, sd_ = self.mixture(X)
        t = np.asarray(y, dtype=float).reshape(-1, 1)
        # log sum_k w_k N(t; mu_k, sd_k^2), summed in log space (never log 0)
        log_n = -0.5 * ((t - mu) / sd_) ** 2 - np.log(sd_) - 0.5 * np.log(2 * np.pi)
        return float(-np.mean(logsumexp(np.log(w) + log_n, axis=1)))

    def predict(self, X):
        """The mean of the most probable component."""
        w, mu, _ = self.mixture(X)
        return mu[np.arange(len(mu)), np.argmax(w, axis=1)]

    def score(self, X, y):
        """Minus the mean negative log-likelihood (higher is better)."""
        return -self.nll(X, y)
