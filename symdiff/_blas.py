"""Opt-in: pick OpenBLAS's AVX-512 kernels on CPUs it misdetects.

OpenBLAS 0.3.30/0.3.31 (the builds in the NumPy and SciPy wheels) runs its AVX2 "Haswell"
kernels on AMD CPUs with AVX-512 (it maps them to Haswell). Its "SkylakeX" kernels run our
GEMMs 1.6x faster on such a CPU (measured on the project machine: 128x784 @ 784x256 float32
159 us vs 259 us). The core type is read once, when the library loads, so the tuning must run
before SciPy's OpenBLAS (which compiled kernels call) is loaded.

It is off by default: OPENBLAS_CORETYPE is process-global and changes the BLAS kernels of every
library loaded afterwards, and some OpenBLAS builds compute wrong results or crash with a core
type they did not pick. ``import symdiff`` changes no environment variable unless
SYMDIFF_TUNE_BLAS=1 is set; otherwise call ``sd.tune_openblas()`` first thing.
"""
import os

_NEEDED = {"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512cd"}


def cpu_flags():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def tune_openblas():
    """Set OPENBLAS_CORETYPE=SkylakeX on CPUs with the AVX-512 subsets its kernels use, unless
    the variable is already set; returns the core type set, or None.

    Call it before anything loads SciPy (symdiff loads it lazily, with the first compiled
    kernel or special function); libraries already loaded (often NumPy's own OpenBLAS) keep
    their choice. ``SYMDIFF_TUNE_BLAS=1`` in the environment does the same at import.

    >>> import symdiff as sd
    >>> sd.tune_openblas() in (None, "SkylakeX")
    True
    """
    if os.environ.get("OPENBLAS_CORETYPE"):
        return None
    if _NEEDED <= cpu_flags():
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
        return "SkylakeX"
    return None


def tune_if_asked():
    """At import: tune only when the user opted in with SYMDIFF_TUNE_BLAS=1."""
    if os.environ.get("SYMDIFF_TUNE_BLAS") == "1":
        tune_openblas()
