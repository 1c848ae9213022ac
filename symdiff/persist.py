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
import binascii
import hashlib
import json
import math
import os

import numpy as np

from . import dtypes as dt
from .dims import Dim, _load_anonymous, dim as named_dim
from .errors import FormatError, SymdiffError
from .graph import ConstValue, Node, VarInfo, flatten, toposort
from .ops import ARITY, Op
from .printing import label

FORMAT, VERSION = "symdiff-graph", 1

# the form of each op's arg: "nat" int >= 0, "neg" int < 0, "number" int or float, "dim" nat or
# a symbolic Dim, "sym" a symbolic Dim; (tuple, ...) a tuple of those forms; (seq, f) a tuple of
# any length of form f; (opt, f) None or f; None no arg. var, const, fn and scan have their own.
_AXES = ("seq", "neg")
_TRIPLE = ("tuple", "nat", "nat", "nat")
ARGS = {op: None for op in Op}
ARGS.update({
    Op.DIM: ("tuple", "sym", "dtype"), Op.CAST: "dtype", Op.POLYGAMMA: "nat",
    Op.SUM: ("tuple", _AXES, "bool"), Op.MAX: ("tuple", _AXES, "bool"), Op.ARGMAX_MASK: _AXES,
    Op.TRANSPOSE: ("seq", "nat"), Op.RESHAPE: ("seq", "dim"), Op.BROADCAST_TO: ("seq", "dim"),
    Op.ONE_HOT: ("tuple", "nat", "dtype"), Op.IOTA: ("tuple", ("seq", "dim"), "nat", "dtype"),
    Op.SLICE: ("seq", ("opt", _TRIPLE)), Op.PAD: ("tuple", ("seq", _TRIPLE), "number"),
    Op.FLIP: _AXES, Op.CONCAT: "neg", Op.GATHER: ("tuple", "nat", "nat"),
    Op.SCATTER_ADD: ("tuple", "nat", "nat"), Op.CUMSUM: "neg", Op.ARGMAX: "neg"})
_OWN = {Op.VAR, Op.CONST, Op.FN, Op.SCAN}
_OPS = {op.value: op for op in Op}


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
        return decode(_parse(data))
    except FormatError as e:
        raise FormatError(f"cannot load {path}: {e}") from None


def checksum(graph):
    """The ``checksum`` field for the ``graph`` field of a file."""
    text = json.dumps(graph, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "blake2b:" + hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


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
        if not _conforms(a, ARGS[n.op]):
            raise TypeError(f"save: cannot write `{label(n)}`: its arg {a!r} is not of the form "
                            f"{_describe(ARGS[n.op])}")
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


# --- arg forms ---------------------------------------------------------------------------
def _conforms(v, form):
    if form is None or isinstance(form, str):
        return _ATOMS[form](v)
    kind, *parts = form
    if kind == "opt":
        return v is None or _conforms(v, parts[0])
    if not isinstance(v, tuple):
        return False
    if kind == "seq":
        return all(_conforms(x, parts[0]) for x in v)
    return len(v) == len(parts) and all(_conforms(x, f) for x, f in zip(v, parts))


def _is_int(v):
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


_ATOMS = {
    None: lambda v: v is None, "bool": lambda v: isinstance(v, bool),
    "nat": lambda v: _is_int(v) and v >= 0, "neg": lambda v: _is_int(v) and v < 0,
    "number": lambda v: _is_int(v) or isinstance(v, (float, np.floating)),
    "dim": lambda v: isinstance(v, Dim) or _is_int(v) and v >= 0,
    "sym": lambda v: isinstance(v, Dim), "dtype": lambda v: v in dt.DTYPES}
_WORDS = {None: "nothing", "bool": "a bool", "nat": "an int >= 0", "neg": "a negative int",
          "number": "a number", "dim": "a size (int or dim)", "sym": "a dim",
          "dtype": f"a dtype ({', '.join(dt.DTYPES)})"}


def _describe(form):
    if form is None or isinstance(form, str):
        return _WORDS[form]
    kind, *parts = form
    if kind == "opt":
        return f"null or {_describe(parts[0])}"
    if kind == "seq":
        return f"a list of {_describe(parts[0])}"
    return f"[{', '.join(map(_describe, parts))}]"


# --- reading -----------------------------------------------------------------------------
def _parse(data):
    """The JSON object of a file's bytes; FormatError for anything that is not one."""
    if not data.strip():
        raise FormatError("the file is empty")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise FormatError("not a symdiff graph file (not UTF-8 text)") from None
    try:
        return json.loads(text, parse_constant=_reject_constant)
    except json.JSONDecodeError as e:
        if e.pos >= len(text.rstrip()) or e.msg.startswith("Unterminated string"):
            raise FormatError(f"the file ends early (truncated?): {e.msg}") from None
        raise FormatError(f"not valid JSON: {e.msg} at line {e.lineno} column {e.colno}") \
            from None
    except RecursionError:
        raise FormatError("not a symdiff graph file (JSON nested too deeply)") from None


def _reject_constant(name):
    raise FormatError(f"not valid JSON: {name} is not a JSON value")


def decode(doc):
    """The outputs described by ``doc``, a file's JSON object (what ``load`` returns)."""
    reader = None
    try:
        graph = _check_header(doc)
        reader = _Reader(graph)
        for i, rec in enumerate(graph["nodes"]):
            reader.where = f"node {i}"
            reader.nodes.append(reader.node(i, rec))
        reader.where = "outputs"
        return reader.structure(graph["outputs"])
    except (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError,
            RecursionError) as e:
        if isinstance(e, FormatError):
            raise
        where = reader.where if reader else "the header"
        raise FormatError(f"{where}: invalid content ({type(e).__name__}: {e})") from None


def _check_header(doc):
    from . import __version__
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise FormatError(f'not a symdiff graph file (no "format": "{FORMAT}")')
    v = doc.get("version")
    if not _is_int(v) or v < 1:
        raise FormatError(f"the format version must be an int >= 1, got {v!r}")
    if v > VERSION:
        raise FormatError(f"written in format version {v} (by symdiff {doc.get('symdiff', '?')});"
                          f" this symdiff {__version__} reads format versions up to {VERSION}: "
                          f"upgrade symdiff to load it")
    graph = doc.get("graph")
    fields = ("dims", "functions", "bodies", "nodes")
    if not isinstance(graph, dict) or not all(isinstance(graph.get(k), list) for k in fields) \
            or "outputs" not in graph:
        raise FormatError(f'"graph" must be an object with the lists {", ".join(fields)} and '
                          f'"outputs"')
    if doc.get("checksum") != checksum(graph):
        raise FormatError("the checksum does not match the content: the file was altered or "
                          "damaged after it was written")
    return graph


class _Reader:
    def __init__(self, graph):
        self.graph, self.nodes, self.where = graph, [], "dims"
        self.dims = [self._dim(i, rec) for i, rec in enumerate(graph["dims"])]
        self.functions, self.bodies = {}, {}

    def fail(self, what):
        raise FormatError(f"{self.where}: {what}")

    def node(self, i, rec):
        if not isinstance(rec, dict) or not set(rec) <= {"op", "src", "arg"}:
            self.fail('a node must be an object with "op" and optional "src" and "arg"')
        op = _OPS.get(rec.get("op")) if isinstance(rec.get("op"), str) else None
        if op is None:
            self.fail(f"unknown op {rec.get('op')!r}")
        self.where = f"node {i} ({op.value})"
        src = tuple(self.ref(j, i) for j in self.list(rec.get("src", []), "src"))
        if ARITY[op] is not None and len(src) != ARITY[op]:
            self.fail(f"takes {ARITY[op]} sources, the file gives {len(src)}")
        arg = self.arg(op, rec.get("arg"), i, src)
        try:
            return Node.make(op, src, arg)
        except SymdiffError as e:
            self.fail(f"the node does not check: {e}")

    def arg(self, op, a, i, src):
        if op is Op.VAR:
            return self.var(self.fields(a, ("name", "shape", "dtype", "trainable")))
        if op is Op.CONST:
            return ConstValue(self.array(self.fields(a, ("dtype", "shape", "data"))))
        if op is Op.FN:
            return self.function(self.fields(a, ("function",))["function"])
        if op is Op.SCAN:
            return self.scan(self.fields(a, ("body", "output")), i, src)
        v = self.value(a)
        if not _conforms(v, ARGS[op]):
            self.fail(f"the arg {a!r} is not {_describe(ARGS[op])}")
        return v

    # --- checked pieces ---
    def fields(self, rec, names):
        if not isinstance(rec, dict) or set(rec) != set(names):
            self.fail(f"the arg must be an object with the fields {', '.join(names)}, got "
                      f"{rec!r:.200}")
        return rec

    def list(self, v, what):
        if not isinstance(v, list):
            self.fail(f"{what} must be a list, got {v!r:.200}")
        return v

    def ref(self, j, i):
        """Node j, which must come before node (or use) i."""
        if not _is_int(j) or not 0 <= j < i:
            self.fail(f"node index {j!r} out of range (must be an earlier node, < {i})")
        return self.nodes[j]

    def check(self, v, form, what):
        if not _conforms(v, form):
            self.fail(f"{what} {v!r:.200} is not {_describe(form)}")
        return v

    def value(self, v):
        """A generic arg: lists become tuples, {"dim": i} a Dim, {"float": s} a float."""
        if isinstance(v, list):
            return tuple(self.value(x) for x in v)
        if isinstance(v, dict):
            if set(v) == {"dim"} and _is_int(v["dim"]) and 0 <= v["dim"] < len(self.dims):
                return self.dims[v["dim"]]
            if set(v) == {"float"} and v["float"] in ("nan", "inf", "-inf"):
                return float(v["float"])
            self.fail(f"{v!r:.200} is neither {{\"dim\": index}} nor a float")
        return v

    def _dim(self, i, rec):
        self.where = f"dim {i}"
        if isinstance(rec, dict) and set(rec) == {"name"} and isinstance(rec["name"], str):
            return named_dim(rec["name"])
        if isinstance(rec, dict) and set(rec) == {"origin", "uid"} and \
                isinstance(rec["origin"], str) and _is_int(rec["uid"]):
            return _load_anonymous(rec["origin"], rec["uid"])
        self.fail(f'a dim must be {{"name": str}} or {{"origin": str, "uid": int}}, got '
                  f'{rec!r:.200}')

    def var(self, rec):
        name = rec["name"]
        if not isinstance(name, str) or not name:
            self.fail(f"a var's name must be a non-empty string, got {name!r:.200}")
        shape = self.check(self.value(self.list(rec["shape"], "shape")), ("seq", "dim"),
                           "the shape")
        return VarInfo(name, shape, self.check(rec["dtype"], "dtype", "the dtype"),
                       self.check(rec["trainable"], "bool", "trainable"))

    def array(self, rec):
        dtype = self.check(rec["dtype"], "dtype", "the dtype")
        shape = self.check(tuple(self.list(rec["shape"], "shape")), ("seq", "nat"), "the shape")
        if not isinstance(rec["data"], str):
            self.fail("data must be a base64 string")
        try:
            raw = base64.b64decode(rec["data"], validate=True)
        except binascii.Error as e:
            self.fail(f"data is not base64 ({e})")
        want = math.prod(shape) * np.dtype(dtype).itemsize
        if len(raw) != want:
            self.fail(f"data holds {len(raw)} bytes; shape {list(shape)} of {dtype} needs {want}")
        if dtype == dt.BOOL and raw and max(raw) > 1:
            self.fail("bool data must be bytes 0 or 1")
        return np.frombuffer(raw, np.dtype(dtype).newbyteorder("<")).astype(dtype).reshape(shape)

    def function(self, k):
        if k not in self.functions:
            recs = self.graph["functions"]
            if not _is_int(k) or not 0 <= k < len(recs):
                self.fail(f"function index {k!r} out of range (the file has {len(recs)})")
            from .sympy_json import decode_function
            where, self.where = self.where, f"function {k}"
            self.functions[k] = decode_function(recs[k], self.fail)
            self.where = where
        return self.functions[k]

    def scan(self, rec, i, src):
        body = self.body(rec["body"], i)
        k = self.check(rec["output"], "nat", "the output")
        if k >= len(body.outs) + body.n_carry:
            self.fail(f"output {k} out of range: the loop has {len(body.outs) + body.n_carry}")
        if len(src) != len(body.placeholders):
            self.fail(f"the loop takes {len(body.placeholders)} sources, the file gives "
                      f"{len(src)}")
        nc, nx = body.n_carry, len(body.xs)
        for j, (p, s) in enumerate(zip(body.placeholders, src)):
            shape = s.shape[1:] if nc <= j < nc + nx else s.shape
            if p.dtype != s.dtype or not _fits(p.shape, shape):
                self.fail(f"source {j} `{label(s)}` {s.shape} {s.dtype} does not fit the "
                          f"loop's placeholder {p.arg!r}")
        return body, k

    def body(self, b, i):
        if b not in self.bodies:
            recs = self.graph["bodies"]
            if not _is_int(b) or not 0 <= b < len(recs):
                self.fail(f"body index {b!r} out of range (the file has {len(recs)})")
            self.bodies[b] = self._body(recs[b], i)
        return self.bodies[b]

    def _body(self, rec, i):
        from .loops import ScanBody
        rec = self.fields(rec, ("carries", "xs", "consts", "outs", "reverse", "length"))
        parts = {k: [self.ref(j, i) for j in self.list(rec[k], k)]
                 for k in ("carries", "xs", "consts", "outs")}
        if any(p.op is not Op.VAR for k in ("carries", "xs", "consts") for p in parts[k]):
            self.fail("a loop's placeholders must be var nodes")
        carries, outs = parts["carries"], parts["outs"]
        if len(outs) < len(carries) or any(
                o.dtype != c.dtype or not _fits(c.shape, o.shape) for c, o in zip(carries, outs)):
            self.fail("the loop's outputs must begin with one new carry per carry, each of the "
                      "carry's shape and dtype")
        length = self.check(self.value(rec["length"]), "dim", "the length")
        return ScanBody(carries, parts["xs"], parts["consts"], outs,
                        self.check(rec["reverse"], "bool", "reverse"), length)

    def structure(self, s):
        if s is None:
            return None
        if isinstance(s, dict) and len(s) == 1:
            (kind, v), = s.items()
            if kind == "node":
                return self.ref(v, len(self.nodes))
            if kind in ("list", "tuple"):
                items = [self.structure(x) for x in self.list(v, kind)]
                return items if kind == "list" else tuple(items)
            if kind == "dict":
                return {self._key(p): self.structure(p[1]) for p in self.list(v, "dict")}
        self.fail(f"{s!r:.200} is not a node, null, list, tuple or dict record")

    def _key(self, pair):
        if not isinstance(pair, list) or len(pair) != 2:
            self.fail(f"a dict entry must be [key, value], got {pair!r:.200}")
        k = pair[0]
        if isinstance(k, dict) and set(k) == {"node"}:
            return self.ref(k["node"], len(self.nodes))
        if isinstance(k, str) or _is_int(k):
            return k
        self.fail(f"a dict key must be a string, an int or {{\"node\": i}}, got {k!r:.200}")


def _fits(a, b):
    """Same rank, and equal sizes where both are ints (a symbolic dim binds at call time)."""
    return len(a) == len(b) and all(d == e or isinstance(d, Dim) or isinstance(e, Dim)
                                    for d, e in zip(a, b))
