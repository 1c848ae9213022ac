"""Workload W2: the XOR net 2-2-1 (sigmoid hidden and output units), batch 4, binary
cross-entropy: loss + 4 gradients per call from Python. Per-call cost is all overhead here;
peers in the same run: PyTorch eager (torch.autograd.grad) and JAX jit(value_and_grad).
Run: python benchmarks/bench_w2.py
"""
import os
import statistics
import time

import numpy as np

import symdiff as sd

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier


def model():
    x, y = sd.var("x", ("batch", 2)), sd.var("y", ("batch",))
    W, c = sd.param("W", (2, 2)), sd.param("c", (2,))
    w, b = sd.param("w", (2,)), sd.param("b")
    z = sd.sigmoid(x @ W + c) @ w + b
    loss = sd.mean(sd.binary_cross_entropy_with_logits(z, y))
    return [x, y, W, c, w, b], [loss] + sd.grad(loss, [W, c, w, b])


def data():
    rng = np.random.default_rng(0)
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], float)
    return [X, np.array([0.0, 1, 1, 0]), rng.standard_normal((2, 2)), np.zeros(2),
            rng.standard_normal(2), np.zeros(())]


def torch_peer(vals):
    import torch
    tX, tY = torch.tensor(vals[0]), torch.tensor(vals[1])
    ps = [torch.tensor(v, requires_grad=True) for v in vals[2:]]

    def run():
        z = torch.sigmoid(tX @ ps[0] + ps[1]) @ ps[2] + ps[3]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, tY)
        return [loss] + list(torch.autograd.grad(loss, ps))
    return run


def jax_peer(vals):
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", True)

    def loss(ps, X, Y):
        z = jax.nn.sigmoid(X @ ps[0] + ps[1]) @ ps[2] + ps[3]
        return jnp.mean(jax.nn.softplus(z) - Y * z)
    f = jax.jit(jax.value_and_grad(loss))
    ps, X, Y = [jnp.asarray(v) for v in vals[2:]], jnp.asarray(vals[0]), jnp.asarray(vals[1])
    jax.block_until_ready(f(ps, X, Y))
    return lambda: jax.block_until_ready(f(ps, X, Y))


def block(fn, n=3000, rounds=5):
    meds = []
    for _ in range(rounds):
        for _ in range(200):
            fn()
        ts = []
        for _ in range(n):
            t0 = time.perf_counter()
            fn()
            ts.append(time.perf_counter() - t0)
        meds.append(statistics.median(ts))
    return statistics.median(meds)


def main():
    inputs, outs = model()
    t0 = time.perf_counter()
    f = sd.compile(inputs, outs)
    t_compile = time.perf_counter() - t0
    vals = data()
    bufs = [np.empty(()), np.empty((2, 2)), np.empty(2), np.empty(2), np.empty(())]
    fns = {"symdiff kernel": lambda: f(*vals),
           "symdiff kernel, out= buffers": lambda: f(*vals, out=bufs)}
    for name, make in (("PyTorch eager", torch_peer), ("JAX jit(value_and_grad)", jax_peer)):
        try:
            fns[name] = make(vals)
        except ImportError:
            print(f"({name} not installed)")
    t = {k: block(fn) for k, fn in fns.items()}
    sym = t["symdiff kernel"]
    print(f"## W2 XOR 2-2-1, batch 4, float64: compile {t_compile:.2f} s")
    print("| implementation | median per call | symdiff / this |")
    print("|---|---:|---:|")
    for k, v in t.items():
        print(f"| {k} | {v * 1e6:.2f} us | {sym / v:.3f} |")


if __name__ == "__main__":
    main()
