"""Every error names what is at fault: the op, the operands, the shapes, the argument."""
import numpy as np
import pytest

import symdiff as sd


def test_matmul_inner_dims_mismatch_names_op_shapes_and_operands():
    x = sd.var("x", (None, 64))
    W = sd.param("W", (32, 10))
    with pytest.raises(sd.ShapeError) as e:
        x @ W
    msg = str(e.value)
    for part in ("matmul", "64", "32", "`x`", "`W`", "(None, 64)", "(32, 10)", "x @ W"):
        assert part in msg, (part, msg)


def test_broadcast_mismatch():
    a, b = sd.var("a", (3, 4)), sd.var("b", (5,))
    with pytest.raises(sd.ShapeError, match=r"add: shapes do not broadcast in `a \+ b`.*\(3, 4\).*\(5,\)"):
        a + b


def test_reshape_size_mismatch():
    x = sd.var("x", (3, 4))
    with pytest.raises(sd.ShapeError, match=r"reshape.*\(3, 4\).*\(5, 2\)"):
        sd.reshape(x, (5, 2))
    with pytest.raises(sd.ShapeError, match="more than one -1"):
        sd.reshape(x, (-1, -1))


def test_reshape_with_symbolic_batch():
    x = sd.var("x", (None, 64))
    y = sd.reshape(x, (-1, 8, 8))
    assert y.shape[0] is x.shape[0] and y.shape[1:] == (8, 8)
    with pytest.raises(sd.ShapeError, match="cannot infer -1"):
        sd.reshape(x, (-1, 7))


def test_axis_out_of_range():
    x = sd.var("x", (3, 4))
    with pytest.raises(sd.ShapeError, match=r"axis 2 is out of range for a 2-d input"):
        sd.sum(x, axis=2)
    with pytest.raises(sd.ShapeError, match="repeated axis"):
        sd.max(x, axis=(0, -2))


def test_dtype_promotion_follows_numpy():
    i = sd.var("i", (3,), dtype="int64")
    f32 = sd.var("f", (3,), dtype="float32")
    b = sd.var("b", (3,), dtype="bool")
    assert sd.exp(i).dtype == "float64"
    assert (f32 * 0.5).dtype == "float32"          # Python scalars are weak
    assert (f32 * 2).dtype == "float32"
    assert (f32 * np.float64(2)).dtype == "float64"  # numpy scalars are not (NEP 50)
    assert (f32 + i).dtype == "float64"
    assert (b * 2.0).dtype == "float64"
    assert (b + b).dtype == "int64"                # arithmetic on bools is on 0/1
    assert (i / i).dtype == "float64"
    assert (x := sd.var("x", (3,))) is not None and (x > 0).dtype == "bool"
    with pytest.raises(sd.DTypeError, match="negation of a bool"):
        -b
    with pytest.raises(sd.DTypeError, match="condition must be bool"):
        sd.where(i, f32, f32)


def test_grad_wrt_int_var_names_it():
    labels = sd.var("labels", (3,), dtype="int64")
    x = sd.var("x", (3,))
    with pytest.raises(sd.DifferentiationError, match="`labels` of dtype int64"):
        sd.grad(sd.sum(x * labels), [x, labels])


def test_grad_of_non_scalar_names_output_and_shape():
    x = sd.var("x", (3,))
    with pytest.raises(sd.DifferentiationError, match=r"shape \(3,\).*scalar"):
        sd.grad(x * 2, x)


def test_disconnected_input_zero_or_raise():
    x, z = sd.var("x", (3,)), sd.var("z", (2, 2))
    y = sd.sum(x * x)
    gx, gz = sd.grad(y, [x, z])
    assert np.array_equal(sd.evaluate(gz, {z: np.ones((2, 2))}), np.zeros((2, 2)))
    with pytest.raises(sd.DifferentiationError, match="does not depend on `z`"):
        sd.grad(y, [x, z], disconnected="raise")


def test_disconnected_symbolic_shape_gives_zeros_of_bound_size():
    x = sd.var("x", (None, 3))
    w = sd.param("w", (3,))
    gx = sd.grad(sd.sum(w * w), x)
    f = sd.compile([x, w], gx, backend="numpy")
    assert f(np.ones((5, 3)), np.ones(3)).shape == (5, 3)


def test_jacobian_needs_concrete_shapes():
    x = sd.var("x", (None, 3))
    with pytest.raises(sd.ShapeError, match="symbolic shape"):
        sd.jacobian(sd.tanh(x), x, mode="forward")


def test_one_hot_and_take_check_their_indices():
    z = sd.var("z", (2, 3))
    y = sd.var("y", (2,), dtype="int64")
    with pytest.raises(sd.ArgumentError, match="index 3 is out of range for a class axis of size 3"):
        sd.evaluate(sd.take_rows(z, y), {z: np.zeros((2, 3)), y: np.array([0, 3])})
    with pytest.raises(sd.DTypeError, match="indices must be int64"):
        sd.take_rows(z, sd.var("yf", (2,)))
    with pytest.raises(sd.DTypeError, match="take: indices must be int64"):
        sd.take(z, sd.var("yf", (2,)), axis=1)
    with pytest.raises(sd.ArgumentError, match=r"take: index -4 is out of range for an axis of "
                                               r"size 3 \(valid: -3 to 2\)"):
        sd.evaluate(sd.take(z, y, axis=1), {z: np.zeros((2, 3)), y: np.array([0, -4])})


def test_tensor_language_shape_errors_name_the_culprit():
    x = sd.var("x", ("n", 4))
    with pytest.raises(sd.ShapeError, match="symbolic size n"):
        x[1:]
    with pytest.raises(IndexError, match="index 4 is out of bounds for axis 1 with size 4"):
        x[:, 4]
    with pytest.raises(IndexError, match="only one integer array"):
        x[[0], [1]]
    with pytest.raises(sd.ShapeError, match="concatenate: the inputs' shapes differ"):
        sd.concatenate([sd.var("p", (2, 4)), sd.var("q", (3, 5))], axis=0)
    with pytest.raises(sd.ShapeError, match="scatter_add: updates must have shape"):
        sd.Node.make(sd.Op.SCATTER_ADD, (sd.var("t", (5,)), sd.const(np.array([1, 2])),
                                         sd.var("u", (3,))), (0, 0))
    with pytest.raises(sd.ShapeError, match="einsum 'ij,jk->ik': letter 'j' has sizes 4 and 3"):
        sd.einsum("ij,jk->ik", x, sd.var("w", (3, 2)))
    with pytest.raises(sd.ShapeError, match="einsum: subscripts 'ijk' do not fit"):
        sd.einsum("ijk->i", x)


def test_unsupported_dtype_and_bad_names():
    with pytest.raises(sd.DTypeError, match="complex128 is not supported"):
        sd.var("x", (2,), dtype="complex128")
    with pytest.raises(TypeError, match="non-empty string"):
        sd.var("", (2,))
    with pytest.raises(ValueError, match="negative size"):
        sd.var("x", (-1,))


def test_compile_names_a_run_time_size_that_no_argument_gives():
    x = sd.var("x", ("batch", 3))
    with pytest.raises(ValueError, match="size of dim `batch`, but no input"):
        sd.compile([sd.var("z", (2,))], sd.sum(sd.var("z", (2,))) * sd.size_of("batch"),
                   backend="numpy")
    assert sd.compile([x], sd.mean(x), backend="numpy")(np.ones((4, 3))) == 1.0
