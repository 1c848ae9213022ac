"""The README's code blocks and the docstring examples of the public API run as written."""
import doctest
import importlib
import pathlib
import re

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
BLOCKS = re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
MODULES = ["symdiff", "symdiff.api", "symdiff.graph", "symdiff.frontend", "symdiff.composites",
           "symdiff.losses", "symdiff.interpret", "symdiff.function", "symdiff.cost",
           "symdiff.modes", "symdiff.compare", "symdiff.models.estimators", "symdiff.models.base",
           "symdiff.models.lda", "symdiff.tensor",
           "symdiff.joins", "symdiff.indexing", "symdiff.einsum", "symdiff.models.objectives", "symdiff.loops",
           "symdiff.conv", "symdiff.models.cnn",
           "symdiff.models.mixture", "symdiff.models.model", "symdiff.numpy_dispatch",
           "symdiff.dask", "symdiff.models.optimizers", "symdiff.persist"]


@pytest.mark.parametrize("i", range(len(BLOCKS)))
def test_readme_block_runs(i, monkeypatch):
    # tiered, as a user runs them (conftest.py turns tiering off for the kernel tests): the
    # first calls run the NumPy tier, later ones the Numba kernel
    monkeypatch.setenv("SYMDIFF_TIERED", "1")
    exec(compile(BLOCKS[i], f"README.md block {i}", "exec"), {})


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0
