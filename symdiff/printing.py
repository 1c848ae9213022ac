"""Readable renderings of nodes.

``label`` is a short one-line expression for error messages and reprs (elided below a depth).
``to_text`` is the full text printer behind ``str(node)``: it never cuts. When the expression
does not fit on a line, subtrees that occur more than once, or that make a line too long, are
given names in let-bindings (``t1 = ...``) printed before the expression; large constants are
named ``c1, c2, ...`` with a summary of their values. Products fold their scalar constants
(``-2 * (200 * x)`` prints as ``-400 * x``, ``x / (1 * size(batch))`` as ``x / size(batch)``).
"""
import hashlib
import math
from collections import Counter

import numpy as np

from .ops import INFIX, PRECEDENCE, Op

_MAX_DEPTH = 4
_ATOM = 10          # precedence of a name, a call or a literal: never parenthesized
_WIDTH = 100        # to_text's line width before it binds subtrees to names


def label(node, depth=_MAX_DEPTH):
    """A one-line expression for ``node`` (``...`` below ``depth`` levels): vars by name,
    small constants by value, others by shape and a digest of their values.

    >>> import symdiff as sd
    >>> x = sd.var("x", (3,))
    >>> label(sd.exp(sd.tanh(x * 2)), depth=2)
    'exp(tanh(...))'
    """
    return expr(node.op, node.src, node.arg, depth)


def expr(op, src, arg, depth=_MAX_DEPTH):
    """Render op(src...) as infix or call syntax, eliding below ``depth`` levels."""
    if op in (Op.VAR, Op.CONST, Op.DIM):
        return _leaf(op, arg)
    if depth <= 0:
        return "..."
    parts = [_operand(s, op, depth - 1, i) for i, s in enumerate(src)]
    return _join(op, arg, parts)


def _leaf(op, arg):
    if op is Op.VAR:
        return arg.name
    if op is Op.CONST:
        return _const_str(arg)
    return f"size({arg[0]!r})"


def _join(op, arg, parts):
    """op applied to its rendered operands."""
    if op in INFIX:
        return f"{parts[0]} {INFIX[op]} {parts[1]}"
    if op is Op.NEG:
        return f"-{parts[0]}"
    if op is Op.FN:
        return f"{arg.name}({', '.join(parts)})"
    return f"{op.value}({', '.join(parts + _arg_str(op, arg))})"


def _needs_parens(parent, child_prec, position, same_chain):
    """Whether an operand of precedence ``child_prec`` needs parentheses under ``parent``."""
    if parent not in PRECEDENCE:
        return False
    mine = PRECEDENCE[parent]
    # the right operand of - / ** needs parentheses at equal precedence
    return child_prec < mine or (child_prec == mine and position == 1 and not same_chain)


def _operand(s, parent, depth, position):
    text = label(s, depth)
    if s.op in PRECEDENCE and _needs_parens(parent, PRECEDENCE[s.op], position,
                                            s.op is parent and parent in (Op.ADD, Op.MUL)):
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


def duration(s):
    """Seconds in the fitting unit, three significant digits.

    >>> duration(0.000412), duration(2.5), duration(3e-8), duration(0.0123)
    ('412 us', '2.5 s', '30 ns', '12.3 ms')
    """
    if math.isnan(s):
        return "nan"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if s >= scale:
            return f"{s / scale:.3g} {unit}"
    return f"{s * 1e9:.3g} ns"


def _scalar(x):
    return repr(x) if not isinstance(x, float) else f"{x:.6g}"


def _const_str(c):
    """A constant by value: scalars and small arrays in full, uniform arrays as full(shape, v),
    identities as eye(n), anything else by shape and a digest of its bytes."""
    v = c.value
    if v.ndim == 0:
        return _scalar(v.item())
    if v.size <= 4:
        return np.array2string(v, precision=4, separator=", ")
    if c.uniform is not None:
        return f"full({tuple(v.shape)}, {_scalar(c.uniform)})"
    if c.identity:
        return f"eye({v.shape[0]})"
    digest = hashlib.blake2b(v.tobytes(), digest_size=3).hexdigest()
    return f"const{tuple(v.shape)}#{digest}"


def _const_summary(c):
    """The values of a large constant on one line, for its let-binding."""
    v = c.value
    body = np.array2string(v.ravel(), precision=4, separator=", ", threshold=6, edgeitems=3)
    return f"{body} reshaped to {tuple(v.shape)}" if v.ndim > 1 else body


# --- the full printer -----------------------------------------------------------------------
def to_text(outputs, names=None, width=_WIDTH):
    """The whole expression(s), never cut: let-bindings for shared or long subtrees first.

    ``names`` labels the outputs (``name = expression`` lines); without it a single output
    prints as its bare expression.

    >>> import symdiff as sd
    >>> x, w = sd.var("x", (4,)), sd.var("w", (4,))
    >>> z = sd.tanh(x * w - x / w)
    >>> print(to_text(sd.exp(-2 * (200 * z)) + z, width=30))
    t1 = tanh(x * w - x / w)
    exp(-400 * t1) + t1
    """
    from .graph import flatten
    outs = flatten(outputs)
    printer = _TextPrinter(outs, width)
    lines = [f"{n} = {t}" for n, t in printer.bindings]
    if names is None and len(outs) == 1:
        return "\n".join(lines + [printer.show(outs[0])[0]])
    names = names or [f"out{i}" for i in range(len(outs))]
    return "\n".join(lines + [f"{n} = {printer.show(o)[0]}" for n, o in zip(names, outs)])


class _TextPrinter:
    """Renders bottom-up; binds a node to a name when it is shared and long, or too long."""

    def __init__(self, outs, width):
        from .graph import toposort
        self.width = width
        self.order = toposort(outs)
        self.uses = Counter(s for n in self.order for s in n.src)
        if not self._fill(outs, inline=True):
            self._fill(outs, inline=False)

    def _fill(self, outs, inline):
        """Render every node; big constants always get names, other subtrees unless inline.
        Inline gives up (False) at the first text longer than a line: every subtree's text is
        part of an output's, and inline text can grow exponentially with sharing."""
        self.text, self.names, self.bindings, self.counts = {}, {}, [], Counter()
        for n in self.order:
            self.text[n] = self._render(n)
            if inline and len(self.text[n][0]) > self.width:
                return False
            while not inline and len(self.text[n][0]) > self.width and self._bind_largest(n):
                self.text[n] = self._render(n)
            big_const = n.op is Op.CONST and self.text[n][0].startswith("const(")
            if big_const or (not inline and n not in outs and self._shared_and_long(n)):
                self._bind(n)
        return True

    def show(self, n):
        """(text, precedence) of n as an operand: its name when bound."""
        if n in self.names:
            return self.names[n], _ATOM
        return self.text[n]

    def _shared_and_long(self, n):
        return not n.is_leaf and self.uses[n] > 1 and len(self.text[n][0]) > 16

    def _bind_largest(self, n):
        """Name the longest unnamed operand of n (False when none is left)."""
        kids = [s for s in (self._factors(n) if n.op is Op.MUL else n.src)
                if not s.is_leaf and s not in self.names]
        if not kids:
            return False
        self._bind(max(kids, key=lambda s: len(self.text[s][0])))
        return True

    def _bind(self, n):
        kind = "c" if n.op is Op.CONST else "t"
        self.counts[kind] += 1
        name = f"{kind}{self.counts[kind]}"
        shown = _const_summary(n.arg) if n.op is Op.CONST else self.text[n][0]
        self.bindings.append((name, shown))
        self.names[n] = name

    def _render(self, n):
        if n.is_leaf:
            text = _leaf(n.op, n.arg)
            if n.op is Op.CONST and text.startswith("const"):
                text = f"const{tuple(n.shape)}"      # named in a let-binding when printed
            prec = _ATOM if not text.startswith("-") else PRECEDENCE[Op.NEG]
            return text, prec
        if n.op is Op.MUL:
            return self._product(n)
        parts = [self._operand(s, n.op, i) for i, s in enumerate(n.src)]
        return _join(n.op, n.arg, parts), PRECEDENCE.get(n.op, _ATOM)

    def _operand(self, s, parent, position, same_chain=None):
        text, prec = self.show(s)
        chain = s.op is parent and parent in (Op.ADD, Op.MUL) if same_chain is None \
            else same_chain
        return f"({text})" if _needs_parens(parent, prec, position, chain) else text

    def _factors(self, n, top=True):
        """The factors of a product, through unshared, unbound inner products."""
        if n.op is Op.MUL and (top or (n not in self.names and self.uses[n] <= 1)):
            return self._factors(n.src[0], False) + self._factors(n.src[1], False)
        return [n]

    def _product(self, n):
        """A product with its scalar constants multiplied into one leading coefficient."""
        coef, rest = 1, []
        for f in self._factors(n):
            value = _scalar_value(f)
            if value is None:
                rest.append(f)
            else:
                coef *= value
        if not rest:
            return _scalar(coef), _ATOM if coef >= 0 else PRECEDENCE[Op.NEG]
        parts = [self._operand(f, Op.MUL, min(i, 1), same_chain=f.op is Op.MUL)
                 for i, f in enumerate(rest)]
        if coef == -1:                      # -1 * x * y prints as -x * y
            first, prec = self.show(rest[0])
            parts[0] = f"-({first})" if prec < PRECEDENCE[Op.NEG] else f"-{first}"
            return " * ".join(parts), PRECEDENCE[Op.MUL if len(parts) > 1 else Op.NEG]
        if coef != 1:
            parts.insert(0, _scalar(coef))
        if len(parts) == 1:
            return self.show(rest[0])
        return " * ".join(parts), PRECEDENCE[Op.MUL]


def _scalar_value(n):
    """The value of a scalar constant (a uniform one of any shape of one element), else None."""
    if n.op is Op.CONST and n.arg.value.size == 1:
        return n.arg.value.item()
    if n.op is Op.NEG:
        inner = _scalar_value(n.src[0])
        return None if inner is None else -inner
    return None
