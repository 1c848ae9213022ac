"""The lecture notes' models end to end, with fixed seeds: the worked examples, convergence
bounds and accuracy levels of the seeds, gradients against finite differences, and the
epoch kernel against the same steps run one by one."""
import io
import sys

import numpy as np
import pytest
import sympy
from sklearn.exceptions import NotFittedError

import symdiff as sd
from gradcheck import check_grads
from symdiff.models import (LDA, LinearSVM, LogisticRegression, MixtureDensityNetwork,
                            MLPClassifier, MLPRegressor, Perceptron, SoftmaxRegression, Trainer,
                            data, networks)


def test_xor_oracle_weights_give_exactly_0_1_1_0():
    X, y = data.xor()
    trainer = Trainer(networks.xor_network(oracle=True), lr=0.0)
    assert trainer.predict("f", X).tolist() == [0.0, 1.0, 1.0, 0.0]


def test_xor_network_trained_from_random_starts_fits_all_four_points():
    X, y = data.xor()
    trainer, start = networks.fit_xor(restarts=10, seed=0)
    f = trainer.predict("f", X)
    assert np.array_equal(f > 0.5, y == 1), (start, f)


def test_perceptron_converges_within_the_seeds_bound():
    X, y = data.separable(n=200, dim=2, margin=0.3, seed=3)
    p = Perceptron().fit(X, y)
    R = np.max(np.linalg.norm(X, axis=1))
    # the seeds' bound holds for any unit w* with y (x . w*) >= gamma / 2; the tightest one
    # comes from the data's own maximum margin: min |w|^2 s.t. y (x . w) >= 1, margin 1/|w|
    gamma = 2 * _max_margin(X, y)
    bound = int(np.floor(4 * R ** 2 / gamma ** 2))
    print(f"perceptron: {p.n_updates_} updates in {p.n_epochs_} epochs, bound {bound}")
    assert p.converged_ and p.score(X, y) == 1.0
    assert p.n_updates_ <= bound


def _max_margin(X, y):
    """The largest margin of a plane through the origin separating (X, y), from the data."""
    from scipy.optimize import minimize
    w0 = np.linalg.lstsq(X, y, rcond=None)[0]
    w0 /= np.min(y * (X @ w0))                   # feasible: y (x . w0) >= 1 (data separable)
    res = minimize(lambda w: w @ w, w0, jac=lambda w: 2 * w, method="SLSQP",
                   constraints=[{"type": "ineq", "fun": lambda w: y * (X @ w) - 1,
                                 "jac": lambda w: y[:, None] * X}])
    assert res.success and np.min(y * (X @ res.x)) >= 1 - 1e-6
    return 1 / np.linalg.norm(res.x)


def test_logistic_regression_and_lda_on_breast_cancer():
    X_tr, X_te, y_tr, y_te = data.load_breast_cancer()
    logreg = LogisticRegression(seed=0).fit(X_tr, y_tr)
    lda = LDA().fit(X_tr, y_tr)
    acc, acc_lda = logreg.score(X_te, y_te), lda.score(X_te, y_te)
    print(f"breast cancer: logistic regression {acc:.4f}, LDA {acc_lda:.4f}")
    assert acc >= 0.95
    assert abs(acc - acc_lda) <= 0.03
    # the seeds' point: both models are p(y = 1 | x) = sigma(w.x + b), fitted differently
    from scipy.special import expit
    for m in (logreg, lda):
        np.testing.assert_allclose(m.predict_proba(X_te)[:, 1],
                                   expit(X_te @ m.coef_ + m.intercept_), rtol=1e-10)


def test_mlp_on_digits():
    X_tr, X_te, y_tr, y_te = data.load_digits()
    clf = MLPClassifier(hidden=(128, 64), activation="tanh", seed=0).fit(X_tr, y_tr)
    acc = clf.score(X_te, y_te)
    print(f"digits MLP test accuracy {acc:.4f}")
    assert acc >= 0.97
    proba = clf.predict_proba(X_te)
    assert proba.shape == (len(X_te), 10) and np.allclose(proba.sum(1), 1, atol=1e-5)


def test_mixture_density_network_beats_a_single_gaussian():
    X, T = data.multimodal(1000, seed=0)
    Xv, Tv = data.multimodal(500, seed=1)
    mdn = MixtureDensityNetwork(seed=0).fit(X, T[:, 0])          # one target: a vector
    single = MLPRegressor(hidden=(32,), output="gaussian", lr=0.01, epochs=300, seed=0).fit(X, T)
    mu, var = single.predict(Xv), single.predict_variance(Xv)[:, 0]
    nll_single = float(np.mean(0.5 * (np.log(2 * np.pi * var) + (Tv[:, 0] - mu) ** 2 / var)))
    print(f"held-out NLL: mixture {mdn.nll(Xv, Tv):.4f}, single Gaussian {nll_single:.4f}")
    assert mdn.nll(Xv, Tv) < nll_single


def test_universal_approximation_error_shrinks_with_width():
    x, t = data.wave(200, seed=0)
    xt, tt = data.wave(200, seed=1)
    errors = []
    for width in (2, 8, 64):
        r = MLPRegressor(hidden=(width,), activation="relu", lr=0.05, epochs=400,
                         batch_size=20, seed=0).fit(x, t)
        errors.append(float(np.mean((r.predict(xt) - tt[:, 0]) ** 2)))
    print(f"test MSE by width 2, 8, 64: {errors}")
    assert errors[0] > errors[1] > errors[2] and errors[2] < 0.01


def test_linear_svm_and_softmax_regression():
    X_tr, X_te, y_tr, y_te = data.load_breast_cancer()
    assert LinearSVM(seed=0).fit(X_tr, y_tr).score(X_te, y_te) >= 0.95
    X_tr, X_te, y_tr, y_te = data.load_iris()
    assert SoftmaxRegression(seed=0).fit(X_tr, y_tr).score(X_te, y_te) >= 0.9


SWISH = sd.elementwise("swish_fn", lambda t: t / (1 + sympy.exp(-t)))
ACTIVATIONS = ["sigmoid", "tanh", "relu", "leaky_relu", "prelu", "elu", "softplus",
               "hard_tanh", "abs", "maxout:2", "rbf", SWISH]


# every activation under the softmax head; every other head under a few activations
COMBOS = [(a, "softmax") for a in ACTIVATIONS] + [
    (a, o) for o in ("sigmoid", "linear", "gaussian", "mdn") for a in ("tanh", "prelu", "rbf")]


@pytest.mark.parametrize("activation,output", COMBOS,
                         ids=lambda v: v if isinstance(v, str) else "swish_fn")
def test_model_gradients_match_finite_differences(activation, output):
    model = networks.mlp(3, [4, 3], 2, activation, output, l2=0.01, dtype="float64", seed=1)
    rng = np.random.default_rng(2)
    env = {p: v + 0.05 * rng.standard_normal(v.shape) for p, v in model.init.items()}
    env[model.x] = rng.standard_normal((5, 3))
    if output == "softmax":
        env[model.y] = rng.integers(0, 2, 5)
    elif output == "sigmoid":
        env[model.y] = rng.integers(0, 2, 5).astype(float)
    else:
        env[model.y] = rng.standard_normal(model.y.shape[1:] and (5,) + model.y.shape[1:])
    if activation in ("relu", "leaky_relu", "prelu", "abs", "hard_tanh", "maxout:2"):
        # keep pre-activations away from the kinks so finite differences are meaningful
        env[model.x] = env[model.x] * 0.3
    check_grads(model.loss, env, wrt=model.params, order=1, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("build", [
    lambda: networks.logistic_regression(3),
    lambda: networks.linear_svm(3),
    lambda: networks.perceptron(3, bias=True),
    lambda: networks.xor_network(),
], ids=["logreg", "svm", "perceptron", "xor"])
def test_linear_model_gradients_match_finite_differences(build):
    model = build()
    rng = np.random.default_rng(0)
    n_in = model.x.shape[1]
    env = {p: rng.standard_normal(v.shape) * 0.7 for p, v in model.init.items()}
    env[model.x] = rng.standard_normal((6, n_in))
    env[model.y] = rng.choice([-1.0, 1.0], 6) if model.name != "logistic_regression" else \
        rng.integers(0, 2, 6).astype(float)
    check_grads(model.loss, env, wrt=model.params, order=1, rtol=1e-5, atol=1e-7)


def _epoch_data(kind, n=200, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 6))
    if kind == "labels":
        return X, rng.integers(0, 3, n)
    if kind == "pm1":
        return X, rng.choice([-1.0, 1.0], n)
    if kind == "01":
        return X, rng.integers(0, 2, n).astype(float)
    return X, rng.standard_normal((n, 1))


EPOCH_MODELS = {
    "mlp relu softmax + L2": (lambda: networks.mlp(6, [16], 3, "relu", "softmax", l2=1e-3,
                                                    dtype="float64", seed=0), "labels"),
    "mlp tanh regression": (lambda: networks.mlp(6, [8], 1, "tanh", "linear", dtype="float64",
                                                 seed=0), "real"),
    "logistic regression": (lambda: networks.logistic_regression(6), "01"),
    "softmax regression": (lambda: networks.softmax_regression(6, 3), "labels"),
    "linear svm": (lambda: networks.linear_svm(6), "pm1"),
    "perceptron": (lambda: networks.perceptron(6), "pm1"),
}


@pytest.mark.parametrize("name", sorted(EPOCH_MODELS))
def test_epoch_kernel_equals_the_same_steps_run_one_by_one(name):
    build, kind = EPOCH_MODELS[name]
    X, Y = _epoch_data(kind)
    if name == "mlp relu softmax + L2":               # and on the real digits
        X_tr, _, y_tr, _ = data.load_digits(dtype="float64")
        model = networks.mlp(64, [16], 10, "relu", "softmax", l2=1e-3, dtype="float64", seed=0)
        X, Y = X_tr[:200], y_tr[:200]
    else:
        model = build()
    batch = 1 if name == "perceptron" else 32          # the perceptron rule: one example a step
    extra = ("mistakes",) if name == "perceptron" else ()
    a = Trainer(model, lr=0.1, momentum=0.9, outputs=extra)
    b = Trainer(model, lr=0.1, momentum=0.9, outputs=extra)
    order = np.random.default_rng(0).permutation(len(X))
    record = a.step.epoch(X, Y, batch_size=batch, order=order)
    losses = [float(b.step(X[order[s:s + batch]], Y[order[s:s + batch]])[0])
              for s in range(0, len(X), batch)]
    np.testing.assert_array_equal(record[:, 0], losses)
    for p in model.params:
        np.testing.assert_array_equal(a.params[p], b.params[p])


class _FakeTrainer:
    """A trainer whose epochs cost nothing: fit's loop and its log alone."""

    def run_epoch(self, X, Y, batch_size, rng):
        return np.array([[0.5], [0.25]])

    def snapshot(self):
        return {}

    def restore(self, snap):
        pass


class _Terminal(io.StringIO):
    def isatty(self):
        return True


@pytest.mark.parametrize("stream", [io.StringIO, _Terminal], ids=["pipe", "terminal"])
def test_verbose_prints_one_line_per_epoch_to_stdout(monkeypatch, stream):
    from symdiff.models import train
    lines = [f"epoch {e}/3  loss 0.3750" for e in (1, 2, 3)]
    for verbose, want in ((1, lines), (0, [])):
        out = stream()
        monkeypatch.setattr(sys, "stdout", out)
        train.fit(_FakeTrainer(), None, None, epochs=3, batch_size=1, verbose=verbose)
        assert out.getvalue().splitlines() == want
    assert MLPClassifier().verbose == 0                 # off by default, as in scikit-learn


def test_estimator_protocol():
    clf = MLPClassifier(hidden=(8,), epochs=2)
    params = clf.get_params()
    assert params["hidden"] == (8,) and params["epochs"] == 2
    assert clf.set_params(epochs=3) is clf and clf.epochs == 3
    with pytest.raises(ValueError, match="Invalid parameter 'epoch'"):
        clf.set_params(epoch=3)
    with pytest.raises(NotFittedError, match="not fitted"):
        clf.predict(np.zeros((2, 4)))
    X, y = data.xor()
    clf.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features"):
        clf.predict(np.zeros((2, 3)))
    assert repr(clf) == "MLPClassifier(epochs=3, hidden=(8,))"     # the changed ones


def test_early_stopping_keeps_the_best_validation_score():
    X_tr, _, y_tr, _ = data.load_digits()
    clf = MLPClassifier(hidden=(16,), lr=0.05, epochs=40, early_stopping=True, patience=3,
                        seed=0).fit(X_tr, y_tr)
    scores = clf.validation_scores_
    assert len(scores) == len(clf.loss_curve_) == clf.n_iter_
    assert len(scores) < 40 or max(scores) == scores[-1]
    assert clf.best_validation_score_ == max(scores)
    # the best parameters are the ones kept: the held-out split scores as it did then
    from sklearn.model_selection import train_test_split
    _, X_val, _, y_val = train_test_split(X_tr, y_tr, test_size=0.1, random_state=0,
                                          stratify=y_tr)
    assert clf.score(X_val, y_val) == clf.best_validation_score_
