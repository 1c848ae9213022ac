"""The bad-input corpus (issue 12): inputs a user may pass to kernels (both backends),
``epoch``, ``evaluate`` and the estimators. Each row says what must happen: the result NumPy
gives for the same values (an independent closed form, not symdiff), or a symdiff error naming
the argument; never a Numba traceback ("No matching definition") or a crash.
"""
import warnings

import numpy as np
import pytest

import symdiff as sd
from symdiff import ArgumentError
from symdiff.models import (LinearSVM, LogisticRegression, MixtureDensityNetwork,
                            MLPClassifier, MLPRegressor, Perceptron, SoftmaxRegression)

x = sd.var("x", ("batch", 3))
y = sd.var("y", ("batch",))
w = sd.param("w", (3,))
lam = sd.var("lam", ())
LOSS = sd.mean((x @ w - y) ** 2) + lam * sd.sum(w * w)
OUTPUTS = [LOSS, sd.grad(LOSS, w)]

RNG = np.random.default_rng(0)
X, Y, W, LAM = RNG.standard_normal((5, 3)), RNG.standard_normal(5), np.array([1.0, -2, .5]), .25


def oracle(Xv, Yv, Wv, lv):
    """loss = mean((X w - y)^2) + lam |w|^2 and its gradient 2/n X^T (X w - y) + 2 lam w."""
    Xv, Yv, Wv, lv = (np.asarray(a, dtype=np.float64) for a in (Xv, Yv, Wv, lv))
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # mean of an empty batch
        r = Xv @ Wv - Yv
        # the gradient sums a term per row (an empty batch adds none: 0, as NumPy's sum)
        return [np.mean(r ** 2) + lv * np.sum(Wv ** 2), Xv.T @ (2 * r / len(r)) + 2 * lv * Wv]


# --- ways to spoil an array the kernel only reads (the result must not change) -----------
def read_only(a):
    a = np.array(a)
    a.flags.writeable = False
    return a


def big_endian(a):
    return np.asarray(a).astype(np.asarray(a).dtype.newbyteorder(">"))


def unaligned(a):
    a = np.asarray(a)
    buf = np.zeros(a.nbytes + 1, np.uint8)[1:]           # one byte off an aligned address
    u = buf.view(a.dtype).reshape(a.shape)
    u[...] = a
    assert not u.flags.aligned or a.nbytes == 0
    return u


def strided(a):
    a = np.asarray(a)
    return np.repeat(a, 2, axis=-1)[..., ::2] if a.ndim else a


def fortran(a):
    a = np.asarray(a)
    return np.asfortranarray(a) if a.ndim else a       # asfortranarray makes 0-d 1-d


LAYOUTS = {"read-only": read_only, "big-endian": big_endian, "unaligned": unaligned,
           "non-contiguous": strided, "Fortran order": fortran,
           "list": lambda a: np.asarray(a).tolist()}

OK = "numpy"


def err(*words):
    """An ArgumentError whose message holds every one of ``words``."""
    return ArgumentError, words


# (id, arguments as a function of the good ones, what must happen)
CALLS = [
    ("good", lambda X, Y, W, L: ((X, Y, W, L), {}), OK),
    ("int X", lambda X, Y, W, L: ((np.arange(15).reshape(5, 3), Y, W, L), {}), OK),
    ("bool X", lambda X, Y, W, L: ((X > 0, Y, W, L), {}), OK),
    ("float16 X", lambda X, Y, W, L: ((X.astype(np.float16), Y, W, L), {}), OK),
    ("float32 y", lambda X, Y, W, L: ((X, Y.astype(np.float32), W, L), {}), OK),
    ("int32 y", lambda X, Y, W, L: ((X, np.arange(5, dtype=np.int32), W, L), {}), OK),
    ("Python float lam", lambda X, Y, W, L: ((X, Y, W, 0.5), {}), OK),
    ("Python int lam", lambda X, Y, W, L: ((X, Y, W, 2), {}), OK),
    ("0-d array lam", lambda X, Y, W, L: ((X, Y, W, np.array(0.5)), {}), OK),
    ("nested lists", lambda X, Y, W, L: ((X.tolist(), Y.tolist(), W.tolist(), L), {}), OK),
    ("empty batch", lambda X, Y, W, L: ((X[:0], Y[:0], W, L), {}), OK),
    ("NaN in X", lambda X, Y, W, L: ((np.where(X > 1, np.nan, X), Y, W, L), {}), OK),
    ("inf in y", lambda X, Y, W, L: ((X, np.where(Y > 0, np.inf, Y), W, L), {}), OK),
    ("-inf lam", lambda X, Y, W, L: ((X, Y, W, -np.inf), {}), OK),
    ("too few", lambda X, Y, W, L: ((X, Y, W), {}),
     err("expected 4 arguments", "x, y, w, lam", "got 3")),
    ("too many", lambda X, Y, W, L: ((X, Y, W, L, L), {}), err("expected 4 arguments", "got 5")),
    ("rank of X", lambda X, Y, W, L: ((X[0], Y, W, L), {}), err("'x'", "2-d", "(3,)")),
    ("rank of lam", lambda X, Y, W, L: ((X, Y, W, [L]), {}), err("'lam'", "0-d", "(1,)")),
    ("size of w", lambda X, Y, W, L: ((X, Y, np.ones(4), L), {}), err("'w'", "(3,)", "(4,)")),
    ("batch of y", lambda X, Y, W, L: ((X, Y[:4], W, L), {}), err("'x'", "'y'", "5", "4")),
    ("complex X", lambda X, Y, W, L: ((X + 1j, Y, W, L), {}), err("'x'", "float64", "complex128")),
    ("object y", lambda X, Y, W, L: ((X, Y.astype(object), W, L), {}), err("'y'", "object")),
    ("strings y", lambda X, Y, W, L: ((X, ["a"] * 5, W, L), {}), err("'y'", "float64")),
    ("ragged X", lambda X, Y, W, L: (([[1.0, 2.0], [3.0]] * 2 + [[1.0]], Y, W, L), {}),
     err("'x'")),
    ("None lam", lambda X, Y, W, L: ((X, Y, W, None), {}), err("'lam'")),
    ("keywords", lambda X, Y, W, L: ((X,), {"y": Y, "w": W, "lam": L}),
     err("'y'", "'w'", "'lam'", "(x, y, w, lam)")),
] + [(f"{name} {arg}", lambda X, Y, W, L, k=k, fn=fn: (
    tuple(fn(a) if i == k else a for i, a in enumerate((X, Y, W, np.asarray(L)))), {}), OK)
    for name, fn in LAYOUTS.items() for k, arg in enumerate(["X", "y", "w", "lam"])]


@pytest.fixture(scope="module")
def kernels():
    return {"numba": sd.compile([x, y, w, lam], OUTPUTS),
            "numpy": sd.compile([x, y, w, lam], OUTPUTS, backend="numpy")}


def _check(run, make, expect):
    args, kwargs = make(X, Y, W, LAM)
    if expect == OK:
        got = run(args, kwargs)
        want = oracle(*args)
        for g, v in zip(got, want):
            np.testing.assert_allclose(g, v, rtol=1e-13, atol=1e-15)
        return
    kind, words = expect
    with pytest.raises(kind) as info:
        run(args, kwargs)
    for word in words:
        assert word in str(info.value), (word, str(info.value))
    assert "No matching definition" not in str(info.value)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("row", CALLS, ids=[r[0] for r in CALLS])
def test_kernel_call(kernels, backend, row):
    _, make, expect = row
    kernels[backend](X, Y, W, LAM)        # a good call first: the row meets the fast path
    with np.errstate(all="ignore"):
        _check(lambda a, kw: kernels[backend](*a, **kw), make, expect)


@pytest.mark.parametrize("row", [r for r in CALLS if r[0] != "keywords"],
                         ids=[r[0] for r in CALLS if r[0] != "keywords"])
def test_evaluate(row):
    _, make, expect = row
    if expect != OK and "expected 4 arguments" in expect[1]:
        return                    # evaluate takes a dict: the count rows are kernel rows
    with np.errstate(all="ignore"):
        _check(lambda a, kw: sd.evaluate(OUTPUTS, dict(zip([x, y, w, lam], a))), make, expect)


def test_evaluate_names_a_missing_var_and_wants_a_dict():
    with pytest.raises(ArgumentError, match="'lam'"):
        sd.evaluate(OUTPUTS, {x: X, y: Y, w: W})
    with pytest.raises(TypeError, match="env must be a dict"):
        sd.evaluate(OUTPUTS, [X, Y, W, LAM])


# --- updates= targets and out= buffers: arrays a call writes -----------------------------
STEP = {w: w - 0.1 * OUTPUTS[1]}

TARGETS = [          # an updated argument the kernel writes in place: never a copy
    ("read-only w", read_only, err("'w'", "updated in place", "read-only")),
    ("big-endian w", big_endian, err("'w'", "updated in place", "byte order", ">f8")),
    ("non-contiguous w", strided, err("'w'", "updated in place", "not C-contiguous")),
    ("unaligned w", unaligned, err("'w'", "updated in place", "not aligned")),
    ("list w", lambda a: a.tolist(), err("'w'", "updated in place", "list")),
    ("int w", lambda a: a.astype(np.int64), err("'w'", "updated in place", "int64")),
]


@pytest.fixture(scope="module")
def steppers():
    return {b: sd.compile([x, y, w, lam], LOSS, updates=STEP, backend=b)
            for b in ("numba", "numpy")}


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("row", TARGETS, ids=[r[0] for r in TARGETS])
def test_update_target(steppers, backend, row):
    _, spoil, (kind, words) = row
    target = spoil(W.copy())
    before = np.array(target, dtype=np.float64, copy=True)
    with pytest.raises(kind) as info:
        steppers[backend](X, Y, target, LAM)
    assert all(word in str(info.value) for word in words), str(info.value)
    np.testing.assert_array_equal(np.asarray(target, dtype=np.float64), before)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_update_of_a_good_target_is_the_sgd_step(steppers, backend):
    target = W.copy()
    loss = steppers[backend](X, Y, target, LAM)
    want_loss, want_grad = oracle(X, Y, W, LAM)
    np.testing.assert_allclose(loss, want_loss, rtol=1e-13)
    np.testing.assert_allclose(target, W - 0.1 * want_grad, rtol=1e-13)


OUTS = [
    ("read-only out", lambda o, a: [read_only(o[0]), o[1]], err("out[0]")),
    ("wrong shape out", lambda o, a: [o[0], np.empty(4)], err("out[1]")),
    ("wrong dtype out", lambda o, a: [o[0], o[1].astype(np.float32)], err("out[1]")),
    ("too few outs", lambda o, a: [o[0]], err("out= has 1 arrays", "2 outputs")),
    ("aliased outs", lambda o, a: [o[1][:1].reshape(()), o[1]], err("out[0]", "out[1]")),
    ("big-endian 0-d out", lambda o, a: [big_endian(o[0]), o[1]], err("out[0]", ">f8")),
    ("out aliases an input", lambda o, a: [o[0], a[2]], err("out[1]", "'w'")),
]


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("row", OUTS, ids=[r[0] for r in OUTS])
def test_out_buffers(kernels, backend, row):
    _, spoil, (kind, words) = row
    args = [X.copy(), Y.copy(), W.copy(), np.asarray(LAM)]
    good = [np.empty(()), np.empty(3)]
    with pytest.raises(kind) as info:
        kernels[backend](*args, out=spoil(good, args))
    assert all(word in str(info.value) for word in words), str(info.value)
    np.testing.assert_array_equal(args[2], W)


# --- epochs: the data is only read, so any layout or safe dtype gives the same training ----
xe, ye = sd.var("xe", ("batch", 3)), sd.var("ye", ("batch",))
we = sd.param("we", (3,))
E_LOSS = sd.mean((xe @ we - ye) ** 2)


def sgd_oracle(Xv, Yv, batch, lr=0.1):
    """Mini-batch SGD on mean((X w - y)^2) from w = 0, in NumPy: (losses, final w)."""
    Xv, Yv = np.asarray(Xv, np.float64), np.asarray(Yv, np.float64)
    wv, losses = np.zeros(3), []
    for s in range(0, len(Xv), batch):
        xb, yb = Xv[s:s + batch], Yv[s:s + batch]
        r = xb @ wv - yb
        losses.append(np.mean(r ** 2))
        wv = wv - lr * 2 / len(r) * (xb.T @ r)
    return np.array(losses).reshape(-1, 1), wv


@pytest.fixture(scope="module")
def epoch_kernel():
    return sd.compile([xe, ye], E_LOSS, updates={we: we - 0.1 * sd.grad(E_LOSS, we)},
                      state={we: np.zeros(3)})


XE, YE = RNG.standard_normal((7, 3)), (RNG.random(7) > 0.5).astype(np.float64)
EPOCH_DATA = [
    ("good", XE, YE),
    ("float32 X", XE.astype(np.float32), YE),
    ("int32 labels", XE, YE.astype(np.int32)),
    ("bool labels", XE, YE.astype(bool)),
    ("lists", XE.tolist(), YE.tolist()),
] + [(f"{name} X and y", fn(XE), fn(YE)) for name, fn in LAYOUTS.items() if name != "list"]


@pytest.mark.parametrize("row", EPOCH_DATA, ids=[r[0] for r in EPOCH_DATA])
def test_epoch_data(epoch_kernel, row):
    _, Xd, Yd = row
    want_losses, want_w = sgd_oracle(Xd, Yd, 3)
    for _ in range(2):             # the second call takes the prepared (cached) path
        epoch_kernel.state[we][...] = 0.0
        losses = epoch_kernel.epoch(Xd, Yd, batch_size=3)
        np.testing.assert_allclose(losses, want_losses, rtol=1e-13)
        np.testing.assert_allclose(epoch_kernel.state[we], want_w, rtol=1e-13)


EPOCH_ERRORS = [
    ("one data array", lambda: ((XE,), {"batch_size": 3}), err("expected 2 data arrays", "got 1")),
    ("row counts differ", lambda: ((XE, YE[:5]), {"batch_size": 3}), err("'xe'", "'ye'", "7", "5")),
    ("features", lambda: ((XE[:, :2], YE), {"batch_size": 3}), err("'xe'", "(7, 2)")),
    ("complex X", lambda: ((XE + 0j, YE), {"batch_size": 3}), err("'xe'", "complex128")),
    ("batch_size 0", lambda: ((XE, YE), {"batch_size": 0}), err("batch_size", "0")),
    ("float batch_size", lambda: ((XE, YE), {"batch_size": 2.5}), err("batch_size", "2.5")),
    ("float order", lambda: ((XE, YE), {"batch_size": 3, "order": np.arange(7) + 0.5}),
     err("order", "integer", "float64")),
    ("order out of range", lambda: ((XE, YE), {"batch_size": 3, "order": [0, 7]}),
     err("order", "7 rows")),
]


@pytest.mark.parametrize("row", EPOCH_ERRORS, ids=[r[0] for r in EPOCH_ERRORS])
def test_epoch_errors(epoch_kernel, row):
    _, make, (kind, words) = row
    args, kwargs = make()
    epoch_kernel.state[we][...] = 0.0
    with pytest.raises(kind) as info:
        epoch_kernel.epoch(*args, **kwargs)
    assert all(word in str(info.value) for word in words), str(info.value)
    np.testing.assert_array_equal(epoch_kernel.state[we], 0.0)   # nothing was trained


def test_epoch_order_in_any_layout(epoch_kernel):
    order = np.array([6, 0, 5, 1, 4, 2, 3])
    want_losses, want_w = sgd_oracle(XE[order], YE[order], 3)
    for o in (order, read_only(order), order.astype(np.int32), strided(order), order.tolist()):
        epoch_kernel.state[we][...] = 0.0
        np.testing.assert_allclose(epoch_kernel.epoch(XE, YE, batch_size=3, order=o),
                                   want_losses, rtol=1e-13)
        np.testing.assert_allclose(epoch_kernel.state[we], want_w, rtol=1e-13)


# --- estimators: X in any layout fits exactly as its plain copy does ----------------------
CLF_X = RNG.standard_normal((24, 3))
CLF_Y = (CLF_X[:, 0] + CLF_X[:, 1] > 0).astype(np.int64)
ESTIMATORS = {
    "MLPClassifier": lambda: MLPClassifier(hidden=(4,), epochs=3, batch_size=8, verbose=0),
    "SoftmaxRegression": lambda: SoftmaxRegression(epochs=3, batch_size=8, verbose=0,
                                                   early_stopping=False),
    "LogisticRegression": lambda: LogisticRegression(epochs=3, batch_size=8, verbose=0),
    "LinearSVM": lambda: LinearSVM(epochs=3, batch_size=8),
    "Perceptron": lambda: Perceptron(max_epochs=3),
    "MLPRegressor": lambda: MLPRegressor(hidden=(4,), epochs=3, batch_size=8, verbose=0),
    "MixtureDensityNetwork": lambda: MixtureDensityNetwork(hidden=(4,), components=2, epochs=3,
                                                           batch_size=8, verbose=0),
}


def _predictions(est, X_):
    return est.predict_proba(X_) if hasattr(est, "predict_proba") and hasattr(est, "classes_") \
        else est.predict(X_)


def _targets(name):
    return CLF_Y if "Regressor" not in name and "Mixture" not in name else CLF_X[:, 0] * 2.0


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_fit_on_read_only_x_of_its_dtype(name):
    """A read-only X already in the estimator's dtype reaches the kernels as it is (it
    crashed them); X of the other float dtype is converted: both fit as a plain copy does."""
    make, y_ = ESTIMATORS[name], _targets(name)
    dtype = np.dtype(make().dtype)
    plain = CLF_X.astype(dtype)
    want = _predictions(make().fit(plain, y_), plain)
    other = np.float64 if dtype == np.float32 else np.float32
    # float32 data for a float64 model loses bits before training: compare with that data
    for X_, ref in ((read_only(plain), plain), (plain.astype(other), plain.astype(other))):
        expect = want if ref is plain else _predictions(make().fit(ref.astype(dtype), y_),
                                                        plain)
        np.testing.assert_array_equal(_predictions(make().fit(X_, y_), plain), expect)


def test_estimator_fit_on_any_layout_of_x_and_labels():
    make, y_ = ESTIMATORS["LogisticRegression"], CLF_Y
    want = _predictions(make().fit(CLF_X, y_), CLF_X)
    for kind, fn in LAYOUTS.items():
        got = _predictions(make().fit(fn(CLF_X), y_), CLF_X)
        np.testing.assert_array_equal(got, want, err_msg=f"X {kind}")
    for kind, yv in {"int32": y_.astype(np.int32), "bool": y_.astype(bool),
                     "read-only": read_only(y_), "list": y_.tolist()}.items():
        got = _predictions(make().fit(CLF_X, yv), CLF_X)
        np.testing.assert_array_equal(got, want, err_msg=f"y {kind}")


# scikit-learn's validate_data messages (the estimators' input checks)
ESTIMATOR_ERRORS = [
    ("1-d X", lambda: (CLF_X[:, 0], CLF_Y), "Expected 2D array, got 1D array"),
    ("NaN in X", lambda: (np.where(CLF_X > 1.5, np.nan, CLF_X), CLF_Y), "Input X contains NaN"),
    ("inf in X", lambda: (np.where(CLF_X > 1.5, np.inf, CLF_X), CLF_Y),
     "Input X contains infinity"),
    ("y shorter than X", lambda: (CLF_X, CLF_Y[:-1]),
     r"inconsistent numbers of samples: \[24, 23\]"),
    ("complex X", lambda: (CLF_X + 1j, CLF_Y), "Complex data not supported"),
]


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
@pytest.mark.parametrize("row", ESTIMATOR_ERRORS, ids=[r[0] for r in ESTIMATOR_ERRORS])
def test_estimator_rejects(name, row):
    _, make, words = row
    X_, y_ = make()
    with pytest.raises((ValueError, TypeError), match=words):
        ESTIMATORS[name]().fit(X_, y_)


@pytest.mark.parametrize("name", sorted(ESTIMATORS))
def test_estimator_predict_before_fit(name):
    from sklearn.exceptions import NotFittedError
    with pytest.raises(NotFittedError, match=f"This {name} instance is not fitted yet"):
        ESTIMATORS[name]().predict(CLF_X)


@pytest.mark.parametrize("name", ["MLPClassifier", "LogisticRegression", "Perceptron",
                                  "LinearSVM"])
def test_classifier_needs_two_classes(name):
    with pytest.raises(ValueError, match="1 class"):
        ESTIMATORS[name]().fit(CLF_X, np.zeros(24, np.int64))
