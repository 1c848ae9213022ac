"""Silent wrong results, fixed in both backends: updates= is a parallel assignment, out=
buffers never overlap what a call reads or writes, f.state is read-only, and kernels called
from several threads give every thread its own exact results and lose no update."""
import threading

import numpy as np
import pytest

import symdiff as sd

BACKENDS = ["numba", "numpy"]


def _v(name, shape=(3,)):
    return sd.var(name, shape)


def _prev_and_w():
    x, w, prev = _v("x"), _v("w"), _v("prev")
    loss = sd.sum(x * w)
    (g,) = sd.grad(loss, [w])
    return [x, w, prev], loss, {w: w - 0.1 * g, prev: w}, {}


def _swap():
    a1, a2 = _v("a1"), _v("a2")
    return [a1, a2], sd.sum(a1), {a1: a2, a2: a1}, {}


def _swap_times_one():
    a1, a2 = _v("a1"), _v("a2")
    return [a1, a2], sd.sum(a1), {a1: a2 * 1.0, a2: a1 * 1.0}, {}


def _rotate_three():
    a, b, c = _v("a"), _v("b"), _v("c")
    return [a, b, c], sd.sum(a * b), {a: b, b: c, c: a}, {}


def _output_is_an_updated_var():
    a1, a2 = _v("a1"), _v("a2")
    return [a1, a2], [a1, a2 * 2.0], {a1: a1 + 1.0}, {}


def _input_and_state():
    # an input and a held array update each other; the outputs read both old values
    a, s = _v("a"), _v("s")
    return [a], [s * 1.0, a], {a: s, s: a + s}, {s: np.array([10.0, 20.0, 30.0])}


def _output_reads_old_and_new():
    v = _v("v")
    return [v], v + sd.exp(v), {v: sd.exp(v)}, {}


def _momentum_reading_each_other():
    v, p = _v("v"), _v("p")
    return [v, p], sd.sum(v * p), {v: 0.9 * v - p, p: p + (0.9 * v - p) + v}, {}


def _reader_of_other_elements():
    s = _v("s", (4, 4))                # s.T reads elements that rows before it updated
    return [s], sd.exp(s) + s.T, {s: s + 1.0}, {}


def _row_broadcast_reader():
    s, b = _v("s", (4, 4)), _v("b", (4,))
    return [s, b], sd.exp(s + b), {b: b * 2.0}, {}


def _reshaped_reader():
    w, x, a = _v("w", (3, 4)), _v("x", (12, 5)), _v("a", (5,))
    return [w, x, a], [w * 3.0, sd.sum(sd.reshape(w, (12,)) * (x @ a))], {w: w * 0.5}, {}


def _reshaped_gemm_reader():
    w, m = _v("w", (3, 4)), _v("m", (3, 2))
    return [w, m], [w * 3.0, sd.reshape(w, (4, 3)) @ sd.exp(m)], {w: w * 0.5}, {}


def _reshape_of_the_new_value():
    # the new value is computed in the parameter's memory: its reshape reads it there
    w, x = _v("w", (3, 4)), _v("x", (3, 4))
    new = sd.exp(w) + x
    return [w, x], sd.sum(sd.reshape(new, (2, 6)), axis=0), {w: new}, {}


def _scan_from_the_new_value():
    xs, h = _v("xs", (5, 4)), _v("h", (4,))
    new = sd.tanh(h) * 0.5 + 1.0
    _, hs = sd.scan(lambda c, x: (sd.tanh(c * h + x),) * 2, new, xs)
    return [xs, h], sd.sum(hs), {h: new}, {}


def _final_carry_of_a_scan():
    xs, h = _v("xs", (5, 4)), _v("h", (4,))
    last, hs = sd.scan(lambda c, x: (sd.tanh(c + x),) * 2, h, xs)
    return [xs, h], sd.sum(hs), {h: last}, {}


def _scatter_into_the_parameter():
    u, w = _v("u", (5, 4)), _v("w", (3, 4))
    new = sd.scatter_add(w * 0.5, [1, 0, 2, 1, 2], u)
    return [u, w], [sd.sum(u), new * 2.0], {w: new}, {}


def _three_updates_in_a_cycle():
    # which writer computes into a temporary must not depend on memory addresses
    p0, p1, p2 = _v("p0", (3, 4)), _v("p1", (3, 4)), _v("p2", (3, 4))
    loss = sd.sum(p2 * (p1 - p0))
    return [p0, p1, p2], [loss, loss], {p0: p1, p1: p2 * (p1 - p0), p2: p1 - p0}, {}


CASES = {f.__name__[1:]: f for f in [
    _prev_and_w, _swap, _swap_times_one, _rotate_three, _output_is_an_updated_var,
    _input_and_state, _output_reads_old_and_new, _momentum_reading_each_other,
    _reader_of_other_elements, _row_broadcast_reader, _reshaped_reader, _reshaped_gemm_reader,
    _reshape_of_the_new_value, _scan_from_the_new_value, _final_carry_of_a_scan,
    _scatter_into_the_parameter, _three_updates_in_a_cycle]}

# what the issue reported, by hand: (case, input values, outputs, arrays after the call)
BY_HAND = {
    "prev_and_w": ([[2.0, 4, 6], [1.0, 2, 3], [0.0, 0, 0]], [28.0],
                   [[2.0, 4, 6], [0.8, 1.6, 2.4], [1.0, 2, 3]]),
    "swap": ([[1.0, 2, 3], [4.0, 5, 6]], [6.0], [[4.0, 5, 6], [1.0, 2, 3]]),
    "swap_times_one": ([[1.0, 2, 3], [4.0, 5, 6]], [6.0], [[4.0, 5, 6], [1.0, 2, 3]]),
    "output_is_an_updated_var": ([[1.0, 2, 3], [4.0, 5, 6]], [[1.0, 2, 3], [8.0, 10, 12]],
                                 [[2.0, 3, 4], [4.0, 5, 6]]),
}


def _values(inputs, seed):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(v.shape) for v in inputs]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_updates_are_a_parallel_assignment(case, backend):
    inputs, outputs, updates, state = CASES[case]()
    held = {v: a.copy() for v, a in state.items()}
    f = sd.compile(inputs, outputs, updates=updates, state=held, backend=backend)
    if case in BY_HAND:
        args, want_out, want_after = (list(map(np.array, t)) for t in BY_HAND[case])
    else:
        args = _values(inputs, seed=len(case))
        env = {v: a.copy() for v, a in [*zip(inputs, args), *state.items()]}
        want_out = sd.evaluate(outputs if isinstance(outputs, list) else [outputs], env)
        want_after = [sd.evaluate(updates.get(v, v), env) for v in inputs]
        want_state = {v: sd.evaluate(updates.get(v, v), env) for v in state}
    got = f(*args)
    for g, w in zip(got if isinstance(got, list) else [got], want_out):
        np.testing.assert_allclose(g, w, rtol=1e-12)
    for a, w in zip(args, want_after):
        np.testing.assert_allclose(a, w, rtol=1e-12)
    for v in state:
        np.testing.assert_allclose(f.state[v], want_state[v], rtol=1e-12)
        assert f.state[v] is held[v]                      # written in place


@pytest.mark.parametrize("case", ["three_updates_in_a_cycle", "rotate_three", "swap"])
def test_updates_in_a_cycle_lower_to_one_program(case):
    """The kernel's source (its cache key) is the same whatever the objects' addresses: the
    writer that computes into a temporary is chosen in item order."""
    from symdiff.codegen import render_spec

    from symdiff.function import Spec
    inputs, outputs, updates, _ = CASES[case]()
    spec = Spec(inputs, outputs if isinstance(outputs, list) else [outputs], updates)
    sources, ballast = set(), []
    for k in range(6):
        ballast.append([object() for _ in range(97 * k + 1)])   # other addresses each time
        sources.add(render_spec(spec, {"math": "fast", "parallel": False,
                                       "fastmath": True})[1])
    assert len(sources) == 1


def _copies(f):
    from symdiff.codegen.program import Copy
    return [s for s in f.program.steps if isinstance(s, Copy)]


def test_updates_copy_only_what_another_update_would_clobber():
    x, w, b = sd.var("x", ("n", 3)), sd.param("w", (3, 2)), sd.param("b", (2,))
    loss = sd.mean(sd.square(sd.tanh(x @ w + b)))
    gw, gb = sd.grad(loss, [w, b])
    train = sd.compile([x], loss, updates={w: w - 0.1 * gw, b: b - 0.1 * gb},
                       state={w: np.ones((3, 2)), b: np.zeros(2)})
    assert not _copies(train) and "a1[i0, i1] = " in train.source        # w (a1) straight in place
    for case, n in [("prev_and_w", 0), ("rotate_three", 1), ("swap", 1),
                    ("momentum_reading_each_other", 1), ("output_reads_old_and_new", 1)]:
        inputs, outputs, updates, _ = CASES[case]()
        assert len(_copies(sd.compile(inputs, outputs, updates=updates))) == n, case


@pytest.fixture(scope="module")
def with_state():
    x, w = sd.var("x", (3,)), sd.var("w", (3,))
    return x, w, {b: sd.compile([x], [x * w, sd.sum(x)], state={w: np.ones(3)}, backend=b)
                  for b in BACKENDS}


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_buffers_that_overlap_raise_naming_both(backend, with_state):
    x, w, fs = with_state
    f = fs[backend]
    X, buf = np.arange(3.0), np.zeros(6)
    bad = [
        ([X], [X, np.zeros(())], r"out\[0\] overlaps argument 'x'"),
        ([X], [f.state[w], np.zeros(())], r"out\[0\] overlaps state 'w'"),
        ([X], [buf[:3], buf[:3].reshape(3)[0:1].reshape(())],
         r"out\[0\] and out\[1\] share memory"),
    ]
    for args, out, match in bad:
        before = f.state[w].copy()
        with pytest.raises(sd.ArgumentError, match=match):
            f(*args, out=out)
        np.testing.assert_array_equal(f.state[w], before)    # nothing was written
    o = np.zeros(1)[0:1].reshape(())
    got = f(X, out=[buf[3:], o])                               # disjoint parts of one buffer
    np.testing.assert_array_equal(buf, [0, 0, 0, 0, 1, 2])
    assert got[1] is o and float(o) == 3.0


@pytest.mark.parametrize("backend", BACKENDS)
def test_out_buffers_over_memory_no_array_owns_are_tested_exactly(backend, with_state):
    """Arrays over a bytearray have no owning ndarray: the owner shortcut cannot clear them,
    NumPy's bounds test does."""
    x, w, fs = with_state
    f = fs[backend]
    raw = bytearray(8 * 8)
    view = np.frombuffer(raw, np.float64)          # writable, owned by the bytearray
    other = np.frombuffer(raw, np.float64)         # another ndarray over the same bytes
    with pytest.raises(sd.ArgumentError, match=r"out\[0\] and out\[1\] share memory"):
        f(np.arange(3.0), out=[view[:3], other[2:3].reshape(())])
    with pytest.raises(sd.ArgumentError, match=r"out\[0\] overlaps argument 'x'"):
        f(other[4:7], out=[view[5:8], np.zeros(())])
    view[4:7] = [1.0, 2.0, 3.0]
    o = view[:3]
    got = f(other[4:7], out=[o, view[3:4].reshape(())])             # disjoint parts
    np.testing.assert_array_equal(view[:4], [1.0, 2.0, 3.0, 6.0])
    assert got[0] is o


@pytest.mark.parametrize("backend", BACKENDS)
def test_an_updated_argument_sharing_memory_with_another_raises(backend):
    a, b = _v("a"), _v("b")
    f = sd.compile([a, b], sd.sum(b), updates={a: a + b}, backend=backend)
    A = np.arange(6.0)
    with pytest.raises(sd.ArgumentError, match=r"argument 'a' \(position 0\) is updated in "
                                               r"place and shares memory with argument 'b'"):
        f(A[:3], A[2:5])
    f(A[:3], A[3:])                                            # disjoint: fine
    np.testing.assert_array_equal(A, [3, 5, 7, 3, 4, 5])


@pytest.mark.parametrize("backend", BACKENDS)
def test_state_is_read_only_and_written_in_place(backend, with_state):
    x, w, fs = with_state
    f = fs[backend]
    held = f.state[w]
    with pytest.raises(TypeError, match=r"read-only.*f.state\[w\]\[...\] = new"):
        f.state[w] = np.full(3, 2.0)
    with pytest.raises(TypeError, match="read-only"):
        del f.state[w]
    assert f.state[w] is held and list(f.state) == [w] and len(f.state) == 1
    try:
        f.state[w][...] = 2.0                                   # the documented way
        np.testing.assert_array_equal(f(np.arange(3.0))[0], [0, 2, 4])
    finally:
        f.state[w][...] = 1.0


def _in_threads(work, n=4):
    errors = []

    def run(k):
        try:
            work(k)
        except BaseException as e:          # noqa: BLE001 - reported by the test below
            errors.append(e)
    threads = [threading.Thread(target=run, args=(k,)) for k in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def _mlp():
    x, y = sd.var("x", ("batch", 5)), sd.var("y", ("batch",), dtype="int64")
    W, b = sd.param("W", (5, 3)), sd.param("b", (3,))
    loss = sd.mean(sd.softmax_cross_entropy(sd.tanh(x @ W) + b, y))
    return (x, y, W, b), [loss] + sd.grad(loss, [W, b])


def test_four_threads_calling_one_kernel_get_their_own_exact_results():
    (x, y, W, b), outs = _mlp()
    f = sd.compile([x, y, W, b], outs)
    rng = np.random.default_rng(0)
    data = [(rng.standard_normal((8, 5)), rng.integers(0, 3, 8), rng.standard_normal((5, 3)),
             rng.standard_normal(3)) for _ in range(4)]
    want = [[np.array(r) for r in f(*d)] for d in data]          # one thread, one at a time
    bad = [0] * 4

    def work(k):
        X, Y, Wv, bv = data[k]
        mine = [np.empty(()), np.empty((5, 3)), np.empty(3)]
        for i in range(1000):
            if i % 10 == 3:                      # the converting path, then out= buffers
                got = f(X, Y.astype(np.int32), Wv, bv.tolist())
            elif i % 10 == 7:
                got = f(X, Y, Wv, bv, out=mine)
            else:
                got = f(X, Y, Wv, bv)
            bad[k] += not all(np.array_equal(g, w) for g, w in zip(got, want[k]))
    _in_threads(work)
    assert bad == [0, 0, 0, 0]


def _logreg(state_rate):
    x, y = sd.var("x", ("batch", 3)), sd.var("y", ("batch",))
    w, rate = sd.param("w", (3,)), sd.var("rate", ())
    loss = sd.mean(sd.binary_cross_entropy_with_logits(x @ w, y))
    (g,) = sd.grad(loss, [w])
    held = {w: np.array([0.5, -0.25, 1.0]), rate: np.array(state_rate)}
    return sd.compile([x, y], loss, updates={w: w - rate * g}, state=held)


def test_epochs_from_four_threads_get_their_own_losses():
    step = _logreg(0.0)                                           # learning rate 0
    x, y = step.spec.inputs
    plain = sd.compile([x, y], step.spec.outputs[0], state=dict(step.state))   # no updates
    rng = np.random.default_rng(1)
    data = [(rng.standard_normal((50, 3)), (rng.random(50) > 0.5).astype(float))
            for _ in range(4)]
    for f in (step, plain):
        want = [f.epoch(X, Y, batch_size=8) for X, Y in data]
        bad = [0] * 4

        def work(k):
            for _ in range(50):
                bad[k] += not np.array_equal(f.epoch(*data[k], batch_size=8), want[k])
        _in_threads(work)
        assert bad == [0, 0, 0, 0]
    assert step._lock is not None and plain._lock is None


@pytest.mark.parametrize("backend", BACKENDS)
def test_updates_from_four_threads_lose_nothing(backend):
    c = sd.var("c", (4096,))             # long enough a call for threads to overlap
    counter = sd.compile([], sd.mean(c), updates={c: c + 1.0}, state={c: np.zeros(4096)},
                         backend=backend)
    seen = [[] for _ in range(4)]

    def work(k):
        seen[k] += [float(counter()) for _ in range(500)]
    _in_threads(work)
    assert (counter.state[c] == 2000.0).all()
    # every call read the value the previous one wrote: each count was seen exactly once
    assert sorted(v for s in seen for v in s) == list(map(float, range(2000)))


def test_var_names_that_are_not_python_identifiers_compile():
    """Names become identifiers in the generated source: "x²" (not a Python identifier),
    "x³" beside it, a keyword, a space and a Greek letter all compile and keep apart."""
    names = ["x²", "x³", "class", "a b", "λ"]
    xs = [sd.var(n, (3,)) for n in names]
    prod = xs[0] * xs[1] * xs[2] * xs[3] * xs[4]
    loss = sd.sum(prod * prod)
    f = sd.compile(xs, [loss] + sd.grad(loss, xs))
    vals = [np.arange(1.0, 4.0) * k for k in (1, 2, 3, 5, 7)]
    p = np.prod(vals, axis=0)
    got = f(*vals)
    np.testing.assert_allclose(got[0], np.sum(p * p), rtol=1e-12)
    for g, v in zip(got[1:], vals):
        np.testing.assert_allclose(g, 2 * p * p / v, rtol=1e-12)
    assert f.source.isascii() and "x_u00b2" in f.source and "x_u00b3" in f.source
