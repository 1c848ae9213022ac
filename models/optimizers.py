"""Optimizers compiled into a training step's ``updates=``: each returns the new value of every
parameter and of its optimizer state as graphs, with PyTorch's ``torch.optim`` semantics.

With g the gradient (plus ``weight_decay * p`` for the L2 forms), lr the learning rate times
the schedule's factor at step t (1, 2, ...):

- sgd:       p <- p - lr g
- momentum:  b <- mu b + g,                       p <- p - lr b
- nesterov:  b <- mu b + g,                       p <- p - lr (g + mu b)
- adam:      m <- b1 m + (1-b1) g, v <- b2 v + (1-b2) g^2,
             p <- p - lr (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
- adamw:     adam on g without the decay term, and p <- p (1 - lr weight_decay) first
- rmsprop:   v <- a v + (1-a) g^2,                p <- p - lr g / (sqrt(v) + eps)
- adagrad:   s <- s + g^2,                        p <- p - lr g / (sqrt(s) + eps)

``clip_norm`` scales all gradients by min(1, clip_norm / ||g||) (the global norm over every
parameter) before the update. Hyperparameters that one often changes (the learning rate, the
momentum) are state vars, so changing them needs no recompile. Every update reads the values
from before the step (``updates=`` is a parallel assignment).

>>> import numpy as np, symdiff as sd
>>> from symdiff.models.optimizers import optimizer_updates
>>> w = sd.param("w", (2,))
>>> loss = sd.sum((w - 3.0) ** 2)
>>> upd, state, hyper = optimizer_updates("adam", [w], sd.grad(loss, [w]), lr=0.1)
>>> step = sd.compile([], loss, updates=upd, state={w: np.zeros(2), **state}, backend="numpy")
>>> for _ in range(300): _ = step()
>>> np.round(step.state[w], 3).tolist()
[3.0, 3.0]
"""
import numpy as np

import symdiff as sd

OPTIMIZERS = ("sgd", "momentum", "nesterov", "adam", "adamw", "rmsprop", "adagrad")
DEFAULTS = {"momentum": 0.9, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "alpha": 0.99,
            "weight_decay": 0.0}


def step_decay(every, gamma=0.1):
    """Learning-rate factor gamma^floor((t - 1) / every) (torch's StepLR)."""
    # floor of a non-negative number: its truncation to an integer
    return lambda t: gamma ** sd.cast(sd.cast((t - 1) / every, "int64"), t.dtype)


def cosine(total, floor=0.0):
    """Factor floor + (1 - floor) (1 + cos(pi min(t - 1, total) / total)) / 2."""
    return lambda t: floor + (1 - floor) * 0.5 * (
        1 + sd.cos(np.pi * sd.minimum(t - 1, total) / total))


def warmup(steps):
    """Factor min(1, t / steps): a linear ramp over the first ``steps`` steps."""
    return lambda t: sd.minimum(t / steps, 1.0)


def optimizer_updates(name, params, grads, lr, schedule=None, clip_norm=None, **hyper):
    """(updates, state, hyper) for ``name`` (see the module docstring): ``updates`` maps each
    param and state var to its new value, ``state`` holds the zero-initialized state arrays
    (and the step counter), ``hyper`` maps the names "lr" and "momentum" to the state vars
    holding them (write ``f.state[hyper["lr"]][...] = new`` to change them)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"unknown optimizer {name!r}; use one of {', '.join(OPTIMIZERS)}")
    unknown = set(hyper) - set(DEFAULTS)
    if unknown:
        raise ValueError(f"{name}: unknown hyperparameter(s) {', '.join(sorted(unknown))}; "
                         f"known: {', '.join(sorted(DEFAULTS))}")
    h = {**DEFAULTS, **({"eps": 1e-10} if name == "adagrad" else {}), **hyper}
    dtype = params[0].dtype
    t, rate = sd.var("opt_step", (), dtype), sd.var("learning_rate", (), dtype)
    mom = sd.var("momentum", (), dtype)
    state = {t: np.zeros((), dtype), rate: np.array(lr, dtype), mom: np.array(h["momentum"], dtype)}
    t1 = t + 1                                   # this step's number
    lr_t = rate * schedule(t1) if schedule is not None else rate
    grads = _clipped(grads, clip_norm)
    updates = {t: t1}
    for p, g in zip(params, grads):
        if h["weight_decay"] and name != "adamw":
            g = g + h["weight_decay"] * p        # L2 in the gradient, as torch.optim
        new, extra = _RULES[name](p, g, lr_t, mom, t1, h, state)
        updates[p] = new
        updates.update(extra)
    return updates, state, {"lr": rate, "momentum": mom, "step": t}


def _clipped(grads, clip_norm):
    if clip_norm is None:
        return grads
    norm = sd.sqrt(sum(sd.sum(g * g) for g in grads))
    scale = sd.minimum(clip_norm / (norm + 1e-12), 1.0)        # ||g|| scaled to <= clip_norm
    return [g * scale for g in grads]


def _slot(p, what, state):
    v = sd.var(f"{what}_{p.name}", p.shape, p.dtype)
    state[v] = np.zeros(tuple(int(d) for d in p.shape), p.dtype)
    return v


def _sgd(p, g, lr, mom, t, h, state):
    return p - lr * g, {}


def _momentum(p, g, lr, mom, t, h, state, nesterov=False):
    b = _slot(p, "momentum_buffer", state)
    b2 = mom * b + g
    return p - lr * (g + mom * b2 if nesterov else b2), {b: b2}


def _adam(p, g, lr, mom, t, h, state, decoupled=False):
    m, v = _slot(p, "exp_avg", state), _slot(p, "exp_avg_sq", state)
    b1, b2 = h["beta1"], h["beta2"]
    m2, v2 = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
    step = lr * (m2 / _one_minus_pow(b1, t)) / (sd.sqrt(v2 / _one_minus_pow(b2, t)) + h["eps"])
    base = p * (1 - lr * h["weight_decay"]) if decoupled else p
    return base - step, {m: m2, v: v2}


def _one_minus_pow(beta, t):
    """1 - beta^t = -expm1(t log beta) without cancellation (in float32, 1 - 0.999 loses 4
    digits; torch computes it in float64)."""
    return -sd.expm1(t * float(np.log(beta)))


def _rmsprop(p, g, lr, mom, t, h, state):
    v = _slot(p, "square_avg", state)
    v2 = h["alpha"] * v + (1 - h["alpha"]) * g * g
    return p - lr * g / (sd.sqrt(v2) + h["eps"]), {v: v2}


def _adagrad(p, g, lr, mom, t, h, state):
    s = _slot(p, "sum", state)
    s2 = s + g * g
    return p - lr * g / (sd.sqrt(s2) + h["eps"]), {s: s2}


_RULES = {"sgd": _sgd, "momentum": _momentum,
          "nesterov": lambda *a: _momentum(*a, nesterov=True), "adam": _adam,
          "adamw": lambda *a: _adam(*a, decoupled=True), "rmsprop": _rmsprop,
          "adagrad": _adagrad}
