"""fastdl.autodiff: float64 central-difference checks of every operation, broadcasting, reuse,
a two-layer network, errors, and agreement with the Layer-based gradients of fastdl itself.

Tolerance everywhere: ``|analytic - numeric| <= 1e-6 + 1e-5 * |numeric|`` (``check_grad``).
"""

from __future__ import annotations

import ast
import doctest
import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import mutually_broadcastable_shapes

import fastdl
import fastdl.autodiff.tensor
from fastdl.autodiff import NumberWithGrad, Tensor, check_grad, numerical_grad, unbroadcast

ROOT = Path(__file__).resolve().parents[1]
FAST = settings(max_examples=30, deadline=None, database=None)


def weighted_sum(t: Tensor, seed: int = 1) -> Tensor:
    """Reduce ``t`` to a number with fixed random weights, so every element's gradient differs."""
    weights = np.random.default_rng(seed).standard_normal(t.shape)
    return (t * weights).sum()


def away_from_zero(rng: np.random.Generator, shape, low: float = 0.5, high: float = 2.0):
    """Values with ``low <= |v| <= high`` and random signs (safe for 1/x and for relu's kink)."""
    return rng.uniform(low, high, shape) * rng.choice([-1.0, 1.0], shape)


# ---- element-wise and shape operations of one operand ------------------------------------

UNARY = {
    "neg": (lambda a: -a, "any"),
    "exp": (lambda a: a.exp(), "any"),
    "log": (lambda a: a.log(), "positive"),
    "tanh": (lambda a: a.tanh(), "any"),
    "sigmoid": (lambda a: a.sigmoid(), "any"),
    "relu": (lambda a: a.relu(), "nonzero"),
    "pow2": (lambda a: a**2, "any"),
    "pow3": (lambda a: a**3, "any"),
    "pow-1": (lambda a: a**-1, "nonzero"),
    "pow0.5": (lambda a: a**0.5, "positive"),
    "pow1.5-float": (lambda a: a ** np.float64(1.5), "positive"),
    "reshape": (lambda a: a.reshape(6, 2), "any"),
    "reshape-tuple": (lambda a: a.reshape((3, -1)), "any"),
    "T": (lambda a: a.T, "any"),
    "transpose": (lambda a: a.transpose(1, 0, 2), "any"),
    "transpose-neg": (lambda a: a.transpose((-1, 0, 1)), "any"),
    "sum": (lambda a: a.sum(), "any"),
    "sum0": (lambda a: a.sum(axis=0), "any"),
    "sum-1-keep": (lambda a: a.sum(axis=-1, keepdims=True), "any"),
    "sum02": (lambda a: a.sum(axis=(0, 2)), "any"),
    "mean": (lambda a: a.mean(), "any"),
    "mean1": (lambda a: a.mean(axis=1), "any"),
    "mean12-keep": (lambda a: a.mean(axis=(1, 2), keepdims=True), "any"),
}


@pytest.mark.parametrize("name", UNARY)
def test_unary_gradients(name):
    op, domain = UNARY[name]
    rng = np.random.default_rng(0)
    shape = (2, 3, 2)
    if domain == "positive":
        x = rng.uniform(0.5, 2.0, shape)
    elif domain == "nonzero":
        x = away_from_zero(rng, shape)
    else:
        x = rng.standard_normal(shape)
    check_grad(lambda a: weighted_sum(op(a)), x)


def test_unary_values_match_numpy():
    x = np.random.default_rng(0).standard_normal((3, 4))
    t = Tensor(x)
    np.testing.assert_allclose(t.exp().value, np.exp(x))
    np.testing.assert_allclose(t.tanh().value, np.tanh(x))
    np.testing.assert_allclose(t.sigmoid().value, 1.0 / (1.0 + np.exp(-x)), rtol=1e-14)
    np.testing.assert_allclose(t.relu().value, np.maximum(x, 0))
    np.testing.assert_allclose(t.mean(axis=0).value, x.mean(axis=0))
    np.testing.assert_allclose(t.T.value, x.T)
    np.testing.assert_allclose(Tensor(np.abs(x)).log().value, np.log(np.abs(x)))


def test_sigmoid_is_stable_for_large_inputs():
    t = Tensor([-1000.0, 0.0, 1000.0])
    s = t.sigmoid()  # no overflow warning (warnings are errors here)
    np.testing.assert_array_equal(s.value, [0.0, 0.5, 1.0])
    s.backward(np.ones(3))
    np.testing.assert_array_equal(t.grad, [0.0, 0.25, 0.0])


@st.composite
def shape_and_axes(draw):
    """A shape of up to 3 axes and a set of its axes (None for all), in any sign and order."""
    shape = tuple(draw(st.lists(st.integers(1, 3), max_size=3)))
    if not shape or draw(st.booleans()):
        return shape, None
    axes = draw(st.lists(st.integers(0, len(shape) - 1), min_size=1, unique=True))
    negate = draw(st.lists(st.booleans(), min_size=len(axes), max_size=len(axes)))
    return shape, tuple(
        ax - len(shape) if neg else ax for ax, neg in zip(axes, negate, strict=True)
    )


@FAST
@given(case=shape_and_axes(), keepdims=st.booleans(), name=st.sampled_from(["sum", "mean"]))
def test_reductions_any_axes(case, keepdims, name):
    shape, axis = case
    x = np.random.default_rng(len(shape)).standard_normal(shape)
    out = getattr(Tensor(x), name)(axis=axis, keepdims=keepdims)
    np.testing.assert_allclose(out.value, getattr(x, name)(axis=axis, keepdims=keepdims))
    check_grad(lambda a: weighted_sum(getattr(a, name)(axis, keepdims)), x)


# ---- element-wise operations of two operands, with broadcasting ---------------------------

BINARY = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
}

BROADCAST_CASES = [
    ((3, 4), (3, 4)),
    ((3, 1), (1, 4)),
    ((2, 3), (3,)),
    ((), (2, 3)),
    ((2, 3), ()),
    ((4,), (2, 3, 4)),
    ((2, 1, 3), (4, 1)),
    ((1, 1), (5,)),
]


@pytest.mark.parametrize("op", BINARY)
@pytest.mark.parametrize("shapes", BROADCAST_CASES, ids=lambda s: f"{s[0]}-{s[1]}")
def test_binary_broadcast_gradients(op, shapes):
    rng = np.random.default_rng(0)
    a = rng.standard_normal(shapes[0])
    b = away_from_zero(rng, shapes[1])
    out = BINARY[op](Tensor(a), Tensor(b))
    np.testing.assert_allclose(out.value, BINARY[op](a, b))
    check_grad(lambda x, y: weighted_sum(BINARY[op](x, y)), a, b)


@FAST
@given(
    op=st.sampled_from(sorted(BINARY)),
    shapes=mutually_broadcastable_shapes(num_shapes=2, max_dims=3, max_side=3),
    seed=st.integers(0, 2**16),
)
def test_binary_broadcast_gradients_any_shapes(op, shapes, seed):
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(shapes.input_shapes[0])
    b = away_from_zero(rng, shapes.input_shapes[1])
    out = BINARY[op](Tensor(a), Tensor(b))
    assert out.shape == shapes.result_shape
    check_grad(lambda x, y: weighted_sum(BINARY[op](x, y)), a, b)


@pytest.mark.parametrize(
    "expr",
    [
        lambda t, c: c + t,
        lambda t, c: c - t,
        lambda t, c: c * t,
        lambda t, c: c / t,
        lambda t, c: t + c,
        lambda t, c: t - c,
        lambda t, c: t * c,
        lambda t, c: t / c,
    ],
    ids=["c+t", "c-t", "c*t", "c/t", "t+c", "t-c", "t*c", "t/c"],
)
@pytest.mark.parametrize(
    "const",
    [2.5, 3, np.float64(-1.5), np.array([1.0, -2.0, 0.5])],
    ids=["float", "int", "np.float64", "ndarray"],
)
def test_plain_numbers_and_arrays_on_either_side(expr, const):
    x = away_from_zero(np.random.default_rng(0), (2, 3))
    out = expr(Tensor(x), const)
    assert isinstance(out, Tensor)
    np.testing.assert_allclose(out.value, expr(x, const))
    check_grad(lambda t: weighted_sum(expr(t, const)), x)


# ---- matrix product ----------------------------------------------------------------------

MATMUL_CASES = [
    ((3, 4), (4, 2)),
    ((1, 4), (4, 1)),
    ((4,), (4, 2)),
    ((3, 4), (4,)),
    ((4,), (4,)),
    ((2, 3, 4), (4, 5)),
    ((2, 3, 4), (2, 4, 5)),
    ((1, 3, 4), (2, 4, 5)),
    ((3, 4), (2, 4, 5)),
    ((4,), (2, 4, 5)),
    ((2, 3, 4), (4,)),
    ((2, 1, 3, 4), (5, 4, 2)),
]


@pytest.mark.parametrize("shapes", MATMUL_CASES, ids=lambda s: f"{s[0]}@{s[1]}")
def test_matmul_gradients(shapes):
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(shapes[0]), rng.standard_normal(shapes[1])
    out = Tensor(a) @ Tensor(b)
    np.testing.assert_allclose(out.value, a @ b)
    check_grad(lambda x, y: weighted_sum(x @ y), a, b)


def test_matmul_with_arrays_on_either_side():
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((5, 3)), rng.standard_normal((3, 2))
    left = x @ Tensor(w)  # ndarray @ Tensor: the reflected operator, not an object array
    right = Tensor(x) @ w
    assert isinstance(left, Tensor) and isinstance(right, Tensor)
    np.testing.assert_allclose(left.value, x @ w)
    np.testing.assert_allclose(right.value, x @ w)
    check_grad(lambda t: weighted_sum(x @ t), w)
    check_grad(lambda t: weighted_sum(t @ w), x)


# ---- values used more than once ----------------------------------------------------------


def test_value_used_twice():
    x = np.array([1.5, -2.0, 0.5])
    t = Tensor(x)
    (t * t).sum().backward()
    np.testing.assert_allclose(t.grad, 2 * x)
    t = Tensor(x)
    (t + t).sum().backward()
    np.testing.assert_array_equal(t.grad, [2.0, 2.0, 2.0])
    check_grad(lambda a: weighted_sum(a * a), x)
    check_grad(lambda a: weighted_sum(a + a), x)
    check_grad(lambda a: weighted_sum(a * a.exp() - a / (a * a + 1.0)), x)


def test_intermediate_used_twice():
    """The case a recursive backward over-counts: b is reused, so a must get 2 * 2b, not more."""
    a = Tensor(3.0)
    b = a * 2
    c = b * b
    c.backward()
    assert float(a.grad) == 24.0  # c = 4a², dc/da = 8a
    assert float(b.grad) == 12.0
    check_grad(lambda t: ((t * 2) * (t * 2) + (t * 2).tanh()).sum(), np.array([0.3, -0.7]))


def test_book_example():
    a = NumberWithGrad(3)
    b = a * 4
    c = b + 3
    d = c * (a + 2)
    d.backward()
    assert float(d.value) == 75.0
    assert float(a.grad) == 35.0  # d = (4a + 3)(a + 2), dd/da = 8a + 11
    assert NumberWithGrad is Tensor and a.shape == ()


def test_deep_graph_needs_no_recursion():
    x = Tensor(1.0)
    y = x
    for _ in range(5000):
        y = y * 1.0001
    y.backward()
    np.testing.assert_allclose(x.grad, 1.0001**5000, rtol=1e-10)


# ---- a deeper composite: a two-layer network's loss ---------------------------------------


def mlp_loss(x, y, w1, b1, w2, b2):
    return (((x @ w1 + b1).tanh() @ w2 + b2 - y) ** 2).mean()


def test_two_layer_mlp_loss_gradients():
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 4)), rng.standard_normal((6, 2))
    params = [
        rng.standard_normal((4, 5)),
        rng.standard_normal(5),
        rng.standard_normal((5, 2)),
        rng.standard_normal(2),
    ]
    check_grad(lambda *p: mlp_loss(x, y, *p), *params)
    check_grad(lambda xt: mlp_loss(xt, y, *params), x)  # and with respect to the input


def test_classifier_loss_gradients():
    """Sigmoid, relu, log, division and sum over axes, all in one graph."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((5, 3))
    labels = np.eye(4)[rng.integers(0, 4, 5)]

    def loss(w1, w2):
        h = (x @ w1).relu()
        logits = (h @ w2).sigmoid()
        p = logits / logits.sum(axis=1, keepdims=True)
        return -(p.log() * labels).sum() / 5

    check_grad(loss, away_from_zero(rng, (3, 6)), rng.standard_normal((6, 4)))


# ---- backward semantics ------------------------------------------------------------------


def test_backward_with_seed_gradient():
    x = np.random.default_rng(0).standard_normal((2, 3))
    seed = np.arange(6.0).reshape(2, 3)
    t = Tensor(x)
    t.tanh().backward(seed)
    np.testing.assert_allclose(t.grad, seed * (1 - np.tanh(x) ** 2))


def test_backward_on_one_element_array_needs_no_seed():
    t = Tensor(np.array([[2.0]]))
    (t * 3).backward()
    np.testing.assert_array_equal(t.grad, [[3.0]])


def test_gradients_accumulate_over_calls_like_pytorch():
    t = Tensor([1.0, 2.0])
    loss = (t * t).sum()
    loss.backward()
    loss.backward()
    np.testing.assert_array_equal(t.grad, [4.0, 8.0])
    t.grad = None
    (t * 3).sum().backward()
    np.testing.assert_array_equal(t.grad, [3.0, 3.0])


def test_gradients_have_operand_shapes_and_are_writable():
    x = Tensor(np.ones((3, 1)))
    b = Tensor(np.ones(4))
    (x + b).sum().backward()
    assert x.grad.shape == (3, 1) and b.grad.shape == (4,)
    np.testing.assert_array_equal(x.grad, [[4.0]] * 3)
    s = Tensor(np.ones((2, 3)))
    s.sum().backward()
    s.grad += 1.0  # a real array, not a read-only broadcast view
    np.testing.assert_array_equal(s.grad, np.full((2, 3), 2.0))


def test_unbroadcast():
    g = np.ones((2, 3, 4))
    np.testing.assert_array_equal(unbroadcast(g, (4,)), np.full(4, 6.0))
    np.testing.assert_array_equal(unbroadcast(g, (3, 1)), np.full((3, 1), 8.0))
    np.testing.assert_array_equal(unbroadcast(g, ()), 24.0)
    assert unbroadcast(g, (2, 3, 4)) is g


def test_dtypes():
    assert Tensor([1, 2]).dtype == np.float64  # integers become float64
    f32 = Tensor(np.ones(3, dtype=np.float32))
    out = (2.0 * f32 + 1).tanh().sum()  # Python numbers take the tensor's dtype
    assert out.dtype == np.float32
    out.backward()
    assert f32.grad.dtype == np.float32
    assert Tensor([1.0], dtype=np.float32).dtype == np.float32


def test_input_array_is_copied():
    x = np.ones(3)
    t = Tensor(x)
    x[0] = 5.0
    assert t.value[0] == 1.0


def test_check_grad_catches_a_wrong_backward():
    def bad_square(a: Tensor) -> Tensor:
        return Tensor._result(a.value**2, (a,), lambda g: (g * a.value,), "bad")  # missing 2

    with pytest.raises(AssertionError, match="gradient of input 0"):
        check_grad(lambda a: bad_square(a).sum(), np.array([1.0, 2.0]))


def test_numerical_grad():
    x = np.array([1.0, -2.0, 3.0])
    np.testing.assert_allclose(numerical_grad(lambda v: float((v**3).sum()), x), 3 * x**2)
    assert x[0] == 1.0  # not modified


# ---- errors ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shapes",
    [
        ((3, 4), (3, 4)),
        ((4,), (3,)),
        ((2, 3), (2,)),
        ((2, 3, 4), (3, 4, 5)),
        ((2, 3, 4), (3, 4, 2)),
    ],
    ids=str,
)
def test_matmul_shape_mismatch_names_both_shapes(shapes):
    a, b = Tensor(np.ones(shapes[0])), Tensor(np.ones(shapes[1]))
    with pytest.raises(ValueError, match="@") as info:
        a @ b
    assert str(shapes[0]) in str(info.value) and str(shapes[1]) in str(info.value)


def test_matmul_with_a_number_is_an_error():
    with pytest.raises(ValueError, match=r"@: .*\(\) and \(3,\)"):
        Tensor(2.0) @ Tensor(np.ones(3))


@pytest.mark.parametrize("op", BINARY)
def test_broadcast_mismatch_names_operation_and_shapes(op):
    with pytest.raises(
        ValueError, match=re.escape(f"{op}: shapes (2, 3) and (4,) do not broadcast")
    ):
        BINARY[op](Tensor(np.ones((2, 3))), Tensor(np.ones(4)))


def test_backward_on_non_scalar_without_seed():
    with pytest.raises(ValueError, match=r"backward: output has shape \(2, 3\)"):
        Tensor(np.ones((2, 3))).tanh().backward()


def test_backward_seed_of_wrong_shape():
    with pytest.raises(
        ValueError, match=r"seed gradient has shape \(3,\), output has shape \(2,\)"
    ):
        Tensor(np.ones(2)).exp().backward(np.ones(3))


def test_other_errors():
    t = Tensor(np.ones((2, 3)))
    with pytest.raises(TypeError, match=r"\*\*: the exponent must be a constant number"):
        t ** Tensor(2.0)
    with pytest.raises(TypeError, match="unsupported operand"):
        t + "a"
    with pytest.raises(ValueError, match=r"sum: axis 2 is out of range for shape \(2, 3\)"):
        t.sum(axis=2)
    with pytest.raises(ValueError, match="mean: repeated axis"):
        t.mean(axis=(1, -1))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape \(2, 3\) into \(4,\)"):
        t.reshape(4)
    with pytest.raises(ValueError, match="transpose: .* is not a permutation"):
        t.transpose(0, 0)
    with pytest.raises(TypeError, match="complex"):
        Tensor(np.ones(2, dtype=complex))
    with pytest.raises(TypeError, match="expected numbers"):
        Tensor("abc")


# ---- the module's promises ---------------------------------------------------------------


def test_imports_numpy_and_stdlib_only():
    """A teaching module: no numba, no fastdl.kernels or layers, checked without importing."""
    allowed = {"__future__", "collections", "numpy", "fastdl"}
    for path in sorted((ROOT / "fastdl" / "autodiff").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            for name in names:
                assert name.split(".")[0] in allowed, f"{path.name} imports {name}"
                if name.startswith("fastdl"):
                    assert name.startswith("fastdl.autodiff"), f"{path.name} imports {name}"


@pytest.mark.parametrize(
    "module", [fastdl.autodiff, fastdl.autodiff.tensor], ids=lambda m: m.__name__
)
def test_docstring_examples(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.attempted > 0 and result.failed == 0


# ---- agreement with the Layer-based gradients of fastdl ---------------------------------


def load_example():
    path = ROOT / "examples" / "autodiff_network.py"
    spec = importlib.util.spec_from_file_location("autodiff_network", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("seed", [0, 1])
def test_autodiff_matches_layer_gradients(seed, capsys):
    example = load_example()
    report = example.compare(n=16, d=5, hidden=7, out=3, seed=seed)
    assert report["max_diff"] <= example.TOLERANCE, report
    assert min(report["grad_size"].values()) > 1e-3, report  # a comparison of real gradients
    assert example.main(["--smoke", "--seed", str(seed)]) == 0
    assert "OK" in capsys.readouterr().out


def test_example_fails_above_tolerance(monkeypatch, capsys):
    example = load_example()
    monkeypatch.setattr(example, "TOLERANCE", -1.0)
    assert example.main(["--smoke"]) == 1
    assert "FAIL" in capsys.readouterr().out


def test_power_zero_has_zero_gradient_everywhere():
    """d(a^0)/da = 0, also at a = 0 (p·a^(p−1) would be 0·inf = NaN)."""
    from fastdl.autodiff import Tensor

    a = Tensor(np.array([0.0, 1.0, -2.0]))
    (a**0).sum().backward()
    np.testing.assert_array_equal(a.grad, [0.0, 0.0, 0.0])


def test_an_integer_dtype_is_refused():
    from fastdl.autodiff import Tensor

    with pytest.raises(TypeError, match="Tensor: dtype must be a float dtype, got int32"):
        Tensor([1, 2], dtype=np.int32)
    assert Tensor([1, 2], dtype=np.float32).value.dtype == np.float32


def test_a_bool_axis_is_refused_as_numpy_refuses_it():
    from fastdl.autodiff import Tensor

    a = Tensor(np.ones((2, 3)))
    for bad in (True, [0, True], 1.0):
        with pytest.raises(TypeError, match="axis must be an int or a sequence of ints"):
            a.sum(axis=bad)
    assert a.sum(axis=(0, 1)).value == 6.0
