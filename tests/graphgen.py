"""Random graphs for property tests: a seed -> (inputs, output node, input values).

The vocabulary covers elementwise ops, reductions with keepdims, transposes and the tensor
language (slices with any step, pads, flips, concatenation, gathers and scatters with
negative indices, cumsum, tril, einsum); shapes are random (rank 1 to 3, sizes 1 to 5),
the first input may have a symbolic leading dim, and nodes are reused (DAGs, not trees).
Ops that need a concrete size leave symbolic axes alone. A graph is float64 or float32
(``dtype=``); the structure of a seed's graph does not depend on its dtype.

``check_graph(seed)`` is the property both tests/codegen/test_random_graphs.py and
benchmarks/fuzz.py check: a backend's [output] + gradients equal the interpreter's, and
reverse mode agrees with forward mode. ``check_values`` is its comparison alone, for a
caller that compiled several graphs into one function (the fuzz script's batches).
"""
import numpy as np

import symdiff as sd
from symdiff.graph import toposort


def _concrete_axes(x):
    return [a for a, d in enumerate(x.shape) if isinstance(d, int) and d > 0]


def _slice(rng, x):
    axes = _concrete_axes(x)
    if not axes:
        return None
    a = int(rng.choice(axes))
    d = x.shape[a]
    start, stop = sorted(rng.integers(0, d + 1, 2))
    stop = max(stop, start + 1)
    step = int(rng.choice([1, 2, -1, -2]))
    key = [slice(None)] * x.ndim
    key[a] = slice(start, stop, step) if step > 0 else slice(stop - 1, None if start == 0 else
                                                             start - 1, step)
    return x[tuple(key)]


def _pad(rng, x):
    w = [(0, 0) if not isinstance(d, int) else tuple(rng.integers(0, 3, 2)) for d in x.shape]
    return sd.pad(x, w, constant_values=float(rng.choice([0.0, 1.5])))


def _concat(rng, x, pool):
    axes = _concrete_axes(x)
    if not axes:
        return None
    a = int(rng.choice(axes))
    other = next((p for p in pool if p.shape == x.shape and p is not x), x)
    return sd.concatenate([x, sd.tanh(other)], axis=a)


def _take(rng, x):
    axes = _concrete_axes(x)
    if not axes:
        return None
    a = int(rng.choice(axes))
    d = x.shape[a]
    idx = rng.integers(-d, d, int(rng.integers(1, 4)))
    return sd.take(x, idx, axis=a)


def _scatter(rng, x):
    axes = _concrete_axes(x)
    if not axes:
        return None
    a = int(rng.choice(axes))
    d = x.shape[a]
    idx = rng.integers(-d, d, d)            # repeats: contributions add up
    return sd.scatter_add(x, idx, sd.sin(sd.take(x, np.arange(d)[::-1], axis=a)), axis=a)


def _tril(rng, x):
    if x.ndim < 2 or not all(isinstance(d, int) for d in x.shape[-2:]):
        return None
    return sd.tril(x, int(rng.integers(-1, 2)))


def _einsum(rng, x):
    letters = "abc"[:x.ndim]
    out = "".join(c for c in letters if rng.random() < 0.5)
    return sd.einsum(f"{letters},{letters}->{out}", x, sd.sigmoid(x))


def _reduce(rng, x):
    a = int(rng.integers(0, x.ndim))
    return sd.sum(x, axis=a, keepdims=bool(rng.integers(0, 2)))


UNARY = [sd.tanh, sd.sin, sd.sigmoid, lambda x: x * x, lambda x: sd.exp(-x * x),
         sd.softplus]


TENSOR = [
    lambda r, v, p: _slice(r, v), lambda r, v, p: _pad(r, v),
    lambda r, v, p: sd.flip(v, int(r.integers(0, v.ndim))), _concat,
    lambda r, v, p: _take(r, v), lambda r, v, p: _scatter(r, v),
    lambda r, v, p: sd.cumsum(v, int(r.integers(0, v.ndim))), lambda r, v, p: _tril(r, v),
    lambda r, v, p: _einsum(r, v), lambda r, v, p: _reduce(r, v),
]


def random_graph(seed, steps=8, symbolic=True, dim="n", dtype="float64"):
    """(inputs, output, env) of a random graph: the output is a scalar loss. ``dim`` names
    the symbolic leading dim (graphs compiled together each need their own name to bind
    their own size); the graph is otherwise the same for every name and ``dtype``."""
    rng = np.random.default_rng(seed)
    shape = tuple(int(d) for d in rng.integers(1, 5, int(rng.integers(1, 4))))
    # a symbolic leading dim only off the axis that y broadcasts against: (n,) * (3,) would
    # unify n with 3 (a declaration-time equality, not a run-time size)
    lead = dim if symbolic and len(shape) >= 2 and rng.random() < 0.5 else shape[0]
    x = sd.var(f"x{seed}", (lead,) + shape[1:], dtype)
    y = sd.var(f"y{seed}", shape[-1:], dtype)
    pool = [x, x * y]
    for _ in range(steps):
        node = pool[int(rng.integers(0, len(pool)))]
        pick = int(rng.integers(0, 3 + len(TENSOR)))
        if pick < 2:
            new = UNARY[int(rng.integers(0, len(UNARY)))](node)
        elif pick == 2:
            other = pool[int(rng.integers(0, len(pool)))]
            new = node * sd.tanh(other) if node.shape == other.shape else node + 1.0
        else:
            new = TENSOR[pick - 3](rng, node, pool)
        if new is not None and new.ndim >= 1 and (new.size is None or new.size > 0):
            pool.append(new)
    out = sd.sum(sd.sin(pool[-1])) + sd.sum(pool[len(pool) // 2] ** 2) * 0.1
    n = int(rng.integers(1, 5))
    env = {x: rng.standard_normal((n if lead == dim else lead,) + shape[1:]).astype(dtype),
           y: rng.standard_normal(shape[-1:]).astype(dtype)}
    return [x, y], out, env


def with_grads(inputs, out):
    """The outputs a random graph's function computes: [out] + its gradient w.r.t. every
    input (reverse mode)."""
    return [out] + sd.grad(out, inputs)


# float32 graphs: the interpreter (NumPy, float32) against a backend (fused, reassociated,
# float32). Over 400 seeds of depth up to 30 the worst difference was 1.1e-7 of the output's
# scale (float32 eps is 1.2e-7), so 1e-5 of the scale leaves a 100x margin for deeper
# cancellations without hiding a wrong rule (those are off by O(1)).
F32_TOL = 1e-5


def check_values(seed, inputs, outputs, env, got, rtol=1e-10, atol=1e-10, exact=None):
    """Assert that ``got``, a backend's values of ``outputs = with_grads(inputs, out)`` at
    ``env``, equal the interpreter's, and that reverse mode agrees with forward mode:
    <grad, v> = jvp(v) for a random direction v (seeded by ``seed + 1``). A float32 graph
    is compared within ``F32_TOL`` of each output's scale 1 + max|value|, or, where that
    fails and ``exact()`` gives the outputs' float64 values (``float64_values``), by
    ``accurate_as_interpreter``."""
    want = sd.evaluate(outputs, env)
    single = outputs[0].dtype == "float32"
    truth = None                              # the float64 values, evaluated once if needed
    for i, (g, w) in enumerate(zip(got, want)):
        assert g.dtype == w.dtype, f"seed {seed}: output {i} is {g.dtype}, want {w.dtype}"
        if single:
            rtol, atol = F32_TOL, F32_TOL * (1 + float(np.max(np.abs(w), initial=0)))
            if exact is not None and not np.allclose(g, w, rtol=rtol, atol=atol):
                truth = exact() if truth is None else truth
                accurate_as_interpreter(seed, i, g, w, truth[i], atol)
                continue
        np.testing.assert_allclose(g, w, rtol=rtol, atol=atol, err_msg=f"seed {seed}: "
                                   f"output {i} of [out] + grads w.r.t. {[v.name for v in inputs]}")
    rng = np.random.default_rng(seed + 1)
    dirs = [rng.standard_normal(env[v].shape).astype(env[v].dtype) for v in inputs]
    tvars = [sd.var(f"t_{v.name}", v.shape, v.dtype) for v in inputs]   # same (symbolic) shapes
    tangent = sd.jvp(outputs[0], inputs, tvars)
    fwd = float(sd.evaluate(tangent, {**env, **dict(zip(tvars, dirs))}))
    terms = [np.asarray(g, float) * d for g, d in zip(want[1:], dirs)]
    rev = sum(float(np.sum(t)) for t in terms)
    # float32: the two sums' rounding is eps times the sum of the terms' magnitudes
    tol = F32_TOL * (1 + sum(float(np.sum(np.abs(t))) for t in terms)) if single else 1e-10
    assert np.isclose(fwd, rev, rtol=1e-9, atol=tol), \
        f"seed {seed}: forward mode {fwd!r} != reverse mode {rev!r}"


def accurate_as_interpreter(seed, i, g, w, exact, atol):
    """float32 output ``g`` of a backend at most 4x as far from the float64 value ``exact``
    of the same graph at the same inputs as the float32 interpreter's ``w`` is (plus
    ``atol``). For ill-conditioned graphs: sin of a large cumsum, say, turns the float32
    rounding of its argument (which depends on the order of a sum, free under the kernels'
    reassociation) into errors beyond F32_TOL in every float32 evaluation, the interpreter's
    included (seed 7709: interpreter 1.3e-5 and kernel 3.7e-5 from the float64 value)."""
    exact = np.asarray(exact, np.float64)
    mine = np.abs(np.asarray(g, np.float64) - exact)
    bound = 4 * np.abs(np.asarray(w, np.float64) - exact) + atol
    bad = ~(mine <= bound)
    assert not bad.any(), (f"seed {seed}: output {i}: {int(bad.sum())} values further from "
                           f"the float64 value than 4x the float32 interpreter's error: "
                           f"{mine[bad][:3]} > {bound[bad][:3]}")


def float64_values(seed, inputs, out32, env, **kwargs):
    """A function giving the float64 values of ``with_grads(inputs, out32)``, the float32
    graph ``random_graph(seed, **kwargs)``, at ``env``: the same graph built in float64, at
    the same inputs upcast. Checks that the two graphs have the same ops, node for node."""
    def values():
        ins, out, _ = random_graph(seed, **{**kwargs, "dtype": "float64"})
        same = [(a.op, a.shape) for a in toposort([out32])] == \
            [(a.op, a.shape) for a in toposort([out])]
        assert same, f"seed {seed}: the float64 graph differs from the float32 one"
        up = {v64: np.asarray(env[v32], np.float64) if env[v32].dtype == np.float32
              else env[v32] for v32, v64 in zip(inputs, ins)}
        return sd.evaluate(with_grads(ins, out), up)
    return values


def check_graph(seed, backend="numba", **kwargs):
    """Compile ``random_graph(seed, **kwargs)`` with its gradients on ``backend`` and
    ``check_values`` the result (``dtype="float32"`` among the keywords for a float32 graph)."""
    inputs, out, env = random_graph(seed, **kwargs)
    outputs = with_grads(inputs, out)
    f = sd.compile(inputs, outputs, backend=backend)
    exact = float64_values(seed, inputs, out, env, **kwargs) if out.dtype == "float32" \
        else None
    check_values(seed, inputs, outputs, env, f(*[env[v] for v in inputs]), exact=exact)
