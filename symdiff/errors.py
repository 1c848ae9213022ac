"""Exceptions raised by symdiff. Each message names the op, the arguments and the shapes at fault."""


class SymdiffError(Exception):
    """Base class of all symdiff errors."""


class ShapeError(SymdiffError, ValueError):
    """Shapes that do not fit an op, raised when the expression is declared."""


class DTypeError(SymdiffError, TypeError):
    """A dtype an op or a transform does not accept."""


class ArgumentError(SymdiffError, ValueError):
    """A call-time argument (count, shape, dtype, value) that does not fit the compiled signature."""


class DifferentiationError(SymdiffError, ValueError):
    """A derivative that cannot be formed (disconnected input, integer input, non-scalar grad...)."""


class FormatError(SymdiffError, ValueError):
    """A saved graph file that ``sd.load`` cannot read: not a symdiff graph, written by a newer
    format version, truncated, altered after it was written, or describing an invalid graph."""
