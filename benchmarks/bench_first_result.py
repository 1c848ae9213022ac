"""Time to first result, tiered (the default) against a synchronous compile (``wait=True``).

Each measurement is a fresh process with a fresh, empty kernel cache; imports are excluded
(the child imports numpy, symdiff and the modules a README block imports before the clock
starts; numba is not imported: it is part of a compile; .pyc files are written and read, as
in an installed package). Cases:

- ``w1``: the MLP 784-256-256-10 of bench_w1.py (float32): compile loss + 6 gradients and
  make one call. "first" is compile + first call; "ready" is when ``f.wait()`` returns (the
  Numba kernel runs from then on).
- ``readme<i>``: the README's i-th python block, run as a whole. "first" is the block's run
  time; "ready" is when every kernel the block compiled is in use.

Run: python benchmarks/bench_first_result.py [--repeats 3] [--cases w1,readme0,...]
"""
import argparse
import json
import os
import pathlib
import re
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]


def blocks():
    return re.findall(r"```python\n(.*?)```", (ROOT / "README.md").read_text(), re.DOTALL)


def child_w1():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_w1

    import symdiff as sd
    X, Y, vals = bench_w1.data("float32")
    t0 = time.perf_counter()
    x, y, params, loss = bench_w1.model("float32")
    f = sd.compile([x, y] + params, [loss] + sd.grad(loss, params))
    f(X, Y, *vals)
    first = time.perf_counter() - t0
    f.wait()
    return first, time.perf_counter() - t0


def child_readme(i):
    from symdiff.codegen import tiered

    import symdiff  # noqa: F401
    code = blocks()[i]
    for line in code.splitlines():             # the block's imports, before the clock
        if re.match(r"(import|from) \S+", line):
            exec(line, {})
    kernels, start = [], tiered.start

    def recorded(*args):
        kernels.append(start(*args))
        return kernels[-1]
    tiered.start = recorded
    t0 = time.perf_counter()
    exec(compile(code, f"README block {i}", "exec"), {})
    first = time.perf_counter() - t0
    for k in kernels:
        k.wait()
    return first, time.perf_counter() - t0


def run(case, tiered, repeats):
    firsts, readies = [], []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as cache:
            env = dict(os.environ, SYMDIFF_CACHE_DIR=cache, SYMDIFF_TIERED=str(int(tiered)),
                       MPLBACKEND="Agg")
            # as installed: imports read .pyc files (without them, compiling symdiff's own
            # modules at their first import adds ~40 ms to a first compile)
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            out = subprocess.run([sys.executable, __file__, "--child", case], env=env,
                                 capture_output=True, text=True, cwd=tempfile.gettempdir())
            if out.returncode:
                raise RuntimeError(f"{case}: {out.stderr[-2000:]}")
            first, ready = json.loads(out.stdout.strip().splitlines()[-1])
            firsts.append(first)
            readies.append(ready)
            time.sleep(0.5)              # let the worker of a tiered run finish and exit
    return statistics.median(firsts), statistics.median(readies)


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--cases", default=None)
    p.add_argument("--child", default=None)
    a = p.parse_args()
    if a.child:
        first, ready = child_w1() if a.child == "w1" else child_readme(int(a.child[6:]))
        print(json.dumps([first, ready]))
        return
    cases = a.cases.split(",") if a.cases else \
        ["w1"] + [f"readme{i}" for i in range(len(blocks()))]
    print(f"{'case':10} {'tiered first':>13} {'tiered ready':>13} {'wait=True':>10}")
    for case in cases:
        tf, tr = run(case, True, a.repeats)
        wf, _ = run(case, False, a.repeats)
        print(f"{case:10} {tf:12.3f}s {tr:12.3f}s {wf:9.3f}s", flush=True)


if __name__ == "__main__":
    main()
