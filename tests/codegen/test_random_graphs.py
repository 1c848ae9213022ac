"""Random graphs over the tensor language (tests/graphgen.py): the Numba kernel equals the
NumPy interpreter, and reverse mode agrees with forward mode (<grad, v> = jvp(v)).
benchmarks/fuzz.py runs the same check (graphgen.check_graph) on thousands of graphs."""
import pytest
from graphgen import check_graph


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
