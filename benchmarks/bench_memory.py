"""Memory of a long-running process: resident set size (RSS, from /proc/self/statm) over
10^5 calls of one kernel, over 10^5 epochs-worth of training steps through ``epoch()``, and
over 500 compiles of distinct graphs (cold: an empty temporary kernel cache), with the
Python heap (tracemalloc) beside RSS so that growth in Python objects can be told apart from
native memory (Numba's compiled code and LLVM state).

Run: python benchmarks/bench_memory.py [--compiles 500] [--calls 100000]
Prints a Markdown table for RESULTS.md. Takes ~40 min on 2 busy cores, nearly all of it the
500 cold compiles (tracemalloc slows them too).
"""
import argparse
import gc
import os
import resource
import sys
import tempfile
import time
import tracemalloc

import numpy as np

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

PAGE = resource.getpagesize()


def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * PAGE / 2 ** 20


def heap_mb():
    return tracemalloc.get_traced_memory()[0] / 2 ** 20


def calls(n):
    """RSS and heap before and after n calls of a small MLP loss + gradient kernel."""
    import symdiff as sd
    x, y = sd.var("x", ("batch", 16)), sd.var("y", ("batch",), "int64")
    W1, W2 = sd.param("W1", (16, 32)), sd.param("W2", (32, 4))
    loss = sd.mean(sd.softmax_cross_entropy(sd.tanh(x @ W1) @ W2, y))
    f = sd.compile([x, y, W1, W2], [loss] + sd.grad(loss, [W1, W2]))
    rng = np.random.default_rng(0)
    args = (rng.standard_normal((32, 16)), rng.integers(0, 4, 32),
            rng.standard_normal((16, 32)) * 0.1, rng.standard_normal((32, 4)) * 0.1)
    for _ in range(1000):                       # warm: buffers allocated, caches filled
        f(*args)
    gc.collect()
    r0, h0, t0 = rss_mb(), heap_mb(), time.perf_counter()
    marks = []
    for i in range(1, n + 1):
        f(*args)
        if i % (n // 5) == 0:
            marks.append(rss_mb())
    gc.collect()
    return {"what": f"{n:,} calls of one kernel (MLP 16-32-4, batch 32)", "rss0": r0,
            "rss1": rss_mb(), "heap0": h0, "heap1": heap_mb(), "marks": marks,
            "seconds": time.perf_counter() - t0, "per": n}


def epochs(n_steps):
    """RSS over epochs totalling n_steps training steps (updates in place)."""
    import symdiff as sd
    x, y = sd.var("x", ("batch", 8)), sd.var("y", ("batch",))
    w, b = sd.param("w", (8,)), sd.param("b")
    loss = sd.mean(sd.binary_cross_entropy_with_logits(x @ w + b, y))
    gw, gb = sd.grad(loss, [w, b])
    step = sd.compile([x, y], loss, updates={w: w - 0.1 * gw, b: b - 0.1 * gb},
                      state={w: np.zeros(8), b: np.zeros(())})
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((1000, 8)), (rng.random(1000) > 0.5).astype(float)
    for _ in range(10):
        step.epoch(X, Y, batch_size=10)
    gc.collect()
    r0, h0, t0 = rss_mb(), heap_mb(), time.perf_counter()
    reps = n_steps // 100
    marks = []
    for i in range(1, reps + 1):
        step.epoch(X, Y, batch_size=10, order=rng.permutation(1000))
        if i % (reps // 5) == 0:
            marks.append(rss_mb())
    gc.collect()
    return {"what": f"{reps:,} epochs of 100 steps through epoch() (logistic regression)",
            "rss0": r0, "rss1": rss_mb(), "heap0": h0, "heap1": heap_mb(), "marks": marks,
            "seconds": time.perf_counter() - t0, "per": reps}


def compiles(n):
    """RSS over n compiles of distinct small graphs, each kernel dropped after one call."""
    import symdiff as sd
    x = sd.var("x", ("n", 4))
    w = sd.param("w", (4,))
    xv, wv = np.ones((3, 4)), np.ones(4)

    def one(i):
        # a distinct constant per graph: a distinct source, so a cold compile every time
        loss = sd.sum(sd.tanh(x @ w) * (1.0 + i / 1024))
        f = sd.compile([x, w], [loss, sd.grad(loss, w)])
        f(xv, wv)
    for i in range(5):                          # warm: numba, SciPy BLAS, math library
        one(-1 - i)
    gc.collect()
    r0, h0, t0 = rss_mb(), heap_mb(), time.perf_counter()
    marks = []
    for i in range(1, n + 1):
        one(i)
        if i % (n // 5) == 0:
            gc.collect()
            marks.append(rss_mb())
            print(f"  {i} compiles: RSS {marks[-1]:.0f} MB, heap {heap_mb():.1f} MB",
                  file=sys.stderr, flush=True)
    gc.collect()
    return {"what": f"{n} compiles of distinct graphs (loss + gradient, kernels dropped)",
            "rss0": r0, "rss1": rss_mb(), "heap0": h0, "heap1": heap_mb(), "marks": marks,
            "seconds": time.perf_counter() - t0, "per": n}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--compiles", type=int, default=500)
    ap.add_argument("--calls", type=int, default=100_000)
    args = ap.parse_args()
    os.environ["SYMDIFF_CACHE_DIR"] = tempfile.mkdtemp(prefix="symdiff-bench-memory-")
    tracemalloc.start()
    rows = [calls(args.calls), epochs(args.calls), compiles(args.compiles)]
    print("| workload | RSS before | RSS after | RSS at each fifth | growth per unit | "
          "Python heap before -> after | time |")
    print("|---|---:|---:|---|---:|---|---:|")
    for r in rows:
        per = (r["rss1"] - r["rss0"]) / r["per"] * 1024
        print(f"| {r['what']} | {r['rss0']:.1f} MB | {r['rss1']:.1f} MB | "
              f"{', '.join(f'{m:.1f}' for m in r['marks'])} | {per:.2f} kB | "
              f"{r['heap0']:.1f} -> {r['heap1']:.1f} MB | {r['seconds']:.0f} s |")


if __name__ == "__main__":
    main()
