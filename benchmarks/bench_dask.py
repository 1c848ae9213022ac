"""Data-parallel value and gradient on Dask (symdiff.dask): logistic regression and an MLP
784-256-10 on N synthetic float32 rows (default 2,000,000) generated chunkwise by Dask on the
workers and kept there (persisted; never materialized on the client). Medians of blocks.

- symdiff.dask.value_and_grad_over with 1 and 2 LocalCluster worker processes (1 thread and
  1 BLAS thread each): rows per second, and the speedup of 2 workers over 1;
- the same loss and gradient written the obvious way as NumPy-on-Dask expressions
  (dask.array: X @ w, the softmax, X.T @ delta ...) on the same cluster and data;
- the single-process kernel (2 BLAS threads) on rows generated in the client (the part of
  the data that fits: --single-rows, default all of it);
- the per-step overhead of the distributed path at --chunks chunks: wall time minus the
  kernel's own time on the chunks (measured on a worker), divided over the workers.

Run: python benchmarks/bench_dask.py [--rows 2000000] [--chunks 64] [--repeats 3]
"""
import argparse
import os
import time

import numpy as np       # before the variable below: this process keeps its BLAS threads

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")   # inherited by the worker processes

import dask                                            # noqa: E402
import dask.array as da                                # noqa: E402
import distributed                                     # noqa: E402

import symdiff as sd                                   # noqa: E402
import symdiff.dask as sdd                             # noqa: E402
from bench_tensor import timeit                        # noqa: E402

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

D, H, K = 784, 256, 10


def logistic():
    x, y = sd.var("x", (None, D), "float32"), sd.var("y", (None,), "float32")
    w, b = sd.param("w", (D,), "float32"), sd.param("b", (), "float32")
    z = x @ w + b
    loss = sd.sum(sd.softplus(z) - y * z)
    rng = np.random.default_rng(0)
    return [x, y], {w: (rng.standard_normal(D) * 0.03).astype("float32"),
                    b: np.float32(0.1)}, loss


def mlp():
    x, y = sd.var("x", (None, D), "float32"), sd.var("y", (None, K), "float32")
    shapes = {"W1": (D, H), "b1": (H,), "W2": (H, K), "b2": (K,)}
    p = {n: sd.param(n, s, "float32") for n, s in shapes.items()}
    z = sd.tanh(x @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"]
    loss = sd.sum(sd.softmax_cross_entropy(z, y))
    rng = np.random.default_rng(0)
    init = {p[n]: (rng.standard_normal(s) / np.sqrt(s[0])).astype("float32")
            for n, s in shapes.items()}
    return [x, y], init, loss


def numpy_on_dask(name, X, Y, params):
    """The loss and gradient as plain dask.array expressions (what a NumPy user writes)."""
    v = list(params.values())
    if name == "logistic":
        z = X @ v[0] + v[1]
        r = 1 / (1 + da.exp(-z)) - Y
        return [da.sum(da.logaddexp(0, z) - Y * z), X.T @ r, da.sum(r)]
    W1, b1, W2, b2 = v
    h = da.tanh(X @ W1 + b1)
    z = h @ W2 + b2
    m = z.max(axis=1, keepdims=True)
    e = da.exp(z - m)
    s = e.sum(axis=1, keepdims=True)
    loss = da.sum(m[:, 0] + da.log(s[:, 0]) - da.sum(Y * z, axis=1))
    dz = e / s - Y
    dh = (dz @ W2.T) * (1 - h * h)
    return [loss, X.T @ dh, dh.sum(axis=0), h.T @ dz, dz.sum(axis=0)]


def data(name, rows, chunks, seed=1):
    """X ~ N(0, 1) (rows x 784) and labels from the first columns, chunk by chunk."""
    rs = da.random.RandomState(seed)
    X = rs.standard_normal((rows, D), chunks=(-(-rows // chunks), D)).astype("float32")
    if name == "logistic":
        return X, (X[:, :10].sum(axis=1) > 0).astype("float32")
    return X, da.eye(K, dtype="float32")[da.argmax(X[:, :K], axis=1)].rechunk((X.chunks[0], K))


def chunk_kernel_seconds(f, X, Y, values):
    """The kernel's time on one persisted chunk, on the worker that holds it."""
    def run(x, y, *v):
        f(x, y, *v)
        t = time.perf_counter()
        f(x, y, *v)
        return time.perf_counter() - t
    blocks = sdd._rows([X, Y])
    times = dask.compute([dask.delayed(run)(x, y, *values) for x, y in blocks[:4]])[0]
    return float(np.median(times)) * len(blocks)


def distributed_run(name, build, args, workers):
    inputs, params, loss = build()
    out = {}
    with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1",
                                  memory_limit=0) as cluster, distributed.Client(cluster):
        X, Y = data(name, args.rows, args.chunks)
        X, Y = dask.persist(X, Y)
        distributed.wait([X, Y])
        tiny = [a[:args.chunks * 4].rechunk({0: 4}) for a in (X, Y)]   # 64 chunks of 4 rows
        tiny = dask.persist(*tiny)

        def ours():
            return sdd.value_and_grad_over(loss, X, Y, params, inputs)

        def ours_tiny():
            return sdd.value_and_grad_over(loss, tiny[0], tiny[1], params, inputs)

        def peer():
            return dask.compute(numpy_on_dask(name, X, Y, params))

        def dask_sum():                  # dask's own cost of a reduction over the chunks
            return dask.compute(tiny[0].sum())
        times = timeit({"symdiff": ours, "numpy_on_dask": peer, "tiny": ours_tiny,
                        "dask_sum": dask_sum}, args.repeats, rounds=1)
        f = sdd._value_and_grad_kernel(loss, params, inputs, "numba")
        kernel = chunk_kernel_seconds(f, X, Y, list(params.values())) / workers
        out.update(times, kernel=kernel)
    return out


def single_process(name, build, args):
    """The kernel on the whole array in this process (2 BLAS threads)."""
    from threadpoolctl import threadpool_limits
    inputs, params, loss = build()
    X, Y = data(name, args.single_rows, args.chunks)
    Xn, Yn = dask.compute(X, Y, scheduler="threads")
    f = sd.compile(inputs + list(params), sd.value_and_grad(loss, list(params)))
    with threadpool_limits(limits=2, user_api="blas"):
        t = timeit({"single": lambda: f(Xn, Yn, *params.values())}, args.repeats, rounds=1)
    return t["single"] * args.rows / args.single_rows   # scaled to all rows


def report(name, rows, args_chunks, single, runs):
    one, two = runs[1], runs[2]
    print(f"\n{name}, {rows:,} rows (seconds per value+gradient, medians)")
    print(f"  single process, 2 BLAS threads: {single:8.3f}  ({rows / single / 1e6:.2f} M rows/s)")
    for w, r in runs.items():
        print(f"  {w} worker(s): symdiff {r['symdiff']:8.3f} ({rows / r['symdiff'] / 1e6:.2f} "
              f"M rows/s)  numpy-on-dask {r['numpy_on_dask']:8.3f}  "
              f"x{r['numpy_on_dask'] / r['symdiff']:.1f}; kernel alone {r['kernel']:.3f}, "
              f"overhead {1e3 * (r['symdiff'] - r['kernel']):.1f} ms; a step on "
              f"{args_chunks} chunks of 4 rows {1e3 * r['tiny']:.1f} ms (dask's own sum over "
              f"them {1e3 * r['dask_sum']:.1f} ms)")
    print(f"  2 workers / 1 worker speedup: {one['symdiff'] / two['symdiff']:.2f}x; "
          f"vs single process: {single / two['symdiff']:.2f}x")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--single-rows", type=int, default=None,
                    help="rows for the single-process kernel (default: all)")
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--models", default="logistic,mlp")
    args = ap.parse_args()
    args.single_rows = args.single_rows or args.rows
    for name in args.models.split(","):
        build = {"logistic": logistic, "mlp": mlp}[name]
        single = single_process(name, build, args)
        runs = {w: distributed_run(name, build, args, w) for w in (1, 2)}
        report(name, args.rows, args.chunks, single, runs)


if __name__ == "__main__":
    main()
