"""Tiered execution: ``sd.compile`` returns at once; Numba compiles in another process.

``start`` returns a Kernel without compiled code (``ready`` False) after building the NumPy
tier only (~8 ms for the MLP W1); after the first call (or 50 ms), a thread runs symdiff's
passes (prepare, lower, render: ``program``, ``source`` and ``key`` wait for them, ~25 ms)
and queues the compile. The
Kernel's calls and epochs run the NumPy tier, a ``symdiff.function.Function`` on the same Spec (so the same checks, the
same held ``state`` arrays and, through one shared lock, the same ``updates=`` sequence).
Meanwhile one daemon thread per process takes the compile jobs in order:

1. send the rendered source and argument types to the compile worker
   (``compile_worker.py``, one process reused across compiles, started at the first job),
   which compiles it into the disk cache without holding this process's interpreter lock;
2. import numba here meanwhile (~0.4 s the first time; the passes and so this job start
   after the first call, which the import would slow down: it holds the interpreter lock);
3. load the kernel from the disk cache (~30 ms) and swap it in: the next call runs Numba.
   A call in flight finishes on the tier it started on (it read ``Kernel._fn`` once).

A kernel's epoch driver (``Kernel.epoch``) is a job of its own, queued at the first epoch
after the swap (or at the swap, when epochs ran on the NumPy tier): until it is loaded, the
epochs call the compiled step from a Python loop.

If the worker dies (killed, crashed), the job compiles in this process with a
``CompileWorkerWarning`` and the next job starts a new worker. A compile error in the worker
is raised by the next call or ``wait()``, as the same exception an in-process compile raises.
``SYMDIFF_TIERED=0`` or ``sd.compile(..., wait=True)`` compile synchronously instead.
"""
import atexit
import functools
import os
import pickle
import queue
import subprocess
import sys
import threading
import warnings
import weakref


class CompileWorkerWarning(RuntimeWarning):
    """The compile worker process died; the kernel compiles in this process instead (its
    interpreter lock is then shared with the compile, so calls are slower meanwhile)."""


def enabled():
    """Is tiered execution on? Yes, unless $SYMDIFF_TIERED is 0, false, no or off.

    >>> import os
    >>> before = os.environ.pop("SYMDIFF_TIERED", None)
    >>> enabled()
    True
    >>> os.environ["SYMDIFF_TIERED"] = "off"; enabled()
    False
    >>> if before is not None: os.environ["SYMDIFF_TIERED"] = before
    """
    return os.environ.get("SYMDIFF_TIERED", "1").strip().lower() not in ("0", "false", "no",
                                                                          "off")


KICK_AFTER = 0.05       # seconds after compile() at which the passes start without a call


def start(spec, options, ident, render=None):
    """A Kernel that runs the NumPy tier now and swaps in its Numba code when compiled.
    ``render(spec, options)`` gives (program, source, argument types): symdiff's passes
    (``render_spec``), run in a thread of their own so that ``compile`` returns at once."""
    from symdiff.function import Function

    from .kernel import Kernel
    kernel = Kernel(spec, None, None, None, None, options, tier=Function(spec))
    once = threading.Lock()

    def kick():
        if once.acquire(blocking=False):
            _start_passes(kernel, render, ident)
    # the passes share this process's interpreter lock: they start after the first call
    # (which they would slow down), at the latest after KICK_AFTER seconds
    kernel.defer(kick)
    timer = threading.Timer(KICK_AFTER, kick)
    timer.daemon = True
    timer.start()
    _pending[kernel] = (render, ident)
    return kernel


_pending = weakref.WeakKeyDictionary()   # tiered Kernel -> (render, ident): not yet arrived


def _start_passes(kernel, render, ident):
    threading.Thread(target=_render, args=(kernel, render, ident), daemon=True,
                     name="symdiff-passes").start()


def _half_imported(module):
    return getattr(getattr(module, "__spec__", None), "_initializing", False)


def _orphaned():
    """After ``os.fork()``, in the child: the parent's passes and compile threads are gone, so a
    kernel still on its way would never arrive (``wait()`` blocked forever). Each such kernel
    resumes at its next call or ``wait()`` (not at once: a pool of forked workers that never
    call it compiles nothing). A module the passes thread was importing is left half
    initialized in the child: it is dropped, so that the resumed passes import it afresh."""
    half = {name.split(".")[0] for name, m in list(sys.modules.items()) if _half_imported(m)}
    for top in half & {"symdiff", "numba", "llvmlite"}:
        for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
            # symdiff: only the half-imported modules; numba (the compile thread's import)
            # and llvmlite: all of them, their modules refer to each other at import
            if top != "symdiff" or _half_imported(sys.modules[name]):
                del sys.modules[name]
    for kernel, (render, ident) in list(_pending.items()):
        if not kernel._arrived.is_set():
            kernel.defer(_resumer(kernel, render, ident))


def _resumer(kernel, render, ident):
    once = threading.Lock()

    def resume():
        if not once.acquire(blocking=False):
            return
        # the fields, not the properties: those wait on the event, whose lock a fork may
        # have caught held by the passes thread (which the child does not have)
        if kernel._rendered.is_set() and kernel._error is None:    # the passes are done
            _compiler().put(functools.partial(_kernel_job, kernel, kernel._source,
                                              kernel._arg_types, ident))
        else:                                     # the passes were under way: run them again
            _start_passes(kernel, render, ident)
    return resume


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_orphaned)


def _render(kernel, render, ident):
    """Run the passes, give the Kernel its program, then queue the Numba compile."""
    try:
        from . import render_spec
        from .cache_key import kernel_key
        program, source, arg_types = (render or render_spec)(kernel.spec, kernel.options)
        kernel._bind(program, source, kernel_key(source), arg_types)
    except BaseException as exc:               # noqa: BLE001 - raised by the next call
        kernel._fail(exc)
        return
    _compiler().put(functools.partial(_kernel_job, kernel, source, arg_types, ident))


# ---- the compile thread (one per process) ---------------------------------------------------

_state = {"pid": None, "queue": None, "worker": None}
_mutex = threading.Lock()


def _compiler():
    """This process's job queue (a forked child starts its own thread and worker)."""
    with _mutex:
        if _state["pid"] != os.getpid():
            _state.update(pid=os.getpid(), queue=queue.Queue(), worker=None)
            threading.Thread(target=_run, args=(_state["queue"],), daemon=True,
                             name="symdiff-compile").start()
        return _state["queue"]


def _run(jobs):
    while True:
        jobs.get()()


def _kernel_job(kernel, source, arg_types, ident):
    try:
        fn = _build(source, arg_types)
    except BaseException as exc:           # noqa: BLE001 - raised by the next call
        kernel._fail(exc)
        _pending.pop(kernel, None)
        return
    from . import remember
    remember(ident, kernel.program, fn, source, kernel.key)
    kernel._swap(fn)
    _pending.pop(kernel, None)
    if kernel._epochs.wanted:                 # epochs ran on the NumPy tier: more will come
        kernel._epochs.driver()               # queues the driver's job (returns None)


def build_driver(kernel, runner):
    """Queue the compile of ``kernel``'s epoch driver (after the kernel's own job): the
    worker compiles it, this process loads it and hands it to ``runner.arrive``, or
    ``runner.arrive(None)`` if that failed (the runner then compiles it in process, which
    raises the error where the user sees it)."""
    _compiler().put(functools.partial(_driver_job, kernel, runner))


def _driver_job(kernel, runner):
    from .epoch_call import driver_source
    try:
        source, arg_types = driver_source(kernel)
        fn = _build(source, arg_types, name="epoch",
                    needs=[(kernel.source, kernel.arg_types, "kernel")])
    except Exception:                      # noqa: BLE001 - the runner compiles it again
        fn = None
    runner.arrive(fn)


def _build(source, arg_types, name="kernel", needs=()):
    """The loaded dispatcher: compiled by the worker into the disk cache, then loaded."""
    from .cache_key import cache_dir, kernel_key
    if any((cache_dir() / kernel_key(source) / "__pycache__").glob("*.nbi")):
        from . import jit                  # in the disk cache: a load here, no worker needed
        return jit.load(source, arg_types, name)[0]
    request = {"source": source, "arg_types": arg_types, "name": name,
               "cache_dir": str(cache_dir()), "needs": list(needs)}
    worker = _worker()
    sent = worker is not None and worker.send(request)
    # import numba (~0.4 s the first time) while the worker compiles: the first call has
    # returned by now (the passes, and so this job, start after it)
    from . import jit
    reply = worker.receive() if sent else None
    if reply is not None and reply[0] == "error" and reply[1] is not None:
        raise pickle.loads(reply[1])
    # ok: a load from the disk cache; no reply (the worker died) or an error the worker could
    # not send: compile here, which raises that error again
    return jit.load(source, arg_types, name)[0]


def _worker():
    """The running compile worker, started if there is none; None if it cannot start."""
    w = _state["worker"]
    if w is None or w.proc.poll() is not None:
        try:
            w = _state["worker"] = _Worker()
        except OSError as exc:
            _warn(f"symdiff: cannot start the compile worker ({exc}); compiling in process")
            return None
    return w


def _warn(text):
    warnings.warn(text, CompileWorkerWarning, stacklevel=2)


class _Worker:
    """The parent's end of a compile worker process."""

    def __init__(self):
        from .compile_worker import receive, send
        self._send, self._receive = send, receive
        env = dict(os.environ)
        # the worker imports symdiff from where this process did
        env["PYTHONPATH"] = os.pathsep.join([p for p in sys.path if p] +
                                            [env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "symdiff.codegen.compile_worker", str(os.getpid())],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.owner = os.getpid()       # a forked child inherits this object: not its worker
        atexit.register(self.close)

    def send(self, request):
        try:
            self._send(self.proc.stdin, request)
            return True
        except (OSError, ValueError):
            self._died()
            return False

    def receive(self):
        try:
            return self._receive(self.proc.stdout)
        except (EOFError, OSError, ValueError, pickle.UnpicklingError):
            self._died()
            return None

    def _died(self):
        code = self.proc.poll()
        _warn(f"symdiff: the compile worker (pid {self.proc.pid}) died "
              f"({'exit code ' + str(code) if code is not None else 'no reply'}); "
              f"compiling this kernel in process")
        if code is None:
            self.proc.kill()
        self.close()
        if _state["worker"] is self:
            _state["worker"] = None

    def close(self):
        """Tell the worker this process is done (it finishes the compile in flight, so the
        next run finds it in the cache, then exits) without waiting for it. Not from a forked
        child: the worker is its parent's, which still uses it."""
        if os.getpid() != self.owner:
            return
        try:
            self._send(self.proc.stdin, "bye")
            self.proc.stdin.close()
        except (OSError, ValueError):
            pass
