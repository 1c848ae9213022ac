"""Symbolic dimensions: sizes that are bound when a compiled function is called.

``None`` in a declared shape creates a fresh anonymous ``Dim``; a string creates (or reuses) the
named ``Dim`` of that name, so ``shape=("batch", 64)`` in two vars shares one symbol. When an op
needs two dims to be equal (elementwise ops, matmul's inner dim...), the output keeps the first
one; ``DimConstraints`` re-derives those equalities from a graph so that call-time checks can
bind each class of equal dims to one size.
"""
import itertools
import uuid
import weakref

_counter = itertools.count(1)
_named = {}
_ORIGIN = uuid.uuid4().hex                 # this process, for pickled anonymous dims
_anonymous = weakref.WeakValueDictionary()     # (origin, uid) -> Dim, alive in this process
_foreign = weakref.WeakKeyDictionary()         # Dim loaded from elsewhere -> (origin, uid)


class Dim:
    """A symbolic size. Anonymous dims are distinct objects; named dims are interned by name."""

    __slots__ = ("name", "uid", "__weakref__")

    def __init__(self, name, uid):
        self.name = name
        self.uid = uid
        if name is None:
            _anonymous[(_ORIGIN, uid)] = self

    def __repr__(self):
        return self.name if self.name is not None else "None"

    def __reduce__(self):
        """Named dims re-intern by name; an anonymous dim loads as itself in the process that
        made it, and as one fresh dim per (process, dim) elsewhere (never merged with an
        unrelated dim that happens to have the same number)."""
        if self.name is not None:
            return dim, (self.name,)
        return _load_anonymous, _foreign.get(self, (_ORIGIN, self.uid))


def _load_anonymous(origin, uid):
    d = _anonymous.get((origin, uid))
    if d is None:
        d = Dim(None, next(_counter))
        _anonymous[(origin, uid)] = d
        _foreign[d] = (origin, uid)
    return d


def dim(name=None):
    """Return a fresh anonymous dim (``name=None``) or the interned dim called ``name``."""
    if name is None:
        return Dim(None, next(_counter))
    if name not in _named:
        _named[name] = Dim(name, next(_counter))
    return _named[name]


def is_symbolic(d):
    return isinstance(d, Dim)


def is_concrete(shape):
    return all(isinstance(d, int) for d in shape)


def normalize_shape(shape, what="shape"):
    """Turn a user shape (ints, None, names) into a tuple of ints and Dims."""
    if shape is None:
        return ()
    if isinstance(shape, (int, str, Dim)) or shape is None:
        shape = (shape,)
    out = []
    for d in shape:
        if d is None or isinstance(d, str):
            out.append(dim(d))
        elif isinstance(d, Dim):
            out.append(d)
        elif isinstance(d, (int,)) or hasattr(d, "__index__"):
            n = int(d)
            if n < 0:
                raise ValueError(f"{what} {tuple(shape)!r}: negative size {n}")
            out.append(n)
        else:
            raise TypeError(f"{what} {tuple(shape)!r}: a dim must be an int, None or a name, "
                            f"got {type(d).__name__}")
    return tuple(out)


def broadcast_dims(a, b):
    """The broadcast of two dims, or None when they cannot broadcast.

    int/int follows numpy; a symbolic dim against 1 stays symbolic; against n != 1 it becomes n
    (the symbol must then equal n at call time); two different symbols unify to the first.
    """
    if a == 1:
        return b
    if b == 1:
        return a
    if isinstance(a, int) and isinstance(b, int):
        return a if a == b else None
    if isinstance(a, int):
        return a
    return b if isinstance(b, int) else a


def broadcast_shapes(*shapes):
    """numpy broadcasting of shapes with symbolic dims; None when they do not broadcast."""
    ndim = max((len(s) for s in shapes), default=0)
    out = []
    for axis in range(ndim):
        d = 1
        for s in shapes:
            k = axis - (ndim - len(s))
            if k >= 0:
                d = broadcast_dims(d, s[k])
                if d is None:
                    return None
        out.append(d)
    return tuple(out)


def shape_str(shape):
    """Render a shape as the user wrote it: (None, 64), ('batch', 10) -> (batch, 10)."""
    inner = ", ".join(repr(d) for d in shape)
    return f"({inner},)" if len(shape) == 1 else f"({inner})"


class DimConstraints:
    """Union-find over dims and ints: which symbols must have equal sizes at call time."""

    def __init__(self):
        self.parent = {}
        self.value = {}     # root -> (int size, reason) when a class is pinned to a size

    def find(self, d):
        path = []
        while self.parent.get(d, d) is not d:
            path.append(d)
            d = self.parent[d]
        for p in path:
            self.parent[p] = d
        return d

    def unify(self, a, b, reason):
        """Record a == b (each a Dim or an int); 1 against anything is a broadcast, not a link."""
        if a == 1 or b == 1 or a is b:
            return
        if isinstance(a, int) and isinstance(b, int):
            return
        if isinstance(a, int):
            a, b = b, a
        ra = self.find(a)
        if isinstance(b, int):
            self.value.setdefault(ra, (b, reason))
            return
        rb = self.find(b)
        if ra is rb:
            return
        self.parent[rb] = ra
        if rb in self.value:
            self.value.setdefault(ra, self.value.pop(rb))
