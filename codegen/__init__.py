"""symdiff.codegen: lowering a simplified graph to fused loops and Numba kernels.

Only ``symdiff.codegen.jit`` imports numba.
"""
