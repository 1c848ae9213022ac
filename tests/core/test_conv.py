"""Convolution and pooling: values and gradients equal PyTorch's in float64 (rtol 1e-10),
"same" padding equals JAX's, finite differences in both modes, clear shape errors, and one
compiled kernel equal to the NumPy interpreter over every variant."""
import warnings

import numpy as np
import pytest

import symdiff as sd
from gradcheck import check_grads

torch = pytest.importorskip("torch", reason="PyTorch is not installed (pip install torch==2.13.0)")
TF = torch.nn.functional
RTOL = 1e-10

# (in channels, out channels, groups, stride, padding, dilation, bias); kernel 3x2
CONV2D = [
    (3, 4, 1, 1, 0, 1, False),
    (4, 6, 2, 2, 1, 1, True),
    (4, 4, 4, (2, 1), ((1, 2), (0, 1)), (1, 2), True),      # depthwise, asymmetric padding
    (2, 3, 1, 1, "same", 1, True),
    (2, 3, 1, 1, "valid", 2, False),
    (6, 4, 2, (1, 3), (2, 1), (2, 1), False),
]


def _close(got, want, what):
    want = np.asarray(want)
    err = float(np.max(np.abs(got - want))) if want.size else 0.0
    scale = max(float(np.max(np.abs(want))), 1e-300) if want.size else 1.0
    assert err <= RTOL * scale, f"{what}: relative error {err / scale:.3g}"


def _torch_padding(x, padding):
    """torch takes symmetric int padding (and "same"/"valid"); pad (lo, hi) pairs by hand."""
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        flat = [v for lo_hi in reversed(padding) for v in lo_hi]
        return TF.pad(x, flat), 0
    return x, padding


def _perm(fmt):
    """Axes of the torch layout (N, C, *S) in the order of ``fmt``."""
    n = len(fmt) - 2
    spatial = tuple(range(2, n + 2))
    if fmt.startswith("NC"):
        return (0, 1) + spatial
    return (0,) + spatial + (1,) if fmt.startswith("N") else spatial + (0, 1)


def _to(a, fmt):
    return a.transpose(_perm(fmt))


def _back(a, fmt):
    p = _perm(fmt)
    return a.transpose([p.index(i) for i in range(a.ndim)])


def _hwio(k):
    return k.transpose(*range(2, k.ndim), 1, 0)


def _check_against_torch(fn, tfn, X, K, B, fmt, **kw):
    """Values and the VJP of a random cotangent w.r.t. x, k (and bias) against torch."""
    rng = np.random.default_rng(1)
    Xt = torch.tensor(X, requires_grad=True)
    Kt = torch.tensor(K, requires_grad=True)
    Bt = None if B is None else torch.tensor(B, requires_grad=True)
    yt = tfn(Xt, Kt, Bt)
    U = rng.standard_normal(yt.shape)
    (yt * torch.tensor(U)).sum().backward()
    last = not fmt.startswith("NC")
    Xv, Kv, Uv = _to(X, fmt), _hwio(K) if last else K, _to(U, fmt)
    x, k = sd.var("x", Xv.shape), sd.param("k", Kv.shape)
    b = None if B is None else sd.param("b", B.shape)
    y = fn(x, k, data_format=fmt, bias=b, **kw)
    env = {x: Xv, k: Kv, **({} if b is None else {b: B})}
    wrt = [x, k] + ([] if b is None else [b])
    out = sd.evaluate([y] + sd.vjp(y, wrt, sd.const(Uv)), env)
    _close(_back(out[0], fmt), yt.detach().numpy(), f"{fn.__name__} {fmt} value")
    _close(_back(out[1], fmt), Xt.grad.numpy(), f"{fn.__name__} {fmt} d/dx")
    _close(out[2], _hwio(Kt.grad.numpy()) if last else Kt.grad.numpy(),
           f"{fn.__name__} {fmt} d/dk")
    if B is not None:
        _close(out[3], Bt.grad.numpy(), f"{fn.__name__} {fmt} d/dbias")


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC", "HWNC"])
@pytest.mark.parametrize("case", CONV2D)
def test_conv2d_matches_torch(case, fmt):
    cin, cout, groups, stride, padding, dilation, bias = case
    rng = np.random.default_rng(0)
    X = rng.standard_normal((2, cin, 7, 6))
    K = rng.standard_normal((cout, cin // groups, 3, 2))
    B = rng.standard_normal(cout) if bias else None

    def tfn(x, k, b):
        x, p = _torch_padding(x, padding)
        return TF.conv2d(x, k, b, stride=stride, padding=p, dilation=dilation, groups=groups)
    with warnings.catch_warnings():       # torch warns about "same" with an even kernel
        warnings.simplefilter("ignore")
        _check_against_torch(sd.conv2d, tfn, X, K, B, fmt, stride=stride, padding=padding,
                             dilation=dilation, groups=groups)


@pytest.mark.parametrize("fmt", ["NCW", "NWC", "WNC"])
@pytest.mark.parametrize("case", [(3, 4, 1, 1, 0, 1), (4, 6, 2, 2, 2, 1), (2, 2, 1, 1, "same", 2),
                                  (4, 8, 4, 1, (1, 3), 3)])
def test_conv1d_matches_torch(case, fmt):
    cin, cout, groups, stride, padding, dilation = case
    rng = np.random.default_rng(2)
    X = rng.standard_normal((3, cin, 11))
    K = rng.standard_normal((cout, cin // groups, 3))
    B = rng.standard_normal(cout)

    def tfn(x, k, b):
        if isinstance(padding, tuple):
            return TF.conv1d(TF.pad(x, padding), k, b, stride=stride, dilation=dilation,
                             groups=groups)
        return TF.conv1d(x, k, b, stride=stride, padding=padding, dilation=dilation,
                         groups=groups)
    pad = (padding,) if isinstance(padding, tuple) else padding
    _check_against_torch(sd.conv1d, tfn, X, K, B, fmt, stride=stride, padding=pad,
                         dilation=dilation, groups=groups)


# (size, stride, padding, input spatial shape): tiled windows take the reshape-and-reduce
# path, the others the strided slices
POOLS = [(2, None, 0, (8, 8)), (2, None, 0, (8, 9)), (3, 2, 1, (8, 9)),
         ((2, 3), (1, 2), (1, 1), (7, 8)), (2, 1, 0, (5, 6)), ((2, 4), None, 0, (6, 8))]


@pytest.mark.parametrize("fmt", ["NCHW", "NHWC", "HWNC"])
@pytest.mark.parametrize("case", POOLS)
def test_pooling_matches_torch(case, fmt):
    size, stride, padding, hw = case
    rng = np.random.default_rng(3)
    X = rng.standard_normal((2, 3) + hw)
    Xv = _to(X, fmt)
    x = sd.var("x", Xv.shape)
    runs = [(sd.max_pool2d(x, size, stride, padding, data_format=fmt), TF.max_pool2d, {}),
            (sd.avg_pool2d(x, size, stride, padding, data_format=fmt), TF.avg_pool2d, {})]
    if padding:
        runs.append((sd.avg_pool2d(x, size, stride, padding, count_include_pad=False,
                                   data_format=fmt), TF.avg_pool2d,
                     {"count_include_pad": False}))
    for y, tfn, kw in runs:
        Xt = torch.tensor(X, requires_grad=True)
        yt = tfn(Xt, size, stride, padding, **kw)
        U = rng.standard_normal(yt.shape)
        (yt * torch.tensor(U)).sum().backward()
        val, gx = sd.evaluate([y, sd.vjp(y, x, sd.const(_to(U, fmt)))], {x: Xv})
        _close(_back(val, fmt), yt.detach().numpy(), f"{tfn.__name__} {case} {fmt} value")
        _close(_back(gx, fmt), Xt.grad.numpy(), f"{tfn.__name__} {case} {fmt} d/dx")


def test_max_pool_ties_go_to_the_first_maximum():
    x = sd.var("x", (1, 1, 2, 4))
    X = np.array([[[[1.0, 1.0, 0.0, 2.0], [1.0, 0.0, 2.0, 2.0]]]])
    for y in (sd.max_pool2d(x, 2), sd.max_pool2d(x, 2, stride=2, padding=((0, 0), (0, 0)),
                                                  dilation=1),
              sd.max_pool2d(x, (2, 2), stride=(2, 2), padding=0)):
        g = sd.evaluate(sd.grad(sd.sum(y), x), {x: X})
        Xt = torch.tensor(X, requires_grad=True)
        TF.max_pool2d(Xt, 2).sum().backward()
        assert np.array_equal(g, Xt.grad.numpy())


def _same_conv_oracle(X, K, stride, dilation):
    """'SAME' as in TensorFlow and JAX, by direct loops: out = ceil(n / s) per axis, the
    padding (out - 1) s + (k - 1) d + 1 - n split with its smaller half before."""
    n, h, w, c = X.shape
    kh, kw, _, o = K.shape
    outs, pads = [], []
    for size, k, s_, d in ((h, kh, stride, dilation[0]), (w, kw, stride, dilation[1])):
        out = -(-size // s_)
        total = max((out - 1) * s_ + (k - 1) * d + 1 - size, 0)
        outs.append(out)
        pads.append((total // 2, total - total // 2))
    Xp = np.pad(X, ((0, 0), pads[0], pads[1], (0, 0)))
    Y = np.zeros((n, outs[0], outs[1], o))
    for i in range(outs[0]):
        for j in range(outs[1]):
            for a in range(kh):
                for b in range(kw):
                    Y[:, i, j] += Xp[:, i * stride + a * dilation[0],
                                     j * stride + b * dilation[1]] @ K[a, b]
    return Y


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_same_padding_matches_tensorflow_and_jax_rule(stride):
    rng = np.random.default_rng(4)
    X, K = rng.standard_normal((2, 9, 8, 3)), rng.standard_normal((4, 3, 3, 5))
    want = _same_conv_oracle(X, K, stride, (1, 2))
    x = sd.var("x", X.shape)
    y = sd.conv2d(x, sd.const(K), stride, "same", (1, 2), data_format="NHWC")
    assert y.shape == want.shape
    _close(sd.evaluate(y, {x: X}), want, "same padding")


def test_finite_differences_both_modes():
    rng = np.random.default_rng(5)
    x, k = sd.var("x", (2, 4, 5, 5)), sd.param("k", (4, 2, 2, 3))
    b = sd.param("b", (4,))
    env = {x: rng.standard_normal((2, 4, 5, 5)), k: rng.standard_normal((4, 2, 2, 3)),
           b: rng.standard_normal(4)}
    y = sd.conv2d(x, k, stride=(2, 1), padding=1, dilation=(1, 2), groups=2, bias=b)
    check_grads(y, env, order=2)
    check_grads(sd.tanh(sd.max_pool2d(y, 2, 1, 1)), env, order=1)
    check_grads(sd.avg_pool2d(sd.conv2d(x, k, padding="same", groups=2), 2), env, order=1)
    x1, k1 = sd.var("x1", (2, 7, 3)), sd.param("k1", (3, 3, 4))
    check_grads(sd.conv1d(x1, k1, 2, "same", data_format="NWC"),
                {x1: rng.standard_normal((2, 7, 3)), k1: rng.standard_normal((3, 3, 4))})


def _raises(match, fn, *args, **kw):
    with pytest.raises(sd.ShapeError, match=match):
        fn(*args, **kw)


def test_conv_pads_same_by_default():
    x = sd.var("x", (None, 3, 7, 6))
    assert sd.conv2d(x, sd.param("k", (4, 3, 3, 2)), stride=2).shape == (x.shape[0], 4, 4, 3)
    assert sd.conv1d(sd.var("s", (2, 3, 9)), sd.param("w", (4, 3, 5))).shape == (2, 4, 9)


def test_shape_errors_name_the_op_and_shapes():
    x = sd.var("x", (None, 3, 8, 8))
    _raises(r"conv2d: input `x` \(None, 3, 8, 8\) \(NCHW\) has 3 channels, kernel `k` "
            r"\(4, 2, 3, 3\) \(OIHW\) expects 2 per group x 1 group\(s\) = 2",
            sd.conv2d, x, sd.param("k", (4, 2, 3, 3)))
    _raises(r"conv2d: groups=2 must divide the input channels \(3\)", sd.conv2d, x,
            sd.param("k", (4, 1, 3, 3)), groups=2)
    _raises(r"conv2d: the kernel \(9, 9\) \(extent 9 with dilation\) is larger than the padded "
            r"input \(8 \+ 0 \+ 0 = 8\)", sd.conv2d, x, sd.param("k", (4, 3, 9, 9)),
            padding="valid")
    _raises(r"conv2d: the kernel \(3, 3\) \(extent 5 with dilation\)", sd.conv2d,
            sd.var("s", (1, 3, 4, 4)), sd.param("k", (4, 3, 3, 3)), dilation=2, padding=0)
    _raises(r"conv2d: input `v` must be 4-d \(NCHW\), got shape \(3, 8, 8\)", sd.conv2d,
            sd.var("v", (3, 8, 8)), sd.param("k", (4, 3, 3, 3)))
    _raises(r"conv2d: kernel `k` must be 4-d \(HWIO\)", sd.conv2d, sd.var("h", (1, 8, 8, 3)),
            sd.param("k", (3, 3, 3)), data_format="NHWC")
    _raises(r"conv2d: data_format must be 'NCHW', 'NHWC', 'HWNC', got 'NCW'", sd.conv2d, x,
            sd.param("k", (4, 3, 3, 3)), data_format="NCW")
    _raises(r"conv2d: the channel and spatial dims of `z` must be ints", sd.conv2d,
            sd.var("z", (1, 3, None, 8)), sd.param("k", (4, 3, 3, 3)))
    _raises(r"conv2d: bias `b` must have shape \(4,\)", sd.conv2d, x,
            sd.param("k", (4, 3, 3, 3)), bias=sd.param("b", (3,)))
    _raises(r"conv2d: stride must be an int >= 1 or 2 of them, got 0", sd.conv2d, x,
            sd.param("k", (4, 3, 3, 3)), stride=0)
    _raises(r"conv2d: padding must be 'same', 'valid'", sd.conv2d, x,
            sd.param("k", (4, 3, 3, 3)), padding="full")
    _raises(r"conv1d: input `x` must be 3-d \(NCW\)", sd.conv1d, x, sd.param("k", (4, 3, 3)))
    _raises(r"max_pool2d: the window \(3, 3\) \(extent 3 with dilation\) is larger than the "
            r"padded input \(2 \+ 0 \+ 0 = 2\)", sd.max_pool2d, sd.var("p", (1, 1, 2, 2)), 3)
    _raises(r"avg_pool2d: size must be an int >= 1 or 2 of them", sd.avg_pool2d, x, (2, 2, 2))


def _kernel_vs_interpreter(terms, inputs, params, extra, rng, batches=(3, 1)):
    """Compile loss = sum tanh(terms) with its gradients (and ``extra`` outputs), call it at
    several batch sizes, compare with the interpreter (rtol 1e-12)."""
    loss = sum(sd.sum(sd.tanh(t)) for t in terms)
    outs = [loss] + sd.grad(loss, params + inputs) + extra(loss)
    f = sd.compile(inputs + params, outs)
    vals = [rng.standard_normal(p.shape) for p in params]
    for n in batches:
        data = [rng.standard_normal((n,) + v.shape[1:]) for v in inputs]
        got = f(*data, *vals)
        want = sd.evaluate(outs, dict(zip(inputs + params, data + vals)))
        for i, (g, w) in enumerate(zip(got, want)):
            np.testing.assert_allclose(g, w, rtol=1e-12, atol=1e-12, err_msg=f"output {i}")


def test_compiled_kernel_equals_interpreter():
    """One float64 kernel with a symbolic batch: a grouped, strided, dilated, asymmetrically
    padded NCHW conv with bias and overlapping padded max pooling; values and gradients at
    two batch sizes. (The conv net's tests compile NHWC convs and tiled pooling in float32.)"""
    rng = np.random.default_rng(6)
    x = sd.var("x", ("batch", 4, 9, 8))
    k1, b1 = sd.param("k1", (6, 2, 3, 3)), sd.param("b1", (6,))
    h = sd.conv2d(x, k1, stride=(2, 1), padding=((1, 0), (2, 1)), dilation=(1, 2), groups=2,
                  bias=b1)
    _kernel_vs_interpreter([sd.max_pool2d(h, 2, 1, 1)], [x], [k1, b1], lambda loss: [], rng)


@pytest.mark.slow       # ~1.5 minutes of Numba compile on 2 busy cores
def test_compiled_kernel_equals_interpreter_more():
    """NHWC "same" strided conv with tiled max pooling, average pooling (tiled and sliced,
    count_include_pad=False), a depthwise NHWC conv, conv1d in both layouts with bias, and
    forward mode (a JVP) in the same kernel."""
    rng = np.random.default_rng(7)
    x, s = sd.var("x", ("batch", 7, 8, 4)), sd.var("s", ("batch", 10, 4))
    sc = sd.var("sc", ("batch", 4, 10))
    k1, k2, b2 = sd.param("k1", (3, 2, 1, 4)), sd.param("k2", (3, 2, 4)), sd.param("b2", (4,))
    k3, k4 = sd.param("k3", (2, 3, 4, 6)), sd.param("k4", (3, 4, 3))
    h = sd.relu(sd.conv2d(x, k1, padding=1, groups=4, data_format="NHWC"))
    hl = sd.conv2d(x, k3, padding="same", stride=2, data_format="NHWC")
    terms = [sd.avg_pool2d(h, (2, 3), (1, 2), 1, count_include_pad=False, data_format="NHWC"),
             sd.avg_pool2d(h[:, :6], 2, data_format="NHWC"),
             sd.max_pool2d(hl, 2, data_format="NHWC"),
             sd.conv1d(s, k2, 1, (2, 1), 2, 2, data_format="NWC", bias=b2),
             sd.conv1d(sc, k4, 2, "same")]
    params = [k1, k2, b2, k3, k4]
    _kernel_vs_interpreter(terms, [x, s, sc], params, lambda loss: [sd.jvp(
        loss, params, [sd.const(rng.standard_normal(p.shape)) for p in params])], rng)
