"""symdiff's passes (grad, simplify, prepare, lower, render) give the same output for a graph
built twice in one process. The second build is the same hash-consed nodes, met by warm
memo tables (digests, the rule sets' record of nodes where no rule fired, issue 13): those
tables may save work, never change a result. The graphs are deep (2,000+ ops), so this also
checks that no pass recurses per node. Pass times against graph size are in
benchmarks/bench_passes.py, not here."""
import gc

import pytest

import symdiff as sd
from symdiff.codegen.lower import lower
from symdiff.codegen.prepare import prepare
from symdiff.codegen.render import render
from symdiff.function import Spec
from symdiff.graph import digest
from symdiff.models.recurrent import lstm_cell


def deep_mlp(layers):
    x, y = sd.var("x", ("batch", 8)), sd.var("y", ("batch", 8))
    params, h = [], x
    for k in range(layers):
        W, b = sd.param(f"W{k}", (8, 8)), sd.param(f"b{k}", (8,))
        params += [W, b]
        h = sd.tanh(h @ W + b)
    return [x, y], sd.mean(sd.square(h - y)), params


def unrolled_lstm(steps):
    hidden, vocab = 4, 3
    x = sd.var("x", (steps, "batch", vocab))
    y = sd.var("y", (steps, "batch"), dtype="int64")
    Wx, Wh = sd.param("Wx", (vocab, 4 * hidden)), sd.param("Wh", (hidden, 4 * hidden))
    b, Wo = sd.param("b", (4 * hidden,)), sd.param("Wo", (hidden, vocab))
    h = c = sd.broadcast_to(sd.const(0.0), (x.shape[1], hidden))
    loss = 0
    for t in range(steps):
        (h, c), _ = lstm_cell((h, c), x[t] @ Wx + b, Wh)
        loss = loss + sd.mean(sd.softmax_cross_entropy(h @ Wo, y[t]))
    return [x, y], loss / steps, [Wx, Wh, b, Wo]


def chain(blocks):
    x, W = sd.var("x", ("batch", 4)), sd.param("W", (4, 4))
    h = x
    for k in range(blocks):
        h = sd.tanh(h @ W) * (1.0 + 1.0 / (k + 2)) + h
    return [x], sd.sum(h * h), [W]


def run_passes(build, size):
    """Every pass's output: the simplified graph, its rule trace, the prepared graph (as
    structural digests) and the rendered kernel source (with the program's step count)."""
    inputs, loss, params = build(size)
    outs = [loss] + sd.grad(loss, params)
    simplified, trace = sd.simplify(outs, trace=True)
    spec = Spec(inputs + params, outs, None, None)
    nodes = prepare(spec.outputs)
    program = lower(spec, nodes, [])
    program.verify()
    source = render(program, math="fast", parallel=False, fastmath=True)
    return {"ops": sd.count_ops(outs), "simplified": [digest(n) for n in simplified],
            "trace": trace, "prepared": [digest(n) for n in nodes],
            "steps": len(program.steps), "source": source}


@pytest.mark.parametrize("build, size", [(deep_mlp, 200), (unrolled_lstm, 24), (chain, 160)],
                         ids=["mlp-200-layers", "lstm-24-steps", "chain-160-blocks"])
def test_passes_give_the_same_output_for_a_graph_built_twice(build, size):
    first = run_passes(build, size)
    assert first["ops"] >= 2000, first["ops"]
    again = run_passes(build, size)         # the same nodes, warm memo tables
    for key in first:
        assert again[key] == first[key], f"{key} differs on the second build"


def test_passes_give_the_same_output_after_the_graph_was_freed():
    # a freed graph's nodes leave the weak memo tables; the rebuilt graph starts cold
    first = run_passes(unrolled_lstm, 6)
    gc.collect()
    assert run_passes(unrolled_lstm, 6) == first


def test_simplify_in_threads_gives_the_one_thread_result():
    # each thread's rules ask its own rewriter how often a node is used (and record the
    # answers there): a rewrite running in another thread changes neither
    from concurrent.futures import ThreadPoolExecutor
    graphs = [[loss] + sd.grad(loss, params) for _, loss, params in
              (chain(40), unrolled_lstm(4), deep_mlp(30), chain(41))]
    want = [[digest(n) for n in sd.simplify(g)] for g in graphs]
    with ThreadPoolExecutor(4) as pool:
        for _ in range(3):
            got = list(pool.map(lambda g: [digest(n) for n in sd.simplify(g)], graphs))
            assert got == want
