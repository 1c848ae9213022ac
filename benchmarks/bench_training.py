"""Training throughput (examples per second): the same MLP, data, batch size, number of
steps and plain SGD, all peers in one run.

1. MLP 64-32-10 (tanh, softmax cross-entropy) on scikit-learn's digits, batch 32, float32:
   symdiff's epoch kernel vs PyTorch eager (a standard loop with torch.optim.SGD) vs JAX (a
   jitted step in a Python loop, and a whole epoch as lax.scan).
2. MLP 784-256-256-10 on synthetic data, batch 128, float32, where BLAS dominates.
Each figure: median over rounds of whole epochs after a warm-up epoch (compile excluded).
Run: python benchmarks/bench_training.py
"""
import os
import statistics
import time

import numpy as np

from symdiff.models import Trainer, data, networks

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

LR = 0.05


def symdiff_runner(X, Y, sizes, batch):
    model = networks.mlp(sizes[0], sizes[1:-1], sizes[-1], "tanh", "softmax", dtype="float32")
    trainer = Trainer(model, lr=LR)
    rng = np.random.default_rng(0)
    steps = len(X) // batch           # the same full batches as every peer (no partial one)
    return lambda: trainer.step.epoch(X, Y, batch_size=batch,
                                      order=rng.permutation(len(X))[:steps * batch])


def _init(sizes, seed=0):
    model = networks.mlp(sizes[0], sizes[1:-1], sizes[-1], "tanh", "softmax", dtype="float32",
                         seed=seed)
    return [model.init[p] for p in model.params]


def torch_runner(X, Y, sizes, batch):
    import torch
    torch.set_num_threads(2)
    ps = [torch.tensor(v, requires_grad=True) for v in _init(sizes)]
    opt = torch.optim.SGD(ps, lr=LR)
    tX, tY = torch.from_numpy(X), torch.from_numpy(Y)
    n = len(X)

    def epoch():
        perm = torch.randperm(n)
        for s in range(0, n - batch + 1, batch):
            idx = perm[s:s + batch]
            h = tX[idx]
            for i in range(0, len(ps), 2):
                h = h @ ps[i] + ps[i + 1]
                if i < len(ps) - 2:
                    h = torch.tanh(h)
            loss = torch.nn.functional.cross_entropy(h, tY[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return epoch


def _jax_loss():
    import jax
    import jax.numpy as jnp

    def loss(ps, X, Y):
        h = X
        for i in range(0, len(ps), 2):
            h = h @ ps[i] + ps[i + 1]
            if i < len(ps) - 2:
                h = jnp.tanh(h)
        return jnp.mean(jax.nn.logsumexp(h, -1) - jnp.take_along_axis(h, Y[:, None], -1)[:, 0])
    return loss


def jax_step_runner(X, Y, sizes, batch):
    import jax
    import jax.numpy as jnp
    loss = _jax_loss()

    @jax.jit
    def step(ps, jX, jY, idx):          # the mini-batch gather runs inside the jitted step
        g = jax.grad(loss)(ps, jX[idx], jY[idx])
        return [p - LR * gi for p, gi in zip(ps, g)]
    state = {"ps": [jnp.asarray(v) for v in _init(sizes)]}
    jX, jY = jnp.asarray(X), jnp.asarray(Y)
    n, rng = len(X), np.random.default_rng(0)

    def epoch():
        perm = rng.permutation(n)
        ps = state["ps"]
        for s in range(0, n - batch + 1, batch):
            ps = step(ps, jX, jY, perm[s:s + batch])
        state["ps"] = jax.block_until_ready(ps)
    return epoch


def jax_scan_runner(X, Y, sizes, batch):
    import jax
    import jax.numpy as jnp
    loss = _jax_loss()
    n = len(X) // batch * batch

    @jax.jit
    def epoch_fn(ps, Xe, Ye):
        def body(ps, xy):
            g = jax.grad(loss)(ps, *xy)
            return [p - LR * gi for p, gi in zip(ps, g)], None
        ps, _ = jax.lax.scan(body, ps, (Xe.reshape(-1, batch, Xe.shape[1]),
                                        Ye.reshape(-1, batch)))
        return ps
    state = {"ps": [jnp.asarray(v) for v in _init(sizes)]}
    rng = np.random.default_rng(0)

    def epoch():
        perm = rng.permutation(len(X))[:n]
        state["ps"] = jax.block_until_ready(epoch_fn(state["ps"], jnp.asarray(X[perm]),
                                                     jnp.asarray(Y[perm])))
    return epoch


def measure(make, X, Y, sizes, batch, rounds):
    epoch = make(X, Y, sizes, batch)
    epoch()
    epoch()                                # warm up (compile, caches)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        epoch()
        times.append(time.perf_counter() - t0)
    steps = len(X) // batch
    return steps * batch / statistics.median(times)


def run(title, X, Y, sizes, batch, rounds):
    runners = {"symdiff epoch kernel": symdiff_runner, "PyTorch eager + torch.optim.SGD":
               torch_runner, "JAX jitted step, Python loop": jax_step_runner,
               "JAX lax.scan epoch": jax_scan_runner}
    rates = {}
    for name, make in runners.items():
        try:
            rates[name] = measure(make, X, Y, sizes, batch, rounds)
        except ImportError:
            print(f"({name}: not installed)")
    sym = rates["symdiff epoch kernel"]
    print(f"\n## {title}")
    print("| implementation | examples / s | symdiff speed-up |")
    print("|---|---:|---:|")
    for name, r in rates.items():
        print(f"| {name} | {r:,.0f} | {sym / r:.2f}x |")


def main():
    X_tr, _, y_tr, _ = data.load_digits(dtype="float32")
    run("MLP 64-32-10 on digits, batch 32, float32", X_tr, y_tr, [64, 32, 10], 32, 30)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((128 * 40, 784)).astype(np.float32)
    Y = rng.integers(0, 10, len(X))
    run("MLP 784-256-256-10, synthetic, batch 128, float32", X, Y, [784, 256, 256, 10], 128, 5)


if __name__ == "__main__":
    main()
