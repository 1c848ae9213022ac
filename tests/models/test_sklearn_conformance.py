"""Every estimator passes scikit-learn's estimator checks (``parametrize_with_checks``), and
the MLP training conventions (callback, partial_fit, warm_start, early stopping) behave as
scikit-learn's MLPs do.

The checks fit each estimator many times on data of 1 to 20 features, and every new number
of features (or classes) is a new graph: with ``backend="numba"`` each costs a few seconds of
Numba compile. So the whole check suite runs for every estimator (GaussianMixtureGD and LDA
included) on the NumPy backend (the same graphs, interpreted; the protocol does not depend on
the backend), and on the Numba backend for LogisticRegression; the Numba runs of the other
six are ``slow`` (about 10 minutes on 2 cores: ``pytest -m slow``).

Documented exceptions:
- MixtureDensityNetwork sets the ``poor_score`` regressor tag: its ``score`` is the mean
  log-likelihood (nats), not R^2, so the R^2 > 0.5 threshold of ``check_regressors_train`` does
  not measure it; the check's other assertions run.
- ConvNetClassifier takes images of ``image=(height, width, channels)`` pixels: on the checks'
  data (1 to 20 features) every fit raises ValueError naming the mismatch, so the checks that
  fit are expected failures (``CONVNET_FAILS``); the rest (parameters, tags, cloning, errors
  before fit) pass.
"""
import numpy as np
import pytest

pytest.importorskip("sklearn")
from sklearn.base import clone, is_classifier, is_regressor  # noqa: E402
from sklearn.utils.estimator_checks import parametrize_with_checks  # noqa: E402

from symdiff.models import (LDA, ConvNetClassifier, LinearSVM,  # noqa: E402
                            LogisticRegression, MixtureDensityNetwork, MLPClassifier,
                            MLPRegressor, Perceptron, SoftmaxRegression)
from symdiff.models.mixture import GaussianMixtureGD  # noqa: E402


def _estimators(backend):
    """Small and short-trained, yet above the checks' accuracy thresholds."""
    return [
        MLPClassifier(hidden=(8,), epochs=20, lr=0.1, backend=backend),
        SoftmaxRegression(epochs=20, backend=backend),
        LogisticRegression(epochs=20, backend=backend),
        LinearSVM(epochs=20, backend=backend),
        Perceptron(max_epochs=50, bias=True, backend=backend),
        MLPRegressor(hidden=(8,), epochs=20, backend=backend),
        MixtureDensityNetwork(hidden=(8,), components=2, epochs=20, lr=0.01, backend=backend),
    ]


_IMAGE = ("the checks' data has 1 to 20 features, not the 64 pixels of image=(8, 8, 1): fit "
          "raises ValueError naming the mismatch")
CONVNET_FAILS = {name: _IMAGE for name in [
    "check_fit_score_takes_y", "check_estimators_overwrite_params",
    "check_dont_overwrite_parameters", "check_estimators_fit_returns_self",
    "check_readonly_memmap_input", "check_n_features_in_after_fitting",
    "check_positive_only_tag_during_fit", "check_estimators_dtypes", "check_dtype_object",
    "check_pipeline_consistency", "check_estimators_nan_inf", "check_estimators_pickle",
    "check_f_contiguous_array_estimator", "check_classifiers_train",
    "check_classifiers_classes", "check_supervised_y_2d",
    "check_estimators_partial_fit_n_features", "check_classifier_data_not_an_array",
    "check_methods_sample_order_invariance", "check_methods_subset_invariance",
    "check_fit2d_1feature", "check_dict_unchanged", "check_fit_idempotent",
    "check_fit_check_is_fitted", "check_n_features_in", "check_fit2d_predict1d"]}


def _expected_failures(est):
    return CONVNET_FAILS if isinstance(est, ConvNetClassifier) else {}


@parametrize_with_checks(_estimators("numpy") + [LDA(), ConvNetClassifier(backend="numpy"),
                                                 GaussianMixtureGD(steps=20, backend="numpy")],
                         expected_failed_checks=_expected_failures)
def test_sklearn_checks_numpy_backend(estimator, check):
    check(estimator)


@parametrize_with_checks([LogisticRegression(epochs=20)])
def test_sklearn_checks_numba_backend(estimator, check):
    check(estimator)


@pytest.mark.slow
@parametrize_with_checks([e for e in _estimators("numba")
                          if not isinstance(e, LogisticRegression)])
def test_sklearn_checks_numba_backend_slow(estimator, check):
    check(estimator)


X = np.random.default_rng(0).normal(size=(80, 3))
Y = (X[:, 0] - X[:, 1] > 0).astype(int)


def _mlp(**kw):
    return MLPClassifier(hidden=(4,), batch_size=16, lr=0.1, backend="numpy", **kw)


def test_the_regressor_is_no_classifier():
    assert is_regressor(MLPRegressor()) and not is_classifier(MLPRegressor())
    assert not hasattr(MLPRegressor(), "predict_proba")
    assert is_classifier(MLPClassifier()) and is_regressor(MixtureDensityNetwork())


def test_partial_fit_epochs_are_fit_epochs():
    """k calls of partial_fit run the epochs fit(epochs=k) runs: same shuffles, same steps."""
    full = _mlp(epochs=4).fit(X, Y)
    part = _mlp()
    for _ in range(4):
        part.partial_fit(X, Y, classes=[0, 1])
    assert part.n_iter_ == full.n_iter_ == 4
    np.testing.assert_array_equal(part.loss_curve_, full.loss_curve_)
    np.testing.assert_array_equal(part.predict_proba(X), full.predict_proba(X))
    with pytest.raises(ValueError, match="classes= .* on the first call"):
        _mlp().partial_fit(X, Y)
    with pytest.raises(ValueError, match=r"labels \[7\] not among the classes"):
        part.partial_fit(X[:2], [0, 7])


def test_warm_start_continues_where_fit_stopped():
    full = _mlp(epochs=5).fit(X, Y)
    warm = _mlp(epochs=2, warm_start=True).fit(X, Y)
    warm.set_params(epochs=3).fit(X, Y)
    assert warm.n_iter_ == 5
    np.testing.assert_array_equal(warm.loss_curve_, full.loss_curve_)
    np.testing.assert_array_equal(warm.predict_proba(X), full.predict_proba(X))
    cold = _mlp(epochs=3).fit(X, Y)                  # without warm_start: a fresh start
    assert cold.n_iter_ == 3 and cold.loss_curve_ == full.loss_curve_[:3]
    with pytest.raises(ValueError, match="X has 2 features"):
        warm.fit(X[:, :2], Y)


def test_callback_sees_every_epoch_and_stops_training():
    seen = []

    def callback(est, epoch, loss):
        seen.append((epoch, loss, est.n_iter_))
        return epoch == 3                           # a true return stops training
    clf = _mlp(epochs=10).fit(X, Y, callback=callback)
    assert clf.n_iter_ == 3 and [s[0] for s in seen] == [1, 2, 3]
    assert [s[1] for s in seen] == clf.loss_curve_ == _mlp(epochs=3).fit(X, Y).loss_curve_
    assert all(epoch == n for epoch, _, n in seen)


def test_early_stopping_as_in_scikit_learn():
    """A held-out split scored by ``score`` every epoch; training stops after ``patience``
    epochs without improvement and keeps the best parameters."""
    clf = _mlp(epochs=200, early_stopping=True, validation_fraction=0.2, patience=3)
    clf.fit(X, Y)
    scores = clf.validation_scores_
    assert len(scores) == len(clf.loss_curve_) == clf.n_iter_
    best = int(np.argmax(scores))                   # the first best epoch
    assert clf.n_iter_ == 200 or clf.n_iter_ == best + 1 + 3
    assert clf.best_validation_score_ == max(scores)
    assert _mlp(epochs=5).fit(X, Y).validation_scores_ is None


def test_verbose_logs_one_line_per_epoch(capsys):
    _mlp(epochs=3, verbose=1).fit(X, Y)
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split("  ")[0] for ln in lines] == ["epoch 1/3", "epoch 2/3", "epoch 3/3"]
    assert all(ln.split("  ")[1].startswith("loss ") for ln in lines)


def test_a_pickled_estimator_loaded_from_read_only_memory_keeps_training(tmp_path):
    """joblib loads the parameters as read-only memory maps: the trainer copies them into
    writable arrays, so partial_fit still updates them."""
    import joblib
    clf = _mlp(epochs=2).fit(X, Y)
    joblib.dump(clf, tmp_path / "clf.joblib")
    loaded = joblib.load(tmp_path / "clf.joblib", mmap_mode="r")
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))
    loaded.partial_fit(X, Y)
    clf.partial_fit(X, Y)
    np.testing.assert_array_equal(loaded.predict_proba(X), clf.predict_proba(X))


def test_perceptron_trains_on_the_perceptron_criterion():
    """The zoo's perceptron and the estimator's share networks.perceptron_criterion:
    sum max(0, -y z), whose gradient at y z = 0 is the rule's update -y x."""
    import symdiff as sd
    from symdiff.models import networks
    from symdiff.models.zoo import perceptron
    m = perceptron(features=2)
    z = np.array([2.0, -1.0, 0.0, 0.5])
    y = np.array([1.0, 1.0, -1.0, -1.0])
    zv = sd.var("z", (4,))
    loss = networks.perceptron_criterion(zv, sd.const(y))
    assert float(sd.evaluate(loss, {zv: z})) == float(np.sum(np.maximum(0, -y * z)))
    # d/dz: -y where y z <= 0 (a mistake or on the plane), 0 elsewhere
    np.testing.assert_array_equal(sd.evaluate(sd.grad(loss, zv), {zv: z}), [0, -1, 1, 1])
    w, b = m.params
    g = sd.evaluate(sd.grad(m.loss, [w]), {m.inputs[0]: np.array([[1.0, 2.0]]),
                                           m.inputs[1]: np.array([1.0]), w: np.zeros(2),
                                           b: np.array(0.0)})
    np.testing.assert_array_equal(g[0], [-1.0, -2.0])   # from w = 0: the update y x
    assert clone(Perceptron()).get_params()["max_epochs"] == 1000


def test_a_gaussian_mixture_on_one_feature_reaches_the_maximum_likelihood():
    """One feature (no off-diagonal Cholesky entries) and one component: the maximum of the
    log-likelihood is the Gaussian with the sample mean and standard deviation."""
    from scipy.stats import norm
    X = np.random.default_rng(1).normal(3.0, 2.0, size=(200, 1))
    gm = GaussianMixtureGD(steps=500, backend="numpy").fit(X)
    best = norm.logpdf(X[:, 0], X.mean(), X.std()).mean()
    np.testing.assert_allclose(gm.score(X), best, rtol=1e-4)
    assert gm.score(X) <= best + 1e-12
