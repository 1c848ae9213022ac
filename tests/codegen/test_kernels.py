"""Every kernel equals the NumPy interpreter on the same graph: every primitive and composite
(forward and gradient), the seed models in float64 and float32, random graphs."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import symdiff as sd
from seed_models import SEED_MODELS, environment

import test_derivatives as table

RTOL64 = 1e-12      # float64: the math library is within 5e-16 relative per call
RTOL32 = 2e-5       # float32: a few ulp (2.5e-7) per op accumulated over a loss + gradient


def assert_kernel_matches(f, outs, env, args, rtol):
    got = f(*[env[a] for a in args])
    got = got if isinstance(got, (list, tuple)) else [got]
    want = sd.evaluate(outs, env)
    for k, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == b.dtype and a.shape == b.shape, (k, a.dtype, b.dtype, a.shape, b.shape)
        # normwise: an element of a gradient is a sum of terms as large as the array's largest
        # elements that may cancel (sum_keepdims: terms of 30 summing to 0.3), so its rounding
        # error scales with those, not with its own size
        scale = max(1.0, float(np.abs(b).max(initial=0.0)))
        np.testing.assert_array_less(np.abs(a - b) / scale, rtol, err_msg=f"output {k}")


def _group(names):
    args, outs, env = [], [], {}
    for name in names:
        build, inputs, _ = table.CASES[name]
        xs = [sd.var(f"{name}_x{i}", shape) for i, (shape, _) in enumerate(inputs)]
        env.update({x: domain(shape) for x, (shape, domain) in zip(xs, inputs)})
        y = build(*xs)
        outs += [y] + sd.grad(sd.sum(y * sd.sin(y)), xs)
        args += xs
    return args, outs, env


NAMES = sorted(table.CASES)


@pytest.mark.parametrize("part", range(16))
def test_every_primitive_and_composite_value_and_gradient(part):
    # sixteen kernels of ~6 cases each. Numba's compile time grows faster than the kernel:
    # 26 cases in one kernel (421 lines) compiled in 56 s, the same cases in 8 kernels in 25 s
    # and one by one in 27 s (this 2-core machine)
    args, outs, env = _group(NAMES[part::16])
    f = sd.compile(args, outs)
    assert_kernel_matches(f, outs, env, args, RTOL64)


@pytest.mark.parametrize("dtype,rtol", [("float64", RTOL64), ("float32", RTOL32)])
def test_seed_models_loss_and_gradients(dtype, rtol):
    args, outs, env = [], [], {}
    for k, build in enumerate(SEED_MODELS.values()):
        loss, params, _, data = build(f"batch{k}", dtype)
        env.update(environment(params, data, batch=16))
        outs += [loss] + sd.grad(loss, params)
        args += [v for v in params + data if v not in args]   # models may share a param
    f = sd.compile(args, outs)
    got = f(*[env[a] for a in args])
    assert all(o.dtype == dtype for o in got)          # float32 stays float32
    assert_kernel_matches(f, outs, env, args, rtol)


UNARY = [sd.tanh, sd.sigmoid, sd.softplus, sd.exp, sd.sin, lambda t: t * t, sd.relu,
         lambda t: sd.log1p(t * t), lambda t: sd.expm1(-t * t), sd.abs]


@settings(max_examples=12, deadline=None, derandomize=True)
@given(st.lists(st.tuples(st.integers(0, len(UNARY) - 1), st.integers(0, 6)), min_size=1,
                max_size=6), st.integers(0, 1000))
def test_random_graphs_kernel_equals_interpreter(program, seed):
    rng = np.random.default_rng(seed)
    x = sd.var("x", ("n", 6))
    W = sd.var("W", (6, 6))
    h, pool = x, [x]
    for u, move in program:
        h = UNARY[u](h)
        if move == 1:
            h = h @ W
        elif move == 2:
            h = sd.softmax(h)
        elif move == 3:
            h = h + sd.sum(h, axis=0, keepdims=True)
        elif move == 4:
            h = sd.reshape(sd.transpose(sd.reshape(h, ("n", 2, 3)), (0, 2, 1)), ("n", 6))
        elif move == 5:
            h = sd.maximum(h, sd.max(h, axis=-1, keepdims=True) * 0.5)
        pool.append(h)
    loss = sd.mean(h * h) + sd.sum(pool[len(pool) // 2])
    outs = [loss, h] + sd.grad(loss, [x, W])
    f = sd.compile([x, W], outs)
    env = {x: rng.standard_normal((5, 6)), W: rng.standard_normal((6, 6)) / 3}
    assert_kernel_matches(f, outs, env, [x, W], 1e-11)


def test_reduction_of_row_sums_is_initialized_and_repeatable():
    # regression: sum over the last axis of a (3, 4) row-sum used to join the (3, 4, 5) nest,
    # where that axis is an outer loop: it accumulated into an uninitialized workspace
    x, y = sd.var("rx", (3, 4, 5)), sd.var("ry", (3, 4))
    r = sd.sum(sd.sum(sd.exp(x), -1) * y, -1)
    f = sd.compile([x, y], [r])
    rng = np.random.default_rng(0)
    env = {x: rng.standard_normal((3, 4, 5)), y: rng.standard_normal((3, 4))}
    for _ in range(3):                              # the same answer on every call
        assert_kernel_matches(f, [r], env, [x, y], RTOL64)
