"""The conv net of ``symdiff.models.cnn`` on scikit-learn's 8x8 digits (conv 3x3x16 - relu -
max_pool 2 - conv 3x3x32 - relu - dense 10 - softmax cross-entropy, NHWC), peers in the same
run, medians of blocks of repeats (``bench_tensor.timeit``), ratios symdiff / peer:

- train step at batch 128 (loss, gradients and the SGD update of the six parameters):
  symdiff's compiled step (updates in place) vs JAX ``jit`` (a functional step) vs PyTorch
  eager (forward, backward, an in-place update), float32 and float64, with compile times;
- one epoch over the 1347 training images at batch 128: symdiff's ``f.epoch`` (the whole
  epoch in one kernel) vs a Python loop over the JAX jit step vs PyTorch eager.

All three start from the same parameters and are checked to compute the same loss first.

Run: python benchmarks/bench_conv.py [--repeats 30] [--threads 1] [--dtypes float32,float64]
``--threads 1`` runs every peer on one thread (OpenBLAS through threadpoolctl, PyTorch's
intra-op pool, XLA's Eigen pool), the steady figures on a busy machine.
"""
import argparse
import os
import sys
import tempfile
import time

import numpy as np

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

LR = 0.05
BATCH = 128


def init_params(dtype, seed=0):
    """The parameters of models.cnn.convnet, as name -> array (HWIO kernels)."""
    from symdiff.models import cnn
    m = cnn.convnet(dtype=dtype, seed=seed)
    return m, {p.name: np.array(m.init[p]) for p in m.params}


# --- peers -------------------------------------------------------------------------------
def jax_step(jax):
    jnp, lax = jax.numpy, jax.lax
    dn = ("NHWC", "HWIO", "NHWC")

    def loss(p, x, y):
        h = x.reshape(x.shape[0], 8, 8, 1)
        h = jax.nn.relu(lax.conv_general_dilated(h, p["k1"], (1, 1), "SAME",
                                                 dimension_numbers=dn) + p["b1"])
        h = lax.reduce_window(h, -jnp.inf, lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")
        h = jax.nn.relu(lax.conv_general_dilated(h, p["k2"], (1, 1), "SAME",
                                                 dimension_numbers=dn) + p["b2"])
        z = h.reshape(h.shape[0], -1) @ p["W3"] + p["b3"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(z), y[:, None], 1))

    @jax.jit
    def step(p, x, y):
        v, g = jax.value_and_grad(loss)(p, x, y)
        return v, jax.tree_util.tree_map(lambda a, b: a - LR * b, p, g)
    return step


def torch_step(torch, params):
    F = torch.nn.functional
    t = {k: torch.tensor(v.transpose(3, 2, 0, 1) if v.ndim == 4 else v, requires_grad=True)
         for k, v in params.items()}                               # HWIO -> OIHW

    def step(x, y):
        h = x.reshape(x.shape[0], 1, 8, 8)
        h = F.max_pool2d(F.relu(F.conv2d(h, t["k1"], t["b1"], padding=1)), 2)
        h = F.relu(F.conv2d(h, t["k2"], t["b2"], padding=1))
        h = h.permute(0, 2, 3, 1).reshape(h.shape[0], -1)           # NHWC flatten order
        v = F.cross_entropy(h @ t["W3"] + t["b3"], y)
        v.backward()
        with torch.no_grad():
            for p in t.values():
                p -= LR * p.grad
                p.grad = None
        return v
    return step


def symdiff_step(model, params):
    import symdiff as sd
    grads = sd.grad(model.loss, model.params)
    state = {p: params[p.name].copy() for p in model.params}
    t = time.perf_counter()
    f = sd.compile(model.inputs, model.loss, state=state,
                   updates={p: p - LR * g for p, g in zip(model.params, grads)})
    return f, time.perf_counter() - t


# --- the benchmark -----------------------------------------------------------------------
def bench(dtype, repeats, data):
    import jax
    import torch
    from bench_tensor import timeit      # blocks of repeats per peer, medians
    X_tr, y_tr = data
    X, y = X_tr[:BATCH], y_tr[:BATCH]
    model, params = init_params(dtype)
    f, compile_s = symdiff_step(model, params)
    t0 = time.perf_counter()
    f.epoch(X_tr, y_tr, batch_size=BATCH)               # compiles the epoch driver
    epoch_compile = time.perf_counter() - t0
    for p in model.params:                              # restart from the initial values
        f.state[p][...] = params[p.name]
    js = jax_step(jax)
    jp = {k: jax.numpy.asarray(v) for k, v in params.items()}
    jx, jy = jax.numpy.asarray(X), jax.numpy.asarray(y)
    t0 = time.perf_counter()
    jax.block_until_ready(js(jp, jx, jy))
    jax_compile = time.perf_counter() - t0
    ts = torch_step(torch, params)
    tx, ty = torch.tensor(X), torch.tensor(y)
    losses = [float(f(X, y)), float(js(jp, jx, jy)[0]), float(ts(tx, ty))]
    assert np.allclose(losses, losses[0], rtol=1e-4 if dtype == "float32" else 1e-10), losses

    state = {"jax": jp}

    def jax_call():
        v, state["jax"] = js(state["jax"], jx, jy)
        jax.block_until_ready(v)
    step = timeit({"symdiff": lambda: f(X, y), "jax": jax_call, "torch": lambda: ts(tx, ty)},
                  repeats)

    order = np.random.default_rng(0).permutation(len(X_tr))
    Xo, yo = X_tr[order], y_tr[order]
    jbatches = [(jax.numpy.asarray(Xo[s:s + BATCH]), jax.numpy.asarray(yo[s:s + BATCH]))
                for s in range(0, len(Xo), BATCH)]
    tbatches = [(torch.tensor(Xo[s:s + BATCH]), torch.tensor(yo[s:s + BATCH]))
                for s in range(0, len(Xo), BATCH)]
    for bx, by in jbatches[-1:]:                        # compile the short last batch too
        jax.block_until_ready(js(state["jax"], bx, by))

    def jax_epoch():
        for bx, by in jbatches:
            v, state["jax"] = js(state["jax"], bx, by)
        jax.block_until_ready(v)

    def torch_epoch():
        for bx, by in tbatches:
            ts(bx, by)
    epoch = timeit({"symdiff": lambda: f.epoch(X_tr, y_tr, batch_size=BATCH, order=order),
                    "jax": jax_epoch, "torch": torch_epoch}, max(3, repeats // 5))
    return {"dtype": dtype, "step": step, "epoch": epoch, "compile": compile_s,
            "epoch_compile": epoch_compile, "jax_compile": jax_compile, "n": len(X_tr)}


def report(r):
    s, e = r["step"], r["epoch"]
    print(f"{r['dtype']} train step, batch {BATCH}: symdiff {s['symdiff'] * 1e3:.2f} ms | JAX jit "
          f"{s['jax'] * 1e3:.2f} ms (ratio {s['symdiff'] / s['jax']:.2f}) | PyTorch eager "
          f"{s['torch'] * 1e3:.2f} ms (ratio {s['symdiff'] / s['torch']:.2f})")
    print(f"{r['dtype']} epoch of {r['n']} images: symdiff f.epoch {e['symdiff'] * 1e3:.1f} ms "
          f"({r['n'] / e['symdiff']:.0f} img/s) | JAX jit loop {e['jax'] * 1e3:.1f} ms "
          f"(throughput ratio {e['jax'] / e['symdiff']:.2f}x) | PyTorch eager "
          f"{e['torch'] * 1e3:.1f} ms (throughput ratio {e['torch'] / e['symdiff']:.2f}x)")
    print(f"{r['dtype']} compile: symdiff step {r['compile']:.1f} s (cold cache) + epoch driver "
          f"{r['epoch_compile']:.1f} s | JAX jit {r['jax_compile']:.1f} s", flush=True)


def _limit_threads(threads):
    """One thread for every peer; must run before numpy, jax and torch are imported."""
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                               " --xla_cpu_multi_thread_eigen=false"
                               " intra_op_parallelism_threads=1")
    for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[v] = str(threads)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=30)
    ap.add_argument("--threads", type=int, default=0, help="0: each library's default")
    ap.add_argument("--dtypes", default="float32,float64")
    args = ap.parse_args()
    if args.threads:
        _limit_threads(args.threads)
    # a cold kernel cache: the compile times are cold compiles
    os.environ.setdefault("SYMDIFF_CACHE_DIR", tempfile.mkdtemp(prefix="bench-conv-"))
    import jax
    import torch
    jax.config.update("jax_enable_x64", True)
    if args.threads:
        torch.set_num_threads(args.threads)
        from threadpoolctl import threadpool_limits
        threadpool_limits(args.threads)  # BLAS libraries loaded before the variables were set
    from symdiff.models import cnn
    print(f"python {sys.version.split()[0]}, jax {jax.__version__}, torch {torch.__version__}, "
          f"threads {args.threads or 'default'}, load average {os.getloadavg()[0]:.1f}",
          flush=True)
    for dtype in args.dtypes.split(","):
        X_tr, _, y_tr, _ = cnn.load_digit_images(dtype=dtype)
        report(bench(dtype, args.repeats, (X_tr, y_tr)))


if __name__ == "__main__":
    main()
