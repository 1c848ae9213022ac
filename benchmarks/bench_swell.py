"""Expression swell: the derivative of y = f(f(...f(x))) as SymPy expands it vs as symdiff
builds it. f(u) = tanh(a u + b) + c u is an MLP-like scalar map that uses its input twice, so
the expanded expression doubles at every level while the graph grows by a constant.

Run: python benchmarks/bench_swell.py [--max-depth 20] [--plot benchmarks/swell.png]
"""
import argparse
import time

import sympy

import symdiff as sd

A, B, C = 0.7, 0.1, 0.5


def symdiff_sizes(depth):
    x = sd.var("x")
    y = x
    for _ in range(depth):
        y = sd.tanh(A * y + B) + C * y
    t0 = time.perf_counter()
    g = sd.simplify(sd.grad(y, x))
    return sd.count_ops(y), sd.count_ops(g), time.perf_counter() - t0


def sympy_sizes(depth, budget_s):
    x = sympy.Symbol("x")
    y = x
    for _ in range(depth):
        y = sympy.tanh(A * y + B) + C * y
    t0 = time.perf_counter()
    d = sympy.diff(y, x)
    t = time.perf_counter() - t0
    if t > budget_s:
        return None
    return sympy.count_ops(y), sympy.count_ops(d), t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max-depth", type=int, default=20)
    ap.add_argument("--sympy-budget", type=float, default=20.0, help="seconds per sympy.diff")
    ap.add_argument("--plot", default=None)
    args = ap.parse_args()
    rows = []
    sympy_alive = True
    print(f"{'depth':>5} {'sd f ops':>9} {'sd grad ops':>11} {'sd time':>9} "
          f"{'sympy f ops':>11} {'sympy d ops':>11} {'sympy time':>10}")
    for depth in range(1, args.max_depth + 1):
        f_ops, g_ops, t_sd = symdiff_sizes(depth)
        sp = sympy_sizes(depth, args.sympy_budget) if sympy_alive else None
        sympy_alive = sp is not None
        rows.append((depth, f_ops, g_ops, t_sd, sp))
        sp_txt = (f"{sp[0]:>11} {sp[1]:>11} {sp[2]:>9.3f}s" if sp else f"{'-':>11} {'-':>11} "
                  f"{'(stopped)':>10}")
        print(f"{depth:>5} {f_ops:>9} {g_ops:>11} {t_sd:>8.4f}s {sp_txt}")
    if args.plot:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        fig, ax = plt.subplots(figsize=(6, 4))
        ax.semilogy([r[0] for r in rows], [r[2] for r in rows], "o-", label="symdiff gradient graph")
        sp_rows = [r for r in rows if r[4]]
        ax.semilogy([r[0] for r in sp_rows], [r[4][1] for r in sp_rows], "s-",
                    label="sympy.diff of the expanded expression")
        ax.set_xlabel("depth of f(f(...f(x)))")
        ax.set_ylabel("size of the derivative (operations)")
        ax.set_title("Expression swell: f(u) = tanh(a u + b) + c u")
        ax.legend()
        fig.tight_layout()
        fig.savefig(args.plot, dpi=120)
        print(f"plot written to {args.plot}")


if __name__ == "__main__":
    main()
