"""Jacobian strategies compiled by the numba backend: every strategy's kernel equals the
interpreter, compare_modes measures real kernels, and the `symdiff compare` command runs."""
import numpy as np
import pytest

import symdiff as sd
from symdiff.models.cli import main
from symdiff.models.compare_cli import crossover

from test_kernels import RTOL32, RTOL64, assert_kernel_matches

MODES = ("forward", "reverse", "auto", "optimal")


def chain(widths, dtype, rng):
    x = sd.var("kx", (widths[0],), dtype)
    env, h = {x: rng.standard_normal(widths[0]).astype(dtype)}, x
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        W, bias = sd.param(f"kW{i}", (a, b), dtype), sd.param(f"kb{i}", (b,), dtype)
        env[W] = (rng.standard_normal((a, b)) / np.sqrt(a)).astype(dtype)
        env[bias] = (0.1 * rng.standard_normal(b)).astype(dtype)
        h = sd.tanh(h @ W + bias)
    return h, x, env


@pytest.mark.parametrize("dtype,rtol", [("float64", RTOL64), ("float32", RTOL32)])
def test_every_strategy_compiles_to_the_interpreters_jacobian(dtype, rtol):
    y, x, env = chain([60, 60, 3, 60, 60], dtype, np.random.default_rng(0))
    plans = {m: sd.plan_jacobian(y, x, m) for m in MODES}
    assert " | " in plans["optimal"].bracketing          # the mixed plan is among them
    outs = [plans[m].graph for m in MODES]
    args = list(env)
    f = sd.compile(args, outs)                           # one kernel, four Jacobians
    assert_kernel_matches(f, outs, env, args, rtol)
    got = f(*[env[a] for a in args])
    for J in got[1:]:
        np.testing.assert_allclose(J, got[0], rtol=10 * rtol, atol=10 * rtol)


def test_non_chain_and_matrix_inputs_compile_in_every_mode():
    rng = np.random.default_rng(1)
    X, A = sd.var("mX", (3, 4)), sd.param("mA", (4, 5))
    y = sd.tanh(X @ A) * sd.sum(X, -1, keepdims=True)       # X reaches y along two paths
    env = {X: rng.standard_normal((3, 4)), A: rng.standard_normal((4, 5))}
    outs = [sd.jacobian(y, X, mode=m) for m in MODES]
    f = sd.compile([X, A], outs)
    assert_kernel_matches(f, outs, env, [X, A], RTOL64)


def test_compare_modes_runs_real_kernels():
    y, x, env = chain([40, 40, 2, 40, 40], "float64", np.random.default_rng(2))
    c = sd.compare_modes(y, x, env, repeats=3)
    assert [r.strategy for r in c.rows] == list(MODES)
    for r in c.rows:
        assert r.max_abs_diff < 1e-12 and r.run_s > 0 and r.compile_s >= 0 and r.nodes > 0
        assert r.madds > 0 and r.memory > 0 and r.predicted > 0
    assert c.row("auto").plan.startswith("= ")
    twin = c.row(c.row("auto").plan.split(":")[0][2:])       # the same kernel: one time
    assert twin.strategy != "auto" and c.row("auto").run_s == twin.run_s
    hv = sd.compare_modes(0.5 * sd.sum(y * y), x, env, what="hvp", v=np.ones(40), repeats=2)
    assert [r.strategy for r in hv.rows] == ["forward-over-reverse", "reverse-over-reverse",
                                             "reverse-over-forward"]
    assert all(r.max_abs_diff < 1e-12 for r in hv.rows)


def test_symdiff_compare_command(capsys):
    assert main(["compare", "40-40-2-40-40", "--repeats", "2"]) == 0
    text = capsys.readouterr().out
    assert "40 inputs -> 40 outputs" in text
    for strategy in MODES:
        assert f"\n{strategy} " in text
    assert main(["compare", "logreg", "--hessian", "--repeats", "2"]) == 0
    text = capsys.readouterr().out
    assert "hessian of" in text and "reverse-over-forward" in text
    with pytest.raises(SystemExit, match="unknown spec"):
        main(["compare", "banana"])


def test_symdiff_compare_sweep_plot(tmp_path, capsys):
    path = tmp_path / "sweep.png"
    assert main(["compare", "net", "--in", "8", "--out", "8", "--hidden", "16", "--layers", "2",
                 "--repeats", "3", "--plot", str(path), "--points", "3"]) == 0
    assert path.stat().st_size > 10_000
    assert "sweep plot written to" in capsys.readouterr().out


def test_crossover_interpolates_in_log_space():
    assert crossover([0.1, 1, 10], [1, 2, 4], [4, 2, 1]) == 1
    assert abs(crossover([1, 100], [1, 4], [2, 2]) - 10) < 1e-9     # log ratio 0 halfway
    assert crossover([1, 10], [1, 1], [2, 2]) is None


def test_batched_unit_seeds_and_negated_seeds_compile():
    rng = np.random.default_rng(3)
    X, W1, W2 = sd.var("bX", (4, 6)), sd.param("bW1", (6, 5)), sd.param("bW2", (5, 3))
    b = sd.param("bb", (4, 3))
    y = b - sd.tanh(X @ W1) @ W2
    env = {X: rng.standard_normal((4, 6)), W1: rng.standard_normal((6, 5)),
           W2: rng.standard_normal((5, 3)), b: rng.standard_normal((4, 3))}
    outs = [sd.jacobian(y, X, mode=m) for m in MODES]
    f = sd.compile(list(env), outs)
    assert_kernel_matches(f, outs, env, list(env), RTOL64)
