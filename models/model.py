"""The one model vocabulary of ``symdiff.models``: every declaration (``networks``, ``zoo``,
``cnn``, ``recurrent``) returns a ``Model``, which the CLI prints and compares, the tests
differentiate and the ``Trainer`` (and so every estimator) trains.

For data X (rows x_i, i = 1..n, the batch) with targets Y and parameters theta:

- ``name``: a label for the CLI, logs and errors.
- ``x``: the data input, shape (batch, ...): its leading dim is the batch, the symbol
  ``"batch"`` (bound at call time) or an int (a Jacobian over the rows needs the size).
- ``y``: the targets, one per row with the same leading dim: int64 class labels for a softmax
  head, floats otherwise ({0, 1} for a logistic unit, {-1, +1} for the perceptron and the SVM).
- ``params``: the trainable ``sd.param`` nodes, in the order the gradients come back in
  (``sd.grad(loss, params)``, ``Trainer.params``).
- ``init``: ``{param: ndarray}`` the seeded initial values (the param's shape and dtype; the
  same arguments give the same values), what training starts from.
- ``loss``: the scalar objective L(theta; X, Y). By default the mean over the batch of a
  per-example loss plus penalties: L = (1/n) sum_i l(f(x_i; theta), y_i) + lambda R(theta),
  so its gradient, and a learning rate, do not scale with the batch size. The exception is
  the perceptron criterion (``networks.perceptron_criterion``), a sum over the misclassified
  points: with learning rate 1 its SGD step is the perceptron rule, w <- w + y_i x_i per
  mistake.
- ``outputs``: named nodes beside the loss, functions of ``x`` and ``params`` (predictions
  such as ``logits``, ``proba``, ``mean``, ``score``, ``f``), or of ``y`` too for diagnostics
  (the perceptron's ``mistakes``).
- ``inputs`` (a property): ``[x, y]``, the data arguments in the order kernels take them, e.g.
  ``sd.compile(m.inputs + m.params, [m.loss])``.

>>> from symdiff.models import zoo
>>> m = zoo.logreg(features=3)
>>> [p.name for p in m.params], m.init[m.params[0]].shape
(['w', 'b'], (3,))

The tests' oracle is not a Model on purpose: ``tests/seed_models.py`` declares the seed
models with their hand-written backprop (dz = a - y, dW = a^T dz, ...), written
independently of this package, so that ``sd.grad`` is checked against the lecture notes'
equations rather than against another use of the code under test.
"""
from dataclasses import dataclass, field


@dataclass
class Model:
    name: str
    x: object
    y: object
    params: list
    init: dict
    loss: object
    outputs: dict = field(default_factory=dict)

    def __post_init__(self):
        missing = [p.name for p in self.params if p not in self.init]
        if missing:
            raise ValueError(f"model {self.name!r}: no initial value for {', '.join(missing)}")

    @property
    def inputs(self):
        """The data arguments [x, y], in the order kernels take them."""
        return [self.x, self.y]
