"""Time of symdiff's own passes against graph size (issue 13): grad, simplify, prepare,
lower (+ Program.verify) and render, each timed on its own, for graph families of doubling
size. Linear passes show t(2n) / t(n) close to 2; a quadratic one shows 4.

Families (each a loss and its gradient with respect to every parameter):

- mlp L:   a deep MLP of L tanh layers of width 32 (x @ W_k + b_k), squared-error loss;
- lstm T:  an LSTM unrolled over T steps with sd ops (``recurrent.lstm_cell`` called T times,
           no sd.scan: every step is its own subgraph), a dense read-out and a cross-entropy;
- chain N: a plain chain of N blocks h = tanh(h @ W) * c + h (one shared weight W);
- scalar N: the scalar chain y = sin(y) / 2 + x / 10 of N links (tests/core/test_graph.py
           differentiates it at N = 5,000): every task of the kernel in one loop nest.

Every measurement runs in a fresh process (no hash-consing cache, digest memo or kernel
cache carries over), three processes per size, and reports the median. No pass imports
Numba; each child checks that. Op counts: the forward+gradient graph after ``sd.grad``
(``sd.count_ops``) and after ``prepare``.

Run: python benchmarks/bench_passes.py [--families mlp,lstm,chain] [--reps 3] [--sizes ...]
     python benchmarks/bench_passes.py --one mlp 100     (one measurement, JSON)
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier

PASSES = ("grad", "simplify", "prepare", "lower", "render")
SIZES = {"mlp": (100, 200, 400, 800), "lstm": (16, 32, 64, 128), "chain": (100, 200, 400, 800),
         "scalar": (175, 350, 700, 1400)}


def build(family, n):
    """(inputs, loss, params) of the family's graph of size n."""
    import symdiff as sd
    if family == "mlp":
        x, y = sd.var("x", ("batch", 32)), sd.var("y", ("batch", 32))
        params, h = [], x
        for k in range(n):
            W, b = sd.param(f"W{k}", (32, 32)), sd.param(f"b{k}", (32,))
            params += [W, b]
            h = sd.tanh(h @ W + b)
        return [x, y], sd.mean(sd.square(h - y)), params
    if family == "lstm":
        from symdiff.models.recurrent import lstm_cell
        hidden, vocab = 16, 8
        x = sd.var("x", (n, "batch", vocab))
        y = sd.var("y", (n, "batch"), dtype="int64")
        Wx, Wh = sd.param("Wx", (vocab, 4 * hidden)), sd.param("Wh", (hidden, 4 * hidden))
        b, Wo = sd.param("b", (4 * hidden,)), sd.param("Wo", (hidden, vocab))
        h = c = sd.broadcast_to(sd.const(0.0), (x.shape[1], hidden))
        loss = 0
        for t in range(n):
            (h, c), _ = lstm_cell((h, c), x[t] @ Wx + b, Wh)
            loss = loss + sd.mean(sd.softmax_cross_entropy(h @ Wo, y[t]))
        return [x, y], loss / n, [Wx, Wh, b, Wo]
    if family == "chain":
        x = sd.var("x", ("batch", 16))
        W = sd.param("W", (16, 16))
        h = x
        for k in range(n):
            h = sd.tanh(h @ W) * (1.0 + 1.0 / (k + 2)) + h
        return [x], sd.sum(h * h), [W]
    if family == "scalar":
        x = sd.var("x")
        y = x
        for _ in range(n):
            y = sd.sin(y) * 0.5 + 0.1 * x
        return [], y, [x]
    raise ValueError(f"bench_passes: unknown family {family!r} (mlp, lstm, chain, scalar)")


def measure(family, n):
    """Seconds of each pass on the family's graph of size n, and op counts."""
    import symdiff as sd
    from symdiff.codegen.lower import lower
    from symdiff.codegen.prepare import prepare
    from symdiff.codegen.render import render
    from symdiff.function import Spec
    inputs, loss, params = build(family, n)
    t, cpu = {}, {}

    def timed(name, fn):
        w0, c0 = time.perf_counter(), time.process_time()
        out = fn()
        t[name], cpu[name] = time.perf_counter() - w0, time.process_time() - c0
        return out
    grads = timed("grad", lambda: sd.grad(loss, params))
    outs = [loss] + grads
    ops = sd.count_ops(outs)
    outs = timed("simplify", lambda: sd.simplify(outs))     # what sd.compile's Function does
    spec = Spec(inputs + params, outs, None, None)
    nodes = timed("prepare", lambda: prepare(spec.outputs))
    program = timed("lower", lambda: _verified(lower(spec, nodes, [])))
    source = timed("render", lambda: render(program, math="fast", parallel=False,
                                            fastmath=True))
    if "numba" in sys.modules:
        raise AssertionError("a pass imported numba")
    return {"family": family, "n": n, "ops": ops, "prepared_ops": sd.count_ops(nodes),
            "lines": source.count("\n"), "seconds": t, "cpu": cpu}


def _verified(program):
    program.verify()
    return program


def run_child(family, n):
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", family, str(n)],
                         capture_output=True, text=True, cwd=tempfile.gettempdir())
    if out.returncode:
        raise RuntimeError(f"bench_passes: {family} {n} failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def median_run(family, n, reps):
    runs = [run_child(family, n) for _ in range(reps)]
    out = dict(runs[0])
    for key in ("seconds", "cpu"):
        med = {p: statistics.median(r[key][p] for r in runs) for p in PASSES}
        med["total"] = statistics.median(sum(r[key].values()) for r in runs)
        out[key] = med
    return out


def table(results, key="seconds"):
    cols = PASSES + ("total",)
    lines = ["| graph | ops (grad / prepared) | " + " | ".join(cols) + " |",
             "|---|---|" + "---|" * len(cols)]
    prev = None
    for r in results:
        s = r[key]
        cells = []
        for p in cols:
            ratio = ""
            if prev is not None and prev["family"] == r["family"] and prev[key][p] > 0:
                ratio = f" (x{s[p] / prev[key][p]:.2f})"
            cells.append(f"{s[p]:.3f}{ratio}")
        lines.append(f"| {r['family']} {r['n']} | {r['ops']:,} / {r['prepared_ops']:,} | " +
                     " | ".join(cells) + " |")
        prev = r
    return "\n".join(lines)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--families", default="mlp,lstm,chain,scalar")
    ap.add_argument("--sizes", default=None, help="comma-separated sizes (one family)")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--one", nargs=2, metavar=("FAMILY", "N"))
    ap.add_argument("--json", default=None, help="also write the results here")
    args = ap.parse_args()
    if args.one:
        print(json.dumps(measure(args.one[0], int(args.one[1]))))
        return
    results = []
    for fam in args.families.split(","):
        sizes = [int(s) for s in args.sizes.split(",")] if args.sizes else SIZES[fam]
        for n in sizes:
            results.append(median_run(fam, n, args.reps))
            r = results[-1]
            print(f"{fam} {n}: {r['ops']} ops, " + ", ".join(
                f"{p} {r['seconds'][p]:.3f}" for p in PASSES + ("total",)) + " s (cpu " +
                ", ".join(f"{r['cpu'][p]:.3f}" for p in PASSES + ("total",)) + ")",
                flush=True)
    for key, what in (("seconds", "wall-clock"), ("cpu", "CPU (process)")):
        print(f"\n{what} seconds per pass, median of {args.reps} fresh processes; "
              "(xR) = t(2n) / t(n)")
        print(table(results, key))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
