"""symdiff.models: the lecture notes' models, declared with symdiff's public API, trained
in compiled kernels, with scikit-learn estimators and the datasets that ship inside
scikit-learn. The estimators (and ``cnn``, whose classifier is one) need scikit-learn, from the
``demo`` or ``test`` extra: they load on first use, so the rest imports without it."""
import importlib

from . import data, networks
from .layers import ACTIVATIONS, Builder
from .networks import Model
from .train import Trainer, fit

_LAZY = {"ConvNetClassifier": "cnn", "LDA": "lda", "LinearSVM": "estimators",
         "LogisticRegression": "estimators", "MixtureDensityNetwork": "estimators",
         "MLPClassifier": "estimators", "MLPRegressor": "estimators",
         "Perceptron": "estimators", "SoftmaxRegression": "estimators"}

__all__ = ["cnn", "data", "networks", "ACTIVATIONS", "Builder", "Model", "Trainer",
           "fit", *_LAZY]


def __getattr__(name):
    """``symdiff.models.cnn`` and the estimators, imported on first access."""
    if name == "cnn":
        return importlib.import_module(".cnn", __name__)
    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
