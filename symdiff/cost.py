"""The cost model: what a graph costs to run, as counts and as a predicted time.

``graph_cost(outputs)`` walks a graph once and counts, per operation:

- ``blas``: multiply-adds inside matrix products (m * n * k for an (m, k) @ (k, n));
- ``loop``: elementwise operations and reduction steps in fused loops (one per element);
- ``trans``: transcendental evaluations (exp, log, tanh, sigmoid, softplus, pow, sqrt...);
- ``peak``: bytes of intermediates (and constant arrays; scalars are literals) alive at once,
  walking the graph in
  topological order and freeing each value after its last reader;
- ``kept``: bytes of the forward values that the derivative part of the graph reads, i.e. what
  reverse mode must keep from the forward pass (only when ``primal`` is given; inputs and
  parameters are not counted, they are there anyway).

Transposes, reshapes and broadcasts are index maps in emitted kernels and cost nothing.
``Cost.seconds(weights)`` turns the counts into a predicted time with per-machine weights
(seconds per BLAS multiply-add, per loop operation, per transcendental, per operation node),
calibrated once by ``calibrate()`` with a short NumPy measurement and cached on disk.
``sd.count_ops`` stays the node count; this is the flop and memory estimate.
"""
import dataclasses
import json
import os
import pathlib
import platform
import time

import numpy as np

from .graph import flatten, toposort
from .ops import LEAVES, Op

TRANSCENDENTAL = frozenset({Op.EXP, Op.LOG, Op.LOG1P, Op.EXPM1, Op.SQRT, Op.TANH, Op.SIN,
                            Op.COS, Op.SIGMOID, Op.SOFTPLUS, Op.FN, Op.POW, Op.LGAMMA,
                            Op.DIGAMMA, Op.POLYGAMMA, Op.ERF, Op.ERFC, Op.LOG_NDTR})
FREE = frozenset({Op.TRANSPOSE, Op.RESHAPE, Op.BROADCAST_TO, Op.STOP_GRADIENT})
DEFAULT_DIM = 128          # size assumed for a symbolic dim that ``sizes`` does not bind

# Seconds per unit, measured on the project's 2-core AVX-512 VM (float64): the fallback when no
# calibration is cached or SYMDIFF_COST_WEIGHTS=default.
DEFAULT_WEIGHTS = {"blas": 2.0e-11, "loop": 2.4e-10, "trans": 5.8e-10, "node": 2.0e-7}


@dataclasses.dataclass(frozen=True)
class Cost:
    """Counts of one graph (see the module docstring); add them with ``+``."""

    blas: int = 0
    loop: int = 0
    trans: int = 0
    peak: int = 0
    kept: int = 0
    nodes: int = 0

    @property
    def madds(self):
        """Multiply-adds and other arithmetic: BLAS products plus loop operations."""
        return self.blas + self.loop

    def seconds(self, weights=None):
        """Predicted run time with ``weights`` (default: this machine's, see ``weights()``)."""
        w = weights or get_weights()
        return (self.blas * w["blas"] + self.loop * w["loop"] + self.trans * w["trans"] +
                self.nodes * w["node"])

    def __add__(self, other):
        return Cost(self.blas + other.blas, self.loop + other.loop, self.trans + other.trans,
                    max(self.peak, other.peak), self.kept + other.kept, self.nodes + other.nodes)


def _size(shape, sizes):
    out = 1
    for d in shape:
        out *= d if isinstance(d, int) else _bind(d, sizes)
    return out


def _bind(d, sizes):
    if sizes:
        for key in (d, getattr(d, "name", None)):
            if key in sizes:
                return int(sizes[key])
    return DEFAULT_DIM


def node_cost(n, sizes=None):
    """(blas, loop, trans) counts of one operation node."""
    if n.op in LEAVES or n.op in FREE:
        return 0, 0, 0
    size = _size(n.shape, sizes)
    if n.op is Op.MATMUL:
        a = n.src[0]
        return size * _size(a.shape[-1:], sizes), 0, 0     # one multiply-add per (i, j, k)
    if n.op in (Op.SUM, Op.MAX):
        return 0, _size(n.src[0].shape, sizes), 0
    if n.op is Op.SCAN:                   # the whole loop: T times its step
        body = n.arg[0]
        steps = _size((body.length,), sizes)
        c = graph_cost(list(body.outs), sizes)
        return steps * c.blas, steps * c.loop, steps * c.trans
    return 0, size, size if n.op in TRANSCENDENTAL else 0


def graph_cost(outputs, sizes=None, primal=None):
    """The ``Cost`` of computing ``outputs`` (a node or a structure of nodes).

    ``sizes`` binds symbolic dims ({name or Dim: int}; unbound ones count as 128). ``primal``,
    a collection of nodes (the function whose derivative the graph computes), turns on the
    ``kept`` count: bytes of primal values read by non-primal nodes.

    >>> import symdiff as sd
    >>> x, W = sd.var("x", (32, 64)), sd.param("W", (64, 10))
    >>> c = sd.graph_cost(sd.tanh(x @ W))
    >>> (c.blas, c.loop, c.trans)          # 32*10*64 multiply-adds, one tanh per output
    (20480, 320, 320)
    """
    outs = flatten(outputs)
    order = toposort(outs)
    primal = set(primal) if primal is not None else None
    blas = loop = trans = nodes = kept = 0
    kept_nodes, loops = set(), set()
    for n in order:
        if n.op is Op.SCAN:               # the outputs of one loop cost one loop
            key = (n.arg[0], n.src)
            if key in loops:
                continue
            loops.add(key)
        b, lp, t = node_cost(n, sizes)
        blas, loop, trans = blas + b, loop + lp, trans + t
        nodes += n.op not in LEAVES
        if primal is not None and n not in primal:
            kept_nodes.update(s for s in n.src if s in primal and s.op not in LEAVES)
    if primal is not None:
        kept = sum(_bytes(s, sizes) for s in kept_nodes)
    return Cost(blas, loop, trans, _peak(order, outs, sizes), kept, nodes)


def _bytes(n, sizes):
    return _size(n.shape, sizes) * np.dtype(n.dtype).itemsize


def _peak(order, outputs, sizes):
    """Bytes alive at once: each value lives from its computation to its last reader."""
    last = {}
    for i, n in enumerate(order):
        for s in n.src:
            last[s] = i
    keep = set(outputs)
    live = peak = 0
    dying = {}
    for i, n in enumerate(order):
        if (n.op is Op.CONST and n.ndim) or (n.op not in LEAVES and n.op not in FREE):
            live += _bytes(n, sizes)
            if n not in keep:
                dying.setdefault(last.get(n, i), []).append(n)
        peak = max(peak, live)
        for d in dying.pop(i, ()):
            live -= _bytes(d, sizes)
    return peak


# --- weights: calibrated once per machine, cached ------------------------------------------
_weights = None


def user_cache(name):
    """``name`` inside symdiff's user cache: $XDG_CACHE_HOME/symdiff (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "symdiff" / name


def weights_file():
    """Where calibrated weights are cached: $SYMDIFF_COST_FILE, else the user cache dir."""
    env = os.environ.get("SYMDIFF_COST_FILE")
    return pathlib.Path(env) if env else user_cache("cost-weights.json")


def _machine_key():
    return "|".join([platform.machine(), platform.processor() or "", _cpu_model(),
                     np.__version__, os.environ.get("OPENBLAS_CORETYPE", "")])


def _cpu_model():
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return ""


def get_weights(calibrate_if_missing=True):
    """This machine's weights: cached calibration, else a new one (about 0.1 s), else defaults.

    ``SYMDIFF_COST_WEIGHTS=default`` always gives ``DEFAULT_WEIGHTS`` (reproducible choices).
    """
    global _weights
    if os.environ.get("SYMDIFF_COST_WEIGHTS") == "default":
        return dict(DEFAULT_WEIGHTS)
    if _weights is not None:
        return _weights
    path = weights_file()
    try:
        cached = json.loads(path.read_text())
        if cached.get("machine") == _machine_key():
            _weights = {k: float(cached[k]) for k in DEFAULT_WEIGHTS}
            return _weights
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if not calibrate_if_missing:
        return dict(DEFAULT_WEIGHTS)
    return calibrate()


def calibrate(save=True):
    """Measure the weights with NumPy (BLAS GEMM, a multiply loop, tanh) and cache them."""
    global _weights
    rng = np.random.default_rng(0)
    a = rng.standard_normal((256, 256))
    c = np.empty_like(a)
    u, v = rng.standard_normal(1 << 16), rng.standard_normal(1 << 16)
    w = np.empty_like(u)
    blas = _best_time(lambda: np.dot(a, a, c)) / 256 ** 3
    loop = _best_time(lambda: np.multiply(u, v, w)) / u.size
    trans = max(_best_time(lambda: np.tanh(u, w)) / u.size - loop, loop)
    _weights = {"blas": blas, "loop": loop, "trans": trans, "node": DEFAULT_WEIGHTS["node"]}
    if save:
        try:
            path = weights_file()
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(json.dumps({"machine": _machine_key(), **_weights}, indent=1))
        except OSError:
            pass            # a read-only cache dir: the weights still hold for this process
    return _weights


def _best_time(fn, repeat=15):
    """The fastest of ``repeat`` calls: the machine's cost (other processes slow a call, never
    speed it up). The median was not robust: on 2 cores kept busy by other processes, a
    256^3 GEMM split over OpenBLAS's 2 threads took up to 28 ms instead of ~1 ms, and the
    calibrated BLAS weight came out above the loop weight."""
    fn()
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.min(times))


__all__ = ["Cost", "graph_cost", "node_cost", "get_weights", "calibrate", "DEFAULT_WEIGHTS"]
