"""symdiff.models: the lecture notes' models, declared with symdiff's public API, trained
in compiled kernels, with scikit-learn-style estimators and the datasets that ship inside
scikit-learn."""
from . import data, networks
from .estimators import (LinearSVM, LogisticRegression, MixtureDensityNetwork, MLPClassifier,
                         MLPRegressor, Perceptron, SoftmaxRegression)
from .lda import LDA
from .layers import ACTIVATIONS, Builder
from .networks import Model
from .train import Trainer, fit

__all__ = ["data", "networks", "LinearSVM", "LogisticRegression", "MixtureDensityNetwork",
           "MLPClassifier", "MLPRegressor", "Perceptron", "SoftmaxRegression", "LDA",
           "ACTIVATIONS", "Builder", "Model", "Trainer", "fit"]
