"""A generic graph rewriter: patterns, rules, rule sets, and bottom-up rewriting to a fixpoint.

It knows no algebra. A ``Pat`` matches a node by op, sources, a predicate and named captures
(a name used twice must bind the same node); two-source commutative ops also match with their
sources swapped. A ``Rule`` pairs a pattern with a function of the captures that returns a
replacement node (or None to decline). ``RuleSet``s compose with ``+``. ``rewrite`` normalizes a
graph bottom-up, re-normalizing what a rule builds, and can record every rule that fired.
"""
import threading
import weakref

from .dims import broadcast_shapes
from .graph import Node, toposort
from .ops import COMMUTATIVE, Op
from .printing import label


class Pat:
    """A node pattern; build with ``Pat.var``, ``Pat.const``, ``P(op, ...)`` and operators."""

    __slots__ = ("op", "src", "name", "pred", "order", "src_sorted", "_first")

    def __init__(self, op=None, src=None, name=None, pred=None):
        self.op = op if op is None or isinstance(op, frozenset) else frozenset([op])
        self.src, self.name, self.pred = src, name, pred
        # sources are matched cheapest test first (an op test before a predicate such as
        # finite() or single_use): a match binds the same captures in any order
        self.order = None if src is None else sorted(range(len(src)), key=lambda i: (
            src[i].op is None, src[i].pred is not None))
        self.src_sorted = None if src is None else tuple(src[i] for i in self.order)
        self._first = None      # the compiled first-match function (``first``)

    @staticmethod
    def var(name, pred=None):
        """Any node, captured as ``name``."""
        return Pat(None, None, name, pred)

    @staticmethod
    def const(value=None, name=None):
        """A constant whose elements all equal ``value`` (any value when None); captured as ``name``."""
        # the ops uniform_value can find a value under: a quick first test
        if value is None:
            return Pat(CONST_OPS, None, name, lambda n: uniform_value(n) is not None)
        return Pat(CONST_OPS, None, name, lambda n: uniform_value(n) == value)

    def __add__(self, o): return P(Op.ADD, self, o)
    def __radd__(self, o): return P(Op.ADD, o, self)
    def __sub__(self, o): return P(Op.SUB, self, o)
    def __rsub__(self, o): return P(Op.SUB, o, self)
    def __mul__(self, o): return P(Op.MUL, self, o)
    def __rmul__(self, o): return P(Op.MUL, o, self)
    def __truediv__(self, o): return P(Op.DIV, self, o)
    def __rtruediv__(self, o): return P(Op.DIV, o, self)
    def __pow__(self, o): return P(Op.POW, self, o)
    def __neg__(self): return P(Op.NEG, self)

    def _may_match(self, node):
        """The ops of ``node`` and its sources fit (necessary for a match, not sufficient)."""
        if self.op is not None and node.op not in self.op:
            return False
        want = self.src
        if want is None:
            return True
        src = node.src
        if len(src) != len(want):
            return False
        if all(w.op is None or s.op in w.op for w, s in zip(want, src)):
            return True
        return len(src) == 2 and node.op in COMMUTATIVE and \
            all(w.op is None or s.op in w.op for w, s in zip(want, src[::-1]))

    def match(self, node, caps):
        """True (filling ``caps``) when ``node`` matches; tries every commutative order."""
        if not self._may_match(node):
            return False
        found = self.first(node)
        if found is None:
            return False
        caps.clear()
        caps.update(found)
        return True

    def first(self, node):
        """The first match of ``matches(node, {})`` (a capture dict), or None, by a function
        compiled from the pattern once (``_compile``: one call per try, not a generator and
        a call per pattern node; matching is most of simplify's time)."""
        if self._first is None:
            try:
                self._first = _compile(self)
            except SyntaxError:     # nested deeper than Python compiles (no rule here is)
                self._first = lambda n: next(iter(self.matches(n, {})), None)
        return self._first(node)

    def matches(self, node, caps):
        """Every way ``node`` matches, as capture dicts (backtracking over commutative orders)."""
        caps = self._here(node, caps)
        if caps is None:
            return
        if self.src is None:
            yield caps
            return
        src = node.src
        if len(self.src) != len(src):
            return
        yield from _match_all(self.src_sorted, [src[i] for i in self.order], caps)
        if node.op in COMMUTATIVE and len(src) == 2:      # pattern i against node 1 - i
            yield from _match_all(self.src_sorted, [src[1 - i] for i in self.order], caps)

    def _here(self, node, caps):
        """``caps`` with ``node`` bound when it fits this pattern's op, predicate and name
        (sources not looked at), else None."""
        if self.op is not None and node.op not in self.op:
            return None
        if self.pred is not None and not self.pred(node):
            return None
        if self.name is not None:
            bound = caps.get(self.name)
            if bound is not None and bound is not node:
                return None
            caps = {**caps, self.name: node}
        return caps


CONST_OPS = frozenset({Op.CONST, Op.BROADCAST_TO, Op.RESHAPE})
"""The ops of nodes that can hold a constant: a constant, and broadcasts and reshapes of one
(what ``uniform_value`` looks through)."""


def _match_all(pats, nodes, caps):
    if not pats:
        yield caps
        return
    p = pats[0]
    if p.src is None:              # a leaf pattern matches one way or none: no generator
        caps = p._here(nodes[0], caps)
        if caps is not None:
            yield from _match_all(pats[1:], nodes[1:], caps)
        return
    for found in p.matches(nodes[0], caps):
        yield from _match_all(pats[1:], nodes[1:], found)


def _compile(pat):
    """A function node -> the first match of ``pat`` (or None), as Python source: nested
    tests in the order ``matches`` makes them (op, predicate, name, then the sources in
    ``pat.order``), a commutative node's two source orders as a loop (direct first), a name
    met again tested for identity; the first path through every test returns the captures."""
    env, lines, bound = {"COMM": COMMUTATIVE}, ["def first(v):"], {}

    def emit(depth, text):
        lines.append("    " * depth + text)

    def visit(p, var, depth, rest):
        k = len(env)
        if p.op is not None:
            env[f"I{k}"] = p.op
            emit(depth, f"if {var}.op in I{k}:")
            depth += 1
        if p.pred is not None:
            env[f"P{k}"] = p.pred
            emit(depth, f"if P{k}({var}):")
            depth += 1
        new = p.name is not None and p.name not in bound
        if p.name is not None and not new:
            emit(depth, f"if {var} is {bound[p.name]}:")
            depth += 1
        elif new:
            bound[p.name] = var
        if p.src is None:
            rest(depth)
        else:
            kids = [f"{var}_{i}" for i in range(len(p.src))]
            emit(depth, f"if len({var}.src) == {len(kids)}:")
            depth += 1
            if len(kids) == 2:      # both orders when the node's op is commutative
                a, b = f"{var}.src[0]", f"{var}.src[1]"
                emit(depth, f"for {kids[0]}, {kids[1]} in ((({a}, {b}), ({b}, {a})) if "
                            f"{var}.op in COMM else (({a}, {b}),)):")
                depth += 1
            elif kids:
                emit(depth, f"{', '.join(kids)}, = {var}.src")

            def chain(i, d):
                if i == len(kids):
                    rest(d)
                else:
                    j = p.order[i]
                    visit(p.src[j], kids[j], d, lambda dd: chain(i + 1, dd))
            chain(0, depth)
        if new:
            del bound[p.name]

    visit(pat, "v", 1, lambda d: emit(d, "return {" + ", ".join(
        f"{name!r}: {var}" for name, var in bound.items()) + "}"))
    emit(1, "return None")
    exec("\n".join(lines), env)          # noqa: S102  (source built above from the pattern)
    return env["first"]


def _lift(p):
    return p if isinstance(p, Pat) else Pat.const(p)


def P(op, *src, name=None, pred=None):
    """Pattern for ``op`` with source patterns ``src`` (numbers match uniform constants)."""
    return Pat(op, tuple(_lift(s) for s in src), name, pred)


def uniform_value(n):
    """The common value of a constant (or a broadcast constant) whose elements are all equal."""
    while n.op is Op.BROADCAST_TO or n.op is Op.RESHAPE:
        n = n.src[0]
    return n.arg.uniform if n.op is Op.CONST else None


class Rule:
    """``name`` (the identity it applies, e.g. "x * 1 -> x"), a pattern and a rewrite."""

    __slots__ = ("name", "pat", "fn")

    def __init__(self, name, pat, fn):
        self.name, self.pat, self.fn = name, pat, fn

    def apply(self, node):
        caps = {}
        if not self.pat.match(node, caps):
            return None
        return self.fn(node, **caps)

    def apply_fitting(self, node):
        """``apply`` for a node whose ops ``pat._may_match`` accepts."""
        found = self.pat.first(node)
        return None if found is None else self.fn(node, **found)


class RuleSet:
    """Named, composable (with ``+``) collection of rules, indexed by the root op.

    ``settled`` remembers the nodes where no rule fired, with the single_use answers the
    rules got there (see ``Rewriter._settled``): a rule is a function of the node and of
    those answers, so passes and later rewrites with the same rule set skip such nodes
    instead of matching every rule again (a pass then costs the changed nodes, and
    prepare's second simplify of an already simplified graph costs a walk)."""

    def __init__(self, name, rules):
        self.name = name
        self.rules = list(rules)
        self.settled = weakref.WeakKeyDictionary()
        self.by_op = {}
        for r in self.rules:
            for op in (r.pat.op or Op):
                self.by_op.setdefault(op, []).append(r)
        self._fitting = {}

    def fitting(self, node):
        """The rules whose pattern fits the ops of ``node`` and of its sources, in order:
        the only ones that can match (computed once per such signature)."""
        key = (node.op,) + tuple([s.op for s in node.src])
        found = self._fitting.get(key)
        if found is None:
            found = self._fitting[key] = [r for r in self.by_op.get(node.op, ())
                                          if r.pat._may_match(node)]
        return found

    def __add__(self, other):
        return RuleSet(f"{self.name}+{other.name}", self.rules + other.rules)

    def __iter__(self):
        return iter(self.rules)

    def __len__(self):
        return len(self.rules)


def fit(new, old):
    """Make a replacement take the shape and dtype of the node it replaces."""
    from . import frontend as F
    if new.dtype != old.dtype:
        new = F.cast(new, old.dtype)
    if new.shape != old.shape:
        if broadcast_shapes(new.shape, old.shape) is None:
            raise AssertionError(f"a rule changed {label(old)} {old.shape} into {label(new)} "
                                 f"{new.shape}")
        new = F.broadcast_to(new, old.shape)
    return new


CYCLE = "rule cycle stopped"
"""Trace entry of a chain of rules that came back to a node it had already rewritten."""

_local = threading.local()


def _active():
    """The rewriters running now in this thread (innermost last), for single_use(): the
    answers a rule gets are recorded in its rewriter (RuleSet.settled), so a rewrite in
    another thread must neither answer nor record them."""
    stack = getattr(_local, "stack", None)
    if stack is None:
        stack = _local.stack = []
    return stack


def single_use(node):
    """True when ``node`` has at most one consumer in the graph being rewritten.

    Rules that pull work out of a node (x * (y * c) -> c * (x * y)) use it so that they do not
    duplicate work a shared node already does. Nodes built by rules count as single use.
    """
    active = _active()
    if not active:
        return True
    rw = active[-1]
    rw.asked = True
    answer = rw.uses.get(node, 1) <= 1
    if rw.log is not None:
        rw.log.append((node, answer))
    return answer


def count_uses(outputs, order=None):
    """Number of consumers of each node (an output counts as one use); ``order``: the
    nodes of ``outputs`` if already known."""
    uses = {}
    for n in toposort(outputs) if order is None else order:
        for s in n.src:
            uses[s] = uses.get(s, 0) + 1
    for o in outputs:
        uses[o] = uses.get(o, 0) + 1
    return uses


def _segments(outputs):
    """``toposort(outputs)`` cut into the nodes first reached from each output: what a
    Rewriter's walk from each output finds still pending in turn, unless a rule's
    normalization took a node of a later output's segment early (see ``_normalize_all``)."""
    seen, segments = set(), []
    for root in outputs:
        order = []
        segments.append(order)
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.src))]
        while stack:
            node, it = stack[-1]
            for s in it:
                if s not in seen:
                    seen.add(s)
                    stack.append((s, iter(s.src)))
                    break
            else:
                stack.pop()
                order.append(node)
    return segments


def _normalize_all(rw, outputs, segments):
    """``[rw.normalize(o) for o in outputs]``, with each output's pending nodes taken from
    the walk already made (one walk per pass, not two) when none of them was normalized
    early (then the Rewriter's own walk would find exactly that segment)."""
    out = []
    for root, seg in zip(outputs, segments):
        if seg and rw.done.keys().isdisjoint(seg):
            out.append(rw.normalize(root, seg))
        else:
            out.append(rw.normalize(root))
    return out


def _rebuilt(n, src):
    """``n`` over the normal forms ``src`` of its sources; when they keep their shapes and
    dtypes (the usual case) so does the node, and its shape is not inferred again."""
    same = all(a.shape == b.shape and a.dtype == b.dtype for a, b in zip(src, n.src))
    return Node.make(n.op, src, n.arg, like=n if same else None)


class Rewriter:
    """Bottom-up normalization of graphs under a rule set, with memo and an optional trace."""

    def __init__(self, rules, trace=None, budget=None, uses=None, known=None):
        self.rules, self.trace, self.budget = rules, trace, budget
        self.done = {}          # node -> its normal form
        self.uses = dict(uses or {})
        self.open = set()       # nodes whose rule chain is being followed now (cycle guard)
        # rules.settled (weak, kept across rewrites) and ``known``, a plain dict of the same
        # records for the passes of one rewrite (a weak lookup costs a weakref per node)
        self.known = {} if known is None else known
        self.log = None         # the single_use answers of the node being matched
        self.asked = False      # did this pass depend on consumer counts (single_use)?

    def _settled(self, m):
        """Did no rule fire at ``m`` before, with the rules asking single_use the questions
        they would ask now and getting the same answers? Then none fires now either."""
        rec = self.known.get(m)
        if rec is None:
            rec = self.rules.settled.get(m)
            if rec is None:
                return False
            self.known[m] = rec
        if not rec:
            return True
        self.asked = True           # settled by consumer counts: they count as asked
        uses = self.uses
        return all((uses.get(m if q is None else q, 1) <= 1) is a for q, a in rec)

    def _pending(self, root):
        """Nodes under ``root`` not yet normalized, sources first (stops at normalized ones)."""
        done, order, seen = self.done, [], set()
        if root in done:
            return order
        stack = [(root, iter(root.src))]
        seen.add(root)
        while stack:
            node, it = stack[-1]
            for s in it:
                if s not in seen and s not in done:
                    seen.add(s)
                    stack.append((s, iter(s.src)))
                    break
            else:
                stack.pop()
                order.append(node)
        return order

    def normalize(self, root, pending=None):
        """The normal form of ``root``. ``pending``: its nodes not yet normalized, sources
        first, when the caller knows them (else found by a walk)."""
        done = self.done
        for n in self._pending(root) if pending is None else pending:
            src = tuple([done[s] for s in n.src])
            m = n if src == n.src else _rebuilt(n, src)   # == is `is` on nodes
            if m is n and n not in done and n not in self.open and self._settled(n):
                done[n] = n           # what _at_root would conclude, without matching again
                continue
            if m is not n:
                self.uses[m] = self.uses.get(m, 0) + self.uses.get(n, 1)
            out = self._at_root(m)
            if out is not m:
                self.uses[out] = self.uses.get(out, 0) + self.uses.get(m, 1)
            self.done[n] = out
        return self.done[root]

    def _at_root(self, m):
        if m in self.done:
            return self.done[m]
        if m in self.open:
            return self._cycle(m)
        self.open.add(m)
        try:
            return self._first_rule(m)
        finally:
            self.open.discard(m)

    def _cycle(self, m):
        """A chain of rules led back to ``m``: keep ``m`` as it is (every node of the chain
        has the same value, so stopping anywhere is correct) and record the cycle in the
        trace, where the rule-set tests look for it. Rules should never cycle; this guard
        keeps a rule-set bug from becoming a RecursionError on a valid graph."""
        if self.trace is not None:
            self.trace.append((CYCLE, label(m, 6), label(m, 6)))
        return m

    def _first_rule(self, m):
        if self._settled(m):
            self.done[m] = m
            return m
        self.log = log = []
        for rule in self.rules.fitting(m):
            new = rule.apply_fitting(m)
            if new is None or new is m:
                continue
            new = fit(new, m)
            if new is m:
                continue
            if self.trace is not None:
                self.trace.append((rule.name, label(m, 6), label(new, 6)))
            if self.budget is not None:
                self.budget -= 1
                if self.budget < 0:
                    raise RuntimeError(f"rewrite did not terminate (last rule: {rule.name})")
            self.log = None
            # the replacement takes over m's consumers once it is normalized (below and in
            # normalize); a node the rule built has none of its own before that (counting
            # one made a merged node look shared to single_use). Nodes inside it keep the
            # default: one consumer, their parent in the replacement.
            self.uses.setdefault(new, 0)
            out = self.normalize(new)
            self.done[m] = out
            return out
        self.log = None
        # m itself as None: a record must not hold its weakly held key alive
        rec = self.known[m] = tuple((None if q is m else q, a) for q, a in log)
        self.rules.settled[m] = rec
        self.done[m] = m
        return m


def rewrite(outputs, rules, trace=None, max_firings=None, max_passes=8):
    """Normalize ``outputs`` (a list of nodes) under ``rules``; appends (rule, before, after)
    to ``trace`` when given.

    Passes repeat until the graph stops changing: each pass recounts the consumers of every
    node, so rules guarded by ``single_use`` see the graph the previous pass left.
    """
    outs, known = list(outputs), {}
    for _ in range(max_passes):
        segments = _segments(outs)
        uses = count_uses(outs, [n for seg in segments for n in seg])
        budget = max_firings if max_firings is not None else 100 * (len(uses) + 100)
        rw = Rewriter(rules, trace, budget, uses, known)
        _active().append(rw)
        try:
            new = _normalize_all(rw, outs, segments)
        finally:
            _active().pop()
        if all(a is b for a, b in zip(new, outs)):
            break
        outs = new
        # a pass normalizes every node after its sources, and each rule's result again: it
        # ends at a fixed point unless a rule's answer depended on the consumer counts
        # (single_use), which the pass changed. Then a pass over the new graph is needed.
        if not rw.asked:
            break
    return outs
