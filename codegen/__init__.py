"""symdiff.codegen: a graph -> one fused Numba kernel.

``compile_spec`` reads like the pipeline it runs: prepare the graph (simplify, expand), lower
it to the loop IR, render Python/Numba source, JIT it through the disk cache, wrap it in a
Kernel. Only ``symdiff.codegen.jit`` imports numba (and only when a kernel is compiled).
"""
import collections

# (graph, options) -> (program, jitted function, source, key): compiling the same graph again
# in a process (a pickled kernel loaded by every task of a Dask job) costs no pass and no JIT
_compiled = collections.OrderedDict()
_CACHED = 64


def compile_spec(spec, math="fast", parallel=False, fastmath=True, wait=True):
    """Compile a ``symdiff.function.Spec`` to a Kernel (see ``symdiff.compile``). With
    ``wait=False`` the Kernel is returned before Numba has compiled it: it runs the NumPy tier
    until the compiled kernel swaps in (``symdiff.codegen.tiered``); ``wait=None``: tiered
    unless $SYMDIFF_TIERED turns it off (``tiered.enabled``)."""
    from .kernel import Kernel
    from .tiered import enabled

    wait = not enabled() if wait is None else bool(wait)

    if math not in ("fast", "libm"):
        raise ValueError(f"compile: math must be 'fast' or 'libm', got {math!r}")
    options = {"math": math, "parallel": bool(parallel), "fastmath": bool(fastmath)}
    ident = _identity(spec, options)
    hit = _compiled.get(ident)
    if hit is not None:                       # a hit means jit (and numba) is imported
        from . import jit
        if jit._loaded.get(hit[3]) is hit[1]:   # still the loaded kernel
            _compiled.move_to_end(ident)
            jit.STATS["reused"] += 1
            return Kernel(spec, *hit, options)
    if not wait:                              # the passes too run in the background
        from .tiered import start
        return start(spec, options, ident)
    program, source, arg_types = render_spec(spec, options)
    from . import jit
    fn, key = jit.load(source, arg_types)
    remember(ident, program, fn, source, key)
    return Kernel(spec, program, fn, source, key, options)


def render_spec(spec, options):
    """symdiff's own passes (no numba): (program, kernel source, argument types)."""
    from .lower import lower
    from .prepare import prepare
    from .render import argument_types, render
    nodes = prepare(spec.outputs + [v for _, v in spec.updates])
    outputs, news = nodes[:len(spec.outputs)], nodes[len(spec.outputs):]
    updates = list(zip([v for v, _ in spec.updates], news))
    program = lower(spec, outputs, updates)
    program.verify()
    source = render(program, **options)
    return program, source, argument_types(program)


def remember(ident, program, fn, source, key):
    """Keep a loaded kernel for the next compile of the same graph in this process."""
    _compiled[ident] = (program, fn, source, key)
    if len(_compiled) > _CACHED:
        _compiled.popitem(last=False)


def _identity(spec, options):
    """What the compiled code depends on: the graph of every output and update, the
    parameters in call order, which vars are updated, and the options (not the structure
    of the outputs or the values of held state, which the Kernel object carries)."""
    from symdiff.graph import digest
    nodes = spec.outputs + [v for _, v in spec.updates] + spec.params + \
        [v for v, _ in spec.updates]
    return (tuple(digest(n) for n in nodes), len(spec.outputs), len(spec.updates),
            len(spec.params), tuple(sorted(options.items())))
