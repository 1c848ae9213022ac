"""Jacobian strategies (forward, reverse, auto, optimal): agreement, plans, unit seeds, cost
model. All graph-level, through the NumPy interpreter; compiled kernels are in tests/codegen."""
import json

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import symdiff as sd
from symdiff import cost as cost_model
from symdiff.chain import cuts, layer_chain
from symdiff.ops import Op
from seed_models import SEED_MODELS, environment

MODES = ("forward", "reverse", "auto", "optimal")
ACTS = (sd.tanh, sd.sigmoid, sd.softplus, lambda t: t * t, sd.sin)


def tanh_chain(widths, rng, name="c"):
    x = sd.var(f"{name}x", (widths[0],))
    env, h = {x: rng.standard_normal(widths[0])}, x
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        W, bias = sd.param(f"{name}W{i}", (a, b)), sd.param(f"{name}b{i}", (b,))
        env[W], env[bias] = rng.standard_normal((a, b)) / np.sqrt(a), rng.standard_normal(b)
        h = sd.tanh(h @ W + bias)
    return h, x, env


def assert_same(a, b, rtol=1e-10):
    scale = max(1.0, float(np.max(np.abs(b), initial=0.0)))
    assert a.shape == b.shape
    assert float(np.max(np.abs(a - b), initial=0.0)) <= rtol * scale


def numeric_jacobian(y, x, env, eps=1e-6):
    x0 = np.array(env[x], dtype=float)
    cols = []
    for k in range(x0.size):
        d = np.zeros(x0.size)
        d[k] = eps
        hi = sd.evaluate(y, {**env, x: x0 + d.reshape(x0.shape)})
        lo = sd.evaluate(y, {**env, x: x0 - d.reshape(x0.shape)})
        cols.append((np.asarray(hi) - np.asarray(lo)).ravel() / (2 * eps))
    return np.stack(cols, -1).reshape(np.shape(sd.evaluate(y, env)) + x0.shape)


# --- agreement --------------------------------------------------------------------------------
@st.composite
def random_chains(draw):
    """A random layer chain: dense layers with an activation, elementwise-only layers, and
    optionally a skip connection (which makes the graph not a chain)."""
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=6))
    kinds = draw(st.lists(st.sampled_from(["dense", "act", "skip"]), min_size=len(widths) - 1,
                          max_size=len(widths) - 1))
    acts = draw(st.lists(st.integers(0, len(ACTS) - 1), min_size=len(kinds),
                         max_size=len(kinds)))
    return widths, kinds, acts, draw(st.integers(0, 2 ** 16))


def build_random(widths, kinds, acts, seed):
    rng = np.random.default_rng(seed)
    x = sd.var("rx", (widths[0],))
    env, h = {x: rng.standard_normal(widths[0])}, x
    for i, (kind, a) in enumerate(zip(kinds, acts)):
        width = h.shape[0]
        if kind == "act":
            h = ACTS[a](h) * 0.7
            continue
        W = sd.param(f"rW{i}", (width, widths[i + 1]))
        env[W] = rng.standard_normal(W.shape) / np.sqrt(width)
        out = ACTS[a](h @ W)
        if kind == "skip":        # h feeds the next layer twice: no cut at the layer output
            out = out + sd.sum(h) * 0.1
        h = out
    return h, x, env


@settings(max_examples=40, deadline=None)
@given(random_chains())
def test_all_strategies_give_the_same_jacobian_on_random_graphs(spec):
    y, x, env = build_random(*spec)
    ref = sd.evaluate(sd.jacobian(y, x, mode="reverse"), env)
    for mode in MODES:
        assert_same(sd.evaluate(sd.jacobian(y, x, mode=mode), env), ref)
    np.testing.assert_allclose(ref, numeric_jacobian(y, x, env), rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("model", sorted(SEED_MODELS))
def test_all_strategies_agree_on_the_seed_models(model):
    # the Jacobian of each parameter's gradient (its Hessian block) and of the loss itself
    loss, params, _, data = SEED_MODELS[model](8)
    env = environment(params, data, batch=8)
    for p in params:
        g = sd.grad(loss, p)
        ref = sd.evaluate(sd.jacobian(g, p, mode="reverse"), env)
        for mode in MODES:
            assert_same(sd.evaluate(sd.jacobian(g, p, mode=mode), env), ref)
            assert_same(sd.evaluate(sd.jacobian(loss, p, mode=mode), env),
                        sd.evaluate(g, env))


def test_mixed_plan_matches_finite_differences():
    y, x, env = tanh_chain([40, 40, 2, 40, 40], np.random.default_rng(1))
    plan = sd.plan_jacobian(y, x, "optimal")
    assert plan.tree[0] not in ("fwd", "rev")             # a mixed-mode graph
    np.testing.assert_allclose(sd.evaluate(plan.graph, env), numeric_jacobian(y, x, env),
                               rtol=1e-6, atol=1e-8)


# --- plans ------------------------------------------------------------------------------------
def test_optimal_plan_of_the_narrow_chain_is_the_mixed_plan():
    y, x, _ = tanh_chain([500, 500, 20, 500, 500], np.random.default_rng(0))
    plan = sd.plan_jacobian(y, x, "optimal")
    # adjoint sweeps through the first two layers, tangent sweeps through the last two, one
    # product: J = (J4 J3) (J2 J1)
    assert plan.tree == ("mul", ("fwd", 3, 4), ("rev", 1, 2))
    assert plan.bracketing == "(J4 J3) fwd x20 | (J2 J1) rev x20"
    assert plan.widths == (500, 500, 20, 500, 500)
    pure = [sd.plan_jacobian(y, x, m) for m in ("forward", "reverse")]
    assert min(p.cost.madds for p in pure) > 4 * plan.cost.madds
    assert sd.plan_jacobian(y, x, "auto").tree == plan.tree


@pytest.mark.parametrize("n,m,mode", [(10, 1000, "forward"), (1000, 10, "reverse")])
def test_auto_picks_the_mode_with_fewer_sweeps(n, m, mode):
    y, x, _ = tanh_chain([n, 64, 64, m], np.random.default_rng(0))
    auto, pure = sd.plan_jacobian(y, x, "auto"), sd.plan_jacobian(y, x, mode)
    assert auto.strategy == mode and auto.tree == pure.tree
    # the bracketing can only match or beat the better pure mode
    assert sd.plan_jacobian(y, x, "optimal").predicted <= pure.predicted * 1.001


def test_not_a_chain_falls_back_and_says_so():
    x, A, B = sd.var("x", (6,)), sd.param("A", (6, 3)), sd.param("B", (6, 3))
    y = sd.tanh(x @ A) * (x @ B)            # x reaches y along two paths, no cut between
    plan = sd.plan_jacobian(y, x, "optimal")
    assert plan.strategy in ("forward", "reverse") and "not a chain" in plan.description
    assert layer_chain(y, x) == [x, y]


def test_cuts_of_an_mlp_and_its_layer_chain():
    y, x, _ = tanh_chain([4, 5, 3], np.random.default_rng(0))
    # x, x@W0, +b0, tanh, @W1, +b1, tanh: every node is a cut; one per layer is kept
    assert len(cuts(y, x)) == 7
    assert [v.shape for v in layer_chain(y, x)] == [(4,), (5,), (3,)]
    assert cuts(y, sd.var("unrelated", (2,))) == []


def test_bad_modes_and_symbolic_shapes_are_clear_errors():
    x = sd.var("x", (3,))
    with pytest.raises(ValueError, match="mode must be one of"):
        sd.jacobian(sd.tanh(x), x, mode="sideways")
    xb = sd.var("xb", (None, 3))
    with pytest.raises(sd.ShapeError, match="input `xb` has symbolic shape"):
        sd.jacobian(sd.tanh(xb), xb, mode="optimal")
    with pytest.raises(ValueError, match="hessian: mode must be one of"):
        sd.hessian(sd.sum(x), x, mode="sideways")


def test_disconnected_jacobian_is_exact_zeros_in_every_mode():
    x, z = sd.var("x", (3,)), sd.var("z", (2,))
    for mode in MODES:
        J = sd.evaluate(sd.jacobian(sd.tanh(z), x, mode=mode), {z: np.ones(2)})
        assert J.shape == (2, 3) and not J.any()


# --- unit seeds, structurally -----------------------------------------------------------------
def _matmuls_against_constants(graph):
    return [n for n in sd.toposort([graph]) if n.op is Op.MATMUL and
            any(_is_const(s) for s in n.src)]


def _is_const(n):
    while n.op in (Op.RESHAPE, Op.TRANSPOSE, Op.BROADCAST_TO):
        n = n.src[0]
    return n.op is Op.CONST


@pytest.mark.parametrize("mode", ["forward", "reverse"])
def test_unit_seeds_cost_no_products(mode):
    x, W1, W2 = sd.var("x", (7,)), sd.param("W1", (7, 5)), sd.param("W2", (5, 3))
    J = sd.jacobian(sd.tanh(x @ W1) @ W2, x, mode=mode)
    for graph in (J, sd.simplify(J)):
        assert _matmuls_against_constants(graph) == []
        # the diagonal elemental Jacobian of tanh stays a row scaling: no dense n x n constant
        assert not [n for n in sd.toposort([graph]) if n.op is Op.CONST and n.ndim >= 2]
    assert sd.count_ops(sd.simplify(J)) <= 8


def test_unit_seed_through_elementwise_ops_before_a_matmul():
    x, A = sd.var("x", (4,)), sd.param("A", (3, 4))
    rng = np.random.default_rng(0)
    y = sd.tanh(A @ (-sd.sigmoid(x) * 3))
    env = {x: rng.standard_normal(4), A: 0.3 * rng.standard_normal((3, 4))}
    for mode in ("forward", "reverse"):
        J = sd.jacobian(y, x, mode=mode)
        assert _matmuls_against_constants(J) == []
        np.testing.assert_allclose(sd.evaluate(J, env), numeric_jacobian(y, x, env), rtol=1e-6,
                                   atol=1e-9)


# --- second order -----------------------------------------------------------------------------
HESSIAN_MODES = ["forward", "reverse", "reverse-over-forward", "forward-over-forward"]


def test_every_hessian_and_hvp_mode_agrees_and_matches_finite_differences():
    y, x, env = tanh_chain([5, 4, 3], np.random.default_rng(2))
    s = sd.sum(y * y) * 0.5
    g = sd.grad(s, x)
    fd = numeric_jacobian(g, x, env)
    v = np.random.default_rng(3).standard_normal(5)
    for mode in HESSIAN_MODES:
        H = sd.evaluate(sd.hessian(s, x, mode), env)
        np.testing.assert_allclose(H, fd, rtol=1e-6, atol=1e-8)
        np.testing.assert_allclose(H, H.T, rtol=1e-12, atol=1e-14)
    for mode in ("forward", "reverse", "reverse-over-forward"):
        np.testing.assert_allclose(sd.evaluate(sd.hvp(s, x, v, mode), env), fd @ v,
                                   rtol=1e-6, atol=1e-8)


# --- the cost model ---------------------------------------------------------------------------
def test_cost_counts_of_a_layer():
    x, W = sd.var("x", ("batch", 64)), sd.param("W", (64, 10))
    c = sd.graph_cost(sd.tanh(x @ W + 1.0), sizes={"batch": 32})
    assert (c.blas, c.loop, c.trans, c.nodes) == (32 * 10 * 64, 2 * 320, 320, 3)
    assert c.peak == 2 * 320 * 8                     # x @ W and its + 1 alive, then tanh
    assert sd.graph_cost(sd.tanh(x @ W)).blas == 128 * 10 * 64   # unbound dims count as 128


def test_cost_kept_bytes_of_reverse_mode():
    y, x, _ = tanh_chain([8, 6, 4], np.random.default_rng(0))
    plan = sd.plan_jacobian(y, x, "reverse")
    # reverse mode reads the two tanh outputs (6 + 4 float64) back from the forward pass
    assert plan.cost.kept == (6 + 4) * 8


def test_weights_are_calibrated_once_and_cached(tmp_path, monkeypatch):
    path = tmp_path / "weights.json"
    monkeypatch.setenv("SYMDIFF_COST_FILE", str(path))
    monkeypatch.setattr(cost_model, "_weights", None)
    w = cost_model.get_weights()
    assert path.exists() and set(w) == set(cost_model.DEFAULT_WEIGHTS)
    # measured on a busy machine, so only what holds under any load: the timings' order
    # (a BLAS flop cheapest) is checked with a deterministic clock below
    assert all(np.isfinite(v) and v > 0 for v in w.values())
    assert w["loop"] <= w["trans"]                       # trans is max(tanh - loop, loop)
    monkeypatch.setattr(cost_model, "_weights", None)
    assert cost_model.get_weights() == {k: json.loads(path.read_text())[k] for k in w}
    monkeypatch.setenv("SYMDIFF_COST_WEIGHTS", "default")
    assert cost_model.get_weights() == cost_model.DEFAULT_WEIGHTS


def test_calibration_divides_each_best_time_by_its_work(monkeypatch):
    # a clock stub: GEMM 256^3 flops in 1.6e-3 s, a multiply of 2^16 in 6.5e-5 s, tanh in
    # 3.3e-4 s (this machine's order of magnitude), so the weights follow from the formulas
    best = iter([1.6e-3, 6.5e-5, 3.3e-4])
    monkeypatch.setattr(cost_model, "_best_time", lambda fn, repeat=15: next(best))
    monkeypatch.setattr(cost_model, "_weights", None)
    w = cost_model.calibrate(save=False)
    assert w["blas"] == pytest.approx(1.6e-3 / 256 ** 3)
    assert w["loop"] == pytest.approx(6.5e-5 / 2 ** 16)
    assert w["trans"] == pytest.approx((3.3e-4 - 6.5e-5) / 2 ** 16)   # tanh less its loop
    assert 0 < w["blas"] < w["loop"] <= w["trans"]


def test_corrupt_weights_file_is_recalibrated(tmp_path, monkeypatch):
    path = tmp_path / "weights.json"
    path.write_text("{not json")
    monkeypatch.setenv("SYMDIFF_COST_FILE", str(path))
    monkeypatch.setattr(cost_model, "_weights", None)
    assert cost_model.get_weights()["blas"] > 0
    assert json.loads(path.read_text())["blas"] > 0


# --- compare_modes (interpreted; the compiled table is tested in tests/codegen) ---------------
def test_compare_modes_table_with_the_numpy_backend():
    y, x, env = tanh_chain([40, 40, 2, 40, 40], np.random.default_rng(0))
    c = sd.compare_modes(y, x, env, backend="numpy", repeats=2)
    assert [r.strategy for r in c.rows] == list(MODES)
    assert all(r.max_abs_diff < 1e-12 for r in c.rows)
    plan = c.row("optimal").plan
    assert " | " in plan and "fwd" in plan                 # a mixed plan with a product
    text = str(c)
    assert "strategy" in text and plan in text and "max |diff| vs reverse" in text
    with pytest.raises(ValueError, match="no value in inputs for `cx`"):
        sd.compare_modes(y, x, {k: v for k, v in env.items() if k is not x}, backend="numpy")
    h = sd.compare_modes(sd.sum(y * y), x, env, what="hessian", backend="numpy", repeats=2)
    assert len(h.rows) == 4 and all(r.max_abs_diff < 1e-12 for r in h.rows)


# --- edge cases found in review --------------------------------------------------------------
def test_negated_unit_seeds_before_a_matmul():
    rng = np.random.default_rng(4)
    x, A, b, W = sd.var("x", (3,)), sd.param("A", (4, 3)), sd.param("b", (4,)), sd.param("W", (3, 4))
    env = {x: rng.standard_normal(3), A: rng.standard_normal((4, 3)), b: rng.standard_normal(4),
           W: rng.standard_normal((3, 4))}
    for y in (b - A @ x, (1.0 - x) @ A.T, (-x) @ W, -(x @ W)):
        for mode in MODES:
            np.testing.assert_allclose(sd.evaluate(sd.jacobian(y, x, mode), env),
                                       numeric_jacobian(y, x, env), rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("shape", [(1, 6), (4, 6), (2, 3, 6)])
def test_unit_seeds_of_batched_inputs_cost_no_products(shape):
    rng = np.random.default_rng(5)
    X, W1, W2 = sd.var("X", shape), sd.param("W1", (6, 5)), sd.param("W2", (5, 3))
    y = sd.tanh(X @ W1) @ W2
    env = {X: rng.standard_normal(shape), W1: rng.standard_normal((6, 5)),
           W2: rng.standard_normal((5, 3))}
    for mode in ("forward", "reverse"):
        J = sd.jacobian(y, X, mode)
        assert _matmuls_against_constants(J) == []
        np.testing.assert_allclose(sd.evaluate(J, env), numeric_jacobian(y, X, env),
                                   rtol=1e-6, atol=1e-8)


def test_plans_refuse_integer_inputs_and_outputs():
    k, W = sd.var("k", (3,), "int64"), sd.param("W", (3, 2))
    with pytest.raises(sd.DifferentiationError, match="input `k` has dtype int64"):
        sd.plan_jacobian(sd.tanh(sd.cast(k, "float64") @ W), k, "optimal")
    x = sd.var("x", (3,))
    with pytest.raises(sd.DifferentiationError, match="has dtype int64"):
        sd.plan_jacobian(sd.cast(sd.tanh(x @ W) * 10, "int64"), x, "optimal")
    with pytest.raises(TypeError, match="compare one input at a time"):
        sd.compare_modes(sd.tanh(x @ W), [x, W], {x: np.ones(3), W: np.ones((3, 2))})


def test_auto_builds_no_hopeless_mode():
    x = sd.var("x", (6000,))
    plan = sd.plan_jacobian(sd.sum(sd.tanh(x) * x), x, "auto")
    assert plan.strategy == "reverse" and "forward not built" in plan.note


def test_hessian_auto_and_hvp_direction_shape():
    x = sd.var("x", (3,))
    y = sd.sum(sd.tanh(x) ** 3)
    env = {x: np.array([0.3, -0.2, 0.9])}
    np.testing.assert_allclose(sd.evaluate(sd.hessian(y, x, "auto"), env),
                               sd.evaluate(sd.hessian(y, x, "reverse"), env), rtol=1e-12)
    with pytest.raises(sd.ShapeError, match="direction v of shape \\(3, 3\\) for `x`"):
        sd.hvp(y, x, np.ones((3, 3)))
