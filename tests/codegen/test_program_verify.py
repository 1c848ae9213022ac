"""``Program.verify`` checks the invariants lowering relies on: a step reads only what was
written before it, and values that share memory (temporaries in one workspace slot, an
output and the temporaries kept in its memory before it is written) are never live at the
same time. Real programs pass; a program with one placement made wrong on purpose fails."""
from dataclasses import replace

import pytest
from symdiff.codegen.lower import lower
from symdiff.codegen.prepare import prepare
from symdiff.codegen.program import relocate, step_reads, step_writes

import symdiff as sd
from symdiff.function import Spec


def mlp_program():
    x, y = sd.var("x", ("batch", 8)), sd.var("y", ("batch", 3))
    W1, W2 = sd.param("W1", (8, 16)), sd.param("W2", (16, 3))
    loss = sd.mean(sd.square(sd.tanh(sd.tanh(x @ W1) @ W2) - y))
    spec = Spec([x, y, W1, W2], [loss] + sd.grad(loss, [W1, W2]), None, None)
    return lower(spec, prepare(spec.outputs), [])


def moved(prog, name, **changes):
    """``prog`` with every buffer named ``name`` changed as given (one array variable per
    place and shape: all of them move together), and so every view of it and every step."""
    new = {id(b): replace(b, **changes) for b in prog.buffers.values() if b.name == name}
    steps, buffers, argmax = relocate(prog.steps, prog.buffers, prog.argmax, new)
    return replace(prog, steps=steps, buffers=buffers, argmax=argmax)


def spans(prog):
    """Root buffer -> [first step writing it, last step touching it]."""
    out = {}
    for k, step in enumerate(prog.steps):
        for b in step_writes(step):
            while b.base is not None:
                b = b.base
            out.setdefault(b, [k, k])[1] = k
        for b in step_reads(step, prog.buffers, prog.argmax):
            if b in out:
                out[b][1] = k
    return out


def test_a_lowered_program_passes():
    assert mlp_program().verify()


def test_two_live_temporaries_in_one_slot_are_refused():
    prog = mlp_program()
    temps = [(b, s) for b, s in spans(prog).items() if b.kind == "temp"]
    a, b = next((a, b) for a, sa in temps for b, sb in temps
                if a.slot != b.slot and sa[0] < sb[0] < sa[1])   # b starts while a lives
    with pytest.raises(AssertionError, match="share slot"):
        moved(prog, b.name, slot=a.slot).verify()


def test_a_temporary_in_an_output_written_while_it_lives_is_refused():
    prog = mlp_program()
    lives = spans(prog)
    k, out = next((k, o) for k, o in enumerate(prog.outputs) if o in lives)
    t = next(b for b, (first, last) in lives.items()
             if b.kind == "temp" and first < lives[out][0] < last)
    bad = moved(prog, t.name, kind="scratch", slot=len(prog.scratch))
    bad = replace(bad, scratch=prog.scratch + [(k, t.dtype, (1, ()))])
    with pytest.raises(AssertionError, match="share output"):
        bad.verify()


def scatter_program():
    x, u = sd.var("x", (4, 3)), sd.var("u", (5, 3))
    y = sd.sum(sd.square(sd.scatter_add(sd.tanh(x), [1, 0, 3, 1, 2], sd.exp(u))))
    spec = Spec([x, u], [y] + sd.grad(y, [x, u]), None, None)
    return lower(spec, prepare(spec.outputs), [])


def test_a_scatter_whose_output_is_not_initialized_first_is_refused():
    prog = scatter_program()
    assert prog.verify()
    k = next(k for k, s in enumerate(prog.steps) if any(t.kind == "scatter" for t in
                                                        getattr(s, "tasks", ())))
    scatter = next(t for t in prog.steps[k].tasks if t.kind == "scatter")
    init = next(j for j, s in enumerate(prog.steps[:k])
                if any(t.out is scatter.out for t in getattr(s, "tasks", ())))
    # the scatter adds into memory no step has written yet: its init moved after it
    steps = list(prog.steps)
    steps.insert(k, steps.pop(init))
    with pytest.raises(AssertionError, match="read before it is written"):
        replace(prog, steps=steps).verify()


def test_the_passes_return_values_and_change_none_of_their_inputs():
    """Lowering twice from the same prepared nodes gives the same program text, and the
    program's parts are frozen: a pass cannot change one after it is built."""
    from dataclasses import FrozenInstanceError, fields

    from symdiff.codegen.render import render
    a, b = mlp_program(), mlp_program()
    assert render(a) == render(b)
    for step in a.steps:
        with pytest.raises(FrozenInstanceError):
            setattr(step, fields(step)[0].name, None)
    with pytest.raises(FrozenInstanceError):
        next(iter(a.buffers.values())).name = "x"


@pytest.mark.parametrize("name", ["items", "expr", "queues", "views", "render"])
def test_docstring_examples(name):
    import doctest
    import importlib
    module = importlib.import_module(f"symdiff.codegen.{name}")
    assert doctest.testmod(module).failed == 0
