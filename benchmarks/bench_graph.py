"""Time to build and differentiate the graph of an MLP 784-256-256-10 (tanh, softmax CE).

Each repetition uses fresh variable names, so hash-consing cannot reuse an earlier graph.
Run: python benchmarks/bench_graph.py
"""
import statistics
import time

import symdiff as sd


def build(tag):
    x = sd.var(f"x{tag}", ("batch", 784))
    y = sd.var(f"y{tag}", ("batch",), dtype="int64")
    sizes = [784, 256, 256, 10]
    params, h = [], x
    for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = sd.param(f"W{i}{tag}", (m, n)), sd.param(f"b{i}{tag}", (n,))
        params += [W, b]
        h = h @ W + b
        if i < 2:
            h = sd.tanh(h)
    return sd.mean(sd.softmax_cross_entropy(h, y)), params


def main(reps=50):
    t_build, t_grad = [], []
    for r in range(reps):
        t0 = time.perf_counter()
        loss, params = build(r)
        t1 = time.perf_counter()
        grads = sd.grad(loss, params)
        t2 = time.perf_counter()
        t_build.append(t1 - t0)
        t_grad.append(t2 - t1)
    fwd, bwd = sd.count_ops(loss), sd.count_ops(grads)
    both = sd.count_ops([loss] + grads)
    print(f"MLP 784-256-256-10: build {statistics.median(t_build) * 1e3:.2f} ms, grad "
          f"{statistics.median(t_grad) * 1e3:.2f} ms, total "
          f"{statistics.median([a + b for a, b in zip(t_build, t_grad)]) * 1e3:.2f} ms (median of {reps})")
    print(f"ops: forward {fwd}, gradient {bwd}, forward+gradient {both}")


if __name__ == "__main__":
    main()
