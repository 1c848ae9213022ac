"""The tensor-language objectives against independent oracles: scikit-learn's
GaussianMixture, a NumPy bundle-adjustment reference, finite differences, and PyTorch."""
import numpy as np
import pytest

import symdiff as sd
from gradcheck import check_grads
from symdiff.models.objectives import (bundle_residuals, gmm_loglik, pack_precision_cholesky,
                                       rosenbrock)

R = np.random.default_rng(3)


@pytest.mark.parametrize("backend", ["numba", "numpy"])
def test_gmm_matches_scikit_learn_score_samples(backend):
    from sklearn.mixture import GaussianMixture
    d, K = 4, 3
    X = np.concatenate([R.normal(size=(200, d)), R.normal(3, 1.5, size=(200, d))])
    gm = GaussianMixture(K, random_state=0).fit(X)
    x, a = sd.var("x", ("n", d)), sd.param("alphas", (K,))
    mu, icf = sd.param("means", (K, d)), sd.param("icf", (K, d + d * (d - 1) // 2))
    f = sd.compile([x, a, mu, icf], gmm_loglik(x, a, mu, icf), backend=backend)
    got = f(X, np.log(gm.weights_), gm.means_, pack_precision_cholesky(gm.precisions_cholesky_))
    np.testing.assert_allclose(got, gm.score_samples(X), rtol=1e-8)


def test_gmm_gradient_matches_finite_differences():
    d, K = 3, 2
    x, a = sd.var("x", (5, d)), sd.param("alphas", (K,))
    mu, icf = sd.param("means", (K, d)), sd.param("icf", (K, d + 3))
    env = {x: R.normal(size=(5, d)), a: R.normal(size=K), mu: R.normal(size=(K, d)),
           icf: R.normal(size=(K, d + 3)) * 0.3}
    check_grads(sd.sum(gmm_loglik(x, a, mu, icf)), env, wrt=[a, mu, icf], order=2)


def _rodrigues(r, X):
    theta = np.sqrt((r * r).sum(1, keepdims=True) + 1e-30)
    k = r / theta
    return X * np.cos(theta) + np.cross(k, X) * np.sin(theta) + \
        k * (k * X).sum(1, keepdims=True) * (1 - np.cos(theta))


def _bundle_numpy(cams, points, ci, pi, obs):
    c, X = cams[ci], points[pi]
    P = _rodrigues(c[:, :3], X) + c[:, 3:6]
    p = -P[:, :2] / P[:, 2:3]
    r2 = (p * p).sum(1, keepdims=True)
    return c[:, 6:7] * (1 + c[:, 7:8] * r2 + c[:, 8:9] * r2 ** 2) * p - obs


def _bundle_problem(n_cams=4, n_pts=6, n_obs=15):
    cams = np.concatenate([R.normal(0, 0.3, (n_cams, 3)), R.normal(0, 1, (n_cams, 2)),
                           R.normal(-8, 1, (n_cams, 1)), R.uniform(400, 600, (n_cams, 1)),
                           R.normal(0, 1e-3, (n_cams, 2))], axis=1)
    return (cams, R.normal(size=(n_pts, 3)), R.integers(0, n_cams, n_obs),
            R.integers(0, n_pts, n_obs), R.normal(size=(n_obs, 2)))


def test_bundle_residuals_match_numpy_and_gradients_finite_differences():
    cams_v, pts_v, ci_v, pi_v, obs_v = _bundle_problem()
    cams, pts = sd.param("cams", cams_v.shape), sd.param("pts", pts_v.shape)
    ci, pi = sd.var("ci", ("obs",), "int64"), sd.var("pi", ("obs",), "int64")
    obs = sd.var("observed", ("obs", 2))
    res = bundle_residuals(cams, pts, ci, pi, obs)
    loss = sd.sum(res * res)
    f = sd.compile([cams, pts, ci, pi, obs], [res, loss] + sd.grad(loss, [cams, pts]))
    got = f(cams_v, pts_v, ci_v, pi_v, obs_v)
    np.testing.assert_allclose(got[0], _bundle_numpy(cams_v, pts_v, ci_v, pi_v, obs_v),
                               rtol=1e-11)
    env = {cams: cams_v, pts: pts_v, ci: ci_v, pi: pi_v, obs: obs_v}
    for k, want in enumerate(sd.evaluate(sd.grad(loss, [cams, pts]), env)):
        np.testing.assert_allclose(got[2 + k], want, rtol=1e-10, atol=1e-8)
    small = {**env, cams: cams_v * [1, 1, 1, 1, 1, 1, 1e-2, 1, 1]}   # keep FD well scaled
    check_grads(sd.sum(res) * 1e-2, small, wrt=[cams, pts], order=1, rtol=1e-5)
    for mode in ("forward", "auto"):
        J = sd.jacobian(sd.sum(res), pts, mode=mode)
        np.testing.assert_allclose(sd.evaluate(J, env), sd.evaluate(sd.grad(sd.sum(res), pts),
                                                                     env), rtol=1e-10)


def test_rosenbrock_minimum_and_readme_form():
    x = sd.var("x", (7,))
    g = sd.grad(rosenbrock(x), x)
    np.testing.assert_allclose(sd.evaluate(g, {x: np.ones(7)}), 0, atol=0)
    check_grads(rosenbrock(x), {x: R.uniform(-2, 2, 7)}, order=2)


torch = pytest.importorskip("torch")


def _torch_cases():
    """(symdiff builder, torch builder, input shapes) with the same math on both sides."""
    i3 = np.array([2, 0, 2, 1])
    seg = np.array([1, 1, 0, 3, 3])
    return {
        "slices": (lambda a, b: a[1:, ::-2] * b[:3, None, 1],
                   lambda a, b: a[1:].flip(1)[:, ::2] * b[:3, None, 1], [(4, 5), (6, 3)]),
        "concatenate": (lambda a, b: sd.concatenate([a, sd.tanh(b).T], axis=1),
                        lambda a, b: torch.cat([a, torch.tanh(b).T], dim=1), [(3, 2), (4, 3)]),
        "take": (lambda a, b: sd.take(a, i3, axis=1) * b[:, None],
                 lambda a, b: torch.index_select(a, 1, torch.tensor(i3)) * b[:, None],
                 [(3, 4), (3,)]),
        "take_along_axis": (
            lambda a, b: sd.take_along_axis(a, np.array([[0, 3], [1, 1], [2, 0]]), 1),
            lambda a, b: torch.gather(a, 1, torch.tensor([[0, 3], [1, 1], [2, 0]])),
            [(3, 4), (1,)]),
        "scatter_add": (lambda a, b: sd.scatter_add(a, i3, b, axis=0),
                        lambda a, b: a.index_add(0, torch.tensor(i3), b), [(3, 2), (4, 2)]),
        "segment_sum": (lambda a, b: sd.segment_sum(a * b, seg, 4),
                        lambda a, b: torch.zeros(4, 2, dtype=a.dtype).index_add(
                            0, torch.tensor(seg), a * b), [(5, 2), (2,)]),
        "einsum": (lambda a, b: sd.einsum("bij,jk->bik", a, b),
                   lambda a, b: torch.einsum("bij,jk->bik", a, b), [(2, 3, 4), (4, 5)]),
        "einsum_trace": (lambda a, b: sd.einsum("ii,jk->jk", a, b),
                         lambda a, b: torch.einsum("ii,jk->jk", a, b), [(3, 3), (2, 2)]),
    }


@pytest.mark.parametrize("name", sorted(_torch_cases()))
def test_values_and_gradients_match_pytorch(name):
    build, tbuild, shapes = _torch_cases()[name]
    vals = [R.normal(size=s) for s in shapes]
    xs = [sd.var(f"x{i}", s) for i, s in enumerate(shapes)]
    out = build(*xs)
    w = R.normal(size=out.shape)
    grads = sd.grad(sd.sum(sd.sin(out) * w), xs)
    ts = [torch.tensor(v, requires_grad=True) for v in vals]
    tout = tbuild(*ts)
    (torch.sin(tout) * torch.tensor(w)).sum().backward()
    got = sd.evaluate([out] + grads, dict(zip(xs, vals)))
    np.testing.assert_allclose(got[0], tout.detach().numpy(), rtol=1e-10, atol=1e-12)
    for g, t in zip(got[1:], ts):
        want = np.zeros(t.shape) if t.grad is None else t.grad.numpy()   # unused input: 0
        np.testing.assert_allclose(g, want, rtol=1e-10, atol=1e-12)
