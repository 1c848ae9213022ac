"""Graphs saved to a file and loaded back: ``sd.save(path, outputs)`` and ``sd.load(path)``.

Unlike pickle, loading never runs anything from the file: the file is JSON, read by a decoder
that accepts only the forms described below, and every node is rebuilt through ``Node.make``,
which checks shapes and dtypes as when the graph was first declared. Anything else raises
``FormatError`` naming what is wrong and where. A graph is a DAG: a node used twice is stored
once, and the file lists nodes in a flat array, so a chain of thousands of ops loads without
recursion.

The format ``symdiff-graph``, version 1
---------------------------------------
A file is one UTF-8 JSON object with these fields:

``format``
    the string ``"symdiff-graph"``.
``version``
    the format version, an int. This module writes ``VERSION`` (1) and reads files of versions
    up to it; a file of a higher version raises ``FormatError`` naming both versions.
``symdiff``
    the version of symdiff that wrote the file (informational).
``checksum``
    ``"blake2b:"`` and the hex BLAKE2b-256 digest of ``graph`` written canonically (keys sorted,
    no spaces, ``checksum(graph)``): a truncated or edited file does not load.
``graph``
    the graph, an object with five fields:

    ``dims``
        the symbolic dims, which the rest of the file refers to as ``{"dim": i}``:
        ``{"name": n}`` is the named dim ``n`` (the one every ``sd.var(..., ("n", ...))``
        shares); ``{"origin": o, "uid": u}`` an anonymous (``None``) dim: ``o`` names the
        process that made it, as pickle does (``dims.py``), so a file loaded back in that
        process gets its dims back, and elsewhere the files written by one process share
        their dims.
    ``functions``
        the elementwise functions defined with SymPy (``sd.elementwise``), each
        ``{"name": str, "expr": [...], "symbols": [indices into expr], "value": index into
        expr}``: ``symbols`` are the function's arguments, ``value`` the whole expression, and
        ``expr`` lists the subexpressions, each after its arguments:
        ``["Symbol", name, {assumption: bool}]``, ``["Integer", n]``, ``["Rational", p, q]``,
        ``["Float", m, e, precision]`` (the value m * 2**e), ``["S", name]`` for a SymPy
        singleton (``"Pi"``, ``"Exp1"``, ``"Infinity"``...) or ``[class, i, j, ...]``: the SymPy
        class of that name (``"Add"``, ``"exp"``, ``"Piecewise"``, symdiff's ``"sigmoid"``...)
        applied to the subexpressions i, j, ...
    ``bodies``
        the step graphs of loops (``sd.scan``, see ``loops.py``), each
        ``{"carries": [...], "xs": [...], "consts": [...], "outs": [...], "reverse": bool,
        "length": int or {"dim": i}}``: node indices of the placeholder vars of the carries,
        of the per-step slices of xs and of the loop-invariant values, then of the step's
        outputs (the new carries, then the ys).
    ``nodes``
        every node, in topological order (after its sources, and after the nodes of the loop
        body it runs), each ``{"op": name, "src": [node indices], "arg": ...}`` (``src`` and
        ``arg`` left out when empty). ``name`` is the value of an ``Op`` (``"add"``,
        ``"matmul"``, ``"scan"``...). ``arg`` by op:

        - ``var``: ``{"name": str, "shape": [int or {"dim": i}, ...], "dtype": str,
          "trainable": bool}``;
        - ``const``: ``{"dtype": str, "shape": [int, ...], "data": str}``, ``data`` the base64 of
          the values' little-endian bytes in C order;
        - ``fn``: ``{"function": index into functions}``;
        - ``scan``: ``{"body": index into bodies, "output": k}`` (``ScanBody.output``);
        - any other op: its parameters (axes, target shapes, a dtype...) in plain JSON, lists for
          tuples, ``{"dim": i}`` for a symbolic dim, ``{"float": "nan" | "inf" | "-inf"}`` for
          a float JSON cannot hold; ``ARGS`` gives each op's form.
    ``outputs``
        the saved structure: ``{"node": i}``, ``null``, ``{"list": [...]}``,
        ``{"tuple": [...]}`` or ``{"dict": [[key, value], ...]}``, a key a string, an int or
        ``{"node": i}``.

dtypes are named ``"float32"``, ``"float64"``, ``"int64"`` or ``"bool"``.
"""
import base64
import json
import math
import os

import numpy as np

from . import dtypes as dt
from .dims import Dim
from .errors import FormatError
from .graph import Node, flatten, toposort
from .ops import Op
from .persist_read import ARGS, FORMAT, VERSION, checksum, conforms, decode, describe, parse
from .printing import label

__all__ = ["save", "load", "encode", "decode", "checksum", "FORMAT", "VERSION", "ARGS"]


def save(path, outputs):
    """Write ``outputs`` (a node, or a list/tuple/dict of nodes) to the file ``path`` in the
    ``symdiff-graph`` format (the module docstring describes it); ``load`` reads it back.

    >>> import os, tempfile, numpy as np, symdiff as sd
    >>> x = sd.var("x", ("batch", 3)); w = sd.param("w", (3,))
    >>> loss = sd.mean(sd.tanh(x @ w))
    >>> path = os.path.join(tempfile.mkdtemp(), "model.json")
    >>> sd.save(path, {"loss": loss, "grad": sd.grad(loss, w), "inputs": [x, w]})
    >>> g = sd.load(path)
    >>> g["loss"] is loss            # in the same process: the very same (hash-consed) nodes
    True
    >>> sd.evaluate(g["grad"], {x: np.ones((2, 3)), w: np.zeros(3)}).tolist()
    [1.0, 1.0, 1.0]
    """
    text = json.dumps(encode(outputs), separators=(",", ":"), allow_nan=False)
    path = os.fspath(path)
    tmp = f"{path}.{os.getpid()}.tmp"          # written whole, then renamed: never half a file
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
    os.replace(tmp, path)


def load(path):
    """The outputs saved by ``save`` in ``path``, in the structure they were saved in.

    Raises ``FormatError`` for a file that is not a symdiff graph, of a newer format version,
    truncated, altered, or describing an invalid graph; nothing in the file is executed.

    >>> import os, tempfile, symdiff as sd
    >>> path = os.path.join(tempfile.mkdtemp(), "bad.json")
    >>> _ = open(path, "w").write('{"format": "symdiff-graph", "version": 99}')
    >>> sd.load(path)
    Traceback (most recent call last):
    ...
    symdiff.errors.FormatError: cannot load .../bad.json: written in format version 99 (by symdiff ?); this symdiff ... reads format versions up to 1: upgrade symdiff to load it
    """
    path = os.fspath(path)
    with open(path, "rb") as f:
        data = f.read()
    try:
        return decode(parse(data))
    except FormatError as e:
        raise FormatError(f"cannot load {path}: {e}") from None


# --- writing -----------------------------------------------------------------------------
def encode(outputs):
    """The JSON object (dicts and lists) that ``save`` writes for ``outputs``."""
    from . import __version__
    w = _Writer()
    for n in toposort(flatten(outputs), _dependencies):
        w.add(n)
    graph = {"dims": w.dims.items, "functions": w.functions.items, "bodies": w.bodies.items,
             "nodes": w.nodes, "outputs": w.structure(outputs)}
    return {"format": FORMAT, "version": VERSION, "symdiff": __version__,
            "checksum": checksum(graph), "graph": graph}


def _dependencies(n):
    """What must come before ``n`` in the file: its sources, and a loop's step graph."""
    if n.op is Op.SCAN:
        body = n.arg[0]
        return body.placeholders + body.outs + n.src
    return n.src


class _Table:
    """Objects numbered in order of first use, with their records."""

    def __init__(self, record):
        self.record, self.index, self.items = record, {}, []

    def __call__(self, obj):
        if obj not in self.index:
            self.items.append(self.record(obj))
            self.index[obj] = len(self.items) - 1
        return self.index[obj]


class _Writer:
    def __init__(self):
        self.index, self.nodes = {}, []
        self.dims = _Table(_dim_record)
        self.functions = _Table(_function_record)
        self.bodies = _Table(self._body_record)

    def add(self, n):
        rec = {"op": n.op.value}
        if n.src:
            rec["src"] = [self.index[s] for s in n.src]
        arg = self._arg(n)
        if arg is not None:
            rec["arg"] = arg
        self.index[n] = len(self.nodes)
        self.nodes.append(rec)

    def _arg(self, n):
        a = n.arg
        if n.op is Op.VAR:
            return {"name": a.name, "shape": self.value(a.shape), "dtype": a.dtype,
                    "trainable": a.trainable}
        if n.op is Op.CONST:
            return _array_record(a.value)
        if n.op is Op.FN:
            return {"function": self.functions(a)}
        if n.op is Op.SCAN:
            return {"body": self.bodies(a[0]), "output": a[1]}
        if not conforms(a, ARGS[n.op]):
            raise TypeError(f"save: cannot write `{label(n)}`: its arg {a!r} is not of the form "
                            f"{describe(ARGS[n.op])}")
        return self.value(a)

    def value(self, v):
        if isinstance(v, Dim):
            return {"dim": self.dims(v)}
        if isinstance(v, tuple):
            return [self.value(x) for x in v]
        if isinstance(v, (float, np.floating)):
            return float(v) if math.isfinite(v) else {"float": repr(float(v))}
        return int(v) if isinstance(v, np.integer) else v

    def _body_record(self, body):
        ids = lambda nodes: [self.index[n] for n in nodes]      # noqa: E731
        return {"carries": ids(body.carries), "xs": ids(body.xs), "consts": ids(body.consts),
                "outs": ids(body.outs), "reverse": body.reverse, "length": self.value(body.length)}

    def structure(self, s):
        if isinstance(s, Node):
            return {"node": self.index[s]}
        if s is None:
            return None
        if isinstance(s, (list, tuple)):
            return {"tuple" if isinstance(s, tuple) else "list": [self.structure(v) for v in s]}
        if isinstance(s, dict):
            return {"dict": [[self._key(k), self.structure(v)] for k, v in s.items()]}
        raise TypeError(f"save: outputs must be nodes in a list/tuple/dict, got "
                        f"{type(s).__name__}")

    def _key(self, k):
        if isinstance(k, Node):
            return {"node": self.index[k]}
        if isinstance(k, str) or isinstance(k, int) and not isinstance(k, bool):
            return k
        raise TypeError(f"save: dict keys must be strings, ints or nodes, got {k!r}")


def _dim_record(d):
    if d.name is not None:
        return {"name": d.name}
    origin, uid = d.__reduce__()[1]      # as pickle names it: where it was made, its number
    return {"origin": origin, "uid": uid}


def _array_record(a):
    if a.dtype.name not in dt.DTYPES:
        raise TypeError(f"save: a constant of dtype {a.dtype} (expected one of {dt.DTYPES})")
    raw = np.ascontiguousarray(a, a.dtype.newbyteorder("<")).tobytes()
    return {"dtype": a.dtype.name, "shape": list(a.shape),
            "data": base64.b64encode(raw).decode("ascii")}


def _function_record(fn):
    from .sympy_json import encode_function
    return encode_function(fn)
