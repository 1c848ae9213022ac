"""compare_modes' timing: blocks round-robin over every kernel, repeated until the spread is
small, one time per distinct kernel. The rules are checked against a fake clock that each
fake kernel advances by its own cost, so every expected number is exact."""
import numpy as np
import pytest

import symdiff as sd
from symdiff import compare
from symdiff.models.compare_cli import tanh_chain


class Clock:
    """Stands in for the time module inside symdiff.compare."""

    def __init__(self):
        self.t = 0.0

    def perf_counter(self):
        return self.t


@pytest.fixture
def clock(monkeypatch):
    c = Clock()
    monkeypatch.setattr(compare, "time", c)
    return c


class Kernel:
    """A call costs ``cost(block)`` seconds of fake time, block = how many blocks so far."""

    def __init__(self, clock, cost, log=None, name=""):
        self.clock, self.cost, self.log, self.name = clock, cost, log, name
        self.calls = 0

    def __call__(self):
        self.calls += 1
        self.clock.t += self.cost(self)
        if self.log is not None and (not self.log or self.log[-1][0] != self.name):
            self.log.append((self.name, self.clock.t))


def test_steady_kernels_stop_after_repeats_blocks(clock):
    k = Kernel(clock, lambda k: 1e-5)
    (times,) = compare._time_calls([(k, ())], repeats=5, spread=0.1, max_seconds=10)
    assert times == pytest.approx([1e-5] * 5)
    assert k.calls == 3 + 5 * 200            # 3 warm-up calls, 5 blocks of 2 ms / 10 us


def test_noisy_kernels_repeat_until_the_spread_is_small(clock):
    # the first 8 blocks alternate 10 us and 30 us; then steady at 10 us
    k = Kernel(clock, lambda k: 3e-5 if k.calls > 3 and (k.calls - 4) // 200 in (1, 3, 5, 7)
               else 1e-5)
    (times,) = compare._time_calls([(k, ())], repeats=5, spread=0.1, max_seconds=10)
    med, spread = compare._median_spread(times)
    assert 5 < len(times) < 20 and med == pytest.approx(1e-5) and spread <= 0.1
    assert len(times) == 17                   # 4 slow blocks of 17: above the third quartile


def test_rounds_rotate_over_the_kernels(clock):
    log = []
    ks = [Kernel(clock, lambda k: 1e-3, log, name) for name in "abc"]
    compare._time_calls([(k, ()) for k in ks], repeats=3, spread=0.1, max_seconds=10)
    order = "".join(name for name, _ in log)[3:]          # after the warm-up calls
    assert order == "abcbcacab"


def test_a_burst_of_load_slows_every_kernel_alike(clock):
    """Another process takes the CPU for a while: every kernel runs 10x slower then. Kernels
    timed in turn (all of a's blocks, then all of b's) would report 10x apart."""
    def cost(k):
        return 1e-5 * (10 if 0.001 < clock.t < 0.3 else 1)
    a, b = Kernel(clock, cost), Kernel(clock, cost)
    ta, tb = compare._time_calls([(a, ()), (b, ())], repeats=15, spread=0.1, max_seconds=10)
    for t in (ta, tb):
        assert compare._median_spread(t)[0] == pytest.approx(1e-5)
        assert sum(x > 5e-5 for x in t) >= 3             # the burst was measured, not skipped


def test_the_time_budget_ends_the_rounds(clock):
    k = Kernel(clock, lambda k: 1e-5 * (1 + (k.calls // 200) % 2))    # never steady
    (times,) = compare._time_calls([(k, ())], repeats=5, spread=0.1, max_seconds=0.05)
    assert 5 <= len(times) < 20 and compare._median_spread(times)[1] > 0.1


def test_strategies_with_one_kernel_share_one_time():
    y, x, env = tanh_chain([40, 40, 2, 40, 40], np.random.default_rng(0))
    c = sd.compare_modes(y, x, env, backend="numpy", repeats=3)
    auto, twin = c.row("auto"), c.row(c.row("auto").plan.split(":")[0][2:])
    assert twin.strategy != "auto"
    assert (auto.run_s, auto.run_spread, auto.blocks) == (twin.run_s, twin.run_spread,
                                                          twin.blocks)
    assert all(r.blocks >= 3 and r.run_spread >= 0 and r.run_s > 0 for r in c.rows)
    assert "spread" in str(c).splitlines()[0]


def test_time_comparisons_times_untimed_comparisons_together():
    y, x, env = tanh_chain([6, 5, 4], np.random.default_rng(1))
    cs = [sd.compare_modes(y * k, x, env, backend="numpy", timed=False) for k in (1.0, 2.0)]
    assert all(np.isnan(r.run_s) for c in cs for r in c.rows)
    sd.time_comparisons(cs, repeats=2)
    assert all(r.run_s > 0 and r.blocks >= 2 for c in cs for r in c.rows)


def test_blas_threads_are_limited_while_timing():
    threadpoolctl = pytest.importorskip("threadpoolctl")
    import scipy.linalg  # noqa: F401  (loads SciPy's OpenBLAS, the one kernels call)
    seen = []

    def kernel():
        seen.append({i["num_threads"] for i in threadpoolctl.threadpool_info()
                     if i["user_api"] == "blas"})
    y, x, env = tanh_chain([3, 2], np.random.default_rng(2))
    c = sd.compare_modes(y, x, env, strategies=("reverse",), backend="numpy", timed=False)
    c._calls = {"reverse": ("k", kernel, ())}
    before = {i["num_threads"] for i in threadpoolctl.threadpool_info() if i["user_api"] == "blas"}
    sd.time_comparisons([c], repeats=2, blas_threads=1)
    assert seen and all(s == {1} for s in seen)
    assert {i["num_threads"] for i in threadpoolctl.threadpool_info()
            if i["user_api"] == "blas"} == before                        # restored after
