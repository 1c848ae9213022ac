"""Compile time of the W1 and W2 (XOR 2-2-1) kernels: cold (empty kernel cache) and warm (a
new process, disk cache filled), each in a fresh process, with the emitted kernel's line count
and, next to it, JAX's jit compile (trace + XLA compile of value_and_grad, first call) of the
same function in a fresh process. One-time costs (importing symdiff, numba and SciPy's BLAS
bindings, Numba's first cache access) are paid by a tiny warm-up kernel first and reported
separately from the per-kernel time; the library's own Numba helpers (codegen/helpers.py,
cached by Numba next to the package) are compiled once by the first run.
Run: python benchmarks/bench_compile.py
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
x = sd.var("warm", (2, 2)); sd.compile([x], x @ x, wait=True)   # numba import + BLAS binding
t_onetime = time.perf_counter() - t0
from symdiff.codegen import jit
import bench_w1, bench_w2
if {workload!r}.startswith("W1"):       # "W1 renamed": the same model, other names
    names = ("images", "labels", "weight", "bias", "rows") if " " in {workload!r} else \
        ("x", "y", "W", "b", "batch")
    x, y, params, loss = bench_w1.model({dtype!r}, names)
    inputs, outs = [x, y] + params, [loss] + sd.grad(loss, params)
else:
    inputs, outs = bench_w2.model()
before = dict(jit.STATS)
t0 = time.perf_counter()
f = sd.compile(inputs, outs, wait=True)
t_kernel = time.perf_counter() - t0
print(json.dumps({{"import": t_import, "onetime": t_onetime, "kernel": t_kernel,
                  "loaded": jit.STATS["loaded"] - before["loaded"],
                  "lines": f.source.count("\n")}}))
"""

JAX_CHILD = r"""
import json, sys, time
sys.path.insert(0, {bench!r})
import numpy as np
import bench_w1, bench_w2
import jax
t0 = time.perf_counter()
if {workload!r} == "W1":
    X, Y, vals = bench_w1.data({dtype!r})
    bench_w1.jax_peer(X, Y, vals)
else:
    bench_w2.jax_peer(bench_w2.data())
print(json.dumps({{"jax": time.perf_counter() - t0}}))
"""


def run(workload, dtype, cache, child=CHILD):
    code = child.format(bench=os.path.dirname(os.path.abspath(__file__)), workload=workload,
                        dtype=dtype)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "SYMDIFF_CACHE_DIR": cache}, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def jax_compile(workload, dtype):
    """Median of 3 fresh-process JAX jit compiles (None if JAX is not installed)."""
    try:
        ts = [run(workload, dtype, tempfile.gettempdir(), JAX_CHILD)["jax"] for _ in range(3)]
    except subprocess.CalledProcessError:
        return None
    return sorted(ts)[1]


def main():
    print("| workload | kernel lines | cold compile (median of 3) | warm load (new process) | "
          "one-time imports | one-time first kernel | JAX jit compile |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for workload, dtype in (("W1", "float32"), ("W1", "float64"), ("W2", "float64")):
        cold = []
        for k in range(3):
            with tempfile.TemporaryDirectory() as cache:
                cold.append(run(workload, dtype, cache))
                if k == 2:
                    warm = [run(workload, dtype, cache) for _ in range(3)]
                    renamed = [run(workload + " renamed", dtype, cache) for _ in range(3)] \
                        if workload == "W1" else None
        c = sorted(r["kernel"] for r in cold)[1]
        w = sorted(r["kernel"] for r in warm)[1]
        assert all(r["loaded"] == 1 for r in warm), warm
        j = jax_compile(workload, dtype)
        name = f"{workload}{' (XOR 2-2-1)' if workload == 'W2' else ''} {dtype}"
        print(f"| {name} | {cold[0]['lines']} | {c:.2f} s | {w:.3f} s | "
              f"{warm[1]['import']:.2f} s | {warm[1]['onetime']:.2f} s | "
              f"{'-' if j is None else f'{j:.2f} s'} |", flush=True)
        if renamed:
            r = sorted(x["kernel"] for x in renamed)[1]
            print(f"| {name}, other names (new process, the cache holds W1) | "
                  f"{renamed[0]['lines']} | - | {r:.3f} s (loaded: "
                  f"{all(x['loaded'] == 1 for x in renamed)}) | | | |", flush=True)


if __name__ == "__main__":
    main()
