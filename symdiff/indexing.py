"""``x[key]``: NumPy indexing on nodes, lowered to slice, flip, gather and reshape primitives.

Supported: ints, slices (any step, negative bounds), ``None``/``np.newaxis`` and ``...`` on any
rank; and one integer array (a list, a NumPy array or an int64 node) along one axis, which
is NumPy's advanced indexing with a single array (ints next to it count as in NumPy). A
symbolic dim accepts ``:`` only; use ``sd.take`` for computed indices.

>>> import symdiff as sd, numpy as np
>>> x = sd.var("x", (4, 3))
>>> sd.evaluate(x[::-2, None, 1], {x: np.arange(12.0).reshape(4, 3)}).tolist()
[[10.0], [4.0]]
"""
import numpy as np

from .dims import Dim, shape_str
from .errors import ShapeError
from .frontend import reshape, transpose
from .graph import Node
from .tensor import flip, slice_axes, take


def _is_array(k):
    return isinstance(k, (Node, np.ndarray, list)) and not isinstance(k, (bool, np.bool_))


def _expand_ellipsis(key, ndim, where):
    if not isinstance(key, tuple):
        key = (key,)
    used = sum(1 for k in key if k is not None and k is not Ellipsis)
    if sum(1 for k in key if k is Ellipsis) > 1:
        raise IndexError(f"{where}: an index can only have a single ellipsis ('...')")
    if used > ndim:
        raise IndexError(f"{where}: too many indices: {used} for a {ndim}-d array")
    at = [j for j, k in enumerate(key) if k is Ellipsis]
    if at:
        return key[:at[0]] + (slice(None),) * (ndim - used) + key[at[0] + 1:]
    return key + (slice(None),) * (ndim - used)


def _slice_entry(k, d, axis, where):
    """(spec, flipped) of one slice on an axis of size d; spec as in ``slice_axes``."""
    if isinstance(d, Dim):
        if k == slice(None):
            return None, False
        raise ShapeError(f"{where}: axis {axis} has the symbolic size {d!r}; it can only be "
                         f"indexed with ':' (use sd.take with an index array)")
    start, stop, step = k.indices(d)
    size = len(range(start, stop, step))
    if size == 0:
        return (0, 1, 0), False
    if step > 0:
        return (start, step, size), False
    last = start + (size - 1) * step
    return (last, -step, size), size > 1


def _int_entry(k, d, axis, where):
    if isinstance(d, Dim):
        raise ShapeError(f"{where}: axis {axis} has the symbolic size {d!r}; an int index "
                         f"needs a concrete size (use sd.take)")
    i = int(k)
    if not -d <= i < d:
        raise IndexError(f"{where}: index {i} is out of bounds for axis {axis} with size {d}")
    return (i % d, 1, 1)


def getitem(x, key):
    """x[key] with NumPy semantics (see the module docstring)."""
    where = f"`{x.name}`{shape_str(x.shape)}[...]"
    key = _expand_ellipsis(key, x.ndim, where)
    if sum(1 for k in key if _is_array(k)) > 1:
        raise IndexError(f"{where}: only one integer array index is supported "
                         f"(use sd.take / sd.take_along_axis for more)")
    spec, flips, entries = [], [], []      # entries: ("new",) | (kind, axis of x)
    for k in key:
        if k is None:
            entries.append(("new", None))
            continue
        axis, d = len(spec), x.shape[len(spec)]
        if _is_array(k):
            spec.append(None)
            entries.append(("adv", axis))
        elif isinstance(k, slice):
            s, f = _slice_entry(k, d, axis, where)
            spec.append(s)
            flips += [axis] if f else []
            entries.append(("keep", axis))
        elif isinstance(k, (int, np.integer)) and not isinstance(k, (bool, np.bool_)):
            spec.append(_int_entry(k, d, axis, where))
            entries.append(("drop", axis))
        else:
            raise IndexError(f"{where}: unsupported index {k!r} (ints, slices, None, ... and "
                             f"one integer array are supported; boolean masks are not)")
    y = flip(slice_axes(x, spec), flips) if flips else slice_axes(x, spec)
    adv = next((a for kind, a in entries if kind == "adv"), None)
    nidx = 1
    if adv is not None:
        arr = next(k for k in key if _is_array(k))
        y = take(y, arr, adv)
        nidx = y.ndim - x.ndim + 1
    return _arrange(y, entries, adv, nidx)


def _arrange(g, entries, adv, nidx):
    """Drop the int axes, insert the None axes and, as NumPy does when the array and the
    ints are not adjacent in the key, put the array's dims first."""
    def gaxes(a):                           # axes of g that x's axis a became
        if adv is None or a < adv:
            return [a]
        return list(range(a, a + nidx)) if a == adv else [a + nidx - 1]
    final, groups = [], []
    for kind, a in entries:
        if kind == "new":
            groups.append([len(final)])
            final.append(1)
        elif kind != "drop":
            groups.append(list(range(len(final), len(final) + len(gaxes(a)))))
            final.extend(g.shape[i] for i in gaxes(a))
    out = reshape(g, tuple(final)) if tuple(final) != g.shape else g
    fancy = [j for j, (kind, _) in enumerate(entries) if kind in ("adv", "drop")]
    if adv is None or fancy == list(range(fancy[0], fancy[-1] + 1)):
        return out
    at = next(j for j, (kind, _) in enumerate(entries) if kind == "adv")
    first = groups[sum(1 for kind, _ in entries[:at] if kind != "drop")]
    rest = [i for i in range(out.ndim) if i not in first]
    return transpose(out, tuple(first + rest))
