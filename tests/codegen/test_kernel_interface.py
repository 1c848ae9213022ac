"""The numba kernel has the numpy backend's interface and checks, never crashes on bad input,
and keeps its source, cache and stats inspectable."""
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import pytest

import symdiff as sd


@pytest.fixture(scope="module")
def mlp():
    x = sd.var("x", ("batch", 4))
    y = sd.var("y", ("batch",), dtype="int64")
    W, b = sd.param("W", (4, 3)), sd.param("b", (3,))
    loss = sd.mean(sd.softmax_cross_entropy(x @ W + b, y))
    gW, gb = sd.grad(loss, [W, b])
    f = sd.compile([x, y, W, b], [loss, gW, gb])
    ref = sd.compile([x, y, W, b], [loss, gW, gb], backend="numpy")
    rng = np.random.default_rng(0)
    args = [rng.standard_normal((8, 4)), rng.integers(0, 3, 8), rng.standard_normal((4, 3)),
            rng.standard_normal(3)]
    return f, ref, args, (x, y, W, b, loss, gW, gb)


def test_same_errors_as_the_numpy_backend(mlp):
    f, ref, args, _ = mlp
    cases = [args[:2], [args[0].astype(np.complex128)] + args[1:], [args[0][:, :3]] + args[1:],
             [args[0], args[1][:5]] + args[2:], [args[0], args[1].astype(float)] + args[2:]]
    for bad in cases:
        with pytest.raises(sd.ArgumentError) as e1:
            f(*bad)
        with pytest.raises(sd.ArgumentError) as e2:
            ref(*bad)
        assert str(e1.value) == str(e2.value)


def test_label_out_of_range_is_an_error_not_a_crash(mlp):
    f, _, args, _ = mlp
    for label in (3, -1, 10 ** 9):
        y = args[1].copy()
        y[5] = label
        with pytest.raises(sd.ArgumentError, match="out of range"):
            f(args[0], y, *args[2:])


def test_non_contiguous_inputs_and_zero_size_batches(mlp):
    f, ref, args, _ = mlp
    X = np.asfortranarray(args[0])
    W = np.ascontiguousarray(args[2].T).T          # a transposed view
    for a, b in zip(f(X, args[1], W, args[3]), ref(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    loss, gW, gb = f(np.ones((0, 4)), np.zeros(0, np.int64), args[2], args[3])
    assert np.isnan(loss) and not gW.any() and gb.shape == (3,)


def test_out_buffers_are_filled_and_returned(mlp):
    f, ref, args, _ = mlp
    outs = [np.empty(()), np.empty((4, 3)), np.empty(3)]
    res = f(*args, out=outs)
    assert all(r is o for r, o in zip(res, outs))
    for a, b in zip(outs, ref(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    with pytest.raises(sd.ArgumentError, match=r"out\[1\] must be"):
        f(*args, out=[outs[0], np.empty((3, 4)), outs[2]])


def test_updates_in_place_and_held_state(mlp):
    _, _, args, (x, y, W, b, loss, gW, gb) = mlp
    Wv, bv = args[2].copy(), args[3].copy()
    step = sd.compile([x, y, W, b], loss, updates={W: W - 0.5 * gW, b: b - 0.5 * gb})
    ref = sd.compile([x, y, W, b], loss, updates={W: W - 0.5 * gW, b: b - 0.5 * gb},
                     backend="numpy")
    Wr, br = Wv.copy(), bv.copy()
    for _ in range(3):
        np.testing.assert_allclose(step(args[0], args[1], Wv, bv), ref(args[0], args[1], Wr, br),
                                   rtol=1e-12)
    np.testing.assert_allclose(Wv, Wr, rtol=1e-12)
    held = {W: np.zeros((4, 3)), b: np.zeros(3)}
    train = sd.compile([x, y], loss, updates={W: W - 0.5 * gW, b: b - 0.5 * gb}, state=held)
    losses = [float(train(args[0], args[1])) for _ in range(20)]
    assert losses[-1] < losses[0] and train.state[W] is held[W] and held[W].any()
    with pytest.raises(sd.ArgumentError, match="updated in place"):
        step(args[0], args[1], Wv.astype(np.float32), bv)


def test_float32_stays_float32_end_to_end():
    x = sd.var("x", ("n", 5), "float32")
    w = sd.param("w", (5,), "float32")
    y = sd.sigmoid(x @ w) * 0.5 + sd.tanh(x).sum(axis=1)
    outs = [y] + [sd.grad(sd.sum(y), w)]
    f = sd.compile([x, w], outs)
    X, wv = np.ones((3, 5), np.float32), np.full(5, 0.1, np.float32)
    assert all(o.dtype == np.float32 for o in f(X, wv))
    assert "np.float64" not in f.source.split("def kernel")[1]


def test_source_stats_and_debug_print(mlp, cache_dir):
    f, _, args, _ = mlp
    assert "@numba.njit(cache=True, nogil=True, error_model='numpy'" in f.source
    assert "gemm_mm(" in f.source                       # the shared BLAS helper
    path = os.path.join(cache_dir, f.key, "kernel.py")
    assert open(path).read() == f.source                 # the source is a real file
    f(*args)
    st = f.stats
    assert st["gemms"] == 2 and st["peak_intermediate_bytes"] > 0
    assert f.peak_bytes(batch=1000) > f.peak_bytes(batch=10)
    code = textwrap.dedent("""
        import symdiff as sd
        x = sd.var("x", (3,))
        sd.compile([x], sd.exp(x) * 2)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ, "SYMDIFF_DEBUG": "1"})
    assert out.returncode == 0, out.stderr
    assert "def kernel(" in out.stderr and "exp_f64" in out.stderr


def test_every_module_a_kernel_calls_is_in_the_cache_key():
    """A kernel imports its functions from jit.py, which wraps those of the codegen modules
    it imports: an edit of any of them must change the key (Numba's own cache would not see
    it). Read from jit.py's imports, so a new helper module cannot be forgotten."""
    import ast

    from symdiff.codegen import cache_key, jit
    tree = ast.parse(open(jit.__file__).read())
    called = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
              and n.module == "symdiff.codegen" for a in n.names} - {"cache_key"}
    assert called and {f"{m}.py" for m in called} | {"jit.py"} <= set(cache_key.KERNEL_LIBRARY)


def test_compiling_the_same_graph_twice_reuses_the_kernel(mlp):
    from symdiff.codegen import jit
    f, _, _, (x, y, W, b, loss, gW, gb) = mlp
    before = dict(jit.STATS)
    g = sd.compile([x, y, W, b], [loss, gW, gb])
    assert g._fn is f._fn and jit.STATS["reused"] == before["reused"] + 1


def test_options_parallel_and_libm_give_the_same_values(mlp):
    _, ref, args, (x, y, W, b, loss, gW, gb) = mlp
    want = ref(*args)
    for opts in ({"parallel": True}, {"math": "libm"}, {"fastmath": False}):
        f = sd.compile([x, y, W, b], [loss, gW, gb], **opts)
        for a, w in zip(f(*args), want):
            np.testing.assert_allclose(a, w, rtol=1e-12)
    with pytest.raises(ValueError, match="math must be"):
        sd.compile([x, y, W, b], loss, math="svml")


def test_kernels_release_the_gil_and_are_thread_safe(mlp):
    f, ref, args, _ = mlp
    want = ref(*args)
    results = [None] * 4

    def work(k):
        results[k] = [f(*args) for _ in range(50)][-1]
    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for r in results:
        for a, w in zip(r, want):
            np.testing.assert_allclose(a, w, rtol=1e-12)


_CHILD = textwrap.dedent("""
    import json, time, symdiff as sd
    from symdiff.codegen import jit
    x = sd.var("x", ("n", 16)); W = sd.param("W", (16, 8))
    loss = sd.mean(sd.tanh(x @ W) ** 2)
    t = time.perf_counter()
    f = sd.compile([x, W], [loss] + [sd.grad(loss, W)])
    print(json.dumps({"stats": jit.STATS, "seconds": time.perf_counter() - t}))
""")


def _child(cache):
    out = subprocess.run([sys.executable, "-c", _CHILD], capture_output=True, text=True,
                         env={**os.environ, "SYMDIFF_CACHE_DIR": cache})
    assert out.returncode == 0, out.stderr
    import json
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_the_kernel_from_the_disk_cache(tmp_path):
    cold = _child(str(tmp_path))
    warm = _child(str(tmp_path))
    assert cold["stats"]["compiled"] == 1 and cold["stats"]["loaded"] == 0
    assert warm["stats"]["loaded"] == 1 and warm["stats"]["compiled"] == 0


def test_a_corrupted_cache_entry_is_rebuilt(tmp_path):
    _child(str(tmp_path))
    (entry,) = [p for p in tmp_path.iterdir() if p.is_dir()]
    for f in entry.rglob("*"):
        if f.is_file():
            f.write_bytes(b"\x00garbage\xff" * 10)      # source and Numba's cache files
    again = _child(str(tmp_path))
    assert again["stats"]["compiled"] == 1
    ok = _child(str(tmp_path))
    assert ok["stats"]["loaded"] == 1


def test_results_the_caller_keeps_are_never_overwritten(mlp):
    f, ref, args, _ = mlp
    first = f(*args)
    kept, view = first[1], first[2][:2]
    snapshot = [np.array(a) for a in first]
    del first
    other = [args[0] * 2, args[1], args[2] * 0.5, args[3]]
    second = f(*other)
    np.testing.assert_array_equal(kept, snapshot[1])       # held directly
    np.testing.assert_array_equal(view, snapshot[2][:2])   # held through a view
    for a, b in zip(second, ref(*other)):
        np.testing.assert_allclose(a, b, rtol=1e-12)
    assert second[1] is not kept


def test_out_buffers_overlapping_inputs_are_refused(mlp):
    f, _, args, _ = mlp
    W = args[2].copy()
    with pytest.raises(sd.ArgumentError, match=r"out\[1\] overlaps argument 'W'"):
        f(args[0], args[1], W, args[3], out=[np.empty(()), W, np.empty(3)])


def test_python_numbers_and_int32_labels_take_the_converting_path(mlp):
    f, ref, args, _ = mlp
    got = f(args[0].tolist(), args[1].astype(np.int32), args[2], args[3].tolist())
    for a, b in zip(got, ref(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_well_formed_calls_take_the_fast_path(mlp, monkeypatch):
    f, ref, args, _ = mlp
    f(*args)                                   # the first call builds the per-size plan
    slow = []
    monkeypatch.setattr(f, "_slow_call", lambda *a: slow.append(a))
    got = f(*args)
    assert not slow
    for a, b in zip(got, ref(*args)):
        np.testing.assert_allclose(a, b, rtol=1e-12)


def test_scratch_in_outputs_and_its_fallback_give_the_same_values():
    # activations borrow the weight-gradient outputs while those are unwritten; when the
    # batch outgrows them the kernel falls back to workspace memory
    x, y = sd.var("x", ("n", 6)), sd.var("y", ("n",), dtype="int64")
    W1, W2 = sd.param("W1", (6, 5)), sd.param("W2", (5, 3))
    loss = sd.mean(sd.softmax_cross_entropy(sd.tanh(x @ W1) @ W2, y))
    outs = [loss] + sd.grad(loss, [W1, W2])
    f = sd.compile([x, y, W1, W2], outs)
    ref = sd.compile([x, y, W1, W2], outs, backend="numpy")
    rng = np.random.default_rng(0)
    w1, w2 = rng.standard_normal((6, 5)), rng.standard_normal((5, 3))
    for n in (2, 50, 3):
        X, Y = rng.standard_normal((n, 6)), rng.integers(0, 3, n)
        for a, b in zip(f(X, Y, w1, w2), ref(X, Y, w1, w2)):
            np.testing.assert_allclose(a, b, rtol=1e-12)
    assert f.peak_bytes(n=2) < f.peak_bytes(n=50)


def _logreg_step(rate=0.5):
    x, y = sd.var("ex", ("batch", 3)), sd.var("ey", ("batch",))
    w = sd.param("ew", (3,))
    loss = sd.mean(sd.binary_cross_entropy_with_logits(x @ w, y))
    (g,) = sd.grad(loss, [w])
    params = {w: np.zeros(3)}
    return sd.compile([x, y], loss, updates={w: w - rate * g}, state=params), params, w


def test_epoch_checks_its_input_and_reuses_its_preparation_safely():
    step, params, w = _logreg_step()
    rng = np.random.default_rng(0)
    X, Y = rng.standard_normal((10, 3)), (rng.random(10) > 0.5).astype(float)
    with pytest.raises(sd.ArgumentError, match="order must be indices of the 10 rows"):
        step.epoch(X, Y, batch_size=4, order=np.array([0, 10]))
    with pytest.raises(sd.ArgumentError, match="batch_size must be a positive int"):
        step.epoch(X, Y, batch_size=0)
    with pytest.raises(sd.ArgumentError, match="expected 2 data arrays"):
        step.epoch(X, batch_size=4)
    with pytest.raises(sd.ArgumentError, match="expected dtype float64"):
        step.epoch(X.astype(np.complex128), Y, batch_size=4)
    # the second and third calls reuse the prepared buffers: new values must still be used
    order = rng.permutation(10)
    for data_seed in (1, 2, 3):
        r = np.random.default_rng(data_seed)
        X, Y = r.standard_normal((10, 3)), (r.random(10) > 0.5).astype(float)
        params[w][...] = 0.0
        record = step.epoch(X, Y, batch_size=4, order=order)      # batches of 4, 4 and 2
        start = params[w].copy()
        params[w][...] = 0.0
        losses = [float(step(X[order[s:s + 4]], Y[order[s:s + 4]])) for s in (0, 4, 8)]
        np.testing.assert_array_equal(record[:, 0], losses)
        np.testing.assert_array_equal(start, params[w])


def test_parallel_runs_rows_and_scalar_totals_in_prange():
    x, W = sd.var("px", ("batch", 16)), sd.param("pW", (16, 8))
    h = sd.tanh(x @ W)
    loss = sd.mean(sd.square(h - 0.5))                # row maps + a scalar total
    rng = np.random.default_rng(0)
    X, Wv = rng.standard_normal((300, 16)), rng.standard_normal((16, 8))
    f = sd.compile([x, W], [loss, h], parallel=True)
    assert "numba.prange" in f.source and "parallel=True" in f.source
    want = sd.evaluate([loss, h], {x: X, W: Wv})
    for a, b in zip(f(X, Wv), want):
        np.testing.assert_allclose(a, b, rtol=1e-12)
