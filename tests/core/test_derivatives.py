"""One table of (op, input domain, tolerance) drives forward, reverse and second-order checks
against central finite differences for every primitive and composite."""
import numpy as np
import pytest
import sympy

import symdiff as sd
from gradcheck import check_grads

R = np.random.default_rng(1234)


def normal(shape):
    return R.standard_normal(shape)


def positive(shape):
    return R.uniform(0.5, 2.0, shape)


def away(shape, gap=0.2):
    """Normal values kept at least ``gap`` away from 0 (kinks of abs, relu, hinge...)."""
    x = R.standard_normal(shape)
    return np.where(np.abs(x) < gap, np.sign(x + 1e-12) * gap, x) + np.sign(x) * 0.05


def away_from_one(shape):
    """Values kept away from the kinks of hard_tanh at +-1."""
    x = R.uniform(-2, 2, shape)
    return np.where(np.abs(np.abs(x) - 1) < 0.15, x * 0.5, x)


S = (3, 4)
LABELS = np.array([0, 2, 1])
SWISH = sd.elementwise("swish", lambda t: t / (1 + sympy.exp(-t)))
SOFTCLIP = sd.elementwise("softclip", lambda t, a: a * sympy.tanh(t / a))
RBF1 = sd.elementwise("rbf", lambda t: sympy.exp(-t ** 2))

def _rnn(x, w, reverse):
    """Final carry and ys of c_(t+1) = tanh(c_t w + x_t) from c_0 = w, combined."""
    c, ys = sd.scan(lambda c, xt: (sd.tanh(c * w + xt), c * xt), w, x, reverse=reverse)
    return ys * c


# name: (builder, [(shape, domain), ...], order)
CASES = {
    "neg": (lambda x: -x, [(S, normal)], 2),
    "exp": (sd.exp, [(S, normal)], 2),
    "log": (sd.log, [(S, positive)], 2),
    "log1p": (sd.log1p, [(S, positive)], 2),
    "expm1": (sd.expm1, [(S, normal)], 2),
    "sqrt": (sd.sqrt, [(S, positive)], 2),
    "tanh": (sd.tanh, [(S, normal)], 2),
    "sin": (sd.sin, [(S, normal)], 2),
    "cos": (sd.cos, [(S, normal)], 2),
    "abs": (sd.abs, [(S, away)], 2),
    "sigmoid": (sd.sigmoid, [(S, normal)], 2),
    "softplus": (sd.softplus, [(S, normal)], 2),
    "add_broadcast": (lambda a, b: a + b, [(S, normal), ((4,), normal)], 2),
    "sub_outer": (lambda a, b: a - b, [((3, 1), normal), ((1, 4), normal)], 2),
    "mul": (lambda a, b: a * b, [(S, normal), (S, normal)], 2),
    "div": (lambda a, b: a / b, [(S, normal), (S, positive)], 2),
    "pow_var_exponent": (lambda a, b: a ** b, [(S, positive), (S, normal)], 2),
    "pow_const": (lambda a: a ** 3, [(S, normal)], 2),
    "rpow": (lambda a: 2.0 ** a, [(S, normal)], 2),
    "maximum": (lambda a, b: sd.maximum(a, b), [(S, normal), (S, normal)], 2),
    "minimum": (lambda a, b: sd.minimum(a, b * 2), [(S, normal), (S, normal)], 2),
    "where": (lambda a, b: sd.where(a > b, a * b, b ** 2), [(S, normal), (S, normal)], 2),
    "sum_all": (lambda x: sd.sum(x * x), [(S, normal)], 2),
    "sum_axis0": (lambda x: sd.sum(x * x, axis=0), [(S, normal)], 2),
    "sum_keepdims": (lambda x: sd.sum(sd.exp(x), axis=1, keepdims=True) * x, [(S, normal)], 2),
    "max_axis": (lambda x: sd.max(x, axis=1), [(S, normal)], 2),
    "max_all": (lambda x: sd.max(x * x), [(S, normal)], 2),
    "matmul_2d": (lambda a, b: a @ b, [((2, 3), normal), ((3, 4), normal)], 2),
    "matmul_vec_mat": (lambda a, b: a @ b, [((3,), normal), ((3, 4), normal)], 2),
    "matmul_mat_vec": (lambda a, b: a @ b, [((2, 3), normal), ((3,), normal)], 2),
    "matmul_dot": (lambda a, b: a @ b, [((3,), normal), ((3,), normal)], 2),
    "matmul_batched": (lambda a, b: a @ b, [((2, 2, 3), normal), ((2, 3, 4), normal)], 2),
    "matmul_batch_bcast": (lambda a, b: a @ b, [((2, 2, 3), normal), ((3, 4), normal)], 2),
    "transpose": (lambda x: sd.tanh(x.T) @ x, [(S, normal)], 2),
    "transpose_3d": (lambda x: sd.transpose(x, (2, 0, 1)) * 2, [((2, 3, 4), normal)], 2),
    "reshape": (lambda x: sd.reshape(x, (2, 6)) ** 2, [(S, normal)], 2),
    "broadcast_to": (lambda x: sd.broadcast_to(x, (2, 3, 4)) * sd.sin(x), [((3, 1), normal)], 2),
    "take_rows": (lambda x: sd.take_rows(x, sd.const(np.array([2, 0, 3]))) ** 2, [(S, normal)], 2),
    # tensor language
    "slice": (lambda x: x[1:, ::2] ** 2, [(S, normal)], 2),
    "slice_negative_step": (lambda x: sd.tanh(x[::-2, 3:0:-2]) * x[:2, 1:3], [(S, normal)], 2),
    "getitem_int_newaxis": (lambda x: x[1, None, :] * x[..., -1, None], [(S, normal)], 2),
    "getitem_array": (lambda x: x[:, [3, 0, 3]] ** 2 + x[[2, 0, 2], 1, None], [(S, normal)], 2),
    "rosenbrock": (lambda x: sd.sum(100 * (x[1:] - x[:-1] ** 2) ** 2 + (1 - x[:-1]) ** 2),
                   [((6,), normal)], 2),
    "pad": (lambda x: sd.pad(x, ((1, 0), (2, 1))) ** 2, [(S, normal)], 2),
    "flip": (lambda x: sd.flip(x, 1) * x, [(S, normal)], 2),
    "concatenate": (lambda a, b: sd.concatenate([a, sd.exp(b), a[:1]], axis=0) ** 2,
                    [(S, normal), ((2, 4), normal)], 2),
    "stack_split": (lambda a: sd.stack(sd.split(a, 2, axis=1), axis=0) ** 3, [(S, normal)], 2),
    "take_axis": (lambda x: sd.take(x, np.array([[3, -1], [0, 0]]), axis=1) ** 2, [(S, normal)], 2),
    "take_along_axis": (lambda x: sd.take_along_axis(x, np.array([[3, 1], [0, 0], [2, 2]]), 1) ** 2,
                        [(S, normal)], 2),
    "scatter_add": (lambda x, u: sd.scatter_add(x, np.array([2, 0, 2]), u, axis=1) ** 2,
                    [(S, normal), ((3, 3), normal)], 2),
    "segment_sum": (lambda d: sd.segment_sum(d, np.array([1, 1, 0]), 3) ** 2, [(S, normal)], 2),
    "cumsum": (lambda x: sd.cumsum(x, axis=1) ** 2 + sd.cumsum(x, axis=0), [(S, normal)], 2),
    "prod": (lambda x: sd.prod(x, axis=1) * sd.prod(x[:, :3], axis=0, keepdims=True).T,
             [(S, normal)], 2),
    # a loop: carry c_(t+1) = tanh(c_t * w + x_t), ys the carries; and the loop reversed
    "scan": (lambda x, w: _rnn(x, w, False), [(S, normal), ((4,), normal)], 2),
    "scan_reverse": (lambda x, w: _rnn(x, w, True), [(S, normal), ((4,), normal)], 2),
    "cumprod": (lambda x: sd.cumprod(x, axis=1) ** 2 + sd.cumprod(x[:, ::-1], 0), [(S, normal)], 2),
    "prod_cumprod_at_zero": (lambda x: sd.prod(x * np.array([1.0, 0.0, 1.0, 1.0])) +
                             sd.sum(sd.cumprod(x[0] * np.array([1.0, 1.0, 0.0, 1.0]))),
                             [(S, normal)], 2),
    "tril_triu": (lambda m: sd.tril(m) ** 2 + sd.triu(m, 1) * m, [((4, 4), normal)], 2),
    "diagonal_trace": (lambda m: sd.diagonal(m, 1) ** 2 * sd.trace(m ** 2), [(S, normal)], 2),
    "diag": (lambda v: sd.diag(v, -1)[1:, :3] @ sd.diag(v ** 2), [((3,), normal)], 2),
    "einsum_gemm": (lambda a, b: sd.einsum("ij,kjl->kil", a, b) ** 2,
                    [((2, 3), normal), ((4, 3, 5), normal)], 2),
    "einsum_three": (lambda a, b, c: sd.einsum("ij,jk,ki->", a, b, c),
                     [((2, 3), normal), ((3, 4), normal), ((4, 2), normal)], 2),
    "einsum_diag_outer": (lambda a, v: sd.einsum("ii,j->ij", a, v) ** 2,
                          [((3, 3), normal), ((2,), normal)], 2),
    "cast_f32_roundtrip": (lambda x: sd.cast(sd.cast(x, "float32"), "float64") * 0 + x ** 2,
                           [(S, normal)], 2),
    "fn_swish": (SWISH, [(S, normal)], 2),
    "fn_two_args_broadcast": (SOFTCLIP, [(S, normal), ((4,), positive)], 2),
    "fn_rbf": (RBF1, [(S, normal)], 2),
    "lgamma": (sd.lgamma, [(S, positive)], 2),
    "digamma": (sd.digamma, [(S, positive)], 2),
    "polygamma": (lambda x: sd.polygamma(2, x), [(S, positive)], 2),
    "erf": (sd.erf, [(S, normal)], 2),
    "erfc": (sd.erfc, [(S, normal)], 2),
    "log_ndtr": (sd.log_ndtr, [(S, normal)], 2),
    # composites
    "relu": (sd.relu, [(S, away)], 2),
    "leaky_relu": (lambda x: sd.leaky_relu(x, 0.1), [(S, away)], 2),
    "prelu": (lambda x, a: sd.prelu(x, a), [(S, away), ((4,), positive)], 2),
    "elu": (sd.elu, [(S, away)], 2),
    "hard_tanh": (sd.hard_tanh, [(S, away_from_one)], 2),
    "square": (sd.square, [(S, normal)], 2),
    "mean": (lambda x: sd.mean(sd.exp(x), axis=0), [(S, normal)], 2),
    "min": (lambda x: sd.min(x, axis=0), [(S, normal)], 2),
    "logsumexp": (sd.logsumexp, [(S, normal)], 2),
    "softmax": (sd.softmax, [(S, normal)], 2),
    "log_softmax": (sd.log_softmax, [(S, normal)], 2),
    "log_sigmoid": (sd.log_sigmoid, [(S, normal)], 2),
    "swish": (sd.swish, [(S, normal)], 2),
    "abs_rect": (sd.abs_rect, [(S, away)], 2),
    "maxout": (lambda x: sd.maxout(x, 2), [(S, normal)], 2),
    "rbf": (lambda x, c: sd.rbf(x, c, 0.5), [(S, normal), ((5, 4), normal)], 2),
    "logaddexp": (sd.logaddexp, [(S, normal), ((4,), normal)], 2),
    "multigammaln": (lambda a: sd.special.multigammaln(a + 1.5, 3), [(S, positive)], 2),
    # losses
    "mse": (lambda p, t: sd.mse(p, t), [(S, normal), (S, normal)], 2),
    "bce_logits": (lambda z: sd.binary_cross_entropy_with_logits(z, np.array([0.0, 1.0, 1.0, 0.0])),
                   [(S, normal)], 2),
    "bce_probs": (lambda z: sd.binary_cross_entropy(sd.sigmoid(z), np.array([0.0, 1, 1, 0])),
                  [(S, normal)], 2),
    "softmax_ce_onehot": (lambda z: sd.softmax_cross_entropy(z, np.eye(4)[[0, 2, 1]]),
                          [(S, normal)], 2),
    "softmax_ce_labels": (lambda z: sd.softmax_cross_entropy(z, sd.const(LABELS)), [(S, normal)], 2),
    "cross_entropy_probs": (lambda z: sd.cross_entropy(sd.softmax(z), np.eye(4)[[0, 2, 1]]),
                            [(S, normal)], 2),
    "hinge": (lambda z: sd.hinge(z, np.array([1.0, -1.0, 1.0, -1.0])), [(S, lambda s: away(s) * 3)], 2),
    "exponential": (lambda z: sd.exponential_loss(z, np.array([1.0, -1.0, 1.0, -1.0])),
                    [(S, normal)], 2),
    "gaussian_nll": (lambda m, lv, t: sd.gaussian_nll(m, lv, t), [(S, normal)] * 3, 2),
    "mixture_nll": (lambda lg, m, ls, t: sd.mixture_nll(lg, m, ls, t),
                    [(S, normal), (S, normal), (S, normal), ((3,), normal)], 2),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_derivatives_match_finite_differences(name):
    build, inputs, order = CASES[name]
    xs = [sd.var(f"x{i}", shape) for i, (shape, _) in enumerate(inputs)]
    env = {x: domain(shape) for x, (shape, domain) in zip(xs, inputs)}
    check_grads(build(*xs), env, order=order)


def test_every_differentiable_op_has_both_rules():
    from symdiff.ops import NONDIFF, LEAVES, Op
    from symdiff.rules import JVP, VJP
    assert set(JVP) == set(VJP) == set(Op) - LEAVES
    for op in set(Op) - LEAVES:
        assert (JVP[op] is None) == (VJP[op] is None), op
        assert (JVP[op] is None) == (op in NONDIFF), op


def test_table_covers_every_differentiable_primitive():
    from symdiff.rules import DIFFERENTIABLE
    covered = set()
    for name, (build, inputs, _) in CASES.items():
        xs = [sd.var(f"x{i}", shape) for i, (shape, _) in enumerate(inputs)]
        covered |= {n.op for n in sd.toposort([build(*xs)])}
    assert DIFFERENTIABLE <= covered, DIFFERENTIABLE - covered


def test_vjp_rules_return_one_entry_per_source():
    from symdiff.rules import VJP
    from symdiff.graph import toposort
    for name, (build, inputs, _) in CASES.items():
        xs = [sd.var(f"x{i}", shape) for i, (shape, _) in enumerate(inputs)]
        for n in toposort([build(*xs)]):
            rule = VJP.get(n.op)
            if rule is not None and sd.dtypes.is_float(n.dtype):
                g = sd.var("g", n.shape, n.dtype)
                assert len(rule(n, g, 0)) == len(n.src), (name, n.op)
