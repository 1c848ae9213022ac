"""The estimators on Dask arrays: ``fit`` trains by synchronous data-parallel SGD over the
row chunks (``symdiff.dask.sgd_over``: every step sums the chunks' gradients, the parameters
stay on the client), ``predict``/``predict_proba``/... run the fitted estimator on each row
chunk and return Dask arrays.

A step on Dask arrays takes ``batch_size`` rows from every chunk (a batch of chunks x
batch_size rows) and follows v <- momentum v - lr g, p <- p + v with g the gradient of the
batch's mean loss; an epoch is ceil(rows of the smallest chunk / batch_size) steps. Early
stopping is not used there (it needs a held-out split of the chunks): the fit warns and
trains all ``epochs``. Optimizers other than SGD and momentum are not supported on Dask.
"""
import sys
import warnings

import numpy as np

from .train import log_epoch


def is_dask(a):
    """Is ``a`` a Dask array? (False without importing Dask when it was never imported.)"""
    module = sys.modules.get("dask.array")
    return module is not None and isinstance(a, module.Array)


def _check(est, X, y):
    """Shapes and dtypes, checked lazily (no pass over the data)."""
    name = type(est).__name__
    if not all(hasattr(est, a) for a in ("lr", "momentum", "batch_size", "epochs")):
        raise ValueError(f"{name} trains by its own rule, not SGD: fit it on NumPy arrays "
                         f"(e.g. X.compute())")
    if X.ndim != 2 or np.dtype(X.dtype).kind not in "biuf":
        raise ValueError(f"{name}.fit: a Dask X must be a 2-D array of real numbers, got "
                         f"{X.ndim}-D {X.dtype}")
    if y is None or len(y.shape) not in (1, 2) or y.shape[0] != X.shape[0]:
        got = None if y is None else y.shape
        raise ValueError(f"{name}.fit: y must have one row per row of X ({X.shape[0]}), "
                         f"got {got}")
    optimizer = getattr(est, "optimizer", None)
    if optimizer not in (None, "sgd", "momentum"):
        raise ValueError(f"{name}.fit on Dask arrays trains by SGD with momentum; "
                         f"optimizer={optimizer!r} is not supported there")
    if getattr(est, "early_stopping", False):
        warnings.warn(f"{name}: early stopping is not used on Dask arrays; training all "
                      f"{est.epochs} epochs")


def _targets(est, X, y, labels):
    """X in the model's dtype and the model's targets, chunked like X's rows (``labels``:
    what ``_labels`` found)."""
    import dask.array as da
    X = X.astype(est.dtype)
    y = da.asarray(y).rechunk((X.chunks[0],) + tuple((d,) for d in y.shape[1:]))
    if hasattr(est, "classes_"):                        # a classifier
        targets = y.map_blocks(lambda b: np.searchsorted(est.classes_, b), dtype=np.int64)
        sample = est._encode(np.zeros(1, np.int64))
        encode = est._encode
    else:
        targets = y.reshape(y.shape[0], -1).astype(est.dtype)
        sample, encode = est._targets(labels), est._targets       # labels: y's first row
    extra = sample.ndim - targets.ndim
    new_axis = list(range(targets.ndim, sample.ndim)) if extra > 0 else None
    return X, targets.map_blocks(encode, dtype=sample.dtype, new_axis=new_axis,
                                 chunks=targets.chunks[:1] + tuple((d,) for d in sample.shape[1:]))


def _labels(est, y):
    """The targets' description (classes or output count) from a pass over y alone."""
    import dask.array as da
    if hasattr(est, "_encode"):                          # a classifier: every label
        return da.unique(da.asarray(y)).compute()
    first = np.asarray(y[:1].compute(), dtype=est.dtype)
    return first.reshape(1, -1)


def fit_dask(est, X, y, callback=None):
    """``est.fit(X, y, callback)`` for Dask arrays (see the module docstring)."""
    import symdiff.dask as sdd
    from sklearn.utils.multiclass import check_classification_targets
    _check(est, X, y)
    warm = est.warm_start and hasattr(est, "trainer_")
    labels = _labels(est, y)
    if hasattr(est, "_encode"):
        check_classification_targets(labels)
    if warm:
        est._check_targets(labels)
    else:
        est.n_features_in_ = X.shape[1]
        est._start(np.zeros((1, X.shape[1]), est.dtype), labels)
    if X.shape[1] != est.n_features_in_:
        raise ValueError(f"X has {X.shape[1]} features, but {type(est).__name__} is "
                         f"expecting {est.n_features_in_} features as input")
    X, T = _targets(est, X, y, labels)
    trainer, model = est.trainer_, est.trainer_.model
    steps = -(-min(X.chunks[0]) // est.batch_size)
    rows, start = [], est.n_iter_

    def epoch_end(step, params, loss):
        rows.append(loss)
        if len(rows) < steps:
            return False
        row = {"epoch": est.n_iter_ + 1, "loss": float(np.mean(rows))}
        rows.clear()
        est.n_iter_ += 1
        est.loss_curve_.append(row["loss"])
        if est.verbose:
            log_epoch(row, start + est.epochs)
        return bool(callback is not None and callback(est, est.n_iter_, row["loss"])) or \
            not np.isfinite(row["loss"])
    params, _ = sdd.sgd_over(model.loss, X, T, trainer.params, model.inputs, lr=est.lr,
                             epochs=est.epochs, steps_per_epoch=steps,
                             momentum=est.momentum, backend=trainer.backend,
                             callback=epoch_end, reduction="mean")
    for p, value in params.items():
        trainer.params[p][...] = value             # the step kernel's state arrays
    return est


def over_rows(method):
    """``method(X)`` on a Dask X: the method applied to every row chunk of X (the fitted
    estimator travels to the workers pickled), as a Dask array; NumPy X as before."""
    def wrapper(self, X, *args, **kwargs):
        if not is_dask(X):
            return method(self, X, *args, **kwargs)
        X = X.rechunk({1: -1}) if X.ndim == 2 else X         # whole rows in every block
        sample = method(self, np.asarray(X[:1].compute()), *args, **kwargs)
        chunks = (X.chunks[0],) + tuple((d,) for d in sample.shape[1:])
        drop = [1] if sample.ndim == 1 else None
        return X.map_blocks(lambda b: method(self, b, *args, **kwargs), dtype=sample.dtype,
                            chunks=chunks, drop_axis=drop,
                            new_axis=list(range(2, sample.ndim)) or None)
    wrapper.__name__, wrapper.__doc__ = method.__name__, method.__doc__
    wrapper.__wrapped__ = method
    return wrapper
