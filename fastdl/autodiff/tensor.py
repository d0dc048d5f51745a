"""Tensor: an ndarray that records the operations that made it and runs the chain rule back.

Every operation below is written the same way: compute the output value, then define
``backward(g)``, which receives ``g = dL/d(output)`` (shape of the output) and returns
``dL/d(operand)`` for each operand, in order (shape of that operand). Forward and backward sit
next to each other so that each local derivative can be checked by eye.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

__all__ = ["Tensor", "NumberWithGrad", "unbroadcast"]

#: ``backward(g)`` of one recorded operation: ``g`` is ``dL/d(output)``; returns one gradient
#: per operand, each of that operand's shape.
BackwardFn = Callable[[np.ndarray], Sequence[np.ndarray]]


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` down to ``shape``: the backward pass of NumPy broadcasting.

    Broadcasting copies an operand along new leading axes and along its axes of length 1; each
    copy's gradient flows back into the one element it was copied from, so those axes are
    summed.

    Parameters
    ----------
    grad : ndarray, shape S, the broadcast shape
    shape : tuple of int
        The operand's shape, which broadcasts to S.

    Returns
    -------
    ndarray, shape ``shape``
    """
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _as_float_array(value: object, dtype: np.dtype | type | None = None) -> np.ndarray:
    """A new float array holding ``value``: floats keep their dtype, the rest become float64.
    An explicit ``dtype`` must be a float dtype (an integer tensor has no gradient)."""
    if dtype is not None and np.dtype(dtype).kind != "f":
        raise TypeError(f"Tensor: dtype must be a float dtype, got {np.dtype(dtype)}")
    arr = np.array(value, dtype=dtype)
    if arr.dtype.kind == "c":
        raise TypeError(f"Tensor: complex values are not supported, got dtype {arr.dtype}")
    if arr.dtype.kind != "f":
        try:
            arr = arr.astype(np.float64)
        except (TypeError, ValueError):
            raise TypeError(f"Tensor: expected numbers, got {type(value).__name__}") from None
    return arr


def _check_broadcast(op: str, a: Tensor, b: Tensor) -> None:
    try:
        np.broadcast_shapes(a.shape, b.shape)
    except ValueError:
        raise ValueError(f"{op}: shapes {a.shape} and {b.shape} do not broadcast") from None


def _normalize_axes(op: str, axis: int | Sequence[int], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``axis`` (an int or a sequence of ints, negative counting from the end) as axes >= 0."""
    try:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    except TypeError:
        raise TypeError(f"{op}: axis must be an int or a sequence of ints, got {axis!r}") from None
    ndim = len(shape)
    for ax in axes:
        if isinstance(ax, (bool, np.bool_)) or not isinstance(ax, (int, np.integer)):
            raise TypeError(f"{op}: axis must be an int or a sequence of ints, got {ax!r}")
        if not -ndim <= int(ax) < ndim:
            raise ValueError(f"{op}: axis {ax} is out of range for shape {shape}")
    return tuple(int(ax) % ndim for ax in axes)


def _topological_order(root: Tensor) -> list[Tensor]:
    """Every tensor ``root`` depends on (itself included), each after all of its parents.

    An explicit stack instead of recursion, so a graph thousands of operations deep works.
    """
    order: list[Tensor] = []
    seen: set[int] = set()
    stack: list[tuple[Tensor, bool]] = [(root, False)]
    while stack:
        node, parents_done = stack.pop()
        if parents_done:
            order.append(node)
        elif id(node) not in seen:
            seen.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if id(p) not in seen)
    return order


class Tensor:
    """An array of floats that records how it was computed, for reverse-mode autodiff.

    Parameters
    ----------
    value : array_like
        Copied. Floating dtypes are kept (float32, float64); anything else becomes float64.
    dtype : dtype, optional
        Convert to this float dtype.

    Attributes
    ----------
    value : ndarray, any shape (``()`` for a number)
    grad : ndarray of the shape of ``value``, or None
        ``dL/d(value)`` once :meth:`backward` has run on a tensor ``L`` that depends on this
        one. Like PyTorch, gradients *accumulate* over calls; set ``t.grad = None`` to reset.

    Notes
    -----
    Operators take tensors, Python numbers and ndarrays on either side (``2 * t``,
    ``x @ W`` with ``x`` an ndarray); plain numbers and arrays become constant leaves. A Python
    number takes the tensor's dtype, so float32 tensors stay float32. Element-wise operators
    broadcast as NumPy does; their backward sums each gradient back to its operand's shape
    (:func:`unbroadcast`).

    Examples
    --------
    >>> w = Tensor([1.0, -2.0])
    >>> loss = ((w * 3.0 - 1.0) ** 2).sum()
    >>> loss.backward()
    >>> w.grad
    array([ 12., -42.])
    """

    # Make ``ndarray <op> Tensor`` return NotImplemented, so Python calls Tensor's reflected
    # operator instead of NumPy looping over the tensor as an object.
    __array_ufunc__ = None

    def __init__(self, value: object, dtype: np.dtype | type | None = None) -> None:
        self.value = _as_float_array(value.value if isinstance(value, Tensor) else value, dtype)
        self.grad: np.ndarray | None = None
        self._parents: tuple[Tensor, ...] = ()
        self._backward: BackwardFn | None = None
        self._op = ""

    @staticmethod
    def _result(value: np.ndarray, parents: tuple[Tensor, ...], backward: BackwardFn, op: str):
        """A tensor computed by ``op`` from ``parents``, which remembers ``backward``."""
        out = Tensor.__new__(Tensor)
        out.value = np.asarray(value)
        out.grad = None
        out._parents = parents
        out._backward = backward
        out._op = op
        return out

    def _lift(self, other: object) -> Tensor | None:
        """``other`` as a tensor (a constant leaf unless it is one); None if not a number."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float)):
            return Tensor(other, dtype=self.dtype)
        if isinstance(other, (np.ndarray, np.number, list, tuple)):
            return Tensor(other)
        return None

    # ---- description -------------------------------------------------------------------

    @property
    def shape(self) -> tuple[int, ...]:
        return self.value.shape

    @property
    def ndim(self) -> int:
        return self.value.ndim

    @property
    def dtype(self) -> np.dtype:
        return self.value.dtype

    def __repr__(self) -> str:
        made_by = f", op={self._op!r}" if self._op else ""
        return f"Tensor({np.array2string(self.value, separator=', ')}{made_by})"

    def __float__(self) -> float:
        return float(self.value)

    # ---- the backward pass -------------------------------------------------------------

    def backward(self, grad: object = None) -> None:
        """Fill ``.grad`` of this tensor and of every tensor it was computed from.

        Visits the graph once, in reverse topological order (every tensor after all the
        tensors computed from it), so a tensor's gradient is complete — the sum over all the
        places it was used — before it is passed on to its parents.

        Parameters
        ----------
        grad : array_like of the shape of ``value``, optional
            The seed ``dL/d(self)``. Defaults to 1 for a tensor with one element (a loss);
            required otherwise.

        Raises
        ------
        ValueError
            If ``grad`` is missing for a tensor with more than one element, or has another
            shape.
        """
        if grad is None:
            if self.value.size != 1:
                raise ValueError(
                    f"backward: output has shape {self.shape}, not a single number; pass a "
                    f"seed gradient of shape {self.shape} (backward(grad=...)) or reduce "
                    "the output first (e.g. .sum())"
                )
            seed = np.ones_like(self.value)
        else:
            seed = np.asarray(grad, dtype=self.dtype)
            if seed.shape != self.shape:
                raise ValueError(
                    f"backward: seed gradient has shape {seed.shape}, output has shape {self.shape}"
                )
        order = _topological_order(self)
        grads: dict[int, np.ndarray] = {id(self): seed}
        for node in reversed(order):
            if node._backward is None:
                continue
            parent_grads = node._backward(grads[id(node)])
            for parent, g in zip(node._parents, parent_grads, strict=True):
                if np.shape(g) != parent.shape:
                    raise RuntimeError(
                        f"backward of {node._op!r} returned a gradient of shape {np.shape(g)} "
                        f"for an operand of shape {parent.shape}"
                    )
                key = id(parent)
                grads[key] = g if key not in grads else grads[key] + g
        for node in order:
            g = grads[id(node)]
            node.grad = np.array(g, dtype=node.dtype) if node.grad is None else node.grad + g

    # ---- arithmetic: + - * / ** and unary minus ----------------------------------------

    def __add__(self, other: object) -> Tensor:
        a, b = self, self._lift(other)
        if b is None:
            return NotImplemented
        _check_broadcast("+", a, b)

        def backward(g):  # d(a + b) = da + db
            return unbroadcast(g, a.shape), unbroadcast(g, b.shape)

        return Tensor._result(a.value + b.value, (a, b), backward, "+")

    def __sub__(self, other: object) -> Tensor:
        a, b = self, self._lift(other)
        if b is None:
            return NotImplemented
        _check_broadcast("-", a, b)

        def backward(g):  # d(a - b) = da - db
            return unbroadcast(g, a.shape), unbroadcast(-g, b.shape)

        return Tensor._result(a.value - b.value, (a, b), backward, "-")

    def __mul__(self, other: object) -> Tensor:
        a, b = self, self._lift(other)
        if b is None:
            return NotImplemented
        _check_broadcast("*", a, b)

        def backward(g):  # d(a b) = b da + a db
            return unbroadcast(g * b.value, a.shape), unbroadcast(g * a.value, b.shape)

        return Tensor._result(a.value * b.value, (a, b), backward, "*")

    def __truediv__(self, other: object) -> Tensor:
        a, b = self, self._lift(other)
        if b is None:
            return NotImplemented
        _check_broadcast("/", a, b)

        def backward(g):  # d(a / b) = da / b - a db / b²
            return (
                unbroadcast(g / b.value, a.shape),
                unbroadcast(-g * a.value / (b.value * b.value), b.shape),
            )

        return Tensor._result(a.value / b.value, (a, b), backward, "/")

    def __neg__(self) -> Tensor:
        def backward(g):  # d(-a) = -da
            return (-g,)

        return Tensor._result(-self.value, (self,), backward, "neg")

    def __pow__(self, exponent: object) -> Tensor:
        """``a ** p`` for a constant number ``p`` (a tensor exponent is not supported)."""
        if isinstance(exponent, bool) or not isinstance(exponent, (int, float, np.number)):
            raise TypeError(
                f"**: the exponent must be a constant number, got {type(exponent).__name__}"
            )
        a, p = self, exponent

        def backward(g):  # d(a^p) = p a^(p-1) da; 0 for p = 0 (a^-1 at a = 0 would give NaN)
            if p == 0:
                return (np.zeros_like(g * a.value),)
            return (g * p * a.value ** (p - 1),)

        return Tensor._result(a.value**p, (a,), backward, f"**{p}")

    def __radd__(self, other: object) -> Tensor:
        b = self._lift(other)
        return NotImplemented if b is None else b + self

    def __rsub__(self, other: object) -> Tensor:
        b = self._lift(other)
        return NotImplemented if b is None else b - self

    def __rmul__(self, other: object) -> Tensor:
        b = self._lift(other)
        return NotImplemented if b is None else b * self

    def __rtruediv__(self, other: object) -> Tensor:
        b = self._lift(other)
        return NotImplemented if b is None else b / self

    # ---- matrix product ----------------------------------------------------------------

    def __matmul__(self, other: object) -> Tensor:
        """``a @ b`` with NumPy's rules: 1-D operands are vectors, leading axes broadcast.

        Shapes: ``(..., N, K) @ (..., K, M) → (..., N, M)``; ``(K,) @ (..., K, M) → (..., M)``;
        ``(..., N, K) @ (K,) → (..., N)``; ``(K,) @ (K,) → ()``.
        """
        a, b = self, self._lift(other)
        if b is None:
            return NotImplemented
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(
                f"@: operands must have at least one axis, got shapes {a.shape} and {b.shape}"
            )
        k_a, k_b = a.shape[-1], b.shape[-2 if b.ndim > 1 else 0]
        if k_a != k_b:
            raise ValueError(
                f"@: shapes {a.shape} and {b.shape} are not aligned "
                f"(last axis of the left {k_a} != {'second-to-last' if b.ndim > 1 else 'only'} "
                f"axis of the right {k_b})"
            )
        try:
            np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
        except ValueError:
            raise ValueError(
                f"@: batch axes of shapes {a.shape} and {b.shape} do not broadcast"
            ) from None
        # As NumPy does: a vector on the left is a row (1, K), on the right a column (K, 1).
        a2 = a.value[np.newaxis, :] if a.ndim == 1 else a.value
        b2 = b.value[:, np.newaxis] if b.ndim == 1 else b.value
        out2 = a2 @ b2

        def backward(g):  # d(a b) = da b + a db, so dL/da = g bᵀ and dL/db = aᵀ g
            g2 = g.reshape(out2.shape)  # put back the axes the vector cases dropped
            da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape)
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape)
            return da.reshape(a.shape), db.reshape(b.shape)

        return Tensor._result(a.value @ b.value, (a, b), backward, "@")

    def __rmatmul__(self, other: object) -> Tensor:
        b = self._lift(other)
        return NotImplemented if b is None else b @ self

    # ---- reductions --------------------------------------------------------------------

    def _axes(self, op: str, axis: int | Sequence[int] | None) -> tuple[int, ...]:
        """``axis`` as a sorted tuple of distinct non-negative axes (all axes for None)."""
        if axis is None:
            return tuple(range(self.ndim))
        axes = sorted(_normalize_axes(op, axis, self.shape))
        if len(set(axes)) != len(axes):
            raise ValueError(f"{op}: repeated axis in {axis} for shape {self.shape}")
        return tuple(axes)

    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis`` (all axes by default), as ``ndarray.sum``.

        Shapes: ``(..., D, ...) → (..., ...)``, or ``(..., 1, ...)`` with ``keepdims``.
        """
        a, axes = self, self._axes("sum", axis)

        def backward(g):  # every summed element gets the gradient of its sum
            if not keepdims:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g, a.shape),)

        return Tensor._result(a.value.sum(axis=axes, keepdims=keepdims), (a,), backward, "sum")

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis`` (all axes by default), as ``ndarray.mean``; shapes as :meth:`sum`.

        Built from two recorded operations, ``sum`` then ``* (1 / n)``, so it needs no
        backward of its own.
        """
        axes = self._axes("mean", axis)
        n = int(np.prod([self.shape[ax] for ax in axes]))
        if n == 0:
            raise ValueError(f"mean: nothing to average over axis {axis} of shape {self.shape}")
        return self.sum(axes, keepdims) * (1.0 / n)

    # ---- element-wise functions --------------------------------------------------------

    def exp(self) -> Tensor:
        """``exp(a)``, element-wise; same shape."""
        a, out = self, np.exp(self.value)

        def backward(g):  # d exp(a) = exp(a) da
            return (g * out,)

        return Tensor._result(out, (a,), backward, "exp")

    def log(self) -> Tensor:
        """Natural logarithm, element-wise; same shape."""
        a = self

        def backward(g):  # d log(a) = da / a
            return (g / a.value,)

        return Tensor._result(np.log(a.value), (a,), backward, "log")

    def tanh(self) -> Tensor:
        """``tanh(a)``, element-wise; same shape."""
        a, out = self, np.tanh(self.value)

        def backward(g):  # d tanh(a) = (1 - tanh²(a)) da
            return (g * (1.0 - out * out),)

        return Tensor._result(out, (a,), backward, "tanh")

    def sigmoid(self) -> Tensor:
        """``1 / (1 + exp(-a))``, element-wise; same shape.

        Computed as ``0.5 * tanh(a / 2) + 0.5`` (the same function), which cannot overflow,
        as :class:`fastdl.Sigmoid` does.
        """
        a, out = self, 0.5 * np.tanh(0.5 * self.value) + 0.5

        def backward(g):  # d σ(a) = σ(a) (1 - σ(a)) da
            return (g * out * (1.0 - out),)

        return Tensor._result(out, (a,), backward, "sigmoid")

    def relu(self) -> Tensor:
        """``max(a, 0)``, element-wise; same shape. The derivative at 0 is taken as 0."""
        a = self

        def backward(g):  # d relu(a) = [a > 0] da
            return (g * (a.value > 0),)

        return Tensor._result(np.maximum(a.value, 0), (a,), backward, "relu")

    # ---- shape -------------------------------------------------------------------------

    def reshape(self, *shape: int) -> Tensor:
        """The same elements in a new shape, as ``ndarray.reshape`` (one ``-1`` allowed)."""
        a = self
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        try:
            out = a.value.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape {a.shape} into {shape}") from None

        def backward(g):  # a reshape moves no numbers, so neither does its gradient
            return (g.reshape(a.shape),)

        return Tensor._result(out, (a,), backward, "reshape")

    def transpose(self, *axes: int) -> Tensor:
        """Permute the axes, as ``ndarray.transpose`` (reversed order by default)."""
        a = self
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        perm = _normalize_axes("transpose", axes or tuple(range(a.ndim))[::-1], a.shape)
        if sorted(perm) != list(range(a.ndim)):
            raise ValueError(f"transpose: {axes} is not a permutation of the axes of {a.shape}")

        def backward(g):  # undo the permutation
            return (g.transpose(np.argsort(perm)),)

        return Tensor._result(a.value.transpose(perm), (a,), backward, "transpose")

    @property
    def T(self) -> Tensor:
        """The axes reversed: the transpose of a matrix."""
        return self.transpose()


#: The book's name. ``NumberWithGrad(3)`` is a tensor of shape ``()``; the book's ``.num`` is
#: ``.value`` here.
NumberWithGrad = Tensor
