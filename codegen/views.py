"""Facts about nodes and spaces that every lowering pass and the renderer share: which
nodes are index views of their source (no copy), and the loop variables of a space."""
from symdiff.ops import Op

VIEWS = frozenset({Op.TRANSPOSE, Op.BROADCAST_TO, Op.RESHAPE})


def unit_reshape(n):
    """A reshape that only inserts or removes size-1 axes: an index map, not a copy."""
    return [d for d in n.shape if d != 1] == [d for d in n.src[0].shape if d != 1]


def is_index_view(n):
    """A transpose, a broadcast or a unit reshape: element i of ``n`` is an element of its
    source at an index computed from i, read in place."""
    return n.op in VIEWS and (n.op is not Op.RESHAPE or unit_reshape(n))


def is_matrix_transpose(n):
    """A transpose of the last two axes only (a matrix, or a batch of them): BLAS reads it
    as a transposed view of its source, no copy."""
    k = n.ndim
    return n.op is Op.TRANSPOSE and k >= 2 and n.arg == tuple(range(k - 2)) + (k - 1, k - 2)


def blas_operand(s):
    """The node whose buffer BLAS reads for matmul operand ``s``: a matrix transpose is read
    as a transposed view of its source's buffer."""
    return s.src[0] if is_matrix_transpose(s) else s


def loop_vars(space):
    """The index variables of a loop nest over ``space``: ("i0", "i1", ...)."""
    return tuple(f"i{k}" for k in range(len(space)))


def outer_vars(space):
    """The variables of a nest's outer loops (all but the last axis; rank <= 1: all)."""
    return loop_vars(space)[:len(space) - 1] if len(space) >= 2 else loop_vars(space)
