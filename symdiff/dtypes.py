"""The four dtypes of the IR and numpy's promotion rules between them.

Python scalars are "weak" (NEP 50): a float32 node times 0.5 stays float32, as in NumPy 2.
"""
import numpy as np

from .errors import DTypeError

FLOAT32, FLOAT64, INT64, BOOL = "float32", "float64", "int64", "bool"
DTYPES = (FLOAT32, FLOAT64, INT64, BOOL)
FLOATS = (FLOAT32, FLOAT64)
_ORDER = {BOOL: 0, INT64: 1, FLOAT32: 2, FLOAT64: 3}


def canonical(dtype, what="dtype"):
    """Map a user dtype (str, numpy dtype, python type) to one of DTYPES, or raise DTypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as e:
        raise DTypeError(f"{what}: {dtype!r} is not a dtype") from e
    name = dt.name
    if name in DTYPES:
        return name
    raise DTypeError(f"{what}: dtype {name} is not supported; use one of {', '.join(DTYPES)}")


def from_array(a, what="constant"):
    """The IR dtype for an array's values: ints become int64, other floats float64."""
    kind = a.dtype.kind
    if kind == "b":
        return BOOL
    if kind in "iu":
        return INT64
    if kind == "f":
        return a.dtype.name if a.dtype.name in FLOATS else FLOAT64
    raise DTypeError(f"{what}: values of dtype {a.dtype} are not supported "
                     f"(expected bool, integer or float)")


def is_float(dtype):
    return dtype in FLOATS


def promote(*dtypes):
    """numpy's result type among bool < int64 < float32 < float64 (int64 with float32 -> float64)."""
    top = max(dtypes, key=_ORDER.__getitem__)
    if top == FLOAT32 and INT64 in dtypes:
        return FLOAT64
    return top


def weak_scalar_dtype(value, other):
    """The dtype a Python scalar takes next to a node of dtype ``other`` (NEP 50 weak scalars)."""
    if isinstance(value, (bool, np.bool_)):
        return BOOL
    if isinstance(value, int):
        return other if other != BOOL else INT64
    if isinstance(value, float):
        return other if other in FLOATS else FLOAT64
    raise DTypeError(f"cannot use a {type(value).__name__} as a scalar operand")


def float_of(dtype):
    """The float dtype a float function maps ``dtype`` to (int64/bool -> float64, as numpy)."""
    return dtype if dtype in FLOATS else FLOAT64
