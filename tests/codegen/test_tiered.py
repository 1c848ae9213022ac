"""Tiered execution: the NumPy tier runs until the Numba kernel swaps in (codegen/tiered.py).

The compile thread is held at a gate (``gate``) where a test needs calls to run on the NumPy
tier for sure, then released; real worker processes are killed where a test says so."""
import os
import pickle
import signal
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest
from symdiff.codegen import tiered
from symdiff.codegen.tiered import CompileWorkerWarning
from symdiff.models.zoo import ZOO

import symdiff as sd
from symdiff.function import Spec


@pytest.fixture(autouse=True)
def tiered_on(monkeypatch):
    # conftest.py turns tiering off for the other tests (they test the Numba kernel itself)
    monkeypatch.setenv("SYMDIFF_TIERED", "1")


@pytest.fixture
def gate(monkeypatch):
    """Hold every compile job until the test sets the returned event."""
    event, build = threading.Event(), tiered._build

    def held(*args, **keywords):
        event.wait()
        return build(*args, **keywords)
    monkeypatch.setattr(tiered, "_build", held)
    yield event
    event.set()


def _values(m, rows=6, seed=7):
    rng = np.random.default_rng(seed)
    values = []
    for v in m.inputs + m.params:
        shape = tuple(rows if not isinstance(d, int) else d for d in v.shape)
        if v.dtype == "int64":
            classes = m.outputs["logits"].shape[-1]      # class labels
            values.append(rng.integers(0, classes, shape))
        elif v.name == "y":
            values.append((rng.random(shape) > 0.5) * 2.0 - 1.0)
        else:
            values.append(rng.standard_normal(shape))
    return values


# logreg, the MLP and XOR by default; the other zoo models with -m slow (two compiles each)
ZOO_CASES = [n if n in ("logreg", "mlp", "xor") else pytest.param(n, marks=pytest.mark.slow)
             for n in sorted(ZOO)]


@pytest.mark.parametrize("name", ZOO_CASES)
def test_both_tiers_agree_on_the_zoo_outputs_gradients_and_epoch(name, gate):
    m = ZOO[name]()
    values = _values(m)
    outs = [m.loss] + sd.grad(m.loss, m.params)
    f = sd.compile(m.inputs + m.params, outs)
    assert not f.ready
    slow = f(*values)
    gate.set()
    assert f.wait(timeout=300) and f.ready
    for a, b in zip(slow, f(*values)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    # an epoch of SGD: the NumPy tier (held) against the synchronous kernel
    gate.clear()
    data, order = _values(m, rows=10, seed=3)[:2], np.random.default_rng(1).permutation(10)
    grads = sd.grad(m.loss, m.params)
    runs = []
    for wait in (False, True):
        state = {p: np.array(m.init[p], dtype=p.dtype) for p in m.params}
        g = sd.compile(m.inputs, m.loss, state=state, wait=wait,
                       updates={p: p - 0.1 * d for p, d in zip(m.params, grads)})
        assert g.ready is wait
        runs.append((g.epoch(*data, batch_size=4, order=order), [state[p] for p in m.params]))
    gate.set()
    (rec0, st0), (rec1, st1) = runs
    assert rec0.shape == rec1.shape == (3, 1)
    np.testing.assert_allclose(rec0, rec1, rtol=1e-12, atol=1e-15)
    for a, b in zip(st0, st1):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def _mlp(scale):
    """A small MLP loss and gradients (``scale`` makes the graph, so the kernel, new)."""
    m = ZOO["mlp"]()
    loss = m.loss * scale
    return m, loss, sd.grad(loss, m.params)


def test_calls_from_many_threads_during_the_swap_are_correct(gate):
    m, loss, grads = _mlp(1.25)
    values = _values(m)
    want = sd.compile(m.inputs + m.params, [loss] + grads, backend="numpy")(*values)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    tiers, errors, stop = [], [], threading.Event()

    def caller():
        while not stop.is_set():
            before = f.ready
            got = f(*values)
            tiers.append((before, f.ready))
            try:
                for a, b in zip(got, want):
                    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
            except AssertionError as e:
                errors.append(e)
    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    time.sleep(0.2)
    gate.set()
    assert f.wait(timeout=300)
    time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert (False, False) in tiers and (True, True) in tiers     # both tiers ran


def _sgd(scale, wait, m=None, backend="numba"):
    m = m or ZOO["mlp"]()
    loss = m.loss * scale
    state = {p: np.array(m.init[p], dtype=p.dtype) for p in m.params}
    grads = sd.grad(loss, m.params)
    f = sd.compile(m.inputs, loss, state=state, wait=wait, backend=backend,
                   updates={p: p - 0.1 * d for p, d in zip(m.params, grads)})
    return m, f, state


def test_updates_across_the_swap_give_the_synchronous_sequence(gate):
    m, sync, sync_state = _sgd(1.5, wait=True)
    _, f, state = _sgd(1.5, wait=False, m=m)
    x, y = _values(m)[:2]
    want = [float(sync(x, y)) for _ in range(40)]
    got = []
    for k in range(40):
        if k == 5:
            gate.set()                     # the swap happens while the loop goes on
        got.append(float(f(x, y)))
    assert f.wait(timeout=300)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    for p in m.params:
        np.testing.assert_allclose(state[p], sync_state[p], rtol=1e-12, atol=1e-15)


def _until(condition, seconds=300):
    """Poll ``condition`` (a background job's effect) until it holds or time runs out."""
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)


def test_epochs_on_every_tier_give_the_numpy_backends_sequence(monkeypatch, gate):
    """Epochs on the NumPy tier, then the compiled step from a Python loop (the driver held
    back), then the compiled driver: the records and parameters of the NumPy backend's
    epochs (a synchronous kernel's would be reused by the tiered compile, driver included)."""
    m, sync, sync_state = _sgd(1.25, wait=True, backend="numpy")
    _, f, state = _sgd(1.25, wait=False, m=m)
    data, rng = _values(m, rows=22, seed=5)[:2], np.random.default_rng(2)
    orders = [rng.permutation(22) for _ in range(4)]
    want = [sync.epoch(*data, batch_size=4, order=o) for o in orders]
    driver_gate, build = threading.Event(), tiered._build

    def held_driver(*args, name="kernel", **keywords):
        if name == "epoch":
            driver_gate.wait()
        return build(*args, name=name, **keywords)
    monkeypatch.setattr(tiered, "_build", held_driver)
    got = [f.epoch(*data, batch_size=4, order=orders[0])]      # the NumPy tier
    gate.set()
    assert f.wait(timeout=300)
    got.append(f.epoch(*data, batch_size=4, order=orders[1]))  # the step from Python
    assert f._epochs._driver is None
    driver_gate.set()
    _until(lambda: f._epochs._driver is not None)
    assert f._epochs._driver is not None and not f._epochs._fell_back
    got += [f.epoch(*data, batch_size=4, order=o) for o in orders[2:]]  # the driver
    for a, b in zip(got, want):
        assert a.shape == b.shape == (6, 1)
        np.testing.assert_allclose(a, b, rtol=1e-12)
    for p in m.params:
        np.testing.assert_allclose(state[p], sync_state[p], rtol=1e-12, atol=1e-15)


def test_a_failed_background_driver_compiles_in_process(monkeypatch, gate):
    """The worker's driver compile fails (here: it raises): the next epoch compiles the
    driver in this process, as a synchronous kernel does."""
    build = tiered._build

    def failing(*args, name="kernel", **keywords):
        if name == "epoch":
            raise OSError("the worker could not compile the driver")
        return build(*args, name=name, **keywords)
    monkeypatch.setattr(tiered, "_build", failing)
    m, f, state = _sgd(1.375, wait=False)
    gate.set()
    assert f.wait(timeout=300)
    data = _values(m, rows=8)[:2]
    f.epoch(*data, batch_size=4)                 # queues the driver job, runs the loop
    _until(lambda: f._epochs._fell_back)
    assert f._epochs._fell_back and f._epochs._driver is None
    f.epoch(*data, batch_size=4)
    assert f._epochs._driver is not None and f.epoch_compile_seconds > 0


def test_updates_from_many_threads_across_the_swap_are_neither_lost_nor_doubled(gate):
    m, sync, sync_state = _sgd(1.75, wait=True)
    _, f, state = _sgd(1.75, wait=False, m=m)
    x, y = _values(m)[:2]
    for _ in range(4 * 25):
        sync(x, y)

    def caller():
        for _ in range(25):
            f(x, y)
    threads = [threading.Thread(target=caller) for _ in range(4)]
    for t in threads:
        t.start()
    gate.set()
    for t in threads:
        t.join()
    for p in m.params:                    # every step of the same batch: same final state
        np.testing.assert_allclose(state[p], sync_state[p], rtol=1e-11, atol=1e-14)


def test_wait_ready_and_timeout(gate):
    m, loss, grads = _mlp(2.5)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    assert f.ready is False
    t0 = time.perf_counter()
    assert f.wait(timeout=0.05) is False
    assert time.perf_counter() - t0 < 5
    assert f.key and f.source and f.program is not None and f.stats["gemms"] >= 1
    assert f.peak_bytes(batch=6) > 0
    gate.set()
    assert f.wait() is True and f.ready is True


def test_compile_is_tiered_by_default(monkeypatch, gate):
    monkeypatch.delenv("SYMDIFF_TIERED")
    m, loss, grads = _mlp(2.75)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    assert not f.ready and f._tier is not None
    gate.set()
    assert f.wait()


def test_the_environment_switch_and_wait_true_compile_synchronously(monkeypatch):
    m, loss, grads = _mlp(3.0)
    monkeypatch.setenv("SYMDIFF_TIERED", "0")
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    assert f.ready and f._tier is None
    monkeypatch.setenv("SYMDIFF_TIERED", "1")
    m, loss, grads = _mlp(3.5)
    g = sd.compile(m.inputs + m.params, [loss] + grads, wait=True)
    assert g.ready and g._tier is None


def test_a_tiered_kernel_pickles_before_it_is_ready(gate):
    m, loss, grads = _mlp(4.0)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    values = _values(m)
    g = pickle.loads(pickle.dumps(f))
    gate.set()
    for a, b in zip(f(*values), g(*values)):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_out_buffers_are_checked_alike_on_both_tiers(gate):
    m, loss, grads = _mlp(4.5)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    values = _values(m)
    outs = [np.empty(np.shape(r)) for r in f(*values)]
    bad = [o.copy() for o in outs]
    k = next(i for i, o in enumerate(outs) if o.ndim == 2)
    bad[k] = np.empty(outs[k].shape[::-1]).T          # right shape, not C-contiguous
    for ready in (False, True):
        if ready:
            gate.set()
            f.wait()
        with pytest.raises(sd.ArgumentError, match="C-contiguous"):
            f(*values, out=bad)
        assert f(*values, out=outs)[0] is outs[0]


def test_a_worker_crash_falls_back_to_an_in_process_compile(monkeypatch):
    m, loss, grads = _mlp(5.0)
    send = tiered._Worker.send

    def crash(self, request):          # the worker dies just as the job is sent
        self.proc.kill()
        self.proc.wait()
        return send(self, request)
    monkeypatch.setattr(tiered._Worker, "send", crash)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    with pytest.warns(CompileWorkerWarning, match="compile worker .* died"):
        assert f.wait(timeout=300)
    values = _values(m)
    want = sd.compile(m.inputs + m.params, [loss] + grads, backend="numpy")(*values)
    for a, b in zip(f(*values), want):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)


def test_a_compile_error_in_the_worker_is_the_in_process_error():
    from symdiff.codegen import jit, render_spec
    m, loss, _ = _mlp(5.5)
    spec = Spec(m.inputs + m.params, loss)
    options = {"math": "fast", "parallel": False, "fastmath": True}
    program, _, arg_types = render_spec(spec, options)
    source = "def kernel(a:\n"                      # not Python
    with pytest.raises(SyntaxError) as here:
        jit.load(source, arg_types)
    f = tiered.start(spec, options, ("bad",), render=lambda *_: (program, source, arg_types))
    with pytest.raises(SyntaxError) as there:
        f.wait(timeout=300)
    assert str(there.value) == str(here.value)
    with pytest.raises(SyntaxError):
        f(*_values(m))


_CHILD = textwrap.dedent("""
    import sys, time
    import symdiff as sd
    from symdiff.codegen import tiered
    from symdiff.models.zoo import ZOO
    m = ZOO["mlp"](sizes=(5, 9, 4))
    f = sd.compile(m.inputs + m.params, [m.loss * 7.0] + sd.grad(m.loss * 7.0, m.params))
    while tiered._state["worker"] is None:
        time.sleep(0.01)
    print(tiered._state["worker"].proc.pid, flush=True)
    time.sleep(float(sys.argv[1]))
""")


def _gone(pid, seconds):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:                                       # our own child: reap it
            if os.waitpid(pid, os.WNOHANG)[0]:
                return True
        except ChildProcessError:
            pass
        time.sleep(0.1)
    return False


def _child(cache_dir, sleep):
    env = dict(os.environ, SYMDIFF_TIERED="1", SYMDIFF_CACHE_DIR=cache_dir)
    proc = subprocess.Popen([sys.executable, "-c", _CHILD, str(sleep)], env=env,
                            stdout=subprocess.PIPE, text=True)
    return proc, int(proc.stdout.readline())


def test_the_worker_exits_when_its_parent_is_killed(tmp_path):
    parent, worker = _child(str(tmp_path), 60)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    assert _gone(worker, 10), f"compile worker {worker} outlived its killed parent"


def test_the_parent_exits_at_once_and_the_worker_after_its_compile(tmp_path):
    parent, worker = _child(str(tmp_path), 0)
    t0 = time.perf_counter()
    parent.wait(timeout=60)
    assert time.perf_counter() - t0 < 10           # the interpreter exit is not held up
    assert _gone(worker, 120), f"compile worker {worker} did not exit"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
@pytest.mark.parametrize("when", ["compiling", "passes not started"])
def test_a_forked_child_gets_the_kernel_its_parent_was_compiling(gate, when):
    """Threads do not survive fork(): a kernel on its way in the parent resumes in the child at
    its next call or wait() (it once never arrived there, and wait() blocked forever). The
    oracle is the NumPy backend; the child reports through a pipe."""
    m, loss, grads = _mlp(3.25 if when == "compiling" else 3.75)
    f = sd.compile(m.inputs + m.params, [loss] + grads)
    values = _values(m)
    if when == "compiling":
        f(*values)                             # starts the passes; the compile job waits
        _until(lambda: f._rendered.is_set())
    want = sd.compile(m.inputs + m.params, [loss] + grads, backend="numpy")(*values)
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:                               # the child: no pytest from here on
        try:
            gate.set()                         # the child's copy of the gate
            ok = f.wait(timeout=240) and f.ready and all(
                np.allclose(a, b, rtol=1e-10, atol=1e-12) for a, b in zip(f(*values), want))
            os.write(write, b"ok" if ok else b"wrong")
        except BaseException as exc:           # noqa: BLE001 - reported to the parent
            os.write(write, repr(exc).encode()[:500])
        finally:
            os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        report = pipe.read()
    os.waitpid(pid, 0)
    gate.set()                                 # the parent's own compile goes on as before
    assert report == b"ok"
    assert f.wait(timeout=240) and f.ready


_FORK = textwrap.dedent("""
    import os, sys, time
    import numpy as np
    import symdiff as sd
    x, w = sd.var("x", ("n", 3)), sd.param("w", (3,))
    loss = sd.sum(sd.tanh(x @ w) * 1.2345)
    f = sd.compile([x, w], [loss, sd.grad(loss, w)])
    X, W = np.linspace(-1, 1, 6).reshape(2, 3), np.array([0.5, -1.0, 2.0])
    f(X, W)                       # starts the passes; then numba's import and the compile
    time.sleep(float(sys.argv[1]))
    pid = os.fork()
    if pid == 0:
        ok = f.wait(timeout=120) and f.ready
        t = np.tanh(X @ W)
        value, grad = f(X, W)
        ok = ok and np.isclose(value, 1.2345 * t.sum()) and \\
            np.allclose(grad, 1.2345 * X.T @ (1 - t * t))
        print("child ok" if ok else "child wrong", flush=True)
        os._exit(0)
    os.waitpid(pid, 0)
    print("parent ok" if f.wait(timeout=120) else "parent timeout", flush=True)
""")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="os.fork is POSIX-only")
@pytest.mark.parametrize("delay", [0.0, 0.1, 0.3])
def test_a_fork_in_the_middle_of_the_passes_or_numbas_import(tmp_path, delay):
    """A fresh process forks while its passes thread or its compile thread is importing
    modules (symdiff's passes, numba): the child finds them half imported. It drops them and
    imports them again, and its kernel arrives (it once hung in wait())."""
    env = dict(os.environ, SYMDIFF_TIERED="1", SYMDIFF_CACHE_DIR=str(tmp_path))
    out = subprocess.run([sys.executable, "-c", _FORK, str(delay)], env=env, timeout=300,
                         capture_output=True, text=True)
    assert out.stdout.split("\n")[:2] == ["child ok", "parent ok"], out.stderr[-2000:]
