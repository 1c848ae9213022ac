"""What the estimators share: scikit-learn's estimator protocol (``BaseEstimator``,
``validate_data``, ``check_is_fitted``, tags) and training by whole compiled epochs with the
conventions of scikit-learn's MLPs:

- ``fit(X, y, callback=None)`` trains for ``epochs`` epochs; ``callback(estimator, epoch,
  loss)`` runs after every epoch (``epoch`` counts from the first fit, ``loss`` is the
  epoch's mean training loss); a true return value stops training;
- ``partial_fit`` runs one epoch over the data it is given (classifiers take ``classes=`` on
  the first call), continuing from the current parameters and optimizer state;
- ``warm_start=True``: ``fit`` on a fitted estimator continues from its parameters;
- ``early_stopping=True`` holds out ``validation_fraction`` of the data (stratified for
  classifiers), scores it with ``score`` after every epoch, stops when the score has not
  improved for ``patience`` epochs and keeps the best parameters;
- ``n_iter_`` (epochs run), ``loss_curve_`` (mean training loss per epoch),
  ``validation_scores_`` (None without early stopping), ``best_validation_score_``;
- ``verbose=1`` prints one line per epoch to stdout (``epoch 3/100  loss 0.1234``);
- ``backend="numba"`` trains in compiled kernels; ``"numpy"`` runs the same graphs in the
  interpreter (no compile wait: small data, or many fits of different shapes).

scikit-learn (>= 1.6) is in the ``demo`` and ``test`` extras, not in the core: ``import
symdiff`` never needs it.
"""
import warnings

import numpy as np

try:
    from sklearn.base import (BaseEstimator, ClassifierMixin, DensityMixin, RegressorMixin,
                              is_classifier)
    from sklearn.model_selection import train_test_split
    from sklearn.utils.multiclass import check_classification_targets
    from sklearn.utils.validation import check_is_fitted, validate_data
except ImportError as e:                 # validate_data and __sklearn_tags__ came in 1.6
    raise ImportError("symdiff's estimators need scikit-learn >= 1.6 (in the demo and test "
                      "extras): pip install 'symdiff[demo]'") from e

from .dask_fit import fit_dask, is_dask, over_rows
from .train import Trainer, fit

__all__ = ["BaseEstimator", "DensityMixin", "Labels", "Trained", "Classifier", "Regressor", "check_is_fitted",
           "keep_params", "validate_data"]


def keep_params(est, args):
    """Store the constructor's arguments (its ``locals()``) as attributes of the same names:
    all a scikit-learn ``__init__`` may do (validation waits for ``fit``)."""
    for name, value in args.items():
        if name not in ("self", "__class__"):
            setattr(est, name, value)


class Trained(BaseEstimator):
    """An estimator trained epoch by epoch. Subclasses define ``_build(n_features)`` (the
    ``networks.Model``), ``_set_targets``/``_check_targets``/``_targets`` (what y becomes)."""

    _step_outputs = ()
    early_stopping = False

    def fit(self, X, y, callback=None):
        """Train for up to ``epochs`` epochs (see the module docstring); returns self. X and
        y may be Dask arrays (``symdiff.models.dask_fit``: data-parallel SGD over the row
        chunks)."""
        if is_dask(X):
            return fit_dask(self, X, y, callback)
        warm = self.warm_start and hasattr(self, "trainer_")
        X, y = self._validate(X, y, reset=not warm)
        if warm:
            self._check_targets(y)
        else:
            self._start(X, y)
        X, X_val, y, y_val = self._split(X, y)
        self._run(X, y, self._max_epochs(), callback, X_val, y_val)
        return self

    def _max_epochs(self):
        return self.epochs

    def _start(self, X, y, classes=None):
        """A fresh model and trainer for X's features and y's targets."""
        self._set_targets(y, classes)
        self.trainer_ = Trainer(self._build(X.shape[1]), **self._trainer_args())
        self.n_iter_, self.loss_curve_ = 0, []
        self.validation_scores_ = [] if self.early_stopping else None
        self.best_validation_score_ = None
        self._rng = np.random.default_rng(self.seed)

    def _trainer_args(self):
        return {"lr": self.lr, "momentum": self.momentum, "outputs": self._step_outputs,
                "optimizer": getattr(self, "optimizer", None), "backend": self.backend}

    def _split(self, X, y):
        """(X_train, X_val, y_train, y_val): early stopping's validation split,
        ``validation_fraction`` of the rows (at least one), stratified for classifiers when
        every class has two rows or more; no split (and a warning) for a single row."""
        if not self.early_stopping:
            return X, None, y, None
        if len(X) < 2:
            warnings.warn(f"{type(self).__name__}: early stopping needs 2 rows or more to "
                          f"hold some out; training on the single row without it")
            return X, None, y, None
        n_val = min(max(1, int(np.ceil(self.validation_fraction * len(X)))), len(X) - 1)
        stratify = None
        if is_classifier(self):
            k, counts = len(self.classes_), np.unique(y, return_counts=True)[1]
            if counts.min() >= 2 and len(counts) == k and len(X) - max(n_val, k) >= k:
                n_val, stratify = max(n_val, k), y
        return train_test_split(X, y, test_size=n_val, random_state=self.seed,
                                stratify=stratify)

    def _run(self, X, y, epochs, callback, X_val=None, y_val=None):
        score = None if X_val is None else self.score
        fit(self.trainer_, X, self._targets(y), epochs, self.batch_size, score, X_val, y_val,
            self.patience, self._rng, self.verbose, self._epoch_done(callback), self.n_iter_)

    def _epoch_done(self, callback):
        """The per-epoch bookkeeping (and the user's callback) as train.fit's callback."""
        def done(row):
            self.n_iter_ += 1
            self.loss_curve_.append(row["loss"])
            if "val_score" in row:
                self.validation_scores_.append(row["val_score"])
                self.best_validation_score_ = max(self.validation_scores_)
            return bool(callback is not None and callback(self, self.n_iter_, row["loss"]))
        return done

    def _predict(self, output, X):
        """The model's ``output`` on the rows of X (checked by ``_X``)."""
        X = self._X(X)
        return self.trainer_.predict(output, X)

    def _X(self, X):
        """X for prediction: fitted estimator, same features, the model's dtype, C order."""
        check_is_fitted(self)
        return validate_data(self, X, reset=False, dtype=np.dtype(self.dtype), order="C")


class Labels(ClassifierMixin):
    """Class labels of any type, validated as scikit-learn does and kept sorted in
    ``classes_`` (codes 0..k-1); ``binary`` models take exactly two classes."""

    binary = False
    dtype = "float64"

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = not self.binary
        return tags

    def _validate(self, X, y, reset):
        X, y = validate_data(self, X, y, reset=reset, dtype=np.dtype(self.dtype), order="C")
        check_classification_targets(y)
        return X, y

    def _set_targets(self, y, classes=None):
        labels = np.unique(y if classes is None else np.asarray(classes))
        if len(labels) < 2:
            raise ValueError(f"{type(self).__name__}: y has {len(labels)} class(es); a "
                             f"classifier needs at least 2")
        if self.binary and len(labels) > 2:
            raise ValueError(f"Only binary classification is supported by "
                             f"{type(self).__name__}; y has {len(labels)} classes (use "
                             f"SoftmaxRegression or MLPClassifier)")
        self.classes_ = labels
        self._check_targets(y)

    def _check_targets(self, y, classes=None):
        unknown = np.setdiff1d(y, self.classes_)
        if classes is not None and not np.array_equal(np.unique(classes), self.classes_):
            unknown = np.setdiff1d(classes, self.classes_)
        if len(unknown):
            raise ValueError(f"{type(self).__name__}: y holds labels {unknown.tolist()} not "
                             f"among the classes fitted first, {self.classes_.tolist()}")


class Classifier(Labels, Trained):
    """A classifier trained epoch by epoch; subclasses define ``_encode(codes)`` (the model's
    targets) and ``_codes(X)`` (predicted codes)."""

    def partial_fit(self, X, y, classes=None):
        """One epoch over (X, y), continuing from the current parameters. The first call
        needs ``classes``: every label y will ever hold, as in scikit-learn.

        >>> import numpy as np
        >>> from symdiff.models import LogisticRegression
        >>> X, y = np.array([[-2.0], [-1.0], [1.0], [2.0]]), np.array([0, 0, 1, 1])
        >>> clf = LogisticRegression(early_stopping=False)
        >>> for _ in range(5): clf = clf.partial_fit(X, y, classes=[0, 1])
        >>> clf.n_iter_, clf.predict(X).tolist()
        (5, [0, 0, 1, 1])
        """
        first = not hasattr(self, "trainer_")
        X, y = self._validate(X, y, reset=first)
        if first:
            if classes is None:
                raise ValueError(f"{type(self).__name__}.partial_fit: pass classes= (every "
                                 f"label y can hold) on the first call")
            self._start(X, y, classes)
        else:
            self._check_targets(y, classes)
        self._run(X, y, 1, None)
        return self

    def _targets(self, y):
        return self._encode(np.searchsorted(self.classes_, y))

    @over_rows
    def predict(self, X):
        """The most probable class of each row."""
        X = self._X(X)
        return self.classes_[self._codes(X)]


class Regressor(RegressorMixin, Trained):
    """Real targets, one column or several (``n_outputs_``); ``predict`` returns a vector
    for one output."""

    def partial_fit(self, X, y):
        """One epoch over (X, y), continuing from the current parameters.

        >>> import numpy as np
        >>> from symdiff.models import MLPRegressor
        >>> X = np.linspace(-1, 1, 20)[:, None]
        >>> reg = MLPRegressor(hidden=(4,), lr=0.1).partial_fit(X, 2 * X[:, 0])
        >>> reg.n_iter_, reg.predict(X).shape
        (1, (20,))
        """
        first = not hasattr(self, "trainer_")
        X, y = self._validate(X, y, reset=first)
        if first:
            self._start(X, y)
        else:
            self._check_targets(y)
        self._run(X, y, 1, None)
        return self

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags

    def _validate(self, X, y, reset):
        dtype = np.dtype(self.dtype)
        X, y = validate_data(self, X, y, reset=reset, dtype=dtype, order="C", y_numeric=True,
                             multi_output=self.__sklearn_tags__().target_tags.multi_output)
        return X, np.ascontiguousarray(y, dtype=dtype).reshape(len(y), -1)

    def _set_targets(self, y, classes=None):
        self.n_outputs_ = y.shape[1]

    def _check_targets(self, y, classes=None):
        if y.shape[1] != self.n_outputs_:
            raise ValueError(f"{type(self).__name__}: y has {y.shape[1]} output(s), the "
                             f"estimator was fitted with {self.n_outputs_}")

    def _targets(self, y):
        return y

    def _vector(self, out):
        return out[:, 0] if self.n_outputs_ == 1 else out
