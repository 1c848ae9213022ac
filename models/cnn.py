"""Convolutional networks built on ``sd.conv2d`` and ``sd.max_pool2d``: the classic
conv-pool-conv-dense-softmax net for small images (scikit-learn's 8x8 digits).

Images arrive as flat rows (batch, height * width * channels), as scikit-learn and the epoch
driver hand them over, and are reshaped to images inside the model. Between the layers the
activations stay in the spatial-major layout HWNC, the one the convolutions compute in (one
GEMM per output position, the batch as its rows; see ``symdiff/conv.py``): no transposes
between layers, the bias and the relu run on the GEMM's output as it is. The kernels are
HWIO.
"""
import contextlib

import numpy as np

import symdiff as sd

from .base import keep_params
from .estimators import MLPClassifier
from .layers import Builder, he
from .networks import Model


def load_digit_images(test_size=0.25, seed=0, dtype="float32"):
    """scikit-learn's 8x8 digits as flat rows of pixel intensities in [0, 1] (x / 16), split
    as ``data.load_digits`` splits them (stratified, same seed). Not standardized per pixel:
    a convolution applies one filter at every position, so every position should keep the
    same scale (per-pixel standardization blows up the near-constant border pixels)."""
    from .data import _sklearn
    sk = _sklearn()
    d = sk.datasets.load_digits()
    X_tr, X_te, y_tr, y_te = sk.model_selection.train_test_split(
        d.data / 16.0, d.target, test_size=test_size, random_state=seed, stratify=d.target)
    return (X_tr.astype(dtype), X_te.astype(dtype), y_tr.astype(np.int64),
            y_te.astype(np.int64))


def conv_layer(b, h, channels, name, size=3, layout="HWNC"):
    """relu(conv2d(h, k, padding="same") + bias) in ``layout`` (channels last), with an
    He-initialized HWIO kernel (fan-in = size * size * input channels)."""
    c_in = h.shape[-1]
    shape = (size, size, c_in, channels)
    k = b.param(f"k{name}", shape, he((size * size * c_in, channels), b.rng, b.dtype)
                .reshape(shape))
    bias = b.param(f"b{name}", (channels,), np.zeros(channels))
    b.weights.append(k)
    return sd.relu(sd.conv2d(h, k, padding="same", data_format=layout, bias=bias))


def convnet(image=(8, 8, 1), channels=(16, 32), n_out=10, l2=0.0, dtype="float32", seed=0,
            layout="HWNC"):
    """conv(3x3, channels[0]) - relu - max_pool(2) - conv(3x3, channels[1]) - relu - dense -
    softmax, with cross-entropy on integer labels:

        h1 = relu(conv(x, k1) + b1),  h2 = max_pool2d(h1, 2),  h3 = relu(conv(h2, k2) + b2)
        logits = flatten(h3) W + b,   loss = mean(-log softmax(logits)[y])

    ``image`` is (height, width, channels) of the flat input rows; optional L2 penalty on
    the kernels and the dense weights. The activations live in ``layout``: "HWNC" (the
    convolutions' own spatial-major layout, no transposes between the layers) or "NHWC";
    both flatten the last activation in NHWC order."""
    b = Builder(dtype, seed)
    height, width, c_in = image
    x = sd.var("x", ("batch", height * width * c_in), dtype)
    y = sd.var("y", ("batch",), "int64")
    h = sd.reshape(x, ("batch", height, width, c_in))
    if layout == "HWNC":
        h = sd.transpose(h, (1, 2, 0, 3))
    h = conv_layer(b, h, channels[0], "1", layout=layout)
    h = sd.max_pool2d(h, 2, data_format=layout)
    h = conv_layer(b, h, channels[1], "2", layout=layout)
    if layout == "HWNC":
        h = sd.transpose(h, (2, 0, 1, 3))
    flat = sd.reshape(h, ("batch", int(np.prod(h.shape[1:]))))
    z = b.dense(flat, n_out, "3")
    loss = sd.mean(sd.softmax_cross_entropy(z, y))
    if l2:
        loss = loss + l2 * b.l2()
    return Model("convnet", x, y, b.params, b.init, loss, {"logits": z})


def one_blas_thread():
    """A context that runs BLAS on one thread (threadpoolctl, when installed). The conv
    net's GEMMs are many and small (one per output position and layer): with two OpenBLAS
    threads on a 2-core machine that is busy with anything else, every call waits for its
    second thread, and a float32 train step measured 482 ms instead of 3.5 ms."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        return contextlib.nullcontext()
    return threadpool_limits(1, user_api="blas")


class ConvNetClassifier(MLPClassifier):
    """The conv net of ``convnet`` as a scikit-learn classifier on flat image rows, trained
    by mini-batch SGD with momentum, whole epochs inside one compiled kernel; the training
    options (callback, partial_fit, warm_start, early stopping) are MLPClassifier's.

    >>> from symdiff.models import ConvNetClassifier, cnn
    >>> X_tr, X_te, y_tr, y_te = cnn.load_digit_images()
    >>> clf = ConvNetClassifier(image=(8, 8, 1), epochs=20, verbose=0).fit(X_tr, y_tr)
    >>> clf.score(X_te, y_te) >= 0.98
    True
    """

    def __init__(self, image=(8, 8, 1), channels=(16, 32), lr=0.05, momentum=0.9,
                 batch_size=32, epochs=20, l2=0.0, early_stopping=False,
                 validation_fraction=0.1, patience=5, seed=0, dtype="float32", verbose=0,
                 warm_start=False, backend="numba"):
        keep_params(self, locals())

    def _build(self, n_in):
        if n_in != int(np.prod(self.image)):
            raise ValueError(f"ConvNetClassifier: X has {n_in} features, image={self.image} "
                             f"needs {int(np.prod(self.image))}")
        return convnet(tuple(self.image), tuple(self.channels), len(self.classes_), self.l2,
                       self.dtype, self.seed)

    def fit(self, X, y, callback=None):
        with one_blas_thread():
            return super().fit(X, y, callback)

    def partial_fit(self, X, y, classes=None):
        with one_blas_thread():
            return super().partial_fit(X, y, classes)

    def _codes(self, X):
        with one_blas_thread():
            return super()._codes(X)

    def predict_proba(self, X):
        """softmax of the logits (one compiled prediction kernel serves both)."""
        X = self._X(X)
        with one_blas_thread():
            z = self.trainer_.predict("logits", X)
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
