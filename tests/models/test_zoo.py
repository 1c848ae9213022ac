"""The zoo builds the one Model of models/model.py: seeded initial values for every
parameter (the same on every call), inputs [x, y], and it trains with the Trainer like the
networks' models."""
import numpy as np
import pytest

import symdiff as sd
from symdiff.models import Model, networks
from symdiff.models.train import Trainer, fit
from symdiff.models.zoo import ZOO, logreg


def test_networks_and_zoo_share_one_model_class():
    assert networks.Model is Model and type(logreg()) is Model


@pytest.mark.parametrize("name", sorted(ZOO))
def test_every_zoo_model_has_seeded_initial_values(name):
    m, again = ZOO[name](), ZOO[name]()
    assert m.inputs[0] is m.x and m.inputs[1] is m.y
    assert set(m.init) == set(m.params)
    for p in m.params:
        assert m.init[p].shape == p.shape and m.init[p].dtype == p.dtype, p.name
        np.testing.assert_array_equal(m.init[p], again.init[p])
    values = {m.x: np.ones((3,) + m.x.shape[1:]), m.y: np.zeros(3, m.y.dtype), **m.init}
    assert np.isfinite(sd.evaluate(m.loss, values))


def test_a_zoo_model_trains():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((64, 5))
    y = (X @ np.array([1.0, -2.0, 0.5, 0.0, 1.0]) > 0).astype(float)
    trainer = Trainer(logreg(), lr=0.5, backend="numpy")
    history = fit(trainer, X, y, epochs=20, batch_size=16)
    assert history[-1]["loss"] < 0.5 * history[0]["loss"]
    assert np.mean((trainer.predict("proba", X) > 0.5) == y) > 0.95


def test_a_model_without_initial_values_is_refused():
    x, y, w = sd.var("x", ("batch", 2)), sd.var("y", ("batch",)), sd.param("w", (2,))
    with pytest.raises(ValueError, match="no initial value for w"):
        Model("m", x, y, [w], {}, sd.mse(x @ w, y))
