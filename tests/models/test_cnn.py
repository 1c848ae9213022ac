"""The conv net on scikit-learn's 8x8 digits: trained in compiled epoch kernels to >= 0.98
test accuracy; its training step equals the interpreter's; its gradient equals finite
differences."""
import numpy as np
import pytest

import symdiff as sd
from gradcheck import check_grads
from symdiff.models import ConvNetClassifier, Trainer, cnn

pytest.importorskip("sklearn")


def test_convnet_reaches_98_percent_on_digits():
    """Compiles the step, epoch and prediction kernels (most of the test's time; training
    20 epochs takes about a second). Seeds 0-3 reach 0.982, 0.984, 0.984, 0.989 (the same
    with 1 or 2 BLAS threads)."""
    X_tr, X_te, y_tr, y_te = cnn.load_digit_images()
    clf = ConvNetClassifier(epochs=20, verbose=0).fit(X_tr, y_tr)
    acc = clf.score(X_te, y_te)
    print(f"conv net on digits: test accuracy {acc:.4f}, final loss "
          f"{clf.loss_curve_[-1]:.4f}, compile {clf.trainer_.compile_seconds:.1f} s")
    assert acc >= 0.98
    assert clf.loss_curve_[-1] < 0.05 < clf.loss_curve_[0] and clf.n_iter_ == 20
    p = clf.predict_proba(X_te[:5])
    assert p.shape == (5, 10) and np.allclose(p.sum(axis=1), 1)
    assert clf.trainer_.step.backend == "numba" and clf.trainer_.epoch_compile_seconds > 0


def test_convnet_epoch_kernel_equals_the_interpreter():
    """One epoch (unshuffled, a short last batch) through the Numba epoch kernel and through
    the NumPy backend step by step give the same parameters (float32 rounding)."""
    X_tr, _, y_tr, _ = cnn.load_digit_images()
    X, y = X_tr[:150], y_tr[:150]
    runs = []
    for backend in ("numba", "numpy"):
        trainer = Trainer(cnn.convnet(), lr=0.05, momentum=0.9, backend=backend)
        record = trainer.run_epoch(X, y, 32, np.random.default_rng(0), shuffle=False)
        runs.append((record[:, 0], [trainer.params[p] for p in trainer.model.params]))
    (loss_k, params_k), (loss_i, params_i) = runs
    np.testing.assert_allclose(loss_k, loss_i, rtol=2e-5)
    for a, b in zip(params_k, params_i):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_convnet_gradient_equals_finite_differences():
    m = cnn.convnet(image=(6, 6, 1), channels=(3, 4), dtype="float64")
    rng = np.random.default_rng(0)
    env = {m.x: rng.standard_normal((4, 36)), m.y: rng.integers(0, 10, 4), **m.init}
    env = {k: (v + 0.1 * rng.standard_normal(np.shape(v)) if k in m.init else v)
           for k, v in env.items()}          # nonzero biases: no ties at the relu kinks
    check_grads(m.loss, env, wrt=m.params, order=1)
