"""The tensor language's workloads, peers in the same run (float64, medians of interleaved
repeats, ratios symdiff / peer):

- Gaussian mixture objective + gradient w.r.t. (alphas, means, packed Cholesky factors),
  n = 1000 points: symdiff vs JAX jit(value_and_grad) and PyTorch eager; compile times.
- Rosenbrock, n = 10^6: value + gradient vs a hand-written NumPy gradient; f.peak_bytes.
- Bundle adjustment (10^5 observations of 49 cameras and 7,776 points): residuals + gradient
  of their squared sum vs JAX jit.

Run: python benchmarks/bench_tensor.py [--repeats 20] [--only gmm,rosenbrock,bundle]
"""
import argparse
import os
import statistics
import time

import numpy as np

import symdiff as sd
from symdiff.models.objectives import bundle_residuals, gmm_loglik, rosenbrock

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier


def timeit(fns, repeats, rounds=2):
    """Median seconds of each callable: blocks of repeats, one peer after another, the whole
    sequence ``rounds`` times (drift hits all alike). Blocks, not call-by-call interleaving:
    PyTorch's OpenMP threads keep spinning for a while after each call and starve the
    OpenBLAS threads of the next peer's many small GEMMs (measured: 30x slower)."""
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, f in fns.items():
            f()
            for _ in range(repeats):
                t = time.perf_counter()
                f()
                times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def _jax():
    try:
        import jax
        jax.config.update("jax_enable_x64", True)
        return jax
    except ImportError:
        return None


def _torch():
    try:
        import torch
        return torch
    except ImportError:
        return None


# --- Gaussian mixture --------------------------------------------------------------------
def gmm_jax(jax, d):
    jnp = jax.numpy
    rows, cols = np.tril_indices(d, -1)

    def loglik(alphas, means, icf, x):
        K = alphas.shape[0]
        Q = jnp.zeros((K, d, d)).at[:, rows, cols].set(icf[:, d:])
        Q = Q + jax.vmap(jnp.diag)(jnp.exp(icf[:, :d]))
        y = jnp.einsum("kij,nkj->nki", Q, x[:, None, :] - means)
        lp = alphas - jax.scipy.special.logsumexp(alphas) + icf[:, :d].sum(1) - \
            0.5 * (y * y).sum(2)
        return jnp.sum(jax.scipy.special.logsumexp(lp, axis=1) - 0.5 * d * np.log(2 * np.pi))
    return jax.jit(jax.value_and_grad(loglik, argnums=(0, 1, 2)))


def gmm_torch(torch, d):
    rows, cols = np.tril_indices(d, -1)

    def step(alphas, means, icf, x):
        for t in (alphas, means, icf):
            t.grad = None
        K = alphas.shape[0]
        Q = torch.zeros((K, d, d), dtype=x.dtype)
        Q[:, rows, cols] = icf[:, d:]
        Q = Q + torch.diag_embed(torch.exp(icf[:, :d]))
        y = torch.einsum("kij,nkj->nki", Q, x[:, None, :] - means)
        lp = alphas - torch.logsumexp(alphas, 0) + icf[:, :d].sum(1) - 0.5 * (y * y).sum(2)
        v = torch.sum(torch.logsumexp(lp, 1) - 0.5 * d * np.log(2 * np.pi))
        v.backward()
        return v, alphas.grad, means.grad, icf.grad
    return step


def bench_gmm(repeats, sizes=((10, 25), (32, 100), (64, 200)), n=1000):
    jax, torch = _jax(), _torch()
    rows = []
    for d, K in sizes:
        rng = np.random.default_rng(0)
        m = d + d * (d - 1) // 2
        args = [rng.normal(size=K), rng.normal(size=(K, d)), rng.normal(size=(K, m)) * 0.1,
                rng.normal(size=(n, d))]
        a, mu, icf = sd.param("alphas", (K,)), sd.param("means", (K, d)), sd.param("icf", (K, m))
        x = sd.var("x", (n, d))
        vg = sd.value_and_grad(sd.sum(gmm_loglik(x, a, mu, icf)), [a, mu, icf])
        t = time.perf_counter()
        f = sd.compile([a, mu, icf, x], vg)
        compile_s = time.perf_counter() - t
        fns = {"symdiff": lambda: f(*args)}
        ref = f(*args)
        row = {"d": d, "K": K, "compile": compile_s}
        if jax is not None:
            g = gmm_jax(jax, d)
            jargs = [jax.numpy.asarray(v) for v in args]
            t = time.perf_counter()
            jax.block_until_ready(g(*jargs))
            row["jax_compile"] = time.perf_counter() - t
            jv, jg = g(*jargs)
            assert np.allclose(float(jv), ref[0]) and all(
                np.allclose(np.asarray(u), w, rtol=1e-8, atol=1e-8) for u, w in zip(jg, ref[1:]))
            fns["jax"] = lambda: jax.block_until_ready(g(*jargs))
        if torch is not None:
            s = gmm_torch(torch, d)
            targs = [torch.tensor(v, requires_grad=i < 3) for i, v in enumerate(args)]
            fns["torch"] = lambda: s(*targs)
        row.update(timeit(fns, repeats))
        rows.append(row)
        print(_fmt_gmm(row), flush=True)
    return rows


def _fmt_gmm(r):
    out = f"GMM n=1000 d={r['d']:3d} K={r['K']:3d}: symdiff {r['symdiff'] * 1e3:8.2f} ms " \
          f"(compile {r['compile']:.1f} s)"
    if "jax" in r:
        out += f" | JAX {r['jax'] * 1e3:8.2f} ms (compile {r['jax_compile']:.1f} s) " \
               f"ratio {r['symdiff'] / r['jax']:.2f}"
    if "torch" in r:
        out += f" | PyTorch {r['torch'] * 1e3:8.2f} ms ratio {r['symdiff'] / r['torch']:.2f}"
    return out


# --- Rosenbrock --------------------------------------------------------------------------
def rosenbrock_numpy(xv):
    """The hand-written gradient: d/dx_i of 100 (x_{i+1} - x_i^2)^2 + (1 - x_i)^2."""
    a = xv[1:] - xv[:-1] ** 2
    g = np.zeros_like(xv)
    g[:-1] = -400 * xv[:-1] * a - 2 * (1 - xv[:-1])
    g[1:] += 200 * a
    return np.sum(100 * a * a + (1 - xv[:-1]) ** 2), g


def bench_rosenbrock(repeats, n=10 ** 6):
    x = sd.var("x", (n,))
    r = rosenbrock(x)
    f = sd.compile([x], [r, sd.grad(r, x)])
    xv = np.random.default_rng(0).uniform(-2, 2, n)
    got, want = f(xv), rosenbrock_numpy(xv)
    assert np.allclose(got[1], want[1]) and np.isclose(got[0], want[0])
    t = timeit({"symdiff": lambda: f(xv), "numpy": lambda: rosenbrock_numpy(xv)}, repeats)
    print(f"Rosenbrock n=1e6: symdiff {t['symdiff'] * 1e3:.2f} ms | NumPy hand-written "
          f"{t['numpy'] * 1e3:.2f} ms ratio {t['symdiff'] / t['numpy']:.2f} | workspace "
          f"{f.peak_bytes() / 1e6:.1f} MB (x: {8 * n / 1e6:.1f} MB)", flush=True)
    return t


# --- bundle adjustment -------------------------------------------------------------------
def bundle_problem(n_cams=49, n_pts=7776, n_obs=10 ** 5, seed=0):
    rng = np.random.default_rng(seed)
    cams = np.concatenate([rng.normal(0, 0.3, (n_cams, 3)), rng.normal(0, 1, (n_cams, 2)),
                           rng.normal(-8, 1, (n_cams, 1)), rng.uniform(400, 600, (n_cams, 1)),
                           rng.normal(0, 1e-3, (n_cams, 2))], axis=1)
    return (cams, rng.normal(size=(n_pts, 3)), rng.integers(0, n_cams, n_obs),
            rng.integers(0, n_pts, n_obs), rng.normal(size=(n_obs, 2)))


def bundle_jax(jax):
    jnp = jax.numpy

    def residuals(cams, pts, ci, pi, obs):
        c, X = cams[ci], pts[pi]
        r = c[:, :3]
        theta = jnp.sqrt((r * r).sum(1, keepdims=True) + 1e-30)
        k = r / theta
        P = X * jnp.cos(theta) + jnp.cross(k, X) * jnp.sin(theta) + \
            k * (k * X).sum(1, keepdims=True) * (1 - jnp.cos(theta)) + c[:, 3:6]
        p = -P[:, :2] / P[:, 2:3]
        r2 = (p * p).sum(1, keepdims=True)
        return c[:, 6:7] * (1 + c[:, 7:8] * r2 + c[:, 8:9] * r2 * r2) * p - obs

    def both(cams, pts, ci, pi, obs):
        res = residuals(cams, pts, ci, pi, obs)
        g = jax.grad(lambda c, p: jnp.sum(residuals(c, p, ci, pi, obs) ** 2), (0, 1))(cams, pts)
        return res, g
    return jax.jit(both)


def bench_bundle(repeats):
    vals = bundle_problem()
    cams, pts = sd.param("cams", vals[0].shape), sd.param("pts", vals[1].shape)
    ci, pi = sd.var("ci", ("obs",), "int64"), sd.var("pi", ("obs",), "int64")
    obs = sd.var("observed", ("obs", 2))
    res = bundle_residuals(cams, pts, ci, pi, obs)
    t = time.perf_counter()
    f = sd.compile([cams, pts, ci, pi, obs], [res] + sd.grad(sd.sum(res * res), [cams, pts]))
    compile_s = time.perf_counter() - t
    fns = {"symdiff": lambda: f(*vals)}
    jax = _jax()
    line = f"Bundle adjustment 1e5 obs: symdiff "
    if jax is not None:
        g = bundle_jax(jax)
        jv = [jax.numpy.asarray(v) for v in vals]
        jres, jg = g(*jv)
        ours = f(*vals)
        assert np.allclose(np.asarray(jres), ours[0]) and all(
            np.allclose(np.asarray(u), w, rtol=1e-7, atol=1e-6) for u, w in zip(jg, ours[1:]))
        fns["jax"] = lambda: jax.block_until_ready(g(*jv))
    t = timeit(fns, repeats)
    line += f"{t['symdiff'] * 1e3:.2f} ms (compile {compile_s:.1f} s)"
    if "jax" in t:
        line += f" | JAX jit {t['jax'] * 1e3:.2f} ms ratio {t['symdiff'] / t['jax']:.2f}"
    print(line, flush=True)
    return t


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeats", type=int, default=20)
    ap.add_argument("--only", default="gmm,rosenbrock,bundle")
    args = ap.parse_args()
    only = args.only.split(",")
    if "rosenbrock" in only:
        bench_rosenbrock(args.repeats)
    if "bundle" in only:
        bench_bundle(args.repeats)
    if "gmm" in only:
        bench_gmm(args.repeats)


if __name__ == "__main__":
    main()
