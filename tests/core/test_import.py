"""Importing symdiff changes no process-global state of other libraries (issue 12): the
environment (OPENBLAS_CORETYPE above all), NumPy's error and print settings, the warning
filters. The OpenBLAS tuning is opt-in."""
import os
import subprocess
import sys

import symdiff as sd
from symdiff import _blas

PROBE = """
import os, sys, warnings, json
import numpy as np
import scipy.special   # a dependency: its own import adds warning filters (not ours to judge)
before = (dict(os.environ), np.geterr(), np.get_printoptions(), list(warnings.filters))
import symdiff
after = (dict(os.environ), np.geterr(), np.get_printoptions(), list(warnings.filters))
print(json.dumps({"env": before[0] == after[0], "err": before[1] == after[1],
                  "print": before[2] == after[2], "warn": before[3] == after[3],
                  "coretype": os.environ.get("OPENBLAS_CORETYPE"),
                  "numba": "numba" in sys.modules}))
"""


def _import_in_a_new_process(**env):
    import json
    clean = {k: v for k, v in os.environ.items()
             if k not in ("OPENBLAS_CORETYPE", "SYMDIFF_TUNE_BLAS", "SYMDIFF_NO_BLAS_TUNING")}
    out = subprocess.run([sys.executable, "-c", PROBE], env={**clean, **env}, cwd="/",
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_leaves_the_environment_and_numpy_settings_alone():
    got = _import_in_a_new_process()
    assert got == {"env": True, "err": True, "print": True, "warn": True, "coretype": None,
                   "numba": False}


def test_opting_in_at_import_tunes_only_an_avx512_cpu():
    got = _import_in_a_new_process(SYMDIFF_TUNE_BLAS="1")
    want = "SkylakeX" if _blas._NEEDED <= _blas.cpu_flags() else None
    assert got["coretype"] == want


def test_an_existing_core_type_is_respected(monkeypatch):
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")
    assert sd.tune_openblas() is None
    assert os.environ["OPENBLAS_CORETYPE"] == "Haswell"


def test_tune_openblas_sets_skylakex_on_avx512(monkeypatch):
    # setenv first, so that monkeypatch records the variable's original state and restores it
    # at the end (delenv of an absent variable records nothing: the SkylakeX that
    # tune_openblas sets leaked into every later subprocess, where OpenBLAS's AVX-512 kernels
    # died of SIGILL on this CPU without AVX-512)
    monkeypatch.setenv("OPENBLAS_CORETYPE", "placeholder")
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setattr(_blas, "cpu_flags", lambda: set(_blas._NEEDED) | {"sse2"})
    assert sd.tune_openblas() == "SkylakeX" and os.environ["OPENBLAS_CORETYPE"] == "SkylakeX"
    monkeypatch.delenv("OPENBLAS_CORETYPE")
    monkeypatch.setattr(_blas, "cpu_flags", lambda: {"avx2", "avx512f"})
    assert sd.tune_openblas() is None and "OPENBLAS_CORETYPE" not in os.environ
