"""Workload W1: MLP 784-256-256-10, tanh, softmax cross-entropy (mean), batch 128: one call
computing the loss and all six gradients, float32 and float64, all peers in the same run.

Peers: NumPy hand-written backprop, PyTorch eager (torch.autograd.grad), JAX
jit(value_and_grad), and the BLAS floor: the GEMMs alone (the 8 this model needs, and the 9
of a full backward that also forms d loss / d x). Times are medians of interleaved repeats.
Run: python benchmarks/bench_w1.py [--repeats 300]
"""
import argparse
import os
import statistics
import time

import numpy as np

import symdiff as sd

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

SIZES = [784, 256, 256, 10]
B = 128


def model(dtype, names=("x", "y", "W", "b", "batch")):
    """The W1 MLP; ``names`` (of x, y, the weights, the biases and the batch dim) only name
    the vars: any names give the same kernel (the cache is keyed by structure)."""
    xn, yn, wn, bn, batch = names
    x = sd.var(xn, (batch, SIZES[0]), dtype)
    y = sd.var(yn, (batch,), "int64")
    params, h = [], x
    for i, (m, n) in enumerate(zip(SIZES[:-1], SIZES[1:])):
        W, b = sd.param(f"{wn}{i + 1}", (m, n), dtype), sd.param(f"{bn}{i + 1}", (n,), dtype)
        params += [W, b]
        h = h @ W + b
        if i < len(SIZES) - 2:
            h = sd.tanh(h)
    return x, y, params, sd.mean(sd.softmax_cross_entropy(h, y))


def data(dtype, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((B, SIZES[0])).astype(dtype)
    Y = rng.integers(0, SIZES[-1], B)
    vals = []
    for m, n in zip(SIZES[:-1], SIZES[1:]):
        vals += [(rng.standard_normal((m, n)) / np.sqrt(m)).astype(dtype),
                 (rng.standard_normal(n) * 0.1).astype(dtype)]
    return X, Y, vals


def numpy_backprop(X, Y, vals):
    """The seeds' hand-written backward pass in NumPy."""
    W1, b1, W2, b2, W3, b3 = vals
    h1 = np.tanh(X @ W1 + b1)
    h2 = np.tanh(h1 @ W2 + b2)
    z = h2 @ W3 + b3
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    s = e.sum(axis=1, keepdims=True)
    loss = np.mean(np.log(s[:, 0]) - z[np.arange(len(Y)), Y])
    d3 = e / s
    d3[np.arange(len(Y)), Y] -= 1
    d3 /= len(Y)
    d2 = (d3 @ W3.T) * (1 - h2 * h2)
    d1 = (d2 @ W2.T) * (1 - h1 * h1)
    return [loss, X.T @ d1, d1.sum(0), h1.T @ d2, d2.sum(0), h2.T @ d3, d3.sum(0)]


def gemm_floor(X, vals, count):
    W1, _, W2, _, W3, _ = vals
    dt = X.dtype
    H1, H2, Z = np.empty((B, 256), dt), np.empty((B, 256), dt), np.empty((B, 10), dt)
    G1, G2, G3, DX = np.empty_like(W1), np.empty_like(W2), np.empty_like(W3), np.empty_like(X)

    def run():
        np.dot(X, W1, H1)
        np.dot(H1, W2, H2)
        np.dot(H2, W3, Z)
        np.dot(H2.T, Z, G3)
        np.dot(Z, W3.T, H2)
        np.dot(H1.T, H2, G2)
        np.dot(H2, W2.T, H1)
        np.dot(X.T, H1, G1)
        if count == 9:
            np.dot(H1, W1.T, DX)
    return run


def torch_peer(X, Y, vals):
    import torch
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    ps = [torch.tensor(v, requires_grad=True) for v in vals]

    def run():
        h = tX
        for i in range(3):
            h = h @ ps[2 * i] + ps[2 * i + 1]
            if i < 2:
                h = torch.tanh(h)
        loss = torch.nn.functional.cross_entropy(h, tY)
        return [loss] + list(torch.autograd.grad(loss, ps))
    return run


def jax_peer(X, Y, vals):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", X.dtype == np.float64)

    def loss(ps, X, Y):
        h = X
        for i in range(3):
            h = h @ ps[2 * i] + ps[2 * i + 1]
            if i < 2:
                h = jnp.tanh(h)
        return jnp.mean(jax.nn.logsumexp(h, -1) - jnp.take_along_axis(h, Y[:, None], -1)[:, 0])
    f = jax.jit(jax.value_and_grad(loss))
    ps, jX, jY = [jnp.asarray(v) for v in vals], jnp.asarray(X), jnp.asarray(Y)
    jax.block_until_ready(f(ps, jX, jY))
    return lambda: jax.block_until_ready(f(ps, jX, jY))


def blocks(fns, repeats, rounds=3):
    """Median seconds of each function: each runs in warm blocks of ``repeats`` calls (calls
    interleaved one by one would measure the libraries' idle BLAS threads spinning against
    each other); the rounds alternate the order, and the median of the block medians is kept."""
    times = {k: [] for k in fns}
    names = list(fns)
    for r in range(rounds):
        for k in (names if r % 2 == 0 else names[::-1]):
            fn = fns[k]
            for _ in range(max(5, repeats // 10)):
                fn()
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                ts.append(time.perf_counter() - t0)
            times[k].append(statistics.median(ts))
    return {k: statistics.median(v) for k, v in times.items()}


def run(dtype, repeats):
    x, y, params, loss = model(dtype)
    grads = sd.grad(loss, params)
    t0 = time.perf_counter()
    f = sd.compile([x, y] + params, [loss] + grads)
    t_compile = time.perf_counter() - t0
    f_loss = sd.compile([x, y] + params, loss)
    X, Y, vals = data(dtype)
    outs = [np.empty(()), *[np.empty_like(v) for v in vals]]
    outs = [o.astype(dtype) for o in outs]
    got = f(X, Y, *vals)
    ref = numpy_backprop(X, Y, vals)
    err = max(float(np.max(np.abs(a - r)) / max(1.0, float(np.max(np.abs(r)))))
              for a, r in zip(got, ref))
    fns = {"symdiff (loss + 6 grads)": lambda: f(X, Y, *vals),
           "symdiff, out= buffers": lambda: f(X, Y, *vals, out=outs),
           "symdiff, loss only": lambda: f_loss(X, Y, *vals),
           "NumPy hand-written backprop": lambda: numpy_backprop(X, Y, vals),
           "GEMM floor (8 GEMMs)": gemm_floor(X, vals, 8),
           "GEMM floor (9 GEMMs)": gemm_floor(X, vals, 9)}
    for name, make in (("PyTorch eager", torch_peer), ("JAX jit(value_and_grad)", jax_peer)):
        try:
            fns[name] = make(X, Y, vals)
        except ImportError:
            print(f"({name} not installed)")
    t = blocks(fns, repeats)
    sym = t["symdiff (loss + 6 grads)"]
    print(f"\n## W1 {dtype}: compile {t_compile:.2f} s, max rel. difference to NumPy {err:.1e}")
    print("| implementation | median | symdiff / this |")
    print("|---|---:|---:|")
    for k, v in t.items():
        print(f"| {k} | {v * 1e6:.0f} us | {sym / v:.2f} |")
    print(f"(loss + grads) / (loss only) = {sym / t['symdiff, loss only']:.2f}")
    acts = sum(np.dtype(dtype).itemsize * B * n for n in SIZES[1:])
    print(f"peak intermediate bytes {f.peak_bytes(batch=B)}; activations the backward needs "
          f"(h1, h2, softmax) {acts}; ratio {f.peak_bytes(batch=B) / acts:.2f}")
    print(f"stats {f.stats}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=200)
    ap.add_argument("--dtype", choices=["float32", "float64", "both"], default="both")
    args = ap.parse_args()
    for dtype in (["float32", "float64"] if args.dtype == "both" else [args.dtype]):
        run(dtype, args.repeats)


if __name__ == "__main__":
    main()
