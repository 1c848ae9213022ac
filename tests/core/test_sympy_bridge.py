"""SymPy in and out: to_sympy for display and checks, from_sympy, sd.elementwise."""
import numpy as np
import pytest
import sympy

import symdiff as sd
from gradcheck import check_grads
from symdiff.sympy_functions import Dot, sigmoid


def test_logistic_regression_gradient_is_the_seeds_form():
    x, w, b, y = sd.var("x", (5,)), sd.param("w", (5,)), sd.param("b"), sd.var("y")
    for loss in (sd.binary_cross_entropy(sd.sigmoid(w @ x + b), y),       # on probabilities
                 sd.binary_cross_entropy_with_logits(w @ x + b, y)):       # on logits
        gw = sd.to_sympy(sd.simplify(sd.grad(loss, w)))
        W, X = sympy.MatrixSymbol("w", 5, 1), sympy.MatrixSymbol("x", 5, 1)
        B, Y = sympy.Symbol("b", real=True), sympy.Symbol("y", real=True)
        expected = (sigmoid(Dot(W, X) + B) - Y) * X              # (sigma(w^T x + b) - y) x
        assert sympy.simplify(gw - expected) == sympy.ZeroMatrix(5, 1)
        assert sympy.latex(gw) == r"\left(- y + \sigma\left(b + w^{T} x\right)\right) x"


def test_batched_gradient_uses_matrix_expressions():
    X, y = sd.var("X", ("N", 5)), sd.var("y", ("N",))
    w, b = sd.param("w", (5,)), sd.param("b")
    gw = sd.to_sympy(sd.simplify(sd.grad(sd.mean(sd.binary_cross_entropy_with_logits(X @ w + b, y)), w)))
    assert isinstance(gw, sympy.MatMul)
    assert "X.T" in str(gw) and "sigmoid" in str(gw)


def test_scalar_gradient_round_trip_matches_sympy_diff():
    a, b = sympy.symbols("a b", real=True)
    expr = sympy.tanh(a * b) + sympy.exp(-a ** 2) * sympy.log(1 + b ** 2)
    A, Bn = sd.var("a"), sd.var("b")
    g = sd.from_sympy(expr, {a: A, b: Bn})
    ga = sd.to_sympy(sd.simplify(sd.grad(g, A)))
    # log1p(u) is log(1 + u) written for accuracy near 0
    assert sympy.simplify((ga - sympy.diff(expr, a)).rewrite(sympy.log)) == 0


def test_from_sympy_piecewise_max_and_matrix():
    t = sympy.Symbol("t", real=True)
    x = sd.var("x", (4,))
    xs = np.array([-2.0, -0.5, 0.5, 2.0])
    f = sd.from_sympy(sympy.Piecewise((t, t > 0), (0.1 * t, True)) + sympy.Max(t, 1), {t: x})
    np.testing.assert_allclose(sd.evaluate(f, {x: xs}), np.where(xs > 0, xs, 0.1 * xs) +
                               np.maximum(xs, 1))
    s = sd.var("s")
    m = sd.from_sympy(sympy.Matrix([[t, t ** 2], [sympy.sin(t), 1]]), {t: s})
    np.testing.assert_allclose(sd.evaluate(m, {s: 0.5}), [[0.5, 0.25], [np.sin(0.5), 1.0]])
    with pytest.raises(ValueError, match="no node given for symbol u"):
        sd.from_sympy(t + sympy.Symbol("u"), {t: x})
    with pytest.raises(ValueError, match="not supported"):
        sd.from_sympy(sympy.gamma(t), {t: x})


@pytest.mark.parametrize("name,fn,domain", [
    ("swish", lambda t: t / (1 + sympy.exp(-t)), (-4, 4)),
    ("rbf", lambda t: sympy.exp(-t ** 2), (-2, 2)),
    ("softsign", lambda t: t / (1 + sympy.Abs(t)), (0.2, 3)),
])
def test_elementwise_functions_differentiate_twice_in_both_modes(name, fn, domain):
    f = sd.elementwise(name, fn)
    x = sd.var("x", (5,))
    xs = np.linspace(*domain, 5)
    t = sympy.Symbol("t", real=True)
    want = sympy.lambdify(t, fn(t), "numpy")(xs)
    np.testing.assert_allclose(sd.evaluate(f(x), {x: xs}), want, rtol=1e-13)
    check_grads(sd.sum(f(x) * sd.sin(x)), {x: xs}, order=2)
    d2 = sympy.lambdify(t, sympy.diff(fn(t), t, 2), [{"DiracDelta": lambda v: 0 * v}, "numpy"])(xs)
    H = sd.evaluate(sd.hessian(sd.sum(f(x)), x), {x: xs})
    np.testing.assert_allclose(np.diag(H), d2, rtol=1e-10, atol=1e-12)


def test_parametric_relu_as_a_two_argument_elementwise_function():
    prelu = sd.elementwise("prelu", lambda t, a: sympy.Piecewise((t, t > 0), (a * t, True)))
    x, a = sd.var("x", (3, 4)), sd.param("a", (4,))
    xs, avals = np.random.default_rng(0).standard_normal((3, 4)), np.full(4, 0.2)
    gx, ga = sd.evaluate(sd.grad(sd.sum(prelu(x, a) ** 2), [x, a]), {x: xs, a: avals})
    y = np.where(xs > 0, xs, 0.2 * xs)
    np.testing.assert_allclose(gx, 2 * y * np.where(xs > 0, 1, 0.2))
    np.testing.assert_allclose(ga, np.sum(2 * y * np.where(xs > 0, 0, xs), axis=0))
    with pytest.raises(TypeError, match="takes 2 arguments"):
        prelu(x)


def test_elementwise_rejects_free_symbols():
    u = sympy.Symbol("u")
    with pytest.raises(ValueError, match="not arguments"):
        sd.elementwise("bad", lambda t: t * u)


def test_to_sympy_renders_every_graph():
    x, y = sd.var("x", (3, 4)), sd.var("y", (3,), dtype="int64")
    g = sd.grad(sd.mean(sd.softmax_cross_entropy(x @ sd.param("W", (4, 5)), y)),
                sd.param("W", (4, 5)))
    e = sd.to_sympy(sd.simplify(g))
    assert sympy.latex(e)                       # placeholders keep unusual ops printable
    assert sd.to_sympy(sd.var("T", (2, 3, 4)) * 2) is not None


def test_dot_output_marks_kinds_and_clusters():
    x, w = sd.var("x", (3,)), sd.param("w", (3,))
    loss = sd.sigmoid(x @ w)
    text = sd.to_dot(loss, gradient=sd.grad(loss, w), title="unit")
    assert text.startswith("digraph symdiff {") and text.rstrip().endswith("}")
    assert 'fillcolor="#f4a6a6"' in text          # the parameter w
    assert "cluster_forward" in text and "cluster_gradient" in text
    assert text.count("peripheries=2") == 2      # the loss and the gradient


def test_cli_show_prints_text_latex_and_dot(capsys):
    from symdiff.models.cli import main
    assert main(["show", "logreg", "--grad"]) == 0
    out = capsys.readouterr().out
    assert "d loss / d w = transpose(x, (1, 0)) @ ((sigmoid(b + x @ w) - y) / size(batch))" in out
    assert main(["show", "mlp", "--format", "latex"]) == 0
    assert r"loss = \frac{\sum_{i} \left(\log \sum_{j} \exp" in capsys.readouterr().out
    assert main(["show", "xor", "--grad", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph")


def test_render_without_graphviz_is_a_clear_error(tmp_path, monkeypatch, capsys):
    import shutil
    from symdiff.models.cli import main
    monkeypatch.setattr(shutil, "which", lambda name: None)
    text = sd.to_dot(sd.tanh(sd.var("x", (2,))))
    with pytest.raises(RuntimeError, match="needs Graphviz's `dot` program"):
        sd.render(text, tmp_path / "g.png")
    with pytest.raises(ValueError, match="format must be png, svg or pdf"):
        sd.render(text, tmp_path / "g.gif")
    assert main(["show", "logreg", "--format", "png", "--output", str(tmp_path / "g.png")]) == 2
    assert "needs Graphviz's `dot` program" in capsys.readouterr().err


def test_render_with_a_dot_program_writes_the_file(tmp_path, monkeypatch):
    # a stand-in `dot` (a shell script) checks the arguments render passes and writes the file
    fake = tmp_path / "dot"
    fake.write_text('#!/bin/sh\n[ "$1" = "-Tsvg" ] && [ "$2" = "-o" ] && cat > "$3"\n')
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{__import__('os').environ['PATH']}")
    text = sd.to_dot(sd.tanh(sd.var("x", (2,))))
    out = sd.render(text, tmp_path / "g.svg")
    assert open(out).read() == text
