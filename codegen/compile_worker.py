"""The compile worker: a process that compiles kernel sources into the disk cache.

``python -m symdiff.codegen.compile_worker <parent pid>`` reads requests from stdin and
writes one reply per request to stdout, each a length-prefixed pickle (``send``/``receive``):

- request ``{"source", "arg_types", "name", "cache_dir", "needs"}``: ``jit.load`` compiles
  the source (or finds it in the cache) into ``cache_dir``, after loading the ``needs``
  [(source, arg_types, name)] the source imports (an epoch driver's step kernel), so that
  the parent then loads it from there in ~30 ms; reply ``("ok", key)`` or ``("error", pickled exception or None, text)``;
- request ``"bye"``: the parent is exiting normally. The worker finishes the compile it is
  running (so the next run of the program loads that kernel from the cache), at most
  ``GRACE`` seconds, and exits.

It never outlives its parent otherwise: EOF on stdin without "bye" (the parent died: the OS
closed the pipe) or a new parent pid (checked every 0.5 s, in case a grandchild inherited the
pipe) ends it at once, mid-compile if need be (cache files are written under temporary names
and renamed, so a killed compile leaves nothing half-written).
"""
import os
import pickle
import struct
import sys
import threading
import time

GRACE = 120.0          # seconds a compile in flight may go on after the parent exited


def send(stream, obj):
    """Write ``obj`` as one message: 8-byte length, then its pickle."""
    blob = pickle.dumps(obj)
    stream.write(struct.pack("<Q", len(blob)) + blob)
    stream.flush()


def receive(stream):
    """The next message, or EOFError when the other end closed the pipe."""
    head = stream.read(8)
    if len(head) < 8:
        raise EOFError
    (n,) = struct.unpack("<Q", head)
    blob = stream.read(n)
    if len(blob) < n:
        raise EOFError
    return pickle.loads(blob)


class _Inbox:
    """Requests read by a thread, so that the parent's death is seen during a compile."""

    def __init__(self, parent):
        self.parent, self.bye_at = parent, None
        self.items, self.cond = [], threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._watch, daemon=True).start()

    def _read(self):
        stdin = sys.stdin.buffer
        while True:
            try:
                msg = receive(stdin)
            except (EOFError, OSError, pickle.UnpicklingError):
                msg = None
            if msg is None or msg == "bye":
                if msg is None and self.bye_at is None:
                    os._exit(0)                 # the parent died: stop now
                self.bye_at = self.bye_at or time.monotonic()
                with self.cond:
                    self.items.append(None)
                    self.cond.notify()
                return
            with self.cond:
                self.items.append(msg)
                self.cond.notify()

    def _watch(self):
        while True:
            time.sleep(0.5)
            if os.getppid() != self.parent and self.bye_at is None:
                os._exit(0)                     # reparented: the parent died
            if self.bye_at is not None and time.monotonic() - self.bye_at > GRACE:
                os._exit(0)

    def get(self):
        with self.cond:
            while not self.items:
                self.cond.wait()
            return self.items.pop(0)


def _compile(request):
    os.environ["SYMDIFF_CACHE_DIR"] = str(request["cache_dir"])
    from symdiff.codegen import jit
    try:
        # modules the source imports (an epoch driver imports its step kernel), loaded first
        for source, arg_types, name in request.get("needs", ()):
            jit.load(source, arg_types, name)
        _, key = jit.load(request["source"], request["arg_types"], request["name"])
        return ("ok", key)
    except Exception as exc:                    # noqa: BLE001 - sent to the parent
        try:
            blob = pickle.dumps(exc)
            pickle.loads(blob)
        except Exception:                       # noqa: BLE001 - the parent recompiles
            blob = None
        return ("error", blob, f"{type(exc).__name__}: {exc}")


def main(parent):
    inbox = _Inbox(parent)
    out = sys.stdout.buffer
    sys.stdout = sys.stderr                     # nothing else may write into the pipe
    from symdiff.codegen import jit  # noqa: F401 - import numba before the first request
    while True:
        request = inbox.get()
        if request is None:
            return
        try:
            send(out, _compile(request))
        except OSError:                         # the parent is gone (broken pipe): done
            return


if __name__ == "__main__":
    main(int(sys.argv[1]))
