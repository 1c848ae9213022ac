"""Random-graph fuzzing (issue 12): the long version of tests/codegen/test_random_graphs.py.

Every seed is a graph of tests/graphgen.py with a random depth of 1 to ``--steps`` steps;
the check is graphgen's own (``check_values``): the backend's [output] + gradients equal the
interpreter's (rtol/atol 1e-10 in float64, 1e-5 of the output's scale in float32, or, for an
ill-conditioned float32 graph, at most 4x the interpreter's own distance from the same graph
in float64), and reverse mode agrees with forward mode. ``--dtype mixed`` makes odd seeds
float32 (a batch then mixes float32 and float64 graphs in one kernel).

A Numba compile costs seconds, so ``--batch K`` graphs share one compiled function (inputs:
all their inputs; outputs: each graph's [output] + gradients). Keep K small: Numba's compile
time grows faster than the function's length (its SSA and liveness passes), so batches of 10
cost about 3x more per graph than batches of 3 (benchmarks/RESULTS.md). Each graph names its symbolic
dim after its seed (``n<seed>``), so every graph in a batch binds its own size. When a batch
fails to compile or to run, or a graph disagrees in it, its graphs are checked again one by
one (``graphgen.check_graph``) to name the failing seeds; a failure that does not reproduce
alone is reported as a batch failure.

Run: python benchmarks/fuzz.py --n 10000 [--backend numba|numpy|both] [--start 0]
     [--batch 3] [--steps 30] [--jobs 2] [--dtype float64|float32|mixed]
Prints each failure (seed, depth, backend, error) and one summary line per backend; exits
with status 1 on any failure. A failure reproduces with
``graphgen.check_graph(seed, backend, steps=depth, dtype=dtype)``.
"""
import argparse
import multiprocessing
import os
import pathlib
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from itertools import repeat

import numpy as np

import symdiff as sd

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "tests"))
from graphgen import check_graph, check_values, float64_values, random_graph, with_grads

os.environ.setdefault("SYMDIFF_TIERED", "0")   # time the compiled kernel, not the NumPy tier


def depth(seed, max_steps):
    """The number of generator steps of ``seed``'s graph: 1 to ``max_steps``, by seed."""
    return int(np.random.default_rng([seed, max_steps]).integers(1, max_steps + 1))


def dtype_of(seed, dtype):
    """The dtype of ``seed``'s graph under ``--dtype``: mixed makes odd seeds float32."""
    return ("float32" if seed % 2 else "float64") if dtype == "mixed" else dtype


def _brief(error):
    """One line for an exception: its type and the informative lines of its message."""
    lines = [s.strip() for s in str(error).splitlines() if s.strip()]
    return f"{type(error).__name__}: {' | '.join(lines[:6])}"[:600]


def _alone(seed, backend, steps, dtype):
    """None if ``seed``'s graph passes compiled alone, else its error in one line."""
    try:
        check_graph(seed, backend, steps=steps, dim=f"n{seed}", dtype=dtype_of(seed, dtype))
        return None
    except Exception as e:                     # noqa: BLE001 (any error is a finding)
        return _brief(e)


def check_batch(seeds, backend, max_steps, dtype="float64"):
    """[(seed, message)] of the failing graphs among ``seeds``, compiled as one function."""
    graphs, failures = [], []
    for s in seeds:
        try:
            inputs, out, env = random_graph(s, steps=depth(s, max_steps), dim=f"n{s}",
                                            dtype=dtype_of(s, dtype))
            graphs.append((s, inputs, with_grads(inputs, out), env))
        except Exception as e:                 # noqa: BLE001 (declaration or grad failed)
            failures.append((s, "building the graph: " + _brief(e)))
    inputs = [v for _, ins, _, _ in graphs for v in ins]
    outputs = [o for _, _, outs, _ in graphs for o in outs]
    batch_error = None
    try:
        f = sd.compile(inputs, outputs, backend=backend)
        got = list(f(*[env[v] for _, ins, _, env in graphs for v in ins]))
    except Exception as e:                     # noqa: BLE001
        batch_error, got = _brief(e), None
    suspects, at = [], 0
    for s, ins, outs, env in graphs:
        if got is None:
            suspects.append(s)
            continue
        mine, at = got[at:at + len(outs)], at + len(outs)
        dt = dtype_of(s, dtype)
        exact = float64_values(s, ins, outs[0], env, steps=depth(s, max_steps), dim=f"n{s}",
                               dtype=dt) if dt == "float32" else None
        try:
            check_values(s, ins, outs, env, mine, exact=exact)
        except Exception as e:                 # noqa: BLE001
            suspects.append(s)
            batch_error = batch_error or _brief(e)
    alone = {s: _alone(s, backend, depth(s, max_steps), dtype) for s in suspects}
    failures += [(s, error) for s, error in alone.items() if error]
    if suspects and not any(alone.values()):
        failures.append((None, (f"batch {seeds[0]}..{seeds[-1]} fails, each graph alone "
                                f"passes: {batch_error}")))
    return failures


def fuzz(backend, start, n, batch, max_steps, jobs, dtype="float64"):
    """Check seeds start..start+n-1 on ``backend`` in ``jobs`` processes; print failures
    and the summary line."""
    stop = start + n
    batches = [list(range(lo, min(lo + batch, stop))) for lo in range(start, stop, batch)]
    failures, t0 = [], time.perf_counter()
    # spawned, not forked: a forked child would inherit Numba's and BLAS's threads half-made
    with ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = 0
        for seeds, found in zip(batches, pool.map(check_batch, batches, repeat(backend),
                                                   repeat(max_steps), repeat(dtype))):
            for seed, message in found:
                where = "batch" if seed is None else \
                    f"seed {seed} (steps={depth(seed, max_steps)}, {dtype_of(seed, dtype)})"
                print(f"FAIL {backend} {where}: {message}", flush=True)
                failures.append(seed)
            done += len(seeds)
            print(f"  {backend}: {done}/{n} graphs, {len(failures)} failures, "
                  f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - t0
    print(f"{backend}: {n} {dtype} graphs (seeds {start}..{start + n - 1}, steps 1..{max_steps}, "
          f"batches of {batch}, jobs {jobs}), {len(failures)} failures, {wall:.1f} s, "
          f"{n / wall:.2f} graphs/s", flush=True)
    return failures


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="graphs per backend")
    ap.add_argument("--backend", choices=["numba", "numpy", "both"], default="both")
    ap.add_argument("--start", type=int, default=0, help="first seed")
    ap.add_argument("--batch", type=int, default=3, help="graphs per compiled function")
    ap.add_argument("--steps", type=int, default=30, help="largest depth (random per graph)")
    ap.add_argument("--jobs", type=int, default=1, help="processes (batches run in parallel)")
    ap.add_argument("--dtype", choices=["float64", "float32", "mixed"], default="float64")
    args = ap.parse_args()
    # a fresh kernel cache: every compile is cold, and the run leaves nothing behind
    cache = None
    if "SYMDIFF_CACHE_DIR" not in os.environ:
        cache = os.environ["SYMDIFF_CACHE_DIR"] = tempfile.mkdtemp(prefix="symdiff-fuzz-")
    backends = ["numba", "numpy"] if args.backend == "both" else [args.backend]
    try:
        failed = [fuzz(b, args.start, args.n, args.batch, args.steps, args.jobs, args.dtype)
                  for b in backends]
    finally:
        if cache:
            shutil.rmtree(cache, ignore_errors=True)
    sys.exit(1 if any(failed) else 0)


if __name__ == "__main__":
    main()
