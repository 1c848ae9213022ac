"""The one gradient checker: central finite differences for both modes, second order, and the
forward/reverse inner-product identity <u, J v> = <J^T u, v>."""
import numpy as np

import symdiff as sd


def evaluate(node, env):
    return np.asarray(sd.evaluate(node, env), dtype=np.float64)


def numeric_jvp(y, env, xs, vs, eps=1e-6):
    """(y(x + eps v) - y(x - eps v)) / (2 eps), all inputs moved together."""
    plus = dict(env)
    minus = dict(env)
    for x, v in zip(xs, vs):
        plus[x] = env[x] + eps * v
        minus[x] = env[x] - eps * v
    return (evaluate(y, plus) - evaluate(y, minus)) / (2 * eps)


def _close(got, want, rtol, atol, what):
    scale = max(1.0, float(np.max(np.abs(want))) if np.size(want) else 1.0)
    err = float(np.max(np.abs(got - want))) if np.size(want) else 0.0
    assert err <= atol + rtol * scale, f"{what}: max abs error {err:.3g} (scale {scale:.3g})"


def check_grads(y, env, wrt=None, order=2, rtol=1e-6, atol=1e-8, seed=0, eps=1e-6):
    """Check forward and reverse mode of ``y`` against finite differences, up to ``order``."""
    rng = np.random.default_rng(seed)
    xs = list(wrt) if wrt is not None else [v for v in env if sd.dtypes.is_float(v.dtype)]
    vs = [rng.standard_normal(np.shape(env[x])) for x in xs]
    shape = np.shape(evaluate(y, env))
    u = rng.standard_normal(shape)
    fd = numeric_jvp(y, env, xs, vs, eps)
    # forward mode: J v
    jv_node = sd.jvp(y, xs, [sd.const(v, x.dtype) for x, v in zip(xs, vs)])
    jv = evaluate(jv_node, env)
    _close(jv, fd, rtol, atol, f"jvp of {y}")
    # reverse mode: <J^T u, v> = <u, J v>
    vjps = sd.vjp(y, xs, sd.const(u, y.dtype))
    vjps = vjps if isinstance(vjps, list) else [vjps]
    jtu_v = sum(float(np.sum(evaluate(g, env) * v)) for g, v in zip(vjps, vs))
    _close(np.array(jtu_v), np.array(float(np.sum(u * fd))), rtol, atol, f"vjp of {y}")
    # the two modes agree to rounding: <u, J v> == <J^T u, v>
    _close(np.array(jtu_v), np.array(float(np.sum(u * jv))), 1e-10, 1e-12, "inner product")
    if order > 1:
        # the derivative graphs are graphs too: check them the same way
        inner = sd.sum(jv_node * sd.const(u, y.dtype))
        check_grads(inner, env, xs, order - 1, rtol * 10, atol * 10, seed + 1, eps)
