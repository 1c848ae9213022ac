"""Loops: a 2-layer LSTM over 100 steps, loss + gradient w.r.t. every weight, peers in the
same run (medians of blocks, ratios symdiff / peer):

- symdiff: models.recurrent.lstm (the input projection of all steps is one GEMM before the
  loop; the loop body holds h W_h and the gates), one compiled kernel;
- JAX: the same formulation with jax.lax.scan under jit(value_and_grad);
- PyTorch eager: torch.nn.LSTM (its fused CPU cell) and loss.backward().

Also the compile time of the 100-step model next to the 10-step one (the loop is one node:
compile time should not grow with the length) and next to JAX's.

Run: python benchmarks/bench_scan.py [--hidden 128] [--batch 1,32] [--dtype float32]
"""
import argparse
import os
import tempfile
import time

import numpy as np

import symdiff as sd
from symdiff.models import recurrent
from symdiff.models.layers import Builder

from bench_tensor import timeit          # blocks of repeats, peers one after another

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

D_IN = 64


def symdiff_model(T, batch, hidden, dtype):
    b = Builder(dtype, seed=0)
    xs = sd.var("xs", (T, batch, D_IN), dtype)
    p = sd.var("p", (T, batch, hidden), dtype)
    h = recurrent.lstm(b, xs, hidden, "1")
    h = recurrent.lstm(b, h, hidden, "2")
    loss = sd.sum(h * p)
    t0 = time.perf_counter()
    f = sd.compile([xs, p] + b.params, sd.value_and_grad(loss, b.params))
    return f, [b.init[v] for v in b.params], time.perf_counter() - t0


def jax_model(jax, T, batch, hidden, dtype, weights, X, P):
    jnp = jax.numpy

    def layer(xs, Wx, Wh, b):
        zx = xs @ Wx + b

        def cell(carry, z):
            h, c = carry
            z = z + h @ Wh
            n = hidden
            i, f = jax.nn.sigmoid(z[:, :n]), jax.nn.sigmoid(z[:, n:2 * n])
            g, o = jnp.tanh(z[:, 2 * n:3 * n]), jax.nn.sigmoid(z[:, 3 * n:])
            c = f * c + i * g
            h = o * jnp.tanh(c)
            return (h, c), h
        zero = jnp.zeros((xs.shape[1], hidden), dtype)
        return jax.lax.scan(cell, (zero, zero), zx)[1]

    def loss(ws, xs, p):
        h = layer(xs, *ws[:3])
        h = layer(h, *ws[3:])
        return jnp.sum(h * p)
    g = jax.jit(jax.value_and_grad(loss))
    ws = [jnp.asarray(w) for w in weights]
    t0 = time.perf_counter()
    jax.block_until_ready(g(ws, X, P))
    compile_s = time.perf_counter() - t0
    return lambda: jax.block_until_ready(g(ws, X, P)), compile_s


def torch_model(torch, batch, hidden, dtype, X, P):
    net = torch.nn.LSTM(D_IN, hidden, num_layers=2, dtype=getattr(torch, dtype))
    x, p = torch.tensor(X), torch.tensor(P)

    def step():
        net.zero_grad()
        h, _ = net(x)
        loss = (h * p).sum()
        loss.backward()
        return loss.item()
    return step


def run(T, batch, hidden, dtype, repeats):
    rng = np.random.default_rng(0)
    X = rng.standard_normal((T, batch, D_IN)).astype(dtype)
    P = rng.standard_normal((T, batch, hidden)).astype(dtype)
    f, weights, compile_s = symdiff_model(T, batch, hidden, dtype)
    fns = {"symdiff": lambda: f(X, P, *weights)}
    extra = {"symdiff compile s": compile_s}
    try:
        import jax
        if dtype == "float64":
            jax.config.update("jax_enable_x64", True)
        fns["jax"], extra["jax compile s"] = jax_model(jax, T, batch, hidden, dtype, weights,
                                                       X, P)
    except ImportError:
        pass
    try:
        import torch
        torch.set_num_threads(2)
        fns["torch"] = torch_model(torch, batch, hidden, dtype, X, P)
    except ImportError:
        pass
    return timeit(fns, repeats), extra


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--batch", default="1,32")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--dtype", default="float32")
    ap.add_argument("--repeats", type=int, default=10)
    a = ap.parse_args()
    # cold compile times: an empty kernel cache of our own; the math library's helpers
    # (compiled once per process and dtype) are compiled first by a tiny model, so that
    # every compile time below is the model's own
    os.environ["SYMDIFF_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-scan-")
    symdiff_model(2, 2, 4, a.dtype)
    cold = {}
    for batch in map(int, a.batch.split(",")):
        times, extra = run(a.steps, batch, a.hidden, a.dtype, a.repeats)
        cold[batch] = extra["symdiff compile s"]
        s = times["symdiff"]
        peers = ", ".join(f"{k} {v * 1e3:.2f} ms ({s / v:.2f}x)" for k, v in times.items()
                          if k != "symdiff")
        comp = ", ".join(f"{k} {v:.1f}" for k, v in extra.items())
        print(f"LSTM 2x{a.hidden}, T={a.steps}, batch {batch}, {a.dtype}: symdiff "
              f"{s * 1e3:.2f} ms; {peers}; {comp}", flush=True)
    os.environ["SYMDIFF_CACHE_DIR"] = tempfile.mkdtemp(prefix="bench-scan-")
    batch = max(cold)
    _, _, c10 = symdiff_model(10, batch, a.hidden, a.dtype)
    print(f"compile, cold, batch {batch}: 10 steps {c10:.1f} s, {a.steps} steps "
          f"{cold[batch]:.1f} s (only the length differs)")


if __name__ == "__main__":
    main()
