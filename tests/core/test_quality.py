"""The simplified gradient of every seed model is no bigger than the seeds' hand-written
backprop, and computes the same values."""
import numpy as np
import pytest

import symdiff as sd
from seed_models import SEED_MODELS, environment


@pytest.mark.parametrize("batch", [32, "batch"])
@pytest.mark.parametrize("name", sorted(SEED_MODELS))
def test_simplified_gradient_is_as_small_as_hand_written_backprop(name, batch):
    loss, params, hand, data = SEED_MODELS[name](batch)
    auto = sd.simplify(sd.grad(loss, params))
    n_auto, n_hand = sd.count_ops(auto), sd.count_ops(hand)
    print(f"{name}: simplified gradient {n_auto} ops, hand-written {n_hand} ops")
    assert n_auto <= n_hand
    env = environment(params, data)
    for a, h in zip(sd.evaluate(auto, env), sd.evaluate(hand, env)):
        np.testing.assert_allclose(a, h, rtol=1e-11, atol=1e-13)
