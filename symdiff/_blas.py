"""Pick OpenBLAS's AVX-512 kernels on CPUs it misdetects.

OpenBLAS 0.3.30/0.3.31 (the builds in the NumPy and SciPy wheels) runs its AVX2 "Haswell"
kernels on AMD CPUs with AVX-512 (it maps them to Haswell). Its "SkylakeX" kernels run our
GEMMs 1.6x faster on such a CPU (measured on the project machine: 128x784 @ 784x256 float32
159 us vs 259 us). The core type is read once, when the library loads, so this runs when
``symdiff`` is imported, before SciPy's OpenBLAS (which compiled kernels call) is loaded.
It only sets OPENBLAS_CORETYPE when the CPU has every AVX-512 subset those kernels use, the
user has not chosen a core type, and SYMDIFF_NO_BLAS_TUNING is unset. Libraries already loaded
(often NumPy's own OpenBLAS) keep their choice.
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
    """Set OPENBLAS_CORETYPE=SkylakeX on AVX-512 CPUs (see the module docstring)."""
    if os.environ.get("OPENBLAS_CORETYPE") or os.environ.get("SYMDIFF_NO_BLAS_TUNING"):
        return None
    if _NEEDED <= cpu_flags():
        os.environ["OPENBLAS_CORETYPE"] = "SkylakeX"
        return "SkylakeX"
    return None
