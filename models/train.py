"""Training: mini-batch SGD (with optional momentum) compiled as a step kernel with in-place
updates, run a whole epoch at a time inside Numba; early stopping on a validation split; one
log line per epoch at ``verbose=1``.

The update rule: theta <- theta - lr * grad. With momentum mu:
v <- mu v - lr grad, theta <- theta + v (both read the old values: Theano's convention).
"""
import time

import numpy as np

import symdiff as sd

from .optimizers import optimizer_updates


class Trainer:
    """Compiled step, epoch and prediction kernels sharing one set of parameter arrays."""

    def __init__(self, model, lr=0.1, momentum=0.0, backend="numba", outputs=(),
                 optimizer=None, **hyper):
        self.model = model
        self._recipe = (lr, momentum, backend, tuple(outputs), optimizer, hyper)
        self.params = {p: np.array(model.init[p], dtype=p.dtype, order="C")
                       for p in model.params}
        grads = sd.grad(model.loss, model.params)
        if optimizer is None:
            updates, state = self._momentum_updates(grads, lr, momentum)
        else:                   # models/optimizers.py: torch.optim's rules, state included
            updates, opt_state, self.hyper = optimizer_updates(
                optimizer, model.params, grads, lr, momentum=momentum or 0.9, **hyper)
            state = {**self.params, **opt_state}
        t0 = self.compile_started = time.perf_counter()
        extra = [model.outputs[k] for k in outputs]
        self.step = sd.compile(model.inputs, [model.loss] + extra, updates=updates, state=state,
                               backend=backend)
        self.backend = backend
        # prediction kernels compile on first use: an estimator rarely calls all of them
        self.predictors = {}
        self._outputs = {k: o for k, o in model.outputs.items() if k not in outputs}
        # until compile() returned: with the tiered compile (the default) the Numba kernel
        # keeps compiling in the background while the first steps run on NumPy
        self.compile_seconds = time.perf_counter() - t0

    @property
    def kernel_ready_seconds(self):
        """Seconds from the start of the step's compile until its Numba kernel came into use
        (None while it has not, or on the NumPy backend)."""
        at = getattr(self.step, "ready_at", None)
        return None if at is None else at - self.compile_started

    def _momentum_updates(self, grads, lr, momentum):
        """SGD theta <- theta - lr g; with momentum v <- mu v - lr g, theta <- theta + v."""
        model = self.model
        dtype = model.params[0].dtype
        # learning rate and momentum are state, not constants: changing them needs no compile
        rate, mom = sd.var("learning_rate", (), dtype), sd.var("momentum", (), dtype)
        self.hyper = {rate: np.array(lr, dtype), mom: np.array(momentum, dtype)}
        updates, state = {}, {**self.params, rate: self.hyper[rate]}
        for p, g in zip(model.params, grads):
            if momentum:
                v = sd.var(f"velocity_{p.name}", p.shape, p.dtype)
                state[v] = np.zeros(p.shape, p.dtype)
                state[mom] = self.hyper[mom]
                new_v = mom * v - rate * g
                updates[v] = new_v
                updates[p] = p + new_v
            else:
                updates[p] = p - rate * g
        return updates, state

    def __reduce__(self):
        """Pickled as its model, its settings and the values of its state (parameters,
        optimizer state); loading compiles again (from the kernel cache when it can) and
        copies the values into fresh writable arrays (joblib may load them as read-only
        memory maps, which in-place updates cannot write)."""
        values = {v.name: np.asarray(a) for v, a in self.step.state.items()}
        return _rebuild_trainer, (self.model, self._recipe, values)

    @property
    def epoch_compile_seconds(self):
        """Compile (or cache-load) time of the epoch driver, once an epoch has run."""
        return getattr(self.step, "epoch_compile_seconds", 0.0)

    def predict(self, name, X):
        """The model's output ``name`` at the current parameters (compiled on first use)."""
        if name not in self.predictors:
            t0 = time.perf_counter()
            self.predictors[name] = sd.compile([self.model.x], self._outputs[name],
                                               state=self.params, backend=self.backend)
            self.compile_seconds += time.perf_counter() - t0
        return self.predictors[name](X)

    def run_epoch(self, X, Y, batch_size, rng, shuffle=True):
        """One epoch; returns the per-step scalar outputs (loss first)."""
        order = rng.permutation(len(X)) if shuffle else np.arange(len(X))
        if self.step.backend == "numba":        # checks labels before the first step
            return self.step.epoch(X, Y, batch_size=batch_size, order=order)
        held = {v: a.copy() for v, a in self.step.state.items()}
        rows = []
        try:
            for s in range(0, len(order), batch_size):
                idx = order[s:s + batch_size]
                out = self.step(X[idx], Y[idx])
                out = out if isinstance(out, list) else [out]
                rows.append([float(o) for o in out])
        except Exception:                         # e.g. a bad label: the epoch never happened
            for v, a in held.items():
                self.step.state[v][...] = a
            raise
        return np.array(rows)

    def snapshot(self):
        return {p: a.copy() for p, a in self.params.items()}

    def restore(self, snap):
        for p, a in snap.items():
            self.params[p][...] = a


def _rebuild_trainer(model, recipe, values):
    lr, momentum, backend, outputs, optimizer, hyper = recipe
    trainer = Trainer(model, lr, momentum, backend, outputs, optimizer, **hyper)
    for v, a in trainer.step.state.items():
        a[...] = values[v.name]
    return trainer


def log_epoch(row, total):
    """Print one line for an epoch to stdout, terminal or not:
    ``epoch 3/100  loss 0.1234  validation score 0.9500``."""
    text = f"epoch {row['epoch']}/{total}  loss {row['loss']:.4f}"
    if "val_score" in row:
        text += f"  validation score {row['val_score']:.4f}"
    print(text, flush=True)


def fit(trainer, X, Y, epochs, batch_size, score=None, X_val=None, Y_val=None, patience=5,
        seed=0, verbose=0, callback=None, start=0):
    """Train for up to ``epochs``; with validation data, stop when the validation score has
    not improved for ``patience`` epochs and keep the best parameters, of the last epoch
    among equally good ones (early stopping).

    ``seed`` is an int or a ``numpy.random.Generator`` (the shuffling order continues from
    it). Epochs are numbered from ``start + 1``. After each epoch ``callback(row)`` runs with
    the epoch's history row; a true return value stops training. ``verbose`` prints the row
    (``log_epoch``). Returns the history: a list of dicts with epoch, loss, and val_score when
    validating.
    """
    rng = np.random.default_rng(seed)
    history, best, best_snap, waited = [], -np.inf, None, 0
    for epoch in range(start + 1, start + epochs + 1):
        record = trainer.run_epoch(X, Y, batch_size, rng)
        row = {"epoch": epoch, "loss": float(np.mean(record[:, 0]))}
        if X_val is not None:
            row["val_score"] = float(score(X_val, Y_val))
            # patience runs out without a strict improvement; on a tie (common with
            # accuracy) the later parameters, trained longer, are the ones kept
            waited = 0 if row["val_score"] > best else waited + 1
            if row["val_score"] >= best:
                best, best_snap = row["val_score"], trainer.snapshot()
        history.append(row)
        if verbose:
            log_epoch(row, start + epochs)
        stop = callback is not None and callback(row)
        if stop or not np.isfinite(row["loss"]) or (X_val is not None and waited >= patience):
            break
    if best_snap is not None:
        trainer.restore(best_snap)
    return history
