"""Random graphs over the tensor language (tests/graphgen.py): the Numba kernel equals the
NumPy interpreter, and reverse mode agrees with forward mode (<grad, v> = jvp(v))."""
import numpy as np
import pytest

import symdiff as sd
from graphgen import random_graph


def _check(seed):
    inputs, out, env = random_graph(seed)
    grads = sd.grad(out, inputs)
    f = sd.compile(inputs, [out] + grads)
    got = f(*[env[v] for v in inputs])
    want = sd.evaluate([out] + grads, env)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-10, err_msg=f"seed {seed}")
    rng = np.random.default_rng(seed + 1)
    dirs = [rng.standard_normal(env[v].shape) for v in inputs]
    tvars = [sd.var(f"t_{v.name}", v.shape) for v in inputs]   # same (symbolic) shapes
    tangent = sd.jvp(out, inputs, tvars)
    fwd = float(sd.evaluate(tangent, {**env, **dict(zip(tvars, dirs))}))
    rev = sum(float(np.sum(g * d)) for g, d in zip(want[1:], dirs))
    assert np.isclose(fwd, rev, rtol=1e-9, atol=1e-10), (seed, fwd, rev)


@pytest.mark.parametrize("seed", range(16))
def test_random_tensor_graphs(seed):
    _check(seed)


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(16, 216))
def test_random_tensor_graphs_long(seed):
    _check(seed)
