"""Kernel cache faults: every damaged, stale, misplaced or unwritable cache recompiles (or
loads a copy) with at most a CacheWarning, and processes compiling one kernel at once all get
it right. The oracle is the model's closed form, written out in NumPy below.

Damage to the files is tested in this process: dropping the kernel from memory
(``_forget``) leaves exactly what a new process would find, the files. Unwritable dirs and
concurrent compiles use real processes; when the tests run as root, the children drop
CAP_DAC_OVERRIDE (setpriv) so that file permissions bind them.
"""
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest

import symdiff as sd
from symdiff.codegen import jit

X = np.linspace(-1.0, 1.0, 15).reshape(5, 3)
W = np.array([0.3, -0.7, 1.1])


def _graph(c):
    """loss = c * sum(tanh(x @ w)) and its gradient; c makes kernels distinct."""
    x, w = sd.var("x", ("n", 3)), sd.param("w", (3,))
    loss = sd.sum(sd.tanh(x @ w)) * c
    return [x, w], [loss, sd.grad(loss, w)]


def _check(f, c):
    t = np.tanh(X @ W)
    loss, grad = f(X, W)
    np.testing.assert_allclose(loss, c * t.sum(), rtol=1e-12)
    np.testing.assert_allclose(grad, c * X.T @ (1 - t * t), rtol=1e-12)


def _forget(key):
    """Drop the kernel from this process's memory: the next compile reads the disk cache."""
    jit._loaded.pop(key, None)
    sys.modules.pop(f"symdiff_kernel_{key}", None)


def _compile(c):
    """compile() as a new process would; returns the kernel and what jit did."""
    before = dict(jit.STATS)
    f = sd.compile(*_graph(c))
    _check(f, c)
    return f, {k: jit.STATS[k] - before[k] for k in before}


@pytest.fixture(scope="module")
def pristine(tmp_path_factory):
    """A cache holding the kernel for c = 2.0, and its key."""
    root = tmp_path_factory.mktemp("pristine")
    old = os.environ["SYMDIFF_CACHE_DIR"]
    os.environ["SYMDIFF_CACHE_DIR"] = str(root)
    try:
        f, did = _compile(2.0)
    finally:
        os.environ["SYMDIFF_CACHE_DIR"] = old
    _forget(f.key)
    assert did["compiled"] == 1
    return root, f.key


@pytest.fixture
def cache(tmp_path, monkeypatch, pristine):
    """A copy of the pristine cache, in use; yields (root, entry dir)."""
    root, key = pristine
    shutil.copytree(root, tmp_path / "cache")
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path / "cache"))
    _forget(key)
    yield tmp_path / "cache", tmp_path / "cache" / key
    _forget(key)


def _damage(how):
    def truncate(p):
        p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])

    def zero(p):
        p.write_bytes(bytes(p.stat().st_size))

    def garbage(p):
        p.write_bytes(np.random.default_rng(0).bytes(p.stat().st_size))

    def other_version(p):                # an index written by another Numba version
        with open(p, "rb") as fh:
            pickle.load(fh)
            rest = fh.read()
        p.write_bytes(pickle.dumps("0.0.1") + rest)
    return {"truncate": truncate, "zero": zero, "garbage": garbage,
            "other_version": other_version, "delete": lambda p: p.unlink()}[how]


# Damage to kernel.py alone loads Numba's cache (it checks a hash of the source we rewrite);
# damage to Numba's index or data recompiles.
# The rest of each list runs with -m slow: the same recovery path, one compile each.
_SLOW = pytest.mark.slow
FILE_FAULTS = [("kernel.py", "garbage", "loaded"), ("kernel.py", "delete", "loaded"),
               pytest.param("kernel.py", "truncate", "loaded", marks=_SLOW),
               pytest.param("kernel.py", "zero", "loaded", marks=_SLOW)]
FILE_FAULTS += [("__pycache__/*.nbi", how, "compiled")
                for how in ("truncate", "garbage", "other_version")]
FILE_FAULTS += [pytest.param("__pycache__/*.nbi", how, "compiled", marks=_SLOW)
                for how in ("zero", "delete")]
FILE_FAULTS += [("__pycache__/*.nbc", how, "compiled") for how in ("truncate", "zero")]
FILE_FAULTS += [pytest.param("__pycache__/*.nbc", how, "compiled", marks=_SLOW)
                for how in ("garbage", "delete")]


def _id(case):
    pattern, how, _ = case.values if hasattr(case, "values") else case
    return f"{pattern.split('.')[-1]}-{how}"


@pytest.mark.parametrize("pattern, how, expect", FILE_FAULTS,
                         ids=[_id(c) for c in FILE_FAULTS])
def test_a_damaged_cache_file_recompiles_or_loads(cache, pattern, how, expect):
    _, entry = cache
    files = list(entry.glob(pattern))
    assert files, f"no {pattern} in the pristine entry"
    for p in files:
        _damage(how)(p)
    f, did = _compile(2.0)
    assert did[expect] == 1 and did["compiled"] + did["loaded"] == 1, did
    _forget(f.key)                       # the entry was repaired: the next process loads it
    assert _compile(2.0)[1]["loaded"] == 1


def _replace_with_file(p):
    shutil.rmtree(p) if p.is_dir() else p.unlink()
    p.write_text("not what symdiff wrote")


def _replace_with_dir(p):
    p.unlink()
    (p / "sub").mkdir(parents=True)


KIND_FAULTS = {
    "entry is a file": lambda entry: _replace_with_file(entry),
    "__pycache__ is a file": lambda entry: _replace_with_file(entry / "__pycache__"),
    "kernel.py is a dir": lambda entry: _replace_with_dir(entry / "kernel.py"),
    "entry deleted": lambda entry: shutil.rmtree(entry),
    "cache deleted": lambda entry: shutil.rmtree(entry.parent),
}


@pytest.mark.parametrize("fault", list(KIND_FAULTS))
def test_a_path_of_the_wrong_kind_is_replaced(cache, fault, recwarn):
    _, entry = cache
    KIND_FAULTS[fault](entry)
    f, did = _compile(2.0)
    assert did["compiled"] + did["loaded"] == 1
    assert (entry / "kernel.py").read_text() == f.source          # the entry is whole again
    assert not [w for w in recwarn if issubclass(w.category, jit.CacheWarning)]


def test_a_cache_path_that_is_a_file_compiles_in_a_temporary_dir(tmp_path, monkeypatch):
    root = tmp_path / "cache"
    root.write_text("a file where the cache dir should be")
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(root))
    with pytest.warns(jit.CacheWarning, match=r"cache .*cache cannot be written"):
        f, did = _compile(3.0)
    assert did["compiled"] == 1
    assert root.read_text() == "a file where the cache dir should be"   # left alone
    assert jit.source_path(f.key).read_text() == f.source              # the temporary copy


def test_files_deleted_between_compile_and_call(tmp_path, monkeypatch):
    """The kernel and its epoch driver (compiled at the first epoch) outlive their files."""
    monkeypatch.setenv("SYMDIFF_CACHE_DIR", str(tmp_path / "cache"))
    (x, w), (loss, g) = _graph(4.0)
    y = sd.var("y", ("n",))
    mse = sd.mean((x @ w - y) ** 2)
    state = {w: W.copy()}
    step = sd.compile([x, y], mse, updates={w: w - 0.0 * sd.grad(mse, w)}, state=state)
    f = sd.compile([x, w], [loss, g])
    shutil.rmtree(tmp_path / "cache")
    _check(f, 4.0)
    Y = np.arange(5.0)
    losses = step.epoch(X, Y, batch_size=5)                 # compiles the epoch driver now
    np.testing.assert_allclose(losses[:, 0], [np.mean((X @ W - Y) ** 2)], rtol=1e-12)
    assert (tmp_path / "cache").is_dir()


# ---------------------------------------------------------------------------------------------
# Real processes: unwritable dirs and concurrent compiles
# ---------------------------------------------------------------------------------------------

_CHILD = textwrap.dedent("""
    import json, os, pathlib, sys, time, warnings
    import numpy as np
    sys.path.insert(0, {tests!r})
    import test_cache_faults as t
    from symdiff.codegen import jit
    ready, go, caches = sys.argv[1], sys.argv[2], sys.argv[3:]
    pathlib.Path(ready).touch()
    while go != "-" and not os.path.exists(go):      # start together
        time.sleep(0.005)
    report = []
    for cache in caches:
        os.environ["SYMDIFF_CACHE_DIR"] = cache
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            f, did = t._compile(2.0)                  # checks the values
        t._forget(f.key)
        report.append({{"did": did, "warnings": [str(w.message) for w in ws
                                                 if issubclass(w.category, jit.CacheWarning)],
                        "path": str(jit.source_path(f.key))}})
    print(json.dumps(report))
""").format(tests=os.path.dirname(__file__))


def _unprivileged():
    """A command prefix under which file permissions bind (root ignores them otherwise)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: no way to make a dir unwritable to us")
    caps = "-dac_override,-dac_read_search"
    return ["setpriv", f"--inh-caps={caps}", f"--bounding-set={caps}"]


def _spawn(tmp_path, i, caches, go="-", prefix=()):
    ready = tmp_path / f"ready{i}"
    proc = subprocess.Popen([*prefix, sys.executable, "-c", _CHILD, str(ready), str(go),
                             *map(str, caches)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=tmp_path)
    return proc, ready


def _report(proc):
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    return json.loads(out.strip().splitlines()[-1])


def test_unwritable_cache_dirs_load_or_compile_in_a_temporary_dir(cache, tmp_path):
    root, entry = cache                                      # holds the kernel
    empty = tmp_path / "empty"
    empty.mkdir()
    parent = tmp_path / "parent"
    parent.mkdir()
    for d in (root, empty, parent):
        for p in [d, *d.rglob("*")]:
            p.chmod(p.stat().st_mode & ~0o222)               # read-only, contents included
    try:
        proc, _ = _spawn(tmp_path, 0, [root, empty, parent / "kernels"],
                         prefix=_unprivileged())
        held, fresh, missing = _report(proc)
    finally:
        for p in [tmp_path, *tmp_path.rglob("*")]:
            p.chmod(p.stat().st_mode | 0o200)
    assert held["did"]["loaded"] == 1 and held["did"]["compiled"] == 0   # a copy loads
    assert fresh["did"]["compiled"] == 1 and missing["did"]["compiled"] == 1
    for r, d in zip((held, fresh, missing), (root, empty, parent / "kernels")):
        (w,) = r["warnings"]
        assert f"the kernel cache {d} cannot be written" in w and "PermissionError" in w
        assert not os.path.exists(r["path"])                 # the temporary dir is gone
    assert sorted(p.name for p in empty.iterdir()) == []     # nothing written


@pytest.mark.parametrize("n", [2, pytest.param(4, marks=pytest.mark.slow)])
def test_processes_compiling_one_new_kernel_at_once(tmp_path, n):
    """n processes compile the same new graph into one empty cache at the same moment: all
    get the right values, one compiles, the others wait for its lock and load its result."""
    cache, go = tmp_path / "cache", tmp_path / "go"
    procs = [_spawn(tmp_path, i, [cache], go=go) for i in range(n)]
    deadline = time.monotonic() + 240
    while not all(ready.exists() for _, ready in procs):
        assert time.monotonic() < deadline, "children did not start"
        assert all(p.poll() is None for p, _ in procs), [p.communicate() for p, _ in procs]
        time.sleep(0.01)
    go.touch()
    reports = [_report(p)[0] for p, _ in procs]
    assert sum(r["did"]["compiled"] for r in reports) == 1, reports
    assert sum(r["did"]["loaded"] for r in reports) == n - 1, reports
    assert not any(r["warnings"] for r in reports)
    (entry,) = [p for p in cache.iterdir() if p.is_dir()]
    assert sorted(p.name for p in entry.iterdir()) == ["__pycache__", "kernel.py"]
