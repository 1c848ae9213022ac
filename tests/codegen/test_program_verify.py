"""``Program.verify`` checks the invariants lowering relies on: a step reads only what was
written before it, and values that share memory (temporaries in one workspace slot, an
output and the temporaries kept in its memory before it is written) are never live at the
same time. Real programs pass; a program with one placement made wrong on purpose fails."""
import pytest

import symdiff as sd
from symdiff.codegen.lower import lower
from symdiff.codegen.prepare import prepare
from symdiff.codegen.program import step_reads, step_writes
from symdiff.function import Spec


def mlp_program():
    x, y = sd.var("x", ("batch", 8)), sd.var("y", ("batch", 3))
    W1, W2 = sd.param("W1", (8, 16)), sd.param("W2", (16, 3))
    loss = sd.mean(sd.square(sd.tanh(sd.tanh(x @ W1) @ W2) - y))
    spec = Spec([x, y, W1, W2], [loss] + sd.grad(loss, [W1, W2]), None, None)
    return lower(spec, prepare(spec.outputs), [])


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
    for other in {id(o): o for o in prog.buffers.values()}.values():
        if other.name == b.name:             # one array variable per place and shape
            other.slot = a.slot
    with pytest.raises(AssertionError, match="share slot"):
        prog.verify()


def test_a_temporary_in_an_output_written_while_it_lives_is_refused():
    prog = mlp_program()
    lives = spans(prog)
    k, out = next((k, o) for k, o in enumerate(prog.outputs) if o in lives)
    t = next(b for b, (first, last) in lives.items()
             if b.kind == "temp" and first < lives[out][0] < last)
    prog.scratch.append((k, t.dtype, (1, ())))
    for other in {id(o): o for o in prog.buffers.values()}.values():
        if other.name == t.name:
            other.kind, other.slot = "scratch", len(prog.scratch) - 1
    with pytest.raises(AssertionError, match="share output"):
        prog.verify()
