"""Short, readable renderings of nodes for error messages and reprs (depth-limited, never deep)."""
import numpy as np

from .ops import INFIX, PRECEDENCE, Op

_MAX_DEPTH = 4


def label(node, depth=_MAX_DEPTH):
    """A one-line expression for ``node``: vars by name, small constants by value."""
    return expr(node.op, node.src, node.arg, depth)


def expr(op, src, arg, depth=_MAX_DEPTH):
    """Render op(src...) as infix or call syntax, eliding below ``depth`` levels."""
    if op is Op.VAR:
        return arg.name
    if op is Op.CONST:
        return _const_str(arg)
    if op is Op.DIM:
        return f"size({arg[0]!r})"
    if depth <= 0:
        return "..."
    parts = [_operand(s, op, depth - 1, i) for i, s in enumerate(src)]
    if op in INFIX:
        return f"{parts[0]} {INFIX[op]} {parts[1]}"
    if op is Op.NEG:
        return f"-{parts[0]}"
    if op is Op.FN:
        return f"{arg.name}({', '.join(parts)})"
    extra = _arg_str(op, arg)
    return f"{op.value}({', '.join(parts + extra)})"


def _operand(s, parent, depth, position):
    text = label(s, depth)
    if parent in PRECEDENCE and s.op in PRECEDENCE:
        mine, theirs = PRECEDENCE[parent], PRECEDENCE[s.op]
        # right operand of - / ** needs parentheses at equal precedence
        same_chain = s.op is parent and parent in (Op.ADD, Op.MUL)
        if theirs < mine or (theirs == mine and position == 1 and not same_chain):
            return f"({text})"
    return text


def _arg_str(op, arg):
    if op in (Op.SUM, Op.MAX):
        axes, keepdims = arg
        out = [f"axis={axes[0] if len(axes) == 1 else axes}"]
        return out + (["keepdims=True"] if keepdims else [])
    if op is Op.ARGMAX_MASK:
        return [f"axis={arg}"]
    if op in (Op.RESHAPE, Op.BROADCAST_TO, Op.TRANSPOSE):
        return [repr(arg)]
    if op is Op.CAST:
        return [arg]
    if op is Op.ONE_HOT:
        return [str(arg[0])]
    if op is Op.POLYGAMMA:
        return [f"n={arg}"]
    return []


def _const_str(c):
    v = c.value
    if v.ndim == 0:
        x = v.item()
        return repr(x) if not isinstance(x, float) else f"{x:.6g}"
    if v.size <= 4:
        return np.array2string(v, precision=4, separator=", ")
    return f"const{tuple(v.shape)}"
