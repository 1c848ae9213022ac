"""Datasets that ship inside scikit-learn (no downloads) and small synthetic sets.

Each loader returns ``(X_train, X_test, y_train, y_test)`` with features standardized by the
training split's mean and standard deviation, a stratified split and a fixed seed.
"""
import numpy as np


def _sklearn():
    try:
        import sklearn.datasets
        import sklearn.model_selection
    except ImportError as e:     # scikit-learn is in the demo/test extras, not the core
        raise ImportError("the dataset loaders need scikit-learn: pip install 'symdiff[demo]'") from e
    return sklearn


def standardize(X_train, X_test):
    """(X - mean) / std with the training split's statistics (constant columns left at 0)."""
    mean = X_train.mean(axis=0)
    std = X_train.std(axis=0)
    std = np.where(std > 0, std, 1.0)
    return (X_train - mean) / std, (X_test - mean) / std


def _split(X, y, test_size, seed, dtype):
    sk = _sklearn()
    X_tr, X_te, y_tr, y_te = sk.model_selection.train_test_split(
        X, y, test_size=test_size, random_state=seed, stratify=y)
    X_tr, X_te = standardize(X_tr.astype(np.float64), X_te.astype(np.float64))
    return X_tr.astype(dtype), X_te.astype(dtype), y_tr.astype(np.int64), y_te.astype(np.int64)


def load_digits(test_size=0.25, seed=0, dtype="float32"):
    """8x8 handwritten digits: 1797 examples, 64 features, 10 classes."""
    d = _sklearn().datasets.load_digits()
    return _split(d.data, d.target, test_size, seed, dtype)


def load_breast_cancer(test_size=0.25, seed=0, dtype="float64"):
    """Wisconsin breast cancer: 569 examples, 30 features, 2 classes (1 = benign)."""
    d = _sklearn().datasets.load_breast_cancer()
    return _split(d.data, d.target, test_size, seed, dtype)


def load_iris(test_size=0.25, seed=0, dtype="float64"):
    """Iris: 150 examples, 4 features, 3 classes."""
    d = _sklearn().datasets.load_iris()
    return _split(d.data, d.target, test_size, seed, dtype)


def xor(dtype="float64"):
    """The four XOR points and their labels (0, 1, 1, 0)."""
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=dtype)
    return X, np.array([0, 1, 1, 0], dtype=np.int64)


def separable(n=200, dim=2, margin=0.5, seed=0):
    """Linearly separable points with labels in {-1, +1} and a margin around a random plane
    through the origin (the setting of the perceptron's convergence bound)."""
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(dim)
    w /= np.linalg.norm(w)
    X = rng.uniform(-1, 1, (4 * n, dim))
    d = X @ w
    keep = np.abs(d) >= margin / 2
    X, d = X[keep][:n], d[keep][:n]
    return X, np.where(d > 0, 1.0, -1.0)


def wave(n=200, seed=0, noise=0.0):
    """A 1-D regression target y = sin(3x) + 0.3 cos(7x) on [-1, 1] (universal approximation)."""
    rng = np.random.default_rng(seed)
    x = np.sort(rng.uniform(-1, 1, n))
    y = np.sin(3 * x) + 0.3 * np.cos(7 * x) + noise * rng.standard_normal(n)
    return x[:, None], y[:, None]


def multimodal(n=1000, seed=0):
    """Bishop's inverse problem (a mixture density network example): x = t + 0.3 sin(2 pi t) +
    noise, predict t from x; p(t | x) has up to three modes."""
    rng = np.random.default_rng(seed)
    t = rng.uniform(0, 1, n)
    x = t + 0.3 * np.sin(2 * np.pi * t) + rng.uniform(-0.1, 0.1, n)
    return x[:, None], t[:, None]
