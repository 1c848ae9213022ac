"""symdiff.models: the lecture notes' models, declared with symdiff's public API, trained
in compiled kernels, with scikit-learn-style estimators and the datasets that ship inside
scikit-learn."""
from . import cnn, data, networks
from .cnn import ConvNetClassifier
from .estimators import (LinearSVM, LogisticRegression, MixtureDensityNetwork, MLPClassifier,
                         MLPRegressor, Perceptron, SoftmaxRegression)
from .lda import LDA
from .layers import ACTIVATIONS, Builder
from .networks import Model
from .train import Trainer, fit

__all__ = ["cnn", "data", "networks", "ConvNetClassifier", "LinearSVM", "LogisticRegression",
           "MixtureDensityNetwork", "MLPClassifier", "MLPRegressor", "Perceptron",
           "SoftmaxRegression", "LDA",
           "ACTIVATIONS", "Builder", "Model", "Trainer", "fit"]
