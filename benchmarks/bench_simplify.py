"""Simplifier quality and speed.

Quality: node counts of the simplified reverse-mode gradient vs the seeds' hand-written
backprop for the five seed models (tests/seed_models.py). Speed: sd.simplify on the gradient
graph of MLP 784-256-256-10 and of a 200-layer MLP. Run: python benchmarks/bench_simplify.py
"""
import pathlib
import statistics
import sys
import time

import symdiff as sd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from seed_models import SEED_MODELS  # noqa: E402
from bench_graph import build  # noqa: E402


def deep_mlp(layers=200, width=64):
    x = sd.var("x", ("batch", width))
    y = sd.var("y", ("batch",), dtype="int64")
    h, params = x, []
    for i in range(layers):
        W, b = sd.param(f"W{i}", (width, width)), sd.param(f"b{i}", (width,))
        params += [W, b]
        h = sd.tanh(h @ W + b)
    return sd.mean(sd.softmax_cross_entropy(h, y)), params


def timed(fn, reps):
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        out = fn()
        ts.append(time.perf_counter() - t0)
    return statistics.median(ts), out


def main():
    print("| model | batch | raw gradient | simplified | hand-written |")
    print("|---|---|---:|---:|---:|")
    for name, make in SEED_MODELS.items():
        for batch in (32, "batch"):
            loss, params, hand, _ = make(batch)
            g = sd.grad(loss, params)
            print(f"| {name} | {batch} | {sd.count_ops(g)} | {sd.count_ops(sd.simplify(g))} | "
                  f"{sd.count_ops(hand)} |")
    for label, make, reps in (("MLP 784-256-256-10", lambda: build("s"), 30),
                              ("MLP 200 x 64 tanh", deep_mlp, 5)):
        loss, params = make()
        g = sd.grad(loss, params)
        t, s = timed(lambda: sd.simplify(g), reps)
        print(f"simplify {label}: {t * 1e3:.1f} ms (median of {reps}); "
              f"{sd.count_ops(g)} -> {sd.count_ops(s)} ops")


if __name__ == "__main__":
    main()
