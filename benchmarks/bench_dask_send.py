"""How parameters reach Dask workers: literal graph keys (symdiff.dask._send, the default)
against the former ``client.scatter(broadcast=True)``, which hangs the scheduler when a worker
dies mid-broadcast (dask/distributed#5704).

A tanh MLP 784-256-1 (float32, softplus loss) over 64 chunks of 4 rows on a LocalCluster of
2 worker processes (1 thread, 1 BLAS thread each): each step sends 0.8 MB of parameters and
reduces 64 gradients of that size. Median seconds per ``value_and_grad_over`` call, the two
ways alternating in blocks of 15 calls, 2 rounds.

Run: python benchmarks/bench_dask_send.py
"""
import os
import statistics
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")     # inherited by the worker processes
os.environ.setdefault("SYMDIFF_TIERED", "0")           # time the compiled kernel

import dask.array as da  # noqa: E402
import distributed  # noqa: E402
import numpy as np  # noqa: E402

import symdiff as sd  # noqa: E402
import symdiff.dask as sdd  # noqa: E402

D, H, CHUNKS, ROWS = 784, 256, 64, 4


def scatter_send(values, client):
    """The former _send: every value scattered to every worker of ``client``."""
    if client is None:
        return list(values)
    return client.scatter(list(values), broadcast=True, hash=False)


def problem():
    x, y = sd.var("x", (None, D), "float32"), sd.var("y", (None,), "float32")
    W1, w2 = sd.param("W1", (D, H), "float32"), sd.param("w2", (H,), "float32")
    z = sd.tanh(x @ W1) @ w2
    loss = sd.sum(sd.softplus(z) - y * z)
    rng = np.random.default_rng(0)
    X = da.from_array(rng.standard_normal((CHUNKS * ROWS, D)).astype(np.float32),
                      chunks=(ROWS, D))
    Y = da.from_array((rng.random(CHUNKS * ROWS) > 0.5).astype(np.float32), chunks=ROWS)
    params = {W1: (rng.standard_normal((D, H)) * 0.01).astype(np.float32),
              w2: np.zeros(H, np.float32)}
    return loss, X, Y, params, [x, y]


def main():
    loss, X, Y, params, inputs = problem()
    ways = {"literal keys": sdd._send, "scatter(broadcast=True)": scatter_send}
    times = {k: [] for k in ways}
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster):
        for _ in range(2):
            for name, send in ways.items():
                sdd._send = send
                sdd.value_and_grad_over(loss, X, Y, params, inputs)         # warm-up
                for _ in range(15):
                    t0 = time.perf_counter()
                    sdd.value_and_grad_over(loss, X, Y, params, inputs)
                    times[name].append(time.perf_counter() - t0)
        sdd._send = ways["literal keys"]
    base = statistics.median(times["scatter(broadcast=True)"])
    for name, ts in times.items():
        med = statistics.median(ts)
        print(f"{name:26s} {1000 * med:8.1f} ms per step  {med / base:.2f}x the broadcast")


if __name__ == "__main__":
    main()
