"""Kernels compile into a per-session temporary cache: the tests never depend on (or
pollute) an earlier run's cache or the user's."""
import os
import tempfile

import pytest

_DIR = tempfile.mkdtemp(prefix="symdiff-kernels-")
os.environ["SYMDIFF_CACHE_DIR"] = _DIR


@pytest.fixture(scope="session")
def cache_dir():
    return _DIR
