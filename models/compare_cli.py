"""``symdiff compare``: forward vs reverse mode (and auto, optimal) on a network or a zoo model.

Specs:
- ``net``: a tanh network R^n -> R^m with ``--layers`` layers of hidden width ``--hidden``
  (``--in N --out M`` set n and m);
- widths such as ``500-500-20-500-500``: a tanh layer chain with those widths;
- a zoo model name (``logreg``, ``mlp``, ...): the Jacobian of its first output node over a
  batch of ``--batch`` rows w.r.t. its first parameter, or the Hessian of its loss.
"""
import argparse
import math

import numpy as np

import symdiff as sd
from .zoo import ZOO

SWEEP_RATIOS = (1 / 100, 1 / 30, 1 / 10, 1 / 3, 1, 3, 10, 30, 100)


def add_parser(sub):
    p = sub.add_parser("compare", help="compare forward, reverse, auto and optimal modes",
                       description="Forward vs reverse mode (and auto, optimal) on a network "
                       "or a zoo model: a table of every strategy's plan, size, predicted and "
                       "measured time, and agreement with the reference.",
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("spec", help="'net', widths like 500-500-20-500-500, or a zoo model "
                                f"({', '.join(sorted(ZOO))})")
    p.add_argument("--in", dest="n_in", type=int, default=300, help="input width of 'net'")
    p.add_argument("--out", dest="n_out", type=int, default=300, help="output width of 'net'")
    p.add_argument("--hidden", type=int, default=256, help="hidden width of 'net'")
    p.add_argument("--layers", type=int, default=3, help="number of layers of 'net'")
    p.add_argument("--batch", type=int, default=8, help="rows of data for a zoo model")
    p.add_argument("--hessian", action="store_true",
                   help="compare Hessian strategies (of 0.5 |y|^2, or of a zoo model's loss)")
    p.add_argument("--hvp", action="store_true",
                   help="compare Hessian-vector product strategies (same function as --hessian)")
    p.add_argument("--repeats", type=int, default=15,
                   help="least number of timed blocks (~2 ms each) per strategy")
    p.add_argument("--plot", help="PNG file: sweep n/m at a fixed n*m and plot time against "
                                  "n/m (needs matplotlib)")
    p.add_argument("--points", type=int, default=len(SWEEP_RATIOS),
                   help="sweep points for --plot (n/m from 1/100 to 100)")
    p.add_argument("--backend", choices=["numba", "numpy"], default="numba",
                   help="numpy: no compile, interpreted (times are not the kernels')")
    p.add_argument("--blas-threads", type=int, default=None,
                   help="limit BLAS threads while timing (1 on a busy machine: threads that "
                        "wait for the scheduler make GEMMs 10x slower and quantized); "
                        "None: BLAS's own default")
    p.add_argument("--seed", type=int, default=0, help="seed of the random inputs and weights")
    return p


def run(args):
    what = "hessian" if args.hessian else "hvp" if args.hvp else "jacobian"
    if args.plot and (what != "jacobian" or args.spec != "net"):
        raise SystemExit("symdiff compare: --plot sweeps the Jacobian of 'net' (n/m at a fixed "
                         "n*m, from --in and --out)")
    y, x, inputs = build(args.spec, args.n_in, args.n_out, args.hidden, args.layers,
                         args.batch, args.seed, scalar=what != "jacobian")
    v = np.random.default_rng(args.seed + 1).standard_normal(x.shape) if what == "hvp" else None
    widths = f"{x.size} inputs -> {y.size} outputs"
    print(f"symdiff compare {args.spec}: {what} of `{_short(y)}` w.r.t. `{x.name}` ({widths})")
    print(sd.compare_modes(y, x, inputs, what=what, v=v, repeats=args.repeats,
                           backend=args.backend, blas_threads=args.blas_threads))
    if args.plot:
        path = sweep_plot(args, args.plot)
        print(f"sweep plot written to {path}")
    return 0


def _short(node, width=60):
    text = str(node)
    return text if len(text) <= width else text[:width - 3] + "..."


def build(spec, n_in, n_out, hidden, layers, batch, seed, scalar=False):
    """(y, x, inputs) for a spec; ``scalar`` asks for a scalar y (Hessians)."""
    rng = np.random.default_rng(seed)
    if spec in ZOO:
        return _zoo(spec, batch, rng, scalar)
    if spec == "net":
        widths = [n_in] + [hidden] * (layers - 1) + [n_out]
    else:
        try:
            widths = [int(w) for w in spec.split("-")]
        except ValueError:
            raise SystemExit(f"symdiff compare: unknown spec {spec!r}: use 'net', widths "
                             f"like 500-500-20-500-500, or one of {', '.join(sorted(ZOO))}")
        if len(widths) < 2 or min(widths) < 1:
            raise SystemExit(f"symdiff compare: spec {spec!r} needs two or more positive widths")
    y, x, inputs = tanh_chain(widths, rng)
    if scalar:
        y = 0.5 * sd.sum(y * y)
    return y, x, inputs


def tanh_chain(widths, rng):
    """h_{i+1} = tanh(h_i W_i + b_i): the layer chain of the given widths, with values."""
    x = sd.var("x", (widths[0],))
    inputs = {x: rng.standard_normal(widths[0])}
    h = x
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        W, bias = sd.param(f"W{i + 1}", (a, b)), sd.param(f"b{i + 1}", (b,))
        inputs[W] = rng.standard_normal((a, b)) / math.sqrt(a)
        inputs[bias] = 0.1 * rng.standard_normal(b)
        h = sd.tanh(h @ W + bias)
    return h, x, inputs


def _zoo(name, batch, rng, scalar):
    """A zoo model declared with ``batch`` rows (a Jacobian over the rows needs sizes).

    Declared at that size, not substituted into the symbolic model: sd.substitute keeps the
    "batch" symbol inside the targets of reshapes (logsumexp's squeeze of max(z)), which then
    no longer fit their rebuilt inputs (ShapeError: cannot reshape (8, 1) into (batch,)).
    """
    m = ZOO[name](batch=batch)
    inputs = {}
    for v in m.inputs:
        if v.name == "y":                             # labels / targets: 0 or 1
            inputs[v] = rng.integers(0, 2, v.shape).astype(v.dtype)
        else:
            inputs[v] = rng.standard_normal(v.shape)
    for p in m.params:
        inputs[p] = 0.5 * rng.standard_normal(p.shape)
    y = m.loss if scalar else next(iter(m.outputs.values()))
    return y, m.params[0], inputs


def sweep_plot(args, path):
    """Time of each mode against n/m at fixed n*m, with the measured crossover marked."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    product = args.n_in * args.n_out
    points = []
    k = max(2, args.points)
    for r in np.geomspace(SWEEP_RATIOS[0], SWEEP_RATIOS[-1], k) if k != len(SWEEP_RATIOS) \
            else SWEEP_RATIOS:
        n = max(1, round(math.sqrt(product * r)))
        m = max(1, round(product / n))
        y, x, inputs = build("net", n, m, args.hidden, args.layers, 1, args.seed)
        c = sd.compare_modes(y, x, inputs, strategies=("forward", "reverse", "auto"),
                             backend=args.backend, timed=False)
        points.append((n, m, c))
    # every point's kernels timed together, round-robin: load from other processes slows
    # all points alike instead of one (one block per point zig-zagged by up to 100x)
    sd.time_comparisons([c for _, _, c in points], repeats=args.repeats,
                        blas_threads=args.blas_threads)
    for n, m, c in points:
        print(f"n={n:5d} m={m:5d}  " + "  ".join(
            f"{s} {c.row(s).run_text:>15}"
            for s in ("forward", "reverse", "auto")) + f" ({c.row('auto').plan})")
    points = [(n / m, c) for n, m, c in points]
    ratios = [p[0] for p in points]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for s, color in (("forward", "tab:blue"), ("reverse", "tab:red"), ("auto", "tab:green")):
        ax.plot(ratios, [c.row(s).run_s * 1e3 for _, c in points], "o-", color=color,
                label=f"{s} (measured)")
        if s != "auto":
            ax.plot(ratios, [c.row(s).predicted * 1e3 for _, c in points], "--",
                    color=color, alpha=0.6, label=f"{s} (predicted)")
    cross = crossover(ratios, [c.row("forward").run_s for _, c in points],
                      [c.row("reverse").run_s for _, c in points])
    if cross:
        ax.axvline(cross, color="gray", ls=":", label=f"measured crossover n/m = {cross:.2g}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("n / m (inputs / outputs)")
    ax.set_ylabel("Jacobian time per call (ms)")
    ax.set_title(f"forward vs reverse mode, tanh net, hidden {args.hidden}, n*m = {product}")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def crossover(ratios, fwd, rev):
    """The n/m where forward and reverse times cross (log-linear interpolation), or None."""
    d = [math.log(f / r) for f, r in zip(fwd, rev)]
    for (r0, d0), (r1, d1) in zip(zip(ratios, d), zip(ratios[1:], d[1:])):
        if d0 == 0:
            return r0
        if d0 * d1 < 0:
            t = d0 / (d0 - d1)
            return math.exp(math.log(r0) + t * (math.log(r1) - math.log(r0)))
    return None
