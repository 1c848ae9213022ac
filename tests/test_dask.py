"""symdiff.dask: kernels over the row chunks of Dask arrays equal the single-process kernel on
the concatenated data, with the synchronous scheduler and with a real LocalCluster of two
worker processes (kernels travel pickled and compile on the workers)."""
import gc
import time

import numpy as np
import pytest

import symdiff as sd

import dask                                  # the `dask` extra, part of the test extra
import dask.array as da
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
        # data persisted on the workers: one task per worker thread sums its own chunks
        Xp, Yp = client.persist([da.from_array(Xn, chunks=(100, D)), da.from_array(yn, 100)])
        groups = sdd._placement([Xp, Yp], client)
        who = client.who_has(client.futures_of(Xp))
        keys = [k[0] for k in Xp.__dask_keys__()]
        where = [{who[keys[i]][0] for i in g} for g in groups]
        persisted = sdd.value_and_grad_over(loss, Xp, Yp, params, [x, y], scheduler=client)
        derived = sdd._placement([Xp * 1.0, Yp], client)       # chunks not in memory: one task each
        # a fit holds arrays computed from persisted ones (Xp * 1.0), so its steps group too;
        # persisted and lazily generated arrays stay as they are
        lazy = da.from_array(Xn, chunks=(100, D))
        held = sdd._held([Xp * 1.0, Yp, lazy], client)
        regrouped = sdd._placement(held[:2], client)
        steps = dict(lr=0.5, epochs=2, steps_per_epoch=5)
        fit_p, _ = sdd.sgd_over(loss, Xp, Yp, params, [x, y], **steps)
        fit_d, _ = sdd.sgd_over(loss, Xp * 1.0, Yp, params, [x, y], **steps)
        # the held chunks live as long as the fit's prepared data (time for a release to
        # reach the scheduler; a dropped hold fails with "lost dependencies")
        # (Xp + 0.0: keys no other array of the test holds)
        prepared = sdd._prepare(loss, Xp + 0.0, Yp, params, [x, y], "numba", "sum", None,
                                hold=True)
        gc.collect()
        time.sleep(0.5)
        later = sdd._value_and_grad(prepared, prepared[0], None, None, "sum")
        # which client a call uses follows its scheduler= (a local scheduler: none)
        chosen = [sdd._client(s) for s in (None, "distributed", client, "sync", "threads")]
    assert chosen == [client, client, client, None, None] and sdd._client() is None
    assert held[1] is Yp and held[2] is lazy and held[0] is not Xp
    assert sorted(sum(regrouped, [])) == list(range(10)) and len(regrouped) <= 2
    for p in (w, b):
        np.testing.assert_allclose(fit_d[p], fit_p[p], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(later[0], want[0], rtol=1e-12)
    assert len(set(workers.values())) == 2
    np.testing.assert_allclose(value, want[0], rtol=1e-12)
    np.testing.assert_allclose(grads[w], want[1], rtol=1e-12, atol=1e-12)
    assert sorted(sum(groups, [])) == list(range(10)) and all(len(s) == 1 for s in where)
    assert len(groups) == len(set().union(*where)) <= 2        # a group per worker thread
    assert derived is None
    np.testing.assert_allclose(persisted[0], want[0], rtol=1e-12)
    np.testing.assert_allclose(persisted[1][w], want[1], rtol=1e-12, atol=1e-12)


def test_numpy_inputs_that_dask_splits_train_like_the_same_chunks():
    """A NumPy array bigger than dask's chunk size becomes several chunks: the steps take
    their rows per chunk like a Dask array of those chunks, and map_rows maps every chunk
    (the row counts come from the chunks, not from the whole array)."""
    x, y, w, b, z, loss = logistic()
    Xn, yn, _, _ = data()
    start = {w: np.zeros(D), b: np.array(0.0)}
    steps = dict(lr=0.5, epochs=1, steps_per_epoch=3, scheduler="sync")
    f = sd.compile([x, w, b], z, backend="numpy")
    with dask.config.set({"array.chunk-size": "8KiB"}):
        split = da.from_array(Xn).chunks[0]
        fitted, losses = sdd.sgd_over(loss, Xn, yn, start, [x, y], **steps)
        scores = sdd.map_rows(f, Xn, broadcast=[np.ones(D), np.array(0.5)])
    assert len(split) > 1
    assert scores.chunks[0] == split           # every chunk's rows, not the first's alone
    np.testing.assert_allclose(scores.compute(scheduler="sync"), Xn.sum(axis=1) + 0.5,
                               rtol=1e-12)
    want, want_losses = sdd.sgd_over(loss, da.from_array(Xn, chunks=(split, D)),
                                     da.from_array(yn, chunks=(split,)), start, [x, y], **steps)
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12)
    for p in (w, b):
        np.testing.assert_allclose(fitted[p], want[p], rtol=1e-12, atol=1e-14)


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


def _local_sgd_reference(loss, params, w, b, x, y, Xn, yn, chunks, lr, batch, k, epochs):
    """Local SGD written out on the whole array: chunk c of rows [start, start + n) runs k
    plain SGD steps per round; the parameters are averaged weighted by rows seen."""
    g = sd.grad(loss, [w, b])
    starts = np.cumsum((0,) + chunks[:-1])
    batches = [[(lo, min(lo + batch, n)) for lo in range(0, n, batch)] for n in chunks]
    rounds = -(-max(map(len, batches)) // k)
    p, losses = dict(params), []
    for r in range(epochs * rounds):
        j = (r % rounds) * k
        results = []
        for start, bs in zip(starts, batches):
            if not bs[j:j + k]:
                continue
            q, total, rows = dict(p), 0.0, 0
            for lo, hi in bs[j:j + k]:
                env = {x: Xn[start + lo:start + hi], y: yn[start + lo:start + hi], **q}
                vals = sd.evaluate([loss] + g, env)
                total += float(vals[0])
                rows += hi - lo
                q = {w: q[w] - lr * vals[1] / (hi - lo), b: q[b] - lr * vals[2] / (hi - lo)}
            results.append((q, total, rows))
        n = sum(r_[2] for r_ in results)
        p = {v: sum(q[v] * m for q, _, m in results) / n for v in (w, b)}
        losses.append(sum(t for _, t, _ in results) / n)
    return p, losses


def test_local_sgd_over_averages_the_chunks_local_steps():
    x, y, w, b, z, loss = logistic()
    chunks = (300, 450, 250)
    Xn, yn, X, Y = data(chunks=chunks)
    start = {w: np.zeros(D), b: np.array(0.0)}
    fitted, losses = sdd.local_sgd_over(loss, X, Y, start, [x, y], lr=0.3, epochs=2,
                                        batch_size=64, average_every=3, scheduler="sync")
    ref, ref_losses = _local_sgd_reference(loss, start, w, b, x, y, Xn, yn, chunks, 0.3, 64,
                                           3, 2)
    assert len(losses) == 2 * 3                 # ceil(ceil(450 / 64) / 3) rounds per epoch
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-12)
    np.testing.assert_allclose(fitted[w], ref[w], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fitted[b], ref[b], rtol=1e-12, atol=1e-14)
    assert losses[-1] < losses[0]


def test_callback_stops_the_fit():
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data(chunks=(500, 500))
    seen = []
    fitted, losses = sdd.sgd_over(loss, X, Y, {w: np.zeros(D), b: np.array(0.0)}, [x, y],
                                  lr=0.5, epochs=3, steps_per_epoch=5, scheduler="sync",
                                  callback=lambda s, p, l: seen.append(s) or s == 6)
    assert seen == list(range(7)) and len(losses) == 7


@pytest.mark.parametrize("persisted", [False, True], ids=["graph", "persisted"])
def test_a_worker_killed_mid_fit_does_not_change_the_result(cache_dir, persisted):
    """A LocalCluster's worker process is killed (SIGKILL) while a step is being computed;
    its nanny restarts it, dask re-runs the lost tasks (retries), and the fit ends with the
    parameters of an undisturbed run, to rounding. With the data persisted on the workers,
    the chunks the dead worker held are recomputed from their graph."""
    import os
    import signal
    import threading
    x, y, w, b, z, loss = logistic()
    Xn, yn, X, Y = data(chunks=(125,) * 8)
    start = {w: np.zeros(D), b: np.array(0.0)}
    args = dict(lr=0.5, epochs=2, steps_per_epoch=5, momentum=0.9)
    want, want_losses = sdd.sgd_over(loss, X, Y, start, [x, y], scheduler="sync", **args)
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None, host="127.0.0.1") as cluster, \
            distributed.Client(cluster) as client:
        if persisted:
            X, Y = client.persist([X, Y])
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        killed = []

        def kill_during_next_step(step, params, mean_loss):
            if step == 2:                        # mid-fit: while step 3's tasks run
                timer = threading.Timer(0.01, lambda: killed.append(os.kill(victim,
                                                                            signal.SIGKILL)))
                timer.start()
        got, losses = sdd.sgd_over(loss, X, Y, start, [x, y], retries=3,
                                   callback=kill_during_next_step, **args)
        client.wait_for_workers(2, timeout=60)
        after = client.run(os.getpid)
    assert killed and victim not in after.values()
    np.testing.assert_allclose(losses, want_losses, rtol=1e-12)
    np.testing.assert_allclose(got[w], want[w], rtol=1e-12, atol=1e-14)


def test_a_mean_loss_with_a_penalty_gives_the_mean_over_all_rows():
    """reduction='mean': chunks of different sizes are weighted by their rows, and a penalty
    (added once per chunk mean) stays counted once."""
    x, y, w, b, z, loss = logistic()
    mean_loss = sd.mean(sd.softplus(z) - y * z) + 0.1 * sd.sum(w * w)
    Xn, yn, X, Y = data()
    params = {w: R.standard_normal(D), b: np.array(0.3)}
    value, grads = sdd.value_and_grad_over(mean_loss, X, Y, params, [x, y], backend="numpy",
                                           scheduler="sync", reduction="mean")
    want = single(mean_loss, params, {x: Xn, y: yn})
    np.testing.assert_allclose(value, want[0], rtol=1e-12)
    np.testing.assert_allclose(grads[w], want[1], rtol=1e-12, atol=1e-14)
    with pytest.raises(ValueError, match="reduction must be 'sum' or 'mean'"):
        sdd.value_and_grad_over(mean_loss, X, Y, params, [x, y], scheduler="sync",
                                reduction="avg")


def test_an_estimator_fits_on_dask_arrays_by_the_documented_sgd_steps():
    """MLPRegressor.fit on Dask arrays: each step takes batch_size rows of every chunk and
    follows v <- mu v - lr g, p <- p + v on their mean loss (written out here with the
    interpreter); predict returns a Dask array equal to predict on the computed X."""
    from symdiff.models import MLPRegressor
    Xn = R.standard_normal((120, 3))
    yn = np.sin(Xn[:, 0]) + 0.5 * Xn[:, 1]
    X, Y = da.from_array(Xn, chunks=(60, 3)), da.from_array(yn, chunks=60)
    reg = MLPRegressor(hidden=(5,), lr=0.05, momentum=0.9, batch_size=20, epochs=3,
                       backend="numpy")
    losses = []
    reg.fit(X, Y, callback=lambda est, epoch, loss: losses.append(loss))
    ref = MLPRegressor(hidden=(5,), backend="numpy").partial_fit(Xn[:2], yn[:2])
    model = ref.trainer_.model
    p = {q: np.array(model.init[q]) for q in model.params}
    v = {q: 0.0 for q in model.params}
    g = sd.grad(model.loss, model.params)
    ref_losses = []
    for _ in range(3):
        steps = []
        for s in range(3):                            # 60 rows per chunk / 20 per batch
            rows = np.concatenate([np.arange(s * 20, s * 20 + 20),
                                   60 + np.arange(s * 20, s * 20 + 20)])
            vals = sd.evaluate([model.loss] + g, {model.x: Xn[rows],
                                                  model.y: yn[rows, None], **p})
            steps.append(float(vals[0]))
            for q, gq in zip(model.params, vals[1:]):
                v[q] = 0.9 * v[q] - 0.05 * gq
                p[q] = p[q] + v[q]
        ref_losses.append(np.mean(steps))
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-10)
    assert reg.n_iter_ == 3 and reg.loss_curve_ == losses
    for q in model.params:
        got = next(a for k, a in reg.trainer_.params.items() if k.name == q.name)
        np.testing.assert_allclose(got, p[q], rtol=1e-10, atol=1e-12)
    pred = reg.predict(X)
    assert isinstance(pred, da.Array) and pred.shape == (120,)
    np.testing.assert_array_equal(pred.compute(), reg.predict(Xn))


def test_a_classifier_on_dask_arrays_learns_and_predicts_in_chunks():
    from sklearn.datasets import load_iris
    from symdiff.models import MLPClassifier
    Xn, yn = load_iris(return_X_y=True)
    Xn = (Xn - Xn.mean(0)) / Xn.std(0)
    labels = np.array(["setosa", "versicolor", "virginica"])[yn]
    X, Y = da.from_array(Xn, chunks=(50, 4)), da.from_array(labels, chunks=50)
    clf = MLPClassifier(hidden=(8,), lr=0.1, batch_size=10, epochs=60, dtype="float64",
                        backend="numpy").fit(X, Y)
    assert list(clf.classes_) == ["setosa", "versicolor", "virginica"]
    proba = clf.predict_proba(X)
    assert isinstance(proba, da.Array) and proba.shape == (150, 3)
    np.testing.assert_allclose(proba.compute(), clf.predict_proba(Xn), rtol=1e-12)
    assert clf.score(X, Y) >= 0.9
    assert (clf.predict(X).compute() == labels).mean() == clf.score(Xn, labels)


def test_dask_fit_errors_name_the_problem():
    from symdiff.models import MLPClassifier, Perceptron
    X, Y = da.zeros((40, 3), chunks=20), da.zeros(40, chunks=20)
    with pytest.raises(ValueError, match="optimizer='adam' is not supported"):
        MLPClassifier(optimizer="adam", backend="numpy").fit(X, Y)
    with pytest.raises(ValueError, match="one row per row of X"):
        MLPClassifier(backend="numpy").fit(X, Y[:30])
    with pytest.raises(ValueError, match="its own rule"):
        Perceptron(backend="numpy").fit(X, Y)
