"""NumPy functions on nodes (NEP 13/18): every row of the dispatch table builds a graph whose
value equals the NumPy function on the same arrays; everything else is a clear TypeError."""
import numpy as np
import pytest

import symdiff as sd
from symdiff import numpy_dispatch as nd
from gradcheck import check_grads

R = np.random.default_rng(5)
A, B = R.uniform(0.5, 2.0, (3, 4)), R.uniform(0.5, 2.0, (3, 4))
M, V = R.standard_normal((4, 2)), R.standard_normal(4)
SQ = R.standard_normal((4, 4))
IDX = np.array([[0, 2], [1, 1], [3, 0]])

# (NumPy callable, its arrays): each applied to nodes for the arrays and to the arrays
UFUNC_CASES = {np.add: (A, B), np.subtract: (A, B), np.multiply: (A, B), np.divide: (A, B),
               np.true_divide: (A, B), np.power: (A, B), np.negative: (A,), np.positive: (A,),
               np.exp: (A,), np.log: (A,), np.log1p: (A,), np.expm1: (A,), np.sqrt: (A,),
               np.tanh: (A,), np.sin: (A,), np.cos: (A,), np.absolute: (A - 1,),
               np.sign: (A - 1,), np.square: (A,), np.maximum: (A, B), np.minimum: (A, B),
               np.logaddexp: (A, B), np.matmul: (A, M), np.less: (A, B),
               np.less_equal: (A, B), np.greater: (A, B), np.greater_equal: (A, B),
               np.equal: (A, A), np.not_equal: (A, B)}
FUNCTION_CASES = [
    (np.dot, lambda f, a, b: f(a, b), (A, M)), (np.dot, lambda f, a, b: f(a, b), (V, V)),
    (np.matmul, lambda f, a, b: f(a, b), (A, M)),
    (np.sum, lambda f, a: f(a, axis=1, keepdims=True), (A,)), (np.sum, lambda f, a: f(a), (A,)),
    (np.mean, lambda f, a: f(a, axis=0), (A,)), (np.max, lambda f, a: f(a, axis=1), (A,)),
    (np.amax, lambda f, a: f(a), (A,)), (np.min, lambda f, a: f(a, axis=0), (A,)),
    (np.amin, lambda f, a: f(a), (A,)), (np.prod, lambda f, a: f(a, axis=1), (A,)),
    (np.where, lambda f, a, b: f(a > b, a, b), (A, B)),
    (np.concatenate, lambda f, a, b: f([a, b], axis=1), (A, B)),
    (np.stack, lambda f, a, b: f([a, b], axis=0), (A, B)),
    (np.split, lambda f, a: f(a, 2, axis=1)[1], (A,)),
    (np.einsum, lambda f, a, b: f("ij,jk->ik", a, b), (A, M)),
    (np.transpose, lambda f, a: f(a), (A,)), (np.reshape, lambda f, a: f(a, (4, 3)), (A,)),
    (np.broadcast_to, lambda f, a: f(a, (2, 4)), (V,)), (np.tril, lambda f, a: f(a, -1), (SQ,)),
    (np.triu, lambda f, a: f(a, 1), (SQ,)), (np.diagonal, lambda f, a: f(a, 1), (SQ,)),
    (np.trace, lambda f, a: f(a), (SQ,)), (np.cumsum, lambda f, a: f(a, axis=1), (A,)),
    (np.cumprod, lambda f, a: f(a, axis=0), (A,)), (np.flip, lambda f, a: f(a, axis=1), (A,)),
    (np.take, lambda f, a: f(a, IDX, axis=1), (A,)),
    (np.take_along_axis, lambda f, a: f(a, IDX, axis=1), (A,)),
    (np.tile, lambda f, a: f(a, (2, 1)), (A,)), (np.repeat, lambda f, a: f(a, 2, axis=0), (A,)),
    (np.pad, lambda f, a: f(a, 1), (A,)), (np.argmax, lambda f, a: f(a, axis=1), (A,)),
    (np.argmin, lambda f, a: f(a, axis=0), (A,)), (np.clip, lambda f, a: f(a, 0.8, 1.5), (A,)),
    (np.outer, lambda f, a, b: f(a, b), (V, V)),
]


def test_every_table_row_has_a_case():
    assert set(UFUNC_CASES) == set(nd.UFUNCS)
    assert {f for f, _, _ in FUNCTION_CASES} == set(nd.FUNCTIONS)


@pytest.mark.parametrize("ufunc", list(UFUNC_CASES), ids=lambda u: u.__name__)
def test_ufuncs_match_numpy(ufunc):
    arrays = UFUNC_CASES[ufunc]
    nodes = [sd.var(f"a{i}", a.shape) for i, a in enumerate(arrays)]
    got = sd.evaluate(ufunc(*nodes), dict(zip(nodes, arrays)))
    np.testing.assert_allclose(got, ufunc(*arrays), rtol=1e-14)
    # a NumPy array or scalar as the other operand: still a graph
    if len(arrays) == 2:
        mixed = ufunc(arrays[0], nodes[1])
        assert isinstance(mixed, sd.Node)
        np.testing.assert_allclose(sd.evaluate(mixed, {nodes[1]: arrays[1]}), ufunc(*arrays),
                                   rtol=1e-14)


@pytest.mark.parametrize("k", range(len(FUNCTION_CASES)),
                         ids=[f"{f.__name__}{k}" for k, (f, _, _) in enumerate(FUNCTION_CASES)])
def test_functions_match_numpy(k):
    func, call, arrays = FUNCTION_CASES[k]
    nodes = [sd.var(f"a{i}", a.shape) for i, a in enumerate(arrays)]
    out = call(func, *nodes)
    assert isinstance(out, sd.Node)
    np.testing.assert_allclose(sd.evaluate(out, dict(zip(nodes, arrays))), call(func, *arrays),
                               rtol=1e-13)


def test_reductions_of_ufuncs_and_scalar_operands():
    x = sd.var("x", (3, 4))
    np.testing.assert_allclose(sd.evaluate(np.add.reduce(x), {x: A}), np.add.reduce(A))
    np.testing.assert_allclose(sd.evaluate(np.maximum.reduce(x), {x: A}), A.max(0))
    np.testing.assert_allclose(sd.evaluate(np.float32(2) * x + 1, {x: A}), 2 * A + 1)


def test_a_model_written_with_numpy_differentiates():
    x, W, b = sd.var("x", (5, 3)), sd.param("W", (3, 2)), sd.param("b", (2,))
    z = np.dot(x, W) + b
    loss = np.mean(np.log1p(np.exp(-z)) + np.square(np.maximum(z, 0.0)))
    env = {x: R.standard_normal((5, 3)), W: R.standard_normal((3, 2)), b: R.standard_normal(2)}
    check_grads(loss, env, wrt=[W, b], order=2)


@pytest.mark.parametrize("call, match", [
    (lambda x: np.linalg.inv(x), r"np.linalg.inv on symdiff nodes is not supported"),
    (lambda x: np.sinh(x), r"np.sinh has no symdiff form"),
    (lambda x: np.add.accumulate(x), r"np.add.accumulate has no symdiff form"),
    (lambda x: np.sum(x, out=np.zeros(4)), r"np.sum .* out are not supported"),
    (lambda x: np.exp(x, out=np.zeros((4, 4))), r"np.exp .* out are not supported"),
    (lambda x: np.mean(x, dtype=np.float32), r"dtype are not supported"),
    (lambda x: np.where(x > 0), r"np.where\(cond\)"),
    (lambda x: np.dot(x[None], x), r"sd.einsum"),
    (lambda x: np.asarray(x), r"no value to convert"),
    (lambda x: np.array([x, x]), r"no value to convert"),
])
def test_unsupported_uses_raise_clear_errors(call, match):
    x = sd.var("x", (4, 4))
    with pytest.raises(TypeError, match=match):
        call(x)
