"""Special functions under scipy.special's names: ``sd.special.lgamma``, ``digamma``,
``polygamma``, ``erf``, ``erfc``, ``log_ndtr``, ``logaddexp`` (primitives and a composite,
also at the top level as ``sd.lgamma`` ...) and ``multigammaln``, a graph of lgammas.
"""
import math

import numpy as np

from . import frontend as F
from .composites import logaddexp
from .frontend import digamma, erf, erfc, lgamma, log_ndtr, polygamma

__all__ = ["digamma", "erf", "erfc", "lgamma", "log_ndtr", "logaddexp", "multigammaln",
           "polygamma"]


def multigammaln(a, d):
    """log Gamma_d(a), the log of the multivariate gamma function (scipy.special.multigammaln):
    d (d - 1) / 4 log(pi) + sum_{j=1..d} lgamma(a + (1 - j) / 2), for a > (d - 1) / 2 (SciPy
    raises outside that domain; here the lgamma terms give their values).

    >>> import symdiff as sd, numpy as np
    >>> a = sd.var("a", (2,))
    >>> sd.evaluate(sd.special.multigammaln(a, 3), {a: np.array([3.0, 5.5])})
    array([ 2.69492488, 11.3066992 ])
    """
    if isinstance(d, bool) or not isinstance(d, (int, np.integer)) or d < 1:
        raise ValueError(f"multigammaln: the dimension d must be an int >= 1, got {d!r}")
    a = F.as_node(a)
    total = lgamma(a)
    for j in range(2, int(d) + 1):
        total = total + lgamma(a + (1 - j) / 2)      # a Python float: a float32 `a` stays float32
    return total + d * (d - 1) / 4 * math.log(math.pi)
