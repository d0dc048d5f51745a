"""Gradient checking: compare analytic gradients with float64 central differences.

``gradcheck(obj, x, ...)`` works on an Operation, a Layer, a Loss or a NeuralNetwork in
float64. For an operation or layer it differentiates the scalar ``L = Σ forward(x) · R`` for a
fixed random ``R`` (so every output element matters with its own weight), comparing
``backward(R)`` with central differences with respect to ``x`` and every parameter. For a loss,
``L = loss.forward(x, target)``. For a network, ``L = loss(net.forward(x), target)`` with
respect to every parameter (and ``x``). Random operations (dropout) see the same random numbers
in every forward pass: the generator's state is restored before each one.

An element passes when ``|analytic − numeric| ≤ atol + rtol·|numeric|``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__ = ["numerical_gradient", "gradcheck", "GradcheckError"]


class GradcheckError(AssertionError):
    """An analytic gradient differs from its central-difference estimate."""


def numerical_gradient(f: Callable[[], float], x: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """Central differences ``(f(x + eps·e_i) − f(x − eps·e_i)) / 2eps`` for every element of x.

    ``x`` is perturbed in place and restored; ``f`` must read it.

    Parameters
    ----------
    f : callable returning float
    x : ndarray, float64, any shape

    Returns
    -------
    ndarray, shape of ``x``, float64
    """
    if x.dtype != np.float64:
        raise TypeError(
            f"numerical_gradient: x must be float64 for a meaningful check, got {x.dtype}"
        )
    grad = np.zeros(x.shape, dtype=np.float64)
    flat = x.reshape(-1)  # a view: x is contiguous or we copy-check below
    if not np.shares_memory(flat, x):
        raise ValueError("numerical_gradient: x must be contiguous so it can be perturbed in place")
    gflat = grad.reshape(-1)
    for i in range(flat.size):
        orig = flat[i]
        flat[i] = orig + eps
        f_plus = f()
        flat[i] = orig - eps
        f_minus = f()
        flat[i] = orig
        gflat[i] = (f_plus - f_minus) / (2.0 * eps)
    return grad


def _compare(
    name: str, analytic: np.ndarray, numeric: np.ndarray, atol: float, rtol: float
) -> float:
    if analytic is None:
        raise GradcheckError(f"{name}: no analytic gradient was computed")
    if analytic.shape != numeric.shape:
        raise GradcheckError(
            f"{name}: analytic gradient has shape {analytic.shape}, expected {numeric.shape}"
        )
    err = np.abs(np.asarray(analytic, dtype=np.float64) - numeric)
    bound = atol + rtol * np.abs(numeric)
    if not np.all(err <= bound):
        worst = np.unravel_index(np.argmax(err - bound), err.shape)
        raise GradcheckError(
            f"{name}: analytic and numeric gradients differ at index {tuple(int(i) for i in worst)}: "
            f"analytic {analytic[worst]!r}, numeric {numeric[worst]!r} "
            f"(max |diff| {err.max():.3g}, tolerance {atol} + {rtol}·|numeric|)"
        )
    return float(err.max())


def _generator_of(obj) -> np.random.Generator | None:
    rng = getattr(obj, "rng", None)
    return rng if isinstance(rng, np.random.Generator) else None


def gradcheck(
    obj,
    x: np.ndarray,
    target: np.ndarray | None = None,
    *,
    seed: int = 0,
    eps: float = 1e-6,
    atol: float = 1e-6,
    rtol: float = 1e-5,
    check_input: bool = True,
    inference: bool = False,
) -> dict[str, float]:
    """Check ``obj``'s gradients against central differences; raise :class:`GradcheckError`.

    Parameters
    ----------
    obj : Operation, Layer, Loss or NeuralNetwork
        Working in float64 (a network built with ``dtype=np.float64``; a layer or operation
        fed float64 input).
    x : ndarray, float64
        Input (for a loss: the prediction). Integer input (token ids) is allowed for layers
        that take it; its gradient is then not checked.
    target : ndarray, optional
        Required for a Loss or a NeuralNetwork.
    seed : int
        Seeds the projection ``R`` for operations and layers.
    check_input : bool, default True
        Also check the gradient with respect to ``x``.
    inference : bool, default False
        Forward passes in inference mode (dropout off).

    Returns
    -------
    dict
        ``{"input": max error, "param[0]": max error, ...}`` for every checked array.
    """
    from fastdl.layers.base import Layer, carried_states, restore_states
    from fastdl.losses import Loss
    from fastdl.network import NeuralNetwork
    from fastdl.ops.base import Operation

    x = np.array(x, copy=True, order="C")
    check_input = check_input and np.issubdtype(x.dtype, np.floating)
    if check_input and x.dtype != np.float64:
        raise TypeError(f"gradcheck: x must be float64, got {x.dtype}")
    report: dict[str, float] = {}

    if isinstance(obj, Loss):
        if target is None:
            raise ValueError("gradcheck: a Loss needs target=")
        obj.forward(x, target)
        analytic = obj.backward().copy()
        numeric = numerical_gradient(lambda: obj.forward(x, target), x, eps)
        report["input"] = _compare(f"{obj.name} input", analytic, numeric, atol, rtol)
        return report

    if isinstance(obj, NeuralNetwork):
        if target is None:
            raise ValueError("gradcheck: a NeuralNetwork needs target=")
        if obj.dtype != np.float64:
            raise TypeError(f"gradcheck: build the network with dtype=np.float64, not {obj.dtype}")
        if any(layer.first for layer in obj.layers):  # set up first, so the buffers exist
            obj.forward(x, inference=True)  # to be kept; a new network's state starts at zero
            obj.reset_state()
        carried = carried_states(obj.layers)
        obj.forward(x, inference=True)  # set the layers up
        rng = obj.rng
        state = rng.bit_generator.state
        first = obj.layers[0]
        first.set_skip_input_grad(not check_input)

        def run() -> float:
            rng.bit_generator.state = state
            restore_states(carried)
            return obj.loss.forward(obj.forward(x, inference), target)

        run()
        try:
            obj.backward(obj.loss.backward())
        finally:
            first.set_skip_input_grad(True)
        analytic_input = first.input_grad
        analytic_params = [g.copy() for g in obj.param_grads()]
        params = obj.params()
        try:
            if check_input:
                report["input"] = _compare(
                    "network input", analytic_input, numerical_gradient(run, x, eps), atol, rtol
                )
            for i, (p, g) in enumerate(zip(params, analytic_params, strict=True)):
                report[f"param[{i}]"] = _compare(
                    f"network param[{i}]", g, numerical_gradient(run, p, eps), atol, rtol
                )
        finally:
            restore_states(carried)  # the passes moved no carried state, no running statistics
        return report

    if not isinstance(obj, (Operation, Layer)):
        raise TypeError(
            f"gradcheck: expected an Operation, Layer, Loss or NeuralNetwork, got {obj!r}"
        )

    if isinstance(obj, Layer) and obj.first and not obj.float_input and obj.dtype is None:
        obj.bind(np.random.default_rng(0), np.float64)  # integer-input layer: float64 params
    if isinstance(obj, Layer) and obj.first:  # set up first, so the buffers exist to be kept
        obj.forward(x, inference=True)
        obj.reset_state()
    carried = carried_states([obj]) if isinstance(obj, Layer) else []
    out = obj.forward(x, inference)
    rng = _generator_of(obj)
    state = rng.bit_generator.state if rng is not None else None
    proj = np.random.default_rng(seed).standard_normal(out.shape)

    def run() -> float:
        if rng is not None:
            rng.bit_generator.state = state
        restore_states(carried)
        return float(np.sum(obj.forward(x, inference) * proj))

    run()
    skipped = obj.skip_input_grad
    obj.set_skip_input_grad(not check_input)
    try:
        analytic_input = obj.backward(proj.astype(out.dtype))
    finally:  # leave the object as it was given
        obj.set_skip_input_grad(skipped)
    analytic_input = None if analytic_input is None else analytic_input.copy()
    params = obj.params()
    analytic_params = [g.copy() for g in obj.param_grads()]
    try:
        if check_input:
            report["input"] = _compare(
                f"{obj.name} input", analytic_input, numerical_gradient(run, x, eps), atol, rtol
            )
        for i, (p, g) in enumerate(zip(params, analytic_params, strict=True)):
            report[f"param[{i}]"] = _compare(
                f"{obj.name} param[{i}]", g, numerical_gradient(run, p, eps), atol, rtol
            )
    finally:
        restore_states(carried)
    return report
