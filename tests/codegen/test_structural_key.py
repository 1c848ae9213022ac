"""The kernel cache is keyed by structure: graphs that differ only in the names of their vars,
params and dims, or in the values of their constant arrays, share one compiled kernel, and
each still computes its own values. The oracle is each graph's closed form in NumPy.

A "new process" is simulated by dropping the kernel from memory (``_forget``): the next
compile then finds only the disk cache, as another process would.
"""
import sys

import numpy as np
import pytest

import symdiff as sd
from symdiff.codegen import jit

X = np.linspace(-1.0, 1.0, 12).reshape(4, 3)
W = np.array([0.3, -0.7, 1.1])


def _model(x_name="x", w_name="w", dim="n", scale=(1.0, 2.0, 3.0), c=0.5):
    """loss = c * sum(tanh(x @ (w * scale))) and its gradient; scale is a constant array."""
    x, w = sd.var(x_name, (dim, 3)), sd.param(w_name, (3,))
    loss = sd.sum(sd.tanh(x @ (w * sd.const(np.array(scale))))) * c
    return [x, w], [loss, sd.grad(loss, w)]


def _check(f, scale=(1.0, 2.0, 3.0), c=0.5):
    s = np.array(scale)
    t = np.tanh(X @ (W * s))
    loss, grad = f(X, W)
    np.testing.assert_allclose(loss, c * t.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, c * s * (X.T @ (1 - t * t)), rtol=1e-12)


def _forget(key):
    jit._loaded.pop(key, None)
    sys.modules.pop(f"symdiff_kernel_{key}", None)


def _compile(**kw):
    before = dict(jit.STATS)
    f = sd.compile(*_model(**kw), wait=True)
    return f, {k: jit.STATS[k] - before[k] for k in before}


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """An empty disk cache, and no kernel in this process's memory."""
    import collections

    import symdiff.codegen
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(jit, "_loaded", {})
    monkeypatch.setattr(symdiff.codegen, "_compiled", collections.OrderedDict())
    return tmp_path


@pytest.mark.parametrize("kw", [dict(x_name="inputs", w_name="weights"), dict(dim="batch"),
                                dict(scale=(-2.0, 0.25, 7.0))],
                         ids=["names", "dim name", "constant array"])
def test_graphs_differing_in_names_or_constant_arrays_share_one_kernel(kw):
    first, _ = _compile()
    _check(first)
    second, did = _compile(**kw)
    assert second.key == first.key and did["compiled"] == 0
    _check(second, **{k: v for k, v in kw.items() if k == "scale"})
    _check(first)                           # the first kernel still uses its own constants


def test_a_new_process_loads_the_kernel_of_a_graph_with_other_names(cache):
    first, _ = _compile()
    path = cache / first.key / "kernel.py"
    stamp = path.stat().st_mtime_ns
    _forget(first.key)
    second, did = _compile(x_name="features", w_name="theta", dim="rows")
    assert second.key == first.key and did == {"compiled": 0, "loaded": 1, "reused": 0}
    assert path.stat().st_mtime_ns == stamp  # not rewritten: Numba's index stays valid
    _check(second)


def test_the_source_names_its_own_vars_and_the_code_is_shared():
    from symdiff.codegen.cache_key import code_of
    a, _ = _compile()
    b, _ = _compile(x_name="inputs", w_name="weights")
    assert "# a0 = x [n, 3]; a1 = w [3]\n" in a.source
    assert "# a0 = inputs [n, 3]; a1 = weights [3]\n" in b.source
    assert code_of(a.source) == code_of(b.source)


@pytest.mark.parametrize("kw", [dict(c=0.25)], ids=["scalar constant"])
def test_what_changes_the_machine_code_changes_the_key(kw):
    """Scalar constants are compiled into the code (LLVM folds them): a new value is a new
    kernel. To vary one without compiling, make it a 0-d input."""
    first, _ = _compile()
    second, did = _compile(**kw)
    assert second.key != first.key and did["compiled"] == 1
    _check(second, **kw)


def test_shapes_and_dtypes_are_in_the_key():
    base = sd.compile(*_model(), wait=True).key
    x, w = sd.var("x", (4, 3)), sd.param("w", (3,))
    static = sd.compile([x, w], sd.sum(sd.tanh(x @ (w * sd.const(np.ones(3))))) * 0.5,
                        wait=True)
    x32, w32 = sd.var("x", ("n", 3), "float32"), sd.param("w", (3,), "float32")
    f32 = sd.compile([x32, w32], sd.sum(sd.tanh(x32 @ w32)) * 0.5, wait=True)
    assert len({base, static.key, f32.key}) == 3


def test_var_names_cannot_collide_with_generated_locals():
    """A 0-d var's value is read into a local before the loops; with vars named after their
    names, ``x`` and ``x_v`` once collided (a Numba typing error)."""
    x, xv = sd.var("x", ()), sd.var("x_v", (3,))
    f = sd.compile([x, xv], [sd.sum(xv * x), sd.grad(sd.sum(xv * x), x)], wait=True)
    value, grad = f(np.array(2.0), np.array([1.0, 2.0, 3.0]))
    assert value == 12.0 and grad == 6.0


def test_a_kernel_file_with_other_code_is_rewritten(cache):
    """Sharing a file is by its code only: a kernel.py whose code differs (here: it would
    report a failure, status 1) is replaced before it is imported."""
    f, _ = _compile()
    path = cache / f.key / "kernel.py"
    path.write_text(path.read_text().replace("return 0", "return 1"))
    _forget(f.key)
    g, _ = _compile()
    assert "return 1" not in path.read_text()
    _check(g)


def test_renaming_keeps_the_order_of_commutative_operands():
    """simplify orders the operands of +, * by a structure blind to names: an MLP (bias +
    product, tanh' products) renders the same code under any names. (Ordered by the full
    digest, renaming W, b swapped operands and made a new kernel.)"""
    from symdiff.codegen import render_spec
    from symdiff.codegen.cache_key import code_of

    def mlp(names):
        xn, yn, wn, bn, dim = names
        x, y = sd.var(xn, (dim, 4)), sd.var(yn, (dim,), "int64")
        h, params = x, []
        for k, (m, n) in enumerate([(4, 5), (5, 3)]):
            W, b = sd.param(f"{wn}{k}", (m, n)), sd.param(f"{bn}{k}", (n,))
            params += [W, b]
            h = h @ W + b if k else sd.tanh(h @ W + b)
        loss = sd.mean(sd.softmax_cross_entropy(h, y))
        return sd.compile([x, y] + params, [loss] + sd.grad(loss, params), wait=False).spec

    codes = {code_of(render_spec(mlp(names), {"math": "fast", "parallel": False,
                                              "fastmath": True})[1])
             for names in [("x", "y", "W", "b", "batch"), ("images", "labels", "weight", "bias",
                                                            "rows"), ("z", "a", "q", "c", "n")]}
    assert len(codes) == 1
