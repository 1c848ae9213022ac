"""Reading ``symdiff-graph`` files (the format is described in ``persist.py``): what a valid
file is (the version, the checksum, the form of each op's arg) and the decoder, which checks
every field before it builds anything and raises ``FormatError`` naming what is wrong and
where. Nothing in a file is executed: names are looked up in fixed tables, nodes are made by
``Node.make`` (which checks shapes and dtypes), SymPy expressions by ``sympy_json``.
"""
import base64
import binascii
import hashlib
import json
import math

import numpy as np

from . import dtypes as dt
from .dims import Dim, _load_anonymous, dim as named_dim
from .errors import FormatError, SymdiffError
from .graph import ConstValue, Node, VarInfo
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
_OPS = {op.value: op for op in Op}


def checksum(graph):
    """The ``checksum`` field for the ``graph`` field of a file."""
    text = json.dumps(graph, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return "blake2b:" + hashlib.blake2b(text.encode(), digest_size=32).hexdigest()


# --- arg forms ---------------------------------------------------------------------------
def conforms(v, form):
    """Does the arg value ``v`` have the form ``form`` (an entry of ``ARGS``)?"""
    if form is None or isinstance(form, str):
        return _ATOMS[form](v)
    kind, *parts = form
    if kind == "opt":
        return v is None or conforms(v, parts[0])
    if not isinstance(v, tuple):
        return False
    if kind == "seq":
        return all(conforms(x, parts[0]) for x in v)
    return len(v) == len(parts) and all(conforms(x, f) for x, f in zip(v, parts))


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


def describe(form):
    """``form`` in words, for error messages: "[a list of a negative int, a bool]"."""
    if form is None or isinstance(form, str):
        return _WORDS[form]
    kind, *parts = form
    if kind == "opt":
        return f"null or {describe(parts[0])}"
    if kind == "seq":
        return f"a list of {describe(parts[0])}"
    return f"[{', '.join(map(describe, parts))}]"


# --- reading -----------------------------------------------------------------------------
def parse(data):
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
        if not conforms(v, ARGS[op]):
            self.fail(f"the arg {a!r} is not {describe(ARGS[op])}")
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
        if not _is_int(j):
            self.fail(f"a node index must be an int, got {j!r:.200}")
        if not 0 <= j < i:
            self.fail(f"node index {j} out of range (must be an earlier node, < {i})")
        return self.nodes[j]

    def check(self, v, form, what):
        if not conforms(v, form):
            self.fail(f"{what} {v!r:.200} is not {describe(form)}")
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
