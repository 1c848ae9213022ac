"""symdiff.codegen: a graph -> one fused Numba kernel.

``compile_spec`` reads like the pipeline it runs: prepare the graph (simplify, expand), lower
it to the loop IR, render Python/Numba source, JIT it through the disk cache, wrap it in a
Kernel. Only ``symdiff.codegen.jit`` imports numba (and only when a kernel is compiled).
"""
_compiled = {}      # (graph, options) -> Kernel: compiling the same graph twice is free


def compile_spec(spec, math="fast", parallel=False, fastmath=True):
    """Compile a ``symdiff.function.Spec`` to a Kernel (see ``symdiff.compile``)."""
    from .kernel import Kernel
    from .lower import lower
    from .prepare import prepare
    from .render import arena_dtypes, render
    from . import jit

    if math not in ("fast", "libm"):
        raise ValueError(f"compile: math must be 'fast' or 'libm', got {math!r}")
    options = {"math": math, "parallel": bool(parallel), "fastmath": bool(fastmath)}
    nodes = prepare(spec.outputs + [v for _, v in spec.updates])
    outputs, news = nodes[:len(spec.outputs)], nodes[len(spec.outputs):]
    updates = list(zip([v for v, _ in spec.updates], news))
    program = lower(spec, outputs, updates)
    program.verify()
    source = render(program, math=math, parallel=parallel, fastmath=fastmath)
    arg_types = ([(b.dtype, len(b.shape)) for b in program.inputs] +
                 [(b.dtype, len(b.shape)) for _, b in program.consts] +
                 [(b.dtype, len(b.shape)) for b in program.outputs] +
                 [(dtype, 1) for dtype in arena_dtypes(program)] + [("int64", 1)])
    fn, key = jit.load(source, arg_types)
    return Kernel(spec, program, fn, source, key, options)
