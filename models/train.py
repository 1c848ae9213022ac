"""Training: mini-batch SGD (with optional momentum) compiled as a step kernel with in-place
updates, run a whole epoch at a time inside Numba; early stopping on a validation split.

The seeds' update rule: theta <- theta - lr * grad. With momentum mu:
v <- mu v - lr grad, theta <- theta + v (both read the old values: Theano's convention).
"""
import sys
import time

import numpy as np

import symdiff as sd

from .optimizers import optimizer_updates


class Trainer:
    """Compiled step, epoch and prediction kernels sharing one set of parameter arrays."""

    def __init__(self, model, lr=0.1, momentum=0.0, backend="numba", outputs=(),
                 optimizer=None, **hyper):
        self.model = model
        self.params = {p: np.array(model.init[p], dtype=p.dtype, order="C")
                       for p in model.params}
        grads = sd.grad(model.loss, model.params)
        if optimizer is None:
            updates, state = self._momentum_updates(grads, lr, momentum)
        else:                   # models/optimizers.py: torch.optim's rules, state included
            updates, opt_state, self.hyper = optimizer_updates(
                optimizer, model.params, grads, lr, momentum=momentum or 0.9, **hyper)
            state = {**self.params, **opt_state}
        t0 = time.perf_counter()
        extra = [model.outputs[k] for k in outputs]
        self.step = sd.compile(model.inputs, [model.loss] + extra, updates=updates, state=state,
                               backend=backend)
        self.predictors = {k: sd.compile([model.x], o, state=self.params, backend=backend)
                           for k, o in model.outputs.items() if k not in outputs}
        self.compile_seconds = time.perf_counter() - t0

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

    @property
    def epoch_compile_seconds(self):
        """Compile (or cache-load) time of the epoch driver, once an epoch has run."""
        return getattr(self.step, "epoch_compile_seconds", 0.0)

    def predict(self, name, X):
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


class Progress:
    """A progress bar on a terminal (tqdm when installed), silent otherwise or at verbose=0."""

    def __init__(self, total, verbose):
        self.bar = None
        if not verbose or not sys.stderr.isatty():
            return
        try:
            from tqdm import tqdm
            self.bar = tqdm(total=total, unit="epoch", leave=False)
        except ImportError:
            self.bar = _PlainBar(total)

    def update(self, **info):
        if self.bar is not None:
            self.bar.set_postfix({k: f"{v:.4f}" for k, v in info.items()}, refresh=False)
            self.bar.update(1)

    def close(self):
        if self.bar is not None:
            self.bar.close()


class _PlainBar:
    def __init__(self, total):
        self.total, self.n, self.info = total, 0, {}

    def set_postfix(self, info, refresh=False):
        self.info = info

    def update(self, k):
        self.n += k
        text = " ".join(f"{a} {b}" for a, b in self.info.items())
        sys.stderr.write(f"\repoch {self.n}/{self.total} {text}   ")
        sys.stderr.flush()

    def close(self):
        sys.stderr.write("\n")


def fit(trainer, X, Y, epochs, batch_size, score=None, X_val=None, Y_val=None, patience=5,
        seed=0, verbose=0, callback=None):
    """Train for up to ``epochs``; with validation data, stop when the validation score has
    not improved for ``patience`` epochs and keep the best parameters (early stopping).

    Returns the history: a list of dicts with epoch, loss, and val_score when validating.
    """
    rng = np.random.default_rng(seed)
    history, best, best_snap, waited = [], -np.inf, None, 0
    bar = Progress(epochs, verbose)
    try:
        for epoch in range(1, epochs + 1):
            record = trainer.run_epoch(X, Y, batch_size, rng)
            row = {"epoch": epoch, "loss": float(np.mean(record[:, 0]))}
            if X_val is not None:
                row["val_score"] = float(score(X_val, Y_val))
                if row["val_score"] > best:
                    best, best_snap, waited = row["val_score"], trainer.snapshot(), 0
                else:
                    waited += 1
            history.append(row)
            bar.update(**{k: v for k, v in row.items() if k != "epoch"})
            if callback is not None:
                callback(row)
            if not np.isfinite(row["loss"]) or (X_val is not None and waited >= patience):
                break
    finally:
        bar.close()
    if best_snap is not None:
        trainer.restore(best_snap)
    return history
