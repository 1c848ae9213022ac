"""Compiled kernels over the row chunks of Dask arrays: distributed losses, gradients,
predictions and full-batch training, with Dask as the scheduler and transport.

Needs the ``dask`` extra (``pip install -e ".[dask]"``: dask[array, distributed]). Kernels
travel to workers pickled (as their compile recipe) and compile once per worker process
(from the disk cache when it holds them). Parameters are sent once per evaluation: scattered
to every worker when a ``dask.distributed`` client is active, otherwise passed to the local
scheduler.

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
import numpy as np

import dask
import dask.array as da
from dask import delayed

from .api import value_and_grad
from .function import compile as _compile

_kernels = {}          # (loss, params, inputs, backend) -> compiled value-and-gradient


def _value_and_grad_kernel(loss, params, inputs, backend):
    """The compiled [loss, gradients...] of ``loss`` w.r.t. ``params`` (cached per process)."""
    key = (loss, tuple(params), tuple(inputs), backend)
    if key not in _kernels:
        _kernels[key] = _compile(list(inputs) + list(params),
                                 value_and_grad(loss, list(params)), backend=backend)
    return _kernels[key]


def _client():
    try:
        from distributed import get_client
        return get_client()
    except (ImportError, ValueError):
        return None


def _rows(arrays):
    """Per row chunk, the blocks of every array (each rechunked to one chunk per row block,
    all sharing the first array's row chunks)."""
    arrays = [a if isinstance(a, da.Array) else da.from_array(np.asarray(a)) for a in arrays]
    rows = arrays[0].chunks[0]
    out = []
    for a in arrays:
        if a.shape[0] != arrays[0].shape[0]:
            raise ValueError(f"symdiff.dask: arrays must have the same number of rows, got "
                             f"{arrays[0].shape[0]} and {a.shape[0]}")
        a = a.rechunk((rows,) + tuple((d,) for d in a.shape[1:]))
        out.append(a.to_delayed().reshape(len(rows), -1)[:, 0])
    return [list(blocks) for blocks in zip(*out)]


def _call(kernel, *arrays):
    out = kernel(*arrays)
    out = out if isinstance(out, list) else [out]
    return [np.array(o) for o in out]


def _add(a, b):
    return [x + y for x, y in zip(a, b)]


def _tree_sum(parts):
    """Pairwise sums, log2(n) levels deep (no single task receives every chunk's result)."""
    while len(parts) > 1:
        pairs = [delayed(_add, pure=True)(parts[i], parts[i + 1])
                 for i in range(0, len(parts) - 1, 2)]
        parts = pairs + ([parts[-1]] if len(parts) % 2 else [])
    return parts[0]


def _send(values):
    """Parameter values as task arguments: scattered once to every worker with a client."""
    client = _client()
    if client is None:
        return list(values)
    return client.scatter(list(values), broadcast=True)


def value_and_grad_over(loss, X, y, params, inputs, backend="numba", scheduler=None):
    """(loss value, {param: gradient}) of an additive ``loss`` over the rows of Dask arrays
    ``X`` and ``y``, bound to the symbolic ``inputs`` (e.g. [x, y]); ``params`` maps each
    param node to its current value. Equal, to rounding, to the single-process value on the
    concatenated data. ``y=None`` for a loss of X alone."""
    params = dict(params)
    data = [X] if y is None else [X, y]
    if len(inputs) != len(data):
        raise ValueError(f"value_and_grad_over: {len(inputs)} inputs for {len(data)} arrays")
    kernel = _value_and_grad_kernel(loss, params, inputs, backend)
    values = _send(params.values())
    parts = [delayed(_call, pure=True)(kernel, *blocks, *values) for blocks in _rows(data)]
    (total,) = dask.compute(_tree_sum(parts), scheduler=scheduler)
    return total[0], dict(zip(params, total[1:]))


def map_rows(f, *arrays, broadcast=()):
    """Dask arrays of the outputs of compiled ``f`` applied to each row chunk of ``arrays``,
    followed by the ``broadcast`` values (parameters, the same for every chunk). f's outputs
    must have one row per input row (predictions, per-point losses, rows of a Jacobian).
    One output: one array; several: a list."""
    blocks = _rows(arrays)
    sizes = arrays[0].chunks[0] if isinstance(arrays[0], da.Array) else (len(arrays[0]),)
    values = _send(broadcast) if broadcast else []
    calls = [delayed(_call, pure=True)(f, *b, *values) for b in blocks]
    outs = f.spec.outputs
    result = []
    for j, node in enumerate(outs):
        tail = tuple(int(d) for d in node.shape[1:])
        parts = [da.from_delayed(delayed(lambda r, j=j: r[j])(c), shape=(n,) + tail,
                                 dtype=node.dtype) for c, n in zip(calls, sizes)]
        result.append(da.concatenate(parts, axis=0))
    return result[0] if len(result) == 1 else result


def _slice_call(kernel, lo, hi, *arrays_and_params):
    """The kernel on rows lo:hi of a chunk's arrays (the first ``n`` arguments)."""
    n = arrays_and_params[0]
    arrays, params = arrays_and_params[1:n + 1], arrays_and_params[n + 1:]
    return _call(kernel, *[a[lo:hi] for a in arrays], *params)


def sgd_over(loss, X, y, params, inputs, lr, epochs=1, steps_per_epoch=None, momentum=0.0,
             backend="numba", scheduler=None):
    """Synchronous data-parallel mini-batch SGD: each step takes the next slice of every row
    chunk (chunk i contributes rows s * n_i / S to (s + 1) * n_i / S at step s of S), sums
    the chunks' gradients of the additive ``loss`` (tree reduction), and updates the
    parameters on the client by v <- momentum v - lr g / rows, p <- p + v (the gradient of
    the mean over the step's rows). Parameters go to the workers once per step. Returns
    ({param: fitted value}, the per-step mean losses)."""
    params = {p: np.array(v, dtype=p.dtype) for p, v in params.items()}
    data = [X] if y is None else [X, y]
    kernel, blocks = _value_and_grad_kernel(loss, params, inputs, backend), _rows(data)
    sizes = data[0].chunks[0] if isinstance(data[0], da.Array) else (len(data[0]),)
    steps = steps_per_epoch or max(1, min(sizes))
    velocity = {p: np.zeros_like(v) for p, v in params.items()}
    losses = []
    for _ in range(epochs):
        for s in range(steps):
            values = _send(params.values())
            cuts = [(s * n // steps, (s + 1) * n // steps) for n in sizes]
            parts = [delayed(_slice_call, pure=True)(kernel, lo, hi, len(b), *b, *values)
                     for (lo, hi), b in zip(cuts, blocks) if hi > lo]
            (total,) = dask.compute(_tree_sum(parts), scheduler=scheduler)
            rows = sum(hi - lo for lo, hi in cuts)
            losses.append(float(total[0]) / rows)
            for p, g in zip(params, total[1:]):
                velocity[p] = momentum * velocity[p] - lr * g / rows
                params[p] = params[p] + velocity[p]
    return params, np.array(losses)


def minimize_over(loss, X, y, params, inputs, method="L-BFGS-B", backend="numba",
                  scheduler=None, **options):
    """Fit ``params`` ({param: initial value}) by ``scipy.optimize.minimize`` with the
    distributed value and gradient (jac=True); returns ({param: fitted value}, the
    OptimizeResult). ``options`` go to minimize (e.g. ``options={"maxiter": 100}``)."""
    from scipy.optimize import minimize
    params = {p: np.asarray(v, dtype=p.dtype) for p, v in params.items()}
    shapes = [v.shape for v in params.values()]
    cuts = np.cumsum([int(np.prod(s)) for s in shapes])[:-1]

    def unpack(theta):
        return {p: t.reshape(s) for p, t, s in zip(params, np.split(theta, cuts), shapes)}

    def fun(theta):
        value, grads = value_and_grad_over(loss, X, y, unpack(theta), inputs, backend,
                                           scheduler)
        return float(value), np.concatenate([np.ravel(grads[p]) for p in params])

    theta0 = np.concatenate([np.ravel(v) for v in params.values()]).astype(np.float64)
    res = minimize(fun, theta0, jac=True, method=method, **options)
    return unpack(res.x), res


__all__ = ["value_and_grad_over", "map_rows", "minimize_over", "sgd_over"]
