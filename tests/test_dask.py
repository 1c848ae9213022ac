"""symdiff.dask: kernels over the row chunks of Dask arrays equal the single-process kernel on
the concatenated data, with the synchronous scheduler and with a real LocalCluster of two
worker processes (kernels travel pickled and compile on the workers)."""
import numpy as np
import pytest

import symdiff as sd

import dask.array as da                      # the `dask` extra, part of the test extra
import distributed
import symdiff.dask as sdd

R = np.random.default_rng(11)
N, D = 1000, 5


def logistic():
    x, y = sd.var("x", (None, D)), sd.var("y", (None,))
    w, b = sd.param("w", (D,)), sd.param("b", ())
    z = x @ w + b
    loss = sd.sum(sd.softplus(z) - y * z)                 # additive over rows
    return x, y, w, b, z, loss


def data(chunks=(137, 300, 63, 500)):
    Xn = R.standard_normal((N, D))
    yn = (R.random(N) < 1 / (1 + np.exp(-Xn @ np.arange(D)))).astype(float)
    return Xn, yn, da.from_array(Xn, chunks=(chunks, D)), da.from_array(yn, chunks=(chunks,))


def single(loss, params, env):
    return sd.evaluate([loss] + sd.grad(loss, list(params)), {**env, **params})


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_value_and_grad_over_uneven_chunks(backend):
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data()
    params = {w: R.standard_normal(D), b: np.array(0.2)}
    value, grads = sdd.value_and_grad_over(loss, X, Y, params, [x, y], backend=backend,
                                           scheduler="sync")
    want = single(loss, params, {x: Xn, y: yn})
    np.testing.assert_allclose(value, want[0], rtol=1e-12)
    np.testing.assert_allclose(grads[w], want[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads[b], want[2], rtol=1e-12, atol=1e-12)


def test_minimize_over_matches_the_single_process_fit_and_map_rows_predicts():
    from scipy.optimize import minimize
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data()
    start = {w: np.zeros(D), b: np.array(0.0)}
    fitted, res = sdd.minimize_over(loss, X, Y, start, [x, y], scheduler="sync",
                                    options={"gtol": 1e-10})
    assert res.success

    def fun(t):                               # the same fit on the whole array, no Dask
        vals = single(loss, {w: t[:D], b: np.array(t[D])}, {x: Xn, y: yn})
        return float(vals[0]), np.append(vals[1], vals[2])
    ref = minimize(fun, np.zeros(D + 1), jac=True, method="L-BFGS-B",
                   options={"gtol": 1e-10})
    np.testing.assert_allclose(np.append(fitted[w], fitted[b]), ref.x, rtol=1e-6, atol=1e-8)
    f = sd.compile([x, w, b], sd.sigmoid(z))
    proba = sdd.map_rows(f, X, broadcast=[fitted[w], fitted[b]])
    assert isinstance(proba, da.Array) and proba.chunks == X.chunks[:1]
    np.testing.assert_allclose(proba.compute(scheduler="sync"),
                               1 / (1 + np.exp(-(Xn @ fitted[w] + fitted[b]))), rtol=1e-12)


def test_errors():
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data()
    with pytest.raises(ValueError, match="same number of rows"):
        sdd.value_and_grad_over(loss, X, Y[:10], {w: np.zeros(D), b: np.array(0.0)}, [x, y],
                                scheduler="sync")
    with pytest.raises(ValueError, match="2 inputs for 1 arrays"):
        sdd.value_and_grad_over(loss, X, None, {w: np.zeros(D)}, [x, y], scheduler="sync")


def test_a_local_cluster_of_two_worker_processes(cache_dir):
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data()
    params = {w: R.standard_normal(D), b: np.array(-0.1)}
    want = single(loss, params, {x: Xn, y: yn})
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        value, grads = sdd.value_and_grad_over(loss, X, Y, params, [x, y])
        workers = client.run(lambda: __import__("os").getpid())
    assert len(set(workers.values())) == 2
    np.testing.assert_allclose(value, want[0], rtol=1e-12)
    np.testing.assert_allclose(grads[w], want[1], rtol=1e-12, atol=1e-12)


def test_sgd_over_equals_the_same_steps_in_one_process():
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data(chunks=(400, 600))
    start = {w: np.zeros(D), b: np.array(0.0)}
    fitted, losses = sdd.sgd_over(loss, X, Y, start, [x, y], lr=0.5, epochs=2,
                                  steps_per_epoch=4, momentum=0.9, scheduler="sync")
    # the same steps on the whole array: step s uses rows s/4..(s+1)/4 of each chunk
    g = sd.grad(loss, [w, b])
    p, v, ref = {w: np.zeros(D), b: np.array(0.0)}, {w: 0.0, b: 0.0}, []
    for _ in range(2):
        for s in range(4):
            rows = np.concatenate([np.arange(400)[s * 100:(s + 1) * 100],
                                   400 + np.arange(600)[s * 150:(s + 1) * 150]])
            env = {x: Xn[rows], y: yn[rows], **p}
            vals = sd.evaluate([loss] + g, env)
            ref.append(float(vals[0]) / len(rows))
            for q, gq in zip((w, b), vals[1:]):
                v[q] = 0.9 * v[q] - 0.5 * gq / len(rows)
                p[q] = p[q] + v[q]
    np.testing.assert_allclose(losses, ref, rtol=1e-12)
    np.testing.assert_allclose(fitted[w], p[w], rtol=1e-12, atol=1e-13)
    assert losses[-1] < losses[0]
