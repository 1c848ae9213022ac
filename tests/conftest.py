"""Kernels (and the cost model's calibration) go into a per-session temporary cache: the
tests never depend on (or pollute) an earlier run's cache or the user's."""
import os
import tempfile

import pytest

# one cache for the whole run: the workers of `pytest -n` (pytest-xdist) take the one their
# controller made (they inherit its environment), so a kernel compiles once per run
_DIR = os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get("SYMDIFF_TEST_CACHE_DIR")
if not _DIR:
    _DIR = os.environ["SYMDIFF_TEST_CACHE_DIR"] = tempfile.mkdtemp(prefix="symdiff-kernels-")
os.environ["SYMDIFF_CACHE_DIR"] = _DIR
# the cost model's calibration is cached beside the kernels, not in the user's cache
os.environ["SYMDIFF_COST_FILE"] = os.path.join(_DIR, "cost-weights.json")
# sd.compile waits for the Numba kernel: the tests test the kernel itself, which a tiered
# compile would replace by the NumPy tier for the first calls (tests/codegen/test_tiered.py
# and the README examples in tests/test_readme.py turn tiering on)
os.environ["SYMDIFF_TIERED"] = "0"


def pytest_xdist_auto_num_workers(config):
    """``pytest -n auto`` (the default, pyproject.toml): a worker per core, at most 4 (each
    holds Numba, PyTorch and JAX; the tests are mostly single-threaded Numba compiles)."""
    return max(1, min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                      else os.cpu_count() or 1))


@pytest.fixture(scope="session")
def cache_dir():
    return _DIR
