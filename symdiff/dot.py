"""Graphviz pictures of graphs, drawn as the lecture notes draw computational graphs: inputs
white, parameters red, operations blue, outputs with a double border."""
import shutil
import subprocess

from .graph import flatten, toposort
from .ops import INFIX, Op
from .printing import label

_STYLE = {
    "input": 'shape=ellipse, style=filled, fillcolor="white"',
    "param": 'shape=ellipse, style=filled, fillcolor="#f4a6a6"',
    "const": 'shape=plaintext, fontcolor="#555555"',
    "op": 'shape=box, style="rounded,filled", fillcolor="#a9c8f0"',
}


def _kind(n):
    if n.op is Op.VAR:
        return "param" if n.arg.trainable else "input"
    if n.op in (Op.CONST, Op.DIM):
        return "const"
    return "op"


def _text(n):
    if n.op in (Op.VAR, Op.CONST, Op.DIM):
        return label(n, 1)
    if n.op in INFIX:
        return INFIX[n.op]
    return n.arg.name if n.op is Op.FN else n.op.value


def _escape(s):
    return s.replace("\\", "\\\\").replace('"', '\\"')


def to_dot(outputs, gradient=None, title=None):
    """Graphviz DOT text for node(s). With ``gradient=`` (node(s) of the derivative graph),
    the forward graph and the nodes only the gradient needs are drawn side by side.

    >>> import symdiff as sd
    >>> x, w = sd.var("x", (3,)), sd.param("w", (3,))
    >>> print(sd.to_dot(sd.sigmoid(x @ w)).splitlines()[0])
    digraph symdiff {
    """
    fwd = flatten(outputs)
    grad = flatten(gradient) if gradient is not None else []
    fwd_nodes = toposort(fwd)
    in_fwd = set(fwd_nodes)
    grad_nodes = [n for n in toposort(grad) if n not in in_fwd]
    ids = {n: f"n{i}" for i, n in enumerate(fwd_nodes + grad_nodes)}
    lines = ["digraph symdiff {", "  rankdir=LR;", '  node [fontname="Helvetica"];']
    if title:
        lines.append(f'  label="{_escape(title)}"; labelloc=t;')
    outs = set(fwd) | set(grad)
    for name, nodes in (("forward", fwd_nodes), ("gradient", grad_nodes)):
        if grad:
            lines.append(f'  subgraph cluster_{name} {{ label="{name}"; color="#999999";')
        for n in nodes:
            extra = ", peripheries=2" if n in outs else ""
            lines.append(f'    {ids[n]} [label="{_escape(_text(n))}", {_STYLE[_kind(n)]}{extra}];')
        if grad:
            lines.append("  }")
    for n in fwd_nodes + grad_nodes:
        for s in n.src:
            lines.append(f"  {ids[s]} -> {ids[n]};")
    lines.append("}")
    return "\n".join(lines) + "\n"


def render(dot_text, path, fmt=None):
    """Write DOT text as PNG/SVG/PDF with Graphviz's ``dot`` program; returns the path.

    Raises RuntimeError naming what is missing when ``dot`` is not installed.
    """
    fmt = fmt or str(path).rsplit(".", 1)[-1]
    if fmt not in ("png", "svg", "pdf"):
        raise ValueError(f"render: format must be png, svg or pdf, got {fmt!r}")
    exe = shutil.which("dot")
    if exe is None:
        raise RuntimeError("render needs Graphviz's `dot` program (e.g. apt install graphviz); "
                           "or write the DOT text with to_dot / `--format dot`")
    out = str(path)
    done = subprocess.run([exe, f"-T{fmt}", "-o", out], input=dot_text, text=True,
                          capture_output=True)
    if done.returncode != 0:
        raise RuntimeError(f"render: dot failed ({done.returncode}): {done.stderr.strip()}")
    return out
