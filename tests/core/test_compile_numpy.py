"""The NumPy backend: call-time checks, symbolic dims bound across arguments, updates, state."""
import numpy as np
import pytest

import symdiff as sd


def _mlp():
    x = sd.var("x", ("batch", 4))
    y = sd.var("y", ("batch",), dtype="int64")
    W = sd.param("W", (4, 3))
    b = sd.param("b", (3,))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))
    return x, y, W, b, loss


def test_argument_count_names_the_inputs():
    x, y, W, b, loss = _mlp()
    f = sd.compile([x, y, W, b], loss, backend="numpy")
    with pytest.raises(sd.ArgumentError, match=r"expected 4 arguments \(x, y, W, b\), got 2"):
        f(np.ones((2, 4)), np.zeros(2, int))


def test_shape_errors_name_argument_and_shapes():
    x, y, W, b, loss = _mlp()
    f = sd.compile([x, y, W, b], loss, backend="numpy")
    args = [np.ones((2, 4)), np.zeros(2, int), np.ones((4, 3)), np.ones(3)]
    bad = list(args)
    bad[2] = np.ones((4, 2))
    with pytest.raises(sd.ArgumentError, match=r"argument 'W' \(position 2\): expected shape \(4, 3\), got \(4, 2\)"):
        f(*bad)
    bad = list(args)
    bad[0] = np.ones(4)
    with pytest.raises(sd.ArgumentError, match=r"'x'.*expected a 2-d array"):
        f(*bad)


def test_symbolic_dim_mismatch_names_both_arguments_and_sizes():
    x, y, W, b, loss = _mlp()
    f = sd.compile([x, y, W, b], loss, backend="numpy")
    with pytest.raises(sd.ArgumentError) as e:
        f(np.ones((5, 4)), np.zeros(3, int), np.ones((4, 3)), np.ones(3))
    msg = str(e.value)
    assert "'x'" in msg and "'y'" in msg and "5" in msg and "3" in msg


def test_anonymous_dims_are_unified_by_ops():
    x = sd.var("x", (None, 3))
    t = sd.var("t", (None, 3))
    f = sd.compile([x, t], sd.mse(x, t), backend="numpy")
    assert np.isclose(f(np.ones((4, 3)), np.zeros((4, 3))), 1.0)
    with pytest.raises(sd.ArgumentError, match="size mismatch"):
        f(np.ones((4, 3)), np.zeros((2, 3)))


def test_symbolic_dim_pinned_by_broadcast():
    x = sd.var("x", (None,))
    f = sd.compile([x], x + sd.const(np.arange(5.0)), backend="numpy")
    assert f(np.ones(5)).shape == (5,)
    with pytest.raises(sd.ArgumentError, match="must be 5"):
        f(np.ones(3))


def test_dtype_errors_and_safe_casts():
    x32 = sd.var("x", (3,), dtype="float32")
    f = sd.compile([x32], x32 * 2, backend="numpy")
    assert f(np.ones(3, np.float32)).dtype == np.float32
    assert f([1, 2, 3]).dtype == np.float32                 # python numbers convert
    with pytest.raises(sd.ArgumentError, match=r"'x'.*expected dtype float32, got float64"):
        f(np.ones(3))
    i = sd.var("i", (3,), dtype="int64")
    g = sd.compile([i], i * 2, backend="numpy")
    assert g(np.arange(3, dtype=np.int32)).dtype == np.int64  # safe cast
    with pytest.raises(sd.ArgumentError, match="expected dtype int64, got float64"):
        g(np.ones(3))


def test_zero_size_batch():
    x, y, W, b, loss = _mlp()
    gW = sd.grad(sd.sum(sd.softmax_cross_entropy(x @ W + b, y)), W)
    f = sd.compile([x, y, W, b], [gW, sd.max(x @ W, axis=-1)], backend="numpy")
    g, m = f(np.ones((0, 4)), np.zeros(0, int), np.ones((4, 3)), np.ones(3))
    assert g.shape == (4, 3) and np.all(g == 0) and m.shape == (0,)


def test_updates_write_inputs_in_place_after_outputs():
    x, y, W, b, loss = _mlp()
    gW, gb = sd.grad(loss, [W, b])
    f = sd.compile([x, y, W, b], [loss, gW], updates={W: W - 0.5 * gW, b: b - 0.5 * gb},
                   backend="numpy")
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((6, 4)), rng.integers(0, 3, 6)
    Wv, bv = rng.standard_normal((4, 3)), np.zeros(3)
    W0 = Wv.copy()
    ref = sd.compile([x, y, W, b], [loss, gW], backend="numpy")
    l_ref, g_ref = ref(X, Y, W0, bv.copy())
    l, g = f(X, Y, Wv, bv)
    assert np.allclose(l, l_ref) and np.allclose(g, g_ref)   # outputs use the old values
    assert np.allclose(Wv, W0 - 0.5 * g_ref)                 # the caller's array was updated
    with pytest.raises(sd.ArgumentError, match="updated in place"):
        f(X, Y, Wv.astype(np.float32), bv)


def test_state_holds_params_that_are_not_inputs():
    x, y, W, b, loss = _mlp()
    gW, gb = sd.grad(loss, [W, b])
    Wv, bv = np.zeros((4, 3)), np.zeros(3)
    step = sd.compile([x, y], loss, updates={W: W - 1.0 * gW, b: b - 1.0 * gb},
                      state={W: Wv, b: bv}, backend="numpy")
    rng = np.random.default_rng(1)
    X, Y = rng.standard_normal((20, 4)), rng.integers(0, 3, 20)
    losses = [float(step(X, Y)) for _ in range(20)]
    assert losses[-1] < losses[0]
    assert step.state[W] is Wv and np.any(Wv != 0)           # updated in place, no copy


def test_missing_input_and_bad_update_are_compile_errors():
    x, y, W, b, loss = _mlp()
    with pytest.raises(ValueError, match="the outputs read `W`, `b`, which is neither an input"):
        sd.compile([x, y], loss, backend="numpy")
    with pytest.raises(sd.ShapeError, match="update of `b` has shape"):
        sd.compile([x, y, W, b], loss, updates={b: W}, backend="numpy")
    with pytest.raises(TypeError, match=r"inputs\[0\] is `x @ W`"):
        sd.compile([x @ W], loss, backend="numpy")


def test_out_buffers_receive_results():
    x = sd.var("x", (3,))
    f = sd.compile([x], [x * 2, sd.sum(x)], backend="numpy")
    o1, o2 = np.empty(3), np.empty(())
    r = f(np.arange(3.0), out=[o1, o2])
    assert r[0] is o1 and np.array_equal(o1, [0, 2, 4]) and float(o2) == 3.0
    with pytest.raises(sd.ArgumentError, match=r"out\[0\] must be a float64 array of shape \(3,\)"):
        f(np.arange(3.0), out=[np.empty(2), o2])


def test_output_structure_is_preserved():
    x = sd.var("x", (2,))
    f = sd.compile([x], (x, [sd.sum(x)]), backend="numpy")
    r = f(np.ones(2))
    assert isinstance(r, tuple) and isinstance(r[1], list)


@pytest.mark.parametrize("value", [np.zeros(3, np.float32), np.zeros(6)[::2],
                                   np.zeros(3).copy()])
def test_updated_state_that_would_be_copied_is_refused(value):
    """An updated state array that compile would have to copy (another dtype, a strided
    view, read-only) is refused: the updates would go to the copy and the caller's array
    would silently stay as it was. Python lists and scalars are converted (no caller array)."""
    w = sd.param("w", (3,))
    loss = sd.sum(w * w)
    upd = {w: w - 0.1 * sd.grad(loss, w)}
    if value.flags.c_contiguous and value.dtype == np.float64:
        value.setflags(write=False)
    with pytest.raises(sd.ArgumentError, match=r"state\['w'\] is updated in place"):
        sd.compile([], loss, updates=upd, state={w: value}, backend="numpy")
    f = sd.compile([], loss, updates=upd, state={w: [1.0, 2.0, 3.0]}, backend="numpy")
    f()
    np.testing.assert_allclose(f.state[w], [0.8, 1.6, 2.4])
