"""Kernels (and the cost model's calibration) go into a per-session temporary cache: the
tests never depend on (or pollute) an earlier run's cache or the user's."""
import os
import tempfile

import pytest

_DIR = tempfile.mkdtemp(prefix="symdiff-kernels-")
os.environ["SYMDIFF_CACHE_DIR"] = _DIR
# the cost model's calibration is cached beside the kernels, not in the user's cache
os.environ["SYMDIFF_COST_FILE"] = os.path.join(_DIR, "cost-weights.json")
# sd.compile waits for the Numba kernel: the tests test the kernel itself, which a tiered
# compile would replace by the NumPy tier for the first calls (tests/codegen/test_tiered.py
# and the README examples in tests/test_readme.py turn tiering on)
os.environ["SYMDIFF_TIERED"] = "0"


@pytest.fixture(scope="session")
def cache_dir():
    return _DIR
