"""sd.save / sd.load: every op, the zoo's losses and gradients, Hessians, an LSTM (scan) and a
convnet round-trip; in this process a loaded graph is the saved one (the same hash-consed
nodes), in a new process it evaluates to the same values and saves back to the same bytes;
a newer format version, a truncated, damaged or tampered file raise FormatError; joblib
round-trips graphs and compiled kernels in a new process."""
import base64
import json
import subprocess
import sys

import numpy as np
import pytest
import sympy

import symdiff as sd
from symdiff import persist
from symdiff.graph import flatten, toposort
from symdiff.models import cnn, recurrent, zoo

R = np.random.default_rng(0)


def every_op():
    """(inputs, outputs, arrays) of a graph that holds every Op, named and anonymous dims,
    float32, int64 and bool values, a SymPy function, a scan, einsum, conv and indexing."""
    x, m = sd.var("x", (None, 3)), sd.param("m", (3, 3))
    v = sd.var("v", ("n", 4), "float32")
    i = sd.var("i", (None,), "int64")
    softsign = sd.elementwise("softsign", lambda t: t / (sympy.Float("1.5", 30) + sympy.Abs(t)))
    a = sd.abs(x) + 1.5
    unary = [sd.neg, sd.exp, sd.log, sd.log1p, sd.expm1, sd.sqrt, sd.tanh, sd.sin, sd.cos,
             sd.sign, sd.sigmoid, sd.softplus, sd.lgamma, sd.digamma, sd.erf, sd.erfc,
             sd.log_ndtr, sd.stop_gradient, softsign, lambda t: sd.polygamma(1, t)]
    terms = [f(a) for f in unary]
    terms += [a - x, a / x, a ** x, sd.maximum(a, x), sd.minimum(a, x), x @ m, x @ m.T,
              sd.where(x > a, x, -x)]
    terms += [sd.cast(c, "float64") for c in (x < a, x <= a, x >= a, sd.equal(x, a),
                                              sd.not_equal(x, a))]
    z = sum(sd.sum(t * t, axis=-1, keepdims=True) for t in terms)
    z = z + sd.max(x, axis=1, keepdims=True) + sd.cast(sd.argmax_mask(x, axis=1), "float64")
    z = z + sd.take_rows(x, i)[:, None] + sd.one_hot(i, 3) @ sd.reshape(m, (9,))[:3, None]
    z = z + sd.broadcast_to(sd.iota((3,), 0, "float64"), (4, 3))[:1, :1]
    w = sd.pad(m, ((1, 0), (0, 2)), constant_values=-np.inf)[1:, :3]
    w = sd.concatenate([sd.flip(w, 0), sd.cumsum(w, 1)], axis=0)           # (6, 3)
    w = sd.scatter_add(w, sd.const([0, 2]), sd.take(w, sd.const([1, 1]), 0), axis=0)
    z = z + sd.sum(w) + sd.cast(sd.argmax(m, axis=0), "float64")[:1] * sd.size_of(x.shape[0])
    z = z + sd.einsum("ij,jk->ik", x, m)[:, :1] + x[i][:, :1] + x[..., None][:, 0]
    img = sd.reshape(sd.cast(v, "float64")[:, :4], ("n", 2, 2, 1))
    z = sd.sum(z) + sd.sum(sd.max_pool2d(sd.conv2d(img, sd.const(np.ones((2, 2, 1, 2)))), 1))
    total, hs = sd.scan(lambda c, r: (sd.tanh(c + r @ m), c * 2.0), sd.const(np.zeros(3)), x)
    loss = z + sd.sum(total) + sd.sum(hs)
    arrays = [R.standard_normal((5, 3)), R.standard_normal((3, 3)),
              R.standard_normal((2, 4)).astype(np.float32), np.array([0, 2, 1, 1, 0])]
    return [x, m, v, i], [loss, sd.grad(loss, m), {"jvp": sd.jvp(loss, [m], [m])}], arrays


def zoo_cases():
    for name, build in zoo.ZOO.items():
        model = build()
        arrays = [R.standard_normal((6,) + tuple(p.shape[1:])) if p.dtype == "float64" else
                  R.integers(0, 3, 6) for p in model.inputs]
        arrays += [R.standard_normal(p.shape) for p in model.params]
        yield name, model.inputs + model.params, [model.loss, sd.grad(model.loss, model.params)], \
            arrays


def hessian_case():
    model = zoo.mlp(sizes=(3, 4, 2))
    W = model.params[0]
    arrays = [R.standard_normal((5, 3)), R.integers(0, 2, 5)]
    arrays += [R.standard_normal(p.shape) for p in model.params]
    return model.inputs + model.params, [sd.hessian(model.loss, W),
                                         sd.hvp(model.loss, W, sd.const(np.ones((3, 4))))], arrays


def trained_model_case(model, x, y):
    outs = sd.value_and_grad(model.loss, model.params)
    return model.inputs + model.params, outs, [x, y] + [model.init[p] for p in model.params]


def cases():
    yield ("every_op",) + every_op()
    yield from zoo_cases()
    yield ("hessian",) + hessian_case()
    lstm = recurrent.char_lm(5, hidden=4, cell="lstm", dtype="float64")
    yield ("lstm",) + trained_model_case(lstm, R.integers(0, 5, (3, 6)), R.integers(0, 5, (3, 6)))
    net = cnn.convnet(image=(4, 4, 1), channels=(2, 3), n_out=3, dtype="float64")
    yield ("convnet",) + trained_model_case(net, R.standard_normal((3, 16)), R.integers(0, 3, 3))


def test_every_op_is_in_the_every_op_graph():
    _, outs, _ = every_op()
    assert {n.op for n in toposort(flatten(outs), persist._dependencies)} == set(sd.Op)
    assert '{"float":"-inf"}' in json.dumps(persist.encode(outs), separators=(",", ":"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """Each case saved to a file, with its input arrays and its values before saving."""
    d = tmp_path_factory.mktemp("graphs")
    out = []
    for name, inputs, outs, arrays in cases():
        path = d / f"{name}.json"
        sd.save(path, {"inputs": inputs, "outputs": outs})
        np.savez(d / f"{name}.npz", *arrays)
        want = sd.evaluate(flatten(outs), dict(zip(inputs, arrays)))
        out.append((name, path, inputs, outs, want))
    return d, out


def test_loading_in_the_same_process_gives_the_same_nodes(saved):
    for name, path, inputs, outs, _ in saved[1]:
        back = sd.load(path)
        assert back["inputs"] == inputs, name
        flat, again = flatten(outs), flatten(back["outputs"])
        assert len(flat) == len(again) and all(a is b for a, b in zip(flat, again)), name
        assert type(back["outputs"]) is type(outs) and len(back["outputs"]) == len(outs)
    every = sd.load(saved[1][0][1])["outputs"]
    assert isinstance(every[2], dict) and list(every[2]) == ["jvp"]


def test_a_new_process_evaluates_and_compiles_the_same_values_and_saves_the_same_bytes(saved):
    d, items = saved
    names = [name for name, *_ in items]
    script = ("import sys, pathlib, numpy as np, symdiff as sd\n"
              "from symdiff.graph import flatten\n"
              "d = pathlib.Path(sys.argv[1])\n"
              "for name in sys.argv[2:]:\n"
              "    g = sd.load(d / f'{name}.json')\n"
              "    npz = np.load(d / f'{name}.npz')\n"
              "    arrays = [npz[f'arr_{k}'] for k in range(len(npz.files))]\n"
              "    got = sd.evaluate(flatten(g['outputs']), dict(zip(g['inputs'], arrays)))\n"
              "    f = sd.compile(g['inputs'], flatten(g['outputs']), backend='numpy')\n"
              "    for a, b in zip(f(*arrays), got):\n"
              "        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)\n"
              "    np.savez(d / f'{name}.got.npz', *got)\n"
              "    sd.save(d / f'{name}.again.json', g)\n")
    subprocess.run([sys.executable, "-c", script, str(d)] + names, check=True)
    for name, path, _, _, want in items:
        got = np.load(d / f"{name}.got.npz")
        assert len(got.files) == len(want), name
        for k, w in enumerate(want):
            np.testing.assert_array_equal(got[f"arr_{k}"], w, err_msg=name)
        assert (d / f"{name}.again.json").read_bytes() == path.read_bytes(), name


def test_shared_subgraphs_stay_shared_and_deep_chains_load():
    x = sd.var("x", (2,))
    y = x
    for k in range(5000):
        y = sd.sin(y) * 0.5 + 1.0       # one constant, shared by all 5,000 steps
    doc = persist.encode([y, y])
    assert len(doc["graph"]["nodes"]) == 3 * 5000 + 3
    assert persist.decode(doc) == [y, y]


def test_the_file_is_documented_json(tmp_path):
    x = sd.var("x", ("batch", 2), "float32")
    path = tmp_path / "g.json"
    sd.save(path, sd.sum(x * np.float32(2.5)))
    doc = json.loads(path.read_text())
    assert (doc["format"], doc["version"]) == ("symdiff-graph", persist.VERSION)
    assert doc["graph"]["dims"] == [{"name": "batch"}]
    var, const = doc["graph"]["nodes"][:2]
    assert var == {"op": "var", "arg": {"name": "x", "shape": [{"dim": 0}, 2],
                                        "dtype": "float32", "trainable": False}}
    data = base64.b64decode(const["arg"]["data"])
    assert np.frombuffer(data, "<f4").tolist() == [2.5]
    assert doc["graph"]["outputs"] == {"node": 3}


# --- bad files ---------------------------------------------------------------------------
@pytest.fixture
def good(tmp_path):
    x = sd.var("x", (None, 3))
    m = sd.param("m", (3, 3))
    f = sd.elementwise("sq", lambda t: t * t)
    c, _ = sd.scan(lambda c, r: (c + r, None), sd.const(np.zeros(3)), x)
    path = tmp_path / "good.json"
    sd.save(path, [sd.sum(f(x @ m), axis=1) + sd.const([True, False, True]), c])
    return path


def _rewrite(path, change, sign=True):
    doc = json.loads(path.read_text())
    change(doc)
    if sign:
        doc["checksum"] = persist.checksum(doc["graph"])
    path.write_text(json.dumps(doc))
    return path


def _nodes(doc, op):
    return [n for n in doc["graph"]["nodes"] if n["op"] == op]


def _raises(path, *fragments):
    with pytest.raises(sd.FormatError) as e:
        sd.load(path)
    for f in fragments:
        assert f in str(e.value), (f, str(e.value))


def test_a_newer_version_names_both_versions(good):
    _rewrite(good, lambda d: d.update(version=persist.VERSION + 1))
    _raises(good, f"format version {persist.VERSION + 1}", f"up to {persist.VERSION}",
            "upgrade symdiff")


@pytest.mark.parametrize("keep", [0.0, 0.3, 0.999])
def test_a_truncated_file(good, keep):
    data = good.read_bytes()
    good.write_bytes(data[:int(len(data) * keep)])
    _raises(good, "empty" if keep == 0 else "ends early")


@pytest.mark.parametrize("content, fragment", [
    (b"\x80\x04\x95garbage", "not UTF-8"), (b"hello", "not valid JSON"),
    (b"[1, 2]", "not a symdiff graph"), (b'{"format": "symdiff-graph", "version": "1"}',
                                         "version must be an int"),
    (b'{"format": "symdiff-graph", "version": 1, "graph": NaN}', "NaN"),
    (b"[" * 100000, "nested too deeply")])
def test_garbage(tmp_path, content, fragment):
    path = tmp_path / "g.json"
    path.write_bytes(content)
    _raises(path, fragment)


def test_an_edit_without_a_new_checksum(good):
    _rewrite(good, lambda d: _nodes(d, "const")[0]["arg"].update(data="AAAAAAAAAAA="),
             sign=False)
    _raises(good, "checksum does not match")


def _set(op, key, value, k=0):
    return lambda d: _nodes(d, op)[k].update({key: value})


def _arg(op, key, value, k=0):
    return lambda d: _nodes(d, op)[k]["arg"].update({key: value})


# tampered files with a valid checksum: only the decoder stands between them and a graph
@pytest.mark.parametrize("change, fragments", [
    (_set("matmul", "op", "system"), ["unknown op 'system'"]),
    (_set("matmul", "src", [0, 99]), ["node index 99 out of range"]),
    (_set("matmul", "src", [0]), ["takes 2 sources"]),
    (_set("sum", "arg", [["-1"], False]), ["not [a list of a negative int, a bool]"]),
    (_set("sum", "arg", [[-1], 0]), ["sum", "is not [a list of"]),
    (_set("sum", "arg", [[-3], False]), ["does not check", "out of range"]),
    (_arg("var", "shape", [4, 3], k=1), ["matmul", "does not check",
                                                  "inner dimensions differ"]),
    (_arg("var", "dtype", "complex128"), ["the dtype 'complex128' is not a dtype"]),
    (_arg("const", "data", "AAAA", k=1), ["data holds 3 bytes", "needs 24"]),
    (_arg("const", "data", "AAIB"), ["bool data"]),
    (_arg("const", "data", "!!!!"), ["not base64"]),
    (_arg("fn", "function", 5), ["function index 5 out of range"]),
    (lambda d: d["graph"]["functions"][0]["expr"].append(["eval", 0]),
     ["unknown SymPy class 'eval'"]),
    (lambda d: d["graph"]["functions"][0]["expr"][0].__setitem__(1, "__import__('os')"),
     ["not a valid Symbol entry"]),
    (lambda d: d["graph"]["functions"][0]["expr"].append(["Pow", 0, 0, 0, 0]),
     ["Pow rejects its arguments"]),
    (lambda d: d["graph"]["bodies"][0].update(outs=[0]), ["carry's shape and dtype"]),
    (_arg("scan", "output", 7), ["output 7 out of range"]),
    (lambda d: d["graph"]["dims"].__setitem__(0, {"name": 3}), ["dim 0", "a dim must be"]),
    (lambda d: d["graph"].update(outputs={"node": 10**6}), ["outputs", "out of range"]),
    (lambda d: d["graph"].update(outputs={"set": []}), ["outputs", "is not a node"]),
    (lambda d: d["graph"].pop("bodies"), ['"graph" must be an object']),
])
def test_a_tampered_file(good, change, fragments):
    _raises(_rewrite(good, change), *fragments)


def test_save_rejects_what_is_not_a_graph(tmp_path):
    with pytest.raises(TypeError, match="got int"):
        sd.save(tmp_path / "g.json", [sd.var("x", (2,)), 3])
    with pytest.raises(TypeError, match="dict keys"):
        sd.save(tmp_path / "g.json", {1.5: sd.var("x", (2,))})


# --- joblib ------------------------------------------------------------------------------
def test_joblib_round_trips_graphs_and_kernels_in_a_new_process(tmp_path, cache_dir):
    joblib = pytest.importorskip("joblib")
    # the kernel of test_pickle.py: in one test session it is compiled once for both
    x, w = sd.var("x", (None, 3)), sd.param("w", (3,))
    loss = sd.mean((x @ w - 1.0) ** 2)
    g = sd.grad(loss, w)
    f = sd.compile([x], loss, updates={w: w - 0.1 * g}, state={w: np.full(3, 0.5)})
    X = R.standard_normal((8, 3))
    joblib.dump({"f": f, "graph": [x, w, loss, g], "X": X}, tmp_path / "obj.joblib")
    want = np.append(f(X), f.state[w])    # one step; the copy's first step must equal it
    script = ("import sys, numpy as np, joblib, symdiff as sd\n"
              "o = joblib.load(sys.argv[1])\n"
              "x, w, loss, g = o['graph']\n"
              "vals = sd.evaluate([loss, g], {x: o['X'], w: np.full(3, 0.5)})\n"
              "f = o['f']\n"
              "step = np.append(f(o['X']), f.state[w])\n"
              "np.save(sys.argv[2], np.concatenate([np.ravel(v) for v in vals] + [step]))\n")
    res = tmp_path / "got.npy"
    subprocess.run([sys.executable, "-c", script, str(tmp_path / "obj.joblib"), str(res)],
                   check=True)
    vals = sd.evaluate([loss, g], {x: X, w: np.full(3, 0.5)})
    np.testing.assert_array_equal(np.load(res), np.concatenate([np.ravel(v) for v in vals] +
                                                               [want]))
