"""The tensor language through the Numba backend: every new primitive and composite, its
gradients, float32 and float64, symbolic dims, and index checks before memory is touched.
The oracle is the NumPy interpreter (itself checked against NumPy and finite differences in
tests/core), and PyTorch where installed."""
import numpy as np
import pytest

import symdiff as sd
from symdiff.errors import ArgumentError

R = np.random.default_rng(7)


def _outputs(m, v, idx):
    """Many tensor-language values of one matrix m (3, 4), a vector v (5,) and an index var."""
    return [
        m[1:, ::2] * 2, m[::-1, 3:0:-2] + 1, m[1, None, :] * m[..., -1, None],
        m[:, [3, 0, 3]] ** 2, m[[2, 0, 2], 1, None] + 0,
        sd.flip(m, 1) * m, sd.pad(m, ((1, 0), (0, 2))) + 1, sd.pad(v, (2, 1), constant_values=3.0),
        sd.concatenate([m, sd.exp(m[:1]), m[2:] * 3]) - 1, sd.stack([v, v * 2], axis=1) * 1,
        sd.cumsum(m, 1) * 1, sd.cumsum(m, 0) + 0, sd.cumsum(v) * 1,
        sd.argmax(m, 1), sd.argmax(m, 0), sd.argmin(v),
        sd.tril(m, 1) * 1, sd.triu(m) + 0, sd.diagonal(m, 1) * 1, sd.trace(m[:, :3]) * 1,
        sd.diag(v) + 0, sd.eye(3, 4, 1) * m, sd.iota((3, 4), 0) * 1,
        sd.take(m, np.array([[3, -1], [0, 0]]), axis=1) * 1, sd.take(v, idx) * 2,
        sd.take_along_axis(m, np.array([[3, 1], [0, 0], [2, 2]]), 1) * 1,
        sd.scatter_add(m, np.array([2, 0, 2]), m[:, :3] * 2, axis=1) * 1,
        sd.segment_sum(m, np.array([1, 1, 0]), 4) * 1, sd.scatter_add(v, idx, sd.exp(v[:4])),
        sd.einsum("ij,kj->ik", m, m) * 1, sd.einsum("ij,ij->", m, m) + 0,
        sd.einsum("i,j->ij", v, v[:2]) * 1, sd.tile(v, 2) * 1, sd.repeat(m, 2, axis=0) * 1,
    ]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_and_gradients_match_the_interpreter(dtype):
    m, v = sd.var("m", (3, 4), dtype), sd.var("v", (5,), dtype)
    idx = sd.var("idx", (4,), "int64")
    outs = _outputs(m, v, idx)
    floats = [o for o in outs if o.dtype == dtype]
    loss = sum(sd.sum(sd.sin(o)) for o in floats)
    grads = sd.grad(loss, [m, v])
    env = {m: R.standard_normal((3, 4)).astype(dtype), v: R.standard_normal(5).astype(dtype),
           idx: np.array([4, -5, 0, 4])}
    f = sd.compile([m, v, idx], outs + grads)
    got = f(env[m], env[v], env[idx])
    want = sd.evaluate(outs + grads, env)
    tol = dict(rtol=1e-12, atol=1e-12) if dtype == "float64" else dict(rtol=2e-5, atol=2e-5)
    for k, (g, w) in enumerate(zip(got, want)):
        assert g.shape == w.shape and g.dtype == w.dtype, k
        np.testing.assert_allclose(g, w, **tol, err_msg=f"output {k}")


def test_symbolic_dims_slices_gathers_scatters():
    x = sd.var("x", ("n", 3))
    ids = sd.var("ids", ("n",), "int64")
    table = sd.param("table", (5, 3))
    rows = sd.take(table, ids, axis=0)                      # (n, 3)
    y = sd.concatenate([x[:, :2] * rows[:, 1:], sd.cumsum(x, 1)], axis=1)
    loss = sd.sum(sd.tanh(y)) + sd.sum(sd.segment_sum(x, ids, 5) ** 2)
    g = sd.grad(loss, [table, x])
    f = sd.compile([x, ids, table], [loss] + g)
    for n in (1, 7, 64):
        env = {x: R.standard_normal((n, 3)), ids: R.integers(-5, 5, n),
               table: R.standard_normal((5, 3))}
        for got, want in zip(f(env[x], env[ids], env[table]), sd.evaluate([loss] + g, env)):
            np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
@pytest.mark.parametrize("bad", [5, -6, 10 ** 9, -10 ** 9])
def test_out_of_range_indices_raise_before_memory_is_touched(backend, bad):
    """10**9 would read or write far outside the 5-element table: the error (not a crash, not
    garbage) shows the kernel checks before it reads (take) and before it writes (scatter)."""
    table = sd.var("table", (5,))
    ids = sd.var("ids", (3,), "int64")
    read = sd.take(table, ids) * 2
    write = sd.scatter_add(table, ids, sd.const(np.ones(3)))
    for out, op in ((read, "take"), (write, "scatter_add")):
        f = sd.compile([table, ids], out, backend=backend)
        with pytest.raises(ArgumentError, match=op) as e:
            f(np.zeros(5), np.array([0, bad, 1]))
        assert str(bad) in str(e.value)
        np.testing.assert_allclose(f(np.arange(5.0), np.array([0, -1, 4]))[0],
                                   sd.evaluate(out, {table: np.arange(5.0),
                                                     ids: np.array([0, -1, 4])})[0])


def test_rosenbrock_gradient_in_both_modes():
    x = sd.var("x", (50,))
    r = sd.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2)
    g = sd.grad(r, x)
    xv = R.uniform(-2, 2, 50)
    ref = np.zeros(50)
    ref[:-1] = -400 * xv[:-1] * (xv[1:] - xv[:-1] ** 2) - 2 * (1 - xv[:-1])
    ref[1:] += 200 * (xv[1:] - xv[:-1] ** 2)
    f = sd.compile([x], [r, g])
    np.testing.assert_allclose(f(xv)[1], ref, rtol=1e-12)
    J = sd.jacobian(r, x, mode="forward")
    np.testing.assert_allclose(sd.evaluate(J, {x: xv}), ref, rtol=1e-12)
