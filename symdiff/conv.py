"""Convolution and pooling as composites: an im2col gather and one GEMM per output position.

No primitive of their own: a convolution is a pad, a gather of the receptive fields (im2col,
an index map read inside the loop that packs the GEMM operand), a matmul, and transposes;
pooling is an elementwise maximum (or sum) of the strided slices of the padded input, one per
tap of the window. Derivatives in both modes come from those primitives' rules: the VJP of
the gather is a scatter-add (col2im), the VJP of a slice is a zero pad.

Conventions are PyTorch's (``torch.nn.functional.conv2d``), which JAX's
``lax.conv_general_dilated`` shares up to the dimension names:

- ``data_format="NCHW"`` (the default): x is (N, C, H, W) and the kernel is OIHW
  (out_channels, in_channels / groups, kh, kw), exactly torch's layout;
- ``data_format="NHWC"``: x is (N, H, W, C) and the kernel is HWIO (kh, kw,
  in_channels / groups, out_channels), the TensorFlow / Flax layout;
- ``data_format="HWNC"``: x is (H, W, N, C) with an HWIO kernel: the spatial-major layout
  the convolution computes in (one GEMM per output position with the batch as its rows; a
  symbolic batch dim cannot merge with the spatial dims into one big GEMM). NCHW and NHWC
  inputs are transposed into it and the result back; a network that keeps its activations
  in HWNC between layers (as ``symdiff.models.cnn`` does) pays for no transposes;
- conv1d likewise with "NCW" (kernel OIW), "NWC" and "WNC" (kernel WIO).

Like torch (and unlike signal processing) the kernel is not flipped: a cross-correlation,

    y[n, o, i, j] = bias[o] + sum_{c, p, q} x_pad[n, g(o) C_g + c, i s_h + p d_h, j s_w + q d_w]
                                            * k[o, c, p, q],

with C_g = C / groups input channels per group, g(o) = o // (O / groups) the group of output
channel o, s the stride and d the dilation. Each spatial output size is

    out = floor((in + pad_lo + pad_hi - d (k - 1) - 1) / s) + 1.

``padding`` is "valid" (none), "same" (out = ceil(in / s), total padding
max((out - 1) s + d (k - 1) + 1 - in, 0) with the odd one at the end, as JAX and TensorFlow
do; torch accepts "same" for stride 1 only, where the two agree), an int or one int per
spatial dim (that many on both sides, torch's convention), or one (lo, hi) pair per spatial
dim. The batch dim may be symbolic; the spatial and channel dims must be ints.

>>> import symdiff as sd, numpy as np
>>> x = sd.var("x", (None, 1, 4, 4)); k = sd.param("k", (2, 1, 3, 3))
>>> y = sd.conv2d(x, k, padding="same")
>>> y.shape
(None, 2, 4, 4)
>>> out = sd.evaluate(y, {x: np.ones((1, 1, 4, 4)), k: np.ones((2, 1, 3, 3))})
>>> out[0, 0].tolist()
[[4.0, 6.0, 6.0, 4.0], [6.0, 9.0, 9.0, 6.0], [6.0, 9.0, 9.0, 6.0], [4.0, 6.0, 6.0, 4.0]]
"""
import itertools
import math

import numpy as np

from .dims import Dim, shape_str
from .errors import ShapeError
from .frontend import as_node, const, matmul, maximum, reshape, transpose
from .tensor import pad_axes, slice_axes, take

_LAYOUTS = {1: ("NCW", "NWC", "WNC"), 2: ("NCHW", "NHWC", "HWNC")}


# --- argument normalization --------------------------------------------------------------
def _ints(value, n, what, op, low=1):
    """An int or n ints -> a tuple of n ints >= low."""
    vals = (value,) * n if isinstance(value, (int, np.integer)) else tuple(value)
    if len(vals) != n or not all(isinstance(v, (int, np.integer)) and v >= low for v in vals):
        raise ShapeError(f"{op}: {what} must be an int >= {low} or {n} of them, got {value!r}")
    return tuple(int(v) for v in vals)


def _padding(padding, sizes, window, stride, op):
    """Per spatial dim (lo, hi) from "valid" | "same" | int | ints | (lo, hi) pairs.
    ``window`` is the dilated kernel extent d (k - 1) + 1."""
    n = len(sizes)
    if isinstance(padding, str):
        if padding.lower() == "valid":
            return ((0, 0),) * n
        if padding.lower() == "same":
            out = []
            for size, w, s in zip(sizes, window, stride):
                total = max((-(-size // s) - 1) * s + w - size, 0)
                out.append((total // 2, total - total // 2))
            return tuple(out)
        raise ShapeError(f"{op}: padding must be 'same', 'valid', an int or (lo, hi) pairs, "
                         f"got {padding!r}")
    if isinstance(padding, (int, np.integer)):
        padding = (padding,) * n
    pads = tuple(padding)
    if n == 1 and len(pads) == 2 and all(isinstance(p, (int, np.integer)) for p in pads):
        pads = (pads,)                  # conv1d: one (lo, hi) pair needs no extra nesting
    if len(pads) == n and all(isinstance(p, (int, np.integer)) for p in pads):
        pads = tuple((p, p) for p in pads)
    ok = len(pads) == n and all(
        len(p) == 2 and all(isinstance(v, (int, np.integer)) and v >= 0 for v in p)
        for p in (q if isinstance(q, (tuple, list)) else (q,) for q in pads))
    if not ok:
        raise ShapeError(f"{op}: padding must be 'same', 'valid', an int >= 0, one int or one "
                         f"(lo, hi) pair per spatial dim ({n}), got {padding!r}")
    return tuple((int(lo), int(hi)) for lo, hi in pads)


def _layout(x, n, data_format, op):
    """(perm, last, spatial sizes, channels) of x, checked: ``perm`` takes x to the
    spatial-major layout (*S, N, C); ``last`` is False for channels-first (OIHW kernels)."""
    formats = _LAYOUTS[n]
    if data_format not in formats:
        raise ShapeError(f"{op}: data_format must be {', '.join(map(repr, formats))}, got "
                         f"{data_format!r}")
    if x.ndim != n + 2:
        raise ShapeError(f"{op}: input `{x.name}` must be {n + 2}-d ({data_format}), got shape "
                         f"{shape_str(x.shape)}")
    kind = formats.index(data_format)
    perm = [tuple(range(2, n + 2)) + (0, 1), tuple(range(1, n + 1)) + (0, n + 1),
            tuple(range(n + 2))][kind]
    spatial = tuple(x.shape[a] for a in perm[:n])
    channels = x.shape[perm[-1]]
    if any(isinstance(d, Dim) for d in spatial + (channels,)):
        raise ShapeError(f"{op}: the channel and spatial dims of `{x.name}` must be ints "
                         f"(only the batch dim may be symbolic), got shape "
                         f"{shape_str(x.shape)} ({data_format})")
    return perm, kind > 0, spatial, channels


def _out_sizes(sizes, pads, window, stride, op, what):
    out = []
    for size, (lo, hi), w, s in zip(sizes, pads, window, stride):
        if size + lo + hi < w:
            raise ShapeError(f"{op}: the {what} (extent {w} with dilation) is larger than the "
                             f"padded input ({size} + {lo} + {hi} = {size + lo + hi}) along a "
                             f"spatial dim")
        out.append((size + lo + hi - w) // s + 1)
    return tuple(out)


def _inverse(perm):
    return tuple(perm.index(a) for a in range(len(perm)))


# --- convolution -------------------------------------------------------------------------
def _conv(x, k, n, stride, padding, dilation, groups, data_format, bias, op):
    x, k = as_node(x), as_node(k)
    perm, last, sizes, chans = _layout(x, n, data_format, op)
    stride = _ints(stride, n, "stride", op)
    dilation = _ints(dilation, n, "dilation", op)
    if not isinstance(groups, (int, np.integer)) or groups < 1:
        raise ShapeError(f"{op}: groups must be an int >= 1, got {groups!r}")
    groups = int(groups)
    kfmt = ("".join("HW"[-n:]) + "IO") if last else "OI" + "HW"[-n:]
    if k.ndim != n + 2 or any(isinstance(d, Dim) for d in k.shape):
        raise ShapeError(f"{op}: kernel `{k.name}` must be {n + 2}-d ({kfmt}) with int dims, "
                         f"got shape {shape_str(k.shape)}")
    ks, cin, cout = (k.shape[:n], k.shape[n], k.shape[n + 1]) if last else \
        (k.shape[2:], k.shape[1], k.shape[0])
    if chans % groups or cout % groups:
        raise ShapeError(f"{op}: groups={groups} must divide the input channels ({chans}) and "
                         f"the output channels ({cout}) of kernel `{k.name}` "
                         f"{shape_str(k.shape)} ({kfmt})")
    if cin * groups != chans:
        raise ShapeError(f"{op}: input `{x.name}` {shape_str(x.shape)} ({data_format}) has "
                         f"{chans} channels, kernel `{k.name}` {shape_str(k.shape)} ({kfmt}) "
                         f"expects {cin} per group x {groups} group(s) = {cin * groups}")
    window = tuple(d * (s - 1) + 1 for s, d in zip(ks, dilation))
    pads = _padding(padding, sizes, window, stride, op)
    outs = _out_sizes(sizes, pads, window, stride, op, f"kernel {shape_str(ks)}")
    # (*S, N, C): the batch sits inside every GEMM row block, so one GEMM per output position
    # has M = batch rows (the batch dim may be symbolic, and a symbolic dim cannot be merged
    # with the spatial ones into one GEMM dim)
    xs = transpose(x, perm)
    xs = pad_axes(xs, [(lo, hi, 0) for lo, hi in pads] + [(0, 0, 0)] * 2)
    padded = tuple(s + lo + hi for s, (lo, hi) in zip(sizes, pads))
    taps = math.prod(ks)
    batch = xs.shape[n]
    cols = _patches(xs, padded, ks, outs, stride, dilation)       # (P, T, N, C)
    P = math.prod(outs)
    # the kernel as (T, C_g, O): tap-major rows matching the columns of `cols`
    w = reshape(k, (taps, cin, cout)) if last else \
        reshape(transpose(k, tuple(range(2, n + 2)) + (1, 0)), (taps, cin, cout))
    if groups == 1:
        a = reshape(transpose(cols, (0, 2, 1, 3)), (P, batch, taps * cin))
        y = matmul(a, reshape(w, (taps * cin, cout)))                 # (P, N, O)
    else:
        og = cout // groups
        a = reshape(cols, (P, taps, batch, groups, cin))
        a = reshape(transpose(a, (0, 3, 2, 1, 4)), (P, groups, batch, taps * cin))
        wg = transpose(reshape(w, (taps, cin, groups, og)), (2, 0, 1, 3))
        y = matmul(a, reshape(wg, (groups, taps * cin, og)))         # (P, G, N, O_g)
        y = reshape(transpose(y, (0, 2, 1, 3)), (P, batch, cout))
    y = transpose(reshape(y, outs + (batch, cout)), _inverse(perm))
    if bias is not None:
        bias = as_node(bias)
        if bias.shape != (cout,):
            raise ShapeError(f"{op}: bias `{bias.name}` must have shape ({cout},) (one per "
                             f"output channel), got {shape_str(bias.shape)}")
        y = y + (bias if last else reshape(bias, (cout,) + (1,) * n))
    return y


def _patches(xs, padded, ks, outs, stride, dilation):
    """im2col: (prod(outs), prod(ks), N, C) receptive fields of xs (*padded, N, C), gathered
    from its flattened spatial axis: field of output position o, tap t at
    sum_axis (o_a s_a + t_a d_a) * (row stride of axis a)."""
    flat = reshape(xs, (math.prod(padded),) + xs.shape[-2:])
    strides = np.cumprod((1,) + padded[:0:-1])[::-1]              # row-major strides
    pos = np.array(list(itertools.product(*[range(o) for o in outs])), dtype=np.int64)
    tap = np.array(list(itertools.product(*[range(k) for k in ks])), dtype=np.int64)
    start = (pos * np.array(stride)) @ strides
    offset = (tap * np.array(dilation)) @ strides
    idx = start[:, None] + offset[None, :]
    return take(flat, const(idx), axis=0)


def conv2d(x, k, stride=1, padding="same", dilation=1, groups=1, data_format="NCHW",
           bias=None):
    """2-D convolution (cross-correlation, torch.nn.functional.conv2d's semantics).

    x: (N, C, H, W) with kernel k OIHW (O, C / groups, kh, kw) for ``data_format="NCHW"``,
    or (N, H, W, C) with k HWIO (kh, kw, C / groups, O) for "NHWC", or (H, W, N, C) with k
    HWIO for "HWNC"; the output has the input's layout with O channels:

        y[n, o, i, j] = bias[o] + sum_{c, p, q} x_pad[n, g C_g + c, i s_h + p d_h, j s_w + q d_w]
                                                * k[o, c, p, q]       (g = o // (O / groups))

    and spatial size out = floor((in + lo + hi - d (k - 1) - 1) / s) + 1. ``stride`` and
    ``dilation`` are an int or a pair; ``padding`` is "same" (the default, as in Flax's
    nn.Conv: out = ceil(in / s)), "valid" (torch's default, padding=0), an int or a pair of
    ints (each on both sides), or ((lo_h, hi_h), (lo_w, hi_w)).
    ``groups`` splits the channels into independent convolutions (groups = C: depthwise).
    ``bias``: an optional (O,) vector added per output channel.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (None, 5, 5, 3)); k = sd.param("k", (3, 3, 3, 8))
    >>> sd.conv2d(x, k, stride=2, padding="same", data_format="NHWC").shape
    (None, 3, 3, 8)
    >>> x1 = sd.var("x1", (1, 1, 3, 3)); k1 = sd.const(np.ones((1, 1, 2, 2)))
    >>> sd.evaluate(sd.conv2d(x1, k1, padding="valid"), {x1: np.arange(9.0).reshape(1, 1, 3, 3)})[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    """
    return _conv(x, k, 2, stride, padding, dilation, groups, data_format, bias, "conv2d")


def conv1d(x, k, stride=1, padding="same", dilation=1, groups=1, data_format="NCW",
           bias=None):
    """1-D convolution (torch.nn.functional.conv1d): x (N, C, L) with kernel OIW (O, C /
    groups, kw) for "NCW", or x (N, L, C) with kernel WIO for "NWC";
    y[n, o, i] = bias[o] + sum_{c, q} x_pad[n, g C_g + c, i s + q d] k[o, c, q], out =
    floor((L + lo + hi - d (kw - 1) - 1) / s) + 1. Arguments as in ``conv2d``; ``padding``
    may also be one (lo, hi) pair.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (1, 1, 5)); k = sd.const(np.array([[[1.0, -1.0]]]))
    >>> sd.evaluate(sd.conv1d(x, k, padding="valid"), {x: np.array([[[0.0, 1, 3, 6, 10]]])}).tolist()
    [[[-1.0, -2.0, -3.0, -4.0]]]
    """
    return _conv(x, k, 1, stride, padding, dilation, groups, data_format, bias, "conv1d")


# --- pooling -----------------------------------------------------------------------------
def _windows(x, n, size, stride, padding, dilation, data_format, fill, op):
    """The strided slices of padded x, one per tap of the window, and the padding used."""
    x = as_node(x)
    perm, last, sizes, _ = _layout(x, n, data_format, op)
    size = _ints(size, n, "size", op)
    stride = size if stride is None else _ints(stride, n, "stride", op)
    dilation = _ints(dilation, n, "dilation", op)
    window = tuple(d * (s - 1) + 1 for s, d in zip(size, dilation))
    pads = _padding(padding, sizes, window, stride, op)
    outs = _out_sizes(sizes, pads, window, stride, op, f"window {shape_str(size)}")
    axes = perm[:n]
    widths = [(0, 0, 0)] * x.ndim
    for a, (lo, hi) in zip(axes, pads):
        widths[a] = (lo, hi, 0)
    xp = pad_axes(x, widths, fill)
    parts = []
    for tap in itertools.product(*[range(s) for s in size]):
        spec = [None] * x.ndim
        for a, t, s, d, o in zip(axes, tap, stride, dilation, outs):
            spec[a] = (t * d, s, o)
        parts.append(slice_axes(xp, spec))
    return parts, pads, (sizes, axes, size, stride, dilation, outs)


def _tiles(x, n, size, stride, padding, dilation, data_format, op):
    """The window taps of pooling windows that tile the input (stride = size, no padding or
    a "same" that adds none, dilation 1, sizes divisible), or None: each spatial axis split
    into (out, size) and one slice per tap. The derivative of such a slice is a pad of a
    size-1 axis (a compare per element), where a strided slice's is an interior pad (a
    division and a remainder per element and tap)."""
    x = as_node(x)
    perm, _, sizes, _ = _layout(x, n, data_format, op)
    size = _ints(size, n, "size", op)
    if (stride is not None and _ints(stride, n, "stride", op) != size) or \
            _ints(dilation, n, "dilation", op) != (1,) * n or \
            any(s % k for s, k in zip(sizes, size)):
        return None
    if _padding(padding, sizes, size, size, op) != ((0, 0),) * n:
        return None
    split, taps, out = [], [], []
    for a, d in enumerate(x.shape):
        if a in perm[:n]:
            k = size[perm[:n].index(a)]
            split += [d // k, k]
            taps.append(len(split) - 1)
            out.append(d // k)
        else:
            split.append(d)
            out.append(d)
    xr = reshape(x, tuple(split))
    parts = []
    for tap in itertools.product(*[range(k) for k in size]):
        spec = [None] * len(split)
        for a, t in zip(taps, (tap[perm[:n].index(b)] for b in sorted(perm[:n]))):
            spec[a] = (t, 1, 1)
        parts.append(reshape(slice_axes(xr, spec), tuple(out)))
    return parts


def _tree(parts, fn):
    """fn-reduce pairwise, keeping the order (so a tie of maximum goes to the first tap)."""
    while len(parts) > 1:
        parts = [fn(parts[i], parts[i + 1]) if i + 1 < len(parts) else parts[i]
                 for i in range(0, len(parts), 2)]
    return parts[0]


def max_pool2d(x, size, stride=None, padding="valid", dilation=1, data_format="NCHW"):
    """Max pooling: y[n, c, i, j] = max_{p, q} x_pad[n, c, i s_h + p d_h, j s_w + q d_w] over
    the size[0] x size[1] window, padding with -inf (torch.nn.functional.max_pool2d;
    ``stride`` defaults to ``size``). Output size as for conv2d. The derivative flows to one
    maximum per window (the first in row-major order, as torch's). Built as an elementwise
    maximum of the window's strided slices.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (1, 1, 4, 4))
    >>> sd.evaluate(sd.max_pool2d(x, 2), {x: np.arange(16.0).reshape(1, 1, 4, 4)})[0, 0]
    array([[ 5.,  7.],
           [13., 15.]])
    """
    parts = _tiles(x, 2, size, stride, padding, dilation, data_format, "max_pool2d") or \
        _windows(x, 2, size, stride, padding, dilation, data_format, -np.inf, "max_pool2d")[0]
    return _tree(parts, maximum)


def avg_pool2d(x, size, stride=None, padding="valid", count_include_pad=True,
               data_format="NCHW"):
    """Average pooling: y[n, c, i, j] = (1 / count) sum_{p, q} x_pad[n, c, i s_h + p, j s_w + q]
    (torch.nn.functional.avg_pool2d; ``stride`` defaults to ``size``; zero padding). count is
    size[0] size[1] when ``count_include_pad`` (torch's default), else the number of window
    taps inside the unpadded input.

    >>> import symdiff as sd, numpy as np
    >>> x = sd.var("x", (1, 4, 4, 1))
    >>> sd.evaluate(sd.avg_pool2d(x, 2, data_format="NHWC"),
    ...             {x: np.arange(16.0).reshape(1, 4, 4, 1)})[0, :, :, 0]
    array([[ 2.5,  4.5],
           [10.5, 12.5]])
    """
    x = as_node(x)
    tiled = _tiles(x, 2, size, stride, padding, 1, data_format, "avg_pool2d")
    if tiled is not None:
        return _tree(tiled, lambda a, b: a + b) * (1.0 / len(tiled))
    parts, pads, (sizes, axes, size, stride, _, outs) = _windows(
        x, 2, size, stride, padding, 1, data_format, 0.0, "avg_pool2d")
    total = _tree(parts, lambda a, b: a + b)
    if count_include_pad or not any(lo or hi for lo, hi in pads):
        return total * (1.0 / math.prod(size))
    # taps inside the input per output position, an outer product of per-axis counts
    count = np.ones(outs)
    for k, (n_in, (lo, _), s, w, o) in enumerate(zip(sizes, pads, stride, size, outs)):
        start = np.arange(o) * s - lo
        per = np.minimum(start + w, n_in) - np.maximum(start, 0)
        count = count * per.reshape([-1 if j == k else 1 for j in range(len(outs))])
    shape = outs + (1,) * (x.ndim - 1 - axes[-1])
    return total * const(1.0 / count.reshape(shape), x.dtype)
