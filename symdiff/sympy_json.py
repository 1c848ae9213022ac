"""SymPy expressions as JSON lists, read back without ``eval`` or ``sympify`` of text.

The ``expr`` list of a function in a ``symdiff-graph`` file (``persist.py`` describes the
format) numbers the subexpressions with ``graph.toposort``, each after its arguments:
``["Symbol", name, {assumption: bool}]``, ``["Integer", n]``, ``["Rational", p, q]``,
``["Float", m, e, precision]`` (m * 2**e, exactly), ``["S", name]`` (a SymPy singleton) or
``[class name, *argument indices]``; ``symbols`` and ``value`` index the arguments and the
whole expression. Reading only looks class names up in a fixed table (the
SymPy classes of the ``sympy`` namespace and symdiff's ``sympy_functions``) and builds them
unevaluated, so an expression is rebuilt as it was written and nothing in the file computes.
"""
import sympy as sp
from mpmath.libmp import from_man_exp
from sympy.functions.elementary.piecewise import ExprCondPair

from . import sympy_functions
from .graph import toposort
from .scalarfn import ScalarFunction

_ATOMS = ("Symbol", "Integer", "Rational", "Float", "S")


def _classes():
    table = {"ExprCondPair": ExprCondPair}
    for module in (sp, sympy_functions):
        for obj in vars(module).values():
            if isinstance(obj, type) and issubclass(obj, sp.Basic) and obj.__name__ not in _ATOMS:
                table.setdefault(obj.__name__, obj)
    return table


CLASSES = _classes()


class Numbered:
    """Subexpressions in order (``items``, the JSON entries) and their numbers (``index``)."""

    def __init__(self, roots):
        order = toposort(roots, children=lambda e: e.args)
        self.index = {e: i for i, e in enumerate(order)}
        self.items = [self._entry(e) for e in order]

    def _entry(self, e):
        if isinstance(e, sp.Symbol):
            if type(e) is not sp.Symbol or not e.name.isidentifier():
                raise TypeError(f"save: cannot write the SymPy {type(e).__name__} {e}")
            return ["Symbol", e.name, dict(e._assumptions_orig)]
        if isinstance(e, sp.Integer):
            return ["Integer", int(e)]
        if isinstance(e, sp.Rational):
            return ["Rational", int(e.p), int(e.q)]
        if isinstance(e, sp.Float):
            sign, man, exp, _ = e._mpf_
            return ["Float", -man if sign else man, exp, e._prec]
        name = type(e).__name__
        if not e.args and getattr(sp.S, name, None) is e:
            return ["S", name]
        if CLASSES.get(name) is not type(e):
            raise TypeError(f"save: cannot write the SymPy {name} in {e} (not a sympy class)")
        return [name] + [self.index[a] for a in e.args]


def encode_function(fn):
    """The file's record of the ScalarFunction ``fn``."""
    table = Numbered(list(fn.symbols) + [fn.expr])
    return {"name": fn.name, "expr": table.items,
            "symbols": [table.index[s] for s in fn.symbols], "value": table.index[fn.expr]}


def decode_function(rec, fail):
    """The ScalarFunction of a file's function record; ``fail(message)`` raises."""
    if not isinstance(rec, dict) or set(rec) != {"name", "expr", "symbols", "value"} or \
            not isinstance(rec["name"], str) or not isinstance(rec["expr"], list) or \
            not rec["expr"] or not isinstance(rec["symbols"], list):
        fail('a function must be {"name": str, "expr": [entries], "symbols": [indices], '
             '"value": index}')
    built = []
    with sp.evaluate(False):
        for i, entry in enumerate(rec["expr"]):
            built.append(_build(entry, built, lambda m, i=i: fail(f"expr entry {i}: {m}")))
    symbols = [_ref(j, built, fail) for j in rec["symbols"]]
    if not all(isinstance(s, sp.Symbol) for s in symbols) or len(set(symbols)) != len(symbols):
        fail("symbols must name distinct Symbol entries")
    try:
        return ScalarFunction(rec["name"], _ref(rec["value"], built, fail), symbols)
    except ValueError as e:
        fail(str(e))


def _ref(j, built, fail):
    if not isinstance(j, int) or isinstance(j, bool) or not 0 <= j < len(built):
        fail(f"index {j!r} out of range (must be an earlier entry, < {len(built)})")
    return built[j]


def _int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _build(entry, built, fail):
    if not isinstance(entry, list) or not entry or not isinstance(entry[0], str):
        fail(f"{entry!r:.200} is not [kind, ...]")
    kind, args = entry[0], entry[1:]
    if kind == "Symbol" and len(args) == 2 and isinstance(args[0], str) and \
            args[0].isidentifier() and isinstance(args[1], dict) and \
            all(isinstance(v, bool) for v in args[1].values()):
        return _construct(sp.Symbol, [args[0]], args[1], fail)
    if kind == "Integer" and len(args) == 1 and _int(args[0]):
        return sp.Integer(args[0])
    if kind == "Rational" and len(args) == 2 and all(map(_int, args)) and args[1] > 0:
        return sp.Rational(*args)
    if kind == "Float" and len(args) == 3 and all(map(_int, args)) and 0 < args[2] <= 10000:
        return sp.Float._new(from_man_exp(args[0], args[1]), args[2])
    if kind == "S" and len(args) == 1 and isinstance(args[0], str) and \
            args[0].isidentifier() and not args[0].startswith("_"):
        value = getattr(sp.S, args[0], None)
        if isinstance(value, sp.Basic) and not value.args:
            return value
        fail(f"{args[0]!r} is not a SymPy singleton")
    if kind in _ATOMS:
        fail(f"{entry!r:.200} is not a valid {kind} entry")
    if kind not in CLASSES:
        fail(f"unknown SymPy class {kind!r}")
    return _construct(CLASSES[kind], [_ref(j, built, fail) for j in args], {}, fail)


def _construct(cls, args, kwargs, fail):
    try:
        e = cls(*args, **kwargs)
    except Exception as err:        # SymPy raises many kinds for arguments a class rejects
        fail(f"{cls.__name__} rejects its arguments ({type(err).__name__}: {err})")
    if not isinstance(e, sp.Basic):
        fail(f"{cls.__name__} did not build an expression")
    return e
