"""The graph IR: immutable, hash-consed nodes.

``Node(op, src, arg)`` is built only through ``Node.make``, which looks the structure up in a
weak cache first: equal structure is the same object, so common subexpressions are shared for
free and ``dict[Node, ...]`` memo tables are safe. Every node carries its shape (ints and
symbolic ``Dim``s) and dtype, inferred in ``shapes.py`` when the node is made. Traversals are
iterative so that graphs thousands of layers deep work.
"""
import hashlib
import weakref

import numpy as np

from . import dtypes as _dt
from .dims import is_concrete, shape_str
from .ops import LEAVES, Op
from .printing import label, to_text
from .shapes import infer

_cache = weakref.WeakValueDictionary()


class VarInfo:
    """The identity of a VAR leaf: its name, declared shape and dtype, and whether it is a param."""

    __slots__ = ("name", "shape", "dtype", "trainable", "_key")

    def __init__(self, name, shape, dtype, trainable):
        self.name, self.shape, self.dtype, self.trainable = name, shape, dtype, trainable
        self._key = (name, shape, dtype, trainable)

    def __eq__(self, other):
        return isinstance(other, VarInfo) and self._key == other._key

    def __hash__(self):
        return hash(self._key)

    def __reduce__(self):
        return VarInfo, (self.name, self.shape, self.dtype, self.trainable)

    def __repr__(self):
        kind = "param" if self.trainable else "var"
        return f"{kind}({self.name!r}, {shape_str(self.shape)}, {self.dtype})"


class ConstValue:
    """A read-only array compared and hashed by dtype, shape and bytes (so equal constants merge)."""

    __slots__ = ("value", "_key", "_hash", "_uniform", "_identity")

    def __init__(self, value):
        value = np.array(value, copy=True)
        value.setflags(write=False)
        self.value = value
        self._key = (value.dtype.str, value.shape, value.tobytes())
        self._hash = hash(self._key)
        self._uniform = _UNSET
        self._identity = _UNSET

    @property
    def identity(self):
        """True for a square identity matrix (the unit seed of a Jacobian)."""
        if self._identity is _UNSET:
            v = self.value
            self._identity = bool(v.ndim == 2 and v.shape[0] == v.shape[1] and v.size and
                                  np.array_equal(v, np.eye(v.shape[0], dtype=v.dtype)))
        return self._identity

    @property
    def uniform(self):
        """The common value (a Python scalar) when every element is equal, else None."""
        if self._uniform is _UNSET:
            v = self.value
            first = v.flat[0] if v.size else None
            ok = v.size and (np.array_equal(v, np.full_like(v, first), equal_nan=v.dtype.kind == "f"))
            self._uniform = first.item() if ok else None
        return self._uniform

    def __eq__(self, other):
        return isinstance(other, ConstValue) and self._key == other._key

    def __hash__(self):
        return self._hash

    def __reduce__(self):
        return ConstValue, (self.value,)

    def __repr__(self):
        return f"ConstValue({self.value!r})"


_UNSET = object()


class Node:
    """One operation in a symbolic expression graph; use the operators or ``symdiff`` functions.

    >>> import symdiff as sd
    >>> x = sd.var("x", shape=(3,))
    >>> (x * 2 + 1) is (x * 2 + 1)      # hash-consed: equal structure is one object
    True
    """

    # digest and shape_digest memoized on the node (a weak-keyed dict lookup cost a weakref
    # per call: a tenth of simplify's time on 10,000-op graphs)
    __slots__ = ("op", "src", "arg", "shape", "dtype", "_memo_digest", "_memo_shape", "__weakref__")

    # NumPy functions on nodes build graphs (numpy_dispatch.py has the table)
    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        from .numpy_dispatch import array_ufunc
        return array_ufunc(ufunc, method, inputs, kwargs)

    def __array_function__(self, func, types, args, kwargs):
        from .numpy_dispatch import array_function
        return array_function(func, args, kwargs)

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"a symbolic node has no value to convert to an array: "
                        f"`{label(self)}`; evaluate it with sd.evaluate or sd.compile")

    @staticmethod
    def make(op, src=(), arg=None, like=None):
        """The unique node for (op, src, arg), built if needed; raises ShapeError/DTypeError.
        ``like``: a node of the same op and arg whose sources had the shapes and dtypes of
        ``src``, so this one has its shape and dtype (``infer`` reads nothing else)."""
        key = (op, src, arg)
        node = _cache.get(key)
        if node is None:
            shape, dtype = (like.shape, like.dtype) if like is not None else infer(op, src, arg)
            node = object.__new__(Node)
            node.op, node.src, node.arg, node.shape, node.dtype = op, src, arg, shape, dtype
            node._memo_digest = node._memo_shape = None
            _cache[key] = node
        return node

    def __init__(self, *args, **kwargs):
        raise TypeError("build nodes with sd.var/sd.param/sd.const and operators, not Node()")

    # --- introspection -------------------------------------------------------------------
    @property
    def ndim(self):
        return len(self.shape)

    @property
    def name(self):
        """The name of a var/param, else a short expression."""
        return self.arg.name if self.op is Op.VAR else label(self)

    @property
    def is_leaf(self):
        return self.op in LEAVES

    @property
    def trainable(self):
        return self.op is Op.VAR and self.arg.trainable

    @property
    def size(self):
        """Number of elements (int), or None when a dim is symbolic."""
        return int(np.prod(self.shape, dtype=np.int64)) if is_concrete(self.shape) else None

    def __repr__(self):
        return f"<{self.op.value} {shape_str(self.shape)} {self.dtype}: {label(self)}>"

    def __str__(self):
        return to_text(self)

    def __bool__(self):
        raise TypeError(f"the truth value of a symbolic node is undefined: {label(self)}")

    def __iter__(self):
        raise TypeError(f"a symbolic node is not iterable: {label(self)}")

    def __reduce__(self):
        """Pickled as the flat list of its cone (no recursion: deep graphs pickle), rebuilt
        through ``Node.make``, so loading into a process that holds an equal graph returns its
        nodes (hash-consing)."""
        order = toposort([self])
        index = {n: i for i, n in enumerate(order)}
        return _rebuild_graph, ([(n.op.value, tuple(index[s] for s in n.src), n.arg)
                                 for n in order],)

    # --- operators (see frontend.py for the functions they call) -------------------------
    def __add__(self, o): return _fe.add(self, o)
    def __radd__(self, o): return _fe.add(o, self)
    def __sub__(self, o): return _fe.sub(self, o)
    def __rsub__(self, o): return _fe.sub(o, self)
    def __mul__(self, o): return _fe.mul(self, o)
    def __rmul__(self, o): return _fe.mul(o, self)
    def __truediv__(self, o): return _fe.div(self, o)
    def __rtruediv__(self, o): return _fe.div(o, self)
    def __pow__(self, o): return _fe.pow(self, o)
    def __rpow__(self, o): return _fe.pow(o, self)
    def __matmul__(self, o): return _fe.matmul(self, o)
    def __rmatmul__(self, o): return _fe.matmul(o, self)
    def __neg__(self): return _fe.neg(self)
    def __pos__(self): return self
    def __abs__(self): return _fe.abs(self)
    def __lt__(self, o): return _fe.less(self, o)
    def __le__(self, o): return _fe.less_equal(self, o)
    def __gt__(self, o): return _fe.greater(self, o)
    def __ge__(self, o): return _fe.greater_equal(self, o)
    __hash__ = object.__hash__    # == stays identity: nodes are dict keys; use sd.equal

    @property
    def T(self):
        """Reverse all axes, as numpy's ``.T``."""
        return _fe.transpose(self)

    @property
    def mT(self):
        """Swap the last two axes."""
        return _fe.matrix_transpose(self)

    def reshape(self, *shape):
        return _fe.reshape(self, shape[0] if len(shape) == 1 else shape)

    def __getitem__(self, key):
        """NumPy indexing: ints, slices, None, ... and one integer array (see indexing.py)."""
        from .indexing import getitem
        return getitem(self, key)

    def astype(self, dtype):
        return _fe.cast(self, dtype)

    def sum(self, axis=None, keepdims=False):
        return _fe.sum(self, axis, keepdims)

    def max(self, axis=None, keepdims=False):
        return _fe.max(self, axis, keepdims)


def _rebuild_graph(flat):
    """The last node of a graph pickled by ``Node.__reduce__``."""
    nodes = []
    for op, src, arg in flat:
        nodes.append(Node.make(Op(op), tuple(nodes[i] for i in src), arg))
    return nodes[-1]


def toposort(outputs, children=None):
    """All nodes reachable from ``outputs``, every node after its sources (iterative DFS).

    ``children(node)`` names what a node depends on, when that is more than its sources: the
    file format of ``persist.py`` also orders a loop's step graph before the loop, and it
    numbers SymPy expressions (``children=lambda e: e.args``) with this same traversal.
    """
    seen, order = set(), []
    for root in outputs:
        if root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.src if children is None else children(root)))]
        while stack:
            node, it = stack[-1]
            for s in it:
                if s not in seen:
                    seen.add(s)
                    stack.append((s, iter(s.src if children is None else children(s))))
                    break
            else:
                stack.pop()
                order.append(node)
    return order


def substitute(outputs, mapping):
    """Rebuild ``outputs`` with each key of ``mapping`` replaced by its value (shapes
    re-inferred). Where a replacement fixes a symbolic dim of the node it replaces (a var of
    shape (None, 3) by one of shape (5, 3)), that dim becomes the size everywhere: in reshape
    and broadcast targets and in ``size_of`` leaves.

    >>> import symdiff as sd
    >>> x = sd.var("x", (None, 3))
    >>> y = sd.mean(x, axis=0).reshape((1, 3))
    >>> [z] = sd.substitute([y], {x: sd.var("x5", (5, 3))})
    >>> z.shape
    (1, 3)
    """
    new = dict(mapping)
    dims = _fixed_dims(mapping)
    for n in toposort(outputs):
        if n in new:
            continue
        if n.op is Op.DIM and n.arg[0] in dims:             # size_of a now fixed dim
            new[n] = _fe.const(dims[n.arg[0]], n.dtype)
            continue
        src = tuple(new[s] for s in n.src)
        arg = _map_dims(n.arg, dims) if dims and n.op is not Op.VAR else n.arg
        same = arg is n.arg and all(a is b for a, b in zip(src, n.src))
        new[n] = n if same else Node.make(n.op, src, arg)
    return [new[o] for o in outputs]


def _fixed_dims(mapping):
    """{symbolic dim: its replacement} from keys and values of equal rank."""
    dims = {}
    for k, v in mapping.items():
        if isinstance(k, Node) and isinstance(v, Node) and k.ndim == v.ndim:
            for d, e in zip(k.shape, v.shape):
                if not isinstance(d, int) and d is not e:
                    dims[d] = e
    return dims


def _map_dims(arg, dims):
    """``arg`` with the dims of ``dims`` replaced (the same object when nothing changes)."""
    if isinstance(arg, tuple):
        out = tuple(_map_dims(a, dims) for a in arg)
        return arg if all(a is b for a, b in zip(out, arg)) else out
    if isinstance(arg, (int, float, str, bool, type(None))):
        return arg
    try:
        return dims.get(arg, arg)
    except TypeError:                     # unhashable: not a dim
        return arg


def leaves(outputs, op=Op.VAR):
    """The leaves of kind ``op`` reachable from ``outputs``, in topological order."""
    return [n for n in toposort(outputs) if n.op is op]


def count_ops(outputs):
    """Number of distinct operation nodes (leaves excluded) in the graph(s) after CSE.

    >>> import symdiff as sd
    >>> x = sd.var("x", shape=(3,))
    >>> sd.count_ops(sd.exp(x) + sd.exp(x))    # exp(x) is shared: one exp, one add
    2
    """
    outs = flatten(outputs)
    return sum(1 for n in toposort(outs) if n.op not in LEAVES)


def flatten(structure):
    """Nodes of a node / list / tuple / dict structure, in order (None entries skipped)."""
    if isinstance(structure, Node):
        return [structure]
    if isinstance(structure, dict):
        structure = list(structure.values())
    if isinstance(structure, (list, tuple)):
        out = []
        for s in structure:
            out.extend(flatten(s))
        return out
    if structure is None:
        return []
    raise TypeError(f"expected a symdiff node or a list/tuple/dict of nodes, "
                    f"got {type(structure).__name__}")


def unflatten(structure, values):
    """Rebuild ``structure`` with its nodes replaced, in order, by ``values``."""
    return _rebuild(structure, iter(values))


def _rebuild(s, it):
    # a plain recursive function, not a closure: a self-referencing closure is a reference
    # cycle that would keep ``values`` (e.g. a kernel's output arrays) alive until gc runs
    if isinstance(s, Node):
        return next(it)
    if isinstance(s, dict):
        return {k: _rebuild(v, it) for k, v in s.items()}
    if isinstance(s, (list, tuple)):
        return type(s)(_rebuild(v, it) for v in s)
    return s


def is_float_node(n):
    return _dt.is_float(n.dtype)


def _arg_bytes(n):
    if n.op is Op.CONST:
        return repr(n.arg._key[:2]).encode() + hashlib.blake2b(n.arg._key[2], digest_size=16).digest()
    if n.op is Op.VAR:
        a = n.arg
        return repr((a.name, tuple(_dim_key(d) for d in a.shape), a.dtype, a.trainable)).encode()
    return repr(_dim_args(n.arg)).encode()


def _dim_key(d):
    return d if isinstance(d, int) else (d.name, d.uid)


def _dim_args(arg, dim_key=_dim_key):
    if isinstance(arg, tuple):
        return tuple(_dim_args(a, dim_key) for a in arg)
    if hasattr(arg, "_key"):          # e.g. the ScalarFunction of an Op.FN node
        return arg._key
    return arg if isinstance(arg, (int, float, str, bool, type(None))) else dim_key(arg)


def digest(node):
    """A structural fingerprint of ``node`` that is stable across runs (not Python's hash())."""
    return node._memo_digest or _digest(node, "_memo_digest", _arg_bytes)


def _shape_bytes(n):
    """A node's arg without names: a var's shape (symbolic dims as "?"), dtype and role; a
    constant array's shape and dtype (a scalar keeps its value: kernels compile it in)."""
    if n.op is Op.VAR:
        a = n.arg
        dims = tuple(d if isinstance(d, int) else "?" for d in a.shape)
        return repr((dims, a.dtype, a.trainable)).encode()
    if n.op is Op.CONST:
        return repr((n.shape, n.dtype)).encode() if n.ndim else _arg_bytes(n)
    return repr(_dim_args(n.arg, lambda d: "?")).encode()


def shape_digest(node):
    """``digest`` blind to the names of vars and dims and to the values of constant arrays:
    equal for graphs that differ only in those (the order of commutative operands that
    ``simplify`` picks by it then does not depend on names, and neither does the kernel).

    >>> import symdiff as sd
    >>> shape_digest(sd.var("x", ("n", 2)) * 2) == shape_digest(sd.var("w", ("m", 2)) * 2)
    True
    """
    return node._memo_shape or _digest(node, "_memo_shape", _shape_bytes)


def _digest(node, attr, arg_bytes):
    """The digest memoized in the node attribute ``attr``, computing the missing ones: sources
    first; the walk stops at memoized nodes, so a node built over a digested graph costs its
    own new nodes only, not its whole cone."""
    stack = [node]
    while stack:
        n = stack[-1]
        if getattr(n, attr) is not None:
            stack.pop()
            continue
        todo = [s for s in n.src if getattr(s, attr) is None]
        if todo:
            stack.extend(todo)
            continue
        stack.pop()
        h = hashlib.blake2b(n.op.value.encode(), digest_size=16)
        h.update(arg_bytes(n))
        for s in n.src:
            h.update(getattr(s, attr))
        setattr(n, attr, h.digest())
    return getattr(node, attr)


from . import frontend as _fe  # noqa: E402  (operators call frontend; it imports Node from here)
