"""Forward vs reverse mode, auto, and optimal bracketing: compiled Jacobian kernels, with JAX's
jacfwd / jacrev on the same functions in the same run as peers.

1. Sweep f: R^n -> R^m, a 3-layer tanh network of hidden width 256 (n-256-256-m), at
   (n, m) in {(10, 1000), (1000, 10), (300, 300)} and a finer sweep around the crossover at
   n*m = 90000. Targets: auto <= 1.2x the faster pure mode, and auto picks the faster pure
   mode wherever the two differ by more than 1.5x.
2. The chain 500-500-20-500-500: optimal >= 4x faster than the faster pure mode.
3. The forward-mode Jacobian of the (1000 -> 10) case against n x the cost of f itself
   (XLA's jacfwd is a vmap of n JVPs: n x f's tangent work by construction).

Each figure: median over rounds of the median per-call time of a block of calls (blocks of
~20 ms), the implementations interleaved round by round. float64.
Run: python benchmarks/bench_modes.py [--quick]
"""
import argparse
import os
import statistics
import sys
import time

import numpy as np

import symdiff as sd
from symdiff.models.compare_cli import tanh_chain

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

SWEEP = [(10, 1000), (1000, 10), (300, 300), (150, 600), (212, 424), (245, 367), (367, 245),
         (424, 212), (600, 150)]


def block_time(fn, target=0.02):
    fn()
    t0 = time.perf_counter()
    fn()
    once = max(time.perf_counter() - t0, 1e-7)
    k = max(1, min(2000, int(target / once)))
    t0 = time.perf_counter()
    for _ in range(k):
        fn()
    return (time.perf_counter() - t0) / k


def measure(fns, rounds):
    """Median seconds per call of each callable, rounds interleaved."""
    times = {name: [] for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            times[name].append(block_time(fn))
    return {name: statistics.median(ts) for name, ts in times.items()}


def symdiff_fns(y, x, env, modes):
    names, values = list(env), [np.asarray(env[v]) for v in env]
    fns, plans = {}, {}
    for mode in modes:
        plan = sd.plan_jacobian(y, x, mode)
        f = sd.compile(names, plan.graph)
        fns[mode] = (lambda f=f: f(*values))
        plans[mode] = plan
    return fns, plans, names, values


def jax_fns(widths, env, names):
    try:
        import jax
        import jax.numpy as jnp
    except ImportError:
        return {}, None
    jax.config.update("jax_enable_x64", True)
    vals = {v.name: jnp.asarray(env[v]) for v in env}
    L = len(widths) - 1

    def f(x, params):
        h = x
        for i in range(L):
            h = jnp.tanh(h @ params[f"W{i + 1}"] + params[f"b{i + 1}"])
        return h
    params = {k: v for k, v in vals.items() if k != "x"}
    x0 = vals["x"]
    jf = jax.jit(f)
    fwd, rev = jax.jit(jax.jacfwd(f)), jax.jit(jax.jacrev(f))
    out = {"jax f": lambda: jf(x0, params).block_until_ready(),
           "jax jacfwd": lambda: fwd(x0, params).block_until_ready(),
           "jax jacrev": lambda: rev(x0, params).block_until_ready()}
    return out, (fwd(x0, params), rev(x0, params))


def run_case(widths, rng, rounds, modes=("forward", "reverse", "auto")):
    y, x, env = tanh_chain(widths, rng)
    fns, plans, names, values = symdiff_fns(y, x, env, modes)
    f_only = sd.compile(names, y)
    fns["symdiff f"] = lambda: f_only(*values)
    jfns, jres = jax_fns(widths, env, names)
    fns.update(jfns)
    ref = fns["reverse"]()
    agree = max(float(np.max(np.abs(fns[m]() - ref))) for m in modes)
    if jres is not None:
        agree = max(agree, *(float(np.max(np.abs(np.asarray(j) - ref))) for j in jres))
    return measure(fns, rounds), plans, agree


def fmt(s):
    return f"{s * 1e3:.3f} ms" if s >= 1e-4 else f"{s * 1e6:.1f} us"


def sweep(rounds):
    print("\n## Sweep: 3-layer tanh network n-256-256-m, float64\n")
    print("| n | m | forward | reverse | auto (plan) | auto / faster pure | JAX jacfwd | "
          "JAX jacrev | faster symdiff / faster JAX |")
    print("|---:|---:|---:|---:|---|---:|---:|---:|---:|")
    ok = True
    rng = np.random.default_rng(0)
    for n, m in SWEEP:
        t, plans, agree = run_case([n, 256, 256, m], rng, rounds)
        fast = min(t["forward"], t["reverse"])
        slow = max(t["forward"], t["reverse"])
        ratio = t["auto"] / fast
        pick = plans["auto"].strategy
        faster = "forward" if t["forward"] < t["reverse"] else "reverse"
        picked_right = slow / fast <= 1.5 or pick == faster or \
            (pick == "optimal" and ratio <= 1.0)
        ok &= ratio <= 1.2 and picked_right
        jax = [t.get("jax jacfwd"), t.get("jax jacrev")]
        jtxt = [fmt(v) if v else "-" for v in jax]
        vs = f"{min(fast, t['auto']) / min(jax):.2f}" if all(jax) else "-"
        print(f"| {n} | {m} | {fmt(t['forward'])} | {fmt(t['reverse'])} | {fmt(t['auto'])} "
              f"({pick}: {plans['auto'].bracketing}) | {ratio:.2f} | {jtxt[0]} | {jtxt[1]} | "
              f"{vs} |")
        assert agree < 1e-10, agree
    print(f"\nauto within 1.2x of the faster pure mode and picking it where they differ by "
          f"more than 1.5x: {'met' if ok else 'MISSED'}")
    return ok


def chain(rounds):
    print("\n## The chain 500-500-20-500-500 (tanh layers), float64\n")
    t, plans, agree = run_case([500, 500, 20, 500, 500], np.random.default_rng(1), rounds,
                               ("forward", "reverse", "optimal", "auto"))
    fast = min(t["forward"], t["reverse"])
    print("| implementation | median | faster pure symdiff / this | predicted madds |")
    print("|---|---:|---:|---:|")
    for name in ("forward", "reverse", "optimal", "auto", "jax jacfwd", "jax jacrev"):
        if name in t:
            madds = f"{plans[name].cost.madds / 1e6:.1f} M" if name in plans else ""
            print(f"| {name} | {fmt(t[name])} | {fast / t[name]:.2f} | {madds} |")
    print(f"\noptimal plan: {plans['optimal'].bracketing}; max |diff| of all Jacobians "
          f"(JAX included) from reverse mode: {agree:.1e}")
    speedup = fast / t["optimal"]
    print(f"optimal is {speedup:.2f}x faster than the faster pure mode (target >= 4x): "
          f"{'met' if speedup >= 4 else 'MISSED'}")
    return speedup >= 4


def forward_cost(rounds):
    print("\n## Forward-mode Jacobian of 1000 -> 10 against n x f\n")
    n = 1000
    t, plans, _ = run_case([n, 256, 256, 10], np.random.default_rng(2), rounds,
                           ("forward", "reverse"))
    ratio = t["forward"] / (n * t["symdiff f"])
    y, _, _ = tanh_chain([n, 256, 256, 10], np.random.default_rng(2))
    madds = plans["forward"].cost.madds / (n * sd.graph_cost(y).madds)
    print(f"symdiff: f {fmt(t['symdiff f'])}, forward Jacobian {fmt(t['forward'])}: "
          f"{ratio:.3f} x (n x f) measured, {madds:.3f} x (n x f) in multiply-adds "
          f"(the unit seeds make the first layer's tangent W1 itself), n = {n}")
    if "jax jacfwd" in t:
        print(f"JAX: f {fmt(t['jax f'])}, jacfwd {fmt(t['jax jacfwd'])}: "
              f"{t['jax jacfwd'] / (n * t['jax f']):.3f} x (n x f)")
    return ratio < 1


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true", help="fewer rounds")
    args = p.parse_args()
    rounds = 3 if args.quick else 7
    import numba
    print(f"# bench_modes: numpy {np.__version__}, numba {numba.__version__}, "
          f"weights {sd.cost.get_weights()}")
    results = [sweep(rounds), chain(rounds), forward_cost(rounds)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
