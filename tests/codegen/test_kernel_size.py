"""Smaller kernels (issue 13 item 2): one code path per matmul (a shared, disk-cached helper),
shared subexpressions and index checks done once per loop body or row, single-use values
inlined, each stage tagged with its ``# node``; the helpers against NumPy."""
import re

import numpy as np
import pytest
from symdiff.codegen import helpers, jit
from symdiff.codegen.scope import Rows, Scope, inline_once, node_tag

import symdiff as sd


def _xor():
    x, y = sd.var("x", ("batch", 2)), sd.var("y", ("batch",))
    W, c = sd.param("W", (2, 2)), sd.param("c", (2,))
    w, b = sd.param("w", (2,)), sd.param("b")
    z = sd.sigmoid(x @ W + c) @ w + b
    loss = sd.mean(sd.binary_cross_entropy_with_logits(z, y))
    return [x, y, W, c, w, b], [loss] + sd.grad(loss, [W, c, w, b])


def _mlp(sizes=(784, 256, 256, 10)):
    x, y = sd.var("x", ("batch", sizes[0]), "float32"), sd.var("y", ("batch",), "int64")
    h, params = x, []
    for k, (m, n) in enumerate(zip(sizes[:-1], sizes[1:])):
        W, b = sd.param(f"W{k}", (m, n), "float32"), sd.param(f"b{k}", (n,), "float32")
        params += [W, b]
        h = h @ W + b
        h = sd.tanh(h) if k < len(sizes) - 2 else h
    loss = sd.mean(sd.softmax_cross_entropy(h, y))
    return [x, y] + params, [loss] + sd.grad(loss, params)


def _body(source):
    return source.split("def kernel(")[1]


def test_xor_kernel_is_half_its_former_size_with_one_path_per_matmul():
    f = sd.compile(*_xor())
    src = f.source
    assert src.count("\n") <= 47                     # 95 lines when issue 13 was filed
    body = _body(src)
    assert "np.dot(" not in body and "<= 4096" not in body and " else " not in body
    assert len(re.findall(r"\bgemm_m[mv]\(", body)) == 4        # one call per product
    assert len(re.findall(r"\((sc1\[i0\] \+ a5_v|a5_v \+ sc1\[i0\])\)", body)) == 1  # + b once
    assert "# sigmoid [batch, 2]" in body and "# matmul [batch, 2]" in body


def test_mlp_kernel_checks_each_label_once_per_row():
    f = sd.compile(*_mlp())
    body = _body(f.source)
    assert len(re.findall(r"if a1\[i0\] < 0 or a1\[i0\] >= 10: return 1", body)) == 1
    assert "np.dot(" not in body and "<= 4096" not in body
    assert f.source.count("\n") <= 80                # 133 lines when issue 13 was filed


def test_mlp_kernel_values_and_label_error_after_the_rewrite():
    ins, outs = _mlp((6, 5, 4, 3))
    f = sd.compile(ins, outs, wait=True)               # the Numba kernel, not the NumPy tier
    g = sd.compile(ins, outs, backend="numpy")
    rng = np.random.default_rng(0)
    vals = [rng.standard_normal((7, 6)).astype(np.float32), rng.integers(0, 3, 7)]
    vals += [rng.standard_normal(p.shape).astype(np.float32) for p in ins[2:]]
    for a, r in zip(f(*vals), g(*vals)):
        np.testing.assert_allclose(a, r, rtol=2e-5, atol=1e-6)
    bad = list(vals)
    bad[1] = np.array([0, 1, 3, 0, 1, 2, 0])
    with pytest.raises(sd.errors.ArgumentError, match="out of range"):
        f(*bad)


def test_fastmath_false_kernels_call_the_strict_helpers():
    ins, outs = _xor()
    f = sd.compile(ins, outs, fastmath=False, wait=True)
    assert "gemm_mm_strict(" in f.source and "sigmoid_f64_strict(" in f.source
    assert "sigmoid_f64(" not in f.source      # the math too: its copy without fast-math
    assert "gemm_mm(" not in f.source.replace("gemm_mm_strict(", "")
    rng = np.random.default_rng(1)
    vals = [rng.standard_normal((9, 2)), rng.integers(0, 2, 9).astype(float),
            rng.standard_normal((2, 2)), rng.standard_normal(2), rng.standard_normal(2),
            np.array(0.3)]
    ref = sd.compile(ins, outs, backend="numpy")(*vals)
    for a, r in zip(f(*vals), ref):
        np.testing.assert_allclose(a, r, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("m,k,n", [(3, 4, 5), (40, 30, 20), (1, 7, 1)])
@pytest.mark.parametrize("name", ["gemm_mm", "gemm_mm_strict"])
def test_gemm_helper_matches_numpy_below_and_above_the_blas_threshold(m, k, n, name):
    rng = np.random.default_rng(m * k * n)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n)).astype(np.float64)
    for A in (a, np.asfortranarray(a), rng.standard_normal((k, m)).T):    # C, F layouts
        c = np.full((m, n), np.nan)
        jit.HELPERS[name](A, b, c)
        np.testing.assert_allclose(c, A @ b, rtol=1e-12, atol=1e-12)


def test_vector_products_and_scratch_views():
    rng = np.random.default_rng(2)
    a, v, w = rng.standard_normal((5, 3)).astype(np.float32), rng.standard_normal(3), \
        rng.standard_normal(5)
    c = np.empty(5, np.float32)
    jit.gemm_mv(a, v.astype(np.float32), c)
    np.testing.assert_allclose(c, a @ v.astype(np.float32), rtol=1e-5)
    d = np.empty(3)
    jit.gemm_vm(w, a.astype(np.float64), d)
    np.testing.assert_allclose(d, w @ a, rtol=1e-12)
    e = np.empty(())
    jit.gemm_vv(v, v, e)
    assert abs(e[()] - v @ v) < 1e-12
    out, arena = np.zeros((2, 3)), np.zeros(10)
    jit.scratch(out, arena, 4, 6)[:] = 1.0             # fits: the output's memory
    jit.scratch(out, arena, 4, 5)[:] = 2.0
    assert out.sum() == 10 + 1 and arena.sum() == 0
    jit.scratch(out, arena, 4, 7)[:] = 3.0             # too small: the arena from 4
    assert arena[:4].sum() == 0 and arena[4:].sum() == 18
    assert helpers.SMALL_GEMM == 4096


def test_scope_forgets_values_after_a_store_and_keeps_checks_in_loops_of_unknown_length():
    s = Scope(Rows(), inner="i1", inputs={"a_y"}, extent="d1")
    assert s.value("(a[i0] + b)", "s1_0") == "s1_0"
    assert s.value("(K0 + K1)", "s1_1") == "s1_1"
    s.stored(["a[i0, i1] = s1_0"])
    assert s.value("(a[i0] + b)", "s2_0") == "s2_0"        # recomputed after the store
    assert s.value("(K0 + K1)", "s2_1") == "s1_1"          # reads no buffer: kept
    line = "if a_y[i0] < 0 or a_y[i0] >= 3: return 1"
    assert s.check(line) and not s.check(line) and s.hoisted == []   # d1 may be 0
    t = Scope(Rows(), inner="i1", inputs={"a_y"}, extent="3")
    assert t.check("if a_y[i1] < 0 or a_y[i1] >= 3: return 1")       # reads the inner index
    assert t.check("if w[i0] < 0 or w[i0] >= 3: return 1")           # not an input
    assert not t.check(line) and t.hoisted == [line]


def test_inline_once_stops_at_a_store_between_definition_and_use():
    lines = [["s1_0 = (a[i] + b)", ""], ["a[i] = K0", "t"], ["c[i] = s1_0", ""]]
    assert [x for x, _ in inline_once(lines)] == [x for x, _ in lines]
    twice = [["s1_0 = (a[i] + b)", ""], ["c[i] = (s1_0 * s1_0)", "n"]]
    assert inline_once(twice) == twice


def test_node_tags_name_updates_and_outputs():
    x = sd.var("x", ("batch", 3))
    assert node_tag(x) == "x [batch, 3]"
    assert node_tag(("out", 2)) == "out 2"
    assert node_tag(("update", x)) == "update x [batch, 3]"


def test_helpers_compile_without_a_disk_cache_when_numba_has_nowhere_to_keep_one(monkeypatch):
    real = jit.numba.njit

    def refusing(*args, **kw):                 # what Numba does with no writable locator
        if kw.get("cache"):
            raise RuntimeError("cannot cache function: no locator available")
        return real(*args, **kw)
    monkeypatch.setattr(jit.numba, "njit", refusing)
    fn = jit._cached_njit(helpers.gemm_mv)
    a, v, c = np.arange(6.0).reshape(3, 2), np.ones(2), np.empty(3)
    fn(a, v, c)
    assert c.tolist() == [1.0, 5.0, 9.0] and fn._cache.__class__.__name__ == "NullCache"
