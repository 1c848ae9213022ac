"""The ``symdiff`` command line: ``symdiff demo``, ``symdiff show``, ``symdiff compare``."""
import argparse
import os
import sys
import time

import symdiff as sd
from . import compare_cli, data
from .zoo import ZOO

HELP_FORMAT = argparse.ArgumentDefaultsHelpFormatter


def _first_sentence(fn):
    text = " ".join((fn.__doc__ or "").split())
    return text.split(". ")[0].rstrip(".")


def _tier_report(trainer):
    """Which tier ran the steps: the tiered compile runs them on NumPy until the Numba kernel,
    compiled in the background, is ready."""
    ready = trainer.kernel_ready_seconds
    if trainer.backend != "numba":
        return "the steps ran on the NumPy backend"
    if ready is not None:
        return f"the Numba step kernel was in use {ready:.2f} s after its compile started"
    return ("training ended before the Numba step kernel was compiled: every step ran on the "
            "NumPy tier (SYMDIFF_TIERED=0 waits for the kernel)")


def _demo(args):
    """Train an MLP 64-128-64-10 on the handwritten digits that ship with scikit-learn."""
    from .estimators import MLPClassifier
    X_tr, X_te, y_tr, y_te = data.load_digits(dtype="float32")
    print(f"digits: {len(X_tr)} training and {len(X_te)} test images of 8x8 pixels, "
          f"10 classes")
    clf = MLPClassifier(hidden=(128, 64), activation=args.activation, lr=args.lr,
                        momentum=0.9, batch_size=args.batch, epochs=args.epochs, seed=args.seed)
    curve = []

    def report(est, epoch, loss):
        acc = est.score(X_te, y_te)
        curve.append((epoch, loss, acc))
        print(f"epoch {epoch:3d}  train loss {loss:.4f}  test accuracy {acc:.4f}")
    t0 = time.perf_counter()
    clf.fit(X_tr, y_tr, callback=report)
    total = time.perf_counter() - t0
    compile_s = clf.trainer_.compile_seconds + getattr(clf.trainer_, "epoch_compile_seconds", 0)
    acc = clf.score(X_te, y_te)
    print(f"test accuracy {acc:.4f}")
    print(f"compile {compile_s:.2f} s (until the loss + gradient + update, epoch and "
          f"prediction compiles returned); training {total - compile_s:.2f} s for "
          f"{len(curve)} epochs")
    print(_tier_report(clf.trainer_))
    path = _plot(curve, args.plot)
    if path:
        print(f"loss and accuracy curves written to {path}")
    return 0


def _plot(curve, path):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("(matplotlib is not installed: no plot; pip install 'symdiff[demo]')")
        return None
    epochs, loss, acc = zip(*curve)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(epochs, loss, "o-", color="tab:blue", label="training loss")
    ax.set_xlabel("epoch")
    ax.set_ylabel("training loss (cross-entropy)", color="tab:blue")
    ax.set_yscale("log")
    ax2 = ax.twinx()
    ax2.plot(epochs, acc, "s-", color="tab:red", label="test accuracy")
    ax2.set_ylabel("test accuracy", color="tab:red")
    ax.set_title("symdiff demo: MLP 64-128-64-10 on digits")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return os.path.abspath(path)


def _show(args):
    """Print (or write) a zoo model's loss or its simplified gradient."""
    m = ZOO[args.model]()
    graph = sd.simplify(sd.grad(m.loss, m.params)) if args.grad else m.loss
    names = [f"d loss / d {p.name}" for p in m.params] if args.grad else ["loss"]
    graphs = graph if args.grad else [graph]
    if args.format == "text":
        print(sd.to_text(graphs, names=names))
    elif args.format == "latex":
        print(_latex(graphs, names))
    else:
        text = sd.to_dot(m.loss, gradient=graph if args.grad else None, title=m.name)
        if args.format == "dot":
            print(text, end="")
        else:
            out = args.output or f"{m.name}{'_grad' if args.grad else ''}.{args.format}"
            try:
                print(f"wrote {sd.render(text, out, args.format)}")
            except RuntimeError as e:
                print(f"symdiff show: {e}", file=sys.stderr)
                return 2
    return 0


def _latex(graphs, names):
    """``name = latex`` lines, then the definition of every named function they apply."""
    import sympy
    exprs = sd.to_sympy(graphs)
    lines = [f"{name} = {sympy.latex(e)}" for name, e in zip(names, exprs)]
    defined = sd.sympy_definitions(exprs)
    if defined:
        lines.append("where " + ", ".join(sympy.latex(eq) for eq in defined.values()))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="symdiff", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser("demo", help="train an MLP on scikit-learn's digits",
                          description=_demo.__doc__, formatter_class=HELP_FORMAT)
    demo.add_argument("--epochs", type=int, default=30, help="passes over the training set")
    demo.add_argument("--lr", type=float, default=0.05, help="SGD learning rate")
    demo.add_argument("--batch", type=int, default=32, help="minibatch size")
    demo.add_argument("--activation", choices=["tanh", "relu"], default="tanh",
                      help="hidden-layer activation")
    demo.add_argument("--seed", type=int, default=0, help="seed of the weights and shuffling")
    demo.add_argument("--plot", default="symdiff-demo.png",
                      help="where to write the loss and accuracy curves (needs matplotlib)")
    show = sub.add_parser("show", help="print a model's loss or gradient as text, LaTeX or DOT",
                          description=_show.__doc__ + " Models: " + "; ".join(
                              f"{k}: {_first_sentence(v)}" for k, v in sorted(ZOO.items())),
                          formatter_class=HELP_FORMAT)
    show.add_argument("model", choices=sorted(ZOO), help="a model of the zoo")
    show.add_argument("--grad", action="store_true",
                      help="show the simplified gradient w.r.t. every parameter")
    show.add_argument("--format", choices=["text", "latex", "dot", "png", "svg"], default="text",
                      help="text: expressions with named subterms; latex: matrix "
                           "expressions; dot/png/svg: the graph (png/svg need Graphviz)")
    show.add_argument("--output", help="file for --format png/svg (<model>.<format> when not given)")
    compare_cli.add_parser(sub)
    args = parser.parse_args(argv)
    return {"demo": _demo, "show": _show, "compare": compare_cli.run}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
