"""A bad label (or take index) anywhere in an epoch's data raises before the first step, so
no parameter changes; estimators refuse every prediction before fit. Oracles: mini-batch SGD
written out in NumPy."""
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import symdiff as sd
from symdiff import ArgumentError
from symdiff.models import (LDA, LinearSVM, LogisticRegression, MixtureDensityNetwork,
                            MLPClassifier, MLPRegressor, Perceptron, SoftmaxRegression,
                            networks)
from symdiff.models.train import Trainer

RNG = np.random.default_rng(12)
N, D, K, R = 7, 3, 3, 4                  # rows, features, classes, rows of the table B
X = RNG.standard_normal((N, D))
Y = np.array([0, 2, 1, 1, 0, 2, 1])
IDS = np.array([0, -1, 3, -4, 2, 1, -2])     # take: negative ids count from the end
LR = 0.5

x, y = sd.var("x", ("batch", D)), sd.var("y", ("batch",), "int64")
ids = sd.var("ids", ("batch",), "int64")
W, B = sd.param("W", (D, K)), sd.param("B", (R, K))
LOSS = sd.mean(sd.softmax_cross_entropy(x @ W + sd.take(B, ids, axis=0), y))


def sgd_oracle(order, batch):
    """SGD on mean CE(softmax(x W + B[ids]), y) from zeros: (losses, W, B)."""
    Wv, Bv, losses = np.zeros((D, K)), np.zeros((R, K)), []
    for s in range(0, len(order), batch):
        r = order[s:s + batch]
        z = X[r] @ Wv + Bv[IDS[r]]
        p = np.exp(z - z.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        losses.append(-np.mean(np.log(p[np.arange(len(r)), Y[r]])))
        dz = (p - np.eye(K)[Y[r]]) / len(r)
        gB = np.zeros_like(Bv)
        np.add.at(gB, IDS[r] % R, dz)
        Wv, Bv = Wv - LR * X[r].T @ dz, Bv - LR * gB
    return np.array(losses), Wv, Bv


@pytest.fixture(scope="module")
def step():
    gW, gB = sd.grad(LOSS, [W, B])
    return sd.compile([x, y, ids], LOSS, updates={W: W - LR * gW, B: B - LR * gB},
                      state={W: np.zeros((D, K)), B: np.zeros((R, K))})


def _zero(f):
    for v in (W, B):
        f.state[v][...] = 0.0


BAD = [
    ("label past the classes", {"y": (5, 3)}, ("'y'", "holds 3 at row 5", "take_rows",
                                               "size 3", "valid: 0 to 2")),
    ("negative label", {"y": (6, -1)}, ("'y'", "holds -1 at row 6", "valid: 0 to 2")),
    ("id past the table", {"ids": (4, 4)}, ("'ids'", "holds 4 at row 4", "take",
                                            "valid: -4 to 3")),
    ("id before the table", {"ids": (3, -5)}, ("'ids'", "holds -5 at row 3")),
]


@pytest.mark.parametrize("case", BAD, ids=[c[0] for c in BAD])
def test_a_bad_index_in_the_last_batch_fails_before_the_first_step(step, case):
    _, change, words = case
    data = {"y": Y.copy(), "ids": IDS.copy()}
    for name, (row, value) in change.items():
        data[name][row] = value
    _zero(step)
    with pytest.raises(ArgumentError) as info:
        step.epoch(X, data["y"], data["ids"], batch_size=2)
    assert all(w in str(info.value) for w in words), str(info.value)
    for v in (W, B):
        np.testing.assert_array_equal(step.state[v], 0.0)     # nothing was updated


@pytest.mark.parametrize("bad", [3, -1])
def test_the_numpy_trainer_leaves_the_parameters_as_they_were(bad):
    """The NumPy backend's epoch is a loop of steps: a failing step restores the state."""
    loss = sd.mean(sd.softmax_cross_entropy(x @ W, y))
    model = networks.Model("m", x, y, [W], {W: np.zeros((D, K))}, loss)
    trainer = Trainer(model, LR, momentum=0.9, backend="numpy")
    labels = Y.copy()
    labels[6] = bad
    with pytest.raises(ArgumentError, match="out of range"):
        trainer.run_epoch(X, labels, 2, np.random.default_rng(0), shuffle=False)
    held = {v.name: a for v, a in trainer.step.state.items()}
    assert not held["W"].any() and not held["velocity_W"].any()       # as before the epoch
    trainer.run_epoch(X, Y, 2, np.random.default_rng(0), shuffle=False)
    assert trainer.params[W].any()


def test_good_indices_train_as_numpy_does(step):
    _zero(step)
    want, Wv, Bv = sgd_oracle(np.arange(N), 2)
    np.testing.assert_allclose(step.epoch(X, Y, IDS, batch_size=2)[:, 0], want, rtol=1e-12)
    np.testing.assert_allclose(step.state[W], Wv, rtol=1e-12)
    np.testing.assert_allclose(step.state[B], Bv, rtol=1e-12)


def test_rows_left_out_of_the_order_are_not_checked(step):
    _zero(step)
    bad = Y.copy()
    bad[5] = 9
    order = np.array([6, 0, 4, 1, 3, 2])               # row 5 is not trained on
    want, Wv, _ = sgd_oracle(order, 3)
    np.testing.assert_allclose(step.epoch(X, bad, IDS, batch_size=3, order=order)[:, 0], want,
                               rtol=1e-12)
    np.testing.assert_allclose(step.state[W], Wv, rtol=1e-12)
    with pytest.raises(ArgumentError, match="holds 9 at row 5"):
        step.epoch(X, bad, IDS, batch_size=3, order=np.array([0, 5]))


ESTIMATORS = [MLPClassifier, SoftmaxRegression, LogisticRegression, LinearSVM, Perceptron,
              MLPRegressor, MixtureDensityNetwork, LDA]
METHODS = ["predict", "predict_proba", "decision_function", "predict_variance", "mixture",
           "nll", "score"]


@pytest.mark.parametrize("cls", ESTIMATORS, ids=lambda c: c.__name__)
def test_every_prediction_before_fit_is_a_clear_error(cls):
    est = cls()
    methods = [m for m in METHODS if hasattr(est, m)]
    assert "predict" in methods
    for m in methods:
        args = (X, Y) if m in ("score", "nll") else (X,)
        with pytest.raises(NotFittedError, match=f"This {cls.__name__} instance is not fitted"):
            getattr(est, m)(*args)
