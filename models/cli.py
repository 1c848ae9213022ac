"""The ``symdiff`` command line: ``symdiff demo``, ``symdiff show``."""
import argparse
import sys
import time

import numpy as np

import symdiff as sd
from . import data
from .zoo import ZOO


def _demo(args):
    """Train an MLP on the digits that ship with scikit-learn and report accuracy and times."""
    X_tr, X_te, y_tr, y_te = data.load_digits(dtype="float64")
    rng = np.random.default_rng(args.seed)
    sizes = [64, 128, 64, 10]
    x = sd.var("x", ("batch", 64))
    y = sd.var("y", ("batch",), dtype="int64")
    params, h = [], x
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = sd.param(f"W{i + 1}", (m, n)), sd.param(f"b{i + 1}", (n,))
        params += [W, b]
        h = h @ W + b
        if i < len(sizes) - 2:
            h = sd.tanh(h)
    loss = sd.mean(sd.softmax_cross_entropy(h, y))
    grads = sd.grad(loss, params)
    state = {}
    for p in params:
        fan_in = p.shape[0]
        state[p] = (rng.standard_normal(p.shape) / np.sqrt(fan_in) if p.ndim == 2
                    else np.zeros(p.shape))
    t0 = time.perf_counter()
    step = sd.compile([x, y], loss, updates={p: p - args.lr * g for p, g in zip(params, grads)},
                      state=state, backend="numpy")
    predict = sd.compile([x], h, state=state, backend="numpy")
    t_compile = time.perf_counter() - t0
    t0 = time.perf_counter()
    for epoch in range(args.epochs):
        order = rng.permutation(len(X_tr))
        losses = [float(step(X_tr[idx], y_tr[idx]))
                  for idx in np.array_split(order, len(order) // args.batch)]
        acc = float(np.mean(np.argmax(predict(X_te), axis=1) == y_te))
        print(f"epoch {epoch + 1:3d}  loss {np.mean(losses):.4f}  test accuracy {acc:.4f}")
    print(f"test accuracy {acc:.4f}; compile {t_compile:.2f} s; training {time.perf_counter() - t0:.2f} s")
    return 0


def _show(args):
    """Print (or write) a zoo model's loss or its simplified gradient."""
    m = ZOO[args.model]()
    graph = sd.simplify(sd.grad(m.loss, m.params)) if args.grad else m.loss
    names = [f"d loss / d {p.name}" for p in m.params] if args.grad else ["loss"]
    graphs = graph if args.grad else [graph]
    if args.format == "text":
        for name, g in zip(names, graphs):
            print(f"{name} = {g}")
    elif args.format == "latex":
        import sympy
        for name, g in zip(names, sd.to_sympy(graphs)):
            print(f"{name} = {sympy.latex(g)}")
    else:
        text = sd.to_dot(m.loss, gradient=graph if args.grad else None, title=m.name)
        if args.format == "dot":
            print(text, end="")
        else:
            out = args.output or f"{m.name}{'_grad' if args.grad else ''}.{args.format}"
            print(f"wrote {sd.render(text, out, args.format)}")
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="symdiff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train an MLP on scikit-learn's digits")
    demo.add_argument("--epochs", type=int, default=20)
    demo.add_argument("--lr", type=float, default=0.1)
    demo.add_argument("--batch", type=int, default=32)
    demo.add_argument("--seed", type=int, default=0)
    show = sub.add_parser("show", help="print a model's loss or gradient as text, LaTeX or DOT")
    show.add_argument("model", choices=sorted(ZOO))
    show.add_argument("--grad", action="store_true", help="show the simplified gradient")
    show.add_argument("--format", choices=["text", "latex", "dot", "png", "svg"], default="text")
    show.add_argument("--output", help="file for --format png/svg")
    args = parser.parse_args(argv)
    return {"demo": _demo, "show": _show}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
