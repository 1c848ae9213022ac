"""Compile time of the W1 and W2 kernels: cold (empty disk cache) and warm (a new process,
disk cache filled), each in a fresh process. One-time costs (importing symdiff, numba and
SciPy's BLAS bindings, Numba's first cache access) are paid by a tiny warm-up kernel first
and reported separately from the per-kernel time. Run: python benchmarks/bench_compile.py
"""
import json
import os
import subprocess
import sys
import tempfile

CHILD = r"""
import json, sys, time
t0 = time.perf_counter()
import symdiff as sd
t_import = time.perf_counter() - t0
sys.path.insert(0, {bench!r})
t0 = time.perf_counter()
x = sd.var("warm", (2, 2)); sd.compile([x], x @ x)       # pays numba import + BLAS binding
t_onetime = time.perf_counter() - t0
from symdiff.codegen import jit
import bench_w1, bench_w2
if {workload!r} == "W1":
    x, y, params, loss = bench_w1.model({dtype!r})
    inputs, outs = [x, y] + params, [loss] + sd.grad(loss, params)
else:
    inputs, outs = bench_w2.model()
before = dict(jit.STATS)
t0 = time.perf_counter()
sd.compile(inputs, outs)
t_kernel = time.perf_counter() - t0
print(json.dumps({{"import": t_import, "onetime": t_onetime, "kernel": t_kernel,
                  "loaded": jit.STATS["loaded"] - before["loaded"]}}))
"""


def run(workload, dtype, cache):
    code = CHILD.format(bench=os.path.dirname(os.path.abspath(__file__)), workload=workload,
                        dtype=dtype)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "SYMDIFF_CACHE_DIR": cache}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    print("| workload | cold compile | warm load (new process) | one-time imports | "
          "one-time first kernel |")
    print("|---|---:|---:|---:|---:|")
    for workload, dtype in (("W1", "float32"), ("W1", "float64"), ("W2", "float64")):
        with tempfile.TemporaryDirectory() as cache:
            cold = run(workload, dtype, cache)
            warm = [run(workload, dtype, cache) for _ in range(3)]
        w = sorted(r["kernel"] for r in warm)[1]
        assert all(r["loaded"] == 1 for r in warm), warm
        print(f"| {workload} {dtype} | {cold['kernel']:.2f} s | {w:.3f} s | "
              f"{warm[1]['import']:.2f} s | {warm[1]['onetime']:.2f} s |")


if __name__ == "__main__":
    main()
