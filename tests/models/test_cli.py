"""Every command the README documents, run through the CLI's entry point: `symdiff demo`,
`symdiff show <model>`, `symdiff compare <widths | net | zoo model> [--hessian | --hvp]
[--plot]`. (show's LaTeX/DOT/PNG output and the widths/net/logreg compare commands have
further tests in test_sympy_bridge.py and test_modes_kernels.py.)"""
import os
import re
import subprocess
import sys

import numpy as np
import pytest

import symdiff as sd
from symdiff.compare import HESSIAN_STRATEGIES, HVP_STRATEGIES
from symdiff.models.cli import main
from symdiff.models.compare_cli import build
from symdiff.models.zoo import ZOO


def _table(text):
    """strategy -> the row's cells, from a printed comparison table."""
    lines = text.splitlines()
    head = next(i for i, line in enumerate(lines) if line.startswith("strategy"))
    rows = {}
    for line in lines[head + 2:]:
        if not line.strip() or not line[0].isalpha() or line == "notes:":
            break
        cells = re.split(r"\s{2,}", line.strip())
        rows[cells[0]] = cells
    return rows


def test_the_console_script_lists_the_commands():
    script = os.path.join(os.path.dirname(sys.executable), "symdiff")
    out = subprocess.run([script, "--help"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    for command in ("demo", "show", "compare"):
        assert command in out.stdout


@pytest.mark.slow                          # ~18 s: the training, epoch and prediction kernels
def test_demo_trains_and_writes_the_curves(tmp_path, capsys):
    path = tmp_path / "demo.png"
    assert main(["demo", "--epochs", "3", "--plot", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digits: ")
    losses = [float(v) for v in re.findall(r"train loss (\d+\.\d+)", out)]
    assert len(losses) == 3 and losses[-1] < losses[0] < np.log(10)
    acc = float(re.search(r"^test accuracy (\d\.\d+)$", out, re.M).group(1))
    assert acc > 0.85                      # 3 epochs of SGD on digits
    assert path.stat().st_size > 10_000 and "curves written to" in out


def test_the_demo_says_which_tier_ran_the_steps(monkeypatch):
    """Tiered (the default), the steps run on NumPy until the Numba kernel is in use; the
    demo's summary says when that was, or that it never was."""
    from symdiff.models import Trainer, networks
    from symdiff.models.cli import _tier_report
    monkeypatch.setenv("SYMDIFF_TIERED", "1")
    trainer = Trainer(networks.xor_network(), lr=0.1)
    before = _tier_report(trainer)
    assert trainer.step.wait(300)
    after = _tier_report(trainer)
    assert trainer.kernel_ready_seconds > trainer.compile_seconds
    assert re.fullmatch(r"the Numba step kernel was in use \d+\.\d\d s after .*", after)
    assert before == after or before.startswith("training ended before the Numba step kernel")
    numpy_trainer = Trainer(networks.xor_network(), lr=0.1, backend="numpy")
    assert _tier_report(numpy_trainer) == "the steps ran on the NumPy backend"


@pytest.mark.parametrize("name", sorted(ZOO))
def test_show_prints_every_zoo_model_in_every_format(name, capsys):
    """text, latex and dot, loss and gradient, for each model of the zoo (the help lists
    them all)."""
    params = [p.name for p in ZOO[name]().params]
    for fmt in ("text", "latex"):
        assert main(["show", name, "--format", fmt]) == 0
        lines = capsys.readouterr().out.splitlines()
        assert [line.split(" = ")[0] for line in lines if not re.match(r"t\d+ = |where ", line)] \
            == ["loss"]
        assert main(["show", name, "--grad", "--format", fmt]) == 0
        lines = capsys.readouterr().out.splitlines()
        named = [line.split(" = ")[0] for line in lines if line.startswith("d loss")]
        assert named == [f"d loss / d {p}" for p in params]
        assert not any("..." in line for line in lines)
        if fmt == "latex":
            assert not any(t in line for line in lines for t in ("keepdims", "axis=", "one_hot("))
        else:      # bindings first, each name defined before it is used
            bound = [line.split(" = ")[0] for line in lines if re.match(r"t\d+ = ", line)]
            assert bound == [f"t{i + 1}" for i in range(len(bound))]
    assert main(["show", name, "--grad", "--format", "dot"]) == 0
    assert capsys.readouterr().out.startswith("digraph")


def test_help_texts_show_defaults(capsys):
    for command, shown in (("compare", ["(default: 300)", "(default: numba)", "(default: 15)"]),
                           ("demo", ["(default: 30)", "(default: 0.05)", "(default: tanh)"]),
                           ("show", ["(default: text)", "mixture: Mixture density network"])):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = " ".join(capsys.readouterr().out.split())
        assert all(s in out for s in shown), (command, out)


def test_compare_readme_commands_numpy_backend(capsys):
    """`symdiff compare 500-500-20-500-500` and `symdiff compare net --in 10 --out 1000`
    (README), interpreted; times in fitting units, the plan column short, notes below."""
    assert main(["compare", "500-500-20-500-500", "--backend", "numpy", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    rows = _table(out)
    assert rows["optimal"][1] == "(J4 J3) fwd x20 | (J2 J1) rev x20"
    assert all(float(cells[-1]) < 1e-12 for cells in rows.values())
    for cells in rows.values():
        for time_cell in cells[6:9]:                       # predicted, compile, run
            value, unit = time_cell.split()
            assert unit in ("ns", "us", "ms", "s") and 1 <= float(value) < 1000, time_cell
    assert re.search(r"^notes:\n  auto: predicted .*optimal \d", out, re.MULTILINE)
    assert main(["compare", "net", "--in", "10", "--out", "1000", "--hidden", "32",
                 "--backend", "numpy", "--repeats", "1"]) == 0
    rows = _table(capsys.readouterr().out)
    assert rows["auto"][1].startswith("= forward") and max(len(c[1]) for c in rows.values()) < 40


@pytest.mark.parametrize("flag", ["--hessian", "--hvp", None])
def test_compare_mlp_second_order_and_jacobian(flag, capsys):
    """The MLP's loss is built at a fixed batch (no ShapeError from reshaping (8, 1) into
    (batch,)); every strategy agrees with the reference."""
    argv = ["compare", "mlp", "--repeats", "2", "--backend", "numpy"]
    assert main(argv + ([flag] if flag else [])) == 0
    out = capsys.readouterr().out
    what = {"--hessian": "hessian", "--hvp": "hvp", None: "jacobian"}[flag]
    assert f"symdiff compare mlp: {what} of" in out
    want = {"hessian": HESSIAN_STRATEGIES, "hvp": HVP_STRATEGIES,
            "jacobian": ("forward", "reverse", "auto", "optimal")}[what]
    rows = _table(out)
    assert list(rows) == list(want)
    assert all(float(cells[-1]) < 1e-12 for cells in rows.values())


@pytest.mark.parametrize("name", sorted(set(ZOO) - {"mlp"}))
def test_compare_every_zoo_model(name, capsys):
    """`symdiff compare <zoo model>` (Jacobian) and `--hessian`, interpreted: every strategy
    agrees with the reference."""
    for flag in ([], ["--hessian"]):
        assert main(["compare", name, "--backend", "numpy", "--repeats", "1"] + flag) == 0
        rows = _table(capsys.readouterr().out)
        assert len(rows) >= 3 and all(float(cells[-1]) < 1e-10 for cells in rows.values())


def test_the_compared_mlp_hessian_matches_finite_differences():
    y, x, inputs = build("mlp", 300, 300, 256, 3, 8, 0, scalar=True)
    H = sd.evaluate(sd.hessian(y, x), inputs)
    g = sd.grad(y, x)
    w0, h = inputs[x], 1e-5
    fd = np.empty(x.shape + x.shape)
    for idx in np.ndindex(x.shape):
        e = np.zeros(x.shape)
        e[idx] = h
        plus = sd.evaluate(g, {**inputs, x: w0 + e})
        minus = sd.evaluate(g, {**inputs, x: w0 - e})
        fd[(...,) + idx] = (plus - minus) / (2 * h)
    np.testing.assert_allclose(H, fd, atol=1e-8)
    np.testing.assert_allclose(H.reshape(32, 32), H.reshape(32, 32).T, atol=1e-14)


@pytest.mark.slow
@pytest.mark.parametrize("flag", ["--hessian", "--hvp"])
def test_compare_mlp_second_order_with_kernels(flag, capsys):
    assert main(["compare", "mlp", flag, "--repeats", "2"]) == 0
    rows = _table(capsys.readouterr().out)
    assert len(rows) >= 3 and all(float(cells[-1]) < 1e-12 for cells in rows.values())
