"""The derivative as readable math: to_sympy's matrix-level forms (reductions, softmax,
log-sum-exp, one-hot, max) checked against the numbers, their LaTeX free of program text, and
the text printer's let-bindings, constant names and folded products checked by executing the
printed text with NumPy."""
import doctest

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff import printing, sympy_bridge
from symdiff.models import zoo

PROGRAM_TEXT = ("keepdims", "axis=", "one_hot(", "stop_gradient", "take_rows", "@", "...",
                "size(")


def _shape2(node):
    return (node.shape[0], 1) if node.ndim == 1 else node.shape


def sympy_value(expr, values):
    """A to_sympy result evaluated at {node: array}: every matrix form expanded to elements."""
    subs = {}
    for node, v in values.items():
        if node.ndim == 0:
            subs[sympy.Symbol(node.name, real=True)] = sympy.Float(float(v))
        else:
            subs[sympy.MatrixSymbol(node.name, *_shape2(node))] = \
                sympy.ImmutableMatrix(np.asarray(v).reshape(_shape2(node)))
    out = explicit(expr.xreplace(subs)).doit()
    out = out.as_explicit() if hasattr(out, "as_explicit") else out
    return np.array(sympy.N(out).tolist() if hasattr(out, "tolist") else sympy.N(out), float)


def explicit(e):
    """e with every matrix-level form (softmax, reductions...) written out over its elements."""
    if not e.args or isinstance(e, (sympy.Symbol, sympy.Number)):
        return e
    e = e.func(*[explicit(a) for a in e.args])
    return e.explicit() if hasattr(e, "explicit") else e


def _values(m, seed=0):
    rng = np.random.default_rng(seed)
    vals = {v: rng.integers(0, 2, v.shape).astype(v.dtype) if v.name == "y"
            else rng.standard_normal(v.shape) for v in m.inputs}
    vals.update({p: 0.5 * rng.standard_normal(p.shape) for p in m.params})
    return vals


def test_mlp_gradient_is_the_hand_derived_matrix_formula():
    m = zoo.mlp(sizes=(2, 3, 2), batch=2)
    W1, b1, W2, b2 = m.params
    x, y = m.inputs
    vals = _values(m)
    gW2 = sd.simplify(sd.grad(m.loss, W2))
    e = sd.to_sympy(gW2)
    # hand-derived: dL/dW2 = H^T (softmax(H W2 + 1 b2^T) - onehot(y)) / N, H = tanh(X W1 + 1 b1^T)
    X, Y = vals[x], vals[y]
    H = np.tanh(X @ vals[W1] + vals[b1])
    Z = H @ vals[W2] + vals[b2]
    P = np.exp(Z) / np.exp(Z).sum(1, keepdims=True)
    want = H.T @ (P - np.eye(2)[Y]) / 2
    np.testing.assert_allclose(sympy_value(e, vals), want, rtol=1e-12, atol=1e-15)
    latex = sympy.latex(e)
    assert r"\operatorname{softmax}" in latex and r"\mathbb{1}\left[y = j\right]" in latex
    assert not any(t in latex for t in PROGRAM_TEXT), latex
    # the same formula written with SymPy's matrices, symbolically: the difference is zero
    Xs, W1s, W2s = (sympy.MatrixSymbol(n, *s) for n, s in (("x", (2, 2)), ("W1", (2, 3)),
                                                              ("W2", (3, 2))))
    b1s, b2s = sympy.MatrixSymbol("b1", 3, 1), sympy.MatrixSymbol("b2", 2, 1)
    ones = sympy.OneMatrix(2, 1)
    Hs = (Xs * W1s + ones * b1s.T).applyfunc(sympy.tanh)
    Zs = Hs * W2s + ones * b2s.T
    Ys = sympy.MatrixSymbol("y", 2, 1)
    rows = [[sympy.exp(Zs[i, j]) / sum(sympy.exp(Zs[i, k]) for k in range(2))
             - sympy.KroneckerDelta(Ys[i, 0], j) for j in range(2)] for i in range(2)]
    hand = Hs.as_explicit().T * sympy.Matrix(rows) / 2
    diff = (explicit(e).doit().as_explicit() - hand).subs({Ys[0, 0]: 1, Ys[1, 0]: 0})
    assert diff.applyfunc(sympy.expand) == sympy.zeros(3, 2)


def test_mlp_loss_stays_a_matrix_expression():
    m = zoo.mlp(sizes=(64, 128, 10))                      # symbolic batch, wide layers
    e = sd.to_sympy(m.loss)
    assert sympy.count_ops(e) < 40                       # not expanded element by element
    latex = sympy.latex(e)
    assert r"\log \sum_{j} \exp" in latex and r"\tanh" in latex
    assert not any(t in latex for t in PROGRAM_TEXT), latex
    grads = sd.to_sympy(sd.simplify(sd.grad(m.loss, m.params)))
    assert max(sympy.count_ops(g) for g in grads) < 80


@pytest.mark.parametrize("build,expected", [
    (lambda z: sd.softmax(z), r"\operatorname{softmax}\left(Z\right)"),
    (lambda z: sd.log_softmax(z), r"\log\operatorname{softmax}\left(Z\right)"),
    (lambda z: sd.logsumexp(z), r"\log \sum_{j} \exp\left(Z_{:, j}\right)"),
    (lambda z: sd.max(z, axis=-1), r"\max_{j} Z_{:, j}"),
    (lambda z: sd.sum(z, axis=-1), r"\sum_{j} Z_{:, j}"),
    (lambda z: sd.max(z, axis=0, keepdims=True), r"\max_{i} Z_{i, :}"),
    (lambda z: sd.sum(z), r"\sum_{i, j} Z_{i, j}"),
    (lambda z: sd.mean(z, axis=0), r"\left(\frac{1}{3}\right) \left(\sum_{i} Z_{i, :}\right)^{T}"),
    (lambda z: sd.softmax(sd.sum(z, axis=0)), r"\operatorname{softmax}"),     # of a vector
    (lambda z: sd.logsumexp(sd.sum(z, axis=0)), r"\log \sum_{i}"),
])
def test_row_functions_print_as_math_and_keep_their_values(build, expected):
    Z = sd.var("Z", (3, 4))
    node = build(Z)
    e = sd.to_sympy(node)
    assert expected in sympy.latex(e)
    assert not any(t in sympy.latex(e) for t in PROGRAM_TEXT)
    z = np.random.default_rng(1).standard_normal((3, 4))
    want = sd.evaluate(node, {Z: z})
    np.testing.assert_allclose(sympy_value(e, {Z: z}).reshape(want.shape), want, rtol=1e-12)


def test_one_hot_and_label_picks():
    y, Z = sd.var("y", (3,), dtype="int64"), sd.var("Z", (3, 4))
    node = sd.one_hot(y, 4) * 2.0 - sd.reshape(sd.take_rows(Z, y), (3, 1))
    e = sd.to_sympy(node)
    latex = sympy.latex(e)
    assert r"\mathbb{1}\left[y = j\right]" in latex and r"Z_{i, y_{i}}" in latex
    vals = {y: np.array([3, 0, 1]), Z: np.arange(12.0).reshape(3, 4)}
    np.testing.assert_allclose(sympy_value(e, vals), sd.evaluate(node, vals))


def test_elementwise_functions_by_name_with_their_definition():
    swish = sd.elementwise("swish", lambda t: t / (1 + sympy.exp(-t)))
    x = sd.var("x", (3,))
    e = sd.to_sympy(swish(x) + sd.sigmoid(x))
    defs = sd.sympy_definitions(e)
    t = sympy.Symbol("t", real=True)
    assert sympy.simplify(defs["swish"].rhs - t / (1 + sympy.exp(-t))) == 0
    assert sympy.simplify(defs["sigmoid"].rhs - 1 / (1 + sympy.exp(-t))) == 0
    assert r"\operatorname{swish}\left(x\right)" in sympy.latex(e)
    xs = np.array([-1.0, 0.5, 2.0])
    np.testing.assert_allclose(sympy_value(e, {x: xs}).ravel(),
                               xs / (1 + np.exp(-xs)) + 1 / (1 + np.exp(-xs)))


@pytest.mark.parametrize("name", sorted(zoo.ZOO))
def test_zoo_latex_has_no_program_text(name):
    m = zoo.ZOO[name]()
    for e in sd.to_sympy([m.loss] + sd.simplify(sd.grad(m.loss, m.params))):
        latex = sympy.latex(e)
        assert not any(t in latex for t in ("keepdims", "axis=", "one_hot(", "...")), latex


# --- the text printer -----------------------------------------------------------------------
def _run_text(text, values, sizes):
    """Execute printed text with NumPy: each let-binding, then the final expression."""
    env = {"tanh": np.tanh, "exp": np.exp, "log": np.log, "sigmoid": lambda v: 1 / (1 + np.exp(-v)),
           "softplus": lambda v: np.logaddexp(0, v), "where": np.where, "sum": np.sum,
           "max": np.max, "transpose": np.transpose, "reshape": np.reshape,
           "stop_gradient": lambda v: v, "size": lambda n: n, "maximum": np.maximum,
           "one_hot": lambda y, k: np.eye(k)[y], "broadcast_to": np.broadcast_to,
           "take_rows": lambda z, y: np.take_along_axis(z, y[:, None], -1)[:, 0],
           **sizes, **{n.name: v for n, v in values.items()}}
    *bindings, last = text.splitlines()
    for line in bindings:
        name, body = line.split(" = ", 1)
        env[name] = eval(body, env)
    return eval(last, env)


def test_text_names_shared_subtrees_and_never_cuts():
    m = zoo.mlp(sizes=(4, 8, 3))
    vals = _values(zoo.mlp(sizes=(4, 8, 3), batch=5))
    vals = {next(n for n in m.inputs + m.params if n.name == k.name): v for k, v in vals.items()}
    for g in sd.simplify(sd.grad(m.loss, m.params)) + [m.loss]:
        text = str(g)
        assert "..." not in text
        assert all(len(line) <= 110 for line in text.splitlines())
        np.testing.assert_allclose(_run_text(text, vals, {"batch": 5}), sd.evaluate(g, vals),
                                   rtol=1e-12)
    lines = str(sd.simplify(sd.grad(m.loss, m.params[0]))).splitlines()
    assert lines[0].startswith("t1 = ") and len(lines) > 2


def test_text_names_constants_by_value():
    a = np.arange(90.0).reshape(9, 10)
    x = sd.var("x", (9, 10))
    text = str(x * sd.const(a) + sd.const(a[::-1].copy()) + sd.const(np.full((9, 10), 0.5))
               + sd.const(np.eye(9, 10)))
    lines = text.splitlines()
    assert lines[0].startswith("c1 = [ 0.,  1.,  2., ..., 87., 88., 89.]")
    assert lines[1] == "c2 = [80., 81., 82., ...,  7.,  8.,  9.] reshaped to (9, 10)"
    assert lines[-1] == "x * c1 + c2 + full((9, 10), 0.5) + c3"
    # one-line labels keep different constants apart too
    assert printing.label(sd.const(a)) != printing.label(sd.const(a + 1))


def test_text_folds_scalar_factors():
    x, b = sd.var("x", (3,)), sd.var("batch_x", ("batch",))
    assert str(-2 * (200 * sd.tanh(x))) == "-400 * tanh(x)"
    assert str(sd.exp(x) * 3 * 0.5) == "1.5 * exp(x)"
    assert str(-1 * (x - 1) * sd.exp(x)) == "-(x - 1) * exp(x)"
    h = x
    for _ in range(60):                  # shared 2^60 times over: named, printed quickly
        h = sd.tanh(h * h + h)
    assert str(h).splitlines()[-1] == "tanh(t58 * t58 + t58)"
    n = sd.sum(b) / (1 * sd.size_of("batch"))
    assert str(n) == "sum(batch_x, axis=-1) / size(batch)"
    xs = np.array([0.1, -0.3, 0.7])
    assert _run_text(str(-2 * (200 * sd.tanh(x))), {x: xs}, {}) == pytest.approx(
        -400 * np.tanh(xs))


def test_durations_in_fitting_units():
    assert [printing.duration(s) for s in (3e-8, 4.12e-4, 0.0123, 2.5)] == \
        ["30 ns", "412 us", "12.3 ms", "2.5 s"]


@pytest.mark.parametrize("module", [printing, sympy_bridge])
def test_docstring_examples(module):
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
