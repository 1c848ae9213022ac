"""The NumPy reference interpreter: ``evaluate`` and the ``backend="numpy"`` compiled function."""
import numpy as np

from .errors import ArgumentError
from .graph import Node, flatten, toposort, unflatten
from .ops import Op
from .semantics import apply
from .signature import Signature


def run(order, outputs, leaf_values, sizes):
    """Evaluate ``order`` (a toposort) given VAR values; frees intermediates after their last use."""
    last_use = {}
    for i, n in enumerate(order):
        for s in n.src:
            last_use[s] = i
    keep = set(outputs)
    vals = {}
    for i, n in enumerate(order):
        if n.op is Op.VAR:
            vals[n] = leaf_values[n]
        elif n.op is Op.CONST:
            vals[n] = n.arg.value
        elif n.op is Op.DIM:
            vals[n] = np.asarray(sizes[n.arg[0]], dtype=n.dtype)
        else:
            vals[n] = apply(n, [vals[s] for s in n.src], sizes.shape(n.shape))
            for s in n.src:
                if last_use.get(s) == i and s not in keep:
                    vals.pop(s, None)
    return [vals[o] for o in outputs]


def evaluate(outputs, env):
    """Evaluate node(s) with NumPy; ``env`` maps each var the outputs depend on to an array.

    The graph runs as written, op by op: nothing is simplified or stabilized, so
    ``log(1 + exp(-z))`` at z = -900 is inf here, while ``sd.compile`` (either backend) runs
    the stable form softplus(-z) = 900. Use it as the oracle of what an expression means.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate([x * 2, sd.sum(x)], {x: np.array([1.0, 2.0])})
    [array([2., 4.]), array(3.)]
    """
    outs = flatten(outputs)
    if not isinstance(env, dict) or not all(isinstance(k, Node) for k in env):
        raise TypeError("evaluate: env must be a dict mapping symdiff vars to arrays")
    order = toposort(outs)
    needed = [n for n in order if n.op is Op.VAR]
    missing = [n.name for n in needed if n not in env]
    if missing:
        raise ArgumentError(f"evaluate: no value given for {', '.join(map(repr, missing))}")
    sig = Signature(needed, outs)
    arrays, sizes = sig.bind([env[n] for n in needed])
    results = run(order, outs, dict(zip(needed, arrays)), sizes)
    return unflatten(outputs, results)
