"""The closed set of primitive operations and their named groups.

Enum order is the order of the rule tables in ``rules.py`` and of the semantics table in
``semantics.py``. Everything that is not listed here (sigmoid-cross-entropy, mean, softmax...)
is a composite built from these primitives in ``composites.py`` / ``losses.py``.
"""
import enum


class Op(enum.Enum):
    # leaves
    VAR = "var"              # an input or parameter; arg = VarInfo
    CONST = "const"          # a constant array; arg = ConstValue
    DIM = "dim"              # the run-time size of a symbolic dim; arg = (Dim, dtype)
    # unary elementwise
    NEG = "neg"
    EXP = "exp"
    LOG = "log"
    LOG1P = "log1p"
    EXPM1 = "expm1"
    SQRT = "sqrt"
    TANH = "tanh"
    SIN = "sin"
    COS = "cos"
    ABS = "abs"
    SIGN = "sign"
    SIGMOID = "sigmoid"      # primitive for numerics and emitted speed: 1 / (1 + exp(-x))
    SOFTPLUS = "softplus"    # primitive for numerics: log(1 + exp(x)) without overflow
    CAST = "cast"            # arg = target dtype name
    STOP_GRADIENT = "stop_gradient"  # identity whose derivative is zero
    FN = "fn"                # an elementwise function defined by a SymPy expression (n-ary)
    # special functions (unary elementwise, scipy.special semantics)
    LGAMMA = "lgamma"        # log|Gamma(x)|
    DIGAMMA = "digamma"      # Gamma'(x) / Gamma(x)
    POLYGAMMA = "polygamma"  # the arg-th derivative of digamma; arg = order n >= 1
    ERF = "erf"
    ERFC = "erfc"            # 1 - erf(x) without cancellation
    LOG_NDTR = "log_ndtr"    # log of the standard normal CDF, finite for finite x
    # binary elementwise
    ADD = "add"
    SUB = "sub"
    MUL = "mul"
    DIV = "div"
    POW = "pow"
    MAXIMUM = "maximum"
    MINIMUM = "minimum"
    # comparisons (bool output)
    LT = "less"
    LE = "less_equal"
    GT = "greater"
    GE = "greater_equal"
    EQ = "equal"
    NE = "not_equal"
    # ternary elementwise
    WHERE = "where"
    # reductions; arg = (axes as sorted negative ints, keepdims)
    SUM = "sum"
    MAX = "max"
    # linear algebra (numpy.matmul semantics)
    MATMUL = "matmul"
    # movement; arg = permutation / target shape
    TRANSPOSE = "transpose"
    RESHAPE = "reshape"
    BROADCAST_TO = "broadcast_to"
    # indexing
    TAKE = "take_rows"           # x[..., idx[...]]: one index per row along the last axis
    ONE_HOT = "one_hot"          # arg = (depth, dtype)
    ARGMAX_MASK = "argmax_mask"  # bool mask, True at the first maximum over arg=axes
    # tensor language: index space, slicing, joining, gather/scatter, scans
    IOTA = "iota"                # the index along one axis; arg = (shape, axis, dtype); no sources
    SLICE = "slice"              # basic slicing; arg = per axis None (all) or (start, step, size)
    PAD = "pad"                  # constant padding; arg = (per axis (lo, hi, interior), value)
    FLIP = "flip"                # reverse the order along arg = axes (negative ints)
    CONCAT = "concatenate"       # join along arg = axis (negative int); n-ary
    GATHER = "take"              # numpy.take along arg = (axis, batch): batch leading dims shared
    SCATTER_ADD = "scatter_add"  # x with updates added at idx along arg = (axis, batch)
    CUMSUM = "cumsum"            # inclusive prefix sum along arg = axis (negative int)
    ARGMAX = "argmax"            # int64 index of the first maximum along arg = axis (negative int)
    # loops
    SCAN = "scan"                # output arg[1] of the loop whose step is arg[0] (loops.py)

    # members hash by identity, as they compare: Enum's own __hash__ hashes the name in Python
    # code, and ops are keys of the hottest dicts and sets of every pass (hash-consing
    # Node.make, the rule index, the op groups below): ~160,000 hashes to lower and render
    # a 10,000-op graph
    __hash__ = object.__hash__

    def __repr__(self):
        return f"Op.{self.name}"


LEAVES = frozenset({Op.VAR, Op.CONST, Op.DIM})
UNARY = frozenset({Op.NEG, Op.EXP, Op.LOG, Op.LOG1P, Op.EXPM1, Op.SQRT, Op.TANH, Op.SIN, Op.COS,
                   Op.ABS, Op.SIGN, Op.SIGMOID, Op.SOFTPLUS, Op.CAST, Op.STOP_GRADIENT,
                   Op.LGAMMA, Op.DIGAMMA, Op.POLYGAMMA, Op.ERF, Op.ERFC, Op.LOG_NDTR})
BINARY = frozenset({Op.ADD, Op.SUB, Op.MUL, Op.DIV, Op.POW, Op.MAXIMUM, Op.MINIMUM})
COMPARE = frozenset({Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ, Op.NE})
ELEMENTWISE = UNARY | BINARY | COMPARE | {Op.WHERE, Op.FN}
REDUCE = frozenset({Op.SUM, Op.MAX})
MOVEMENT = frozenset({Op.TRANSPOSE, Op.RESHAPE, Op.BROADCAST_TO})
COMMUTATIVE = frozenset({Op.ADD, Op.MUL, Op.MAXIMUM, Op.MINIMUM, Op.EQ, Op.NE})
# ops whose output carries no derivative information (zero or undefined derivative)
NONDIFF = COMPARE | {Op.SIGN, Op.STOP_GRADIENT, Op.ONE_HOT, Op.ARGMAX_MASK, Op.DIM, Op.IOTA,
                     Op.ARGMAX}
# ops linear in every differentiable input
LINEAR = frozenset({Op.NEG, Op.ADD, Op.SUB, Op.SUM, Op.TRANSPOSE, Op.RESHAPE, Op.BROADCAST_TO,
                    Op.CAST, Op.SLICE, Op.FLIP, Op.CONCAT, Op.GATHER, Op.SCATTER_ADD, Op.CUMSUM})
# ops that only move or select elements: index maps in the loop IR, never arithmetic
INDEX_MAPS = frozenset({Op.SLICE, Op.PAD, Op.FLIP, Op.CONCAT, Op.GATHER, Op.IOTA})
# unary float functions: integer/bool inputs are promoted to float64 as numpy does
FLOAT_UNARY = frozenset({Op.EXP, Op.LOG, Op.LOG1P, Op.EXPM1, Op.SQRT, Op.TANH, Op.SIN, Op.COS,
                         Op.SIGMOID, Op.SOFTPLUS, Op.LGAMMA, Op.DIGAMMA, Op.POLYGAMMA, Op.ERF,
                         Op.ERFC, Op.LOG_NDTR})

ARITY = {op: 0 for op in LEAVES | {Op.IOTA}}
ARITY.update({op: 1 for op in UNARY | REDUCE | MOVEMENT | {Op.ONE_HOT, Op.ARGMAX_MASK, Op.SLICE,
                                                           Op.PAD, Op.FLIP, Op.CUMSUM, Op.ARGMAX}})
ARITY.update({op: 2 for op in BINARY | COMPARE | {Op.MATMUL, Op.TAKE, Op.GATHER}})
ARITY[Op.WHERE] = 3
ARITY[Op.SCATTER_ADD] = 3
ARITY[Op.FN] = None        # as many sources as the function has arguments
ARITY[Op.CONCAT] = None    # any number of parts
ARITY[Op.SCAN] = None      # init carries, xs, loop-invariant values

INFIX = {Op.ADD: "+", Op.SUB: "-", Op.MUL: "*", Op.DIV: "/", Op.POW: "**", Op.MATMUL: "@",
         Op.LT: "<", Op.LE: "<=", Op.GT: ">", Op.GE: ">=", Op.EQ: "==", Op.NE: "!="}
# binding strength for printing (higher binds tighter)
PRECEDENCE = {Op.LT: 1, Op.LE: 1, Op.GT: 1, Op.GE: 1, Op.EQ: 1, Op.NE: 1, Op.ADD: 2, Op.SUB: 2,
              Op.MUL: 3, Op.DIV: 3, Op.MATMUL: 3, Op.NEG: 4, Op.POW: 5}

assert set(ARITY) == set(Op), "every op needs an arity"
