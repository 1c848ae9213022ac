"""symdiff: a symbol-to-symbol differentiation compiler.

Declare a model as a graph, derive its gradient graph in forward or reverse mode, simplify it,
and compile it to a fused Numba kernel.

>>> import symdiff as sd, numpy as np
>>> x = sd.var("x", shape=(None, 3)); w = sd.param("w", shape=(3,))
>>> loss = sd.mean(sd.square(x @ w - 1.0))
>>> g = sd.grad(loss, w)
>>> sd.evaluate(g, {x: np.eye(3), w: np.zeros(3)}).tolist()
[-0.6666666666666666, -0.6666666666666666, -0.6666666666666666]
"""
from ._blas import tune_if_asked, tune_openblas

tune_if_asked()     # opt-in (SYMDIFF_TUNE_BLAS=1), before SciPy's OpenBLAS loads: see _blas.py

from . import dtypes  # noqa: E402
from .api import grad, hessian, hvp, jacobian, jvp, value_and_grad, vjp
from .dot import render, to_dot
from .compare import compare_modes, time_comparisons
from .cost import Cost, calibrate, graph_cost
from .composites import (abs_rect, clip, elu, hard_tanh, leaky_relu, log_sigmoid, log_softmax,
                         logaddexp, logsumexp, maxout, mean, min, prelu, rbf, relu, softmax,
                         square, swish)
from .dims import Dim, dim
from .errors import (ArgumentError, DifferentiationError, DTypeError, FormatError,
                     ShapeError, SymdiffError)
from .frontend import (abs, add, argmax_mask, as_node, broadcast_to, cast, const, cos, div,
                       equal, exp, expm1, greater, greater_equal, less, less_equal, log, log1p,
                       matmul, matrix_transpose, max, maximum, minimum, mul, neg, not_equal,
                       one_hot, param, pow, reshape, sigmoid, sign, sin, size_of, softplus, sqrt,
                       stop_gradient, sub, sum, take_rows, tanh, transpose, var, where)
from .einsum import einsum
from .conv import avg_pool2d, conv1d, conv2d, max_pool2d
from .function import compile
from .joins import (cumprod, diag, diagonal, eye, pad, prod, repeat, split, stack, tile, trace,
                    tril, triu)
from .tensor import (argmax, argmin, concatenate, cumsum, flip, index_add, iota, scatter_add,
                     segment_sum, take, take_along_axis)
from .frontend import digamma, erf, erfc, lgamma, log_ndtr, polygamma
from . import special
from .graph import Node, count_ops, substitute, toposort
from .interpret import evaluate
from .modes import JacobianPlan, plan_jacobian
from .loops import fori_loop, scan
from .losses import (binary_cross_entropy, binary_cross_entropy_with_logits, cross_entropy,
                     exponential_loss, gaussian_nll, hinge, mixture_nll, mse,
                     softmax_cross_entropy)
from .ops import Op
from .printing import to_text
from .persist import load, save
from .simplify import simplify


def __getattr__(name):
    # the SymPy bridge is loaded on first use: importing sympy costs ~0.3 s
    if name in ("to_sympy", "from_sympy", "sympy_definitions"):
        from . import sympy_bridge
        return getattr(sympy_bridge, name)
    if name == "elementwise":
        from .scalarfn import elementwise
        return elementwise
    raise AttributeError(f"module 'symdiff' has no attribute {name!r}")

__version__ = "0.1.0"
