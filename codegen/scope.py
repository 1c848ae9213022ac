"""What the fused stages of one loop body share while it is rendered: common subexpressions,
index checks, single-use values inlined, and the ``# node`` tags of the emitted lines.

A ``Scope`` is one straight-line body (a row of a nest, or one inner loop): an SSA value one
stage computed is reused by a later stage of the same body (``sc1[i0] + b`` once, not once per
stage) until some stage stores to a buffer (a store may alias what the value read, through a
view or a scratch buffer, so every value that reads a buffer is forgotten); an index check is
done once per row (``Rows``); a check whose label is a kernel input read at outer indices only
moves before the inner loop. With the shared helpers of helpers.py this halves the emitted
XOR kernel (95 -> 46 lines) and takes W1 from 133 to 75 lines; Numba's compile time follows
its IR, which these passes shrink only where a value or check was repeated (inlining a value
into its single use changes the lines, not the IR).

>>> s = Scope(Rows(), inner="i1", inputs={"a_y"}, extent="10")
>>> s.value("(a[i0] + b[i1])", "s1_0"), s.value("(a[i0] + b[i1])", "s2_0")
('s1_0', 's1_0')
>>> s.check("if a_y[i0] < 0 or a_y[i0] >= 10: return 1"), s.hoisted
(False, ['if a_y[i0] < 0 or a_y[i0] >= 10: return 1'])
"""
import bisect
import re
from collections import Counter

_BUFFER = re.compile(r"([A-Za-z_]\w*)\[")
_STORE = re.compile(r"^\s*[A-Za-z_]\w*\[[^=]*\]\s*\+?= ")
_NAME = re.compile(r"\bs\d+_\d+\b")
_SSA = re.compile(r"^\s*(s\d+_\d+) = (.*)$")
_CHECK = re.compile(r"^if (.+) < 0 or \1 >= (.+): return 1$")


class Rows:
    """The index checks done so far in the current row of a nest (valid for the rest of it)."""

    def __init__(self):
        self.done = set()


class Scope:
    """One loop body: ``value`` reuses an SSA name for code already computed in it, ``check``
    says whether an index check must be emitted here (False: done before or hoisted into
    ``hoisted``), ``stored`` forgets the values that read buffers.

    ``inner``: the inner loop's variable (None: the body is a row itself); ``inputs``: names of
    kernel inputs (never written by a nest); ``extent``: the inner loop's trip count as text
    (a check is hoisted only out of a loop known to run: a positive constant)."""

    def __init__(self, rows, inner=None, inputs=(), extent=None):
        self.rows, self.inner, self.inputs = rows, inner, set(inputs)
        self.runs = extent is not None and extent.isdigit() and int(extent) > 0
        self.codes = {}          # code -> SSA name
        self.reads = {}          # SSA name -> reads a buffer (directly or through a value)
        self.local = set()       # checks done inside this body
        self.hoisted = []        # checks to emit before the inner loop

    def value(self, code, name):
        """The name holding ``code``: an earlier one, or ``name`` (then remembered)."""
        if code in self.codes:
            return self.codes[code]
        self.codes[code] = name
        self.reads[name] = bool(_BUFFER.search(code)) or any(
            self.reads.get(w, False) for w in re.findall(r"\w+", code))
        return name

    def check(self, line):
        """Whether the check ``line`` goes here (it is not repeated or moved out)."""
        if line in self.rows.done or line in self.local:
            return False
        if self.inner is None:
            self.rows.done.add(line)
            return True
        m = _CHECK.match(line)
        label = m.group(1) if m else ""
        ref = _BUFFER.match(label)
        if self.runs and ref and ref.group(1) in self.inputs and label.endswith("]") and \
                self.inner not in re.findall(r"\w+", label) and label.count("[") == 1 and \
                not _NAME.search(label):
            self.rows.done.add(line)
            self.hoisted.append(line)
            return False
        self.local.add(line)
        return True

    def stored(self, lines):
        """After a stage's ``lines``: if one stores to a buffer, forget every value that read
        one."""
        if not any(_STORE.match(x) for x in lines):
            return
        self.codes = {c: n for c, n in self.codes.items() if not self.reads[n]}


def inline_once(lines):
    """``lines`` ([text, tag] pairs of one loop body) with every SSA assignment
    ``sK_J = code`` whose name is used exactly once replaced by its code at the use, unless
    a store lies between them. The codes are atoms (parenthesized or calls), so precedence
    is kept; a pure expression moved past checks and other values computes the same.

    >>> [t for t, _ in inline_once([["s1_0 = (a[i] + b)", ""], ["c[i] = f(s1_0)", ""]])]
    ['c[i] = f((a[i] + b))']
    """
    out = [list(x) for x in lines]
    names = [_NAME.findall(t) for t, _ in out]
    counts = Counter(n for line in names for n in line)
    ssa = [_SSA.match(t) for t, _ in out]
    # the line using each name once (SSA: a name is used after its definition, and a
    # definition only moves its code into that later line, so uses found now stay put)
    defined, use = set(), {}
    for j, line in enumerate(names):
        for n in line:
            if n in defined and counts[n] == 2:
                use.setdefault(n, j)
        if ssa[j]:
            defined.add(ssa[j].group(1))
    if not use:
        return out
    stores = [j for j, (t, _) in enumerate(out) if _STORE.match(t)]     # sorted
    dead = set()
    for k, m in enumerate(ssa):
        j = use.get(m.group(1)) if m else None
        if j is None:
            continue
        first = bisect.bisect_right(stores, k)
        if first < len(stores) and stores[first] < j:
            continue                                   # a store in between
        a, b = _span(m.group(1), out[j][0])
        was = bool(_STORE.match(out[j][0]))
        out[j][0] = out[j][0][:a] + m.group(2) + out[j][0][b:]
        ssa[j] = _SSA.match(out[j][0]) if ssa[j] else None
        if bool(_STORE.match(out[j][0])) != was:       # the code went into a store's index
            (stores.remove(j) if was else bisect.insort(stores, j))
        dead.add(k)
    return [x for k, x in enumerate(out) if k not in dead]


def _span(name, text):
    """Where the SSA name ``name`` stands in ``text`` as a whole word, or None (one shared
    pattern: a pattern compiled per name cost ~0.1 ms each, 0.7 s for a 10,000-op graph)."""
    for m in _NAME.finditer(text):
        if m.group() == name:
            return m.span()
    return None


def node_tag(node):
    """A short name of the graph node a line computes, for its ``# node`` comment.

    >>> import symdiff as sd
    >>> node_tag(sd.sigmoid(sd.var("x", ("batch", 2))))
    'sigmoid [batch, 2]'
    """
    if isinstance(node, tuple):
        kind, x = node
        return f"{kind} {node_tag(x)}" if hasattr(x, "op") else f"{kind} {x}"
    # is_leaf first: the name of an inner node is a printed expression (0.8 s per 10,000)
    label = node.name if node.is_leaf and getattr(node, "name", None) else \
        node.op.name.lower()
    return f"{label} [{', '.join(str(d) for d in node.shape)}]"
