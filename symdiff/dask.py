"""Compiled kernels over the row chunks of Dask arrays: distributed losses, gradients,
predictions and full-batch training, with Dask as the scheduler and transport.

Needs the ``dask`` extra (``pip install -e ".[dask]"``: dask[array, distributed]). Kernels
travel to workers pickled (as their compile recipe) and compile once per worker process
(from the disk cache when it holds them). Parameters are sent once per evaluation: as one
literal task each when a ``dask.distributed`` client is active (each worker fetches them
once), otherwise passed to the local scheduler.

The loss given to ``value_and_grad_over`` must add up over rows (a sum, not a mean): the
value on the whole data is then the sum of the chunks' values, whatever the chunk sizes, and
so is the gradient. The chunks' results are added by a tree reduction.

>>> import numpy as np, dask.array as da, symdiff as sd
>>> import symdiff.dask as sdd
>>> x, y = sd.var("x", (None, 3)), sd.var("y", (None,))
>>> w = sd.param("w", (3,))
>>> loss = sd.sum((x @ w - y) ** 2)                       # additive over rows
>>> X = da.from_array(np.arange(30.0).reshape(10, 3), chunks=4)
>>> Y = da.ones(10, chunks=4)
>>> value, grads = sdd.value_and_grad_over(loss, X, Y, {w: np.zeros(3)}, inputs=[x, y],
...                                        backend="numpy", scheduler="sync")
>>> float(value), grads[w].shape
(10.0, (3,))
"""
import contextlib
import hashlib
import pickle

import dask
import dask.array as da
import numpy as np
from dask import delayed

from .api import value_and_grad
from .function import compile as _compile

_kernels = {}          # (loss, params, inputs, backend) -> compiled value-and-gradient
_ships = {}            # (id(kernel), row_sums) -> its _Shipped form


def _shipped(kernel, row_sums=False):
    """The kernel's task-argument form (pickled once per kernel and client process)."""
    key = (id(kernel), row_sums)
    if key not in _ships or _ships[key].kernel is not kernel:
        _ships[key] = _Shipped(kernel, row_sums)
    return _ships[key]


def _value_and_grad_kernel(loss, params, inputs, backend):
    """The compiled [loss, gradients...] of ``loss`` w.r.t. ``params`` (cached per process)."""
    key = (loss, tuple(params), tuple(inputs), backend)
    if key not in _kernels:
        _kernels[key] = _compile(list(inputs) + list(params),
                                 value_and_grad(loss, list(params)), backend=backend)
    return _kernels[key]


class _Shipped:
    """A compiled kernel as a task argument. It pickles once, to bytes named by their hash;
    dask tokenizes it by that name (not by pickling it per task), and a worker process
    unpickles (compiles, or loads from the disk cache) each name once.

    With ``row_sums`` the results are sums over the rows given: a loss that is a mean over
    rows (penalties included) and its gradient are multiplied by the row count n, since
    n * mean_c = sum over the chunk's rows. Chunks' sums then add up to the sum over all
    rows, whatever the chunk sizes."""

    def __init__(self, kernel, row_sums=False, blob=None):
        self.kernel, self.row_sums = kernel, row_sums
        self.blob = pickle.dumps(kernel) if blob is None else blob
        self.name = hashlib.sha256(self.blob).hexdigest()

    def __dask_tokenize__(self):
        return self.name, self.row_sums

    def __reduce__(self):
        return _arrive, (self.name, self.blob, self.row_sums)

    def __call__(self, *arrays):
        """The kernel's outputs as a list of arrays that the task owns (copies)."""
        out = self.kernel(*arrays)
        out = [np.array(o) for o in (out if isinstance(out, list) else [out])]
        n = len(arrays[0])
        return [o * o.dtype.type(n) for o in out] if self.row_sums else out


_arrived = {}          # name -> kernel unpickled in this process


def _arrive(name, blob, row_sums):
    if name not in _arrived:
        _arrived[name] = pickle.loads(blob)
    return _Shipped(_arrived[name], row_sums, blob)


def _client(scheduler=None):
    """The dask.distributed client that ``dask.compute(..., scheduler=scheduler)`` runs on:
    ``scheduler`` itself when it is a ``Client``, the default client when it is None or
    "distributed", and None for a local scheduler ("sync", "threads", "processes", a get
    function) or when there is no client: then nothing is persisted, grouped by worker or
    sent as cluster keys, even if some other client is the default."""
    try:
        from distributed import Client, get_client
    except ImportError:
        return None
    if isinstance(scheduler, Client):
        return scheduler
    if scheduler is not None and scheduler not in ("distributed", "dask.distributed"):
        return None
    try:
        return get_client()
    except ValueError:                 # no client in this process
        return None


def _aligned(arrays):
    """``arrays`` as Dask arrays, each rechunked to one chunk per row block of the first."""
    arrays = [a if isinstance(a, da.Array) else da.from_array(np.asarray(a)) for a in arrays]
    rows = arrays[0].chunks[0]
    out = []
    for a in arrays:
        if a.shape[0] != arrays[0].shape[0]:
            raise ValueError(f"symdiff.dask: arrays must have the same number of rows, got "
                             f"{arrays[0].shape[0]} and {a.shape[0]}")
        out.append(a.rechunk((rows,) + tuple((d,) for d in a.shape[1:])))
    return out


def _rows(arrays):
    """Per row chunk, the blocks of every array (each rechunked to one chunk per row block,
    all sharing the first array's row chunks)."""
    out = [a.to_delayed().reshape(len(a.chunks[0]), -1)[:, 0] for a in _aligned(arrays)]
    return [list(blocks) for blocks in zip(*out)]


def _held(arrays, client):
    """``arrays`` (aligned), with those computed from data persisted on the cluster (X.astype,
    labels encoded from a persisted y) persisted too: a fit of many steps would otherwise
    compute them again at every step, one task per chunk, and its steps could not run one
    task per worker thread (``_placement``). They stay in the workers' memory for as long as
    the fit holds them. Arrays with no persisted data under them are left lazy (holding a
    generated dataset is the caller's choice). ``client``: the fit's (None: leave them)."""
    if client is None:
        return arrays
    from dask.core import flatten
    from distributed import futures_of, wait
    derived = []
    for i, a in enumerate(arrays):
        futures = {f.key for f in futures_of(a)}
        if futures and not futures.issuperset(flatten(a.__dask_keys__())):
            derived.append(i)
    if not derived:
        return arrays
    held = client.persist([arrays[i] for i in derived])
    wait(held)
    out = list(arrays)
    for i, a in zip(derived, held):
        out[i] = a
    return out


def _placement(data, client):
    """Groups of row-chunk indices, one per thread of the worker that holds the chunks of
    ``data[0]`` in memory (each in chunk order), or None: no dask.distributed ``client``, or the
    first array is not persisted on the cluster with one chunk per row block.

    One task per group instead of one per chunk: dask.distributed costs about 2 ms per task
    here, so a step over 64 small chunks cost ~150 ms of scheduling. dask's scheduler runs
    each group's task on the worker that holds most of its data, that is, where its chunks
    are; nothing moves but the small arrays (labels) that live elsewhere."""
    first = data[0]
    if client is None or not isinstance(first, da.Array) or \
            any(len(c) != 1 for c in first.chunks[1:]):
        return None
    futures = {f.key: f for f in client.futures_of(first)}
    keys = [k if first.ndim == 1 else k[0] for k in first.__dask_keys__()]
    if any(k not in futures for k in keys):    # chunks computed from persisted data (X.T,
        return None                            # X.astype(...)) are not in memory: no groups
    from distributed import wait
    held = [futures[k] for k in keys]
    wait(held)
    who, threads = client.who_has(held), client.nthreads()
    by_worker = {}
    for i, key in enumerate(keys):
        by_worker.setdefault(who[key][0] if who.get(key) else "", []).append(i)
    return [chunks[t::threads.get(w, 1)] for w, chunks in sorted(by_worker.items())
            for t in range(min(threads.get(w, 1), len(chunks)))]


def _group_sum(kernel, cuts, m, *args):
    """The sum, in chunk order, of ``kernel`` on each chunk of a group: ``args`` are the m
    values (parameters) and then each chunk's blocks; ``cuts[i]`` = (lo, hi) takes rows
    lo:hi of chunk i (None: all rows)."""
    values, blocks = args[:m], args[m:]
    n = len(blocks) // len(cuts)
    total = None
    for i, cut in enumerate(cuts):
        chunk = blocks[i * n:(i + 1) * n]
        out = kernel(*(chunk if cut is None else [a[cut[0]:cut[1]] for a in chunk]), *values)
        total = out if total is None else [t + o for t, o in zip(total, out)]
    return total


def _parts(kernel, blocks, values, groups, cuts=None):
    """Delayed kernel results to add up: one per group of chunks (``_placement``), or one per
    chunk when there are no groups. ``cuts``: rows (lo, hi) of every chunk (None: all)."""
    cuts = cuts or [None] * len(blocks)
    groups = groups or [[i] for i in range(len(blocks))]
    groups = [[i for i in g if cuts[i] is None or cuts[i][1] > cuts[i][0]] for g in groups]
    return [delayed(_group_sum, pure=True)(kernel, [cuts[i] for i in g], len(values), *values,
                                           *[a for i in g for a in blocks[i]])
            for g in groups if g]


def _add(*parts):
    out = list(parts[0])
    for p in parts[1:]:
        out = [x + y for x, y in zip(out, p)]
    return out


def _tree_sum(parts, fan_in=8):
    """Sums of ``fan_in`` results at a time, log_8(n) levels deep: no task receives every
    chunk's result, and a sum of 64 chunks costs 9 add tasks, not 63. The order of the
    additions is fixed by the chunks' order, so the result does not depend on timing."""
    while len(parts) > 1:
        parts = [delayed(_add, pure=True)(*parts[i:i + fan_in]) if len(parts[i:i + fan_in]) > 1
                 else parts[i] for i in range(0, len(parts), fan_in)]
    return parts[0]


def _compute(total, scheduler, retries):
    """Compute one delayed result. ``retries`` (a dask.distributed client only) re-runs a
    task that failed or whose worker died that many times; lost inputs are recomputed from
    the graph, so the result does not change."""
    if retries and _client(scheduler) is not None:
        (out,) = dask.compute(total, scheduler=scheduler, retries=retries)
    else:
        (out,) = dask.compute(total, scheduler=scheduler)
    return out


def _send(values, client):
    """Parameter values as task arguments. With a client: one graph key per value, holding it
    as a literal (under a fresh name, so nothing hashes the array); a worker that needs it
    fetches it once. Not ``client.scatter(broadcast=True)``: a worker that dies during a
    broadcast leaves the scheduler retrying the dead worker forever (dask/distributed#5704,
    seen here as a hang), and scattered data lost with a worker cannot be recomputed, while a
    literal key can (``retries=``). ``client``: the one that computes (None: values as they are)."""
    if client is None:
        return list(values)
    import uuid
    return [delayed(v, name=f"symdiff-value-{uuid.uuid4().hex}") for v in values]


def value_and_grad_over(loss, X, y, params, inputs, backend="numba", scheduler=None,
                        retries=None, reduction="sum"):
    """(loss value, {param: gradient}) of an additive ``loss`` over the rows of Dask arrays
    ``X`` and ``y``, bound to the symbolic ``inputs`` (e.g. [x, y]); ``params`` maps each
    param node to its current value. Equal, to rounding, to the single-process value on the
    concatenated data. ``y=None`` for a loss of X alone. ``retries`` (with a distributed
    client) survives workers that die during the call. ``reduction="mean"`` for a loss that
    is a mean over rows (plus penalties): the result is then the mean over all rows,
    sum_c n_c L_c / N."""
    prepared = _prepare(loss, X, y, params, inputs, backend, reduction, scheduler)
    return _value_and_grad(prepared, prepared[0], scheduler, retries, reduction)


def _value_and_grad(prepared, params, scheduler, retries, reduction):
    """value_and_grad_over at ``params`` with the kernel and chunks of ``_prepare``."""
    _, kernel, blocks, sizes, groups = prepared[:5]
    values = _send(params.values(), _client(scheduler))
    total = _compute(_tree_sum(_parts(kernel, blocks, values, groups)), scheduler, retries)
    if reduction == "mean":
        total = [t / t.dtype.type(sum(sizes)) for t in total]
    return total[0], dict(zip(params, total[1:]))


def map_rows(f, *arrays, broadcast=()):
    """Dask arrays of the outputs of compiled ``f`` applied to each row chunk of ``arrays``,
    followed by the ``broadcast`` values (parameters, the same for every chunk). f's outputs
    must have one row per input row (predictions, per-point losses, rows of a Jacobian).
    One output: one array; several: a list."""
    aligned = _aligned(arrays)           # a big NumPy array becomes several chunks
    blocks, sizes = _rows(aligned), aligned[0].chunks[0]
    values = _send(broadcast, _client()) if broadcast else []
    calls = [delayed(_shipped(f), pure=True)(*b, *values) for b in blocks]
    outs = f.spec.outputs
    result = []
    for j, node in enumerate(outs):
        tail = tuple(int(d) for d in node.shape[1:])
        parts = [da.from_delayed(delayed(lambda r, j=j: r[j])(c), shape=(n,) + tail,
                                 dtype=node.dtype) for c, n in zip(calls, sizes)]
        result.append(da.concatenate(parts, axis=0))
    return result[0] if len(result) == 1 else result


def _prepare(loss, X, y, params, inputs, backend, reduction, scheduler, hold=False):
    """Parameter copies in their dtypes, the cached kernel (results summed over rows), each
    row chunk's blocks, the chunks' row counts, and the chunks grouped by worker (or None).
    ``hold``: for a fit of many steps, persist the arrays computed from persisted data
    (``_held``). Last: the arrays the blocks come from; a fit keeps them (and so their
    persisted chunks) alive until it ends."""
    if reduction not in ("sum", "mean"):
        raise ValueError(f"symdiff.dask: reduction must be 'sum' or 'mean' (how the loss "
                         f"combines rows), got {reduction!r}")
    params = {p: np.array(v, dtype=p.dtype) for p, v in params.items()}
    data = [X] if y is None else [X, y]
    if len(inputs) != len(data):
        raise ValueError(f"symdiff.dask: {len(inputs)} inputs for {len(data)} arrays")
    data, client = _aligned(data), _client(scheduler)
    if hold:
        data = _held(data, client)
    kernel = _shipped(_value_and_grad_kernel(loss, params, inputs, backend),
                      reduction == "mean")
    return params, kernel, _rows(data), data[0].chunks[0], _placement(data, client), data


@contextlib.contextmanager
def _fitting(loss, X, y, params, inputs, backend, reduction, scheduler):
    """``_prepare(..., hold=True)`` for the length of a fit (its first five items): the
    arrays it persisted stay alive until the fit ends and are dropped then, also when it
    raises (a traceback kept after an error would otherwise hold them on the workers)."""
    prepared = _prepare(loss, X, y, params, inputs, backend, reduction, scheduler, hold=True)
    try:
        yield prepared[:5]
    finally:
        prepared = None


def sgd_over(loss, X, y, params, inputs, lr, epochs=1, steps_per_epoch=None, momentum=0.0,
             backend="numba", scheduler=None, retries=None, callback=None, reduction="sum"):
    """Synchronous data-parallel mini-batch SGD: each step takes the next slice of every row
    chunk (chunk i contributes rows s * n_i / S to (s + 1) * n_i / S at step s of S), sums
    the chunks' gradients of the additive ``loss`` (tree reduction), and updates the
    parameters on the client by v <- momentum v - lr g / rows, p <- p + v (the gradient of
    the mean over the step's rows). Parameters go to the workers once per step. Returns
    ({param: fitted value}, the per-step mean losses). ``callback(step, params, loss)`` runs
    on the client after every step; returning True stops the fit. With
    ``reduction="mean"`` (a loss that averages its rows) g is the rows times that mean, so
    the update is the same."""
    with _fitting(loss, X, y, params, inputs, backend, reduction, scheduler) as prepared:
        params, kernel, blocks, sizes, groups = prepared
        steps = steps_per_epoch or max(1, min(sizes))
        velocity = {p: np.zeros_like(v) for p, v in params.items()}
        losses = []
        for step in range(epochs * steps):
            s = step % steps
            values = _send(params.values(), _client(scheduler))
            cuts = [(s * n // steps, (s + 1) * n // steps) for n in sizes]
            parts = _parts(kernel, blocks, values, groups, cuts)
            total = _compute(_tree_sum(parts), scheduler, retries)
            rows = sum(hi - lo for lo, hi in cuts)
            losses.append(float(total[0]) / rows)
            for p, g in zip(params, total[1:]):
                velocity[p] = momentum * velocity[p] - lr * g / rows
                params[p] = params[p] + velocity[p]
            if callback is not None and callback(step, params, losses[-1]):
                break
    return params, np.array(losses)


def _local_steps(kernel, lr, batches, n, *arrays_and_params):
    """Plain SGD on one chunk from the broadcast parameters: p <- p - lr g / b for each
    mini-batch (lo, hi) in ``batches`` (b = hi - lo rows). Returns the parameters, the sum of
    the batches' losses and the number of rows seen."""
    arrays, params = arrays_and_params[:n], [np.array(p) for p in arrays_and_params[n:]]
    total = 0.0
    for lo, hi in batches:
        out = kernel(*[a[lo:hi] for a in arrays], *params)
        total += float(out[0])
        params = [p - lr * g / (hi - lo) for p, g in zip(params, out[1:])]
    return params + [total, sum(hi - lo for lo, hi in batches)]


def _weighted_mean(parts):
    """Average each parameter over the chunks' results, weighted by the rows they saw."""
    weights = np.array([p[-1] for p in parts], dtype=np.float64)
    n = len(parts[0]) - 2
    means = [sum(w * p[j] for w, p in zip(weights, parts)) / weights.sum() for j in range(n)]
    return means, sum(p[-2] for p in parts) / weights.sum()


def local_sgd_over(loss, X, y, params, inputs, lr, epochs=1, batch_size=32, average_every=8,
                   backend="numba", scheduler=None, retries=None, callback=None,
                   reduction="sum"):
    """Local SGD (parameter averaging): in each round every row chunk runs ``average_every``
    steps of plain SGD, p <- p - lr g / b over its next mini-batches of ``batch_size`` rows
    (g the gradient of the additive ``loss`` on the batch's b rows), starting from the same
    parameters; the client then sets every parameter to the mean of the chunks' results,
    weighted by the rows each chunk saw in the round. One round costs one broadcast and one
    gather instead of ``average_every`` of them; with ``average_every=1`` and equal chunks it
    is synchronous SGD on batches of chunks x batch_size rows. An epoch passes once over
    every chunk (chunks that run out of batches sit the rest of the epoch's rounds out).
    Returns ({param: fitted value}, the mean training loss of every round).
    ``callback(round, params, loss)`` runs on the client after every round; True stops.
    ``reduction="mean"`` for a loss that averages its rows (g / b is then that mean)."""
    with _fitting(loss, X, y, params, inputs, backend, reduction, scheduler) as prepared:
        params, kernel, blocks, sizes, _ = prepared
        batches = [[(lo, min(lo + batch_size, n)) for lo in range(0, n, batch_size)]
                   for n in sizes]
        per_epoch = -(-max(len(b) for b in batches) // average_every)
        losses = []
        for r in range(epochs * per_epoch):
            k = (r % per_epoch) * average_every
            values = _send(params.values(), _client(scheduler))
            parts = [delayed(_local_steps, pure=True)(kernel, lr, b[k:k + average_every],
                                                      len(chunk), *chunk, *values)
                     for b, chunk in zip(batches, blocks) if b[k:k + average_every]]
            means, mean_loss = _weighted_mean(_compute(parts, scheduler, retries))
            params = {p: np.asarray(m, dtype=p.dtype) for p, m in zip(params, means)}
            losses.append(mean_loss)
            if callback is not None and callback(r, params, mean_loss):
                break
    return params, np.array(losses)


def minimize_over(loss, X, y, params, inputs, method="L-BFGS-B", backend="numba",
                  scheduler=None, retries=None, reduction="sum", **options):
    """Fit ``params`` ({param: initial value}) by ``scipy.optimize.minimize`` with the
    distributed value and gradient (jac=True); returns ({param: fitted value}, the
    OptimizeResult). ``options`` go to minimize (e.g. ``options={"maxiter": 100}``)."""
    from scipy.optimize import minimize
    with _fitting(loss, X, y, params, inputs, backend, reduction, scheduler) as prepared:   # once
        params = prepared[0]
        shapes = [v.shape for v in params.values()]
        cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

        def unpack(theta):
            return {p: t.reshape(s).astype(p.dtype)
                    for p, t, s in zip(params, np.split(theta, cuts), shapes)}

        def fun(theta):
            value, grads = _value_and_grad(prepared, unpack(theta), scheduler, retries,
                                           reduction)
            return float(value), np.concatenate([np.ravel(grads[p]) for p in params])

        theta0 = np.concatenate([np.ravel(v) for v in params.values()]).astype(np.float64)
        res = minimize(fun, theta0, jac=True, method=method, **options)
    return unpack(res.x), res


__all__ = ["local_sgd_over", "map_rows", "minimize_over", "sgd_over", "value_and_grad_over"]
