"""Random graphs over the tensor language (tests/graphgen.py): the Numba kernel equals the
NumPy interpreter, and reverse mode agrees with forward mode (<grad, v> = jvp(v)).
benchmarks/fuzz.py runs the same check (graphgen.check_graph) on thousands of graphs."""
import numpy as np
import pytest
from graphgen import accurate_as_interpreter, check_graph, float64_values, random_graph

import symdiff as sd


@pytest.mark.parametrize("seed", range(16))
def test_random_tensor_graphs(seed):
    check_graph(seed)


@pytest.mark.parametrize("seed", range(100, 106))
def test_random_float32_graphs(seed):
    check_graph(seed, dtype="float32")


@pytest.mark.slow
@pytest.mark.parametrize("seed", range(16, 216))
def test_random_tensor_graphs_long(seed):
    check_graph(seed, dtype="float32" if seed % 2 else "float64")


def test_an_ill_conditioned_float32_graph_is_held_to_the_interpreters_accuracy():
    """Seed 7709 (fuzz): sum(sin(cumsum(s^2)^2)) in float32. The kernel's sum order differs
    from NumPy's, and sin of the large argument turns that rounding into 2.4e-5 against the
    interpreter, beyond F32_TOL; both are that far from the float64 value."""
    kw = dict(steps=19, dim="n7709", dtype="float32")
    check_graph(7709, **kw)                                  # compiles and passes
    inputs, out, env = random_graph(7709, **kw)
    w = sd.evaluate([out], env)[0]
    exact = float64_values(7709, inputs, out, env, **kw)()[0]
    assert 1e-6 < abs(float(w) - exact) < 1e-4             # the interpreter's own error
    accurate_as_interpreter(7709, 0, w, w, exact, 0.0)      # as accurate as itself
    wrong = np.float32(w + 10 * (float(w) - exact))        # 10x its error: rejected
    with pytest.raises(AssertionError, match="further from the float64 value"):
        accurate_as_interpreter(7709, 0, wrong, w, exact, 1e-6)
