"""The differentiation API: grad, value_and_grad, vjp, jvp, jacobian, hessian, hvp.

Every function returns ordinary graphs, which can be simplified, compiled, printed, or
differentiated again.
"""
import numpy as np

from . import frontend as F
from .dims import shape_str
from .dtypes import is_float
from .errors import DifferentiationError, ShapeError
from .forward import jvp_graph
from .graph import Node, flatten, unflatten
from .modes import plan_jacobian, zeros as _zeros
from .reverse import vjp_graph
from .simplify import stabilize


def _nodes(structure, fn, what):
    nodes = flatten(structure)
    for w in nodes:
        if not is_float(w.dtype):
            raise DifferentiationError(
                f"{fn}: cannot differentiate with respect to `{w.name}` of dtype {w.dtype} "
                f"(only float inputs have derivatives)")
    if not nodes:
        raise DifferentiationError(f"{fn}: no {what} given")
    return nodes


def _float_output(y, fn):
    if not isinstance(y, Node):
        raise TypeError(f"{fn}: expected a symdiff node, got {type(y).__name__}")
    if not is_float(y.dtype):
        raise DifferentiationError(f"{fn}: the output `{y.name}` has dtype {y.dtype}; "
                                   f"only float outputs can be differentiated")
    return y


def _fill(results, targets, disconnected, fn, batch=()):
    """Replace symbolic-zero results by zero arrays, or raise when disconnected="raise"."""
    if disconnected not in ("zero", "raise"):
        raise ValueError(f"{fn}: disconnected must be 'zero' or 'raise', got {disconnected!r}")
    out = []
    for r, w in zip(results, targets):
        if r is None:
            if disconnected == "raise":
                raise DifferentiationError(f"{fn}: the output does not depend on `{w.name}`")
            r = _zeros(batch + w.shape, w.dtype)
        out.append(r)
    return out


def grad(y, wrt, disconnected="zero"):
    """Gradient of a scalar ``y`` by reverse mode, with the structure of ``wrt``.

    >>> import symdiff as sd, numpy as np
    >>> w1, w2 = sd.var("w1"), sd.var("w2")
    >>> g = sd.grad(w1 ** 3 * w2 + 3 * w1, [w1, w2])      # the seeds' worked example
    >>> [float(v) for v in sd.evaluate(g, {w1: 2.0, w2: 3.0})]
    [39.0, 8.0]
    """
    y = _float_output(y, "grad")
    if y.shape != ():
        raise DifferentiationError(f"grad: the output `{y.name}` has shape {shape_str(y.shape)}; "
                                   f"grad needs a scalar (use vjp or jacobian)")
    nodes = _nodes(wrt, "grad", "inputs to differentiate with respect to")
    (y,) = stabilize([y])       # differentiate the stable form: its derivative is stable too
    cts = vjp_graph([y], [F.const(1, y.dtype)], nodes)
    return unflatten(wrt, _fill(cts, nodes, disconnected, "grad"))


def value_and_grad(y, wrt, disconnected="zero"):
    """``[y, *grad(y, wrt)]`` (``[y, g]`` for a single node, ``[y, {...}]`` for a dict)."""
    g = grad(y, wrt, disconnected)
    (y,) = stabilize([y])
    if isinstance(wrt, (list, tuple)):
        return [y, *g]
    return [y, g]


def vjp(y, wrt, cotangent, disconnected="zero"):
    """Vector-Jacobian product u^T J: reverse mode with an explicit cotangent (shape of ``y``).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.vjp(x * x, x, np.array([1.0, 10.0])), {x: np.array([3.0, 4.0])})
    array([ 6., 80.])
    """
    ys = [_float_output(o, "vjp") for o in flatten(y)]
    cts = [F.as_node(c, o.dtype) for c, o in zip(flatten_values(cotangent, len(ys)), ys)]
    for c, o in zip(cts, ys):
        if c.shape != o.shape:
            raise ShapeError(f"vjp: cotangent of shape {shape_str(c.shape)} for output `{o.name}` "
                             f"of shape {shape_str(o.shape)}")
    nodes = _nodes(wrt, "vjp", "inputs")
    ys = stabilize(ys)
    res = vjp_graph(ys, [F.cast(c, o.dtype) for c, o in zip(cts, ys)], nodes)
    return unflatten(wrt, _fill(res, nodes, disconnected, "vjp"))


def jvp(y, wrt, tangents):
    """Jacobian-vector product J v: forward mode, one tangent per node of ``wrt``.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.jvp(x * x, [x], [np.array([1.0, 0.0])]), {x: np.array([3.0, 4.0])})
    array([6., 0.])
    """
    nodes = _nodes(wrt, "jvp", "inputs")
    ts = [F.as_node(t, w.dtype) for t, w in zip(flatten_values(tangents, len(nodes)), nodes)]
    for t, w in zip(ts, nodes):
        if t.shape != w.shape:
            raise ShapeError(f"jvp: tangent of shape {shape_str(t.shape)} for `{w.name}` of "
                             f"shape {shape_str(w.shape)}")
    ys = stabilize([_float_output(o, "jvp") for o in flatten(y)])
    seeds = {w: F.cast(t, w.dtype) for w, t in zip(nodes, ts)}
    res = jvp_graph(ys, seeds)
    res = [r if r is not None else _zeros(o.shape, o.dtype) for r, o in zip(res, ys)]
    return unflatten(y, res)


def flatten_values(values, n):
    """Tangents/cotangents given as one value or a list with one entry per node."""
    if n == 1 and (isinstance(values, Node) or not isinstance(values, (list, tuple))):
        return [values]
    if isinstance(values, np.ndarray) or len(values) != n:
        raise ValueError(f"expected {n} tangents/cotangents, got "
                         f"{1 if isinstance(values, np.ndarray) else len(values)}")
    return list(values)


def jacobian(y, x, mode="auto"):
    """The Jacobian dy/dx with shape y.shape + x.shape, as one graph.

    ``mode="forward"`` pushes all unit tangents at once (one batched tangent graph),
    ``"reverse"`` pulls all unit cotangents back at once; unit seeds cost no products (the
    tangent of x @ W is W itself). ``"optimal"`` brackets the chain of layers between x and y
    by dynamic programming over the cost model (mixed modes; the better pure mode when the
    graph is not a chain), ``"auto"`` takes the cheapest predicted of the three.
    ``sd.plan_jacobian`` returns the plan itself (bracketing, predicted cost).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.jacobian(x * x, x, mode="forward"), {x: np.array([3.0, 4.0])})
    array([[6., 0.],
           [0., 8.]])
    """
    if isinstance(x, (list, tuple)):
        return type(x)(jacobian(y, xi, mode) for xi in x)
    (y,) = stabilize([_float_output(y, "jacobian")])
    _nodes(x, "jacobian", "input")
    return plan_jacobian(y, x, mode).graph


HESSIAN_MODES = {"forward": ("reverse", "forward"), "forward-over-reverse": ("reverse", "forward"),
                 "reverse": ("reverse", "reverse"), "reverse-over-reverse": ("reverse", "reverse"),
                 "reverse-over-forward": ("forward", "reverse"),
                 "forward-over-forward": ("forward", "forward"),
                 "auto": ("reverse", "auto")}        # the gradient by reverse mode, then auto


def hessian(y, x, mode="forward"):
    """Second derivative of a scalar ``y``: the Jacobian of its gradient (shape x.shape * 2).

    ``mode`` names the outer mode over the inner one: ``"forward"`` (forward-over-reverse,
    the usual choice), ``"reverse"`` (reverse-over-reverse), ``"reverse-over-forward"`` (the
    gradient by forward mode, differentiated in reverse), ``"forward-over-forward"``, and
    ``"auto"`` (the gradient by reverse mode, its Jacobian by ``jacobian(mode="auto")``).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> sd.evaluate(sd.hessian(sd.sum(x ** 3), x, "reverse-over-forward"), {x: np.array([1., 2.])})
    array([[ 6.,  0.],
           [ 0., 12.]])
    """
    if mode not in HESSIAN_MODES:
        raise ValueError(f"hessian: mode must be one of {', '.join(map(repr, HESSIAN_MODES))}, "
                         f"got {mode!r}")
    inner, outer = HESSIAN_MODES[mode]
    g = grad(y, x) if inner == "reverse" else _forward_gradient(y, x)
    return jacobian(g, x, outer)


def _forward_gradient(y, x):
    """The gradient of a scalar by forward mode: one unit tangent per element of x."""
    y = _float_output(y, "hessian")
    if y.shape != ():
        raise DifferentiationError(f"hessian: the output `{y.name}` has shape "
                                   f"{shape_str(y.shape)}; a Hessian needs a scalar")
    return jacobian(y, x, "forward")


def hvp(y, x, v, mode="forward"):
    """Hessian-vector product H v without forming H: the jvp of the gradient
    (``"forward"``, forward-over-reverse), the gradient of <grad y, v> (``"reverse"``,
    reverse-over-reverse) or the gradient of the jvp <grad y, v> (``"reverse-over-forward"``).

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (2,))
    >>> hv = sd.hvp(sd.sum(x ** 3), x, np.array([1.0, 1.0]), mode="reverse-over-forward")
    >>> sd.evaluate(hv, {x: np.array([1.0, 2.0])})
    array([ 6., 12.])
    """
    v = F.as_node(v, x.dtype)
    if v.shape != x.shape:
        raise ShapeError(f"hvp: direction v of shape {shape_str(v.shape)} for `{x.name}` of "
                         f"shape {shape_str(x.shape)}")
    if mode == "reverse-over-forward":          # d/dx <grad y, v> with <grad y, v> = jvp
        return grad(jvp(y, [x], [v]), x)
    g = grad(y, x)
    if mode in ("forward", "forward-over-reverse"):
        return jvp(g, [x], [v])
    if mode in ("reverse", "reverse-over-reverse"):
        return grad(F.sum(g * v), x)
    raise ValueError(f"hvp: mode must be 'forward', 'reverse' or 'reverse-over-forward' "
                     f"(or the long names 'forward-over-reverse', 'reverse-over-reverse'), "
                     f"got {mode!r}")
