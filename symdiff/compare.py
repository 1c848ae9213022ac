"""Forward against reverse mode, for people: one row per strategy, measured and predicted.

``compare_modes(y, x, inputs)`` builds the Jacobian (or the Hessian, or an HVP) of ``y``
w.r.t. ``x`` by every strategy, compiles each, runs it, and reports the plan, the node count,
the cost model's multiply-adds / transcendentals / memory and predicted time, the measured
compile time, median run time and its spread, and the max abs difference from the reference
strategy (reverse mode for Jacobians, reverse-over-reverse for second order).

Timing on a shared machine (``time_comparisons``): blocks of calls of ~2 ms, taken round-robin
over every kernel being compared (a burst of load from another process then slows all of them
alike instead of one), repeated until each kernel's spread is small; strategies that compiled
to the same kernel (auto is often one of the others) are timed once and report one time.
"""
import contextlib
import dataclasses
import time

import numpy as np

from . import api
from .cost import get_weights, graph_cost
from .function import compile as _compile
from .graph import Node, count_ops, flatten, leaves, toposort
from .modes import STRATEGIES, plan_jacobian
from .printing import duration
from .simplify import simplify, stabilize

HESSIAN_STRATEGIES = ("forward-over-reverse", "reverse-over-reverse", "reverse-over-forward",
                      "forward-over-forward")
HVP_STRATEGIES = ("forward-over-reverse", "reverse-over-reverse", "reverse-over-forward")
REFERENCE = {"jacobian": "reverse", "hessian": "reverse-over-reverse",
             "hvp": "reverse-over-reverse"}


@dataclasses.dataclass
class Row:
    strategy: str
    plan: str
    nodes: int
    madds: int
    trans: int
    memory: int           # predicted peak bytes of intermediates
    predicted: float      # seconds, cost model
    compile_s: float
    run_s: float          # median seconds per call
    max_abs_diff: float   # against the reference strategy
    run_spread: float = float("nan")   # interquartile range of the blocks / median
    blocks: int = 0       # timed blocks behind run_s
    note: str = ""        # why the plan was chosen (auto's predictions, fallbacks)

    @property
    def run_text(self):
        """The measured time and its spread, e.g. ``412 us +-3%``."""
        return f"{duration(self.run_s)} +-{self.run_spread:.0%}"


class Comparison:
    """The rows of a comparison; ``str()`` gives the table, ``best`` the fastest measured."""

    def __init__(self, what, rows, reference, calls=None):
        self.what, self.rows, self.reference = what, rows, reference
        self._calls = calls or {}      # strategy -> (identity, f, values), until timed

    @property
    def best(self):
        return min(self.rows, key=lambda r: r.run_s)

    def row(self, strategy):
        return next(r for r in self.rows if r.strategy == strategy)

    def __str__(self):
        head = ("strategy", "plan", "nodes", "madds", "trans", "memory", "predicted",
                "compile", "run", "spread", f"max |diff| vs {self.reference}")
        body = [(r.strategy, r.plan, str(r.nodes), _si(r.madds), _si(r.trans),
                 _bytes(r.memory), duration(r.predicted), duration(r.compile_s),
                 duration(r.run_s), f"{r.run_spread:.0%}", f"{r.max_abs_diff:.1e}")
                for r in self.rows]
        widths = [max(len(x) for x in col) for col in zip(head, *body)]
        lines = ["  ".join(c.ljust(w) for c, w in zip(line, widths)).rstrip()
                 for line in (head, *body)]
        lines.insert(1, "  ".join("-" * w for w in widths))
        notes = [f"  {r.strategy}: {r.note}" for r in self.rows if r.note]
        return "\n".join(lines + (["notes:"] + notes if notes else []))


def compare_modes(y, x, inputs, strategies=None, what="jacobian", v=None, repeats=15,
                  backend="numba", timed=True, blas_threads=None, **compile_options):
    """Compare Jacobian (``what="jacobian"``), Hessian or HVP strategies on real inputs.

    ``inputs`` maps every var of the graph to its value; ``v`` is the HVP direction.
    ``repeats``: the least number of timed blocks per kernel (see ``time_comparisons``);
    ``timed=False`` compiles and checks only, for one ``time_comparisons`` over many;
    ``blas_threads``: see ``time_comparisons``.

    >>> import symdiff as sd, numpy as np
    >>> x, W = sd.var("x", (3,)), sd.param("W", (3, 2))
    >>> c = sd.compare_modes(sd.tanh(x @ W), x, {x: np.ones(3), W: np.eye(3, 2)},
    ...                      backend="numpy", repeats=3)
    >>> [r.strategy for r in c.rows]
    ['forward', 'reverse', 'auto', 'optimal']
    >>> max(r.max_abs_diff for r in c.rows) < 1e-12
    True
    """
    if not isinstance(x, Node):
        raise TypeError(f"compare_modes: x must be one symdiff node (compare one input at a "
                        f"time), got {type(x).__name__}")
    if what not in REFERENCE:
        raise ValueError(f"compare_modes: what must be 'jacobian', 'hessian' or 'hvp', "
                         f"got {what!r}")
    if what == "hvp" and v is None:
        raise ValueError("compare_modes: what='hvp' needs the direction v")
    strategies = tuple(strategies or {"jacobian": STRATEGIES, "hessian": HESSIAN_STRATEGIES,
                                      "hvp": HVP_STRATEGIES}[what])
    names = list(inputs)
    _check_inputs(y, names)
    # arrays of the vars' dtypes: a Python or NumPy scalar would take the kernels' slow path
    values = [np.asarray(inputs[n], dtype=n.dtype) for n in names]
    sizes = _sizes(inputs)
    weights = get_weights()
    built = {s: _build(y, x, s, what, v, sizes, weights) for s in strategies}
    ref = REFERENCE[what]
    if ref not in built:
        built[ref] = _build(y, x, ref, what, v, sizes, weights)
    results, rows, calls = {}, [], {}
    for s in strategies + ((ref,) if ref not in strategies else ()):
        graph, plan, cost, _ = built[s]
        t0 = time.perf_counter()
        # wait=True: the compile time and the timed calls are the Numba kernel's, never the
        # NumPy tier a tiered compile starts on
        f = _compile(names, graph, backend=backend, wait=True, **compile_options)
        compile_s = time.perf_counter() - t0
        results[s] = np.asarray(f(*values))
        if s in strategies:
            calls[s] = (_identity(f, graph), f, values)
            rows.append([s, plan, count_ops(simplify(graph)), cost.madds, cost.trans,
                         cost.peak, cost.seconds(weights), compile_s, float("nan")])
    out = [Row(*r, float(np.max(np.abs(results[r[0]] - results[ref]), initial=0.0)),
               note=built[r[0]][3]) for r in rows]
    comparison = Comparison(what, out, ref, calls)
    if timed:
        time_comparisons([comparison], repeats, blas_threads=blas_threads)
    return comparison


def time_comparisons(comparisons, repeats=15, spread=0.1, max_seconds=20.0, blas_threads=None):
    """Time the kernels of untimed comparisons (``compare_modes(..., timed=False)``) together.

    Each round runs one block (calls lasting ~2 ms) of every distinct kernel, in a rotating
    order; after ``repeats`` rounds, rounds go on until every kernel's spread (interquartile
    range of its blocks over their median) is at most ``spread``, or 4 x ``repeats`` rounds,
    or ``max_seconds``. Fills in each row's ``run_s`` (the median), ``run_spread`` and
    ``blocks``; strategies with the same kernel share one measurement.

    ``blas_threads=1`` limits the BLAS libraries' threads while timing (needs threadpoolctl).
    On a machine that other processes keep busy, a GEMM split over threads waits for the
    scheduler to run each of them: measured on 2 busy cores, a kernel took 40 ms with 2
    OpenBLAS threads and 2.4 ms with 1, and its time came in multiples of ~8 ms.

    >>> import symdiff as sd, numpy as np
    >>> x, W = sd.var("x", (3,)), sd.param("W", (3, 2))
    >>> env = {x: np.ones(3), W: np.eye(3, 2)}
    >>> cs = [sd.compare_modes(sd.tanh(x @ W) * k, x, env, backend="numpy", timed=False)
    ...       for k in (1.0, 2.0)]
    >>> sd.time_comparisons(cs, repeats=3)
    >>> all(r.run_s > 0 and r.blocks >= 3 for c in cs for r in c.rows)
    True
    """
    calls = {}
    for c in comparisons:
        for ident, f, values in c._calls.values():
            calls.setdefault(ident, (f, values))
    for f, _ in calls.values():
        if hasattr(f, "wait"):                 # time compiled kernels, not a NumPy tier
            f.wait()
    with _blas_limit(blas_threads):
        times = _time_calls(list(calls.values()), repeats, spread, max_seconds)
    timing = dict(zip(calls, times))
    for c in comparisons:
        for r in c.rows:
            if r.strategy in c._calls:
                blocks = timing[c._calls[r.strategy][0]]
                r.run_s, r.run_spread, r.blocks = _median_spread(blocks) + (len(blocks),)
        c._calls = {}


def _blas_limit(threads):
    """A context that limits the threads of every loaded BLAS library, or does nothing."""
    if threads is None:
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:
        raise ImportError("blas_threads= needs threadpoolctl (pip install threadpoolctl)") \
            from None
    return threadpool_limits(limits=int(threads), user_api="blas")


def _identity(f, graph):
    """Equal for two compiles of one kernel: the Numba kernel's key, or the graph's nodes
    (hash-consed: equal graphs are the same objects) for the numpy backend."""
    key = getattr(f, "key", None)
    return key if key is not None else tuple(id(n) for n in flatten(graph))


def _time_calls(calls, repeats, spread, max_seconds):
    """Per call [(f, args)]: the seconds per call of each of its timed blocks."""
    repeats = max(1, repeats)
    blocks = [_block_size(f, args) for f, args in calls]
    times = [[] for _ in calls]
    start = time.perf_counter()
    for k in range(4 * repeats):
        if k >= repeats and (time.perf_counter() - start > max_seconds or all(
                _median_spread(t)[1] <= spread for t in times)):
            break
        for j in range(len(calls)):            # rotate: no kernel always runs first
            i = (j + k) % len(calls)
            f, args = calls[i]
            t0 = time.perf_counter()
            for _ in range(blocks[i]):
                f(*args)
            times[i].append((time.perf_counter() - t0) / blocks[i])
    return times


def _block_size(f, args):
    """Calls per block: ~2 ms of calls, from the fastest of three warm-up calls."""
    once = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        f(*args)
        once = min(once, time.perf_counter() - t0)
    return max(1, min(1000, int(2e-3 / max(once, 1e-7))))


def _median_spread(times):
    """(median, interquartile range / median) of block times."""
    q1, med, q3 = np.percentile(times, [25, 50, 75])
    return float(med), float((q3 - q1) / med) if med > 0 else 0.0


def _build(y, x, strategy, what, v, sizes, weights):
    """(graph, plan, cost, note) of one strategy: the plan is the bracketing, the note the
    reason for it (printed under the table, not in the plan column)."""
    if what == "jacobian":
        (ys,) = stabilize([y])
        p = plan_jacobian(ys, x, strategy, sizes, weights)
        text = f"= {p.strategy}: {p.bracketing}" if strategy == "auto" else p.bracketing
        return p.graph, text, p.cost, p.note
    graph = api.hessian(y, x, strategy) if what == "hessian" else api.hvp(y, x, v, strategy)
    return graph, strategy, graph_cost(graph, sizes, primal=toposort([y])), ""


def _check_inputs(y, names):
    missing = [n for n in leaves([y]) if n not in names]
    if missing:
        raise ValueError("compare_modes: no value in inputs for " +
                         ", ".join(f"`{n.name}`" for n in missing))


def _sizes(inputs):
    """Bind the symbolic dims of the vars to the sizes of their values."""
    sizes = {}
    for var, value in inputs.items():
        for d, k in zip(var.shape, np.shape(value)):
            if not isinstance(d, int):
                sizes[d] = k
    return sizes


def _si(n):
    for unit, scale in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g}{unit}"
    return str(int(n))


def _bytes(n):
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"
